"""The installed tapset library: every file parses, and the cache behaves.

The library is parsed cold into a private cache directory (no test shares
the user's cache), as privileged code, the built-in directory without
``--compatible`` gating (stap's ``pf_no_compatible``).
"""

from __future__ import annotations

import os
import pickle

import pytest

from stap_ls.options import parse_stap_args
from stap_ls.sema import library as L
from stap_ls.sema.frontend import pp_env
from stap_ls.text import Severity
from tests.support import oracle


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    L._MEMO.clear()
    yield tmp_path / "cache"
    L._MEMO.clear()


def env_for(*argv):
    opts, _ = parse_stap_args(["-r", oracle.release(), *argv, "-e", ""])
    return pp_env(opts)


def test_every_tapset_file_parses(private_cache):
    for argv, least in (([], 400), (["--runtime=bpf"], 40)):
        lib = L.load_library([], env_for(*argv))
        assert len(lib.files) > least and len(lib.macro_files) > 10
        errors = [(f.path, d.message) for f in lib.files for d in f.result.diagnostics
                  if d.severity == Severity.ERROR]
        assert not errors, (argv, errors[:5])
        assert not [d for d in lib.macro_diagnostics if d.severity == Severity.ERROR]


@pytest.fixture
def small_tapset(tmp_path, monkeypatch):
    """A tapset root of a few files, so cache tests need not parse 466 files."""
    root = tmp_path / "tapset"
    (root / "linux").mkdir(parents=True)
    (root / "context.stp").write_text(
        "function execname:string () { return \"x\" }\nglobal counter\n")
    (root / "linux" / "vfs.stp").write_text(
        "probe vfs.read = kernel.function(\"vfs_read\") { name = \"read\" }\n")
    (root / "m.stpm").write_text("@define two %( 2 %)\n")
    monkeypatch.setenv("SYSTEMTAP_TAPSET", str(root))
    return root


def test_warm_cache_is_lazy_and_indexed(private_cache, small_tapset):
    env = env_for()
    cold = L.load_library([], env)
    assert cold.origin == "parsed" and len(cold.files) == 2
    assert cold.files_defining_global("counter")[0].path.endswith("context.stp")
    L._MEMO.clear()
    warm = L.load_library([], env)
    assert warm.origin == "cache"
    assert not any(f.loaded for f in warm.files)
    [ctx] = [f for f in warm.files_defining_function("execname")]
    assert ctx.path.endswith("/context.stp")
    assert any(f.path.endswith("vfs.stp") for f in warm.files_defining_alias("vfs.read"))
    assert not any(f.loaded for f in warm.files)
    tree = ctx.result.file
    assert "execname" in [fn.name for fn in tree.functions]
    assert sum(f.loaded for f in warm.files) == 1
    cold_ctx = next(f for f in cold.files if f.path == ctx.path)
    from stap_ls.syntax.printer import print_file
    assert print_file(cold_ctx.result.file) == print_file(tree)


def test_changed_tapset_file_is_parsed_again(private_cache, small_tapset, tmp_path):
    inc = tmp_path / "inc"
    inc.mkdir()
    f = inc / "mine.stp"
    f.write_text("function first() { return 1 }\n")
    env = env_for()
    lib = L.load_library([str(inc)], env)
    assert [x.path for x in lib.files_defining_function("first")] == [str(f)]
    f.write_text("function second() { return 2 }\nfunction broken( {\n")
    os.utime(f, ns=(1, 10**18))           # a different mtime, whatever the clock says
    lib = L.load_library([str(inc)], env)
    assert lib.origin == "mixed"
    assert not lib.files_defining_function("first")
    assert [x.path for x in lib.files_defining_function("second")] == [str(f)]
    assert any(d.span is not None and d.span.source.name == str(f) for d in lib.diagnostics)


def test_corrupt_cache_is_rebuilt(private_cache, small_tapset):
    env = env_for()
    L.load_library([], env)
    [index] = list(private_cache.rglob("index.pickle"))
    index.write_bytes(b"not a pickle")
    L._MEMO.clear()
    lib = L.load_library([], env)
    assert lib.origin == "parsed"
    with open(index, "rb") as fh:
        assert pickle.load(fh)["version"] == L._CACHE_VERSION
