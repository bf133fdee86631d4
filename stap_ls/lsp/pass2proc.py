"""Pass 2 in a persistent worker process, so it never holds the server's GIL.

Pass 2 of a large script takes seconds of pure Python.  Run on a thread of
the server it would hold the interpreter lock and every request arriving
meanwhile (completion, hover) would wait.  :class:`Pass2Process` keeps one
worker process per set of settings:

* **start** — lazily, on the first request, from the ``forkserver`` context (the server is
  threaded: forking it directly could copy a lock held by another thread; the
  fork server is a clean single-threaded process, already used by the
  library loader).  The worker builds its own full
  :class:`~stap_ls.ide.analysis.Environment` from the same ``Settings``
  (library from the cache, tapset docs, target model), says ``ready`` and
  then answers requests.
* **requests** — ``(uri, source name, text, version)``; the worker analyses
  the text (pass 1 incrementally, per document, then pass 2) and answers with
  an :class:`~stap_ls.ide.analysis.Elaboration` whose
  :class:`~stap_ls.ide.pass2summary.Pass2Summary` is plain, picklable data
  keyed by offsets.  One request at a time (a single-thread executor waits on
  the pipe, so the event loop never blocks); a request whose document got a
  newer request while it was queued is dropped (``superseded``).
* **failure** — a worker that dies or does not answer within ``timeout`` is
  killed, reported once (log + ``notify``) and started again on the next
  request; the caller gets ``failed`` and keeps the pass-1 analysis.
* **lifetime** — :meth:`Pass2Process.stop` kills it (settings change, server
  shutdown).  If the server dies without stopping it, the worker still goes:
  its parent, the fork server, exits when the server does, and the worker
  asked the kernel for ``SIGKILL`` when its parent dies
  (``PR_SET_PDEATHSIG``); an idle worker also ends on end-of-file of its pipe.

This module imports no pygls: the worker process loads only the ide layer.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

from stap_ls.ide.analysis import Elaboration
from stap_ls.ide.config import Settings

log = logging.getLogger("stap_ls.lsp.pass2")

#: seconds a request may take before the worker is taken for hung
TIMEOUT = 60.0
#: seconds the worker may take to load its environment (cold library cache)
LOAD_TIMEOUT = 300.0
#: documents whose pass-1 caches the worker keeps
MAX_CACHES = 16


@dataclass(frozen=True)
class Reply:
    """What a request came to: ``done`` (with ``elab``, which is None when the
    worker's pass 1 found errors), ``superseded`` or ``failed`` (``note``)."""
    status: str
    elab: Elaboration | None = None
    note: str = ""


class WorkerGone(Exception):
    pass


class Pass2Process:
    """One pass-2 worker process for one set of settings."""

    def __init__(self, settings: Settings, timeout: float = TIMEOUT,
                 load_timeout: float = LOAD_TIMEOUT,
                 notify: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.timeout = timeout
        self.load_timeout = load_timeout
        self.notify = notify or (lambda _m: None)
        self._ctx = multiprocessing.get_context("forkserver")
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stap-ls-pass2")
        self._lock = threading.Lock()
        self._proc = None
        self._conn = None
        self._latest: dict[str, object] = {}
        self._rid = 0
        self._closed = False
        self._complained = False
        #: how many workers were started (1 + restarts)
        self.starts = 0

    # -- public ------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        p = self._proc
        return p.pid if p is not None else None

    async def elaborate(self, uri: str, name: str, text: str, version: int) -> Reply:
        """Pass 2 of one document version, waited for off the event loop."""
        import asyncio
        token = object()
        self._latest[uri] = token
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._io, self._roundtrip, uri, token, name, text,
                                          version)

    def stop(self) -> None:
        """Kill the worker; queued and later requests answer ``failed``."""
        self._closed = True
        self._discard()
        self._io.shutdown(wait=False, cancel_futures=True)

    # -- the pipe (on the single executor thread) ----------------------------------
    def _ensure(self):
        with self._lock:
            if self._closed:
                raise WorkerGone("the pass-2 worker is stopped")
            if self._conn is not None:
                return self._conn
            parent, child = self._ctx.Pipe(duplex=True)
            proc = self._ctx.Process(target=worker_main, args=(child, self.settings),
                                     name="stap-ls-pass2")
            try:
                proc.start()
            except Exception as e:
                parent.close()
                raise WorkerGone(f"cannot start the pass-2 worker: {type(e).__name__}: {e}")
            finally:
                child.close()
            self._proc, self._conn = proc, parent
            self.starts += 1
        t0 = time.monotonic()
        try:
            if not parent.poll(self.load_timeout):
                raise WorkerGone(f"the pass-2 worker did not load in {self.load_timeout:.0f} s")
            msg = parent.recv()
        except (EOFError, OSError) as e:
            self._discard()
            raise WorkerGone(f"the pass-2 worker died while loading ({_exit_of(proc)})") from e
        except WorkerGone:
            self._discard()
            raise
        if msg[0] != "ready":
            self._discard()
            raise WorkerGone(f"the pass-2 worker could not load: {msg[-1]}")
        text = (f"pass-2 worker started (pid {proc.pid}, environment loaded in "
                f"{time.monotonic() - t0:.1f} s)")
        log.info(text)
        self.notify(text)
        return parent

    def _roundtrip(self, uri: str, token: object, name: str, text: str, version: int) -> Reply:
        if self._latest.get(uri) is not token:
            return Reply("superseded")
        conn = None
        for attempt in (0, 1):
            try:
                conn = self._ensure()
                while conn.poll(0):      # an idle worker says nothing: EOF = it died
                    conn.recv()          # (or a late answer to an abandoned request)
                self._rid += 1
                rid = self._rid
                conn.send(("elab", rid, uri, name, text, version))
                break
            except (EOFError, OSError, WorkerGone) as e:
                self._discard()
                if self._closed:
                    return Reply("failed", note="the pass-2 worker is stopped")
                if attempt:     # died before the request: one fresh worker tried
                    return Reply("failed", note=self._complain(str(e)))
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self._discard()
                return Reply("failed", note=self._complain(
                    f"the pass-2 worker did not answer within {self.timeout:.0f} s "
                    "(killed; it restarts on the next edit)"))
            try:
                if not conn.poll(min(left, 0.5)):
                    if self._closed or conn is not self._conn:
                        return Reply("failed", note="the pass-2 worker is stopped")
                    continue
                msg = conn.recv()
            except (EOFError, OSError):
                proc = self._proc
                self._discard()
                if self._closed:
                    return Reply("failed", note="the pass-2 worker is stopped")
                return Reply("failed", note=self._complain(
                    f"the pass-2 worker died ({_exit_of(proc)}); it restarts on the next edit"))
            if msg[1] != rid:
                continue                     # a late answer to an abandoned request
            if msg[0] == "done":
                return Reply("done", msg[2])
            return Reply("failed", note=f"pass 2 failed in the worker: {msg[2]}")

    def _discard(self) -> None:
        with self._lock:
            proc, conn = self._proc, self._conn
            self._proc = self._conn = None
        if proc is not None and proc.is_alive():
            proc.kill()
        if proc is not None:
            proc.join(2.0)
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass

    def _complain(self, text: str) -> str:
        if not self._complained:
            self._complained = True
            log.warning("%s", text)
            self.notify(text)
        else:
            log.info("%s", text)
        return text


def _exit_of(proc) -> str:
    if proc is None:
        return "gone"
    proc.join(1.0)
    code = proc.exitcode
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


# -- the worker process -----------------------------------------------------------
def _die_with_parent() -> None:
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)           # PR_SET_PDEATHSIG
    except Exception:
        pass


