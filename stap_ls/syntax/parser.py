"""Pass 1: parse a SystemTap file into a :class:`StapFile` and diagnostics.

Pipeline: :class:`~stap_ls.syntax.lexer.Lexer` → :class:`~stap_ls.syntax.preprocessor.Preprocessor`
→ :func:`~stap_ls.syntax.adapter.to_terminals` → one lark LALR parse per
top-level declaration (:func:`~stap_ls.syntax.adapter.split_declarations`),
building the AST on the fly (:class:`~stap_ls.syntax.builder.AstBuilder`).

Parsing never fails: a declaration that does not parse is reported with stap's
wording (``parse error: expected ...``, blamed on the token stap would show
after ``saw:``) and left out of the tree; the next declaration parses as usual.
Deeply nested input that would exhaust Python's recursion is reported, not
raised.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.lexer import Lexer as LarkLexer

from stap_ls.syntax import ast as A
from stap_ls.syntax.adapter import split_declarations, to_terminals
from stap_ls.syntax.builder import AstBuilder
from stap_ls.syntax.lexer import JUNK, Lexer, Tok, atwords_for
from stap_ls.syntax.preprocessor import Macro, PPEnv, PPError, Preprocessor
from stap_ls.text import Diagnostic, Related, Severity, SourceFile, Span

GRAMMAR_FILE = Path(__file__).with_name("stap.lark")


class _TokenFeed(LarkLexer):
    """lark 'lexer' that hands over terminals we made ourselves."""

    def __init__(self, lexer_conf) -> None:  # noqa: D107 - lark's interface
        pass

    def lex(self, data):  # type: ignore[override]
        return iter(data)


_lock = threading.Lock()


def _cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = os.path.join(base, "stap-ls")
    try:
        os.makedirs(path, exist_ok=True)
        return path
    except OSError:
        return ""


@lru_cache(maxsize=1)
def _parser() -> tuple[Lark, AstBuilder]:
    builder = AstBuilder()
    grammar = GRAMMAR_FILE.read_text()
    cache_dir = _cache_dir()
    cache = os.path.join(cache_dir, "grammar.lark.cache") if cache_dir else False
    lark = Lark(grammar, parser="lalr", lexer=_TokenFeed, transformer=builder,
                maybe_placeholders=True, cache=cache)
    return lark, builder


@dataclass
class ParseResult:
    file: A.StapFile
    diagnostics: list[Diagnostic]
    #: the lexer's tokens (before preprocessing), for highlighting and folding
    tokens: list[Tok]
    #: the preprocessed stream the grammar saw, with ranges of each declaration
    stream: list = field(default_factory=list)
    empty: bool = False
    saw_tokens: bool = False

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == Severity.ERROR]


@dataclass
class ParseOptions:
    env: PPEnv = field(default_factory=PPEnv)
    args: list[str] = field(default_factory=list)
    privileged: bool = False
    user_file: bool = True
    library_macros: dict[str, Macro] = field(default_factory=dict)


def tokenize(source: SourceFile, opts: ParseOptions) -> tuple[list[Tok], Lexer]:
    lexer = Lexer(opts.args, opts.env.compatible)
    return lexer.tokenize(source), lexer


def parse_file(source: SourceFile, opts: ParseOptions | None = None) -> ParseResult:
    """Parse one file (pass 1)."""
    opts = opts or ParseOptions()
    toks, lexer = tokenize(source, opts)
    atwords = atwords_for(opts.env.compatible)
    pp = Preprocessor(toks, opts.env, opts.library_macros, atwords)
    stream = pp.run()
    terms, items = to_terminals(stream, atwords)
    diags: list[Diagnostic] = []
    for src, s, e, msg in lexer.warnings:
        diags.append(Diagnostic(Severity.WARNING, msg, Span(src, s, e), "unterminated-comment",
                                kind="WARNING"))
    for w in pp.warnings:
        diags.append(_diag(w.message, w.tok, Severity.WARNING, w.related, kind="WARNING",
                           marker="at"))
    f = A.StapFile(source.name)
    lark, builder = _parser()
    for start, end in split_declarations(terms):
        decls, errs = _parse_chunk(lark, builder, terms, items, start, end, opts.privileged)
        for d in decls:
            if isinstance(d, list):
                f.decls.extend(d)
            else:
                f.decls.append(d)
        diags.extend(errs)
    _check_file(f, diags)
    empty = not terms
    return ParseResult(f, diags, toks, items, empty=empty, saw_tokens=bool(toks))


def _parse_chunk(lark: Lark, builder: AstBuilder, terms: list[Token], items: list,
                 start: int, end: int, privileged: bool):
    chunk = terms[start:end]
    with _lock:
        builder.items = items
        builder.privileged = privileged
        builder.errors = []
        result = None
        error: Diagnostic | None = None
        try:
            result = lark.parse(chunk)
        except UnexpectedToken as e:
            error = _error_from(e.token, e.expected, items, chunk)
        except UnexpectedEOF as e:
            error = _error_from(None, set(e.expected), items, chunk)
        except (UnexpectedCharacters, UnexpectedInput) as e:  # pragma: no cover - no lark lexer
            error = _diag(str(e), None)
        except RecursionError:
            first = items[chunk[0].start_pos]
            error = _diag("nesting too deep to parse", first if isinstance(first, Tok) else None,
                          code="too-deep")
        built_errors = list(builder.errors)
    diags: list[Diagnostic] = []
    if error is not None:
        diags.append(error)
        # errors met while stap skips to the next declaration are still reported
        failed_at = error.span.start if error.span is not None else -1
        for t in chunk:
            it = items[t.start_pos]
            if isinstance(it, PPError) and (it.tok is None or it.tok.start > failed_at) \
                    and it.message != error.message:
                diags.append(_diag(it.message, it.tok, related=it.related, marker="at"))
        return [], diags
    decl = result
    for msg, where in built_errors:
        diags.append(_diag(msg, where))
    if diags:
        # stap stops at its first error in a declaration and drops it
        return [], diags[:1]
    return [decl], diags


_TOP_LEVEL = "expected 'probe', 'global', 'private', 'function', or '%{'"

_SIMPLE_EXPECT = {
    frozenset({"RPAR"}): "expected ')'",
    frozenset({"RSQB"}): "expected ']'",
    frozenset({"LPAR"}): "expected '('",
    frozenset({"LBRACE"}): "expected '{'",
    frozenset({"SEMI"}): "expected ';'",
    frozenset({"COLON"}): "expected ':'",
    frozenset({"IN"}): "expected 'in'",
    frozenset({"CATCH"}): "expected 'catch'",
    frozenset({"COMMA"}): "expected ','",
    frozenset({"STRING"}): "expected literal string",
    frozenset({"NUMBER"}): "expected number",
    frozenset({"MINUS", "NUMBER"}): "expected number",
    frozenset({"COMMA", "RPAR"}): "expected ',' or ')'",
    frozenset({"COMMA", "RSQB"}): "expected ',' or ']'",
    frozenset({"STRING_KW", "LONG_KW"}): "expected 'string' or 'long'",
    frozenset({"IDENT"}): "expected identifier",
}


def _error_from(tok: Token | None, expected, items: list, chunk: list[Token]) -> Diagnostic:
    expected = {e for e in expected if e}
    item = items[tok.start_pos] if tok is not None else None
    if isinstance(item, PPError):
        return _diag(item.message, item.tok, related=item.related, marker="at")
    if isinstance(item, Tok) and item.kind == JUNK:
        return _diag(item.message or "unknown junk token", item)
    if tok is None:
        last = items[chunk[-1].start_pos] if chunk else None
        return _diag("unexpected end-of-file", last if isinstance(last, Tok) else None)
    return _diag(_message_for(tok, expected, chunk), item if isinstance(item, Tok) else None)


def _message_for(tok: Token, expected: set[str], chunk: list[Token]) -> str:
    if "$END" in expected or tok is chunk[0]:
        return _TOP_LEVEL
    if tok.type == "AT_OTHER" and ("IDENT" in expected or "TSYM" in expected):
        return f"unknown operator {tok}"
    key = frozenset(expected)
    if key in _SIMPLE_EXPECT:
        return _SIMPLE_EXPECT[key]
    if "PP_NAME" in expected:
        return "expected identifier or '*' or '{'"
    if {"EQUAL", "PLUSEQ"} & expected and "LBRACE" in expected:
        return "expected one of ', { } = +='"
    if "RBRACE" in expected and "RETURN" in expected:
        return "expected statement"
    if "IDENT" in expected and "NUMBER" in expected:
        if tok.type in ("RPAR", "RSQB", "RBRACE", "SEMI", "COMMA", "COLON") or \
                tok.type.endswith("_KW") or tok.type in _KEYWORDS:
            return "expected literal string or number"
        return "expected value"
    if "RPAR" in expected:
        return "expected ')'"
    if "RSQB" in expected:
        return "expected ']'"
    if "IDENT" in expected:
        return "expected identifier"
    names = sorted(_show(e) for e in expected)
    return "expected one of " + " ".join(names) if len(names) > 1 else f"expected {names[0]}"


_KEYWORDS = frozenset({"PROBE", "GLOBAL", "PRIVATE", "FUNCTION", "IF", "ELSE", "FOR",
                       "FOREACH", "IN", "LIMIT", "RETURN", "DELETE", "WHILE", "BREAK",
                       "CONTINUE", "NEXT", "TRY", "CATCH"})

_SHOW = {"LPAR": "(", "RPAR": ")", "LBRACE": "{", "RBRACE": "}", "LSQB": "[", "RSQB": "]",
         "COMMA": ",", "SEMI": ";", "COLON": ":", "QMARK": "?", "BANG": "!", "DOT": ".",
         "EQUAL": "=", "PLUSEQ": "+=", "ARROW": "->", "STAR": "*"}


def _show(term: str) -> str:
    if term in _SHOW:
        return f"'{_SHOW[term]}'"
    if term.endswith("_KW"):
        return f"'{term[:-3].lower()}'"
    if term in _KEYWORDS:
        return f"'{term.lower()}'"
    return term.lower()


def _diag(message: str, where, severity: Severity = Severity.ERROR, related=(),
          kind: str = "parse error", code: str = "parse", marker: str = "saw") -> Diagnostic:
    span = None
    saw = ""
    if isinstance(where, Tok):
        span = Span(where.source, where.start, where.end)
        saw = where.describe() if where.kind != JUNK else "junk ''"
        if where.kind == JUNK:
            marker = "at"
    elif isinstance(where, Span):
        span = where
    rel = []
    for msg, t in related or ():
        if isinstance(t, Tok):
            rel.append(Related(Span(t.source, t.start, t.end), msg))
    return Diagnostic(severity, message, span, code, kind=kind, saw=saw, related=tuple(rel),
                      marker=marker)


def _check_file(f: A.StapFile, diags: list[Diagnostic]) -> None:
    """File-wide checks of stap's parser: duplicate globals, 'return' in probes."""
    seen: dict[str, A.GlobalDecl] = {}
    keep = []
    for d in f.decls:
        if isinstance(d, A.GlobalDecl):
            prev = seen.get(d.name)
            if prev is not None:
                msg = ("duplicate global name" if prev.private == d.private
                       else "global versus private variable declaration conflict")
                diags.append(Diagnostic(Severity.ERROR, msg, d.name_span, "parse",
                                        related=(Related(prev.name_span, "first declared here"),)
                                        if prev.name_span else ()))
                continue
            seen[d.name] = d
        elif isinstance(d, (A.ProbeDecl, A.AliasDecl)):
            bad = _find_return(d.body)
            if bad is None and isinstance(d, A.AliasDecl) and d.body2 is not None:
                bad = _find_return(d.body2)
            if bad is not None:
                diags.append(Diagnostic(Severity.ERROR, "found 'return' not in function context",
                                        bad.span, "parse", saw="keyword 'return'"))
                continue
        keep.append(d)
    f.decls = keep


def _find_return(node) -> A.ReturnStmt | None:
    for n in A.walk(node):
        if isinstance(n, A.ReturnStmt):
            return n
    return None


def raise_recursion_limit(limit: int = 20000) -> None:
    """Deeply nested scripts need a deeper stack than Python's default; the
    CLI and server call this once, in a thread with a large stack."""
    if sys.getrecursionlimit() < limit:
        sys.setrecursionlimit(limit)
