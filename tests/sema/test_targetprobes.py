"""Target probe points in user space, perf and the family test, against the real stap.

A test program (tests/data/sema/targetprobes/prog.c) is built with gcc -g;
``stap -r REL -p2`` resolves the same probe points on it, and the concrete
point texts, "no match" suggestions and target-expression errors are compared
with stap's.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from stap_ls.options import StapOptions
from stap_ls.sema import targetprobes as T
from stap_ls.syntax import ast as A
from stap_ls.syntax.parser import ParseOptions, parse_file
from stap_ls.targets.model import TargetModel
from stap_ls.text import Severity, SourceFile
from tests.support import oracle

DATA = Path(__file__).resolve().parents[1] / "data" / "sema" / "targetprobes"


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="module")
def prog(tmp_path_factory) -> str:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.fail("gcc not found: install the Debian package 'gcc' (scripts/setup.sh does)")
    out = tmp_path_factory.mktemp("bin") / "prog"
    subprocess.run([gcc, "-g", "-O0", "-o", str(out), str(DATA / "prog.c")], check=True)
    return str(out)


@pytest.fixture(scope="module")
def model() -> TargetModel:
    return TargetModel(use_cache=False)


def parse(src: str) -> A.StapFile:
    r = parse_file(SourceFile("t.stp", src), ParseOptions(privileged=True))
    assert not r.diagnostics, [d.format() for d in r.diagnostics]
    return r.file


def resolve(src: str, model: TargetModel) -> list[T.TargetResolution]:
    f = parse(src)
    return [T.resolve_target_point(pp, model, StapOptions())
            for d in f.decls if isinstance(d, A.ProbeDecl) for pp in d.points]


def target_exprs(node) -> list[A.TargetExpr]:
    """Outermost target expressions (not the operand of a @cast) in source order."""
    if isinstance(node, A.TargetExpr):
        return [node]
    out = []
    for c in A.iter_children(node):
        if isinstance(c, A.Node):
            out.extend(target_exprs(c))
    return out


def stap_p2(script: str) -> tuple[int, list[str], list[str]]:
    """stap -p2's concrete probe texts and its 'semantic error:' messages."""
    r = oracle.run([oracle.stap_path(), "-r", oracle.release(), "-p2", "-e", script],
                   timeout=120)
    probes, errors = [], []
    section = ""
    for line in r.stdout.splitlines():
        if line.startswith("# "):
            section = line
        elif section == "# probes" and not line.startswith(" "):
            probes.append(line.split(" /* ")[0])
    for line in r.stderr.splitlines():
        if line.startswith("semantic error: "):
            msg = line[len("semantic error: "):]
            errors.append(re.sub(r": (identifier|operator) '.*$", "", msg))
    return r.returncode, probes, errors


# -- concrete points ------------------------------------------------------------------
@pytest.mark.parametrize("point", [
    'function("add")', 'function("walk")', 'function("*")', 'function("add@prog.c:12")',
    'statement("add@prog.c:*")', 'statement("add@prog.c:13")', 'function("nothing").call',
])
def test_user_points_match_stap(prog, model, point):
    script = f'probe process("{prog}").{point} {{ println(1) }}'
    rc, want, _errs = stap_p2(script)
    assert rc == 0, f"stap failed on {script}"
    (res,) = resolve(script, model)
    got = [p.text for p in res.points]
    assert sorted(got) == sorted(want)
    assert not [d for d in res.diagnostics if d.severity == Severity.ERROR]


def test_user_no_match_suggestions_match_stap(prog, model):
    script = f'probe process("{prog}").function("addx") {{ println(1) }}'
    rc, _p, errs = stap_p2(script)
    assert rc != 0
    (res,) = resolve(script, model)
    assert res.points == []
    assert [d.message for d in res.diagnostics if d.severity == Severity.ERROR] == \
        [e for e in errs if e.startswith("no match")]
    assert "similar functions: add," in res.diagnostics[0].message


def test_missing_executable_is_no_match_like_stap(model, tmp_path):
    script = f'probe process("{tmp_path}/nope").function("main") {{ println(1) }}'
    rc, _p, errs = stap_p2(script)
    assert rc != 0 and "no match" in errs
    (res,) = resolve(script, model)
    assert res.points == []
    assert [d.message for d in res.diagnostics if d.severity == Severity.ERROR] == ["no match"]
    assert any("cannot find executable" in d.message for d in res.diagnostics)


