"""Small scripts whose ``-p2`` layout must be stap's, byte for byte (live oracle).

Each script exercises one rule of stap 4.8's pass-2 output that the examples
rely on: hoisting of ``/* stable */`` calls into ``__stable_*`` locals (with
the assignments' placement, seen under ``-v``), function locals, ``-v`` bodies
of embedded-C functions.  Both stap and stap-ls run live; nothing is stored.
"""

from __future__ import annotations

import pytest

from tests.support.oracle import release, run, stap_ls_cmd, stap_path

SCRIPTS = {
    "stable_scopes": """
function f() { if (execname() == "a") return execname(); while (1) { z = pid(); if (z) return execname() } return "" }
function g(n) { y = n * 2; return y }
probe begin { print(g(1)); print(f()) }
probe end { if (pid()) print(execname()); }
probe timer.s(1) { if (pid()) { print(execname()) } else { print(execname())} }
""",
    "stable_loops_and_order": """
global a, m
probe begin { m[1] = 1; foreach (k in m) { if (k) { print(cpu()) } } print(uid()); b = 1; print(b); print(uid()) }
probe end { if (execname() == "x") print(1) }
probe timer.s(3) { print(execname()) }
probe timer.s(4) { a = execname() == "" ? cpu() : uid(); print(a && execname() == "" && cpu()) }
probe timer.s(5) { for (i = 0; i < 3; i++) a += user_mode(); printf("%s %d\\n", execname(), a) }
""",
    "duplicate_functions": """
function a1(n) { return n * 2 }
function b1(n) { return n * 2 }
function c1(m) { return m * 2 }
function w1(n) { return b1(n) + 1 }
function w2(n) { return a1(n) + 1 }
probe begin { print(b1(1), c1(2), a1(3), w1(4), w2(5), ulong_arg(3), pointer_arg(3)) }
""",
    "singleton_function_body": """
probe end { w = read_stopwatch_us("wall"); print(w); x = _stp_syscall_nr() }
""",
    "sufficient_point_list": """
probe kernel.{trace("irq_handler_entry")!, trace("irq_entry")} { print(cpu()) }
probe kernel.trace("sched_migrate_task") !, kernel.function("__migrate_task") { print(2) }
""",
    "perf_and_timer_profile": """
probe perf.sw.cpu_clock.sample(1000000) { print(1) }
probe perf.type(1).config(0) { print(2) }
probe timer.profile { print(3) }
""",
    "function_order": """
function reportline(a) { println(a) }
function reportline2(a, b) { println(a, b) }
function report_x() { reportline("x"); reportline2("y", 1) }
probe begin { report_x() }
""",
    "hardware_breakpoints": """
probe kernel.data(4660).write { print(1) }
probe kernel.data(4660).length(4).rw { print(2) }
probe kernel.data("vm_dirty_ratio").write { print(3) }
""",
    "global_display": """
global a, b, c, d
probe begin { a += 1; b++; c = 2; if (d) { x = uid() } d = 1 }
""",
    "global_display_arrays": """
global a, s, st
probe begin { a[1, "x"] = 1; s = "q"; st <<< 1 }
""",
    "global_display_delete": """
global e, t
probe begin { e[1] = 1; t = e[2] = 3 }
probe end { delete e }
""",
    "global_display_used_increment": """
global c, k, n
probe timer.s(1) { if (++c >= n) { c = 0 } k += 2; for (; n < 3; n++) print(n) }
""",
}


@pytest.mark.parametrize("verbose", [False, True], ids=["plain", "v"])
@pytest.mark.parametrize("unopt", [False, True], ids=["opt", "u"])
@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_p2_layout(name: str, unopt: bool, verbose: bool, tmp_path) -> None:
    script = tmp_path / f"{name}.stp"
    script.write_text(SCRIPTS[name].lstrip())
    argv = ["-p2", str(script)] + (["-u"] if unopt else []) + (["-v"] if verbose else [])
    stap = run([stap_path(), "-r", release(), *argv])
    mine = run([*stap_ls_cmd(), "check", "-r", release(), *argv])
    assert stap.returncode == 0, stap.stderr[-2000:]
    assert mine.returncode == 0, mine.stderr[-2000:]
    assert mine.stdout == stap.stdout
