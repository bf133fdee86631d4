"""ctypes bindings to libbpf 1.x (Debian's ``libbpf1``), just what the engine uses.

Only the BPF engine's runtime imports this.  The pitfalls written down in
/work/shared/REFERENCE.md are handled here once:

* every pointer-returning function has ``restype = c_void_p`` and reports
  errors through ``errno`` (the library is opened with ``use_errno=True``);
  int-returning ones return ``-errno``;
* option structs carry ``sz`` set to their exact size (``bpf_uprobe_opts`` is
  40 bytes, ``perf_event_attr`` 128);
* ctypes callback objects are kept alive by their owners (:class:`LibBpf`
  keeps the print callback, :class:`RingBuffer` its sample callback);
* libbpf's messages (the verifier log among them) arrive through
  ``libbpf_set_print``; :func:`capture_log` collects them per load.

Errors raise :class:`BpfError` carrying errno and the libbpf log so far.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno as errno_mod
import os
import threading
from ctypes import (CFUNCTYPE, POINTER, Structure, c_bool, c_char_p, c_int, c_size_t,
                    c_uint32, c_uint64, c_ulong, c_void_p, byref, create_string_buffer)

LIBBPF_NAMES = ("libbpf.so.1", "libbpf.so")


class BpfError(OSError):
    """A libbpf call failed."""

    def __init__(self, what: str, err: int, log: str = "") -> None:
        err = abs(err)
        super().__init__(err, f"{what}: {os.strerror(err) if err else 'failed'}")
        self.what = what
        self.log = log


class BpfUprobeOpts(Structure):
    _fields_ = [("sz", c_size_t), ("ref_ctr_offset", c_size_t), ("bpf_cookie", c_uint64),
                ("retprobe", c_bool), ("func_name", c_char_p)]


assert ctypes.sizeof(BpfUprobeOpts) == 40


PRINT_FN = CFUNCTYPE(c_int, c_int, c_char_p, c_void_p)
SAMPLE_FN = CFUNCTYPE(c_int, c_void_p, c_void_p, c_size_t)

_lib: "LibBpf | None" = None
_lib_lock = threading.Lock()


class LibBpf:
    """The loaded library with typed functions."""

    def __init__(self) -> None:
        last: Exception | None = None
        for name in LIBBPF_NAMES:
            try:
                self.c = ctypes.CDLL(name, use_errno=True)
                break
            except OSError as e:
                last = e
        else:
            raise BpfError(f"cannot load libbpf ({last}); install the Debian package libbpf1",
                           errno_mod.ENOENT)
        self.libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        c = self.c
        ptr = c_void_p
        sig = {
            "bpf_object__open_file": (ptr, [c_char_p, c_void_p]),
            "bpf_object__load": (c_int, [ptr]),
            "bpf_object__close": (None, [ptr]),
            "bpf_object__find_program_by_name": (ptr, [ptr, c_char_p]),
            "bpf_object__find_map_by_name": (ptr, [ptr, c_char_p]),
            "bpf_map__fd": (c_int, [ptr]),
            "bpf_program__fd": (c_int, [ptr]),
            "bpf_program__set_autoload": (c_int, [ptr, c_bool]),
            "bpf_program__attach_tracepoint": (ptr, [ptr, c_char_p, c_char_p]),
            "bpf_program__attach_uprobe_opts": (ptr, [ptr, c_int, c_char_p, c_size_t, ptr]),
            "bpf_program__attach_usdt": (ptr, [ptr, c_int, c_char_p, c_char_p, c_char_p, ptr]),
            "bpf_program__attach_perf_event": (ptr, [ptr, c_int]),
            "bpf_link__destroy": (c_int, [ptr]),
            "ring_buffer__new": (ptr, [c_int, SAMPLE_FN, ptr, ptr]),
            "ring_buffer__poll": (c_int, [ptr, c_int]),
            "ring_buffer__consume": (c_int, [ptr]),
            "ring_buffer__free": (None, [ptr]),
            "bpf_map_lookup_elem": (c_int, [c_int, ptr, ptr]),
            "bpf_map_update_elem": (c_int, [c_int, ptr, ptr, c_uint64]),
            "bpf_map_delete_elem": (c_int, [c_int, ptr]),
            "bpf_map_get_next_key": (c_int, [c_int, ptr, ptr]),
            "libbpf_num_possible_cpus": (c_int, []),
            "libbpf_set_print": (ptr, [PRINT_FN]),
        }
        for name, (res, args) in sig.items():
            f = getattr(c, name)
            f.restype = res
            f.argtypes = args
        self.libc.vsnprintf.restype = c_int
        self.libc.vsnprintf.argtypes = [c_char_p, c_size_t, c_char_p, c_void_p]
        self.libc.syscall.restype = ctypes.c_long
        self.libc.ioctl.restype = c_int
        self.libc.ioctl.argtypes = [c_int, c_ulong, c_ulong]
        self._log_lock = threading.Lock()
        self._log: list[str] | None = None
        self._print_cb = PRINT_FN(self._on_print)  # kept alive for the process's life
        c.libbpf_set_print(self._print_cb)

    # -- logging

    def _on_print(self, level: int, fmt: bytes, va: int) -> int:
        buf = create_string_buffer(1 << 16)
        n = self.libc.vsnprintf(buf, len(buf), fmt, va)
        if self._log is not None:
            self._log.append(buf.value.decode("utf-8", "replace"))
        return max(n, 0)

    def start_log(self) -> None:
        self._log = []

    def take_log(self) -> str:
        text = "".join(self._log or [])
        self._log = None
        return text

    # -- helpers

    def check_ptr(self, p: int | None, what: str) -> int:
        if not p:
            raise BpfError(what, ctypes.get_errno() or errno_mod.EINVAL)
        return p

    def check_int(self, r: int, what: str) -> int:
        if r < 0:
            raise BpfError(what, r)
        return r

    def perf_event_open_cpu_clock(self, cpu: int, period_ns: int) -> int:
        """A software CPU-clock perf event on one CPU sampling every ``period_ns``."""
        attr = (ctypes.c_uint8 * 128)()
        c_uint32.from_buffer(attr, 0).value = 1            # PERF_TYPE_SOFTWARE
        c_uint32.from_buffer(attr, 4).value = 128          # size
        c_uint64.from_buffer(attr, 8).value = 0            # PERF_COUNT_SW_CPU_CLOCK
        c_uint64.from_buffer(attr, 16).value = max(1, period_ns)  # sample_period
        fd = self.libc.syscall(298, byref(attr), -1, cpu, -1, 8)  # PERF_FLAG_FD_CLOEXEC
        if fd < 0:
            raise BpfError(f"perf_event_open(cpu {cpu})", ctypes.get_errno())
        return int(fd)


def lib() -> LibBpf:
    """The process-wide library instance (loaded on first use)."""
    global _lib
    with _lib_lock:
        if _lib is None:
            _lib = LibBpf()
        return _lib


class RingBuffer:
    """A libbpf ring buffer polled from Python; ``on_sample(bytes)`` per record."""

    def __init__(self, map_fd: int, on_sample) -> None:
        self._lib = lib()
        self._on_sample = on_sample
        self._cb = SAMPLE_FN(self._sample)
        self.ptr = self._lib.check_ptr(self._lib.c.ring_buffer__new(map_fd, self._cb, None, None),
                                       "ring_buffer__new")

    def _sample(self, _ctx: int, data: int, size: int) -> int:
        try:
            self._on_sample(ctypes.string_at(data, size))
        except Exception:  # never let an exception cross into C
            import traceback
            traceback.print_exc()
        return 0

    def poll(self, timeout_ms: int) -> int:
        return self._lib.c.ring_buffer__poll(self.ptr, timeout_ms)

    def consume(self) -> int:
        return self._lib.c.ring_buffer__consume(self.ptr)

    def free(self) -> None:
        if self.ptr:
            self._lib.c.ring_buffer__free(self.ptr)
            self.ptr = 0


def uprobe_opts(func_name: str, retprobe: bool) -> BpfUprobeOpts:
    o = BpfUprobeOpts()
    o.sz = ctypes.sizeof(BpfUprobeOpts)
    o.retprobe = retprobe
    o.func_name = func_name.encode()
    return o


__all__ = ["BpfError", "LibBpf", "RingBuffer", "lib", "uprobe_opts", "POINTER"]