def test_process_begin_of_missing_path_is_accepted_like_stap(model, tmp_path):
    script = f'probe process("{tmp_path}/later").begin {{ println(1) }}'
    rc, want, _ = stap_p2(script)
    assert rc == 0
    (res,) = resolve(script, model)
    assert [p.text for p in res.points] == want
    assert res.diagnostics and res.diagnostics[0].severity == Severity.WARNING


def test_perf_point_matches_stap(model):
    script = "probe perf.type(1).config(0) { println(1) }"
    rc, want, _ = stap_p2(script)
    assert rc == 0
    (res,) = resolve(script, model)
    assert [p.text for p in res.points] == want == ["perf.type(1).config(0).sample(1000000)"]


def test_user_return_point_has_return_var(prog, model):
    (res,) = resolve(f'probe process("{prog}").function("add").return {{ }}', model)
    (p,) = res.points
    assert p.is_return and p.text.endswith(".return")
    assert [(v.name, v.type) for v in p.target_vars] == \
        [("return", "int"), ("a", "int"), ("b", "int"), ("c", "int")]


def test_sdt_free_binary_marks_no_match(prog, model):
    (res,) = resolve(f'probe process("{prog}").mark("x") {{ }}', model)
    assert res.points == [] and res.diagnostics[0].message == "no match"


# -- target expressions ---------------------------------------------------------------
def _expr_results(prog, model, func: str, body: str, ret: bool = False):
    sfx = ".return" if ret else ""
    script = f'probe process("{prog}").function("{func}"){sfx} {{ {body} }}'
    f = parse(script)
    (res,) = [T.resolve_target_point(pp, model, StapOptions())
              for d in f.decls for pp in d.points]
    (point,) = res.points
    return script, point, [(e, T.resolve_target_expr(point, e, model)) for e in target_exprs(f)]


@pytest.mark.parametrize("func,expr", [
    ("walk", "$p->zz"),
    ("walk", "$p->x->y"),
    ("walk", '@cast($p, "struct nope")->x'),
    ("walk", '@cast($p, "struct pt")->zz'),
])
def test_target_errors_match_stap(prog, model, func, expr):
    script, _point, results = _expr_results(prog, model, func, f"println({expr})")
    rc, _p, errs = stap_p2(script)
    assert rc != 0
    ours = [d.message for _e, (_t, d) in results if d is not None]
    assert ours and ours[0] == errs[0]


@pytest.mark.parametrize("func,var", [("add", "$zz"), ("walk", "$a"), ("add", "$return")])
def test_unknown_local_alternatives_match_stap(prog, model, func, var):
    script, _point, results = _expr_results(prog, model, func, f"println({var})")
    rc, _p, errs = stap_p2(script)
    assert rc != 0
    (_e, (typ, diag)), = results
    assert typ is None and diag.severity == Severity.ERROR
    assert diag.message.startswith(f"unable to find local '{var[1:]}'")
    theirs = re.search(r"\(alternatives: ([^)]*)\)", errs[0]).group(1)
    ours = re.search(r"\(alternatives: ([^)]*)\)", diag.message).group(1)
    assert ours == theirs


def test_target_expression_types(prog, model):
    body = ('a = $p->next; b = $p->next->y; c = $p$; d = $$parms; e = &$p->next; '
            'f = @cast($p, "struct pt")->y; g = $p->next->next->x')
    _s, _point, results = _expr_results(prog, model, "walk", body)
    assert [t for _e, (t, d) in results] == ["long", "long", "string", "string", "long",
                                              "long", "long"]
    assert all(d is None for _e, (_t, d) in results)
    ctypes = [T.target_expr_ctype(_point, e, model) for e, _r in results]
    assert ctypes[0] == "struct pt*" and ctypes[1] == "int" and ctypes[4] == "struct pt**"


def test_struct_value_is_an_error(prog, model):
    _s, _point, results = _expr_results(prog, model, "main", "x = $p; y = $argv[0][1]")
    (_e1, (t1, d1)), (_e2, (t2, d2)) = results
    assert t1 is None and "'struct pt' is being accessed instead of a member" in d1.message
    assert t2 == "long" and d2 is None


