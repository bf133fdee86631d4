"""End to end through pytest-lsp: a real stap-ls server process on stdio."""

from __future__ import annotations

import io
import json

import pytest
from lsprotocol import types as T

from stap_ls.cli.check import main as check_main
from tests.lsp.conftest import poll, wait_until

BROKEN = "global count\nprobe begin { count = 1 + }\nprobe end { printf(\"%d\\n\", count) }\n"


def _open(client, uri: str, text: str, version: int = 1) -> None:
    client.text_document_did_open(T.DidOpenTextDocumentParams(
        T.TextDocumentItem(uri=uri, language_id="systemtap", version=version, text=text)))


def _pos(text: str, needle: str, delta: int = 0) -> T.Position:
    off = text.index(needle) + delta
    line = text.count("\n", 0, off)
    return T.Position(line=line, character=off - (text.rfind("\n", 0, off) + 1))


@pytest.mark.asyncio
async def test_capabilities(client):
    caps = client.protocol.server_capabilities if hasattr(client.protocol,
                                                          "server_capabilities") else None
    # pytest-lsp keeps the initialize result on the protocol; re-ask by a cheap request
    res = await client.workspace_symbol_async(T.WorkspaceSymbolParams(query="zzzz_nothing"))
    assert res == [] or res is None
    del caps


@pytest.mark.asyncio
async def test_diagnostics_open_and_incremental_edit(client, tmp_path):
    path = tmp_path / "broken.stp"
    path.write_text(BROKEN)
    uri = path.as_uri()
    _open(client, uri, BROKEN)
    diags = await wait_until(lambda: client.diagnostics.get(uri), what="diagnostics")
    # same wording and place as 'stap-ls check'
    out = io.StringIO()
    check_main(["-p1", "--format=json", str(path)], out=out, err=io.StringIO())
    expected = json.loads(out.getvalue())["diagnostics"]
    errors = [d for d in diags if d.severity == T.DiagnosticSeverity.Error]
    assert [(d.message, d.range.start.line + 1, d.range.start.character + 1) for d in errors] == \
        [(f"{e['kind']}: {e['message']}", e["line"], e["column"]) for e in expected]
    # fix it with an incremental edit: '1 + ' -> '1 + 2'
    pos = _pos(BROKEN, "+ }", 2)
    client.text_document_did_change(T.DidChangeTextDocumentParams(
        T.VersionedTextDocumentIdentifier(uri=uri, version=2),
        [T.TextDocumentContentChangePartial(range=T.Range(start=pos, end=pos), text="2")]))
    await wait_until(lambda: client.diagnostics.get(uri) is not None
                     and len(client.diagnostics[uri]) == 0, what="no diagnostics")
    # and break it again elsewhere
    pos = _pos(BROKEN, "count)", 5)
    client.text_document_did_change(T.DidChangeTextDocumentParams(
        T.VersionedTextDocumentIdentifier(uri=uri, version=3),
        [T.TextDocumentContentChangePartial(range=T.Range(start=pos, end=pos), text=" +")]))
    diags = await wait_until(lambda: client.diagnostics.get(uri), what="new diagnostics")
    assert diags[0].range.start.line == 2
    assert "parse error" in diags[0].message


@pytest.mark.asyncio
async def test_features(client, tmp_path):
    text = ("global hits\n"
            "function twice:long(x:long) { return 2 * x }\n"
            "probe syscall.open { hits++; printf(\"%s %d\\n\", execname(), twice(hits)) }\n"
            "probe end {\n  print(hits)\n}\n")
    path = tmp_path / "f.stp"
    path.write_text(text)
    uri = path.as_uri()
    _open(client, uri, text)
    doc = T.TextDocumentIdentifier(uri=uri)

    hov = await poll(lambda: client.text_document_hover_async(
        T.HoverParams(doc, _pos(text, "execname", 2))),
        lambda h: h is not None and "execname" in h.contents.value
        and "Returns the execname" in h.contents.value, what="execname hover")
    assert hov.range.start == _pos(text, "execname")

    comp = await client.text_document_completion_async(T.CompletionParams(
        doc, _pos(text, "execname", 4)))
    labels = [i.label for i in comp.items]
    assert "execname" in labels and "exit" not in labels

    defs = await client.text_document_definition_async(T.DefinitionParams(
        doc, _pos(text, "twice(hits)", 1)))
    assert defs[0].uri == uri and defs[0].range.start == _pos(text, "twice:long")
    lib_defs = await client.text_document_definition_async(T.DefinitionParams(
        doc, _pos(text, "execname", 1)))
    assert lib_defs and lib_defs[0].uri.endswith("/context.stp")

    refs = await client.text_document_references_async(T.ReferenceParams(
        text_document=doc, position=_pos(text, "hits", 1),
        context=T.ReferenceContext(include_declaration=True)))
    assert len(refs) == 4

    edit = await client.text_document_rename_async(T.RenameParams(
        text_document=doc, position=_pos(text, "hits", 1), new_name="calls"))
    assert len(edit.changes[uri]) == 4 and all(e.new_text == "calls" for e in edit.changes[uri])

    syms = await client.text_document_document_symbol_async(T.DocumentSymbolParams(doc))
    assert [s.name for s in syms] == ["hits", "twice", "syscall.open", "end"]

    folds = await client.text_document_folding_range_async(T.FoldingRangeParams(doc))
    assert any(f.start_line == 3 and f.end_line == 5 for f in folds)

    toks = await client.text_document_semantic_tokens_full_async(T.SemanticTokensParams(doc))
    assert list(toks.data[:5]) == [0, 0, 6, 0, 0]          # 'global' is a keyword at 0:0

    sig = await client.text_document_signature_help_async(T.SignatureHelpParams(
        doc, _pos(text, "hits)) }", 0)))
    assert sig.signatures[0].label == "twice:long(x:long)"

    ws = await client.workspace_symbol_async(T.WorkspaceSymbolParams(query="twice"))
    assert any(s.name == "twice" for s in ws)

    doctor = await client.workspace_execute_command_async(T.ExecuteCommandParams(
        "stap-ls.doctor", []))
    assert "BTF" in doctor["text"] or "btf" in doctor["text"]
    probes = await client.workspace_execute_command_async(T.ExecuteCommandParams(
        "stap-ls.listProbes", [{"pattern": "kernel.trace(\"sched:sched_switch\")",
                                "verbose": False}]))
    assert probes == ['kernel.trace("sched:sched_switch")']


@pytest.mark.asyncio
async def test_target_variable_completion_and_code_action(client, tmp_path):
    text = 'probe kernel.function("vfs_read") { printf("%d\\n", $co) }\n' \
           'probe kernel.function("vfs_reed") { }\n'
    uri = (tmp_path / "t.stp").as_uri()
    _open(client, uri, text)
    doc = T.TextDocumentIdentifier(uri=uri)
    comp = await poll(lambda: client.text_document_completion_async(T.CompletionParams(
        doc, _pos(text, "$co", 3))), lambda c: c is not None and c.items,
        what="target variable completion")
    assert [i.label for i in comp.items] == ["$count"]
    assert comp.items[0].detail == "size_t (btf)"
    hov = await client.text_document_hover_async(T.HoverParams(doc, _pos(text, "vfs_read", 1)))
    assert 'kernel.function("vfs_read")' in hov.contents.value
