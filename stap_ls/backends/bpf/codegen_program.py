"""Program-level half of the IR -> BPF C generator (see :mod:`codegen`).

:class:`Generator` owns what is shared between probes — map declarations,
record formats, error messages, read-only format strings, aggregate helpers
— and assembles the translation unit.  :func:`generate` is the entry point:
``generate(program, options) -> (Generated | None, diagnostics)``.
"""

from __future__ import annotations

import re

from stap_ls.backends.bpf import format as F
from stap_ls.backends.bpf import ir
from stap_ls.backends.bpf.codegen import (EV_FIRST_FORMAT, HELPERS, PRELUDE, CodegenOptions,
                                          EventFormat, Generated, KernelProbe, ProbeGen, Refusal,
                                          c_string)
from stap_ls.backends.bpf.ir import Type
from stap_ls.backends.bpf.layout import Layouts, Struct
from stap_ls.text import Diagnostic, Severity, Span

UNIT_NS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


class Generator:
    def __init__(self, program: ir.Program, opts: CodegenOptions) -> None:
        self.program = program
        self.opts = opts
        self.layouts = Layouts(program.globals, opts.strlen)
        self.marks: list[tuple[Span | None, str]] = []
        self.errors: list[tuple[str, Span | None]] = []
        self.events: dict[int, EventFormat] = {}
        self.rodata: list[str] = []
        self.hist_prints: list[tuple[str, Struct]] = []
        self.kernel_probes: list[KernelProbe] = []
        self.uses_usdt = False

    # -- registries used by ProbeGen
    def mark(self, node: ir.Node) -> int:
        self.marks.append((node.span, type(node).__name__))
        return len(self.marks) - 1

    def add_error(self, msg: str, node: ir.Node | None) -> int:
        self.errors.append((msg, getattr(node, "span", None)))
        return len(self.errors) - 1

    def add_event(self, pieces: list, kinds: list[str], node: ir.Node) -> EventFormat:
        eid = EV_FIRST_FORMAT + len(self.events)
        rec = Struct(f"stp_ev_{eid}")
        mem = iter([max(p.precision, 1) for p in pieces if isinstance(p, F.Conversion) and p.conv in "mM"])
        for i, k in enumerate(kinds):
            if k == "memory":
                rec.add(f"a{i}", "bytes", next(mem))
            else:
                rec.add(f"a{i}", k, self.opts.strlen)
        ev = EventFormat(eid, pieces, rec, kinds)
        self.events[eid] = ev
        return ev

    def rodata_string(self, s: str) -> str:
        self.rodata.append(s)
        return f"stp_fmt{len(self.rodata) - 1}"

    def add_hist_print(self, name: str, key: Struct) -> int:
        for i, (n, _) in enumerate(self.hist_prints):
            if n == name:
                return i
        self.hist_prints.append((name, key))
        return len(self.hist_prints) - 1

    def section(self, kp: KernelProbe) -> tuple[str, str]:
        pt = kp.probe.point
        match pt:
            case ir.Tracepoint(group=g, name=n):
                return f"tracepoint/{g}/{n}", "void"
            case ir.Uprobe(is_return=r):
                return ("uretprobe" if r else "uprobe"), "struct pt_regs"
            case ir.Usdt():
                return "usdt", "struct pt_regs"
            case ir.Timer() | ir.TimerProfile():
                return "perf_event", "struct bpf_perf_event_data"
        raise Refusal(f"the probe point {type(pt).__name__}", pt)

    # -- probe points
    def plan(self, idx: int, probe: ir.Probe) -> KernelProbe:
        kp = KernelProbe(idx, probe, f"stp_p{idx}")
        pt = probe.point
        match pt:
            case ir.Timer(unit=unit, interval=n, randomize=r):
                if unit not in ir.TIMER_UNITS:
                    raise Refusal(f"timer.{unit}", pt)
                if n <= 0:
                    raise Refusal(f"timer.{unit}({n})", pt, "the interval must be positive")
                if unit == "hz":
                    if r:
                        raise Refusal("timer.hz(N).randomize", pt)
                    kp.period_ns = 10**9 // n
                else:
                    unit_ns = UNIT_NS.get(unit, 10**9 // self.opts.hz)
                    if r:
                        if r < 0 or r > n:
                            raise Refusal(f"randomize({r})", pt, "it must be between 0 and the interval")
                        if unit_ns < 10**4:
                            raise Refusal(f"timer.{unit}(N).randomize", pt, "the base tick would be too fast")
                        kp.period_ns = unit_ns
                        kp.timer_field = self.layouts.add_timer_counter(idx)
                    else:
                        kp.period_ns = n * unit_ns
            case ir.TimerProfile(period_ns=p):
                kp.period_ns = p if p > 0 else 10**9 // self.opts.hz
            case ir.Tracepoint(group=g, name=n):
                if not re.fullmatch(r"\w+", g) or not re.fullmatch(r"\w+", n):
                    raise Refusal(f'kernel.trace("{g}:{n}")', pt, "a wildcard or odd name")
            case ir.Uprobe(is_return=r):
                if r:
                    kp.entry_prog = f"stp_p{idx}_entry"
            case ir.Usdt():
                self.uses_usdt = True
            case ir.Unsupported(construct=c):
                raise Refusal(c, pt)
            case _:
                raise Refusal(f"the probe point {type(pt).__name__}", pt)
        return kp

    # -- C pieces
    def maps(self, frames: list[Struct], saved: list[int]) -> list[str]:
        L = self.layouts
        out = [L.scalars.c_decl()]
        out.append("struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); "
                   "__type(key, __u32); __type(value, struct stp_globals); } stp_glob SEC(\".maps\");")
        out.append(f"struct {{ __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, {self.opts.ringbuf_bytes}); }} "
                   "stp_rb SEC(\".maps\");")
        zero = 8
        for gl in L.globals.values():
            if not gl.map_name:
                continue
            out.append(gl.key.c_decl())
            out.append(gl.value.c_decl())
            g = gl.glob
            if g.type is Type.STATS:
                mtype = "BPF_MAP_TYPE_PERCPU_HASH"
                zero = max(zero, gl.value.size)
            else:
                mtype = "BPF_MAP_TYPE_LRU_HASH" if g.wrap else "BPF_MAP_TYPE_HASH"
            out.append(f"struct {{ __uint(type, {mtype}); __uint(max_entries, {g.max_entries}); "
                       f"__type(key, struct {gl.key.name}); __type(value, struct {gl.value.name}); }} "
                       f"{gl.map_name} SEC(\".maps\");")
        out.append(f"struct stp_zero_t {{ char z[{zero}]; }};")
        out.append("struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 1); "
                   "__type(key, __u32); __type(value, struct stp_zero_t); } stp_zero SEC(\".maps\");")
        for f in frames:
            out.append(f.c_decl())
        members = " ".join(f"struct {f.name} f{i};" for i, f in enumerate(frames)) or "s64 __none;"
        out.append(f"union stp_frame {{ {members} }};")
        out.append(f"struct {{ __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, {max(1, len(frames))}); "
                   "__type(key, __u32); __type(value, union stp_frame); } stp_frames SEC(\".maps\");")
        if saved:
            out.append("struct stp_saved { s64 a[6]; };")
        for i in saved:
            out.append("struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 10240); "
                       f"__type(key, u64); __type(value, struct stp_saved); }} stp_sv{i} SEC(\".maps\");")
        return out

    def stat_helpers(self) -> list[str]:
        out = []
        for name, gl in self.layouts.globals.items():
            g = gl.glob
            if g.type is not Type.STATS:
                continue
            nb = gl.value.hist_buckets
            bucket = ""
            if g.hist is not None and g.hist.kind == "log":
                bucket = "{ u64 __h = (u64)stp_log_bucket(v); STP_BARRIER(__h); if (__h < 128) s->hist[__h]++; }"
            elif g.hist is not None:
                h = g.hist
                bucket = (f"{{ s64 __d = v - ({h.start}LL); u64 __h = 0; if (__d >= 0) {{ u64 __q = (u64)__d / {h.interval}ULL; "
                          f"__h = __q + 1 >= {nb - 1} ? {nb - 1} : __q + 1; }} "
                          f"STP_BARRIER(__h); if (__h < {nb}) s->hist[__h]++; }}")
            out.append(f"static __always_inline void stp_add_{name}(struct k_{name} *k, s64 v) {{")
            out.append(f"  struct sv_{name} *s = bpf_map_lookup_elem(&st_{name}, k);")
            out.append("  if (!s) { __u32 z = 0; void *zero = bpf_map_lookup_elem(&stp_zero, &z); if (!zero) return;")
            out.append(f"    bpf_map_update_elem(&st_{name}, k, zero, BPF_NOEXIST); s = bpf_map_lookup_elem(&st_{name}, k); if (!s) return; }}")
            out.append("  if (s->count == 0) { s->min = v; s->max = v; } else { if (v < s->min) s->min = v; if (v > s->max) s->max = v; }")
            out.append("  s->count++; s->sum += v;")
            if bucket:
                out.append("  " + bucket)
            out.append("}")
            out.append(f"static __always_inline int stp_stat_{name}(struct k_{name} *k, int op, s64 *res) {{")
            out.append("  s64 cnt = 0, sum = 0, mn = 0, mx = 0;")
            out.append(f"  for (int c = 0; c < {self.opts.nr_cpus}; c++) {{")
            out.append(f"    struct sv_{name} *s = bpf_map_lookup_percpu_elem(&st_{name}, k, c);")
            out.append("    if (!s || !s->count) continue;")
            out.append("    if (!cnt || s->min < mn) mn = s->min;")
            out.append("    if (!cnt || s->max > mx) mx = s->max;")
            out.append("    cnt += s->count; sum += s->sum;")
            out.append("  }")
            out.append("  *res = op == 0 ? cnt : op == 1 ? sum : op == 2 ? mn : op == 3 ? mx : (cnt ? stp_sdiv(sum, cnt) : 0);")
            out.append("  return cnt == 0;")
            out.append("}")
        for name, key in self.hist_prints:
            out.append(f"struct stp_ev_hist_{name} {{ __u32 id; __u32 which; struct {key.name} key; }};")
        return out

    def assemble(self) -> Generated:
        kernel = [p for p in self.program.probes if p.in_kernel]
        gens: list[ProbeGen] = []
        bodies: list[list[str]] = []
        for i, p in enumerate(kernel):
            kp = self.plan(i, p)
            self.kernel_probes.append(kp)
            pg = ProbeGen(self, kp)
            bodies.append(pg.function())
            gens.append(pg)
        includes = ["#include <linux/types.h>", "#include <linux/bpf.h>", "#include <linux/ptrace.h>",
                    "#include <linux/bpf_perf_event.h>", "#include <bpf/bpf_helpers.h>",
                    "#include <bpf/bpf_tracing.h>", "#include <bpf/bpf_core_read.h>"]
        if self.uses_usdt:
            includes += ["#include <stdbool.h>", "#include <bpf/usdt.bpf.h>"]
        src = includes + [f"#define STRLEN {self.opts.strlen}", PRELUDE]
        for ev in self.events.values():
            src.append(f"struct {ev.record.name} {{ __u32 id; __u32 pad; "
                       + " ".join(f.c_decl() for f in ev.record.fields) + " };")
        saved = [kp.index for kp in self.kernel_probes if kp.entry_prog]
        src += self.maps([g.frame for g in gens], saved)
        src.append(HELPERS)
        src += self.stat_helpers()
        for i, s in enumerate(self.rodata):
            src.append(f"static const char stp_fmt{i}[] = {c_string(s)};")
        for b in bodies:
            src += b
        text = "\n".join(src) + "\n"
        line_map: dict[int, tuple[Span | None, str]] = {}
        current: tuple[Span | None, str] | None = None
        for n, line in enumerate(text.split("\n"), 1):
            m = re.match(r"\s*/\*@(\d+)\*/\s*$", line)
            if m:
                current = self.marks[int(m.group(1))]
            elif line.startswith(("SEC(", "}")):
                current = None
            if current is not None:
                line_map[n] = current
        return Generated(text, self.layouts, self.events, self.kernel_probes, self.errors,
                         self.hist_prints, line_map, self.uses_usdt)


def _user_probe_refusals(program: ir.Program) -> list[Diagnostic]:
    """Context variables make no sense in begin/end probes (stap rejects them too)."""
    diags: list[Diagnostic] = []

    def walk(x, probe: ir.Probe) -> None:
        if isinstance(x, (ir.Field, ir.Arg, ir.ReturnValue)):
            diags.append(Diagnostic(Severity.ERROR, f"context variable {type(x).__name__} used in a "
                                    f"{type(probe.point).__name__.lower()} probe", x.span,
                                    code="bpf-context", kind="semantic error"))
        if isinstance(x, (ir.Unsupported, ir.UnsupportedStmt)):
            diags.append(Refusal(x.construct, x).diagnostic())
        if isinstance(x, ir.Node):
            for v in vars(x).values():
                walk(v, probe)
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v, probe)

    for p in program.probes:
        if not p.in_kernel:
            walk(p.body, p)
    return diags


