"""The warm fork-server behind ``stap-ls serve --daemon``.

A language server's start-up is dominated by importing pygls/lsprotocol and
loading the tapset library, docs and target model.  The daemon pays that once:

1. :func:`preload` imports the server and its handlers, builds one server that
   it never runs (children inherit it fresh) and warms its converter, loads
   the default :func:`~stap_ls.ide.analysis.full_environment`, warms its memo,
   ends any multiprocessing fork server the load started, and
   ``gc.freeze()``s everything, so forked children share it copy-on-write and
   their collector never walks it.
2. :func:`run_daemon` holds ``<socket>.lock`` (``flock``: at most one daemon per
   socket; a second one exits at once), binds a temporary name and renames it
   over the socket path (a stale file of a dead daemon is simply replaced),
   then waits in a selector on the listening socket and a signal wake-up fd.
3. Each connection is ``fork()``-ed to a child that drops the daemon's fds and
   signal handlers and calls the ``handle`` callback (from ``cli/serve.py``):
   read the relay header, take the client's cwd and environment, put the
   socket on fds 0 and 1, and run the very same server as ``stap-ls serve``.
   The child exits when its client disconnects.
4. The daemon reaps children as soon as SIGCHLD arrives and exits on SIGTERM /
   SIGINT, after ``idle`` seconds without a connection and without live
   children, when ``still_current()`` says the code changed, or when its
   socket file was removed or replaced.  On the way out it removes its socket
   and pid file (only if they are still its own); live children keep serving
   their clients.

The daemon is single-threaded when it forks (checked and logged), which is
what makes forking safe.
"""

from __future__ import annotations

import errno
import fcntl
import gc
import logging
import os
import selectors
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

log = logging.getLogger("stap_ls.daemon")

#: what a child reports through ``stap-ls/serverInfo``
INFO: dict = {"mode": "in-process", "daemonPid": None, "preloaded": False}
#: the daemon's preloaded environment (``"env"``), inherited by every child
PRELOADED: dict = {}


@dataclass
class DaemonState:
    path: str
    idle: float
    children: set[int] = field(default_factory=set)
    last_activity: float = field(default_factory=time.monotonic)
    stop: str | None = None
    ino: int | None = None


def preload():
    """Import the server, load and warm the default environment; return it."""
    t0 = time.perf_counter()
    from stap_ls.ide.analysis import full_environment
    from stap_ls.ide.config import Settings
    from stap_ls.lsp import handlers  # noqa: F401 - the import is the point
    from stap_ls.lsp.server import _warm, build_server
    server = build_server()
    register_info(server)
    warm_protocol(server)
    #: never run here: each child takes its own copy-on-write copy of this fresh server
    PRELOADED["server"] = server
    t1 = time.perf_counter()
    env = full_environment(Settings())
    _warm(env)
    _forget_forkserver()
    gc.collect()
    gc.freeze()
    log.info("daemon preloaded: imports %.2f s, environment %.2f s", t1 - t0,
             time.perf_counter() - t1)
    return env


#: messages whose (de)serialisers cattrs builds on first use (tens of ms): built here once
_SAMPLES = [
    {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "processId": 1, "rootUri": None, "initializationOptions": {},
        "capabilities": {"window": {"workDoneProgress": True}, "textDocument": {
            "completion": {"completionItem": {"snippetSupport": True}},
            "publishDiagnostics": {"relatedInformation": True}},
            "workspace": {"configuration": True}}}},
    {"jsonrpc": "2.0", "method": "initialized", "params": {}},
    {"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": "file:///warm.stp", "languageId": "systemtap", "version": 1, "text": ""}}},
    {"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
        "textDocument": {"uri": "file:///warm.stp", "version": 2}, "contentChanges": [
            {"range": {"start": {"line": 0, "character": 0},
                       "end": {"line": 0, "character": 0}}, "text": "x"}]}},
    {"jsonrpc": "2.0", "id": 2, "method": "textDocument/completion", "params": {
        "textDocument": {"uri": "file:///warm.stp"}, "position": {"line": 0, "character": 0}}},
    {"jsonrpc": "2.0", "id": 3, "method": "textDocument/hover", "params": {
        "textDocument": {"uri": "file:///warm.stp"}, "position": {"line": 0, "character": 0}}},
]


