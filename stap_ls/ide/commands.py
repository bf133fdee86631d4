"""The server side of the editor's run commands.

``stap-ls.run`` starts a run through :mod:`stap_ls.backends.runs` (the same
API as ``stap-ls run``) and forwards its events as plain payloads to a
``notify(method, params)`` callback: ``stap-ls/runStatus`` for passes and the
exit, ``stap-ls/output`` for each line.  ``stap-ls.listProbes`` is ``stap-ls
check -l/-L``, ``stap-ls.translatedC`` is pass 3 of the real stap,
``stap-ls.doctor`` the doctor's report.  Arguments are validated here; bad
ones raise :class:`CommandError` with a message for the user.
"""

from __future__ import annotations

import io
import os
import threading
from typing import Callable
from urllib.parse import unquote, urlparse

from stap_ls.backends.runs import (RunEvents, RunRequest, exit_params, output_params,
                                   start_run, status_params)
from stap_ls.ide.config import Settings


class CommandError(Exception):
    """A command's arguments or state do not allow it; the message says why."""


def path_of(uri: str) -> str | None:
    u = urlparse(uri)
    return unquote(u.path) if u.scheme == "file" else None


def _first_arg(args: list) -> dict:
    if not args:
        return {}
    if not isinstance(args[0], dict):
        raise CommandError("the argument should be an object")
    return args[0]


class RunManager:
    """Runs started from the editor, by id."""

    def __init__(self, notify: Callable[[str, dict], None]) -> None:
        self.notify = notify
        self.runs: dict[str, object] = {}
        self._lock = threading.Lock()

    def start(self, args: list, settings: Settings, text_of: Callable[[str], str | None]) -> dict:
        a = _first_arg(args)
        uri = a.get("uri")
        if not isinstance(uri, str):
            raise CommandError("stap-ls.run needs {uri}")
        last_pass = a.get("lastPass")
        if last_pass is not None and (not isinstance(last_pass, int) or not 1 <= last_pass <= 5):
            raise CommandError("lastPass must be 1 to 5")
        engine = a.get("engine")
        if engine in ("auto", None):
            engine = None if settings.engine == "auto" else settings.engine
        elif engine not in ("stap", "bpf"):
            raise CommandError("engine must be auto, stap or bpf")
        extra = a.get("args")
        if extra is not None and not (isinstance(extra, list) and
                                      all(isinstance(x, str) for x in extra)):
            raise CommandError("args must be a list of strings")
        req = RunRequest(script_path=path_of(uri), script_text=text_of(uri),
                         stap_args=settings.stap_args(),
                         script_args=list(extra if extra is not None else settings.script_args),
                         last_pass=last_pass, engine=engine, stap_program=settings.stap_path)
        holder: dict = {}
        ready = threading.Event()

        def rid() -> str:
            ready.wait(5)
            return holder.get("id", "run-?")

        def on_progress(pass_no: int, state: str, seconds: float | None) -> None:
            self.notify("stap-ls/runStatus", status_params(rid(), pass_no, state, seconds))

        def on_output(stream: str, line: str) -> None:
            self.notify("stap-ls/output", output_params(rid(), stream, line))

        def on_diagnostic(d) -> None:
            self.notify("stap-ls/output", output_params(rid(), "stderr", d.format()))

        def on_exit(_code: int) -> None:
            run = holder.get("run")
            if run is not None:
                self.notify("stap-ls/runStatus", exit_params(run))

        run = start_run(req, RunEvents(on_progress, on_output, on_diagnostic, on_exit))
        holder["id"], holder["run"] = run.id, run
        ready.set()
        if run.finished:
            self.notify("stap-ls/runStatus", exit_params(run))
        with self._lock:
            self.runs[run.id] = run
        return {"runId": run.id}

    def stop(self, args: list) -> dict:
        a = _first_arg(args)
        run = self.runs.get(a.get("runId"))
        if run is None:
            raise CommandError(f"no run {a.get('runId')!r}")
        return {"runId": a.get("runId"), "action": run.stop() or "none"}

    def stop_all(self) -> None:
        for run in list(self.runs.values()):
            if not run.finished:
                try:
                    run.stop()
                    run.stop()
                    run.stop()
                except Exception:
                    pass


def list_probes(args: list, settings: Settings) -> list[str]:
    a = _first_arg(args)
    pattern = a.get("pattern")
    if not isinstance(pattern, str) or not pattern:
        raise CommandError("stap-ls.listProbes needs {pattern}")
    from stap_ls.options import parse_stap_args
    from stap_ls.targets.listing import main_listing
    flag = "-L" if a.get("verbose") else "-l"
    opts, _ = parse_stap_args(settings.stap_args() + [flag, pattern])
    out, err = io.StringIO(), io.StringIO()
    main_listing(opts, out, err)
    lines = [ln for ln in out.getvalue().splitlines() if ln]
    if not lines and err.getvalue().strip():
        raise CommandError(err.getvalue().strip())
    return lines


def translated_c(args: list, settings: Settings, text_of: Callable[[str], str | None]) -> dict:
    a = _first_arg(args)
    uri = a.get("uri")
    if not isinstance(uri, str):
        raise CommandError("stap-ls.translatedC needs {uri}")
    from stap_ls.backends.runs import translated_c as tc
    req = RunRequest(script_path=path_of(uri), script_text=text_of(uri),
                     stap_args=settings.stap_args(), script_args=list(settings.script_args),
                     stap_program=settings.stap_path)
    text, diags = tc(req)
    if text is None:
        raise CommandError("pass 3 failed: " + ("; ".join(d.message for d in diags[:3])
                                                or "no output"))
    return {"text": text}


def doctor(settings: Settings) -> dict:
    from stap_ls.backends.doctor import diagnose
    return {"text": diagnose(settings.kernel_release,
                             stap=settings.stap_path or "stap").render()}


def uri_of(path: str) -> str:
    from pathlib import Path
    try:
        return Path(os.path.abspath(path)).as_uri()
    except ValueError:
        return "file://" + path