def test_return_only_in_return_probes(prog, model):
    _s, _point, results = _expr_results(prog, model, "add", "x = $return", ret=True)
    assert results[0][1] == ("long", None)
    _s, _point, results = _expr_results(prog, model, "nothing", "x = $return", ret=True)
    assert results[0][1][0] is None and "returns void" in results[0][1][1].message
    _s, _point, results = _expr_results(prog, model, "add", "x = $$return")
    assert results[0][1][0] is None and ".return" in results[0][1][1].message


def test_symbol_only_function_gives_warning_not_error(prog, model):
    (res,) = resolve(f'probe process("{prog}").function("_init") {{ }}', model)
    (point,) = res.points
    assert point.target_vars is None and point.source == "symbols"
    e = target_exprs(parse("probe begin { x = $foo->bar }"))[0]
    typ, diag = T.resolve_target_expr(point, e, model)
    assert typ == "long" and diag.severity == Severity.WARNING
    assert "debug information" in diag.message


# -- family and robustness --------------------------------------------------------------
@pytest.mark.parametrize("text,ours", [
    ('kernel.function("vfs_read")', True), ('kernel.trace("sched:*")', True),
    ('module("ext4").function("*")', True), ('kprobe.function("vfs_read")', True),
    ('process("/bin/true").begin', True), ("perf.type(1).config(0)", True),
    ("begin", False), ("timer.s(1)", False), ("syscall.read", False),
    ("kernel.data(0x10).write", False), ('vfs.read', False),
])
def test_is_target_family(text, ours):
    (pp,) = parse(f"probe {text} {{ }}").decls[0].points
    assert T.is_target_family(pp) is ours


@pytest.mark.parametrize("text", [
    "kernel.function(12)", "process(999999999).function(\"x\")", "kernel.trace(5)",
    "perf.type(1)", 'kernel.function("vfs_read").bogus', 'process("/bin/true").nonsense',
    'process("/bin/true").library("nolib.so").function("x")', 'module(1).function("x")',
    'kprobe.bogus', 'process("/etc/passwd").function("x")',
    'process("/bin/true").provider("p")', 'kernel.statement("vfs_read@fs/read_write.c:5")',
    'kernel.function("[")', 'process.function("main")',
])
def test_bad_points_give_diagnostics_not_crashes(model, text):
    (res,) = resolve(f"probe {text} {{ }}", model)
    assert res.points or any(d.severity == Severity.ERROR for d in res.diagnostics)


def test_library_function_matches_stap(prog, model):
    """A symbol alias (malloc) resolves to its DWARF function, named by the library's path."""
    script = f'probe process("{prog}").library("libc.so.6").function("malloc") {{ println(1) }}'
    rc, want, _ = stap_p2(script)
    assert rc == 0
    (res,) = resolve(script, model)
    assert [p.text for p in res.points] == want
    assert res.points[0].family == "process.library.function"


@pytest.mark.parametrize("script", [
    'probe process("{prog}").statement("add@prog.c:12").nearest {{ println(1) }}',
    'probe kernel.statement(0xffffffff81000000).absolute {{ println(1) }}',
])
def test_statement_suffixes_match_stap(prog, model, script):
    script = script.format(prog=prog)
    r = oracle.run([oracle.stap_path(), "-r", oracle.release(), "-p2", "-g", "-e", script],
                   timeout=120)
    assert r.returncode == 0, r.stderr
    want = [line.split(" /* ")[0] for line in r.stdout.split("# probes\n")[1].splitlines()
            if not line.startswith(" ")]
    (res,) = resolve(script, model)
    assert [p.text for p in res.points] == want


def test_invalid_suffix_wording_matches_stap(prog, model):
    script = f'probe process("{prog}").function("add").bogus {{ println(1) }}'
    rc, _p, errs = stap_p2(script)
    assert rc != 0
    (res,) = resolve(script, model)
    assert not res.points
    assert [d.message for d in res.diagnostics] == [e for e in errs if "suffix" in e]


def test_target_symbol_without_context_matches_stap(model):
    script = "probe begin { println($foo) }"
    rc, _p, errs = stap_p2(script)
    assert rc != 0
    e = target_exprs(parse(script))[0]
    typ, diag = T.resolve_target_expr(None, e, model)
    assert typ is None and diag.message == errs[0] == "unresolved target-symbol expression"
