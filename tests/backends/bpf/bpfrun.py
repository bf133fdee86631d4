"""Helpers for the BPF engine tests (imported by name; conftest.py holds fixtures).

Nothing here skips: a missing tool or privilege fails the test with a message
naming what to install or do.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from dataclasses import dataclass, field

import pytest

from stap_ls.backends.bpf.runtime import RunOptions, run_program, tracefs_root

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "data", "backends", "bpf")


def require_bpf() -> None:
    if os.geteuid() != 0:
        pytest.fail("the BPF engine tests trace the real kernel and must run as root")
    if shutil.which("clang") is None:
        pytest.fail("clang is missing: apt-get install clang libbpf-dev (scripts/setup.sh)")
    if not os.path.exists("/usr/include/bpf/bpf_helpers.h"):
        pytest.fail("libbpf headers are missing: apt-get install libbpf-dev")
    if tracefs_root() is None:
        subprocess.run(["mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing"], check=False)
        if tracefs_root() is None:
            pytest.fail("tracefs is not mounted and cannot be: mount -t tracefs nodev /sys/kernel/tracing")


@dataclass
class Collected:
    code: int | None = None
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    diagnostics: list = field(default_factory=list)
    exits: list[int] = field(default_factory=list)
    handle: object = None


def start(program, options: RunOptions | None = None) -> Collected:
    c = Collected()
    lock = threading.Lock()

    def out(stream: str, line: str) -> None:
        with lock:
            (c.stdout if stream == "stdout" else c.stderr).append(line)

    c.handle = run_program(program, options or RunOptions(), out, c.exits.append, c.diagnostics.append)
    return c


def run(program, options: RunOptions | None = None, action=None, timeout: float = 30.0,
        stop_after_action: bool = True) -> Collected:
    """Run a program; once attached call ``action()``, then stop (SIGINT-like)."""
    c = start(program, options)
    h = c.handle
    assert h.attached.wait(timeout), "the run never got its probes attached"
    if action is not None and not h.finished:
        action()
        if stop_after_action:
            h.stop()
    code = h.wait(timeout)
    assert h.finished, f"the run did not finish within {timeout} s"
    c.code = code
    return c
