"""The tapset library: where it is, its macros, and its parsed files.

stap reads its library from the tapset directory (``SYSTEMTAP_TAPSET`` or the
installed ``tapset/``) and each ``-I DIR``, each expanded to the runtime's and
architecture's (and kernel version's) subdirectories.  A file is read once
(by inode) and one below a later root is hidden by one at the same relative
path below an earlier root, as stap does.  ``.stpm`` files hold macros that every
script and tapset may use; ``.stp`` files are parsed as privileged code.

Parsing the whole library is pass 1's largest cost, so it is cached on disk
in one directory per preprocessor environment and parser version: a small
index (per file: size, mtime, functions, probe aliases, globals, diagnostics)
and one file of pickled trees.  A warm start reads only the index; a tree is
unpickled when ``LibraryFile.result`` is first used, so pass 2 can find the
files it needs by name (``files_defining_function`` ...) and load just those.
A changed or new tapset file is parsed again.  A cold cache is filled on two
processes, which hand back pickled bytes rather than trees.

Files of the built-in tapset directory are parsed with every language feature
whatever ``--compatible`` says (stap's ``pf_no_compatible``); ``-I``
directories follow ``--compatible``.
"""

from __future__ import annotations

import gc
import hashlib
import os
import pickle

from dataclasses import dataclass, field

from stap_ls.sema.tapdoc import dir_files, tapset_search_dirs
from stap_ls.syntax.lexer import atwords_for
from stap_ls.syntax.parser import GRAMMAR_FILE, ParseOptions, ParseResult, parse_file, tokenize
from stap_ls.syntax.preprocessor import Macro, PPEnv, PPError, parse_library_macros
from stap_ls.syntax.printer import probe_point_str
from stap_ls.text import Diagnostic, Related, Severity, SourceFile, Span

DEFAULT_TAPSET_ROOT = "/usr/share/systemtap/tapset"
_CACHE_VERSION = "2"


def tapset_root() -> str:
    return os.environ.get("SYSTEMTAP_TAPSET") or DEFAULT_TAPSET_ROOT


def read_source(path: str) -> SourceFile:
    """Read a script or tapset file; undecodable bytes are kept (surrogateescape)."""
    with open(path, "rb") as fh:
        data = fh.read()
    return SourceFile(path, data.decode("utf-8", "surrogateescape"))


def search_roots(include_dirs: list[str], env: PPEnv) -> list[tuple[str, list[str]]]:
    """Each include root (the tapset root first, then ``-I`` dirs) with its
    search directories, most specific first."""
    return [(root, tapset_search_dirs(root, env.arch, env.runtime, env.kernel_release))
            for root in [tapset_root(), *include_dirs]]


def search_dirs(include_dirs: list[str], env: PPEnv) -> list[str]:
    out: list[str] = []
    for _root, dirs in search_roots(include_dirs, env):
        for d in dirs:
            if d not in out:
                out.append(d)
    return out


def library_files(include_dirs: list[str], env: PPEnv, suffix: str) -> list[str]:
    """The library files stap reads, in its order.  As stap's pass 1a: every
    file of every search directory, sorted by name within a directory; a file
    is skipped when the same inode was seen, or when its path below its
    include root was seen under an earlier root (``-I dir/foo.stp`` is hidden
    by the tapset's ``foo.stp``, but ``linux/foo.stp`` and ``foo.stp`` are
    both read)."""
    seen_inodes: set[tuple[int, int]] = set()
    seen_tails: set[str] = set()
    files: list[str] = []
    for root, dirs in search_roots(include_dirs, env):
        for d in dirs:
            for path, st in dir_files(d, suffix):
                if (st.st_dev, st.st_ino) in seen_inodes:
                    continue
                tail = path[len(os.path.normpath(root)):]
                if tail in seen_tails:
                    continue
                seen_inodes.add((st.st_dev, st.st_ino))
                seen_tails.add(tail)
                files.append(path)
    return files


def builtin_dirs(env: PPEnv) -> set[str]:
    """The directories of the built-in tapset (the first search path): their
    files use every language feature whatever ``--compatible`` says."""
    return set(tapset_search_dirs(tapset_root(), env.arch, env.runtime, env.kernel_release))


