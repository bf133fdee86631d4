"""Completion by context.

:func:`complete` looks at the text before the cursor
(:mod:`stap_ls.ide.context`) and answers with plain :class:`CompletionItem`
objects:

* in a probe header, probe points component by component: built-in families
  (:data:`PROBE_TREE`) and tapset aliases, their sub-points and parameters;
  inside a string argument, from the target model: kernel functions,
  tracepoints, module names (``module("``) and their functions, file paths,
  a binary's functions (``name@file:line`` with DWARF), PLT entries, SDT
  providers and marks, and the shared libraries it loads (``.library("``);
  the lists are memoised in ``Environment.memo``, so a request only filters;
* ``@var("``: the variables in scope at the probe's points;
* in a body after ``$``/``$$``, the target variables the probe really has;
  after ``->``, the members of the type reached so far (``$var->a->``,
  ``@var("v")->a->`` or ``@cast(p, "type")->``);
* after ``@``, the ``@`` operators and macros;
* elsewhere, keywords, locals, parameters, globals, functions (with their
  signature; documentation comes with :func:`resolve`), alias variables.

Results are filtered by the typed prefix and capped (:data:`LIMIT`).
"""

from __future__ import annotations

import bisect
import fnmatch
import os
import re
from dataclasses import dataclass, field

from stap_ls.ide.analysis import Analysis
from stap_ls.ide.context import decl_range_at, header_points, in_comment_or_string
from stap_ls.ide.index import decl_at, locals_of
from stap_ls.ide.probes import target_info

LIMIT = 400


@dataclass(frozen=True)
class CompletionItem:
    label: str
    kind: str                 # keyword function variable field module event operator file
    #                           constant snippet property
    detail: str = ""
    documentation: str = ""   # markdown
    insert_text: str | None = None
    snippet: bool = False
    sort: str = ""
    #: what :func:`resolve` needs to add documentation later
    data: dict | None = None


@dataclass
class Completions:
    items: list[CompletionItem] = field(default_factory=list)
    #: offset where the word being completed starts (the client replaces from there)
    start: int = 0
    incomplete: bool = False


STATEMENT_KEYWORDS = ("if", "else", "for", "foreach", "in", "limit", "return", "delete",
                      "while", "break", "continue", "next", "try", "catch")
TOP_KEYWORDS = ("probe", "global", "private", "function")
TYPE_KEYWORDS = ("string", "long")
AT_OPERATORS = {
    "cast": "@cast(ptr, \"type\"[, \"module\"]) — treat a pointer as a C type",
    "var": "@var(\"name@file\"[, \"module\"]) — a variable in scope at the probe",
    "defined": "@defined(expr) — whether a target expression resolves",
    "entry": "@entry(expr) — the value of expr at function entry (in .return probes)",
    "perf": "@perf(\"name\") — a perf counter value",
    "probewrite": "@probewrite(var) — whether a probe writes this global",
    "const": "@const(\"C_CONSTANT\") — a constant from kernel headers (guru mode, -g)",
    "kregister": "@kregister(N) — a kernel register (guru mode, -g)",
    "uregister": "@uregister(N) — a user-space register (guru mode, -g)",
    "kderef": "@kderef(size, addr) — read kernel memory (guru mode, -g)",
    "uderef": "@uderef(size, addr) — read user memory (guru mode, -g)",
    "count": "@count(stats)", "sum": "@sum(stats)", "min": "@min(stats)",
    "max": "@max(stats)", "avg": "@avg(stats)", "variance": "@variance(stats[, N])",
    "hist_linear": "@hist_linear(stats, low, high, width)", "hist_log": "@hist_log(stats)",
    "define": "@define NAME(params) %( body %) — a macro",
}

# probe point families: functor -> (argument kind, children)
_FUNC_SFX: dict = {"call": (None, {}), "return": (None, {"maxactive": ("num", {})}),
                   "inline": (None, {}), "exported": (None, {}), "callee": ("str", {}),
                   "callees": ("opt-num", {}), "label": ("str", {})}
