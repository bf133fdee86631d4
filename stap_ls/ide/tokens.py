"""Semantic tokens: stap tokens classified, embedded C tokenised with
tree-sitter-c, comments, and inactive preprocessor branches.

Each token is ``(start, end, type, modifiers)`` in character offsets; the LSP
layer turns them into UTF-16 line/column deltas.  Inactive branches of
``%( cond %? a %: b %)`` are the lexer's tokens inside a branch that did not
reach the preprocessed stream; they are reported as comments with the
``inactive`` modifier, so every client greys them out.

Deltas (``semanticTokens/full/delta``) are pure functions over the encoded
integer arrays: :func:`token_edits` finds the one changed stretch between two
arrays (whole 5-integer tokens: common prefix and suffix), :func:`apply_edits`
replays edits, and :class:`TokenHistory` keeps the last array sent per
document under a result id, so a client's ``previousResultId`` can be answered
with edits or, when unknown, with the full array.
"""

from __future__ import annotations

import bisect
import logging
import itertools
import threading
from dataclasses import dataclass
from functools import lru_cache

from stap_ls.ide.analysis import Analysis
from stap_ls.ide.structure import comment_spans
from stap_ls.syntax.lexer import EMBEDDED, IDENT, KEYWORD, NUMBER, OPERATOR, STRING, Tok

log = logging.getLogger("stap_ls.ide")

TOKEN_TYPES = ["keyword", "function", "variable", "parameter", "property", "string", "number",
               "operator", "comment", "macro", "type", "event"]
TOKEN_MODIFIERS = ["declaration", "defaultLibrary", "inactive"]


@dataclass(frozen=True, slots=True)
class SemToken:
    start: int
    end: int
    type: str
    modifiers: tuple[str, ...] = ()


@lru_cache(maxsize=1)
def _c_parser():
    try:
        import tree_sitter
        import tree_sitter_c
        return tree_sitter.Parser(tree_sitter.Language(tree_sitter_c.language()))
    except Exception as e:  # tree-sitter missing: embedded C stays one token
        log.warning("tree-sitter-c unavailable (%s): embedded C is not highlighted", e)
        return None


_C_LEAF = {"identifier": "variable", "field_identifier": "property",
           "primitive_type": "type", "type_identifier": "type", "sized_type_specifier": "type",
           "number_literal": "number", "string_literal": "string", "char_literal": "string",
           "system_lib_string": "string", "comment": "comment", "true": "number",
           "false": "number", "null": "number", "preproc_arg": "macro"}


def embedded_c_tokens(code: str, base: int) -> list[SemToken]:
    """Tokens of C ``code`` that starts at offset ``base``."""
    parser = _c_parser()
    if parser is None:
        return [SemToken(base, base + len(code), "string")]
    data = code.encode("utf-8", "surrogatepass")
    ascii_ = len(data) == len(code)
    if not ascii_:
        offs = []
        for i, ch in enumerate(code):
            offs.extend([i] * len(ch.encode("utf-8", "surrogatepass")))
        offs.append(len(code))

    def co(b: int) -> int:
        return b if ascii_ else offs[min(b, len(offs) - 1)]

    out: list[SemToken] = []
    tree = parser.parse(data)
    stack = [tree.root_node]
    while stack:
        n = stack.pop()
        t = n.type
        kind = None
        if t in ("string_literal", "char_literal", "comment", "system_lib_string"):
            kind = _C_LEAF[t]
        elif n.child_count == 0:
            kind = _C_LEAF.get(t)
            if kind is None and t.startswith("#"):
                kind = "macro"
            elif kind is None and not n.is_named and t.isalpha():
                kind = "keyword"
            if t == "identifier" and n.parent is not None and \
                    n.parent.type == "call_expression" and n.parent.child(0) == n:
                kind = "function"
        if kind is not None:
            out.append(SemToken(base + co(n.start_byte), base + co(n.end_byte), kind))
            continue
        stack.extend(reversed(n.children))
    out.sort(key=lambda s: s.start)
    return out


def _inactive(a: Analysis) -> set[int]:
    """Indexes of lexer tokens in preprocessor branches that were left out."""
    covered: list[tuple[int, int]] = sorted(
        (it.start, it.end) for it in a.parse.stream
        if isinstance(it, Tok) and it.source is a.source)
    starts = [c[0] for c in covered]
    out: set[int] = set()
    stack: list[str] = []
    for i, t in enumerate(a.parse.tokens):
        if t.source is not a.source:
            continue
        if t.kind == OPERATOR and t.value in ("%(", "%?", "%:", "%)"):
            if t.value == "%(":
                stack.append("cond")
            elif t.value in ("%?", "%:") and stack:
                stack[-1] = "branch"
            elif t.value == "%)" and stack:
                stack.pop()
            continue
        if stack and stack[-1] == "branch":
            j = bisect.bisect_right(starts, t.start) - 1
            if j < 0 or not (covered[j][0] <= t.start < covered[j][1]):
                out.add(i)
    return out


