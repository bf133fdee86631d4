"""Source files and spans.

A :class:`SourceFile` holds the text of one script, tapset or ``-e`` argument and
an index of line starts.  A :class:`Span` is a half-open range of character
offsets into one source file.  Offsets are Python string indexes; conversion to
LSP's UTF-16 positions happens only in ``stap_ls.lsp``.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Position:
    """A 1-based line and 1-based column (in characters), as stap prints them."""

    line: int
    column: int


class SourceFile:
    """The text of one file with a lazily built line index."""

    __slots__ = ("name", "text", "_line_starts")

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = text
        self._line_starts: list[int] | None = None

    def __repr__(self) -> str:
        return f"SourceFile({self.name!r}, {len(self.text)} chars)"

    @property
    def line_starts(self) -> list[int]:
        if self._line_starts is None:
            starts = [0]
            find = self.text.find
            i = find("\n")
            while i >= 0:
                starts.append(i + 1)
                i = find("\n", i + 1)
            self._line_starts = starts
        return self._line_starts

    def position(self, offset: int) -> Position:
        """1-based line and column of a character offset."""
        starts = self.line_starts
        line = bisect.bisect_right(starts, offset) - 1
        return Position(line + 1, offset - starts[line] + 1)

    def offset(self, line: int, column: int) -> int:
        """Offset of a 1-based line and column (clamped to the text)."""
        starts = self.line_starts
        line = max(1, min(line, len(starts)))
        return min(starts[line - 1] + max(column, 1) - 1, len(self.text))

    def line_text(self, line: int) -> str:
        """Text of a 1-based line, without its newline."""
        starts = self.line_starts
        if line < 1 or line > len(starts):
            return ""
        end = self.text.find("\n", starts[line - 1])
        return self.text[starts[line - 1]: end if end >= 0 else len(self.text)]


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open range ``[start, end)`` of offsets in ``source``."""

    source: SourceFile = field(compare=False, repr=False)
    start: int
    end: int

    @property
    def start_pos(self) -> Position:
        return self.source.position(self.start)

    @property
    def end_pos(self) -> Position:
        return self.source.position(self.end)

    def cover(self, other: "Span") -> "Span":
        return Span(self.source, min(self.start, other.start), max(self.end, other.end))

    def __str__(self) -> str:
        p = self.start_pos
        return f"{self.source.name}:{p.line}:{p.column}"
