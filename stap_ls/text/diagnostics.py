"""Diagnostics: user errors are data, never exceptions.

Every pass returns ``(result, [Diagnostic, ...])``.  A diagnostic carries stap's
own wording (``message``), the token stap would show after ``saw:`` when there is
one, a stable ``code`` from :mod:`stap_ls.text.codes`, and optional related
locations and tags.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from stap_ls.text.source import Span


class Severity(enum.IntEnum):
    ERROR = 1
    WARNING = 2
    INFO = 3
    HINT = 4

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Related:
    span: Span
    message: str


@dataclass(frozen=True, slots=True)
class Diagnostic:
    severity: Severity
    message: str
    span: Span | None
    code: str = ""
    #: stap's 'kind' prefix: "parse error", "semantic error", "WARNING" ...
    kind: str = "parse error"
    #: description of the offending token for stap's ``saw:`` line
    saw: str = ""
    #: stap prints ``at:`` instead of ``saw:`` when the error names its token
    marker: str = "saw"
    related: tuple[Related, ...] = ()
    tags: tuple[str, ...] = field(default=())  # "unnecessary", "deprecated"

    def format(self) -> str:
        """``file:line:col: error: message [code]``."""
        where = str(self.span) if self.span is not None else "<command line>"
        code = f" [{self.code}]" if self.code else ""
        return f"{where}: {self.severity.label}: {self.message}{code}"

    def to_json(self) -> dict:
        d: dict = {
            "severity": self.severity.label,
            "message": self.message,
            "code": self.code,
            "kind": self.kind,
        }
        if self.span is not None:
            s, e = self.span.start_pos, self.span.end_pos
            d.update(file=self.span.source.name, line=s.line, column=s.column,
                     end_line=e.line, end_column=e.column,
                     start=self.span.start, end=self.span.end)
        if self.related:
            d["related"] = [{"file": r.span.source.name, "line": r.span.start_pos.line,
                             "column": r.span.start_pos.column, "message": r.message}
                            for r in self.related]
        if self.tags:
            d["tags"] = list(self.tags)
        return d
