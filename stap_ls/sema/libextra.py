"""Library files that ``load_library`` leaves out but stap reads.

``stap_ls.sema.library`` lets a file hide any later one with the same *base
name*, so ``tapset/logging.stp`` (``exit``, ``warn``, ``log``) is hidden by
``tapset/linux/logging.stp``.  stap reads both: each tapset directory's files
are distinct tapsets.  Until library.py changes (it is not this module's to
change), :func:`complete_library` parses the missing files (through the
public ``parse_file``, kept in memory per process) and appends them, once per
library object.
"""

from __future__ import annotations

import hashlib
import os
import pickle

from stap_ls.sema import library as L
from stap_ls.syntax.parser import ParseOptions, parse_file

_PARSED: dict[tuple[str, int, int], object] = {}


def complete_library(lib) -> None:
    if getattr(lib, "_stap_ls_completed", False) or not lib.files:
        return
    have = {lf.path for lf in lib.files}
    for d in lib.dirs:
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for nm in names:
            p = os.path.join(d, nm)
            if not nm.endswith(".stp") or p in have:
                continue
            try:
                st = os.stat(p)
                key = (p, st.st_size, st.st_mtime_ns)
                res = _PARSED.get(key)
                if res is None:
                    res = _cached_parse(p, key, lib)
                    _PARSED[key] = res
            except OSError:
                continue
            lib.files.append(L.LibraryFile(p, res))
    try:
        lib._stap_ls_completed = True
    except AttributeError:
        pass


def _cached_parse(path: str, key, lib):
    env = lib.env
    h = hashlib.sha1(repr((key, env.kernel_release, env.arch, env.compatible, env.privilege,
                           env.guru, env.runtime, sorted(lib.macros))).encode()).hexdigest()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    cpath = os.path.join(base, "stap-ls", "libextra", h + ".pickle")
    try:
        with open(cpath, "rb") as fh:
            return pickle.load(fh)
    except Exception:  # missing or corrupt: parse again
        pass
    res = parse_file(L.read_source(path), ParseOptions(
        env=env, privileged=True, user_file=False, library_macros=lib.macros))
    res.tokens = []
    try:
        os.makedirs(os.path.dirname(cpath), exist_ok=True)
        tmp = f"{cpath}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            pickle.dump(res, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, cpath)
    except Exception:
        pass
    return res
