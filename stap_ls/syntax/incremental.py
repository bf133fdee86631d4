"""Pass 1 after an edit: re-scan around the edit, re-parse only changed declarations.

:func:`parse_file_incremental` returns what :func:`~stap_ls.syntax.parser.parse_file`
returns for the same text and options — the same tree (printed with the -p1
printer), diagnostics and tokens — but reuses the previous version's work,
kept in a :class:`DeclCache` (one per document):

1. **lexing** — :meth:`~stap_ls.syntax.lexer.Lexer.retokenize` scans only
   from a safe restart point before the edit until the first token, past the
   edit, that starts where an old token started; other tokens are copies
   (moved by the length change) naming the new :class:`SourceFile`.
2. **preprocessing** — a file without conditionals (``%( %? %: %)``),
   ``@define`` or invocations of library macros comes out of the
   preprocessor as it went in, so its stream is its tokens.  Any other file
   is preprocessed whole (macros and conditionals reach across declarations).
3. **declarations** — the terminal stream is cut into top-level
   declarations as ``parse_file`` does; each one's result is cached by its
   text and terminals (and the parser options that matter).  A declaration
   found in the cache is not parsed again: its tree is shared when the text
   before it is unchanged too (its spans then name the older source, whose
   lines up to there are the same; features compare sources by name), or
   copied with every span moved to the new text.  Cached trees are never
   mutated, so older results stay valid.
4. **file checks** — duplicate globals and ``return`` outside functions, as
   ``parse_file`` does them (linear in the number of declarations).

An exception inside this module is a bug: it is logged, the cache is
cleared, ``DeclCache.fallbacks`` counts it and ``parse_file`` answers.
``tests/syntax/test_incremental.py`` compares results with ``parse_file``
after random edits (and fails on any fallback).
"""

from __future__ import annotations

import dataclasses
import logging
from bisect import bisect_left
from operator import attrgetter
from dataclasses import dataclass, field

from stap_ls.syntax import ast as A
from stap_ls.syntax import parser as P
from stap_ls.syntax.adapter import _term, split_declarations, to_terminals
from stap_ls.syntax.lexer import (OPERATOR, Lexer, Relexed, Tok, atwords_for, common_prefix,
                                  parser_atwords)
from stap_ls.syntax.preprocessor import PPError, Preprocessor
from stap_ls.text import Diagnostic, Related, Severity, SourceFile, Span

__all__ = ["DeclCache", "parse_file_incremental", "common_prefix"]

log = logging.getLogger("stap_ls.syntax")

#: operators that make the preprocessor do something (besides library macros)
_PP_OPERATORS = frozenset({"%(", "%?", "%:", "%)", "@define"})


@dataclass
class _Entry:
    """One cached declaration chunk: its trees, diagnostics and 'return' notes."""

    source: SourceFile
    start: int
    decls: list
    diags: list[Diagnostic]
    #: pass 1's "first 'return' of a probe" notes: (declaration index, ReturnStmt)
    returns: list = field(default_factory=list)


@dataclass
class _Last:
    """The previous version's tokens, for re-lexing around an edit."""

    source: SourceFile
    lex_key: tuple
    tokens: list[Tok]
    warnings: list
    #: the preprocessor passed the tokens through unchanged (with these library macros)
    pp_plain: bool
    library: object
    #: the grammar's terminals and their items; for each item, the index of
    #: its first token (plain files only)
    terms: list = field(default_factory=list)
    items: list = field(default_factory=list)
    firsts: list[int] | None = None
    atwords: frozenset = frozenset()
    #: (start, end) of each cached top-level chunk -> (its key, its offset)
    chunks: dict[tuple[int, int], tuple[tuple, int]] = field(default_factory=dict)
    #: the top-level chunks, in order
    chunk_list: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class DeclCache:
    """What the previous version(s) of one document left for the next parse."""

    entries: dict[tuple, _Entry] = field(default_factory=dict)
    last: _Last | None = None
    #: statistics of the last parse: declarations reused / parsed
    reused: int = 0
    parsed: int = 0
    #: tokens scanned by the last parse (all of them when lexing started over)
    scanned: int = 0
    #: parses that met an internal error here and were answered by parse_file
    fallbacks: int = 0


