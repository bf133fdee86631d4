"""Pass-2 speed: ``stap-ls check -p2`` beside ``stap -p2`` on the same scripts.

For each script (tapset aliases ``syscall.*``, ``vfs.*`` and ``kernel.trace``
points) this prints, in one run: the wall time of the whole ``stap-ls check
-p2`` command with warm on-disk caches (median of N runs after one warm-up),
the same for the real ``stap -r RELEASE -p2``, and the time to elaborate the
script again inside one long-running process (front end result reused, as the
language server does).  Targets: <= 1 s for the command, <= 0.2 s in-process.
Each figure is followed by its CPU time in parentheses (user + system of the
child for commands, of this process for the in-process column): on a shared
machine the load inflates wall times far more than CPU times, so the load
average is printed at the start and at the end.

    .venv/bin/python bench/bench_elaborate.py [-n RUNS]
"""

from __future__ import annotations

import argparse
import glob
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

SCRIPTS = {
    "syscall.*": 'probe syscall.* { if (pid() == target()) printf("%s\\n", name) }',
    "syscall.open": 'probe syscall.open { println(filename) } probe syscall.open.return { println(retstr) }',
    "vfs.*": 'global n probe vfs.* ? { n[probefunc()]++ } probe end { foreach (k in n) println(k) }',
    "kernel.trace": ('probe kernel.trace("sched_switch") { printf("%d\\n", pid()) } '
                     'probe kernel.trace("raw_syscalls:sys_enter") { x++ } probe timer.s(1) { exit() }'),
}


def _release() -> str:
    mods = sorted(glob.glob("/lib/modules/*/build/.config"))
    if not mods:
        sys.exit("no kernel headers under /lib/modules: apt-get install linux-headers-amd64")
    return mods[-1].split("/")[3]


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _time(cmd: list[str], runs: int) -> tuple[float, float, int]:
    """Median wall time and median CPU time (user+system of the child) of ``cmd``."""
    subprocess.run(cmd, capture_output=True)          # warm-up (fills caches)
    times, cpus, rc = [], [], 0
    for _ in range(runs):
        c = _children_cpu()
        t = time.perf_counter()
        rc = subprocess.run(cmd, capture_output=True).returncode
        times.append(time.perf_counter() - t)
        cpus.append(_children_cpu() - c)
    return statistics.median(times), statistics.median(cpus), rc


def _in_process(script: str, rel: str, runs: int) -> tuple[float, float]:
    from stap_ls.options import parse_stap_args
    from stap_ls.sema.elaborate import elaborate
    from stap_ls.sema.frontend import run_frontend
    from stap_ls.targets.model import TargetModel
    from stap_ls.text import SourceFile
    opts, _ = parse_stap_args(["-r", rel, "-p2", "-e", script])
    model = TargetModel(opts)
    fe = run_frontend(opts, [SourceFile("<input>", script)])
    elaborate(fe, model)                                # warm
    times, cpus = [], []
    for _ in range(runs):
        fe = run_frontend(opts, [SourceFile("<input>", script)], library=fe.library)
        c = time.process_time()
        t = time.perf_counter()
        elaborate(fe, model)
        times.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return statistics.median(times), statistics.median(cpus)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=3)
    a = ap.parse_args()
    rel = _release()
    stap = shutil.which("stap")
    ours = [sys.executable, "-m", "stap_ls", "check", "-r", rel, "-p2"]
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"wall (cpu) seconds, median of {a.n}")
    print(f"{'script':14} {'stap-ls -p2':>18} {'stap -p2':>18} {'re-elaborate':>18}  exit(ours/stap)")
    for name, text in SCRIPTS.items():
        t_ours, c_ours, rc_ours = _time(ours + ["-e", text], a.n)
        if stap:
            t_stap, c_stap, rc_stap = _time([stap, "-r", rel, "-p2", "-e", text], a.n)
        else:
            t_stap, c_stap, rc_stap = float("nan"), float("nan"), -1
        t_in, c_in = _in_process(text, rel, a.n)
        print(f"{name:14} {t_ours:8.3f}s ({c_ours:6.3f}s) {t_stap:8.3f}s ({c_stap:6.3f}s) "
              f"{t_in:8.3f}s ({c_in:6.3f}s)  {rc_ours}/{rc_stap}")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