def warm_protocol(server) -> None:
    """Build the converter's (de)serialisers for the first messages of a session."""
    from lsprotocol import types as T
    proto = server.protocol
    for m in _SAMPLES:
        try:
            proto.structure_message(m)
        except Exception:
            log.exception("warming %s failed", m.get("method"))
    rng = T.Range(T.Position(0, 0), T.Position(0, 1))
    out = [T.PublishDiagnosticsParams("file:///warm.stp", [T.Diagnostic(
               rng, "m", T.DiagnosticSeverity.Error, "code", source="stap-ls",
               related_information=[T.DiagnosticRelatedInformation(
                   T.Location("file:///warm.stp", rng), "m")])], 1),
           T.CompletionList(False, [T.CompletionItem("x", kind=T.CompletionItemKind.Function,
                                                     detail="d")]),
           T.Hover(T.MarkupContent(T.MarkupKind.Markdown, "x"), rng)]
    for o in out:
        try:
            proto._serialize_message(o)
        except Exception:
            log.exception("warming %s failed", type(o).__name__)


def _forget_forkserver() -> None:
    """End the multiprocessing fork server a cold library parse may have started,
    so each child starts its own when it needs one, as ``serve`` does (a shared
    one would parent the children's workers and outlive them)."""
    try:
        from multiprocessing import forkserver as fs
        if getattr(fs._forkserver, "_forkserver_pid", None) is not None:
            fs._forkserver._stop()  # closes its "alive" pipe and waits for it
            log.info("ended the fork server of the library load")
    except Exception:
        log.exception("could not reset multiprocessing's fork server")


def register_info(ls) -> None:
    """Add ``stap-ls/serverInfo``: how this server process was started."""
    @ls.feature("stap-ls/serverInfo")
    def server_info(ls, params=None) -> dict:
        pre = getattr(ls, "preloaded", None)
        return {**INFO, "pid": os.getpid(), "ppid": os.getppid(),
                "usesPreloaded": pre is not None and getattr(ls, "env", None) is pre}


