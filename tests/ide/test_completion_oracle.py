"""Completion answers held against the real ``stap`` 4.8 (``-r 6.1.0-56-amd64``):
the ``@`` operators offered all parse (and an unknown one does not), and the
functions and SDT marks offered for a binary are the ones ``stap -l`` lists."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from stap_ls.ide.completion import AT_OPERATORS, complete
from tests.ide.conftest import analysis_of

STAP_RELEASE = "6.1.0-56-amd64"
PROG_C = Path(__file__).resolve().parents[1] / "data" / "targets" / "prog.c"

# one use of every operator completion offers (stap -g for the guru ones)
USES = {
    "cast": '@cast(0, "task_struct")->pid', "var": '@var("jiffies")',
    "defined": "@defined($a)", "entry": "@entry($a)", "perf": '@perf("x")',
    "probewrite": "@probewrite(g)", "const": '@const("X")', "kregister": "@kregister(0)",
    "uregister": "@uregister(0)", "kderef": "@kderef(4, 0)", "uderef": "@uderef(4, 0)",
    "count": "@count(s)", "sum": "@sum(s)", "min": "@min(s)", "max": "@max(s)",
    "avg": "@avg(s)", "variance": "@variance(s)", "hist_linear": "@hist_linear(s, 0, 10, 1)",
    "hist_log": "@hist_log(s)",
}


def _stap(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    stap = shutil.which("stap")
    if stap is None:
        pytest.fail("stap not found: install the Debian package 'systemtap'")
    return subprocess.run([stap, "-r", STAP_RELEASE, *args], capture_output=True, text=True,
                          cwd=cwd, timeout=180)


def test_every_at_operator_offered_parses_in_stap(tmp_path):
    assert set(AT_OPERATORS) - {"define"} == set(USES)
    body = "\n".join(f"  print({u})" for u in USES.values() if "entry" not in u)
    script = tmp_path / "ops.stp"
    script.write_text(f"@define M %( 1 %)\nglobal s, g\nprobe begin {{\n{body}\n  print(@M)\n}}\n"
                      f"probe kernel.function(\"x\").return {{ print({USES['entry']}) }}\n")
    r = _stap("-g", "-p1", str(script))
    assert r.returncode == 0, r.stderr
    script.write_text("probe begin { x = @module(1) }\n")
    r = _stap("-g", "-p1", str(script))
    assert r.returncode != 0 and "unknown operator @module" in r.stderr


@pytest.fixture(scope="module")
def prog(tmp_path_factory) -> Path:
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        pytest.fail("no C compiler: install gcc")
    if not any(Path(p).exists() for p in ("/usr/include/sys/sdt.h",
                                          "/usr/include/x86_64-linux-gnu/sys/sdt.h")):
        pytest.fail("sys/sdt.h missing: install systemtap-sdt-dev")
    d = tmp_path_factory.mktemp("oracle")
    shutil.copy(PROG_C, d / "prog.c")
    subprocess.run([gcc, "-g", "-O0", "-o", "prog", "prog.c"], cwd=d, check=True,
                   capture_output=True, timeout=60)
    return d / "prog"


def _listed(prog: Path, what: str) -> set[str]:
    r = _stap("-l", f'process("{prog}").{what}("*")', cwd=prog.parent)
    assert r.returncode == 0, r.stderr
    return set(re.findall(rf'\.{what}\("([^"]+)"\)', r.stdout))


def _offered(env, prog: Path, what: str) -> list:
    a, off = analysis_of(env, f'probe process("{prog}").{what}("$0") {{}}')
    c = complete(a, off)
    assert not c.incomplete
    return c.items


def test_marks_are_stap_s(env, prog):
    listed = _listed(prog, "mark")
    assert listed == {"walking", "union_seen"}
    assert {i.label for i in _offered(env, prog, "mark")} == listed


def test_functions_are_stap_s_with_file_line(env, prog):
    listed = _listed(prog, "function")
    assert f"main@{prog.parent}/prog.c:55" in listed
    specs = set()
    for i in _offered(env, prog, "function"):
        m = re.match(r"prog function (\S+) \((dwarf|symbols)\)$", i.detail)
        assert m, i.detail
        specs.add(m.group(1))
    assert specs == listed
