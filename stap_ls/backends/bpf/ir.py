"""The BPF engine's intermediate representation (IR) of a probe program.

A translator lowers an elaborated stap program (pass 2 output) into these plain
dataclasses; :mod:`codegen` turns them into BPF C and :mod:`interp` runs the
user-space probes.  The IR is deliberately small and explicit: everything the
engine needs is spelled out, nothing is inferred from stap's tapsets.

Program shape
-------------
``Program(globals=[Global...], probes=[Probe...])``.

* :class:`Global` — ``type`` is the *value* type (``LONG``, ``STRING`` or
  ``STATS`` for a ``<<<`` aggregate).  ``keys`` empty means a scalar; otherwise
  the key types of an associative array (``LONG``/``STRING``).  ``size`` is the
  declared size (``global a[100]``; 0 = stap's MAXMAPENTRIES 2048), ``wrap`` is
  the ``%`` suffix (oldest entries are evicted instead of an overflow error).
  ``init`` is the initial value of a scalar.  A ``STATS`` global names the
  histogram it feeds in ``hist`` (``HistSpec("log")`` or
  ``HistSpec("linear", start, stop, interval)``), since stap allows one kind
  of histogram per aggregate.
* :class:`Probe` — ``point`` is one of the probe point classes below; ``body``
  a list of statements; ``locals`` maps every local variable to its type (stap
  infers these in pass 2; the translator copies them); ``pp`` is the text
  ``pp()`` returns.  A stap probe with several probe points becomes several
  ``Probe`` objects sharing one body.

Probe points: :class:`Begin`, :class:`End`, :class:`Never`,
:class:`Timer` (``unit`` in s/ms/us/ns/hz/jiffies, ``interval``, optional
``randomize``), :class:`TimerProfile`, :class:`Tracepoint`
(``kernel.trace("group:name")``; ``fields`` may be left ``None`` to read the
tracefs format at compile time), :class:`Uprobe`
(``process("path").function("name")[.return]``) and :class:`Usdt`
(``process("path").mark("name")``).  Begin/end probes run in user space
(see :mod:`interp`); every other probe runs in the kernel.

Expressions: :class:`IntLit`, :class:`StrLit`, :class:`Local`,
:class:`GlobalVar` (scalar), :class:`ArrayGet` (``a[k1, k2]``),
:class:`Exists` (``[k] in a``), :class:`Binary` (``+ - * / % << >> & | ^``),
:class:`Unary` (``- ~ !``), :class:`Compare` (``< <= > >= == !=`` on longs or
strings), :class:`Logical` (``&& ||``), :class:`Cond` (``?:``),
:class:`Concat` (``.``), :class:`Field` (a tracepoint field, ``$name``),
:class:`Arg` (``$argN``/a named parameter of a uprobe or USDT probe,
1-based), :class:`ReturnValue` (``$return``), :class:`Sprintf`,
:class:`StatOp` (``@count/@sum/@min/@max/@avg(x[k])``) and :class:`Call`
(builtins: execname pid tid ppid uid gid euid cpu gettimeofday_s/ms/us/ns
ktime_get_ns jiffies kernel_string user_string strlen pp target).

Statements: :class:`Assign` (``= += -= *= /= %= <<= >>= &= |= ^= .=``; also
``++``/``--`` as ``+= 1``), :class:`ExprStmt`, :class:`If`,
:class:`While`/:class:`For` (with ``bound``: the most iterations the BPF
verifier is promised), :class:`Foreach` (user-space probes only),
:class:`Delete`, :class:`Next`, :class:`Break`, :class:`Continue`,
:class:`Exit`, :class:`Printf`, :class:`Print` (``print``/``println``),
:class:`PrintHist` (``print(@hist_log(x))``) and :class:`AggAdd` (``<<<``).

:class:`Unsupported` may stand for any construct the translator could not
lower; the engine refuses it with a diagnostic naming the construct.

Every node takes an optional keyword ``span`` (a :class:`stap_ls.text.Span`)
so diagnostics and verifier errors point back at the script.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Union

from stap_ls.text import Span


class Type(enum.Enum):
    LONG = "long"
    STRING = "string"
    STATS = "stats"


@dataclass(kw_only=True)
class Node:
    span: Span | None = field(default=None, compare=False, repr=False)


# ---------------------------------------------------------------- probe points

@dataclass
class Begin(Node):
    pass


@dataclass
class End(Node):
    pass


@dataclass
class Never(Node):
    pass


TIMER_UNITS = ("s", "ms", "us", "ns", "hz", "jiffies")


@dataclass
class Timer(Node):
    unit: str
    interval: int
    randomize: int = 0


@dataclass
class TimerProfile(Node):
    """Every CPU, on a CPU-clock perf event: ``timer.profile`` (every tick)
    or stap 4.8's form of it, ``perf.type(1).config(0).sample(N)`` (every
    ``period_ns``)."""
    period_ns: int = 0


@dataclass
class TraceField:
    """One field of a tracepoint record (from its tracefs ``format`` file)."""

    name: str
    offset: int
    size: int
    signed: bool = True
    #: ``__data_loc char[]``: a string stored inside the record
    data_loc: bool = False
    #: a fixed ``char name[N]`` array
    char_array: bool = False


@dataclass
class Tracepoint(Node):
    group: str
    name: str
    fields: list[TraceField] | None = None


@dataclass
class Uprobe(Node):
    path: str
    function: str
    is_return: bool = False


@dataclass
class Usdt(Node):
    path: str
    name: str
    provider: str = ""


ProbePoint = Union[Begin, End, Never, Timer, TimerProfile, Tracepoint, Uprobe, Usdt, "Unsupported"]


# ---------------------------------------------------------------- expressions

@dataclass
class IntLit(Node):
    value: int


@dataclass
class StrLit(Node):
    value: str


@dataclass
class Local(Node):
    name: str


@dataclass
class GlobalVar(Node):
    name: str


@dataclass
class ArrayGet(Node):
    name: str
    keys: list["Expr"]


@dataclass
class Exists(Node):
    name: str
    keys: list["Expr"]


@dataclass
class Binary(Node):
    op: str
    left: "Expr"
    right: "Expr"


@dataclass
class Unary(Node):
    op: str
    operand: "Expr"


@dataclass
class Compare(Node):
    op: str
    left: "Expr"
    right: "Expr"


@dataclass
class Logical(Node):
    op: str
    left: "Expr"
    right: "Expr"


@dataclass
class Cond(Node):
    cond: "Expr"
    then: "Expr"
    else_: "Expr"


@dataclass
class Concat(Node):
    left: "Expr"
    right: "Expr"


@dataclass
class Field(Node):
    name: str


@dataclass
class Arg(Node):
    index: int


@dataclass
class ReturnValue(Node):
    pass


@dataclass
class Sprintf(Node):
    fmt: str
    args: list["Expr"] = field(default_factory=list)


STAT_OPS = ("count", "sum", "min", "max", "avg")


@dataclass
class StatOp(Node):
    op: str
    name: str
    keys: list["Expr"] = field(default_factory=list)


LONG_BUILTINS = ("pid", "tid", "ppid", "uid", "gid", "euid", "cpu", "gettimeofday_s",
                 "gettimeofday_ms", "gettimeofday_us", "gettimeofday_ns",
                 "ktime_get_ns", "jiffies", "target", "strlen")
STRING_BUILTINS = ("execname", "kernel_string", "user_string", "pp")


@dataclass
class Call(Node):
    name: str
    args: list["Expr"] = field(default_factory=list)


@dataclass
class Unsupported(Node):
    """A construct the translator could not lower (refused by the engine)."""

    construct: str


Expr = Union[IntLit, StrLit, Local, GlobalVar, ArrayGet, Exists, Binary, Unary, Compare,
             Logical, Cond, Concat, Field, Arg, ReturnValue, Sprintf, StatOp, Call,
             Unsupported]


# ---------------------------------------------------------------- statements

@dataclass
class Assign(Node):
    target: Union[Local, GlobalVar, ArrayGet]
    value: Expr
    op: str = "="


@dataclass
class ExprStmt(Node):
    expr: Expr


@dataclass
class If(Node):
    cond: Expr
    then: list["Stmt"]
    else_: list["Stmt"] = field(default_factory=list)


DEFAULT_LOOP_BOUND = 1000


@dataclass
class While(Node):
    cond: Expr
    body: list["Stmt"]
    bound: int = DEFAULT_LOOP_BOUND


@dataclass
class For(Node):
    init: "Stmt | None"
    cond: Expr
    step: "Stmt | None"
    body: list["Stmt"]
    bound: int = DEFAULT_LOOP_BOUND


@dataclass
class Foreach(Node):
    """``foreach ([k1, k2] in a- limit n) body`` (user-space probes only).

    ``sort`` is ``""`` (unsorted), ``"key+"``/``"key-"`` (by the keys) or
    ``"value+"``/``"value-"``; ``value_var`` receives ``a[k...]``.
    """

    name: str
    key_vars: list[str]
    body: list["Stmt"]
    value_var: str = ""
    sort: str = ""
    limit: int = 0


@dataclass
class Delete(Node):
    target: Union[GlobalVar, ArrayGet, Local]


@dataclass
class Next(Node):
    pass


@dataclass
class Break(Node):
    pass


@dataclass
class Continue(Node):
    pass


@dataclass
class Exit(Node):
    pass


@dataclass
class Printf(Node):
    fmt: str
    args: list[Expr] = field(default_factory=list)


@dataclass
class Print(Node):
    args: list[Expr]
    newline: bool = False


@dataclass
class PrintHist(Node):
    name: str
    keys: list[Expr] = field(default_factory=list)


@dataclass
class AggAdd(Node):
    name: str
    keys: list[Expr]
    value: Expr


@dataclass
class UnsupportedStmt(Node):
    construct: str


Stmt = Union[Assign, ExprStmt, If, While, For, Foreach, Delete, Next, Break, Continue,
             Exit, Printf, Print, PrintHist, AggAdd, UnsupportedStmt]


# ---------------------------------------------------------------- program

@dataclass
class HistSpec:
    kind: str  # "log" | "linear"
    start: int = 0
    stop: int = 0
    interval: int = 1


MAXMAPENTRIES = 2048


@dataclass
class Global(Node):
    name: str
    type: Type
    keys: list[Type] = field(default_factory=list)
    size: int = 0
    wrap: bool = False
    init: int | str | None = None
    hist: HistSpec | None = None

    @property
    def is_array(self) -> bool:
        return bool(self.keys)

    @property
    def max_entries(self) -> int:
        return self.size or MAXMAPENTRIES


@dataclass
class Probe(Node):
    point: ProbePoint
    body: list[Stmt]
    locals: dict[str, Type] = field(default_factory=dict)
    pp: str = ""

    @property
    def in_kernel(self) -> bool:
        return not isinstance(self.point, (Begin, End, Never))


@dataclass
class Program(Node):
    globals: list[Global] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)

    def global_named(self, name: str) -> Global | None:
        for g in self.globals:
            if g.name == name:
                return g
        return None


class TypeError_(Exception):
    """An ill-typed IR (a translator bug, reported as a diagnostic)."""

    def __init__(self, message: str, node: Node | None = None) -> None:
        super().__init__(message)
        self.node = node


def type_of(expr: Expr, probe: Probe, program: Program) -> Type:
    """The stap type of an expression (LONG or STRING)."""
    match expr:
        case IntLit() | Exists() | Compare() | Logical() | Arg() | ReturnValue() | StatOp():
            return Type.LONG
        case StrLit() | Concat() | Sprintf():
            return Type.STRING
        case Binary() | Unary():
            return Type.LONG
        case Local(name=name):
            if name not in probe.locals:
                raise TypeError_(f"local '{name}' has no declared type", expr)
            return probe.locals[name]
        case GlobalVar(name=name) | ArrayGet(name=name):
            g = program.global_named(name)
            if g is None:
                raise TypeError_(f"unknown global '{name}'", expr)
            if g.type is Type.STATS:
                raise TypeError_(f"aggregate '{name}' used as a value", expr)
            return g.type
        case Cond(then=then):
            return type_of(then, probe, program)
        case Field(name=name):
            pt = probe.point
            if isinstance(pt, Tracepoint) and pt.fields is not None:
                for f in pt.fields:
                    if f.name == name:
                        return Type.STRING if (f.data_loc or f.char_array) else Type.LONG
                raise TypeError_(f"tracepoint {pt.group}:{pt.name} has no field '{name}'", expr)
            return Type.LONG
        case Call(name=name):
            if name in STRING_BUILTINS:
                return Type.STRING
            if name in LONG_BUILTINS:
                return Type.LONG
            raise TypeError_(f"unknown function '{name}'", expr)
        case Unsupported():
            return Type.LONG
    raise TypeError_(f"not an expression: {type(expr).__name__}", expr)