_STMT: dict = {"absolute": (None, {}), "nearest": (None, {})}
_TIMER_UNIT = {"randomize": ("num", {})}
_PROC_FUNCS: dict = {"function": ("str", _FUNC_SFX), "statement": ("str", _STMT),
                     "mark": ("str", {}), "plt": ("opt-str", {"return": (None, {})}),
                     "provider": ("str", {"mark": ("str", {})})}
PROBE_TREE: dict = {
    "begin": ("opt-num", {}), "end": ("opt-num", {}), "error": ("opt-num", {}),
    "never": (None, {}),
    "timer": (None, {**{u: ("num", _TIMER_UNIT) for u in
                        ("s", "sec", "ms", "msec", "us", "usec", "ns", "nsec", "hz",
                         "jiffies")},
                     "profile": (None, {"tick": (None, {})})}),
    "kernel": (None, {"function": ("str", _FUNC_SFX), "statement": ("str", _STMT),
                      "trace": ("str", {}), "mark": ("str", {"format": ("str", {})}),
                      "data": ("num", {"read": (None, {}), "write": (None, {}),
                                       "rw": (None, {}), "length": ("num", {})})}),
    "module": ("str", {"function": ("str", _FUNC_SFX), "statement": ("str", _STMT)}),
    "kprobe": (None, {"function": ("str", {"call": (None, {}), "return": (None, {})}),
                      "statement": ("str", {"absolute": (None, {})}),
                      "module": ("str", {"function": ("str", {"return": (None, {})}),
                                         "statement": ("str", {})})}),
    "process": ("opt-str", {**_PROC_FUNCS,
                            "library": ("str", _PROC_FUNCS),
                            "begin": (None, {}), "end": (None, {}),
                            "thread": (None, {"begin": (None, {}), "end": (None, {})}),
                            "syscall": (None, {"return": (None, {})}),
                            "insn": (None, {"block": (None, {})})}),
    "perf": (None, {"type": ("num", {"config": ("num", {"sample": ("num", {}),
                                                         "process": ("opt-str", {}),
                                                         "counter": ("str", {})})}),
                    "hw": (None, {e: (None, {}) for e in (
                        "cpu_cycles", "instructions", "cache_references", "cache_misses",
                        "branch_instructions", "branch_misses", "bus_cycles")}),
                    "sw": (None, {e: (None, {}) for e in (
                        "cpu_clock", "task_clock", "page_faults", "context_switches",
                        "cpu_migrations", "page_faults_min", "page_faults_maj",
                        "alignment_faults", "emulation_faults")})}),
    "procfs": ("opt-str", {"read": (None, {"maxsize": ("num", {})}), "write": (None, {}),
                           "umask": ("num", {})}),
}

_COMP_RE = re.compile(r'\s*([A-Za-z_*][\w*]*)\s*(?:\(\s*("(?:[^"\\]|\\.)*"|[-\w]+)\s*\))?\s*')


def _word_before(text: str, offset: int) -> int:
    i = offset
    while i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_"):
        i -= 1
    return i


def complete(a: Analysis, offset: int) -> Completions:
    text = a.source.text
    offset = max(0, min(offset, len(text)))
    line_start = text.rfind("\n", 0, offset) + 1
    prefix_line = text[line_start:offset]
    state = in_comment_or_string(prefix_line)
    if state == "comment":
        return Completions(start=offset)
    r = decl_range_at(a.ranges(), offset)
    if r is not None and r.kind == "probe" and (r.body_start < 0 or offset <= r.body_start):
        return _probe_point(a, text[r.start + len("probe"):offset], offset)
    if state == "string":
        m = _VAR_ARG_RE.search(prefix_line)
        if m and r is not None and r.kind == "probe" and r.body_start >= 0:
            return _var_arg(a, r, offset - len(m.group(1)), m.group(1))
        return Completions(start=offset)
    if r is not None and r.kind == "embedded" and offset < r.start + len(_tok_text(a, r)):
        return Completions(start=offset)
    in_body = r is not None and r.body_start >= 0 and r.kind in ("probe", "function")
    before = text[max(0, offset - 400):offset]
    m = re.search(r"(\$\$?\w*)$", before)
    if m and in_body:
        return _dollar(a, r, offset - len(m.group(1)), m.group(1))
    m = re.search(r"->\s*(\w*)$", before)
    if m and in_body:
        return _members(a, r, before[:m.start()], offset - len(m.group(1)), m.group(1))
    m = re.search(r"@(\w*)$", before)
    if m:
        return _at(a, offset - len(m.group(0)), m.group(1))
    start = _word_before(text, offset)
    word = text[start:offset]
    if before[: len(before) - len(word)].rstrip().endswith("."):
        return Completions(start=start)
    if not in_body:
        items = [CompletionItem(k, "keyword") for k in TOP_KEYWORDS if k.startswith(word)]
        if r is not None and r.kind in ("global", "private"):
            items = []
        return Completions(items, start)
    return _body(a, r, start, word)


