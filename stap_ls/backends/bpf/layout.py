"""Binary layouts shared by the generated C and the Python runtime.

Every piece of data that crosses the kernel/user boundary — scalar globals,
associative-array keys and values, statistics, ring-buffer records — is a
struct of 8-byte integers and ``char[N]`` strings (N a multiple of 8), so C and
Python agree without padding rules.  :class:`Struct` renders the C declaration
and packs/unpacks the same bytes in Python.

Statistics values are ``{count, sum, min, max, hist[NB]}`` per CPU (maps of
type ``PERCPU_*``); user space adds the CPUs up, as stap's runtime aggregates
its per-CPU stat data.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from stap_ls.backends.bpf import format as fmt_mod
from stap_ls.backends.bpf.ir import Global, HistSpec, Type


@dataclass
class FieldDef:
    name: str
    kind: str   # "long" | "string" | "bytes"
    size: int   # bytes

    def c_decl(self) -> str:
        if self.kind == "long":
            return f"s64 {self.name};"
        return f"char {self.name}[{self.size}];"


@dataclass
class Struct:
    name: str
    fields: list[FieldDef] = field(default_factory=list)
    #: extra C text appended inside the struct (e.g. a histogram array)
    hist_buckets: int = 0

    def add(self, name: str, kind: str, size: int = 8) -> FieldDef:
        f = FieldDef(name, kind, (size + 7) // 8 * 8 if kind != "long" else 8)
        self.fields.append(f)
        return f

    @property
    def size(self) -> int:
        return sum(f.size for f in self.fields) + 8 * self.hist_buckets

    def offset(self, name: str) -> int:
        off = 0
        for f in self.fields:
            if f.name == name:
                return off
            off += f.size
        raise KeyError(name)

    def c_decl(self) -> str:
        body = " ".join(f.c_decl() for f in self.fields)
        if self.hist_buckets:
            body += f" s64 hist[{self.hist_buckets}];"
        if not body:
            body = "s64 __empty;"
        return f"struct {self.name} {{ {body} }};"

    def pack(self, values: list) -> bytes:
        out = bytearray(self.size)
        off = 0
        for f, v in zip(self.fields, values):
            if f.kind == "long":
                struct.pack_into("<q", out, off, to_s64(int(v)))
            else:
                b = v.encode("utf-8", "surrogateescape") if isinstance(v, str) else bytes(v)
                b = b[: f.size - 1] if f.kind == "string" else b[: f.size]
                out[off: off + len(b)] = b
            off += f.size
        return bytes(out)

    def unpack(self, data: bytes) -> list:
        vals: list = []
        off = 0
        for f in self.fields:
            if f.kind == "long":
                vals.append(struct.unpack_from("<q", data, off)[0])
            elif f.kind == "string":
                raw = data[off: off + f.size]
                cut = raw.find(b"\0")
                vals.append((raw if cut < 0 else raw[:cut]).decode("utf-8", "surrogateescape"))
            else:
                vals.append(bytes(data[off: off + f.size]))
            off += f.size
        return vals

    def unpack_hist(self, data: bytes) -> list[int]:
        base = sum(f.size for f in self.fields)
        return list(struct.unpack_from(f"<{self.hist_buckets}q", data, base)) if self.hist_buckets else []


def to_s64(v: int) -> int:
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= 1 << 63 else v


def kind_of(t: Type) -> str:
    return "string" if t is Type.STRING else "long"


def hist_buckets(spec: HistSpec | None) -> int:
    if spec is None:
        return 0
    if spec.kind == "log":
        return fmt_mod.HIST_LOG_BUCKETS
    return fmt_mod.linear_buckets(spec.start, spec.stop, spec.interval)


@dataclass
class GlobalLayout:
    """Where one global lives: a field of the scalar struct, or its own map."""

    glob: Global
    map_name: str = ""            # "" for a scalar long/string
    key: Struct | None = None
    value: Struct | None = None


class Layouts:
    """All layouts of one program, for a given string length."""

    def __init__(self, globals_: list[Global], strlen: int) -> None:
        self.strlen = strlen
        self.scalars = Struct("stp_globals")
        self.globals: dict[str, GlobalLayout] = {}
        for g in globals_:
            gl = GlobalLayout(g)
            if g.type is Type.STATS:
                gl.map_name = f"st_{g.name}"
                gl.key = self._key(g)
                gl.value = Struct(f"sv_{g.name}")
                for n in ("count", "sum", "min", "max"):
                    gl.value.add(n, "long")
                gl.value.hist_buckets = hist_buckets(g.hist)
            elif g.is_array:
                gl.map_name = f"m_{g.name}"
                gl.key = self._key(g)
                gl.value = Struct(f"v_{g.name}")
                gl.value.add("v", kind_of(g.type), strlen)
            else:
                self.scalars.add(f"g_{g.name}", kind_of(g.type), strlen)
            self.globals[g.name] = gl
        # hidden run-time fields written by user space before attaching
        for hidden in ("__target", "__realtime_off", "__exited", "__lost"):
            self.scalars.add(hidden, "long")

    def _key(self, g: Global) -> Struct:
        k = Struct(f"k_{g.name}")
        for i, t in enumerate(g.keys):
            k.add(f"k{i}", kind_of(t), self.strlen)
        if not g.keys:
            k.add("k0", "long")  # scalar aggregate: one fixed key 0
        return k

    def add_timer_counter(self, idx: int) -> str:
        name = f"__tmr{idx}"
        self.scalars.add(name, "long")
        return name
