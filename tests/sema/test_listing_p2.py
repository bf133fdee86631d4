"""`stap-ls check -l/-L PATTERN` for tapset aliases and built-ins equals the real stap's, live.

Both sides run now: the real ``stap -r RELEASE -l/-L`` and our
``stap_ls.cli.check.main`` (one test also runs ``python -m stap_ls check`` as a
process).  stdout and the exit status must be equal.  Where we list more than
stap because BTF or kallsyms answer what stap needs kernel DWARF for here, the
difference must be exactly the points our listing marks so, and stap must fail
on such a point for lack of debug information.
"""

from __future__ import annotations

import io
import re

import pytest

from stap_ls.cli.check import main as check_main
from tests.support.oracle import release, run, stap_ls_cmd, stap_path

REL = release()

#: (pattern, flags): every kind the brief names; each is compared live
PATTERNS = [
    ("syscall.open*", "lL"),            # alias wildcard
    ("syscall.open", "L"),              # one alias, tracepoint $vars
    ("syscall.open.return", "L"),
    ("syscall.read,syscall.write", "lL"),   # several points
    ("nd_syscall.open", "L"),
    ("scheduler.ctxswitch", "L"),       # kernel.trace-based alias
    ("scheduler.process_*", "lL"),
    ("signal.send", "L"),               # several derived probes, shared items only
    ("kprocess.exec*", "L"),
    ("irq_handler.*", "L"),
    ("stap.pass*", "L"),                # SDT marks of the stap binary: $argN, no $$name
    ("begin", "lL"),                    # built-ins
    ("end", "L"),
    ("begin(1)", "l"),
    ("never", "L"),
    ("timer.ms(100)", "lL"),
    ("timer.*", "lL"),                  # a built-in family wildcard: timer.profile only
    ("timer.profile", "L"),
    ("perf.sw.cpu_clock", "l"),
    ('procfs("x").read', "L"),
    ("process.begin", "L"),             # utrace points and their fixed $vars
    ("process.*", "l"),
    ('process("/bin/ls").begin', "L"),  # resolved path, as stap prints it
    ('begin,kernel.trace("sched:sched_switch")', "L"),   # mixed with a target point
    ("syscall.open?", "L"),             # ?, ! do not show
    ("syscall.open!", "l"),
    ("begin,nothing.foo", "l"),         # a failing point is dropped silently
    ("nothing.foo", "lL"),              # nothing matches: exit 1, no output
    ("syscall.nosuch", "l"),
    ("perf.*", "l"),
    ("vfs.*", "l"),                     # these two fail in pass 2 point by point (bisected)
    ("ioblock.*", "l"),
    ("scheduler.ctxswitch,ioblock.request,syscall.close", "l"),
]

CASES = [(p, f"-{f}") for p, fl in PATTERNS for f in fl]


def ours(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = check_main(["-r", REL, *argv], out, err)
    return rc, out.getvalue(), err.getvalue()


def theirs(*argv: str):
    return run([stap_path(), "-r", REL, *argv], timeout=600)


@pytest.mark.parametrize("pattern,flag", CASES, ids=[f"{f} {p}" for p, f in CASES])
def test_same_as_stap(pattern, flag):
    want = theirs(flag, pattern)
    rc, out, err = ours(flag, pattern)
    assert out == want.stdout, err
    assert rc == want.returncode


def test_aliases_of_extra_scripts_are_not_listed_like_stap():
    argv = ("-l", "begin,bad", "-E", "probe bad = begin { }")
    want = theirs(*argv)
    rc, out, _ = ours(*argv)
    assert (rc, out) == (want.returncode, want.stdout) == (0, "begin\n")


def test_listing_is_not_empty_where_stap_lists():
    """Guards the table above against comparing two empty outputs by accident."""
    rc, out, _ = ours("-L", "syscall.open*")
    assert rc == 0
    lines = out.splitlines()
    assert [l.split()[0] for l in lines] == ["syscall.open", "syscall.open_by_handle_at",
                                            "syscall.openat"]
    assert lines[0].endswith("argstr:string $regs:struct pt_regs* $id:long int")


def test_no_match_says_so_on_stderr():
    rc, out, err = ours("-l", "nothing.foo")
    assert (rc, out) == (1, "")
    assert "no probe point matches 'nothing.foo'" in err


def test_parse_error_like_stap():
    want = theirs("-l", "begin {")
    rc, out, err = ours("-l", "begin {")
    assert (rc, out) == (want.returncode, want.stdout) == (1, "")
    assert "parse error: expected statement" in err and "parse error: expected statement" \
        in want.stderr


def test_command_line_process_matches_stap():
    want = theirs("-L", "syscall.read")
    got = run([*stap_ls_cmd(), "check", "-r", REL, "-L", "syscall.read"], timeout=600)
    assert got.stdout == want.stdout and want.stdout.startswith("syscall.read ")
    assert got.returncode == want.returncode == 0


def _names(text: str) -> dict[str, str]:
    return {l.split(" ", 1)[0]: l for l in text.splitlines()}


@pytest.mark.parametrize("pattern", ["netdev.*", "syscall.*"])
def test_differences_are_only_points_stap_needs_dwarf_for(pattern):
    """We list what BTF/kallsyms answer; stap here drops (or derives otherwise) those
    points.  Every differing line must be one our listing marks as such."""
    want = _names(theirs("-L", pattern).stdout)
    rc, out, err = ours("-v", "-L", pattern)
    got = _names(out)
    assert rc == 0 and got
    m = re.search(r"rest on BTF or kernel symbols where stap needs kernel debug "
                  r"information: (.*)$", err, re.M)
    marked = set(m.group(1).split(", ")) if m else set()
    differing = {n for n in set(want) | set(got) if want.get(n) != got.get(n)}
    assert differing <= marked, sorted(differing - marked)
    assert set(want) <= set(got)
    # stap itself fails on a point only we list, for lack of debug information/symbols
    only_ours = sorted(set(got) - set(want))
    if only_ours:
        p2 = theirs("-p2", "-e", f"probe {only_ours[0]} {{}}")
        assert p2.returncode == 1
        assert re.search(r"debuginfo|symbol table missing", p2.stderr), p2.stderr
