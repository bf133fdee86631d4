"""`-l`/`-L` listings of user-space binaries equal the real stap's, live."""

from __future__ import annotations

import io

import pytest

from stap_ls.options import parse_stap_args
from stap_ls.targets.listing import is_target_probe, main_listing, parse_probe_point

from .conftest import STAP_RELEASE, run_listing, run_stap

PATTERNS = [
    'process("./prog").function("*")',
    'process("./prog").function("*").call',
    'process("./prog").function("walk")',
    'process("./prog").function("*@prog.c")',
    'process("./prog").function("use_*@*/prog.c")',
    'process("./prog").mark("*")',
    'process("./prog").provider("testprov").mark("walk*")',
    'process("./prog").statement("*@prog.c:44")',
    'process("./prog").statement("walk@prog.c:*")',
    'process("./libshape.so").function("*")',
    'process("./useshape").plt("*")',
    'process("./useshape").function("*")',
    'process("./nodebug").function("*")',
    'process("{bins}/useshape").library("{bins}/libshape.so").function("shape_*")',
    'process("{bins}/prog").function("sum_points")',
    'process("./prog").function("*").inline',
    'process("./prog").function("walk@prog.c:42")',
    'process("./prog").statement("walk")',
    'process("./useshape").library("lib*shape.so").function("shape*")',
    'process("./useshape").library("libshape.so").function("*")',
]


@pytest.mark.parametrize("flag", ["-l", "-L"])
@pytest.mark.parametrize("pattern", PATTERNS)
def test_same_as_stap(bins, pattern, flag):
    pattern = pattern.replace("{bins}", str(bins))
    want = run_stap(flag, pattern, cwd=bins)
    got = run_listing("-r", STAP_RELEASE, flag, pattern, cwd=bins)
    assert want.stdout, f"stap listed nothing for {pattern}: {want.stderr}"
    assert got.stdout == want.stdout, got.stderr
    assert got.returncode == want.returncode == 0


def test_main_listing_direct(bins, monkeypatch):
    monkeypatch.chdir(bins)
    opts, _ = parse_stap_args(["-L", 'process("./prog").function("walk")'])
    out, err = io.StringIO(), io.StringIO()
    assert main_listing(opts, out, err) == 0
    line = out.getvalue().strip()
    assert line.startswith(f'process("{bins}/prog").function("walk@')
    assert "$head:node_t* $names:char** $limit:ulong_t" in line
    assert "$cvi:int const volatile* $m:enum mode $matrix:int[]* $count:int $label:char[]" in line


def test_no_match_gives_similar_like_stap(bins, monkeypatch):
    """The "no match (similar functions: ...)" list is stap's, for the same typo."""
    monkeypatch.chdir(bins)
    for typo in ("wlak", "mian", "use_unoin", "zzzzzzzzzzzzzz"):
        want = run_stap("-p2", "-e", f'probe process("{bins}/prog").function("{typo}") {{}}')
        sim = [ln for ln in want.stderr.splitlines() if "similar functions" in ln]
        assert sim, want.stderr
        opts, _ = parse_stap_args(["-l", f'process("./prog").function("{typo}")'])
        out, err = io.StringIO(), io.StringIO()
        assert main_listing(opts, out, err) == 1
        assert out.getvalue() == ""
        expected = sim[0][sim[0].index("no match"):]
        assert expected in err.getvalue()


def test_missing_binary_and_bad_syntax(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for pattern, msg in [('process("./nope").function("*")', "cannot find executable"),
                         ('process("./x").function("*"', "expected ')'"),
                         ('kernel.function("a").bogus', "unknown function probe suffix")]:
        opts, _ = parse_stap_args(["-l", pattern])
        out, err = io.StringIO(), io.StringIO()
        assert main_listing(opts, out, err) == 1
        assert msg in err.getvalue()


def test_not_an_elf(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "script.sh").write_text("#!/bin/sh\necho hi\n")
    opts, _ = parse_stap_args(["-l", 'process("./script.sh").function("*")'])
    out, err = io.StringIO(), io.StringIO()
    assert main_listing(opts, out, err) == 1
    assert "not an ELF file" in err.getvalue()


def test_probe_point_parser_and_dispatch():
    comps = parse_probe_point('process("a\\"b").function("f*").call')
    assert [(c.name, c.arg) for c in comps] == [("process", 'a"b'), ("function", "f*"), ("call", None)]
    assert is_target_probe('kernel.function("vfs_*")')
    assert is_target_probe('kernel.trace("sched:*")')
    assert is_target_probe('module("*").function("*")')
    assert not is_target_probe("syscall.*")
    assert not is_target_probe("begin")


def test_stripped_system_binary_like_stap(tmp_path):
    """A stripped binary (symbols from .dynsym only): same listing, same suggestions."""
    for pattern in ('process("/bin/true").function("*")', 'process("true").plt("*")'):
        want = run_stap("-l", pattern)
        got = run_listing("-l", pattern)
        assert got.stdout == want.stdout and got.returncode == want.returncode
    want = run_stap("-p2", "-e", 'probe process("/bin/true").function("mainn") {}')
    sim = [ln for ln in want.stderr.splitlines() if "similar functions" in ln]
    got = run_listing("-l", 'process("/bin/true").function("mainn")')
    assert sim and sim[0][sim[0].index("no match"):] in got.stderr
