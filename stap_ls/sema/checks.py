"""The checks stap makes after types are known, with stap's wording.

* statistics locals ("stat locals not supported, missing global declaration?")
  and statistics where a key or plain value is needed ("invalid type stats");
* ``%`` on a scalar ("wrapping not supported for scalars");
* changing an array inside a ``foreach`` over it, directly or through a called
  function ("variable 'a' modified during 'foreach' iteration", "function call
  modifies var 'a' during 'foreach' iteration");
* ``$var`` in probes with no target context (``begin``, ``end``, ``timer``
  ...): "unresolved target-symbol expression";
* tapset functions marked ``/* guru */`` called from a script without ``-g``;
* probes whose body is empty are elided (unless ``-u``), with stap's warning;
* what a probe's context allows (utrace ``$`` variables, procfs ``$value``,
  absolute statements, probe conditions, lvalues): :mod:`contextchecks`.
"""

from __future__ import annotations

from stap_ls.sema.contextchecks import check_contexts
from stap_ls.sema.program import STATS, DerivedProbe, FunctionInfo, Program, VarInfo
from stap_ls.sema.types import describe, tok_span
from stap_ls.syntax import ast as A
from stap_ls.text import Diagnostic, Severity

_NO_TARGET = ("begin", "end", "error", "never", "timer")


def _err(msg: str, node, saw: str | None = None) -> Diagnostic:
    return Diagnostic(Severity.ERROR, msg, tok_span(node) if node is not None else None,
                      "semantic", kind="semantic error",
                      saw=saw if saw is not None else (describe(node) if node is not None else ""),
                      marker="at")


def _written_by(node, refs) -> set[int]:
    out: set[int] = set()
    for n in A.walk(node):
        tgt = None
        if isinstance(n, A.AssignExpr):
            tgt = n.left
        elif isinstance(n, (A.PreCrement, A.PostCrement)):
            tgt = n.operand
        elif isinstance(n, A.DeleteStmt):
            tgt = n.value
        if isinstance(tgt, A.ArrayIndex):
            tgt = tgt.base
        if isinstance(tgt, A.Symbol):
            v = refs.get(id(tgt))
            if isinstance(v, VarInfo):
                out.add(id(v))
    return out


def _function_writes(prog: Program) -> dict[int, set[int]]:
    direct = {id(f): _written_by(f.body, prog.referents) for f in prog.all_functions()}
    calls = {id(f): [g for n in A.walk(f.body) if isinstance(n, A.FunctionCall)
                     for g in (prog.referents.get(id(n)) or [])] for f in prog.all_functions()}
    for _ in range(10):
        changed = False
        for fid, gs in calls.items():
            for g in gs:
                extra = direct.get(id(g), set()) - direct[fid]
                if extra:
                    direct[fid] |= extra
                    changed = True
        if not changed:
            break
    return direct


