"""``stap-ls run`` end to end, compared with the real stap."""

from __future__ import annotations

import os
import re
import subprocess

from stap_helpers import DATA, run_stap, stap_ls_cmd

REPO = str(DATA.parents[2])


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(stap_ls_cmd("run", *args), cwd=DATA, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONPATH": REPO})


def test_run_to_pass2_prints_stap_output_and_progress(release):
    p = _cli("-r", release, "-p2", "hello.stp")
    oracle = run_stap(["-r", release, "-p2", "hello.stp"], DATA)
    assert p.returncode == oracle.returncode == 0
    assert p.stdout == oracle.stdout
    assert re.search(r"^stap-ls: pass 1 \(parse\) done in \d+\.\d\d s$", p.stderr, re.M)
    assert re.search(r"^stap-ls: pass 2 \(elaborate\) done in \d+\.\d\d s$", p.stderr, re.M)
    assert "Pass 1:" not in p.stderr       # stap's own progress lines are translated


def test_run_to_pass3_prints_the_c(release):
    p = _cli("-r", release, "-p3", "hello.stp")
    oracle = run_stap(["-r", release, "-p3", "hello.stp"], DATA)
    assert p.returncode == 0 and p.stdout == oracle.stdout
    assert "stap-ls: pass 3 (translate) done in" in p.stderr


def test_exit_status_and_semantic_error_are_stap_s(release):
    p = _cli("-r", release, "-p2", "semantic_error.stp")
    oracle = run_stap(["-r", release, "-p2", "semantic_error.stp"], DATA)
    assert p.returncode == oracle.returncode == 1
    assert "semantic error: unresolved function count_calls" in p.stderr
    assert "stap-ls: pass 2 (elaborate) failed" in p.stderr


def test_without_release_prints_the_doctor_finding():
    running = os.uname().release
    p = _cli("-p2", "hello.stp")
    if os.path.exists(f"/lib/modules/{running}/build/.config"):
        assert "build-tree" not in p.stderr
        return
    oracle = run_stap(["-p2", "hello.stp"], DATA)
    assert p.returncode == oracle.returncode == 1
    assert "this failure comes from the environment" in p.stderr
    assert f"FAIL  build-tree   no kernel build tree for {running}" in p.stderr
    assert f"apt install linux-headers-{running}" in p.stderr
    assert f"dnf install kernel-devel-{running}" in p.stderr


def test_pass4_failure_ends_with_the_first_compiler_error(release):
    p = _cli("-r", release, "-p4", "hello.stp")
    assert p.returncode != 0
    first = next(line for line in p.stderr.splitlines()
                 if re.search(r":\d+:\d+: error: ", line))
    m = re.search(r"^stap-ls: hello\.stp:1:1: error: pass 4 \(compile\) failed: (.*) "
                  r"\[stap-pass4\]$", p.stderr, re.M)
    assert m, p.stderr[-2000:]
    assert m.group(1).startswith(first)
    assert "Traceback" not in p.stderr


def test_usage_errors():
    p = _cli("-p", "9", "hello.stp")
    assert p.returncode == 2 and "Invalid pass number" in p.stderr
    p = _cli("-r", "x")
    assert p.returncode == 2 and "no script given" in p.stderr
    p = _cli("-p2", "no_such_file.stp")
    assert p.returncode == 2 and "cannot read no_such_file.stp" in p.stderr
