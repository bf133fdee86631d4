"""Helpers for the script-level BPF engine tests: run real stap scripts through
``runs.start_run`` (in process) or ``stap-ls run --engine=bpf`` (a subprocess).

Nothing here skips: a missing tool or privilege fails with what to install.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from stap_ls.backends.runs import RunEvents, RunRequest, start_run

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
SCRIPTS = os.path.join(ROOT, "tests", "data", "backends", "bpf", "scripts")


@dataclass
class ScriptRun:
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    diagnostics: list = field(default_factory=list)
    progress: list[tuple[int, str]] = field(default_factory=list)
    running: threading.Event = field(default_factory=threading.Event)
    run: object = None
    code: int | None = None


def start_script(text: str | None = None, path: str | None = None, args: list[str] | None = None,
                 stap_args: list[str] | None = None) -> ScriptRun:
    """Start a script on the bpf engine through the engine-neutral run API."""
    sr = ScriptRun()
    lock = threading.Lock()

    def on_progress(n: int, state: str, _s: float | None) -> None:
        sr.progress.append((n, state))
        if state == "running":
            sr.running.set()

    def on_output(stream: str, line: str) -> None:
        with lock:
            (sr.stdout if stream == "stdout" else sr.stderr).append(line)

    req = RunRequest(script_path=path, script_text=text, stap_args=list(stap_args or []),
                     script_args=list(args or []), engine="bpf")
    sr.run = start_run(req, RunEvents(on_progress, on_output, sr.diagnostics.append))
    return sr


def finish(sr: ScriptRun, timeout: float = 60.0) -> ScriptRun:
    res = sr.run.wait(timeout)
    if res is None:
        sr.run.stop()
        res = sr.run.wait(10)
    assert res is not None, "the run did not finish"
    sr.code = res.exit_code
    return sr


def run_script(text: str | None = None, path: str | None = None, action=None,
               timeout: float = 60.0, **kw) -> ScriptRun:
    """Run to completion; with ``action``, call it once the script runs, then stop."""
    sr = start_script(text, path, **kw)
    if action is not None:
        deadline = time.monotonic() + timeout
        while not sr.running.wait(0.1):
            assert not sr.run.finished, (sr.diagnostics, sr.stderr)
            assert time.monotonic() < deadline, "the script never started running"
        action()
        sr.run.stop()
    return finish(sr, timeout)


def cli(args: list[str], timeout: float = 60.0, **kw) -> subprocess.CompletedProcess:
    """``stap-ls run ARGS`` as a subprocess of this interpreter."""
    return subprocess.run([sys.executable, "-m", "stap_ls", "run", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, **kw)


def cli_popen(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "stap_ls", "run", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