def _tok_text(a: Analysis, r) -> str:
    t = a.parse.tokens[r.first_tok]
    return a.source.text[t.start:t.end]


# -- probe points ---------------------------------------------------------------
def _probe_point(a: Analysis, header: str, offset: int) -> Completions:
    # the point being typed starts after the last ',' / '=' outside parentheses and strings
    depth, in_str, cut = 0, False, 0
    i = 0
    while i < len(header):
        c = header[i]
        if in_str:
            if c == "\\":
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c in "({":
            depth += 1
        elif c in ")}":
            depth = max(0, depth - 1)
        elif depth == 0 and (c == "," or c == "="):
            cut = i + 1
        i += 1
    point = header[cut:]
    if point.lstrip().startswith("if") or re.search(r"\bif\s*\(", point):
        return Completions(start=offset)
    # complete components, then the part being typed
    comps: list[tuple[str, str | None]] = []
    pos = 0
    while True:
        m = _COMP_RE.match(point, pos)
        if not m or m.end() >= len(point) or point[m.end()] != ".":
            break
        comps.append((m.group(1), m.group(2)))
        pos = m.end() + 1
    rest = point[pos:]
    m = re.match(r'\s*([A-Za-z_*][\w*]*)\s*\(\s*"((?:[^"\\]|\\.)*)$', rest)
    if m:
        return _string_arg(a, comps, m.group(1), m.group(2), offset)
    m = re.match(r"\s*([\w*]*)$", rest)
    if not m:
        return Completions(start=offset)
    word = m.group(1)
    start = offset - len(word)
    return Completions(_components(a, comps, word), start)


def _subtree(comps: list[tuple[str, str | None]]) -> dict | None:
    node: dict | None = PROBE_TREE
    for f, _arg in comps:
        if node is None or f not in node:
            return None
        node = node[f][1]
    return node


def _components(a: Analysis, comps, word: str) -> list[CompletionItem]:
    functors = tuple(f for f, _ in comps)
    items = [it for it in _point_candidates(a, functors) if it.label.startswith(word)]
    if a.table.aliases:        # the script's own aliases: few, not memoised
        seen = {it.label for it in items}
        for name, entries in sorted(a.table.alias_children(functors).items()):
            if name.startswith(word) and name not in seen:
                full = ".".join(functors + (name,))
                leaf = any(len(x.functors) == len(functors) + 1 for x in entries)
                items.append(CompletionItem(
                    name, "event", f"probe alias {full}" if leaf else f"probes {full}.*",
                    sort="1" + name))
    return items[:LIMIT]


def _point_candidates(a: Analysis, functors: tuple[str, ...]) -> list[CompletionItem]:
    """Built-in families and tapset aliases after ``functors``, once per environment."""
    key = ("point-items", functors)
    got = a.env.memo.get(key)
    if got is None:
        got = a.env.memo[key] = _library_components(a, functors)
    return got