def parse_file_incremental(source: SourceFile, opts: P.ParseOptions | None,
                           cache: DeclCache | None) -> P.ParseResult:
    """Parse ``source`` like :func:`~stap_ls.syntax.parser.parse_file`,
    reusing what ``cache`` kept of the previous version (and updating it)."""
    opts = opts or P.ParseOptions()
    if cache is None:
        return P.parse_file(source, opts)
    try:
        return _parse(source, opts, cache)
    except Exception:       # a bug here must not cost the user pass 1
        log.exception("incremental pass 1 failed on %s; parsing the whole file", source.name)
        cache.entries, cache.last = {}, None
        cache.fallbacks += 1
        return P.parse_file(source, opts)


def _parse(source: SourceFile, opts: P.ParseOptions, cache: DeclCache) -> P.ParseResult:
    version = opts.language_version
    lex_key = (tuple(opts.args), version)
    last = cache.last if cache.last is not None and cache.last.lex_key == lex_key else None
    toks, lex_warnings, relexed = _lex(source, opts, cache, last)
    library = opts.library_macros
    if last is not None and relexed is not None and relexed.delta is not None \
            and last.pp_plain and last.library is library:
        # only the scanned tokens can have made the preprocessor do something
        plain = not _pp_relevant(toks[relexed.kept:relexed.kept + relexed.scanned], library)
    else:
        plain = not _pp_relevant(toks, library)
    diags: list[Diagnostic] = []
    for src, s, e, msg in lex_warnings:
        diags.append(Diagnostic(Severity.WARNING, msg, Span(src, s, e), "unterminated-comment",
                                kind="WARNING"))
    atwords = parser_atwords(version)
    spliced = None
    if plain:
        stream: list = toks
        if last is not None and last.pp_plain and last.firsts is not None \
                and relexed is not None and relexed.delta is not None \
                and last.atwords == atwords:
            spliced = _splice_terminals(last, toks, relexed, atwords)
    else:
        pp = Preprocessor(toks, opts.env, library, atwords_for(opts.env.compatible))
        stream = pp.run()
        for w in pp.warnings:
            diags.append(P._diag(w.message, w.tok, Severity.WARNING, w.related, kind="WARNING",
                                 marker="at"))
    if spliced is not None:
        terms, items, firsts, same = spliced
    else:
        terms, items = to_terminals(stream, atwords)
        firsts, same = (_firsts(stream, items) if plain else None), None
    new_last = _Last(source, lex_key, toks, lex_warnings, plain, library, terms, items, firsts,
                     atwords)
    f = A.StapFile(source.name)
    if same is not None and last is not None:
        chunks = _splice_chunks(last.chunk_list, terms, same[0], same[1], same[2])
    else:
        chunks = split_declarations(terms)
    new_last.chunk_list = chunks
    first_return = _parse_chunks(source, opts, cache, terms, items, chunks, f, diags,
                                 last.chunks if last is not None and same else {}, same,
                                 new_last.chunks)
    cache.last = new_last
    P._check_file(f, diags, first_return)
    empty = all(isinstance(items[terms[s].start_pos], PPError) for s, _e in chunks)
    return P.ParseResult(f, diags, toks, items, empty=empty, saw_tokens=bool(toks))


def _lex(source: SourceFile, opts: P.ParseOptions, cache: DeclCache, last: _Last | None
         ) -> tuple[list[Tok], list, Relexed | None]:
    lexer = Lexer(opts.args, opts.language_version)
    if last is None:
        toks = lexer.tokenize(source)
        cache.scanned = len(toks)
        return toks, lexer.warnings, None
    r = lexer.retokenize(source, last.source, last.tokens, last.warnings)
    cache.scanned = r.scanned
    return r.tokens, lexer.warnings, r


def _pp_relevant(toks, library) -> bool:
    for t in toks:
        if t.kind == OPERATOR:
            v = t.value
            if v in _PP_OPERATORS or (v[0] == "@" and v[1:] in library):
                return True
    return False


def _firsts(stream: list, items: list) -> list[int]:
    """For each item of :func:`to_terminals`, the index of its first stream
    token (items are the stream's tokens, or glued probe-point names)."""
    out = []
    i = 0
    n = len(stream)
    for it in items:
        out.append(i)
        if i < n and it is stream[i]:
            i += 1
            continue
        size = len(it.value)
        got = 0
        while got < size and i < n:
            got += len(stream[i].value)
            i += 1
    return out


