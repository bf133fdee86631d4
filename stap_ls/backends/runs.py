"""The engine-neutral run API shared by the CLI, the language server and engines.

A :class:`RunRequest` says what to run (a script path, or unsaved text with the
name it should be reported under), with which stap options and script
arguments, up to which pass, and on which engine.  :func:`start_run` picks the
engine and returns a :class:`Run` that works on a background thread and
reports through :class:`RunEvents` callbacks, called from that thread in order:

``on_progress(pass_no, state, seconds)``
    ``state`` is ``"start"`` (seconds since the run began), ``"end"``,
    ``"failed"`` (seconds the pass took, when known) or ``"running"`` (pass 5:
    the script is live).
``on_output(stream, line)``
    ``stream`` is ``"stdout"`` (the script's output, or the pass-1/2 tree,
    pass-3 C, pass-4 module path with ``-p``) or ``"stderr"``.
``on_diagnostic(diagnostic)``
    a :class:`~stap_ls.text.Diagnostic` placed in the script.
``on_exit(code)``
    the exit status (128+N when killed by signal N); :attr:`Run.result` is
    complete before this is called.

:meth:`Run.stop` escalates SIGINT -> SIGTERM -> SIGKILL.  The language server
maps these to ``stap-ls/output`` ``{runId, stream, text}`` and
``stap-ls/runStatus`` ``{runId, state, pass, message, exitCode}`` with
:func:`status_message`; ``Run.id`` is the ``runId``.

An engine is a callable ``(RunRequest, RunEvents) -> Run`` registered in
:data:`ENGINES`; the BPF engine registers itself from ``stap_ls.backends.bpf``.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from stap_ls.options import StapOptions, UsageError, parse_stap_args
from stap_ls.text import Diagnostic

PASS_NAMES = {1: "parse", 2: "elaborate", 3: "translate", 4: "compile", 5: "run"}

_ids = itertools.count(1)


@dataclass
class RunRequest:
    """What to run.  ``stap_args`` are stap's options (no script file)."""

    script_path: str | None = None
    #: the document text; when set it is what runs (written to a private file)
    script_text: str | None = None
    stap_args: list[str] = field(default_factory=list)
    script_args: list[str] = field(default_factory=list)
    #: overrides any -p in stap_args
    last_pass: int | None = None
    #: "stap", "bpf" or None (from --engine, else chosen)
    engine: str | None = None
    #: run as ``sudo -n stap ...`` (never waits for a password)
    sudo: bool = False
    stap_program: str = "stap"
    cwd: str | None = None
    env: dict[str, str] | None = None

    @classmethod
    def from_command_line(cls, argv: list[str]) -> tuple["RunRequest", list[str]]:
        """``[stap options] FILE [ARGS]`` as ``stap-ls run`` takes it.

        Raises :class:`~stap_ls.options.UsageError` for a bad command line.
        """
        opts, warnings = parse_stap_args(argv)
        if opts.list_probes is not None or opts.list_probes_vars is not None:
            raise UsageError("-l/-L list probes; use 'stap-ls check' for that")
        n_positional = len(opts.script_args) + (1 if opts.script_file else 0)
        stap_args = argv[:len(argv) - n_positional] if n_positional else list(argv)
        if stap_args and stap_args[-1] == "--":
            stap_args = stap_args[:-1]
        if opts.script_file is None and opts.script_text is None:
            raise UsageError("no script given (FILE or -e SCRIPT)")
        req = cls(script_path=opts.script_file if opts.script_file != "-" else None,
                  stap_args=stap_args, script_args=list(opts.script_args),
                  engine=opts.engine)
        if opts.script_file == "-":
            raise UsageError("reading the script from stdin is not supported by run; "
                             "give a FILE or -e SCRIPT")
        del warnings  # options check ignores are all handed on to stap here
        return req, []

    def options(self) -> StapOptions:
        """The parsed stap options (raises UsageError for bad ones)."""
        opts, _ = parse_stap_args(list(self.stap_args))
        if self.last_pass is not None:
            opts.last_pass = self.last_pass
        return opts


@dataclass
class PassResult:
    """What ``-p N`` produced: a document to show, or the module path."""

    pass_no: int
    #: "tree" (passes 1-2), "c" (pass 3), "module" (pass 4)
    kind: str
    text: str
    #: the editor language of ``text``: "systemtap", "c" or "plaintext"
    language: str
    module_path: str | None = None


@dataclass
class RunResult:
    exit_code: int | None = None
    #: the last pass that completed
    passes_done: int = 0
    failed_pass: int | None = None
    pass_seconds: dict[int, float] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    pass_result: PassResult | None = None
    #: doctor finding names that explain a failure ("build-tree", "debuginfo", ...)
    environment: list[str] = field(default_factory=list)
    stopped: bool = False
    seconds: float = 0.0
    command: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def _ignore(*_args: object) -> None:
    return None


@dataclass
class RunEvents:
    on_progress: Callable[[int, str, float | None], None] = _ignore
    on_output: Callable[[str, str], None] = _ignore
    on_diagnostic: Callable[[Diagnostic], None] = _ignore
    on_exit: Callable[[int], None] = _ignore


