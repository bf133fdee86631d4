"""BTF reader details and stap's suggestion ranking."""

from __future__ import annotations

import struct

import pytest

from stap_ls.targets.base import TargetError
from stap_ls.targets.btf import BtfFile
from stap_ls.targets.suggest import distance, suggest


def _blob(types: bytes, strings: bytes) -> bytes:
    hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    return hdr + types + strings


def test_hand_built_btf():
    strings = b"\0int\0p\0f\0x\0"
    # 1: int (4 bytes, signed); 2: const int; 3: ptr -> 2;
    # 4: FUNC_PROTO int (x: const int*, ...); 5: FUNC f -> 4; 6: array of int[4]
    t = struct.pack("<III", 1, (1 << 24), 4) + struct.pack("<I", (1 << 24) | 32)
    t += struct.pack("<III", 0, (10 << 24), 1)
    t += struct.pack("<III", 0, (2 << 24), 2)
    t += struct.pack("<III", 0, (13 << 24) | 2, 1) + struct.pack("<II", 9, 3) + struct.pack("<II", 0, 0)
    t += struct.pack("<III", 7, (12 << 24), 4)
    t += struct.pack("<III", 0, (3 << 24), 0) + struct.pack("<III", 1, 1, 4)
    b = BtfFile(_blob(t, strings))
    assert b.type_name(3) == "int const*"
    assert b.type_name(4) == "int (int const*, ...)"
    assert b.type_name(6) == "int[]"
    params = b.function_params("f")
    assert [(v.name, v.type.name) for v in params] == [("x", "int const*")]


@pytest.mark.parametrize("data,msg", [
    (b"", "no header"),
    (b"\x00" * 24, "not BTF"),
    (struct.pack("<HBBIIIII", 0xEB9F, 2, 0, 24, 0, 0, 0, 0), "version"),
    (struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 100, 100, 10), "truncated"),
    (_blob(struct.pack("<III", 0, 31 << 24, 0), b"\0"), "unknown kind"),
    (_blob(struct.pack("<III", 0, 4 << 24 | 5, 0), b"\0"), "overruns"),
])
def test_bad_btf(data, msg):
    with pytest.raises(TargetError, match=msg):
        BtfFile(data, "blob")


def test_distance_weights():
    assert distance("abc", "abc") == 0
    assert distance("abc", "aBc") == 1           # case-only substitution
    assert distance("abc", "axc") == 2
    assert distance("", "abc") == 3              # first row counts 1 per character


def test_suggest_order_ties_byte_order():
    assert suggest("mian", ["useu", "_init", "main", "inl", "_fini"]) == \
        ["main", "inl", "_fini", "_init", "useu"]
    assert suggest("x", []) == []
    assert len(suggest("a", [f"n{i}" for i in range(50)])) == 5
