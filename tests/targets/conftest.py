"""Fixtures for the target-model tests: test binaries built with gcc -g, the
real stap as the oracle, and a private cache directory."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data" / "targets"
STAP_RELEASE = "6.1.0-56-amd64"


def need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} not found: install the Debian package '{package}' "
                    f"(scripts/setup.sh does)")
    return path


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    d = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(d))
    return d


@pytest.fixture(scope="session")
def bins(tmp_path_factory) -> Path:
    """prog, libshape.so and useshape (linked to libshape) in one directory."""
    gcc = need("gcc", "gcc")
    if not any(Path(p).exists() for p in ("/usr/include/sys/sdt.h",
                                          "/usr/include/x86_64-linux-gnu/sys/sdt.h")):
        pytest.fail("sys/sdt.h missing: install systemtap-sdt-dev")
    d = tmp_path_factory.mktemp("bins")
    cmds = [
        [gcc, "-g", "-O0", "-o", str(d / "prog"), str(DATA / "prog.c")],
        [gcc, "-g", "-O0", "-shared", "-fPIC", "-o", str(d / "libshape.so"), str(DATA / "libshape.c")],
        [gcc, "-g", "-O0", "-o", str(d / "useshape"), str(DATA / "useshape.c"), f"-L{d}",
         "-lshape", f"-Wl,-rpath,{d}"],
        [gcc, "-O0", "-o", str(d / "nodebug"), str(DATA / "useshape.c"), f"-L{d}", "-lshape",
         f"-Wl,-rpath,{d}"],
    ]
    for c in cmds:
        r = subprocess.run(c, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    return d


def run_stap(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    stap = need("stap", "systemtap")
    return subprocess.run([stap, "-r", STAP_RELEASE, *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def run_listing(*args: str, cwd: Path | None = None,
                env: dict | None = None) -> subprocess.CompletedProcess:
    import sys
    root = Path(__file__).resolve().parents[2]
    e = dict(os.environ if env is None else env)
    e["PYTHONPATH"] = str(root) + os.pathsep + e.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "stap_ls.targets.listing", *args],
                          capture_output=True, text=True, cwd=cwd, env=e, timeout=120)
