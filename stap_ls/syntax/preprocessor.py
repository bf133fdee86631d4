"""Pass-1 preprocessor: ``@define`` macros and ``%( ... %? ... %: ... %)``.

stap preprocesses tokens, not text, in two layers, and so do we:

1. the macro layer reads tokens from the lexer (or from the body of the
   macro being expanded), records ``@define NAME(params) %( body %)``
   declarations and expands invocations ``@NAME`` / ``@NAME(args)``.  A
   parameter is a closure evaluated where the macro was invoked.  Macros of
   the tapset library's ``.stpm`` files are visible everywhere; inside a
   library macro only library macros and its parameters are.  An ``@word``
   that names no macro is an ordinary operator (``@cast``, ``@count`` ...).
2. the conditional layer evaluates ``%( COND %? THEN %: ELSE %)`` for a
   target (:class:`PPEnv`) and keeps the tokens of the chosen branch.
   Conditions are ``LHS OP RHS`` triples joined by ``&&``/``||``, where LHS is
   ``kernel_v``, ``kernel_vr``, ``systemtap_v``, ``systemtap_privilege``,
   ``arch``, ``runtime``, ``guru_mode``, ``CONFIG_*``, a string or a number.

Errors do not stop preprocessing: each becomes a :class:`PPError` marker in
the output stream at the place stap would report it, and the parser reports
it when it reaches it (stap then skips to the next top-level declaration,
which is what our parser does too).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

from stap_ls.syntax.lexer import (EMBEDDED, IDENT, JUNK, NUMBER, OPERATOR, STRING,
                                  Tok, strverscmp)


#: deepest macro expansion (stap has no limit and recurses until it crashes)
MAX_MACRO_DEPTH = 1000


@dataclass
class PPEnv:
    """What conditionals are evaluated against (stap's session)."""

    kernel_release: str = "6.1.0"
    arch: str = "x86_64"
    kernel_config: dict[str, str] = field(default_factory=dict)
    compatible: str = "4.8"
    privilege: str = "stapdev"
    guru: bool = False
    runtime: str = "kernel"

    @property
    def kernel_base_release(self) -> str:
        return self.kernel_release.split("-", 1)[0]


@dataclass
class Macro:
    name: str
    tok: Tok
    params: list[str]
    body: list[Tok]
    library: bool = False
    #: for a parameter closure: the activation whose params it sees
    parent: "_Activation | None" = None


@dataclass
class PPError:
    """An error marker placed in the token stream."""

    message: str
    tok: Tok | None
    related: list[tuple[str, Tok]] = field(default_factory=list)
    warning: bool = False
    kind: str = "pp-error"
    #: stap met the end of the file here (it prints "saw: FILE EOF"); ``tok``
    #: then only says which file
    at_eof: bool = False


class _Fail(Exception):
    def __init__(self, message: str, tok: Tok | None, related=None, at_eof: bool = False):
        super().__init__(message)
        self.message = message
        self.tok = tok
        self.related = related or []
        self.at_eof = at_eof


@dataclass
class _Activation:
    tok: Tok
    macro: Macro
    cursor: int = 0
    params: dict[str, Macro] = field(default_factory=dict)


def _is_op(t: Tok | None, v: str) -> bool:
    return t is not None and t.kind == OPERATOR and t.value == v


class Preprocessor:
    """Runs both layers over one file's tokens."""

    def __init__(self, tokens: list[Tok], env: PPEnv,
                 library_macros: dict[str, Macro] | None = None,
                 atwords: frozenset[str] = frozenset()) -> None:
        self._base = tokens
        self._pos = 0
        self.env = env
        self.library = library_macros if library_macros is not None else {}
        self.atwords = atwords
        self.namespace: dict[str, Macro] = {}
        self._stack: list[_Activation] = []
        self.warnings: list[PPError] = []

    # -- macro layer -------------------------------------------------------
    def _next_base(self) -> Tok | None:
        if self._pos < len(self._base):
            t = self._base[self._pos]
            self._pos += 1
            return t
        return None

    def _next_pp1(self) -> Tok | None:
        if not self._stack:
            return self._next_base()
        act = self._stack[-1]
        body = act.macro.body
        if act.cursor < len(body):
            t = body[act.cursor]
            act.cursor += 1
            # a copy marked with the invocation it came from
            return Tok(t.kind, t.value, t.source, t.start, t.end, t.ws_before,
                       t.message, act.tok)
        return None

    def _scan_pp1(self, ignore_macros: bool = False) -> Tok | None:
        while True:
            t = self._next_pp1()
            if t is None:
                if not self._stack:
                    return None
                self._stack.pop()
                continue
            if t.kind == OPERATOR and t.value == "@define" and not ignore_macros:
                if self._stack:
                    raise _Fail("'@define' forbidden inside macro body", t)
                self._define(t)
                continue
            if t.kind == OPERATOR and t.value.startswith("@") and len(t.value) > 1:
                name = t.value[1:]
                act = self._stack[-1] if self._stack else None
                decl = None
                if act is not None and name in act.params:
                    decl = act.params[name]
                elif not (act is not None and act.macro.library) and name in self.namespace:
                    decl = self.namespace[name]
                elif name in self.library:
                    decl = self.library[name]
                if decl is None:
                    return t
                self._invoke(t, decl, act)
                continue
            return t

    def _define(self, at: Tok) -> None:
        t = self._next_base()
        if t is None or t.kind != IDENT:
            raise _Fail("expected identifier", t or at, at_eof=t is None)
        name = t.value
        if name in self.namespace:
            raise _Fail(f"attempt to redefine macro '@{name}' in the same file", t,
                        [(f"macro '@{name}' first defined here", self.namespace[name].tok)])
        if name == "define":
            raise _Fail("attempt to redefine '@define'", t)
        if name in self.atwords:
            self.warnings.append(PPError(f"macro redefines built-in operator '@{name}'", t,
                                         warning=True))
        macro = Macro(name, t, [], [])
        self.namespace[name] = macro
        saw_params = False
        t = self._next_base()
        if _is_op(t, "("):
            saw_params = True
            while True:
                t = self._next_base()
                if t is None or t.kind != IDENT:
                    raise _Fail("expected identifier", t or at, at_eof=t is None)
                macro.params.append(t.value)
                t = self._next_base()
                if _is_op(t, ","):
                    continue
                if _is_op(t, ")"):
                    t = self._next_base()
                    break
                raise _Fail("expected ',' or ')'", t or at, at_eof=t is None)
        if not _is_op(t, "%("):
            raise _Fail("expected '%('" if saw_params else "expected '%(' or '('", t or at, at_eof=t is None)
        nesting = 0
        while True:
            t = self._next_pp1()
            if t is None:
                raise _Fail("incomplete macro definition - missing '%)'", macro.tok)
            if _is_op(t, "%("):
                nesting += 1
            elif _is_op(t, "%)"):
                if nesting == 0:
                    break
                nesting -= 1
            macro.body.append(t)

    def _invoke(self, t: Tok, decl: Macro, act: _Activation | None) -> None:
        name = t.value[1:]
        if len(self._stack) >= MAX_MACRO_DEPTH:
            self._stack.clear()     # abandon the expansion; go on with the file
            raise _Fail(f"macro expansion nested more than {MAX_MACRO_DEPTH} deep "
                        f"(recursive macro '@{name}'?)", t)
        new = _Activation(t, decl)
        n = len(decl.params)
        if n == 0 and decl.parent is not None:
            new.params = decl.parent.params
            self._stack.append(new)
            return
        if n == 0:
            self._stack.append(new)
            return
        u = self._next_pp1()
        if not _is_op(u, "("):
            plural = "parameter" if n == 1 else "parameters"
            raise _Fail(f"expected '(' in invocation of macro '@{name}' taking {n} {plural}",
                        u or t)
        for i, pname in enumerate(decl.params):
            closure = Macro(pname, t, [], [], parent=act)
            new.params[pname] = closure
            nesting = 0
            while True:
                u = self._next_pp1()
                if u is None:
                    break
                if u.kind == OPERATOR and u.value in ("(", "["):
                    nesting += 1
                elif nesting and u.kind == OPERATOR and u.value in (")", "]"):
                    nesting -= 1
                elif not nesting and u.kind == OPERATOR and u.value in (")", ","):
                    break
                closure.body.append(u)
            if u is None:
                raise _Fail("could not find end of macro invocation", t)
            if u.value == ",":
                if i + 1 == n:
                    raise _Fail(f"too many parameters for macro '@{name}' (expected {n})", u)
            elif i + 1 != n:
                raise _Fail(f"too few parameters for macro '@{name}' (expected {n})", u)
        self._stack.append(new)

    # -- conditional layer -------------------------------------------------
    def run(self) -> list[Tok | PPError]:
        """Preprocess the whole file."""
        out: list[Tok | PPError] = []
        state: list[list] = []   # [open_tok, mode] mode: keep_then/skip_then/keep_else/skip_else
        while True:
            try:
                mode = state[-1][1] if state else None
                if mode in ("skip_then", "skip_else"):
                    t = self._skip()
                else:
                    t = self._scan_pp1()
                if t is None:
                    if state:
                        open_tok = state.pop()[0]
                        raise _Fail("incomplete conditional at end of file", open_tok)
                    break
                if _is_op(t, "%?"):
                    raise _Fail("incomplete conditional - missing '%('", t)
                if _is_op(t, "%:"):
                    if mode is None:
                        raise _Fail("incomplete conditional - missing '%('", t)
                    if mode in ("keep_else", "skip_else"):
                        raise _Fail("invalid conditional - duplicate '%:'", t)
                    state[-1][1] = "skip_else" if mode == "keep_then" else "keep_else"
                    continue
                if _is_op(t, "%)"):
                    if mode is None:
                        raise _Fail("incomplete conditional - missing '%('", t)
                    state.pop()
                    continue
                if not _is_op(t, "%("):
                    out.append(t)
                    continue
                result = self._condition(t)
                state.append([t, "keep_then" if result else "skip_then"])
            except _Fail as f:
                out.append(PPError(f.message, f.tok, f.related, at_eof=f.at_eof))
                if len(out) > 1 and isinstance(out[-2], PPError) and out[-2].tok is f.tok \
                        and f.tok is not None and out[-2].message == f.message:
                    out.pop()   # never loop on one error
                    break
        return out

    def _skip(self) -> Tok | None:
        nesting = 0
        while True:
            try:
                t = self._scan_pp1(ignore_macros=True)
            except _Fail:
                continue
            if t is None:
                return None
            if _is_op(t, "%("):
                nesting += 1
            elif nesting and _is_op(t, "%)"):
                nesting -= 1
            elif not nesting and t.kind == OPERATOR and t.value in ("%:", "%?", "%)"):
                return t

    def _condition(self, open_tok: Tok) -> bool:
        result = False
        and_result = True
        while True:
            l = self._scan_pp1()
            op = self._scan_pp1() if l is not None else None
            r = self._scan_pp1() if op is not None else None
            if l is None or op is None or r is None:
                raise _Fail("incomplete condition after '%('", open_tok)
            and_result = self._eval(l, op, r) and and_result
            n = self._scan_pp1()
            if _is_op(n, "&&"):
                continue
            result = result or and_result
            and_result = True
            if not _is_op(n, "||"):
                break
        if not _is_op(n, "%?"):
            raise _Fail("expected '%?' marker for conditional", open_tok)
        return result

    def _eval(self, l: Tok, op: Tok, r: Tok) -> bool:
        env = self.env
        if l.kind == IDENT and l.value in ("kernel_v", "kernel_vr", "systemtap_v"):
            if r.kind != STRING:
                raise _Fail("expected string literal", r)
            target = {"kernel_v": env.kernel_base_release, "kernel_vr": env.kernel_release,
                      "systemtap_v": env.compatible}[l.value]
            query = r.value
            ops = {"<=": (-1, 0, False), ">=": (1, 0, False), "<": (-1, -1, False),
                   ">": (1, 1, False), "==": (0, 0, True), "!=": (-1, 1, True)}
            if op.kind != OPERATOR or op.value not in ops:
                raise _Fail("expected comparison operator", op)
            ok1, ok2, wc_ok = ops[op.value]
            wildcard = any(c in query for c in "*?[")
            if wildcard and not wc_ok:
                raise _Fail("wildcard not allowed with order comparison operators", op)
            if wildcard:
                matched = _fnmatch(query, target)
                return matched == (op.value == "==")
            rc = strverscmp(target, query)
            rc = (rc > 0) - (rc < 0)
            return rc in (ok1, ok2)
        if l.kind == IDENT and l.value == "systemtap_privilege":
            if r.kind != STRING:
                raise _Fail("expected string literal", r)
            return self._eq_ne(op, env.privilege == r.value)
        if l.kind == IDENT and l.value == "guru_mode":
            if r.kind != NUMBER:
                raise _Fail("expected number", r)
            rhs = _to_int(r.value)
            if rhs not in (0, 1):
                raise _Fail("expected 0 or 1", op)
            if not (op.kind == OPERATOR and op.value in ("==", "!=")):
                raise _Fail("expected '==' or '!='", op)
            return _compare(int(env.guru), op, rhs)
        if l.kind == IDENT and l.value == "arch":
            if r.kind != STRING:
                raise _Fail("expected string literal", r)
            return self._eq_ne(op, _fnmatch(r.value, env.arch))
        if l.kind == IDENT and l.value == "runtime":
            if r.kind != STRING:
                raise _Fail("expected string literal", r)
            return self._eq_ne(op, _fnmatch(r.value, env.runtime))
        if l.kind == IDENT and l.value.startswith("CONFIG_"):
            lhs = env.kernel_config.get(l.value, "")
            if r.kind == STRING:
                return self._eq_ne(op, _fnmatch(r.value, lhs))
            if r.kind == NUMBER:
                lv = _to_int(lhs)
                if lv is None:
                    raise _Fail("Config option value not a number", l)
                return _compare(lv, op, _to_int(r.value) or 0)
            if r.kind == IDENT and r.value.startswith("CONFIG_"):
                rhs = env.kernel_config.get(r.value, "")
                lv, rv = _to_int(lhs), _to_int(rhs)
                if lv is not None and rv is not None:
                    return _compare(lv, op, rv)
                return _compare(lhs, op, rhs)
            raise _Fail("expected string, number literal or other CONFIG_... as right side operand", r)
        if l.kind == STRING and r.kind == STRING:
            return _compare(l.value, op, r.value)
        if l.kind == NUMBER and r.kind == NUMBER:
            return _compare(_to_int(l.value) or 0, op, _to_int(r.value) or 0)
        if l.kind == STRING and r.kind == NUMBER and op.kind == OPERATOR:
            raise _Fail("expected string literal as right value", r)
        if l.kind == NUMBER and r.kind == STRING and op.kind == OPERATOR:
            raise _Fail("expected number literal as right value", r)
        raise _Fail("expected 'arch', 'kernel_v', 'kernel_vr', 'systemtap_v',\n"
                    "             'runtime', 'systemtap_privilege', 'CONFIG_...', or\n"
                    "             comparison between strings or integers", l)

    @staticmethod
    def _eq_ne(op: Tok, match: bool) -> bool:
        if op.kind == OPERATOR and op.value == "==":
            return match
        if op.kind == OPERATOR and op.value == "!=":
            return not match
        raise _Fail("expected '==' or '!='", op)


def _fnmatch(pattern: str, name: str) -> bool:
    # fnmatch(3) with FNM_NOESCAPE: '*', '?', '[...]'; no case folding
    return fnmatch.fnmatchcase(name, pattern)


def _compare(a, op: Tok, b) -> bool:
    if op.kind == OPERATOR:
        v = op.value
        if v == "<=":
            return a <= b
        if v == ">=":
            return a >= b
        if v == "<":
            return a < b
        if v == ">":
            return a > b
        if v == "==":
            return a == b
        if v == "!=":
            return a != b
    raise _Fail("expected comparison operator", op)


_INT_RE = re.compile(r"\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)\Z")


def _to_int(s: str) -> int | None:
    """strtoll(s, &end, 0) requiring the whole string to be used (so an empty
    string, e.g. an unset CONFIG_ option, is 0, as strtoll leaves it)."""
    if s == "":
        return 0
    m = _INT_RE.match(s)
    if not m:
        return None
    sign, digits = m.groups()
    v = int(digits, 0) if not re.fullmatch(r"0[0-7]+", digits) else int(digits, 8)
    return -v if sign == "-" else v


def parse_library_macros(tokens: list[Tok], env: PPEnv, library: dict[str, Macro],
                         atwords: frozenset[str]) -> tuple[dict[str, Macro], list[PPError]]:
    """Read a ``.stpm`` file: it may only define macros.  Returns the macros it
    adds to the library (none if it has an error) and its errors."""
    pp = Preprocessor(tokens, env, library, atwords)
    out = pp.run()
    errors = [e for e in out if isinstance(e, PPError)]
    stray = next((t for t in out if isinstance(t, Tok)), None)
    if stray is not None and not errors:
        name = stray.source.name
        errors.append(PPError(f"unexpected token in library macro file '{name}'", stray))
    if errors:
        return {}, errors + pp.warnings
    for name, m in pp.namespace.items():
        if name in library:
            return {}, [PPError(f"duplicate definition of library macro '@{name}'", m.tok,
                                [(f"macro '@{name}' first defined here", library[name].tok)])]
    for m in pp.namespace.values():
        m.library = True
    return dict(pp.namespace), pp.warnings


__all__ = ["PPEnv", "Macro", "PPError", "Preprocessor", "parse_library_macros",
           "EMBEDDED", "JUNK"]
