"""Timers fire at the asked rate; exit() from a probe ends the run and runs end."""

import time

from bpfrun import run, start
from stap_ls.backends.bpf.ir import (Assign, Begin, End, Exit, Global, GlobalVar, IntLit, Printf,
                                     Probe, Program, Timer, TimerProfile, Type)


def counter(name):
    return Assign(GlobalVar(name), IntLit(1), op="+=")


def test_timer_rates_and_exit(bpf_ready):
    prog = Program(
        globals=[Global(n, Type.LONG) for n in ("a", "b", "c", "p")],
        probes=[
            Probe(Begin(), [Printf("begin\n")], pp="begin"),
            Probe(Timer("ms", 50), [counter("a")], pp="timer.ms(50)"),
            Probe(Timer("ms", 25, randomize=5), [counter("b")], pp="timer.ms(25).randomize(5)"),
            Probe(Timer("hz", 40), [counter("c")], pp="timer.hz(40)"),
            Probe(TimerProfile(), [counter("p")], pp="timer.profile"),
            Probe(Timer("s", 1), [Printf("exiting\n"), Exit(), Printf("after exit\n")], pp="timer.s(1)"),
            Probe(End(), [Printf("a=%d b=%d c=%d p=%d\n", [GlobalVar(n) for n in "abcp"])], pp="end"),
        ])
    c = start(prog)
    code = c.handle.wait(20)
    elapsed = time.monotonic() - c.handle.stats.t_attached
    print(c.stdout, elapsed)
    assert code == 0, (c.diagnostics, c.stderr)
    # exit() lets the probe finish (stap semantics), then end runs once
    assert c.stdout[:3] == ["begin", "exiting", "after exit"]
    a, b, cc, p = (int(kv.split("=")[1]) for kv in c.stdout[3].split())
    assert len(c.stdout) == 4
    # the run lasted ~1 s from attach (timer.s(1)), not longer than the stop path
    assert 0.9 <= elapsed <= 2.5, elapsed
    assert 16 <= a <= 22, a          # 50 ms -> 20 per second
    assert 30 <= b <= 48, b          # 20..30 ms, mean 25 ms -> ~40
    assert 32 <= cc <= 42, cc        # 40 Hz
    assert p >= 100, p               # 250 Hz on every CPU


def test_exit_in_begin_skips_kernel_probes(bpf_ready):
    prog = Program(
        globals=[Global("n", Type.LONG)],
        probes=[Probe(Begin(), [Exit()], pp="begin"),
                Probe(Timer("ms", 1), [counter("n")], pp="timer.ms(1)"),
                Probe(End(), [Printf("n=%d\n", [GlobalVar("n")])], pp="end")])
    c = run(prog)
    assert c.code == 0 and c.stdout == ["n=0"], (c.stdout, c.diagnostics)
