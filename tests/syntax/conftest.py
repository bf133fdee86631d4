"""Shared helpers for the pass-1 tests: ``stap-ls check`` run in-process.

The tapset library is loaded once per process (``load_library`` memoises it),
so calling :func:`check` hundreds of times costs a parse of the user script
each, not a library load.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

import pytest

from stap_ls.cli import check as check_cli
from tests.support import oracle


@dataclass
class Outcome:
    rc: int
    out: str
    err: str


def check(argv: list[str], cwd: str | os.PathLike | None = None, stdin: str = "") -> Outcome:
    """``stap-ls check ARGV`` in this process (stdout, stderr captured)."""
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        rc = check_cli.main(list(argv), out, err, io.StringIO(stdin))
    finally:
        os.chdir(old)
    return Outcome(rc, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def rel() -> str:
    return oracle.release()


@pytest.fixture(scope="session")
def stap() -> str:
    return oracle.stap_path()
