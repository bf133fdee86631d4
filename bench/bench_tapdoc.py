"""Benchmark: build the tapset documentation index cold and warm.

Cold: an empty cache directory, so every tapset file is read and scanned and
the cache is written.  Warm: the same directory again, so the index is loaded
from the cache after checking every file's mtime and size.  Also reported: a
scan with the cache disabled.  Each figure is the median of --repeat runs.

    .venv/bin/python bench/bench_tapdoc.py [--repeat N] [--dirs DIR ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

from stap_ls.sema.tapdoc import build_index, tapset_search_dirs


def _time(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    r = fn()
    return time.perf_counter() - t0, r


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dirs", nargs="*", default=None,
                    help="tapset directories (default: stap's for x86_64, kernel runtime)")
    args = ap.parse_args(argv)
    dirs = args.dirs or tapset_search_dirs()
    cold, warm, nocache = [], [], []
    index = None
    for _ in range(max(1, args.repeat)):
        with tempfile.TemporaryDirectory(prefix="tapdoc-bench-") as cache:
            t, (index, _) = _time(lambda: build_index(dirs, cache_dir=cache))
            assert not index.from_cache
            cold.append(t)
            t, (warm_index, _) = _time(lambda: build_index(dirs, cache_dir=cache))
            if not warm_index.from_cache:
                print("error: the warm build did not use the cache", file=sys.stderr)
                return 1
            warm.append(t)
        t, _ = _time(lambda: build_index(dirs, use_cache=False))
        nocache.append(t)
    assert index is not None
    ms = lambda xs: f"{statistics.median(xs) * 1000:7.1f} ms"  # noqa: E731
    print(f"directories: {len(dirs)}  doc comments: {len(index.docs)}  "
          f"names: {len(index)}  diagnostics: {len(index.diagnostics)}")
    print(f"cold build (scan + write cache): {ms(cold)}")
    print(f"warm build (load from cache):    {ms(warm)}")
    print(f"scan only (cache disabled):      {ms(nocache)}")
    print(f"median of {len(cold)} runs each")
    return 0


if __name__ == "__main__":
    sys.exit(main())
