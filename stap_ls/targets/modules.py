"""Kernel module names for ``module("NAME")`` probe points.

A module is known from up to three places, read in this order:

* ``/lib/modules/RELEASE/modules.dep`` (what ``depmod`` wrote), or when it is
  absent the directory tree itself (``kernel/**/NAME.ko[.xz|.zst|.gz]``);
* ``/proc/modules`` for the loaded ones (running kernel only);
* module owners in kallsyms (``[name]`` suffixes) and split BTF files beside
  ``/sys/kernel/btf/vmlinux``.

Names follow the kernel's rule: ``-`` in a file name becomes ``_``.  Every
entry says where it came from (a ``.ko`` path, ``loaded`` or ``btf``).  Missing
files give an empty answer, never an exception; a tree walk is bounded
(:data:`WALK_LIMIT` files) so a huge or looping tree cannot hang a request.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

KO_SUFFIXES = (".ko", ".ko.xz", ".ko.zst", ".ko.gz")
WALK_LIMIT = 200_000


@dataclass(frozen=True)
class ModuleInfo:
    name: str
    #: path of the module file when one is known, else ""
    path: str = ""
    #: "modules.dep", "tree", "loaded" (/proc/modules or kallsyms) or "btf"
    source: str = ""


def module_name(filename: str) -> str:
    """``fs/ext4/ext4.ko.xz`` -> ``ext4``; ``snd-hda.ko`` -> ``snd_hda``."""
    base = os.path.basename(filename)
    for sfx in KO_SUFFIXES:
        if base.endswith(sfx):
            base = base[: -len(sfx)]
            break
    return base.replace("-", "_")


def _from_dep(root: str) -> dict[str, ModuleInfo] | None:
    out: dict[str, ModuleInfo] = {}
    try:
        with open(os.path.join(root, "modules.dep"), encoding="utf-8", errors="replace") as f:
            for line in f:
                rel = line.split(":", 1)[0].strip()
                if rel.endswith(KO_SUFFIXES):
                    name = module_name(rel)
                    out.setdefault(name, ModuleInfo(name, os.path.join(root, rel),
                                                    "modules.dep"))
    except OSError:
        return None
    return out


def _from_tree(root: str) -> dict[str, ModuleInfo]:
    out: dict[str, ModuleInfo] = {}
    seen = 0
    # build/ and source/ point at header trees, not at modules
    for sub in ("kernel", "updates", "extra", "misc"):
        top = os.path.join(root, sub)
        if not os.path.isdir(top):
            continue
        for d, _dirs, files in os.walk(top):   # os.walk does not follow symlinks
            for fn in files:
                seen += 1
                if seen > WALK_LIMIT:
                    return out
                if fn.endswith(KO_SUFFIXES):
                    name = module_name(fn)
                    out.setdefault(name, ModuleInfo(name, os.path.join(d, fn), "tree"))
    return out


def _loaded(proc_modules: str) -> list[str]:
    try:
        with open(proc_modules, encoding="utf-8", errors="replace") as f:
            return [ln.split()[0] for ln in f if ln.strip()]
    except OSError:
        return []


def list_modules(root: str, proc_modules: str | None = None,
                 extra_loaded: list[str] | None = None,
                 btf_dir: str | None = None) -> list[ModuleInfo]:
    """Every module of the tree ``root`` plus the loaded ones, sorted by name."""
    found = _from_dep(root)
    if not found:
        found = _from_tree(root)
    for name in _loaded(proc_modules) if proc_modules else []:
        found.setdefault(name, ModuleInfo(name, "", "loaded"))
    for name in extra_loaded or []:
        found.setdefault(name, ModuleInfo(name, "", "loaded"))
    if btf_dir:
        try:
            names = os.listdir(btf_dir)
        except OSError:
            names = []
        for name in names:
            if name != "vmlinux":
                found.setdefault(name, ModuleInfo(name, "", "btf"))
    return sorted(found.values(), key=lambda m: m.name)
