"""Running SystemTap's own test-suite files through stap-ls (or stap).

A file whose first line is ``#! stap OPTIONS`` runs as ``stap OPTIONS FILE``;
one whose first line is ``#! /bin/sh`` (or bash) is a shell script that calls
``stap`` itself, so it runs with a ``stap`` on PATH that is the front end under
test.  ``SRCDIR`` points two levels above the test directory, as the suite
expects.
"""

from __future__ import annotations

import os
import shlex
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.oracle import CORPUS, REPO, release


def shim_dir(real_stap: bool = False, running_kernel: bool = False) -> str:
    """A directory holding a ``stap`` that runs ``stap-ls check`` (or the real
    stap) with ``-r`` the oracle's release, or for the running kernel."""
    d = tempfile.mkdtemp(prefix="stap-shim-")
    path = os.path.join(d, "stap")
    rel = "" if running_kernel else f"-r {release()} "
    if real_stap:
        body = f'#!/bin/sh\nexec /usr/bin/stap {rel}"$@"\n'
    else:
        body = (f'#!/bin/sh\nPYTHONPATH={shlex.quote(str(REPO))}${{PYTHONPATH:+:$PYTHONPATH}} '
                f'exec {shlex.quote(sys.executable)} -m stap_ls check {rel}"$@"\n')
    with open(path, "w") as fh:
        fh.write(body)
    os.chmod(path, 0o755)
    return d


def how_to_run(path: Path) -> tuple[str, list[str]]:
    """('stap', OPTIONS) or ('sh', [interpreter])."""
    first = path.read_text(errors="replace").split("\n", 1)[0]
    if first.startswith("#!"):
        words = first[2:].split()
        if words and os.path.basename(words[0]) == "stap":
            return "stap", words[1:]
        if words and os.path.basename(words[0]) in ("sh", "bash"):
            return "sh", [words[0]]
    return "stap", []


def run_test(path: Path, shim: str, timeout: int = 600) -> subprocess.CompletedProcess:
    kind, words = how_to_run(path)
    env = dict(os.environ)
    env["PATH"] = shim + os.pathsep + env.get("PATH", "")
    env["SRCDIR"] = str(path.parent.parent.parent)
    if kind == "stap":
        cmd = [os.path.join(shim, "stap"), *words, str(path)]
    else:
        cmd = [words[0], str(path)]
    # a session of its own, so a timeout kills the shell test and every stap it started
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=path.parent, errors="surrogateescape",
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"{path.name}: no answer within {timeout} s") from None
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def corpus_files(dirname: str) -> list[Path]:
    d = CORPUS / dirname
    if not d.is_dir():
        raise AssertionError(f"SystemTap's test corpus is missing at {d} (../shared/corpus)")
    return sorted(p for p in d.iterdir() if p.suffix == ".stp" and p.is_file())
