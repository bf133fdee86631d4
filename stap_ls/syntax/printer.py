"""Print a parse tree exactly as ``stap -p1`` does.

stap prints each user file as ``# file NAME`` followed by its top-level
embedded code, globals, probe aliases, probes and functions, in that order,
every expression fully parenthesised and every statement of a block followed
by ``;``.  The functions here follow stap's ``print`` methods node by node
(their quirks included: ``if`` prints a newline after each branch, embedded
expressions get spaces inside ``%{ %}`` and top-level embedded code does not).
"""

from __future__ import annotations

import sys

from stap_ls.syntax import ast as A
from stap_ls.syntax.lexer import quote_string


def _q_plain(s: str) -> str:
    """literal_string::print: only '"' is escaped."""
    return '"' + s.replace('"', '\\"') + '"'


class Printer:
    def __init__(self) -> None:
        self.out: list[str] = []

    # -- expressions -------------------------------------------------------------
    def expr(self, e: A.Expr) -> str:
        m = getattr(self, "e_" + type(e).__name__)
        return m(e)

    def e_NumberLit(self, e: A.NumberLit) -> str:
        return str(e.value)

    def e_StringLit(self, e: A.StringLit) -> str:
        return _q_plain(e.value)

    def e_EmbeddedExpr(self, e: A.EmbeddedExpr) -> str:
        return "%{ " + e.code + " %}"

    def e_BinaryExpr(self, e: A.BinaryExpr) -> str:
        return f"({self.expr(e.left)}) {e.op} ({self.expr(e.right)})"

    e_ComparisonExpr = e_ConcatExpr = e_LogicalExpr = e_AssignExpr = e_BinaryExpr

    def e_RegexQuery(self, e: A.RegexQuery) -> str:
        return f"({self.expr(e.left)}) {e.op} {self.expr(e.right)}"

    def e_UnaryExpr(self, e: A.UnaryExpr) -> str:
        return f"{e.op}({self.expr(e.operand)})"

    e_PreCrement = e_UnaryExpr

    def e_PostCrement(self, e: A.PostCrement) -> str:
        return f"({self.expr(e.operand)}){e.op}"

    def e_TernaryExpr(self, e: A.TernaryExpr) -> str:
        return (f"({self.expr(e.cond)})?({self.expr(e.true_value)}):"
                f"({self.expr(e.false_value)})")

    def e_Symbol(self, e: A.Symbol) -> str:
        return e.name

    def _indexes(self, idx) -> str:
        return ", ".join("*" if i is None else self.expr(i) for i in idx)

    def e_ArrayIndex(self, e: A.ArrayIndex) -> str:
        return f"{self.expr(e.base)}[{self._indexes(e.indexes)}]"

    def e_ArrayIn(self, e: A.ArrayIn) -> str:
        return f"[{self._indexes(e.indexes)}] in {self.expr(e.base)}"

    def e_FunctionCall(self, e: A.FunctionCall) -> str:
        return f"{e.name}({', '.join(self.expr(a) for a in e.args)})"

    def e_PrintFormat(self, e: A.PrintFormat) -> str:
        s = e.name + "("
        lead = False
        if e.format is not None:
            s += quote_string(e.format)
            lead = True
        if e.delimiter is not None:
            s += quote_string(e.delimiter)
            lead = True
        if e.hist is not None:
            s += self.expr(e.hist)
        for i, a in enumerate(e.args):
            if i > 0 or lead:
                s += ", "
            s += self.expr(a)
        return s + ")"

    def e_StatOp(self, e: A.StatOp) -> str:
        s = f"@{e.op}({self.expr(e.stat)}"
        if e.op == "variance" and len(e.params) == 1:
            s += f", {e.params[0]}"
        return s + ")"

    def e_HistOp(self, e: A.HistOp) -> str:
        s = f"@{e.kind}({self.expr(e.stat)}"
        if e.kind == "hist_linear":
            s += "".join(f", {p}" for p in e.params)
        return s + ")"

    def _components(self, e: A.TargetExpr) -> str:
        out = []
        for c in e.components:
            if c.kind in ("member", "pretty"):
                out.append("->" + c.member)
            elif isinstance(c.index, A.NumberLit):
                out.append(f"[{c.index.value}]")
            else:
                out.append(f"[{self.expr(c.index)}]")
        return "".join(out)

    def e_TargetSymbol(self, e: A.TargetSymbol) -> str:
        return ("&" if e.addressof else "") + e.name + self._components(e)

    def e_CastOp(self, e: A.CastOp) -> str:
        s = ("&" if e.addressof else "") + f"@cast({self.expr(e.operand)}, {quote_string(e.type_name)}"
        if e.module:
            s += ", " + quote_string(e.module)
        return s + ")" + self._components(e)

    def e_AtVarOp(self, e: A.AtVarOp) -> str:
        s = ("&" if e.addressof else "") + f'@var("{e.target_name}"'
        if e.module:
            s += ", " + quote_string(e.module)
        return s + ")" + self._components(e)

    def e_AutocastOp(self, e: A.AutocastOp) -> str:
        return ("&" if e.addressof else "") + f"({self.expr(e.operand)})" + self._components(e)

    def e_DefinedOp(self, e: A.DefinedOp) -> str:
        return f"@defined({self.expr(e.operand)})"

    def e_EntryOp(self, e: A.EntryOp) -> str:
        return f"@entry({self.expr(e.operand)})"

    def e_PerfOp(self, e: A.PerfOp) -> str:
        return f"@perf({self.expr(e.operand)})"

    def e_ProbewriteOp(self, e: A.ProbewriteOp) -> str:
        return f"@probewrite({e.name})"

    def e_TargetRegister(self, e: A.TargetRegister) -> str:
        return f"@{'u' if e.user else 'k'}register({e.regno})"

    def e_TargetDeref(self, e: A.TargetDeref) -> str:
        return f"@{'u' if e.user else 'k'}deref({e.size}, {self.expr(e.addr)})"

    # -- statements --------------------------------------------------------------
    def stmt(self, s) -> str:
        if isinstance(s, A.Expr):
            return self.expr(s)
        return getattr(self, "s_" + type(s).__name__)(s)

    def s_Block(self, s: A.Block) -> str:
        return "{\n" + "".join(self.stmt(x) + ";\n" for x in s.statements) + "}"

    def s_EmbeddedCode(self, s: A.EmbeddedCode) -> str:
        return "%{" + s.code + "%}"

    def s_TryBlock(self, s: A.TryBlock) -> str:
        out = "try {\n" + self.stmt(s.body) + "\n} catch "
        if s.catch_var is not None:
            out += f"({s.catch_var.name}) "
        return out + "{\n" + self.stmt(s.catch_body) + "\n}\n"

    def s_IfStmt(self, s: A.IfStmt) -> str:
        out = f"if ({self.expr(s.cond)}) " + self.stmt(s.then) + "\n"
        if s.else_ is not None:
            out += "else " + self.stmt(s.else_) + "\n"
        return out

    def s_ForLoop(self, s: A.ForLoop) -> str:
        init = self.expr(s.init) if s.init is not None else ""
        incr = self.expr(s.incr) if s.incr is not None else ""
        return f"for ({init}; {self.expr(s.cond)}; {incr}) " + self.stmt(s.body)

    def s_ForeachLoop(self, s: A.ForeachLoop) -> str:
        out = "foreach ("
        if s.value is not None:
            out += s.value.name + " = "
        out += "["
        for i, k in enumerate(s.indexes):
            if i:
                out += ", "
            out += k.name
            if s.sort_direction and s.sort_column == i + 1:
                out += "+" if s.sort_direction > 0 else "-"
        out += "] in " + self.expr(s.base)
        if s.array_slice:
            out += "[" + self._indexes(s.array_slice) + "]"
        if s.sort_direction and s.sort_column == 0:
            if s.sort_aggr in ("count", "avg", "min", "max", "sum"):
                out += " @" + s.sort_aggr
            out += "+" if s.sort_direction > 0 else "-"
        if s.limit is not None:
            out += " limit " + self.expr(s.limit)
        return out + ") " + self.stmt(s.body)

    def s_NullStmt(self, s) -> str:
        return ";"

    def s_ExprStmt(self, s: A.ExprStmt) -> str:
        return self.expr(s.expr)

    def s_ReturnStmt(self, s: A.ReturnStmt) -> str:
        return "return " + self.expr(s.value) if s.value is not None else "return"

    def s_DeleteStmt(self, s: A.DeleteStmt) -> str:
        return "delete " + self.expr(s.value)

    def s_NextStmt(self, s) -> str:
        return "next"

    def s_BreakStmt(self, s) -> str:
        return "break"

    def s_ContinueStmt(self, s) -> str:
        return "continue"

    # -- declarations --------------------------------------------------------------
    def probe_point(self, pp: A.ProbePoint, extras: bool = True) -> str:
        parts = []
        for c in pp.components:
            s = c.functor
            if c.arg is not None:
                s += "(" + self.expr(c.arg) + ")"
            parts.append(s)
        out = ".".join(parts)
        if extras:
            if pp.sufficient:
                out += "!"
            elif pp.optional:
                out += "?"
            if pp.condition is not None:
                out += " if (" + self.expr(pp.condition) + ")"
        return out

    def global_decl(self, g: A.GlobalDecl) -> str:
        s = "global " + g.name
        if g.wrap:
            s += "%"
        if g.maxsize > 0:
            s += f"[{g.maxsize}]"
        if g.init is not None:
            s += " = " + self.expr(g.init)
        return s

    def alias(self, a: A.AliasDecl) -> str:
        sig = " = ".join(self.probe_point(n) for n in a.names)
        sig += " += " if a.epilogue else " = "
        sig += ", ".join(self.probe_point(p) for p in a.points)
        return "probe " + sig + self.stmt(a.body)

    def probe(self, p: A.ProbeDecl) -> str:
        return "probe " + ",".join(self.probe_point(x) for x in p.points) + self.stmt(p.body)

    def function(self, f: A.FunctionDecl) -> str:
        return (f"function {f.name} (" + ", ".join(p.name for p in f.params) + ")\n"
                + self.stmt(f.body))

    def file(self, f: A.StapFile) -> str:
        out = [f"# file {f.name}\n"]
        out.extend("%{" + e.code + "%}" for e in f.embeds)
        out.extend(self.global_decl(g) + "\n" for g in f.globals)
        out.extend(self.alias(a) + "\n" for a in f.aliases)
        out.extend(self.probe(p) + "\n" for p in f.probes)
        out.extend(self.function(fn) + "\n" for fn in f.functions)
        return "".join(out)


def print_file(f: A.StapFile) -> str:
    """The text ``stap -p1`` prints for one file (its ``# file`` line included)."""
    old = sys.getrecursionlimit()
    try:
        sys.setrecursionlimit(max(old, 100000))
        return Printer().file(f)
    finally:
        sys.setrecursionlimit(old)


def probe_point_str(pp: A.ProbePoint, extras: bool = False) -> str:
    return Printer().probe_point(pp, extras)


def expr_str(e: A.Expr) -> str:
    return Printer().expr(e)
