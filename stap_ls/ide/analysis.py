"""One analysis per document version: pass 1 (incremental), pass 2 when it can.

:class:`Environment` is what every document shares and what is loaded once
per settings: the preprocessor environment, the tapset library (first its
macros only, in milliseconds; then every file parsed, from the cache, in the
background), the tapset documentation, the target model and the library's
symbol tables.  :func:`analyze` turns one document version into an immutable
:class:`Analysis`: the pass-1 result (re-parsing only the declarations that
changed, :mod:`stap_ls.ide.incremental`), the script's symbol table, and the
pass-2 result when the library is loaded and :func:`run_elaborate` succeeds.

Pass 2 lives in :mod:`stap_ls.sema.elaborate`; :func:`run_elaborate` is the
single place that calls it and turns an ImportError, a NotImplementedError or
any exception into a logged note, so features fall back to pass-1 knowledge.
Its result is kept only as a :class:`~stap_ls.ide.pass2summary.Pass2Summary`
(picklable, keyed by offsets), so the same :class:`Elaboration` can come from
this process or from the server's pass-2 worker process (:func:`with_elab`).
"""

from __future__ import annotations

import gc
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from stap_ls.ide.config import Settings
from stap_ls.ide.incremental import DeclCache, parse_incremental
from stap_ls.ide.pass2summary import Pass2Summary, summarize
from stap_ls.ide.index import SymbolTable, library_table
from stap_ls.options import StapOptions
from stap_ls.sema.frontend import FrontendResult, pp_env
from stap_ls.sema.library import TapsetLibrary, load_library
from stap_ls.syntax.parser import ParseOptions, ParseResult
from stap_ls.syntax.preprocessor import PPEnv
from stap_ls.text import Diagnostic, Severity, SourceFile, Span

log = logging.getLogger("stap_ls.ide")

ARG_RE = re.compile(r"[$@]([0-9]+)")
CODE_ARG_UNSET = "script-arg-unset"


@dataclass
class Environment:
    """Everything documents share, for one set of settings."""

    settings: Settings
    options: StapOptions
    env: PPEnv
    library: TapsetLibrary
    table: SymbolTable
    docs: object | None = None          # sema.tapdoc.TapsetDocIndex
    model: object | None = None         # targets.model.TargetModel
    #: the library's files are parsed (pass 2 and library symbols are available)
    complete: bool = False
    #: what is missing on this machine, for one clear message
    problems: list[str] = field(default_factory=list)
    load_seconds: float = 0.0
    #: answers that depend only on this environment (probe-point resolutions)
    memo: dict = field(default_factory=dict, repr=False)


def quick_environment(settings: Settings) -> Environment:
    """Macros only: enough for pass 1 of a script, in milliseconds."""
    opts = settings.options()
    env = pp_env(opts)
    lib = load_library(opts.include_dirs, env, parse_files=False)
    e = Environment(settings, opts, env, lib, library_table([], lib.macros))
    if not lib.dirs or not any(_exists(d) for d in lib.dirs):
        e.problems.append(f"no tapset library found (looked in {', '.join(lib.dirs) or 'nothing'}"
                          "; install systemtap-common or set SYSTEMTAP_TAPSET / tapsetDirs)")
    return e


def _exists(path: str) -> bool:
    import os
    return os.path.isdir(path)


def full_environment(settings: Settings, report: Callable[[str, int], None] | None = None,
                     model_factory: Callable[[StapOptions], object] | None = None
                     ) -> Environment:
    """Parse the library (cached), index its docs, open the target model."""
    t0 = time.perf_counter()
    report = report or (lambda _m, _p: None)
    quick = quick_environment(settings)
    report("tapset library", 5)
    try:
        lib = load_library(quick.options.include_dirs, quick.env)
    except Exception:  # a bug below us must not stop the server
        log.exception("loading the tapset library failed")
        lib = quick.library
    report("tapset documentation", 70)
    docs = None
    try:
        from stap_ls.sema.tapdoc import build_index
        docs, _ = build_index(lib.dirs)
    except Exception:
        log.exception("indexing the tapset documentation failed")
    report("target model", 85)
    model = None
    try:
        if model_factory is not None:
            model = model_factory(quick.options)
        else:
            from stap_ls.targets.model import TargetModel
            model = TargetModel(quick.options)
    except Exception:
        log.exception("opening the target model failed")
    e = Environment(settings, quick.options, quick.env, lib, library_table(lib.files, lib.macros),
                    docs, model, complete=True, problems=list(quick.problems))
    e.load_seconds = time.perf_counter() - t0
    # the library's trees are millions of long-lived objects: keep them out of
    # the cyclic collector's full passes, which otherwise pause edits for ~1 s
    gc.collect()
    gc.freeze()
    # each document version allocates tens of thousands of short-lived objects
    # (tokens, a declaration's tree); with the default thresholds the young
    # generations are scanned dozens of times per edit (measured: re-check p95
    # 31 ms -> 21 ms for a 1,000-line script with these)
    gc.set_threshold(20_000, 50, 1000)
    report("ready", 100)
    return e


