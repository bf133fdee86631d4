"""Pass 1: parse a SystemTap file into a :class:`StapFile` and diagnostics.

Pipeline: :class:`~stap_ls.syntax.lexer.Lexer` → :class:`~stap_ls.syntax.preprocessor.Preprocessor`
→ :func:`~stap_ls.syntax.adapter.to_terminals` → one lark LALR parse per
top-level declaration (:func:`~stap_ls.syntax.adapter.split_declarations`),
building the AST on the fly (:class:`~stap_ls.syntax.builder.AstBuilder`).

Parsing never fails: a declaration that does not parse is reported with stap's
wording (``parse error: expected ...``, blamed on the token stap would show
after ``saw:``) and left out of the tree; the next declaration parses as usual.
Deeply nested input (more than ``MAX_DEPTH`` levels) is reported as an error
and its declaration dropped, so no later recursive walk can overflow.
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
from lark.parsers.lalr_analysis import Shift

from stap_ls.syntax import ast as A
from stap_ls.syntax.adapter import split_declarations, to_terminals
from stap_ls.syntax.builder import AstBuilder
from stap_ls.syntax.lexer import JUNK, Lexer, Tok, atwords_for, parser_atwords
from stap_ls.syntax.preprocessor import Macro, PPEnv, PPError, Preprocessor
from stap_ls.text import Diagnostic, Related, Severity, SourceFile, Span

GRAMMAR_FILE = Path(__file__).with_name("stap.lark")

#: deepest tree a declaration may have: the -p1 printer and the analyses
#: above pass 1 walk trees recursively, so deeper input is an error (no
#: real script comes near it; stap's own recursive parser would crash)
MAX_DEPTH = 800


class _TokenFeed(LarkLexer):
    """lark 'lexer' that hands over terminals we made ourselves."""

    def __init__(self, lexer_conf) -> None:  # noqa: D107 - lark's interface
        pass

    def lex(self, data):  # type: ignore[override]
        return iter(data)


_lock = threading.Lock()
_init_lock = threading.RLock()


def _cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = os.path.join(base, "stap-ls")
    try:
        os.makedirs(path, exist_ok=True)
        return path
    except OSError:
        return ""


class _FastLALR:
    """A tight LALR(1) driver over lark's own parse table and callbacks.

    lark's ``ParserState.feed_token`` looks callbacks up in a dict keyed by
    ``Rule`` objects whose hashing and equality are Python code; on the
    tapset library that was a third of pass 1.  Here rules are numbered once
    and actions are plain tuples; behaviour (errors included: the same
    ``UnexpectedToken`` with the same expected set and ``$END`` token) is
    lark's.
    """

    def __init__(self, lark: Lark) -> None:
        inner = lark.parser.parser.parser
        table = inner.parse_table
        callbacks = inner.callbacks
        numbers: dict = {}
        self.states: dict[int, dict[str, tuple[bool, int]]] = {}
        for state, actions in table.states.items():
            row = {}
            for sym, (action, arg) in actions.items():
                if action is Shift:
                    row[sym] = (True, arg)
                else:
                    row[sym] = (False, numbers.setdefault(arg, len(numbers)))
            self.states[state] = row
        self.rules: list[tuple[int, str, object]] = [None] * len(numbers)  # type: ignore
        for rule, n in numbers.items():
            size, callback = len(rule.expansion), callbacks[rule]
            if size == 1 and rule.options.expand1 and self._passes_through(callback):
                size = -1       # a '?rule' with one child: the child is the value
            self.rules[n] = (size, rule.origin.name, callback)
        self.start = table.start_states["start"]
        self.end = table.end_states["start"]

    @staticmethod
    def _passes_through(callback) -> bool:
        probe = object()
        try:
            return callback([probe]) is probe
        except Exception:
            return False

    def _expected(self, state: int) -> set[str]:
        return {s for s in self.states[state] if s.isupper()}

    def parse(self, tokens: list[Token]):
        states = self.states
        rules = self.rules
        state_stack = [self.start]
        value_stack: list = []
        for tok in tokens:
            ttype = tok.type
            while True:
                try:
                    shift, arg = states[state_stack[-1]][ttype]
                except KeyError:
                    raise UnexpectedToken(tok, self._expected(state_stack[-1])) from None
                if shift:
                    state_stack.append(arg)
                    value_stack.append(tok)
                    break
                size, origin, callback = rules[arg]
                if size < 0:
                    state_stack.pop()
                    state_stack.append(states[state_stack[-1]][origin][1])
                    continue
                if size:
                    args = value_stack[-size:]
                    del state_stack[-size:]
                    del value_stack[-size:]
                else:
                    args = []
                value_stack.append(callback(args))
                state_stack.append(states[state_stack[-1]][origin][1])
        end = Token.new_borrow_pos("$END", "", tokens[-1]) if tokens else Token("$END", "", 0, 1, 1)
        while True:
            try:
                shift, arg = states[state_stack[-1]]["$END"]
            except KeyError:
                raise UnexpectedToken(end, self._expected(state_stack[-1])) from None
            size, origin, callback = rules[arg]
            if size < 0:
                state_stack.pop()
                state_stack.append(states[state_stack[-1]][origin][1])
            else:
                if size:
                    args = value_stack[-size:]
                    del state_stack[-size:]
                    del value_stack[-size:]
                else:
                    args = []
                value_stack.append(callback(args))
                state_stack.append(states[state_stack[-1]][origin][1])
            if state_stack[-1] == self.end:
                return value_stack[-1]


def _fast() -> _FastLALR:
    with _init_lock:
        return _fast_once()


@lru_cache(maxsize=1)
def _fast_once() -> _FastLALR:
    lark, builder = _parser()
    with _lock:
        fast = _FastLALR(lark)
        builder.errors = []     # probing the callbacks may have recorded some
        builder.returns = []
    return fast


def _parser() -> tuple[Lark, AstBuilder]:
    """The one grammar and its one builder.  Built under a lock: two threads
    parsing for the first time (the server's document and its library load)
    must not each build a pair, or the fast driver's callbacks would fill a
    builder whose ``items`` the other thread never set."""
    with _init_lock:
        return _parser_once()


@lru_cache(maxsize=1)
def _parser_once() -> tuple[Lark, AstBuilder]:
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
    #: gate language features on ``env.compatible`` (stap's lexer
    #: ``check_compatible``); off for the built-in tapset directory, whose files
    #: may use every feature whatever ``--compatible`` says (pf_no_compatible)
    check_compatible: bool = True

    @property
    def language_version(self) -> str:
        """The version whose features the lexer and parser accept."""
        return self.env.compatible if self.check_compatible else ALL_FEATURES


#: a version later than any stap's: every feature is on
ALL_FEATURES = "99999"


def tokenize(source: SourceFile, opts: ParseOptions) -> tuple[list[Tok], Lexer]:
    lexer = Lexer(opts.args, opts.language_version)
    return lexer.tokenize(source), lexer


def parse_file(source: SourceFile, opts: ParseOptions | None = None) -> ParseResult:
    """Parse one file (pass 1)."""
    opts = opts or ParseOptions()
    toks, lexer = tokenize(source, opts)
    atwords = atwords_for(opts.env.compatible)
    pp = Preprocessor(toks, opts.env, opts.library_macros, atwords)
    stream = pp.run()
    version = opts.language_version
    terms, items = to_terminals(stream, parser_atwords(version))
    diags: list[Diagnostic] = []
    for src, s, e, msg in lexer.warnings:
        diags.append(Diagnostic(Severity.WARNING, msg, Span(src, s, e), "unterminated-comment",
                                kind="WARNING"))
    for w in pp.warnings:
        diags.append(_diag(w.message, w.tok, Severity.WARNING, w.related, kind="WARNING",
                           marker="at"))
    f = A.StapFile(source.name)
    lark, builder = _parser()
    chunks = split_declarations(terms)
    first_return: dict[int, A.ReturnStmt] = {}
    todo = list(reversed(chunks))
    while todo:
        start, end = todo.pop()
        decls, errs, resume = _parse_chunk(lark, builder, terms, items, start, end,
                                           opts.privileged, version, first_return)
        if resume is not None and resume > start:
            more = [(s + resume, e + resume) for s, e in split_declarations(terms[resume:end])]
            todo.extend(reversed(more))
        add_decls(f, decls)
        diags.extend(errs)
    _check_file(f, diags, first_return)
    # stap's file is "empty" when no top-level declaration started with a
    # token: each one that began was a preprocessor error (thrown from peek)
    empty = all(isinstance(items[terms[s].start_pos], PPError) for s, _e in chunks)
    return ParseResult(f, diags, toks, items, empty=empty, saw_tokens=bool(toks))


def add_decls(f: A.StapFile, decls: list) -> None:
    """Append a parsed chunk's declarations to ``f`` (an item may be a list of several)."""
    for d in decls:
        if isinstance(d, list):
            f.decls.extend(d)
        else:
            f.decls.append(d)


def _parse_chunk(lark: Lark, builder: AstBuilder, terms: list[Token], items: list,
                 start: int, end: int, privileged: bool, version: str = ALL_FEATURES,
                 first_return: dict | None = None):
    """Parse one declaration.  Returns (decls, diagnostics, resume index or
    None); the first 'return' of a probe or alias goes into ``first_return``
    (by the declaration's id) for :func:`_check_file`."""
    if first_return is None:
        first_return = {}
    chunk = terms[start:end]
    fast = _fast()      # built before the builder is set up for this chunk
    if chunk[0].type == "EMBEDDED" and not privileged and len(chunk) > 1:
        # stap reports top-level embedded code in an unprivileged script and
        # goes on with the next token (no skip to the next declaration)
        return [], [_diag("embedded code in unprivileged script; need stap -g",
                          items[chunk[0].start_pos])], start + 1
    with _lock:
        builder.items = items
        builder.privileged = privileged
        builder.set_version(version)
        builder.errors = []
        result = None
        error: Diagnostic | None = None
        try:
            result = fast.parse(chunk)
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
        returns = list(builder.returns)
    if error is None and not built_errors:
        if end - start > MAX_DEPTH // 2 and any(A.depth_exceeds(d, MAX_DEPTH) for d in
                                                (result if isinstance(result, list) else [result])):
            first = items[chunk[0].start_pos]
            return [], [_diag(f"nesting too deep (more than {MAX_DEPTH} levels of statements "
                              "and expressions)", first if isinstance(first, Tok) else None,
                              code="too-deep", marker="at")], None
        if returns and isinstance(result, (A.ProbeDecl, A.AliasDecl)):
            first_return[id(result)] = returns[0]
        return [result], [], None
    if built_errors:
        # a check made while reducing came before any token the LALR parser
        # stopped at: stap, parsing top-down, reports that one first
        error = _built(*built_errors[0])
    assert error is not None
    diags = [error]
    if error.message in _NO_SKIP:
        skip = _NO_SKIP[error.message]
        # stap throws these without skipping to the next declaration: it
        # goes on parsing, at top level, from the offending token
        for i in range(start, end):
            it = items[terms[i].start_pos]
            if isinstance(it, Tok) and error.span is not None and it.start == error.span.start \
                    and it.source is error.span.source:
                return [], diags, i + skip
    # errors met while stap skips to the next declaration are still reported
    failed_at = error.span.start if error.span is not None else -1
    for t in chunk:
        it = items[t.start_pos]
        if isinstance(it, PPError) and (it.tok is None or it.tok.start > failed_at) \
                and it.message != error.message:
            diags.append(_diag(it.message, it.tok, related=it.related, marker="at"))
    return [], diags, None


