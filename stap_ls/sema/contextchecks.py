"""Checks stap makes on what a probe's context allows, with stap's wording.

stap makes these while it expands a probe's body for its probe point
(tapset-utrace.cxx, tapset-procfs.cxx, tapsets.cxx) or right after
(elaborate.cxx); none of them needs debug information, so they hold on any
machine:

* utrace points (``process.begin/end/thread.*/syscall[.return]``): which
  ``$`` variables exist where ("only ... probes support target symbols",
  "only ... support $return.", "only ... support $argN or $$parms."), and that
  they are plain values ("utrace variable '$x' may not be used as a
  structure/array", "cannot take address of utrace variable");
* ``procfs(...).read`` probes set ``$value`` and cannot read it;
* ``kernel.statement(ADDR).absolute`` needs guru mode (``-g``); it and
  ``process("P").plt`` points have no debug information scope at all, so a
  ``$variable`` there cannot be resolved;
* a probe condition (``probe P if (cond)``) must not modify variables;
* ``perf....process`` with no path needs ``-c COMMAND``;
* an assignment, ``++``/``--`` needs an lvalue ("Expecting lvalue for ...");
* embedded C cannot read or write statistics globals through
  ``/* pragma:read:x */`` / ``/* pragma:write:x */``.

:func:`check_contexts` returns the diagnostics; it is called from
:func:`stap_ls.sema.checks.check_program`.  ``$var`` inside ``@defined(...)``
(or the branch an ``@defined`` guards) is left alone, as stap does.
"""

from __future__ import annotations

import re

from stap_ls.sema.program import STATS, DerivedProbe, Program
from stap_ls.sema.types import describe, tok_span
from stap_ls.syntax import ast as A
from stap_ls.text import Diagnostic, Related, Severity, Span

_UTRACE = ("process.begin", "process.end", "process.thread", "process.syscall")
_PRAGMA = re.compile(r"/\*\s*pragma:(read|write):(\w+)\s*\*/")


def _err(msg: str, span: Span | None, saw: str, related=()) -> Diagnostic:
    return Diagnostic(Severity.ERROR, msg, span, "semantic", kind="semantic error",
                      saw=saw, marker="at", related=tuple(related))


def _guarded(body, valid=None) -> set[int]:
    """ids of nodes stap does not check: inside ``@defined(...)``, or in the
    branch an ``@defined`` rules out (``valid(target_symbol)`` says whether
    a ``$var`` is defined; without it, both branches are left alone)."""
    out: set[int] = set()
    for n in A.walk(body):
        if isinstance(n, A.DefinedOp):
            out.update(id(x) for x in A.walk(n.operand))
        if isinstance(n, A.TernaryExpr) and isinstance(n.cond, A.DefinedOp):
            branches = (n.true_value, n.false_value)
        elif isinstance(n, A.IfStmt) and isinstance(n.cond, A.DefinedOp):
            branches = (n.then, n.else_)
        else:
            continue
        if valid is None:
            dead = [branches[0]]
        else:
            ok = all(valid(x) for x in A.walk(n.cond.operand) if isinstance(x, A.TargetSymbol))
            dead = [branches[1] if ok else branches[0]]
        for b in dead:
            if b is not None:
                out.update(id(x) for x in A.walk(b))
    return out


def _utrace_kind(dp: DerivedProbe) -> str | None:
    """'syscall', 'syscall.return' or 'other' for utrace points, else None."""
    fam = dp.family or ""
    if not fam.startswith(_UTRACE):
        return None
    if fam == "process.syscall":
        return "syscall.return" if dp.is_return else "syscall"
    return "other"


def _comp_error(e: A.TargetSymbol) -> Diagnostic | None:
    if not e.components:
        return None
    c = e.components[0]
    if c.kind == "member":
        what, op = "a structure", "->"
    elif c.kind == "index":
        what, op = "array", "["
    else:
        return None
    span = Span(c.span.source, c.span.start, c.span.start + len(op)) if c.span else e.span
    return _err(f"utrace variable '{e.name}' may not be used as {what}", span, f"operator '{op}'")


def _utrace_var(e: A.TargetSymbol, kind: str) -> Diagnostic | None:
    saw = f"identifier '{e.name}'"
    if kind == "other":
        return _err('only "process(PATH_OR_PID).syscall" and '
                    '"process(PATH_OR_PID).syscall.return" probes support target symbols',
                    e.span, saw)
    if e.addressof:
        return _err("cannot take address of utrace variable", e.span, saw)
    if e.name.startswith("$arg") or e.name == "$$parms":
        if e.name != "$$parms" and e.name[4:] not in ("1", "2", "3", "4", "5", "6"):
            return _err("invalid target symbol for utrace probe, $syscall, $return, $argN or "
                        "$$parms expected", e.span, saw)
        if kind != "syscall":
            return _err('only "process(PATH_OR_PID).syscall" support $argN or $$parms.',
                        e.span, saw)
        return _comp_error(e)
    if e.name in ("$syscall", "$return"):
        comp = _comp_error(e)
        if comp is not None:
            return comp
        if e.name == "$return" and kind != "syscall.return":
            return _err('only "process(PATH_OR_PID).syscall.return" support $return.',
                        e.span, saw)
        return None
    if e.name.startswith("$$"):
        return None
    return _err("invalid target symbol for utrace probe, $syscall, $return, $argN or $$parms "
                "expected", e.span, saw)


