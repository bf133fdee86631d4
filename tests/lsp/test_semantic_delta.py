"""Semantic-token deltas: the pure edit computation on random arrays, the
per-document history, and ``textDocument/semanticTokens/full/delta`` through
a real server process on stdio."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from stap_ls.ide.tokens import TokenEdit, TokenHistory, apply_edits, token_edits
from tests.lsp.rawclient import RawClient

tokens = st.lists(st.tuples(*[st.integers(0, 4)] * 5), max_size=30).map(
    lambda ts: [x for t in ts for x in t])


@settings(max_examples=400, deadline=None)
@given(tokens, tokens)
def test_edits_turn_old_into_new(old, new):
    edits = token_edits(old, new)
    assert apply_edits(old, edits) == new
    assert len(edits) <= 1
    for e in edits:                                  # whole tokens only
        assert e.start % 5 == 0 and e.delete_count % 5 == 0 and len(e.data) % 5 == 0


@settings(max_examples=200, deadline=None)
@given(tokens, st.integers(0, 30), st.lists(st.integers(0, 4), min_size=5, max_size=5))
def test_a_one_token_change_is_a_small_edit(old, where, tok):
    i = 5 * min(where, len(old) // 5)
    new = old[:i] + tok + old[i:]
    edits = token_edits(old, new)
    assert apply_edits(old, edits) == new
    assert sum(len(e.data) for e in edits) <= 10     # not the whole array again


def test_edge_cases():
    assert token_edits([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]) == []
    assert token_edits([], [1, 2, 3, 4, 5]) == [TokenEdit(0, 0, (1, 2, 3, 4, 5))]
    assert token_edits([1, 2, 3, 4, 5], []) == [TokenEdit(0, 5, ())]
    # repeated tokens: prefix and suffix must not overlap
    old = [0, 1, 1, 0, 0] * 3
    new = [0, 1, 1, 0, 0] * 2
    assert apply_edits(old, token_edits(old, new)) == new


def test_history_answers_only_the_last_result_id():
    h = TokenHistory()
    r1 = h.full("u", [0, 0, 1, 0, 0])
    r2, edits = h.delta("u", r1, [0, 0, 1, 0, 0, 1, 0, 2, 1, 0])
    assert r2 != r1 and edits == [TokenEdit(5, 0, (1, 0, 2, 1, 0))]
    r3, edits = h.delta("u", r1, [0, 0, 3, 0, 0])        # r1 is stale now
    assert edits is None and r3 not in (r1, r2)
    r4, edits = h.delta("other", r3, [1, 1, 1, 1, 1])     # another document
    assert edits is None
    h.forget("u")
    assert h.delta("u", r3, [])[1] is None


V1 = ("global hits\nprobe begin {\n  hits = 1\n  printf(\"%s\\n\", execname())\n}\n"
      "probe end {\n  print(hits)\n}\n")
V2 = V1.replace("  hits = 1\n", "  hits = 1\n  extra = strlen(\"x\") + 2\n")
URI = "file:///tmp/delta-test.stp"
DEFAULT_LIBRARY = 2          # bit of the "defaultLibrary" modifier in the legend


def test_delta_through_the_server():
    c = RawClient()
    try:
        init = c.initialize()
        full_caps = init["result"]["capabilities"]["semanticTokensProvider"]["full"]
        assert full_caps == {"delta": True}, full_caps
        c.open(URI, V1)
        # wait for the full environment (library functions get defaultLibrary), so the
        # arrays compared below come from one environment
        t0 = time.monotonic()
        while True:
            r = c.call("textDocument/semanticTokens/full", {"textDocument": {"uri": URI}})
            data1, rid1 = r["result"]["data"], r["result"]["resultId"]
            if any(m & DEFAULT_LIBRARY for m in data1[4::5]):
                break
            assert time.monotonic() - t0 < 120, "the tapset library never loaded"
            time.sleep(0.3)
        c.notify("textDocument/didChange", {
            "textDocument": {"uri": URI, "version": 2}, "contentChanges": [{"text": V2}]})
        r = c.call("textDocument/semanticTokens/full/delta",
                   {"textDocument": {"uri": URI}, "previousResultId": rid1})
        delta = r["result"]
        assert "edits" in delta and delta["resultId"] != rid1, delta
        edits = [TokenEdit(e["start"], e["deleteCount"], tuple(e.get("data") or ()))
                 for e in delta["edits"]]
        assert len(edits) == 1 and len(edits[0].data) < len(data1)
        full2 = c.call("textDocument/semanticTokens/full", {"textDocument": {"uri": URI}})
        assert apply_edits(data1, edits) == full2["result"]["data"]
        # a stale result id gets the whole array
        r = c.call("textDocument/semanticTokens/full/delta",
                   {"textDocument": {"uri": URI}, "previousResultId": rid1})
        assert r["result"]["data"] == full2["result"]["data"] and "edits" not in r["result"]
        assert c.close() == 0
    finally:
        if c.proc.poll() is None:
            c.proc.kill()
            c.proc.wait()
