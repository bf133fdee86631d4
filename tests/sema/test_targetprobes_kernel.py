"""Kernel probe points from this machine's real BTF, kallsyms and tracefs.

stap 4.8 cannot resolve ``kernel.function`` here (no kernel DWARF); these
tests check our BTF answer against the kernel's own files and, for
tracepoints, stap's ``-L`` listing, and that stap itself fails where we fall
back (so the difference stays deliberate).
"""

from __future__ import annotations

import os
import re

import pytest

from stap_ls.options import StapOptions
from stap_ls.sema import targetprobes as T
from stap_ls.syntax import ast as A
from stap_ls.syntax.parser import ParseOptions, parse_file
from stap_ls.targets.model import TargetModel
from stap_ls.text import Severity, SourceFile
from tests.support import oracle

BTF = "/sys/kernel/btf/vmlinux"


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="module")
def model() -> TargetModel:
    if not os.path.exists(BTF):
        pytest.fail(f"{BTF} missing: these tests need a kernel built with CONFIG_DEBUG_INFO_BTF")
    m = TargetModel(use_cache=False)
    if m.tracefs() is None:
        pytest.fail("tracefs is not mounted and cannot be mounted: run as root, or "
                    "mount -t tracefs nodev /sys/kernel/tracing")
    return m


def parse(src: str) -> A.StapFile:
    r = parse_file(SourceFile("k.stp", src), ParseOptions(privileged=True))
    assert not r.diagnostics, [d.format() for d in r.diagnostics]
    return r.file


def one(src: str, model: TargetModel, opts: StapOptions | None = None):
    f = parse(src)
    (pp,) = f.decls[0].points
    res = T.resolve_target_point(pp, model, opts or StapOptions())
    exprs = []

    def walk(n):
        if isinstance(n, A.TargetExpr):
            exprs.append(n)
            return
        for c in A.iter_children(n):
            if isinstance(c, A.Node):
                walk(c)
    walk(f.decls[0].body)
    return res, exprs


def errors(res):
    return [d for d in res.diagnostics if d.severity == Severity.ERROR]


def test_function_from_btf_with_params(model):
    res, _ = one('probe kernel.function("vfs_read") { }', model)
    (p,) = res.points
    assert p.text == 'kernel.function("vfs_read")' and p.source == "btf"
    assert [(v.name, v.type) for v in p.target_vars] == [
        ("file", "struct file*"), ("buf", "char*"), ("count", "size_t"), ("pos", "loff_t*")]
    warn = [d for d in res.diagnostics if d.severity == Severity.WARNING]
    assert warn and "linux-image-" in warn[0].message and "-dbg" in warn[0].message


def test_stap_cannot_resolve_kernel_functions_here():
    """The reason for the BTF fallback: stap fails on the same point."""
    r = oracle.run([oracle.stap_path(), "-r", oracle.release(), "-p2", "-e",
                    'probe kernel.function("vfs_read") { println($file) }'], timeout=120)
    assert r.returncode != 0 and "while resolving probe point" in r.stderr


def test_return_point_and_expressions(model):
    res, exprs = one('probe kernel.function("vfs_read").return { a = $return; b = $count; '
                     'c = $file->f_path->dentry->d_name->name; d = $file->f_path; '
                     'e = $file->nosuch; f = $$parms; g = $file->f_path->dentry->d_name$ }',
                     model)
    (p,) = res.points
    assert p.is_return and p.target_vars[0].name == "return"
    assert p.target_vars[0].type == "ssize_t"
    got = [T.resolve_target_expr(p, e, model) for e in exprs]
    assert [t for t, _d in got] == ["long", "long", "long", None, None, "string", "string"]
    assert "is being accessed instead of a member" in got[3][1].message
    assert got[4][1].message.startswith("unable to find member 'nosuch' for struct file "
                                        "(alternatives: ")
    assert T.target_expr_ctype(p, exprs[2], model) == "unsigned char const*"


def test_entry_point_has_no_return(model):
    res, exprs = one('probe kernel.function("vfs_read") { x = $return }', model)
    typ, diag = T.resolve_target_expr(res.points[0], exprs[0], model)
    assert typ is None and "only available in .return probes" in diag.message


def test_glob_and_no_match_suggestions(model):
    res, _ = one('probe kernel.function("vfs_rea*") { }', model)
    names = {p.function for p in res.points}
    assert {"vfs_read", "vfs_readv"} <= names and all(n.startswith("vfs_rea") for n in names)
    res, _ = one('probe kernel.function("vfs_reax") { }', model)
    (e,) = errors(res)
    assert e.message.startswith("no match (similar functions: vfs_read")


