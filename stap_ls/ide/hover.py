"""Hover: documentation, alias chains, inferred and target-variable types.

* a tapset function: what ``man function::NAME`` shows (tapdoc), or the
  script function's signature;
* a probe point: the alias's ``man probe::NAME`` text and its alias chain down
  to the concrete points (from pass 2's derived probes when it ran, else from
  the library's alias table and the target model);
* a variable: global/local/parameter and its type (pass 2's inference when it
  ran);

What pass 2 knows comes from the analysis's
:class:`~stap_ls.ide.pass2summary.Pass2Summary` (it may have been computed in
the server's worker process), never from a live ``Program``.
* a ``$target`` variable: its C type and where that came from (DWARF, BTF,
  tracefs);
* an ``@`` operator or macro: its form or definition.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from stap_ls.ide.analysis import Analysis
from stap_ls.ide.completion import AT_OPERATORS
from stap_ls.ide.context import decl_range_at, node_at
from stap_ls.ide.navigation import probe_point_at, symbol_at
from stap_ls.ide.probes import ChainNode, _table, expand, target_info
from stap_ls.syntax import ast as A
from stap_ls.syntax.printer import probe_point_str
from stap_ls.text import Span

SOURCE_NAMES = {"dwarf": "DWARF debug information", "btf": "kernel BTF",
                "tracefs": "tracefs format file", "headers": "kernel headers",
                "symbols": "symbol table", "sdt": "SDT note"}


@dataclass(frozen=True)
class HoverResult:
    markdown: str
    span: Span


def hover(a: Analysis, offset: int) -> HoverResult | None:
    s = symbol_at(a, offset)
    if s is None:
        return None
    if s.kind == "alias":
        return HoverResult(_probe_point_md(a, offset), s.span)
    if s.kind == "function":
        return HoverResult(_function_md(a, s), s.span)
    if s.kind == "target":
        return HoverResult(_target_md(a, offset, s.name), s.span)
    if s.kind == "macro":
        mac = s.decl
        where = ""
        if s.defs:
            d = s.defs[0]
            where = f"\n\ndefined at {os.path.basename(d.source.name)}:{d.start_pos.line}"
        params = f"({', '.join(mac.params)})" if mac is not None and mac.params else ""
        return HoverResult(f"```systemtap\n@define {s.name}{params}\n```{where}", s.span)
    if s.kind == "operator":
        doc = AT_OPERATORS.get(s.name)
        return HoverResult(f"`@{s.name}` — {doc}", s.span) if doc else None
    typ = _inferred_type(a, offset, s.name)
    label = {"global": "global", "local": "local", "param": "parameter"}[s.kind]
    if s.library:
        label = "tapset global"
    alias_note = ""
    if s.kind == "local" and not s.defs:
        r = decl_range_at(a.ranges(), offset)
        from stap_ls.ide.completion import _points_for
        if r is not None and r.kind == "probe" and \
                s.name in target_info(a, _points_for(a, r), r.start).alias_vars:
            label, alias_note = "alias variable", "\n\nset by the probe alias before this body"
    return HoverResult(f"```systemtap\n{label} {s.name}" + (f":{typ}" if typ else "") +
                       "\n```" + alias_note, s.span)


def _inferred_type(a: Analysis, offset: int, name: str) -> str:
    p2 = a.pass2
    if p2 is None:
        return ""
    d = None
    for decl in a.parse.file.decls:
        if decl.span is not None and decl.span.start <= offset <= decl.span.end:
            d = decl
    if d is None:
        return p2.globals.get(name, "")
    node, _ = node_at(d, offset)
    t = p2.type_of(node)
    if not t and isinstance(d, A.GlobalDecl):      # the declaration itself
        t = p2.globals.get(name, "")
    return t


def _function_md(a: Analysis, s) -> str:
    if not s.library and s.decl is not None:
        d = s.decl
        params = ", ".join(f"{p.name}:{p.type}" if p.type else p.name for p in d.params)
        ret = d.return_type or _return_type(a, s.name)
        return f"```systemtap\nfunction {s.name}" + (f":{ret}" if ret else "") + \
            f" ({params})\n```"
    docs = a.env.docs
    md = docs.to_markdown("function", s.name) if docs is not None else None
    if md:
        return md
    if s.decl is not None:
        d = s.decl
        params = ", ".join(f"{p.name}:{p.type}" if p.type else p.name for p in d.params)
        where = s.defs[0].source.name if s.defs else ""
        return f"```systemtap\nfunction {s.name}" + \
            (f":{d.return_type}" if d.return_type else "") + f" ({params})\n```\n\n{where}"
    return f"unknown function `{s.name}`"


def _return_type(a: Analysis, name: str) -> str:
    p2 = a.pass2
    return p2.returns.get(name, "") if p2 is not None else ""


def _chain_lines(node: ChainNode, depth: int, out: list[str], limit: int = 40) -> None:
    for c in node.children:
        if len(out) >= limit:
            return
        label = f"{c.text} (alias, {os.path.basename(c.alias.file)})" if c.alias else c.text
        out.append("  " * depth + "- " + label.replace("*", "\\*"))
        _chain_lines(c, depth + 1, out, limit)


def _probe_point_md(a: Analysis, offset: int) -> str:
    r = decl_range_at(a.ranges(), offset)
    pp = probe_point_at(a, r, offset)
    if pp is None:
        return ""
    text = probe_point_str(pp)
    parts = [f"```systemtap\nprobe {text}\n```"]
    docs = a.env.docs
    md = docs.to_markdown("probe", text) if docs is not None else None
    if md:
        parts.append(md)
    p2 = a.pass2
    derived = []
    if p2 is not None:
        # as before the summary: only a point that is its own innermost point
        # (not an alias) shows pass 2's lines; an alias shows its chain tree
        derived = [dp.display for dp in p2.probes_of(r.start) if dp.leaf == text]
    if derived:
        parts.append("**expands to** (pass 2):\n\n```systemtap\n" +
                      "\n".join(derived[:40]) + "\n```")
    else:
        node = expand(_table(a), pp)
        lines: list[str] = []
        _chain_lines(node, 0, lines)
        if lines:
            parts.append("**alias chain:**\n\n" + "\n".join(lines))
        info = target_info(a, [pp], r.start)
        if info.points:
            srcs = sorted({p.source for p in info.points})
            shown = [p.text for p in info.points[:10]]
            parts.append("**concrete points** (" + ", ".join(SOURCE_NAMES.get(x, x) for x in srcs)
                         + "):\n\n```systemtap\n" + "\n".join(shown) + "\n```")
        if info.note:
            parts.append(f"_{info.note}_")
    return "\n\n".join(parts)


def _target_md(a: Analysis, offset: int, name: str) -> str:
    p2 = a.pass2
    if p2 is not None:
        for decl in a.parse.file.decls:
            if decl.span is not None and decl.span.start <= offset <= decl.span.end:
                node, _ = node_at(decl, offset)
                ref = p2.target_of(node)
                if ref is not None:
                    return _tv_md(name, ref)
    r = decl_range_at(a.ranges(), offset)
    if r is None or r.kind != "probe":
        return f"`{name}`: target variables exist only in probes"
    from stap_ls.ide.completion import _points_for
    info = target_info(a, _points_for(a, r), r.start)
    for v in info.vars:
        if "$" + v.name == name:
            return _tv_md(name, v)
    if name in ("$$vars", "$$parms", "$$locals", "$$return", "$$name"):
        return f"`{name}`: the probe's target variables pretty-printed as a string"
    if info.note:
        return f"`{name}`: unknown here — {info.note}"
    avail = ", ".join("$" + v.name for v in info.vars)
    return f"`{name}`: not a target variable of this probe" + \
        (f" (it has {avail})" if avail else "")


def _tv_md(name: str, v) -> str:
    src = SOURCE_NAMES.get(v.source, v.source)
    return f"```c\n{v.type} {name.lstrip('$')}\n```\n\ntarget variable `{name}` — type from {src}"