class Run:
    """A run in progress.  Engines subclass it and call the ``_report`` helpers."""

    def __init__(self, request: RunRequest, events: RunEvents) -> None:
        self.id = f"run-{next(_ids)}"
        self.request = request
        self.events = events
        self.result = RunResult()
        self._finished = threading.Event()

    def stop(self) -> str:
        """Ask the run to stop; each call escalates.  Returns what was done."""
        raise NotImplementedError

    def wait(self, timeout: float | None = None) -> RunResult | None:
        """Block until the run has exited; the result, or None on timeout."""
        return self.result if self._finished.wait(timeout) else None

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def _finish(self, code: int) -> None:
        self.result.exit_code = code
        self._finished.set()
        try:
            self.events.on_exit(code)
        except Exception:  # a client callback must not break the engine
            pass


class FailedRun(Run):
    """A run that could not start: one diagnostic, exit status 2."""

    def __init__(self, request: RunRequest, events: RunEvents, diagnostic: Diagnostic,
                 environment: list[str] | None = None) -> None:
        super().__init__(request, events)
        self.result.diagnostics.append(diagnostic)
        self.result.environment = list(environment or [])
        events.on_diagnostic(diagnostic)
        self._finish(2)

    def stop(self) -> str:
        return ""


Engine = Callable[[RunRequest, RunEvents], Run]
ENGINES: dict[str, Engine] = {}
#: why an engine could not be loaded
ENGINE_ERRORS: dict[str, str] = {}


def register_engine(name: str, engine: Engine) -> None:
    ENGINES[name] = engine


def _load_engines() -> None:
    if "stap" not in ENGINES:
        from stap_ls.backends.stap_driver import start_stap_run
        register_engine("stap", start_stap_run)
    if "bpf" not in ENGINES:
        try:  # the BPF engine registers itself when it is there
            import stap_ls.backends.bpf  # noqa: F401
        except Exception as e:  # a broken engine must not break the others
            ENGINE_ERRORS["bpf"] = f"{type(e).__name__}: {e}"


def choose_engine(request: RunRequest) -> str:
    """``--engine`` when given; otherwise stap, unless modules cannot load and
    the script is meant to run (pass 5) and the BPF engine is available."""
    if request.engine:
        return request.engine
    try:
        opts = request.options()
    except UsageError:
        return "stap"
    if opts.last_pass < 5 or opts.runtime == "bpf":
        return "bpf" if opts.runtime == "bpf" and "bpf" in ENGINES else "stap"
    from stap_ls.backends.doctor import modules_loadable
    if not modules_loadable() and "bpf" in ENGINES:
        return "bpf"
    return "stap"


def start_run(request: RunRequest, events: RunEvents | None = None) -> Run:
    """Start ``request`` on its engine; never raises for user errors."""
    from stap_ls.text import Severity
    events = events or RunEvents()
    _load_engines()
    name = choose_engine(request)
    engine = ENGINES.get(name)
    if engine is None:
        diag = Diagnostic(Severity.ERROR,
                          f"the {name!r} run engine is not available"
                          + (f" ({ENGINE_ERRORS[name]})" if name in ENGINE_ERRORS else "")
                          + f"; engines here: {', '.join(sorted(ENGINES)) or 'none'}",
                          None, code="run-engine", kind="run")
        return FailedRun(request, events, diag, ["engine"])
    return engine(request, events)


def run_to_completion(request: RunRequest, events: RunEvents | None = None,
                      timeout: float | None = None) -> RunResult:
    """Start a run and wait for it (stopping it when ``timeout`` passes)."""
    run = start_run(request, events)
    if run.wait(timeout) is None:
        run.stop()
        if run.wait(10.0) is None:
            run.stop()
            run.stop()
            run.wait()
    return run.result


def translated_c(request: RunRequest, timeout: float | None = 120.0) -> tuple[str | None,
                                                                             list[Diagnostic]]:
    """The pass-3 C of a script (``stap -p3``), or None and the diagnostics."""
    req = RunRequest(**{**request.__dict__, "last_pass": 3, "engine": "stap"})
    result = run_to_completion(req, timeout=timeout)
    if result.ok and result.pass_result is not None:
        return result.pass_result.text, result.diagnostics
    return None, result.diagnostics


def status_message(pass_no: int, state: str, seconds: float | None) -> str:
    """Human text for a progress event: ``pass 2 (elaborate) done in 0.85 s``."""
    name = PASS_NAMES.get(pass_no, "?")
    if state == "start":
        return f"pass {pass_no} ({name}) started"
    if state == "running":
        return f"pass {pass_no} ({name}): the script is running (Ctrl-C or stop to end it)"
    took = f" in {seconds:.2f} s" if seconds is not None else ""
    if state == "end":
        return f"pass {pass_no} ({name}) done{took}"
    return f"pass {pass_no} ({name}) failed{took}"


def status_params(run_id: str, pass_no: int, state: str, seconds: float | None) -> dict:
    """The ``stap-ls/runStatus`` payload for a progress event (plain data)."""
    return {"runId": run_id, "state": "running" if state == "running" else "pass",
            "pass": pass_no, "message": status_message(pass_no, state, seconds)}


def exit_params(run: Run) -> dict:
    """The final ``stap-ls/runStatus`` payload (``state: "exited"``)."""
    r = run.result
    msg = "stopped" if r.stopped else ("finished" if r.ok else
                                       f"failed in pass {r.failed_pass}" if r.failed_pass
                                       else "failed")
    return {"runId": run.id, "state": "exited", "exitCode": r.exit_code,
            "message": f"{msg} (exit status {r.exit_code}, {r.seconds:.2f} s)"}


def output_params(run_id: str, stream: str, line: str) -> dict:
    """The ``stap-ls/output`` payload for one line."""
    return {"runId": run_id, "stream": stream, "text": line + "\n"}
