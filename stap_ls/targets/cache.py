"""An on-disk cache of target indexes (BTF scans, binary function indexes).

Entries live under ``$XDG_CACHE_HOME/stap-ls`` (or ``~/.cache/stap-ls``), one
pickle file each, named by a hash of the entry's key.  The file holds the
format version, the full key and the data; an entry whose version or key
differs, or that cannot be unpickled (truncated, corrupt), is ignored and
rebuilt by the caller.  Writes go to a temporary file then ``os.replace``, so
a reader never sees half an entry.  Setting ``STAP_LS_NO_CACHE=1`` turns the
cache off.

Keys say what an entry was computed from, so a changed input misses:
:func:`file_identity` (path, size, mtime) for ordinary files and
:func:`kallsyms_identity` for ``/proc/kallsyms``, whose size and mtime mean
nothing (the boot id, the release and the loaded modules instead).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from typing import Any

#: bump when anything pickled here changes shape
CACHE_VERSION = 4


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "stap-ls")


def enabled() -> bool:
    return os.environ.get("STAP_LS_NO_CACHE", "") not in ("1", "yes", "true")


def entry_path(kind: str, key: tuple) -> str:
    digest = hashlib.sha1(repr((CACHE_VERSION, kind, key)).encode()).hexdigest()[:24]
    return os.path.join(cache_dir(), f"{kind}-{digest}.pickle")


def load(kind: str, key: tuple) -> Any | None:
    """The cached data for ``key``, or ``None`` when absent, stale or corrupt."""
    if not enabled():
        return None
    path = entry_path(kind, key)
    try:
        with open(path, "rb") as f:
            blob = pickle.load(f)
    except FileNotFoundError:
        return None
    except Exception:  # noqa: BLE001 - a corrupt entry is simply rebuilt
        _discard(path)
        return None
    if (not isinstance(blob, dict) or blob.get("version") != CACHE_VERSION
            or blob.get("kind") != kind or blob.get("key") != key):
        return None
    return blob.get("data")


def store(kind: str, key: tuple, data: Any) -> bool:
    """Write an entry; failures (read-only home, full disk) are ignored."""
    if not enabled():
        return False
    path = entry_path(kind, key)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            pickle.dump({"version": CACHE_VERSION, "kind": kind, "key": key, "data": data},
                        f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
        return True
    except OSError:
        return False


def _discard(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


BOOT_ID = "/proc/sys/kernel/random/boot_id"


def file_identity(path: str) -> tuple | None:
    """(real path, size, mtime in ns) of a file, or ``None`` when it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (os.path.realpath(path), st.st_size, st.st_mtime_ns)


def _read_small(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def kallsyms_identity(path: str, boot_id_path: str = BOOT_ID,
                      modules_path: str = "/proc/modules") -> tuple | None:
    """What ``/proc/kallsyms`` depends on: this boot, the release and the modules
    loaded now (a module load adds symbols).  ``None`` when the boot id is not
    readable (then nothing is cached)."""
    boot = _read_small(boot_id_path).strip()
    if not boot:
        return None
    mods = _read_small(modules_path)
    names = tuple(sorted(line.split()[0] for line in mods.splitlines() if line.split()))
    digest = hashlib.sha1("\n".join(names).encode()).hexdigest()
    return (os.path.realpath(path), boot, os.uname().release, digest)