def _built(msg: str, where) -> Diagnostic:
    if isinstance(where, tuple):
        return _diag(msg, where[1], marker=where[0])
    return _diag(msg, where)


#: errors stap raises with skip_some=false: parsing goes on, at top level, at
#: the offending token (0) or the one after it (1)
_NO_SKIP = {"embedded expression code in unprivileged script; need stap -g": 0,
            "using @kregister operator not permitted; need stap -g": 1,
            "using @kderef operator not permitted; need stap -g": 1}


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
    frozenset({"MINUS", "NUMBER", "STRING"}): "expected literal string or number",
    frozenset({"LPAR", "COLON"}): "expected '('",
}


def _error_from(tok: Token | None, expected, items: list, chunk: list[Token]) -> Diagnostic:
    expected = {e for e in expected if e}
    item = items[tok.start_pos] if tok is not None else None
    if isinstance(item, PPError):
        if item.at_eof:
            return _eof_diag(item.message, item.tok)
        return _diag(item.message, item.tok, related=item.related, marker="at")
    if isinstance(item, Tok) and item.kind == JUNK:
        return _diag(item.message or "unknown junk token", item)
    if tok is None or tok.type == "$END":
        last = items[chunk[-1].start_pos] if chunk else None
        last = last if isinstance(last, Tok) else getattr(last, "tok", None)
        msg = "unexpected end-of-file" if tok is None else _message_for(tok, expected, chunk)
        return _eof_diag(msg, last)
    return _diag(_message_for(tok, expected, chunk), item if isinstance(item, Tok) else None)


