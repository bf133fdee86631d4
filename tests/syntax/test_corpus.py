"""SystemTap's own parse tests: parseok/ must pass, parseko/ must fail.

``#! stap OPTIONS`` files run in-process (``stap-ls check OPTIONS FILE``);
``#! /bin/sh`` files run as shell scripts with a ``stap`` on PATH that is
``stap-ls check -r RELEASE``.  ``parseok/unparser.stp`` pipes every test
file's ``-p1`` output back into ``-p1 -``; that loop (~1,300 calls) is done
in-process here, with the script's own selection rules, instead of starting
1,300 processes.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.corpus import corpus_files, how_to_run, run_test, shim_dir
from tests.support.oracle import CORPUS
from tests.syntax.conftest import check

EXPECT = {"parseok": 0, "parseko": 1}
IN_PROCESS_SH = {"unparser.stp"}


def _files(kind: str) -> list[Path]:
    return corpus_files(kind)


def _verdict(path: Path, rc: int, detail: str) -> str | None:
    want_ok = path.parent.name == "parseok"
    if (rc == 0) == want_ok:
        return None
    return f"{path.parent.name}/{path.name}: exit {rc}\n{detail[-1500:]}"


@pytest.mark.parametrize("kind", ["parseok", "parseko"])
def test_stap_files(kind, rel):
    bad = []
    n = 0
    for path in _files(kind):
        how, words = how_to_run(path)
        if how != "stap":
            continue
        n += 1
        res = check(["-r", rel, *words, str(path)], cwd=path.parent)
        msg = _verdict(path, res.rc, res.err)
        if msg:
            bad.append(msg)
    assert n > 100 if kind == "parseko" else n > 20
    assert not bad, "\n\n".join(bad)


@pytest.mark.parametrize("kind", ["parseok", "parseko"])
def test_shell_files(kind):
    shim = shim_dir()
    paths = [p for p in _files(kind)
             if how_to_run(p)[0] == "sh" and p.name not in IN_PROCESS_SH]
    assert paths

    def one(p: Path) -> str | None:
        r = run_test(p, shim)
        return _verdict(p, r.returncode, r.stderr)

    with ThreadPoolExecutor(max_workers=2) as ex:
        bad = [m for m in ex.map(one, paths) if m]
    assert not bad, "\n\n".join(bad)


UNPARSER_DIRS = ["parseok", "semok", "semko", "transok", "transko", "buildok", "buildko"]


def test_unparser_roundtrip(rel):
    """parseok/unparser.stp: ``stap $guru -p1 FILE | stap $guru -p1 -`` for
    every test file whose first line mentions stap (guru when the first line
    has a 'g'); the re-parse must succeed (the script runs under set -e and a
    pipeline's status is its last command's)."""
    script = (CORPUS / "parseok" / "unparser.stp").read_text()
    for d in UNPARSER_DIRS:
        assert f"testsuite/{d}" in script, f"unparser.stp no longer reads {d}"
    bad = []
    count = 0
    for d in UNPARSER_DIRS:
        if not (CORPUS / d).is_dir():
            continue
        for path in sorted((CORPUS / d).glob("*.stp")):
            first = path.read_text(errors="replace").split("\n", 1)[0]
            if "stap" not in first:
                continue
            guru = ["-g"] if "g" in first else []
            count += 1
            printed = check(["-r", rel, *guru, "-p1", str(path)], cwd=path.parent)
            again = check(["-r", rel, *guru, "-p1", "-"], cwd=path.parent, stdin=printed.out)
            if again.rc != 0:
                bad.append(f"{d}/{path.name}: re-parse of its -p1 output failed\n"
                           f"{again.err[-800:]}")
    assert count > 500
    assert not bad, "\n\n".join(bad[:20]) + f"\n({len(bad)} files)"