def _glue(pieces: list[Tok]) -> Tok:
    """A probe-point name glued from ``pieces`` as the adapter glues it."""
    a, z = pieces[0], pieces[-1]
    return Tok(a.kind, "".join(t.value for t in pieces), a.source, a.start, z.end, a.ws_before,
               "", a.chain)


def _remap(last: _Last, toks: list[Tok], lo: int, hi: int, dtok: int) -> list:
    """Old items ``lo:hi`` made of the new tokens (token indexes + ``dtok``)."""
    old_toks, items, firsts = last.tokens, last.items, last.firsts
    assert firsts is not None
    n_old = len(old_toks)
    out = []
    for k in range(lo, hi):
        it = items[k]
        f = firsts[k]
        if it is old_toks[f]:
            out.append(toks[f + dtok])
        else:
            g = firsts[k + 1] if k + 1 < len(firsts) else n_old
            out.append(_glue(toks[f + dtok:g + dtok]))
    return out


def _splice_terminals(last: _Last, toks: list[Tok], r: Relexed, atwords: frozenset):
    """Terminals of a plain (not preprocessed) file after an edit: the old
    ones before the last ``probe`` ahead of the edit and after the first
    ``probe`` behind it (where the adapter's state starts afresh), new ones
    between.  Returns (terms, items, firsts, (prefix items, suffix start,
    item index shift, text length change))."""
    firsts = last.firsts
    assert firsts is not None
    terms_o = last.terms
    kept, resumed = r.kept, r.resumed
    dtok = kept + r.scanned - resumed
    ka = bisect_left(firsts, kept) - 1
    while ka > 0 and terms_o[ka].type != "PROBE":
        ka -= 1
    ka = max(ka, 0)
    kb = bisect_left(firsts, resumed)
    while kb < len(terms_o) and terms_o[kb].type != "PROBE":
        kb += 1
    s_a = firsts[ka] if firsts else 0
    if kb < len(terms_o):
        s_b = firsts[kb] + dtok
        mid = toks[s_a:s_b + 1]
        terms_m, items_m = to_terminals(mid, atwords)
        if not (items_m and items_m[-1] is toks[s_b] and terms_m[-1].type == "PROBE"):
            kb = len(terms_o)
    if kb >= len(terms_o):
        mid = toks[s_a:]
        terms_m, items_m = to_terminals(mid, atwords)
    for t in terms_m:
        t.start_pos += ka
    firsts_m = [f + s_a for f in _firsts(mid, items_m)]
    suffix_start = ka + len(items_m)
    dk = suffix_start - (kb + 1)
    tail = terms_o[kb + 1:]
    if dk:
        tail = [_term(t.type, t.value, t.start_pos + dk) for t in tail]
    terms = terms_o[:ka] + terms_m + tail
    items = _remap(last, toks, 0, ka, 0) + items_m + _remap(last, toks, kb + 1, len(terms_o), dtok)
    new_firsts = firsts[:ka] + firsts_m + [f + dtok for f in firsts[kb + 1:]]
    return terms, items, new_firsts, (ka, suffix_start, dk, r.delta)


def _splice_chunks(old: list[tuple[int, int]], terms, head: int, tail: int, dk: int
                   ) -> list[tuple[int, int]]:
    """:func:`split_declarations` of spliced terminals: the old chunks before
    the last one starting at or before ``head``, the old ones (moved by
    ``dk``) from the first ``probe`` chunk at or after ``tail - dk`` when the
    new terminals cut there too, and the terminals between split afresh (a
    chunk boundary resets the splitter's state)."""
    i = bisect_left(old, (head + 1, -1)) - 1
    cs = old[i][0] if i >= 0 else 0
    keep = old[:max(i, 0)]
    j = bisect_left(old, (tail - dk, -1))
    while j < len(old) and terms[old[j][0] + dk].type != "PROBE":
        j += 1
    if j < len(old):
        nb = old[j][0] + dk
        prev = terms[nb - 1].type if nb > 0 else ""
        if nb > cs and prev not in ("ARROW", "FUNCTION"):
            mid = [(a + cs, b + cs) for a, b in split_declarations(terms[cs:nb])]
            return keep + mid + [(a + dk, b + dk) for a, b in old[j:]]
    return keep + [(a + cs, b + cs) for a, b in split_declarations(terms[cs:])]


