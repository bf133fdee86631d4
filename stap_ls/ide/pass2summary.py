"""What the editor features need from pass 2, as small picklable data.

Pass 2 (:func:`stap_ls.sema.elaborate.elaborate`) returns a ``Program`` whose
answers are keyed by ``id(node)`` of the very AST objects it elaborated, and
whose diagnostics hold ``Span`` objects of its own ``SourceFile``s.  Neither
survives a trip between processes, and the language server runs pass 2 in a
worker process (:mod:`stap_ls.lsp.pass2proc`).  So the worker condenses the
result into a :class:`Pass2Summary` keyed by what both sides share — source
names and offsets — and the server's features (hover, target variables,
completion) read that summary, never a live ``Program``:

* ``types`` / ``referent_types`` / ``targets``: inferred type of an
  expression node, type of the variable it refers to, and the target variable
  (``$x``) it resolves to; keyed by :func:`node_key` — node class, source
  name, start and end offsets;
* ``globals`` and ``returns``: inferred types of globals and functions by name;
* ``probes``: the derived probes of the document's own probe declarations
  (declaration offset, point text, ``-p2`` text with the alias chain, and the
  concrete point with its target variables);
* ``diagnostics``: pass 2's diagnostics of this document as
  :class:`DiagRecord` (source name + offsets); :meth:`Pass2Summary.diagnostics_for`
  rebuilds :class:`~stap_ls.text.Diagnostic`\\ s against the server's own
  ``SourceFile`` (related spans into tapset files get the file read from disk).

:func:`summarize` builds it from an ``ElabResult``; the in-process path
(``stap_ls.ide.analysis.run_elaborate``) uses the same function, so features
behave the same with or without the worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from stap_ls.syntax import ast as A
from stap_ls.syntax.printer import probe_point_str
from stap_ls.text import Diagnostic, Related, Severity, SourceFile, Span

NodeKey = tuple[str, str, int, int]


def node_key(node) -> NodeKey | None:
    """How a node is named across processes: class, source name, offsets."""
    s = getattr(node, "span", None)
    if s is None:
        return None
    return (type(node).__name__, s.source.name, s.start, s.end)


@dataclass(frozen=True)
class SpanRecord:
    file: str
    start: int
    end: int


@dataclass(frozen=True)
class DiagRecord:
    """A :class:`~stap_ls.text.Diagnostic` without object references."""
    severity: int
    message: str
    span: SpanRecord | None
    code: str = ""
    kind: str = ""
    saw: str = ""
    marker: str = "saw"
    related: tuple[tuple[SpanRecord, str], ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class TargetRef:
    """The target variable an expression refers to (hover shows its C type)."""
    name: str
    type: str
    source: str


@dataclass(frozen=True)
class ProbeSummary:
    """One derived probe of a probe declaration in the document."""
    decl_start: int
    point: str                  # the written probe point (end of the alias chain)
    leaf: str                   # the innermost point it resolved through (DerivedProbe.point)
    display: str                # stap -p2's line: concrete point + alias chain comment
    target: object | None       # sema.targetprobes.ConcretePoint (plain data)


@dataclass(frozen=True, eq=False)
class Pass2Summary:
    name: str                                   # the document's source name
    diagnostics: tuple[DiagRecord, ...] = ()
    types: dict[NodeKey, str] = field(default_factory=dict)
    referent_types: dict[NodeKey, str] = field(default_factory=dict)
    targets: dict[NodeKey, TargetRef] = field(default_factory=dict)
    globals: dict[str, str] = field(default_factory=dict)
    returns: dict[str, str] = field(default_factory=dict)
    probes: tuple[ProbeSummary, ...] = ()

    # -- queries ---------------------------------------------------------------
    def type_of(self, node) -> str:
        """Inferred type of ``node`` or of what it refers to ("" if unknown)."""
        k = node_key(node)
        if k is None:
            return ""
        return self.types.get(k) or self.referent_types.get(k, "")

    def target_of(self, node) -> TargetRef | None:
        k = node_key(node)
        return self.targets.get(k) if k is not None else None

    def probes_of(self, decl_start: int) -> list[ProbeSummary]:
        return [p for p in self.probes if p.decl_start == decl_start]

    def diagnostics_for(self, doc: SourceFile,
                        file_of: Callable[[str], SourceFile] | None = None
                        ) -> list[Diagnostic]:
        """Diagnostics with spans in ``doc`` (related spans elsewhere through
        ``file_of``, by default the file read from disk)."""
        files: dict[str, SourceFile] = {doc.name: doc}
        get = file_of or read_source

        def span(r: SpanRecord | None) -> Span | None:
            if r is None:
                return None
            src = files.get(r.file)
            if src is None:
                src = files[r.file] = get(r.file)
            n = len(src.text)
            return Span(src, min(r.start, n), min(r.end, n))

        out = []
        for d in self.diagnostics:
            out.append(Diagnostic(Severity(d.severity), d.message, span(d.span), d.code, d.kind,
                                  d.saw, d.marker,
                                  tuple(Related(span(s), m) for s, m in d.related), d.tags))
        return out


def read_source(name: str) -> SourceFile:
    """A file named by a related location (a tapset file), read once per call."""
    try:
        with open(name, encoding="utf-8", errors="replace") as fh:
            return SourceFile(name, fh.read())
    except OSError:
        return SourceFile(name, "")


def _record(span: Span | None) -> SpanRecord | None:
    return None if span is None else SpanRecord(span.source.name, span.start, span.end)


def _diag_record(d: Diagnostic) -> DiagRecord:
    return DiagRecord(int(d.severity), d.message, _record(d.span), d.code, d.kind, d.saw,
                      d.marker, tuple((_record(r.span), r.message) for r in d.related
                                      if r.span is not None), tuple(d.tags))


def _type_name(t) -> str:
    if isinstance(t, str):
        return t
    return getattr(t, "name", "") or str(t)


def summarize(res, file: A.StapFile, name: str) -> Pass2Summary:
    """Condense an ``ElabResult`` of the document ``file`` (source ``name``)."""
    prog = getattr(res, "program", None)
    diags = tuple(_diag_record(d) for d in getattr(res, "diagnostics", [])
                  if d.span is None or d.span.source.name == name)
    if prog is None:
        return Pass2Summary(name, diags)
    types: dict[NodeKey, str] = {}
    refs: dict[NodeKey, str] = {}
    targets: dict[NodeKey, TargetRef] = {}
    ptypes, preferents = prog.types, prog.referents
    for decl in file.decls:
        for node in A.walk(decl):
            i = id(node)
            t = ptypes.get(i)
            ref = preferents.get(i)
            if t is None and ref is None:
                continue
            k = node_key(node)
            if k is None:
                continue
            if isinstance(t, str) and t and t != "unknown":
                types[k] = t
            if ref is not None and hasattr(ref, "type"):
                rt = ref.type
                if hasattr(ref, "source"):
                    targets[k] = TargetRef(getattr(ref, "name", ""), _type_name(rt),
                                           str(ref.source))
                if isinstance(rt, str) and rt and rt != "unknown":
                    refs[k] = rt
    globs = {g: v.type for g, v in prog.globals.items()
             if isinstance(getattr(v, "type", None), str) and v.type != "unknown"}
    rets = {}
    for fname, fis in prog.functions.items():
        if fis and isinstance(fis[0].return_type, str) and fis[0].return_type != "unknown":
            rets[fname] = fis[0].return_type
    probes = []
    for dp in prog.probes:
        s = getattr(dp.decl, "span", None)
        if s is None or s.source.name != name:
            continue
        # dp.point is the innermost point; the chain ends with the written one
        written = dp.chain[-1] if getattr(dp, "chain", None) else probe_point_str(dp.point)
        probes.append(ProbeSummary(s.start, written, probe_point_str(dp.point),
                                   dp.text + dp.comment, dp.target))
    return Pass2Summary(name, diags, types, refs, targets, globs, rets, tuple(probes))
