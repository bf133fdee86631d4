"""The stap engine: drive the real ``stap`` through passes 1-5.

:func:`start_stap_run` turns a :class:`~stap_ls.backends.runs.RunRequest` into
``stap -v [options] [-pN] SCRIPT [ARGS]`` (``sudo -n`` in front when asked),
started as a guarded process group (:mod:`stap_ls.backends.process`).  It
follows stap's stderr with :class:`~stap_ls.backends.stap_messages.StderrReader`
for pass progress and diagnostics, streams every stdout line and the remaining
stderr lines to the client as they come, and, with ``-p N``, keeps stdout as the
pass result: the pass-1/2 tree, the pass-3 C, the pass-4 module path.

Unsaved editor text is written to a private temporary directory under the
script's own base name, and stap's messages about that copy are placed in the
caller's :class:`~stap_ls.text.SourceFile`.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time

from stap_ls.backends.process import GroupProcess
from stap_ls.backends.runs import FailedRun, PassResult, Run, RunEvents, RunRequest
from stap_ls.backends.stap_messages import PassEvent, Placement, StderrReader
from stap_ls.options import UsageError
from stap_ls.text import Diagnostic, Severity, SourceFile

_PASS_LINE = re.compile(r"^Pass \d: ")
#: stap_ls's own options, never handed to stap
_OWN_OPTIONS = ("--engine", "--format")
#: cap on the stdout kept as a pass result (the stream itself is not capped)
MAX_RESULT_CHARS = 64 << 20


def stap_argv(request: RunRequest, script: str | None) -> list[str]:
    """The command line that runs ``request`` (``script`` replaces the path)."""
    args: list[str] = []
    skip = False
    for a in request.stap_args:
        if skip:
            skip = False
            continue
        if a in _OWN_OPTIONS:
            skip = True
            continue
        if a.split("=", 1)[0] in _OWN_OPTIONS:
            continue
        args.append(a)
    opts = request.options()
    last = request.last_pass if request.last_pass is not None else opts.last_pass
    argv = [request.stap_program]
    if opts.verbose == 0:
        argv += ["--vp", progress_verbosity(last)]
    argv += args
    if request.last_pass is not None:
        argv.append(f"-p{request.last_pass}")
    if script is not None:
        argv.append(script)
    argv += request.script_args
    if request.sudo:
        argv = ["sudo", "-n", "--", *argv]
    return argv


def progress_verbosity(last_pass: int) -> str:
    """``--vp`` digits that make stap print its "Pass N: ... in X ms" lines
    without changing what the requested pass shows.

    A pass's own verbosity changes its ``-p`` dump (``-p1``/``-p2`` print more
    with it) and makes pass 5 chatty, so those stay at 0; their end is then
    known from stap's exit.
    """
    return "".join("1" if i < last_pass or (i == last_pass and i in (3, 4)) else "0"
                   for i in range(1, 6))


def privileges() -> tuple[bool, str]:
    """Whether this user may run pass 5, and how (``root``, ``stapdev``...)."""
    if os.geteuid() == 0:
        return True, "root"
    import grp
    mine = set(os.getgroups())
    for name in ("stapdev", "stapsys", "stapusr"):
        try:
            if grp.getgrnam(name).gr_gid in mine:
                return True, name
        except KeyError:
            continue
    return False, "none"


class StapRun(Run):
    """One ``stap`` process and what it says."""

    def __init__(self, request: RunRequest, events: RunEvents, opts_last_pass: int,
                 source: SourceFile | None, script_arg: str | None,
                 aliases: dict[str, SourceFile], tmpdir: str | None) -> None:
        super().__init__(request, events)
        self.last_pass = opts_last_pass
        self.source = source
        self._tmpdir = tmpdir
        self._stdout: list[str] = []
        self._stdout_chars = 0
        self._stopped = False
        self._t0 = time.monotonic()
        self._started: dict[int, float] = {}
        self.reader = StderrReader(Placement(source, aliases), self._on_pass,
                                   self._on_diagnostic)
        self.result.command = stap_argv(request, script_arg)
        self._start_pass(1, self._t0)
        self.process = GroupProcess(self.result.command, self._on_line, cwd=request.cwd,
                                    env=request.env, on_idle=self.reader.tick,
                                    on_exit=self._on_process_exit)

    # -- events from the pump thread ---------------------------------------------
    def _on_line(self, stream: str, line: str) -> None:
        if stream == "stdout":
            if self._stdout_chars < MAX_RESULT_CHARS:
                self._stdout.append(line)
                self._stdout_chars += len(line) + 1
            self.events.on_output("stdout", line)
            return
        self.reader.feed(line)
        if not _PASS_LINE.match(line):
            self.events.on_output("stderr", line)

    def _on_pass(self, ev: PassEvent) -> None:
        r = self.result
        if ev.state == "end":
            r.passes_done = max(r.passes_done, ev.pass_no)
            if ev.seconds is not None:
                r.pass_seconds[ev.pass_no] = ev.seconds
            self.events.on_progress(ev.pass_no, "end", ev.seconds)
            if ev.pass_no < self.last_pass:
                self._start_pass(ev.pass_no + 1, ev.at or time.monotonic())
        elif ev.state == "failed":
            r.failed_pass = ev.pass_no
            seconds = ev.seconds
            if seconds is None and ev.pass_no in self._started:
                seconds = round(time.monotonic() - self._started[ev.pass_no], 3)
            if seconds is not None:
                r.pass_seconds[ev.pass_no] = seconds
            self.events.on_progress(ev.pass_no, "failed", seconds)

    def _start_pass(self, n: int, at: float) -> None:
        """Pass ``n`` began at ``at``; pass 5 beginning means the script runs."""
        self._started[n] = at
        self.events.on_progress(n, "running" if n == 5 else "start", at - self._t0)

    def _end_unreported_pass(self) -> None:
        """stap exited 0 without a line for the last pass (its verbosity stays 0
        so its output is unchanged): the pass ended now."""
        r = self.result
        n = self.last_pass
        if r.failed_pass is None and r.passes_done < n and n in self._started:
            seconds = round(time.monotonic() - self._started[n], 3)
            r.passes_done = n
            r.pass_seconds[n] = seconds
            self.events.on_progress(n, "end", seconds)

    def _on_diagnostic(self, d: Diagnostic) -> None:
        self.result.diagnostics.append(d)
        self.events.on_diagnostic(d)

    def _on_process_exit(self, returncode: int) -> None:
        self.reader.close()
        r = self.result
        r.seconds = time.monotonic() - self._t0
        r.stopped = self._stopped
        code = returncode if returncode >= 0 else 128 - returncode
        if code == 0 and not self._stopped:
            self._end_unreported_pass()
        r.environment = list(self.reader.environment)
        if code != 0 and self.last_pass == 5 and not self.request.sudo \
                and not privileges()[0] and "privileges" not in r.environment:
            r.environment.append("privileges")
        if code == 0 and self.last_pass < 5:
            r.pass_result = self._pass_result()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
        self._finish(code)

    def _pass_result(self) -> PassResult:
        text = "\n".join(self._stdout) + ("\n" if self._stdout else "")
        n = self.last_pass
        if n == 4:
            path = text.strip().splitlines()[-1] if text.strip() else self.reader.module_path
            return PassResult(4, "module", text, "plaintext", module_path=path)
        if n == 3:
            return PassResult(3, "c", text, "c")
        return PassResult(n, "tree", text, "systemtap")

    # -- control -------------------------------------------------------------------
    def stop(self) -> str:
        if self.finished:
            return ""
        self._stopped = True
        return self.process.stop()


def _cannot_start(request: RunRequest, events: RunEvents, message: str,
                  environment: list[str]) -> Run:
    diag = Diagnostic(Severity.ERROR, message, None, code="run-start", kind="run")
    return FailedRun(request, events, diag, environment)


def start_stap_run(request: RunRequest, events: RunEvents) -> Run:
    """The stap engine's entry point (see :mod:`stap_ls.backends.runs`)."""
    try:
        opts = request.options()
    except UsageError as e:
        return _cannot_start(request, events, f"bad stap options: {e}", [])
    if shutil.which(request.stap_program) is None:
        return _cannot_start(
            request, events,
            f"'{request.stap_program}' was not found: install SystemTap "
            "(Debian: apt install systemtap; Fedora: dnf install systemtap)", ["stap"])
    if request.sudo and shutil.which("sudo") is None:
        return _cannot_start(request, events,
                             "sudo mode is set but 'sudo' is not installed "
                             "(Debian and Fedora package: sudo)", ["sudo"])
    aliases: dict[str, SourceFile] = {}
    tmpdir: str | None = None
    source: SourceFile | None = None
    script_arg: str | None = None
    if request.script_text is not None:
        name = request.script_path or "script.stp"
        source = SourceFile(name, request.script_text)
        tmpdir = tempfile.mkdtemp(prefix="stap-ls-run-")
        base = os.path.basename(name) or "script.stp"
        script_arg = os.path.join(tmpdir, base)
        with open(script_arg, "w", encoding="utf-8") as f:
            f.write(request.script_text)
        aliases[script_arg] = source
    elif request.script_path is not None:
        try:
            where = os.path.join(request.cwd or "", request.script_path)
            with open(where, encoding="utf-8", errors="replace") as f:
                source = SourceFile(request.script_path, f.read())
        except OSError as e:
            return _cannot_start(request, events,
                                 f"cannot read {request.script_path}: {e.strerror}", [])
        script_arg = request.script_path
        aliases[script_arg] = source
    elif opts.script_text is not None:
        source = SourceFile("<input>", opts.script_text)
        aliases["<input>"] = source
    else:
        return _cannot_start(request, events, "no script given (FILE or -e SCRIPT)", [])
    last_pass = request.last_pass if request.last_pass is not None else opts.last_pass
    try:
        return StapRun(request, events, last_pass, source, script_arg, aliases, tmpdir)
    except OSError as e:
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
        return _cannot_start(request, events, f"cannot start stap: {e}", [])


__all__ = ["start_stap_run", "stap_argv", "privileges", "StapRun"]
