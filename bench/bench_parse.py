"""Benchmark pass 1: the tapset library cold and warm, and stap-ls check -p1
against stap -p1 on the installed examples.

* cold: an empty cache directory; every tapset file is lexed, preprocessed
  and parsed (on --jobs processes) and the consolidated cache is written.
* warm: a fresh Python process loads the library from that cache — the
  index and the macros, ready for pass 2 (trees stay on disk until used);
  the figure is measured inside the process, after imports.
* examples: for each example with a .meta test_check line, ``stap-ls check
  -p1`` in-process (library loaded once) and ``stap -r RELEASE -p1`` as a
  process, with the ratio.
* incremental: pass 1 of bench/bench_lsp.py's 1,000-line script after a
  one-character edit (insert, then delete, an ``x`` in the middle), through
  :func:`stap_ls.syntax.incremental.parse_file_incremental`, beside a full
  ``parse_file``; once as the script is (no preprocessor work) and once with a
  ``%( %)`` conditional at its top (the file is then preprocessed whole).

Wall-clock figures on a shared machine are noisy, so CPU time is printed
beside them; each library figure is the median of --repeat runs.

    .venv/bin/python bench/bench_parse.py [--repeat N] [--jobs N] [--examples N]
        [--no-library] [--no-examples] [--edits N]
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stap_ls.cli import check as check_cli  # noqa: E402
from tests.support import oracle  # noqa: E402

WARM_PROBE = """
import time, sys
t0 = time.perf_counter(); c0 = time.process_time()
from stap_ls.options import parse_stap_args
from stap_ls.sema.frontend import pp_env
from stap_ls.sema.library import load_library
t1 = time.perf_counter(); c1 = time.process_time()
opts, _ = parse_stap_args(["-r", sys.argv[1], "-e", ""])
lib = load_library([], pp_env(opts))
t2 = time.perf_counter(); c2 = time.process_time()
assert lib.origin == "cache", lib.origin
print(t1 - t0, t2 - t1, c2 - c1, len(lib.files))
"""


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cold(rel: str, cache: str, jobs: int) -> tuple[float, float, int]:
    code = ("import sys, time; from stap_ls.options import parse_stap_args;"
            "from stap_ls.sema.frontend import pp_env; from stap_ls.sema.library import load_library;"
            "o,_ = parse_stap_args(['-r', sys.argv[1], '-e', '']); e = pp_env(o);"
            "t = time.perf_counter(); lib = load_library([], e, jobs=int(sys.argv[2]));"
            "assert lib.origin == 'parsed'; print(time.perf_counter() - t, len(lib.files))")
    env = dict(os.environ, XDG_CACHE_HOME=cache, PYTHONPATH=str(REPO))
    c0 = _children_cpu()
    out = subprocess.run([sys.executable, "-c", code, rel, str(jobs)], env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[0]), _children_cpu() - c0, int(out[1])


def warm(rel: str, cache: str) -> tuple[float, float, float, int]:
    env = dict(os.environ, XDG_CACHE_HOME=cache, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", WARM_PROBE, rel], env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[0]), float(out[1]), float(out[2]), int(out[3])


def examples(rel: str, limit: int | None) -> None:
    from tests.syntax.test_examples import p1_argv
    exs = oracle.examples()[:limit] if limit else oracle.examples()
    stap = oracle.stap_path()
    ours_total = stap_total = 0.0
    same = 0
    for ex in exs:
        argv = ["-r", rel, *p1_argv(ex.argv)]
        out, err = io.StringIO(), io.StringIO()
        old = os.getcwd()
        os.chdir(ex.dir)
        t = time.perf_counter()
        try:
            rc = check_cli.main(argv, out, err)
        finally:
            ours = time.perf_counter() - t
            os.chdir(old)
        t = time.perf_counter()
        r = subprocess.run([stap, *argv], cwd=ex.dir, capture_output=True, text=True,
                           errors="surrogateescape")
        theirs = time.perf_counter() - t
        ours_total += ours
        stap_total += theirs
        same += (rc == 0) == (r.returncode == 0) and \
            oracle.strip_file_header(out.getvalue()) == oracle.strip_file_header(r.stdout)
    n = len(exs)
    print(f"examples: {n} scripts, {same} identical to stap -p1")
    print(f"  stap-ls check -p1 (in-process): {ours_total:.2f}s total, "
          f"{1000 * ours_total / n:.1f} ms per script")
    print(f"  stap -p1 (process):             {stap_total:.2f}s total, "
          f"{1000 * stap_total / n:.1f} ms per script")
    print(f"  ratio stap / stap-ls: {stap_total / ours_total:.1f}x")


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def incremental(edits: int) -> None:
    from bench.bench_lsp import script
    from stap_ls.syntax.incremental import DeclCache, parse_file_incremental
    from stap_ls.syntax.parser import ParseOptions, parse_file
    from stap_ls.syntax.printer import print_file
    from stap_ls.text import SourceFile
    base = script()
    cond = '%( kernel_v >= "2.6" %? global extra %: global other %)\n'
    for label, text in (("plain", base), ("with a %( %) conditional", cond + base)):
        opts = ParseOptions()
        cache = DeclCache()
        parse_file_incremental(SourceFile("b.stp", text), opts, cache)
        pos = text.index("\n", len(text) // 2) + 3
        wall, cpu = [], []
        for k in range(edits):
            edited = text[:pos] + ("x" if k % 2 == 0 else "") + text[pos:]
            t, c = time.perf_counter(), time.process_time()
            res = parse_file_incremental(SourceFile("b.stp", edited), opts, cache)
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        full = []
        for _ in range(5):
            t = time.perf_counter()
            fresh = parse_file(SourceFile("b.stp", edited), opts)
            full.append(time.perf_counter() - t)
        assert print_file(res.file) == print_file(fresh.file)
        print(f"incremental re-parse after a 1-char edit ({label}, {text.count(chr(10))} lines): "
              f"p50 {_pct(wall, 50) * 1000:.1f} ms  p95 {_pct(wall, 95) * 1000:.1f} ms wall, "
              f"CPU p50 {_pct(cpu, 50) * 1000:.1f} ms  p95 {_pct(cpu, 95) * 1000:.1f} ms; "
              f"{cache.parsed} declaration(s) parsed, {cache.reused} reused, "
              f"{cache.scanned} token(s) scanned; full parse_file p50 "
              f"{_pct(full, 50) * 1000:.0f} ms")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--examples", type=int, default=0, help="only the first N (0: all)")
    ap.add_argument("--no-examples", action="store_true")
    ap.add_argument("--no-library", action="store_true", help="skip the library figures")
    ap.add_argument("--edits", type=int, default=60, help="edits for the incremental figure")
    args = ap.parse_args(argv)
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    incremental(args.edits)
    rel = oracle.release()
    colds, warms = [], []
    for _ in range(0 if args.no_library else args.repeat):
        with tempfile.TemporaryDirectory() as cache:
            colds.append(cold(rel, cache, args.jobs))
            warms.extend(warm(rel, cache) for _ in range(3))
    if args.no_library:
        if not args.no_examples:
            examples(rel, args.examples or None)
        return 0
    wall = statistics.median(c[0] for c in colds)
    cpu = statistics.median(c[1] for c in colds)
    print(f"library cold ({colds[0][2]} files, {args.jobs} processes): {wall:.2f}s wall, "
          f"{cpu:.2f}s CPU (all processes)  [target <= 3 s]")
    print(f"library warm, ready for pass 2: {statistics.median(w[1] for w in warms):.3f}s wall, "
          f"{statistics.median(w[2] for w in warms):.3f}s CPU, after "
          f"{statistics.median(w[0] for w in warms):.3f}s of imports  [target <= 0.3 s]")
    if not args.no_examples:
        examples(rel, args.examples or None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
