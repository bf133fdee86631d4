"""Filetype detection, indentation, the ftplugin settings and the compiler's
errorformat of vim/, in real headless Vim and Neovim with only our runtime
path added."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from editors_support import DATA, run_vim

EDITORS = ["vim", "nvim"]


@pytest.mark.parametrize("editor", EDITORS)
@pytest.mark.parametrize("name,first_line,expected", [
    ("script.stp", "probe begin { exit() }", "systemtap"),
    ("library.stpm", "@define twice(x) %( (@x * 2) %)", "systemtap"),
    ("noext", "#!/usr/bin/stap", "systemtap"),
    ("noext_env", "#!/usr/bin/env stap", "systemtap"),
    ("noext_args", "#! /usr/local/bin/stap -g -v", "systemtap"),
    ("plain.sh", "#!/bin/sh", "sh"),
    ("stapper", "#!/usr/bin/stapler", None),
])
def test_filetype(editor: str, name: str, first_line: str, expected: str | None,
                  tmp_path: Path) -> None:
    f = tmp_path / name
    f.write_text(first_line + "\nprobe end {}\n")
    result = run_vim(editor, f, "let g:result = [&filetype, get(b:, 'current_syntax', '')]")
    if expected is None:
        assert result[0] != "systemtap"
    else:
        assert result[0] == expected
    if expected == "systemtap":
        # our syntax, not Neovim's syntax/stp.vim (Stored Procedures)
        assert result[1] == "systemtap"


@pytest.mark.parametrize("editor", EDITORS)
def test_without_our_runtime_stp_is_not_systemtap(editor: str, tmp_path: Path) -> None:
    """The control: Vim alone calls *.stp "stp", so our detection is what wins."""
    f = tmp_path / "x.stp"
    f.write_text("probe begin {}\n")
    cmd = (["vim", "-Nu", "NONE", "-i", "NONE", "-es", "-c", "filetype on"]
           if editor == "vim" else ["nvim", "--headless", "--clean"])
    out = tmp_path / "ft.txt"
    subprocess.run(cmd + ["-c", f"edit {f}", "-c", f"call writefile([&ft], '{out}')",
                          "-c", "qa!"], stdin=subprocess.DEVNULL, capture_output=True,
                   timeout=60)
    assert out.read_text().strip() == "stp"


@pytest.mark.parametrize("editor", EDITORS)
def test_indent_fixture_unchanged(editor: str, tmp_path: Path) -> None:
    fixture = DATA / "indent" / "indent.stp"
    want = fixture.read_text().split("\n")
    for variant, text in [("as-is", fixture.read_text()),
                          ("flattened", "\n".join(l.lstrip() for l in want))]:
        f = tmp_path / f"{variant}.stp"
        f.write_text(text)
        got = run_vim(editor, f, "setlocal shiftwidth=4 expandtab\nnormal! gg=G\n"
                                 "let g:result = getline(1, '$')")
        diffs = [f"line {i}: want {w!r} got {g!r}"
                 for i, (w, g) in enumerate(zip(want, got), start=1) if w != g]
        assert not diffs, f"{editor} {variant}:\n" + "\n".join(diffs)


@pytest.mark.parametrize("editor", EDITORS)
def test_ftplugin_settings(editor: str, tmp_path: Path) -> None:
    f = tmp_path / "x.stp"
    f.write_text("probe begin {\n}\n")
    r = run_vim(editor, f, "let g:result = {'cms': &commentstring, 'com': &comments,"
                           " 'mps': &matchpairs, 'mw': b:match_words, 'kp': &keywordprg,"
                           " 'mp': &makeprg, 'indentexpr': &indentexpr,"
                           " 'undo': exists('b:undo_ftplugin')}")
    assert r["cms"] == "// %s"
    for part in ("s1:/*", "ex:*/", "://", ":#"):
        assert part in r["com"].split(",")
    assert {"(:)", "{:}", "[:]"} <= set(r["mps"].split(","))
    assert "%(:%?:%\\::%)" in r["mw"] and "%{:%}" in r["mw"]
    assert r["kp"] == ":SystemtapDoc"
    assert r["mp"].startswith("stap-ls check -p2")
    assert r["indentexpr"].startswith("GetSystemtapIndent")
    assert r["undo"] == 1


def test_matchit_jumps_between_preprocessor_parts(tmp_path: Path) -> None:
    """`%` on `%(` goes to `%?`, then `%:`, then `%)` (Neovim ships matchit)."""
    f = tmp_path / "m.stp"
    f.write_text('%( arch == "x86_64" %?\nglobal a\n%:\nglobal b\n%)\n')
    r = run_vim("nvim", f, "packadd matchit\nedit!\ncall cursor(1, 1)\nlet g:result = []\n"
                           "for s:i in range(4)\n  normal %\n"
                           "  call add(g:result, [line('.'), col('.')])\nendfor")
    assert r == [[1, 21], [3, 1], [5, 1], [1, 1]]


def test_keywordprg_finds_tapset_man_pages(tmp_path: Path) -> None:
    if shutil.which("man") is None:
        raise AssertionError("man is not installed: run scripts/setup.sh (installs man-db)")
    f = tmp_path / "k.stp"
    f.write_text("probe vfs.read { println(execname()) }\n")
    r = run_vim("vim", f, "let g:result = [SystemtapDocPage('execname'),"
                          " SystemtapDocPage('no_such_function_xyz')]")
    assert r == ["function::execname", ""], \
        "tapset man pages missing: install systemtap-doc (scripts/setup.sh)"


SAMPLE = [
    "WARNING: Kernel function symbol table missing [man warning::symbols]",
    "a.stp:3:5: error: unresolved function foo [E201]",
    "dir/b.stp:10:1: warning: eliding unused variable 'x' [W301]",
    "semantic error: unresolved function foo (similar: log): identifier 'foo' at e1.stp:2:7",
    "        source:   x = foo(1)",
    "                      ^",
    "",
    "Pass 2: analysis failed.  [man error::pass2]",
    "parse error: expected literal string or number",
    "        saw: operator '=' at e2.stp:2:7",
    "     source:   x = = 1",
    "                   ^",
    "1 parse error.",
    "semantic error: while resolving probe point: identifier 'kernel' at c.stp:1:7",
    "        at: kernel.function(\"nope\") at c.stp:1:7",
]


@pytest.mark.parametrize("editor", EDITORS)
def test_errorformat_fills_quickfix(editor: str, tmp_path: Path) -> None:
    f = tmp_path / "a.stp"
    f.write_text("probe begin {}\n")
    lines = ", ".join("'" + s.replace("'", "''") + "'" for s in SAMPLE)
    # :cgetexpr reads the global 'errorformat'; :make reads the buffer's
    r = run_vim(editor, f, f"compiler stap_ls\nlet &g:errorformat = &l:errorformat\n"
                           f"cgetexpr [{lines}]\n"
                           "let g:result = map(getqflist(), '[bufname(v:val.bufnr), v:val.lnum,"
                           " v:val.col, v:val.type, v:val.text, v:val.valid]')")
    assert r == [
        ["a.stp", 3, 5, "e", "unresolved function foo [E201]", 1],
        ["dir/b.stp", 10, 1, "w", "eliding unused variable 'x' [W301]", 1],
        ["e1.stp", 2, 7, "e", "unresolved function foo (similar: log): identifier 'foo'", 1],
        ["e2.stp", 2, 7, "e", "expected literal string or number", 1],
        ["c.stp", 1, 7, "e", "while resolving probe point: identifier 'kernel'", 1],
    ]


def test_make_runs_stap_ls_check(tmp_path: Path) -> None:
    """`:make` runs the configured command with `check -p2 FILE`; a stand-in
    command (g:stap_ls_command) that prints the file's own diagnostic shows the
    command line and that the output reaches the quickfix list."""
    tool = tmp_path / "fake-stap-ls"
    tool.write_text("#!/bin/sh\necho \"$3:2:3: error: args were $* [E1]\"\nexit 1\n")
    tool.chmod(0o755)
    f = tmp_path / "s.stp"
    f.write_text("probe begin {\n  x = \n}\n")
    r = run_vim("vim", f, f"let g:stap_ls_command = '{tool}'\n"
                          "compiler stap_ls\nsilent make!\n"
                          "let g:result = map(getqflist(), '[v:val.lnum, v:val.col, v:val.text]')")
    assert r == [[2, 3, f"args were check -p2 {f} [E1]"]]