@dataclass(frozen=True)
class Elaboration:
    """Pass 2's outcome for one document version (picklable)."""
    summary: Pass2Summary | None        # None: pass 2 did not run, see note
    note: str = ""                      # why there is none
    seconds: float = 0.0


def run_elaborate(fe: FrontendResult, model: object | None) -> Elaboration:
    """Pass 2 of ``fe``'s first (the user's) file, summarised, or a note
    saying why not (never raises)."""
    t0 = time.perf_counter()
    try:
        from stap_ls.sema.elaborate import elaborate
    except ImportError as e:
        return Elaboration(None, f"pass 2 is not available: {e}")
    try:
        res = elaborate(fe, model)
        user = fe.user[0].file
        summary = summarize(res, user, user.name)
    except NotImplementedError as e:
        return Elaboration(None, f"pass 2 is not available: {e}", time.perf_counter() - t0)
    except Exception as e:  # a bug in pass 2: log it, keep pass 1
        log.exception("pass 2 failed")
        return Elaboration(None, f"pass 2 failed: {type(e).__name__}: {e}",
                           time.perf_counter() - t0)
    return Elaboration(summary, "", time.perf_counter() - t0)


@dataclass(frozen=True, eq=False)
class Analysis:
    """Everything known about one version of one document.  Never mutated."""

    uri: str
    version: int
    source: SourceFile
    parse: ParseResult
    env: Environment
    table: SymbolTable
    elab: Elaboration | None
    #: hints for $N/@N used without scriptArgs in the settings
    arg_hints: tuple[Diagnostic, ...] = ()
    parse_seconds: float = 0.0
    reused_decls: int = 0
    #: lazily computed views (declaration ranges, merged tables); derived data only
    memo: dict = field(default_factory=dict, repr=False, compare=False)

    def ranges(self):
        """Top-level declaration ranges (:func:`stap_ls.ide.context.decl_ranges`)."""
        r = self.memo.get("ranges")
        if r is None:
            from stap_ls.ide.context import decl_ranges
            r = self.memo["ranges"] = decl_ranges(self.source, self.parse.tokens)
        return r

    def parse_options(self) -> ParseOptions:
        return ParseOptions(env=self.env.env, args=_placeholder_args(self.source.text,
                                                                      self.env.settings),
                            privileged=True, user_file=True,
                            library_macros=self.env.library.macros)

    @property
    def pass2(self) -> Pass2Summary | None:
        """What pass 2 found (types, derived probes, diagnostics), if it ran."""
        return self.elab.summary if self.elab is not None else None

    def pass2_diagnostics(self) -> list[Diagnostic]:
        """Pass 2's diagnostics rebuilt against this document's source."""
        s = self.pass2
        if s is None:
            return []
        d = self.memo.get("pass2-diagnostics")
        if d is None:
            d = self.memo["pass2-diagnostics"] = s.diagnostics_for(self.source)
        return d

    @property
    def diagnostics(self) -> list[Diagnostic]:
        """pass 1, then pass 2 (when it ran), then the hints."""
        out = list(self.parse.diagnostics)
        if self.pass2 is not None and not self.parse.errors:
            seen = {(d.message, d.span.start if d.span else -1) for d in out}
            for d in self.pass2_diagnostics():
                if d.span is not None and d.span.source.name != self.source.name:
                    continue      # library problems are not this document's
                if (d.message, d.span.start if d.span else -1) not in seen:
                    out.append(d)
        return out + list(self.arg_hints)

    def is_mine(self, span: Span | None) -> bool:
        return span is not None and span.source.name == self.source.name


