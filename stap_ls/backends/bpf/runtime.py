"""Load, attach and run a compiled IR program; stap-exact output.

:func:`run_program` is the engine's entry point::

    handle = run_program(program, RunOptions(...), on_output, on_exit, on_diagnostic)
    handle.stop()          # like SIGINT to stap: end probes run, output printed
    handle.wait(timeout)   # the exit code, or None

Callbacks come from the run's thread, in order: ``on_output(stream, line)``
(``"stdout"``/``"stderr"``, one line without its newline), ``on_diagnostic``
(a :class:`stap_ls.text.Diagnostic` for a refused construct, a compile or
verifier failure), then ``on_exit(code)`` once.

The sequence is stap's: generate and compile, load (a verifier rejection is
explained by :func:`compile.explain_verifier`), initialise globals, run the
``begin`` probes (user space, :mod:`interp`), attach every kernel-side probe,
start the ``-c`` command (held on a pipe until the probes are live, so
``target()`` is its pid), then poll the ring buffer.  ``exit()`` (a ring-buffer
record), :meth:`RunHandle.stop`, the end of the ``-c`` command or a run-time
error end the run: probes are detached first, the ring buffer is drained, the
``end`` probes run, output is flushed.

Everything attached is owned by file descriptors of this process (BPF links,
perf events, the object's maps and programs), so a process killed with
SIGKILL leaves nothing attached.
"""

from __future__ import annotations

import ctypes
import gzip
import os
import re
import signal
import struct
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Callable

from stap_ls.backends.bpf import format as F
from stap_ls.backends.bpf import ir
from stap_ls.backends.bpf.codegen import (EV_ERROR, EV_EXIT, EV_HIST, CodegenOptions, Generated,
                                          generate)
from stap_ls.backends.bpf.compile import compile_c, explain_verifier
from stap_ls.backends.bpf.interp import Context, Interpreter, StapError
from stap_ls.backends.bpf.libbpf import BpfError, RingBuffer, lib, uprobe_opts
from stap_ls.backends.bpf.store import MapStore
from stap_ls.text import Diagnostic, Severity

#: declared C types of tracepoint fields: (size, signed)
C_TYPES = {"char": (1, True), "unsigned char": (1, False), "short": (2, True),
           "unsigned short": (2, False), "int": (4, True), "unsigned int": (4, False),
           "long": (8, True), "unsigned long": (8, False), "long long": (8, True),
           "unsigned long long": (8, False), "size_t": (8, False), "ssize_t": (8, True),
           "pid_t": (4, True), "uid_t": (4, False), "gid_t": (4, False), "umode_t": (2, False),
           "u8": (1, False), "u16": (2, False), "u32": (4, False), "u64": (8, False),
           "s8": (1, True), "s16": (2, True), "s32": (4, True), "s64": (8, True),
           "bool": (1, False), "loff_t": (8, True), "off_t": (8, True)}
TRACEFS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


@dataclass
class RunOptions:
    strlen: int = 128
    #: -x PID: target() for the run
    target_pid: int = 0
    #: -c CMD: run through /bin/sh once the probes are live; the run ends with it
    command: str | None = None
    #: keep the generated C and object here (for -p3/-p4 style inspection)
    keep_dir: str | None = None
    poll_ms: int = 50
    hz: int = 0


@dataclass
class RunStats:
    t_start: float = 0.0
    t_attached: float = 0.0
    t_first_event: float = 0.0
    events: int = 0
    lost: int = 0
    timings: dict[str, float] = field(default_factory=dict)


def kernel_hz() -> int:
    try:
        with gzip.open("/proc/config.gz", "rt") as f:
            for line in f:
                if line.startswith("CONFIG_HZ="):
                    return int(line.split("=")[1])
    except OSError:
        pass
    return 250


def tracefs_root() -> str | None:
    for root in TRACEFS:
        if os.path.isdir(os.path.join(root, "events")):
            return root
    return None


