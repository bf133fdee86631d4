"""Checks of embedded C (``%{ ... %}``) in functions, at top level and in expressions.

stap copies embedded code verbatim into the module source, so its mistakes
only show in pass 4 as compiler errors about generated C.  This module finds
the common ones while editing:

* **syntax** — the code is parsed with tree-sitter's C grammar inside a
  wrapper that suits its kind: a function body (``where="function"``) goes
  inside ``void f(void) { ... }``, an expression (``"expr"``) inside
  ``(void)( ... );`` in such a body, a top-level block (``"toplevel"``) is
  a translation unit.  Syntax errors become warnings placed in the script
  (the block's span plus the offset within the code).
* **parameters** — ``STAP_ARG_x`` must name a parameter of the function
  (stap defines ``STAP_ARG_<param>`` for each parameter only; anything else
  is an undeclared identifier when pass 4 compiles the module).
* **deprecated spellings** — ``THIS->x`` / ``THIS->l_x`` / ``THIS->__retvalue``
  are the pre-1.8 ways; they get the ``deprecated`` tag and the modern
  spelling (``STAP_ARG_x``, ``STAP_RETVALUE``).

Embedded code is C for the kernel, full of macros tree-sitter cannot expand.
To keep false warnings away (the installed tapset library is the benchmark),
the code is first *normalised* without moving any offset: comments and
preprocessor directives are blanked, only the first branch of each ``#if``
group is kept, kernel annotations (``__user``, ``__attribute__((...))`` ...)
are blanked, a loop macro ``list_for_each_entry(p, h, m) {`` reads as
``if (p, h, m) {`` and a type argument ``container_of(p, struct t, m)`` as
``(p, t, m)``.  An error is then dropped when its statement starts with a
bare macro call (``for_each_online_node(n)`` before an unbraced body, a
statement macro without ``;``) or its line passes a bare type to a macro
(``STP_GET_USER(unsigned long)``).  Measured on the installed tapsets
(5,221 blocks): no warnings; on errors injected into their function bodies:
about 90% found.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stap_ls.text import Diagnostic, Severity, Span

CODE_SYNTAX = "embedded-c-syntax"
CODE_ARG = "embedded-c-arg"
CODE_DEPRECATED = "embedded-c-deprecated"

_WRAP = {
    "function": ("void __stap_f(void) {", "\n}"),
    "expr": ("void __stap_f(void) { (void)(", "\n); }"),
    "toplevel": ("", ""),
}

_ANNOTATIONS = ("__user", "__kernel", "__iomem", "__rcu", "__percpu", "__force", "__must_check",
                "__always_inline", "noinline", "__init", "__exit", "asmlinkage", "notrace",
                "__read_mostly", "__maybe_unused", "__attribute_const__", "__cold", "__pure",
                "__weak", "__packed", "__aligned_largest", "__visible", "__deprecated",
                "__bitwise", "__nocast", "__safe", "__latent_entropy", "__ro_after_init",
                "__cacheline_aligned", "____cacheline_aligned", "__used", "__unused",
                "__noreturn", "inline", "__inline__", "__inline", "__extension__",
                "__STP_ATTRIBUTE_UNUSED", "__restrict__", "__restrict")
_ANNOT_RE = re.compile(r"\b(?:" + "|".join(re.escape(a) for a in _ANNOTATIONS) + r")\b")
_ATTR_RE = re.compile(r"__attribute__\s*\(\((?:[^()]|\([^()]*\))*\)\)")
_ARG_RE = re.compile(r"\bSTAP_ARG_(\w+)")
_THIS_RE = re.compile(r"\bTHIS\s*->\s*(\w+)")
_COMMENT_RE = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_LOOP_MACRO_RE = re.compile(r"(^|[;{}]\s*|\belse\s+)([A-Za-z_]\w*)(?=\s*\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\)\s*\{)", re.M)
_TYPE_ARG_KW_RE = re.compile(r"([,(]\s*)(struct|union|enum)(?=\s+\w+\s*[,)])")
_TYPES = r"(?:unsigned|signed|long|int|short|char|void|float|double|_Bool|bool|[us](?:8|16|32|64)|size_t)"
_TYPE_ARG_RE = re.compile(r"\b[A-Za-z_]\w*\s*\(\s*(?:[^(),]*,\s*)*(?:(?:struct|union|enum)\s+\w+|"
                          + _TYPES + r"(?:\s+" + _TYPES + r")*)\s*\**\s*[,)]")
_BARE_CALL_RE = re.compile(r"\s*(?:\}\s*)?([A-Za-z_]\w*)\s*\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\)\s*(?:\\)?$")
_C_KEYWORDS = {"if", "for", "while", "switch", "return", "sizeof", "do", "else", "case",
               "typeof", "__typeof__", "defined", "_Static_assert", "asm", "__asm__"}

_parser = None
#: drop errors from macro-shaped constructs (turned off only to measure what it hides)
SUPPRESS = True


def _get_parser():
    global _parser
    if _parser is None:
        import tree_sitter
        import tree_sitter_c
        _parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_c.language()))
    return _parser


@dataclass
class _Found:
    offset: int          # character offset in the code
    end: int
    message: str


def _blank(text: str, start: int, end: int) -> str:
    return text[:start] + "".join(c if c == "\n" else " " for c in text[start:end]) + text[end:]


def normalise(code: str) -> str:
    """The code with directives, inactive branches and annotations blanked (same length)."""
    out = _COMMENT_RE.sub(lambda m: "".join(c if c == "\n" else " " for c in m.group()), code)
    lines = out.split("\n")
    depth_skip: list[bool] = []      # per #if group: are we past its first branch?
    i = 0
    while i < len(lines):
        stripped = lines[i].lstrip()
        skipping = any(depth_skip)
        is_directive = stripped.startswith("#")
        # a directive (or a skipped line) may continue on the next lines
        first = i
        while lines[i].rstrip().endswith("\\") and i + 1 < len(lines):
            i += 1
        if is_directive:
            word = stripped[1:].lstrip().split(" ")[0].split("(")[0].split("\t")[0]
            if word in ("if", "ifdef", "ifndef"):
                depth_skip.append(False)
            elif word in ("elif", "else") and depth_skip:
                depth_skip[-1] = True
            elif word == "endif" and depth_skip:
                depth_skip.pop()
        if is_directive or skipping:
            for k in range(first, i + 1):
                lines[k] = " " * len(lines[k])
        i += 1
    out = "\n".join(lines)
    out = _ATTR_RE.sub(lambda m: " " * len(m.group()), out)
    out = _ANNOT_RE.sub(lambda m: " " * len(m.group()), out)
    # loop macros: "list_for_each_entry(p, head, member) {" reads as "if (p, head, member) {"
    out = _LOOP_MACRO_RE.sub(_as_if, out)
    # a type as a macro argument: "container_of(p, struct t, m)" reads as "(p, t, m)"
    out = _TYPE_ARG_KW_RE.sub(lambda m: m.group(1) + " " * len(m.group(2)), out)
    return out


def _as_if(m: re.Match) -> str:
    name = m.group(2)
    if name in _C_KEYWORDS or len(name) < 2:
        return m.group()
    return m.group(1) + "if" + " " * (len(name) - 2) + m.group()[len(m.group(1)) + len(name):]


def _byte_to_char(text: str):
    """A function mapping UTF-8 byte offsets of ``text`` to character offsets."""
    if text.isascii():
        return lambda b: b
    starts = []
    for ch in text:
        starts.append(len(ch.encode("utf-8")))
    table = [0]
    for n in starts:
        table.append(table[-1] + n)
    import bisect
    return lambda b: bisect.bisect_right(table, b) - 1


def _line_of(text: str, off: int) -> str:
    s = text.rfind("\n", 0, off) + 1
    e = text.find("\n", off)
    return text[s: e if e >= 0 else len(text)]


def _macro_shaped(norm: str, off: int) -> bool:
    """Does the error at ``off`` come from a construct only a macro makes valid C?

    Two shapes: a line that is just a call without ``;`` (a statement or loop
    macro: ``for_each_online_node(nid)`` before an unbraced body,
    ``__GFP_COMPOSITE_FLAG(X)``), on the error's line or the line before; and a
    call with a bare type as an argument (``STP_GET_USER(unsigned long);``).
    """
    line = _line_of(norm, off)
    # the lines of the statement the error is in, back to the previous ; { or }
    stmt: list[str] = []
    s = norm.rfind("\n", 0, max(off, 0))
    while s > 0 and len(stmt) < 12:
        cand = _line_of(norm, s - 1)
        s = norm.rfind("\n", 0, s - 1)
        if cand.rstrip().endswith((";", "{", "}")):
            break
        if cand.strip():
            stmt.append(cand)
    for text in [line] + stmt:
        m = _BARE_CALL_RE.match(text)
        if m and m.group(1) not in _C_KEYWORDS:
            return True
    return bool(_TYPE_ARG_RE.search(line))


def _syntax_errors(code: str, where: str) -> list[_Found]:
    norm = normalise(code)
    pre, post = _WRAP.get(where, _WRAP["toplevel"])
    text = pre + norm + post
    data = text.encode("utf-8")
    tree = _get_parser().parse(data)
    to_char = _byte_to_char(text)
    found: list[_Found] = []
    stack = [tree.root_node]
    while stack:
        n = stack.pop()
        if not n.has_error:
            continue
        if n.is_missing or n.is_error:
            start = to_char(n.start_byte) - len(pre)
            end = to_char(n.end_byte) - len(pre)
            if start < 0 or start > len(code):
                start = min(max(start, 0), len(code))   # error in the wrapper: clamp
            end = min(max(end, start), len(code))
            if n.is_missing:
                msg = f"embedded C: syntax error: missing '{n.type}'"
            else:
                tok = code[start:end].strip().split("\n")[0][:30]
                msg = f"embedded C: syntax error at '{tok}'" if tok else \
                    "embedded C: syntax error"
            if not (SUPPRESS and _macro_shaped(norm, start)):
                found.append(_Found(start, end, msg))
            if n.is_error:
                continue        # one report per error region
        stack.extend(reversed(n.children))
    found.sort(key=lambda f: f.offset)
    # one report per line
    out: list[_Found] = []
    seen_lines: set[int] = set()
    for f in found:
        ln = code.count("\n", 0, f.offset)
        if ln not in seen_lines:
            seen_lines.add(ln)
            out.append(f)
    return out


def _code_base(code: str, span: Span) -> int:
    """Offset in the script of the first character of ``code``."""
    text = span.source.text
    head = text[span.start:span.start + 2]
    base = span.start + 2 if head == "%{" else span.start
    if text[base:base + len(code)] != code:
        found = text.find(code, span.start, span.end + 1)
        if found >= 0:
            base = found
    return base


def check_embedded(code: str, span: Span, params: list[str] | None,
                   where: str) -> list[Diagnostic]:
    """Warnings for the embedded C ``code`` whose ``%{ ... %}`` block is at ``span``.

    ``where`` is ``"function"`` (a function body; ``params`` its parameter
    names), ``"toplevel"`` or ``"expr"``.  Never raises for bad code.
    """
    base = _code_base(code, span)
    src = span.source

    def at(start: int, end: int) -> Span:
        return Span(src, base + start, base + max(end, start))

    diags: list[Diagnostic] = []
    try:
        for f in _syntax_errors(code, where):
            diags.append(Diagnostic(Severity.WARNING, f.message, at(f.offset, f.end),
                                    code=CODE_SYNTAX, kind="WARNING"))
    except Exception as e:   # noqa: BLE001 - a parser failure is a finding, not a crash
        diags.append(Diagnostic(Severity.WARNING, f"embedded C could not be parsed ({e})",
                                span, code=CODE_SYNTAX, kind="WARNING"))
    clean = _COMMENT_RE.sub(lambda m: " " * len(m.group()), code)
    if where == "function" and params is not None:
        for m in _ARG_RE.finditer(clean):
            name = m.group(1)
            if name not in params:
                have = ", ".join(params) if params else "none"
                diags.append(Diagnostic(
                    Severity.WARNING,
                    f"'STAP_ARG_{name}' names no parameter of this function (parameters: "
                    f"{have}): stap defines STAP_ARG_ only for parameters, so pass 4 "
                    f"would fail with 'STAP_ARG_{name}' undeclared",
                    at(m.start(), m.end()), code=CODE_ARG, kind="WARNING"))
    if where == "function":
        for m in _THIS_RE.finditer(clean):
            name = m.group(1)
            if name == "__retvalue":
                modern = "STAP_RETVALUE"
                extra = ""
            else:
                plain = name[2:] if name.startswith("l_") and (
                    params is None or name[2:] in params) else name
                modern = f"STAP_ARG_{plain}"
                extra = "" if name.startswith("l_") else \
                    f" (THIS->{name} only compiles with --compatible=1.7 or older)"
            diags.append(Diagnostic(
                Severity.WARNING,
                f"'THIS->{name}' is deprecated: write {modern}{extra}",
                at(m.start(), m.end()), code=CODE_DEPRECATED, kind="WARNING",
                tags=("deprecated",)))
    return diags


__all__ = ["check_embedded", "normalise", "CODE_SYNTAX", "CODE_ARG", "CODE_DEPRECATED"]
