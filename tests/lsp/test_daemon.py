"""``stap-ls serve --daemon``: the relay front and the warm fork-server daemon.

Real processes throughout: ``python -m stap_ls serve --daemon`` fronts talk
to a real detached daemon over a real Unix socket.  Each test has a private
daemon directory (``STAP_LS_DAEMON_DIR``), a private version source
(``STAP_LS_DAEMON_SOURCE``, so other engineers' edits to the tree do not
retire the daemon mid-test), a small tapset library (``SYSTEMTAP_TAPSET``, so
the daemon preloads in seconds) and a private cache; the daemon's process
group is killed at teardown.  One test preloads the real tapset library.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from stap_ls.cli import relay
from tests.lsp.rawclient import RawClient

URI = "file:///tmp/daemon-test.stp"
BROKEN = "function tiny_twice:long(x:long) { return 2 * x }\nprobe begin { x = }\n"
START_TIMEOUT = 240.0         # the daemon preloads; this machine is shared and loaded


class Daemon:
    """One test's daemon directory and what is needed to find and end its daemon."""

    def __init__(self, root: Path, tiny: Path | None = None) -> None:
        self.root = root
        self.dir = root / "d"
        src = root / "src"
        src.mkdir()
        (src / "version").write_text("1\n")
        self.source = src
        self.env = {"STAP_LS_DAEMON_DIR": str(self.dir), "STAP_LS_DAEMON_SOURCE": str(src),
                    "XDG_CACHE_HOME": str(root / "cache")}
        self.env.pop("STAP_LS_DAEMON", None)
        if tiny is not None:
            self.env["SYSTEMTAP_TAPSET"] = str(tiny / "tapset")
            self.env["XDG_CACHE_HOME"] = str(tiny / "cache")
        else:
            self.env.pop("XDG_CACHE_HOME")      # the real library, the user's cache
        self.pids: set[int] = set()

    def full_env(self) -> dict:
        env = {**os.environ, **self.env}
        env.pop("STAP_LS_DAEMON", None)
        if "SYSTEMTAP_TAPSET" not in self.env:
            env.pop("SYSTEMTAP_TAPSET", None)
        return env

    @property
    def sock(self) -> str:
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        return relay.socket_path(str(self.dir), relay.version_hash(environ=self.full_env()))

    def client(self, *args: str, by_env: bool = False) -> RawClient:
        """A ``serve --daemon`` front (or ``serve`` with ``STAP_LS_DAEMON=1``)."""
        if by_env:
            return RawClient(env={**self.env, "STAP_LS_DAEMON": "1"}, args=list(args))
        return RawClient(env=self.env, args=["--daemon", *args])

    def wait_ready(self, timeout: float = START_TIMEOUT) -> int:
        """Wait until the daemon answers on its socket; return its pid."""
        t0 = time.monotonic()
        pid_file = Path(self.sock + ".pid")
        while time.monotonic() - t0 < timeout:
            if pid_file.exists() and os.path.exists(self.sock):
                try:
                    pid = int(pid_file.read_text())
                except ValueError:
                    pid = 0
                if pid:
                    self.pids.add(pid)
                    return pid
            time.sleep(0.2)
        raise AssertionError(f"no daemon on {self.sock} after {timeout} s; log:\n{self.log()}")

    def log(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.dir.glob("*.log")))

    def kill(self) -> None:
        for p in self.dir.glob("*.pid"):
            try:
                self.pids.add(int(p.read_text()))
            except (ValueError, OSError):
                pass
        for pid in self.pids:
            try:
                os.killpg(pid, signal.SIGKILL)       # the daemon leads its own session
            except (ProcessLookupError, PermissionError):
                pass


@pytest.fixture(scope="module")
def tiny():
    """A one-file tapset library and its cache, parsed once (by ``stap-ls check``)
    so that no test depends on how long a cold library parse takes."""
    root = Path(tempfile.mkdtemp(prefix="sdtiny", dir="/tmp"))
    tap = root / "tapset"
    tap.mkdir()
    (tap / "tiny.stp").write_text(
        "/** sfunction tiny_one - one */\nfunction tiny_one:long() { return 1 }\n"
        "probe tiny.begin = begin { }\n")
    env = {**os.environ, "SYSTEMTAP_TAPSET": str(tap), "XDG_CACHE_HOME": str(root / "cache")}
    out = subprocess.run([sys.executable, "-m", "stap_ls", "check", "-p2", "-e",
                          "probe tiny.begin { print(tiny_one()) }"], env=env,
                         capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parents[2])
    # pass 2 itself may fail in a tree under edit; what matters is the parsed cache
    assert any((root / "cache").rglob("*")), out.stderr
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def daemon(tiny):
    root = Path(tempfile.mkdtemp(prefix="sd", dir="/tmp"))   # short: socket paths <= 107
    d = Daemon(root, tiny)
    yield d
    d.kill()
    shutil.rmtree(root, ignore_errors=True)


