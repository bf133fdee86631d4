"""Syntax check of the regular expressions of ``=~`` / ``!~``, with stap's wording.

stap compiles the right operand of ``=~`` (a string literal, POSIX ERE) in
pass 2 and rejects a malformed one with "regex compilation error (at position
N): MESSAGE".  :func:`regex_error` finds the first such error (or None) for
the mistakes stap 4.8 reports here, checked against it: an unclosed ``[...]``,
an unclosed ``(``, a repetition operator with nothing to repeat, an
unterminated or malformed ``{m,n}``, an inverted range ``[z-a]`` and an
unknown ``[:class:]``.  Anything it does not recognise is accepted (stap then
has the last word when it compiles the script).
"""

from __future__ import annotations

_CLASSES = {"alnum", "alpha", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
            "space", "upper", "xdigit"}


def _msg(pos: int | None, text: str) -> str:
    where = f" (at position {pos})" if pos is not None else ""
    return f"regex compilation error{where}: {text}"


def _bracket(rx: str, i: int) -> tuple[int, str | None]:
    """Scan a ``[...]`` starting at ``rx[i] == '['``: (index after it, error)."""
    n = len(rx)
    j = i + 1
    if j < n and rx[j] == "^":
        j += 1
    first = True
    prev: str | None = None
    while j < n:
        c = rx[j]
        if c == "]" and not first:
            return j + 1, None
        first = False
        if c == "[" and j + 1 < n and rx[j + 1] == ":":
            end = rx.find(":]", j + 2)
            if end < 0:
                return n, _msg(n - 1, "unclosed character class")
            name = rx[j + 2:end]
            if name not in _CLASSES:
                return n, _msg(None, f"unknown character class '{name}'")
            j = end + 2
            prev = None
            continue
        if c == "-" and prev is not None and j + 1 < n and rx[j + 1] != "]":
            hi = rx[j + 1]
            if hi == "\\" and j + 2 < n:
                hi = rx[j + 2]
            if ord(hi) < ord(prev):
                close = rx.find("]", j + 2)
                return n, _msg(close if close >= 0 else n - 1,
                               f"Inverted character range {prev}-{hi}")
            j += 3 if rx[j + 1] == "\\" else 2
            prev = None
            continue
        if c == "\\" and j + 1 < n:
            prev = rx[j + 1]
            j += 2
            continue
        prev = c
        j += 1
    return n, _msg(n - 1, "unclosed character class")


def regex_error(rx: str) -> str | None:
    """stap's complaint about regular expression ``rx``, or None."""
    n = len(rx)
    depth = 0
    i = 0
    atom = False        # is there something a repetition operator can apply to?
    while i < n:
        c = rx[i]
        if c == "[":
            i, err = _bracket(rx, i)
            if err:
                return err
            atom = True
            continue
        if c == "(":
            depth += 1
            atom = False
        elif c == ")":
            if depth:
                depth -= 1
            atom = True
        elif c == "|":
            atom = False
        elif c in "*+?":
            if not atom:
                return _msg(i, f"unexpected '{c}'")
        elif c == "{":
            j = i + 1
            if j >= n:
                return _msg(n, "unexpected end of regex")
            if not rx[j].isdigit():
                return _msg(j + 1, "expected number")
            while j < n and (rx[j].isdigit() or rx[j] == ","):
                j += 1
            if j >= n:
                return _msg(n, "unexpected end of regex")
            if not atom:
                return _msg(i, "unexpected '{'")
            if rx[j] != "}":
                return _msg(j, "expected '}'")
            i = j
        elif c == "\\":
            i += 2
            atom = True
            continue
        else:
            atom = True
        i += 1
    if depth:
        return _msg(n - 1, "expected ), found end of regex")
    return None
