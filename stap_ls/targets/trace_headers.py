"""Tracepoints of a kernel release from its headers (for ``-r`` another release).

stap finds tracepoints by compiling the kernel's ``include/trace/events/*.h``;
without running a compiler we read the same headers: ``#define TRACE_SYSTEM``
names the system, and ``TRACE_EVENT``/``DECLARE_EVENT_CLASS``/``DEFINE_EVENT``/
``DECLARE_TRACE`` (and their ``_FN``/``_CONDITION``/``_PRINT`` variants) give
each tracepoint's ``TP_PROTO`` arguments.  Argument types are respelled as gcc's
DWARF spells them (``unsigned long`` -> ``long unsigned int``,
``const char *`` -> ``char const*``) because that is what stap prints.
"""

from __future__ import annotations

import glob
import os
import re

from stap_ls.targets import cache
from stap_ls.targets.base import HEADERS, TypeRef, Var

_BASE = {
    "unsigned": "unsigned int", "signed": "int", "long": "long int",
    "unsigned long": "long unsigned int", "long unsigned": "long unsigned int",
    "signed long": "long int", "long long": "long long int",
    "unsigned long long": "long long unsigned int", "short": "short int",
    "unsigned short": "short unsigned int", "signed short": "short int",
    "unsigned long int": "long unsigned int", "unsigned short int": "short unsigned int",
    "unsigned long long int": "long long unsigned int", "signed int": "int",
}
_MACRO = re.compile(r"\b(TRACE_EVENT(?:_FN|_CONDITION|_FN_COND)?|DECLARE_EVENT_CLASS|"
                    r"DEFINE_EVENT\w*|DECLARE_TRACE(?:_CONDITION)?)\s*\(")
_SYSTEM = re.compile(r"^\s*#\s*define\s+TRACE_SYSTEM\s+(\w+)", re.M)


def header_dirs(build_dir: str) -> list[str]:
    """The build tree and, for Debian's split packages, its ``-common`` source tree."""
    dirs = [build_dir]
    mk = os.path.join(build_dir, "Makefile")
    try:
        with open(mk, encoding="utf-8", errors="replace") as f:
            m = re.search(r"^include\s+(\S+)/Makefile", f.read(), re.M)
        if m:
            dirs.append(m.group(1))
    except OSError:
        pass
    return dirs


def header_files(build_dir: str) -> list[str]:
    """The ``include/trace/events/*.h`` files scanned, in scan order."""
    out: list[str] = []
    for d in header_dirs(build_dir):
        out.extend(sorted(glob.glob(os.path.join(d, "include/trace/events/*.h"))))
    return out


def scan_trace_headers(build_dir: str, use_cache: bool = True) -> dict[str, list[Var]]:
    """``{"system:name": [args]}`` for every tracepoint defined in the headers."""
    return {name: header_vars(args)
            for name, args in trace_header_index(build_dir, use_cache).items()}


def header_vars(args: tuple[tuple[str, str], ...]) -> list[Var]:
    """The arguments of one :func:`trace_header_index` entry as variables."""
    return [Var(a, TypeRef(t, HEADERS), "arg") for a, t in args]


def trace_header_index(build_dir: str, use_cache: bool = True
                       ) -> dict[str, tuple[tuple[str, str], ...]]:
    """``{"system:name": ((arg, type spelling), ...)}``: the scan as plain tuples.

    Cached on disk keyed by every scanned header's path, size and mtime (a
    changed, added or removed header rescans); callers turn only the entries
    they need into :class:`Var` s (:func:`header_vars`)."""
    paths = header_files(build_dir)
    key = (os.path.realpath(build_dir), tuple(cache.file_identity(p) for p in paths))
    if use_cache:
        hit = cache.load("trace-headers", key)
        if isinstance(hit, dict):
            return hit
    out = {name: tuple((v.name, v.type.name) for v in args)
           for name, args in _scan(paths).items()}
    if use_cache:
        cache.store("trace-headers", key, out)
    return out


def _scan(paths: list[str]) -> dict[str, list[Var]]:
    out: dict[str, list[Var]] = {}
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            continue
        for k, v in parse_trace_header(text).items():
            out.setdefault(k, v)
    return out


def parse_trace_header(text: str) -> dict[str, list[Var]]:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    m = _SYSTEM.search(text)
    if not m:
        return {}
    system = m.group(1)
    classes: dict[str, list[Var]] = {}
    out: dict[str, list[Var]] = {}
    for mm in _MACRO.finditer(text):
        if text[:mm.start()].rstrip().endswith("#define"):
            continue
        args = _balanced(text, mm.end() - 1)
        if args is None:
            continue
        parts = _split_top(args)
        kind = mm.group(1)
        if kind.startswith("DEFINE_EVENT"):
            if len(parts) < 2:
                continue
            cls, name = parts[0].strip(), parts[1].strip()
            proto = _proto_of(parts[2:])
            out[f"{system}:{name}"] = proto if proto is not None else classes.get(cls, [])
            continue
        if not parts:
            continue
        name = parts[0].strip()
        proto = _proto_of(parts[1:]) or []
        if kind == "DECLARE_EVENT_CLASS":
            classes[name] = proto
        else:
            out[f"{system}:{name}"] = proto
    return out


def _proto_of(parts: list[str]) -> list[Var] | None:
    for p in parts:
        p = p.strip()
        if p.startswith("TP_PROTO"):
            inner = _balanced(p, p.index("("))
            if inner is None:
                return None
            return [v for v in (_param(x) for x in _split_top(inner)) if v is not None]
    return None


def _param(decl: str) -> Var | None:
    decl = " ".join(decl.replace("__user", " ").split())
    if not decl or decl == "void":
        return None
    m = re.match(r"^(.*?)([A-Za-z_]\w*)\s*((?:\[[^\]]*\])*)$", decl)
    if not m:
        return None
    ctype, name, dims = m.group(1).strip(), m.group(2), m.group(3)
    return Var(name, TypeRef(c_type_to_stap(ctype) + ("[]" if dims else ""), HEADERS), "arg")


def c_type_to_stap(ctype: str) -> str:
    """Spell a C declaration's type as gcc DWARF + stap would: ``char const*``."""
    stars = ctype.count("*")
    base = ctype.replace("*", " ")
    words = base.split()
    quals = [w for w in words if w in ("const", "volatile")]
    core = " ".join(w for w in words if w not in ("const", "volatile"))
    core = _BASE.get(core, core)
    s = core + "".join(" " + q for q in quals)
    return s + "*" * stars


def _balanced(text: str, open_idx: int) -> str | None:
    depth = 0
    for i in range(open_idx, min(len(text), open_idx + 20000)):
        c = text[i]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return text[open_idx + 1:i]
    return None


def _split_top(s: str) -> list[str]:
    out, depth, cur = [], 0, []
    for c in s:
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c == "," and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(c)
    if "".join(cur).strip():
        out.append("".join(cur))
    return out
