"""Incremental pass 1 equals a fresh parse after any edit, and reuses the
declarations it should."""

from __future__ import annotations

import glob
import random

import pytest

from stap_ls.ide.incremental import DeclCache, parse_incremental
from stap_ls.syntax.parser import ParseOptions, parse_file
from stap_ls.syntax.printer import print_file
from stap_ls.text import SourceFile

EXAMPLES = sorted(glob.glob("/usr/share/systemtap/examples/*/*.stp"))


def _key(res):
    return (print_file(res.file),
            [(str(d.span), d.message, d.severity) for d in res.diagnostics],
            [(str(d.span) if d.span else None) for d in res.file.decls])


def _corpus() -> str:
    if not EXAMPLES:
        pytest.fail("no SystemTap examples: install systemtap-doc (apt-get install systemtap-doc)")
    return "\n".join(open(p, errors="replace").read() for p in EXAMPLES[:40])


def test_random_edits_match_fresh_parse():
    text = _corpus()
    rnd = random.Random(1234)
    opts = ParseOptions()
    cache = DeclCache()
    parse_incremental(SourceFile("x.stp", text), opts, cache)
    pieces = ["x", "}", "{", "\n", "probe begin { print(1) }\n", "\"", "#", "%(", "1 +", ""]
    for _ in range(25):
        pos = rnd.randrange(len(text))
        cut = rnd.choice([0, 0, 1, 5])
        text = text[:pos] + rnd.choice(pieces) + text[pos + cut:]
        src = SourceFile("x.stp", text)
        inc = parse_incremental(src, opts, cache)
        fresh = parse_file(SourceFile("x.stp", text), opts)
        assert _key(inc) == _key(fresh)


def test_unchanged_declarations_are_reused():
    text = "global a\nprobe begin { a = 1 }\nfunction f(x) { return x }\nprobe end { print(a) }\n"
    cache = DeclCache()
    opts = ParseOptions()
    parse_incremental(SourceFile("y.stp", text), opts, cache)
    assert cache.parsed == 4 and cache.reused == 0
    edited = text.replace("return x", "return x + 1")
    res = parse_incremental(SourceFile("y.stp", edited), opts, cache)
    assert cache.parsed == 1 and cache.reused == 3
    # the moved declaration's spans point into the new text
    end_probe = res.file.decls[-1]
    assert edited[end_probe.span.start:end_probe.span.end] == "probe end { print(a) }"


def test_first_return_notes_survive_reuse():
    """pass 1's "'return' not in function context" check runs on reused
    declarations too (their notes travel with the cached trees)."""
    text = "probe begin { return }\nprobe end { x = 1 }\nfunction f() { return 1 }\n"
    cache = DeclCache()
    edited = text.replace("x = 1", "x = 2")
    for t in (text, edited, "\n" + edited):
        res = parse_incremental(SourceFile("r.stp", t), ParseOptions(), cache)
        assert _key(res) == _key(parse_file(SourceFile("r.stp", t), ParseOptions()))
        assert [d.message for d in res.errors] == ["found 'return' not in function context"]
    assert cache.reused == 3


def test_ide_names_are_the_syntax_layer_api():
    from stap_ls.syntax import incremental as syntax_incremental
    assert DeclCache is syntax_incremental.DeclCache
    cache = DeclCache()
    parse_incremental(SourceFile("s.stp", "probe begin { x = 1 }\n"), ParseOptions(), cache)
    assert cache.last is not None and cache.parsed == 1
