"""The server keeps answering whatever it is sent."""

from __future__ import annotations

import time

from tests.lsp.rawclient import RawClient

URI = "file:///tmp/robust.stp"


def _hover(c: RawClient, line: int = 0, ch: int = 16) -> dict:
    return c.call("textDocument/hover", {"textDocument": {"uri": URI},
                                         "position": {"line": line, "character": ch}})


def test_malformed_json_and_unknown_methods(raw_server):
    raw_server.open(URI, "probe begin { print(execname()) }\n")
    body = b'{"jsonrpc": "2.0", "id": 99, "method": '
    raw_server.raw(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    raw_server.raw(b"Content-Length: 5\r\n\r\n[1,2]")
    r = raw_server.call("stap/noSuchMethod", {})
    assert r["error"]["code"] == -32601
    raw_server.notify("stap/noSuchNotification", {})
    assert "result" in _hover(raw_server)
    assert raw_server.close() == 0


def test_requests_after_shutdown_are_invalid(raw_server):
    assert raw_server.call("shutdown")["result"] is None
    r = raw_server.call("textDocument/hover", {"textDocument": {"uri": URI},
                                        "position": {"line": 0, "character": 0}})
    assert r["error"]["code"] == -32600
    raw_server.notify("exit")
    assert raw_server.proc.wait(10) == 0


def test_stale_versions_and_out_of_range_edits(raw_server):
    raw_server.open(URI, "probe begin { print(execname()) }\n", version=5)
    raw_server.wait_note(lambda n: n["method"] == "textDocument/publishDiagnostics")
    for version, rng in ((3, [[0, 0], [0, 0]]), (6, [[40, 2], [99, 99]]),
                         (7, [[0, 500], [0, 900]]), (8, [[2, 0], [1, 0]])):
        raw_server.notify("textDocument/didChange", {
            "textDocument": {"uri": URI, "version": version},
            "contentChanges": [{"range": {"start": {"line": rng[0][0], "character": rng[0][1]},
                                          "end": {"line": rng[1][0], "character": rng[1][1]}},
                                "text": "x"}]})
    raw_server.notify("textDocument/didChange", {"textDocument": {"uri": URI, "version": 9},
                                          "contentChanges": [{"text": "probe begin { x = }\n"}]})
    raw_server.wait_note(lambda n: n["method"] == "textDocument/publishDiagnostics"
                  and n["params"].get("version") == 9 and n["params"]["diagnostics"])
    r = raw_server.call("textDocument/completion", {"textDocument": {"uri": URI},
                                             "position": {"line": 99, "character": 99}})
    assert "result" in r
    r = raw_server.call("textDocument/hover", {"textDocument": {"uri": "file:///not/open.stp"},
                                        "position": {"line": 0, "character": 0}})
    assert "error" in r
    assert raw_server.close() == 0


def test_cancel_storm(raw_server):
    raw_server.open(URI, "probe begin {\n  print(exec)\n}\n")
    ids = []
    for _ in range(200):
        rid = raw_server.request("textDocument/completion", {"textDocument": {"uri": URI},
                                                      "position": {"line": 1, "character": 12}})
        raw_server.notify("$/cancelRequest", {"id": rid})
        ids.append(rid)
    for rid in ids:
        r = raw_server.wait_response(rid)
        assert "result" in r or r["error"]["code"] == -32800
    assert "result" in raw_server.call("textDocument/completion", {
        "textDocument": {"uri": URI}, "position": {"line": 1, "character": 12}})
    assert raw_server.close() == 0


def test_five_megabyte_document(raw_server):
    unit = "probe begin {\n  x = 1 + 2\n  printf(\"%d\\n\", x)\n}\n"
    text = unit * (5 * 1024 * 1024 // len(unit) + 1) + "probe end { y = }\n"
    t0 = time.monotonic()
    raw_server.open(URI, text)
    note = raw_server.wait_note(lambda n: n["method"] == "textDocument/publishDiagnostics"
                         and n["params"]["diagnostics"], timeout=120)
    took = time.monotonic() - t0
    d = note["params"]["diagnostics"][0]
    assert d["range"]["start"]["line"] == text.count("\n") - 1
    r = raw_server.call("textDocument/completion", {"textDocument": {"uri": URI},
                                             "position": {"line": 1, "character": 3}},
                 timeout=60)
    assert "result" in r
    assert took < 60


def test_errors_in_features_are_answers_not_crashes(raw_server):
    raw_server.open(URI, "global x\nprobe begin { x = 1 }\n")
    r = raw_server.call("textDocument/rename", {"textDocument": {"uri": URI},
                                         "position": {"line": 1, "character": 14},
                                         "newName": "1bad"})
    assert "error" in r and "not an identifier" in r["error"]["message"]
    r = raw_server.call("workspace/executeCommand", {"command": "stap-ls.run", "arguments": [42]})
    assert "error" in r and "object" in r["error"]["message"]
    r = raw_server.call("workspace/executeCommand", {"command": "stap-ls.listProbes",
                                              "arguments": [{}]})
    assert "error" in r and "pattern" in r["error"]["message"]
    assert any(n["method"] == "window/logMessage" and "failed" in n["params"]["message"]
               for n in raw_server.notes)
    assert "result" in _hover(raw_server, 1, 14)
    assert raw_server.close() == 0


def test_machine_without_tapsets_btf_or_tracefs(tmp_path):
    c = RawClient(env={"SYSTEMTAP_TAPSET": str(tmp_path / "nonexistent"),
                       "XDG_CACHE_HOME": str(tmp_path / "cache")})
    try:
        c.initialize({"stap-ls": {"kernelRelease": "9.9.9-nonexistent"}})
        c.open(URI, "probe kernel.function(\"vfs_read\") { print($file) }\nprobe begin { x = }\n")
        msg = c.wait_note(lambda n: n["method"] == "window/showMessage", timeout=60)
        text = msg["params"]["message"]
        assert "no tapset library" in text and "no BTF" in text, text
        c.wait_note(lambda n: n["method"] == "textDocument/publishDiagnostics"
                    and n["params"]["diagnostics"])
        r = c.call("textDocument/completion", {"textDocument": {"uri": URI},
                                               "position": {"line": 0, "character": 43}})
        assert "result" in r
        r = c.call("textDocument/hover", {"textDocument": {"uri": URI},
                                          "position": {"line": 0, "character": 44}})
        assert "result" in r
        assert sum(n["method"] == "window/showMessage" for n in c.notes) == 1
        assert c.close() == 0
    finally:
        if c.proc.poll() is None:
            c.proc.kill()
