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
    if d.marker == "eof" and d.span is not None:
        lines.append(f"{'saw':>11}: {d.span.source.name} EOF")
    elif d.span is not None:
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
        if d.severity == Severity.ERROR and d.kind == "parse error" and d.code == "parse":
            # stap prints a chained error as an error of its own
            lines.append("")
            lines.append(f"{d.kind}: {r.message}")
            lines.append(f"{'at':>11}: {_describe(r.span.source.text[r.span.start:r.span.end])} at "
                         f"{r.span.source.name}:{p.line}:{p.column}")
            lines.append(f"     source: {r.span.source.line_text(p.line)}")
            lines.append(" " * (13 + p.column - 1) + "^")
        # other related places (e.g. a first declaration) are for editors;
        # stap does not print them
    return "\n".join(lines) + "\n"


_KEYWORDS = {"probe", "global", "private", "function", "if", "else", "for", "foreach", "in",
             "limit", "return", "delete", "while", "break", "continue", "next", "string",
             "long", "try", "catch"}


def _describe(text: str) -> str:
    """A token's description as stap prints it after ``at:``, from its text."""
    if text.startswith("%{"):
        return "embedded-code"
    if text[:1].isdigit():
        return f"number '{text}'"
    if text.startswith('"'):
        return f"string '{text[1:-1]}'"
    if text[:1].isalpha() or text[:1] in "_$":
        return "keyword" if text in _KEYWORDS else f"identifier '{text}'"
    return f"operator '{text}'"


#: diagnostics kept for editors that stap does not print
STAP_SILENT = frozenset({"unterminated-comment"})


class ErrorPrinter:
    """Prints diagnostics as stap does, including its duplicate elimination:
    without ``-v`` an error whose message was already printed is counted,
    not shown, and :meth:`summary` reports how many were suppressed."""

    def __init__(self, err: TextIO, verbose: int = 0) -> None:
        self.err = err
        self.verbose = verbose
        self.seen: set[tuple[str, str]] = set()
        self.suppressed = 0

    def write(self, diags: list[Diagnostic]) -> None:
        for d in diags:
            if d.code in STAP_SILENT:
                continue
            if d.severity == Severity.ERROR and self.verbose == 0:
                # stap suppresses an error raised again from the same place in
                # its parser; the message (and, for errors naming their token,
                # that token) stands for that place
                key = (d.kind, d.message, d.saw if d.marker == "at" else "")
                if key in self.seen:
                    self.suppressed += 1
                    continue
                self.seen.add(key)
            self.err.write(stap_style(d))
            self.err.write("\n")

    def summary(self) -> None:
        if self.suppressed:
            self.err.write(f"Number of similar error messages suppressed: {self.suppressed}.\n"
                           "Rerun with -v to see them.\n")


def write_diagnostics(diags: list[Diagnostic], err: TextIO, fmt: str = "text") -> None:
    if fmt == "json":
        return
    for d in diags:
        err.write(stap_style(d))
        err.write("\n")


def write_json(diags: list[Diagnostic], out: TextIO, **extra) -> None:
    out.write(json.dumps({"diagnostics": [d.to_json() for d in diags], **extra}, indent=1))
    out.write("\n")
