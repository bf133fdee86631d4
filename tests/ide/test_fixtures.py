"""Data-driven editor-feature tests: ``tests/data/ide/FEATURE/NAME.stp`` holds a
script with a ``$0`` cursor, ``NAME.expected`` the feature's answer dumped as
text.  A missing expected file is written when ``UPDATE_EXPECT=1`` (review the
diff before committing); otherwise the test fails showing the answer.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stap_ls.ide.completion import complete
from stap_ls.ide.hover import hover
from stap_ls.ide.navigation import definition, references
from stap_ls.ide.structure import signature_help
from tests.ide.conftest import analysis_of

DATA = Path(__file__).parent.parent / "data" / "ide"
CASES = sorted(DATA.glob("*/*.stp"))


def _where(span) -> str:
    p = span.start_pos
    name = span.source.name
    name = os.path.basename(name) if name.startswith("/tmp/") else name
    return f"{name}:{p.line}:{p.column} {span.source.text[span.start:span.end]!r}"


def dump(feature: str, a, off: int) -> str:
    if feature == "completion":
        c = complete(a, off)
        lines = [f"replace from {off - c.start} chars back; incomplete={c.incomplete}"]
        lines += [f"{i.label} | {i.kind} | {i.detail}" for i in c.items[:40]]
        return "\n".join(lines) + "\n"
    if feature == "hover":
        h = hover(a, off)
        return (h.markdown + f"\n--\n{_where(h.span)}\n") if h else "None\n"
    if feature == "definition":
        return "".join(_where(s) + "\n" for s in definition(a, off)) or "None\n"
    if feature == "references":
        return "".join(_where(s) + "\n" for s in references(a, off, [])) or "None\n"
    if feature == "signature":
        s = signature_help(a, off)
        if s is None:
            return "None\n"
        return f"{s.label}\nactive={s.active}\n" + "".join(f"{p}: {d}\n" for p, d in s.params)
    raise AssertionError(feature)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.parent.name}/{c.stem}" for c in CASES])
def test_fixture(env, case: Path):
    a, off = analysis_of(env, case.read_text(), "/tmp/" + case.name)
    assert off >= 0, f"{case} has no $0 cursor"
    got = dump(case.parent.name, a, off)
    exp = case.with_suffix(".expected")
    if not exp.exists():
        if os.environ.get("UPDATE_EXPECT"):
            exp.write_text(got)
        else:
            pytest.fail(f"{exp} is missing (UPDATE_EXPECT=1 writes it); the answer was:\n{got}")
    assert got == exp.read_text()