def test_file_pattern_without_dwarf_is_accepted_unchecked(model):
    res, _ = one('probe kernel.function("vfs_read@fs/read_write.c") { }', model)
    (p,) = res.points
    assert p.text == 'kernel.function("vfs_read@fs/read_write.c")' and p.target_vars is None
    assert not errors(res) and "debug information" in res.diagnostics[0].message
    res, _ = one('probe kernel.function("no_such_fn_xyz@fs/read_write.c") { }', model)
    assert not res.points and errors(res)


def test_kallsyms_only_function_has_unknown_vars(model):
    b, syms = model.btf(), model.symbols()
    name = next(n for n, m in sorted(syms.owner.items())
                if m == "kernel" and n not in b.funcs and n.isidentifier())
    res, _ = one(f'probe kernel.function("{name}") {{ }}', model)
    (p,) = res.points
    assert p.source == "symbols" and p.target_vars is None
    e = parse("probe begin { x = $anything }").decls[0].body.statements[0].expr.right
    typ, diag = T.resolve_target_expr(p, e, model)
    assert typ == "long" and diag.severity == Severity.WARNING


def test_tracepoint_vars_match_stap_listing(model):
    r = oracle.run([oracle.stap_path(), "-r", oracle.release(), "-L",
                    'kernel.trace("sched:sched_switch")'], timeout=120)
    assert r.returncode == 0, r.stderr
    theirs = [[f"${n}", t] for n, t in re.findall(r" \$(\w+):(.*?)(?= \$|$)", r.stdout.strip())]
    assert len(theirs) == 4
    res, _ = one('probe kernel.trace("sched:sched_switch") { }', model)
    (p,) = res.points
    assert p.text == r.stdout.split()[0] == 'kernel.trace("sched:sched_switch")'
    assert [[f"${v.name}", v.type] for v in p.target_vars] == theirs


def test_tracepoint_glob_counts_tracefs(model):
    res, _ = one('probe kernel.trace("sched:*") { }', model)
    root = model.tracefs().root if hasattr(model.tracefs(), "root") else "/sys/kernel/tracing"
    events = [e for e in os.listdir(os.path.join(root, "events", "sched"))
              if os.path.isdir(os.path.join(root, "events", "sched", e))]
    assert sorted(p.text for p in res.points) == sorted(
        f'kernel.trace("sched:{e}")' for e in events)


def test_tracepoint_expressions_and_errors(model):
    res, exprs = one('probe kernel.trace("sched:sched_switch") { a = $prev->pid; b = $zz; '
                     'c = $next->comm$; d = $$vars }', model)
    p = res.points[0]
    got = [T.resolve_target_expr(p, e, model) for e in exprs]
    assert got[0] == ("long", None)
    assert got[1][0] is None and got[1][1].message == (
        "unable to find tracepoint variable '$zz' (alternatives: $$name, $$parms, $$vars, "
        "$next, $preempt, $prev, $prev_state)")
    assert got[2] == ("string", None) and got[3] == ("string", None)
    res, _ = one('probe kernel.trace("sched:sched_swich") { }', model)
    assert errors(res)[0].message.startswith("no match (similar tracepoints: sched_switch")


def test_cast_in_any_probe(model):
    f = parse('probe begin { a = @cast(0, "struct task_struct", "kernel")->pid; '
              'b = @cast(0, "task_struct")->comm$; c = @cast(0, "struct nope", "kernel")->x; '
              'd = @cast(0, "struct task_struct", "kernel<linux/sched.h>")->nosuch }')
    exprs = [s.expr.right for s in f.decls[0].body.statements]
    got = [T.resolve_target_expr(None, e, model) for e in exprs]
    assert got[0] == ("long", None) and got[1] == ("string", None)
    assert got[2][1].message == "type definition 'struct nope' not found in 'kernel'"
    assert got[3][1].message.startswith("unable to find member 'nosuch' for struct task_struct")


def test_other_release_falls_back_to_running_btf(model):
    opts = StapOptions()
    other = TargetModel(kernel_release="0.0.0-none", use_cache=False)
    res, exprs = one('probe kernel.function("vfs_read") { x = $file->f_pos }', other, opts)
    (p,) = res.points
    assert any("running kernel" in d.message for d in res.diagnostics)
    assert T.resolve_target_expr(p, exprs[0], other) == ("long", None)


def test_kprobe_and_module_and_mark(model):
    res, _ = one('probe kprobe.function("vfs_read") { }', model)
    assert [p.text for p in res.points] == ['kprobe.function("vfs_read")']
    assert res.points[0].target_vars == []
    res, _ = one('probe kprobe.function("no_such_fn_xyz") { }', model)
    assert errors(res)[0].message == "no match"
    res, _ = one('probe module("nosuchmod").function("*") { }', model)
    assert not res.points and errors(res)
    res, _ = one('probe kernel.mark("*") { }', model)
    assert not res.points and errors(res)[0].message == "no match"
