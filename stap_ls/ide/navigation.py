"""What a name at the cursor refers to, and where else it is used.

:func:`symbol_at` finds the identifier, ``@macro`` or probe alias under the
cursor from the lexer's tokens (so it also works inside a declaration that
does not parse yet) and resolves it the way stap does: a parameter or local
of the enclosing function or probe, else a script global, else a library
global; a call resolves to the script's functions, then the library's.
:func:`definition`, :func:`references` and :func:`rename` build on it, over
the open scripts and (for library symbols) the tapset files.
Document and workspace symbols list declarations.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from stap_ls.ide.analysis import Analysis
from stap_ls.ide.context import decl_range_at, header_points
from stap_ls.ide.index import decl_at, locals_of
from stap_ls.syntax import ast as A
from stap_ls.syntax.lexer import IDENT, OPERATOR, Tok
from stap_ls.syntax.printer import probe_point_str
from stap_ls.text import Span

IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class SymbolRef:
    kind: str                 # function global local param macro alias target operator
    name: str
    span: Span                # the occurrence under the cursor
    defs: list[Span] = field(default_factory=list)
    library: bool = False
    decl: object = None       # the declaring node (FunctionDecl, GlobalDecl, AliasDecl ...)
    scope: A.Decl | None = None   # for locals: the function or probe


def token_at(a: Analysis, offset: int) -> tuple[int, Tok] | None:
    toks = a.parse.tokens
    starts = a.memo.get("tok-starts")
    if starts is None:
        starts = a.memo["tok-starts"] = [t.start for t in toks]
    i = bisect.bisect_right(starts, offset) - 1
    found = [(j, toks[j]) for j in (i, i - 1)
             if 0 <= j < len(toks) and toks[j].source is a.source and
             toks[j].start <= offset <= toks[j].end and toks[j].end > toks[j].start]
    for j, t in found:       # a name wins over the operator right after it
        if t.kind == IDENT or t.value.startswith("@"):
            return j, t
    return found[0] if found else None


def _span(a: Analysis, t: Tok) -> Span:
    return Span(a.source, t.start, t.end)


def symbol_at(a: Analysis, offset: int) -> SymbolRef | None:
    hit = token_at(a, offset)
    if hit is None:
        return None
    i, t = hit
    toks = a.parse.tokens
    r = decl_range_at(a.ranges(), offset)
    if r is not None and r.kind == "probe" and (r.body_start < 0 or offset < r.body_start):
        return _alias_at(a, r, offset)
    if t.kind == OPERATOR and t.value.startswith("@") and len(t.value) > 1:
        return _macro(a, t)
    if t.kind != IDENT:
        return None
    name = t.value
    if name.startswith("$"):
        return SymbolRef("target", name, _span(a, t))
    prev = toks[i - 1] if i > 0 else None
    nxt = toks[i + 1] if i + 1 < len(toks) else None
    is_call = nxt is not None and nxt.kind == OPERATOR and nxt.value == "("
    if prev is not None and prev.value == "function" and prev.kind == "keyword":
        return _function(a, name, _span(a, t))
    if prev is not None and prev.kind == OPERATOR and prev.value == "->":
        return None
    decl = decl_at(a.parse.file, offset, a.source.name)
    if is_call:
        return _function(a, name, _span(a, t))
    if decl is not None and isinstance(decl, (A.FunctionDecl, A.ProbeDecl)):
        glob = set(a.table.globals) | set(a.env.table.globals)
        loc = locals_of(decl, glob).get(name)
        if loc is not None:
            return SymbolRef("param" if loc.kind == "param" else "local", name, _span(a, t),
                             [loc.span] if loc.span else [], decl=loc, scope=decl)
    g = a.table.globals.get(name)
    if g is not None:
        return SymbolRef("global", name, _span(a, t), [g.decl.name_span or g.decl.span],
                         decl=g.decl)
    g = a.env.table.globals.get(name)
    if g is not None:
        return SymbolRef("global", name, _span(a, t), [g.decl.name_span or g.decl.span],
                         library=True, decl=g.decl)
    if decl is None and r is not None and r.kind in ("global", "private"):
        return None
    return SymbolRef("local", name, _span(a, t), scope=decl)


def _function(a: Analysis, name: str, span: Span) -> SymbolRef:
    user = a.table.functions.get(name)
    if user:
        return SymbolRef("function", name, span, [e.decl.name_span or e.decl.span for e in user],
                         decl=user[0].decl)
    lib = a.env.table.functions.get(name, [])
    return SymbolRef("function", name, span, [e.decl.name_span or e.decl.span for e in lib],
                     library=True, decl=lib[0].decl if lib else None)


def _macro(a: Analysis, t: Tok) -> SymbolRef:
    name = t.value[1:]
    toks = a.parse.tokens
    defs = []
    for j, u in enumerate(toks[:-1]):
        if u.value == "@define" and toks[j + 1].value == name and u.source is a.source:
            defs.append(_span(a, toks[j + 1]))
    if defs:
        return SymbolRef("macro", name, _span(a, t), defs)
    mac = a.env.table.macros.get(name)
    if mac is not None:
        return SymbolRef("macro", name, _span(a, t),
                         [Span(mac.tok.source, mac.tok.start, mac.tok.end)], library=True,
                         decl=mac)
    return SymbolRef("operator", name, _span(a, t))


def probe_point_at(a: Analysis, r, offset: int) -> A.ProbePoint | None:
    """The probe point of a probe header under ``offset`` (spans relative to the header)."""
    for pp in header_points(a.source, r, a.parse_options()):
        if pp.span is not None and pp.span.start <= offset - r.start <= pp.span.end:
            return pp
    return None


def _alias_at(a: Analysis, r, offset: int) -> SymbolRef | None:
    pp = probe_point_at(a, r, offset)
    if pp is None or pp.span is None:
        return None
    from stap_ls.ide.probes import _table, aliases_for
    span = Span(a.source, pp.span.start + r.start, pp.span.end + r.start)
    entries = aliases_for(_table(a), pp)
    return SymbolRef("alias", probe_point_str(pp), span,
                     [e.point.span for e in entries if e.point.span is not None],
                     library=any(e.file != a.source.name for e in entries), decl=pp)


def definition(a: Analysis, offset: int) -> list[Span]:
    s = symbol_at(a, offset)
    return list(s.defs) if s is not None else []


def _occurrences(f: A.StapFile, s: SymbolRef) -> list[Span]:
    out: list[Span] = []
    for d in f.decls:
        if s.kind == "function":
            if isinstance(d, A.FunctionDecl) and d.name == s.name and d.name_span:
                out.append(d.name_span)
            for n in A.walk(d):
                if isinstance(n, A.FunctionCall) and n.name == s.name:
                    out.append(n.name_span or n.span)
        elif s.kind == "global":
            if isinstance(d, A.GlobalDecl) and d.name == s.name and d.name_span:
                out.append(d.name_span)
            elif isinstance(d, (A.FunctionDecl, A.ProbeDecl, A.AliasDecl)):
                if isinstance(d, A.FunctionDecl) and any(p.name == s.name for p in d.params):
                    continue
                for n in A.walk(d):
                    if isinstance(n, A.Symbol) and n.name == s.name:
                        out.append(n.span)
    return [x for x in out if x is not None]


def references(a: Analysis, offset: int, others: list[Analysis], include_decl: bool = True,
               library: bool = True) -> list[Span]:
    s = symbol_at(a, offset)
    if s is None:
        return []
    out: list[Span] = []
    if s.kind in ("local", "param"):
        scope = s.scope
        if scope is None:
            return [s.span]
        if isinstance(scope, A.FunctionDecl):
            out += [p.span for p in scope.params if p.name == s.name and p.span]
        for n in A.walk(scope.body):
            if isinstance(n, A.Symbol) and n.name == s.name:
                out.append(n.span)
        return out
    if s.kind == "macro":
        pat = "@" + s.name
        for doc in [a] + [o for o in others if o.uri != a.uri]:
            for t in doc.parse.tokens:
                if t.source is doc.source and (t.value == pat or (
                        t.value == s.name and _after_define(doc, t))):
                    out.append(Span(doc.source, t.start, t.end))
        return out
    if s.kind not in ("function", "global"):
        return list(s.defs)
    for doc in [a] + [o for o in others if o.uri != a.uri]:
        out += _occurrences(doc.parse.file, s)
    if s.library and library:
        for lf in a.env.library.files:
            out += _occurrences(lf.result.file, s)
    if not include_decl:
        defs = {(d.source.name, d.start) for d in s.defs}
        out = [x for x in out if (x.source.name, x.start) not in defs]
    return out


def _after_define(doc: Analysis, t: Tok) -> bool:
    toks = doc.parse.tokens
    i = toks.index(t)
    return i > 0 and toks[i - 1].value == "@define"


@dataclass
class RenameResult:
    edits: list[tuple[Span, str]] = field(default_factory=list)
    error: str = ""


def rename(a: Analysis, offset: int, new_name: str, others: list[Analysis]) -> RenameResult:
    s = symbol_at(a, offset)
    if s is None or s.kind in ("target", "operator", "alias"):
        return RenameResult(error="nothing to rename here")
    if not IDENT_RE.match(new_name):
        return RenameResult(error=f"'{new_name}' is not an identifier")
    if s.library:
        return RenameResult(error=f"'{s.name}' is defined in the tapset library; "
                            "rename it in a script of your own instead")
    spans = references(a, offset, others, library=False)
    edits = []
    for sp in spans:
        text = sp.source.text[sp.start:sp.end]
        if s.kind == "macro" and text.startswith("@"):
            edits.append((Span(sp.source, sp.start + 1, sp.end), new_name))
        elif text == s.name:
            edits.append((sp, new_name))
    return RenameResult(edits)


@dataclass
class DocSymbol:
    name: str
    kind: str               # function variable event macro module
    span: Span
    selection: Span
    detail: str = ""
    children: list["DocSymbol"] = field(default_factory=list)


def document_symbols(a: Analysis) -> list[DocSymbol]:
    out: list[DocSymbol] = []
    for d in a.parse.file.decls:
        if d.span is None or not a.is_mine(d.span):
            continue
        if isinstance(d, A.GlobalDecl):
            out.append(DocSymbol(d.name, "variable", d.span, d.name_span or d.span,
                                 "private global" if d.private else "global"))
        elif isinstance(d, A.FunctionDecl):
            sig = ", ".join(p.name for p in d.params)
            out.append(DocSymbol(d.name, "function", d.span, d.name_span or d.span,
                                 f"({sig})" + (f":{d.return_type}" if d.return_type else "")))
        elif isinstance(d, A.ProbeDecl):
            name = ", ".join(probe_point_str(p) for p in d.points)
            sel = d.points[0].span if d.points and d.points[0].span else d.span
            out.append(DocSymbol(name or "probe", "event", d.span, sel, "probe"))
        elif isinstance(d, A.AliasDecl):
            name = ", ".join(probe_point_str(p) for p in d.names)
            sel = d.names[0].span if d.names and d.names[0].span else d.span
            out.append(DocSymbol(name, "event", d.span, sel, "probe alias"))
        elif isinstance(d, A.TopEmbedded):
            out.append(DocSymbol("%{ %}", "module", d.span, d.span, "embedded C"))
    toks = a.parse.tokens
    for j, t in enumerate(toks[:-1]):
        if t.value == "@define" and t.source is a.source:
            n = toks[j + 1]
            sp = Span(a.source, n.start, n.end)
            out.append(DocSymbol(n.value, "macro", Span(a.source, t.start, n.end), sp, "@define"))
    out.sort(key=lambda s: s.span.start)
    return out


def workspace_symbols(docs: list[Analysis], query: str, limit: int = 200) -> list[DocSymbol]:
    q = query.lower()
    out: list[DocSymbol] = []
    for a in docs:
        for s in document_symbols(a):
            if q in s.name.lower():
                out.append(s)
    if docs:
        env = docs[0].env
        for name, entries in sorted(env.table.functions.items()):
            if len(out) >= limit:
                break
            if q and q in name.lower():
                e = entries[0]
                sp = e.decl.name_span or e.decl.span
                if sp is not None:
                    out.append(DocSymbol(name, "function", sp, sp, e.file))
        for name, entries in sorted(env.table.aliases.items()):
            if len(out) >= limit:
                break
            if q and q in name.lower():
                e = entries[0]
                if e.point.span is not None:
                    out.append(DocSymbol(name, "event", e.point.span, e.point.span, e.file))
    return out[:limit]
