"""Builds the typed AST (``stap_ls.syntax.ast``) while lark parses.

The callbacks run inside lark's LALR parser (an inline transformer), one per
grammar rule.  Besides building nodes they make the checks stap's parser makes
as it goes (numbers in range, printf formats, embedded code needing guru mode,
duplicate parameters, ``?``/``!`` placement ...).  Those are recorded as
errors on the builder, with the token stap would blame; they never raise.
"""

from __future__ import annotations

import re

from lark import Token, Transformer

from stap_ls.syntax import ast as A
from stap_ls.syntax.lexer import Tok, version_at_least
from stap_ls.syntax.preprocessor import PPError
from stap_ls.text import Span

_ULLONG_MAX = (1 << 64) - 1


def parse_number(text: str) -> int | None:
    """strtoull(text, 0) over the whole text, or None when stap would say
    'number invalid or out of range'."""
    t = text
    try:
        if t[:2] in ("0x", "0X"):
            if len(t) == 2 or not re.fullmatch(r"[0-9a-fA-F]+", t[2:]):
                return None
            v = int(t[2:], 16)
        elif t.startswith("0") and len(t) > 1:
            if not re.fullmatch(r"[0-7]+", t[1:]):
                return None
            v = int(t[1:], 8)
        else:
            if not t.isdigit():
                return None
            v = int(t)
    except ValueError:
        return None
    if v > _ULLONG_MAX:
        return None
    return v


def to_int64(v: int) -> int:
    v &= _ULLONG_MAX
    return v - (1 << 64) if v >= (1 << 63) else v


def _skip_width(fmt: str, i: int) -> int:
    """Past a printf width or precision at ``fmt[i]``: ``*`` or digits."""
    if fmt[i] == "*":
        return i + 1
    while i < len(fmt) and fmt[i].isdigit():
        i += 1
    return i


def check_format(fmt: str) -> str | None:
    """stap's print_format::string_to_components checks; an error message or None."""
    i = 0
    n = len(fmt)
    while i < n:
        if fmt[i] != "%":
            i += 1
            continue
        if i + 1 == n or fmt[i + 1] == "%":
            i += 2
            continue
        i += 1
        if fmt[i] in "0+- #":
            i += 1
        if i == n:
            return "trailing incomplete print format conversion"
        i = _skip_width(fmt, i)
        if i == n:
            return "trailing incomplete print format conversion"
        if fmt[i] == ".":
            i += 1
            if i == n:
                return "trailing incomplete print format conversion"
            i = _skip_width(fmt, i)
        if i == n:
            return "trailing incomplete print format conversion"
        if fmt[i] == "l":
            i += 1
        if i == n:
            return "trailing incomplete print format conversion"
        if fmt[i] not in "bcsmMdiuoxXp":
            return "invalid or missing conversion specifier"
        i += 1
    return None