_NAMES = frozenset({"IDENT", "RPAR", "STRING_KW", "LONG_KW", "PRINT_FMT", "PRINT_DELIM",
                    "PRINT_PLAIN"})


def _open_parens(chunk: list[Token], tok: Token) -> int:
    depth = 0
    for t in chunk:
        if t is tok:
            break
        if t.type == "LPAR":
            depth += 1
        elif t.type == "RPAR" and depth:
            depth -= 1
    return depth


def _message_for(tok: Token, expected: set[str], chunk: list[Token]) -> str:
    if "RPAR" in expected and "$END" in expected and _open_parens(chunk, tok):
        # LALR merged lookaheads: inside '(...)' only ')' can follow
        return "expected ')'"
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
    if {"COMMA", "RPAR", "COLON"} <= expected:
        return "expected ',' or ')'"         # a function's parameter list
    if "IDENT" in expected and expected <= _NAMES:
        return "expected identifier"
    if "RPAR" in expected:
        return "expected ')'"
    if "RSQB" in expected:
        return "expected ']'"
    if "IDENT" in expected:
        i = _index_in(chunk, tok)
        if i > 0 and chunk[i - 1].type == "ARROW":
            return "expected identifier or keyword"
        if i > 0 and chunk[i - 1].type == "IN":
            # stap's expect_ident_or_atword, for the array after 'in'
            return "expected identifier or statistical operation"
        return "expected identifier"
    names = sorted(_show(e) for e in expected)
    return "expected one of " + " ".join(names) if len(names) > 1 else f"expected {names[0]}"