def _parse_chunks(source: SourceFile, opts: P.ParseOptions, cache: DeclCache, terms, items,
                  chunks, f: A.StapFile, diags: list[Diagnostic], old_chunks: dict,
                  same: tuple | None, new_chunks: dict) -> dict:
    """Parse or reuse each declaration chunk; returns pass 1's first-return
    notes.  ``same`` (from :func:`_splice_terminals`) says which chunks are
    the old ones (``old_chunks``) unchanged or moved, without comparing their
    terminals."""
    version = opts.language_version
    lark, builder = P._parser()
    first_return: dict = {}
    new_entries: dict[tuple, _Entry] = {}
    prefixes: dict[int, int] = {}
    popts = (opts.privileged, version)
    head, tail_start, dk, delta = same if same is not None else (0, 1 << 62, 0, 0)

    def prefix(old: SourceFile) -> int:
        if id(old) not in prefixes:
            prefixes[id(old)] = common_prefix(old.text, source.text)
        return prefixes[id(old)]

    cache.reused = cache.parsed = 0
    todo = list(reversed(chunks))
    entries = cache.entries
    while todo:
        start, end = todo.pop()
        known = None
        if end <= head:
            known = old_chunks.get((start, end))
        elif start >= tail_start:
            known = old_chunks.get((start - dk, end - dk))
            if known is not None:
                known = (known[0], known[1] + delta)
        if known is not None:
            key, first = known
        else:
            key, first = _chunk_key(terms, items, start, end, source, popts)
        hit = entries.get(key) if first >= 0 else None
        if hit is not None:
            if first == hit.start and first + len(key[0]) <= prefix(hit.source):
                # unchanged text up to here: same lines and columns, share the tree
                decls, errs = hit.decls, hit.diags
                for i, ret in hit.returns:
                    first_return[id(decls[i])] = ret
            else:
                mover = _Mover(hit.source, source, first - hit.start)
                decls = [mover.node(d) for d in hit.decls]
                errs = [mover.diag(d) for d in hit.diags]
                for i, ret in hit.returns:
                    first_return[id(decls[i])] = mover.map.get(id(ret), ret)
            new_entries[key] = hit
            new_chunks[(start, end)] = (key, first)
            cache.reused += 1
        else:
            fr: dict = {}
            decls, errs, resume = P._parse_chunk(lark, builder, terms, items, start, end,
                                                 opts.privileged, version, fr)
            first_return.update(fr)
            cache.parsed += 1
            if resume is not None and resume > start:
                more = [(s + resume, e + resume)
                        for s, e in split_declarations(terms[resume:end])]
                todo.extend(reversed(more))
            elif first >= 0 and not any(d.marker == "eof" for d in errs):
                # (an error at the end of the file moves with the file's end)
                rets = [(i, fr[id(d)]) for i, d in enumerate(decls) if id(d) in fr]
                new_entries[key] = _Entry(source, first, decls, errs, rets)
                new_chunks[(start, end)] = (key, first)
        P.add_decls(f, decls)
        diags.extend(errs)
    cache.entries = new_entries
    return first_return


def _chunk_key(terms, items, start: int, end: int, src: SourceFile, popts: tuple
               ) -> tuple[tuple, int]:
    """A chunk's cache key: the text of ``src`` from the first to the last
    offset any of its items names (a macro body or the ``%(`` of an error
    may lie before the chunk), its terminals (values and types), and the
    parser options; and that first offset (-1: no item names ``src``)."""
    chunk = terms[start:end]
    first, last = _NO_OFFSET, -1
    for it in map(items.__getitem__, map(_START_POS, chunk)):
        if it.__class__ is Tok:
            if it.source is src:
                if it.start < first:
                    first = it.start
                if it.end > last:
                    last = it.end
            continue
        for r in [it.tok] + [r for _m, r in it.related]:
            if isinstance(r, Tok) and r.source is src:
                first = min(first, r.start)
                last = max(last, r.end)
    if last < 0:
        return ("", tuple(map(str, chunk)), tuple(map(_TYPE, chunk)), popts), -1
    return (src.text[first:last], tuple(map(str, chunk)), tuple(map(_TYPE, chunk)), popts), first


