"""Pass 3 of the BPF engine: the elaborated stap program (pass 2) -> the IR.

:func:`translate` walks a :class:`stap_ls.sema.program.Program` and builds an
:class:`stap_ls.backends.bpf.ir.Program`, or returns diagnostics naming every
construct it cannot lower (each on the construct, suggesting the stap engine).

How stap's language maps onto the IR
------------------------------------
* **Globals** keep their pass-2 types (long/string/stats, key types, ``[size]``,
  ``%``, initialiser).  A stats global takes the histogram kind its
  ``print(@hist_*(x))`` asks for; two kinds for one aggregate are refused.
* **Probes**: one IR probe per derived probe (:mod:`translate_points` maps the
  concrete point); a probe condition (``probe p if (c)``) becomes a leading
  ``if (!(c)) next``.  ``begin(N)``/``end(N)`` priorities order the probes.
* **Expressions** lower one to one where the IR has the node; assignments,
  ``++``/``--`` and function calls used *as values* are hoisted into
  statements that run just before the statement using them.  When such a
  value sits on the right of ``&&``/``||`` or in a branch of ``?:``, the
  hoisted statements go under an ``if`` so stap's short circuit is kept.
* **Functions** are inlined: arguments are evaluated into fresh locals, the
  function's locals are cleared at each call, ``return`` stores the value and
  sets a "done" flag that skips the rest of the body (and breaks out of the
  function's loops).  A function already being inlined (recursion) is refused.
  Tapset functions are embedded C: those in :data:`translate_points.BUILTINS`
  become IR builtins by name, ``exit()`` the IR ``Exit``; script-language
  tapset functions are inlined like the user's; any other is refused on the
  call.
* **Strings** keep stap's escapes in the AST; they are decoded here (C rules).
* **Tapset alias bodies**: ``syscall.*`` on the raw syscall tracepoints get
  their embedded-C helpers from :mod:`translate_syscalls`; statements of alias
  bodies whose value nobody reads are skipped (as stap's optimiser would), a
  literal argument bound to a parameter nobody assigns is substituted and
  constant conditions fold, so ``return_str(1, $ret)`` keeps one branch.  What
  is still refused inside an alias body is reported once, on the user's probe
  point, with the tapset places as related information.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from stap_ls.backends.bpf import ir
from stap_ls.backends.bpf.translate_points import (BUILTIN_ARITY, BUILTINS, TranslateError,
                                                   probe_point, split_point, target_var)
from stap_ls.backends.bpf.translate_syscalls import (add_arg_fields, dead_alias_statements,
                                                     errno_call, errno_table, shim_call,
                                                     syscall_probe, try_body)
from stap_ls.sema import program as P
from stap_ls.syntax import ast as A
from stap_ls.text import Diagnostic, Related, Severity, Span

SUGGEST = "; run it with the stap engine instead"
MAX_INLINE_DEPTH = 24
_TYPES = {P.LONG: ir.Type.LONG, P.STRING: ir.Type.STRING, P.STATS: ir.Type.STATS}
_SIMPLE_ESC = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v",
               "\\": "\\", "'": "'", '"': '"', "?": "?"}


def decode_string(raw: str) -> str:
    """A stap string literal's text with its C escapes decoded."""
    out: list[str] = []
    i = 0
    while i < len(raw):
        c = raw[i]
        if c != "\\" or i + 1 >= len(raw):
            out.append(c)
            i += 1
            continue
        n = raw[i + 1]
        if n in _SIMPLE_ESC:
            out.append(_SIMPLE_ESC[n])
            i += 2
        elif n in "01234567":
            j = i + 1
            while j < len(raw) and j < i + 4 and raw[j] in "01234567":
                j += 1
            out.append(chr(int(raw[i + 1:j], 8) & 0xFF))
            i = j
        elif n == "x":
            j = i + 2
            while j < len(raw) and raw[j] in "0123456789abcdefABCDEF":
                j += 1
            out.append(chr(int(raw[i + 2:j] or "0", 16) & 0xFF))
            i = j
        else:
            out.append(n)
            i += 2
    return "".join(out)


