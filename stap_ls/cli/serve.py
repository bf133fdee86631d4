"""``stap-ls serve [--daemon] [--tcp HOST:PORT] [--log FILE] [-v]``: the language server.

Also reached as ``stap-ls --language-server`` so clients configured for
stap's own server can use this one unchanged.  Speaks LSP on stdio by
default; ``--tcp`` listens on a socket (for debugging).  Logs go to stderr
(or ``--log FILE``), never to stdout, which carries the protocol.

``--daemon`` (or ``STAP_LS_DAEMON=1``) makes this process a thin relay
(:mod:`stap_ls.cli.relay`, standard library only) to a warm per-user daemon
(:mod:`stap_ls.lsp.daemon`) that forks a ready server per client.  When no
daemon answers, this first session is served in this process as without
``--daemon`` (so it is never slower), and a daemon is started in the
background once its environment has loaded (or when it ends).
``--daemon-server SOCKET`` is that daemon (internal).  This module imports
nothing heavy before it knows which of the three it is.
"""

from __future__ import annotations

import os
import sys

USAGE = ("usage: stap-ls serve [--stdio] [--daemon [--idle-timeout MINUTES]] "
         "[--tcp HOST:PORT] [--log FILE] [-v]\n")
IDLE_MINUTES = 10.0
#: a first session starts the daemon when its environment is loaded, or after this
SPAWN_AFTER = 60.0


class ServeOptions:
    """The parsed command line (a plain class: ``dataclasses`` costs import time)."""

    def __init__(self) -> None:
        self.tcp: str | None = None
        self.log_file: str | None = None
        self.verbosity = 0
        self.daemon = os.environ.get("STAP_LS_DAEMON", "") not in ("", "0")
        self.daemon_server: str | None = None
        self.idle_minutes = IDLE_MINUTES
        #: the options a daemon child should apply as its own
        self.forward: list[str] = []
        #: no daemon answered here: start one once this session is loaded
        self.spawn_path: str | None = None


def parse(argv: list[str]) -> ServeOptions | int:
    o = ServeOptions()
    args = list(argv)
    while args:
        a = args.pop(0)
        if a in ("-h", "--help"):
            sys.stdout.write(USAGE)
            return 0
        if a == "--tcp" and args:
            o.tcp = args.pop(0)
        elif a.startswith("--tcp="):
            o.tcp = a.split("=", 1)[1]
        elif a == "--log" and args:
            o.log_file = os.path.abspath(args.pop(0))
            o.forward += ["--log", o.log_file]
        elif a == "-v":
            o.verbosity += 1
            o.forward.append(a)
        elif a in ("--stdio", "--language-server"):
            pass
        elif a == "--daemon":
            o.daemon = True
        elif a == "--no-daemon":
            o.daemon = False
        elif a == "--daemon-server" and args:
            o.daemon_server = args.pop(0)
        elif a in ("--idle-timeout",) and args or a.startswith("--idle-timeout="):
            v = args.pop(0) if "=" not in a else a.split("=", 1)[1]
            try:
                o.idle_minutes = float(v)
            except ValueError:
                o.idle_minutes = -1.0
            if not o.idle_minutes > 0:
                sys.stderr.write(f"stap-ls serve: --idle-timeout wants minutes > 0, not '{v}'\n")
                return 2
        else:
            sys.stderr.write(f"stap-ls serve: unexpected argument '{a}'\n{USAGE}")
            return 2
    if o.tcp and o.daemon:
        o.daemon = False          # the daemon relays stdio; --tcp is for debugging
    return o


def main(argv: list[str]) -> int:
    o = parse(argv)
    if isinstance(o, int):
        return o
    if o.daemon_server:
        return _daemon(o)
    if o.daemon:
        code = _front(o)
        if code is not None:
            return code
    return _serve(o)


def _front(o: ServeOptions) -> int | None:
    """Relay to a running daemon (its exit code), or None to serve here."""
    from stap_ls.cli import relay
    try:
        path = relay.socket_path()
        sock = relay.connect(path)
        if sock is not None:
            code = relay.relay(sock, relay.header(o.forward))
            if code is not None:
                os._exit(code)      # the stdin thread may sit in read(): do not wait for it
            # the daemon closed without taking us (it was exiting): start another
        o.spawn_path = path
    except (relay.DaemonError, OSError) as e:
        sys.stderr.write(f"stap-ls serve: no daemon ({e}); serving in this process\n")
    return None


def _setup_process() -> None:
    import multiprocessing
    # the library may parse on worker processes from a loader thread: forking a
    # threaded server can deadlock, a fork server cannot
    try:
        multiprocessing.set_start_method("forkserver", force=True)
    except (ValueError, RuntimeError):
        pass
    from stap_ls.syntax.parser import raise_recursion_limit
    raise_recursion_limit()
    import threading
    threading.stack_size(64 * 1024 * 1024)


