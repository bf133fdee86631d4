"""Which variables a program reads and writes (stap's ``varuse_collecting_visitor``).

Used by the optimiser (unused variables) and by the synthetic ``end`` probe
that prints globals written but never read.  Results are sets of ``id()`` of
:class:`~stap_ls.sema.program.VarInfo`.
"""

from __future__ import annotations

from stap_ls.sema.program import Program, VarInfo
from stap_ls.syntax import ast as A


def _target(e, refs):
    if isinstance(e, A.Symbol):
        return refs.get(id(e))
    if isinstance(e, A.ArrayIndex) and isinstance(e.base, A.Symbol):
        return refs.get(id(e.base))
    return None


def _walk(node, refs, read: set[int], written: set[int]) -> None:
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, A.AssignExpr):
            v = _target(n.left, refs)
            if isinstance(v, VarInfo):
                written.add(id(v))
                if n.op not in ("=", "<<<"):
                    read.add(id(v))
                if isinstance(n.left, A.ArrayIndex):
                    stack.extend(i for i in n.left.indexes if i is not None)
                stack.append(n.right)
                continue
        elif isinstance(n, (A.PreCrement, A.PostCrement)):
            v = _target(n.operand, refs)
            if isinstance(v, VarInfo):
                written.add(id(v))
                read.add(id(v))
        elif isinstance(n, A.DeleteStmt):
            v = _target(n.value, refs)
            if isinstance(v, VarInfo):
                written.add(id(v))
                read.add(id(v))         # stap keeps what a delete names
                if isinstance(n.value, A.ArrayIndex):
                    stack.extend(i for i in n.value.indexes if i is not None)
                continue
        elif isinstance(n, A.ForeachLoop):
            for k in n.indexes:
                v = refs.get(id(k))
                if isinstance(v, VarInfo):
                    written.add(id(v))
            if n.value is not None:
                v = refs.get(id(n.value))
                if isinstance(v, VarInfo):
                    written.add(id(v))
            v = refs.get(id(n.base)) if isinstance(n.base, A.Symbol) else None
            if isinstance(v, VarInfo):
                read.add(id(v))
            stack.extend(x for x in n.array_slice if x is not None)
            if isinstance(n.base, A.HistOp):
                stack.append(n.base)
            if n.limit is not None:
                stack.append(n.limit)
            stack.append(n.body)
            continue
        elif isinstance(n, A.Symbol):
            v = refs.get(id(n))
            if isinstance(v, VarInfo):
                read.add(id(v))
        elif isinstance(n, A.TryBlock):
            if n.catch_var is not None:
                v = refs.get(id(n.catch_var))
                if isinstance(v, VarInfo):
                    written.add(id(v))
            stack.append(n.body)
            stack.append(n.catch_body)
            continue
        stack.extend(A.iter_children(n))


def var_usage(prog: Program) -> tuple[set[int], set[int]]:
    read: set[int] = set()
    written: set[int] = set()
    for dp in prog.probes:
        _walk(dp.body, prog.referents, read, written)
        if dp.condition is not None:
            _walk(dp.condition, prog.referents, read, written)
    for fi in prog.all_functions():
        _walk(fi.body, prog.referents, read, written)
    return read, written
