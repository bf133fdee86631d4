"""Syntax highlighting of vim/syntax/systemtap.vim in real headless Vim and
Neovim: every `//vim` assertion in the shared fixtures of
tests/data/editors/syntax/ must hold (see editors_support for the notation)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from editors_support import DATA, parse_vim_assertions, run_vim

FIXTURES = sorted((DATA / "syntax").glob("*.stp"))


def test_fixtures_exist() -> None:
    assert len(FIXTURES) >= 5
    assert sum(len(parse_vim_assertions(f)) for f in FIXTURES) >= 100


def check(editor: str, fixture: Path) -> None:
    asserts = parse_vim_assertions(fixture)
    assert asserts, f"{fixture.name} has no //vim assertions"
    points = [[a.source_line, c] for a in asserts for c in a.cols]
    script = (
        f"let g:result = {{'ft': &filetype, 'names': []}}\n"
        f"for [s:l, s:c] in {json.dumps(points)}\n"
        "  call add(g:result.names, synIDattr(synID(s:l, s:c, 1), 'name'))\n"
        "endfor\n"
    )
    result = run_vim(editor, fixture, script)
    assert result["ft"] == "systemtap"
    names = iter(result["names"])
    lines = fixture.read_text().split("\n")
    failures = []
    for a in asserts:
        for col in a.cols:
            got = next(names)
            if got not in a.names:
                text = lines[a.source_line - 1]
                failures.append(f"{fixture.name}:{a.assert_line}: line {a.source_line} col {col} "
                                f"({text[col - 1:col + 8]!r}...): expected {'|'.join(a.names)}, "
                                f"got {got or '(none)'}")
    assert not failures, f"{editor}: {len(failures)} wrong\n" + "\n".join(failures)


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.stem)
def test_vim_syntax(fixture: Path) -> None:
    check("vim", fixture)


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.stem)
def test_nvim_syntax(fixture: Path) -> None:
    check("nvim", fixture)


def test_vim_runner_catches_a_wrong_group(tmp_path: Path) -> None:
    bad = tmp_path / "bad.stp"
    bad.write_text('// SYNTAX TEST "source.systemtap" "control"\n'
                   'probe begin { x = "s" }\n'
                   '//vim <----- systemtapString\n')
    with pytest.raises(AssertionError, match="expected systemtapString, got systemtapProbeKeyword"):
        check("vim", bad)
