"""Type inference over the whole program (stap's ``typeresolution_info``).

Types are ``long``, ``string``, ``stats`` (aggregates) or unknown.  Every
function and probe body is walked repeatedly, each expression visited with the
type its context expects, until a walk changes nothing; a variable takes the
first type it meets, a function's return type comes from its ``return``
statements and its parameters' from the arguments it is called with.  A last
walk reports what is still unknown ("unresolved type") and conflicts give
stap's pair of messages: "type mismatch (T)" where the conflict shows and
"type was first inferred here (T)" where the type came from.
"""

from __future__ import annotations

import re

from stap_ls.sema.regexcheck import regex_error
from stap_ls.sema.program import LONG, STATS, STRING, UNKNOWN, DerivedProbe, FunctionInfo, Program, VarInfo
from stap_ls.syntax import ast as A
from stap_ls.syntax.lexer import quote_string
from stap_ls.text import Diagnostic, Related, Severity, Span

_FMT = re.compile(r"%(?:%|[-+ #0]*(?:\*|\d+)?(?:\.(?:\*|\d+))?(?:l|ll|h|hh|L|j|z|t)?([a-zA-Z]))")
_LONG_CONV = set("diouxXcpbmM")   # %m/%M dump memory at an address
_STRING_CONV = set("s")


def format_types(fmt: str) -> list[str]:
    out = []
    for m in _FMT.finditer(fmt):
        c = m.group(1)
        if c is None:
            continue
        text = m.group(0)
        out.extend([LONG] * text.count("*"))
        out.append(STRING if c in _STRING_CONV else LONG)
    return out


#: utrace probe families: their $variables are checked by contextchecks
_UTRACE_FAMILIES = ("process.begin", "process.end", "process.thread", "process.syscall")


def describe(e) -> str:
    """stap's description of an expression's token: identifier 'x', number '1', ..."""
    if isinstance(e, A.Symbol):
        return f"identifier '{e.name}'"
    if isinstance(e, A.FunctionCall | A.PrintFormat):
        return f"identifier '{e.name}'"
    if isinstance(e, A.NumberLit):
        return f"number '{e.text or e.value}'"
    if isinstance(e, A.StringLit):
        return f"string '{e.value}'"
    if isinstance(e, A.TargetSymbol):
        return f"identifier '{e.name}'"
    if isinstance(e, A.ArrayIndex | A.ArrayIn):
        return describe(e.base)
    if isinstance(e, A.BinaryExpr | A.UnaryExpr | A.PostCrement):
        return f"operator '{e.op}'"
    if isinstance(e, A.StatOp):
        return f"operator '@{e.op}'"
    if isinstance(e, A.EmbeddedExpr):
        return "embedded-code"
    return "operator"


def tok_span(e) -> Span | None:
    """The span of the token stap blames for an expression."""
    if isinstance(e, A.FunctionCall | A.PrintFormat) and e.name_span is not None:
        return e.name_span
    if isinstance(e, A.ArrayIndex) and e.base.span is not None:
        return e.base.span
    if isinstance(e, A.BinaryExpr) and e.left.span is not None and e.span is not None:
        text = e.span.source.text
        i = text.find(e.op, e.left.span.end, e.span.end)
        if i >= 0:
            return Span(e.span.source, i, i + len(e.op))
    return e.span


