"""Probe points, target variables and tapset builtins for the stap -> IR translator.

The elaborator (pass 2) gives every derived probe its concrete point as
``stap -p2`` prints it (``timer.ms(100).randomize(5)``,
``kernel.trace("raw_syscalls:sys_enter")``,
``process("/bin/ls").function("main@ls.c:12").return``) and, for
target-backed families, a :class:`~stap_ls.sema.targetprobes.ConcretePoint`
with the ``$variables`` the context offers.  This module turns those into the
IR's probe point classes and lowers ``$var`` reads:

* ``kernel.trace``: ``$field`` is the tracefs record field (the fields are
  read here, from tracefs, so the translator can type string fields);
* ``process(...).function(...)``: ``$param`` is the parameter's register at
  entry (System V AMD64 order, first six integer parameters), narrowed to its
  declared C type; ``$return`` is the return register, narrowed the same way;
* ``process(...).mark(...)``: ``$argN`` through libbpf's USDT argument specs,
  ``$$name``/``$$provider`` as strings.

Tapset functions are embedded C the engine cannot run; :data:`BUILTINS` maps
the ones scripts use most, by name, to IR builtins.  Everything else is a
:class:`TranslateError` whose message names the construct.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stap_ls.backends.bpf import ir
from stap_ls.text import Span

#: tapset function name -> IR builtin name
BUILTINS = {name: name for name in ir.LONG_BUILTINS + ir.STRING_BUILTINS}
BUILTINS.update({"ktime_get_ns": "ktime_get_ns", "jiffies": "jiffies"})
#: arity each builtin accepts
BUILTIN_ARITY = {"kernel_string": (1, 2), "user_string": (1, 2), "strlen": (1,)}

#: C integer types by name: (bytes, signed)
_INT_TYPES = {"char": (1, True), "signed char": (1, True), "unsigned char": (1, False),
              "short": (2, True), "short int": (2, True), "unsigned short": (2, False),
              "short unsigned int": (2, False), "int": (4, True), "unsigned int": (4, False),
              "_Bool": (1, False), "bool": (1, False)}
_COMPONENT = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)(?:\(("(?:[^"\\]|\\.)*"|[-+]?\w+)\))?\s*')


class TranslateError(Exception):
    """A construct the BPF engine cannot run; becomes a diagnostic on ``span``."""

    def __init__(self, construct: str, span: Span | None, why: str = "") -> None:
        super().__init__(construct)
        self.construct = construct
        self.span = span
        self.why = why


@dataclass
class PointComponent:
    functor: str
    arg: str | int | None


def split_point(text: str) -> list[PointComponent] | None:
    """``process("/x").function("f").return`` -> its components (None if odd)."""
    out: list[PointComponent] = []
    pos = 0
    while pos < len(text):
        m = _COMPONENT.match(text, pos)
        if m is None:
            return None
        arg: str | int | None = None
        if m.group(2) is not None:
            raw = m.group(2)
            if raw.startswith('"'):
                arg = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            else:
                try:
                    arg = int(raw, 0)
                except ValueError:
                    return None
        out.append(PointComponent(m.group(1), arg))
        pos = m.end()
        if pos < len(text):
            if text[pos] != ".":
                return None
            pos += 1
    return out


def probe_point(text: str, target: object | None, span: Span | None) -> ir.Node:
    """The IR probe point for a concrete point text (raises TranslateError)."""
    comps = split_point(text.strip().rstrip("?!"))
    if not comps:
        raise TranslateError(f"the probe point {text}", span)
    names = [c.functor for c in comps]
    head = names[0]
    if head == "begin" and len(comps) == 1:
        return ir.Begin(span=span)
    if head == "end" and len(comps) == 1:
        return ir.End(span=span)
    if head == "never" and len(comps) == 1:
        return ir.Never(span=span)
    if head == "timer":
        return _timer(comps, text, span)
    if head == "kernel" and len(comps) == 2 and names[1] == "trace":
        arg = comps[1].arg
        if isinstance(arg, str) and ":" in arg and not any(ch in arg for ch in "*?["):
            group, name = arg.split(":", 1)
            return ir.Tracepoint(group, name, span=span)
        raise TranslateError(f"the probe point {text}", span, "the tracepoint has no group")
    if head == "process":
        return _process(comps, text, target, span)
    why = ""
    if head in ("kernel", "module", "kprobe"):
        why = "kprobes are not available to it; use kernel.trace where a tracepoint fits"
    elif head == "perf":
        if names == ["perf", "type", "config", "sample"] and comps[1].arg == 1 \
                and comps[2].arg == 0 and isinstance(comps[3].arg, int) and comps[3].arg > 0:
            # PERF_TYPE_SOFTWARE / PERF_COUNT_SW_CPU_CLOCK: the period is in
            # nanoseconds (timer.profile and perf.sw.cpu_clock become this)
            return ir.TimerProfile(comps[3].arg, span=span)
        why = "only the CPU clock (perf.sw.cpu_clock) of the perf counters is implemented"
    raise TranslateError(f"the probe point {text}", span, why)


def _timer(comps: list[PointComponent], text: str, span: Span | None) -> ir.Node:
    if [c.functor for c in comps[1:]] in (["profile"], ["profile", "tick"]) \
            and all(c.arg is None for c in comps[1:]):
        return ir.TimerProfile(span=span)
    if len(comps) in (2, 3) and comps[1].functor in ir.TIMER_UNITS \
            and isinstance(comps[1].arg, int) and comps[1].arg > 0:
        rnd = 0
        if len(comps) == 3:
            if comps[2].functor != "randomize" or not isinstance(comps[2].arg, int):
                raise TranslateError(f"the probe point {text}", span)
            rnd = comps[2].arg
        return ir.Timer(comps[1].functor, comps[1].arg, rnd, span=span)
    raise TranslateError(f"the probe point {text}", span)


def _process(comps: list[PointComponent], text: str, target: object | None,
             span: Span | None) -> ir.Node:
    path = comps[0].arg if isinstance(comps[0].arg, str) else getattr(target, "origin", "")
    rest = [c.functor for c in comps[1:]]
    if not path or not isinstance(path, str) or not path.startswith("/"):
        raise TranslateError(f"the probe point {text}", span,
                             "give the executable's full path in process(\"PATH\")")
    if rest in (["function"], ["function", "return"]):
        fn = comps[1].arg
        if not isinstance(fn, str):
            raise TranslateError(f"the probe point {text}", span, "functions are named by string")
        fn = getattr(target, "function", "") or fn.split("@", 1)[0]
        if any(ch in fn for ch in "*?["):
            raise TranslateError(f"the probe point {text}", span, "wildcard function names")
        return ir.Uprobe(path, fn, is_return=rest[-1] == "return", span=span)
    if rest == ["mark"] and isinstance(comps[1].arg, str):
        return ir.Usdt(path, comps[1].arg, span=span)
    raise TranslateError(f"the probe point {text}", span)


# ---------------------------------------------------------------- target variables

def narrow(value: ir.Expr, ctype: str, span: Span | None) -> ir.Expr:
    """A register value narrowed to a C integer type (``int`` sign-extends 32 bits)."""
    t = " ".join(ctype.replace("const ", "").replace("volatile ", "").split())
    info = _INT_TYPES.get(t)
    if info is None or "*" in t:
        return value
    size, signed = info
    bits = size * 8
    if signed:
        shift = ir.IntLit(64 - bits, span=span)
        return ir.Binary(">>", ir.Binary("<<", value, shift, span=span), shift, span=span)
    return ir.Binary("&", value, ir.IntLit((1 << bits) - 1, span=span), span=span)


def target_var(name: str, point: ir.Node, target: object | None, span: Span | None,
               fields: list[ir.TraceField] | None) -> ir.Expr:
    """``$name`` in the probe ``point`` as an IR expression (raises TranslateError)."""
    if isinstance(point, ir.Tracepoint):
        if fields is not None and not any(f.name == name for f in fields):
            have = ", ".join("$" + f.name for f in fields
                             if not f.name.startswith(("common_", "__arg")))
            raise TranslateError(f"the target variable '${name}'", span,
                                 f"it reads the fields of the kernel.trace(\"{point.group}:"
                                 f"{point.name}\") record: {have or 'none'}")
        return ir.Field(name, span=span)
    tvars = list(getattr(target, "target_vars", None) or [])
    if isinstance(point, ir.Usdt):
        m = re.fullmatch(r"arg(\d+)", name)
        if m:
            return ir.Arg(int(m.group(1)), span=span)
        if name == "$name":
            return ir.StrLit(point.name, span=span)
        if name == "$provider":
            return ir.StrLit(point.provider, span=span)
        raise TranslateError(f"the target variable '${name}'", span, "SDT markers offer $argN")
    if isinstance(point, ir.Uprobe):
        params = [v for v in tvars if v.name != "return"]
        if name == "return":
            if not point.is_return:
                raise TranslateError("$return outside a .return probe", span)
            rtype = next((v.type for v in tvars if v.name == "return"), "long")
            return narrow(ir.ReturnValue(span=span), rtype, span)
        m = re.fullmatch(r"arg(\d+)", name)
        if m and not any(v.name == name for v in params):
            return ir.Arg(int(m.group(1)), span=span)
        for i, v in enumerate(params):
            if v.name == name:
                if i >= 6:
                    raise TranslateError(f"the target variable '${name}'", span,
                                         "only the first six parameters are read (registers)")
                if "[" in v.type or v.type.startswith(("struct ", "union ")) and "*" not in v.type:
                    raise TranslateError(f"the target variable '${name}' of type {v.type}", span)
                return narrow(ir.Arg(i + 1, span=span), v.type, span)
        raise TranslateError(f"the target variable '${name}'", span,
                             "only the function's parameters and $return are read")
    raise TranslateError(f"the target variable '${name}' in this probe", span)
