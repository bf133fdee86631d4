"""The tapset library: where it is, its macros, and its parsed files.

stap reads its library from the tapset directory (``SYSTEMTAP_TAPSET`` or the
installed ``tapset/``) and each ``-I DIR``, each expanded to the runtime's and
architecture's (and kernel version's) subdirectories.  A library file hides
any later one with the same name.  ``.stpm`` files hold macros that every
script and tapset may use; ``.stp`` files are parsed as privileged code.

Parsing the whole library is pass 1's largest cost, so each file's result is
cached on disk (pickled, keyed by path, size, mtime, the preprocessor
environment and the grammar), and files are parsed on two processes when the
cache is cold.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from stap_ls.sema.tapdoc import tapset_search_dirs
from stap_ls.syntax.lexer import atwords_for
from stap_ls.syntax.parser import GRAMMAR_FILE, ParseOptions, ParseResult, parse_file, tokenize
from stap_ls.syntax.preprocessor import Macro, PPEnv, PPError, parse_library_macros
from stap_ls.text import Diagnostic, Related, Severity, SourceFile, Span

DEFAULT_TAPSET_ROOT = "/usr/share/systemtap/tapset"
_CACHE_VERSION = "1"


def tapset_root() -> str:
    return os.environ.get("SYSTEMTAP_TAPSET") or DEFAULT_TAPSET_ROOT


def read_source(path: str) -> SourceFile:
    """Read a script or tapset file; undecodable bytes are kept (surrogateescape)."""
    with open(path, "rb") as fh:
        data = fh.read()
    return SourceFile(path, data.decode("utf-8", "surrogateescape"))


def search_dirs(include_dirs: list[str], env: PPEnv) -> list[str]:
    out: list[str] = []
    for root in [tapset_root(), *include_dirs]:
        for d in tapset_search_dirs(root, env.arch, env.runtime, env.kernel_release):
            if d not in out:
                out.append(d)
    return out


def _list(dirs: list[str], suffix: str) -> list[str]:
    seen: set[str] = set()
    files = []
    for d in dirs:
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for nm in names:
            if nm.endswith(suffix) and nm not in seen:
                seen.add(nm)
                files.append(os.path.join(d, nm))
    return files


@dataclass
class LibraryFile:
    path: str
    result: ParseResult


@dataclass
class TapsetLibrary:
    dirs: list[str]
    env: PPEnv
    macros: dict[str, Macro] = field(default_factory=dict)
    macro_diagnostics: list[Diagnostic] = field(default_factory=list)
    files: list[LibraryFile] = field(default_factory=list)

    @property
    def diagnostics(self) -> list[Diagnostic]:
        out = list(self.macro_diagnostics)
        for f in self.files:
            out.extend(f.result.diagnostics)
        return out


def load_macros(dirs: list[str], env: PPEnv) -> tuple[dict[str, Macro], list[Diagnostic]]:
    macros: dict[str, Macro] = {}
    diags: list[Diagnostic] = []
    atwords = atwords_for(env.compatible)
    for path in _list(dirs, ".stpm"):
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
    base = os.path.dirname(GRAMMAR_FILE)
    parts = []
    for nm in sorted(os.listdir(base)):
        if nm.endswith(".py"):
            st = os.stat(os.path.join(base, nm))
            parts.append(f"{nm}:{st.st_size}:{st.st_mtime_ns}")
    return _CACHE_VERSION + ";".join(parts)


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "stap-ls", "tapsets")


def _cache_path(path: str, key: str) -> str:
    st = os.stat(path)
    name = hashlib.sha1(f"{path}:{st.st_size}:{st.st_mtime_ns}:{key}".encode()).hexdigest()
    return os.path.join(cache_dir(), name[:2], name + ".pickle")


def _parse_one(args) -> tuple[str, ParseResult | None, str]:
    path, env, macros, key, use_cache = args
    cpath = None
    if use_cache:
        try:
            cpath = _cache_path(path, key)
            with open(cpath, "rb") as fh:
                return path, pickle.load(fh), ""
        except Exception:  # a missing or corrupted cache entry: parse again
            pass
    try:
        src = read_source(path)
    except OSError as e:
        return path, None, e.strerror or str(e)
    result = parse_file(src, ParseOptions(env=env, privileged=True, user_file=False,
                                          library_macros=macros))
    result.tokens = []      # not needed for library files; keeps the cache small
    result.stream = []
    if cpath is not None:
        try:
            os.makedirs(os.path.dirname(cpath), exist_ok=True)
            tmp = cpath + f".{os.getpid()}.tmp"
            with open(tmp, "wb") as fh:
                pickle.dump(result, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, cpath)
        except Exception:
            pass
    return path, result, ""


def load_library(include_dirs: list[str], env: PPEnv, *, use_cache: bool = True,
                 jobs: int | None = None, parse_files: bool = True) -> TapsetLibrary:
    """Find the library, read its macros and (optionally) parse every file."""
    dirs = search_dirs(include_dirs, env)
    lib = TapsetLibrary(dirs, env)
    lib.macros, lib.macro_diagnostics = load_macros(dirs, env)
    if not parse_files:
        return lib
    paths = _list(dirs, ".stp")
    key = _env_key(env, _list(dirs, ".stpm"))
    work = [(p, env, lib.macros, key, use_cache) for p in paths]
    results: list[tuple[str, ParseResult | None, str]] = []
    jobs = jobs if jobs is not None else min(2, os.cpu_count() or 1)
    if jobs > 1 and len(work) > 20 and not _all_cached(work):
        try:
            with ProcessPoolExecutor(max_workers=jobs) as ex:
                results = list(ex.map(_parse_one, work, chunksize=16))
        except (OSError, RuntimeError):
            results = [_parse_one(w) for w in work]
    else:
        results = [_parse_one(w) for w in work]
    for path, result, err in results:
        if result is None:
            lib.macro_diagnostics.append(Diagnostic(
                Severity.WARNING, f"cannot read '{path}': {err}", None, "io"))
            continue
        lib.files.append(LibraryFile(path, result))
    return lib


def _all_cached(work) -> bool:
    for path, _env, _m, key, use_cache in work[:8]:
        if not use_cache:
            return False
        try:
            if not os.path.exists(_cache_path(path, key)):
                return False
        except OSError:
            return False
    return True
