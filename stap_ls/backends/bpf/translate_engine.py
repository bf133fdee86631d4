"""The ``bpf`` run engine: passes 1-5 of a script behind :mod:`stap_ls.backends.runs`.

:func:`start_bpf_run` takes the same :class:`~stap_ls.backends.runs.RunRequest`
as the stap engine and reports through the same callbacks, on its own thread:

1. parse (:func:`stap_ls.sema.frontend.run_frontend`), ``-p1`` prints the tree;
2. elaborate (:func:`stap_ls.sema.elaborate.elaborate` with the
   :class:`~stap_ls.targets.model.TargetModel` of the options), ``-p2`` prints
   the program as ``stap -p2`` does;
3. translate to the IR (:mod:`translate`) and generate BPF C; ``-p3`` prints it;
4. compile with clang; ``-p4`` prints the object's path (kept);
   ``-T SECONDS`` stops pass 5 after that long, as SIGINT would;
5. check privileges (root, or CAP_BPF and CAP_PERFMON), then
   :func:`runtime.run_program` compiles, loads and attaches again (pass 4's
   progress covers that) and runs the script until ``exit()``, the end of the
   ``-c`` command, a run-time error, or :meth:`BpfRun.stop`.

Diagnostics go to ``on_diagnostic`` and, formatted, to the ``stderr`` stream
(nothing else prints them for this engine); the script's output streams to
``stdout``.  The exit status is 0 for a run that ended normally or was stopped,
1 for an error, 2 when the run could not start (bad options, unreadable
script), as :class:`~stap_ls.backends.runs.FailedRun`.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
import time

from stap_ls.backends.runs import PassResult, Run, RunEvents, RunRequest
from stap_ls.options import UsageError
from stap_ls.text import Diagnostic, Related, Severity, SourceFile

CAP_PERFMON, CAP_BPF, CAP_SYS_ADMIN = 38, 39, 21
#: diagnostics `stap-ls run` prints itself (the stap engine's own messages)
_SHOWN_BY_CLIENTS = ("run-start", "run-engine")


def bpf_privileges() -> tuple[bool, str]:
    """Whether this process may load and attach BPF programs, and why not."""
    try:
        with open("/proc/self/status") as f:
            caps = next((int(ln.split()[1], 16) for ln in f if ln.startswith("CapEff:")), 0)
    except OSError:
        caps = 0
    if os.geteuid() == 0 and caps & (1 << CAP_SYS_ADMIN):
        return True, "root"
    have = {n: bool(caps & (1 << b)) for n, b in (("CAP_BPF", CAP_BPF), ("CAP_PERFMON", CAP_PERFMON))}
    if all(have.values()) or caps & (1 << CAP_SYS_ADMIN):
        return True, "capabilities"
    missing = [n for n, ok in have.items() if not ok]
    return False, ("the bpf engine loads BPF programs and attaches them to tracepoints, uprobes "
                   "and perf events, which needs root or the capabilities CAP_BPF and CAP_PERFMON "
                   f"(missing here: {', '.join(missing)}); run it as root, with 'sudo', or give "
                   "the Python interpreter those capabilities (setcap cap_bpf,cap_perfmon+ep)")


def _time_limit(raw: list[str]) -> float:
    """stap's ``-T SECONDS`` (kept unparsed in ``StapOptions.raw``); 0 = none."""
    for i, a in enumerate(raw):
        val = raw[i + 1] if a == "-T" and i + 1 < len(raw) else a[2:] if a.startswith("-T") else ""
        try:
            if val and float(val) > 0:
                return float(val)
        except ValueError:
            continue
    return 0.0


def _strlen(defines: list[str]) -> int:
    for d in defines:
        m = re.fullmatch(r"MAXSTRINGLEN=(\d+)", d)
        if m:
            n = max(16, int(m.group(1)))
            return 1 << (n - 1).bit_length()
    return 128


def place_codegen_refusals(program, diags: list[Diagnostic], user_files: set[str],
                           copts) -> list[Diagnostic]:
    """Code-generation refusals inside tapset code, re-placed on the user's probe
    point of the probe they come from (the tapset place as related information)."""
    from stap_ls.backends.bpf import ir
    from stap_ls.backends.bpf.codegen import generate
    from stap_ls.backends.bpf.translate import SUGGEST

    def tapset(d: Diagnostic) -> bool:
        return d.span is not None and d.span.source.name not in user_files

    if not any(tapset(d) for d in diags):
        return diags
    out = [d for d in diags if not tapset(d)]
    for p in program.probes:
        if not p.in_kernel or p.span is None or tapset(Diagnostic(Severity.ERROR, "", p.span)):
            continue
        _gen, ds = generate(ir.Program(program.globals, [p]), copts)
        inner = [d for d in ds if tapset(d)]
        if inner:
            what = inner[0].message.removeprefix("the bpf engine does not support ").removesuffix(SUGGEST)
            user_text = p.span.source.text[p.span.start:p.span.end]
            out.append(Diagnostic(
                Severity.ERROR, f"the bpf engine does not support the probe point {user_text} as its "
                f"tapset aliases expand it ({p.pp}): they use {what}" + SUGGEST, p.span,
                code="bpf-unsupported", kind="semantic error",
                related=tuple(Related(d.span, d.message.removesuffix(SUGGEST)) for d in inner[:8])))
    return out or diags