_NO_OFFSET = 1 << 62
_START_POS = attrgetter("start_pos")
_TYPE = attrgetter("type")


class _Mover:
    """Copies trees, moving spans of ``old`` by ``delta`` into ``new``.

    Each node class gets a copier (generated once from its dataclass
    fields) that copies span fields, child nodes and lists of them and
    shares everything else (strings, numbers)."""

    __slots__ = ("old", "new", "delta", "map")

    def __init__(self, old: SourceFile, new: SourceFile, delta: int) -> None:
        self.old, self.new, self.delta = old, new, delta
        #: id(old ReturnStmt) -> its copy
        self.map: dict[int, object] = {}

    def span(self, s: Span | None) -> Span | None:
        if s is None or s.source is not self.old:
            return s
        return Span(self.new, s.start + self.delta, s.end + self.delta)

    def node(self, n):
        return _move(n, self.old, self.new, self.delta, self.map)

    def diag(self, d: Diagnostic) -> Diagnostic:
        if self.delta == 0 and self.old is self.new:
            return d
        rel = tuple(Related(self.span(r.span), r.message) for r in d.related)
        return dataclasses.replace(d, span=self.span(d.span), related=rel)


_COPIERS: dict[type, object] = {}


def _move(n, old: SourceFile, new: SourceFile, d: int, memo: dict):
    """A copy of ``n`` (node, list or leaf) with ``old``'s spans moved."""
    copier = _COPIERS.get(type(n))
    if copier is None:
        if isinstance(n, list):
            return [_move(x, old, new, d, memo) for x in n]
        if not dataclasses.is_dataclass(n) or isinstance(n, (Span, Diagnostic)):
            return n
        copier = _COPIERS[type(n)] = _make_copier(type(n))
    return copier(n, old, new, d, memo)      # type: ignore[operator]


def _make_copier(cls: type):
    """One class's copier: Python source generated from its fields, compiled once."""
    frozen = cls.__dataclass_params__.frozen        # type: ignore[attr-defined]
    lines = ["def copy(n, old, new, d, memo):", "    c = new_(cls)"]
    for fld in dataclasses.fields(cls):
        name = fld.name
        store = f"    setattr_(c, {name!r}, v)" if frozen else f"    c.{name} = v"
        kind = str(fld.type).replace(" ", "")
        if kind in _LEAF_TYPES:        # declared as a string, number or flag: shared
            lines += [f"    v = n.{name}", store]
            continue
        if kind == "Span|None":
            lines += [f"    v = n.{name}",
                      "    if v is not None and v.source is old:",
                      "        v = Span(new, v.start + d, v.end + d)",
                      store]
            continue
        lines += [f"    v = n.{name}",
                  "    t = type(v)",
                  "    if t is Span:",
                  "        if v.source is old:",
                  "            v = Span(new, v.start + d, v.end + d)",
                  "    elif t is list:",
                  "        nv = []",
                  "        for x in v:",
                  "            cp = copiers.get(type(x))",
                  "            nv.append(cp(x, old, new, d, memo) if cp is not None",
                  "                      else move(x, old, new, d, memo))",
                  "        v = nv",
                  "    elif t not in leaf:",
                  "        cp = copiers.get(t)",
                  "        v = cp(v, old, new, d, memo) if cp is not None else move(v, old, new, d, memo)",
                  store]
    if cls is A.ReturnStmt:
        lines.append("    memo[id(n)] = c")
    lines.append("    return c")
    scope = {"new_": cls.__new__, "cls": cls, "Span": Span, "move": _move, "leaf": _LEAF,
             "copiers": _COPIERS, "setattr_": object.__setattr__}
    exec(compile("\n".join(lines), f"<copier for {cls.__name__}>", "exec"), scope)
    return scope["copy"]


_LEAF = frozenset({str, int, bool, type(None), float})
#: field annotations whose values are shared by copies
_LEAF_TYPES = frozenset({"str", "int", "bool", "float", "str|None", "int|None", "bool|None"})
