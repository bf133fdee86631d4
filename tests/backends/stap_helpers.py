"""Helpers for the run-engine tests: /proc scanning (no psutil), waiting, and
the real stap as an oracle."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent.parent / "data" / "backends"


def need_stap() -> str:
    path = shutil.which("stap")
    if path is None:
        pytest.fail("these tests need SystemTap: apt install systemtap "
                    "(scripts/setup.sh installs it)")
    return path


def proc_table() -> list[dict]:
    """Every process: pid, ppid, pgid, sid, state, comm (no psutil)."""
    rows = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text(errors="replace")
        except OSError:
            continue
        comm = stat[stat.find("(") + 1: stat.rfind(")")]
        f = stat[stat.rfind(")") + 2:].split()
        rows.append({"pid": int(name), "state": f[0], "ppid": int(f[1]), "pgid": int(f[2]),
                     "sid": int(f[3]), "comm": comm})
    return rows


def session_members(sid: int) -> list[dict]:
    return [p for p in proc_table() if p["sid"] == sid or p["pgid"] == sid]


def wait_for(pred, timeout: float, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def stap_ls_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "stap_ls", *args]


def run_stap(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """The real stap, directly: the oracle."""
    return subprocess.run([need_stap(), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)
