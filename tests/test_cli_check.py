"""``stap-ls check``: stap's command line, exit statuses, messages and JSON.

Most cases run the same command line through the real ``stap -r RELEASE``
and compare: exit status, stdout for ``-p1``, and the first line of stderr for
command lines stap rejects.  ``stap-ls check`` runs in-process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.support import oracle
from tests.syntax.conftest import check

SCRIPT = "probe begin { printf(\"%d %s\\n\", $1, @2) }"


@pytest.fixture(scope="module")
def rel():
    return oracle.release()


@pytest.fixture(scope="module")
def stap():
    return oracle.stap_path()


def real(stap: str, rel: str, argv: list[str], stdin: str = "", env=None):
    return subprocess.run([stap, "-r", rel, *argv], capture_output=True, text=True,
                          input=stdin, errors="surrogateescape", env=env, timeout=120)


def _environment_free(text: str) -> list[str]:
    return [l for l in text.splitlines()
            if not l.startswith(("WARNING: Kernel function symbol table missing", "Tip: "))]


ACCEPTED = [
    ["-p1", "-e", SCRIPT, "5", "word"],
    ["-p", "1", "-e", SCRIPT, "--", "5", "word"],
    ["-e", SCRIPT, "-p1", "5", "word"],                  # options after arguments (getopt)
    ["-gp1", "-e", "probe begin { %{ /* c */ %} }"],
    ["-p1", "-u", "-w", "-v", "-e", "probe begin { x = 1 }"],
    ["-p1", "-D", "MAXACTION=100", "-D", "FOO", "-e", "probe begin { }"],
    ["-p1", "-a", "x86_64", "-e", "probe begin { %( arch == \"x86_64\" %? x = 1 %: x = 2 %) }"],
    ["-p1", "--compatible=2.5", "-e", "probe begin { x = 1 }"],
    ["-p1", "--privilege=stapusr", "-e", "probe begin { %( systemtap_privilege == \"stapusr\" %? x = 1 %) }"],
    ["-p1", "--unprivileged", "-e", "probe begin { }"],
    ["-p1", "--runtime=bpf", "-e", "probe begin { %( runtime == \"bpf\" %? x = 1 %: y = 2 %) }"],
    ["-p1", "--skip-badvars", "-c", "/bin/true", "-e", "probe begin { }"],
    ["-p1", "-x", "1", "-e", "probe begin { }"],
    ["-p1", "-e", "probe begin { }", "-E", "probe end { }", "-E", "probe error { }"],
    ["-p1", "-s", "4", "-m", "mymod", "-e", "probe begin { }"],
    ["-p1", "--prologue-searching=never", "-e", "probe begin { }"],
]


@pytest.mark.parametrize("argv", ACCEPTED, ids=lambda a: " ".join(a)[:50])
def test_accepted_command_lines_match_stap(argv, rel, stap):
    ours = check(["-r", rel, *argv])
    theirs = real(stap, rel, argv)
    assert theirs.returncode == 0, theirs.stderr
    assert ours.rc == 0, ours.err
    assert ours.out == theirs.stdout


def test_script_from_stdin(rel, stap):
    ours = check(["-r", rel, "-p1", "-", "7"], stdin="probe begin { x = $1 }")
    theirs = real(stap, rel, ["-p1", "-", "7"], stdin="probe begin { x = $1 }")
    assert ours.rc == theirs.returncode == 0
    assert ours.out == theirs.stdout


REJECTED = [
    ["-p0", "-e", "probe begin {}"],
    ["-p6", "-e", "probe begin {}"],
    ["-p", "x", "-e", "probe begin {}"],
    ["-p1", "-s", "0", "-e", "probe begin {}"],
    ["-p1", "-s", "big", "-e", "probe begin {}"],
    ["-p1", "-m", "", "-e", "probe begin {}"],
    ["-p1", "-m", "x^y", "-e", "probe begin {}"],
    ["-p1", "-D", "A B", "-e", "probe begin {}"],
    ["-p1", "-c", "/bin/ls", "-x", "100", "-e", "probe begin {}"],
    ["-p1", "-x", "abc", "-e", "probe begin {}"],
    ["-p1", "-e", "probe begin {}", "-e", "probe end {}"],
    ["-p1", "--prologue-searching=blah", "-e", "probe begin {}"],
    ["-p1", "--privilege=root", "-e", "probe begin {}"],
    ["-p1", "--runtime=foo", "-e", "probe begin {}"],
    ["-p1", "--compatible=9.9", "-e", "probe begin {}"],
    ["-p1", "--no-such-option", "-e", "probe begin {}"],
    ["-p1", "-Z", "-e", "probe begin {}"],
    ["-p1", "-e", "probe begin { x = }"],
    ["-p1", "-e", ""],
    ["-p1", "/nonexistent/script.stp"],
    ["--monitor", "-l", "begin"],
    ["-p1", "--rlimit-as=", "-e", "probe begin {}"],
    ["-p1", "--rlimit-as=12X", "-l", "begin"],
    ["-p1", "--rlimit-cpu=5 ", "-e", "probe begin {}"],
    ["-p1", "--rlimit-stack=08", "-e", "probe begin {}"],
    ["-p1", "--rlimit-fsize=1.5", "-e", "probe begin {}"],
]


@pytest.mark.parametrize("argv", REJECTED, ids=lambda a: " ".join(a)[:50])
def test_rejected_command_lines_match_stap(argv, rel, stap):
    ours = check(["-r", rel, *argv])
    theirs = real(stap, rel, argv)
    assert theirs.returncode != 0
    assert ours.rc == 1
    assert ours.out == ""
    # getopt names the program as invoked ('/usr/bin/stap: ...'); ours says 'stap:'
    theirs_first = _environment_free(theirs.stderr)[0].replace(stap + ":", "stap:")
    assert _environment_free(ours.err)[0] == theirs_first


def test_verbose_p1_dumps_the_whole_library_as_stap_does(rel, stap):
    """stap -v -p1 prints every tapset file's tree too: ~125,000 lines that
    must be byte-identical (and in the same order: .stpm, then .stp files)."""
    argv = ["-v", "-p1", "-e", "probe begin { x = 1 }"]
    ours = check(["-r", rel, *argv])
    theirs = real(stap, rel, argv)
    assert ours.rc == theirs.returncode == 0
    assert ours.out.count("# file ") > 400
    assert ours.out == theirs.stdout


def test_tmpdir_checked_like_stap(rel, stap, tmp_path, monkeypatch):
    for bad in ["/dev/null/nope", str(tmp_path / "with space")]:
        os.makedirs(bad, exist_ok=True) if " " in bad else None
        env = dict(os.environ, TMPDIR=bad)
        theirs = real(stap, rel, ["-p1", "-e", "probe begin {}"], env=env)
        monkeypatch.setenv("TMPDIR", bad)
        ours = check(["-r", rel, "-p1", "-e", "probe begin {}"])
        monkeypatch.delenv("TMPDIR")
        assert theirs.returncode != 0 and ours.rc == 1
        assert _environment_free(ours.err)[0].split("(")[0] == \
            _environment_free(theirs.stderr)[0].split("(")[0]


def test_ignored_options_warn(rel):
    ours = check(["-r", rel, "-p1", "-k", "-t", "-e", "probe begin {}"])
    assert ours.rc == 0
    assert "option -k only affects passes 3-5; ignored by stap-ls check" in ours.err
    assert "option -t" in ours.err


def test_json_format(rel):
    ours = check(["-r", rel, "-p1", "--format=json", "-e", "probe begin { x = }"])
    assert ours.rc == 1
    data = json.loads(ours.out)
    assert data["ok"] is False and data["passes"] == 1
    [d] = data["diagnostics"]
    assert d["message"] == "expected literal string or number"
    ok = check(["-r", rel, "-p1", "--format=json", "-e", "probe begin { x = 1 }"])
    assert ok.rc == 0 and json.loads(ok.out) == {"diagnostics": [], "ok": True, "passes": 1}


def test_include_dir_and_bad_tapset_warning(rel, tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "broken.stp").write_text("function broken( { }\n")
    (lib / "good.stp").write_text("function mine() { return 1 }\n")
    ours = check(["-r", rel, "-p1", "-I", str(lib), "-e", "probe begin { x = mine() }"])
    assert ours.rc == 0
    assert "WARNING" in ours.err and "broken.stp" in ours.err
    strict = check(["-r", rel, "-p1", "-W", "-I", str(lib), "-e", "probe begin { }"])
    assert strict.rc == 1 and "broken.stp" in strict.err


def test_systemtap_tapset_variable_moves_the_library(rel, tmp_path, monkeypatch):
    root = tmp_path / "tapset"
    root.mkdir()
    (root / "m.stpm").write_text("@define answer %( 42 %)\n")
    monkeypatch.setenv("SYSTEMTAP_TAPSET", str(root))
    ours = check(["-r", rel, "-p1", "-e", "probe begin { x = @answer }"])
    assert ours.rc == 0, ours.err
    assert "(x) = (42)" in ours.out
    monkeypatch.delenv("SYSTEMTAP_TAPSET")
    ours = check(["-r", rel, "-p1", "-e", "probe begin { x = @answer }"])
    assert ours.rc == 1


def test_console_script_exit_status(rel, tmp_path):
    f = tmp_path / "x.stp"
    f.write_text("probe begin { x = 1 }\n")
    cmd = [sys.executable, "-m", "stap_ls", "check", "-r", rel, "-p1", str(f)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("# parse tree dump\n")
    f.write_text("probe begin { x = \n")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stderr.startswith("parse error: ")