def _library_components(a: Analysis, functors: tuple[str, ...]) -> list[CompletionItem]:
    items: list[CompletionItem] = []
    seen: set[str] = set()
    for f, (arg, _kids) in (_subtree([(f, None) for f in functors]) or {}).items():
        seen.add(f)
        ins, snip = f, False
        if arg in ("str", "opt-str"):
            ins, snip = f + '("$1")', True
        elif arg in ("num",):
            ins, snip = f + "(${1:N})", True
        items.append(CompletionItem(f, "module" if not functors else "event",
                                    "probe point family" if not functors else "probe point",
                                    insert_text=ins, snippet=snip))
    for name, entries in sorted(a.env.table.alias_children(functors).items()):
        if name in seen:
            continue
        seen.add(name)
        full = ".".join(functors + (name,))
        leaf = any(len(x.functors) == len(functors) + 1 for x in entries)
        doc = a.env.docs.get("probe", full) if (a.env.docs and leaf) else None
        items.append(CompletionItem(
            name, "event", f"probe alias {full}" if leaf else f"tapset probes {full}.*",
            doc.man_summary if doc else "", sort="1" + name,
            data={"what": "probe", "name": full} if leaf else None))
    return items


def _string_arg(a: Analysis, comps, functor: str, typed: str, offset: int) -> Completions:
    start = offset - len(typed)
    path = [f for f, _ in comps] + [functor]
    model = a.env.model
    items: list[CompletionItem] = []
    incomplete = False
    if path[0] == "process" and len(path) == 1:
        items = _paths(a, typed)
    elif path[0] == "process" and path[-1] == "library":
        items = _library_items(a, _unquote(comps[0][1]), typed)
    elif model is None:
        return Completions(start=start)
    elif path in (["module"], ["kprobe", "module"]):
        items = _module_items(a, typed)
    elif path[-2:-1] == ["module"] and path[-1] in ("function", "statement"):
        items = _module_function_items(a, _unquote(comps[-1][1]), typed)
    elif path[:2] in (["kernel", "function"], ["kernel", "statement"]) or \
            path[:2] in (["kprobe", "function"], ["kprobe", "statement"]):
        names = _sorted_kernel_functions(a)
        i = bisect.bisect_left(names, typed)
        while i < len(names) and names[i].startswith(typed):
            if len(items) >= LIMIT:
                incomplete = True
                break
            items.append(CompletionItem(names[i], "function", "kernel function"))
            i += 1
        if len(items) <= 20:
            items = [_kernel_fn_item(model, it.label) for it in items]
    elif path[:2] == ["kernel", "trace"]:
        for tp in _tracepoints(a):
            if tp.startswith(typed) or tp.split(":", 1)[-1].startswith(typed):
                items.append(CompletionItem(tp, "event", "tracepoint"))
    elif path[0] == "process" and path[-1] in ("function", "statement", "mark", "plt",
                                               "provider"):
        binpath = _process_binary(a, comps)
        if binpath:
            provider = dict(comps).get("provider")
            items = _binary_items(a, binpath, path[-1], typed,
                                  _unquote(provider) if provider else None)
    return Completions(items[:LIMIT], start, incomplete or len(items) > LIMIT)


def _unquote(s: str | None) -> str | None:
    if s and len(s) >= 2 and s[0] == '"':
        return s[1:-1]
    return s


def _sorted_kernel_functions(a: Analysis) -> list[str]:
    key = ("kernel-function-names",)
    names = a.env.memo.get(key)
    if names is None:
        try:
            names = sorted(a.env.model.kernel_function_names())
        except Exception:
            names = []
        a.env.memo[key] = names
    return names


def _kernel_fn_item(model, name: str) -> CompletionItem:
    try:
        fi = model.kernel_function(name)
    except Exception:
        fi = None
    if fi is None:
        return CompletionItem(name, "function", "kernel function")
    where = f"@{fi.file}:{fi.line}" if fi.file and fi.line else ""
    params = " ".join(f"${v.name}:{v.type.name}" for v in fi.params)
    return CompletionItem(name, "function", f"kernel function{where} ({fi.source})",
                          params)


def _tracepoints(a: Analysis) -> list[str]:
    key = ("tracepoint-names",)
    names = a.env.memo.get(key)
    if names is None:
        try:
            names = sorted(t.full_name for t in a.env.model.tracepoints("*:*", with_fields=False))
        except Exception:
            names = []
        a.env.memo[key] = names
    return names


