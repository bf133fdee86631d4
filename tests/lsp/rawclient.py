"""A minimal JSON-RPC client over a server's stdio, for protocol-edge tests
(malformed frames, unknown methods, cancel storms) that a real client never sends."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading


class RawClient:
    def __init__(self, env: dict | None = None, args: list[str] | None = None) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "stap_ls", "serve", *(args or [])],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE,
                                     env={**os.environ, **(env or {})},
                                     cwd=os.path.dirname(os.path.dirname(os.path.dirname(
                                         os.path.abspath(__file__)))))
        self.messages: "queue.Queue[dict]" = queue.Queue()
        self.notes: list[dict] = []
        self.responses: dict = {}
        self._cond = threading.Condition()
        self._id = 0
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()

    def _read(self) -> None:
        out = self.proc.stdout
        while True:
            headers = {}
            while True:
                line = out.readline()
                if not line:
                    return
                line = line.strip()
                if not line:
                    break
                k, _, v = line.decode().partition(":")
                headers[k.lower()] = v.strip()
            body = out.read(int(headers["content-length"]))
            msg = json.loads(body)
            if "id" in msg and "method" in msg:        # a request from the server
                self.send({"jsonrpc": "2.0", "id": msg["id"], "result": None})
                if msg["method"] == "workspace/configuration":
                    pass
            if "id" in msg and "method" not in msg:
                with self._cond:
                    self.responses[msg["id"]] = msg
                    self._cond.notify_all()
            elif "method" in msg:
                with self._cond:
                    self.notes.append(msg)
                    self._cond.notify_all()
            self.messages.put(msg)

    def raw(self, data: bytes) -> None:
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, msg: dict) -> None:
        body = json.dumps(msg).encode()
        self.raw(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def request(self, method: str, params=None) -> int:
        self._id += 1
        self.send({"jsonrpc": "2.0", "id": self._id, "method": method, "params": params})
        return self._id

    def notify(self, method: str, params=None) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def wait_response(self, rid: int, timeout: float = 30.0) -> dict:
        with self._cond:
            if self._cond.wait_for(lambda: rid in self.responses, timeout):
                return self.responses[rid]
        raise AssertionError(f"no response to request {rid} in {timeout} s "
                             f"(server alive: {self.proc.poll() is None})")

    def call(self, method: str, params=None, timeout: float = 30.0) -> dict:
        return self.wait_response(self.request(method, params), timeout)

    def wait_note(self, pred, timeout: float = 30.0) -> dict:
        found: list[dict] = []

        def check() -> bool:
            found[:] = [n for n in self.notes if pred(n)][:1]
            return bool(found)

        with self._cond:
            if self._cond.wait_for(check, timeout):
                return found[0]
        raise AssertionError(f"no matching notification in {timeout} s; got "
                             f"{[n.get('method') for n in self.notes][-20:]}")

    def initialize(self, options: dict | None = None) -> dict:
        r = self.call("initialize", {"processId": os.getpid(), "rootUri": None,
                                     "capabilities": {"window": {"workDoneProgress": True}},
                                     "initializationOptions": options or {}})
        self.notify("initialized", {})
        return r

    def open(self, uri: str, text: str, version: int = 1) -> None:
        self.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "systemtap", "version": version, "text": text}})

    def close(self) -> int:
        try:
            self.call("shutdown", None, timeout=10)
            self.notify("exit")
            return self.proc.wait(10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
