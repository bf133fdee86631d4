"""The user-space side of the target model: DWARF types, lines, markers, cache."""

from __future__ import annotations

import os
import pickle

from stap_ls.targets import cache
from stap_ls.targets.base import DWARF, SYMBOLS
from stap_ls.targets.model import TargetModel, load_btf


def test_functions_params_locals_types(bins):
    m = TargetModel()
    ub = m.binary(str(bins / "prog"))
    assert ub.build_id and len(ub.build_id) == 40
    walk = ub.match_functions("walk")[0]
    assert walk.source == DWARF and walk.file.endswith("tests/data/targets/prog.c")
    assert walk.line == 35
    ub.load_vars(walk)
    assert [v.name for v in walk.params][:3] == ["head", "names", "limit"]
    assert [(v.name, v.type.name) for v in walk.locals] == [("count", "int"), ("label", "char[]")]
    twice = ub.match_functions("twice")[0]
    assert twice.inlined and not twice.has_body
    start = ub.match_functions("_start")[0]
    assert start.source == SYMBOLS and start.file is None


def test_member_chain_through_dwarf(bins):
    m = TargetModel()
    ub = m.binary(str(bins / "prog"))
    walk = ub.load_vars(ub.match_functions("walk")[0])
    head = walk.params[0].type                       # node_t*
    res = m.resolve_chain(head, ["next", "where", "x"])
    assert res.error is None
    assert [(s.name, s.type.name) for s in res.steps] == [
        ("next", "struct node*"), ("where", "struct point"), ("x", "int")]
    assert m.member(head, "inner_a") is None          # a named member hides it
    holder = m.member(head, "anon_holder")
    assert holder is not None and m.member(holder.type, "inner_a") is not None
    bad = m.resolve_chain(head, ["where", "x", "y"])
    assert bad.error and "not a struct" in bad.error and "DWARF" in bad.error
    node = ub.find_type("struct node")
    info = m.describe(node)
    assert info.kind == "struct" and [x.name for x in info.members][:3] == ["next", "name", "where"]
    assert m.describe(ub.find_type("union value")).kind == "union"
    assert set(m.describe(ub.find_type("enum mode")).enumerators) == {"MODE_A", "MODE_B"}
    assert m.describe(ub.find_type("callback_t")).kind == "typedef"


def test_marks_plt_libraries(bins):
    m = TargetModel()
    ub = m.binary(str(bins / "prog"))
    marks = {(x.provider, x.name, x.nargs) for x in ub.marks()}
    assert marks == {("testprov", "walking", 3), ("testprov", "union_seen", 0)}
    us = m.binary(str(bins / "useshape"))
    assert us.plt() == ["puts", "shape_area", "shape_clear"]
    libs = us.libraries()
    assert str(bins / "libshape.so") in libs
    assert any(os.path.basename(x).startswith("libc.so") for x in libs)


def test_no_dwarf_is_reported(bins):
    m = TargetModel()
    ub = m.binary(str(bins / "nodebug"))
    assert not ub.has_dwarf
    assert all(f.source == SYMBOLS for f in ub.functions())
    assert any("no debug information" in x and "nodebug" in x for x in m.missing())


def test_binary_index_is_cached_and_corrupt_cache_rebuilt(bins, private_cache):
    m1 = TargetModel()
    ub = m1.binary(str(bins / "prog"))
    files = [f for f in os.listdir(private_cache / "stap-ls") if f.startswith("binary-")]
    assert len(files) == 1
    path = private_cache / "stap-ls" / files[0]
    with open(path, "rb") as f:
        blob = pickle.load(f)
    assert blob["version"] == cache.CACHE_VERSION and blob["data"][0].build_id == ub.build_id
    # a corrupt entry is ignored and rebuilt, never an error
    path.write_bytes(b"\x80\x05garbage")
    ub2 = TargetModel().binary(str(bins / "prog"))
    assert [f.name for f in ub2.functions()] == [f.name for f in ub.functions()]
    with open(path, "rb") as f:
        assert pickle.load(f)["version"] == cache.CACHE_VERSION


def test_btf_index_cache(private_cache):
    b1 = load_btf("/sys/kernel/btf/vmlinux")
    files = [f for f in os.listdir(private_cache / "stap-ls") if f.startswith("btf-")]
    assert len(files) == 1
    b2 = load_btf("/sys/kernel/btf/vmlinux")
    assert b2.funcs == b1.funcs and len(b2.offsets) == len(b1.offsets)
    (private_cache / "stap-ls" / files[0]).write_bytes(b"not a pickle")
    b3 = load_btf("/sys/kernel/btf/vmlinux")
    assert b3.function_params("vfs_read")[0].type.name == "struct file*"