def _paths(a: Analysis, typed: str) -> list[CompletionItem]:
    base = os.path.dirname(a.source.name) if os.path.isabs(a.source.name) else os.getcwd()
    d, part = os.path.split(typed)
    dirs = [os.path.join(base, d) if not os.path.isabs(d) else d] if d else \
        [base] + list(a.env.settings.binary_search_paths)
    items = []
    for dd in dirs:
        try:
            names = sorted(os.listdir(dd or "/"))
        except OSError:
            continue
        for n in names:
            if n.startswith(part) and not (n.startswith(".") and not part.startswith(".")):
                full = os.path.join(dd, n)
                is_dir = os.path.isdir(full)
                label = os.path.join(d, n) if d else (n if dd == base else full)
                items.append(CompletionItem(label + ("/" if is_dir else ""),
                                            "folder" if is_dir else "file"))
                if len(items) > LIMIT:
                    return items
    return items


def _process_binary(a: Analysis, comps) -> str | None:
    """The binary a ``process("P")[.library("L")]...`` point names, resolved."""
    binpath = _unquote(comps[0][1]) if comps and comps[0][1] else None
    lib = dict(comps).get("library")
    if not binpath or not lib:
        return binpath
    pat = _unquote(lib) or ""
    for p in _libraries(a, binpath):
        if fnmatch.fnmatchcase(os.path.basename(p), pat) or fnmatch.fnmatchcase(p, pat) \
                or os.path.realpath(pat) == p:
            return p
    return pat if "/" in pat and os.path.isfile(pat) else None


def _libraries(a: Analysis, binpath: str) -> list[str]:
    key = ("libraries", os.path.realpath(binpath))
    libs = a.env.memo.get(key)
    if libs is None:
        try:
            libs = a.env.model.binary(binpath).libraries()
        except Exception:
            libs = []
        a.env.memo[key] = libs
    return libs


def _library_items(a: Analysis, binpath: str | None, typed: str) -> list[CompletionItem]:
    """``.library("``: the shared libraries the process loads, then file paths."""
    items: list[CompletionItem] = []
    if binpath and a.env.model is not None and "/" not in typed:
        for p in _libraries(a, binpath):
            base = os.path.basename(p)
            if base.startswith(typed):
                items.append(CompletionItem(base, "file", f"library of "
                                            f"{os.path.basename(binpath)}: {p}", sort="0" + base))
    if "/" in typed or not items:
        items += _paths(a, typed)
    return items


def _module_items(a: Analysis, typed: str) -> list[CompletionItem]:
    key = ("module-names",)
    mods = a.env.memo.get(key)
    if mods is None:
        try:
            mods = a.env.model.modules()
        except Exception:
            mods = []
        a.env.memo[key] = mods
    return [CompletionItem(m.name, "module", f"kernel module ({m.source})"
                           + (f" {m.path}" if m.path else ""))
            for m in mods if m.name.startswith(typed)]


def _module_function_items(a: Analysis, module: str | None,
                           typed: str) -> list[CompletionItem]:
    if not module:
        return []
    key = ("module-functions", module)
    fns = a.env.memo.get(key)
    if fns is None:
        try:
            fns = a.env.model.module_function_list(module)
        except Exception:
            fns = []
        a.env.memo[key] = fns
    out, seen = [], set()
    for f in fns:
        if f.name.startswith(typed) and f.name not in seen:
            seen.add(f.name)
            out.append(CompletionItem(f.name, "function",
                                      f"{module} function {f.spec()} ({f.source})"))
    return out


def _binary_items(a: Analysis, path: str, what: str, typed: str,
                  provider: str | None = None) -> list[CompletionItem]:
    try:
        ub = a.env.model.binary(path)
        base = os.path.basename(path)
        out: list[CompletionItem] = []
        seen: set[str] = set()
        if what in ("mark", "provider"):
            for m in ub.marks(provider=provider or "*"):
                label = m.provider if what == "provider" else m.name
                if label.startswith(typed) and label not in seen:
                    seen.add(label)
                    out.append(CompletionItem(
                        label, "event", f"SDT provider of {base}" if what == "provider"
                        else f"SDT mark {m.provider}:{m.name} ({m.nargs} args)"))
            return out
        if what == "plt":
            return [CompletionItem(n, "function", f"{base} PLT entry")
                    for n in sorted(set(ub.plt())) if n.startswith(typed)]
        for f in ub.functions():
            if f.name.startswith(typed) and f.spec() not in seen:
                seen.add(f.spec())
                out.append(CompletionItem(f.name, "function", f"{base} "
                                          f"function {f.spec()} ({f.source})"))
        return out
    except Exception:
        return []


