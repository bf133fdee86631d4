"""Symbol resolution (stap's ``symresolution_info``).

Each derived probe body and each function body is walked once.  A name is
looked up, as stap does, in: the locals of the probe or function, the
function's parameters (scalars only), the globals already in the program
(``private`` ones only from their own file), and finally the globals of the
library files — a hit pulls the whole file into the program.  A scalar name
found nowhere becomes a new local; an array name found nowhere is an error.
Function calls collect every overload with the right number of arguments,
from the script and the library (pulling files in), in declaration order.

The results go to ``Program.referents`` (``id(node)`` -> :class:`VarInfo`
or list of :class:`FunctionInfo`).
"""

from __future__ import annotations

from typing import Callable

from stap_ls.sema.derive import SemError
from stap_ls.sema.program import FunctionInfo, Program, VarInfo
from stap_ls.syntax import ast as A
from stap_ls.targets.suggest import suggest
from stap_ls.text import Diagnostic, Related


def ident(name: str) -> str:
    return f"identifier '{name}'"


class SymbolTable:
    """What find_var / find_functions search: the program plus the library."""

    def __init__(self, program: Program, lib_globals: dict[str, list[tuple[str, A.GlobalDecl]]],
                 lib_functions: dict[str, list[tuple[str, A.FunctionDecl]]],
                 pull_file: Callable[[str], None], user_files: set[str]) -> None:
        self.program = program
        self.lib_globals = lib_globals
        self.lib_functions = lib_functions
        self.pull_file = pull_file
        self.user_files = user_files
        #: FunctionInfo per declaration node, created when first resolved
        self.finfo: dict[int, FunctionInfo] = {}
        self.global_list: list[VarInfo] = []
        self.var_of_decl: dict[int, VarInfo] = {}
        #: functions called but not yet resolved
        self.pending: list[FunctionInfo] = []
        #: globals in the order resolution first referred to them (stap lists them so)
        self.ref_order: dict[int, int] = {}

    def add_global(self, g: A.GlobalDecl, file: str, listed: bool = True) -> VarInfo:
        """The VarInfo of ``g`` (one per declaration); ``listed`` puts it in the
        program's globals (stap lists a library global when its file is processed)."""
        v = self.var_of_decl.get(id(g))
        if v is not None:
            if listed and v not in self.global_list:
                self.global_list.append(v)
            return v
        v = VarInfo(g.name, "global", g.name_span or g.span, decl=g, file=file, private=g.private,
                    wrap=g.wrap, maxsize=g.maxsize, init=g.init)
        if g.init is not None:
            v.type = "long" if isinstance(g.init, A.NumberLit) else "string"
            v.type_span = g.init.span
            v.arity = 0
        self.var_of_decl[id(g)] = v
        if listed:
            self.global_list.append(v)
        return v

    def function_info(self, fd: A.FunctionDecl, file: str) -> FunctionInfo:
        fi = self.finfo.get(id(fd))
        if fi is None:
            params = []
            for p in fd.params:
                pv = VarInfo(p.name, "param", p.span, decl=p, file=file, arity=0)
                if p.type:
                    pv.type = p.type
                    pv.type_span = p.span
                params.append(pv)
            fi = FunctionInfo(fd.name, fd, file, params, private=fd.private)
            # stap numbers the definitions of one name in the order it reads them
            # (kernel_string(addr) is __overload_0, kernel_string(addr, err_msg) _1)
            same = [d for _p, d in self.lib_functions.get(fd.name, ()) if not d.private]
            if not fd.private and fd in same:
                fi.overload = same.index(fd)
            if fd.return_type:
                fi.return_type = fd.return_type
                fi.return_span = fd.name_span or fd.span
            self.finfo[id(fd)] = fi
        return fi

    def find_global(self, name: str, file: str) -> VarInfo | None:
        v = self._find_global(name, file)
        if v is not None:
            self.ref_order.setdefault(id(v), len(self.ref_order))
        return v

    def _find_global(self, name: str, file: str) -> VarInfo | None:
        for v in self.global_list:
            if v.name == name and (not v.private or v.file == file):
                return v
        for path, g in self.lib_globals.get(name, ()):
            if g.private and path != file:
                continue
            self.pull_file(path)
            return self.add_global(g, path, listed=False)
        return None

    def all_function_names(self) -> set[str]:
        return set(iter(self.lib_functions))

    def find_functions(self, name: str, arity: int, file: str, span, saw
                       ) -> list[FunctionInfo]:
        found: list[FunctionInfo] = []
        last: tuple[str, A.FunctionDecl] | None = None
        for path, fd in self.lib_functions.get(name, ()):
            if fd.private and path != file:
                continue
            if len(fd.params) == arity:
                self.pull_file(path)
                fi = self.function_info(fd, path)
                found.append(fi)
                self.pending.append(fi)
            else:
                last = (path, fd)
        if not found and last is not None:
            fd = last[1]
            raise SemError(f"arity mismatch found (function '{name}' takes {len(fd.params)} args)",
                           span, saw, related=(Related(fd.name_span or fd.span,
                                                       ident(fd.name)),))
        return found