def check_program(prog: Program, opts, user_files: set[str]) -> list[Diagnostic]:
    from stap_ls.sema.synth import is_netfilter, netfilter_var_errors, tracepoint_var_errors
    out: list[Diagnostic] = []
    refs = prog.referents
    for v in prog.globals.values():
        if v.wrap and v.arity == 0:
            out.append(Diagnostic(Severity.ERROR, "wrapping not supported for scalars", v.span,
                                  "semantic", kind="semantic error",
                                  saw=f"identifier '{v.name}'", marker="at"))
    fwrites = _function_writes(prog)
    bodies: list[tuple[object, DerivedProbe | None, FunctionInfo | None]] = \
        [(dp.body, dp, None) for dp in prog.probes] + \
        [(f.body, None, f) for f in prog.all_functions()]
    for body, dp, fi in bodies:
        for n in A.walk(body):
            if isinstance(n, A.ArrayIndex | A.ArrayIn):
                for ix in n.indexes:
                    if ix is not None and prog.types.get(id(ix)) == STATS:
                        out.append(_err("invalid type stats", ix))
            elif isinstance(n, A.ForeachLoop):
                out.extend(_foreach(n, prog, fwrites))
            elif isinstance(n, A.FunctionCall):
                for a in n.args:
                    if prog.types.get(id(a)) == STATS:
                        out.append(_err("invalid type stats", a))
                fis = refs.get(id(n)) or []
                span = n.name_span or n.span
                if (not opts.guru and fis and span is not None and span.source.name in user_files
                        and any(isinstance(f.body, A.EmbeddedCode)
                                and "/* guru */" in f.body.code for f in fis)):
                    out.append(_err("function may not be used unless -g is specified", n))
            elif isinstance(n, A.EntryOp) and dp is not None and not dp.is_return:
                out.append(_err("@entry is only valid in .return probes", n, "operator '@entry'"))
            elif isinstance(n, (A.AssignExpr, A.PreCrement, A.PostCrement, A.DeleteStmt)) \
                    and dp is not None:
                out.extend(_target_write(n, dp, opts))
            elif isinstance(n, A.TargetSymbol) and dp is not None and dp.family == "procfs" \
                    and n.name == "$value" and n.components:
                kind = n.components[0].kind
                what = "array" if kind == "index" else "a structure"
                out.append(_err(f"procfs variable '$value' may not be used as {what}", n))
            elif isinstance(n, A.TargetSymbol) and dp is not None and is_netfilter(dp):
                out.extend(_err(msg, node) for msg, node in netfilter_var_errors(n, opts.guru))
            elif isinstance(n, A.TargetSymbol) and dp is not None and n.addressof \
                    and dp.family == "kernel.trace":
                out.extend(_err(msg, node) for msg, node in tracepoint_var_errors(dp, n))
            elif isinstance(n, A.TargetSymbol) and dp is not None:
                if dp.family in _NO_TARGET and not _inside_defined(body, n) \
                        and id(n) not in prog.defined_dropped:
                    out.append(_err("unresolved target-symbol expression", n))
        locals_ = dp.locals if dp is not None else fi.locals if fi is not None else []
        for v in locals_:
            if v.type == STATS:
                out.append(Diagnostic(Severity.ERROR,
                                      "stat locals not supported, missing global declaration? ",
                                      v.span, "semantic", kind="semantic error",
                                      saw=f"identifier '{v.name}'", marker="at"))
    out.extend(check_contexts(prog, opts))
    return out


_UNPRIV_FAMILIES = ("begin", "end", "error", "never", "timer")
_UNPRIV_PRAGMAS = ("/* unprivileged */", "/* myproc-unprivileged */")


def check_privilege(prog: Program, opts) -> list[Diagnostic]:
    """--privilege=stapusr/stapsys (or --unprivileged): what an unprivileged script may use."""
    priv = getattr(opts, "privilege", "stapdev") or "stapdev"
    if priv == "stapdev":
        return []
    out: list[Diagnostic] = []
    for dp in prog.probes:
        fam = dp.family or ""
        if dp.synthetic or fam in _UNPRIV_FAMILIES and "profile" not in dp.text \
                or fam.startswith("process"):
            continue
        comps = dp.point.components
        c = comps[1] if len(comps) > 1 else comps[0]
        out.append(Diagnostic(Severity.ERROR, f"probe point is not allowed for --privilege={priv}",
                              c.span, "privilege", kind="semantic error",
                              saw=f"identifier '{c.functor}'", marker="at"))
    bodies = [dp.body for dp in prog.probes] + [f.body for f in prog.all_functions()]
    for body in bodies:
        for n in A.walk(body):
            if isinstance(n, A.EmbeddedExpr) and not any(p in n.code for p in _UNPRIV_PRAGMAS):
                out.append(Diagnostic(Severity.ERROR, "embedded expression may not be used when "
                                      f"--privilege={priv} is specified", n.span, "privilege",
                                      kind="semantic error", saw="embedded-code", marker="at"))
    for f in prog.all_functions():
        if isinstance(f.body, A.EmbeddedCode) and not any(p in f.body.code for p in _UNPRIV_PRAGMAS):
            out.append(Diagnostic(Severity.ERROR, f"function may not be used when --privilege={priv} "
                                  "is specified", f.decl.name_span or f.decl.span, "privilege",
                                  kind="semantic error", saw=f"identifier '{f.name}'", marker="at"))
    return out


