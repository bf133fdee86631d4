"""The kernel's symbol table and tracepoints: kallsyms / System.map and tracefs.

* :class:`KernelSymbols` reads ``/proc/kallsyms`` (or a ``System.map``) lines
  ``ADDR TYPE NAME [MODULE]`` and keeps the text symbols (``t``/``T``/``w``/``W``)
  with the module owning them.  Compiler clones (``foo.isra.0``, ``foo.cold``)
  are dropped, as stap drops them.
* :class:`Tracefs` finds ``events/SYSTEM/EVENT/format`` under a mounted tracefs
  (mounting it with ``mount(2)`` through ctypes when it is not mounted and we
  are allowed to) and parses each format file into fields with their C types.

Neither raises on a missing source: the callers record what is missing.
"""

from __future__ import annotations

import ctypes
import os
import re
from dataclasses import dataclass

from stap_ls.targets import cache
from stap_ls.targets.base import TRACEFS, TargetError, TypeRef, Var

TRACEFS_DIRS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
_TEXT_TYPES = set("tTwW")


@dataclass
class KernelSymbols:
    """Function symbols of the kernel and which module (or ``kernel``) owns them."""

    path: str
    owner: dict[str, str]

    @classmethod
    def load(cls, path: str, use_cache: bool = True) -> KernelSymbols:
        """Read ``path``, reusing the on-disk cache of its parsed form: keyed by
        :func:`~stap_ls.targets.cache.kallsyms_identity` for ``/proc/kallsyms``,
        by the file's size and mtime otherwise."""
        key = _symbols_key(path) if use_cache else None
        if key is not None:
            hit = cache.load("kallsyms", key)
            if isinstance(hit, tuple) and len(hit) == 3:
                names, mods, owners = hit
                try:
                    return cls(path, {n: mods[o] for n, o in zip(names, owners)})
                except (IndexError, TypeError):
                    pass
        syms = cls._read(path)
        if key is not None:
            # compact: names, the distinct owners, and one small int per name
            mods = sorted(set(syms.owner.values()))
            pos = {m: i for i, m in enumerate(mods)}
            cache.store("kallsyms", key, (tuple(syms.owner), tuple(mods),
                                          bytes(pos[m] for m in syms.owner.values())
                                          if len(mods) < 256 else
                                          tuple(pos[m] for m in syms.owner.values())))
        return syms

    @classmethod
    def _read(cls, path: str) -> KernelSymbols:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError as e:
            raise TargetError(f"{path}: {e.strerror}") from None
        return cls.parse(text, path)

    @classmethod
    def parse(cls, text: str, path: str = "<kallsyms>") -> KernelSymbols:
        owner: dict[str, str] = {}
        for line in text.splitlines():
            parts = line.split()
            if len(parts) < 3 or len(parts[1]) != 1:
                continue
            if parts[1] not in _TEXT_TYPES:
                continue
            name = parts[2]
            if "." in name or name.startswith("__pfx_"):
                continue
            mod = parts[3].strip("[]") if len(parts) > 3 else "kernel"
            owner.setdefault(name, mod)
        return cls(path, owner)

    def modules(self) -> set[str]:
        return set(self.owner.values()) - {"kernel"}


def _symbols_key(path: str) -> tuple | None:
    if os.path.realpath(path) == "/proc/kallsyms":
        return cache.kallsyms_identity(path)
    return cache.file_identity(path)


@dataclass
class TracepointFormat:
    system: str
    name: str
    fields: list[Var]


_FIELD = re.compile(r"^\s*field:(.*?);\s*offset:(\d+);\s*size:(\d+);")


def parse_format(text: str, system: str, name: str) -> TracepointFormat:
    """Parse one tracefs ``format`` file; ``common_*`` fields are left out."""
    fields: list[Var] = []
    for line in text.splitlines():
        m = _FIELD.match(line)
        if not m:
            continue
        decl = m.group(1).strip()
        ctype, fname = _split_decl(decl)
        if not fname or fname.startswith("common_"):
            continue
        fields.append(Var(fname, TypeRef(ctype, TRACEFS), "field"))
    return TracepointFormat(system, name, fields)


def _split_decl(decl: str) -> tuple[str, str]:
    """``char prev_comm[16]`` -> (``char[16]``, ``prev_comm``); ``int x`` -> (``int``, ``x``)."""
    dims = ""
    m = re.search(r"(\[[^\]]*\])+$", decl)
    if m:
        dims = m.group(0)
        decl = decl[:m.start()].rstrip()
    m2 = re.search(r"([A-Za-z_][A-Za-z0-9_]*)$", decl)
    if not m2:
        return decl, ""
    name = m2.group(1)
    ctype = decl[:m2.start()].strip()
    ctype = re.sub(r"\s*\*", "*", ctype)
    return ctype + dims, name


class Tracefs:
    """The tracepoints of the running kernel, from a tracefs mount."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._events: dict[str, list[str]] | None = None
        self._formats: dict[tuple[str, str], TracepointFormat | None] = {}

    @classmethod
    def find(cls, mount_if_needed: bool = True) -> Tracefs | None:
        for d in TRACEFS_DIRS:
            if os.path.isdir(os.path.join(d, "events")):
                return cls(d)
        if mount_if_needed and os.path.isdir(TRACEFS_DIRS[0]) and _mount_tracefs(TRACEFS_DIRS[0]):
            if os.path.isdir(os.path.join(TRACEFS_DIRS[0], "events")):
                return cls(TRACEFS_DIRS[0])
        return None

    def events(self) -> dict[str, list[str]]:
        """``{system: [event, ...]}``; systems and events sorted."""
        if self._events is None:
            out: dict[str, list[str]] = {}
            base = os.path.join(self.root, "events")
            try:
                systems = sorted(os.listdir(base))
            except OSError:
                systems = []
            for s in systems:
                sd = os.path.join(base, s)
                if not os.path.isdir(sd):
                    continue
                try:
                    evs = sorted(e for e in os.listdir(sd)
                                 if os.path.isdir(os.path.join(sd, e)))
                except OSError:
                    continue
                if evs:
                    out[s] = evs
            self._events = out
        return self._events

    def format(self, system: str, name: str) -> TracepointFormat | None:
        """The parsed ``format`` file of one event (read once per instance)."""
        key = (system, name)
        if key in self._formats:
            return self._formats[key]
        p = os.path.join(self.root, "events", system, name, "format")
        try:
            with open(p, encoding="utf-8", errors="replace") as f:
                fmt: TracepointFormat | None = parse_format(f.read(), system, name)
        except OSError:
            fmt = None
        self._formats[key] = fmt
        return fmt


def _mount_tracefs(target: str) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        rc = libc.mount(b"nodev", target.encode(), b"tracefs", ctypes.c_ulong(0), None)
        return rc == 0
    except (OSError, AttributeError):
        return False