class TypeInference:
    def __init__(self, program: Program, resolve_target=None) -> None:
        self.p = program
        self.types = program.types
        self.refs = program.referents
        self.updated = False
        self.final = False
        self.errors: list[Diagnostic] = []
        self._seen: set[tuple[str, int]] = set()
        self.current_fn: FunctionInfo | None = None
        self.current_probe: DerivedProbe | None = None
        self.resolve_target = resolve_target
        self.in_defined = 0
        self._target_done: set[int] = set()

    # -- reporting ------------------------------------------------------------
    def _err(self, msg: str, span, saw: str, related=()) -> None:
        if self.in_defined:
            return                      # code stap drops (@defined false) is not checked
        key = (msg, span.start if span is not None else -1)
        if key in self._seen:
            return
        self._seen.add(key)
        self.errors.append(Diagnostic(Severity.ERROR, msg, span, "type", kind="semantic error",
                                      saw=saw, marker="at", related=tuple(related)))

    def mismatch_var(self, e, v_type: str, new: str, first_span, first_saw) -> None:
        rel = []
        if first_span is not None:
            rel.append(Related(first_span, f"type was first inferred here ({v_type}): {first_saw}"))
        self._err(f"type mismatch ({new})", tok_span(e), describe(e), rel)

    def mismatch(self, e, expected: str, found: str) -> None:
        self._err(f"type mismatch: expected {expected} but found {found}", tok_span(e), describe(e))

    # -- driver ---------------------------------------------------------------------
    def run(self, max_iter: int = 50) -> list[Diagnostic]:
        for _ in range(max_iter):
            self.updated = False
            self._walk_all()
            if not self.updated:
                break
        self.final = True
        self._walk_all()
        return self.errors

    def _walk_all(self) -> None:
        for fi in self.p.all_functions():
            self.current_fn, self.current_probe = fi, None
            if not isinstance(fi.body, A.EmbeddedCode):
                self.stmt(fi.body)
        self.current_fn = None
        for dp in self.p.probes:
            self.current_probe = dp
            self.stmt(dp.body)
            if dp.condition is not None:
                self.expr(dp.condition, LONG)
        self.current_probe = None

    # -- variables ----------------------------------------------------------------------
    def _var_type(self, v: VarInfo, e, t: str) -> str:
        if t != UNKNOWN:
            if v.type == UNKNOWN:
                v.type = t
                v.type_span = tok_span(e)
                v.type_saw = describe(e)
                self.updated = True
            elif v.type != t:
                self.mismatch_var(e, v.type, t, v.type_span, v.type_saw or describe(e))
        elif self.final and v.type == UNKNOWN:
            self._err("unresolved type ", tok_span(e), describe(e))
        return v.type

    def _index_types(self, v: VarInfo, idxs, e) -> None:
        while len(v.index_types) < len(idxs):
            v.index_types.append(UNKNOWN)
            v.index_spans.append((None, ""))
        for i, ix in enumerate(idxs):
            if ix is None:
                continue
            it = self.expr(ix, UNKNOWN)
            if it == UNKNOWN:
                it = self.expr(ix, v.index_types[i])
            if it != UNKNOWN and v.index_types[i] == UNKNOWN:
                v.index_types[i] = it
                v.index_spans[i] = (tok_span(ix), describe(ix))
                self.updated = True
            elif it != UNKNOWN and it != v.index_types[i]:
                fs, fd = v.index_spans[i]
                rel = [Related(fs, f"type of index {i} was first inferred here "
                                   f"({v.index_types[i]}): {fd}")] if fs is not None else []
                self._err(f"index {i} type mismatch ({it})", tok_span(ix), describe(ix), rel)
            elif self.final and v.index_types[i] == UNKNOWN:
                self._err("unresolved type ", tok_span(ix), describe(ix))

    # -- expressions --------------------------------------------------------------------------
    def expr(self, e, t: str = UNKNOWN) -> str:
        m = getattr(self, "e_" + type(e).__name__, None)
        r = m(e, t) if m is not None else self._other(e, t)
        if r != UNKNOWN:
            self.types[id(e)] = r
        return r

    def _fixed(self, e, t: str, own: str) -> str:
        if t != UNKNOWN and own != UNKNOWN and t != own:
            self.mismatch(e, t, own)
        return own

    def _other(self, e, t):
        for c in A.iter_children(e):
            if isinstance(c, A.Expr):
                self.expr(c)
        return UNKNOWN

    def e_NumberLit(self, e, t):
        return self._fixed(e, t, LONG)

    def e_StringLit(self, e, t):
        return self._fixed(e, t, STRING)

    def e_EmbeddedExpr(self, e, t):
        own = STRING if "/* string */" in e.code else LONG
        return self._fixed(e, t, own)

    def e_BinaryExpr(self, e, t):
        self.expr(e.left, LONG)
        self.expr(e.right, LONG)
        return self._fixed(e, t, LONG)

    def e_LogicalExpr(self, e, t):
        return self.e_BinaryExpr(e, t)

    def e_ConcatExpr(self, e, t):
        self.expr(e.left, STRING)
        self.expr(e.right, STRING)
        return self._fixed(e, t, STRING)

    def e_ComparisonExpr(self, e, t):
        lt = self.expr(e.left, UNKNOWN)
        rt = self.expr(e.right, lt)
        if lt == UNKNOWN and rt != UNKNOWN:
            self.expr(e.left, rt)
        if STATS in (lt, rt):
            self.mismatch(e.left if lt == STATS else e.right, LONG, STATS)
        return self._fixed(e, t, LONG)

    def e_RegexQuery(self, e, t):
        self.expr(e.left, STRING)
        self.expr(e.right, STRING)
        if isinstance(e.right, A.StringLit):
            bad = regex_error(e.right.value)
            if bad is not None:
                self._err(bad, e.right.span, describe(e.right))
        return self._fixed(e, t, LONG)

    def e_UnaryExpr(self, e, t):
        self.expr(e.operand, LONG)
        return self._fixed(e, t, LONG)

    e_PreCrement = e_UnaryExpr

    def e_PostCrement(self, e, t):
        self.expr(e.operand, LONG)
        return self._fixed(e, t, LONG)

    def _defined_false(self, cond) -> bool:
        """``@defined(target expr)`` that the target model says is not there
        (stap folds it to 0 and drops the guarded code before checking it)."""
        if not isinstance(cond, A.DefinedOp) or not isinstance(cond.operand, A.TargetExpr):
            return False
        dp = self.current_probe
        if dp is None:
            return False
        if isinstance(cond.operand, A.TargetSymbol) and dp.target is None:
            return dp.family in ("begin", "end", "error", "never", "timer")
        if self.resolve_target is None:
            return False
        t, diag = self.resolve_target(dp, cond.operand)
        return t is None and diag is not None and diag.severity == Severity.ERROR

    def _defined_true(self, cond) -> bool:
        """``@defined($var)`` that is certainly there (stap folds it to 1 and
        drops the other branch before checking it): procfs ``$value``, or a
        target variable the model knows exactly."""
        if not isinstance(cond, A.DefinedOp) or not isinstance(cond.operand, A.TargetExpr):
            return False
        dp = self.current_probe
        e = cond.operand
        if dp is None:
            return False
        if isinstance(e, A.TargetSymbol):
            if dp.family == "procfs":
                return e.name == "$value" and not e.components
            if dp.target is None:
                return False
        if self.resolve_target is None:
            return False
        t, diag = self.resolve_target(dp, e)
        return t is not None and diag is None

    def e_TernaryExpr(self, e, t):
        self.expr(e.cond, LONG)
        if self._defined_true(e.cond):
            a = self.expr(e.true_value, t)
            self.in_defined += 1
            self.p.defined_dropped.update(id(x) for x in A.walk(e.false_value))
            try:
                self.expr(e.false_value)      # dropped by stap: no type is forced on it
            finally:
                self.in_defined -= 1
            return a
        if self._defined_false(e.cond):
            self.in_defined += 1
            try:
                self.expr(e.true_value, t)
            finally:
                self.in_defined -= 1
            return self.expr(e.false_value, t)
        a = self.expr(e.true_value, t)
        b = self.expr(e.false_value, a if a != UNKNOWN else t)
        if a == UNKNOWN and b != UNKNOWN:
            a = self.expr(e.true_value, b)
        return a if a != UNKNOWN else b

    def e_AssignExpr(self, e, t):
        op = e.op
        if op == "<<<":
            self.expr(e.left, STATS)
            self.expr(e.right, LONG)
            return self._fixed(e, t, LONG) if t not in (UNKNOWN, STATS) else UNKNOWN
        if op == ".=":
            self.expr(e.left, STRING)
            self.expr(e.right, STRING)
            return self._fixed(e, t, STRING)
        if op != "=":
            self.expr(e.left, LONG)
            self.expr(e.right, LONG)
            return self._fixed(e, t, LONG)
        rt = self.expr(e.right, UNKNOWN)
        lt = self.expr(e.left, rt if rt != UNKNOWN else t)
        if rt == UNKNOWN and lt != UNKNOWN:
            rt = self.expr(e.right, lt)
        if rt == STATS or lt == STATS:
            self.mismatch(e.right, LONG, STATS)
        return lt

    def e_Symbol(self, e, t):
        v = self.refs.get(id(e))
        if not isinstance(v, VarInfo):
            return UNKNOWN
        return self._var_type(v, e, t)

    def e_ArrayIndex(self, e, t):
        base = e.base
        if isinstance(base, A.HistOp):
            self.expr(base.stat, STATS)
            for i in e.indexes:
                if i is not None:
                    self.expr(i, LONG)
            return self._fixed(e, t, LONG)
        v = self.refs.get(id(base))
        if not isinstance(v, VarInfo):
            return UNKNOWN
        self._index_types(v, e.indexes, e)
        r = self._var_type(v, base, t)
        self.types[id(base)] = r
        return r

    def e_ArrayIn(self, e, t):
        v = self.refs.get(id(e.base))
        if isinstance(v, VarInfo):
            self._index_types(v, e.indexes, e)
        return self._fixed(e, t, LONG)

    def e_FunctionCall(self, e, t):
        fis = self.refs.get(id(e))
        if not fis:
            for a in e.args:
                self.expr(a)
            return UNKNOWN
        for fi in fis:
            for p, a in zip(fi.params, e.args):
                at = self.expr(a, UNKNOWN)
                if at == UNKNOWN:
                    at = self.expr(a, p.type)
                elif p.type != UNKNOWN and at != p.type:
                    self.mismatch_var(a, p.type, at, p.type_span, p.type_saw or f"identifier '{p.name}'")
                if at != UNKNOWN and p.type == UNKNOWN:
                    p.type = at
                    p.type_span = tok_span(a)
                    p.type_saw = describe(a)
                    self.updated = True
        fi = fis[0]
        rt = fi.return_type
        if t != UNKNOWN and rt != UNKNOWN and t != rt:
            rel = [Related(fi.return_span, f"type was first inferred here ({rt}): {fi.return_saw}")] \
                if fi.return_span is not None else []
            self._err(f"type mismatch ({t})", tok_span(e), describe(e), rel)
        return rt

    def e_PrintFormat(self, e, t):
        if e.format is not None:
            want = format_types(e.format)
            for i, a in enumerate(e.args):
                self.expr(a, want[i] if i < len(want) else UNKNOWN)
        else:
            for a in e.args:
                at = self.expr(a, UNKNOWN)
                if at == STATS and not isinstance(a, A.Symbol):
                    pass
        if e.hist is not None:
            self.expr(e.hist.stat, STATS)
        own = STRING if e.name.startswith("sprint") else LONG
        return self._fixed(e, t, own) if own == STRING else own

    def e_StatOp(self, e, t):
        self.expr(e.stat, STATS)
        return self._fixed(e, t, LONG)

    def e_HistOp(self, e, t):
        self.expr(e.stat, STATS)
        return UNKNOWN

    def e_DefinedOp(self, e, t):
        self.in_defined += 1
        try:
            self.expr(e.operand)
        finally:
            self.in_defined -= 1
        return self._fixed(e, t, LONG)

    def e_EntryOp(self, e, t):
        return self.expr(e.operand, t)

    def e_PerfOp(self, e, t):
        return self._fixed(e, t, LONG)

    def e_TargetSymbol(self, e, t):
        for c in e.components:
            if c.index is not None:
                self.expr(c.index, LONG)
        own = LONG
        if self.current_probe is not None and self.current_probe.family == "procfs" \
                and e.name == "$value" and not e.components:
            own = STRING
        if e.name in ("$$vars", "$$parms", "$$locals", "$$return") or \
                any(c.kind == "pretty" for c in e.components):
            own = STRING
        got = self._target(e)
        if got is not None:
            own = got
        return self._fixed(e, t, own) if t != UNKNOWN else own

    def _target(self, e) -> str | None:
        """The target model's type for a target expression; its complaint, once."""
        if self.resolve_target is None or self.current_probe is None:
            return None
        if (self.current_probe.family or "").startswith(_UTRACE_FAMILIES):
            return None     # plain longs; contextchecks says which exist where
        t, diag = self.resolve_target(self.current_probe, e)
        if diag is not None and id(e) not in self._target_done and not self.in_defined:
            self._target_done.add(id(e))
            source = getattr(self.current_probe.target, "source", "")
            certain = isinstance(e, A.TargetSymbol) and e.name == "$return" \
                and not self.current_probe.is_return
            if diag.severity == Severity.ERROR and source not in ("dwarf", "") and not certain:
                # without debug information the model's answer is approximate (BTF,
                # kallsyms): say so, but do not fail what stap could not check here
                self.errors.append(Diagnostic(Severity.WARNING, diag.message, diag.span,
                                              diag.code, "WARNING", diag.saw, diag.marker,
                                              diag.related))
            elif diag.severity == Severity.ERROR:
                self._err(diag.message, diag.span, diag.saw, diag.related)
            else:
                self.errors.append(diag)
        return t if t in (LONG, STRING) else None

    def e_CastOp(self, e, t):
        if e.operand is not None:
            self.expr(e.operand, LONG)
        own = STRING if any(c.kind == "pretty" for c in e.components) else LONG
        own = self._target(e) or own
        return self._fixed(e, t, own)

    def e_AtVarOp(self, e, t):
        own = STRING if any(c.kind == "pretty" for c in e.components) else LONG
        own = self._target(e) or own
        return self._fixed(e, t, own)

    def e_AutocastOp(self, e, t):
        if e.operand is not None:
            self.expr(e.operand, LONG)
        return self._fixed(e, t, LONG)

    def e_TargetRegister(self, e, t):
        return self._fixed(e, t, LONG)

    def e_TargetDeref(self, e, t):
        self.expr(e.addr, LONG)
        return self._fixed(e, t, LONG)

    def e_ProbewriteOp(self, e, t):
        return self._fixed(e, t, LONG)

    # -- statements ------------------------------------------------------------------------------
    def stmt(self, s) -> None:
        if isinstance(s, A.Block):
            for x in s.statements:
                self.stmt(x)
        elif isinstance(s, A.ExprStmt):
            self.expr(s.expr, UNKNOWN)
        elif isinstance(s, A.IfStmt):
            self.expr(s.cond, LONG)
            dead = self._defined_false(s.cond)
            self.in_defined += dead
            try:
                self.stmt(s.then)
            finally:
                self.in_defined -= dead
            if s.else_ is not None:
                self.stmt(s.else_)
        elif isinstance(s, A.ForLoop):
            if s.init is not None:
                self.expr(s.init)
            self.expr(s.cond, LONG)
            if s.incr is not None:
                self.expr(s.incr)
            self.stmt(s.body)
        elif isinstance(s, A.ForeachLoop):
            self.foreach(s)
        elif isinstance(s, A.ReturnStmt):
            fi = self.current_fn
            if fi is not None and s.value is not None:
                rt = self.expr(s.value, fi.return_type)
                if rt != UNKNOWN and fi.return_type == UNKNOWN:
                    fi.return_type = rt
                    fi.return_span = tok_span(s.value)
                    fi.return_saw = describe(s.value)
                    self.updated = True
        elif isinstance(s, A.DeleteStmt):
            self.expr(s.value, UNKNOWN)
        elif isinstance(s, A.TryBlock):
            self.stmt(s.body)
            if s.catch_var is not None:
                self.expr(s.catch_var, STRING)
            self.stmt(s.catch_body)

    def foreach(self, s: A.ForeachLoop) -> None:
        base = s.base
        v = self.refs.get(id(base)) if isinstance(base, A.Symbol) else None
        if isinstance(v, VarInfo):
            while len(v.index_types) < len(s.indexes):
                v.index_types.append(UNKNOWN)
                v.index_spans.append((None, ""))
            for i, k in enumerate(s.indexes):
                kt = self.expr(k, v.index_types[i])
                if kt != UNKNOWN and v.index_types[i] == UNKNOWN:
                    v.index_types[i] = kt
                    v.index_spans[i] = (k.span, describe(k))
                    self.updated = True
            for i, a in enumerate(s.array_slice):
                if a is not None and i < len(v.index_types):
                    self.expr(a, v.index_types[i])
            if s.value is not None:
                vt = self.expr(s.value, v.type if v.type != STATS else UNKNOWN)
                if vt != UNKNOWN and v.type == UNKNOWN:
                    self._var_type(v, base, vt)
            self.types[id(base)] = v.type
        elif isinstance(base, A.HistOp):
            self.expr(base.stat, STATS)
            for k in s.indexes:
                self.expr(k, LONG)
            if s.value is not None:
                self.expr(s.value, LONG)
        if s.limit is not None:
            self.expr(s.limit, LONG)
        self.stmt(s.body)


def quote(s: str) -> str:
    return quote_string(s)