def _logging(o: ServeOptions, force: bool = False) -> None:
    import logging
    level = (logging.WARNING, logging.INFO)[min(o.verbosity, 1)] if o.verbosity < 2 \
        else logging.DEBUG
    logging.basicConfig(filename=o.log_file, level=level, force=force,
                        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")


def _serve(o: ServeOptions, preloaded=None, configured: bool = False, server=None) -> int:
    import logging
    if not configured:
        _logging(o)
    _setup_process()
    if server is None:
        from stap_ls.lsp.daemon import register_info
        from stap_ls.lsp.server import build_server
        server = build_server()
        register_info(server)
    server.preloaded = preloaded
    spawn = _daemon_spawner(o, server)
    if o.tcp:
        host, _, port = o.tcp.rpartition(":")
        if not port.isdigit():
            sys.stderr.write(f"stap-ls serve: --tcp wants HOST:PORT, not '{o.tcp}'\n")
            return 2
        try:
            server.start_tcp(host or "127.0.0.1", int(port))
        except OSError as e:          # e.g. the port is taken: a message, not a traceback
            sys.stderr.write(f"stap-ls serve: cannot listen on {o.tcp}: {e.strerror or e}\n")
            return 2
    else:
        server.start_io()
    # the client went away (end of input): do not wait for background loaders
    server.runs.stop_all()
    spawn()
    logging.shutdown()
    sys.stdout.flush()
    os._exit(0)


def _daemon_spawner(o: ServeOptions, server):
    """For a first ``--daemon`` session served here: start the daemon once this
    server's environment has loaded (so its preload does not compete with our
    own start on a small machine), or when the session ends (``shutdown``,
    ``exit`` or end of input), whichever is first.  Returns the call for the
    end of input."""
    if not o.spawn_path:
        return lambda: None
    import threading
    lock = threading.Lock()
    done: list[bool] = []

    def spawn() -> None:
        with lock:
            if done:
                return
            done.append(True)
            from stap_ls.cli import relay
            try:
                relay.spawn_daemon(o.spawn_path, o.idle_minutes)
            except (OSError, ValueError) as e:
                sys.stderr.write(f"stap-ls serve: cannot start the daemon: {e}\n")

    def after_load() -> None:
        server.env_ready.wait(SPAWN_AFTER)
        spawn()

    threading.Thread(target=after_load, name="stap-ls-spawn", daemon=True).start()
    # `exit` ends the process at once (os._exit): start the daemon on the way out
    handle_message = server.protocol.handle_message

    def handle(message):
        if getattr(message, "method", None) in ("shutdown", "exit"):
            spawn()
        return handle_message(message)

    server.protocol.handle_message = handle
    return spawn


def _daemon(o: ServeOptions) -> int:
    """The daemon process: preload, then fork a server per connection."""
    import logging
    try:
        os.setsid()                 # lead our own session and process group
    except OSError:
        pass
    o.verbosity = max(o.verbosity, 1)
    _logging(o)
    logging.getLogger("pygls").setLevel(logging.WARNING)
    _setup_process()
    from stap_ls.cli import relay
    from stap_ls.lsp import daemon
    path = o.daemon_server or ""
    name = os.path.basename(path)
    expected = name[:-len(".sock")] if name.endswith(".sock") else None

    def still_current() -> bool:
        return expected is None or relay.version_hash() == expected

    def handle(conn) -> None:        # in the forked child
        conn.setblocking(True)
        info = relay.read_header(conn)
        try:
            os.chdir(info.get("cwd") or "/")
        except OSError:
            pass
        if isinstance(info.get("env"), dict):
            os.environ.clear()
            os.environ.update({str(k): str(v) for k, v in info["env"].items()})
        child = parse([str(a) for a in info.get("args") or []])
        if isinstance(child, int):
            child = ServeOptions()
        conn.sendall(relay.ACK)
        os.dup2(conn.fileno(), 0)
        os.dup2(conn.fileno(), 1)
        conn.close()
        logging.getLogger("stap_ls.daemon").info(
            "daemon child %d serves a client (daemon %d, cwd %s)", os.getpid(), os.getppid(),
            os.getcwd())
        if child.log_file or child.verbosity:
            _logging(child, force=True)
        else:                       # as `serve`: warnings only (to the daemon's log)
            logging.getLogger().setLevel(logging.WARNING)
        _serve(child, preloaded=daemon.PRELOADED.get("env"), configured=True,
               server=daemon.PRELOADED.get("server"))

    try:
        code = daemon.run_daemon(path, o.idle_minutes * 60, handle, still_current)
    except Exception:
        logging.getLogger("stap_ls.daemon").exception("the daemon failed")
        code = 1
    logging.shutdown()
    os._exit(code)      # tearing down the preloaded heap object by object takes seconds
