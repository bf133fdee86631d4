"""Every example of /usr/share/systemtap/examples at ``-p2``, against the real stap.

Each example runs with its ``.meta`` ``test_check`` arguments (pass replaced
by ``-p2``), with and without ``-u``.  Where ``stap -r RELEASE`` succeeds,
``stap-ls check`` must succeed and print the same program; where stap fails
for a reason other than missing kernel debug information, stap-ls must fail
with the same first error.  Both run live; nothing of stap's is stored.
"""

from __future__ import annotations

import pytest

from tests.support.oracle import examples, release, run, stap_ls_cmd, stap_path, with_pass

EXAMPLES = examples()
_DEBUGINFO = ("debuginfo", "debug information", "no match", "not accessible",
              "symbol table", "while resolving probe point", "kernel.function")


def _first_error(text: str) -> str:
    for line in text.splitlines():
        if "error:" in line:
            return line.split(" at ")[0]
    return ""


@pytest.mark.parametrize("unopt", [False, True], ids=["opt", "u"])
@pytest.mark.parametrize("ex", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_example_p2(ex, unopt: bool) -> None:
    argv = with_pass(ex.argv, 2) + (["-u"] if unopt else [])
    stap = run([stap_path(), "-r", release(), *argv], cwd=ex.dir)
    mine = run([*stap_ls_cmd(), "check", "-r", release(), *argv], cwd=ex.dir)
    if stap.returncode == 0:
        assert mine.returncode == 0, mine.stderr[-3000:]
        assert mine.stdout == stap.stdout
    elif not any(k in stap.stderr for k in _DEBUGINFO):
        assert mine.returncode != 0, f"stap fails:\n{stap.stderr[-1500:]}"
        assert _first_error(mine.stderr) == _first_error(stap.stderr)


def test_examples_present() -> None:
    assert len(EXAMPLES) > 100, "SystemTap's examples are missing (apt-get install systemtap-doc)"
