"""Stopping prints the end output; a killed run leaves nothing attached."""

import os
import signal
import subprocess
import sys

from bpfrun import DATA, assert_released, bpftool, live_ids, owned_ids, run
from stap_ls.backends.bpf.ir import (Assign, End, Global, GlobalVar, IntLit, Printf, Probe, Program,
                                     Tracepoint, Type)


def test_stop_runs_end_and_prints(bpf_ready):
    prog = Program(globals=[Global("n", Type.LONG)], probes=[
        Probe(Tracepoint("syscalls", "sys_enter_getppid"), [Assign(GlobalVar("n"), IntLit(1), op="+=")]),
        Probe(End(), [Printf("getppid calls: %d\n", [GlobalVar("n")])], pp="end"),
    ])

    def action():
        for _ in range(50):
            os.getppid()

    c = run(prog, action=action)
    assert c.code == 0, c.diagnostics
    assert len(c.stdout) == 1 and c.stdout[0].startswith("getppid calls: ")
    assert int(c.stdout[0].split(": ")[1]) >= 50


def test_sigkill_leaves_nothing_attached(bpf_ready, target_binary):
    child = subprocess.Popen([sys.executable, os.path.join(DATA, "hold_run.py"), target_binary],
                             stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline().strip()
        assert line == "ATTACHED", line
        progs, links = owned_ids(child.pid)
        assert len(progs) >= 3 and len(links) >= 3, (progs, links)
        live_progs, live_links = live_ids()
        assert progs <= live_progs and links <= live_links
        perf = [p for p in bpftool("perf", "show") if p.get("pid") == child.pid]
        assert {p["fd_type"] for p in perf} >= {"tracepoint", "uprobe"}, perf
        # uprobes are perf-event based: no tracefs uprobe_events entries to leak
        before_events = open("/sys/kernel/tracing/uprobe_events").read()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert_released(progs, links)
    assert not [p for p in bpftool("perf", "show") if p.get("pid") == child.pid]
    assert open("/sys/kernel/tracing/uprobe_events").read() == before_events
