"""stap's pass-2 optimisations that change what ``-p2`` shows (skipped under ``-u``).

``optimize_functions`` is ``semantic_pass_opt1``: functions that no probe
reaches, directly or through other functions, are dropped from the program.
"""

from __future__ import annotations

from stap_ls.sema.program import FunctionInfo, Program
from stap_ls.syntax import ast as A


def _calls(node, refs) -> list[FunctionInfo]:
    out: list[FunctionInfo] = []
    for n in A.walk(node):
        if isinstance(n, A.FunctionCall):
            fis = refs.get(id(n))
            if fis:
                out.extend(fis)
    return out


def reachable_functions(prog: Program) -> set[int]:
    seen: set[int] = set()
    work: list[FunctionInfo] = []
    for dp in prog.probes:
        work.extend(_calls(dp.body, prog.referents))
        if dp.condition is not None:
            work.extend(_calls(dp.condition, prog.referents))
    while work:
        fi = work.pop()
        if id(fi) in seen:
            continue
        seen.add(id(fi))
        if isinstance(fi.decl.body, A.Block):
            work.extend(_calls(fi.decl.body, prog.referents))
    return seen


def optimize_functions(prog: Program) -> None:
    keep = reachable_functions(prog)
    for name in list(prog.functions):
        fis = [f for f in prog.functions[name] if id(f) in keep]
        if fis:
            prog.functions[name] = fis
        else:
            del prog.functions[name]
