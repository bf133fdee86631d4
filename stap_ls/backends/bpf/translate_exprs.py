"""Expressions for the stap -> IR translator (see :mod:`translate`).

:func:`lower_expr` maps one stap expression node to an IR expression.  Values
that need statements first (an assignment or ``++`` used as a value, an
inlined function call) append those statements to ``translator.pre``; on the
right of ``&&``/``||`` and in the branches of ``?:`` such statements are put
under an ``if`` so that they run only when stap would evaluate them.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING

from stap_ls.backends.bpf import ir
from stap_ls.backends.bpf.translate_points import TranslateError
from stap_ls.backends.bpf.translate_syscalls import embedded_constant, user_writes
from stap_ls.syntax import ast as A

if TYPE_CHECKING:
    from stap_ls.backends.bpf.translate import Translator

_BINARY = ("+", "-", "*", "/", "%", "<<", ">>", "&", "|", "^")
_COMPARE = ("<", "<=", ">", ">=", "==", "!=")
_CMP = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
        "==": operator.eq, "!=": operator.ne}


def lower_expr(tr: "Translator", e: A.Expr) -> ir.Expr:
    from stap_ls.backends.bpf.translate import decode_string
    sp = e.span
    match e:
        case A.NumberLit(value=v):
            return ir.IntLit(_s64(v), span=sp)
        case A.StringLit(value=v):
            return ir.StrLit(decode_string(v), span=sp)
        case A.Symbol():
            return tr.symbol(e)
        case A.ComparisonExpr(op=op, left=a, right=b):
            if op not in _COMPARE:
                raise TranslateError(f"the comparison '{op}'", sp)
            left, right = tr.expr(a), tr.expr(b)
            if isinstance(left, ir.IntLit) and isinstance(right, ir.IntLit):  # alias constants
                return ir.IntLit(int(_CMP[op](left.value, right.value)), span=sp)
            return ir.Compare(op, left, right, span=sp)
        case A.ConcatExpr(left=a, right=b):
            return ir.Concat(tr.expr(a), tr.expr(b), span=sp)
        case A.LogicalExpr(op=op, left=a, right=b):
            return _logical(tr, op, a, b, sp)
        case A.AssignExpr():
            stmt = tr.assign(e)
            tr.pre.append(stmt)
            if isinstance(stmt, ir.AggAdd):
                raise TranslateError("the value of '<<<'", sp)
            return stmt.target
        case A.BinaryExpr(op=">>>", left=a, right=b):
            return _logical_shift(tr, tr.expr(a), tr.expr(b), sp)
        case A.BinaryExpr(op=op, left=a, right=b):
            if op not in _BINARY:
                raise TranslateError(f"the operator '{op}'", sp)
            return ir.Binary(op, tr.expr(a), tr.expr(b), span=sp)
        case A.PreCrement(op=op, operand=x):
            target = tr.lvalue(x)
            tr.pre.append(ir.Assign(target, ir.IntLit(1, span=sp), "+=" if op == "++" else "-=",
                                    span=sp))
            return target
        case A.PostCrement(op=op, operand=x):
            target = tr.lvalue(x)
            old = tr.fresh("old", ir.Type.LONG)
            tr.pre.append(ir.Assign(ir.Local(old, span=sp), target, span=sp))
            tr.pre.append(ir.Assign(target, ir.IntLit(1, span=sp), "+=" if op == "++" else "-=",
                                    span=sp))
            return ir.Local(old, span=sp)
        case A.UnaryExpr(op="+", operand=x):
            return tr.expr(x)
        case A.UnaryExpr(op=op, operand=x):
            if op not in ("-", "~", "!"):
                raise TranslateError(f"the unary operator '{op}'", sp)
            return ir.Unary(op, tr.expr(x), span=sp)
        case A.TernaryExpr(cond=c, true_value=a, false_value=b):
            return _ternary(tr, c, a, b, sp)
        case A.ArrayIndex(base=A.Symbol() as base, indexes=idx):
            if any(i is None for i in idx):
                raise TranslateError("an array slice ('*' index)", sp)
            return ir.ArrayGet(tr.global_of(base), [tr.expr(i) for i in idx], span=sp)
        case A.ArrayIn(base=A.Symbol() as base, indexes=idx):
            if any(i is None for i in idx):
                raise TranslateError("'in' with a '*' index", sp)
            return ir.Exists(tr.global_of(base), [tr.expr(i) for i in idx], span=sp)
        case A.StatOp(op=op, stat=stat):
            if op not in ir.STAT_OPS:
                raise TranslateError(f"@{op}", sp)
            name, keys = tr.stat_ref(stat)
            return ir.StatOp(op, name, keys, span=sp)
        case A.FunctionCall():
            return tr.call(e)
        case A.PrintFormat():
            if e.name.startswith("s"):
                return tr.sprint_expr(e)
            tr.pre.append(tr.print_stmt(e))
            return ir.IntLit(0, span=sp)
        case A.TargetSymbol():
            return tr.target(e)
        case A.EntryOp(operand=x):
            pt = tr.ps.probe.point if tr.ps is not None else None
            if isinstance(pt, ir.Uprobe) and pt.is_return:
                return tr.expr(x)  # parameters are the entry values in a .return uprobe
            raise TranslateError("@entry outside a .return uprobe", sp)
        case A.RegexQuery(op=op):
            raise TranslateError(f"the regular expression match '{op}'", sp)
        case A.EmbeddedExpr():
            value = embedded_constant(e)
            if value is None:
                raise TranslateError("embedded C (%{ %})", sp)
            return value
        case A.ProbewriteOp(name=name):
            if tr.ps is not None and tr.ps.decl is not None and not user_writes(tr.ps.decl, name):
                return ir.IntLit(0, span=sp)
            raise TranslateError(f"writing the probe variable '{name}'", sp)
        case A.CastOp():
            raise TranslateError("@cast", sp, "typed memory access is not implemented")
        case A.AtVarOp():
            raise TranslateError("@var", sp)
        case A.DefinedOp(operand=x):
            # defined when this engine can read it here: decided now, as stap does in pass 2
            try:
                tr.sub(x)
            except TranslateError:
                return ir.IntLit(0, span=sp)
            return ir.IntLit(1, span=sp)
        case A.HistOp():
            raise TranslateError(f"@{e.kind} outside print()", sp)
    raise TranslateError(f"the expression {type(e).__name__}", sp)


def _s64(v: int) -> int:
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= 1 << 63 else v


def _logical(tr: "Translator", op: str, a: A.Expr, b: A.Expr, sp) -> ir.Expr:
    if op not in ("&&", "||"):
        raise TranslateError(f"the operator '{op}'", sp)
    left = tr.expr(a)
    pre_b, right = tr.sub(b)
    if not pre_b:
        return ir.Logical(op, left, right, span=sp)
    t = tr.fresh("logic", ir.Type.LONG)
    tv = ir.Local(t, span=sp)
    tr.pre.append(ir.Assign(tv, ir.Compare("!=", left, ir.IntLit(0, span=sp), span=sp), span=sp))
    then = pre_b + [ir.Assign(tv, ir.Compare("!=", right, ir.IntLit(0, span=sp), span=sp),
                              span=sp)]
    cond: ir.Expr = tv if op == "&&" else ir.Unary("!", tv, span=sp)
    tr.pre.append(ir.If(cond, then, span=sp))
    return ir.Local(t, span=sp)


def _ternary(tr: "Translator", c: A.Expr, a: A.Expr, b: A.Expr, sp) -> ir.Expr:
    cond = tr.expr(c)
    pre_a, va = tr.sub(a)
    pre_b, vb = tr.sub(b)
    if not pre_a and not pre_b:
        return ir.Cond(cond, va, vb, span=sp)
    t = tr.fresh("cond", tr.type_of(va))
    tv = ir.Local(t, span=sp)
    tr.pre.append(ir.If(cond, pre_a + [ir.Assign(tv, va, span=sp)],
                        pre_b + [ir.Assign(ir.Local(t, span=sp), vb, span=sp)], span=sp))
    return ir.Local(t, span=sp)


def _logical_shift(tr: "Translator", a: ir.Expr, b: ir.Expr, sp) -> ir.Expr:
    """``a >>> b``: an arithmetic shift with the sign-extended bits cleared."""
    ta, tb = tr.fresh("shl", ir.Type.LONG), tr.fresh("shr", ir.Type.LONG)
    tr.pre.append(ir.Assign(ir.Local(ta, span=sp), a, span=sp))
    tr.pre.append(ir.Assign(ir.Local(tb, span=sp), ir.Binary("&", b, ir.IntLit(63, span=sp),
                                                             span=sp), span=sp))
    shifted = ir.Binary(">>", ir.Local(ta, span=sp), ir.Local(tb, span=sp), span=sp)
    # mask = ~(-1 << (64 - b)) for b > 0; (-1 << 63) << 1 avoids a shift by 64
    mask = ir.Unary("~", ir.Binary("<<", ir.Binary("<<", ir.IntLit(-1, span=sp), ir.Binary(
        "-", ir.IntLit(63, span=sp), ir.Local(tb, span=sp), span=sp), span=sp),
        ir.IntLit(1, span=sp), span=sp), span=sp)
    return ir.Cond(ir.Compare("==", ir.Local(tb, span=sp), ir.IntLit(0, span=sp), span=sp),
                   ir.Local(ta, span=sp), ir.Binary("&", shifted, mask, span=sp), span=sp)


__all__ = ["lower_expr"]