# -- bodies ---------------------------------------------------------------------
def _points_for(a: Analysis, r):
    key = ("points", r.start, r.body_start)
    pts = a.memo.get(key)
    if pts is None:
        pts = a.memo[key] = header_points(a.source, r, a.parse_options())
    return pts


def _dollar(a: Analysis, r, start: int, typed: str) -> Completions:
    if r.kind != "probe":
        return Completions(start=start)
    info = target_info(a, _points_for(a, r), r.start)
    items = []
    for v in info.vars:
        label = "$" + v.name
        if label.startswith(typed):
            items.append(CompletionItem(label, "variable", f"{v.type} ({v.source})",
                                        sort="0" + v.name))
    if info.vars or any(p.target_vars is not None for p in info.points):
        pseudo = ["$$vars", "$$parms", "$$locals", "$$vars$", "$$parms$"]
        if any(getattr(p, "is_return", False) for p in info.points):
            pseudo.append("$$return")
        if any(getattr(p, "family", "") == "kernel.trace" for p in info.points):
            pseudo.append("$$name")
        for p in pseudo:
            if p.startswith(typed):
                items.append(CompletionItem(p, "variable", "pretty-printed target variables",
                                            sort="1" + p))
    detail = info.note
    if not items and detail:
        items.append(CompletionItem(typed or "$", "text", f"no target variables: {detail}",
                                    insert_text=typed))
    return Completions(items, start)


_VAR_ARG_RE = re.compile(r'@var\s*\(\s*"([^"\\@]*)$')


def _var_arg(a: Analysis, r, start: int, typed: str) -> Completions:
    """``@var("``: the variables in scope at the probe's points (target model)."""
    info = target_info(a, _points_for(a, r), r.start)
    items: list[CompletionItem] = []
    seen: set[str] = set()
    for v in info.vars:
        if v.name == "return" or v.name in seen or not v.name.startswith(typed):
            continue
        seen.add(v.name)
        items.append(CompletionItem(v.name, "variable", f"{v.type} ({v.source})",
                                    sort="0" + v.name))
    if not items and info.note:
        items.append(CompletionItem(typed or '"', "text", f"no variables: {info.note}",
                                    insert_text=typed))
    return Completions(items, start)


_CHAIN_RE = re.compile(r"(\$\w+)((?:\s*->\s*\w+)*)\s*$")
_VAR_CHAIN_RE = re.compile(r'@var\s*\(\s*"(\w+)(?:@[^"]*)?"\s*(?:,\s*"[^"]*"\s*)?\)'
                           r"((?:\s*->\s*\w+)*)\s*$")
_CAST_RE = re.compile(r'@cast\s*\((?:[^()]|\([^()]*\))*?,\s*"([^"]+)"\s*(?:,\s*"([^"]*)"\s*)?\)'
                      r"((?:\s*->\s*\w+)*)\s*$")


def _members(a: Analysis, r, before: str, start: int, typed: str) -> Completions:
    model = a.env.model
    if model is None:
        return Completions(start=start)
    ref = None
    names: list[str] = []
    m = _CAST_RE.search(before)
    if m:
        names = re.findall(r"\w+", m.group(3) or "")
        try:
            ref = model.kernel_type(m.group(1).strip())
            if ref is None and m.group(2):
                ref = model.binary(m.group(2)).find_type(m.group(1).strip())
        except Exception:
            ref = None
    else:
        m = _CHAIN_RE.search(before) or _VAR_CHAIN_RE.search(before)
        if m and r.kind == "probe":
            names = re.findall(r"\w+", m.group(2) or "")
            info = target_info(a, _points_for(a, r), r.start)
            want = m.group(1).lstrip("$")
            for v in info.vars:
                if v.name == want:
                    ref = v.type_ref
                    break
    if ref is None:
        return Completions(start=start)
    try:
        if names:
            ch = model.resolve_chain(ref, names)
            ref = ch.type
        members = model.members(ref) if ref is not None else []
    except Exception:
        members = []
    items = [CompletionItem(mm.name, "field", mm.type.name, sort=mm.name)
             for mm in members if mm.name and mm.name.startswith(typed)]
    return Completions(items, start)


