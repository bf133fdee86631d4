"""Folding ranges, signature help and code actions.

* folding: multi-line blocks (from the tree), ``%( ... %)`` conditionals and
  ``%{ ... %}`` embedded code (from the tokens), and comments (from the gaps
  between tokens: runs of ``#``/``//`` lines and ``/* */`` blocks);
* signature help: the call around the cursor (script function, else tapset
  function with its documented parameters) and the active argument;
* code actions: stap's "(similar: a, b)" alternatives as quick fixes, and the
  deprecated ``THIS->`` embedded-C style rewritten to ``STAP_ARG_``/``STAP_RETVALUE``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from stap_ls.ide.analysis import Analysis
from stap_ls.syntax import ast as A
from stap_ls.syntax.lexer import EMBEDDED, IDENT, OPERATOR
from stap_ls.text import Diagnostic, Span


@dataclass(frozen=True)
class Fold:
    start: int            # offsets
    end: int
    kind: str = "region"  # "region" | "comment"


def comment_spans(a: Analysis) -> list[tuple[int, int]]:
    """Comments, found in the text between tokens."""
    text = a.source.text
    out: list[tuple[int, int]] = []
    pos = 0
    bounds = [(t.start, t.end) for t in a.parse.tokens if t.source is a.source]
    bounds.append((len(text), len(text)))
    for s, e in bounds:
        gap = text[pos:s] if s > pos else ""
        if gap:
            for m in re.finditer(r"#[^\n]*|//[^\n]*|/\*.*?(?:\*/|$)", gap, re.S):
                out.append((pos + m.start(), pos + m.end()))
        pos = max(pos, e)
    return out


def folding_ranges(a: Analysis) -> list[Fold]:
    src = a.source
    out: list[Fold] = []

    def add(s: int, e: int, kind: str = "region") -> None:
        if src.position(s).line < src.position(max(s, e - 1)).line:
            out.append(Fold(s, e, kind))

    for d in a.parse.file.decls:
        for n in A.walk(d):
            if isinstance(n, A.Block) and n.span is not None and a.is_mine(n.span):
                add(n.span.start, n.span.end)
    stack: list[int] = []
    for t in a.parse.tokens:
        if t.source is not a.source:
            continue
        if t.kind == EMBEDDED:
            add(t.start, t.end)
        elif t.kind == OPERATOR and t.value == "%(":
            stack.append(t.start)
        elif t.kind == OPERATOR and t.value == "%)" and stack:
            add(stack.pop(), t.end)
    run: list[tuple[int, int]] = []
    for s, e in comment_spans(a) + [(-1, -1)]:
        line_comment = s >= 0 and not a.source.text.startswith("/*", s)
        if run and (s < 0 or not line_comment or
                    src.position(s).line != src.position(run[-1][0]).line + 1):
            if len(run) > 1:
                add(run[0][0], run[-1][1], "comment")
            run = []
        if s < 0:
            break
        if line_comment:
            run.append((s, e))
        else:
            add(s, e, "comment")
    out.sort(key=lambda f: (f.start, -f.end))
    return out


@dataclass(frozen=True)
class Signature:
    label: str
    params: list[tuple[str, str]]       # (label, documentation)
    documentation: str = ""
    active: int = 0


def signature_help(a: Analysis, offset: int) -> Signature | None:
    toks = [t for t in a.parse.tokens if t.source is a.source and t.end <= offset]
    depth = 0
    commas = 0
    for i in range(len(toks) - 1, -1, -1):
        t = toks[i]
        if t.kind == OPERATOR and t.value in (")", "]"):
            depth += 1
        elif t.kind == OPERATOR and t.value in ("(", "["):
            if depth == 0:
                if t.value == "(" and i > 0 and toks[i - 1].kind == IDENT:
                    return _signature(a, toks[i - 1].value, commas)
                return None
            depth -= 1
        elif t.kind == OPERATOR and t.value == "," and depth == 0:
            commas += 1
        elif t.kind == OPERATOR and t.value in (";", "{", "}") and depth == 0:
            return None
    return None


def _signature(a: Analysis, name: str, active: int) -> Signature | None:
    entries = a.table.functions.get(name) or a.env.table.functions.get(name)
    if not entries:
        return None
    d = entries[0].decl
    doc = a.env.docs.get("function", name) if a.env.docs is not None else None
    pdocs = dict(doc.params) if doc else {}
    params = [(f"{p.name}:{p.type}" if p.type else p.name, pdocs.get(p.name, ""))
              for p in d.params]
    ret = f":{d.return_type}" if d.return_type else ""
    label = f"{name}{ret}(" + ", ".join(p for p, _ in params) + ")"
    return Signature(label, params, doc.man_summary if doc else "",
                     min(active, max(len(params) - 1, 0)))


@dataclass(frozen=True)
class CodeAction:
    title: str
    edits: tuple[tuple[Span, str], ...]
    diagnostic: Diagnostic | None = None
    preferred: bool = False


_SIMILAR_RE = re.compile(r"\(similar(?: [a-z ]+)?: ([^)]*)\)")
_THIS_RE = re.compile(r"THIS->(__retvalue|\w+)")


def _distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def code_actions(a: Analysis, start: int, end: int, diags: list[Diagnostic]) -> list[CodeAction]:
    out: list[CodeAction] = []
    for d in diags:
        if d.span is None or d.span.end < start or d.span.start > end:
            continue
        m = _SIMILAR_RE.search(d.message)
        if m:
            alts = [x.strip() for x in m.group(1).split(",") if x.strip()]
            text = d.span.source.text[d.span.start:d.span.end]
            words = [(w.start(), w.end(), w.group()) for w in re.finditer(r"[A-Za-z_]\w*", text)]
            if words and alts:
                ws, we, w = min(words, key=lambda x: _distance(x[2], alts[0]))
                for i, alt in enumerate(alts[:8]):
                    sp = Span(d.span.source, d.span.start + ws, d.span.start + we)
                    out.append(CodeAction(f"Change '{w}' to '{alt}'", ((sp, alt),), d, i == 0))
        if "deprecated" in d.tags:
            text = d.span.source.text[d.span.start:d.span.end]
            edits = []
            for mm in _THIS_RE.finditer(text):
                new = "STAP_RETVALUE" if mm.group(1) == "__retvalue" else f"STAP_ARG_{mm.group(1)}"
                edits.append((Span(d.span.source, d.span.start + mm.start(),
                                   d.span.start + mm.end()), new))
            if edits:
                out.append(CodeAction("Use STAP_ARG_/STAP_RETVALUE instead of THIS->",
                                      tuple(edits), d, True))
    return out
