"""The ``syscall.*`` tapset aliases on the raw syscall tracepoints, for the translator.

Without kernel debug information or kprobes, elaboration expands
``syscall.NAME`` to ``tp_syscall.NAME``: ``kernel.trace("raw_syscalls:sys_enter")``
(``sys_exit`` for ``.return``) with a body that filters on the syscall number
and reads the arguments through tapset functions written in embedded C.  This
module gives those functions their meaning on the tracepoint record
(``long id; unsigned long args[6]`` / ``long id; long ret``):

* ``__set_syscall_pt_regs($regs)`` does nothing (its argument is not read);
* ``_stp_syscall_nr()`` is the ``id`` field; ``returnval()`` the ``ret`` field;
* ``int_arg(n)``/``uint_arg``/``long_arg``/``ulong_arg``/``pointer_arg``/
  ``s32_arg``/``u32_arg``/``s64_arg``/``u64_arg``/``longlong_arg``/
  ``ulonglong_arg`` read ``args[n-1]`` (synthetic fields ``__arg1..6``),
  narrowed to the C type the name says;
* ``user_string_quoted(p)`` is ``"NULL"`` for 0, else the string in double
  quotes (stap also escapes non-printable characters and marks truncation
  with ``...``; this does not), ``user_string_nofault(p)`` the string or "";
* embedded-C constants in the alias bodies: ``_stp_is_compat_task()`` is 0
  (64-bit tasks only), ``__NR_name`` comes from the system's
  ``asm/unistd_64.h``, ``__NR_compat_*`` never matches, and a few flags
  (``AT_FDCWD``, ``O_CREAT``) are tabled;
* a ``try { ... } catch { next }`` around such reads keeps only its body
  (nothing in it can fail); ``@probewrite(v)`` is 0 unless the user's probe
  body assigns ``v`` (writing syscall arguments is refused).

Anything else in those bodies is refused as usual, and the refusal lands on
the user's probe point (see :meth:`Translator._place_alias_refusals`).
"""

from __future__ import annotations

import functools
import re

from stap_ls.backends.bpf import ir
from stap_ls.backends.bpf.translate_points import TranslateError, narrow
from stap_ls.syntax import ast as A

UNISTD = ("/usr/include/x86_64-linux-gnu/asm/unistd_64.h", "/usr/include/asm/unistd_64.h")
#: constants that alias bodies spell as embedded C (x86_64 values)
CONSTANTS = {"AT_FDCWD": -100, "O_CREAT": 0o100, "O_RDONLY": 0, "O_WRONLY": 1, "O_RDWR": 2}
_ARG_TYPES = {"int_arg": "int", "uint_arg": "unsigned int", "s32_arg": "int",
              "u32_arg": "unsigned int", "long_arg": "long", "ulong_arg": "long",
              "pointer_arg": "long", "s64_arg": "long", "u64_arg": "long",
              "longlong_arg": "long", "ulonglong_arg": "long"}
SYS_ENTER = ("raw_syscalls", "sys_enter")
SYS_EXIT = ("raw_syscalls", "sys_exit")


@functools.lru_cache(maxsize=1)
def syscall_numbers() -> dict[str, int]:
    """``__NR_name`` -> number, from the system's ``asm/unistd_64.h``."""
    for path in UNISTD:
        try:
            text = open(path).read()
        except OSError:
            continue
        return {m.group(1): int(m.group(2)) for m in
                re.finditer(r"^#define\s+(__NR_\w+)\s+(\d+)\s*$", text, re.M)}
    return {}


def syscall_probe(point: ir.Node) -> str:
    """"enter"/"exit" for the raw syscall tracepoints, "" otherwise."""
    if isinstance(point, ir.Tracepoint):
        if (point.group, point.name) == SYS_ENTER:
            return "enter"
        if (point.group, point.name) == SYS_EXIT:
            return "exit"
    return ""


def add_arg_fields(point: ir.Tracepoint) -> None:
    """``args[6]`` of sys_enter as six 8-byte fields ``__arg1..__arg6``."""
    if point.fields is None or syscall_probe(point) != "enter":
        return
    base = next((f.offset for f in point.fields if f.name == "args"), None)
    if base is not None:
        point.fields.extend(ir.TraceField(f"__arg{i}", base + 8 * (i - 1), 8, signed=True)
                            for i in range(1, 7))


def shim_call(tr, e: A.FunctionCall) -> ir.Expr | None:
    """The meaning of a tapset function call in a raw syscall probe (None: not ours)."""
    if tr.ps is None:
        return None
    kind = syscall_probe(tr.ps.probe.point)
    if not kind:
        return None
    sp = e.span
    name = e.name
    if name == "__set_syscall_pt_regs":
        return ir.IntLit(0, span=sp)
    if name == "_stp_syscall_nr" and not e.args:
        return ir.Field("id", span=sp)
    if name == "returnval" and not e.args and kind == "exit":
        return ir.Field("ret", span=sp)
    if name in _ARG_TYPES and len(e.args) == 1:
        n = e.args[0]
        if kind != "enter" or not isinstance(n, A.NumberLit) or not 1 <= n.value <= 6:
            raise TranslateError(f"{name}() here", sp, "syscall arguments 1-6 at sys_enter only")
        return narrow(ir.Field(f"__arg{n.value}", span=sp), _ARG_TYPES[name], sp)
    if name == "user_string_quoted" and len(e.args) == 1:
        p = tr.expr(e.args[0])
        tmp = tr.fresh("uptr", ir.Type.LONG)
        tr.pre.append(ir.Assign(ir.Local(tmp, span=sp), p, span=sp))
        quoted = ir.Concat(ir.Concat(ir.StrLit('"', span=sp), ir.Call(
            "user_string", [ir.Local(tmp, span=sp), ir.StrLit("", span=sp)], span=sp), span=sp),
            ir.StrLit('"', span=sp), span=sp)
        return ir.Cond(ir.Compare("==", ir.Local(tmp, span=sp), ir.IntLit(0, span=sp), span=sp),
                       ir.StrLit("NULL", span=sp), quoted, span=sp)
    if name == "user_string_nofault" and len(e.args) == 1:
        return ir.Call("user_string", [tr.expr(e.args[0]), ir.StrLit("", span=sp)], span=sp)
    return None


