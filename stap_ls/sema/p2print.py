"""Print an elaborated program as ``stap -p2`` does.

Sections, each only when not empty: ``# global embedded code`` (the
top-level ``%{ %}`` blocks of the files used), ``# globals`` (``name:type``,
``%`` for wrapping arrays, ``[N]`` for a size, key types in brackets),
``# functions`` (sorted by name: ``name:return (param:type, ...)``) and
``# probes`` (the concrete point, its alias-chain comment, then its locals
with types).  Names in printed expressions are mangled as stap mangles them
(``__global_x``, ``__global_f__overload_0``).
"""

from __future__ import annotations

import re

from stap_ls.sema.program import DerivedProbe, FunctionInfo, Program, VarInfo
from stap_ls.syntax import ast as A
from stap_ls.syntax.printer import Printer


class MangledPrinter(Printer):
    def __init__(self, prog: Program, overloads: dict[int, int]) -> None:
        super().__init__()
        self.prog = prog
        self.overloads = overloads

    def e_Symbol(self, e: A.Symbol) -> str:
        v = self.prog.referents.get(id(e))
        if isinstance(v, VarInfo) and v.kind == "global":
            return mangled(e.name, v.file, v.private)
        return e.name

    def s_DeleteStmt(self, s: A.DeleteStmt) -> str:
        if isinstance(s.value, A.Symbol):         # stap prints a whole array unmangled
            return "delete " + s.value.name
        return super().s_DeleteStmt(s)

    def e_FunctionCall(self, e: A.FunctionCall) -> str:
        fis = self.prog.referents.get(id(e))
        name = e.name
        if fis and fis[0].private:
            name = mangled(fis[0].name, fis[0].file, True)
        elif fis:
            n = fis[0].overload or self.overloads.get(id(fis[0]), 0)
            name = f"__global_{e.name}__overload_{n}"
        return f"{name}({', '.join(self.expr(a) for a in e.args)})"


def detox_path(path: str) -> str:
    """stap's file-name mangling for private symbols: every non-alphanumeric is '_'."""
    return re.sub(r"[^A-Za-z0-9]", "_", path) + "_"


def mangled(name: str, file: str, private: bool) -> str:
    return f"__private_{detox_path(file)}{name}" if private else f"__global_{name}"


def var_sig(v: VarInfo) -> str:
    s = v.name
    if v.wrap:
        s += "%"
    if v.maxsize > 0:
        s += f"[{v.maxsize}]"
    s += ":" + v.type
    if v.index_types:
        s += " [" + ", ".join(v.index_types) + "]"
    return s


def function_key(fi: FunctionInfo) -> str:
    """stap's key for ``fi`` in its function map, i.e. the listing order: the mangled
    name (``__global_f__overload_0`` sorts ``reportline2`` before ``reportline``)."""
    if fi.private:
        return mangled(fi.name, fi.file, True)
    return f"__global_{fi.name}__overload_{fi.overload}"


def _synthetic(fi: FunctionInfo) -> bool:
    return fi.decl is not None and fi.decl.span is None


def function_sig(fi: FunctionInfo) -> str:
    # stap lists a function by its unmangled name; the functions it generates
    # (dwarf_cast_get_cast_N, ...) are named with their file's private prefix
    name = mangled(fi.name, fi.file, True) if fi.private and _synthetic(fi) else fi.name
    return f"{name}:{fi.return_type} (" + ", ".join(f"{p.name}:{p.type}" for p in fi.params) + ")"


def probe_header(dp: DerivedProbe, printer: Printer) -> str:
    text = dp.text
    if dp.condition is not None:
        cond = " if (" + printer.expr(dp.condition) + ")"
        text += cond
        chain = list(dp.chain)
        chain[-1] = chain[-1]
        return text + " /* <- " + " <- ".join(chain[:-1] + [_with_cond(chain[-1], cond)]) + " */"
    return text + dp.comment


def _with_cond(s: str, cond: str) -> str:
    return s if s.endswith(cond) else s + cond


def reached_functions(prog: Program) -> list[FunctionInfo]:
    from stap_ls.sema.optimize import reachable_functions
    keep = reachable_functions(prog)
    return [f for f in prog.all_functions() if id(f) in keep]


def print_program(prog: Program, overloads: dict[int, int] | None = None,
                  verbose: bool = False) -> str:
    pr = MangledPrinter(prog, overloads or {})
    out: list[str] = []
    if prog.embeds:
        out.append("# global embedded code\n")
        for e in prog.embeds:
            out.append("%{" + e.code + "%}\n")
    used = _used_globals(prog)
    gl = [v for v in prog.globals.values() if id(v) in used]
    if gl:
        out.append("# globals\n")
        out.extend(var_sig(v) + "\n" for v in gl)
    from stap_ls.sema.synth import synthetic_functions, tracepoint_locals
    fns = sorted(reached_functions(prog) + synthetic_functions(prog),
                 key=function_key)
    if fns:
        out.append("# functions\n")
        for f in fns:
            out.append(function_sig(f) + "\n")
            if f.locals:
                out.append("  # locals\n")
                out.extend("  " + var_sig(v) + "\n" for v in f.locals)
            if verbose and isinstance(f.body, A.EmbeddedCode):
                out.append("{ %{" + f.body.code + "%} }\n")
            elif verbose:
                out.append("{ " + pr.stmt(f.body) + " }\n")
    if prog.probes:
        out.append("# probes\n")
        for dp in prog.probes:
            out.append(probe_header(dp, pr) + "\n")
            locals_ = tracepoint_locals(prog, dp) + dp.locals
            if locals_:
                out.append("  # locals\n")
                out.extend("  " + var_sig(v) + "\n" for v in locals_)
            if verbose:
                out.append("{ " + pr.stmt(dp.body) + " }\n")
    return "".join(out)


def _used_globals(prog: Program) -> set[int]:
    from stap_ls.sema.usage import var_usage
    read, written = var_usage(prog)
    return read | written