def _target_write(n, dp: DerivedProbe, opts) -> list[Diagnostic]:
    from stap_ls.sema.synth import NETFILTER_VARS, is_netfilter
    tgt = n.left if isinstance(n, A.AssignExpr) else n.value if isinstance(n, A.DeleteStmt) \
        else n.operand
    if not isinstance(tgt, A.TargetSymbol):
        return []
    name = tgt.name
    if dp.family == "procfs" and name == "$value":
        if "write" in dp.text.split(".") and not tgt.components:
            return [_err("procfs $value variable is read-only in a procfs write probe", tgt)]
        return []
    if dp.family.startswith("process.") and dp.text.split(".")[-1] in ("syscall", "return") \
            and ".syscall" in dp.text:
        var = "$argN" if name.startswith("$arg") else name
        return [_err(f"utrace '{var}' variable is read-only", tgt)]
    if is_netfilter(dp):
        return [] if name == "$verdict" or name not in NETFILTER_VARS else \
            [_err("write to netfilter parameter not permitted", tgt)]
    if opts.guru:
        return []
    if dp.family == "kernel.trace":
        return [_err(f"write to tracepoint variable '{name}' not permitted; need stap -g", tgt)]
    return [_err(f"write to target variable not permitted; need stap -g", tgt)]


def _inside_defined(body, target) -> bool:
    """``target`` is the operand of an ``@defined`` or in the branch it guards."""
    for n in A.walk(body):
        if isinstance(n, A.DefinedOp):
            if any(x is target for x in A.walk(n.operand)):
                return True
        guarded = None
        if isinstance(n, A.TernaryExpr) and isinstance(n.cond, A.DefinedOp):
            guarded = n.true_value
        elif isinstance(n, A.IfStmt) and isinstance(n.cond, A.DefinedOp):
            guarded = n.then
        if guarded is not None and any(x is target for x in A.walk(guarded)):
            return True
    return False


def _foreach(loop: A.ForeachLoop, prog: Program, fwrites) -> list[Diagnostic]:
    if not isinstance(loop.base, A.Symbol):
        return []
    arr = prog.referents.get(id(loop.base))
    if not isinstance(arr, VarInfo):
        return []
    out = []
    if loop.sort_aggr and arr.type != STATS and arr.type != "unknown":
        out.append(_err(f"invalid type {arr.type}", loop.base))
    if loop.value is not None and arr.type == STATS:
        out.append(_err("invalid type stats", loop.value))
    for n in A.walk(loop.body):
        tgt = None
        if isinstance(n, A.AssignExpr):
            tgt = n.left
        elif isinstance(n, (A.PreCrement, A.PostCrement)):
            tgt = n.operand
        elif isinstance(n, A.DeleteStmt):
            tgt = n.value
        elif isinstance(n, A.FunctionCall):
            for f in prog.referents.get(id(n)) or []:
                if id(arr) in fwrites.get(id(f), set()):
                    out.append(_err(f"function call modifies var '{arr.name}' during 'foreach' "
                                    "iteration", n))
                    break
            continue
        if isinstance(tgt, A.ArrayIndex):
            tgt = tgt.base
        if isinstance(tgt, A.Symbol) and prog.referents.get(id(tgt)) is arr:
            out.append(_err(f"variable '{arr.name}' modified during 'foreach' iteration", tgt))
    return out


def _empty(s, family: str) -> bool:
    if s is None or isinstance(s, A.NullStmt):
        return True
    if isinstance(s, A.Block):
        return all(_empty(x, family) for x in s.statements)
    if isinstance(s, A.IfStmt) and family in _NO_TARGET and isinstance(s.cond, A.DefinedOp) \
            and isinstance(s.cond.operand, A.TargetSymbol):
        return _empty(s.else_, family)
    return False


def elide_empty_probes(prog: Program) -> list[Diagnostic]:
    out = []
    keep = []
    for dp in prog.probes:
        if not dp.synthetic and _empty(dp.body, dp.family) and dp.condition is None:
            kw = dp.decl.span
            out.append(Diagnostic(Severity.WARNING, f"Probe '{dp.text}' has been elided",
                                  kw, "elided", kind="WARNING", saw="keyword", marker="at",
                                  tags=("unnecessary",)))
            continue
        keep.append(dp)
    prog.probes[:] = keep
    return out
