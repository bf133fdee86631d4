"""Benchmark the BPF engine: time to first event, and cost per probe hit.

Run as root:  .venv/bin/python bench/bench_bpf.py [--hits N] [--runs R]

1. *Start to first event*: ``run_program`` of a tracepoint probe that prints,
   while a thread keeps calling getppid(); the time from the call to the first
   ring-buffer record, with the compile/load/attach split (median of R runs).
   Target: under 1 s.
2. *Cost per hit*: N getppid() syscalls timed with no probe, with an empty
   ``kernel.trace("syscalls:sys_enter_getppid") {}`` probe, and with a probe
   doing typical work (``counts[execname()]++; s <<< pid()``); the extra
   nanoseconds per syscall over the bare loop and over the empty probe.
3. *Scripts* (the whole path: pass 1 -> 2 -> translate -> compile -> load):
   the same two measurements for stap SCRIPTS started with
   ``runs.start_run(RunRequest(script_text=..., engine="bpf"))`` -- from the
   call to the first output line, with each pass's seconds from the progress
   events -- and the per-hit cost of the counting probe written as a script
   (``counts[execname()]++; s <<< pid()``) over the empty IR probe.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from stap_ls.backends.bpf.ir import (AggAdd, ArrayGet, Assign, Call, Global, IntLit, Printf,  # noqa: E402
                                     Probe, Program, Tracepoint, Type)
from stap_ls.backends.bpf.runtime import RunOptions, run_program  # noqa: E402

TP = ("syscalls", "sys_enter_getppid")


@contextlib.contextmanager
def getppid_calls():
    """A thread calling getppid() every half millisecond (the traced event)."""
    stop = threading.Event()

    def poke() -> None:
        while not stop.is_set():
            os.getppid()
            time.sleep(0.0005)

    t = threading.Thread(target=poke, daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join()


def first_event_once() -> dict[str, float]:
    prog = Program(probes=[Probe(Tracepoint(*TP), [Printf("hit %d\n", [Call("pid")])])])
    with getppid_calls():
        got = threading.Event()
        t0 = time.monotonic()
        h = run_program(prog, RunOptions(), lambda s, l: got.set(), lambda c: None,
                        lambda d: print("DIAG", d.format(), file=sys.stderr))
        ok = got.wait(10)
        h.stop()
        h.wait(10)
    if not ok:
        raise SystemExit("no event within 10 s")
    out = {"first_event_s": h.stats.t_first_event - t0}
    out.update({f"{k}_s": v for k, v in h.stats.timings.items()})
    return out


def loop_time(n: int) -> float:
    f = os.getppid
    t0 = time.perf_counter()
    for _ in range(n):
        f()
    return time.perf_counter() - t0


def timed_with(prog: Program | None, n: int, runs: int) -> float:
    if prog is None:
        return min(loop_time(n) for _ in range(runs))
    h = run_program(prog, RunOptions(), lambda s, l: None, lambda c: None,
                    lambda d: print("DIAG", d.format(), file=sys.stderr))
    h.attached.wait(30)
    if h.finished:
        raise SystemExit(f"run failed: {[d.format() for d in h.diagnostics]}")
    best = min(loop_time(n) for _ in range(runs))
    h.stop()
    h.wait(30)
    return best


SCRIPT_FIRST = 'probe kernel.trace("syscalls:sys_enter_getppid") { printf("hit %d\\n", pid()) }'
SCRIPT_WORK = ('global counts, s probe kernel.trace("syscalls:sys_enter_getppid") '
               '{ counts[execname()]++; s <<< pid() } probe end { println(@count(s) > 0) }')


def script_run(text: str, on_line, on_progress=None):
    from stap_ls.backends.runs import RunEvents, RunRequest, start_run
    events = RunEvents(on_progress=on_progress or (lambda *a: None),
                       on_output=lambda stream, line: on_line(stream, line),
                       on_diagnostic=lambda d: print("DIAG", d.format(), file=sys.stderr))
    return start_run(RunRequest(script_text=text, engine="bpf"), events)


def script_first_event_once() -> dict[str, float]:
    got = threading.Event()
    passes: dict[str, float] = {}
    first = [0.0]

    def on_line(stream: str, _line: str) -> None:
        if stream == "stdout" and not got.is_set():
            first[0] = time.monotonic()
            got.set()

    def on_progress(n: int, state: str, seconds: float | None) -> None:
        if state == "end" and seconds is not None:
            passes[f"pass{n}"] = seconds

    with getppid_calls():
        t0 = time.monotonic()
        run = script_run(SCRIPT_FIRST, on_line, on_progress)
        ok = got.wait(20)
        run.stop()
        run.wait(20)
    if not ok:
        raise SystemExit(f"no event within 20 s: {[d.format() for d in run.result.diagnostics]}")
    out = {"first_event_s": first[0] - t0}
    out.update({f"{k}_s": v for k, v in passes.items()})
    return out


def script_timed(text: str, n: int, runs: int) -> float:
    running = threading.Event()
    run = script_run(text, lambda s, l: None,
                     lambda n_, state, _s: running.set() if state == "running" else None)
    while not running.wait(0.1):
        if run.finished:
            raise SystemExit(f"run failed: {[d.format() for d in run.result.diagnostics]}")
    time.sleep(0.2)
    best = min(loop_time(n) for _ in range(runs))
    run.stop()
    run.wait(30)
    return best


def report_first(samples: list[dict[str, float]]) -> None:
    for key in samples[0]:
        vals = [s[key] for s in samples if key in s]
        print(f"  {key:16s} {statistics.median(vals) * 1000:8.1f} ms   (min {min(vals) * 1000:.1f}, max {max(vals) * 1000:.1f})")
    med = statistics.median(s["first_event_s"] for s in samples)
    print(f"  target < 1000 ms: {'met' if med < 1.0 else 'MISSED'}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hits", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")

    samples = [first_event_once() for _ in range(a.runs)]
    print(f"start to first event (median of {a.runs}):")
    for key in samples[0]:
        vals = [s[key] for s in samples if key in s]
        print(f"  {key:16s} {statistics.median(vals) * 1000:8.1f} ms   (min {min(vals) * 1000:.1f}, max {max(vals) * 1000:.1f})")
    med = statistics.median(s["first_event_s"] for s in samples)
    print(f"  target < 1000 ms: {'met' if med < 1.0 else 'MISSED'}")

    empty = Program(probes=[Probe(Tracepoint(*TP), [])])
    work = Program(globals=[Global("counts", Type.LONG, keys=[Type.STRING]), Global("s", Type.STATS)],
                   probes=[Probe(Tracepoint(*TP), [
                       Assign(ArrayGet("counts", [Call("execname")]), IntLit(1), op="+="),
                       AggAdd("s", [], Call("pid"))])])
    n = a.hits
    base = timed_with(None, n, a.runs)
    t_empty = timed_with(empty, n, a.runs)
    t_work = timed_with(work, n, a.runs)
    per = lambda t: (t - base) / n * 1e9  # noqa: E731
    print(f"cost per probe hit ({n} getppid() calls, best of {a.runs}):")
    print(f"  bare syscall loop        {base / n * 1e9:8.0f} ns/call")
    print(f"  + empty probe            {per(t_empty):8.0f} ns/hit")
    print(f"  + counting probe         {per(t_work):8.0f} ns/hit  ({per(t_work) - per(t_empty):.0f} ns over empty)")

    samples = [script_first_event_once() for _ in range(a.runs)]
    print(f"script: start_run to first output line (median of {a.runs}, passes as reported):")
    report_first(samples)
    t_script = script_timed(SCRIPT_WORK, n, a.runs)
    print(f"script: cost per probe hit ({n} getppid() calls, best of {a.runs}):")
    print(f"  counting probe as a script {per(t_script):6.0f} ns/hit  "
          f"({per(t_script) - per(t_empty):.0f} ns over the empty IR probe)")


if __name__ == "__main__":
    main()