def embedded_constant(e: A.EmbeddedExpr) -> ir.Expr | None:
    """The value of an embedded-C constant an alias body uses (None: unknown)."""
    code = re.sub(r"/\*.*?\*/", " ", e.code, flags=re.S).strip()
    if code == "_stp_is_compat_task()":
        return ir.IntLit(0, span=e.span)
    if re.fullmatch(r"__NR_compat_\w+", code):
        return ir.IntLit(-1, span=e.span)
    if code.startswith("__NR_"):
        nr = syscall_numbers().get(code)
        return ir.IntLit(nr, span=e.span) if nr is not None else None
    if code in CONSTANTS:
        return ir.IntLit(CONSTANTS[code], span=e.span)
    return None


def try_body(s: A.TryBlock) -> bool:
    """A try/catch whose body cannot fail here, so its catch can be dropped."""
    allowed = (A.Block, A.ExprStmt, A.AssignExpr, A.Symbol, A.NumberLit, A.StringLit)
    for n in A.walk(s.body):
        if isinstance(n, A.FunctionCall):
            if n.name not in ("_stp_syscall_nr", "returnval") and n.name not in _ARG_TYPES:
                return False
        elif not isinstance(n, allowed):
            return False
    return True


def user_writes(decl: A.ProbeDecl, name: str) -> bool:
    """Whether the user's probe body assigns the alias variable ``name``."""
    for n in A.walk(decl.body):
        if isinstance(n, (A.AssignExpr, A.PreCrement, A.PostCrement)):
            target = n.left if isinstance(n, A.AssignExpr) else n.operand
            if isinstance(target, A.Symbol) and target.name == name:
                return True
    return False


ERRNO_TABLE = "__stp_errno_names"


def errno_table() -> tuple[ir.Global, ir.Probe]:
    """A string array errno -> name (``ENOENT``), filled by a begin probe that
    runs before every other: what ``errno_str()``/``errno_p()`` read."""
    import errno
    g = ir.Global(ERRNO_TABLE, ir.Type.STRING, [ir.Type.LONG], size=256)
    body: list[ir.Stmt] = [ir.Assign(ir.ArrayGet(ERRNO_TABLE, [ir.IntLit(n)]), ir.StrLit(name))
                           for n, name in sorted(errno.errorcode.items()) if 0 < n < 256]
    return g, ir.Probe(ir.Begin(), body, pp="begin")


def errno_call(tr, e: A.FunctionCall) -> ir.Expr | None:
    """``errno_str(e)`` and ``errno_p(e)`` over :func:`errno_table`."""
    if e.name not in ("errno_str", "errno_p") or len(e.args) != 1 or tr.ps is None:
        return None
    sp = e.span
    tr.need_errno = True
    v = tr.fresh("errno", ir.Type.LONG)
    tr.pre.append(ir.Assign(ir.Local(v, span=sp), tr.expr(e.args[0]), span=sp))
    absval = ir.Cond(ir.Compare("<", ir.Local(v, span=sp), ir.IntLit(0, span=sp), span=sp),
                     ir.Unary("-", ir.Local(v, span=sp), span=sp), ir.Local(v, span=sp), span=sp)
    known = ir.Exists(ERRNO_TABLE, [absval], span=sp)
    if e.name == "errno_p":
        return ir.Cond(known, absval, ir.IntLit(0, span=sp), span=sp)
    return ir.ArrayGet(ERRNO_TABLE, [absval], span=sp)


def dead_alias_statements(body: A.Stmt, referents: dict, is_user) -> set[int]:
    """Statements of tapset alias bodies whose only effect is a value nobody
    reads (stap's optimiser removes them): assignments to locals never read,
    and ``sprint*()`` whose value is dropped.  Returns their ``id()``s."""
    stmts = [s for s in A.walk(body) if isinstance(s, A.ExprStmt)
             and s.span is not None and not is_user(s.span.source.name)]
    lhs = {id(s.expr.left) for s in A.walk(body) if isinstance(s, A.ExprStmt)
           and isinstance(s.expr, A.AssignExpr) and s.expr.op == "="
           and isinstance(s.expr.left, A.Symbol)}
    dropped: set[int] = set()
    while True:
        under = {id(n) for s in stmts if id(s) in dropped for n in A.walk(s)}
        reads = {id(referents.get(id(n))) for n in A.walk(body)
                 if isinstance(n, A.Symbol) and id(n) not in under and id(n) not in lhs}
        new = set()
        for s in stmts:
            if id(s) in dropped:
                continue
            x = s.expr
            if isinstance(x, A.AssignExpr) and x.op == "=" and isinstance(x.left, A.Symbol):
                v = referents.get(id(x.left))
                if getattr(v, "kind", "") == "local" and id(v) not in reads:
                    new.add(id(s))
            elif isinstance(x, A.PrintFormat) and x.name.startswith("s") and not any(
                    isinstance(n, (A.AssignExpr, A.PreCrement, A.PostCrement)) for n in A.walk(x)):
                new.add(id(s))
        if not new:
            return dropped
        dropped |= new
