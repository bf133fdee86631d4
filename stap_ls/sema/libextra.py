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

import os

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
                    res = parse_file(L.read_source(p), ParseOptions(
                        env=lib.env, privileged=True, user_file=False, library_macros=lib.macros))
                    _PARSED[key] = res
            except OSError:
                continue
            lib.files.append(L.LibraryFile(p, res))
    try:
        lib._stap_ls_completed = True
    except AttributeError:
        pass