def _placeholder_args(text: str, settings: Settings) -> list[str]:
    if settings.script_args_given:
        return list(settings.script_args)
    n = max((int(m.group(1)) for m in ARG_RE.finditer(text)), default=0)
    return ["0"] * min(n, 64)


def _arg_hints(src: SourceFile, res: ParseResult, settings: Settings) -> tuple[Diagnostic, ...]:
    if settings.script_args_given or not ARG_RE.search(src.text):
        return ()
    spans = {(t.start, t.end) for t in res.tokens if t.source is src}
    out = []
    for m in ARG_RE.finditer(src.text):
        if (m.start(), m.end()) in spans and m.group(1) != "0":
            out.append(Diagnostic(
                Severity.HINT, f"script argument {m.group()} is not set in the settings "
                "(stap-ls.scriptArgs); checked as if it were 0", Span(src, m.start(), m.end()),
                CODE_ARG_UNSET, kind="hint"))
    return tuple(out)


def analyze(uri: str, name: str, text: str, version: int, env: Environment,
            cache: DeclCache | None = None, with_pass2: bool = True) -> Analysis:
    """Analyse one document version."""
    t0 = time.perf_counter()
    src = SourceFile(name, text)
    args = _placeholder_args(text, env.settings)
    popts = ParseOptions(env=env.env, args=args, privileged=env.options.guru, user_file=True,
                         library_macros=env.library.macros)
    res = parse_incremental(src, popts, cache)
    table = SymbolTable(macros=env.table.macros)
    table.add_file(res.file, name)
    t1 = time.perf_counter()
    elab = None
    if with_pass2 and env.complete and not res.errors:
        fe = FrontendResult(env.options, env.env, env.library, [res])
        elab = run_elaborate(fe, env.model)
    return Analysis(uri, version, src, res, env, table, elab, _arg_hints(src, res, env.settings),
                    t1 - t0, cache.reused if cache else 0)


def needs_pass2(a: Analysis) -> bool:
    """Whether pass 2 can (and has yet to) run for this analysis."""
    return a.elab is None and a.env.complete and not a.parse.errors


def with_pass2(a: Analysis) -> Analysis:
    """The same version with pass 2 run in this process (a new Analysis;
    ``a`` is unchanged)."""
    if not needs_pass2(a):
        return a
    fe = FrontendResult(a.env.options, a.env.env, a.env.library, [a.parse])
    return with_elab(a, run_elaborate(fe, a.env.model))


def with_elab(a: Analysis, elab: Elaboration) -> Analysis:
    """The same version with a pass-2 outcome computed elsewhere (the
    worker process elaborated the same text, so offsets agree)."""
    return Analysis(a.uri, a.version, a.source, a.parse, a.env, a.table, elab, a.arg_hints,
                    a.parse_seconds, a.reused_decls)


class Documents:
    """Open documents and their latest analyses (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._caches: dict[str, DeclCache] = {}
        self._latest: dict[str, Analysis] = {}
        self._doc_locks: dict[str, threading.Lock] = {}

    def lock_for(self, uri: str) -> threading.Lock:
        with self._lock:
            return self._doc_locks.setdefault(uri, threading.Lock())

    def cache_for(self, uri: str) -> DeclCache:
        with self._lock:
            return self._caches.setdefault(uri, DeclCache())

    def store(self, a: Analysis) -> bool:
        """Keep ``a`` unless a newer version is stored; True when kept."""
        with self._lock:
            old = self._latest.get(a.uri)
            if old is not None and (old.version > a.version or
                                    (old.version == a.version and old.env.complete
                                     and not a.env.complete) or
                                    (old.version == a.version and old.env is a.env
                                     and old.elab is not None and a.elab is None)):
                return False
            self._latest[a.uri] = a
            return True

    def latest(self, uri: str) -> Analysis | None:
        with self._lock:
            return self._latest.get(uri)

    def all(self) -> list[Analysis]:
        with self._lock:
            return list(self._latest.values())

    def close(self, uri: str) -> None:
        with self._lock:
            self._latest.pop(uri, None)
            self._caches.pop(uri, None)
            self._doc_locks.pop(uri, None)
