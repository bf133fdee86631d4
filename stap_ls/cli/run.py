"""``stap-ls run [--sudo] [stap options] FILE|-e SCRIPT [ARGS]``.

A thin face over :func:`stap_ls.backends.runs.start_run`: progress lines go to
stderr (``stap-ls: pass 2 (elaborate) done in 0.85 s``), the script's output to
stdout as it comes, stap's own messages to stderr; the exit status is stap's.
Ctrl-C (and SIGTERM/SIGHUP) stop the run: SIGINT first so ``end`` probes run,
then SIGTERM and SIGKILL after timeouts; each further Ctrl-C skips ahead.
When the run failed for an environment reason, the doctor's findings for it
are printed.  ``--sudo`` (or ``STAP_LS_SUDO=1``) runs ``sudo -n stap``.
"""

from __future__ import annotations

import os
import signal
import sys

from stap_ls.backends.runs import RunEvents, RunRequest, start_run, status_message
from stap_ls.options import UsageError
from stap_ls.text import Diagnostic

USAGE = "usage: stap-ls run [--sudo] [stap options] FILE|-e SCRIPT [ARGS]\n"

#: diagnostics stap_ls makes itself; stap's own are already on stderr verbatim
_OWN_CODES = ("stap-pass4", "run-start", "run-engine")


def _err(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


def main(argv: list[str]) -> int:
    argv = list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0 if argv else 2
    sudo = os.environ.get("STAP_LS_SUDO", "") not in ("", "0")
    if "--sudo" in argv:
        argv.remove("--sudo")
        sudo = True
    try:
        request, _ = RunRequest.from_command_line(argv)
        opts = request.options()
    except UsageError as e:
        _err(f"stap-ls run: {e}\n{USAGE}")
        return 2
    request.sudo = sudo

    def on_progress(pass_no: int, state: str, seconds: float | None) -> None:
        _err(f"stap-ls: {status_message(pass_no, state, seconds)}\n")

    def on_output(stream: str, line: str) -> None:
        out = sys.stdout if stream == "stdout" else sys.stderr
        out.write(line + "\n")
        out.flush()

    def on_diagnostic(d: Diagnostic) -> None:
        if d.code in _OWN_CODES:
            _err(f"stap-ls: {d.format()}\n")

    run = start_run(request, RunEvents(on_progress, on_output, on_diagnostic))

    def on_signal(signum: int, _frame: object) -> None:
        sent = run.stop()
        if sent:
            nxt = {"SIGINT": "; again for SIGTERM", "SIGTERM": "; again for SIGKILL"}
            _err(f"stap-ls: stopping the run ({sent} sent{nxt.get(sent, '')})\n")

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        while run.wait(0.2) is None:
            pass
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
    result = run.result
    if result.stopped:
        _err("stap-ls: run stopped\n")
    if result.exit_code not in (0, None):
        _err(f"stap-ls: the run exited with status {result.exit_code}\n")
    if result.environment:
        from stap_ls.backends.doctor import diagnose
        report = diagnose(opts.kernel_release, request.stap_program)
        names = [n for n in result.environment if report.find(n) is not None]
        if names:
            _err("stap-ls: this failure comes from the environment:\n"
                 + report.render(only=names))
    return result.exit_code if result.exit_code is not None else 1