def refusal(err: TranslateError) -> Diagnostic:
    msg = f"the bpf engine does not support {err.construct}"
    if err.why:
        msg += f" ({err.why})"
    return Diagnostic(Severity.ERROR, msg + SUGGEST, err.span, code="bpf-unsupported",
                      kind="semantic error")


@dataclass
class _Fn:
    """One inlined function call in progress."""

    info: P.FunctionInfo
    names: dict[int, str]
    ret: str | None
    done: str | None
    loops: int = 0
    #: parameters bound to a number literal and never assigned: substituted
    consts: dict[int, int] = field(default_factory=dict)


@dataclass
class _ProbeState:
    probe: ir.Probe
    target: object | None
    decl: A.ProbeDecl | None = None
    names: dict[int, str] = field(default_factory=dict)
    unknown: set[str] = field(default_factory=set)


class Translator:
    def __init__(self, prog: P.Program, user_files: set[str] | None = None) -> None:
        self.prog = prog
        self.user_files = user_files
        self.diags: list[Diagnostic] = []
        self.out = ir.Program()
        self.gnames: dict[int, str] = {}
        self.seq = 0
        self.pre: list[ir.Stmt] = []
        self.fn_stack: list[_Fn] = []
        self.ps: _ProbeState | None = None
        self.loops = 0  # loops of the probe body itself (outside inlined functions)
        self.need_errno = False
        self.dead: set[int] = set()

    # ------------------------------------------------------------ driver
    def run(self) -> ir.Program | None:
        self.globals()
        ordered = sorted(enumerate(self.prog.probes), key=lambda ip: (self._priority(ip[1]), ip[0]))
        for _i, dp in ordered:
            n = len(self.diags)
            try:
                self.probe(dp)
            except TranslateError as e:
                self.ps = None
                self.diags.append(refusal(e))
                self._place_alias_refusals(dp, n)
        if any(d.severity == Severity.ERROR for d in self.diags):
            return None
        if self.need_errno:
            g, p = errno_table()
            self.out.globals.append(g)
            self.out.probes.insert(0, p)
        return self.out

    @staticmethod
    def _priority(dp: P.DerivedProbe) -> int:
        comps = split_point(dp.text) or []
        if len(comps) == 1 and comps[0].functor in ("begin", "end") and isinstance(comps[0].arg, int):
            return comps[0].arg
        return 0

    def globals(self) -> None:
        used: set[str] = set()
        for v in self.prog.globals.values():
            if v.type not in _TYPES:
                continue  # never used with a type: stap drops it too
            name = v.name
            n = 1
            while name in used:
                n += 1
                name = f"{v.name}_{n}"
            used.add(name)
            self.gnames[id(v)] = name
            keys = []
            for t in v.index_types:
                if t not in (P.LONG, P.STRING):
                    self.diags.append(refusal(TranslateError(
                        f"the index type '{t}' of global '{v.name}'", v.span)))
                    break
                keys.append(_TYPES[t])
            init: int | str | None = None
            if isinstance(v.init, A.NumberLit):
                init = v.init.value
            elif isinstance(v.init, A.StringLit):
                init = decode_string(v.init.value)
            self.out.globals.append(ir.Global(name, _TYPES[v.type], keys, size=v.maxsize,
                                              wrap=v.wrap, init=init, span=v.span))

    def fresh(self, base: str, t: ir.Type) -> str:
        self.seq += 1
        name = f"__t{self.seq}_{base}"
        assert self.ps is not None
        self.ps.probe.locals[name] = t
        return name

    def probe(self, dp: P.DerivedProbe) -> None:
        span = (dp.location or dp.point).span if (dp.location or dp.point) else dp.decl.span
        point = probe_point(dp.text, dp.target, span)
        mine = [pp for pp in dp.decl.points if pp.span is not None and self._user(pp.span.source.name)]
        if mine:
            span = next((pp for pp in mine if pp is dp.point), mine[0]).span
        if isinstance(point, ir.Tracepoint):
            from stap_ls.backends.bpf.runtime import tracefs_root, tracepoint_fields
            point.fields = tracepoint_fields(point.group, point.name)
            if point.fields is None:
                raise TranslateError(f'the probe point kernel.trace("{point.group}:{point.name}")', span,
                                     "tracefs has no format for it" if tracefs_root() else
                                     "tracefs is not mounted: mount -t tracefs nodev /sys/kernel/tracing")
            add_arg_fields(point)
        probe = ir.Probe(point, [], {}, pp=dp.text, span=span)
        self.ps = _ProbeState(probe, dp.target, dp.decl)
        for v in dp.locals:
            self.ps.names[id(v)] = v.name
            if v.type in (P.LONG, P.STRING):
                probe.locals[v.name] = _TYPES[v.type]
            else:
                self.ps.unknown.add(v.name)
        self.loops = 0
        self.dead = dead_alias_statements(dp.body, self.prog.referents, self._user)
        n_diags = len(self.diags)
        body: list[ir.Stmt] = []
        if dp.condition is not None:
            body.extend(self.stmt_list([A.IfStmt(dp.condition.span, A.UnaryExpr(
                dp.condition.span, "!", dp.condition), A.NextStmt(dp.condition.span), None)]))
        body.extend(self.stmt_list(dp.body.statements if isinstance(dp.body, A.Block) else [dp.body]))
        probe.body = body
        self._place_alias_refusals(dp, n_diags)
        for name in self.ps.unknown:
            probe.locals.setdefault(name, ir.Type.LONG)
        self.out.probes.append(probe)
        self.ps = None

    def _place_alias_refusals(self, dp: P.DerivedProbe, first: int) -> None:
        """Refusals inside tapset alias bodies become one diagnostic on the
        user's probe point, with the tapset places as related information."""
        inner = [d for d in self.diags[first:]
                 if d.span is not None and not self._user(d.span.source.name)]
        mine = [pp for pp in dp.decl.points if pp.span is not None and self._user(pp.span.source.name)]
        if not inner or not mine:
            return
        user_point = next((pp for pp in mine if pp is dp.point), mine[0])
        self.diags[first:] = [d for d in self.diags[first:] if d not in inner]
        what = inner[0].message.removeprefix("the bpf engine does not support ").removesuffix(SUGGEST)
        related = tuple(Related(d.span, d.message.removesuffix(SUGGEST)) for d in inner[:8])
        self.diags.append(Diagnostic(
            Severity.ERROR, f"the bpf engine does not support the probe point {user_point.text()} as "
            f"its tapset aliases expand it ({dp.text}): they use {what}" + (
                f" and {len(inner) - 1} more unsupported constructs" if len(inner) > 1 else "")
            + SUGGEST, user_point.span, code="bpf-unsupported", kind="semantic error",
            related=related))

    # ------------------------------------------------------------ statements
    def stmt_list(self, stmts: list[A.Stmt]) -> list[ir.Stmt]:
        out: list[ir.Stmt] = []
        for i, s in enumerate(stmts):
            if id(s) in self.dead:
                continue
            saved, self.pre = self.pre, []
            try:
                lowered = self.stmt(s)
                out.extend(self.pre)
                out.extend(lowered)
            except TranslateError as e:
                self.diags.append(refusal(e))
            finally:
                self.pre = saved
            fn = self.fn_stack[-1] if self.fn_stack else None
            if fn is not None and fn.done and i < len(stmts) - 1 and _returns(s):
                done = ir.Local(fn.done, span=s.span)
                if fn.loops > 0:
                    out.append(ir.If(done, [ir.Break(span=s.span)], span=s.span))
                else:
                    out.append(ir.If(ir.Unary("!", done, span=s.span),
                                     self.stmt_list(stmts[i + 1:]), span=s.span))
                    break
        return out

    def block(self, s: A.Stmt | None) -> list[ir.Stmt]:
        if s is None:
            return []
        if isinstance(s, A.Block):
            return self.stmt_list(s.statements)
        return self.stmt_list([s])

    def stmt(self, s: A.Stmt) -> list[ir.Stmt]:
        sp = s.span
        match s:
            case A.Block():
                return self.stmt_list(s.statements)
            case A.NullStmt():
                return []
            case A.ExprStmt(expr=e):
                return self.expr_stmt(e)
            case A.IfStmt(cond=c, then=t, else_=el):
                cond = self.expr(c)
                if isinstance(cond, ir.IntLit) and not self.pre:  # a constant (alias bodies)
                    return self.block(t) if cond.value else self.block(el)
                return [ir.If(cond, self.block(t), self.block(el), span=sp)]
            case A.ForLoop():
                return self.loop(s)
            case A.ForeachLoop():
                return [self.foreach(s)]
            case A.DeleteStmt(value=v):
                return [ir.Delete(self.lvalue(v, deleting=True), span=sp)]
            case A.NextStmt():
                return [ir.Next(span=sp)]
            case A.BreakStmt():
                return [ir.Break(span=sp)]
            case A.ContinueStmt():
                return [ir.Continue(span=sp)]
            case A.ReturnStmt(value=v):
                return self.return_stmt(v, sp)
            case A.EmbeddedCode():
                raise TranslateError("embedded C (%{ %})", sp)
            case A.TryBlock():
                if self.ps is not None and syscall_probe(self.ps.probe.point) and try_body(s):
                    return self.block(s.body)
                raise TranslateError("try/catch", sp)
        raise TranslateError(f"the statement {type(s).__name__}", sp)

    def return_stmt(self, value: A.Expr | None, sp: Span | None) -> list[ir.Stmt]:
        if not self.fn_stack:
            raise TranslateError("return outside a function", sp)
        fn = self.fn_stack[-1]
        out: list[ir.Stmt] = []
        if value is not None and fn.ret is not None:
            out.append(ir.Assign(ir.Local(fn.ret, span=sp), self.expr(value), span=sp))
        elif value is not None:
            out.append(ir.ExprStmt(self.expr(value), span=sp))
        if fn.done:
            out.append(ir.Assign(ir.Local(fn.done, span=sp), ir.IntLit(1, span=sp), span=sp))
            if fn.loops > 0:
                out.append(ir.Break(span=sp))
        return out

    def _enter_loop(self, delta: int) -> None:
        if self.fn_stack:
            self.fn_stack[-1].loops += delta
        else:
            self.loops += delta

    def loop(self, s: A.ForLoop) -> list[ir.Stmt]:
        sp = s.span
        init = self.expr_stmt(s.init) if s.init is not None else []
        out = list(self.pre) + init
        self.pre = []
        cond = self.expr(s.cond)
        cond_pre, self.pre = self.pre, []
        self._enter_loop(1)
        try:
            body = self.block(s.body)
            step: list[ir.Stmt] = []
            if s.incr is not None:
                step = self.expr_stmt(s.incr)
                step = self.pre + step
                self.pre = []
        finally:
            self._enter_loop(-1)
        if not cond_pre and len(step) <= 1:
            out.append(ir.For(None, cond, step[0], body, span=sp) if step
                       else ir.While(cond, body, span=sp))
            return out
        if step and any(isinstance(n, A.ContinueStmt) for n in A.walk(s.body)):
            raise TranslateError("'continue' in a for loop whose condition or step calls a function",
                                 sp)
        guard = ir.If(ir.Unary("!", cond, span=sp), [ir.Break(span=sp)], span=sp)
        out.append(ir.While(ir.IntLit(1, span=sp), cond_pre + [guard] + body + step, span=sp))
        return out

    def foreach(self, s: A.ForeachLoop) -> ir.Stmt:
        sp = s.span
        if not isinstance(s.base, A.Symbol):
            raise TranslateError("foreach over a histogram", sp)
        g = self.prog.referents.get(id(s.base))
        if not isinstance(g, P.VarInfo) or id(g) not in self.gnames:
            raise TranslateError("foreach over something that is not a global array", sp)
        if any(x is not None for x in s.array_slice):
            raise TranslateError("foreach over an array slice", sp)
        limit = 0
        if s.limit is not None:
            if not isinstance(s.limit, A.NumberLit):
                raise TranslateError("a foreach limit that is not a number literal", s.limit.span)
            limit = s.limit.value
        sort = ""
        if s.sort_direction:
            sign = "+" if s.sort_direction > 0 else "-"
            if s.sort_column == 0:
                sort = "value" + sign
            elif s.sort_column == 1:
                sort = "key" + sign
            else:
                raise TranslateError(f"sorting foreach by index {s.sort_column}", sp)
            if s.sort_aggr not in ("", "count"):
                raise TranslateError(f"sorting foreach by @{s.sort_aggr}", sp)
        keys = [self.local_name(k) for k in s.indexes]
        value = self.local_name(s.value) if s.value is not None else ""
        self._enter_loop(1)
        try:
            body = self.block(s.body)
        finally:
            self._enter_loop(-1)
        return ir.Foreach(self.gnames[id(g)], keys, body, value_var=value, sort=sort,
                          limit=limit, span=sp)

    def local_name(self, sym: A.Symbol) -> str:
        x = self.symbol(sym)
        if not isinstance(x, ir.Local):
            raise TranslateError(f"'{sym.name}' as a foreach variable (not a local)", sym.span)
        return x.name

    def expr_stmt(self, e: A.Expr) -> list[ir.Stmt]:
        """An expression evaluated for its effect."""
        sp = e.span
        match e:
            case A.AssignExpr():
                return [self.assign(e)]
            case A.PreCrement(op=op, operand=x) | A.PostCrement(op=op, operand=x):
                return [ir.Assign(self.lvalue(x), ir.IntLit(1, span=sp),
                                  "+=" if op == "++" else "-=", span=sp)]
            case A.PrintFormat():
                return [self.print_stmt(e)]
            case A.FunctionCall(name="exit", args=[]) if self._is_tapset_call(e):
                return [ir.Exit(span=sp)]
        value = self.expr(e)
        return [ir.ExprStmt(value, span=sp)]

    def _is_tapset_call(self, e: A.FunctionCall) -> bool:
        fi = self.function(e)
        return fi is not None and not self._user(fi.file)

    def _user(self, path: str) -> bool:
        return path in self.user_files if self.user_files is not None else \
            not path.startswith("/usr/share/systemtap")

    def assign(self, e: A.AssignExpr) -> ir.Stmt:
        sp = e.span
        if e.op == "<<<":
            name, keys = self.stat_ref(e.left)
            return ir.AggAdd(name, keys, self.expr(e.right), span=sp)
        target = self.lvalue(e.left)
        value = self.expr(e.right)
        if isinstance(target, ir.Local) and self.ps is not None and target.name in self.ps.unknown:
            self.ps.unknown.discard(target.name)
            self.ps.probe.locals[target.name] = self.type_of(value) if e.op == "=" else (
                ir.Type.STRING if e.op == ".=" else ir.Type.LONG)
        return ir.Assign(target, value, e.op, span=sp)

    def type_of(self, x: ir.Expr) -> ir.Type:
        assert self.ps is not None
        try:
            return ir.type_of(x, self.ps.probe, self.out)
        except ir.TypeError_:
            return ir.Type.LONG

    # ------------------------------------------------------------ printing
    def print_stmt(self, e: A.PrintFormat) -> ir.Stmt:
        sp = e.span
        if e.hist is not None:
            if e.name not in ("print", "println"):
                raise TranslateError(f"{e.name} of a histogram", sp)
            name, keys = self.hist_ref(e.hist)
            return ir.PrintHist(name, keys, span=sp)
        if e.name.startswith("s"):
            raise TranslateError(f"{e.name}() whose value is not used", sp)
        args = [self.expr(a) for a in e.args]
        if e.name == "printf":
            return ir.Printf(decode_string(e.format or ""), args, span=sp)
        if e.name in ("print", "println"):
            return ir.Print(args, newline=e.name == "println", span=sp)
        if e.name in ("printd", "printdln"):
            fmt = self.joined_format(args, decode_string(e.delimiter or ""))
            return ir.Printf(fmt + ("\n" if e.name == "printdln" else ""), args, span=sp)
        raise TranslateError(f"{e.name}()", sp)

    def joined_format(self, args: list[ir.Expr], delim: str) -> str:
        conv = ["%s" if self.type_of(a) is ir.Type.STRING else "%d" for a in args]
        return delim.replace("%", "%%").join(conv)

    def sprint_expr(self, e: A.PrintFormat) -> ir.Expr:
        sp = e.span
        if e.hist is not None:
            raise TranslateError(f"{e.name} of a histogram", sp)
        args = [self.expr(a) for a in e.args]
        if e.name == "sprintf":
            return ir.Sprintf(decode_string(e.format or ""), args, span=sp)
        if e.name in ("sprint", "sprintln"):
            fmt = self.joined_format(args, "")
        elif e.name in ("sprintd", "sprintdln"):
            fmt = self.joined_format(args, decode_string(e.delimiter or ""))
        else:
            raise TranslateError(f"{e.name}() used as a value", sp)
        return ir.Sprintf(fmt + ("\n" if e.name.endswith("ln") else ""), args, span=sp)

    # ------------------------------------------------------------ l-values and aggregates
    def lvalue(self, e: A.Expr, deleting: bool = False) -> ir.Expr:
        match e:
            case A.Symbol():
                x = self.symbol(e, whole_array=deleting)
                if isinstance(x, (ir.Local, ir.GlobalVar)):
                    return x
            case A.ArrayIndex(base=A.Symbol() as base, indexes=idx):
                name = self.global_of(base)
                if any(i is None for i in idx):
                    raise TranslateError("an array slice ('*' index)", e.span)
                return ir.ArrayGet(name, [self.expr(i) for i in idx], span=e.span)
        raise TranslateError("this assignment target", e.span)

    def global_of(self, sym: A.Symbol) -> str:
        v = self.prog.referents.get(id(sym))
        if isinstance(v, P.VarInfo) and v.kind == "global" and id(v) in self.gnames:
            return self.gnames[id(v)]
        raise TranslateError(f"'{sym.name}' as an array (not a global)", sym.span)

    def stat_ref(self, e: A.Expr) -> tuple[str, list[ir.Expr]]:
        match e:
            case A.Symbol():
                return self.global_of(e), []
            case A.ArrayIndex(base=A.Symbol() as base, indexes=idx) if all(i is not None for i in idx):
                return self.global_of(base), [self.expr(i) for i in idx]
        raise TranslateError("this aggregate reference", e.span)

    def hist_ref(self, h: A.HistOp) -> tuple[str, list[ir.Expr]]:
        name, keys = self.stat_ref(h.stat)
        if h.kind == "hist_log":
            spec = ir.HistSpec("log")
        else:
            if len(h.params) != 3 or h.params[2] <= 0:
                raise TranslateError("@hist_linear without (start, stop, interval)", h.span)
            spec = ir.HistSpec("linear", h.params[0], h.params[1], h.params[2])
        g = self.out.global_named(name)
        assert g is not None
        if g.hist is not None and g.hist != spec:
            raise TranslateError(f"two different histograms of aggregate '{name}'", h.span)
        g.hist = spec
        return name, keys

    # ------------------------------------------------------------ expressions
    def symbol(self, e: A.Symbol, whole_array: bool = False) -> ir.Expr:
        v = self.prog.referents.get(id(e))
        if not isinstance(v, P.VarInfo):
            raise TranslateError(f"the identifier '{e.name}'", e.span, "it did not resolve")
        if v.kind == "global":
            if id(v) not in self.gnames:
                raise TranslateError(f"the global '{e.name}' of unknown type", e.span)
            return ir.GlobalVar(self.gnames[id(v)], span=e.span)
        if self.fn_stack and id(v) in self.fn_stack[-1].consts:
            return ir.IntLit(self.fn_stack[-1].consts[id(v)], span=e.span)
        names = self.fn_stack[-1].names if self.fn_stack else (self.ps.names if self.ps else {})
        name = names.get(id(v))
        if name is None:
            raise TranslateError(f"the variable '{e.name}'", e.span, "not a local of this probe")
        return ir.Local(name, span=e.span)

    def sub(self, e: A.Expr) -> tuple[list[ir.Stmt], ir.Expr]:
        saved, self.pre = self.pre, []
        try:
            x = self.expr(e)
            return self.pre, x
        finally:
            self.pre = saved

    def expr(self, e: A.Expr) -> ir.Expr:
        from stap_ls.backends.bpf.translate_exprs import lower_expr
        return lower_expr(self, e)

    def function(self, e: A.FunctionCall) -> P.FunctionInfo | None:
        fis = self.prog.referents.get(id(e))
        if isinstance(fis, P.FunctionInfo):
            return fis
        if isinstance(fis, list):
            match = [f for f in fis if isinstance(f, P.FunctionInfo) and len(f.params) == len(e.args)]
            return match[0] if match else (fis[0] if fis else None)
        return None

    def call(self, e: A.FunctionCall) -> ir.Expr:
        sp = e.span
        fi = self.function(e)
        if fi is None:
            raise TranslateError(f"the function {e.name}()", sp, "it did not resolve")
        tapset = not self._user(fi.file)
        if tapset:
            shim = shim_call(self, e) or errno_call(self, e)
            if shim is not None:
                return shim
        if tapset and e.name in BUILTINS:
            arity = BUILTIN_ARITY.get(e.name, (0,))
            if len(e.args) not in arity:
                raise TranslateError(f"{e.name}() with {len(e.args)} arguments", sp)
            return ir.Call(BUILTINS[e.name], [self.expr(a) for a in e.args], span=sp)
        if tapset and e.name == "exit" and not e.args:
            self.pre.append(ir.Exit(span=sp))
            return ir.IntLit(0, span=sp)
        if tapset and e.name == "stp_pid" and not e.args:
            return ir.IntLit(os.getpid(), span=sp)  # the process that runs the probes
        if tapset and e.name == "user_mode" and not e.args and self.ps is not None:
            pt = self.ps.probe.point
            if isinstance(pt, (ir.Uprobe, ir.Usdt, ir.Tracepoint, ir.Begin, ir.End)):
                return ir.IntLit(int(isinstance(pt, (ir.Uprobe, ir.Usdt))), span=sp)
            raise TranslateError("user_mode() in a timer probe", sp)
        if tapset and e.name == "probefunc" and self.ps is not None:
            pt = self.ps.probe.point
            if isinstance(pt, ir.Uprobe):
                return ir.StrLit(pt.function, span=sp)
            raise TranslateError("probefunc() in this probe", sp, "only uprobes know their function")
        if isinstance(fi.decl.body, A.EmbeddedCode):
            what = f"the tapset function {e.name}()" if tapset else f"the function {e.name}()"
            raise TranslateError(what, sp, "it is embedded C")
        return self.inline(fi, e, tapset)

    def inline(self, fi: P.FunctionInfo, e: A.FunctionCall, tapset: bool) -> ir.Expr:
        sp = e.span
        if any(f.info is fi for f in self.fn_stack):
            raise TranslateError(f"the recursive call of {e.name}()", sp,
                                 "it inlines functions, so recursion cannot be expressed")
        if len(self.fn_stack) >= MAX_INLINE_DEPTH:
            raise TranslateError(f"calls nested deeper than {MAX_INLINE_DEPTH} at {e.name}()", sp)
        args = [self.expr(a) for a in e.args]
        assert isinstance(fi.decl.body, A.Block)
        names: dict[int, str] = {}
        consts: dict[int, int] = {}
        setup: list[ir.Stmt] = []
        written = _assigned_names(fi.decl.body)
        for p, a in zip(fi.params, args):
            if isinstance(a, ir.IntLit) and p.name not in written:
                consts[id(p)] = a.value
                continue
            t = _TYPES.get(p.type) or self.type_of(a)
            n = self.fresh(f"{fi.name}_{p.name}", t)
            names[id(p)] = n
            setup.append(ir.Assign(ir.Local(n, span=sp), a, span=sp))
        for v in fi.locals:
            t = _TYPES.get(v.type, ir.Type.LONG)
            n = self.fresh(f"{fi.name}_{v.name}", t)
            names[id(v)] = n
            setup.append(ir.Assign(ir.Local(n, span=sp),
                                   ir.StrLit("", span=sp) if t is ir.Type.STRING else ir.IntLit(0, span=sp),
                                   span=sp))
        rtype = _TYPES.get(fi.return_type)
        ret = self.fresh(f"{fi.name}_ret", rtype) if rtype in (ir.Type.LONG, ir.Type.STRING) else None
        if ret is not None:
            setup.append(ir.Assign(ir.Local(ret, span=sp), ir.StrLit("", span=sp)
                                   if rtype is ir.Type.STRING else ir.IntLit(0, span=sp), span=sp))
        stmts = fi.decl.body.statements
        n_returns = sum(isinstance(n, A.ReturnStmt) for n in A.walk(fi.decl.body))
        last_is_return = bool(stmts) and isinstance(stmts[-1], A.ReturnStmt)
        done = None
        if n_returns > 1 or (n_returns == 1 and not last_is_return):
            done = self.fresh(f"{fi.name}_done", ir.Type.LONG)
            setup.append(ir.Assign(ir.Local(done, span=sp), ir.IntLit(0, span=sp), span=sp))
        self.fn_stack.append(_Fn(fi, names, ret, done, consts=consts))
        n_diags = len(self.diags)
        try:
            body = self.stmt_list(stmts)
        except TranslateError as err:
            self.diags.append(refusal(err))
            body = []
        finally:
            self.fn_stack.pop()
        if tapset and len(self.diags) > n_diags:
            inner = self.diags[n_diags:]
            del self.diags[n_diags:]
            first = inner[0].message.removeprefix("the bpf engine does not support ").removesuffix(SUGGEST)
            raise TranslateError(f"the tapset function {e.name}()", sp, f"it uses {first}")
        self.pre.extend(setup + body)
        if ret is None:
            return ir.IntLit(0, span=sp)
        return ir.Local(ret, span=sp)

    def target(self, e: A.TargetSymbol) -> ir.Expr:
        if e.components:
            raise TranslateError(f"the target expression {e.name}" + "".join(
                f"->{c.member}" if c.kind == "member" else "[..]" for c in e.components), e.span,
                "member access and indexing are not implemented")
        if e.addressof:
            raise TranslateError(f"the address &{e.name}", e.span)
        name = e.name[1:] if e.name.startswith("$") else e.name
        assert self.ps is not None
        pt = self.ps.probe.point
        if name.startswith("$") and not (isinstance(pt, ir.Usdt) and name in ("$name", "$provider")):
            raise TranslateError(f"the pretty-printing variable ${name}", e.span)
        fields = pt.fields if isinstance(pt, ir.Tracepoint) else None
        return target_var(name, pt, self.ps.target, e.span, fields)


def _assigned_names(body: A.Stmt) -> set[str]:
    out = set()
    for n in A.walk(body):
        target = n.left if isinstance(n, A.AssignExpr) else \
            n.operand if isinstance(n, (A.PreCrement, A.PostCrement)) else \
            n.value if isinstance(n, A.DeleteStmt) else None
        if isinstance(target, A.Symbol):
            out.add(target.name)
    return out


def _returns(s: A.Stmt) -> bool:
    return any(isinstance(n, A.ReturnStmt) for n in A.walk(s))


def translate(prog: P.Program, user_files: set[str] | None = None
              ) -> tuple[ir.Program | None, list[Diagnostic]]:
    """The IR of an elaborated program, or None and the refusals."""
    t = Translator(prog, user_files)
    try:
        out = t.run()
    except RecursionError:
        return None, [Diagnostic(Severity.ERROR, "script too deeply nested for the bpf engine",
                                 None, code="bpf-unsupported", kind="semantic error")]
    return out, t.diags
