"""The LSP handlers: each fetches an analysis, calls one ide function, converts.

Registered on a :class:`~stap_ls.lsp.server.StapServer` by :func:`register`.
"""

from __future__ import annotations

import asyncio
import logging
import os

from lsprotocol import types as T

from stap_ls.ide import commands as C
from stap_ls.ide.completion import complete, resolve
from stap_ls.ide.config import settings_from
from stap_ls.ide.hover import hover
from stap_ls.ide.navigation import (definition, document_symbols, references, rename,
                                    workspace_symbols)
from stap_ls.ide.structure import code_actions, folding_ranges, signature_help
from stap_ls.ide.tokens import TokenHistory, semantic_tokens
from stap_ls.lsp.convert import LEGEND, Converter
from stap_ls.lsp.server import TRIGGERS, StapServer, guard


def register(ls: StapServer) -> None:  # noqa: C901 - one short handler per feature
    token_history = TokenHistory()

    @ls.feature(T.INITIALIZE)
    def initialize(ls: StapServer, params: T.InitializeParams) -> None:
        ls.loop = asyncio.get_running_loop()
        ls.settings = settings_from(params.initialization_options)
        enc = ls.workspace.position_encoding if ls.workspace else None
        ls.conv = Converter(enc or T.PositionEncodingKind.Utf16)

    @ls.feature(T.INITIALIZED)
    async def initialized(ls: StapServer, params) -> None:
        await _pull_settings(ls)
        ls.start_loading()

    @ls.feature(T.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def changed_config(ls: StapServer, params: T.DidChangeConfigurationParams) -> None:
        old = ls.settings
        if isinstance(params.settings, dict) and params.settings:
            ls.settings = settings_from(params.settings, old)
        await _pull_settings(ls)
        if ls.settings.environment_key != old.environment_key or ls.env is None:
            ls.start_loading()
        else:
            if ls.env is not None:
                ls.env.settings = ls.settings
            for a in ls.docs.all():
                ls.docs.close(a.uri)
                ls.schedule(a.uri, 0.0)

    @ls.feature(T.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: StapServer, params: T.DidOpenTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, 0.0)

    @ls.feature(T.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: StapServer, params: T.DidChangeTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri)

    @ls.feature(T.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: StapServer, params: T.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        task = ls.pending.pop(uri, None)
        if task is not None:
            task.cancel()
        ls.docs.close(uri)
        token_history.forget(uri)
        ls.text_document_publish_diagnostics(T.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    @ls.feature(T.TEXT_DOCUMENT_COMPLETION,
                T.CompletionOptions(trigger_characters=TRIGGERS, resolve_provider=True))
    @guard
    async def completion(ls: StapServer, params: T.CompletionParams):
        a = await ls.analysis(params.text_document.uri)
        off = ls.offset(a, params.position)
        res = await ls.work(complete, a, off)
        return ls.conv.completions(res, a.source, off, _snippets(ls))

    @ls.feature(T.COMPLETION_ITEM_RESOLVE)
    @guard
    async def completion_resolve(ls: StapServer, item: T.CompletionItem):
        doc = resolve(ls.current_env(), item.data if isinstance(item.data, dict) else None)
        if doc:
            item.documentation = T.MarkupContent(T.MarkupKind.Markdown, doc)
        return item

    @ls.feature(T.TEXT_DOCUMENT_HOVER)
    @guard
    async def on_hover(ls: StapServer, params: T.HoverParams):
        a = await ls.analysis(params.text_document.uri)
        h = await ls.work(hover, a, ls.offset(a, params.position))
        return ls.conv.hover(h) if h is not None and h.markdown else None

    @ls.feature(T.TEXT_DOCUMENT_SIGNATURE_HELP,
                T.SignatureHelpOptions(trigger_characters=["(", ","]))
    @guard
    async def on_signature(ls: StapServer, params: T.SignatureHelpParams):
        a = await ls.analysis(params.text_document.uri)
        s = await ls.work(signature_help, a, ls.offset(a, params.position))
        return ls.conv.signature(s) if s is not None else None

    @ls.feature(T.TEXT_DOCUMENT_DEFINITION)
    @guard
    async def on_definition(ls: StapServer, params: T.DefinitionParams):
        a = await ls.analysis(params.text_document.uri)
        spans = await ls.work(definition, a, ls.offset(a, params.position))
        return [ls.conv.location(s, ls.uri_of) for s in spans]

    @ls.feature(T.TEXT_DOCUMENT_REFERENCES)
    @guard
    async def on_references(ls: StapServer, params: T.ReferenceParams):
        a = await ls.analysis(params.text_document.uri)
        spans = await ls.work(references, a, ls.offset(a, params.position), ls.docs.all(),
                              params.context.include_declaration)
        return [ls.conv.location(s, ls.uri_of) for s in spans]

    @ls.feature(T.TEXT_DOCUMENT_RENAME)
    @guard
    async def on_rename(ls: StapServer, params: T.RenameParams):
        a = await ls.analysis(params.text_document.uri)
        r = await ls.work(rename, a, ls.offset(a, params.position), params.new_name,
                          ls.docs.all())
        if r.error:
            raise ValueError(r.error)
        return ls.conv.text_edits(r.edits, ls.uri_of)

    @ls.feature(T.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    @guard
    async def on_symbols(ls: StapServer, params: T.DocumentSymbolParams):
        a = await ls.analysis(params.text_document.uri)
        return [ls.conv.document_symbol(s) for s in await ls.work(document_symbols, a)]

    @ls.feature(T.WORKSPACE_SYMBOL)
    @guard
    async def on_workspace_symbols(ls: StapServer, params: T.WorkspaceSymbolParams):
        syms = await ls.work(workspace_symbols, ls.docs.all(), params.query)
        return [ls.conv.workspace_symbol(s, ls.uri_of) for s in syms]

    @ls.feature(T.TEXT_DOCUMENT_FOLDING_RANGE)
    @guard
    async def on_folding(ls: StapServer, params: T.FoldingRangeParams):
        a = await ls.analysis(params.text_document.uri)
        return [ls.conv.folding(f, a.source) for f in await ls.work(folding_ranges, a)]

    @ls.feature(T.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL, LEGEND)
    @guard
    async def on_tokens(ls: StapServer, params: T.SemanticTokensParams):
        a = await ls.analysis(params.text_document.uri)
        data = ls.conv.token_data(await ls.work(semantic_tokens, a), a.source)
        rid = token_history.full(params.text_document.uri, data)
        return ls.conv.semantic_delta(rid, data, None)

    @ls.feature(T.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL_DELTA, LEGEND)
    @guard
    async def on_tokens_delta(ls: StapServer, params: T.SemanticTokensDeltaParams):
        a = await ls.analysis(params.text_document.uri)
        data = ls.conv.token_data(await ls.work(semantic_tokens, a), a.source)
        rid, edits = token_history.delta(params.text_document.uri,
                                         params.previous_result_id, data)
        return ls.conv.semantic_delta(rid, data, edits)

    @ls.feature(T.TEXT_DOCUMENT_CODE_ACTION,
                T.CodeActionOptions(code_action_kinds=[T.CodeActionKind.QuickFix]))
    @guard
    async def on_code_action(ls: StapServer, params: T.CodeActionParams):
        a = await ls.analysis(params.text_document.uri)
        s, e = ls.offset(a, params.range.start), ls.offset(a, params.range.end)
        acts = await ls.work(code_actions, a, s, e, a.diagnostics)
        return [ls.conv.code_action(x, a.source, ls.uri_of) for x in acts]

    @ls.command("stap-ls.run")
    @guard
    async def cmd_run(ls: StapServer, *args):
        return _command(lambda: ls.runs.start(list(args), ls.settings, _text_of(ls)))

    @ls.command("stap-ls.stop")
    @guard
    async def cmd_stop(ls: StapServer, *args):
        return await ls.work(_command, lambda: ls.runs.stop(list(args)))

    @ls.command("stap-ls.listProbes")
    @guard
    async def cmd_list(ls: StapServer, *args):
        return await ls.work(_command, lambda: C.list_probes(list(args), ls.settings))

    @ls.command("stap-ls.translatedC")
    @guard
    async def cmd_c(ls: StapServer, *args):
        return await ls.work(_command, lambda: C.translated_c(list(args), ls.settings,
                                                             _text_of(ls)))

    @ls.command("stap-ls.doctor")
    @guard
    async def cmd_doctor(ls: StapServer, *args):
        return await ls.work(_command, lambda: C.doctor(ls.settings))

    @ls.feature(T.SHUTDOWN)
    def on_shutdown(ls: StapServer, params) -> None:
        ls.runs.stop_all()

    @ls.feature(T.EXIT)
    def on_exit(ls: StapServer, params) -> None:
        # background loaders must not keep the process alive after 'exit'
        ls.runs.stop_all()
        logging.shutdown()
        os._exit(0 if ls.protocol._shutdown else 1)


def _command(fn):
    try:
        return fn()
    except C.CommandError as e:
        raise ValueError(str(e)) from e


def _text_of(ls: StapServer):
    def text(uri: str):
        doc = ls.workspace.text_documents.get(uri)
        return doc.source if doc is not None else None
    return text


def _snippets(ls: StapServer) -> bool:
    try:
        return bool(ls.client_capabilities.text_document.completion.completion_item
                    .snippet_support)
    except AttributeError:
        return False


async def _pull_settings(ls: StapServer) -> None:
    caps = ls.client_capabilities
    if not (caps and caps.workspace and caps.workspace.configuration):
        return
    try:
        res = await asyncio.wait_for(ls.workspace_configuration_async(T.ConfigurationParams(
            items=[T.ConfigurationItem(section="stap-ls")])), 2.0)
    except Exception:
        return
    if res and isinstance(res[0], dict):
        ls.settings = settings_from(res[0], ls.settings)
