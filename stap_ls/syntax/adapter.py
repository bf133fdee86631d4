"""From preprocessed stap tokens to the grammar's terminals, one chunk per declaration.

Two jobs sit between the preprocessor and the lark grammar:

* **terminals** — each :class:`Tok` becomes a lark ``Token`` whose type is a
  terminal of ``stap.lark`` (keywords, ``TSYM`` for ``$var``, ``DOLLARS`` for
  ``$``/``$$``, ``PRINT_FMT`` for ``printf`` ...).  Its ``start_pos`` is the
  index of the source token, so the tree builder can find spans.
* **probe-point names** — in a probe point, stap glues adjacent identifiers,
  keywords and ``*`` (no whitespace between) into one component name
  (``kernel.function*foo``, ``.return``), and any keyword may be a component.
  The adapter tracks whether it is inside probe points (from ``probe`` to the
  body's ``{``, outside an ``if (...)`` condition) and emits ``PP_NAME``
  terminals there.
* **chunks** — the stream is cut before each top-level declaration
  (``probe``, ``global``, ``private``, ``function``, or a top-level
  ``%{ %}``), so each declaration parses on its own: one broken declaration
  gives one error and the next parses normally, as stap's recovery does, and
  an editor can re-parse only the declarations that changed.
"""

from __future__ import annotations

from lark import Token

from stap_ls.syntax.lexer import (EMBEDDED, IDENT, JUNK, KEYWORD, NUMBER, OPERATOR,
                                  STRING, Tok)
from stap_ls.syntax.preprocessor import PPError

KEYWORD_TERMINALS = {
    "probe": "PROBE", "global": "GLOBAL", "private": "PRIVATE", "function": "FUNCTION",
    "if": "IF", "else": "ELSE", "for": "FOR", "foreach": "FOREACH", "in": "IN",
    "limit": "LIMIT", "return": "RETURN", "delete": "DELETE", "while": "WHILE",
    "break": "BREAK", "continue": "CONTINUE", "next": "NEXT", "string": "STRING_KW",
    "long": "LONG_KW", "try": "TRY", "catch": "CATCH",
}

OPERATOR_TERMINALS = {
    "(": "LPAR", ")": "RPAR", "{": "LBRACE", "}": "RBRACE", "[": "LSQB", "]": "RSQB",
    ",": "COMMA", ";": "SEMI", ":": "COLON", "?": "QMARK", "!": "BANG", ".": "DOT",
    "=": "EQUAL", "+=": "PLUSEQ",
    "<<<": "ASSIGN_OP", "-=": "ASSIGN_OP", "*=": "ASSIGN_OP", "/=": "ASSIGN_OP",
    "%=": "ASSIGN_OP", "<<=": "ASSIGN_OP", ">>=": "ASSIGN_OP", "&=": "ASSIGN_OP",
    "^=": "ASSIGN_OP", "|=": "ASSIGN_OP", ".=": "ASSIGN_OP",
    "<": "CMP_OP", ">": "CMP_OP", "<=": "CMP_OP", ">=": "CMP_OP", "==": "CMP_OP",
    "!=": "CMP_OP", "=~": "REGEX_OP", "!~": "REGEX_OP",
    "<<": "SHIFT_OP", ">>": "SHIFT_OP", ">>>": "SHIFT_OP",
    "+": "PLUS", "-": "MINUS", "*": "STAR", "/": "SLASH", "%": "PERCENT", "&": "AMP",
    "|": "PIPE", "^": "CARET", "~": "TILDE", "||": "OROR", "&&": "ANDAND",
    "++": "INCDEC", "--": "INCDEC", "->": "ARROW",
}

AT_TERMINALS = {
    "@cast": "AT_CAST", "@var": "AT_VAR", "@defined": "AT_DEFINED", "@entry": "AT_ENTRY",
    "@perf": "AT_PERF", "@probewrite": "AT_PROBEWRITE", "@const": "AT_CONST",
    "@kregister": "AT_REGISTER", "@uregister": "AT_REGISTER",
    "@kderef": "AT_DEREF", "@uderef": "AT_DEREF",
    "@avg": "AT_STAT", "@count": "AT_STAT", "@sum": "AT_STAT", "@min": "AT_STAT",
    "@max": "AT_STAT", "@variance": "AT_STAT",
    "@hist_linear": "AT_HIST_LINEAR", "@hist_log": "AT_HIST_LOG",
}

PRINT_FMT = frozenset({"printf", "sprintf"})
PRINT_DELIM = frozenset({"printd", "printdln", "sprintd", "sprintdln"})
PRINT_PLAIN = frozenset({"print", "println", "sprint", "sprintln", "print_char"})

# where a probe-point component may start
_COMPONENT_START = frozenset({"PROBE", "DOT", "COMMA", "EQUAL", "PLUSEQ", "LBRACE"})
# where a top-level declaration starts
_DECL_START = frozenset({"PROBE", "GLOBAL", "PRIVATE", "FUNCTION"})


_new_str = str.__new__


def _term(type_: str, value: str, pos: int) -> Token:
    """A lark ``Token`` without lark's keyword-argument constructor (a tenth
    of pass 1's time on the tapset library went there)."""
    inst = _new_str(Token, value)
    inst.type = type_
    inst.start_pos = pos
    inst.value = value
    inst.line = inst.column = inst.end_line = inst.end_column = inst.end_pos = None
    return inst