def _at(a: Analysis, start: int, typed: str) -> Completions:
    items = [CompletionItem("@" + k, "operator", v.split(" — ")[0], v)
             for k, v in AT_OPERATORS.items() if k.startswith(typed)]
    macros = dict(a.env.table.macros)
    for t_i, t in enumerate(a.parse.tokens):
        if t.value == "@define" and t_i + 1 < len(a.parse.tokens):
            nxt = a.parse.tokens[t_i + 1]
            macros.setdefault(nxt.value, None)
    for name, mac in sorted(macros.items()):
        if name.startswith(typed):
            params = f"({', '.join(mac.params)})" if mac is not None and mac.params else ""
            where = f"tapset macro ({os.path.basename(mac.tok.source.name)})" \
                if mac is not None else "macro"
            items.append(CompletionItem("@" + name, "constant", f"@{name}{params}  {where}"))
    return Completions(items[:LIMIT], start)


def _library_function_items(a: Analysis) -> list[CompletionItem]:
    key = ("function-items",)
    items = a.env.memo.get(key)
    if items is None:
        items = []
        docs = a.env.docs
        for name, entries in sorted(a.env.table.functions.items()):
            if all(e.decl.private for e in entries):
                continue
            doc = docs.get("function", name) if docs else None
            items.append(CompletionItem(
                name, "function", entries[0].signature + (f" — {doc.man_summary}" if doc else ""),
                insert_text=name + "($0)" if not entries[0].decl.params else name + "($1)",
                snippet=True, sort=("3" if name.startswith("_") else "2") + name,
                data={"what": "function", "name": name}))
        a.env.memo[key] = items
    return items


def _body(a: Analysis, r, start: int, word: str) -> Completions:
    items: list[CompletionItem] = []
    for k in STATEMENT_KEYWORDS:
        if k.startswith(word):
            items.append(CompletionItem(k, "keyword", sort="4" + k))
    user_globals = set(a.table.globals)
    decl = decl_at(a.parse.file, r.start + 1, a.source.name)
    local_names: dict[str, str] = {}
    if decl is not None:
        for lv in locals_of(decl, user_globals | set(a.env.table.globals)).values():
            local_names[lv.name] = lv.kind
    else:
        # the declaration does not parse yet: identifiers already typed in it
        end = start
        for t in a.parse.tokens[r.first_tok:]:
            if t.start >= end:
                break
            if t.kind == "identifier" and t.value[0] not in "$@" and t.start != start:
                local_names.setdefault(t.value, "local")
    for name, kind in local_names.items():
        if name.startswith(word) and name not in user_globals and name != word \
                and name not in a.table.functions and name not in a.env.table.functions:
            items.append(CompletionItem(name, "variable", kind, sort="0" + name))
    if r.kind == "probe":
        for v in target_info(a, _points_for(a, r), r.start).alias_vars:
            if v.startswith(word) and v not in local_names:
                items.append(CompletionItem(v, "variable", "set by the probe alias",
                                            sort="0" + v))
    for name, g in a.table.globals.items():
        if name.startswith(word):
            items.append(CompletionItem(name, "variable", "global", sort="1" + name))
    for name, entries in a.table.functions.items():
        if name.startswith(word):
            items.append(CompletionItem(name, "function", entries[0].signature,
                                        insert_text=name + "($1)", snippet=True,
                                        sort="1" + name))
    count = 0
    for it in _library_function_items(a):
        if it.label.startswith(word) and it.label not in a.table.functions:
            items.append(it)
            count += 1
            if count >= LIMIT:
                break
    return Completions(items, start, count >= LIMIT)


def resolve(a_env, item_data: dict | None) -> str:
    """Documentation for an item :func:`complete` returned with ``data``."""
    if not item_data or a_env.docs is None:
        return ""
    what, name = item_data.get("what"), item_data.get("name")
    if what in ("function", "probe") and isinstance(name, str):
        return a_env.docs.to_markdown(what, name) or ""
    return ""
