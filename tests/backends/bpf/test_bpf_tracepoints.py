"""Tracepoints through the real kernel: openat counted per execname, strings."""

import os
import subprocess

from bpfrun import run
from stap_ls.backends.bpf.ir import (ArrayGet, Assign, Call, Compare, End, Field, Foreach, GlobalVar,
                                     Global, If, IntLit, Local, Logical, Printf, Probe, Program,
                                     StrLit, Tracepoint, Type)
from stap_ls.backends.bpf.runtime import RunOptions


def test_openat_counts_per_execname(bpf_ready, tmp_path):
    marker = tmp_path / "marker.txt"
    marker.write_text("x")
    comm = open("/proc/self/comm").read().strip()
    prog = Program(
        globals=[Global("counts", Type.LONG, keys=[Type.STRING]), Global("hits", Type.LONG)],
        probes=[
            Probe(Tracepoint("syscalls", "sys_enter_openat"), [
                Assign(ArrayGet("counts", [Call("execname")]), IntLit(1), op="+="),
                If(Logical("&&", Compare("==", Call("pid"), Call("target")),
                           Compare("==", Call("user_string", [Field("filename"), StrLit("?")]),
                                   StrLit(str(marker)))),
                   [Assign(GlobalVar("hits"), IntLit(1), op="+=")]),
            ], pp='kernel.trace("syscalls:sys_enter_openat")'),
            Probe(End(), [
                Foreach("counts", ["k"], [Printf("%s %d\n", [Local("k"), ArrayGet("counts", [Local("k")])])],
                        sort="value-"),
                Printf("hits %d\n", [GlobalVar("hits")]),
            ], locals={"k": Type.STRING}, pp="end"),
        ])

    def action():
        for _ in range(7):
            with open(marker) as f:
                f.read()

    c = run(prog, RunOptions(target_pid=os.getpid()), action)
    assert c.code == 0, (c.diagnostics, c.stderr)
    assert c.stdout[-1] == "hits 7"
    per = {ln.rsplit(" ", 1)[0]: int(ln.rsplit(" ", 1)[1]) for ln in c.stdout[:-1]}
    assert per.get(comm, 0) >= 7, per
    # sorted by value, descending, as foreach (k in counts-) does
    assert list(per.values()) == sorted(per.values(), reverse=True)


def test_data_loc_string_field(bpf_ready):
    """sched_process_exec's filename is a __data_loc string inside the record."""
    prog = Program(
        globals=[],
        probes=[Probe(Tracepoint("sched", "sched_process_exec"), [
            If(Compare("==", Field("common_pid"), Call("pid")),
               [Printf("exec %s by %s\n", [Field("filename"), Call("execname")])]),
        ], pp='kernel.trace("sched:sched_process_exec")')])

    def action():
        subprocess.run(["/bin/true"], check=True)

    c = run(prog, RunOptions(), action)
    assert c.code == 0, c.diagnostics
    assert any(ln.startswith("exec /bin/true by true") or ln.startswith("exec /usr/bin/true by true")
               for ln in c.stdout), c.stdout