def tracepoint_fields(group: str, name: str) -> list[ir.TraceField] | None:
    """Fields of a tracepoint from its tracefs ``format`` file (None if absent)."""
    root = tracefs_root()
    if root is None:
        return None
    try:
        text = open(os.path.join(root, "events", group, name, "format")).read()
    except OSError:
        return None
    fields = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("field:"):
            continue
        parts = dict(p.strip().split(":", 1) for p in line.split(";") if ":" in p)
        decl = parts["field"].strip()
        char_array = "[" in decl and not decl.startswith("__data_loc") and "char" in decl.split()[0:3]
        fname = re.sub(r"\[[^\]]*\]", "", decl).split()[-1]
        size, signed = int(parts["size"]), parts.get("signed", "0").strip() == "1"
        ctype = " ".join(decl.split("[")[0].split()[:-1]).replace("const ", "")
        if "*" not in ctype and "[" not in decl and ctype in C_TYPES:
            # syscall records widen every argument to 8 bytes; stap reads the declared type
            size, signed = C_TYPES[ctype]
        fields.append(ir.TraceField(fname, int(parts["offset"]), size, signed=signed,
                                    data_loc=decl.startswith("__data_loc"), char_array=char_array))
    return fields


def usdt_provider(path: str, name: str) -> str | None:
    """The provider of an SDT marker (from targets' reading of .note.stapsdt)."""
    from stap_ls.targets.elfinfo import read_elf_facts
    try:
        facts = read_elf_facts(path)
    except Exception:  # not an ELF file, unreadable, malformed notes
        return None
    for m in facts.marks:
        if m.name == name:
            return m.provider
    return None


class _Lines:
    """Turns output bytes into on_output(stream, line) calls."""

    def __init__(self, on_output: Callable[[str, str], None]) -> None:
        self.on_output = on_output
        self.buf = {"stdout": b"", "stderr": b""}

    def write(self, stream: str, data: bytes) -> None:
        buf = self.buf[stream] + data
        *lines, rest = buf.split(b"\n")
        self.buf[stream] = rest
        for ln in lines:
            self.on_output(stream, ln.decode("utf-8", "surrogateescape"))

    def flush(self) -> None:
        for stream, rest in self.buf.items():
            if rest:
                self.on_output(stream, rest.decode("utf-8", "surrogateescape"))
            self.buf[stream] = b""


class RunHandle:
    """A run in progress on its own thread."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._done = threading.Event()
        self.attached = threading.Event()
        self.exit_code: int | None = None
        self.diagnostics: list[Diagnostic] = []
        self.stats = RunStats()
        self.generated: Generated | None = None
        self.child_pid = 0
        self.thread: threading.Thread | None = None

    def stop(self) -> None:
        """Stop like SIGINT to stap: detach, run end probes, print, exit 0."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> int | None:
        self._done.wait(timeout)
        return self.exit_code

    @property
    def finished(self) -> bool:
        return self._done.is_set()


