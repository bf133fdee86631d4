"""The one place where ide results become lsprotocol types.

Offsets in stap_ls are Python string indexes (code points); LSP positions are
lines and UTF-16 code units (or whatever encoding was negotiated).  The
conversion uses pygls' own :class:`~pygls.workspace.position_codec.PositionCodec`
over a lazy line view of a :class:`~stap_ls.text.SourceFile`, so a 5 MB file
is not split into lines for every position.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lsprotocol import types as T
from pygls.workspace.position_codec import PositionCodec, ServerTextPosition

from stap_ls.ide.completion import CompletionItem, Completions
from stap_ls.ide.hover import HoverResult
from stap_ls.ide.navigation import DocSymbol
from stap_ls.ide.structure import CodeAction, Fold, Signature
from stap_ls.ide.tokens import TOKEN_MODIFIERS, TOKEN_TYPES, SemToken, TokenEdit
from stap_ls.text import Diagnostic, Severity, SourceFile, Span

LEGEND = T.SemanticTokensLegend(token_types=TOKEN_TYPES, token_modifiers=TOKEN_MODIFIERS)


class _Lines(Sequence):
    """``SourceFile`` lines (with their newline) as the codec wants them."""

    def __init__(self, src: SourceFile) -> None:
        self.src = src

    def __len__(self) -> int:
        return len(self.src.line_starts)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        starts = self.src.line_starts
        end = starts[i + 1] if i + 1 < len(starts) else len(self.src.text)
        return self.src.text[starts[i]:end]


class Converter:
    """Conversions for one position encoding."""

    def __init__(self, encoding: str | T.PositionEncodingKind = T.PositionEncodingKind.Utf16):
        self.codec = PositionCodec(encoding)
        self._lines: dict[int, _Lines] = {}

    def lines(self, src: SourceFile) -> _Lines:
        ln = self._lines.get(id(src))
        if ln is None or ln.src is not src:
            if len(self._lines) > 64:
                self._lines.clear()
            ln = self._lines[id(src)] = _Lines(src)
        return ln

    # -- positions -------------------------------------------------------------
    def position(self, src: SourceFile, offset: int) -> T.Position:
        offset = max(0, min(offset, len(src.text)))
        p = src.position(offset)
        return self.codec.position_to_client_units(
            self.lines(src), ServerTextPosition(p.line - 1, p.column - 1))

    def offset(self, src: SourceFile, pos: T.Position) -> int:
        """Offset of a client position (clamped to the text)."""
        lines = self.lines(src)
        if pos.line >= len(lines):
            return len(src.text)
        sp = self.codec.position_from_client_units(
            lines, T.Position(line=max(pos.line, 0), character=max(pos.character, 0)))
        return src.offset(sp.line + 1, sp.character + 1)

    def range(self, span: Span) -> T.Range:
        return T.Range(start=self.position(span.source, span.start),
                       end=self.position(span.source, span.end))

    def location(self, span: Span, uri_of) -> T.Location:
        return T.Location(uri=uri_of(span.source.name), range=self.range(span))

    # -- features ----------------------------------------------------------------
    def diagnostic(self, d: Diagnostic, src: SourceFile, uri_of) -> T.Diagnostic:
        span = d.span if d.span is not None and d.span.source.name == src.name \
            else Span(src, 0, 0)
        sev = {Severity.ERROR: T.DiagnosticSeverity.Error,
               Severity.WARNING: T.DiagnosticSeverity.Warning,
               Severity.INFO: T.DiagnosticSeverity.Information,
               Severity.HINT: T.DiagnosticSeverity.Hint}[d.severity]
        msg = f"{d.kind}: {d.message}" if d.severity == Severity.ERROR and d.kind else d.message
        related = [T.DiagnosticRelatedInformation(self.location(r.span, uri_of), r.message)
                   for r in d.related if r.span is not None]
        if d.span is not None and d.span.source.name != src.name:
            related.insert(0, T.DiagnosticRelatedInformation(self.location(d.span, uri_of),
                                                             "reported here"))
        tags = [{"unnecessary": T.DiagnosticTag.Unnecessary,
                 "deprecated": T.DiagnosticTag.Deprecated}[t] for t in d.tags
                if t in ("unnecessary", "deprecated")]
        return T.Diagnostic(range=self.range(span), message=msg, severity=sev,
                            code=d.code or None, source="stap-ls",
                            related_information=related or None, tags=tags or None)

    _KINDS = {"keyword": T.CompletionItemKind.Keyword, "function": T.CompletionItemKind.Function,
              "variable": T.CompletionItemKind.Variable, "field": T.CompletionItemKind.Field,
              "module": T.CompletionItemKind.Module, "event": T.CompletionItemKind.Event,
              "operator": T.CompletionItemKind.Operator, "file": T.CompletionItemKind.File,
              "folder": T.CompletionItemKind.Folder, "constant": T.CompletionItemKind.Constant,
              "snippet": T.CompletionItemKind.Snippet, "text": T.CompletionItemKind.Text,
              "property": T.CompletionItemKind.Property}

    def completion_item(self, it: CompletionItem, rng: T.Range, snippets: bool
                        ) -> T.CompletionItem:
        text = it.insert_text if it.insert_text is not None else it.label
        snippet = it.snippet and snippets
        if it.snippet and not snippets:
            text = it.label
        doc = T.MarkupContent(T.MarkupKind.Markdown, it.documentation) \
            if it.documentation else None
        return T.CompletionItem(
            label=it.label, kind=self._KINDS.get(it.kind, T.CompletionItemKind.Text),
            detail=it.detail or None, documentation=doc, sort_text=it.sort or None,
            filter_text=it.label,
            text_edit=T.TextEdit(range=rng, new_text=text),
            insert_text_format=T.InsertTextFormat.Snippet if snippet
            else T.InsertTextFormat.PlainText,
            data=it.data)

    def completions(self, c: Completions, src: SourceFile, cursor: int, snippets: bool
                    ) -> T.CompletionList:
        rng = T.Range(start=self.position(src, c.start), end=self.position(src, cursor))
        return T.CompletionList(is_incomplete=c.incomplete,
                                items=[self.completion_item(i, rng, snippets) for i in c.items])

    def hover(self, h: HoverResult) -> T.Hover:
        return T.Hover(contents=T.MarkupContent(T.MarkupKind.Markdown, h.markdown),
                       range=self.range(h.span))

    _SYMS = {"function": T.SymbolKind.Function, "variable": T.SymbolKind.Variable,
             "event": T.SymbolKind.Event, "macro": T.SymbolKind.Constant,
             "module": T.SymbolKind.Module}

    def document_symbol(self, s: DocSymbol) -> T.DocumentSymbol:
        return T.DocumentSymbol(name=s.name, kind=self._SYMS.get(s.kind, T.SymbolKind.Object),
                                range=self.range(s.span), selection_range=self.range(s.selection),
                                detail=s.detail or None,
                                children=[self.document_symbol(c) for c in s.children] or None)

    def workspace_symbol(self, s: DocSymbol, uri_of) -> T.WorkspaceSymbol:
        return T.WorkspaceSymbol(name=s.name, kind=self._SYMS.get(s.kind, T.SymbolKind.Object),
                                 location=self.location(s.selection, uri_of),
                                 container_name=s.detail or None)

    def folding(self, f: Fold, src: SourceFile) -> T.FoldingRange:
        s = src.position(f.start)
        e = src.position(max(f.start, f.end - 1))
        return T.FoldingRange(start_line=s.line - 1, end_line=e.line - 1,
                              kind=T.FoldingRangeKind.Comment if f.kind == "comment"
                              else T.FoldingRangeKind.Region)

    def signature(self, s: Signature) -> T.SignatureHelp:
        params = [T.ParameterInformation(label=p, documentation=d or None) for p, d in s.params]
        info = T.SignatureInformation(label=s.label, documentation=s.documentation or None,
                                      parameters=params, active_parameter=s.active)
        return T.SignatureHelp(signatures=[info], active_signature=0, active_parameter=s.active)

    def text_edits(self, edits, uri_of) -> T.WorkspaceEdit:
        changes: dict[str, list[T.TextEdit]] = {}
        for span, new in edits:
            changes.setdefault(uri_of(span.source.name), []).append(
                T.TextEdit(range=self.range(span), new_text=new))
        return T.WorkspaceEdit(changes=changes)

    def code_action(self, ca: CodeAction, src: SourceFile, uri_of) -> T.CodeAction:
        diags = [self.diagnostic(ca.diagnostic, src, uri_of)] if ca.diagnostic else None
        return T.CodeAction(title=ca.title, kind=T.CodeActionKind.QuickFix, diagnostics=diags,
                            is_preferred=ca.preferred or None,
                            edit=self.text_edits(ca.edits, uri_of))

    def semantic_tokens(self, toks: list[SemToken], src: SourceFile) -> T.SemanticTokens:
        return T.SemanticTokens(data=self.token_data(toks, src))

    @staticmethod
    def semantic_delta(result_id: str, data: list[int], edits: list[TokenEdit] | None
                       ) -> T.SemanticTokens | T.SemanticTokensDelta:
        """Edits from the previous result, or the whole array when there were none to make
        against (an unknown previous result id)."""
        if edits is None:
            return T.SemanticTokens(data=data, result_id=result_id)
        return T.SemanticTokensDelta(result_id=result_id, edits=[
            T.SemanticTokensEdit(start=e.start, delete_count=e.delete_count,
                                 data=list(e.data)) for e in edits])

    def token_data(self, toks: list[SemToken], src: SourceFile) -> list[int]:
        """LSP's relative encoding of ``toks`` (lines split, overlaps dropped)."""
        data: list[int] = []
        prev_line = prev_col = 0
        tindex = {t: i for i, t in enumerate(TOKEN_TYPES)}
        mindex = {m: 1 << i for i, m in enumerate(TOKEN_MODIFIERS)}
        for t in toks:
            # LSP tokens may not span lines: split them
            s = t.start
            while s < t.end:
                nl = src.text.find("\n", s, t.end)
                e = t.end if nl < 0 else nl
                if e > s:
                    p = self.position(src, s)
                    q = self.position(src, e)
                    line, col = p.line, p.character
                    dl = line - prev_line
                    dc = col - prev_col if dl == 0 else col
                    if dl < 0 or (dl == 0 and dc < 0):
                        s = e + 1
                        continue          # overlapping token: skip
                    mods = 0
                    for m in t.modifiers:
                        mods |= mindex.get(m, 0)
                    data += [dl, dc, q.character - col, tindex[t.type], mods]
                    prev_line, prev_col = line, col
                s = e + 1
        return data


def path_to_uri(path: str) -> str:
    if path.startswith(("file:", "untitled:")) or "://" in path:
        return path
    try:
        return Path(path).absolute().as_uri()
    except ValueError:
        return "file://" + path
