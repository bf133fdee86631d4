"""Pass 1 for an editor: re-parse only the top-level declarations that changed.

pass 1 (:func:`stap_ls.syntax.parser.parse_file`) lexes and preprocesses the
whole file (cheap: a few ms for 1,000 lines), cuts the terminal stream into
declarations (:func:`~stap_ls.syntax.adapter.split_declarations`) and runs the
lark parser once per declaration (the expensive part).  This module does the
same, but keeps each declaration's result keyed by its text and terminals: a
declaration whose tokens are unchanged is not parsed again, its tree is
copied with every span moved to the new text (``delta`` characters), or, when
the text before it is unchanged too, shared as it is (its spans then name the
older :class:`SourceFile`, whose lines up to there are the same; features
compare sources by name).  Cached trees are never mutated, so older analyses
stay valid.

The result is the same :class:`~stap_ls.syntax.parser.ParseResult` that
``parse_file`` returns (``tests/ide/test_incremental.py`` compares them after
random edits).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

from stap_ls.syntax import ast as A
from stap_ls.syntax import parser as P
from stap_ls.syntax.adapter import split_declarations, to_terminals
from stap_ls.syntax.lexer import Tok, atwords_for
from stap_ls.syntax.preprocessor import PPError, Preprocessor
from stap_ls.text import Diagnostic, Related, Severity, SourceFile, Span

log = logging.getLogger("stap_ls.ide")


@dataclass
class _Entry:
    source: SourceFile
    start: int
    decls: list
    diags: list[Diagnostic]
    #: pass 1's "first 'return' of a probe" notes: (declaration index, ReturnStmt)
    returns: list = field(default_factory=list)


@dataclass
class DeclCache:
    """Declaration results of the previous version(s) of one document."""

    entries: dict[tuple, _Entry] = field(default_factory=dict)
    #: statistics of the last parse
    reused: int = 0
    parsed: int = 0


def _chunk_key(terms, items, start: int, end: int, src: SourceFile) -> tuple[tuple, int]:
    first = last = -1
    for t in terms[start:end]:
        it = items[t.start_pos]
        if isinstance(it, Tok) and it.source is src:
            if first < 0:
                first = it.start
            last = it.end
    text = src.text[first:last] if first >= 0 else ""
    return (text, tuple((t.type, str(t)) for t in terms[start:end])), first


def parse_incremental(source: SourceFile, opts: P.ParseOptions, cache: DeclCache | None
                      ) -> P.ParseResult:
    """Parse ``source`` like ``parse_file``, reusing unchanged declarations.

    pass 1's internals may change under us: if this mirror of ``parse_file``
    breaks, the error is logged once and ``parse_file`` answers (slower, same
    result)."""
    if cache is None:
        return P.parse_file(source, opts)
    try:
        return _parse(source, opts, cache)
    except (TypeError, ValueError, AttributeError, ImportError):
        if not _warned:
            _warned.append(True)
            log.exception("incremental parsing failed; parsing whole files instead")
        cache.entries.clear()
        return P.parse_file(source, opts)


_warned: list[bool] = []


def _wants_first_return() -> bool:
    import inspect
    try:
        return len(inspect.signature(P._check_file).parameters) >= 3
    except (TypeError, ValueError):
        return False


def _split(res) -> tuple[list, list, int | None]:
    if len(res) == 3:
        return res[0], res[1], res[2]
    decls, errs = res
    return decls, errs, None


def _parse(source: SourceFile, opts: P.ParseOptions, cache: DeclCache) -> P.ParseResult:
    toks, lexer = P.tokenize(source, opts)
    atwords = atwords_for(opts.env.compatible)
    pp = Preprocessor(toks, opts.env, opts.library_macros, atwords)
    stream = pp.run()
    version = getattr(opts, "language_version", None)
    if version is not None:
        from stap_ls.syntax.lexer import parser_atwords
        terms, items = to_terminals(stream, parser_atwords(version))
    else:
        terms, items = to_terminals(stream, atwords)
    diags: list[Diagnostic] = []
    for src, s, e, msg in lexer.warnings:
        diags.append(Diagnostic(Severity.WARNING, msg, Span(src, s, e), "unterminated-comment",
                                kind="WARNING"))
    for w in pp.warnings:
        diags.append(P._diag(w.message, w.tok, Severity.WARNING, w.related, kind="WARNING",
                             marker="at"))
    f = A.StapFile(source.name)
    lark, builder = P._parser()
    extra: tuple = (version,) if version is not None else ()
    first_return: dict | None = {} if _wants_first_return() else None
    new_entries: dict[tuple, _Entry] = {}
    prefixes: dict[int, int] = {}

    def prefix(old: SourceFile) -> int:
        if id(old) not in prefixes:
            prefixes[id(old)] = common_prefix(old.text, source.text)
        return prefixes[id(old)]

    cache.reused = cache.parsed = 0
    chunks = split_declarations(terms)
    todo = list(reversed(chunks))
    while todo:
        start, end = todo.pop()
        key, first = _chunk_key(terms, items, start, end, source)
        hit = cache.entries.get(key) if first >= 0 else None
        if hit is not None:
            if first == hit.start and first + len(key[0]) <= prefix(hit.source):
                # unchanged text up to here: same lines and columns, share the tree
                decls, errs = hit.decls, hit.diags
                if first_return is not None:
                    for i, ret in hit.returns:
                        first_return[id(decls[i])] = ret
            else:
                mover = _Mover(hit.source, source, first - hit.start)
                decls = [mover.node(d) for d in hit.decls]
                errs = [mover.diag(d) for d in hit.diags]
                if first_return is not None:
                    for i, ret in hit.returns:
                        first_return[id(decls[i])] = mover.map.get(id(ret), ret)
            new_entries[key] = hit
            cache.reused += 1
        else:
            fr: dict = {}
            more_args = extra + ((fr,) if first_return is not None else ())
            decls, errs, resume = _split(P._parse_chunk(lark, builder, terms, items, start, end,
                                                        opts.privileged, *more_args))
            if first_return is not None:
                first_return.update(fr)
            cache.parsed += 1
            if resume is not None and resume > start:
                more = [(s + resume, e + resume)
                        for s, e in split_declarations(terms[resume:end])]
                todo.extend(reversed(more))
            elif first >= 0:
                rets = [(i, fr[id(d)]) for i, d in enumerate(decls) if id(d) in fr]
                new_entries[key] = _Entry(source, first, decls, errs, rets)
        for d in decls:
            if isinstance(d, list):
                f.decls.extend(d)
            else:
                f.decls.append(d)
        diags.extend(errs)
    cache.entries = new_entries
    if first_return is not None:
        P._check_file(f, diags, first_return)
    else:
        P._check_file(f, diags)
    if version is not None:
        empty = all(isinstance(items[terms[s].start_pos], PPError) for s, _e in chunks)
    else:
        empty = not terms
    return P.ParseResult(f, diags, toks, items, empty=empty, saw_tokens=bool(toks))


def common_prefix(a: str, b: str) -> int:
    """Length of the common prefix of two strings (binary search over slices)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


