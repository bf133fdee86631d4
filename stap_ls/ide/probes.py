"""What a probe offers: its alias chain, concrete points and target variables.

When pass 2 ran, its derived probes answer (concrete point text, alias chain,
``ConcretePoint.target_vars``, from the analysis's pass-2 summary).  Otherwise
this module works it out from pass 1: a tapset alias expands through the
library's alias table (to depth 6), and kernel/process points are resolved with
:func:`stap_ls.sema.targetprobes.resolve_target_point` over the target model.
Resolutions are memoised per environment (they depend on nothing else).
"""

from __future__ import annotations

import fnmatch
import logging
from dataclasses import dataclass, field

from stap_ls.ide.analysis import Analysis
from stap_ls.ide.index import AliasEntry, SymbolTable
from stap_ls.syntax import ast as A
from stap_ls.syntax.printer import probe_point_str

log = logging.getLogger("stap_ls.ide")

MAX_DEPTH = 6


def aliases_for(table: SymbolTable, pp: A.ProbePoint) -> list[AliasEntry]:
    """Library aliases a user probe point names (wildcards allowed)."""
    text = probe_point_str(pp)
    if text in table.aliases:
        return list(table.aliases[text])
    if "*" not in text:
        return []
    pats = [c.functor for c in pp.components]
    if any(c.arg is not None for c in pp.components):
        return []
    out = []
    for lst in table.aliases.values():
        for e in lst:
            if len(e.functors) == len(pats) and all(
                    fnmatch.fnmatchcase(f, p) for f, p in zip(e.functors, pats)):
                out.append(e)
    return out[:200]


@dataclass
class ChainNode:
    """One probe point and what it expands to (an alias's targets)."""
    text: str
    alias: AliasEntry | None = None
    children: list["ChainNode"] = field(default_factory=list)


def expand(table: SymbolTable, pp: A.ProbePoint, depth: int = 0) -> ChainNode:
    node = ChainNode(probe_point_str(pp))
    if depth >= MAX_DEPTH:
        return node
    for e in aliases_for(table, pp)[:20]:
        sub = ChainNode(e.name, e)
        for target in e.decl.points:
            sub.children.append(expand(table, target, depth + 1))
        node.children.append(sub)
    return node


def concrete_points(node: ChainNode) -> list[str]:
    if not node.children:
        return [node.text]
    out: list[str] = []
    for c in node.children:
        out.extend(concrete_points(c) if c.children or c.alias is None else
                   [x for t in c.children for x in concrete_points(t)])
    return out


def _leaf_points(table: SymbolTable, pp: A.ProbePoint, depth: int = 0) -> list[A.ProbePoint]:
    als = aliases_for(table, pp)
    if not als or depth >= MAX_DEPTH:
        return [pp]
    out: list[A.ProbePoint] = []
    for e in als[:20]:
        for t in e.decl.points:
            out.extend(_leaf_points(table, t, depth + 1))
    return out


@dataclass
class TargetInfo:
    vars: list            # targetprobes.TargetVar, unique by name
    points: list          # targetprobes.ConcretePoint
    note: str = ""        # why variables are unknown / missing
    alias_vars: list[str] = field(default_factory=list)


def _resolve(a: Analysis, pp: A.ProbePoint):
    key = ("resolve", probe_point_str(pp))
    memo = a.env.memo
    if key in memo:
        return memo[key]
    out = None
    c = pp.components
    if len(c) >= 2 and c[0].functor in ("kernel", "kprobe") and c[1].functor == "function" \
            and isinstance(c[1].arg, A.StringLit) and not any(ch in c[1].arg.value for ch in "*?[{@"):
        # a quick "is it there": a miss would compute stap's "similar" list (slow)
        from stap_ls.ide.completion import _sorted_kernel_functions
        import bisect
        names = _sorted_kernel_functions(a)
        i = bisect.bisect_left(names, c[1].arg.value)
        if names and (i >= len(names) or names[i] != c[1].arg.value):
            memo[key] = None
            return None
    try:
        from stap_ls.sema.targetprobes import is_target_family, resolve_target_point
        if a.env.model is not None and is_target_family(pp):
            out = resolve_target_point(pp, a.env.model, a.env.options)
    except ImportError:
        out = None
    except Exception:
        log.exception("resolving %s failed", probe_point_str(pp))
        out = None
    memo[key] = out
    return out


def target_info(a: Analysis, points: list[A.ProbePoint], decl_start: int | None = None
                ) -> TargetInfo:
    """Target variables offered inside a probe whose header has ``points``."""
    info = TargetInfo([], [])
    p2 = a.pass2
    if p2 is not None and decl_start is not None:
        info.points.extend(dp.target for dp in p2.probes_of(decl_start) if dp.target is not None)
    if not info.points:
        for pp in points:
            for leaf in _leaf_points(_table(a), pp):
                r = _resolve(a, leaf)
                if r is not None:
                    info.points.extend(r.points[:50])
                if len(info.points) > 50:
                    break
    seen: set[str] = set()
    for p in info.points:
        if p.target_vars is None:
            info.note = info.note or (getattr(p, "missing", "") or
                                      "no debug information for this probe point")
            continue
        for v in p.target_vars:
            if v.name not in seen:
                seen.add(v.name)
                info.vars.append(v)
    table = _table(a)

    def collect(node: ChainNode) -> None:
        for c in node.children:
            if c.alias is not None:
                for body in (c.alias.decl.body, c.alias.decl.body2):
                    for n in A.walk(body) if body is not None else ():
                        if isinstance(n, A.AssignExpr) and isinstance(n.left, A.Symbol) \
                                and n.left.name not in info.alias_vars:
                            info.alias_vars.append(n.left.name)
            collect(c)

    for pp in points:
        collect(expand(table, pp))
    return info


def _table(a: Analysis) -> SymbolTable:
    """The library's aliases with the script's own."""
    t = a.memo.get("aliases")
    if t is None and not a.table.aliases:
        t = a.memo["aliases"] = a.env.table
    if t is None:
        t = SymbolTable(aliases={k: list(v) for k, v in a.env.table.aliases.items()})
        for k, v in a.table.aliases.items():
            t.aliases.setdefault(k, []).extend(v)
        a.memo["aliases"] = t
    return t
