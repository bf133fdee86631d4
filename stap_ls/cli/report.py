"""Printing diagnostics: stap's own layout, the one-line layout and JSON."""

from __future__ import annotations

import json
from typing import TextIO

from stap_ls.text import Diagnostic, Severity


def stap_style(d: Diagnostic) -> str:
    """As stap prints an error::

        parse error: expected literal string or number
                saw: operator '}' at <input>:1:19
             source: probe begin { x = }
                                       ^
    """
    if d.severity == Severity.ERROR:
        head = f"{d.kind}: {d.message}"
    else:
        head = f"WARNING: {d.message}"
    lines = [head]
    if d.span is not None:
        pos = d.span.start_pos
        where = f"{d.span.source.name}:{pos.line}:{pos.column}"
        label = "saw" if d.marker == "saw" else "at"
        what = f"{d.saw} at {where}" if d.saw else where
        lines.append(f"{label:>11}: {what}")
        src = d.span.source.line_text(pos.line)
        lines.append(f"     source: {src}")
        lines.append(" " * (13 + pos.column - 1) + "^")
    for r in d.related:
        p = r.span.start_pos
        lines.append(f"{r.message}: at {r.span.source.name}:{p.line}:{p.column}")
    return "\n".join(lines) + "\n"


def write_diagnostics(diags: list[Diagnostic], err: TextIO, fmt: str = "text") -> None:
    if fmt == "json":
        return
    for d in diags:
        err.write(stap_style(d))
        err.write("\n")


def write_json(diags: list[Diagnostic], out: TextIO, **extra) -> None:
    out.write(json.dumps({"diagnostics": [d.to_json() for d in diags], **extra}, indent=1))
    out.write("\n")