def semantic_tokens(a: Analysis) -> list[SemToken]:
    toks = a.parse.tokens
    inactive = _inactive(a)
    lib_funcs = a.env.table.functions
    header_end = -1
    out: list[SemToken] = []
    for i, t in enumerate(toks):
        if t.source is not a.source or t.end <= t.start:
            continue
        if i in inactive:
            out.append(SemToken(t.start, t.end, "comment", ("inactive",)))
            continue
        k = t.kind
        if k == KEYWORD:
            in_header = t.start < header_end and i > 0 and toks[i - 1].value == "."
            out.append(SemToken(t.start, t.end, "event" if in_header else "keyword"))
            if t.value == "probe":
                header_end = _body_start(toks, i)
        elif k == STRING:
            out.append(SemToken(t.start, t.end, "string"))
        elif k == NUMBER:
            out.append(SemToken(t.start, t.end, "number"))
        elif k == EMBEDDED:
            out.extend(embedded_c_tokens(t.value, t.start + 2))
        elif k == OPERATOR and t.value.startswith("@") and len(t.value) > 1:
            out.append(SemToken(t.start, t.end, "macro"))
        elif k == IDENT:
            if t.start < header_end:
                out.append(SemToken(t.start, t.end, "event"))
            elif t.value.startswith("$"):
                out.append(SemToken(t.start, t.end, "parameter"))
            elif i > 0 and toks[i - 1].kind == KEYWORD and toks[i - 1].value == "function":
                out.append(SemToken(t.start, t.end, "function", ("declaration",)))
            elif i + 1 < len(toks) and toks[i + 1].kind == OPERATOR and toks[i + 1].value == "(":
                mods = ("defaultLibrary",) if t.value in lib_funcs and \
                    t.value not in a.table.functions else ()
                out.append(SemToken(t.start, t.end, "function", mods))
            else:
                out.append(SemToken(t.start, t.end, "variable"))
    for s, e in comment_spans(a):
        out.append(SemToken(s, e, "comment"))
    out.sort(key=lambda s: s.start)
    return out


def _body_start(toks: list[Tok], i: int) -> int:
    depth = 0
    for t in toks[i + 1:]:
        if t.kind == OPERATOR:
            if t.value == "(":
                depth += 1
            elif t.value == ")":
                depth -= 1
            elif t.value == "{" and depth == 0:
                return t.start
        if t.kind == KEYWORD and t.value in ("probe", "function", "global") and depth == 0:
            return t.start
    return toks[-1].end if toks else -1


# -- deltas -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TokenEdit:
    """Replace ``delete_count`` integers at ``start`` with ``data``."""
    start: int
    delete_count: int
    data: tuple[int, ...] = ()


def token_edits(old: list[int], new: list[int], unit: int = 5) -> list[TokenEdit]:
    """Edits turning ``old`` into ``new``: none if equal, else one edit covering
    the stretch between their common prefix and suffix, in whole ``unit``-integer
    tokens (when both lengths are multiples of ``unit``)."""
    if old == new:
        return []
    n = min(len(old), len(new))
    pre = 0
    while pre < n and old[pre] == new[pre]:
        pre += 1
    pre -= pre % unit
    suf = 0
    limit = n - pre
    while suf < limit and old[len(old) - 1 - suf] == new[len(new) - 1 - suf]:
        suf += 1
    suf -= suf % unit
    return [TokenEdit(pre, len(old) - pre - suf, tuple(new[pre:len(new) - suf]))]


def apply_edits(old: list[int], edits: list[TokenEdit]) -> list[int]:
    """``old`` with ``edits`` applied (edits index the original array, as in LSP)."""
    out: list[int] = []
    pos = 0
    for e in sorted(edits, key=lambda e: e.start):
        if e.start < pos or e.start + e.delete_count > len(old):
            raise ValueError(f"overlapping or out-of-range edit {e}")
        out += old[pos:e.start]
        out += e.data
        pos = e.start + e.delete_count
    return out + old[pos:]


class TokenHistory:
    """The last token array sent per document, under a fresh result id."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[str, list[int]]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def full(self, uri: str, data: list[int]) -> str:
        """Remember ``data`` as the document's tokens; return its result id."""
        rid = str(next(self._ids))
        with self._lock:
            self._last[uri] = (rid, list(data))
        return rid

    def delta(self, uri: str, previous: str | None,
              data: list[int]) -> tuple[str, list[TokenEdit] | None]:
        """A result id for ``data`` and the edits from ``previous``; ``None``
        edits when ``previous`` is not the last id sent (send the full array)."""
        with self._lock:
            last = self._last.get(uri)
        edits = token_edits(last[1], data) if last is not None and last[0] == previous \
            else None
        return self.full(uri, data), edits

    def forget(self, uri: str) -> None:
        with self._lock:
            self._last.pop(uri, None)
