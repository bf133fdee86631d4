"""IR -> BPF C.

One ``SEC`` program per kernel-side probe; begin/end/never probes are *not*
compiled: they run in user space (:mod:`interp`) against the same maps, which
gives them ``foreach``, sorting and histogram printing for free and keeps the
verifier out of the way of the code that prints a script's summary.

Data
  * scalar globals: one ``ARRAY`` map ``stp_glob`` holding ``struct
    stp_globals`` (plus hidden fields: target(), the realtime offset, the exit
    flag, timer countdowns);
  * associative arrays: a ``HASH`` map each (``LRU_HASH`` for ``%`` wrap);
  * aggregates: a ``PERCPU_HASH`` of ``{count,sum,min,max,hist[]}``, read by
    summing CPUs (``bpf_map_lookup_percpu_elem`` inside the kernel);
  * locals: long locals are C variables; strings and map keys live in the
    probe's per-CPU frame (``stp_frames``, one slot per probe), since the BPF
    stack is only 512 bytes.
Strings are ``char[STRLEN]`` (``CodegenOptions.strlen``, stap's
MAXSTRINGLEN); temporaries are twice that so a concatenation's offset and
length are both provably in bounds for the verifier.

Output
  ``printf``/``print``/``println`` reserve a ring-buffer record ``{id,
  args...}``; :mod:`format` formats it in user space.  Record ids: 0 exit,
  1 error (index into ``Generated.errors``), 2 histogram print, 3+ formats.

Expressions compile to C expressions, using GNU statement expressions where a
value needs preparation, so C's evaluation order and the short circuit of
``&&``/``||``/``?:`` are kept.  A run-time error (division by zero, array
overflow, empty aggregate) sends an error record and leaves the probe.

Unsupported constructs raise :class:`Refusal`; :func:`generate` turns every
refusal into a diagnostic that names the construct and suggests the stap
engine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from stap_ls.backends.bpf import format as F
from stap_ls.backends.bpf import ir
from stap_ls.backends.bpf.ir import Type
from stap_ls.backends.bpf.layout import Layouts, Struct
from stap_ls.text import Diagnostic, Severity, Span

EV_EXIT, EV_ERROR, EV_HIST, EV_FIRST_FORMAT = 0, 1, 2, 3
ARG_REGS = 6
SUGGEST = "; run it with the stap engine instead"
KERNEL_SPRINTF_CONVS = "diuxXcs"


class Refusal(Exception):
    def __init__(self, construct: str, node: ir.Node | None = None, why: str = "") -> None:
        super().__init__(construct)
        self.construct = construct
        self.span = getattr(node, "span", None)
        self.why = why

    def diagnostic(self) -> Diagnostic:
        msg = f"the bpf engine does not support {self.construct}"
        if self.why:
            msg += f" ({self.why})"
        return Diagnostic(Severity.ERROR, msg + SUGGEST, self.span, code="bpf-unsupported",
                          kind="semantic error")


@dataclass
class CodegenOptions:
    strlen: int = 128
    nr_cpus: int = 2
    hz: int = 250
    ringbuf_bytes: int = 1 << 22


@dataclass
class EventFormat:
    id: int
    pieces: list
    record: Struct
    kinds: list[str]


@dataclass
class KernelProbe:
    index: int
    probe: ir.Probe
    prog: str
    entry_prog: str = ""           # uretprobe with args: the saving entry program
    timer_field: str = ""          # randomized timers: the countdown field
    period_ns: int = 0


@dataclass
class Generated:
    source: str
    layouts: Layouts
    events: dict[int, EventFormat]
    kernel_probes: list[KernelProbe]
    errors: list[tuple[str, Span | None]]
    hist_prints: list[tuple[str, Struct]]
    #: generated C line (1-based) -> (IR span, description)
    line_map: dict[int, tuple[Span | None, str]] = field(default_factory=dict)
    uses_usdt: bool = False


def c_string(s: str) -> str:
    return json.dumps(s, ensure_ascii=True).replace("?", "\\?") if s.isascii() else \
        '"' + "".join(f"\\{b:03o}" for b in s.encode()) + '"'


def c_int(v: int) -> str:
    v = ((v + (1 << 63)) % (1 << 64)) - (1 << 63)
    return "(-9223372036854775807LL-1)" if v == -(1 << 63) else f"{v}LL"


PRELUDE = r"""
#ifndef PT_REGS_PARM6
#define PT_REGS_PARM6(x) (((const struct pt_regs *)(x))->r9)
#endif
typedef long long s64;
typedef unsigned long long u64;
char LICENSE[] SEC("license") = "GPL";
struct task_struct { struct task_struct *real_parent; int tgid; } __attribute__((preserve_access_index));
struct stp_ev_exit { __u32 id; __u32 pad; };
struct stp_ev_err { __u32 id; __u32 pad; s64 code; };
"""

HELPERS = r"""
static __always_inline struct stp_globals *stp_g(void) { __u32 z = 0; return bpf_map_lookup_elem(&stp_glob, &z); }
static __always_inline void stp_error(s64 code) {
  struct stp_ev_err *e = bpf_ringbuf_reserve(&stp_rb, sizeof(*e), 0);
  if (e) { e->id = 1; e->pad = 0; e->code = code; bpf_ringbuf_submit(e, 0); }
}
#define STP_BARRIER(x) asm volatile("" : "+r"(x))
#define STP_ERR(code) do { stp_error(code); goto stp_out; } while (0)
static __always_inline int stp_strcmp(const char *a, const char *b) {
  for (int i = 0; i < STRLEN; i++) {
    unsigned char x = a[i], y = b[i];
    if (x != y) return x < y ? -1 : 1;
    if (!x) return 0;
  }
  return 0;
}
static __always_inline s64 stp_strlen(const char *a) {
  for (int i = 0; i < STRLEN; i++) if (!a[i]) return i;
  return STRLEN;
}
static __always_inline u64 stp_abs(s64 v) { return v < 0 ? (u64)0 - (u64)v : (u64)v; }
static __always_inline s64 stp_sdiv(s64 a, s64 b) {
  u64 q = stp_abs(a) / stp_abs(b);
  return ((a < 0) != (b < 0)) ? (s64)((u64)0 - q) : (s64)q;
}
static __always_inline s64 stp_smod(s64 a, s64 b) {
  u64 r = stp_abs(a) % stp_abs(b);
  return a < 0 ? (s64)((u64)0 - r) : (s64)r;
}
static __always_inline int stp_log_bucket(s64 v) {
  if (v == 0) return 64;
  u64 m = stp_abs(v); int n = 0;
  for (int i = 0; i < 64; i++) { if (!m) break; m >>= 1; n++; }
  int r = 64 + n;
  if (v < 0) r = 128 - r;
  return r > 127 ? 127 : r;
}
static long stp_del_cb(void *map, void *key, void *val, void *ctx) { bpf_map_delete_elem(map, key); return 0; }
"""


class ProbeGen:
    """Generates one kernel-side probe function."""

    def __init__(self, gen: "Generator", kp: KernelProbe) -> None:
        self.gen = gen
        self.kp = kp
        self.probe = kp.probe
        self.frame = Struct(f"stp_frame_{kp.index}")
        self.ntemps = 0
        self.lines: list[str] = []
        self.depth = 1
        self.loop_id = 0
        self.arg_saved = isinstance(self.probe.point, ir.Uprobe) and self.probe.point.is_return

    # -- helpers
    def temp(self, kind: str = "string", size: int = 0) -> str:
        name = f"t{self.ntemps}"
        self.ntemps += 1
        self.frame.add(name, "bytes", size or 2 * self.gen.opts.strlen)
        return f"fr->{name}"

    def key_temp(self, st: Struct) -> str:
        name = f"t{self.ntemps}"
        self.ntemps += 1
        self.frame.add(name, "bytes", st.size)
        return f"((struct {st.name} *)fr->{name})"

    def emit(self, text: str, node: ir.Node | None = None) -> None:
        if node is not None:
            self.lines.append("  " * self.depth + f"/*@{self.gen.mark(node)}*/")
        self.lines.append("  " * self.depth + text)

    def type_of(self, e: ir.Expr) -> Type:
        try:
            return ir.type_of(e, self.probe, self.gen.program)
        except ir.TypeError_ as err:
            raise Refusal(str(err), err.node or e, "ill-typed IR") from None

    def glob(self, name: str, node: ir.Node):
        gl = self.gen.layouts.globals.get(name)
        if gl is None:
            raise Refusal(f"the unknown global '{name}'", node)
        return gl

    def build_key(self, name: str, keys: list[ir.Expr], node: ir.Node) -> str:
        gl = self.glob(name, node)
        st = gl.key
        if gl.glob.is_array and len(keys) != len(gl.glob.keys):
            raise Refusal(f"indexing '{name}' with {len(keys)} keys", node, f"declared with {len(gl.glob.keys)}")
        k = self.key_temp(st)
        parts = [f"__builtin_memset({k}, 0, sizeof(*{k}));"]
        for i, (kexpr, f) in enumerate(zip(keys, st.fields)):
            if f.kind == "long":
                parts.append(f"{k}->k{i} = {self.long(kexpr)};")
            else:
                parts.append(f"bpf_probe_read_kernel_str({k}->k{i}, STRLEN, {self.str(kexpr)});")
        if not gl.glob.is_array:
            parts.append(f"{k}->k0 = 0;")
        return "({ " + " ".join(parts) + f" {k}; }})"

    def error(self, msg: str, node: ir.Node | None) -> str:
        return f"STP_ERR({self.gen.add_error(msg, node)})"

    # -- expressions
    def long(self, e: ir.Expr) -> str:
        t = self.type_of(e)
        if t is not Type.LONG:
            raise Refusal("a string where a number is expected", e, "ill-typed IR")
        return self._long(e)

    def _long(self, e: ir.Expr) -> str:
        match e:
            case ir.IntLit(value=v):
                return c_int(v)
            case ir.Local(name=n):
                return f"l_{n}"
            case ir.GlobalVar(name=n):
                self.glob(n, e)
                return f"g->g_{n}"
            case ir.ArrayGet(name=n, keys=keys):
                gl = self.glob(n, e)
                k = self.build_key(n, keys, e)
                return f"({{ struct v_{n} *__v = bpf_map_lookup_elem(&{gl.map_name}, {k}); __v ? __v->v : 0; }})"
            case ir.Exists(name=n, keys=keys):
                gl = self.glob(n, e)
                return f"(bpf_map_lookup_elem(&{gl.map_name}, {self.build_key(n, keys, e)}) != 0)"
            case ir.Binary(op=op, left=a, right=b):
                la, lb = self.long(a), self.long(b)
                if op in "+-*&|^":
                    return f"((s64)((u64)({la}) {op} (u64)({lb})))"
                if op == "<<":
                    return f"((s64)((u64)({la}) << (({lb}) & 63)))"
                if op == ">>":
                    return f"((s64)({la}) >> (({lb}) & 63))"
                if op in ("/", "%"):
                    fn = "stp_sdiv" if op == "/" else "stp_smod"
                    return (f"({{ s64 __a = {la}; s64 __b = {lb}; if (__b == 0) {self.error('division by 0', e)}; "
                            f"{fn}(__a, __b); }})")
                raise Refusal(f"the operator '{op}'", e)
            case ir.Unary(op=op, operand=x):
                lx = self.long(x)
                if op == "-":
                    return f"((s64)((u64)0 - (u64)({lx})))"
                if op in ("~", "!"):
                    return f"((s64)({op}({lx})))"
                raise Refusal(f"the unary operator '{op}'", e)
            case ir.Compare(op=op, left=a, right=b):
                if op not in ("<", "<=", ">", ">=", "==", "!="):
                    raise Refusal(f"the comparison '{op}'", e)
                if self.type_of(a) is Type.STRING or self.type_of(b) is Type.STRING:
                    ta, tb = self.temp(), self.temp()
                    return (f"((s64)(({{ bpf_probe_read_kernel_str({ta}, STRLEN, {self.str(a)}); "
                            f"bpf_probe_read_kernel_str({tb}, STRLEN, {self.str(b)}); "
                            f"stp_strcmp({ta}, {tb}); }}) {op} 0))")
                return f"((s64)(({self.long(a)}) {op} ({self.long(b)})))"
            case ir.Logical(op=op, left=a, right=b):
                if op not in ("&&", "||"):
                    raise Refusal(f"the operator '{op}'", e)
                return f"((s64)(({self.long(a)}) {op} ({self.long(b)})))"
            case ir.Cond(cond=c, then=a, else_=b):
                return f"(({self.long(c)}) ? ({self.long(a)}) : ({self.long(b)}))"
            case ir.Field(name=n):
                return self.field_long(n, e)
            case ir.Arg(index=i):
                return self.arg(i, e)
            case ir.ReturnValue():
                pt = self.probe.point
                if not (isinstance(pt, ir.Uprobe) and pt.is_return):
                    raise Refusal("$return outside a .return probe", e)
                return "((s64)PT_REGS_RC((struct pt_regs *)ctx))"
            case ir.StatOp(op=op, name=n, keys=keys):
                gl = self.glob(n, e)
                if gl.glob.type is not Type.STATS:
                    raise Refusal(f"@{op} of '{n}', which is not an aggregate", e)
                if op not in ir.STAT_OPS:
                    raise Refusal(f"@{op}", e)
                k = self.build_key(n, keys, e)
                code = ir.STAT_OPS.index(op)
                empty = self.gen.add_error("empty aggregate", e) if op != "count" and op != "sum" else -1
                return (f"({{ s64 __r = 0; int __e = stp_stat_{n}({k}, {code}, &__r); "
                        f"if (__e && {empty} >= 0) STP_ERR({empty}); __r; }})")
            case ir.Call(name=name, args=args):
                return self.call_long(name, args, e)
            case ir.Unsupported(construct=c):
                raise Refusal(c, e)
        raise Refusal(f"the expression {type(e).__name__}", e)

    def call_long(self, name: str, args: list[ir.Expr], e: ir.Expr) -> str:
        simple = {
            "pid": "((s64)(bpf_get_current_pid_tgid() >> 32))",
            "tid": "((s64)(__u32)bpf_get_current_pid_tgid())",
            "uid": "((s64)(__u32)bpf_get_current_uid_gid())",
            "euid": "((s64)(__u32)bpf_get_current_uid_gid())",
            "gid": "((s64)(bpf_get_current_uid_gid() >> 32))",
            "cpu": "((s64)bpf_get_smp_processor_id())",
            "ktime_get_ns": "((s64)bpf_ktime_get_ns())",
            "jiffies": "((s64)bpf_jiffies64())",
            "target": "g->__target",
            "ppid": "((s64)BPF_CORE_READ((struct task_struct *)bpf_get_current_task(), real_parent, tgid))",
            "gettimeofday_ns": "((s64)bpf_ktime_get_ns() + g->__realtime_off)",
            "gettimeofday_us": "(((s64)bpf_ktime_get_ns() + g->__realtime_off) / 1000)",
            "gettimeofday_ms": "(((s64)bpf_ktime_get_ns() + g->__realtime_off) / 1000000)",
            "gettimeofday_s": "(((s64)bpf_ktime_get_ns() + g->__realtime_off) / 1000000000)",
        }
        if name in simple:
            return simple[name]
        if name == "strlen" and len(args) == 1:
            t = self.temp()
            return f"({{ bpf_probe_read_kernel_str({t}, STRLEN, {self.str(args[0])}); stp_strlen({t}); }})"
        raise Refusal(f"the function {name}()", e)

    def field_long(self, name: str, e: ir.Expr) -> str:
        f = self.trace_field(name, e)
        if f.data_loc or f.char_array:
            raise Refusal(f"string field '${name}' used as a number", e, "ill-typed IR")
        ctype = {1: "char", 2: "short", 4: "int", 8: "long long"}.get(f.size)
        if ctype is None:
            raise Refusal(f"the {f.size}-byte tracepoint field '${name}'", e)
        sign = "" if f.signed else "unsigned "
        if f.offset < 8:
            # the common header is not readable (nor filled in) when BPF runs
            if name == "common_pid":
                return "((s64)(__u32)bpf_get_current_pid_tgid())"
            raise Refusal(f"the tracepoint header field '${name}'", e, "only $common_pid is available")
        return f"((s64)*({sign}{ctype} *)((char *)ctx + {f.offset}))"

    def trace_field(self, name: str, e: ir.Expr) -> ir.TraceField:
        pt = self.probe.point
        if not isinstance(pt, ir.Tracepoint):
            raise Refusal(f"the context variable '${name}' in a {type(pt).__name__} probe", e)
        for f in pt.fields or []:
            if f.name == name:
                return f
        raise Refusal(f"the unknown tracepoint field '${name}'", e, f"{pt.group}:{pt.name}")

    def arg(self, i: int, e: ir.Expr) -> str:
        pt = self.probe.point
        if not 1 <= i <= ARG_REGS:
            raise Refusal(f"$arg{i}", e, f"only the first {ARG_REGS} register arguments are read")
        if isinstance(pt, ir.Usdt):
            return f"({{ long __v = 0; bpf_usdt_arg(ctx, {i - 1}, &__v); (s64)__v; }})"
        if not isinstance(pt, ir.Uprobe):
            raise Refusal(f"$arg{i} in a {type(pt).__name__} probe", e)
        if self.arg_saved:
            return f"__args[{i - 1}]"
        return f"((s64)PT_REGS_PARM{i}((struct pt_regs *)ctx))"

    def str(self, e: ir.Expr) -> str:
        """A C expression for a ``const char *`` holding the string."""
        t = self.type_of(e)
        if t is not Type.STRING:
            raise Refusal("a number where a string is expected", e, "ill-typed IR")
        match e:
            case ir.StrLit(value=v):
                return c_string(v)
            case ir.Local(name=n):
                return f"fr->s_{n}"
            case ir.GlobalVar(name=n):
                return f"g->g_{n}"
            case ir.ArrayGet(name=n, keys=keys):
                gl = self.glob(n, e)
                k = self.build_key(n, keys, e)
                return f"({{ struct v_{n} *__v = bpf_map_lookup_elem(&{gl.map_name}, {k}); __v ? (const char *)__v->v : \"\"; }})"
            case ir.Concat(left=a, right=b):
                t0 = self.temp()
                return (f"({{ char *__d = {t0}; long __n = bpf_probe_read_kernel_str(__d, STRLEN, {self.str(a)}); "
                        f"if (__n < 1) __n = 1; __n = (__n - 1) & (STRLEN - 1); "
                        f"bpf_probe_read_kernel_str(__d + __n, STRLEN - __n, {self.str(b)}); (const char *)__d; }})")
            case ir.Cond(cond=c, then=a, else_=b):
                return f"(({self.long(c)}) ? ({self.str(a)}) : ({self.str(b)}))"
            case ir.Field(name=n):
                f = self.trace_field(n, e)
                t0 = self.temp()
                if f.data_loc:
                    src = f"(const char *)ctx + (*(__u32 *)((char *)ctx + {f.offset}) & 0xffff)"
                else:
                    src = f"(const char *)ctx + {f.offset}"
                n_ = min(f.size, self.gen.opts.strlen) if f.char_array else "STRLEN"
                return f"({{ bpf_probe_read_kernel_str({t0}, {n_}, {src}); (const char *){t0}; }})"
            case ir.Sprintf(fmt=fmt, args=args):
                return self.sprintf(fmt, args, e)
            case ir.Call(name=name, args=args):
                return self.call_str(name, args, e)
        raise Refusal(f"the string expression {type(e).__name__}", e)

    def call_str(self, name: str, args: list[ir.Expr], e: ir.Expr) -> str:
        if name == "execname":
            t0 = self.temp()
            return f"({{ bpf_get_current_comm({t0}, 16); (const char *){t0}; }})"
        if name == "pp":
            return c_string(self.probe.pp)
        if name in ("kernel_string", "user_string") and len(args) in (1, 2):
            t0 = self.temp()
            fn = "bpf_probe_read_kernel_str" if name == "kernel_string" else "bpf_probe_read_user_str"
            what = "kernel" if name == "kernel_string" else "user"
            addr = self.long(args[0])
            if len(args) == 2:
                on_err = f"bpf_probe_read_kernel_str({t0}, STRLEN, {self.str(args[1])});"
            else:
                on_err = self.error(f"{what} string copy fault", e) + ";"
            return (f"({{ s64 __p = {addr}; if ({fn}({t0}, STRLEN, (const void *)__p) < 0) {{ {on_err} }} "
                    f"(const char *){t0}; }})")
        raise Refusal(f"the function {name}()", e)

    def sprintf(self, fmt: str, args: list[ir.Expr], e: ir.Expr) -> str:
        try:
            pieces = F.parse_format(fmt)
        except F.FormatError as err:
            raise Refusal(f"the format {fmt!r}", e, str(err)) from None
        c_fmt, vals = [], []
        it = iter(args)
        for p in pieces:
            if isinstance(p, str):
                c_fmt.append(p.replace("%", "%%"))
                continue
            if p.conv not in KERNEL_SPRINTF_CONVS or "#" in p.flags or p.star_args or \
                    (p.precision >= 0 and p.conv not in "s"):
                raise Refusal(f"sprintf's '{fmt[p.offset:]}' directive in a kernel-side probe", e,
                              "only %d %i %u %x %X %c %s with flags, width and string precision are")
            arg = next(it, None)
            if arg is None:
                raise Refusal("sprintf with too few arguments", e)
            spec = "%" + p.flags + (str(p.width) if p.width >= 0 else "") + \
                (f".{p.precision}" if p.precision >= 0 else "")
            if p.conv == "s":
                t0 = self.temp()
                vals.append(f"(u64)({{ bpf_probe_read_kernel_str({t0}, STRLEN, {self.str(arg)}); {t0}; }})")
                c_fmt.append(spec + "s")
            elif p.conv == "c":
                vals.append(f"(u64)(({self.long(arg)}) & 0xff)")
                c_fmt.append(spec + "c")
            else:
                vals.append(f"(u64)({self.long(arg)})")
                c_fmt.append(spec + "ll" + p.conv)
        if len(vals) > 12:
            raise Refusal("sprintf with more than 12 arguments in a kernel-side probe", e)
        fname = self.gen.rodata_string("".join(c_fmt))
        t0 = self.temp()
        if not vals:
            return f"({{ bpf_snprintf({t0}, STRLEN, {fname}, 0, 0); (const char *){t0}; }})"
        return (f"({{ u64 __sa[{len(vals)}] = {{ {', '.join(vals)} }}; "
                f"bpf_snprintf({t0}, STRLEN, {fname}, __sa, sizeof(__sa)); (const char *){t0}; }})")

    # -- statements
    def stmts(self, body: list[ir.Stmt]) -> None:
        for s in body:
            self.stmt(s)

    def block(self, head: str, body: list[ir.Stmt], node: ir.Node | None = None) -> None:
        self.emit(head + " {", node)
        self.depth += 1
        self.stmts(body)
        self.depth -= 1
        self.emit("}")

    def assign_value(self, target: ir.Expr, op: str, value: ir.Expr, node: ir.Node) -> ir.Expr:
        if op == "=":
            return value
        if op == ".=":
            return ir.Concat(target, value, span=node.span)
        bop = op[:-1]
        if bop not in ("+", "-", "*", "/", "%", "<<", ">>", "&", "|", "^"):
            raise Refusal(f"the assignment operator '{op}'", node)
        return ir.Binary(bop, target, value, span=node.span)

    def stmt(self, s: ir.Stmt) -> None:
        match s:
            case ir.Assign(target=tgt, value=val, op=op):
                self.assign(tgt, op, val, s)
            case ir.ExprStmt(expr=x):
                code = self.str(x) if self.type_of(x) is Type.STRING else self.long(x)
                self.emit(f"(void){code};", s)
            case ir.If(cond=c, then=then, else_=els):
                self.block(f"if ({self.long(c)})", then, s)
                if els:
                    self.block("else", els)
            case ir.While(cond=c, body=body, bound=bound):
                self.loop(None, c, None, body, bound, s)
            case ir.For(init=init, cond=c, step=step, body=body, bound=bound):
                self.loop(init, c, step, body, bound, s)
            case ir.Delete(target=tgt):
                self.delete(tgt, s)
            case ir.Next():
                self.emit("goto stp_out;", s)
            case ir.Break():
                self.emit("break;", s)
            case ir.Continue():
                self.emit("continue;", s)
            case ir.Exit():
                self.emit("{ g->__exited = 1; struct stp_ev_exit *__e = bpf_ringbuf_reserve(&stp_rb, sizeof(*__e), 0); "
                          "if (__e) { __e->id = 0; __e->pad = 0; bpf_ringbuf_submit(__e, 0); } }", s)
            case ir.Printf(fmt=fmt, args=args):
                self.printf(fmt, args, s)
            case ir.Print(args=args, newline=nl):
                fmt = "".join("%s" if self.type_of(a) is Type.STRING else "%d" for a in args)
                self.printf(fmt + ("\n" if nl else ""), args, s)
            case ir.PrintHist(name=n, keys=keys):
                self.print_hist(n, keys, s)
            case ir.AggAdd(name=n, keys=keys, value=v):
                gl = self.glob(n, s)
                if gl.glob.type is not Type.STATS:
                    raise Refusal(f"'<<<' into '{n}', which is not an aggregate", s)
                self.emit(f"stp_add_{n}({self.build_key(n, keys, s)}, {self.long(v)});", s)
            case ir.Foreach():
                raise Refusal("foreach in a kernel-side probe", s, "it is supported in begin and end probes")
            case ir.UnsupportedStmt(construct=c):
                raise Refusal(c, s)
            case _:
                raise Refusal(f"the statement {type(s).__name__}", s)

    def assign(self, tgt: ir.Expr, op: str, val: ir.Expr, s: ir.Node) -> None:
        ttype = self.type_of(tgt)
        if ttype is Type.STRING and op not in ("=", ".="):
            raise Refusal(f"'{op}' on a string", s, "ill-typed IR")
        value = self.assign_value(tgt, op, val, s)
        match tgt:
            case ir.Local(name=n):
                if ttype is Type.STRING:
                    self.emit(f"bpf_probe_read_kernel_str(fr->s_{n}, STRLEN, {self.str(value)});", s)
                else:
                    self.emit(f"l_{n} = {self.long(value)};", s)
            case ir.GlobalVar(name=n):
                self.glob(n, s)
                if ttype is Type.STRING:
                    self.emit(f"bpf_probe_read_kernel_str(g->g_{n}, STRLEN, {self.str(value)});", s)
                elif op in ("+=", "-="):
                    self.emit(f"__sync_fetch_and_add(&g->g_{n}, {'-' if op == '-=' else ''}({self.long(val)}));", s)
                else:
                    self.emit(f"g->g_{n} = {self.long(value)};", s)
            case ir.ArrayGet(name=n, keys=keys):
                gl = self.glob(n, s)
                if gl.glob.type is Type.STATS:
                    raise Refusal(f"assignment to the aggregate '{n}'", s)
                k = self.build_key(n, keys, s)
                vt = self.key_temp(gl.value)
                overflow = self.gen.add_error("Array overflow, check MAXMAPENTRIES", s)
                if ttype is Type.LONG and op in ("+=", "-=") and not gl.glob.wrap:
                    delta = f"{'-' if op == '-=' else ''}({self.long(val)})"
                    self.emit(f"{{ s64 __d = {delta}; struct k_{n} *__k = {k}; "
                              f"struct v_{n} *__v = bpf_map_lookup_elem(&{gl.map_name}, __k); "
                              f"if (__v) __sync_fetch_and_add(&__v->v, __d); else {{ {vt}->v = __d; "
                              f"long __r = bpf_map_update_elem(&{gl.map_name}, __k, {vt}, BPF_NOEXIST); "
                              f"if (__r == -17) {{ __v = bpf_map_lookup_elem(&{gl.map_name}, __k); "
                              f"if (__v) __sync_fetch_and_add(&__v->v, __d); }} else if (__r) STP_ERR({overflow}); }} }}", s)
                    return
                if ttype is Type.STRING:
                    fill = f"bpf_probe_read_kernel_str({vt}->v, STRLEN, {self.str(value)});"
                else:
                    fill = f"{vt}->v = {self.long(value)};"
                self.emit(f"{{ {fill} if (bpf_map_update_elem(&{gl.map_name}, {k}, {vt}, BPF_ANY)) STP_ERR({overflow}); }}", s)
            case _:
                raise Refusal(f"assignment to {type(tgt).__name__}", s)

    def loop(self, init, cond, step, body, bound: int, s: ir.Node) -> None:
        self.loop_id += 1
        b = f"__b{self.loop_id}"
        self.emit("{", s)
        self.depth += 1
        if init is not None:
            self.stmt(init)
        step_code = ""
        if step is not None:
            saved, self.lines = self.lines, []
            self.stmt(step)
            step_code = " ".join(ln.strip() for ln in self.lines if not ln.strip().startswith("/*@"))
            self.lines = saved
        err = self.error(f"loop iteration bound {bound} exceeded", s)
        self.emit(f"for (int {b} = 0; ; {b}++) {{")
        self.depth += 1
        if step_code:
            # 'continue' lands here too, so the step runs before the re-test
            self.emit(f"if ({b} > 0) {{ {step_code} }}")
        self.emit(f"if (!({self.long(cond)})) break;")
        self.emit(f"if ({b} >= {int(bound)}) {err};")
        self.stmts(body)
        self.depth -= 1
        self.emit("}")
        self.depth -= 1
        self.emit("}")

    def delete(self, tgt: ir.Expr, s: ir.Node) -> None:
        match tgt:
            case ir.Local(name=n):
                if self.type_of(tgt) is Type.STRING:
                    self.emit(f"fr->s_{n}[0] = 0;", s)
                else:
                    self.emit(f"l_{n} = 0;", s)
            case ir.GlobalVar(name=n):
                gl = self.glob(n, s)
                if gl.map_name:
                    self.emit(f"bpf_for_each_map_elem(&{gl.map_name}, stp_del_cb, 0, 0);", s)
                elif gl.glob.type is Type.STRING:
                    self.emit(f"g->g_{n}[0] = 0;", s)
                else:
                    self.emit(f"g->g_{n} = 0;", s)
            case ir.ArrayGet(name=n, keys=keys):
                gl = self.glob(n, s)
                self.emit(f"bpf_map_delete_elem(&{gl.map_name}, {self.build_key(n, keys, s)});", s)
            case _:
                raise Refusal(f"delete of {type(tgt).__name__}", s)

    def printf(self, fmt: str, args: list[ir.Expr], s: ir.Node) -> None:
        try:
            pieces = F.parse_format(fmt)
        except F.FormatError as err:
            raise Refusal(f"the format {fmt!r}", s, str(err)) from None
        kinds = F.value_args(pieces)
        if len(kinds) != len(args):
            raise Refusal(f"printf with {len(args)} arguments for {len(kinds)} directives", s, "ill-typed IR")
        ev = self.gen.add_event(pieces, kinds, s)
        mem_sizes = [max(p.precision, 1) for p in pieces
                     if isinstance(p, F.Conversion) and p.conv in "mM"]
        mem_user = ["#" in p.flags for p in pieces if isinstance(p, F.Conversion) and p.conv in "mM"]
        pre, fill = [], []
        mi = 0
        for i, (kind, a) in enumerate(zip(kinds, args)):
            if kind == "string":
                pre.append(f"const char *__p{i} = {self.str(a)};")
                fill.append(f"bpf_probe_read_kernel_str(__e->a{i}, STRLEN, __p{i});")
            elif kind == "memory":
                pre.append(f"s64 __p{i} = {self.long(a)};")
                fn = "bpf_probe_read_user" if mem_user[mi] else "bpf_probe_read_kernel"
                fill.append(f"{fn}(__e->a{i}, {mem_sizes[mi]}, (const void *)__p{i});")
                mi += 1
            else:
                pre.append(f"s64 __p{i} = {self.long(a)};")
                fill.append(f"__e->a{i} = __p{i};")
        self.emit("{ " + " ".join(pre), s)
        self.emit(f"  struct {ev.record.name} *__e = bpf_ringbuf_reserve(&stp_rb, sizeof(*__e), 0);")
        self.emit(f"  if (__e) {{ __e->id = {ev.id}; __e->pad = 0; " + " ".join(fill) +
                  " bpf_ringbuf_submit(__e, 0); } else __sync_fetch_and_add(&g->__lost, 1); }")

    def print_hist(self, name: str, keys: list[ir.Expr], s: ir.Node) -> None:
        gl = self.glob(name, s)
        if gl.glob.type is not Type.STATS or gl.glob.hist is None:
            raise Refusal(f"a histogram of '{name}', which has no @hist_log/@hist_linear", s)
        idx = self.gen.add_hist_print(name, gl.key)
        k = self.build_key(name, keys, s)
        self.emit(f"{{ struct k_{name} *__k = {k}; struct stp_ev_hist_{name} *__e = bpf_ringbuf_reserve(&stp_rb, sizeof(*__e), 0); "
                  f"if (__e) {{ __e->id = 2; __e->which = {idx}; __builtin_memcpy(&__e->key, __k, sizeof(*__k)); "
                  "bpf_ringbuf_submit(__e, 0); } }", s)

    # -- the function
    def function(self) -> list[str]:
        p = self.probe
        body_gen_lines: list[str]
        self.depth = 1
        self.stmts(p.body)
        body_gen_lines = self.lines
        self.lines = []
        locs = []
        for n, t in p.locals.items():
            if t is Type.STRING:
                self.frame.add(f"s_{n}", "bytes", 2 * self.gen.opts.strlen)
                locs.append(f"  fr->s_{n}[0] = 0;")
            else:
                locs.append(f"  s64 l_{n} = 0;")
        out = []
        kp = self.kp
        idx = kp.index
        sec, ctx_t = self.gen.section(kp)
        out.append(f'SEC("{sec}")')
        out.append(f"int {kp.prog}({ctx_t} *ctx)")
        out.append("{")
        out.append(f"  __u32 __fi = {idx}; struct {self.frame.name} *fr = bpf_map_lookup_elem(&stp_frames, &__fi);")
        out.append("  struct stp_globals *g = stp_g();")
        out.append("  if (!fr || !g || g->__exited) return 0;")
        if kp.timer_field:
            pt = p.point
            assert isinstance(pt, ir.Timer)
            out.append(f"  if (g->{kp.timer_field} > 1) {{ g->{kp.timer_field}--; return 0; }}")
            out.append(f"  g->{kp.timer_field} = {pt.interval} - {pt.randomize} + "
                       f"(s64)(bpf_get_prandom_u32() % {2 * pt.randomize + 1});")
        if self.arg_saved:
            out.append("  u64 __id = bpf_get_current_pid_tgid();")
            out.append(f"  struct stp_saved *__sv = bpf_map_lookup_elem(&stp_sv{idx}, &__id);")
            out.append("  if (!__sv) return 0;")
            out.append("  s64 __args[6]; __builtin_memcpy(__args, __sv->a, sizeof(__args));")
            out.append(f"  bpf_map_delete_elem(&stp_sv{idx}, &__id);")
        out.extend(locs)
        out.extend(body_gen_lines)
        out.append("  goto stp_out;")
        out.append("stp_out:")
        out.append("  return 0;")
        out.append("}")
        if self.arg_saved:
            out.append('SEC("uprobe")')
            out.append(f"int {kp.entry_prog}(struct pt_regs *ctx)")
            out.append("{")
            out.append("  u64 __id = bpf_get_current_pid_tgid(); struct stp_saved __s = {")
            out.append("    { PT_REGS_PARM1(ctx), PT_REGS_PARM2(ctx), PT_REGS_PARM3(ctx), "
                       "PT_REGS_PARM4(ctx), PT_REGS_PARM5(ctx), PT_REGS_PARM6(ctx) } };")
            out.append(f"  bpf_map_update_elem(&stp_sv{idx}, &__id, &__s, BPF_ANY);")
            out.append("  return 0;")
            out.append("}")
        return out


def generate(program: ir.Program, options: CodegenOptions | None = None):
    """See :func:`stap_ls.backends.bpf.codegen_program.generate`."""
    from stap_ls.backends.bpf.codegen_program import generate as _generate
    return _generate(program, options)


__all__ = ["generate", "Generated", "CodegenOptions", "Refusal", "KernelProbe",
           "EventFormat", "EV_EXIT", "EV_ERROR", "EV_HIST", "EV_FIRST_FORMAT"]
