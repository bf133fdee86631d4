"""Caches that make re-elaboration fast must not change what pass 2 answers.

The language server elaborates script after script with one library and one
target model; pass 2 memoises what depends only on them (probe-point matches
over the alias tree, which aliases use ``@probewrite``, kernel symbol globs,
the similar-names search).  These tests elaborate scripts in sequence with
shared state and compare every printed program and diagnostic with a fresh
elaboration (new library, new model), and check that the "similar
functions" search runs only where its answer is printed.
"""

from __future__ import annotations

import pytest

from stap_ls.options import parse_stap_args
from stap_ls.sema.elaborate import elaborate
from stap_ls.sema.frontend import run_frontend
from stap_ls.sema.p2print import print_program
from stap_ls.sema.targetprobes import resolve_target_point
from stap_ls.syntax import ast as A
from stap_ls.targets.model import TargetModel
from stap_ls.text import SourceFile
from tests.support.oracle import release

SCRIPTS = {
    # @probewrite in sysc_stat.stp's alias bodies: kept when the handler writes
    "writes": "probe syscall.stat { filename_uaddr = 0; println(filename) }",
    "reads": "probe syscall.stat, syscall.open* { println(name) }",
    # a user alias: its point must not leak into the next script's alias tree
    "user_alias": ('probe my.point = syscall.read { x = 1 } probe my.point { println(x) }\n'
                   'probe kernel.trace("sched:sched_switch") ? { println(pid()) }'),
    "uses_user_alias": "probe my.point { println(1) }",
    "kprobe": 'probe kprobe.function("vfs_read"), kprobe.function("vfs_wr*") ? { println(1) }',
    "typo": 'probe kernel.function("vfs_raed") { println(1) }',
}


def _opts(script: str, *extra: str):
    opts, _ = parse_stap_args(["-r", release(), "-p2", *extra, "-e", script])
    return opts


def _render(res) -> str:
    out = print_program(res.program)
    return out + "\n".join(f"{d.severity.name}: {d.message}" for d in res.diagnostics)


def _fresh(script: str) -> str:
    opts = _opts(script)
    fe = run_frontend(opts, [SourceFile("<input>", script)])
    return _render(elaborate(fe, TargetModel(opts)))


@pytest.fixture(scope="module")
def fresh() -> dict[str, str]:
    return {name: _fresh(text) for name, text in SCRIPTS.items()}


def test_sequence_in_one_process_equals_fresh(fresh) -> None:
    order = ["writes", "reads", "user_alias", "uses_user_alias", "writes", "kprobe",
             "typo", "reads", "user_alias", "uses_user_alias", "kprobe", "typo"]
    library = None
    model = TargetModel(_opts(""))
    for name in order:
        script = SCRIPTS[name]
        fe = run_frontend(_opts(script), [SourceFile("<input>", script)], library=library)
        library = fe.library
        assert _render(elaborate(fe, model)) == fresh[name], name


def test_fresh_results_differ_where_scripts_do(fresh) -> None:
    # the comparisons above can fail: the scripts give different programs
    assert fresh["writes"] != fresh["reads"]
    assert "filename_uaddr" in fresh["writes"]
    assert "my.point" in fresh["user_alias"]
    assert "mismatch" in fresh["uses_user_alias"] or "ERROR" in fresh["uses_user_alias"]
    assert 'kprobe.function("vfs_read")' in fresh["kprobe"]
    assert "similar functions" in fresh["typo"] and "vfs_read" in fresh["typo"]


class _CountingModel(TargetModel):
    """The real model, counting its similar-names searches."""

    def __init__(self, *a, **k) -> None:
        super().__init__(*a, **k)
        self.searches: list[str] = []

    def similar_kernel_functions(self, name: str) -> list[str]:
        self.searches.append(name)
        return super().similar_kernel_functions(name)


def _point(text: str) -> A.ProbePoint:
    opts = _opts(f"probe {text} {{}}")
    fe = run_frontend(opts, [SourceFile("<input>", f"probe {text} {{}}")])
    return fe.user[0].file.probes[0].points[0]


def test_similar_search_only_when_printed() -> None:
    model = _CountingModel()
    pp = _point('kernel.function("vfs_raed")')
    quiet = resolve_target_point(pp, model, _opts(""), suggest_similar=False)
    assert not quiet.points and model.searches == []
    assert all("similar" not in d.message for d in quiet.diagnostics)
    loud = resolve_target_point(pp, model, _opts(""))
    assert model.searches == ["vfs_raed"]
    assert any("similar functions" in d.message and "vfs_read" in d.message
               for d in loud.diagnostics)


@pytest.mark.parametrize("script", [
    'probe kernel.function("vfs_raed") ?, begin { println(1) }',
    'probe kernel.function("vfs_raed") !, begin { println(1) }',
    # an alias whose own right-hand side is not optional, under a '?' user point
    'probe my.a = kernel.function("vfs_raed") { } probe my.a ?, begin { println(1) }',
])
def test_no_search_for_silent_failures(script: str) -> None:
    opts = _opts(script)
    model = _CountingModel(opts)
    res = elaborate(run_frontend(opts, [SourceFile("<input>", script)]), model)
    assert model.searches == []
    assert not res.errors, [d.message for d in res.errors]


def test_garbage_collector_state_restored() -> None:
    import gc
    script = SCRIPTS["reads"]
    fe = run_frontend(_opts(script), [SourceFile("<input>", script)])
    assert gc.isenabled()
    elaborate(fe, TargetModel(_opts(script)))
    assert gc.isenabled()
    gc.disable()
    try:
        elaborate(fe, TargetModel(_opts(script)))
        assert not gc.isenabled()
    finally:
        gc.enable()
    # a pass that fails inside (a bad model) still switches it back on
    elaborate(fe, "not a model")
    assert gc.isenabled()
