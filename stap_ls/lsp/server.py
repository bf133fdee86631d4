"""The stap-ls language server (pygls 2, lsprotocol).

Handlers are thin: find the document's :class:`~stap_ls.ide.analysis.Analysis`,
call one :mod:`stap_ls.ide` function off the event loop, convert the result with
:mod:`stap_ls.lsp.convert`.  The server's own work:

* **environment** — settings come from ``initializationOptions`` and
  ``workspace/configuration`` (section ``stap-ls``, re-read on
  ``didChangeConfiguration``).  A quick environment (tapset macros only) is
  ready at once, so the first pass-1 diagnostics do not wait; the full one
  (library parsed from its cache, tapset docs, target model) loads on a
  background thread with ``$/progress``, then every open document is
  re-analysed.  A machine without tapsets, BTF or tracefs gets one
  ``window/showMessage`` saying what is missing, and the server keeps working.
* **analyses** — one per document version, debounced after edits
  (:data:`DEBOUNCE`): pass 1 is published at once, then pass 2 runs in a
  worker process (:mod:`stap_ls.lsp.pass2proc`; in this process on a thread
  with ``STAP_LS_PASS2_PROCESS=0`` or a custom target model) and its result
  replaces the analysis (and is published) if the document has not changed
  meanwhile.  A request for a version not analysed
  yet analyses it (pass 1) first.  ``$/cancelRequest`` cancels the awaiting
  handler (pygls); the worker's result is then dropped.
* **protocol edges** — a request after ``shutdown`` is answered -32600
  (pygls would drop it); an exception in a feature is logged and answered as
  an error.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

from lsprotocol import types as T
from pygls.exceptions import JsonRpcInternalError, JsonRpcInvalidRequest
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.json_rpc import RPCRequest

from stap_ls.ide import commands as C
from stap_ls.ide.analysis import (Analysis, Documents, Environment, analyze, full_environment,
                                  needs_pass2, quick_environment, with_elab, with_pass2)
from stap_ls.ide.config import Settings
from stap_ls.lsp.convert import Converter, path_to_uri
from stap_ls.lsp.pass2proc import Pass2Process

log = logging.getLogger("stap_ls.lsp")

DEBOUNCE = 0.02
#: pass 2 (whole program, seconds on large scripts) waits for a pause in typing
PASS2_DELAY = 0.3
TRIGGERS = [".", "/", "@", "$", "*", "(", '"', ">"]
COMMANDS = ["stap-ls.run", "stap-ls.stop", "stap-ls.listProbes", "stap-ls.translatedC",
            "stap-ls.doctor"]


class StapProtocol(LanguageServerProtocol):
    def handle_message(self, message):
        if self._shutdown and isinstance(message, RPCRequest) and message.method != T.EXIT:
            self._send_response(message.id, error=T.ResponseError(
                JsonRpcInvalidRequest.CODE, "the server is shut down"))
            return
        if getattr(message, "method", None) in (T.SHUTDOWN, T.EXIT):
            self._server.stop_pass2()         # `exit` ends the process at once
        super().handle_message(message)


class StapServer(LanguageServer):
    def __init__(self, model_factory=None) -> None:
        super().__init__("stap-ls", "0.1", protocol_cls=StapProtocol,
                         text_document_sync_kind=T.TextDocumentSyncKind.Incremental)
        self.settings = Settings()
        self.env: Environment | None = None
        self.env_ready = threading.Event()
        self.docs = Documents()
        self.conv = Converter()
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="stap-ls")
        self.loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stap-ls-load")
        self.pass2_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stap-ls-pass2")
        self.model_factory = model_factory
        #: pass 2 in a worker process (a custom target model cannot be sent there)
        self.pass2_in_process = model_factory is not None or \
            os.environ.get("STAP_LS_PASS2_PROCESS", "1") == "0"
        self.pass2_proc: Pass2Process | None = None
        self.names: dict[str, str] = {}        # source name -> uri
        self.pending: dict[str, asyncio.Task] = {}
        self.runs = C.RunManager(self.notify_threadsafe)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._env_generation = 0
        self.announced: set[str] = set()
        #: an environment loaded before the client came (``serve --daemon``)
        self.preloaded: Environment | None = None

    # -- plumbing ----------------------------------------------------------------
    def uri_of(self, name: str) -> str:
        return self.names.get(name) or path_to_uri(name)

    def name_of(self, uri: str) -> str:
        path = C.path_of(uri)
        name = path or uri
        self.names[name] = uri
        return name

    def notify_threadsafe(self, method: str, params: dict) -> None:
        def send() -> None:
            self.protocol.notify(method, params)
            if method == "stap-ls/output":
                self.window_log_message(T.LogMessageParams(T.MessageType.Log,
                                                           params.get("text", "").rstrip("\n")))
        if self.loop is not None:
            self.loop.call_soon_threadsafe(send)

    async def work(self, fn, *args):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, functools.partial(fn, *args))

    def current_env(self) -> Environment:
        if self.env is None:
            self.env = self._preloaded_for(self.settings) or quick_environment(self.settings)
        return self.env

    def _preloaded_for(self, settings: Settings) -> Environment | None:
        pre = self.preloaded
        if pre is None or pre.settings.environment_key != settings.environment_key:
            return None
        pre.settings = settings
        return pre

    # -- environment ---------------------------------------------------------------
    def start_loading(self) -> None:
        self._env_generation += 1
        gen = self._env_generation
        settings = self.settings
        pre = self._preloaded_for(settings)
        if pre is not None:
            self._loaded(gen, pre, "", False)
            return
        self.env = quick_environment(settings)
        self.env_ready.clear()
        token = str(uuid.uuid4())
        progress = self._progress_supported()
        if progress:
            self.work_done_progress.create(token)
            self.work_done_progress.begin(token, T.WorkDoneProgressBegin(
                title="stap-ls: loading", message="tapset library", percentage=0))

        def report(msg: str, pct: int) -> None:
            if progress and self.loop is not None:
                self.loop.call_soon_threadsafe(self.work_done_progress.report, token,
                                               T.WorkDoneProgressReport(message=msg,
                                                                        percentage=pct))

        def load() -> None:
            try:
                env = full_environment(settings, report, self.model_factory)
                _warm(env)
            except Exception:
                log.exception("loading the environment failed")
                env = None
            if self.loop is not None:
                self.loop.call_soon_threadsafe(self._loaded, gen, env, token, progress)

        self.loader.submit(load)

    def _progress_supported(self) -> bool:
        caps = self.client_capabilities
        return bool(caps and caps.window and caps.window.work_done_progress)

    def _loaded(self, gen: int, env: Environment | None, token: str, progress: bool) -> None:
        if progress:
            self.work_done_progress.end(token, T.WorkDoneProgressEnd(message="ready"))
        if gen != self._env_generation or env is None:
            return
        self.env = env
        self.env_ready.set()
        problems = list(env.problems) + list(env.settings.problems)
        if env.model is not None:
            try:
                problems += [m for m in env.model.missing() if "debug info" not in m]
            except Exception:
                pass
        new = [p for p in problems if p not in self.announced]
        if new:
            self.announced.update(new)
            self.window_show_message(T.ShowMessageParams(
                T.MessageType.Warning, "stap-ls works with less here: " + "; ".join(new)))
        log.info("environment loaded in %.2f s", env.load_seconds)
        self._start_pass2(env)
        for a in self.docs.all():
            self.schedule(a.uri, 0.0)

    # -- analyses ------------------------------------------------------------------
    def _analyze_now(self, uri: str) -> Analysis | None:
        doc = self.workspace.text_documents.get(uri)
        if doc is None:
            return None
        env = self.current_env()
        with self.docs.lock_for(uri):
            latest = self.docs.latest(uri)
            version = doc.version if doc.version is not None else 0
            if latest is not None and latest.version == version and latest.env is env:
                return latest
            a = analyze(uri, self.name_of(uri), doc.source, version, env,
                        self.docs.cache_for(uri), with_pass2=False)
            self.docs.store(a)
            return self.docs.latest(uri)

    # -- pass 2 ----------------------------------------------------------------------
    def _start_pass2(self, env: Environment) -> Pass2Process | None:
        """The worker for ``env``'s settings (the old one goes if they changed);
        None when pass 2 stays in this process.  The process itself starts
        with its first request: a document with parse errors needs none."""
        if self.pass2_in_process:
            return None
        old = self.pass2_proc
        if old is not None and old.settings == env.settings:
            return old
        if old is not None:
            old.stop()
        self.pass2_proc = Pass2Process(env.settings, notify=self._log_threadsafe)
        return self.pass2_proc

    def stop_pass2(self) -> None:
        p, self.pass2_proc = self.pass2_proc, None
        if p is not None:
            p.stop()

    def _log_threadsafe(self, text: str) -> None:
        def send() -> None:
            self.window_log_message(T.LogMessageParams(T.MessageType.Info, "stap-ls: " + text))
        if self.loop is not None:
            self.loop.call_soon_threadsafe(send)

    async def _run_pass2(self, a: Analysis) -> Analysis | None:
        """Pass 2 of ``a``'s version: in the worker process when there is one
        for its settings, else on this process's pass-2 thread."""
        if a.env is not self.env:
            return None          # an environment being replaced: re-analysed when it lands
        proc = self._start_pass2(a.env)
        if proc is None:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.pass2_pool, self._pass2, a)
        reply = await proc.elaborate(a.uri, a.source.name, a.source.text, a.version)
        if reply.status != "done" or reply.elab is None:
            return None          # superseded, or failed: the pass-1 analysis stands
        doc = self.workspace.text_documents.get(a.uri)
        if doc is None or doc.version != a.version:
            return None
        b = with_elab(a, reply.elab)
        return b if self.docs.store(b) else None

    def _pass2(self, a: Analysis) -> Analysis | None:
        doc = self.workspace.text_documents.get(a.uri)
        if doc is None or doc.version != a.version:
            return None            # edited meanwhile: this result would be stale
        b = with_pass2(a)
        if b is a or not self.docs.store(b):
            return None
        return b

    async def analysis(self, uri: str) -> Analysis:
        doc = self.workspace.text_documents.get(uri)
        a = self.docs.latest(uri)
        if doc is not None and (a is None or a.version != doc.version):
            a = await self.work(self._analyze_now, uri)
        if a is None:
            raise JsonRpcInternalError(f"{uri} is not open")
        return a

    def schedule(self, uri: str, delay: float = DEBOUNCE) -> None:
        old = self.pending.pop(uri, None)
        if old is not None:
            old.cancel()
        self.pending[uri] = asyncio.ensure_future(self._check(uri, delay))

    async def _check(self, uri: str, delay: float) -> None:
        try:
            if delay:
                await asyncio.sleep(delay)
            a = await self.work(self._analyze_now, uri)
        except asyncio.CancelledError:
            return
        except Exception:
            log.exception("analysis of %s failed", uri)
            return
        doc = self.workspace.text_documents.get(uri)
        if a is None or doc is None or a.version != doc.version:
            return
        self.publish(a)
        if needs_pass2(a):
            try:
                await asyncio.sleep(PASS2_DELAY if delay else 0)   # a new edit cancels this
                b = await self._run_pass2(a)
            except asyncio.CancelledError:
                return
            except Exception:
                log.exception("pass 2 of %s failed", uri)
                return
            doc = self.workspace.text_documents.get(uri)
            if b is not None and doc is not None and b.version == doc.version:
                if b.elab is not None and b.elab.note and b.elab.note not in self.announced:
                    self.announced.add(b.elab.note)
                    self.window_log_message(T.LogMessageParams(T.MessageType.Info, b.elab.note))
                self.publish(b)

    def publish(self, a: Analysis) -> None:
        diags = [self.conv.diagnostic(d, a.source, self.uri_of) for d in a.diagnostics]
        self.text_document_publish_diagnostics(T.PublishDiagnosticsParams(
            uri=a.uri, diagnostics=diags, version=a.version))

    def offset(self, a: Analysis, pos: T.Position) -> int:
        return self.conv.offset(a.source, pos)


