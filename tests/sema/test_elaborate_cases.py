"""Data-driven pass-2 cases: tests/data/sema/cases/*.test.

Each ``[case NAME]`` block is a script; a ``# E: MESSAGE`` comment says stap
reports MESSAGE (a semantic error) on that line.  A case without ``# E:``
must elaborate without errors.  A ``# flags: ...`` line adds stap options.  The script runs through ``stap-ls check -p2
-u`` in-process; the errors it prints must be exactly the expected ones, on
the expected lines.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from stap_ls.cli.check import main as check_main
from stap_ls.options import parse_stap_args
from stap_ls.sema.elaborate import elaborate
from stap_ls.sema.frontend import run_frontend
from stap_ls.text import Severity, SourceFile
from tests.support.oracle import release

CASES = Path(__file__).resolve().parents[1] / "data" / "sema" / "cases"


def load_cases() -> list[tuple[str, str]]:
    out = []
    for f in sorted(CASES.glob("*.test")):
        name, lines = None, []
        for line in f.read_text().splitlines() + ["[case __end__]"]:
            m = re.match(r"\[case (\w+)\]$", line)
            if m:
                if name is not None:
                    out.append((f"{f.stem}::{name}", "\n".join(lines).strip() + "\n"))
                name, lines = m.group(1), []
            elif name is not None:
                lines.append(line)
    return out


def expected(script: str) -> list[tuple[int, str]]:
    out = []
    for i, line in enumerate(script.splitlines(), 1):
        m = re.search(r"# E: (.*)$", line)
        if m:
            out.append((i, m.group(1).rstrip()))
    return out


@pytest.mark.parametrize("name,script", load_cases(), ids=[c[0] for c in load_cases()])
def test_case(name: str, script: str) -> None:
    flags = [w for line in script.splitlines() if line.startswith("# flags:")
             for w in line.split(":", 1)[1].split()]
    opts, _ = parse_stap_args(["-r", release(), "-p2", "-u", *flags, "-e", script])
    fe = run_frontend(opts, [SourceFile("<input>", script)])
    assert not fe.user_errors, [d.message for d in fe.user_errors]
    res = elaborate(fe)
    got = set()
    line = 0
    for d in res.diagnostics:
        if d.span is not None and d.span.source.name == "<input>":
            line = d.span.start_pos.line      # a location-less error follows its context
        if d.severity == Severity.ERROR and d.message != "while resolving probe point":
            got.add((line, d.message.rstrip()))
    got = sorted(got)
    assert got == sorted(expected(script)), script


def test_cli_exit_status_and_layout() -> None:
    out, err = io.StringIO(), io.StringIO()
    rc = check_main(["-r", release(), "-p2", "-e", "probe begin { x = foo(1) }"], out, err)
    assert rc == 1
    text = err.getvalue()
    assert "semantic error: unresolved function (similar:" in text
    assert "identifier 'foo' at <input>:1:19" in text
    assert text.rstrip().endswith("Pass 2: analysis failed.  [man error::pass2]")
    out, err = io.StringIO(), io.StringIO()
    rc = check_main(["-r", release(), "-p2", "-e", "global x probe begin { x = 1; print(x) }"],
                    out, err)
    assert rc == 0, err.getvalue()
    assert out.getvalue() == "# globals\nx:long\n# probes\nbegin /* <- begin */\n"
