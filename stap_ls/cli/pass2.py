"""``stap-ls check -p2``: elaborate, print stap's messages, print the program.

Diagnostics print as stap prints pass-2 messages (``semantic error: MSG: TOKEN
at FILE:L:C`` with the source line and a caret; the file name is left out
when it is the same as the previous message's), then "Pass 2: analysis
failed." and exit status 1; otherwise the program as ``stap -p2`` prints it.
"""

from __future__ import annotations

from typing import TextIO

from stap_ls.cli.report import write_json
from stap_ls.text import Diagnostic, Severity


class _StapPrinter:
    def __init__(self) -> None:
        self.last_file: str | None = None

    def where(self, span) -> str:
        name = span.source.name
        pos = span.start_pos
        shown = "" if name == self.last_file else name
        self.last_file = name
        return f"{shown}:{pos.line}:{pos.column}"

    def block(self, head: str, span, saw: str, warning: bool) -> str:
        lines = []
        if span is None:
            lines.append(head)
        else:
            loc = self.where(span)
            lines.append(f"{head}: {saw} at {loc}" if saw else f"{head} at {loc}")
            pos = span.start_pos
            pad = " source: " if warning else "        source: "
            lines.append(pad + span.source.line_text(pos.line))
            lines.append(" " * (len(pad) + pos.column - 1) + "^")
        return "\n".join(lines) + "\n"

    def diag(self, d: Diagnostic) -> str:
        warning = d.severity != Severity.ERROR
        head = ("WARNING: " if warning else f"{d.kind}: ") + d.message
        out = self.block(head, d.span, d.saw, warning)
        for r in d.related:
            msg = r.message
            if ": " in msg:
                text, _, saw = msg.rpartition(": ")
                out += self.block(("WARNING: " if warning else f"{d.kind}: ") + text, r.span, saw,
                                  warning)
            else:
                out += self.block(msg, r.span, "", warning) if False else \
                    self.block("", r.span, msg, warning).replace(": " + msg, msg, 1)
        if not warning:
            out += "\n"
        return out


def format_diagnostics(diags: list[Diagnostic]) -> str:
    """stap's layout; like stap, a message repeated (same text) is printed once."""
    p = _StapPrinter()
    seen: set[tuple] = set()
    out = []
    dropped = {True: 0, False: 0}
    for d in diags:
        key = (d.severity == Severity.ERROR, d.kind, d.message, d.saw)
        if key in seen:
            dropped[key[0]] += 1
            continue
        seen.add(key)
        out.append(p.diag(d))
    return "".join(out), dropped


def _overloads(res, fe) -> dict[int, int]:
    out: dict[int, int] = {}
    for name, fis in res.program.functions.items():
        # overload number = position among every definition of the name
        for fi in fis:
            out[id(fi)] = 0
    return out


def run_pass2(fe, opts, out: TextIO, err: TextIO, diags: list) -> int:
    from stap_ls.sema.elaborate import elaborate
    from stap_ls.sema.p2print import print_program
    model = None
    try:
        from stap_ls.targets.model import TargetModel
        model = TargetModel(opts)
    except Exception:
        model = None
    res = elaborate(fe, model)
    shown = [d for d in res.diagnostics
             if d.severity == Severity.ERROR or not opts.suppress_warnings]
    if opts.warnings_as_errors:
        shown = [d if d.severity == Severity.ERROR else
                 Diagnostic(Severity.ERROR, d.message, d.span, d.code, "semantic error", d.saw,
                            d.marker, d.related, d.tags) for d in shown]
    failed = any(d.severity == Severity.ERROR for d in shown)
    if opts.output_format == "json":
        write_json(diags + shown, out, ok=not failed, passes=2)
        return 1 if failed else 0
    text, dropped = format_diagnostics(shown)
    err.write(text)
    if failed:
        err.write("Pass 2: analysis failed.  [man error::pass2]\n")
    for is_err, n in dropped.items():
        if n:
            err.write(f"Number of similar {'error' if is_err else 'warning'} messages "
                      f"suppressed: {n}.\nRerun with -v to see them.\n")
    if failed:
        return 1
    out.write(print_program(res.program, _overloads(res, fe), verbose=opts.verbose > 0))
    return 0
