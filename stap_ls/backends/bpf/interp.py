"""User-space interpreter for begin, end (and error-free never) probes.

stap runs ``begin`` and ``end`` probes once, outside any traced context, so the
BPF engine runs them in Python against the live maps (:class:`store.MapStore`)
instead of loading them into the kernel.  This keeps ``foreach`` (with
sorting and ``limit``), ``delete`` of whole arrays and histogram printing
exact and out of the verifier's reach.  Semantics follow stap: 64-bit
wrapping integers, division truncating toward zero with a ``division by 0``
error, ``next`` leaving the probe, ``exit()`` requesting the end of the run
while the probe completes.

Builtins answer for this process (``pid()``, ``execname()`` ...), as a begin
probe in stap answers for the process that ran it; ``kernel_string`` and
``user_string`` have no target memory here and raise an error.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Callable

from stap_ls.backends.bpf import format as F
from stap_ls.backends.bpf import ir
from stap_ls.backends.bpf.ir import Type
from stap_ls.backends.bpf.layout import to_s64
from stap_ls.backends.bpf.store import MapStore
from stap_ls.text import Span

MAXACTION = 1_000_000


class StapError(Exception):
    def __init__(self, message: str, span: Span | None = None) -> None:
        super().__init__(message)
        self.span = span


class _Next(Exception):
    pass


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


@dataclass
class Context:
    output: Callable[[bytes], None]
    request_exit: Callable[[], None]
    target: int = 0


def _div(a: int, b: int, node: ir.Node, mod: bool) -> int:
    if b == 0:
        raise StapError("division by 0", node.span)
    q = abs(a) // abs(b)
    if (a < 0) != (b < 0):
        q = -q
    return to_s64(a - q * b) if mod else to_s64(q)


class Interpreter:
    def __init__(self, program: ir.Program, store: MapStore, ctx: Context) -> None:
        self.program = program
        self.store = store
        self.ctx = ctx
        self.steps = 0

    def run(self, probe: ir.Probe) -> None:
        self.probe = probe
        self.locals: dict[str, int | str] = {n: ("" if t is Type.STRING else 0) for n, t in probe.locals.items()}
        self.steps = 0
        try:
            self.block(probe.body)
        except _Next:
            pass

    # -- statements
    def block(self, body: list[ir.Stmt]) -> None:
        for s in body:
            self.stmt(s)

    def tick(self, node: ir.Node) -> None:
        self.steps += 1
        if self.steps > MAXACTION:
            raise StapError("MAXACTION exceeded", node.span)

    def stmt(self, s: ir.Stmt) -> None:
        self.tick(s)
        match s:
            case ir.Assign(target=t, value=v, op=op):
                self.assign(t, op, v, s)
            case ir.ExprStmt(expr=x):
                self.eval(x)
            case ir.If(cond=c, then=a, else_=b):
                self.block(a if self.eval(c) else b)
            case ir.While(cond=c, body=body):
                self.loop(None, c, None, body)
            case ir.For(init=i, cond=c, step=st, body=body):
                self.loop(i, c, st, body)
            case ir.Foreach():
                self.foreach(s)
            case ir.Delete(target=t):
                self.delete(t)
            case ir.Next():
                raise _Next()
            case ir.Break():
                raise _Break()
            case ir.Continue():
                raise _Continue()
            case ir.Exit():
                self.ctx.request_exit()
            case ir.Printf(fmt=fmt, args=args):
                self.printf(fmt, [self.eval(a) for a in args], s)
            case ir.Print(args=args, newline=nl):
                vals = [self.eval(a) for a in args]
                text = "".join(v if isinstance(v, str) else str(v) for v in vals) + ("\n" if nl else "")
                self.ctx.output(text.encode("utf-8", "surrogateescape"))
            case ir.PrintHist(name=n, keys=keys):
                self.ctx.output(self.hist_text(n, [self.eval(k) for k in keys], s).encode())
            case ir.AggAdd(name=n, keys=keys, value=v):
                self.store.stat_add(n, [self.eval(k) for k in keys], self.eval(v))
            case _:
                raise StapError(f"the bpf engine cannot run {type(s).__name__} here", s.span)

    def printf(self, fmt: str, vals: list, node: ir.Node) -> None:
        try:
            pieces = F.parse_format(fmt)
        except F.FormatError as e:
            raise StapError(str(e), node.span) from None
        if any(isinstance(p, F.Conversion) and p.conv in "mM" for p in pieces):
            raise StapError("%m/%M read kernel memory, which a user-space probe cannot", node.span)
        self.ctx.output(F.format_values(pieces, vals))

    def hist_text(self, name: str, keys: list, node: ir.Node) -> str:
        g = self.program.global_named(name)
        if g is None or g.hist is None:
            raise StapError(f"'{name}' has no histogram", node.span)
        sv = self.store.stat_get(name, keys)
        return F.format_histogram(sv.hist or [], g.hist.kind, g.hist.start, g.hist.interval)

    def loop(self, init, cond, step, body) -> None:
        if init is not None:
            self.stmt(init)
        while self.eval(cond):
            self.tick(cond)
            try:
                self.block(body)
            except _Break:
                break
            except _Continue:
                pass
            if step is not None:
                self.stmt(step)

    def foreach(self, s: ir.Foreach) -> None:
        g = self.program.global_named(s.name)
        if g is None or not g.is_array:
            raise StapError(f"foreach over '{s.name}', which is not an array", s.span)
        keys = self.store.arr_keys(s.name)

        def value(k: tuple):
            if g.type is Type.STATS:
                return self.store.stat_get(s.name, list(k)).count
            return self.store.arr_get(s.name, list(k))

        if s.sort.startswith("value"):
            keys.sort(key=value, reverse=s.sort.endswith("-"))
        elif s.sort.startswith("key"):
            keys.sort(reverse=s.sort.endswith("-"))
        if s.limit > 0:
            keys = keys[: s.limit]
        for k in keys:
            for var, kv in zip(s.key_vars, k):
                self.locals[var] = kv
            if s.value_var:
                self.locals[s.value_var] = value(k)
            try:
                self.block(s.body)
            except _Break:
                break
            except _Continue:
                continue

    def delete(self, t: ir.Expr) -> None:
        match t:
            case ir.Local(name=n):
                self.locals[n] = "" if isinstance(self.locals.get(n), str) else 0
            case ir.GlobalVar(name=n):
                g = self.program.global_named(n)
                if g is not None and (g.is_array or g.type is Type.STATS):
                    self.store.arr_clear(n)
                else:
                    self.store.set_scalar(n, "" if g is not None and g.type is Type.STRING else 0)
            case ir.ArrayGet(name=n, keys=keys):
                self.store.arr_delete(n, [self.eval(k) for k in keys])

    def assign(self, t: ir.Expr, op: str, v: ir.Expr, node: ir.Node) -> None:
        val = self.eval(v)
        if op != "=":
            cur = self.eval(t)
            if op == ".=":
                val = cur + val
            else:
                val = self.binary(op[:-1], cur, val, node)
        match t:
            case ir.Local(name=n):
                self.locals[n] = val
            case ir.GlobalVar(name=n):
                self.store.set_scalar(n, val)
            case ir.ArrayGet(name=n, keys=keys):
                try:
                    self.store.arr_set(n, [self.eval(k) for k in keys], val)
                except OverflowError as e:
                    raise StapError(str(e), node.span) from None

    # -- expressions
    def binary(self, op: str, a: int, b: int, node: ir.Node) -> int:
        if op == "+":
            return to_s64(a + b)
        if op == "-":
            return to_s64(a - b)
        if op == "*":
            return to_s64(a * b)
        if op in ("/", "%"):
            return _div(a, b, node, op == "%")
        if op == "<<":
            return to_s64(a << (b & 63))
        if op == ">>":
            return a >> (b & 63)
        if op == "&":
            return a & b
        if op == "|":
            return a | b
        if op == "^":
            return a ^ b
        raise StapError(f"unknown operator '{op}'", node.span)

    def eval(self, e: ir.Expr):
        match e:
            case ir.IntLit(value=v):
                return to_s64(v)
            case ir.StrLit(value=v):
                return v
            case ir.Local(name=n):
                return self.locals.get(n, 0)
            case ir.GlobalVar(name=n):
                return self.store.get_scalar(n)
            case ir.ArrayGet(name=n, keys=keys):
                return self.store.arr_get(n, [self.eval(k) for k in keys])
            case ir.Exists(name=n, keys=keys):
                return int(self.store.arr_exists(n, [self.eval(k) for k in keys]))
            case ir.Binary(op=op, left=a, right=b):
                return self.binary(op, self.eval(a), self.eval(b), e)
            case ir.Unary(op=op, operand=x):
                v = self.eval(x)
                return to_s64(-v) if op == "-" else (~v if op == "~" else int(not v))
            case ir.Compare(op=op, left=a, right=b):
                x, y = self.eval(a), self.eval(b)
                if isinstance(x, str):
                    x, y = x.encode("utf-8", "surrogateescape"), y.encode("utf-8", "surrogateescape")
                return int({"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y,
                            "==": x == y, "!=": x != y}[op])
            case ir.Logical(op=op, left=a, right=b):
                if op == "&&":
                    return int(bool(self.eval(a)) and bool(self.eval(b)))
                return int(bool(self.eval(a)) or bool(self.eval(b)))
            case ir.Cond(cond=c, then=a, else_=b):
                return self.eval(a) if self.eval(c) else self.eval(b)
            case ir.Concat(left=a, right=b):
                return self.eval(a) + self.eval(b)
            case ir.Sprintf(fmt=fmt, args=args):
                try:
                    out = F.sprintf(fmt, *[self.eval(a) for a in args])
                except F.FormatError as err:
                    raise StapError(str(err), e.span) from None
                return out.decode("utf-8", "surrogateescape")
            case ir.StatOp(op=op, name=n, keys=keys):
                sv = self.store.stat_get(n, [self.eval(k) for k in keys])
                if op == "count":
                    return sv.count
                if op == "sum":
                    return sv.sum
                if sv.count == 0:
                    raise StapError("empty aggregate", e.span)
                return {"min": sv.min, "max": sv.max, "avg": _div(sv.sum, sv.count, e, False)}[op]
            case ir.Call(name=name, args=args):
                return self.call(name, [self.eval(a) for a in args], e)
        raise StapError(f"the bpf engine cannot evaluate {type(e).__name__} in a "
                        f"{type(self.probe.point).__name__.lower()} probe", e.span)

    def call(self, name: str, args: list, e: ir.Expr):
        now = time.time_ns
        table: dict[str, Callable[[], object]] = {
            "pid": os.getpid, "tid": threading.get_native_id, "ppid": os.getppid,
            "uid": os.getuid, "euid": os.geteuid, "gid": os.getgid,
            "cpu": lambda: int(open("/proc/thread-self/stat").read().rsplit(")", 1)[1].split()[36]),
            "gettimeofday_ns": now, "gettimeofday_us": lambda: now() // 1000,
            "gettimeofday_ms": lambda: now() // 10**6, "gettimeofday_s": lambda: now() // 10**9,
            "ktime_get_ns": time.monotonic_ns, "target": lambda: self.ctx.target,
            "execname": lambda: open("/proc/self/comm").read().strip(),
            "pp": lambda: self.probe.pp,
            "jiffies": lambda: time.monotonic_ns() // (10**9 // 250),
        }
        if name in table:
            return table[name]()
        if name == "strlen" and len(args) == 1:
            return len(args[0].encode("utf-8", "surrogateescape"))
        raise StapError(f"{name}() is not available in a user-space (begin/end) probe", e.span)
