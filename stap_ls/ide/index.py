"""Symbol tables over parsed files: the tapset library's and one script's.

Built from pass-1 trees only, so every feature works before (or without)
pass 2: functions (with overloads), globals, probe aliases (with their
component names for probe-point completion), macros, and, for a script, the
declarations in source order with their locals.  Library tables are built
once per tapset library; a script's with each analysis.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stap_ls.syntax import ast as A
from stap_ls.syntax.printer import probe_point_str
from stap_ls.syntax.preprocessor import Macro
from stap_ls.text import Span


@dataclass(frozen=True)
class FunctionEntry:
    name: str
    decl: A.FunctionDecl
    file: str

    @property
    def signature(self) -> str:
        params = ", ".join(f"{p.name}:{p.type}" if p.type else p.name for p in self.decl.params)
        ret = f":{self.decl.return_type}" if self.decl.return_type else ""
        return f"function {self.name}{ret} ({params})"


@dataclass(frozen=True)
class GlobalEntry:
    name: str
    decl: A.GlobalDecl
    file: str


@dataclass(frozen=True)
class AliasEntry:
    #: the alias name as printed (``syscall.open``, ``vfs.read.return``)
    name: str
    #: its components' functors (``("syscall", "open")``)
    functors: tuple[str, ...]
    decl: A.AliasDecl
    point: A.ProbePoint
    file: str

    @property
    def targets(self) -> list[str]:
        return [probe_point_str(p) for p in self.decl.points]


@dataclass
class SymbolTable:
    functions: dict[str, list[FunctionEntry]] = field(default_factory=dict)
    globals: dict[str, GlobalEntry] = field(default_factory=dict)
    aliases: dict[str, list[AliasEntry]] = field(default_factory=dict)
    macros: dict[str, Macro] = field(default_factory=dict)
    _children: dict | None = field(default=None, repr=False, compare=False)
    _indexed: int = field(default=-1, repr=False, compare=False)

    def add_file(self, f: A.StapFile, path: str) -> None:
        for d in f.decls:
            if isinstance(d, A.FunctionDecl):
                self.functions.setdefault(d.name, []).append(FunctionEntry(d.name, d, path))
            elif isinstance(d, A.GlobalDecl):
                self.globals.setdefault(d.name, GlobalEntry(d.name, d, path))
            elif isinstance(d, A.AliasDecl):
                for n in d.names:
                    name = probe_point_str(n)
                    e = AliasEntry(name, tuple(c.functor for c in n.components), d, n, path)
                    self.aliases.setdefault(name, []).append(e)

    def alias_children(self, prefix: tuple[str, ...]) -> dict[str, list[AliasEntry]]:
        """Next component names after ``prefix`` among the aliases (indexed once)."""
        index = self._children
        if index is None or self._indexed != len(self.aliases):
            index = {}
            for lst in self.aliases.values():
                for e in lst:
                    for n in range(len(e.functors)):
                        index.setdefault(e.functors[:n], {}).setdefault(
                            e.functors[n], []).append(e)
            self._children, self._indexed = index, len(self.aliases)
        return index.get(tuple(prefix), {})


def library_table(files, macros: dict[str, Macro]) -> SymbolTable:
    """The tapset library's tables (``files``: :class:`LibraryFile` list)."""
    t = SymbolTable(macros=dict(macros))
    for lf in files:
        t.add_file(lf.result.file, lf.path)
    return t


@dataclass(frozen=True)
class LocalVar:
    name: str
    kind: str            # "param" | "local" | "foreach" | "catch"
    span: Span | None    # first occurrence (the declaration for a parameter)


def decl_at(f: A.StapFile, offset: int, name: str | None = None) -> A.Decl | None:
    """The top-level declaration whose span contains ``offset``."""
    for d in f.decls:
        s = d.span
        if s is not None and s.start <= offset <= s.end and (name is None or s.source.name == name):
            return d
    return None


def locals_of(decl: A.Decl, globals_: set[str]) -> dict[str, LocalVar]:
    """Parameters and locals of a function or probe: every assigned or read
    symbol that is not a global, in order of first appearance."""
    out: dict[str, LocalVar] = {}
    if isinstance(decl, A.FunctionDecl):
        for p in decl.params:
            out[p.name] = LocalVar(p.name, "param", p.span)
    body = getattr(decl, "body", None)
    if body is None:
        return out
    for n in A.walk(body):
        if isinstance(n, A.ForeachLoop):
            for s in ([n.value] if n.value else []) + list(n.indexes):
                if s.name not in out and s.name not in globals_:
                    out[s.name] = LocalVar(s.name, "foreach", s.span)
        elif isinstance(n, A.TryBlock) and n.catch_var is not None:
            out.setdefault(n.catch_var.name, LocalVar(n.catch_var.name, "catch",
                                                      n.catch_var.span))
        elif isinstance(n, A.Symbol) and n.name not in out and n.name not in globals_:
            out[n.name] = LocalVar(n.name, "local", n.span)
    return out
