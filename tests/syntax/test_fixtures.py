"""Data-driven pass-1 fixtures: ``tests/data/syntax/{ok,err}/NAME.stp``.

Each fixture's first line is ``#! stap OPTIONS`` and an optional
``# args: A B`` line gives script arguments.  Beside it ``NAME.expected``
holds, for ``ok/``, the ``-p1`` tree dump (without the ``# file`` line) and,
for ``err/``, what ``stap-ls check`` prints on stderr.  A missing expected
file is written; ``STAP_LS_UPDATE=1`` rewrites them all (review the diff).

Every fixture is also run through the real ``stap -p1``: an ``ok`` expected
file must equal stap's output, and for ``err`` stap must fail too, with the
same ``parse error:`` lines (the first line of each error).
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

from tests.support import oracle
from tests.syntax.conftest import check

DATA = Path(__file__).resolve().parents[1] / "data" / "syntax"
UPDATE = os.environ.get("STAP_LS_UPDATE") == "1"


def fixtures(kind: str) -> list[Path]:
    return sorted((DATA / kind).glob("*.stp"))


def command(path: Path) -> list[str]:
    lines = path.read_text().split("\n")
    words = lines[0][2:].split() if lines[0].startswith("#!") else ["stap", "-p1"]
    assert words and words[0] == "stap", f"{path.name}: first line must be '#! stap OPTIONS'"
    args: list[str] = []
    for line in lines[1:4]:
        if line.startswith("# args:"):
            args = shlex.split(line[len("# args:"):])
    return [*words[1:], path.name, *args]


def compare_expected(path: Path, actual: str) -> None:
    exp = path.with_suffix(".expected")
    if UPDATE or not exp.exists():
        exp.write_text(actual)
    assert actual == exp.read_text(), f"{path.name}: output differs from {exp.name}"


def error_heads(text: str) -> list[str]:
    return [l for l in text.split("\n") if l.startswith("parse error:")]


#: stap's lines about this machine, not about the script
_ENVIRONMENT = ("WARNING: Kernel function symbol table missing", "Tip: ")


def stap_stderr(text: str) -> str:
    return "".join(l for l in text.splitlines(keepends=True) if not l.startswith(_ENVIRONMENT))


@pytest.mark.parametrize("path", fixtures("ok"), ids=lambda p: p.stem)
def test_ok(path, rel, stap):
    argv = command(path)
    res = check(["-r", rel, *argv], cwd=path.parent)
    assert res.rc == 0, res.err
    tree = oracle.strip_file_header(res.out)
    compare_expected(path, tree)
    real = oracle.run([stap, "-r", rel, *argv], cwd=path.parent)
    assert real.returncode == 0, real.stderr
    assert oracle.strip_file_header(real.stdout) == tree, \
        f"{path.name}: expected tree differs from stap -p1's"


@pytest.mark.parametrize("path", fixtures("err"), ids=lambda p: p.stem)
def test_err(path, rel, stap):
    argv = command(path)
    res = check(["-r", rel, *argv], cwd=path.parent)
    assert res.rc == 1, f"{path.name} should fail"
    assert res.out == ""
    compare_expected(path, res.err)
    real = oracle.run([stap, "-r", rel, *argv], cwd=path.parent)
    assert real.returncode != 0
    assert error_heads(res.err) == error_heads(real.stderr)
    assert res.err == stap_stderr(real.stderr), f"{path.name}: stderr differs from stap's"


def test_fixture_sets_are_not_empty():
    assert len(fixtures("ok")) >= 15 and len(fixtures("err")) >= 15
