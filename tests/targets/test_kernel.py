"""The running kernel through BTF, kallsyms and tracefs (no kernel DWARF here)."""

from __future__ import annotations

import io
import os

import pytest

from stap_ls.options import parse_stap_args
from stap_ls.targets.base import BTF, SYMBOLS, TRACEFS
from stap_ls.targets.listing import main_listing
from stap_ls.targets.model import TargetModel

from .conftest import STAP_RELEASE, run_listing, run_stap


@pytest.fixture(scope="module")
def model() -> TargetModel:
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        pytest.fail("/sys/kernel/btf/vmlinux missing: these tests need a kernel with "
                    "CONFIG_DEBUG_INFO_BTF")
    return TargetModel()


def test_vfs_read_from_btf(model):
    f = model.kernel_function("vfs_read")
    assert f is not None and f.source == BTF
    assert [(v.name, v.type.name) for v in f.params] == [
        ("file", "struct file*"), ("buf", "char*"), ("count", "size_t"), ("pos", "loff_t*")]
    assert f.file is None and f.line is None       # BTF has no line information
    assert f.return_type is not None and f.return_type.name == "ssize_t"


def test_listing_L_vfs_read():
    r = run_listing("-L", 'kernel.function("vfs_read")')
    assert r.returncode == 0, r.stderr
    assert r.stdout == ('kernel.function("vfs_read") $file:struct file* $buf:char* '
                        '$count:size_t $pos:loff_t*\n')


def test_glob_and_suffixes(model):
    out = io.StringIO()
    opts, _ = parse_stap_args(["-l", 'kernel.function("vfs_rea*").call'])
    assert main_listing(opts, out, io.StringIO(), model) == 0
    lines = out.getvalue().splitlines()
    assert 'kernel.function("vfs_read").call' in lines
    assert lines == sorted(lines) and all(ln.endswith(".call") for ln in lines)
    names = {f.name for f in model.kernel_functions("vfs_*")}
    assert {"vfs_read", "vfs_write", "vfs_open"} <= names


def test_member_chain(model):
    f = model.kernel_function("vfs_read")
    file_t = f.params[0].type
    res = model.resolve_chain(file_t, ["f_path", "dentry", "d_name", "name"])
    assert res.error is None
    # newer kernels declare `const struct path f_path`, `const struct qstr d_name`
    got = [(m.name, m.type.name.removesuffix(" const")) for m in res.steps]
    assert got == [("f_path", "struct path"), ("dentry", "struct dentry*"),
                   ("d_name", "struct qstr"), ("name", "unsigned char const*")]
    assert all(m.type.source == BTF for m in res.steps)
    bad = model.resolve_chain(file_t, ["f_path", "nosuch"])
    assert bad.error is not None and "has no member 'nosuch'" in bad.error
    assert "BTF" in bad.error
    assert len(bad.steps) == 1
    # through a typedef and into anonymous unions of struct page
    page = model.kernel_type("struct page")
    assert page is not None
    assert model.member(page, "flags") is not None
    assert model.member(page, "lru") is not None   # inside an anonymous union
    assert any(m.name == "f_path" for m in model.members(file_t))


def test_types_by_name(model):
    t = model.kernel_type("struct task_struct")
    info = model.describe(t)
    assert info.kind == "struct" and info.source == BTF
    assert any(m.name == "pid" and m.type.name == "pid_t" for m in info.members)
    sz = model.describe(model.kernel_type("size_t"))
    assert sz.kind == "typedef" and sz.target is not None
    e = model.describe(model.kernel_type("enum pid_type"))
    assert e.kind == "enum" and "PIDTYPE_PID" in e.enumerators
    assert model.kernel_type("struct no_such_struct_xyz") is None


def test_sched_switch_from_tracefs(model):
    tps = model.tracepoints("sched:sched_switch")
    assert len(tps) == 1
    tp = tps[0]
    assert tp.source == TRACEFS
    fields = {v.name: v.type.name for v in tp.fields}
    assert fields["prev_comm"] == "char[16]" and fields["next_pid"] == "pid_t"
    assert all(v.type.source == TRACEFS for v in tp.fields)
    assert [(v.name, v.type.name) for v in tp.args] == [
        ("preempt", "bool"), ("prev", "struct task_struct*"), ("next", "struct task_struct*"),
        ("prev_state", "unsigned int")]
    assert tp.args_source == BTF
    names = [t.full_name for t in model.tracepoints("sched:sched_wak*", with_fields=False)]
    assert "sched:sched_wakeup" in names and names == sorted(names)


def test_define_event_args_come_from_class(model):
    # sched_wakeup is a DEFINE_EVENT of sched_wakeup_template: names from the class
    tp = model.tracepoints("sched:sched_wakeup")[0]
    assert [v.name for v in tp.args] == ["p"]
    assert tp.args[0].type.name == "struct task_struct*"


def test_trace_listing_matches_stap_format():
    r = run_listing("-L", 'kernel.trace("sched:sched_switch")')
    want = run_stap("-L", 'kernel.trace("sched:sched_switch")')
    assert r.stdout == want.stdout, (r.stderr, want.stderr)


def test_no_match_similar(model):
    sim = model.similar_kernel_functions("vfs_raed")
    assert sim[0] == "vfs_read" and len(sim) == 5
    out, err = io.StringIO(), io.StringIO()
    opts, _ = parse_stap_args(["-L", 'kernel.function("vfs_raed")'])
    assert main_listing(opts, out, err, model) == 1
    assert out.getvalue() == ""
    assert "no match (similar functions: vfs_read, " in err.getvalue()
    assert "install linux-image-" in err.getvalue()


def test_missing_names_what_to_install(model):
    model.kernel_dwarf()
    msgs = model.missing()
    assert any("no kernel debug info" in m and "-dbg" in m for m in msgs)


def test_symbols_only_functions(model):
    s = model.symbols()
    assert s is not None
    only_syms = [f for f in model.kernel_functions("*", with_vars=False) if f.source == SYMBOLS]
    assert only_syms, "kallsyms should know functions BTF does not"
    assert all(not f.params for f in only_syms[:50])


def test_other_release_uses_headers():
    m = TargetModel(kernel_release=STAP_RELEASE)
    assert not m.is_running
    assert m.btf() is None
    assert any("not the running kernel" in x for x in m.missing())
    tps = m.tracepoints("sched:sched_switch")
    assert tps and tps[0].source == "headers"


def test_other_release_trace_listing_equals_stap():
    want = run_stap("-L", 'kernel.trace("sched:*")')
    got = run_listing("-r", STAP_RELEASE, "-L", 'kernel.trace("sched:*")')
    assert want.stdout and got.stdout == want.stdout


def test_missing_btf_is_recorded_not_raised(tmp_path):
    m = TargetModel(btf_path=str(tmp_path / "nope"), kallsyms_path=str(tmp_path / "nope2"),
                    tracefs_root=str(tmp_path))
    assert m.kernel_function("vfs_read") is None
    assert m.tracepoints("sched:*") == []
    msgs = " | ".join(m.missing())
    assert "nope" in msgs and "CONFIG_DEBUG_INFO_BTF" in msgs
