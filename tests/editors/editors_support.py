"""Helpers for the editor-package tests: locating tools, running headless Vim
and Neovim with only this repository's runtime files added, and reading the
`//vim` syntax assertions out of the shared syntax fixtures.

The syntax fixtures in tests/data/editors/syntax/ are vscode-tmgrammar-test
files (header `// SYNTAX TEST "source.systemtap"`, assertion lines `// ^^^ scope`
and `// <--- scope`).  The same files carry Vim assertions in the same notation
behind `//vim`: `//vim ^^^ systemtapString` says that every column under a caret
of the last source line has the syntax item `systemtapString`
(`synIDattr(synID(line, col, 1), "name")`); `//vim <~~--- NAME` names columns
2-4 (tildes skip columns, dashes mark them).  Several names separated by `|`
accept any of them.  tmgrammar-test reads `//vim` lines as ordinary source
(comments), so they follow the tm assertions of a line.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VIM_RTP = ROOT / "vim"
DATA = ROOT / "tests" / "data" / "editors"
EXT = ROOT / "vscode-ext"

TM_ASSERT = re.compile(r"^//\s*(\^|<~*-)")
VIM_ASSERT = re.compile(r"^//vim(\s+)(.*)$")


def require(tool: str, package: str) -> str:
    """The path of `tool`, or a test failure saying what to install."""
    path = shutil.which(tool)
    if path is None:
        raise AssertionError(f"{tool} is not installed: run scripts/setup.sh "
                             f"(it installs {package})")
    return path


@dataclass(frozen=True)
class VimAssertion:
    """Columns (1-based) of one source line that must carry one of `names`."""
    fixture: str
    assert_line: int      # line of the //vim line in the fixture (1-based)
    source_line: int      # line it checks (1-based)
    cols: tuple[int, ...]
    names: tuple[str, ...]


def parse_vim_assertions(path: Path) -> list[VimAssertion]:
    """Read the //vim assertions of one fixture file."""
    out: list[VimAssertion] = []
    source = 0
    for i, line in enumerate(path.read_text().split("\n"), start=1):
        m = VIM_ASSERT.match(line)
        if m is None:
            if not TM_ASSERT.match(line):
                source = i
            continue
        body = line[len("//vim"):]
        spec = body.strip()
        if spec.startswith("<"):
            arrow = re.match(r"<(~*)(-+)\s+(\S+)\s*$", spec)
            if arrow is None:
                raise ValueError(f"{path.name}:{i}: bad //vim assertion")
            start = len(arrow.group(1))
            cols = tuple(range(start + 1, start + len(arrow.group(2)) + 1))
            names = arrow.group(3)
        else:
            carets = re.match(r"([\^ ]*\^)\s+(\S+)\s*$", body.lstrip())
            if carets is None:
                raise ValueError(f"{path.name}:{i}: bad //vim assertion")
            cols = tuple(k + 1 for k, ch in enumerate(line) if ch == "^")
            names = carets.group(2)
        if source == 0:
            raise ValueError(f"{path.name}:{i}: assertion before any source line")
        out.append(VimAssertion(path.name, i, source, cols, tuple(names.split("|"))))
    return out


def vim_command(editor: str) -> list[str]:
    """Headless Vim or Neovim, no user config, with our runtime path first."""
    if editor == "vim":
        require("vim", "vim")
        return ["vim", "-Nu", "NONE", "-i", "NONE", "-n", "-es",
                "--cmd", f"set rtp^={VIM_RTP}",
                "-c", "filetype plugin indent on", "-c", "syntax on"]
    require("nvim", "neovim")
    return ["nvim", "--headless", "--clean", "-n", "--cmd", f"set rtp^={VIM_RTP}"]


def run_vim(editor: str, file: Path | None, script: str, timeout: float = 60) -> object:
    """Open `file`, run the Vim script `script`, which must put its answer in
    g:result, and return that answer (through a JSON file)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        src = Path(tmp) / "test.vim"
        src.write_text(script + f"\ncall writefile([json_encode(g:result)], '{out}')\nqa!\n")
        cmd = vim_command(editor)
        if file is not None:
            cmd += ["-c", f"edit {file}"]
        cmd += ["-c", f"source {src}", "-c", "cquit!"]
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout)
        if not out.exists():
            raise AssertionError(f"{editor} produced no result (exit {proc.returncode}):\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return json.loads(out.read_text())