def _clean_stale(path: str, keep_logs_days: float = 7.0) -> None:
    """Remove the files of other versions' daemons that are gone (their lock is
    free): sockets, pid and lock files, and their logs after a week."""
    d = os.path.dirname(path) or "."
    mine = os.path.basename(path)
    try:
        names = os.listdir(d)
    except OSError:
        return
    for n in names:
        if not n.endswith(".sock.lock") or n == mine + ".lock":
            continue
        base = os.path.join(d, n[:-len(".lock")])
        try:
            fd = os.open(base + ".lock", os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue            # a live daemon (or one starting)
        try:
            for f in (base, base + ".pid", base + ".lock"):
                try:
                    os.unlink(f)
                except FileNotFoundError:
                    pass
            logf = base[:-len(".sock")] + ".log"
            try:
                if time.time() - os.stat(logf).st_mtime > keep_logs_days * 86400:
                    os.unlink(logf)
            except FileNotFoundError:
                pass
            log.info("removed the files of a stale daemon: %s", base)
        except OSError as e:
            log.warning("could not clean %s: %s", base, e)
        finally:
            os.close(fd)


def _own_socket(state: DaemonState) -> bool:
    try:
        return os.stat(state.path).st_ino == state.ino
    except OSError:
        return False


def _bind(path: str) -> socket.socket:
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(tmp)
    os.chmod(tmp, 0o600)
    s.listen(64)
    s.setblocking(False)
    os.rename(tmp, path)        # atomic: replaces a stale socket file
    return s


def run_daemon(path: str, idle: float, handle: Callable[[socket.socket], None],
               still_current: Callable[[], bool] = lambda: True,
               preload_fn: Callable[[], object] = preload, check_every: float = 2.0) -> int:
    """Serve connections on ``path`` by forking; see the module docstring."""
    lock_fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            log.info("another daemon holds %s.lock; exiting", path)
            os.close(lock_fd)
            return 0
        raise
    _clean_stale(path)
    env = preload_fn()
    PRELOADED["env"] = env
    INFO.update(preloaded=env is not None)
    if not still_current():
        log.info("the code changed while preloading; exiting")
        return 0
    state = DaemonState(path, idle)
    listener = _bind(path)
    state.ino = os.stat(path).st_ino
    pid_path = path + ".pid"
    with open(pid_path, "w") as fh:
        fh.write(f"{os.getpid()}\n")
    rfd, wfd = os.pipe()
    os.set_blocking(rfd, False)
    os.set_blocking(wfd, False)
    old_wakeup = signal.set_wakeup_fd(wfd)

    def on_signal(signum, _frame) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            state.stop = signal.Signals(signum).name     # the wake-up fd ends select()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGCHLD, on_signal)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, "accept")
    sel.register(rfd, selectors.EVENT_READ, "signal")
    log.info("daemon %d listening on %s (idle timeout %.0f s)", os.getpid(), path, idle)
    last_check = time.monotonic()
    try:
        while state.stop is None:
            _reap(state)
            now = time.monotonic()
            if not state.children and now - state.last_activity >= idle:
                state.stop = "idle"
                break
            if now - last_check >= check_every:
                last_check = now
                if not _own_socket(state):
                    state.stop = "socket file removed or replaced"
                    break
                if not still_current():
                    state.stop = "code changed"
                    break
            timeout = min(check_every, max(0.05, idle - (now - state.last_activity)))
            for key, _ in sel.select(timeout):
                if key.data == "signal":
                    try:
                        while os.read(rfd, 512):
                            pass
                    except BlockingIOError:
                        pass
                    continue
                if state.stop is not None:
                    break
                try:
                    conn, _ = listener.accept()
                except BlockingIOError:
                    continue
                state.last_activity = time.monotonic()
                _fork_child(conn, handle, state, [listener.fileno(), rfd, wfd, lock_fd],
                            sel)
    finally:
        signal.set_wakeup_fd(old_wakeup)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        listener.close()
        if _own_socket(state):
            os.unlink(path)
        try:
            with open(pid_path) as fh:
                if fh.read().strip() == str(os.getpid()):
                    os.unlink(pid_path)
        except OSError:
            pass
        _reap(state)
        log.info("daemon %d exits (%s); %d children still serving", os.getpid(),
                 state.stop, len(state.children))
        logging.shutdown()
    return 0


def _reap(state: DaemonState) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            state.children.clear()
            return
        if pid == 0:
            return
        if pid in state.children:
            state.children.discard(pid)
            state.last_activity = time.monotonic()
            log.info("child %d ended (status %d)", pid, os.waitstatus_to_exitcode(status))


def _fork_child(conn: socket.socket, handle: Callable[[socket.socket], None],
                state: DaemonState, close_fds: list[int], sel) -> None:
    if threading.active_count() > 1:
        log.warning("forking with %d threads alive: %s", threading.active_count(),
                    [t.name for t in threading.enumerate()])
    for h in logging.getLogger().handlers:
        h.flush()
    pid = os.fork()
    if pid:
        conn.close()
        state.children.add(pid)
        log.info("client connected: child %d", pid)
        return
    # the child: no daemon state, default signals, then the caller's server
    try:
        signal.set_wakeup_fd(-1)
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, signal.SIGHUP):
            signal.signal(s, signal.SIG_DFL)
        sel.close()
        for fd in close_fds:
            try:
                os.close(fd)
            except OSError:
                pass
        INFO.update(mode="daemon-child", daemonPid=os.getppid())
        handle(conn)
    except BaseException:
        log.exception("daemon child failed")
    finally:
        os._exit(1)
