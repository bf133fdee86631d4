"""Where the cursor is: which declaration, probe header or body, and what is
just before it.

Editor requests arrive while the text is being typed, so the declaration
under the cursor often does not parse (``probe vfs.read { $`` is not a
declaration yet) and is missing from the tree.  This module therefore works
on the lexer's tokens and the raw text: top-level declarations start at a
``probe``/``function``/``global``/``private`` keyword or ``%{`` at brace depth
0; a probe's header ends at its first ``{`` at depth 0.  The probe points of a
header are parsed on their own (``probe HEADER {}``) so a probe's target
variables are known while its body is broken.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from stap_ls.syntax import ast as A
from stap_ls.syntax.lexer import EMBEDDED, KEYWORD, OPERATOR, Tok
from stap_ls.syntax.parser import ParseOptions, parse_file
from stap_ls.text import SourceFile

_DECL_KW = frozenset({"probe", "function", "global", "private"})


@dataclass(frozen=True)
class DeclRange:
    kind: str            # "probe" | "function" | "global" | "private" | "embedded"
    start: int           # offset of the keyword
    #: offset of the body's '{' for probes and functions (-1: none yet)
    body_start: int
    first_tok: int       # index into the token list


def decl_ranges(src: SourceFile, tokens: list[Tok]) -> list[DeclRange]:
    """Top-level declarations of the text, from its tokens (one pass)."""
    out: list[DeclRange] = []
    depth = 0
    cur: dict | None = None
    for i, t in enumerate(tokens):
        if t.source is not src:
            continue
        prev = tokens[i - 1] if i else None
        after_dot = prev is not None and prev.kind == OPERATOR and prev.value == "." \
            and not t.ws_before
        if t.kind == KEYWORD and t.value in _DECL_KW and depth == 0 and not after_dot:
            if not (cur and cur["kind"] == "private" and i == cur["i"] + 1):
                if cur:
                    out.append(DeclRange(cur["kind"], cur["start"], cur["body"], cur["i"]))
                cur = {"kind": t.value, "start": t.start, "body": -1, "i": i}
            elif t.value == "function":
                cur["kind"] = "function"
            continue
        if t.kind == EMBEDDED and depth == 0 and (cur is None or cur["body"] >= 0
                                                   or cur["kind"] not in ("function",)):
            if cur:
                out.append(DeclRange(cur["kind"], cur["start"], cur["body"], cur["i"]))
            cur = {"kind": "embedded", "start": t.start, "body": t.start, "i": i}
            continue
        if t.kind == OPERATOR:
            if t.value in ("{", "(", "["):
                if t.value == "{" and depth == 0 and cur and cur["body"] < 0 \
                        and cur["kind"] in ("probe", "function"):
                    prev = tokens[i - 1] if i else None
                    # '{' after '.' or ',' opens a probe-point group, not the body
                    if not (prev is not None and prev.kind == OPERATOR and prev.value in
                            (".", ",", "=", "+=")):
                        cur["body"] = t.start
                depth += 1
            elif t.value in ("}", ")", "]") and depth > 0:
                depth -= 1
    if cur:
        out.append(DeclRange(cur["kind"], cur["start"], cur["body"], cur["i"]))
    return out


def decl_range_at(ranges: list[DeclRange], offset: int) -> DeclRange | None:
    starts = [r.start for r in ranges]
    i = bisect.bisect_left(starts, offset) - 1
    return ranges[i] if i >= 0 else None


def header_points(src: SourceFile, r: DeclRange, popts: ParseOptions) -> list[A.ProbePoint]:
    """The probe points of a probe's header (empty when they do not parse)."""
    if r.kind != "probe" or r.body_start < 0:
        return []
    text = src.text[r.start:r.body_start] + "{}"
    res = parse_file(SourceFile(src.name, text), popts)
    for d in res.file.decls:
        if isinstance(d, (A.ProbeDecl,)):
            return d.points
        if isinstance(d, A.AliasDecl):
            return d.points
    return []


def in_comment_or_string(line_prefix: str) -> str:
    """'comment', 'string' or '' for the end of a line's prefix."""
    in_str = False
    i = 0
    n = len(line_prefix)
    while i < n:
        c = line_prefix[i]
        if in_str:
            if c == "\\":
                i += 2
                continue
            if c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c == "#" or line_prefix.startswith("//", i):
            return "comment"
        elif line_prefix.startswith("/*", i):
            j = line_prefix.find("*/", i + 2)
            if j < 0:
                return "comment"
            i = j + 2
            continue
        i += 1
    return "string" if in_str else ""


def node_at(root, offset: int, name: str | None = None):
    """The innermost node whose span contains ``offset`` (and the path to it)."""
    path = []
    node = root
    while True:
        path.append(node)
        nxt = None
        for c in A.iter_children(node):
            s = getattr(c, "span", None)
            if s is not None and s.start <= offset <= s.end and \
                    (name is None or s.source.name == name):
                nxt = c
                break
        if nxt is None:
            return node, path
        node = nxt
