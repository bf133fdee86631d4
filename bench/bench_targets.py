"""Benchmark of the target model beside the real stap (issue 4).

Builds a large C program with ``gcc -g`` (a generated file of N functions with
structs, typedefs and locals), then prints in one run:

* ``stap -l 'process("BIN").function("*")'`` wall time (the oracle),
* ``python -m stap_ls.targets.listing`` with the same argument, cold (empty
  cache directory) and warm (cache filled by the cold run), and whether the
  outputs are identical;
* the kernel BTF index load, cold (parse ``/sys/kernel/btf/vmlinux``) and warm
  (from the on-disk cache).

Targets: warm <= 1x stap, cold <= 3x stap, BTF warm <= 200 ms.
Run: ``.venv/bin/python bench/bench_targets.py [--functions N] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAP_RELEASE = "6.1.0-56-amd64"


def generate_c(n: int) -> str:
    parts = ["#include <stddef.h>\n#include <string.h>\n",
             "typedef unsigned long counter_t;\n"]
    for i in range(0, n, 10):
        parts.append(f"struct rec{i} {{ int id; const char *name; struct rec{i} *next; "
                     f"double vals[4]; union {{ int a; float b; }} u; }};\n"
                     f"typedef struct rec{i} rec{i}_t;\n")
    for i in range(n):
        s = i - i % 10
        parts.append(
            f"{'static ' if i % 3 == 0 else ''}int fn_{i}(rec{s}_t *r, const char *label, "
            f"counter_t n, unsigned char flag)\n{{\n"
            f"\tint acc = {i};\n\tchar buf[16];\n\tstrncpy(buf, label, sizeof buf - 1);\n"
            f"\tfor (counter_t k = 0; k < n; k++) {{ int t = r->id + (int)k; acc += t + buf[0]; }}\n"
            f"\treturn acc + flag + (r->next != NULL);\n}}\n")
    parts.append("int main(int argc, char **argv)\n{\n\tint s = 0;\n\tstruct rec0 r = {0};\n")
    for i in range(0, n, 3):
        parts.append(f"\ts += fn_{i}((void *)&r, argv[0], argc, 1);\n")
    parts.append("\treturn s;\n}\n")
    return "".join(parts)


def timed(cmd: list[str], env: dict | None = None) -> tuple[float, str]:
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    return time.perf_counter() - t, r.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--functions", type=int, default=6000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    for tool in ("gcc", "stap"):
        if shutil.which(tool) is None:
            print(f"bench: {tool} not found (install it: scripts/setup.sh)", file=sys.stderr)
            return 1
    work = Path(tempfile.mkdtemp(prefix="stap-ls-bench-"))
    try:
        src = work / "big.c"
        src.write_text(generate_c(args.functions))
        binary = work / "big"
        t = time.perf_counter()
        subprocess.run(["gcc", "-g", "-O0", "-o", str(binary), str(src)], check=True)
        print(f"built {binary.name}: {args.functions} functions, "
              f"{binary.stat().st_size / 1e6:.1f} MB with -g, in {time.perf_counter() - t:.1f} s")
        probe = f'process("{binary}").function("*")'
        for flag in ("-l", "-L"):
            stap_times, stap_out = [], ""
            for _ in range(args.repeat):
                dt, stap_out = timed(["stap", "-r", STAP_RELEASE, flag, probe])
                stap_times.append(dt)
            ours = [sys.executable, "-m", "stap_ls.targets.listing", flag, probe]
            cold_times, warm_times, out = [], [], ""
            for i in range(args.repeat):
                env = dict(os.environ, XDG_CACHE_HOME=str(work / f"cache{flag}{i}"),
                           PYTHONPATH=str(ROOT))
                dt, out = timed(ours, env)
                cold_times.append(dt)
                dt, out = timed(ours, env)
                warm_times.append(dt)
            stap_t = statistics.median(stap_times)
            cold_t = statistics.median(cold_times)
            warm_t = statistics.median(warm_times)
            lines = len(stap_out.splitlines())
            print(f"stap {flag} ({lines} probes)            : {stap_t * 1000:8.0f} ms")
            print(f"stap-ls {flag} cold (empty cache)       : {cold_t * 1000:8.0f} ms  "
                  f"= {cold_t / stap_t:.2f}x stap (target <= 3x)")
            print(f"stap-ls {flag} warm (cached index)      : {warm_t * 1000:8.0f} ms  "
                  f"= {warm_t / stap_t:.2f}x stap (target <= 1x)")
            print(f"stap-ls {flag} output identical to stap : {out == stap_out}")

        sys.path.insert(0, str(ROOT))
        os.environ["XDG_CACHE_HOME"] = str(work / "btfcache")
        from stap_ls.targets.model import load_btf
        t = time.perf_counter()
        b = load_btf("/sys/kernel/btf/vmlinux")
        cold_btf = time.perf_counter() - t
        warm = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            b = load_btf("/sys/kernel/btf/vmlinux")
            b.function_params("vfs_read")
            warm.append(time.perf_counter() - t)
        print(f"BTF index cold ({len(b.offsets)} types, {len(b.funcs)} functions): "
              f"{cold_btf * 1000:6.0f} ms")
        print(f"BTF index warm (from cache)         : {statistics.median(warm) * 1000:8.0f} ms "
              f"(target <= 200 ms)")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
