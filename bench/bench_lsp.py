"""Language-server speed on a 1,000-line script, measured through the real
server on stdio (``python -m stap_ls serve``).

Prints completion latency (p50/p95) in several contexts, hover latency,
re-check latency after a one-character edit (edit sent -> diagnostics for that
version published, which includes the server's debounce; and the analysis
alone, in process), time from start to the first diagnostics with warm and
with cold caches, in process and through a warm ``serve --daemon`` (a private
daemon directory; the daemon is ended afterwards), the latency the daemon's
relay adds to completion, the load average, and the server's resident memory.

    .venv/bin/python bench/bench_lsp.py [--rounds N] [--only-start]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.lsp.rawclient import RawClient  # noqa: E402

URI = "file:///tmp/bench-lsp.stp"


def script(lines: int = 1000) -> str:
    out = ["global counts, totals, names"]
    i = 0
    while len(out) < lines - 8:
        out += [f"function helper{i}:long(a:long, b:long) {{",
                f"  x = a * {i} + b",
                "  return x",
                "}",
                f"probe syscall.open{'at' if i % 2 else ''} {{",
                f"  counts[execname()] <<< {i}",
                "  names[pid()] = filename",
                f"  totals += helper{i}(1, 2)",
                "}",
                "probe kernel.function(\"vfs_read\") {",
                "  if ($count > 4096) printf(\"%s %d\\n\", execname(), $count)",
                "}",
                f"probe timer.ms({100 + i}) {{",
                "  foreach (k in counts) printf(\"%s %d\\n\", k, @count(counts[k]))",
                "}"]
        i += 1
    out += ["probe end {", "  print(totals)", "}"]
    return "\n".join(out[:lines]) + "\n"


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def first_diagnostics(env: dict | None, args: list[str] | None = None,
                      expect_mode: str | None = None) -> float:
    t0 = time.perf_counter()
    c = RawClient(env=env, args=args)
    try:
        c.initialize()
        c.open(URI, script())
        c.wait_note(lambda n: n["method"] == "textDocument/publishDiagnostics", timeout=120)
        took = time.perf_counter() - t0
        if expect_mode is not None:
            mode = c.call("stap-ls/serverInfo", {})["result"]["mode"]
            assert mode == expect_mode, f"served {mode}, not {expect_mode}"
        return took
    finally:
        c.close()


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def wait_daemon(d: str, timeout: float = 300.0) -> int:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        for p in Path(d).glob("*.sock.pid"):
            if Path(str(p)[:-len(".pid")]).exists():
                return int(p.read_text())
        time.sleep(0.2)
    logs = "".join(p.read_text()[-2000:] for p in Path(d).glob("*.log"))
    raise SystemExit(f"no daemon in {d} after {timeout} s; its log ends:\n{logs}")


def completion_latency(c: RawClient, line: int, ch: int, rounds: int) -> list[float]:
    xs = []
    for _ in range(rounds):
        t = time.perf_counter()
        r = c.call("textDocument/completion", {"textDocument": {"uri": URI},
                                               "position": {"line": line, "character": ch}})
        xs.append(time.perf_counter() - t)
        assert r["result"]["items"], r
    return xs


def daemon_figures(rounds: int) -> None:
    """Start -> first diagnostics through a warm daemon; the relay's added latency."""
    text = script()
    lines = text.split("\n")
    body = next(i for i, ln in enumerate(lines) if "totals += helper" in ln)
    with tempfile.TemporaryDirectory(prefix="sd", dir="/tmp") as d:
        # the version hash normally covers stap_ls's files; pin it to a file of ours
        # so that edits to the tree during the run do not retire the daemon
        Path(d, "src").mkdir()
        Path(d, "src", "version").write_text("bench\n")
        env = {"STAP_LS_DAEMON_DIR": d, "STAP_LS_DAEMON_SOURCE": os.path.join(d, "src")}
        pid = 0
        try:
            first = first_diagnostics(env, ["--daemon"], "in-process")
            pid = wait_daemon(d)
            runs = [first_diagnostics(env, ["--daemon"], "daemon-child") for _ in range(3)]
            print(f"start -> first diagnostics via the warm daemon (serve --daemon): "
                  f"{min(runs) * 1000:.0f} ms (best of {len(runs)}; all "
                  f"{', '.join(f'{w * 1000:.0f}' for w in runs)}); the first session "
                  f"(in process, starting the daemon) {first * 1000:.0f} ms; load {load()}")
            # the relay's cost: the same requests to an in-process server and a daemon
            # child, interleaved so both see the same (shared, changing) load
            clients = {"in process": RawClient(env=env), "daemon child": RawClient(
                env=env, args=["--daemon"])}
            for c in clients.values():
                c.initialize()
                c.open(URI, text)
            for c in clients.values():
                t0 = time.perf_counter()
                while not any(i["label"] == "totals" for i in c.call(
                        "textDocument/completion", {"textDocument": {"uri": URI}, "position": {
                            "line": body, "character": 5}})["result"]["items"]):
                    if time.perf_counter() - t0 > 120:
                        raise SystemExit("library never loaded")
                    time.sleep(0.1)
            time.sleep(1.0)
            comp = {k: [] for k in clients}
            info = {k: [] for k in clients}
            for _ in range(rounds):
                for k, c in clients.items():
                    comp[k] += completion_latency(c, body, len("  tot"), 1)
                    t = time.perf_counter()
                    c.call("stap-ls/serverInfo", {})
                    info[k].append(time.perf_counter() - t)
            for c in clients.values():
                c.close()
            for what, out in (("completion (tot|)", comp), ("stap-ls/serverInfo", info)):
                for name, xs in out.items():
                    print(f"  {what:18s} {name:13s} p50 {pct(xs, 50) * 1000:6.2f} ms   "
                          f"p95 {pct(xs, 95) * 1000:6.2f} ms")
                a, b = out["in process"], out["daemon child"]
                print(f"  {what:18s} relay adds    p50 {(pct(b, 50) - pct(a, 50)) * 1000:+6.2f} ms"
                      f"   p95 {(pct(b, 95) - pct(a, 95)) * 1000:+6.2f} ms  ({rounds} rounds, "
                      f"load {load()})")
        finally:
            if pid:
                os.kill(pid, signal.SIGTERM)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--only-start", action="store_true",
                    help="only the start-up figures (in process and via the daemon)")
    args = ap.parse_args()
    text = script()
    lines = text.split("\n")
    print(f"script: {len(lines) - 1} lines, {len(text)} chars; load average {load()}")

    # start to first diagnostics: warm caches (the user's), then cold (empty cache dir)
    warm = [first_diagnostics(None) for _ in range(3)]
    with tempfile.TemporaryDirectory() as d:
        cold = first_diagnostics({"XDG_CACHE_HOME": d})
    print(f"start -> first diagnostics: warm {min(warm) * 1000:.0f} ms "
          f"(best of 3; all {', '.join(f'{w * 1000:.0f}' for w in warm)}), "
          f"cold {cold * 1000:.0f} ms")
    daemon_figures(args.rounds)
    if args.only_start:
        return 0

    c = RawClient()
    c.initialize()
    c.open(URI, text)
    # wait until the library is loaded: an alias completion answers
    t0 = time.perf_counter()
    probe_line = next(i for i, ln in enumerate(lines) if ln.startswith("probe syscall"))

    def comp(line: int, ch: int) -> tuple[float, dict]:
        t = time.perf_counter()
        r = c.call("textDocument/completion", {"textDocument": {"uri": URI},
                                               "position": {"line": line, "character": ch}})
        return time.perf_counter() - t, r

    while True:
        _, r = comp(probe_line, len("probe sys"))
        if any(i["label"] == "syscall" for i in r["result"]["items"]):
            break
        if time.perf_counter() - t0 > 120:
            print("library never loaded")
            return 1
        time.sleep(0.1)
    print(f"library loaded {time.perf_counter() - t0:.2f} s after open")
    time.sleep(2.0)   # let pass 2 of the open document finish

    vfs = next(i for i, ln in enumerate(lines) if "$count > 4096" in ln)
    body = next(i for i, ln in enumerate(lines) if "totals += helper" in ln)
    contexts = {
        "probe point (probe sys|)": (probe_line, len("probe sys")),
        "alias sub-point (probe syscall.op|)": (probe_line, len("probe syscall.op")),
        "identifier in body (tot|)": (body, len("  tot")),
        "target variable ($|)": (vfs, lines[vfs].index("$count") + 1),
        "member (@cast..->|)": None,
        "kernel function arg (\"vfs_re|)": None,
    }
    results: dict[str, list[float]] = {}
    for name, pos in contexts.items():
        if pos is None:
            continue
        xs = []
        for _ in range(args.rounds):
            dt, r = comp(*pos)
            assert "result" in r, r
            xs.append(dt)
        results[name] = xs
    # contexts that need an edit: put them at the end of the document
    extra = {"member (@cast..->|)": "probe begin { x = @cast(0, \"struct file\")->f_",
             "kernel function arg (\"vfs_re|)": "probe kernel.function(\"vfs_re"}
    version = 1
    for name, line_text in extra.items():
        version += 1
        n = len(lines) - 1
        c.notify("textDocument/didChange", {
            "textDocument": {"uri": URI, "version": version},
            "contentChanges": [{"range": {"start": {"line": n, "character": 0},
                                          "end": {"line": n, "character": 0}},
                                "text": line_text}]})
        xs = []
        for _ in range(args.rounds):
            dt, r = comp(n, len(line_text))
            assert r["result"]["items"], (name, r)
            xs.append(dt)
        results[name] = xs
        version += 1
        c.notify("textDocument/didChange", {
            "textDocument": {"uri": URI, "version": version},
            "contentChanges": [{"range": {"start": {"line": n, "character": 0},
                                          "end": {"line": n, "character": len(line_text)}},
                                "text": ""}]})
    print("completion latency (request -> response over stdio):")
    allx = []
    for name, xs in results.items():
        allx += xs
        print(f"  {name:38s} p50 {pct(xs, 50) * 1000:6.1f} ms   p95 {pct(xs, 95) * 1000:6.1f} ms")
    print(f"  {'all contexts':38s} p50 {pct(allx, 50) * 1000:6.1f} ms   "
          f"p95 {pct(allx, 95) * 1000:6.1f} ms")

    hx = []
    hov_line = body
    for _ in range(args.rounds):
        t = time.perf_counter()
        r = c.call("textDocument/hover", {"textDocument": {"uri": URI},
                                          "position": {"line": hov_line,
                                                       "character": lines[hov_line].index("helper") + 2}})
        hx.append(time.perf_counter() - t)
        assert r.get("result"), r
    print(f"hover latency: p50 {pct(hx, 50) * 1000:.1f} ms  p95 {pct(hx, 95) * 1000:.1f} ms")

    # re-check after a one-character edit: didChange -> publishDiagnostics(version)
    rx = []
    mid = len(lines) // 2
    for k in range(args.rounds // 2):
        version += 1
        ch = "x" if k % 2 == 0 else ""
        rng = {"start": {"line": mid, "character": 2}, "end": {"line": mid,
                                                               "character": 2 + (k % 2)}}
        c.notes.clear()
        t = time.perf_counter()
        c.notify("textDocument/didChange", {"textDocument": {"uri": URI, "version": version},
                                            "contentChanges": [{"range": rng, "text": ch}]})
        v = version
        c.wait_note(lambda n: n["method"] == "textDocument/publishDiagnostics"
                    and n["params"].get("version") == v)
        rx.append(time.perf_counter() - t)
        time.sleep(0.05)
    from stap_ls.lsp.server import DEBOUNCE
    print(f"re-check after a 1-char edit (edit -> pass-1 diagnostics published, incl. "
          f"{DEBOUNCE * 1000:.0f} ms debounce): p50 {pct(rx, 50) * 1000:.1f} ms  "
          f"p95 {pct(rx, 95) * 1000:.1f} ms")
    print(f"server resident memory: {rss_mb(c.proc.pid):.0f} MB")
    c.close()

    # the analysis alone, in process (pass 1 incremental; pass 2 separately)
    from stap_ls.ide.analysis import DeclCache, analyze, full_environment, with_pass2
    from stap_ls.ide.config import Settings
    env = full_environment(Settings())
    cache = DeclCache()
    analyze("u", "/tmp/b.stp", text, 1, env, cache, with_pass2=False)
    ax, p2 = [], []
    for k in range(args.rounds):
        pos = text.index("\n", len(text) // 2) + 3
        t2 = text[:pos] + ("x" if k % 2 == 0 else "") + text[pos:]
        t = time.perf_counter()
        a = analyze("u", "/tmp/b.stp", t2, k + 2, env, cache, with_pass2=False)
        ax.append(time.perf_counter() - t)
        if k < 5:
            t = time.perf_counter()
            b = with_pass2(a)
            p2.append(time.perf_counter() - t)
            note = b.elab.note if b.elab else "no pass 2"
    print(f"analysis after a 1-char edit, in process: pass 1 p50 {pct(ax, 50) * 1000:.1f} ms "
          f"p95 {pct(ax, 95) * 1000:.1f} ms ({cache.reused} declarations reused, "
          f"{cache.parsed} parsed); pass 2 (whole program) p50 {pct(p2, 50) * 1000:.0f} ms"
          + (f" [{note}]" if note else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
