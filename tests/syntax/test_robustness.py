"""Pass 1 never raises and never hangs: pathological inputs and fuzzing.

Every input must come back as a parse result with diagnostics, the ``-p1``
printer must work on whatever tree came back, and ``stap-ls check`` must exit
0 or 1.  The fuzz tests mutate SystemTap's own test scripts and build random
token soups; each input must finish within 1 s per 10 KB (at least 1 s).
"""

from __future__ import annotations

import random
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stap_ls.syntax.parser import MAX_DEPTH, ParseOptions, parse_file
from stap_ls.syntax.printer import print_file
from stap_ls.text import SourceFile
from tests.support.corpus import corpus_files
from tests.syntax.conftest import check

N = 100_000


def parse_and_print(text: str, name: str = "<fuzz>"):
    t = time.perf_counter()
    res = parse_file(SourceFile(name, text), ParseOptions(args=["1", "two"]))
    print_file(res.file)
    for d in res.diagnostics:
        assert d.message and d.severity is not None
    return res, time.perf_counter() - t


def messages(res) -> list[str]:
    return [d.message for d in res.diagnostics]


def test_deep_parentheses_parse():
    res, _ = parse_and_print("probe begin { x = " + "(" * N + "1" + ")" * N + " }")
    assert not res.errors        # parentheses make no tree nodes: stap accepts it too
    assert len(res.file.probes) == 1


def test_deep_blocks_are_a_diagnostic():
    res, _ = parse_and_print("probe begin " + "{" * N + "}" * N + "\nprobe end {}")
    assert any("nesting too deep" in m for m in messages(res))
    assert [p.points[0].components[0].functor for p in res.file.probes] == ["end"]


def test_long_operator_chain_is_a_diagnostic():
    res, _ = parse_and_print("probe begin { x = " + "+".join(["1"] * N) + " }")
    assert any("nesting too deep" in m for m in messages(res))


def test_deep_if_chain_and_assignments():
    for text in ("probe begin { " + "if (x) " * (N // 2) + "y = 1 }",
                 "probe begin { " + "a = " * (N // 2) + "1 }",
                 "probe begin { x = " + "!" * N + "1 }"):
        res, _ = parse_and_print(text)
        assert any("nesting too deep" in m for m in messages(res))


def test_just_under_the_depth_limit_prints():
    depth = MAX_DEPTH // 3
    res, _ = parse_and_print("probe begin " + "{" * depth + "}" * depth)
    assert not res.errors
    assert print_file(res.file).count("{") == depth


def test_deep_conditionals():
    text = "%( 1 == 1 %? " * 20000 + "probe begin {}" + " %)" * 20000
    res, _ = parse_and_print(text)
    assert not res.errors and len(res.file.probes) == 1


def test_recursive_macro_is_a_diagnostic():
    res, _ = parse_and_print("@define a %( @a %)\nprobe begin { x = @a }\nprobe end { }")
    assert any("recursive macro '@a'" in m for m in messages(res))


def test_five_megabytes():
    text = ("probe begin { x = 1 } # " + "c" * 80 + "\n") * 50_000
    assert len(text) > 5_000_000
    res, secs = parse_and_print(text)
    assert not res.errors and len(res.file.probes) == 50_000
    assert secs < len(text) / 10240


def test_nul_bytes_and_invalid_utf8(tmp_path):
    f = tmp_path / "bad.stp"
    f.write_bytes(b'probe begin { x = "\xff\xfe" \x00 y = 1 }\n')
    out = check(["-p1", str(f)])
    assert out.rc == 1
    # (stap itself stops reading at the NUL and reports an unexpected end of file)
    assert "parse error: unknown junk token" in out.err
    f.write_bytes(b'probe begin { x = "\xff\xfe\x80" }\n')
    out = check(["-p1", str(f)])
    assert out.rc == 0
    assert '(x) = ("\udcff\udcfe\udc80")' in out.out   # the raw bytes, as stap prints them


def test_unterminated_constructs():
    cases = {
        "probe begin { } /* never closed": "unterminated comment",
        "probe begin { } %{ never closed": "Could not find matching '%}'",
        'probe begin { } %( arch == "x" %? probe end {}': "incomplete conditional",
        'probe begin { x = "abc': "Could not find matching closing quote",
        "probe begin { x = (": "",
        "@define m(a": "",
        "probe begin { x = @m(1, ": "",
    }
    for text, want in cases.items():
        res, _ = parse_and_print(text)
        assert res.diagnostics, text
        assert want in " ".join(messages(res)), (text, messages(res))


def test_check_cli_on_pathological_file(tmp_path):
    f = tmp_path / "deep.stp"
    f.write_text("probe begin " + "{" * N + "}" * N)
    out = check(["-p1", str(f)])
    assert out.rc == 1 and "nesting too deep" in out.err


# -- fuzzing ------------------------------------------------------------------
_CORPUS = [p.read_text(errors="surrogateescape")
           for d in ("parseok", "parseko", "semok") for p in corpus_files(d)]

_TOKENS = ["probe", "begin", "end", "function", "global", "private", "if", "else", "for",
           "foreach", "in", "limit", "while", "return", "next", "break", "continue", "delete",
           "try", "catch", "string", "long", "{", "}", "(", ")", "[", "]", ",", ";", ":",
           "=", "+=", "<<<", "==", "!=", "<", ">", "+", "-", "*", "/", "%", "!", "~", "&&",
           "||", "&", "|", "^", "<<", ">>", "?", ".", "->", "++", "--", "$", "$$", "$x",
           "@cast", "@var", "@defined", "@entry", "@count", "@hist_log", "@define", "@m",
           "%(", "%?", "%:", "%)", "%{", "%}", "%{ x %}", '"s"', '"unterminated', "0",
           "0x1F", "999999999999999999999", "x", "kernel", "function(\"f\")", "$1", "@1",
           "$#", "/*", "*/", "//", "#", "\n", " ", "\x00", "\udcff", "printf", "println",
           "arch", "kernel_v", "CONFIG_SMP", "systemtap_v", "guru_mode"]


def _budget(text: str) -> float:
    return max(1.0, len(text) / 10240)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(0, len(_CORPUS) - 1), st.integers(0, 2**32 - 1), st.integers(1, 12))
def test_fuzz_mutated_corpus(which, seed, n_mutations):
    rng = random.Random(seed)
    text = _CORPUS[which]
    for _ in range(n_mutations):
        op = rng.randrange(4)
        i = rng.randrange(len(text) + 1)
        j = min(len(text), i + rng.randrange(1, 40))
        if op == 0:
            text = text[:i] + text[j:]                           # delete a slice
        elif op == 1:
            text = text[:i] + rng.choice(_TOKENS) + text[i:]     # insert a token
        elif op == 2:
            text = text[:i] + text[i:j] * rng.randrange(2, 6) + text[j:]  # repeat
        else:
            k = rng.randrange(len(text) + 1)
            text = text[:k] + text[i:j] + text[k:]               # move a copy
    _res, secs = parse_and_print(text)
    assert secs <= _budget(text), f"{secs:.2f}s for {len(text)} chars"


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.sampled_from(_TOKENS), max_size=300), st.booleans())
def test_fuzz_token_soup(tokens, spaced):
    text = (" " if spaced else "").join(tokens)
    _res, secs = parse_and_print(text)
    assert secs <= _budget(text), f"{secs:.2f}s for {len(text)} chars"
