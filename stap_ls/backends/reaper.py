"""The reaper: a tiny guardian process between stap_ls and the program it runs.

Why it exists: ``stap`` forks ``make``, ``gcc``, ``cc1``, ``staprun`` and
``stapio``.  When the editor's server or the CLI dies (even by SIGKILL), none of
them may keep running, and a stop must reach every one of them.  The parent
starts this script as the leader of a new session (so the whole tree shares one
process group) and keeps the write end of a *control pipe*; the reaper holds
the read end.  The reaper:

* marks itself a child subreaper (``PR_SET_CHILD_SUBREAPER``), so orphaned
  grandchildren (a ``cc1`` whose ``make`` died) are reparented to it and reaped,
  instead of lingering as zombies under a PID 1 that never waits;
* starts the command with ``PR_SET_PDEATHSIG`` = SIGTERM, so the command is told
  if the reaper itself is killed;
* ignores SIGINT and SIGTERM for itself (a Python handler, which ``exec`` resets
  to the default in the command), so the parent may signal the whole process
  group for a stop and only SIGKILL takes the reaper down;
* watches the control pipe: end-of-file means the parent died, and the reaper
  then sends SIGTERM to the group, waits, and finishes with SIGKILL; a ``K``
  on the pipe (the last step of a stop) SIGKILLs every other group member
  while the reaper stays to reap them, so no zombie is left;
* when the command has exited, gives leftover descendants a short grace, kills
  them, reaps them, and exits with the command's status (re-raising the signal
  that killed it, so the parent sees the same ``returncode``).

It uses only the standard library and runs as ``python -I reaper.py FD -- CMD``.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36

#: seconds between SIGTERM and SIGKILL when the parent has died
PARENT_DEATH_GRACE = 3.0
#: seconds leftover descendants get after the command itself exited
LEFTOVER_GRACE = 2.0


def _prctl(option: int, value: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def set_parent_death_signal(sig: int = signal.SIGTERM) -> bool:
    """``prctl(PR_SET_PDEATHSIG, sig)`` for the calling process."""
    return _prctl(PR_SET_PDEATHSIG, int(sig))


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid`` other than us."""
    me = os.getpid()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read().decode("ascii", "replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(name))
    return found


def _reap(child: int, status: list[int | None]) -> None:
    """Collect every exited child; remember the status of ``child``."""
    while True:
        try:
            pid, st = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if pid == child:
            status[0] = st


def _kill_members(pgid: int) -> None:
    """SIGKILL every process of the group but the reaper, which stays to reap."""
    for pid in _group_members(pgid):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _kill_leftovers(pgid: int, grace: float) -> None:
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _group_members(pgid):
            return
        try:
            os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.05)
    _kill_members(pgid)


def _exit_like(status: int) -> None:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        sys.stdout.flush()
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):  # SIGKILL/SIGSTOP: always default
            pass
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)
    os._exit(os.waitstatus_to_exitcode(status))


def main(argv: list[str]) -> None:
    if len(argv) < 3 or argv[1] != "--":
        sys.stderr.write("usage: reaper.py CONTROL_FD -- COMMAND [ARGS]\n")
        os._exit(125)
    control = int(argv[0])
    cmd = argv[2:]
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: None)
    pgid = os.getpgid(0)
    r, w = os.pipe()  # tells us if exec failed
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.close(control)
            os.set_inheritable(w, False)
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, signal.SIG_DFL)
            set_parent_death_signal(signal.SIGTERM)
            os.execvp(cmd[0], cmd)
        except OSError as e:
            os.write(w, f"{e.errno}:{e.strerror}".encode())
        os._exit(127)
    os.close(w)
    err = os.read(r, 4096)
    os.close(r)
    if err:
        _, _, msg = err.decode().partition(":")
        sys.stderr.write(f"stap-ls: cannot run {cmd[0]}: {msg}\n")
        os.waitpid(pid, 0)
        os._exit(127)
    status: list[int | None] = [None]
    parent_gone_at: float | None = None
    while status[0] is None:
        try:
            ready, _, _ = select.select([control], [], [], 0.05)
        except InterruptedError:
            ready = []
        if ready and parent_gone_at is None:
            try:
                data = os.read(control, 64)
            except OSError:
                data = b""
            if not data:  # the parent died: stop everything
                parent_gone_at = time.monotonic()
                os.killpg(pgid, signal.SIGTERM)
            elif b"K" in data:  # the last step of a stop: SIGKILL all but us
                _kill_members(pgid)
        if parent_gone_at is not None and time.monotonic() - parent_gone_at > PARENT_DEATH_GRACE:
            _kill_members(pgid)
            parent_gone_at = float("inf")
        _reap(pid, status)
    _kill_leftovers(pgid, LEFTOVER_GRACE)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                time.sleep(0.01)
        except ChildProcessError:
            break
    st = status[0]
    assert st is not None
    _exit_like(st)


if __name__ == "__main__":
    main(sys.argv[1:])
