"""The elaborated program: what pass 2 knows once symbols, probes and types are resolved.

:class:`Program` is the result of :func:`stap_ls.sema.elaborate.elaborate` and
what ``stap-ls check -p2``, the BPF translator and the language server read.
It mirrors stap's ``systemtap_session`` after ``semantic_pass``: the globals in
the order stap adds them, the functions (with overloads) that the probes reach,
the derived probes (one per concrete probe point, alias bodies expanded) and
two side tables keyed by ``id()`` of syntax nodes: each expression's inferred
type and each symbol's declaration (a :class:`VarInfo`, a
:class:`~stap_ls.syntax.ast.FunctionDecl` or a target variable).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stap_ls.syntax import ast as A
from stap_ls.text import Span

LONG = "long"
STRING = "string"
STATS = "stats"
UNKNOWN = "unknown"


@dataclass(eq=False)
class VarInfo:
    """A variable: global, local or function parameter (stap's ``vardecl``)."""
    name: str
    kind: str                          # "global" | "local" | "param"
    span: Span | None
    type: str = UNKNOWN
    #: index key types; empty for a scalar
    index_types: list[str] = field(default_factory=list)
    #: -1 unknown yet, 0 scalar, n array of arity n
    arity: int = -1
    arity_span: Span | None = None
    #: where the type was first inferred (for "type was first inferred here")
    type_span: Span | None = None
    type_saw: str = ""
    index_spans: list[tuple[Span | None, str]] = field(default_factory=list)
    decl: A.GlobalDecl | A.Param | None = None
    file: str = ""
    private: bool = False
    #: stap's "wrap" (%) and explicit [size]
    wrap: bool = False
    maxsize: int = 0
    init: A.NumberLit | A.StringLit | None = None
    synthetic: bool = False


#: the spec name used by the interface in the brief
GlobalInfo = VarInfo


@dataclass(eq=False)
class FunctionInfo:
    name: str
    decl: A.FunctionDecl
    file: str
    params: list[VarInfo]
    locals: list[VarInfo] = field(default_factory=list)
    return_type: str = UNKNOWN
    return_span: Span | None = None
    return_saw: str = ""
    private: bool = False
    overload: int = 0
    #: the body as elaborated (the optimiser works on a copy; ``decl.body`` is never changed)
    body: object = None

    def __post_init__(self) -> None:
        if self.body is None:
            self.body = self.decl.body

    @property
    def param_types(self) -> list[str]:
        return [p.type for p in self.params]


@dataclass(eq=False)
class DerivedProbe:
    """One probe as stap runs it: a concrete point, its alias chain and its body."""
    decl: A.ProbeDecl
    point: A.ProbePoint                 # the user's point it came from
    text: str                           # concrete point as stap -p2 prints it
    chain: list[str]                    # alias-chain comment parts, innermost first
    body: A.Block
    file: str
    locals: list[VarInfo] = field(default_factory=list)
    target: object | None = None        # targetprobes.ConcretePoint or None
    family: str = ""                    # "begin", "timer", "kernel.trace", ...
    condition: A.Expr | None = None
    is_return: bool = False
    #: the probe point that carries the location for messages (alias name or user point)
    location: A.ProbePoint | None = None
    synthetic: bool = False

    @property
    def comment(self) -> str:
        return " /* <- " + " <- ".join(self.chain) + " */"


@dataclass(eq=False)
class Program:
    globals: dict[str, VarInfo] = field(default_factory=dict)
    functions: dict[str, list[FunctionInfo]] = field(default_factory=dict)
    probes: list[DerivedProbe] = field(default_factory=list)
    types: dict[int, str] = field(default_factory=dict)
    referents: dict[int, object] = field(default_factory=dict)
    files_used: list[str] = field(default_factory=list)
    #: top-level %{ %} blocks of the files used, in stap's order
    embeds: list[A.TopEmbedded] = field(default_factory=list)
    #: ids of nodes in a branch an ``@defined`` rules out (stap drops them
    #: before its checks): set by type inference, skipped by later checks
    defined_dropped: set[int] = field(default_factory=set)

    def all_functions(self) -> list[FunctionInfo]:
        return [f for fs in self.functions.values() for f in fs]