def worker_main(conn, settings: Settings) -> None:
    """Entry point of the worker process."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # the editor's ^C is for the server
    # as `stap-ls serve` does (stap_ls.syntax.parser.raise_recursion_limit;
    # lsp/ does not import syntax/): deep trees need deep recursion
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))
    threading.stack_size(64 * 1024 * 1024)           # deep trees, as in `stap-ls serve`
    t = threading.Thread(target=_serve, args=(conn, settings), name="pass2-worker")
    t.start()
    t.join()
    os._exit(0)


def _serve(conn, settings: Settings) -> None:
    from stap_ls.ide.analysis import DeclCache, analyze, full_environment
    try:
        env = full_environment(settings)
        conn.send(("ready", os.getpid(), env.load_seconds))
    except Exception as e:
        log.exception("pass-2 worker: loading failed")
        try:
            conn.send(("error", 0, f"{type(e).__name__}: {e}"))
        except OSError:
            pass
        return
    caches: dict[str, DeclCache] = {}
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return                                   # the server is gone
        if msg[0] != "elab":
            return
        _, rid, uri, name, text, version = msg
        try:
            cache = caches.pop(uri, None) or DeclCache()
            caches[uri] = cache                      # most recent last
            while len(caches) > MAX_CACHES:
                caches.pop(next(iter(caches)))
            a = analyze(uri, name, text, version, env, cache, with_pass2=True)
            reply = ("done", rid, a.elab)
        except Exception as e:                       # a bug: answer, keep serving
            log.exception("pass-2 worker: analysis failed")
            reply = ("error", rid, f"{type(e).__name__}: {e}")
        try:
            conn.send(reply)
        except (OSError, ValueError):
            return
