"""The front half of ``stap-ls serve --daemon``: find the warm daemon, relay bytes.

This module imports only the standard library (no pygls, lsprotocol or lark),
so a front process that finds a daemon is running in a few tens of
milliseconds.  It knows:

* **where** the daemon listens: ``$STAP_LS_DAEMON_DIR`` (tests), else
  ``$XDG_RUNTIME_DIR/stap-ls``, else ``/tmp/stap-ls-$UID``; the directory is
  created with mode 0700 and refused if another user owns it or it is open
  to others.  The socket is ``<hash>.sock``, where the hash covers the
  package's source files (path, size, mtime), the Python interpreter and the
  environment variables the preloaded environment depends on — so changed
  code or a different tapset/cache setting gets its own daemon.
  (``$STAP_LS_DAEMON_SOURCE`` names another directory to hash: tests use it
  to be independent of edits to the tree.)
* **how** to start one: :func:`spawn_daemon` has ``sh`` start a detached
  ``python -m stap_ls serve --daemon-server SOCKET`` in the background of a
  new session, stdin from ``/dev/null``, stdout and stderr to ``<hash>.log``
  — it never holds the client's pipes, and it is not a child of the front
  (no zombie).
* **the relay**: :func:`relay` sends one header line (the client's working
  directory, environment and serve options, as JSON) and then copies stdin to
  the socket and the socket to stdout until the server side closes.  One
  thread per direction, so neither direction can block the other.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys

ENV_DIR = "STAP_LS_DAEMON_DIR"
#: the directory whose files make the version hash (default: this package; tests)
ENV_SOURCE = "STAP_LS_DAEMON_SOURCE"
#: the first bytes a daemon child reads: this, 8 hex digits of length, a JSON object
HEADER = b"stap-ls-relay/1 "
#: the daemon child's answer once it has taken the client (before any LSP byte)
ACK = b"stap-ls-ok\n"
ACK_TIMEOUT = 20.0
#: environment variables the preloaded environment (library, docs, caches) depends on
ENV_KEYS = ("HOME", "XDG_CACHE_HOME")
ENV_PREFIXES = ("SYSTEMTAP_",)
CHUNK = 1 << 16


class DaemonError(Exception):
    """The daemon directory cannot be used safely (the message says why)."""


def package_dir() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def socket_dir() -> str:
    d = os.environ.get(ENV_DIR)
    if d:
        return d
    run = os.environ.get("XDG_RUNTIME_DIR")
    if run and os.path.isdir(run):
        return os.path.join(run, "stap-ls")
    return f"/tmp/stap-ls-{os.getuid()}"


def ensure_dir(d: str) -> str:
    """Create ``d`` with mode 0700 (or check an existing one) and return it."""
    try:
        os.makedirs(d, mode=0o700, exist_ok=True)
        st = os.lstat(d)
    except FileExistsError as e:
        raise DaemonError(f"{d} is not a directory") from e
    except OSError as e:
        raise DaemonError(f"cannot create the daemon directory {d}: {e.strerror}") from e
    import stat
    if not stat.S_ISDIR(st.st_mode):
        raise DaemonError(f"{d} is not a directory")
    if st.st_uid != os.getuid():
        raise DaemonError(f"{d} belongs to uid {st.st_uid}, not to you")
    if st.st_mode & 0o077:
        try:
            os.chmod(d, 0o700)
        except OSError as e:
            raise DaemonError(f"{d} is open to other users and cannot be fixed: "
                              f"{e.strerror}") from e
    return d


def version_hash(root: str | None = None, environ: dict | None = None) -> str:
    """A short hash of the package's code and what the preloaded state depends on."""
    environ = os.environ if environ is None else environ
    root = root or environ.get(ENV_SOURCE) or package_dir()
    parts = [f"{sys.executable}\0{sys.version}\0"]
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for f in sorted(filenames):
            if f.endswith((".pyc", ".pyo")):
                continue
            p = os.path.join(dirpath, f)
            try:
                st = os.stat(p)
            except OSError:
                continue
            parts.append(f"{os.path.relpath(p, root)}\0{st.st_size}\0{st.st_mtime_ns}\0")
    for k in sorted(environ):
        if k in ENV_KEYS or k.startswith(ENV_PREFIXES):
            parts.append(f"{k}={environ[k]}\0")
    # a version key, not a secret (the directory is private): zlib imports in
    # microseconds where hashlib (OpenSSL) costs milliseconds of the front's start
    import zlib
    data = "".join(parts).encode("utf-8", "surrogateescape")
    return f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}"