def _index_in(chunk: list[Token], tok: Token) -> int:
    for i, t in enumerate(chunk):
        if t is tok:
            return i
    return -1


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


def _eof_diag(message: str, last: Tok | None) -> Diagnostic:
    """An error at the end of the file: stap prints ``saw: FILE EOF``."""
    if last is None:
        return _diag(message, None)
    end = len(last.source.text)
    return Diagnostic(Severity.ERROR, message, Span(last.source, end, end), "parse",
                      kind="parse error", saw="EOF", marker="eof")


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


def _check_file(f: A.StapFile, diags: list[Diagnostic],
                first_return: dict[int, A.ReturnStmt]) -> None:
    """File-wide checks of stap's parser: duplicate globals, 'return' in probes."""
    seen: dict[str, A.GlobalDecl] = {}
    keep = []
    for d in f.decls:
        if isinstance(d, A.GlobalDecl):
            prev = seen.get(d.name)
            if prev is not None:
                msg = ("duplicate global name" if prev.private == d.private
                       else "global versus private variable declaration conflict")
                diags.append(Diagnostic(Severity.ERROR, msg, d.name_span, "duplicate-global",
                                        saw=f"identifier '{d.name}'",
                                        related=(Related(prev.name_span, "first declared here"),)
                                        if prev.name_span else ()))
                continue
            seen[d.name] = d
        elif isinstance(d, (A.ProbeDecl, A.AliasDecl)):
            bad = first_return.get(id(d))
            if bad is not None:
                diags.append(Diagnostic(Severity.ERROR, "found 'return' not in function context",
                                        bad.span, "parse", saw="keyword"))
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
