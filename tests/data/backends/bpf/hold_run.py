"""Run a BPF engine program (tracepoint + uprobe + timer) until killed.

Used by test_bpf_lifecycle: prints ATTACHED once the probes are live, then
waits; the test kills this process with SIGKILL and checks that nothing it
attached survives.  argv[1] is the uprobe target binary.
"""

import sys
import time

from stap_ls.backends.bpf.ir import (Assign, Global, GlobalVar, IntLit, Probe, Program, Timer,
                                     Tracepoint, Type, Uprobe)
from stap_ls.backends.bpf.runtime import RunOptions, run_program

inc = [Assign(GlobalVar("n"), IntLit(1), op="+=")]
prog = Program(globals=[Global("n", Type.LONG)], probes=[
    Probe(Tracepoint("syscalls", "sys_enter_getppid"), inc),
    Probe(Uprobe(sys.argv[1], "add3"), inc),
    Probe(Timer("ms", 10), inc),
])
h = run_program(prog, RunOptions(), lambda s, l: print(s, l, flush=True), lambda c: None,
                lambda d: print("DIAG", d.format(), flush=True))
h.attached.wait(30)
print("ATTACHED" if not h.finished else f"FINISHED {h.exit_code}", flush=True)
while True:
    time.sleep(1)