class _Mover:
    """Copies a tree, moving spans of ``old`` by ``delta`` into ``new``."""

    __slots__ = ("old", "new", "delta", "map")

    def __init__(self, old: SourceFile, new: SourceFile, delta: int) -> None:
        self.old, self.new, self.delta = old, new, delta
        #: id(old node) -> its copy
        self.map: dict[int, object] = {}

    def span(self, s: Span | None) -> Span | None:
        if s is None or s.source is not self.old:
            return s
        return Span(self.new, s.start + self.delta, s.end + self.delta)

    def node(self, n):
        if isinstance(n, list):
            return [self.node(x) for x in n]
        if not dataclasses.is_dataclass(n) or isinstance(n, (Span, Diagnostic)):
            return n
        cls = type(n)
        c = cls.__new__(cls)
        for f in _fields(cls):
            v = getattr(n, f)
            tv = type(v)
            if tv is Span:
                v = self.span(v)
            elif tv is list:
                v = [self.node(x) for x in v]
            elif tv in _LEAF:
                pass
            elif dataclasses.is_dataclass(v):
                v = self.node(v)
            object.__setattr__(c, f, v)
        self.map[id(n)] = c
        return c

    def diag(self, d: Diagnostic) -> Diagnostic:
        if self.delta == 0 and self.old is self.new:
            return d
        rel = tuple(Related(self.span(r.span), r.message) for r in d.related)
        return dataclasses.replace(d, span=self.span(d.span), related=rel)


_LEAF = frozenset({str, int, bool, type(None), float})
_FIELDS: dict[type, tuple[str, ...]] = {}


def _fields(cls: type) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = tuple(f.name for f in dataclasses.fields(cls))
        _FIELDS[cls] = names
    return names