@dataclass
class FileSummary:
    """What pass 2 needs to know about a library file before loading its tree."""

    functions: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)     # alias names, as printed
    globals: list[str] = field(default_factory=list)
    probes: int = 0
    diagnostics: list[Diagnostic] = field(default_factory=list)


def summarize(result: ParseResult) -> FileSummary:
    f = result.file
    return FileSummary([d.name for d in f.functions],
                       [probe_point_str(n) for a in f.aliases for n in a.names],
                       [g.name for g in f.globals], len(f.probes), list(result.diagnostics))


class LibraryFile:
    """One parsed tapset file.  ``result`` (the :class:`ParseResult`) is loaded
    from the cache on first use; ``summary`` is always there."""

    __slots__ = ("path", "_result", "_loader", "_summary")

    def __init__(self, path: str, result: ParseResult | None = None,
                 summary: FileSummary | None = None, loader=None) -> None:
        self.path = path
        self._result = result
        self._loader = loader
        self._summary = summary

    @property
    def loaded(self) -> bool:
        return self._result is not None

    @property
    def result(self) -> ParseResult:
        if self._result is None:
            self._result = self._loader()
            self._loader = None
        return self._result

    @result.setter
    def result(self, value: ParseResult) -> None:
        self._result = value

    @property
    def summary(self) -> FileSummary:
        if self._summary is None:
            self._summary = summarize(self.result)
        return self._summary

    def __repr__(self) -> str:
        return f"LibraryFile({self.path!r}, loaded={self.loaded})"


@dataclass
class TapsetLibrary:
    dirs: list[str]
    env: PPEnv
    macros: dict[str, Macro] = field(default_factory=dict)
    macro_diagnostics: list[Diagnostic] = field(default_factory=list)
    files: list[LibraryFile] = field(default_factory=list)
    #: how the files were obtained: "cache" (all from the cache), "parsed", "mixed"
    origin: str = ""
    #: the .stpm files read, in stap's order
    macro_files: list[str] = field(default_factory=list)

    @property
    def diagnostics(self) -> list[Diagnostic]:
        out = list(self.macro_diagnostics)
        for f in self.files:
            out.extend(f.summary.diagnostics)
        return out

    def _table(self, attr: str) -> dict[str, list[LibraryFile]]:
        cache = self.__dict__.setdefault("_tables", {})
        table = cache.get(attr)
        if table is None:
            table = {}
            for f in self.files:
                for name in getattr(f.summary, attr):
                    table.setdefault(name, []).append(f)
            cache[attr] = table
        return table

    def files_defining_function(self, name: str) -> list[LibraryFile]:
        """The files that define function ``name`` (without loading any tree)."""
        return self._table("functions").get(name, [])

    def files_defining_alias(self, name: str) -> list[LibraryFile]:
        """The files that define probe alias ``name`` (e.g. ``vfs.read``)."""
        return self._table("aliases").get(name, [])

    def files_defining_global(self, name: str) -> list[LibraryFile]:
        return self._table("globals").get(name, [])

    def alias_names(self) -> list[str]:
        return list(self._table("aliases"))

def load_macros(include_dirs: list[str], env: PPEnv
                ) -> tuple[dict[str, Macro], list[Diagnostic]]:
    macros: dict[str, Macro] = {}
    diags: list[Diagnostic] = []
    atwords = atwords_for(env.compatible)
    for path in library_files(include_dirs, env, ".stpm"):
        try:
            src = read_source(path)
        except OSError as e:
            diags.append(Diagnostic(Severity.WARNING, f"cannot read '{path}': {e.strerror}",
                                    None, "io"))
            continue
        toks, _ = tokenize(src, ParseOptions(env=env))
        added, errors = parse_library_macros(toks, env, macros, atwords)
        macros.update(added)
        for e in errors:
            diags.append(_pp_diag(e))
    return macros, diags


def _pp_diag(e: PPError) -> Diagnostic:
    span = Span(e.tok.source, e.tok.start, e.tok.end) if e.tok is not None else None
    rel = tuple(Related(Span(t.source, t.start, t.end), m) for m, t in e.related)
    return Diagnostic(Severity.WARNING if e.warning else Severity.ERROR, e.message, span,
                      "parse", saw=e.tok.describe() if e.tok else "", related=rel)


