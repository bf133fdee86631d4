"""``stap-ls serve --tcp HOST:PORT`` end to end: a real server process on a free
port, a raw JSON-RPC client over the socket (initialize -> didOpen ->
diagnostics -> shutdown -> exit), and the process ends."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BROKEN = "global n\nprobe begin { n = 1 + }\n"
URI = "file:///tmp/tcp-test.stp"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "stap_ls", "serve", *args], cwd=ROOT,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


class SocketClient:
    """Content-Length framed JSON-RPC over a socket; answers server requests with null."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.seen: list[dict] = []
        self.next_id = 0

    def send(self, msg: dict) -> None:
        body = json.dumps(msg).encode()
        self.sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def request(self, method: str, params=None) -> int:
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        return self.next_id

    def notify(self, method: str, params=None) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def _read_one(self, deadline: float) -> dict | None:
        while b"\r\n\r\n" not in self.buf:
            if not self._fill(deadline):
                return None
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        length = int(dict(line.split(b":", 1) for line in head.split(b"\r\n"))
                     [b"Content-Length"].strip())
        self.buf = rest
        while len(self.buf) < length:
            if not self._fill(deadline):
                return None
        body, self.buf = self.buf[:length], self.buf[length:]
        msg = json.loads(body)
        if "method" in msg and "id" in msg:
            self.send({"jsonrpc": "2.0", "id": msg["id"], "result": None})
        return msg

    def _fill(self, deadline: float) -> bool:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        if not data:
            return False
        self.buf += data
        return True

    def wait(self, pred, timeout: float, what: str) -> dict:
        deadline = time.monotonic() + timeout
        for m in self.seen:
            if pred(m):
                return m
        while True:
            m = self._read_one(deadline)
            if m is None:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}; got "
                                     f"{[x.get('method', x.get('id')) for x in self.seen][-15:]}")
            self.seen.append(m)
            if pred(m):
                return m


def _connect(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> socket.socket:
    t0 = time.monotonic()
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(f"server exited with {proc.returncode}: "
                                     f"{proc.stderr.read().decode()[-2000:]}") from None
            if time.monotonic() - t0 > timeout:
                raise AssertionError(f"nothing listens on port {port} after {timeout} s")
            time.sleep(0.1)


def test_tcp_session():
    port = _free_port()
    proc = _serve("--tcp", f"127.0.0.1:{port}")
    try:
        sock = _connect(port, proc)
        c = SocketClient(sock)
        rid = c.request("initialize", {"processId": os.getpid(), "rootUri": None,
                                       "capabilities": {}})
        init = c.wait(lambda m: m.get("id") == rid and "method" not in m, 60, "initialize")
        assert init["result"]["capabilities"]["completionProvider"]
        c.notify("initialized", {})
        c.notify("textDocument/didOpen", {"textDocument": {
            "uri": URI, "languageId": "systemtap", "version": 1, "text": BROKEN}})
        diag = c.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics"
                      and m["params"]["uri"] == URI and m["params"]["diagnostics"], 60,
                      "diagnostics")
        d = diag["params"]["diagnostics"][0]
        assert d["severity"] == 1 and d["range"]["start"]["line"] == 1, d
        rid = c.request("shutdown")
        assert c.wait(lambda m: m.get("id") == rid and "method" not in m, 30,
                      "shutdown")["result"] is None
        c.notify("exit")
        assert proc.wait(20) == 0
        sock.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_tcp_bad_address_is_a_clear_error():
    proc = _serve("--tcp", "127.0.0.1:notaport")
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 2
    assert b"--tcp wants HOST:PORT" in err


def test_tcp_port_in_use_is_a_clear_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = _serve("--tcp", f"127.0.0.1:{port}")
        try:
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode != 0, "the server cannot listen on a port that is taken"
    assert b"Traceback" not in err, err.decode()[-2000:]
    assert str(port).encode() in err or b"in use" in err, err.decode()[-2000:]
