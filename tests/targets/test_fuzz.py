"""Mutated and truncated ELF/DWARF binaries and BTF blobs: a clear TargetError
or an answer, never another exception and never a hang."""

from __future__ import annotations

import signal
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stap_ls.targets.base import TargetError
from stap_ls.targets.btf import BtfFile
from stap_ls.targets.model import TargetModel
from stap_ls.targets.userspace import UserBinary

BTF_PATH = "/sys/kernel/btf/vmlinux"


@contextmanager
def deadline(seconds: int):
    def boom(signum, frame):
        raise TimeoutError(f"hang: no answer within {seconds}s")
    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _sections(data: bytes) -> list[tuple[int, int]]:
    """(offset, size) of the DWARF and note sections, where mutations hurt most."""
    from io import BytesIO

    from elftools.elf.elffile import ELFFile
    elf = ELFFile(BytesIO(data))
    return [(s["sh_offset"], s["sh_size"]) for s in elf.iter_sections()
            if s.name.startswith((".debug_", ".note", ".symtab", ".rela.plt", ".dynamic"))
            and s["sh_size"]]


mutation = st.tuples(st.integers(0, 10**9), st.integers(0, 255))


def _mutate(data: bytes, regions, picks, flips, cut) -> bytes:
    buf = bytearray(data)
    for (r, off), (pos, val) in zip(picks, flips):
        start, size = regions[r % len(regions)]
        buf[start + (off % size)] = val
    if cut is not None:
        del buf[max(16, cut % len(buf)):]
    return bytes(buf)


def _exercise_binary(path: str) -> None:
    ub = UserBinary(path, use_cache=False)
    funcs = ub.functions()
    for f in funcs[:30]:
        ub.load_vars(f)
        for file, line, addr in ub.statement_lines(f, None, None)[:3]:
            ub.vars_at(f, addr)
    ub.marks()
    ub.plt()
    m = TargetModel(btf_path="/nonexistent", use_cache=False)
    m._binaries[path] = ub
    for f in funcs[:10]:
        for v in f.vars[:3]:
            m.members(v.type)
            m.resolve_chain(v.type, ["next", "x"])


@pytest.fixture(scope="module")
def prog_bytes(bins):
    data = (bins / "prog").read_bytes()
    return data, _sections(data)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(picks=st.lists(st.tuples(st.integers(0, 64), st.integers(0, 10**9)), max_size=24),
       flips=st.lists(mutation, max_size=24),
       cut=st.one_of(st.none(), st.integers(0, 10**9)))
def test_mutated_elf_dwarf(prog_bytes, tmp_path_factory, picks, flips, cut):
    data, regions = prog_bytes
    mutated = _mutate(data, regions, picks, flips, cut)
    p = tmp_path_factory.mktemp("fuzz") / "prog"
    p.write_bytes(mutated)
    with deadline(20):
        try:
            _exercise_binary(str(p))
        except TargetError as e:
            assert str(p) in str(e) or "stapsdt" in str(e)


def test_truncations_of_elf(bins, tmp_path):
    data = (bins / "prog").read_bytes()
    for n in (0, 3, 4, 20, 64, 200, 1000, len(data) // 3, len(data) // 2, len(data) - 100):
        p = tmp_path / f"cut{n}"
        p.write_bytes(data[:n])
        with deadline(20):
            try:
                _exercise_binary(str(p))
            except TargetError as e:
                assert str(p) in str(e)


@pytest.fixture(scope="module")
def btf_bytes():
    with open(BTF_PATH, "rb") as f:
        return f.read()


def _exercise_btf(data: bytes) -> None:
    b = BtfFile(data, "mutated-btf")
    for name in ("vfs_read", "do_sys_open", "schedule", "kfree"):
        b.function_params(name)
        b.function_return(name)
    n = len(b.offsets)
    for tid in range(1, n + 1, max(1, n // 300)):
        b.type_name(tid)
        b.describe(tid)
    b.find_type("struct task_struct")


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(flips=st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 255)), max_size=40),
       header=st.booleans(), cut=st.one_of(st.none(), st.integers(0, 10**9)))
def test_mutated_btf(btf_bytes, flips, header, cut):
    buf = bytearray(btf_bytes)
    for pos, val in flips:
        # mostly the type section, sometimes the header
        where = pos % 24 if header and pos % 3 == 0 else 24 + pos % (len(buf) - 24)
        buf[where] = val
    if cut is not None:
        del buf[cut % len(buf):]
    with deadline(30):
        try:
            _exercise_btf(bytes(buf))
        except TargetError as e:
            assert "BTF" in str(e) or "mutated-btf" in str(e)