def session(d: Daemon, *args: str, text: str = BROKEN, by_env: bool = False
            ) -> tuple[dict, dict]:
    """initialize -> didOpen (an error) -> publishDiagnostics; the diagnostics and
    ``stap-ls/serverInfo``."""
    c = d.client(*args, by_env=by_env)
    try:
        c.initialize()
        c.open(URI, text)
        note = c.wait_note(lambda n: n["method"] == "textDocument/publishDiagnostics"
                           and n["params"]["diagnostics"], timeout=120)
        info = c.call("stap-ls/serverInfo", {})["result"]
        assert c.close() == 0
    finally:
        if c.proc.poll() is None:
            c.proc.kill()
            c.proc.wait()
    return note["params"], info


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def children_of(pid: int) -> list[tuple[int, str]]:
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            fields = (p / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append((int(p.name), fields[0]))
    return out


def related(d: Daemon) -> list[str]:
    """Live processes started for this test's daemon directory (they inherit it)."""
    mark = f"STAP_LS_DAEMON_DIR={d.dir}".encode()
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit() or int(p.name) == os.getpid():
            continue
        try:
            if mark in (p / "environ").read_bytes().split(b"\0") and alive(int(p.name)):
                cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ")[:120]
                out.append(f"{p.name}: {cmd!r}")
        except OSError:
            continue
    return out


def wait_gone(pid: int, timeout: float) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if not alive(pid):
            return True
        time.sleep(0.1)
    return False


def assert_error_at_line_1(params: dict) -> None:
    assert params["uri"] == URI
    d = params["diagnostics"][0]
    assert d["severity"] == 1 and d["range"]["start"]["line"] == 1, d


# -- the front -----------------------------------------------------------------------

def test_front_imports_nothing_heavy():
    code = ("import sys, stap_ls.cli, stap_ls.cli.serve, stap_ls.cli.relay\n"
            "heavy = [m for m in ('pygls', 'lsprotocol', 'lark', 'stap_ls.ide', 'stap_ls.lsp')"
            " if m in sys.modules]\nprint(heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout


def test_relay_passes_five_megabytes_intact(tmp_path):
    """The relay loop itself, over a real socket to an echoing peer, both ways."""
    payload = os.urandom(5 * 1024 * 1024)
    a, b = socket.socketpair()
    got_head: list[dict] = []

    def echo() -> None:
        got_head.append(relay.read_header(b))
        b.sendall(relay.ACK)
        while True:
            data = b.recv(1 << 16)
            if not data:
                break
            b.sendall(data)
        b.close()

    threading.Thread(target=echo, daemon=True).start()
    in_r, in_w = os.pipe()
    out_path = tmp_path / "out"
    out_fd = os.open(out_path, os.O_WRONLY | os.O_CREAT, 0o600)

    def feed() -> None:
        with os.fdopen(in_w, "wb") as fh:
            fh.write(payload)

    threading.Thread(target=feed, daemon=True).start()
    code = relay.relay(a, relay.header(["-v"]), in_r, out_fd)
    os.close(out_fd)
    os.close(in_r)
    assert code == 0
    assert got_head[0]["args"] == ["-v"] and got_head[0]["cwd"] == os.getcwd()
    data = out_path.read_bytes()
    assert len(data) == len(payload)
    assert hashlib.sha256(data).digest() == hashlib.sha256(payload).digest()


def test_relay_reports_a_daemon_that_closed_without_a_child():
    a, b = socket.socketpair()
    b.close()
    assert relay.relay(a, relay.header([])) is None


def test_unsafe_daemon_directory_is_refused(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(relay.DaemonError, match="not a directory"):
        relay.ensure_dir(str(f))
    open_dir = tmp_path / "open"
    open_dir.mkdir(mode=0o777)
    os.chmod(open_dir, 0o777)
    relay.ensure_dir(str(open_dir))
    assert os.stat(open_dir).st_mode & 0o777 == 0o700


def test_bad_idle_timeout_is_a_clear_error():
    out = subprocess.run([sys.executable, "-m", "stap_ls", "serve", "--daemon",
                          "--idle-timeout", "soon"], capture_output=True, text=True,
                         timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode == 2 and "--idle-timeout wants minutes" in out.stderr


# -- the daemon end to end ---------------------------------------------------------

def test_first_session_in_process_then_forked_children(daemon):
    params, info = session(daemon)
    assert_error_at_line_1(params)
    assert info["mode"] == "in-process"          # the first start is never slower than today
    pid = daemon.wait_ready()
    assert alive(pid)
    params, info = session(daemon)
    assert_error_at_line_1(params)
    assert info["mode"] == "daemon-child" and info["daemonPid"] == pid
    assert info["ppid"] == pid and info["pid"] != pid
    assert info["usesPreloaded"] is True
    assert f"daemon child {info['pid']} serves a client" in daemon.log()
    # a third client, asking by STAP_LS_DAEMON=1, gets another child of the same daemon
    _, info3 = session(daemon, by_env=True)
    assert info3["daemonPid"] == pid and info3["pid"] != info["pid"]


def test_two_concurrent_clients_and_no_zombies(daemon):
    session(daemon)
    pid = daemon.wait_ready()
    c1, c2 = daemon.client(), daemon.client()
    try:
        for c, text in ((c1, BROKEN), (c2, "probe begin { y = 1 }\nprobe end { z = }\n")):
            c.initialize()
            c.open(URI, text)
        n1 = c1.wait_note(lambda n: n["method"] == "textDocument/publishDiagnostics"
                          and n["params"]["diagnostics"], timeout=120)
        n2 = c2.wait_note(lambda n: n["method"] == "textDocument/publishDiagnostics"
                          and n["params"]["diagnostics"], timeout=120)
        assert n1["params"]["diagnostics"][0]["range"]["start"]["line"] == 1
        assert n2["params"]["diagnostics"][0]["range"]["start"]["line"] == 1
        i1 = c1.call("stap-ls/serverInfo", {})["result"]
        i2 = c2.call("stap-ls/serverInfo", {})["result"]
        assert i1["mode"] == i2["mode"] == "daemon-child"
        assert i1["daemonPid"] == i2["daemonPid"] == pid and i1["pid"] != i2["pid"]
        kids = {k for k, _ in children_of(pid)}
        assert {i1["pid"], i2["pid"]} <= kids
        assert c1.close() == 0
        # the other client is unaffected by the first one leaving
        r = c2.call("textDocument/hover", {"textDocument": {"uri": URI},
                                           "position": {"line": 0, "character": 7}})
        assert "result" in r
        # a client killed without shutdown: its child sees end of input and exits
        c2.proc.kill()
        c2.proc.wait()
    finally:
        for c in (c1, c2):
            if c.proc.poll() is None:
                c.proc.kill()
                c.proc.wait()
    assert wait_gone(i1["pid"], 30) and wait_gone(i2["pid"], 30)
    time.sleep(0.5)
    left = children_of(pid)
    assert left == [], f"zombies or children left: {left}"
    assert any(r.startswith(f"{pid}:") for r in related(daemon))    # the detector sees it
    os.kill(pid, signal.SIGTERM)
    assert wait_gone(pid, 30), "the daemon ignored SIGTERM"
    assert not os.path.exists(daemon.sock), "the daemon left its socket"
    assert "exits (SIGTERM)" in daemon.log()
    t0 = time.monotonic()
    while related(daemon) and time.monotonic() - t0 < 20:
        time.sleep(0.2)
    assert related(daemon) == [], "processes outlived the daemon and its clients"


def test_stale_socket_is_replaced(daemon):
    path = daemon.sock
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()                                  # a socket file nobody listens on
    Path(path + ".pid").write_text("999999\n")
    assert relay.connect(path) is None
    # the files of another version's daemon, long gone
    other = daemon.dir / "00000000deadbeef"
    for suffix in (".sock.lock", ".sock.pid", ".log"):
        Path(f"{other}{suffix}").write_text("old\n")
    os.utime(f"{other}.log", (time.time() - 8 * 86400,) * 2)
    params, info = session(daemon)
    assert_error_at_line_1(params)
    assert info["mode"] == "in-process"
    t0 = time.monotonic()
    while Path(path + ".pid").read_text().strip() == "999999":
        assert time.monotonic() - t0 < START_TIMEOUT, daemon.log()
        time.sleep(0.2)
    pid = daemon.wait_ready()
    _, info = session(daemon)
    assert info["mode"] == "daemon-child" and info["daemonPid"] == pid
    left = sorted(p.name for p in daemon.dir.iterdir() if p.name.startswith("00000000"))
    assert left == [], left


def test_garbage_on_the_socket_does_not_hurt_the_daemon(daemon):
    session(daemon)
    pid = daemon.wait_ready()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(daemon.sock)
    s.sendall(b"GET / HTTP/1.0\r\n\r\n" + b"x" * 100)
    s.settimeout(30)
    try:
        assert s.recv(100) == b""      # the child gave up on it and closed ...
    except ConnectionResetError:
        pass                           # ... with our bytes unread
    s.close()
    _, info = session(daemon)
    assert info["mode"] == "daemon-child" and info["daemonPid"] == pid
    assert "daemon child failed" in daemon.log() and "not a stap-ls relay" in daemon.log()


def test_idle_timeout_and_code_change_end_the_daemon(daemon):
    # --idle-timeout 0.1 minutes = 6 s
    session(daemon, "--idle-timeout", "0.1")
    pid = daemon.wait_ready()
    _, info = session(daemon)
    assert info["daemonPid"] == pid
    t_closed = time.monotonic()
    assert wait_gone(pid, 30), "the daemon did not exit when idle"
    assert time.monotonic() - t_closed >= 4.0     # and not before its timeout
    assert "exits (idle)" in daemon.log()
    assert not os.path.exists(daemon.sock)

    # a new daemon (default timeout); then the code changes under it
    session(daemon)
    pid2 = daemon.wait_ready()
    assert pid2 != pid
    old_sock = daemon.sock
    (daemon.source / "version").write_text("2, a longer version\n")
    assert wait_gone(pid2, 30), "the daemon did not notice the code change"
    assert "exits (code changed)" in daemon.log()
    assert not os.path.exists(old_sock)
    assert daemon.sock != old_sock                 # new code, new socket name


def test_five_megabyte_document_through_the_daemon(daemon):
    session(daemon)
    daemon.wait_ready()
    unit = "probe begin {\n  x = 1 + 2\n  printf(\"%d\\n\", x)\n}\n"
    text = unit * (5 * 1024 * 1024 // len(unit) + 1) + "probe end { y = }\n"
    c = daemon.client()
    try:
        c.initialize()
        c.open(URI, text)
        note = c.wait_note(lambda n: n["method"] == "textDocument/publishDiagnostics"
                           and n["params"]["diagnostics"], timeout=180)
        assert note["params"]["diagnostics"][0]["range"]["start"]["line"] == text.count("\n") - 1
        info = c.call("stap-ls/serverInfo", {})["result"]
        assert info["mode"] == "daemon-child"
        syms = c.call("textDocument/documentSymbol", {"textDocument": {"uri": URI}},
                      timeout=120)["result"]
        assert len(syms) == text.count("probe begin")     # the broken "end" has none
        assert c.close() == 0
    finally:
        if c.proc.poll() is None:
            c.proc.kill()
            c.proc.wait()


def test_real_library_is_preloaded_and_used():
    root = Path(tempfile.mkdtemp(prefix="sd", dir="/tmp"))
    d = Daemon(root)
    try:
        session(d)
        pid = d.wait_ready()
        c = d.client()
        try:
            c.initialize()
            c.open(URI, "probe begin { printf(\"%s\\n\", execnam()) }\n")
            info = c.call("stap-ls/serverInfo", {})["result"]
            assert info["daemonPid"] == pid and info["usesPreloaded"] is True
            # library knowledge without waiting for a load: completion of a tapset function
            r = c.call("textDocument/completion", {"textDocument": {"uri": URI},
                                                   "position": {"line": 0, "character": 35}})
            labels = {i["label"] for i in r["result"]["items"]}
            assert "execname" in labels, sorted(labels)[:20]
            assert c.close() == 0
        finally:
            if c.proc.poll() is None:
                c.proc.kill()
                c.proc.wait()
    finally:
        d.kill()
        shutil.rmtree(root, ignore_errors=True)


def test_other_settings_load_their_own_environment(daemon, tiny, tmp_path):
    """A client whose settings change what the environment depends on does not
    get the preloaded one (the child loads its own, as ``serve`` would)."""
    session(daemon)
    pid = daemon.wait_ready()
    other = tmp_path / "tapset"
    other.mkdir()
    (other / "other.stp").write_text("function other_two:long() { return 2 }\n")
    c = daemon.client()
    try:
        c.initialize({"stap-ls": {"tapsetDirs": [str(other)]}})
        c.open(URI, BROKEN)
        c.wait_note(lambda n: n["method"] == "textDocument/publishDiagnostics"
                    and n["params"]["diagnostics"], timeout=120)
        info = c.call("stap-ls/serverInfo", {})["result"]
        assert info["daemonPid"] == pid and info["usesPreloaded"] is False
        assert c.close() == 0
    finally:
        if c.proc.poll() is None:
            c.proc.kill()
            c.proc.wait()
