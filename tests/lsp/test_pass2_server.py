"""Pass 2 through the real server, in its worker process: diagnostics and
hovers come from the worker, a killed worker is replaced while the server
keeps answering, and no worker outlives the server."""

from __future__ import annotations

import os
import re
import signal
import time

from tests.lsp.rawclient import RawClient

URI = "file:///tmp/pass2-server.stp"
TEXT = ("global total\n"
        "probe syscall.openat { total = \"s\"; total = 1 }\n"
        "probe begin { name = execname(); print(name) }\n")


def alive(pid: int) -> bool:
    """Whether any thread of ``pid`` still runs (a zombie leader whose other
    thread is still exiting holds its files: not gone yet)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return False
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/stat") as fh:
                if not fh.read().rsplit(") ", 1)[1].startswith(("Z", "X")):
                    return True
        except (FileNotFoundError, ProcessLookupError):
            pass
    return False


def wait_gone(pid: int, timeout: float = 10.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if not alive(pid):
            return
        time.sleep(0.05)
    raise AssertionError(f"pass-2 worker {pid} still alive {timeout} s after the server ended")


def worker_pids(c: RawClient) -> list[int]:
    out = []
    for n in list(c.notes):
        if n.get("method") == "window/logMessage":
            m = re.search(r"pass-2 worker started \(pid (\d+)", n["params"]["message"])
            if m:
                out.append(int(m.group(1)))
    return out


def wait_worker(c: RawClient, count: int = 1, timeout: float = 180.0) -> int:
    c.wait_note(lambda n: len(worker_pids(c)) >= count, timeout)
    pid = worker_pids(c)[count - 1]
    assert pid != c.proc.pid and alive(pid)
    return pid


def pass2_diags(c: RawClient, version: int, timeout: float = 180.0) -> list[dict]:
    n = c.wait_note(lambda n: n.get("method") == "textDocument/publishDiagnostics"
                    and n["params"].get("version") == version
                    and any("type mismatch" in d["message"] for d in n["params"]["diagnostics"]),
                    timeout)
    return n["params"]["diagnostics"]


def hover(c: RawClient, line: int, ch: int) -> str:
    r = c.call("textDocument/hover", {"textDocument": {"uri": URI},
                                      "position": {"line": line, "character": ch}})
    assert "error" not in r, r
    return (r.get("result") or {}).get("contents", {}).get("value", "")


def test_pass2_in_worker_hover_restart_and_shutdown(raw_server):
    c = raw_server
    c.open(URI, TEXT)
    pid = wait_worker(c)
    diags = pass2_diags(c, 1)
    assert any(d["range"]["start"]["line"] == 1 for d in diags if "mismatch" in d["message"])
    # a variable's inferred type (pass 2 inferred `name` as string)
    assert "local name:string" in hover(c, 2, 15)
    # a probe alias: its chain down to the concrete points
    h = hover(c, 1, 10)
    assert "alias chain" in h and "syscall.openat (alias, sysc_openat.stp)" in h, h
    assert "kernel.trace(\"raw_syscalls:sys_enter\")" in h, h
    # kill the worker: the server keeps answering, the next edit gets a new one
    os.kill(pid, signal.SIGKILL)
    wait_gone(pid)
    assert "local name:string" in hover(c, 2, 15)   # the version's analysis stands
    c.notify("textDocument/didChange", {
        "textDocument": {"uri": URI, "version": 2},
        "contentChanges": [{"range": {"start": {"line": 0, "character": 12},
                                      "end": {"line": 0, "character": 12}}, "text": "\n"}]})
    pid2 = wait_worker(c, 2)
    assert pid2 != pid
    diags = pass2_diags(c, 2)
    assert any(d["range"]["start"]["line"] == 2 for d in diags if "mismatch" in d["message"])
    assert "local name:string" in hover(c, 3, 15)
    assert c.close() == 0
    wait_gone(pid2)


def test_no_worker_outlives_a_killed_server(raw_server):
    c = raw_server
    c.open(URI, TEXT)
    pid = wait_worker(c)
    pass2_diags(c, 1)
    c.proc.kill()
    c.proc.wait()
    wait_gone(pid)


def test_in_process_switch(raw_server):
    c = RawClient(env={"STAP_LS_PASS2_PROCESS": "0"})
    try:
        c.initialize()
        c.open(URI, TEXT)
        pass2_diags(c, 1)
        assert "local name:string" in hover(c, 2, 15)
        assert worker_pids(c) == []
        assert c.close() == 0
    finally:
        if c.proc.poll() is None:
            c.proc.kill()
            c.proc.wait()
