"""Running an external program as a process group that cannot outlive us.

:class:`GroupProcess` starts a command under :mod:`stap_ls.backends.reaper` in a
new session, reads its stdout and stderr line by line on one pump thread and
hands each line to a callback as it comes.  :meth:`GroupProcess.stop` escalates
SIGINT -> SIGTERM -> SIGKILL to the whole process group (so stap's ``end``
probes get their chance first); each further call skips to the next signal.
If this Python process dies, the reaper notices the closed control pipe and
kills the group itself.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

REAPER = str(Path(__file__).with_name("reaper.py"))

#: default seconds to wait after SIGINT and after SIGTERM before escalating
STOP_GRACE = (5.0, 3.0)
#: seconds of silence after which the idle callback runs
IDLE_SECONDS = 0.15

LineCallback = Callable[[str, str], None]   # (stream, line without newline)


class GroupProcess:
    """One command in its own process group, its output pumped line by line."""

    def __init__(self, argv: list[str], on_line: LineCallback,
                 cwd: str | None = None, env: dict[str, str] | None = None,
                 on_idle: Callable[[], None] | None = None,
                 on_exit: Callable[[int], None] | None = None) -> None:
        self.argv = list(argv)
        self._on_exit = on_exit
        self._on_line = on_line
        self._on_idle = on_idle
        ctl_r, ctl_w = os.pipe()
        os.set_inheritable(ctl_r, True)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", REAPER, str(ctl_r), "--", *self.argv],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                cwd=cwd, env=env, pass_fds=(ctl_r,), start_new_session=True)
        finally:
            os.close(ctl_r)
        self._control = ctl_w          # closing it (or our death) stops the group
        self.pid = self._proc.pid      # also the process group id
        self.started = time.monotonic()
        self.returncode: int | None = None
        self._done = threading.Event()
        self._stop_lock = threading.Lock()
        self._stop_level = 0           # 0 none, 1 SIGINT, 2 SIGTERM, 3 SIGKILL
        self._pump = threading.Thread(target=self._run, name=f"stap-ls-pump-{self.pid}",
                                      daemon=True)
        self._pump.start()

    # -- output -----------------------------------------------------------------
    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        assert self._proc.stdout is not None and self._proc.stderr is not None
        partial = {"stdout": b"", "stderr": b""}
        for name, f in (("stdout", self._proc.stdout), ("stderr", self._proc.stderr)):
            os.set_blocking(f.fileno(), False)
            sel.register(f.fileno(), selectors.EVENT_READ, name)
        open_streams = 2
        try:
            while open_streams:
                events = sel.select(timeout=IDLE_SECONDS)
                if not events and self._on_idle is not None:
                    self._call(self._on_idle)
                for key, _ in events:
                    name = key.data
                    try:
                        chunk = os.read(key.fd, 65536)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        sel.unregister(key.fd)
                        open_streams -= 1
                        if partial[name]:
                            self._emit(name, partial[name])
                            partial[name] = b""
                        continue
                    data = partial[name] + chunk
                    *lines, partial[name] = data.split(b"\n")
                    for line in lines:
                        self._emit(name, line)
        finally:
            sel.close()
            self.returncode = self._proc.wait()
            self._proc.stdout.close()
            self._proc.stderr.close()
            with self._stop_lock:
                os.close(self._control)
                self._control = -1     # never write to a recycled descriptor
            self._done.set()
            if self._on_exit is not None:
                self._call(self._on_exit, self.returncode)

    def _emit(self, stream: str, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace").rstrip("\r")
        self._call(self._on_line, stream, text)

    @staticmethod
    def _call(fn: Callable[..., None], *args: object) -> None:
        try:
            fn(*args)
        except Exception as e:  # a broken callback must not kill the pump
            sys.stderr.write(f"stap-ls: run callback failed: {e!r}\n")

    # -- control ----------------------------------------------------------------
    def wait(self, timeout: float | None = None) -> int | None:
        """Wait until the process exited and its output was read."""
        self._done.wait(timeout)
        return self.returncode

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def signal_group(self, sig: int) -> bool:
        try:
            os.killpg(self.pid, sig)
            return True
        except (ProcessLookupError, PermissionError):
            return False

    def stop(self, grace: tuple[float, float] = STOP_GRACE) -> str:
        """Escalate SIGINT -> SIGTERM -> SIGKILL.  Returns the signal sent now.

        The first call sends SIGINT and starts a watcher thread that sends the
        next signals after ``grace`` seconds each; a further call skips ahead.
        """
        with self._stop_lock:
            if self.done:
                return ""
            self._stop_level = min(self._stop_level + 1, 3)
            level = self._stop_level
        sig = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)[level - 1]
        self._send(sig)
        if level == 1:
            threading.Thread(target=self._escalate, args=(grace,), daemon=True,
                             name=f"stap-ls-stop-{self.pid}").start()
        return sig.name

    def _escalate(self, grace: tuple[float, float]) -> None:
        for wait_s, level in ((grace[0], 2), (grace[1], 3)):
            if self._done.wait(wait_s):
                return
            with self._stop_lock:
                if self._stop_level >= level:
                    continue
                self._stop_level = level
            self._send(signal.SIGTERM if level == 2 else signal.SIGKILL)
        # the reaper itself should have ended by now; if it hangs, kill it too
        if not self._done.wait(1.0):
            self.signal_group(signal.SIGKILL)

    def _send(self, sig: int) -> None:
        """SIGINT/SIGTERM go to the whole group (the reaper ignores them);
        SIGKILL is delegated to the reaper so it can reap what it kills."""
        if sig != signal.SIGKILL:
            self.signal_group(sig)
            return
        with self._stop_lock:
            control = self._control
            try:
                if control >= 0:
                    os.write(control, b"K")
                    return
            except OSError:
                pass
        self.signal_group(signal.SIGKILL)  # no reaper to ask: kill the group outright
