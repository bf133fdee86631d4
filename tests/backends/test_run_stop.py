"""Stopping runs and dying parents leave nothing behind (checked in /proc).

The long target is stap's pass 4 (several seconds of make and gcc here); the
escalation itself is checked on real ``sh`` processes that ignore signals.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from stap_helpers import DATA, session_members, stap_ls_cmd, wait_for
from stap_ls.backends.process import GroupProcess
from stap_ls.backends.runs import RunEvents, RunRequest, start_run

REPO = str(DATA.parents[2])
BUILD_TOOLS = {"make", "gcc", "gcc-12", "cc1", "as", "ld", "sh", "stap", "kbuild"}


def _busy_comms(sid: int) -> set[str]:
    return {p["comm"] for p in session_members(sid) if p["state"] != "Z"}


def test_stop_during_pass4_leaves_nothing(release):
    progress: list[tuple[int, str]] = []
    run = start_run(RunRequest(script_path=str(DATA / "hello.stp"), cwd=str(DATA),
                               stap_args=["-r", release, "-p4"]),
                    RunEvents(on_progress=lambda n, s, _t: progress.append((n, s))))
    sid = run.process.pid
    # wait until the compiler is really at work in the run's process group
    assert wait_for(lambda: (4, "start") in progress, 15), progress
    busy = wait_for(lambda: _busy_comms(sid) & {"make", "cc1", "gcc", "gcc-12"}, 15)
    assert busy, f"no make/gcc appeared in pass 4; progress: {progress}"
    t0 = time.monotonic()
    assert run.stop() == "SIGINT"
    result = run.wait(15)
    took = time.monotonic() - t0
    assert result is not None, "the run did not end within 15 s of stop()"
    assert result.stopped and result.exit_code != 0
    left = session_members(sid)
    assert left == [], f"left behind after stop: {left}"
    assert took < 9, f"stop took {took:.1f} s"


def test_killing_the_cli_mid_run_leaves_nothing(release):
    cli = subprocess.Popen(stap_ls_cmd("run", "-r", release, "-p4", "hello.stp"), cwd=DATA,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env={**os.environ, "PYTHONPATH": REPO})

    def reaper_sid() -> int | None:
        from stap_helpers import proc_table
        kids = [p for p in proc_table() if p["ppid"] == cli.pid]
        return kids[0]["sid"] if kids else None

    sid = wait_for(reaper_sid, 10)
    assert sid, "the CLI started no run"
    busy = wait_for(lambda: _busy_comms(sid) & {"make", "cc1", "gcc", "gcc-12"}, 15)
    assert busy, "no make/gcc appeared in pass 4"
    cli.kill()               # SIGKILL: no cleanup code runs in the CLI
    cli.wait()
    gone = wait_for(lambda: not session_members(sid), 10)
    assert gone, f"left behind after the CLI died: {session_members(sid)}"


def test_cli_ctrl_c_stops_the_run(release):
    cli = subprocess.Popen(stap_ls_cmd("run", "-r", release, "-p4", "hello.stp"), cwd=DATA,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env={**os.environ, "PYTHONPATH": REPO})
    from stap_helpers import proc_table
    sid = wait_for(lambda: next((p["sid"] for p in proc_table() if p["ppid"] == cli.pid),
                                None), 10)
    assert sid
    assert wait_for(lambda: _busy_comms(sid) & {"make", "cc1", "gcc", "gcc-12"}, 15)
    cli.send_signal(signal.SIGINT)
    out, err = cli.communicate(timeout=20)
    assert "stap-ls: stopping the run (SIGINT sent; again for SIGTERM)" in err
    assert "stap-ls: run stopped" in err
    assert cli.returncode != 0
    assert session_members(sid) == []


def _lines() -> tuple[list[str], callable]:
    got: list[str] = []
    return got, lambda stream, line: got.append(f"{stream}:{line}")


def test_sigint_first_lets_the_program_finish_its_end_work():
    got, on_line = _lines()
    p = GroupProcess(["sh", "-c", "trap 'echo end-ran; exit 3' INT; echo ready; "
                                  "while :; do sleep 0.05; done"], on_line)
    assert wait_for(lambda: "stdout:ready" in got, 5)
    assert p.stop() == "SIGINT"
    assert p.wait(5) == 3
    assert "stdout:end-ran" in got
    assert session_members(p.pid) == []


@pytest.mark.parametrize("traps,expected", [
    ("trap '' INT", -signal.SIGTERM),                # ignores SIGINT: SIGTERM ends it
    ("trap '' INT TERM", -signal.SIGKILL),           # ignores both: SIGKILL
])
def test_stop_escalates(traps, expected):
    got, on_line = _lines()
    p = GroupProcess(["sh", "-c", f"{traps}; echo ready; while :; do sleep 0.05; done"],
                     on_line)
    assert wait_for(lambda: "stdout:ready" in got, 5)
    t0 = time.monotonic()
    p.stop(grace=(0.5, 0.5))
    assert p.wait(5) == expected
    took = time.monotonic() - t0
    assert 0.4 < took < 3.0
    assert session_members(p.pid) == []


def test_a_second_stop_skips_ahead():
    got, on_line = _lines()
    p = GroupProcess(["sh", "-c", "trap '' INT; echo ready; while :; do sleep 0.05; done"],
                     on_line)
    assert wait_for(lambda: "stdout:ready" in got, 5)
    assert p.stop(grace=(30, 30)) == "SIGINT"
    time.sleep(0.2)
    assert not p.done
    assert p.stop() == "SIGTERM"
    assert p.wait(5) == -signal.SIGTERM


def test_a_missing_program_is_reported_not_raised():
    got, on_line = _lines()
    p = GroupProcess(["/nonexistent/program"], on_line)
    assert p.wait(5) == 127
    assert any("cannot run /nonexistent/program" in line for line in got)


def test_parent_python_dying_kills_the_group(tmp_path):
    """A parent that is SIGKILLed mid-run (no cleanup) takes its group down."""
    marker = tmp_path / "pid"
    code = (f"import sys, time; sys.path.insert(0, {REPO!r})\n"
            "from stap_ls.backends.process import GroupProcess\n"
            "p = GroupProcess(['sh', '-c', 'sleep 60 & sleep 60'], lambda s, l: None)\n"
            f"open({str(marker)!r}, 'w').write(str(p.pid))\n"
            "time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", code])
    assert wait_for(lambda: marker.exists() and marker.read_text(), 10)
    sid = int(marker.read_text())
    assert wait_for(lambda: len(session_members(sid)) >= 3, 5)
    parent.kill()
    parent.wait()
    assert wait_for(lambda: not session_members(sid), 8), session_members(sid)
