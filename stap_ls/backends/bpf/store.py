"""User-space access to a loaded program's globals (its BPF maps).

The begin/end interpreter (:mod:`interp`) and the histogram printer read and
write globals through :class:`MapStore`, which packs keys and values with the
layouts from :mod:`layout`.  Scalars live in one struct in the ``stp_glob``
array map; each associative array and aggregate in its own hash map.
Aggregates are per-CPU: reading one sums the CPUs' ``count``/``sum`` and
bucket counts and takes the extreme ``min``/``max``, as stap's runtime does
when it aggregates per-CPU stat data.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

from stap_ls.backends.bpf.ir import Type
from stap_ls.backends.bpf.layout import GlobalLayout, Layouts, Struct
from stap_ls.backends.bpf.libbpf import BpfError, lib


@dataclass
class StatValue:
    count: int = 0
    sum: int = 0
    min: int = 0
    max: int = 0
    hist: list[int] | None = None


class MapStore:
    def __init__(self, layouts: Layouts, map_fds: dict[str, int], nr_cpus: int) -> None:
        self.L = layouts
        self.fds = map_fds
        self.nr_cpus = nr_cpus
        self.c = lib().c

    # -- raw map operations
    def _lookup(self, fd: int, key: bytes, vsize: int) -> bytes | None:
        kb = ctypes.create_string_buffer(key, len(key))
        vb = ctypes.create_string_buffer(vsize)
        r = self.c.bpf_map_lookup_elem(fd, kb, vb)
        return vb.raw if r == 0 else None

    def _update(self, fd: int, key: bytes, value: bytes) -> None:
        kb = ctypes.create_string_buffer(key, len(key))
        vb = ctypes.create_string_buffer(value, len(value))
        r = self.c.bpf_map_update_elem(fd, kb, vb, 0)
        if r < 0:
            raise BpfError("bpf_map_update_elem", r)

    def _keys(self, fd: int, ksize: int) -> list[bytes]:
        keys: list[bytes] = []
        cur = None
        nxt = ctypes.create_string_buffer(ksize)
        while len(keys) < 1 << 20:
            r = self.c.bpf_map_get_next_key(fd, cur, nxt)
            if r < 0:
                break
            keys.append(nxt.raw)
            cur = ctypes.create_string_buffer(nxt.raw, ksize)
        return keys

    # -- scalars
    def _scalars(self) -> list:
        raw = self._lookup(self.fds["stp_glob"], b"\0\0\0\0", self.L.scalars.size)
        return self.L.scalars.unpack(raw or bytes(self.L.scalars.size))

    def get_field(self, field: str):
        idx = [f.name for f in self.L.scalars.fields].index(field)
        return self._scalars()[idx]

    def set_field(self, field: str, value) -> None:
        vals = self._scalars()
        idx = [f.name for f in self.L.scalars.fields].index(field)
        vals[idx] = value
        self._update(self.fds["stp_glob"], b"\0\0\0\0", self.L.scalars.pack(vals))

    def get_scalar(self, name: str):
        return self.get_field(f"g_{name}")

    def set_scalar(self, name: str, value) -> None:
        self.set_field(f"g_{name}", value)

    # -- arrays
    def _gl(self, name: str) -> GlobalLayout:
        return self.L.globals[name]

    def _key(self, gl: GlobalLayout, keys: list) -> bytes:
        assert gl.key is not None
        return gl.key.pack(list(keys) if gl.glob.keys else [0])

    def arr_get(self, name: str, keys: list):
        gl = self._gl(name)
        raw = self._lookup(self.fds[gl.map_name], self._key(gl, keys), gl.value.size)
        if raw is None:
            return "" if gl.glob.type is Type.STRING else 0
        return gl.value.unpack(raw)[0]

    def arr_exists(self, name: str, keys: list) -> bool:
        gl = self._gl(name)
        return self._lookup(self.fds[gl.map_name], self._key(gl, keys), self._vsize(gl)) is not None

    def arr_set(self, name: str, keys: list, value) -> None:
        gl = self._gl(name)
        try:
            self._update(self.fds[gl.map_name], self._key(gl, keys), gl.value.pack([value]))
        except BpfError as e:
            raise OverflowError("Array overflow, check MAXMAPENTRIES") from e

    def arr_delete(self, name: str, keys: list) -> None:
        gl = self._gl(name)
        kb = self._key(gl, keys)
        self.c.bpf_map_delete_elem(self.fds[gl.map_name], ctypes.create_string_buffer(kb, len(kb)))

    def arr_clear(self, name: str) -> None:
        gl = self._gl(name)
        fd = self.fds[gl.map_name]
        for k in self._keys(fd, gl.key.size):
            self.c.bpf_map_delete_elem(fd, ctypes.create_string_buffer(k, len(k)))

    def arr_keys(self, name: str) -> list[tuple]:
        gl = self._gl(name)
        return [tuple(gl.key.unpack(k)) for k in self._keys(self.fds[gl.map_name], gl.key.size)]

    def _vsize(self, gl: GlobalLayout) -> int:
        size = gl.value.size
        if gl.glob.type is Type.STATS:
            return (size + 7) // 8 * 8 * self.nr_cpus
        return size

    # -- aggregates
    def stat_get(self, name: str, keys: list) -> StatValue:
        gl = self._gl(name)
        st: Struct = gl.value
        per = (st.size + 7) // 8 * 8
        raw = self._lookup(self.fds[gl.map_name], self._key(gl, keys), per * self.nr_cpus)
        out = StatValue(hist=[0] * st.hist_buckets if st.hist_buckets else None)
        if raw is None:
            return out
        for cpu in range(self.nr_cpus):
            chunk = raw[cpu * per: cpu * per + st.size]
            count, total, mn, mx = st.unpack(chunk)
            if count == 0:
                continue
            out.min = mn if out.count == 0 else min(out.min, mn)
            out.max = mx if out.count == 0 else max(out.max, mx)
            out.count += count
            out.sum += total
            if out.hist is not None:
                for i, c in enumerate(st.unpack_hist(chunk)):
                    out.hist[i] += c
        return out

    def stat_add(self, name: str, keys: list, value: int) -> None:
        """``<<<`` from user space: folded into CPU 0's slot."""
        from stap_ls.backends.bpf import format as F
        gl = self._gl(name)
        st: Struct = gl.value
        per = (st.size + 7) // 8 * 8
        kb = self._key(gl, keys)
        raw = bytearray(self._lookup(self.fds[gl.map_name], kb, per * self.nr_cpus) or bytes(per * self.nr_cpus))
        count, total, mn, mx = st.unpack(bytes(raw[:st.size]))
        hist = st.unpack_hist(bytes(raw[:st.size]))
        if count == 0:
            mn = mx = value
        mn, mx = min(mn, value), max(mx, value)
        if hist and gl.glob.hist is not None:
            h = gl.glob.hist
            idx = F.log_bucket(value) if h.kind == "log" else F.linear_bucket(value, h.start, h.interval, len(hist))
            hist[idx] += 1
        packed = bytearray(st.pack([count + 1, total + value, mn, mx]))
        if hist:
            import struct as S
            S.pack_into(f"<{len(hist)}q", packed, 32, *hist)
        raw[:st.size] = packed
        self._update(self.fds[gl.map_name], kb, bytes(raw))