class BpfRun(Run):
    """One script on the BPF engine (see the module docstring)."""

    def __init__(self, request: RunRequest, events: RunEvents) -> None:
        super().__init__(request, events)
        self._t0 = time.monotonic()
        self._handle = None
        self._stops = 0
        self._stop_requested = threading.Event()
        self.ir_program = None
        self.c_source: str | None = None
        self._thread = threading.Thread(target=self._body, name="stap-ls-bpf", daemon=True)
        self._thread.start()

    # -- helpers -------------------------------------------------------------------
    def _diag(self, d: Diagnostic) -> None:
        self.result.diagnostics.append(d)
        try:
            self.events.on_diagnostic(d)
            if d.code in _SHOWN_BY_CLIENTS:
                return
            for line in d.format().splitlines():
                self.events.on_output("stderr", line)
        except Exception:
            pass

    def _start(self, n: int) -> float:
        t = time.monotonic()
        self.events.on_progress(n, "running" if n == 5 else "start", t - self._t0)
        return t

    def _end(self, n: int, since: float) -> None:
        s = round(time.monotonic() - since, 3)
        self.result.pass_seconds[n] = s
        self.result.passes_done = n
        self.events.on_progress(n, "end", s)

    def _failed(self, n: int, since: float) -> int:
        s = round(time.monotonic() - since, 3)
        self.result.failed_pass = n
        self.result.pass_seconds[n] = s
        self.events.on_progress(n, "failed", s)
        return 1

    def _show(self, n: int, kind: str, text: str, language: str,
              module_path: str | None = None) -> int:
        for line in text.splitlines():
            self.events.on_output("stdout", line)
        self.result.pass_result = PassResult(n, kind, text, language, module_path)
        return 0

    def _source(self, opts) -> SourceFile:
        req = self.request
        if req.script_text is not None:
            return SourceFile(req.script_path or "script.stp", req.script_text)
        if req.script_path is not None:
            path = os.path.join(req.cwd or "", req.script_path)
            with open(path, encoding="utf-8", errors="replace") as f:
                return SourceFile(req.script_path, f.read())
        if opts.script_text is not None:
            return SourceFile("<input>", opts.script_text)
        raise UsageError("no script given (FILE or -e SCRIPT)")

    # -- the passes ----------------------------------------------------------------
    def _body(self) -> None:
        code = 1
        try:
            code = self._passes()
        except Exception as e:  # an engine bug: report it, never hang the client
            import traceback
            self._diag(Diagnostic(Severity.ERROR, f"internal error in the bpf engine: "
                                  f"{type(e).__name__}: {e}\n{traceback.format_exc()}", None,
                                  code="bpf-internal", kind="run"))
        self.result.seconds = time.monotonic() - self._t0
        self.result.stopped = self._stops > 0
        self._finish(code)

    def _passes(self) -> int:
        from stap_ls.sema.frontend import run_frontend
        req = self.request
        t = self._start(1)
        try:
            opts = req.options()
            opts.script_args = list(req.script_args)
            source = self._source(opts)
        except UsageError as e:  # could not start: exit status 2, as runs.FailedRun
            self._diag(Diagnostic(Severity.ERROR, f"bad stap options: {e}", None,
                                  code="run-start", kind="run"))
            self._failed(1, t)
            return 2
        except OSError as e:
            self._diag(Diagnostic(Severity.ERROR, f"cannot read {req.script_path}: {e.strerror}",
                                  None, code="run-start", kind="run"))
            self._failed(1, t)
            return 2
        last = opts.last_pass
        fe = run_frontend(opts, [source])
        shown = lambda d: d.severity == Severity.ERROR or not opts.suppress_warnings  # noqa: E731
        for d in fe.library_diagnostics:
            if d.severity == Severity.ERROR:
                self._diag(d)
        for r in fe.user:
            for d in r.diagnostics:
                if shown(d):
                    self._diag(d)
        if fe.user_errors or any(r.empty for r in fe.user):
            if any(r.empty for r in fe.user):
                self._diag(Diagnostic(Severity.ERROR, f"input file '{source.name}' is empty",
                                      None, code="run-start", kind="parse error"))
            return self._failed(1, t)
        self._end(1, t)
        if last == 1:
            from stap_ls.syntax.printer import print_file
            text = "# parse tree dump\n" + "".join(print_file(r.file) + "\n" for r in fe.user)
            return self._show(1, "tree", text, "systemtap")
        if self._stop_requested.is_set():
            return 0

        t = self._start(2)
        from stap_ls.sema.elaborate import elaborate
        try:
            from stap_ls.targets.model import TargetModel
            model = TargetModel(opts)
        except Exception:
            model = None
        try:
            res = elaborate(fe, model)
        except Exception as e:  # a pass-2 bug: name the pass, not this engine
            import traceback
            self._diag(Diagnostic(Severity.ERROR, "internal error in pass 2 (elaborate): "
                                  f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=-3)}",
                                  None, code="sema-internal", kind="run"))
            return self._failed(2, t)
        for d in res.diagnostics:
            if shown(d):
                self._diag(d)
        if res.errors:
            return self._failed(2, t)
        self._end(2, t)
        if last == 2:
            from stap_ls.sema.p2print import print_program
            return self._show(2, "tree", print_program(res.program, verbose=opts.verbose > 0),
                              "systemtap")
        if self._stop_requested.is_set():
            return 0

        t = self._start(3)
        from stap_ls.backends.bpf.codegen import CodegenOptions, generate
        from stap_ls.backends.bpf.runtime import kernel_hz
        from stap_ls.backends.bpf.translate import translate
        program, diags = translate(res.program, {r.file.name for r in fe.user})
        for d in diags:
            self._diag(d)
        if program is None:
            return self._failed(3, t)
        self.ir_program = program
        strlen = _strlen(opts.defines)
        copts = CodegenOptions(strlen=strlen, nr_cpus=max(1, os.cpu_count() or 1), hz=kernel_hz())
        gen, diags = generate(program, copts)
        if gen is None:
            diags = place_codegen_refusals(program, diags, {r.file.name for r in fe.user}, copts)
        for d in diags:
            self._diag(d)
        if gen is None:
            return self._failed(3, t)
        self.c_source = gen.source
        self._end(3, t)
        if last == 3:
            return self._show(3, "c", gen.source, "c")

        if last == 4:
            from stap_ls.backends.bpf.compile import compile_c
            t = self._start(4)
            keep = tempfile.mkdtemp(prefix="stap-ls-bpf-")
            obj, diags = compile_c(gen, keep)
            for d in diags:
                self._diag(d)
            if obj is None:
                return self._failed(4, t)
            self._end(4, t)
            return self._show(4, "module", obj.path + "\n", "plaintext", obj.path)
        return self._run(program, opts, strlen)

    def _run(self, program, opts, strlen: int) -> int:
        from stap_ls.backends.bpf.runtime import RunOptions, run_program
        t = self._start(4)
        ok, why = bpf_privileges()
        if not ok:
            self._diag(Diagnostic(Severity.ERROR, why, None, code="run-start", kind="run"))
            if os.geteuid() != 0:
                self.result.environment.append("privileges")
            return self._failed(4, t)
        target = 0
        if opts.target_pid is not None:
            try:
                target = int(opts.target_pid)
            except ValueError:
                self._diag(Diagnostic(Severity.ERROR, f"-x needs a process id, not {opts.target_pid!r}",
                                      None, code="run-start", kind="run"))
                return self._failed(4, t)
        ropts = RunOptions(strlen=strlen, target_pid=target, command=opts.command)
        if self._stop_requested.is_set():
            return 0
        h = run_program(program, ropts, self.events.on_output, lambda _c: None, self._diag)
        self._handle = h
        if self._stop_requested.is_set():
            h.stop()
        while not h.attached.wait(0.05):
            pass
        if h.finished and h.exit_code not in (0, None) and not h.stats.t_attached:
            h.wait()
            return self._failed(4, t)
        self._end(4, t)
        self._start(5)
        limit = _time_limit(opts.raw)
        deadline = time.monotonic() + limit if limit else None
        code = None
        while code is None:
            code = h.wait(0.1)
            if code is None and deadline is not None and time.monotonic() >= deadline:
                h.stop()  # -T SECONDS: stop as SIGINT would (end probes run)
                deadline = None
        self.result.pass_seconds[5] = round(time.monotonic() - (h.stats.t_attached or t), 3)
        if code == 0:
            self.result.passes_done = 5
        else:
            self.result.failed_pass = 5
        self.stats = h.stats
        return code

    # -- control ---------------------------------------------------------------------
    def stop(self) -> str:
        """Stop like SIGINT to stap: probes detach, ``end`` runs, output is printed."""
        if self.finished:
            return ""
        self._stops += 1
        self._stop_requested.set()
        if self._handle is not None:
            self._handle.stop()
        return "SIGINT" if self._stops == 1 else ""


def start_bpf_run(request: RunRequest, events: RunEvents) -> Run:
    """The bpf engine's entry point (registered as ``"bpf"`` in :mod:`runs`).

    A request that did not ask for an engine but names its own stap program
    (``RunRequest.stap_program``) means the stap engine: it goes there, so
    choosing bpf by default never overrides an explicit stap."""
    if request.engine is None and request.stap_program != "stap":
        from stap_ls.backends.stap_driver import start_stap_run
        return start_stap_run(request, events)
    return BpfRun(request, events)


__all__ = ["start_bpf_run", "BpfRun", "bpf_privileges"]
