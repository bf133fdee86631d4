"""Fixtures for the BPF engine tests (real tracing, as root); helpers live in bpfrun.py."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from bpfrun import DATA, require_bpf


@pytest.fixture(scope="session")
def bpf_ready() -> None:
    require_bpf()


@pytest.fixture(scope="session")
def target_binary(tmp_path_factory, bpf_ready) -> str:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.fail("gcc is missing: apt-get install gcc")
    if subprocess.run([gcc, "-E", "-include", "sys/sdt.h", "-x", "c", "/dev/null"],
                      capture_output=True).returncode != 0:
        pytest.fail("sys/sdt.h is missing: apt-get install systemtap-sdt-dev")
    out = str(tmp_path_factory.mktemp("bin") / "stp_target")
    subprocess.run([gcc, "-g", "-O1", "-o", out, os.path.join(DATA, "target.c")], check=True)
    return out
