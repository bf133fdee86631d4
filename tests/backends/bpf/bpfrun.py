"""Helpers for the BPF engine tests (imported by name; conftest.py holds fixtures).

Nothing here skips: a missing tool or privilege fails the test with a message
naming what to install or do.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
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


def bpftool(*args: str):
    tool = shutil.which("bpftool") or "/usr/sbin/bpftool"
    if not os.path.exists(tool):
        pytest.fail("bpftool is missing: apt-get install bpftool (scripts/setup.sh)")
    r = subprocess.run([tool, "-j", *args], capture_output=True, text=True, check=True)
    return json.loads(r.stdout or "[]")


def owned_ids(pid: int) -> tuple[set[int], set[int]]:
    """BPF program and link ids held by ``pid``'s file descriptors (its fdinfo)."""
    progs, links = set(), set()
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            text = open(f"/proc/{pid}/fdinfo/{fd}").read()
        except OSError:
            continue
        for line in text.splitlines():
            key, _, val = line.partition(":")
            if key == "prog_id":
                progs.add(int(val))
            elif key == "link_id":
                links.add(int(val))
    return progs, links


def live_ids() -> tuple[set[int], set[int]]:
    return ({p["id"] for p in bpftool("prog", "show")}, {ln["id"] for ln in bpftool("link", "show")})


def assert_released(progs: set[int], links: set[int], wait: float = 10.0) -> None:
    """The kernel dropped these BPF programs and links (within ``wait`` seconds)."""
    deadline = time.monotonic() + wait
    while True:
        live_progs, live_links = live_ids()
        if not (progs & live_progs or links & live_links) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert not progs & live_progs, "BPF programs survived the killed run"
    assert not links & live_links, "BPF links survived the killed run"


def target_steps(n: int) -> list[tuple[int, int, int, int, int]]:
    """What data/target.c computes per iteration ``i``: (i, add3's result,
    classify's result, running total after add3, running total after classify)."""
    out, total = [], 0
    for i in range(1, n + 1):
        r = i + i * 10 * 2 + (-i) * 3
        total += r
        after_add3 = total
        c = (i * 3) % 7
        total += c
        out.append((i, r, c, after_add3, total))
    return out