def generate(program: ir.Program, options: CodegenOptions | None = None
             ) -> tuple[Generated | None, list[Diagnostic]]:
    """Translate a program; ``None`` and diagnostics when anything is refused."""
    opts = options or CodegenOptions()
    if opts.strlen < 16 or opts.strlen & (opts.strlen - 1):
        return None, [Diagnostic(Severity.ERROR, f"string length {opts.strlen} must be a power of two >= 16",
                                 None, code="bpf-options", kind="semantic error")]
    diags = _user_probe_refusals(program)
    # refuse probe by probe so one run reports every unsupported construct
    gen = None
    for p in program.probes:
        if not p.in_kernel:
            continue
        trial = Generator(ir.Program(program.globals, [p]), opts)
        try:
            trial.assemble()
        except Refusal as r:
            diags.append(r.diagnostic())
        except ValueError as err:  # histogram parameters
            diags.append(Diagnostic(Severity.ERROR, str(err), p.span, code="bpf-hist", kind="semantic error"))
    if diags:
        return None, diags
    try:
        gen = Generator(program, opts)
        return gen.assemble(), []
    except Refusal as r:
        return None, [r.diagnostic()]
    except ValueError as err:
        return None, [Diagnostic(Severity.ERROR, str(err), None, code="bpf-hist", kind="semantic error")]
