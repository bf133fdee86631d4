"""The typed syntax tree of a SystemTap file.

Classes mirror stap's own parse tree (``staptree.h``) so that pass 2 and the
``-p1`` printer can follow stap's structure: expressions, statements, probe
points, declarations and the file.  Every node carries ``span`` (a
:class:`stap_ls.text.Span`, or ``None`` for nodes stap synthesises, such as
the ``1`` of ``for (;;)``).  Nodes are plain data; analyses walk them with
:func:`iter_children` or their own visitors.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Iterator

from stap_ls.text import Span


@dataclass(eq=False, slots=True)
class Node:
    span: Span | None


# -- expressions ------------------------------------------------------------
@dataclass(eq=False, slots=True)
class Expr(Node):
    pass


@dataclass(eq=False, slots=True)
class NumberLit(Expr):
    value: int
    text: str = ""


@dataclass(eq=False, slots=True)
class StringLit(Expr):
    value: str


@dataclass(eq=False, slots=True)
class EmbeddedExpr(Expr):
    code: str


@dataclass(eq=False, slots=True)
class BinaryExpr(Expr):
    """Arithmetic, bitwise and shift operators."""
    op: str
    left: Expr
    right: Expr


@dataclass(eq=False, slots=True)
class ComparisonExpr(BinaryExpr):
    pass


@dataclass(eq=False, slots=True)
class ConcatExpr(BinaryExpr):
    pass


@dataclass(eq=False, slots=True)
class LogicalExpr(BinaryExpr):
    """``&&`` and ``||``."""


@dataclass(eq=False, slots=True)
class AssignExpr(BinaryExpr):
    """``=``, ``<<<`` and the compound assignments."""


@dataclass(eq=False, slots=True)
class RegexQuery(Expr):
    op: str
    left: Expr
    right: StringLit


@dataclass(eq=False, slots=True)
class UnaryExpr(Expr):
    op: str
    operand: Expr


@dataclass(eq=False, slots=True)
class PreCrement(UnaryExpr):
    pass


@dataclass(eq=False, slots=True)
class PostCrement(Expr):
    op: str
    operand: Expr


@dataclass(eq=False, slots=True)
class TernaryExpr(Expr):
    cond: Expr
    true_value: Expr
    false_value: Expr


@dataclass(eq=False, slots=True)
class Symbol(Expr):
    name: str


@dataclass(eq=False, slots=True)
class HistOp(Expr):
    kind: str            # "hist_linear" / "hist_log"
    stat: Expr
    params: list[int] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class ArrayIndex(Expr):
    base: Symbol | HistOp
    indexes: list[Expr | None]       # None is '*' (a slice wildcard)


@dataclass(eq=False, slots=True)
class ArrayIn(Expr):
    indexes: list[Expr | None]
    base: Symbol | HistOp


@dataclass(eq=False, slots=True)
class FunctionCall(Expr):
    name: str
    args: list[Expr]
    name_span: Span | None = None


@dataclass(eq=False, slots=True)
class PrintFormat(Expr):
    """printf/sprintf/print/println/printd/... (stap's print_format)."""
    name: str
    format: str | None          # printf-style format string
    delimiter: str | None       # printd-style delimiter
    args: list[Expr]
    hist: HistOp | None = None
    name_span: Span | None = None

    @property
    def with_format(self) -> bool:
        return self.format is not None


@dataclass(eq=False, slots=True)
class StatOp(Expr):
    op: str                      # avg count sum min max variance
    stat: Expr
    params: list[int] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class Component:
    """One ``->member``, ``[index]`` or pretty-print suffix of a target symbol."""
    kind: str                    # "member" / "index" / "pretty"
    member: str = ""
    index: Expr | None = None
    span: Span | None = None


@dataclass(eq=False, slots=True)
class TargetExpr(Expr):
    components: list[Component] = field(default_factory=list)
    addressof: bool = False


@dataclass(eq=False, slots=True)
class TargetSymbol(TargetExpr):
    name: str = ""


@dataclass(eq=False, slots=True)
class CastOp(TargetExpr):
    operand: Expr | None = None
    type_name: str = ""
    module: str = ""


@dataclass(eq=False, slots=True)
class AtVarOp(TargetExpr):
    target_name: str = ""
    module: str = ""


@dataclass(eq=False, slots=True)
class AutocastOp(TargetExpr):
    operand: Expr | None = None


@dataclass(eq=False, slots=True)
class DefinedOp(Expr):
    operand: Expr


@dataclass(eq=False, slots=True)
class EntryOp(Expr):
    operand: Expr


@dataclass(eq=False, slots=True)
class PerfOp(Expr):
    operand: StringLit


@dataclass(eq=False, slots=True)
class ProbewriteOp(Expr):
    name: str


@dataclass(eq=False, slots=True)
class TargetRegister(Expr):
    user: bool
    regno: int


@dataclass(eq=False, slots=True)
class TargetDeref(Expr):
    user: bool
    size: int
    addr: Expr


# -- statements -------------------------------------------------------------
@dataclass(eq=False, slots=True)
class Stmt(Node):
    pass


@dataclass(eq=False, slots=True)
class Block(Stmt):
    statements: list[Stmt]


@dataclass(eq=False, slots=True)
class EmbeddedCode(Stmt):
    """A ``%{ ... %}`` block at top level or as a function body."""
    code: str


@dataclass(eq=False, slots=True)
class TryBlock(Stmt):
    body: Block
    catch_var: Symbol | None
    catch_body: Block


@dataclass(eq=False, slots=True)
class IfStmt(Stmt):
    cond: Expr
    then: Stmt
    else_: Stmt | None


@dataclass(eq=False, slots=True)
class ForLoop(Stmt):
    """``for`` and ``while`` (stap makes both a for_loop)."""
    init: Expr | None
    cond: Expr
    incr: Expr | None
    body: Stmt
    is_while: bool = False


@dataclass(eq=False, slots=True)
class ForeachLoop(Stmt):
    value: Symbol | None
    indexes: list[Symbol]
    base: Symbol | HistOp
    array_slice: list[Expr | None]
    sort_direction: int          # 0, 1 (+), -1 (-)
    sort_column: int             # 0: the value, i>0: index i
    sort_aggr: str               # "" or count/sum/min/max/avg/variance
    limit: Expr | None
    body: Stmt


@dataclass(eq=False, slots=True)
class NullStmt(Stmt):
    pass


@dataclass(eq=False, slots=True)
class ExprStmt(Stmt):
    expr: Expr


@dataclass(eq=False, slots=True)
class ReturnStmt(Stmt):
    value: Expr | None


@dataclass(eq=False, slots=True)
class DeleteStmt(Stmt):
    value: Expr


@dataclass(eq=False, slots=True)
class NextStmt(Stmt):
    pass


@dataclass(eq=False, slots=True)
class BreakStmt(Stmt):
    pass


@dataclass(eq=False, slots=True)
class ContinueStmt(Stmt):
    pass


# -- probe points and declarations -------------------------------------------
@dataclass(eq=False, slots=True)
class PPComponent:
    functor: str
    arg: NumberLit | StringLit | None
    span: Span | None = None


@dataclass(eq=False, slots=True)
class ProbePoint(Node):
    components: list[PPComponent]
    optional: bool = False
    sufficient: bool = False
    condition: Expr | None = None

    def text(self, extras: bool = False) -> str:
        from stap_ls.syntax.printer import probe_point_str
        return probe_point_str(self, extras)


@dataclass(eq=False, slots=True)
class Decl(Node):
    pass


@dataclass(eq=False, slots=True)
class GlobalDecl(Decl):
    name: str
    wrap: bool = False
    maxsize: int = 0
    init: NumberLit | StringLit | None = None
    private: bool = False
    name_span: Span | None = None


@dataclass(eq=False, slots=True)
class Param:
    name: str
    type: str | None             # "long" / "string" / None
    span: Span | None = None


@dataclass(eq=False, slots=True)
class FunctionDecl(Decl):
    name: str
    return_type: str | None
    params: list[Param]
    body: Block | EmbeddedCode
    priority: int | None = None
    private: bool = False
    name_span: Span | None = None


@dataclass(eq=False, slots=True)
class ProbeDecl(Decl):
    points: list[ProbePoint]
    body: Block


@dataclass(eq=False, slots=True)
class AliasDecl(Decl):
    names: list[ProbePoint]
    epilogue: bool
    points: list[ProbePoint]
    body: Block
    body2: Block | None = None


@dataclass(eq=False, slots=True)
class TopEmbedded(Decl):
    code: str


@dataclass(eq=False)
class StapFile:
    """One parsed file: its declarations in source order."""
    name: str
    decls: list[Decl] = field(default_factory=list)

    @property
    def embeds(self) -> list[TopEmbedded]:
        return [d for d in self.decls if isinstance(d, TopEmbedded)]

    @property
    def globals(self) -> list[GlobalDecl]:
        return [d for d in self.decls if isinstance(d, GlobalDecl)]

    @property
    def aliases(self) -> list[AliasDecl]:
        return [d for d in self.decls if isinstance(d, AliasDecl)]

    @property
    def probes(self) -> list[ProbeDecl]:
        return [d for d in self.decls if isinstance(d, ProbeDecl)]

    @property
    def functions(self) -> list[FunctionDecl]:
        return [d for d in self.decls if isinstance(d, FunctionDecl)]


_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


def iter_children(node) -> Iterator:
    """The direct child nodes (and components) of ``node``, in source order."""
    cls = type(node)
    names = _CHILD_FIELDS.get(cls)
    if names is None:
        names = tuple(f.name for f in fields(cls) if f.name not in ("span", "name_span"))
        _CHILD_FIELDS[cls] = names
    for name in names:
        v = getattr(node, name)
        if isinstance(v, (Node, Component, PPComponent, Param)):
            yield v
        elif isinstance(v, list):
            for x in v:
                if isinstance(x, (Node, Component, PPComponent, Param)):
                    yield x


def walk(node) -> Iterator:
    """``node`` and all nodes below it, depth first, in source order."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        kids = list(iter_children(n))
        stack.extend(reversed(kids))


def depth_exceeds(node, limit: int) -> bool:
    """Whether the tree below ``node`` is more than ``limit`` levels deep
    (iteratively, so any depth is safe to ask about)."""
    stack = [(node, 1)]
    while stack:
        n, d = stack.pop()
        if d > limit:
            return True
        for c in iter_children(n):
            stack.append((c, d + 1))
    return False