def terminal_of(t: Tok, atwords: frozenset[str]) -> str:
    k = t.kind
    if k == IDENT:
        v = t.value
        if v[0] == "$":
            return "DOLLARS" if v.strip("$") == "" else "TSYM"
        if v in PRINT_FMT:
            return "PRINT_FMT"
        if v in PRINT_DELIM:
            return "PRINT_DELIM"
        if v in PRINT_PLAIN:
            return "PRINT_PLAIN"
        return "IDENT"
    if k == OPERATOR:
        v = t.value
        if v[0] == "@" and len(v) > 1:
            term = AT_TERMINALS.get(v)
            if term is None or v[1:] not in atwords:
                return "AT_OTHER"
            return term
        return OPERATOR_TERMINALS.get(v, "OTHER_OP")
    if k == KEYWORD:
        return KEYWORD_TERMINALS[t.value]
    if k == NUMBER:
        return "NUMBER"
    if k == STRING:
        return "STRING"
    if k == EMBEDDED:
        return "EMBEDDED"
    return "JUNK"


def _is_piece(t: Tok) -> bool:
    return t.kind in (IDENT, KEYWORD) or (t.kind == OPERATOR and t.value == "*")


def to_terminals(stream: list[Tok | PPError], atwords: frozenset[str]
                 ) -> tuple[list[Token], list[Tok | PPError]]:
    """Convert the preprocessed stream.  Returns lark tokens and, at the same
    indexes (``Token.start_pos``), the source items (glued probe-point names
    become new :class:`Tok` objects covering their pieces)."""
    out: list[Token] = []
    items: list[Tok | PPError] = []
    in_pp = False
    brace_depth = 0       # '{ ... }' groups inside probe points
    cond_depth = 0        # parentheses of an 'if (...)' condition
    cond_pending = False
    prev = ""             # previous terminal type
    prev_piece = False    # previous token was part of a probe-point name
    for t in stream:
        if isinstance(t, PPError):
            out.append(_term("JUNK", t.message, len(items)))
            items.append(t)
            prev, prev_piece = "JUNK", False
            continue
        if in_pp and cond_depth == 0 and not cond_pending:
            if _is_piece(t):
                if prev_piece and not t.ws_before and out and prev == "PP_NAME":
                    last = items[-1]
                    glued = Tok(last.kind, last.value + t.value, last.source, last.start,
                                t.end if t.source is last.source else last.end,
                                last.ws_before, "", last.chain)
                    items[-1] = glued
                    out[-1] = _term("PP_NAME", glued.value, len(items) - 1)
                    continue
                if prev in _COMPONENT_START:
                    out.append(_term("PP_NAME", t.value, len(items)))
                    items.append(t)
                    prev, prev_piece = "PP_NAME", True
                    continue
            elif t.kind == OPERATOR and t.value == "{":
                if prev in _COMPONENT_START:
                    brace_depth += 1
                elif brace_depth == 0:
                    in_pp = False
            elif t.kind == OPERATOR and t.value == "}" and brace_depth > 0:
                brace_depth -= 1
        term = terminal_of(t, atwords)
        if in_pp:
            if cond_pending and term == "LPAR":
                cond_pending = False
                cond_depth = 1
            elif cond_depth > 0:
                if term == "LPAR":
                    cond_depth += 1
                elif term == "RPAR":
                    cond_depth -= 1
            elif term == "IF":
                cond_pending = True
        if term == "PROBE":
            in_pp, brace_depth, cond_depth, cond_pending = True, 0, 0, False
        out.append(_term(term, t.value, len(items)))
        items.append(t)
        prev, prev_piece = term, False
    return out, items


def split_declarations(tokens: list[Token]) -> list[tuple[int, int]]:
    """Cut the terminal stream into top-level declarations: ``[(start, end)]``."""
    chunks: list[tuple[int, int]] = []
    start = 0
    depth = 0            # braces and parentheses
    kind = ""            # terminal that opened the current chunk
    has_body = False     # a function or probe has its body already
    prev = ""
    n = len(tokens)
    for i in range(n):
        ty = tokens[i].type
        boundary = False
        if i > start and ty in _DECL_START and prev not in ("ARROW", "FUNCTION") \
                and not (ty in ("FUNCTION", "GLOBAL") and prev == "PRIVATE"):
            boundary = True
        elif depth == 0 and i > start:
            if ty == "EMBEDDED":
                if kind in ("FUNCTION", "PRIVATE_FUNCTION"):
                    boundary = has_body
                elif kind == "PROBE":
                    boundary = has_body
                else:
                    boundary = True
        if boundary:
            chunks.append((start, i))
            start = i
            kind, has_body, depth = "", False, 0
        if i == start:
            kind = ty
        elif kind == "PRIVATE" and i == start + 1 and ty == "FUNCTION":
            kind = "PRIVATE_FUNCTION"
        if ty in ("LBRACE", "LPAR", "LSQB"):
            depth += 1
        elif ty in ("RBRACE", "RPAR", "RSQB"):
            if depth > 0:
                depth -= 1
            if depth == 0 and ty == "RBRACE":
                has_body = True
        elif ty == "EMBEDDED" and depth == 0 and kind in ("FUNCTION", "PRIVATE_FUNCTION"):
            has_body = True
        prev = ty
    if start < n:
        chunks.append((start, n))
    return chunks
