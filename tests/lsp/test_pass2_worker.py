"""The pass-2 worker process (stap_ls.lsp.pass2proc) on its own: its answers
equal the in-process summary, superseded requests are dropped, a killed or
hung worker is replaced, and the summary survives pickling."""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import time

import pytest

from stap_ls.ide.analysis import DeclCache, analyze
from stap_ls.ide.config import Settings
from stap_ls.lsp.pass2proc import Pass2Process

SCRIPTS = {
    "/tmp/p2w-types.stp": "global g\nfunction f(a) { return a . \"x\" }\n"
                          "probe begin { g = f(\"s\"); g = 1 }\n",
    "/tmp/p2w-alias.stp": "probe syscall.openat { printf(\"%s %s\\n\", execname(), filename) }\n"
                          "probe kernel.function(\"vfs_read\") { if ($count > 1) print($count) }\n",
    "/tmp/p2w-errors.stp": "probe begin { print(execnam()); x = 1 }\nprobe timer.ms(0) {}\n",
}


@pytest.fixture(scope="module")
def env():
    from stap_ls.ide.analysis import full_environment
    return full_environment(Settings())


@pytest.fixture()
def worker():
    w = Pass2Process(Settings(), timeout=60.0)
    yield w
    pid = w.pid
    w.stop()
    if pid is not None:
        _gone(pid)


def _gone(pid: int, timeout: float = 10.0) -> None:
    """Wait until ``pid`` is reaped (its parent, the fork server, reaps it).
    A zombie leader is not enough: another thread may still hold its files."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if not os.path.exists(f"/proc/{pid}"):
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still alive after {timeout} s")


def fields(summary) -> dict:
    d = dict(vars(summary))
    assert d, "empty summary"
    return d


def run(coro):
    return asyncio.run(coro)


def test_worker_answers_equal_in_process_summaries(env, worker):
    async def go():
        return [await worker.elaborate("file://" + n, n, t, 1) for n, t in SCRIPTS.items()]
    replies = run(go())
    for (name, text), reply in zip(SCRIPTS.items(), replies):
        assert reply.status == "done", reply
        local = analyze("file://" + name, name, text, 1, env, DeclCache(), with_pass2=True)
        assert local.elab is not None and local.elab.summary is not None, local.elab
        assert reply.elab.summary is not None, reply.elab.note
        assert fields(reply.elab.summary) == fields(local.elab.summary), name
    types = replies[0].elab.summary
    assert types.globals.get("g") in ("long", "string")
    assert types.returns.get("f") == "string"
    assert any("type mismatch" in d.message for d in types.diagnostics)
    alias = replies[1].elab.summary
    assert alias.probes and all(p.decl_start == 0 for p in alias.probes[:1])
    assert any("syscall.openat" in p.display for p in alias.probes)
    errs = replies[2].elab.summary
    assert any("execname" in d.message or "unresolved" in d.message for d in errs.diagnostics)


def test_summary_pickles_and_rebuilds_spans(env):
    name, text = "/tmp/p2w-types.stp", SCRIPTS["/tmp/p2w-types.stp"]
    a = analyze("file://" + name, name, text, 1, env, DeclCache(), with_pass2=True)
    s = pickle.loads(pickle.dumps(a.elab.summary))
    assert fields(s) == fields(a.elab.summary)
    diags = s.diagnostics_for(a.source)
    assert diags and all(d.span is None or d.span.source is a.source for d in diags)
    mism = [d for d in diags if "type mismatch" in d.message][0]
    assert text[mism.span.start:mism.span.end] in ("g", "1", "\"s\"", "f")
    assert len(pickle.dumps(s)) < 200_000


def test_superseded_request_is_dropped(worker):
    big = "\n".join(f"probe timer.ms({i + 1}) {{ printf(\"%d\\n\", {i}) }}" for i in range(300))

    async def go():
        first = asyncio.ensure_future(worker.elaborate("file:///a.stp", "/tmp/a.stp", big, 1))
        await asyncio.sleep(0)
        old = asyncio.ensure_future(worker.elaborate("file:///b.stp", "/tmp/b.stp",
                                                     "probe begin { x = 1 }", 1))
        new = asyncio.ensure_future(worker.elaborate("file:///b.stp", "/tmp/b.stp",
                                                     "probe begin { x = \"s\" }", 2))
        return await asyncio.gather(first, old, new)
    first, old, new = run(go())
    assert first.status == "done"
    assert old.status == "superseded"
    assert new.status == "done" and new.elab.summary is not None


def test_killed_worker_is_restarted(worker):
    async def once(v: int):
        return await worker.elaborate("file:///k.stp", "/tmp/k.stp", "probe begin { x = 1 }", v)
    assert run(once(1)).status == "done"
    pid = worker.pid
    os.kill(pid, signal.SIGKILL)
    _gone(pid)
    r = run(once(2))
    assert r.status == "done", r
    assert worker.pid != pid and worker.starts == 2


def test_hung_worker_times_out_and_is_replaced():
    w = Pass2Process(Settings(), timeout=60.0)
    try:
        async def once(v: int):
            return await w.elaborate("file:///h.stp", "/tmp/h.stp", "probe begin { x = 1 }", v)
        assert run(once(1)).status == "done"
        pid = w.pid
        w.timeout = 2.0           # a stopped worker never answers
        os.kill(pid, signal.SIGSTOP)
        t0 = time.monotonic()
        r = run(once(2))
        assert r.status == "failed" and "did not answer" in r.note, r
        assert time.monotonic() - t0 < 10
        _gone(pid)
        w.timeout = 60.0
        r = run(once(3))
        assert r.status == "done" and w.pid != pid, r
    finally:
        p = w.pid
        w.stop()
        if p is not None:
            _gone(p)
