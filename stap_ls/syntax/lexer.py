"""Pass-1 lexer: stap's tokens, with spans.

This follows the behaviour of stap's own scanner (``lexer::scan``) closely,
because pass 1 must agree with ``stap`` token for token:

* comments: ``#`` and ``//`` to the end of the line, ``/* ... */``;
* identifiers ``[A-Za-z_$@][A-Za-z0-9_$]*``; those starting with ``@`` are
  operators (``@cast``, macro invocations ...), reserved words are keywords;
* numbers are a digit followed by any letters and digits (validated later,
  as ``strtoull(s, 0)`` would);
* strings keep the escapes that C understands (``\\n``, ``\\t``, octal,
  ``\\x`` ...) as two characters and drop the backslash of any other escape;
* ``%{ ... %}`` is one embedded-code token;
* operators are matched longest first;
* ``$1``/``@1`` and ``$#``/``@#`` are replaced by the script arguments (raw,
  or quoted as a string) and the replacement is scanned in place.

Anything stap would call junk (an unclosed string or embedded block, a stray
byte, an argument out of range) becomes a ``JUNK`` token carrying stap's
message, so the parser reports it where it is used.  The lexer never raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stap_ls.text import SourceFile

# token kinds
IDENT = "identifier"
KEYWORD = "keyword"
OPERATOR = "operator"
STRING = "string"
NUMBER = "number"
EMBEDDED = "embedded-code"
JUNK = "junk"

BASE_KEYWORDS = frozenset({
    "probe", "global", "function", "if", "else", "for", "foreach", "in", "limit",
    "return", "delete", "while", "break", "continue", "next", "string", "long",
    "try", "catch",
})

ATWORDS_BASE = ("cast", "defined", "probewrite", "entry", "perf", "var", "avg",
                "count", "sum", "min", "max", "hist_linear", "hist_log")


def version_at_least(compatible: str, v: str) -> bool:
    """strverscmp(compatible, v) >= 0, for the dotted versions stap uses."""
    return strverscmp(compatible, v) >= 0


def strverscmp(a: str, b: str) -> int:
    """A version comparison in the spirit of glibc's strverscmp (digit runs
    compare numerically)."""
    pa = re.findall(r"\d+|\D+", a)
    pb = re.findall(r"\d+|\D+", b)
    for x, y in zip(pa, pb):
        if x == y:
            continue
        if x.isdigit() and y.isdigit():
            # leading zeros are fractional parts in strverscmp; rare in versions
            if x.startswith("0") or y.startswith("0"):
                return -1 if x < y else 1
            return -1 if int(x) < int(y) else 1
        return -1 if x < y else 1
    return (len(pa) > len(pb)) - (len(pa) < len(pb))


def keywords_for(compatible: str) -> frozenset[str]:
    if version_at_least(compatible, "3.0"):
        return BASE_KEYWORDS | {"private"}
    return BASE_KEYWORDS


def atwords_for(compatible: str) -> frozenset[str]:
    words = set(ATWORDS_BASE)
    if version_at_least(compatible, "3.1"):
        words |= {"const", "variance"}
    if version_at_least(compatible, "4.0"):
        words |= {"kregister", "uregister", "kderef", "uderef"}
    return frozenset(words)


def parser_atwords(version: str) -> frozenset[str]:
    """The ``@words`` stap's parser recognises by name in a file lexed for
    ``version``: ``@const`` and ``@variance`` always (the parser checks the
    name, not the lexer's table), the register/deref operators from 4.0."""
    words = set(ATWORDS_BASE) | {"const", "variance"}
    if version_at_least(version, "4.0"):
        words |= {"kregister", "uregister", "kderef", "uderef"}
    return frozenset(words)


@dataclass(slots=True)
class Tok:
    """One token.  ``start``/``end`` are offsets in ``source``."""

    kind: str
    value: str
    source: SourceFile
    start: int
    end: int
    #: whitespace or a comment came before this token (stap's ate_whitespace)
    ws_before: bool = False
    #: for junk: stap's message; for argument substitutions: the '$1' text
    message: str = ""
    #: the macro invocation token this token was expanded from, if any
    chain: "Tok | None" = None

    def is_op(self, text: str) -> bool:
        return self.kind == OPERATOR and self.value == text

    def describe(self) -> str:
        """As stap prints a token after ``saw:`` (without the location)."""
        if self.kind in (EMBEDDED, KEYWORD):
            return self.kind  # stap prints neither an embedded block's nor a keyword's text
        shown = "".join(c if c.isprintable() and ord(c) < 128 else "?" for c in self.value)
        return f"{self.kind} '{shown}'"


_OPS3 = ("<<<", ">>>", "<<=", ">>=")
_OPS2 = ("==", "!=", "<=", ">=", "=~", "!~", "+=", "-=", "*=", "/=", "%=", "&=",
         "^=", "|=", ".=", "&&", "||", "++", "--", "->", "<<", ">>",
         "%(", "%?", "%:", "%)")

_TOKEN_RE = re.compile(r"""
  (?P<ws>[ \t\n\r\f\v]+)
| (?P<arg>[$@](?:\#|[0-9]+))
| (?P<ident>[A-Za-z_$@][A-Za-z0-9_$]*)
| (?P<num>[0-9][A-Za-z0-9]*)
| (?P<str>"(?:[^"\\\n]|\\[\s\S])*(?:"|(?=\n)|$))
| (?P<hash>\#[^\n]*\n?)
| (?P<lcomment>//[^\n]*\n?)
| (?P<bcomment>/\*[\s\S]*?\*/)
| (?P<badbcomment>/\*[\s\S]*)
| (?P<embedded>%\{[\s\S]*?%\})
| (?P<badembedded>%\{[\s\S]*)
| (?P<op>""" + "|".join(re.escape(o) for o in _OPS3 + _OPS2) + r"""|[!-/:-@\[-`{-~])
| (?P<junk>[\s\S])
""", re.VERBOSE)

_C_ESCAPES = set("abtnvfr01234567\\")


def _string_value(body: str, allow_hex: bool) -> str:
    """Process escapes in a string body as stap's lexer does."""
    if "\\" not in body:
        return body
    out = []
    i = 0
    n = len(body)
    while i < n:
        c = body[i]
        if c == "\\" and i + 1 < n:
            d = body[i + 1]
            if d in _C_ESCAPES or (d == "x" and allow_hex):
                out.append("\\")
            out.append(d)
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def quote_string(s: str) -> str:
    """stap's lex_cast_qstring: quote, escaping '"' and '\\', octal for
    non-printable bytes."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if 0xDC80 <= o <= 0xDCFF:  # a raw byte kept by surrogateescape
            o -= 0xDC00
        if o < 0x20 or o == 0x7F or o > 0x7F:
            if o > 0xFF:
                for b in ch.encode("utf-8"):
                    out.append("\\%03o" % b)
            else:
                out.append("\\%03o" % o)
        elif ch in '"\\':
            out.append("\\" + ch)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


_NEVER = 1 << 62


@dataclass(slots=True)
class Relexed:
    """What :meth:`Lexer.retokenize` did: ``tokens[:kept]`` are the old
    ``old_toks[:kept]``, the next ``scanned`` tokens are new, and (when
    ``delta`` is not None) the rest are ``old_toks[resumed:]`` moved by
    ``delta`` characters."""

    tokens: list[Tok]
    kept: int
    resumed: int
    scanned: int
    delta: int | None


def common_prefix(a: str, b: str) -> int:
    """Length of the common prefix of two strings (binary search over slices)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def common_suffix(a: str, b: str, limit: int) -> int:
    """Length of the common suffix of two strings, at most ``limit``."""
    lo, hi = 0, max(0, limit)
    na, nb = len(a), len(b)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[na - mid:na - lo] == b[nb - mid:nb - lo]:
            lo = mid
        else:
            hi = mid - 1
    return lo


class Lexer:
    """Turns a :class:`SourceFile` into a list of :class:`Tok`."""

    def __init__(self, args: list[str] | None = None, compatible: str = "4.8") -> None:
        self.args = list(args or [])
        self.compatible = compatible
        self.keywords = keywords_for(compatible)
        self.allow_hex = version_at_least(compatible, "2.3")
        self.used_args: set[int] = set()
        #: (source, start, end, message) of comments/blocks left open
        self.warnings: list[tuple[SourceFile, int, int, str]] = []
        self._stop_from = _NEVER
        self._resync = None

    def tokenize(self, source: SourceFile) -> list[Tok]:
        toks: list[Tok] = []
        self._scan(source, source.text, 0, None, toks, False)
        return toks

    def retokenize(self, source: SourceFile, old: SourceFile, old_toks: list[Tok],
                   old_warnings: list[tuple[SourceFile, int, int, str]]) -> Relexed:
        """Tokens of ``source``, an edited version of ``old`` whose tokens were
        ``old_toks`` (and warnings ``old_warnings``), scanning only around the
        edit; equal to :meth:`tokenize` (every token is a new object naming
        ``source``).

        The scanner is a loop of regex matches whose only state is the
        position, so scanning may restart at any old match boundary whose
        earlier matches looked only at unchanged text (a match looks at most
        one character past its end, or three past its start for operators),
        and may stop at the first token, past the edit, that starts where an
        old token started (shifted): from there the text and so the matches
        are the old ones.  Matches that look to the end of the text (an
        unclosed comment, embedded block or a string before a final
        backslash) are never before the restart point, except for the
        backslash case, which scans the whole text."""
        new, text = source.text, old.text
        if text.endswith("\\") or new.endswith("\\") or not old_toks:
            toks = self.tokenize(source)
            return Relexed(toks, 0, len(old_toks), len(toks), None)
        p = common_prefix(text, new)
        s = common_suffix(text, new, min(len(text), len(new)) - p)
        delta = len(new) - len(text)
        new_edit_end = len(new) - s
        # keep old_toks[:i]: every token with end + 3 <= p
        lo, hi = 0, len(old_toks)
        while lo < hi:
            mid = (lo + hi) // 2
            if old_toks[mid].end + 3 <= p:
                lo = mid + 1
            else:
                hi = mid
        i = lo
        restart = old_toks[i - 1].end if i else 0
        out = [Tok(t.kind, t.value, source, t.start, t.end, t.ws_before, t.message, t.chain)
               for t in old_toks[:i]]
        warnings = [(source, ws, we, m) for _src, ws, we, m in old_warnings if we <= restart]
        self.warnings = []
        found: list[int] = []

        def resync(ts: int) -> bool:
            want = ts - delta
            a, b = i, len(old_toks)
            while a < b:
                m = (a + b) // 2
                if old_toks[m].start < want:
                    a = m + 1
                else:
                    b = m
            if a < len(old_toks) and old_toks[a].start == want:
                found.append(a)
                return True
            return False

        self._stop_from, self._resync = new_edit_end, resync
        try:
            ws_at_stop = self._scan(source, new, 0, None, out, False, restart)
        finally:
            self._stop_from, self._resync = _NEVER, None
        warnings.extend(self.warnings)
        n_new = len(out) - i
        j = found[0] if found else len(old_toks)
        if found:
            resume = old_toks[j].start
            out += [Tok(t.kind, t.value, source, t.start + delta, t.end + delta, t.ws_before,
                        t.message, t.chain) for t in old_toks[j:]]
            out[i + n_new].ws_before = bool(ws_at_stop)
            warnings.extend((source, ws + delta, we + delta, m)
                            for _src, ws, we, m in old_warnings if ws >= resume)
        self.warnings = warnings
        return Relexed(out, i, j, n_new, delta if found else None)

    # -- internals ---------------------------------------------------------
    def _scan(self, source: SourceFile, text: str, base: int, subst: Tok | None,
              out: list[Tok], nested: bool, pos: int = 0) -> bool | None:
        """Scan ``text`` from ``pos``.  When ``subst`` is given, ``text`` is a
        command-line argument pasted at that token; every token gets its span.
        Returns None, or (re-scanning) whether whitespace came before the
        token at which the scan stopped."""
        ws = False
        keywords = self.keywords
        append = out.append
        stop_from = self._stop_from if subst is None else _NEVER
        for m in _TOKEN_RE.finditer(text, pos):
            kind = m.lastgroup
            s, e = m.start(), m.end()
            if subst is None:
                ts, te = base + s, base + e
            else:
                ts, te = subst.start, subst.end
            if kind == "ws" or kind == "hash" or kind == "lcomment" or kind == "bcomment":
                ws = True
                continue
            if ts >= stop_from and self._resync(ts):      # type: ignore[misc]
                return ws
            v = m.group()
            if kind == "ident":
                if v[0] == "@":
                    k = OPERATOR
                elif v in keywords:
                    k = KEYWORD
                else:
                    k = IDENT
                append(Tok(k, v, source, ts, te, ws))
            elif kind == "op":
                append(Tok(OPERATOR, v, source, ts, te, ws))
            elif kind == "num":
                append(Tok(NUMBER, v, source, ts, te, ws))
            elif kind == "str":
                if _closed(v):
                    append(Tok(STRING, _string_value(v[1:-1], self.allow_hex),
                               source, ts, te, ws))
                else:
                    append(Tok(JUNK, v, source, ts, te, ws,
                               message="Could not find matching closing quote"))
            elif kind == "arg":
                if nested or subst is not None:
                    append(Tok(JUNK, v, source, ts, te, ws,
                               message="invalid nested substitution of command line arguments"))
                else:
                    self._substitute(source, v, ts, te, ws, out)
            elif kind == "embedded":
                append(Tok(EMBEDDED, v[2:-2], source, ts, te, ws))
            elif kind == "badembedded":
                append(Tok(JUNK, v, source, ts, te, ws,
                           message="Could not find matching '%}' to close embedded function block"))
            elif kind == "badbcomment":
                self.warnings.append((source, ts, te, "unterminated comment"))
                ws = True
                continue
            else:  # junk
                o = ord(v)
                if 0xDC80 <= o <= 0xDCFF:
                    o -= 0xDC00
                append(Tok(JUNK, "\\x%02x" % (o & 0xFF) if o < 0x100 else v, source, ts, te, ws,
                           message="unknown junk token"))
            ws = False

    def _substitute(self, source: SourceFile, v: str, ts: int, te: int, ws: bool,
                    out: list[Tok]) -> None:
        quoted = v[0] == "@"
        if v[1] == "#":
            n = len(self.args)
            text = quote_string(str(n)) if quoted else str(n)
        else:
            idx = int(v[1:])
            if idx == 0 or idx - 1 >= len(self.args):
                out.append(Tok(JUNK, v, source, ts, te, ws,
                               message=f"command line argument out of range [1-{len(self.args)}]"))
                return
            self.used_args.add(idx - 1)
            arg = self.args[idx - 1]
            text = quote_string(arg) if quoted else arg
        marker = Tok(JUNK, v, source, ts, te, ws)
        before = len(out)
        self._scan(source, text, ts, marker, out, True)
        if len(out) > before:
            out[before].ws_before = ws


def _closed(v: str) -> bool:
    """Whether a string token ends with an unescaped quote."""
    if len(v) < 2 or not v.endswith('"'):
        return False
    i = len(v) - 2
    backslashes = 0
    while i >= 1 and v[i] == "\\":
        backslashes += 1
        i -= 1
    return backslashes % 2 == 0