class AstBuilder(Transformer):
    """Inline transformer; set ``items`` and ``privileged`` before each parse."""

    def __init__(self) -> None:
        super().__init__(visit_tokens=False)
        self.items: list[Tok | PPError] = []
        self.privileged = False
        self.errors: list[tuple[str, Tok | PPError | None]] = []
        self.autocast = True       # --compatible >= 2.6
        self.glue_strings = True   # --compatible >= 2.0
        self._param_toks = {}
        #: the return statements built in the current declaration
        self.returns: list[A.ReturnStmt] = []

    def set_version(self, version: str) -> None:
        """Gate the features stap's parser gates on ``has_version``."""
        self._param_toks: dict[int, Token] = {}
        self.returns = []
        self.autocast = version_at_least(version, "2.6")
        self.glue_strings = version_at_least(version, "2.0")

    # -- helpers -------------------------------------------------------------
    def tok(self, t: Token) -> Tok:
        return self.items[t.start_pos]  # type: ignore[return-value]

    def error(self, message: str, where) -> None:
        self.errors.append((message, self._blame(where)))

    def error_at(self, message: str, where) -> None:
        """An error stap raises naming its token (printed with ``at:``)."""
        self.errors.append((message, ("at", self._blame(where))))

    def _blame(self, where):
        if isinstance(where, Token):
            return self.tok(where)
        if isinstance(where, (A.Node, A.PPComponent, A.Component, A.Param)):
            where = where.span
        if isinstance(where, Span):
            # the token that starts there, so the message can describe it
            for it in self.items:
                if isinstance(it, Tok) and it.start == where.start and it.source is where.source:
                    return it
        return where

    def _sp(self, x) -> Span | None:
        if x is None:
            return None
        if isinstance(x, Token):
            t = self.items[x.start_pos]
            if isinstance(t, Tok):
                return Span(t.source, t.start, t.end)
            return None
        if isinstance(x, (A.Node, A.Component, A.PPComponent, A.Param)):
            return x.span
        if isinstance(x, list):
            for y in x:
                s = self._sp(y)
                if s is not None:
                    return s
        return None

    def span(self, *xs) -> Span | None:
        first = None
        for x in xs:
            first = self._sp(x)
            if first is not None:
                break
        if first is None:
            return None
        last = None
        for x in reversed(xs):
            if isinstance(x, list):
                for y in reversed(x):
                    last = self._sp(y)
                    if last is not None:
                        break
            else:
                last = self._sp(x)
            if last is not None:
                break
        if last is not None and last.source is first.source and last.end >= first.start:
            return Span(first.source, first.start, last.end)
        return first

    def num_value(self, t: Token, neg: bool = False) -> int:
        v = parse_number(str(t))
        if v is None or (neg and v > (1 << 63)):
            self.error("number invalid or out of range", t)
            return 0
        return to_int64(-v if neg else v)

    @staticmethod
    def nodes(children, cls=None) -> list:
        if cls is None:
            return [c for c in children if not isinstance(c, Token) and c is not None]
        return [c for c in children if isinstance(c, cls)]

    # -- top level -------------------------------------------------------------
    def start(self, c):
        return c[0]

    def top_embedded(self, c):
        if not self.privileged:
            self.error("embedded code in unprivileged script; need stap -g", c[0])
        return A.TopEmbedded(self.span(c[0]), str(c[0]))

    def global_decl(self, c):
        return c[1]

    def private_global(self, c):
        decls = c[-1]
        for d in decls:
            d.private = True
        return decls

    def global_list(self, c):
        return [x for x in c if isinstance(x, A.GlobalDecl)]

    def global_var(self, c):
        name, pct, lsq, size, rsq, eq, init = c
        d = A.GlobalDecl(self.span(name, rsq, init), str(name), wrap=pct is not None,
                         name_span=self.span(name))
        if size is not None:
            if size <= 0 or size > 2147483647:
                self.error("array size out of range", rsq)
            d.maxsize = size
        if init is not None:
            if d.maxsize > 0:
                self.error("only scalar globals can be initialized", eq)
            d.init = init
        return d

    def private_function(self, c):
        f = c[2]
        f.private = True
        f.span = self.span(c[0], f)
        return f

    def function_decl(self, c):
        f = c[1]
        f.span = self.span(c[0], f)
        return f

    def function_rest(self, c):
        name, colon, rtype, lpar, params, rpar, pcolon, prio, body = c
        if isinstance(body, Token):
            if not self.privileged:
                self.error("embedded code in unprivileged script; need stap -g", body)
            body_node = A.EmbeddedCode(self.span(body), str(body))
        else:
            body_node = body
        params = params or []
        seen = set()
        for p in params:
            if p.name in seen:
                self.error("duplicate parameter names", self._param_toks.get(id(p), p.span))
            seen.add(p.name)
        priority = None
        if prio is not None:
            if not isinstance(prio, A.NumberLit):
                self.error("expected literal number", body if isinstance(body, Token) else body_node)
            else:
                priority = prio.value
                if priority < 1:
                    self.error("specified priority must be > 0", prio)
        return A.FunctionDecl(self.span(name, body_node), str(name),
                              str(rtype) if rtype is not None else None, params, body_node,
                              priority, name_span=self.span(name))

    def params(self, c):
        return [x for x in c if isinstance(x, A.Param)]

    def param(self, c):
        name, colon, ty = c
        p = A.Param(str(name), str(ty) if ty is not None else None, self.span(name, ty))
        self._param_toks[id(p)] = name
        return p

    # -- probes ----------------------------------------------------------------
    def probe(self, c):
        points, body = c[1], c[2]
        return A.ProbeDecl(self.span(c[0], body), points, body)

    def alias(self, c):
        heads = [x for x in c if isinstance(x, tuple)]
        rest = [x for x in c if not isinstance(x, tuple)]
        # rest: PROBE, points(list), block, [COMMA], [block2]
        points = next(x for x in rest if isinstance(x, list))
        blocks = [x for x in rest if isinstance(x, A.Block)]
        comma = next((x for x in rest if isinstance(x, Token) and x.type == "COMMA"), None)
        epilogue = any(op == "+=" for _, op, _t in heads)
        names = [pp for pps, _, _ in heads for pp in pps]
        for pps, _, tok in heads:
            if len(pps) != 1:
                self.error("expected probe point specifier", tok)
            for pp in pps:
                if pp.optional or pp.sufficient:
                    self.error_at("probe point alias name cannot be optional nor sufficient",
                               pp.components[0].span if pp.components else pp.span)
        body2 = blocks[1] if len(blocks) > 1 else None
        if body2 is not None and epilogue:
            self.error("Combined prologue and epilogue cannot be defined with '+='", comma)
        last = body2 or blocks[0]
        return A.AliasDecl(self.span(c[0], last), names, epilogue, points, blocks[0], body2)

    def alias_head(self, c):
        pp_list = c[0]
        return (pp_list, str(c[1]), c[1])

    def probe_points(self, c):
        out = []
        for x in c:
            if isinstance(x, list):
                out.extend(x)
        return out

    def probe_point(self, c):
        """Returns a list: brace groups expand to several probe points."""
        comps = []
        opt = cond = None
        for x in c:
            if isinstance(x, Token) and x.type in ("QMARK", "BANG"):
                opt = x
            elif isinstance(x, tuple) and x and x[0] == "cond":
                cond = x
            elif isinstance(x, list):
                comps.append(x)
        # cartesian product of the components
        pps: list[A.ProbePoint] = []
        for group in comps:
            if not pps:
                pps = group
                continue
            product = []
            for a in pps:
                if a.optional or a.sufficient or a.condition is not None:
                    self.error_at("'?', '!' or condition must only be specified in suffix",
                               a.components[0].span if a.components else a.span)
                for b in group:
                    product.append(A.ProbePoint(self.span(a, b), a.components + b.components,
                                                b.optional, b.sufficient, b.condition))
            pps = product
        for pp in pps:
            if opt is not None:
                if pp.optional or pp.sufficient:
                    self.error("'?' or '!' respecified", opt)
                pp.optional = True
                pp.sufficient = str(opt) == "!"
                pp.span = self.span(pp, opt)
            if cond is not None:
                if pp.condition is not None:
                    self.error("condition respecified", cond[2])
                pp.condition = cond[1]
                pp.span = self.span(pp, cond[2])
        return pps

    def pp_cond(self, c):
        return ("cond", c[2], c[3])

    def pp_component(self, c):
        name, lpar, arg, rpar = c
        comp = A.PPComponent(str(name), arg, self.span(name, rpar))
        return [A.ProbePoint(comp.span, [comp])]

    def pp_brace(self, c):
        return c[1]

    def literal_signed(self, c):
        if len(c) == 1:
            return c[0]
        minus, num = c
        return A.NumberLit(self.span(minus, num), self.num_value(num, minus is not None), str(num))

    def number_lit(self, c):
        minus, num = c
        return self.num_value(num, minus is not None)

    # -- statements --------------------------------------------------------------
    def block(self, c):
        return A.Block(self.span(c[0], c[-1]), [x for x in c[1:-1]])

    def null_stmt(self, c):
        return A.NullStmt(self.span(c[0]))

    def semi_stmt(self, c):
        return c[0]

    def return_stmt(self, c):
        r = A.ReturnStmt(self.span(c[0], c[1]), c[1])
        self.returns.append(r)
        return r

    def delete_stmt(self, c):
        return A.DeleteStmt(self.span(c[0], c[1]), c[1])

    def break_stmt(self, c):
        return A.BreakStmt(self.span(c[0]))

    def continue_stmt(self, c):
        return A.ContinueStmt(self.span(c[0]))

    def next_stmt(self, c):
        return A.NextStmt(self.span(c[0]))

    def expr_stmt(self, c):
        return A.ExprStmt(c[0].span, c[0])

    def try_stmt(self, c):
        tr, body, catch, lpar, var, rpar, cbody = c
        sym = A.Symbol(self.span(var), str(var)) if var is not None else None
        return A.TryBlock(self.span(tr, cbody), body, sym, cbody)

    def if_stmt(self, c):
        kw, lpar, cond, rpar, then, els_kw, els = c
        return A.IfStmt(self.span(kw, then, els), cond, then, els)

    def for_stmt(self, c):
        kw, lpar, init, s1, cond, s2, incr, rpar, body = c
        if cond is None:
            cond = A.NumberLit(self.span(s2), 1, "1")
        return A.ForLoop(self.span(kw, body), init, cond, incr, body)

    def while_stmt(self, c):
        kw, lpar, cond, rpar, body = c
        return A.ForLoop(self.span(kw, body), None, cond, None, body, is_while=True)

    def foreach_stmt(self, c):
        kw, lpar, fvars, in_kw, base, slc, stat, sort, limit, rpar, body = c
        value, keys, vsort, ksorts = fvars
        direction = column = 0
        if vsort is not None:
            direction, column = (1 if str(vsort) == "+" else -1), 0
        for i, s in enumerate(ksorts):
            if s is not None:
                if direction:
                    self.error("multiple sort directives", s)
                direction, column = (1 if str(s) == "+" else -1), i + 1
        aggr = ""
        if stat is not None:
            aggr = str(stat)[1:]
            if sort is None:
                self.error("expected sort directive", rpar if limit is None else limit[0])
        if sort is not None:
            if direction:
                self.error("multiple sort directives", sort)
            direction, column = (1 if str(sort) == "+" else -1), 0
        return A.ForeachLoop(self.span(kw, body), value, keys, base, slc or [], direction,
                             column, aggr, limit[1] if limit else None, body)

    def foreach_limit(self, c):
        return (c[0], c[1])

    def foreach_keys(self, c):
        keys = c[0] if isinstance(c[0], list) else [c[0]]
        return (None, [k for k, _ in keys], None, [s for _, s in keys])

    def foreach_value_keys(self, c):
        (vsym, vsort), eq, keys = c
        keys = keys if isinstance(keys, list) else [keys]
        return (vsym, [k for k, _ in keys], vsort, [s for _, s in keys])

    def key_list(self, c):
        return [x for x in c if isinstance(x, tuple)]

    def sorted_ident(self, c):
        name, sort = c
        return (A.Symbol(self.span(name), str(name)), sort)

    def slice(self, c):
        return [None if isinstance(x, _Star) else x for x in c[1:-1]
                if not (isinstance(x, Token) and x.type == "COMMA")]

    def bare_name(self, c):
        return A.Symbol(self.span(c[0]), str(c[0]))

    # -- expressions ---------------------------------------------------------------
    def assignment(self, c):
        return A.AssignExpr(self.span(c[0], c[2]), str(c[1]), c[0], c[2])

    def ternary(self, c):
        return A.TernaryExpr(self.span(c[0], c[4]), c[0], c[2], c[4])

    def logical(self, c):
        return A.LogicalExpr(self.span(c[0], c[2]), str(c[1]), c[0], c[2])

    def binary(self, c):
        return A.BinaryExpr(self.span(c[0], c[2]), str(c[1]), c[0], c[2])

    def comparison(self, c):
        return A.ComparisonExpr(self.span(c[0], c[2]), str(c[1]), c[0], c[2])

    def concat(self, c):
        return A.ConcatExpr(self.span(c[0], c[2]), str(c[1]), c[0], c[2])

    def regex_query(self, c):
        return A.RegexQuery(self.span(c[0], c[2]), str(c[1]), c[0], c[2])

    def array_in(self, c):
        return A.ArrayIn(self.span(c[0], c[2]), [c[0]], c[2])

    def array_in_list(self, c):
        in_kw, base = c[-2], c[-1]
        idx = [x for x in c[1:-3] if not (isinstance(x, Token) and x.type == "COMMA")]
        if in_kw is None:
            if len(idx) == 1 and idx[0] is not None and not isinstance(idx[0], _Star):
                return idx[0]
            self.error("unexpected comma-separated expression list" if len(idx) > 1
                       else "expected 'in'", c[-3])
            return idx[0] if idx and isinstance(idx[0], A.Expr) else A.NumberLit(None, 0)
        idx = [None if isinstance(x, _Star) else x for x in idx]
        return A.ArrayIn(self.span(c[0], base), idx, base)

    def star(self, c):
        return _Star(self.span(c[0]))

    def unary(self, c):
        return A.UnaryExpr(self.span(c[0], c[1]), str(c[0]), c[1])

    def pre_crement(self, c):
        return A.PreCrement(self.span(c[0], c[1]), str(c[0]), c[1])

    def post_crement(self, c):
        return A.PostCrement(self.span(c[0], c[1]), str(c[1]), c[0])

    def with_components(self, c):
        base, comps = c
        return self._attach(base, comps, False, None)

    def addressof(self, c):
        amp, base = c[0], c[1]
        comps = c[2] if len(c) > 2 else []
        if isinstance(base, A.TargetExpr) and base.addressof:
            self.error("cannot take address more than once", amp)
        return self._attach(base, comps, True, amp)

    def _attach(self, base, comps, addressof, amp):
        if isinstance(base, (A.TargetSymbol, A.CastOp, A.AtVarOp)) and not base.addressof:
            t = base
        else:
            if not self.autocast:
                if addressof:
                    self.error("expected @cast, @var or $var", amp)
                else:
                    self.error("target-symbol suffixes on an expression need "
                               "--compatible=2.6 or later", comps[0].span if comps else base)
            t = A.AutocastOp(base.span, operand=base)
        t.addressof = t.addressof or addressof
        pretty = bool(t.components) and t.components[-1].kind == "pretty"
        for comp in comps:
            if pretty and comp.kind != "pretty":
                self.error("-> and [ are not accepted for a pretty-printing variable", comp.span)
                break
            if comp.kind == "member" and comp.member.endswith("$"):
                stripped = comp.member.rstrip("$")
                pp = comp.member[len(stripped):]
                if stripped:
                    t.components.append(A.Component("member", stripped, span=comp.span))
                t.components.append(A.Component("pretty", pp, span=comp.span))
                pretty = True
                continue
            t.components.append(comp)
            if comp.kind == "pretty":
                pretty = True
        t.span = self.span(amp, base, comps) if amp is not None else self.span(base, comps)
        return t

    def ts_components(self, c):
        out = []
        for x in c:
            if isinstance(x, A.Component):
                out.append(x)
            elif isinstance(x, Token):
                out.append(A.Component("pretty", str(x), span=self.span(x)))
        return out

    def member(self, c):
        return A.Component("member", str(c[1]), span=self.span(c[0], c[1]))

    def index(self, c):
        return A.Component("index", index=c[1], span=self.span(c[0], c[2]))

    def embedded_expr(self, c):
        if not self.privileged:
            self.error("embedded expression code in unprivileged script; need stap -g", c[0])
        return A.EmbeddedExpr(self.span(c[0]), str(c[0]))

    def paren(self, c):
        return c[1]

    def target_symbol(self, c):
        name = str(c[0])
        t = A.TargetSymbol(self.span(c[0]), name=name)
        base = name.rstrip("$")
        if 0 < len(base) < len(name):
            t.name = base
            t.components.append(A.Component("pretty", name[len(base):], span=t.span))
        return t

    def symbol(self, c):
        return A.Symbol(self.span(c[0]), str(c[0]))

    def array_index(self, c):
        head = c[0]
        base = A.Symbol(self.span(head), str(head)) if isinstance(head, Token) else head
        idx = [None if isinstance(x, _Star) else x for x in c[2:-1]
               if not (isinstance(x, Token) and x.type == "COMMA")]
        return A.ArrayIndex(self.span(head, c[-1]), base, idx)

    def function_call(self, c):
        name, lpar, args, rpar = c
        return A.FunctionCall(self.span(name, rpar), str(name), args or [],
                              name_span=self.span(name))

    def args(self, c):
        return [x for x in c if not isinstance(x, Token)]

    def _print(self, c, fmt, delim, args, hist=None):
        name = c[0]
        return A.PrintFormat(self.span(name, c[-1]), str(name), fmt, delim, args, hist,
                             name_span=self.span(name))

    def print_fmt(self, c):
        fmt = c[2]
        err = check_format(fmt.value)
        if err:
            # stap checks the format once it has peeked at the next token
            self.error(err, c[3] if len(c) > 3 else fmt)
        args = [x for x in c[3:-1] if not isinstance(x, Token)]
        return self._print(c, fmt.value, None, args)

    def print_delim(self, c):
        args = [x for x in c[3:-1] if not isinstance(x, Token)]
        if len(args) < 2:
            self.error("expected ','", c[-1])
        return self._print(c, None, c[2].value, args)

    def print_plain(self, c):
        args = c[2] or []
        name = str(c[0])
        if not args and name in ("print", "sprint", "print_char"):
            self.error("expected literal string or number", c[-1])
        return self._print(c, None, None, args)

    def print_hist(self, c):
        return self._print(c, None, None, [], c[2])

    def hist_op(self, c):
        kind = str(c[0])[1:]
        params = [x for x in c[4:-1] if isinstance(x, int)] if kind == "hist_linear" else []
        return A.HistOp(self.span(c[0], c[-1]), kind, c[2], params)

    def stat_op(self, c):
        op = str(c[0])[1:]
        params = [x for x in c[3:-1] if isinstance(x, int)]
        limit = 1 if op == "variance" else 0
        if len(params) > limit:
            n = limit + 1
            commas = [x for x in c if isinstance(x, Token) and x.type == "COMMA"]
            self.error_at(f"not more than {n} parameter{'s' if n != 1 else ''} allowed",
                          commas[limit] if len(commas) > limit else c[0])
        return A.StatOp(self.span(c[0], c[-1]), op, c[2], params)

    def defined_op(self, c):
        return A.DefinedOp(self.span(c[0], c[-1]), c[2])

    def entry_op(self, c):
        return A.EntryOp(self.span(c[0], c[-1]), c[2])

    def perf_op(self, c):
        if c[2].value == "":
            self.error("expected non-empty string", c[3])
        return A.PerfOp(self.span(c[0], c[-1]), c[2])

    def probewrite_op(self, c):
        return A.ProbewriteOp(self.span(c[0], c[-1]), str(c[2]))

    def const_op(self, c):
        if not self.privileged:
            self.error("using @const operator not permitted; need stap -g", c[0])
        if c[2].value == "":
            self.error("expected non-empty string", c[3])
        return A.EmbeddedExpr(self.span(c[0], c[-1]),
                              "/* pure */ /* unprivileged */ /* stable */ " + c[2].value)

    def register_op(self, c):
        user = str(c[0])[1] == "u"
        if not user and not self.privileged:
            self.error("using @kregister operator not permitted; need stap -g", c[0])
        return A.TargetRegister(self.span(c[0], c[-1]), user, c[2])

    def deref_op(self, c):
        user = str(c[0])[1] == "u"
        if not user and not self.privileged:
            self.error("using @kderef operator not permitted; need stap -g", c[0])
        return A.TargetDeref(self.span(c[0], c[-1]), user, c[2], c[4])

    def cast_op(self, c):
        at, lpar, operand, comma, tname, comma2, module, rpar = c
        if tname.value == "":
            self.error("expected non-empty string", comma2 if comma2 is not None else rpar)
        return A.CastOp(self.span(at, rpar), operand=operand, type_name=tname.value,
                        module=module.value if module is not None else "")

    def atvar_op(self, c):
        at, lpar, tname, comma, module, rpar = c
        return A.AtVarOp(self.span(at, rpar), target_name=tname.value,
                         module=module.value if module is not None else "")

    # -- literals ----------------------------------------------------------------------
    def number(self, c):
        t = c[0]
        return A.NumberLit(self.span(t), self.num_value(t), str(t))

    def string_lit(self, c):
        if len(c) > 1 and not self.glue_strings:
            self.error("adjacent string literals are joined only with --compatible=2.0 "
                       "or later", c[1])
        return A.StringLit(self.span(c[0], c[-1]), "".join(self.tok(t).value for t in c))


class _Star(A.Expr):
    """The '*' of an index list, before it becomes None."""
    __slots__ = ()