class _Run:
    def __init__(self, program: ir.Program, opts: RunOptions, handle: RunHandle,
                 on_output, on_exit, on_diagnostic) -> None:
        self.program = program
        self.opts = opts
        self.h = handle
        self.out = _Lines(on_output)
        self.on_exit = on_exit
        self.on_diagnostic = on_diagnostic
        self.exit_requested = False
        self.error = False
        self.links: list[int] = []
        self.obj = 0
        self.rb: RingBuffer | None = None
        self.compiled = None

    def diag(self, d: Diagnostic) -> None:
        self.h.diagnostics.append(d)
        self.on_diagnostic(d)

    def fail(self, message: str, code: str = "bpf-run") -> int:
        self.diag(Diagnostic(Severity.ERROR, message, None, code=code, kind="run"))
        return 1

    # -- main
    def main(self) -> int:
        st = self.h.stats
        st.t_start = time.monotonic()
        # resolve what the IR left open, on copies (the caller's IR is not changed)
        probes = []
        for p in self.program.probes:
            pt = p.point
            if isinstance(pt, ir.Tracepoint) and pt.fields is None:
                fields = tracepoint_fields(pt.group, pt.name)
                if fields is None:
                    root = tracefs_root()
                    return self.fail(f'no tracepoint {pt.group}:{pt.name} in kernel.trace("{pt.group}:{pt.name}")'
                                     + ("" if root else "; tracefs is not mounted "
                                        "(mount -t tracefs nodev /sys/kernel/tracing)"))
                p = replace(p, point=replace(pt, fields=fields))
            if isinstance(pt, (ir.Uprobe, ir.Usdt)) and not os.path.exists(pt.path):
                return self.fail(f"cannot find executable '{pt.path}' for {p.pp or 'process probe'}")
            if isinstance(pt, ir.Usdt) and not pt.provider:
                prov = usdt_provider(pt.path, pt.name)
                if prov is None:
                    return self.fail(f"no SDT marker '{pt.name}' in {pt.path}")
                p = replace(p, point=replace(pt, provider=prov))
            probes.append(p)
        self.program = replace(self.program, probes=probes)
        try:
            L = lib()
        except BpfError as e:
            return self.fail(str(e), "bpf-libbpf")
        nr_cpus = L.c.libbpf_num_possible_cpus()
        copts = CodegenOptions(strlen=self.opts.strlen, nr_cpus=max(1, nr_cpus),
                               hz=self.opts.hz or kernel_hz())
        gen, diags = generate(self.program, copts)
        for d in diags:
            self.diag(d)
        if gen is None:
            return 1
        self.h.generated = gen
        t = time.monotonic()
        self.compiled, diags = compile_c(gen, self.opts.keep_dir)
        st.timings["compile"] = time.monotonic() - t
        for d in diags:
            self.diag(d)
        if self.compiled is None:
            return 1
        t = time.monotonic()
        L.start_log()
        obj = L.c.bpf_object__open_file(self.compiled.path.encode(), None)
        open_log = L.take_log()
        if not obj:
            errs = [ln.strip() for ln in open_log.splitlines() if ln.strip()]
            return self.fail(f"libbpf cannot open the object: {os.strerror(ctypes.get_errno())}"
                             + (f" ({errs[-1]})" if errs else ""))
        self.obj = obj
        L.start_log()
        r = L.c.bpf_object__load(obj)
        log = L.take_log()
        if r < 0:
            self.diag(explain_verifier(log, gen))
            return 1
        st.timings["load"] = time.monotonic() - t
        fds = {}
        names = ["stp_glob", "stp_rb"] + [gl.map_name for gl in gen.layouts.globals.values() if gl.map_name]
        for name in names:
            m = L.c.bpf_object__find_map_by_name(obj, name.encode())
            fds[name] = L.c.bpf_map__fd(m) if m else -1
        store = MapStore(gen.layouts, fds, max(1, nr_cpus))
        self.store = store
        self.init_globals(store, gen)
        self.rb = RingBuffer(fds["stp_rb"], self.on_record)
        self.interp = Interpreter(self.program, store,
                                  Context(lambda b: self.out.write("stdout", b), self.request_exit,
                                          self.opts.target_pid))
        # -c: fork now, hold the child until the probes are live
        go_w = -1
        if self.opts.command:
            go_r, go_w = os.pipe()
            pid = os.fork()
            if pid == 0:  # child: wait for the go, then become the command
                try:
                    os.close(go_w)
                    os.read(go_r, 1)
                    os.close(go_r)
                    os.execv("/bin/sh", ["sh", "-c", "exec " + self.opts.command])
                finally:
                    os._exit(127)
            os.close(go_r)
            self.h.child_pid = pid
            store.set_field("__target", pid)
            self.interp.ctx.target = pid
        try:
            self.run_user(ir.Begin)
            if not (self.exit_requested or self.error):
                t = time.monotonic()
                self.attach_all(gen)
                st.timings["attach"] = time.monotonic() - t
            st.t_attached = time.monotonic()
            self.h.attached.set()
            if go_w >= 0:
                os.write(go_w, b"g")
                os.close(go_w)
                go_w = -1
            self.poll()
        except BpfError as e:
            self.fail(f"cannot attach probes: {e}" + (f" ({e.log})" if e.log else ""), "bpf-attach")
            self.error = True
        finally:
            if go_w >= 0:
                os.close(go_w)
            self.h.attached.set()
        self.shutdown()
        return 1 if self.error else 0

    def init_globals(self, store: MapStore, gen: Generated) -> None:
        store.set_field("__target", self.opts.target_pid)
        store.set_field("__realtime_off", time.clock_gettime_ns(time.CLOCK_REALTIME)
                        - time.clock_gettime_ns(time.CLOCK_MONOTONIC))
        for g in self.program.globals:
            if g.init is not None and not g.is_array and g.type is not ir.Type.STATS:
                store.set_scalar(g.name, g.init)
        for kp in gen.kernel_probes:
            if kp.timer_field:
                assert isinstance(kp.probe.point, ir.Timer)
                store.set_field(kp.timer_field, kp.probe.point.interval)

    def run_user(self, kind) -> None:
        for p in self.program.probes:
            if isinstance(p.point, kind):
                try:
                    self.interp.run(p)
                except StapError as e:
                    self.runtime_error(str(e), e.span)
                except OverflowError as e:
                    self.runtime_error(str(e), None)
                if self.error:
                    return

    def attach_all(self, gen: Generated) -> None:
        L = lib()
        for kp in gen.kernel_probes:
            prog = L.check_ptr(L.c.bpf_object__find_program_by_name(self.obj, kp.prog.encode()), kp.prog)
            pt = kp.probe.point
            match pt:
                case ir.Tracepoint(group=g, name=n):
                    link = L.check_ptr(L.c.bpf_program__attach_tracepoint(prog, g.encode(), n.encode()),
                                       f"attach kernel.trace(\"{g}:{n}\")")
                    self.links.append(link)
                case ir.Uprobe(path=path, function=fn, is_return=ret):
                    if kp.entry_prog:
                        ep = L.check_ptr(L.c.bpf_object__find_program_by_name(self.obj, kp.entry_prog.encode()),
                                         kp.entry_prog)
                        o = uprobe_opts(fn, False)
                        self.links.append(L.check_ptr(L.c.bpf_program__attach_uprobe_opts(
                            ep, -1, path.encode(), 0, ctypes.byref(o)), f"attach uprobe {path}:{fn}"))
                    o = uprobe_opts(fn, ret)
                    self.links.append(L.check_ptr(L.c.bpf_program__attach_uprobe_opts(
                        prog, -1, path.encode(), 0, ctypes.byref(o)),
                        f"attach process(\"{path}\").function(\"{fn}\")" + (".return" if ret else "")))
                case ir.Usdt(path=path, name=name, provider=prov):
                    self.links.append(L.check_ptr(L.c.bpf_program__attach_usdt(
                        prog, -1, path.encode(), prov.encode(), name.encode(), None),
                        f"attach process(\"{path}\").mark(\"{name}\")"))
                case ir.Timer() | ir.TimerProfile():
                    cpus = range(max(1, L.c.libbpf_num_possible_cpus())) if isinstance(pt, ir.TimerProfile) \
                        else [os.sched_getaffinity(0) and min(os.sched_getaffinity(0))]
                    for cpu in cpus:
                        try:
                            pfd = L.perf_event_open_cpu_clock(cpu, kp.period_ns)
                        except BpfError:
                            if isinstance(pt, ir.TimerProfile):
                                continue  # an offline CPU
                            raise
                        link = L.c.bpf_program__attach_perf_event(prog, pfd)
                        if not link:
                            err = ctypes.get_errno()
                            os.close(pfd)
                            raise BpfError(f"attach {kp.probe.pp or 'timer'}", err)
                        self.links.append(link)  # the link owns (and closes) the perf fd

    def request_exit(self) -> None:
        self.exit_requested = True

    def runtime_error(self, msg: str, span) -> None:
        where = f" at {span}" if span is not None else ""
        self.out.write("stderr", f"ERROR: {msg}{where}\n".encode())
        self.error = True

    def on_record(self, data: bytes) -> None:
        st = self.h.stats
        if not st.t_first_event:
            st.t_first_event = time.monotonic()
        st.events += 1
        if self.error:
            return
        eid = struct.unpack_from("<I", data)[0]
        gen = self.h.generated
        assert gen is not None
        if eid == EV_EXIT:
            self.exit_requested = True
        elif eid == EV_ERROR:
            code = struct.unpack_from("<q", data, 8)[0]
            msg, span = gen.errors[code] if 0 <= code < len(gen.errors) else ("unknown error", None)
            self.runtime_error(msg, span)
        elif eid == EV_HIST:
            which = struct.unpack_from("<I", data, 4)[0]
            name, key = gen.hist_prints[which]
            g = self.program.global_named(name)
            gl = gen.layouts.globals[name]
            keys = key.unpack(data[8:8 + key.size]) if g.keys else []
            sv = self.store.stat_get(name, keys)
            self.out.write("stdout", F.format_histogram(sv.hist or [], g.hist.kind, g.hist.start,
                                                        g.hist.interval).encode())
            del gl
        else:
            ev = gen.events.get(eid)
            if ev is None:
                return
            vals = ev.record.unpack(data[8:8 + ev.record.size])
            self.out.write("stdout", F.format_values(ev.pieces, vals))

    def child_gone(self) -> bool:
        if not self.h.child_pid:
            return False
        try:
            pid, _ = os.waitpid(self.h.child_pid, os.WNOHANG)
        except ChildProcessError:
            return True
        if pid:
            self.h.child_pid = 0
            return True
        return False

    def poll(self) -> None:
        assert self.rb is not None
        while not (self.h._stop.is_set() or self.exit_requested or self.error):
            r = self.rb.poll(self.opts.poll_ms)
            if r < 0 and r != -4:  # -EINTR
                self.fail(f"ring buffer poll failed: {os.strerror(-r)}")
                self.error = True
            if self.child_gone():
                break

    def shutdown(self) -> None:
        L = lib()
        t = time.monotonic()
        for link in self.links:
            L.c.bpf_link__destroy(link)
        self.links = []
        self.h.stats.timings["detach"] = time.monotonic() - t
        if self.rb is not None:
            self.rb.consume()
            if hasattr(self, "store"):
                try:
                    lost = self.store.get_field("__lost")
                    self.h.stats.lost = lost
                    if lost:
                        self.out.write("stderr", f"WARNING: {lost} output records were lost "
                                                 "(ring buffer full)\n".encode())
                except BpfError:
                    pass
            if not self.error:
                self.run_user(ir.End)
            self.rb.free()
            self.rb = None
        if self.obj:
            L.c.bpf_object__close(self.obj)
            self.obj = 0
        if self.compiled is not None and not self.opts.keep_dir:
            self.compiled.cleanup()
        if self.h.child_pid:
            try:
                os.kill(self.h.child_pid, signal.SIGTERM)
                os.waitpid(self.h.child_pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        self.out.flush()


def run_program(program: ir.Program, options: RunOptions | None = None,
                on_output: Callable[[str, str], None] | None = None,
                on_exit: Callable[[int], None] | None = None,
                on_diagnostic: Callable[[Diagnostic], None] | None = None) -> RunHandle:
    """Start ``program`` on a background thread; see the module docstring."""
    handle = RunHandle()
    run = _Run(program, options or RunOptions(), handle, on_output or (lambda s, l: None),
               on_exit or (lambda c: None), on_diagnostic or (lambda d: None))

    def body() -> None:
        code = 1
        try:
            code = run.main()
        except Exception as e:  # an engine bug: report, never hang the caller
            import traceback
            run.fail(f"internal error in the bpf engine: {type(e).__name__}: {e}\n"
                     + traceback.format_exc(), "bpf-internal")
            try:
                run.shutdown()
            except Exception:
                pass
        finally:
            handle.exit_code = code
            handle.attached.set()
            handle._done.set()
            try:
                run.on_exit(code)
            except Exception:
                pass

    handle.thread = threading.Thread(target=body, name="stap-bpf-run", daemon=True)
    handle.thread.start()
    return handle