def socket_path(d: str | None = None, h: str | None = None) -> str:
    path = os.path.join(d or ensure_dir(socket_dir()), f"{h or version_hash()}.sock")
    if len(os.fsencode(path)) + 12 > 107:      # sun_path, with room for ".PID.tmp"
        raise DaemonError(f"the socket path {path} is too long for a Unix socket")
    return path


def connect(path: str, timeout: float = 2.0) -> socket.socket | None:
    """A connection to the daemon at ``path``, or None if none answers there
    (no file, or a stale file whose daemon is gone)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        if e.errno in (errno.ENOENT, errno.ECONNREFUSED, errno.ENOTSOCK, errno.EAGAIN,
                       errno.ETIMEDOUT) or isinstance(e, TimeoutError):
            return None
        raise DaemonError(f"cannot connect to {path}: {e.strerror or e}") from e
    s.settimeout(None)
    return s


def spawn_daemon(path: str, idle_minutes: float) -> None:
    """Start a detached daemon for ``path`` (it exits at once if one is starting)."""
    log_path = path[:-len(".sock")] + ".log" if path.endswith(".sock") else path + ".log"
    argv = [sys.executable, "-m", "stap_ls", "serve", "--daemon-server", path,
            "--idle-timeout", str(idle_minutes)]
    env = dict(os.environ)
    env.pop("STAP_LS_DAEMON", None)
    parent = os.path.dirname(package_dir())
    env["PYTHONPATH"] = os.pathsep.join([parent] + [p for p in env.get("PYTHONPATH", "").split(
        os.pathsep) if p])
    import subprocess
    # sh starts the daemon in the background and exits: the daemon is nobody's
    # child (no zombie), and subprocess's fork+exec is safe from a threaded server
    out = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        subprocess.run(["/bin/sh", "-c", '"$@" &', "stap-ls-spawn", *argv],
                       stdin=subprocess.DEVNULL, stdout=out, stderr=out, close_fds=True,
                       start_new_session=True, cwd="/", env=env, timeout=30, check=False)
    finally:
        os.close(out)


def header(args: list[str]) -> bytes:
    """The first bytes the daemon child reads: magic, 8 hex digits of length, JSON."""
    body = json.dumps({"cwd": os.getcwd(), "env": dict(os.environ), "args": args}).encode()
    return HEADER + b"%08x" % len(body) + body


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ValueError("the client closed before its header was complete")
        buf += chunk
    return bytes(buf)


def read_header(sock: socket.socket, limit: int = 1 << 22) -> dict:
    """The daemon child's side: read the header (raises ValueError if it is bad)."""
    magic = _recv_exactly(sock, len(HEADER) + 8)
    if not magic.startswith(HEADER):
        raise ValueError(f"not a stap-ls relay: {magic!r}")
    try:
        n = int(magic[len(HEADER):], 16)
    except ValueError:
        raise ValueError(f"bad header length {magic[len(HEADER):]!r}") from None
    if n > limit:
        raise ValueError(f"header of {n} bytes is too long")
    info = json.loads(_recv_exactly(sock, n))
    if not isinstance(info, dict):
        raise ValueError("the header is not a JSON object")
    return info


def relay(sock: socket.socket, head: bytes, stdin_fd: int = 0, stdout_fd: int = 1
          ) -> int | None:
    """Copy stdin -> socket and socket -> stdout until the server closes.

    Returns None, before reading any of stdin, if the daemon closed the
    connection without a child taking it (it was exiting): the caller can
    then serve by itself with nothing lost."""
    import threading
    try:
        sock.sendall(head)
        sock.settimeout(ACK_TIMEOUT)
        got = _recv_exactly(sock, len(ACK))
        sock.settimeout(None)
    except (OSError, ValueError):
        return None
    if got != ACK:
        return None

    def upstream() -> None:
        try:
            while True:
                data = os.read(stdin_fd, CHUNK)
                if not data:
                    break
                sock.sendall(data)
        except OSError:
            pass
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    threading.Thread(target=upstream, daemon=True).start()
    try:
        while True:
            data = sock.recv(CHUNK)
            if not data:
                break
            view = memoryview(data)
            while view:
                n = os.write(stdout_fd, view)
                view = view[n:]
    except OSError:
        return 1
    return 0