def _env_key(env: PPEnv, macro_files: list[str]) -> str:
    h = hashlib.sha1()
    h.update(repr((env.kernel_release, env.arch, sorted(env.kernel_config.items()),
                   env.compatible, env.privilege, env.guru, env.runtime)).encode())
    for p in macro_files:
        try:
            st = os.stat(p)
            h.update(f"{p}:{st.st_size}:{st.st_mtime_ns}".encode())
        except OSError:
            pass
    h.update(GRAMMAR_FILE.read_bytes())
    h.update(_code_fingerprint().encode())
    return h.hexdigest()[:16]


def _code_fingerprint() -> str:
    """Changes whenever the parser's code does, so stale caches are not used."""
    parts = [_CACHE_VERSION]
    for base in (os.path.dirname(GRAMMAR_FILE), os.path.dirname(__file__)):
        for nm in sorted(os.listdir(base)):
            if nm.endswith(".py") and (base != os.path.dirname(__file__) or nm == "library.py"):
                st = os.stat(os.path.join(base, nm))
                parts.append(f"{nm}:{st.st_size}:{st.st_mtime_ns}")
    return ";".join(parts)


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "stap-ls", "tapsets")


def _stamp(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


_WORKER: dict = {}


def _init_worker(env: PPEnv, macros: dict[str, Macro]) -> None:
    """A parsing process gets the environment and the macros once."""
    _WORKER["env"], _WORKER["macros"] = env, macros
    gc.disable()    # a short-lived process making many acyclic objects


def _parse_in_worker(args) -> tuple[str, FileSummary | None, bytes, str]:
    path, check_compatible = args
    return _parse_one((path, _WORKER["env"], _WORKER["macros"], check_compatible))


def _parse_one(args) -> tuple[str, FileSummary | None, bytes, str]:
    """Parse one tapset file; returns its summary and its pickled result (the
    tree travels as bytes: the parent keeps it and unpickles it on demand)."""
    path, env, macros, check_compatible = args
    try:
        src = read_source(path)
    except OSError as e:
        return path, None, b"", e.strerror or str(e)
    result = parse_file(src, ParseOptions(env=env, privileged=True, user_file=False,
                                          library_macros=macros,
                                          check_compatible=check_compatible))
    result.tokens = []      # not needed for library files; keeps the cache small
    result.stream = []
    return path, summarize(result), pickle.dumps(result, pickle.HIGHEST_PROTOCOL), ""


class _Blob:
    """The consolidated cache: every file's pickled tree in one file, read
    back one slice at a time."""

    def __init__(self, path: str) -> None:
        self.path = path

    def loader(self, offset: int, length: int, memory: bytes | None = None):
        def load() -> ParseResult:
            if memory is not None:
                return pickle.loads(memory)
            with open(self.path, "rb") as fh:
                fh.seek(offset)
                return pickle.loads(fh.read(length))
        return load


def _read_index(path: str):
    try:
        with open(path, "rb") as fh:
            data = pickle.load(fh)
        if isinstance(data, dict) and data.get("version") == _CACHE_VERSION:
            return data
    except Exception:  # a missing or corrupt index: parse again
        pass
    return None


_MEMO: dict[tuple, tuple[dict[str, tuple[int, int] | None], TapsetLibrary]] = {}


def load_library(include_dirs: list[str], env: PPEnv, *, use_cache: bool = True,
                 jobs: int | None = None, parse_files: bool = True) -> TapsetLibrary:
    """Find the library, read its macros and (optionally) parse every file.

    Within one process a library is loaded once per search path and
    environment (and again only when a tapset file changes), so a server or a
    test calling ``stap-ls check`` in-process many times pays for it once.
    Callers must treat the returned library as read-only.

    With the cache warm this reads one small index (each file's functions,
    aliases, globals and diagnostics) and checks each file's size and mtime;
    trees are unpickled only when ``LibraryFile.result`` is first used.  Files
    that changed (or are new) are parsed again and the cache is rewritten.
    """
    dirs = search_dirs(include_dirs, env)
    stp_files = library_files(include_dirs, env, ".stp")
    stpm_files = library_files(include_dirs, env, ".stpm")
    all_files = stp_files + stpm_files
    memo_key = (tuple(include_dirs), repr(env), parse_files, use_cache)
    stamps_now = {p: _stamp(p) for p in all_files}
    hit = _MEMO.get(memo_key)
    if hit is not None and hit[0] == stamps_now:
        return hit[1]
    lib = _load(include_dirs, dirs, stp_files, stpm_files, env, use_cache, jobs, parse_files)
    _MEMO[memo_key] = (stamps_now, lib)
    return lib


def _load(include_dirs: list[str], dirs: list[str], paths: list[str], stpm_files: list[str],
          env: PPEnv, use_cache: bool, jobs: int | None, parse_files: bool) -> TapsetLibrary:
    lib = TapsetLibrary(dirs, env, macro_files=stpm_files)
    lib.macros, lib.macro_diagnostics = load_macros(include_dirs, env)
    if not parse_files:
        return lib
    builtin = builtin_dirs(env)
    key = _env_key(env, stpm_files)
    cdir = os.path.join(cache_dir(), key)
    index_path = os.path.join(cdir, "index.pickle")
    blob = _Blob(os.path.join(cdir, "trees.bin"))
    index = _read_index(index_path) if use_cache else None
    cached: dict[str, tuple] = index["files"] if index else {}
    stamps = {p: _stamp(p) for p in paths}
    todo = [p for p in paths if p not in cached or cached[p][0] != stamps[p]]
    fresh: dict[str, tuple[FileSummary | None, bytes, str]] = {}
    if todo:
        work = [(p, env, lib.macros, os.path.dirname(p) not in builtin) for p in todo]
        jobs = jobs if jobs is not None else min(2, os.cpu_count() or 1)
        results = None
        if jobs > 1 and len(work) > 20:
            from concurrent.futures import ProcessPoolExecutor
            try:
                with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker,
                                         initargs=(env, lib.macros)) as ex:
                    results = list(ex.map(_parse_in_worker, [(w[0], w[3]) for w in work],
                                          chunksize=16))
            except (OSError, RuntimeError):
                results = None
        if results is None:
            enabled = gc.isenabled()
            gc.disable()    # the trees are acyclic; collecting during the parse only costs
            try:
                results = [_parse_one(w) for w in work]
            finally:
                if enabled:
                    gc.enable()
        for path, summary, data, err in results:
            fresh[path] = (summary, data, err)
    lib.origin = "cache" if not todo else ("parsed" if len(todo) == len(paths) else "mixed")
    for p in paths:
        if p in fresh:
            summary, data, err = fresh[p]
            if summary is None:
                lib.macro_diagnostics.append(Diagnostic(
                    Severity.WARNING, f"cannot read '{p}': {err}", None, "io"))
                continue
            lib.files.append(LibraryFile(p, summary=summary, loader=blob.loader(0, 0, data)))
        else:
            _stamp_, offset, length, summary = cached[p]
            lib.files.append(LibraryFile(p, summary=summary,
                                         loader=blob.loader(offset, length)))
    if use_cache and (todo or len(cached) != len(paths)):
        _write_cache(cdir, index_path, blob, paths, stamps, cached, fresh)
    return lib