class Resolver:
    """Resolves one body (a derived probe's or a function's)."""

    def __init__(self, table: SymbolTable, file: str, locals_: list[VarInfo],
                 params: list[VarInfo] | None, errors: list[Diagnostic],
                 in_condition: bool = False) -> None:
        self.t = table
        self.file = file
        self.locals = locals_
        self.params = params
        self.errors = errors
        self.in_condition = in_condition
        self.refs = table.program.referents

    def error(self, e: SemError) -> None:
        self.errors.append(e.diagnostic())

    def _file_of(self, node) -> str:
        span = getattr(node, "span", None)
        return span.source.name if span is not None else self.file

    def find_var(self, name: str, arity: int, node) -> VarInfo | None:
        for v in self.locals:
            if v.name == name:
                self._set_arity(v, arity, node)
                return v
        if arity == 0 and self.params is not None:
            for p in self.params:
                if p.name == name:
                    return p
        v = self.t.find_global(name, self._file_of(node))
        if v is not None:
            self._set_arity(v, arity, node)
        return v

    def _set_arity(self, v: VarInfo, arity: int, node) -> None:
        if arity < 0:
            return
        if arity == 0 and v.maxsize > 0:
            raise SemError("inconsistent arity", node.span, ident(v.name))
        if v.arity >= 0 and v.arity != arity:
            rel = (Related(v.arity_span, f"arity {v.arity} first inferred here: {ident(v.name)}"),) \
                if v.arity_span is not None else ()
            raise SemError(f"inconsistent arity ({v.arity} vs {arity})", node.span,
                           ident(v.name), related=rel)
        if v.arity < 0:
            v.arity = arity
            v.arity_span = node.span

    # -- walking ------------------------------------------------------------------
    def block(self, b: A.Stmt) -> None:
        try:
            self.stmt(b)
        except SemError as e:
            self.error(e)

    def stmt(self, s) -> None:
        if isinstance(s, A.Block):
            for x in s.statements:
                try:
                    self.stmt(x)
                except SemError as e:
                    self.error(e)
        elif isinstance(s, A.ExprStmt):
            self.expr(s.expr)
        elif isinstance(s, A.IfStmt):
            self.expr(s.cond)
            self.stmt(s.then)
            if s.else_ is not None:
                self.stmt(s.else_)
        elif isinstance(s, A.ForLoop):
            for e in (s.init, s.cond, s.incr):
                if e is not None:
                    self.expr(e)
            self.stmt(s.body)
        elif isinstance(s, A.ForeachLoop):
            self.foreach(s)
        elif isinstance(s, A.ReturnStmt):
            if s.value is not None:
                self.expr(s.value)
        elif isinstance(s, A.DeleteStmt):
            self.delete(s.value)
        elif isinstance(s, A.TryBlock):
            self.stmt(s.body)
            if s.catch_var is not None:
                self.symbol(s.catch_var)
            self.stmt(s.catch_body)
        # NullStmt, Next, Break, Continue, EmbeddedCode: nothing to resolve

    def foreach(self, s: A.ForeachLoop) -> None:
        for k in s.indexes:
            self.symbol(k)
        for e in s.array_slice:
            if e is not None:
                self.expr(e)
        if isinstance(s.base, A.Symbol):
            self.array(s.base, len(s.indexes))
            if s.array_slice and len(s.array_slice) != len(s.indexes):
                raise SemError(f"unresolved arity-{len(s.array_slice)} global array "
                               f"{s.base.name}, missing global declaration?",
                               s.base.span, ident(s.base.name))
        else:
            self.expr(s.base)
        if s.value is not None:
            self.symbol(s.value)
        if s.limit is not None:
            self.expr(s.limit)
        self.stmt(s.body)

    def delete(self, e) -> None:
        if isinstance(e, A.Symbol):
            if id(e) in self.refs:
                return
            v = self.find_var(e.name, -1, e)
            if v is None:
                raise SemError("unresolved array in delete statement", e.span, ident(e.name))
            self.refs[id(e)] = v
        elif isinstance(e, A.ArrayIndex):
            self.arrayindex(e, wildcard_ok=True)
        else:
            self.expr(e)

    def array(self, sym: A.Symbol, arity: int, span=None) -> None:
        if id(sym) in self.refs:
            return
        v = self.find_var(sym.name, arity, sym)
        if v is None:
            raise SemError(f"unresolved arity-{arity} global array {sym.name}, "
                           "missing global declaration?", span or sym.span, ident(sym.name))
        self.refs[id(sym)] = v

    def arrayindex(self, e: A.ArrayIndex, wildcard_ok: bool = False) -> None:
        for i in e.indexes:
            if i is None:
                if not wildcard_ok:
                    raise SemError("wildcard not allowed in array index", e.span,
                                   ident(getattr(e.base, "name", "")))
            else:
                self.expr(i)
        if isinstance(e.base, A.Symbol):
            self.array(e.base, len(e.indexes), e.base.span)
        else:
            self.expr(e.base)

    def symbol(self, e: A.Symbol) -> None:
        if id(e) in self.refs:
            return
        v = self.find_var(e.name, 0, e)
        if v is None:
            if self.in_condition:
                raise SemError("probe condition must not reference undeclared global",
                               e.span, ident(e.name))
            v = VarInfo(e.name, "local", e.span, arity=0, arity_span=e.span, file=self.file)
            self.locals.append(v)
        self.refs[id(e)] = v

    def call(self, e: A.FunctionCall) -> None:
        if self.in_condition:
            raise SemError("probe condition must not reference function", e.name_span or e.span,
                           ident(e.name))
        for a in e.args:
            self.expr(a)
        if id(e) in self.refs:
            return
        span = e.name_span or e.span
        fis = self.t.find_functions(e.name, len(e.args), self._file_of(e), span, ident(e.name))
        if not fis:
            sims = suggest(e.name, self.t.all_function_names())
            sim = f" (similar: {', '.join(sims)})" if sims else ""
            raise SemError(f"unresolved function{sim}", span, ident(e.name))
        self.refs[id(e)] = fis

    def expr(self, e) -> None:
        if e is None:
            return
        if isinstance(e, A.Symbol):
            self.symbol(e)
        elif isinstance(e, A.FunctionCall):
            self.call(e)
        elif isinstance(e, A.ArrayIndex):
            self.arrayindex(e)
        elif isinstance(e, A.ArrayIn):
            ai = A.ArrayIndex(e.span, e.base, e.indexes)
            self.arrayindex(ai, wildcard_ok=True)
            if isinstance(e.base, A.Symbol) and id(e.base) in self.refs:
                pass
        elif isinstance(e, A.DefinedOp):
            # @defined(x): x may be a target variable that does not exist; symbols still resolve
            self.expr(e.operand)
        else:
            for c in A.iter_children(e):
                if isinstance(c, A.Component):
                    if c.index is not None:
                        self.expr(c.index)
                elif isinstance(c, A.Expr):
                    self.expr(c)
