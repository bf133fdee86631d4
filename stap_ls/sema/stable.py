"""Hoisting of calls to ``/* stable */`` functions into locals, as stap 4.8 does.

A tapset function whose body is embedded C marked ``/* stable */`` (``execname``,
``uid``, ``cpu``, ``pn``, ...) gives the same value for the whole run of one
probe handler.  When optimising (not under ``-u``), after type inference, stap
rewrites every call of such a function without arguments, in each probe body and
each function body, into a read of a new local ``__stable_<mangled>_value``
(``<mangled>`` is the callee's internal name, e.g. ``__global_execname__overload_0``)
and assigns the local once, from the call, at the top of a scope:

* scopes are the body and, outside loops, each branch of an ``if`` that holds
  such a call (a branch that is not yet a block becomes one); a call inside a
  loop is assigned at the top of the body;
* a scope already holding the assignment (its own, or an enclosing one's) is
  not given another; sibling branches each get their own;
* the assignments of one body are inserted at the front of their scope one by
  one, in the order the calls were met, so they read in reverse order; a body
  that is a single statement becomes a block when it receives one;
* the new locals are appended to the probe's (or function's) locals in the order
  the calls were met, typed as the function's return type.

Everything here works on the optimiser's copies of the bodies.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stap_ls.sema.p2print import detox_path
from stap_ls.sema.program import FunctionInfo, Program, VarInfo
from stap_ls.syntax import ast as A

_NODE_TYPES = (A.Node, A.Component, A.PPComponent, A.Param)


def stable_name(fi: FunctionInfo) -> str:
    """The internal (mangled) name stap gives ``fi``, as used in ``__stable_`` locals."""
    if fi.private:
        return f"__private_{detox_path(fi.file)}{fi.name}"
    return f"__global_{fi.name}__overload_{fi.overload}"


def is_stable(fi: FunctionInfo) -> bool:
    return isinstance(fi.body, A.EmbeddedCode) and "/* stable */" in fi.body.code and not fi.params


@dataclass
class _Body:
    """State of the rewrite of one probe or function body."""
    locals: list[VarInfo]
    top: A.Stmt
    scope_vars: set[str] = field(default_factory=set)
    new_vars: dict[str, VarInfo] = field(default_factory=dict)
    #: (assignment, target block or None for the top scope), in the order met
    pending: list[tuple[A.ExprStmt, A.Block | None]] = field(default_factory=list)
    loop_depth: int = 0
    scope: A.Block | None = None


class StableHoister:
    def __init__(self, prog: Program) -> None:
        self.p = prog
        self._stable: dict[int, bool] = {}

    def _stable_callee(self, call: A.FunctionCall) -> FunctionInfo | None:
        if call.args:
            return None
        fis = self.p.referents.get(id(call))
        if not fis:
            return None
        hit = self._stable.get(id(fis[0]))
        if hit is None:
            hit = self._stable[id(fis[0])] = is_stable(fis[0])
        return fis[0] if hit else None

    def run(self) -> None:
        for dp in self.p.probes:
            dp.body = self._body(dp.body, dp.locals)
        for fi in self.p.all_functions():
            if not isinstance(fi.body, A.EmbeddedCode) and fi.body is not None:
                fi.body = self._body(fi.body, fi.locals)

    # -- one body -------------------------------------------------------------------------
    def _body(self, body: A.Stmt, locals_: list[VarInfo]):
        if not self._has_stable(body):
            return body
        st = _Body(locals_, body, scope=body if isinstance(body, A.Block) else None)
        self.st = st
        body = self._stmt(body)
        top: A.Block | None = body if isinstance(body, A.Block) else None
        for stmt, target in st.pending:
            if target is None:
                if top is None:
                    top = A.Block(body.span, [body])
                    body = top
                target = top
            target.statements.insert(0, stmt)
        return body

    def _has_stable(self, node) -> bool:
        for n in A.walk(node):
            if isinstance(n, A.FunctionCall) and self._stable_callee(n) is not None:
                return True
        return False

    def _stmt(self, s):
        st = self.st
        if isinstance(s, A.IfStmt):
            s.cond = self._expr(s.cond)
            s.then = self._branch(s.then)
            if s.else_ is not None:
                s.else_ = self._branch(s.else_)
            return s
        if isinstance(s, (A.ForLoop, A.ForeachLoop)):
            st.loop_depth += 1
            self._children(s)
            st.loop_depth -= 1
            return s
        if isinstance(s, A.Block):
            s.statements = [self._stmt(x) for x in s.statements]
            return s
        if isinstance(s, A.TryBlock):
            self._stmt(s.body)
            self._stmt(s.catch_body)
            return s
        self._children(s)
        return s

    def _branch(self, s):
        st = self.st
        if st.loop_depth or not self._has_stable(s):
            return self._stmt(s)
        if not isinstance(s, A.Block):
            s = A.Block(s.span, [s])
        saved_vars, saved_scope = set(st.scope_vars), st.scope
        st.scope = s
        self._stmt(s)
        st.scope_vars, st.scope = saved_vars, saved_scope
        return s

    def _children(self, n) -> None:
        """Rewrite the expressions (and nested statements) directly below ``n``."""
        for name in _fields(n):
            v = getattr(n, name)
            if isinstance(v, list):
                for i, x in enumerate(v):
                    if isinstance(x, A.Stmt):
                        v[i] = self._stmt(x)
                    elif isinstance(x, A.Expr):
                        v[i] = self._expr(x)
                    elif isinstance(x, _NODE_TYPES):
                        self._children(x)
            elif isinstance(v, A.Stmt):
                setattr(n, name, self._stmt(v))
            elif isinstance(v, A.Expr):
                setattr(n, name, self._expr(v))
            elif isinstance(v, _NODE_TYPES):
                self._children(v)

    def _expr(self, e):
        if isinstance(e, A.FunctionCall):
            fi = self._stable_callee(e)
            if fi is not None:
                return self._hoist(e, fi)
        self._children(e)
        return e

    def _hoist(self, call: A.FunctionCall, fi: FunctionInfo) -> A.Symbol:
        st = self.st
        key = stable_name(fi)
        name = f"__stable_{key}_value"
        typ = self.p.types.get(id(call)) or fi.return_type
        v = st.new_vars.get(key)
        if v is None:
            v = VarInfo(name, "local", call.span, type=typ, arity=0, synthetic=True)
            st.new_vars[key] = v
            st.locals.append(v)
        if key not in st.scope_vars:
            left = A.Symbol(call.span, name)
            self.p.referents[id(left)] = v
            self.p.types[id(left)] = typ
            assign = A.AssignExpr(call.span, "=", left, call)
            self.p.types[id(assign)] = typ
            target = None if st.loop_depth else st.scope
            st.pending.append((A.ExprStmt(call.span, assign), target))
            st.scope_vars.add(key)
        sym = A.Symbol(call.span, name)
        self.p.referents[id(sym)] = v
        self.p.types[id(sym)] = typ
        return sym


_FIELD_CACHE: dict[type, tuple[str, ...]] = {}


def _fields(n) -> tuple[str, ...]:
    from dataclasses import fields
    cls = type(n)
    names = _FIELD_CACHE.get(cls)
    if names is None:
        names = _FIELD_CACHE[cls] = tuple(f.name for f in fields(cls)
                                          if f.name not in ("span", "name_span"))
    return names


def hoist_stable_calls(prog: Program) -> None:
    """Rewrite calls of ``/* stable */`` functions in ``prog`` as stap's optimiser does."""
    StableHoister(prog).run()
