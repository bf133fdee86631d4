"""Fixtures for the run-engine tests: the real stap and a kernel release stap
accepts with -r (the first with a build tree)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stap_helpers import DATA, need_stap


@pytest.fixture(scope="session")
def stap() -> str:
    return need_stap()


@pytest.fixture(scope="session")
def release(stap: str) -> str:
    """A kernel release with a build tree (stap needs one for -r)."""
    trees = sorted(r for r in os.listdir("/lib/modules")
                   if os.path.exists(f"/lib/modules/{r}/build/.config")) \
        if os.path.isdir("/lib/modules") else []
    if not trees:
        pytest.fail("no kernel build tree under /lib/modules: "
                    "apt install linux-headers-amd64 (scripts/setup.sh installs it)")
    return trees[-1]


@pytest.fixture
def data() -> Path:
    return DATA
