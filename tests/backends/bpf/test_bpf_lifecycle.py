"""Stopping prints the end output; a killed run leaves nothing attached."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from bpfrun import DATA, run
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


def _bpftool(*args: str):
    tool = shutil.which("bpftool") or "/usr/sbin/bpftool"
    if not os.path.exists(tool):
        pytest.fail("bpftool is missing: apt-get install bpftool (scripts/setup.sh)")
    r = subprocess.run([tool, "-j", *args], capture_output=True, text=True, check=True)
    return json.loads(r.stdout or "[]")


def _owned_ids(pid: int) -> tuple[set[int], set[int]]:
    """BPF program and link ids held by ``pid``'s file descriptors (its fdinfo)."""
    progs, links = set(), set()
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            text = open(f"/proc/{pid}/fdinfo/{fd}").read()
        except OSError:
            continue
        for line in text.splitlines():
            key, _, val = line.partition(":")
            if key == "prog_id":
                progs.add(int(val))
            elif key == "link_id":
                links.add(int(val))
    return progs, links


def _live_ids() -> tuple[set[int], set[int]]:
    return ({p["id"] for p in _bpftool("prog", "show")}, {ln["id"] for ln in _bpftool("link", "show")})


def test_sigkill_leaves_nothing_attached(bpf_ready, target_binary):
    child = subprocess.Popen([sys.executable, os.path.join(DATA, "hold_run.py"), target_binary],
                             stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline().strip()
        assert line == "ATTACHED", line
        progs, links = _owned_ids(child.pid)
        assert len(progs) >= 3 and len(links) >= 3, (progs, links)
        live_progs, live_links = _live_ids()
        assert progs <= live_progs and links <= live_links
        perf = [p for p in _bpftool("perf", "show") if p.get("pid") == child.pid]
        assert {p["fd_type"] for p in perf} >= {"tracepoint", "uprobe"}, perf
        # uprobes are perf-event based: no tracefs uprobe_events entries to leak
        before_events = open("/sys/kernel/tracing/uprobe_events").read()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        live_progs, live_links = _live_ids()
        if not (progs & live_progs or links & live_links):
            break
        time.sleep(0.2)
    assert not progs & live_progs, "BPF programs survived the killed run"
    assert not links & live_links, "BPF links survived the killed run"
    assert not [p for p in _bpftool("perf", "show") if p.get("pid") == child.pid]
    assert open("/sys/kernel/tracing/uprobe_events").read() == before_events