def _is_lvalue(e) -> bool:
    return isinstance(e, (A.Symbol, A.ArrayIndex, A.TargetExpr, A.TargetRegister,
                          A.TargetDeref))


def _lvalue(n) -> Diagnostic | None:
    if isinstance(n, A.AssignExpr):
        target, what = n.left, "assignment"
    elif isinstance(n, A.PreCrement):
        target, what = n.operand, "pre-crement"
    elif isinstance(n, A.PostCrement):
        target, what = n.operand, "post-crement"
    else:
        return None
    if target is None or _is_lvalue(target):
        return None
    return _err(f"Expecting lvalue for {what}", tok_span(n), describe(n),
                (Related(tok_span(target), describe(target)),))


def _condition_writes(cond) -> bool:
    for n in A.walk(cond):
        if isinstance(n, (A.AssignExpr, A.PreCrement, A.PostCrement)):
            return True
    return False


def _embedded_aggregates(prog: Program) -> list[Diagnostic]:
    codes: list[str] = []
    for f in prog.all_functions():
        if isinstance(f.body, A.EmbeddedCode):
            codes.append(f.body.code)
        elif f.body is not None:
            codes.extend(n.code for n in A.walk(f.body) if isinstance(n, A.EmbeddedExpr))
    for dp in prog.probes:
        codes.extend(n.code for n in A.walk(dp.body) if isinstance(n, A.EmbeddedExpr))
    out: list[Diagnostic] = []
    seen: set[str] = set()
    for code in codes:
        for m in _PRAGMA.finditer(code):
            v = prog.globals.get(m.group(2))
            if v is None or v.type != STATS or v.name in seen:
                continue
            seen.add(v.name)
            span = getattr(v.decl, "name_span", None) or v.span
            out.append(_err("Aggregates not available in embedded-C", span,
                            f"identifier '{v.name}'"))
    return out


def _perf_process(dp: DerivedProbe, opts) -> Diagnostic | None:
    """``perf....process`` without a path counts the ``-c`` command."""
    if dp.family != "perf" or getattr(opts, "command", None):
        return None
    for c in dp.point.components:
        if c.functor == "process" and c.arg is None:
            return _err("unspecified process probe is invalid without a -c COMMAND "
                        "[man stapprobes]", c.span, "identifier 'process'")
    return None


def check_contexts(prog: Program, opts=None) -> list[Diagnostic]:
    """stap's context checks over every probe and function of ``prog``."""
    out: list[Diagnostic] = []
    for dp in prog.probes:
        d = _perf_process(dp, opts)
        if d is not None:
            out.append(d)
        absolute = dp.text.rstrip("?!").endswith(".absolute")
        if absolute and not getattr(opts, "guru", False) and not dp.synthetic:
            kw = dp.decl.span
            out.append(_err("absolute statement probe in unprivileged script; need stap -g",
                            Span(kw.source, kw.start, kw.start + 5) if kw else None, "keyword"))
        kind = _utrace_kind(dp)
        procfs_read = dp.family == "procfs" and "read" in dp.text.split(".")
        valid = None
        if kind is not None:
            def valid(x, kind=kind):
                return _utrace_var(x, kind) is None
        # no debug information scope at all: an absolute address, a PLT stub
        noscope = "" if absolute else dp.target.origin if dp.family == "process.plt" \
            and dp.target is not None else None
        guarded = _guarded(dp.body, valid) if kind or procfs_read or noscope is not None \
            else set()
        assigned: set[int] = set()
        for n in A.walk(dp.body):
            if isinstance(n, A.AssignExpr) and n.op != "<<<":
                assigned.add(id(n.left))    # '$value = ...' and '$value .= ...' set it
        for n in A.walk(dp.body):
            if not isinstance(n, A.TargetSymbol) or id(n) in guarded:
                continue
            d = None
            if kind is not None:
                d = _utrace_var(n, kind)
            elif procfs_read and n.name == "$value" and id(n) not in assigned:
                d = _err("procfs $value variable cannot be read in a procfs read probe",
                         n.span, f"identifier '{n.name}'")
            elif noscope is not None and not n.name.startswith("$$"):
                d = _err(f"debuginfo scope not found for module '{noscope}', cannot resolve "
                         "context variable [man error::dwarf]", n.span, f"identifier '{n.name}'")
            if d is not None:
                out.append(d)
        if dp.condition is not None and _condition_writes(dp.condition):
            out.append(_err("probe condition must not modify any variables",
                            tok_span(dp.condition), describe(dp.condition)))
    bodies = [dp.body for dp in prog.probes] + [f.body for f in prog.all_functions()]
    for body in bodies:
        if body is None:
            continue
        for n in A.walk(body):
            d = _lvalue(n)
            if d is not None:
                out.append(d)
    out.extend(_embedded_aggregates(prog))
    return out