server_factory = StapServer


def guard(fn):
    """Log a feature's exception and answer with an error (never fatal)."""
    @functools.wraps(fn)
    async def wrapper(ls: StapServer, *params):
        try:
            return await fn(ls, *params)
        except (asyncio.CancelledError, JsonRpcInternalError):
            raise
        except Exception as e:
            log.exception("%s failed", fn.__name__)
            ls.window_log_message(T.LogMessageParams(
                T.MessageType.Error, f"stap-ls: {fn.__name__} failed: {type(e).__name__}: {e}"))
            raise JsonRpcInternalError(f"{fn.__name__} failed: {type(e).__name__}: {e}") from e
    return wrapper


def _warm(env: Environment) -> None:
    """Fill the environment's memo (function items, kernel names) before use."""
    from stap_ls.ide.analysis import DeclCache
    a = analyze("warm:", "<warm>", "probe begin { x = 1 }\nprobe kernel.function(\"x\") {}",
                0, env, DeclCache(), with_pass2=False)
    from stap_ls.ide.completion import complete
    for off in (20, len("probe begin { x = 1 }\nprobe kernel.function(\"")):
        try:
            complete(a, off)
        except Exception:
            log.exception("warming completion failed")


def build_server(model_factory=None) -> StapServer:
    from stap_ls.lsp import handlers
    ls = StapServer(model_factory)
    handlers.register(ls)
    return ls
