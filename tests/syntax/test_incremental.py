"""Incremental pass 1 (:mod:`stap_ls.syntax.incremental`) equals a fresh parse.

Random edit sequences (hypothesis) insert and delete characters anywhere —
inside comments, strings, embedded code, preprocessor conditionals, macro
definitions, across declaration boundaries — and after every edit the
incremental result must equal ``parse_file`` of the same text: the tree as
the -p1 printer prints it, every node's span (offsets and line/column), the
diagnostics, the tokens (kind, value, span, whitespace flag, source) and the
items the grammar saw.  Plain example tests pin what is reused and re-scanned.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stap_ls.syntax import ast as A
from stap_ls.syntax.incremental import DeclCache, parse_file_incremental
from stap_ls.syntax.lexer import Lexer, Tok, atwords_for
from stap_ls.syntax.parser import ParseOptions, ParseResult, parse_file
from stap_ls.syntax.preprocessor import PPEnv, PPError, parse_library_macros
from stap_ls.syntax.printer import print_file
from stap_ls.text import SourceFile

BASE = """\
global counts, total
# a comment with "quotes" and { braces
probe begin { total = 0 }
/* a block
   comment */
function add:long(a:long, b:long) { return a + b }
probe syscall.open, syscall.openat ? {
  counts[execname()] <<< 1
  printf("%s %d\\n", execname(), @count(counts[execname()]))
}
%( kernel_v >= "2.6" %? probe timer.s(1) { total++ } %: probe never {} %)
@define twice(x) %( (@x + @x) %)
probe timer.ms(10) { total += @twice(2) + @lib }
%{ #include <linux/sched.h> %}
function raw:long () %{ STAP_RETURN(1); %}
probe end { print(total); return }
private global p
global counts
probe kernel.function("vfs_read").return { if ($return > 0) next }
"""

PIECES = ["x", " ", "\n", "{", "}", "(", ")", ";", '"', "\\", "#", "//", "/*", "*/", "%{", "%}",
          "%(", "%?", "%:", "%)", "@define", "@", "$", "$1", "@1", "probe ", "function ",
          "global ", "private ", "return", "->", "<", "=", "1", "kernel_v", "@twice(",
          "probe end { x = 1 }\n"]

LIB_SRC = "@define lib %( 42 %)\n"


def _options(with_library: bool) -> ParseOptions:
    env = PPEnv()
    macros = {}
    if with_library:
        src = SourceFile("lib.stpm", LIB_SRC)
        toks = Lexer([], env.compatible).tokenize(src)
        macros, errs = parse_library_macros(toks, env, {}, atwords_for(env.compatible))
        assert not errs and "lib" in macros
    return ParseOptions(env=env, args=["7", "a b"], privileged=True, library_macros=macros)


def _tok(t: Tok, src: SourceFile):
    return (t.kind, t.value, t.start, t.end, t.ws_before, t.message,
            "here" if t.source is src else t.source.name)


def _item(it, src: SourceFile):
    if isinstance(it, PPError):
        return ("pp", it.message, _tok(it.tok, src) if it.tok else None, it.at_eof)
    return _tok(it, src)


def _spans(f: A.StapFile):
    out = []
    for d in f.decls:
        for n in A.walk(d):
            for s in (n.span, getattr(n, "name_span", None)):
                out.append((type(n).__name__, None if s is None else
                            (s.start, s.end, s.source.name, s.start_pos, s.end_pos)))
    return out


def summary(res: ParseResult, src: SourceFile):
    """Everything that must not differ between incremental and fresh parsing."""
    return {
        "p1": print_file(res.file),
        "spans": _spans(res.file),
        "diags": [(d.severity, d.message, d.code, d.kind, d.saw, d.marker,
                   None if d.span is None else (d.span.start, d.span.end, str(d.span)),
                   [(r.message, str(r.span)) for r in d.related]) for d in res.diagnostics],
        "tokens": [_tok(t, src) for t in res.tokens],
        "items": [_item(it, src) for it in res.stream],
        "flags": (res.empty, res.saw_tokens),
    }


def _check_sequence(text: str, edits, opts: ParseOptions) -> DeclCache:
    cache = DeclCache()
    src = SourceFile("t.stp", text)
    assert summary(parse_file_incremental(src, opts, cache), src) == \
        summary(parse_file(src, opts), src)
    for pos, cut, piece in edits:
        pos = pos % (len(text) + 1)
        text = text[:pos] + piece + text[pos + cut:]
        src = SourceFile("t.stp", text)
        inc = parse_file_incremental(src, opts, cache)
        fresh_src = SourceFile("t.stp", text)
        fresh = parse_file(fresh_src, opts)
        assert summary(inc, src) == summary(fresh, fresh_src), (pos, cut, piece, text)
    assert cache.fallbacks == 0
    return cache


EDIT = st.tuples(st.integers(min_value=0, max_value=10_000), st.sampled_from([0, 0, 0, 1, 2, 7]),
                 st.one_of(st.sampled_from(PIECES), st.text(alphabet="ab{}()\"#/*%?:@$\n ;",
                                                            max_size=4)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(EDIT, min_size=1, max_size=8), st.booleans())
def test_random_edits_equal_a_fresh_parse(edits, with_library):
    _check_sequence(BASE, edits, _options(with_library))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(EDIT, min_size=1, max_size=6))
def test_random_edits_in_a_file_without_preprocessing(edits):
    # no '%(' or '@define': the path that splices tokens and terminals
    plain = "\n".join(ln for ln in BASE.splitlines() if "%" not in ln and "@" not in ln) + "\n"
    _check_sequence(plain * 3, edits, _options(False))


def test_one_character_edit_rescans_and_reparses_little():
    text = "".join(f"function f{i}(x) {{ return x + {i} }}\nprobe timer.ms({i + 1}) "
                   f"{{ y = f{i}(2) }}\n" for i in range(200))
    opts = _options(False)
    cache = DeclCache()
    parse_file_incremental(SourceFile("u.stp", text), opts, cache)
    assert cache.parsed == 400 and cache.reused == 0
    pos = text.index("return x + 100") + len("return x")
    for edited in (text[:pos] + "x" + text[pos:], text[:pos] + text[pos + 1:]):
        src = SourceFile("u.stp", edited)
        res = parse_file_incremental(src, opts, cache)
        assert (cache.parsed, cache.reused) == (1, 399)
        assert cache.scanned <= 3, cache.scanned
        assert summary(res, src) == summary(parse_file(src, opts), src)
        last = res.file.decls[-1]
        assert edited[last.span.start:last.span.end] == "probe timer.ms(200) { y = f199(2) }"


def test_options_that_change_parsing_are_not_reused():
    text = "probe begin { x = %{ 1 %} }\n"
    cache = DeclCache()
    src = SourceFile("g.stp", text)
    guru = parse_file_incremental(src, ParseOptions(privileged=True), cache)
    plain = parse_file_incremental(src, ParseOptions(privileged=False), cache)
    assert not guru.errors
    assert [d.message for d in plain.errors] == \
        [d.message for d in parse_file(src, ParseOptions(privileged=False)).errors] != []
    args = parse_file_incremental(SourceFile("a.stp", "probe begin { x = $1 }\n"),
                                  ParseOptions(args=["5"]), cache)
    again = parse_file_incremental(SourceFile("a.stp", "probe begin { x = $1 }\n"),
                                   ParseOptions(args=["6"]), cache)
    assert "5" in print_file(args.file) and "6" in print_file(again.file)


def test_error_at_end_of_file_follows_the_end():
    text = "probe begin { x = 1 }\nprobe end { y = (\n"
    cache = DeclCache()
    opts = _options(False)
    parse_file_incremental(SourceFile("e.stp", text), opts, cache)
    for t in (text + "# more\n", text + "\n\n", text):
        src = SourceFile("e.stp", t)
        assert summary(parse_file_incremental(src, opts, cache), src) == \
            summary(parse_file(src, opts), src)


def test_spans_before_a_declaration_do_not_move_with_it():
    """A declaration's tree or errors may name earlier text (a macro body; the
    '%(' of a conditional left open): an edit between the two must not
    move those spans."""
    opts = _options(False)
    text = ("@define two %( (1 + 1) %)\nprobe begin { x = 1 }\nprobe end { y = @two }\n"
            "%( kernel_v >= \"2.6\" %? probe timer.s(1) { z = 1 }\n")
    cache = DeclCache()
    parse_file_incremental(SourceFile("m.stp", text), opts, cache)
    at = text.index("x = 1")
    for edited in (text[:at] + " " + text[at:], text[:at] + "\n\n" + text[at:]):
        src = SourceFile("m.stp", edited)
        fresh_src = SourceFile("m.stp", edited)
        assert summary(parse_file_incremental(src, opts, cache), src) == \
            summary(parse_file(fresh_src, opts), fresh_src)


def test_an_internal_error_falls_back_to_a_whole_parse(monkeypatch, caplog):
    from stap_ls.syntax import incremental

    def broken(*_args):
        raise IndexError("simulated bug")

    opts = _options(False)
    cache = DeclCache()
    parse_file_incremental(SourceFile("b.stp", "probe begin { x = 1 }\n"), opts, cache)
    monkeypatch.setattr(incremental, "_splice_terminals", broken)
    src = SourceFile("b.stp", "probe begin { x = 12 }\n")
    res = parse_file_incremental(src, opts, cache)
    assert cache.fallbacks == 1 and "simulated bug" in caplog.text
    assert summary(res, src) == summary(parse_file(src, opts), src)


def test_edits_that_glue_a_declaration_to_the_previous_one():
    """'function' or '->' typed before 'probe' makes it a name, not a new
    declaration: the chunks after the edit are not the old ones."""
    text = "".join(f"probe timer.ms({i + 1}) {{ x = {i} }}\n" for i in range(6))
    at = [text.index(f"probe timer.ms({i})") for i in (3, 4, 5)]
    edits = [(at[0], 0, "function "), (at[0], 9, ""), (at[1], 0, "y->"), (at[1] - 1, 0, "x->"),
             (at[2], 0, "private "), (at[2], 0, "%{ %}"), (at[2], 0, "global g ")]
    opts = _options(False)
    for e in edits:
        _check_sequence(text, [e], opts)
    _check_sequence(text, edits, opts)
