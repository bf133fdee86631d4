"""On-disk caches of the kernel indexes: kallsyms and the trace-header scan.

Each test runs with a private cache directory (conftest's ``private_cache``).
They check that a second load comes from the cache (the parser is not run
again), that the cached answer equals a fresh one, and that every input the
key names invalidates it: a changed file, an added header, another boot id,
other loaded modules, a corrupt entry.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stap_ls.targets import cache, trace_headers
from stap_ls.targets.kernel_sources import KernelSymbols
from stap_ls.targets.model import TargetModel
from tests.targets.conftest import STAP_RELEASE

MAP = """\
ffffffff81000000 T _stext
ffffffff81001000 T vfs_read
ffffffff81002000 t do_sys_open
ffffffff81003000 t do_sys_open.cold
ffffffff81004000 D some_data
ffffffffa0000000 t ext4_fill_super\t[ext4]
"""

HEADER = """\
#undef TRACE_SYSTEM
#define TRACE_SYSTEM demo
TRACE_EVENT(demo_tick,
	TP_PROTO(unsigned long ticks, const char *why),
	TP_ARGS(ticks, why),
	TP_STRUCT__entry(__field(unsigned long, ticks)),
	TP_fast_assign(__entry->ticks = ticks;),
	TP_printk("%lu", __entry->ticks)
);
"""


def _entries(kind: str) -> list[str]:
    d = cache.cache_dir()
    return sorted(f for f in os.listdir(d) if f.startswith(kind + "-")) if os.path.isdir(d) else []


def _no_parse(monkeypatch, cls_or_mod, name: str) -> None:
    def boom(*a, **k):
        raise AssertionError(f"{name} ran although the cache should have answered")
    monkeypatch.setattr(cls_or_mod, name, boom)


# -- kallsyms / System.map ---------------------------------------------------------
def test_system_map_cached_then_invalidated_by_a_change(tmp_path, monkeypatch) -> None:
    p = tmp_path / "System.map-test"
    p.write_text(MAP)
    fresh = KernelSymbols.load(str(p))
    assert fresh.owner == {"_stext": "kernel", "vfs_read": "kernel", "do_sys_open": "kernel",
                           "ext4_fill_super": "ext4"}
    assert len(_entries("kallsyms")) == 1
    with monkeypatch.context() as m:
        _no_parse(m, KernelSymbols, "_read")
        again = KernelSymbols.load(str(p))
    assert again.owner == fresh.owner
    assert list(again.owner) == list(fresh.owner)       # order kept too
    # a changed file (size and mtime) is read again
    p.write_text(MAP + "ffffffff81005000 T vfs_write\n")
    changed = KernelSymbols.load(str(p))
    assert "vfs_write" in changed.owner


def test_corrupt_kallsyms_entry_is_rebuilt(tmp_path) -> None:
    p = tmp_path / "System.map-test"
    p.write_text(MAP)
    KernelSymbols.load(str(p))
    (entry,) = _entries("kallsyms")
    Path(cache.cache_dir(), entry).write_bytes(b"\x80\x05garbage")
    assert KernelSymbols.load(str(p)).owner["vfs_read"] == "kernel"


def test_no_cache_when_disabled(tmp_path, monkeypatch) -> None:
    p = tmp_path / "System.map-test"
    p.write_text(MAP)
    monkeypatch.setenv("STAP_LS_NO_CACHE", "1")
    KernelSymbols.load(str(p))
    assert _entries("kallsyms") == []
    KernelSymbols.load(str(p), use_cache=False)
    assert _entries("kallsyms") == []


def test_kallsyms_identity_follows_boot_and_modules(tmp_path) -> None:
    boot, mods = tmp_path / "boot_id", tmp_path / "modules"
    boot.write_text("1111-aaaa\n")
    mods.write_text("ext4 1000 1 - Live 0x0\n")
    k1 = cache.kallsyms_identity("/proc/kallsyms", str(boot), str(mods))
    assert k1 is not None
    assert cache.kallsyms_identity("/proc/kallsyms", str(boot), str(mods)) == k1
    mods.write_text("ext4 1000 1 - Live 0x0\nxfs 2000 0 - Live 0x0\n")
    k2 = cache.kallsyms_identity("/proc/kallsyms", str(boot), str(mods))
    assert k2 != k1
    boot.write_text("2222-bbbb\n")
    assert cache.kallsyms_identity("/proc/kallsyms", str(boot), str(mods)) not in (k1, k2)
    # no boot id: nothing can be keyed, so nothing is cached
    assert cache.kallsyms_identity("/proc/kallsyms", str(tmp_path / "absent"), str(mods)) is None


def test_proc_kallsyms_from_cache_equals_fresh(monkeypatch) -> None:
    if not os.access("/proc/kallsyms", os.R_OK):
        pytest.fail("/proc/kallsyms is not readable (these tests run as root)")
    fresh = KernelSymbols.load("/proc/kallsyms", use_cache=False)
    first = KernelSymbols.load("/proc/kallsyms")
    assert len(_entries("kallsyms")) == 1
    with monkeypatch.context() as m:
        _no_parse(m, KernelSymbols, "_read")
        cached = KernelSymbols.load("/proc/kallsyms")
    assert len(fresh.owner) > 10000
    assert first.owner == fresh.owner == cached.owner


# -- trace headers -----------------------------------------------------------------
def _tree(root: Path) -> Path:
    d = root / "include" / "trace" / "events"
    d.mkdir(parents=True)
    (d / "demo.h").write_text(HEADER)
    return root


def test_trace_headers_cached_and_invalidated(tmp_path, monkeypatch) -> None:
    build = _tree(tmp_path / "build")
    fresh = trace_headers.scan_trace_headers(str(build))
    assert [(v.name, v.type.name) for v in fresh["demo:demo_tick"]] == [
        ("ticks", "long unsigned int"), ("why", "char const*")]
    assert len(_entries("trace-headers")) == 1
    with monkeypatch.context() as m:
        _no_parse(m, trace_headers, "_scan")
        cached = trace_headers.scan_trace_headers(str(build))
    assert cached == fresh
    # a changed header rescans
    h = build / "include" / "trace" / "events" / "demo.h"
    h.write_text(HEADER.replace("demo_tick", "demo_tock"))
    st = h.stat()
    os.utime(h, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    changed = trace_headers.scan_trace_headers(str(build))
    assert "demo:demo_tock" in changed and "demo:demo_tick" not in changed
    # so does a new one
    (h.parent / "other.h").write_text(HEADER.replace("demo", "other"))
    assert "other:other_tick" in trace_headers.scan_trace_headers(str(build))


def test_real_trace_headers_cached_equal_fresh(monkeypatch) -> None:
    build = f"/lib/modules/{STAP_RELEASE}/build"
    if not os.path.isdir(build):
        pytest.fail(f"{build} missing: install linux-headers-{STAP_RELEASE}")
    fresh = trace_headers.scan_trace_headers(build, use_cache=False)
    trace_headers.scan_trace_headers(build)
    with monkeypatch.context() as m:
        _no_parse(m, trace_headers, "_scan")
        cached = trace_headers.scan_trace_headers(build)
    assert len(fresh) > 500
    assert cached == fresh
    # through the model, as pass 2 asks for another release's tracepoints
    tps = TargetModel(kernel_release=STAP_RELEASE).tracepoints("sched:sched_switch")
    assert [tp.full_name for tp in tps] == ["sched:sched_switch"]
    assert [a.name for a in tps[0].args][:2] == ["preempt", "prev"]


# -- the similar-names search --------------------------------------------------------
def test_similar_kernel_functions_memoised(monkeypatch) -> None:
    model = TargetModel()
    first = model.similar_kernel_functions("vfs_raed")
    assert "vfs_read" in first
    import stap_ls.targets.model as M
    with monkeypatch.context() as m:
        _no_parse(m, M, "suggest")
        assert model.similar_kernel_functions("vfs_raed") == first
