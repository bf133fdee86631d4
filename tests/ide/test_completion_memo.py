"""Probe-point candidate lists are built once per environment, not per request."""

from __future__ import annotations

import time

from stap_ls.ide.completion import complete
from tests.ide.conftest import analysis_of


def test_point_candidates_are_memoised_per_environment(env):
    a, off = analysis_of(env, "probe sys$0", pass2=False)
    first = [i.label for i in complete(a, off).items]
    assert first[:2] == ["syscall", "syscall_any"]
    cached = env.memo[("point-items", ())]
    assert any(i.label == "kernel" for i in cached) and any(i.label == "vfs" for i in cached)
    # another document, another prefix: the same list object serves it
    b, off = analysis_of(env, "probe vf$0", pass2=False)
    t0 = time.perf_counter()
    labels = [i.label for i in complete(b, off).items]
    elapsed = time.perf_counter() - t0
    assert labels == ["vfs"]
    assert env.memo[("point-items", ())] is cached
    assert elapsed < 0.5, f"a memoised completion took {elapsed:.3f} s"


def test_script_aliases_join_the_memoised_list(env):
    a, off = analysis_of(env, "probe myalias = begin {}\nprobe my$0", pass2=False)
    assert [i.label for i in complete(a, off).items] == ["myalias"]
    # the script's own alias did not leak into the environment's list
    assert all(i.label != "myalias" for i in env.memo[("point-items", ())])