def _write_cache(cdir: str, index_path: str, blob: _Blob, paths: list[str], stamps: dict,
                 cached: dict, fresh: dict) -> None:
    """Rewrite the consolidated cache (trees of unchanged files are copied)."""
    try:
        os.makedirs(cdir, exist_ok=True)
        tmp_blob = blob.path + f".{os.getpid()}.tmp"
        files: dict[str, tuple] = {}
        old = open(blob.path, "rb") if cached and os.path.exists(blob.path) else None
        try:
            with open(tmp_blob, "wb") as out:
                for p in paths:
                    if p in fresh:
                        summary, data, _err = fresh[p]
                        if summary is None:
                            continue
                    elif p in cached and old is not None:
                        _s, offset, length, summary = cached[p]
                        old.seek(offset)
                        data = old.read(length)
                    else:
                        continue
                    files[p] = (stamps[p], out.tell(), len(data), summary)
                    out.write(data)
        finally:
            if old is not None:
                old.close()
        tmp_index = index_path + f".{os.getpid()}.tmp"
        with open(tmp_index, "wb") as fh:
            pickle.dump({"version": _CACHE_VERSION, "files": files}, fh,
                        protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp_blob, blob.path)
        os.replace(tmp_index, index_path)
    except OSError:
        pass    # a read-only cache directory: work without a cache
