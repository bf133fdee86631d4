"""stap's autocast rules: which expressions carry a C type for ``expr->member``.

``x->member`` on an expression that is not a target variable (an *autocast*)
needs the C type of ``x``.  stap lets such a type flow, during type
resolution, from

* ``@cast(p, "T", "module")`` (with ``&``: a pointer to ``T``) and target
  variables ``$var`` / ``$var->member`` / ``@var(...)``,
* through ``(...)``, an assignment ``a = expr`` (its value), a ternary whose
  two branches have the *same* type (same type from the same module),
* into a variable (local or global) whose assignments with a type all have
  the same type, and out of a function whose ``return`` values with a type
  all have the same one (values without a type, like ``0``, are ignored).

Nothing flows through array elements, foreach keys, function parameters,
arithmetic or literals, nor through a ternary with an untyped branch.
An autocast whose operand has no type is stap's ``unknown type in
dereference`` (followed by ``unresolved type``); writing through an autocast
needs guru mode (``write not permitted; need stap -g``), and even then not
to a pretty-printed one (``p->m$ = 0``: ``cannot write to pretty-printed variable``).

This module checks exactly those two rules after the optimiser (stap expands
autocasts during type resolution, so elided code is not checked).  Where the
answer depends on something this model cannot see (embedded C, a header
only the compiler reads, members of a type) the type counts as
known but *opaque*: no error is given, and members are not checked here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from stap_ls.sema.program import FunctionInfo, Program, VarInfo
from stap_ls.syntax import ast as A
from stap_ls.text import Diagnostic, Severity


@dataclass(frozen=True)
class CType:
    """A C type as far as equality goes: where it came from and what it is."""
    origin: str        # the @cast module or "target"
    name: str          # type spelling (with '*' for &@cast) and member path


#: a type exists but this model cannot tell which (never an error)
OPAQUE = CType("?", "?")


class _Flow:
    def __init__(self, prog: Program) -> None:
        self.prog = prog
        self.refs = prog.referents
        self.assigned: dict[int, list] = {}        # id(VarInfo) -> values assigned
        self.vars: dict[int, VarInfo] = {}
        self.returns: dict[int, list] = {}         # id(FunctionInfo) -> returned values
        self.memo: dict[int, CType | None] = {}
        self.busy: set[int] = set()
        for dp in prog.probes:
            self._scan(dp.body, None)
        for fi in prog.all_functions():
            if fi.body is not None and not isinstance(fi.body, A.EmbeddedCode):
                self._scan(fi.body, fi)

    def _scan(self, body, fi: FunctionInfo | None) -> None:
        for n in A.walk(body):
            if isinstance(n, A.AssignExpr) and isinstance(n.left, A.Symbol):
                v = self.refs.get(id(n.left))
                if isinstance(v, VarInfo):
                    self.vars[id(v)] = v
                    self.assigned.setdefault(id(v), []).append(n.right if n.op == "=" else None)
            elif isinstance(n, A.AssignExpr | A.PreCrement | A.PostCrement):
                tgt = n.left if isinstance(n, A.AssignExpr) else n.operand
                v = self.refs.get(id(tgt)) if isinstance(tgt, A.Symbol) else None
                if isinstance(v, VarInfo):
                    self.assigned.setdefault(id(v), []).append(None)
            elif isinstance(n, A.ForeachLoop):
                for s in [n.value, *n.indexes]:
                    v = self.refs.get(id(s)) if s is not None else None
                    if isinstance(v, VarInfo):
                        self.assigned.setdefault(id(v), []).append(None)
            elif isinstance(n, A.ReturnStmt) and fi is not None:
                self.returns.setdefault(id(fi), []).append(n.value)

    def _join(self, values: list) -> CType | None:
        # values without a C type (numbers, arithmetic) neither give nor spoil one
        types = [t for t in (self.ctype(v) for v in values if v is not None) if t is not None]
        if not types:
            return None
        if any(t is OPAQUE for t in types):
            return OPAQUE
        return types[0] if all(t == types[0] for t in types) else None

    def ctype(self, e) -> CType | None:
        key = id(e)
        if key in self.memo:
            return self.memo[key]
        if key in self.busy:            # a cycle (x = x->next): stap gives up too
            return OPAQUE
        self.busy.add(key)
        try:
            t = self._ctype(e)
        finally:
            self.busy.discard(key)
        self.memo[key] = t
        return t

    def _ctype(self, e) -> CType | None:
        if isinstance(e, A.CastOp):
            path = ".".join(c.member for c in e.components if c.kind == "member")
            return CType(e.module or "kernel", e.type_name + ("*" if e.addressof else "") + path)
        if isinstance(e, A.TargetSymbol | A.AtVarOp | A.AutocastOp):
            if isinstance(e, A.AutocastOp) and self.ctype(e.operand) is None:
                return None
            return OPAQUE
        if isinstance(e, A.AssignExpr):
            return self.ctype(e.right) if e.op == "=" else None
        if isinstance(e, A.TernaryExpr):
            a, b = self.ctype(e.true_value), self.ctype(e.false_value)
            if a is None or b is None:
                return None
            if a is OPAQUE or b is OPAQUE:
                return OPAQUE
            return a if a == b else None
        if isinstance(e, A.EntryOp):
            return self.ctype(e.operand)
        if isinstance(e, A.Symbol):
            v = self.refs.get(id(e))
            if not isinstance(v, VarInfo) or v.kind == "param":
                return None                 # no type flows into a parameter
            return self._join(self.assigned.get(id(v), []))
        if isinstance(e, A.FunctionCall):
            fis = self.refs.get(id(e)) or []
            if len(fis) != 1 or isinstance(fis[0].body, A.EmbeddedCode):
                return OPAQUE
            rets = self.returns.get(id(fis[0]), [])
            return self._join(rets) if rets else None
        return None


def _arrow(e: A.AutocastOp):
    comp = next((c for c in e.components if c.span is not None), None)
    if comp is None or comp.span is None:
        return e.span
    return replace(comp.span, end=min(comp.span.end, comp.span.start + 2))


def _err(msg: str, span) -> Diagnostic:
    return Diagnostic(Severity.ERROR, msg, span, "semantic", kind="semantic error",
                      saw="operator '->'", marker="at")


def check_autocasts(prog: Program, guru: bool) -> list[Diagnostic]:
    """stap's autocast errors for the (optimised) program."""
    flow = _Flow(prog)
    out: list[Diagnostic] = []
    bodies = [dp.body for dp in prog.probes] + \
        [fi.body for fi in prog.all_functions()
         if fi.body is not None and not isinstance(fi.body, A.EmbeddedCode)]
    for body in bodies:
        for n in A.walk(body):
            if isinstance(n, A.AssignExpr | A.PreCrement | A.PostCrement):
                tgt = n.left if isinstance(n, A.AssignExpr) else n.operand
                if isinstance(tgt, A.AutocastOp):
                    if not guru:
                        out.append(_err("write not permitted; need stap -g", _arrow(tgt)))
                    elif any(c.kind == "pretty" for c in tgt.components):
                        out.append(_err("cannot write to pretty-printed variable", _arrow(tgt)))
            if isinstance(n, A.AutocastOp) and n.operand is not None \
                    and flow.ctype(n.operand) is None:
                out.append(_err("unknown type in dereference", _arrow(n)))
                out.append(_err("unresolved type ", _arrow(n)))
    return out

