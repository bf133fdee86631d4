"""A reader of the BPF Type Format (BTF), written from the kernel's format docs.

pyelftools does not parse BTF, so this module reads the blob itself:

* a header (magic ``0xEB9F``, version, ``hdr_len``, then the offsets and
  lengths of the type and string sections, relative to the header's end);
* the type section: records of ``name_off, info, size_or_type`` (12 bytes),
  where ``info`` holds ``vlen`` (bits 0-15), ``kind`` (bits 24-28) and
  ``kind_flag`` (bit 31), followed by kind-specific data (members, params,
  enumerators, array info...);
* the string section, NUL-terminated names addressed by offset.

Type ids start at 1 (0 is ``void``).  Module BTF is *split* BTF: its ids and
string offsets continue those of the base (vmlinux) blob, so a
:class:`BtfFile` may be given a ``base``.

Parsing is one linear pass recording where each type starts (an
``array('I')``) and name indexes for functions and named types; types are
decoded on demand.  :meth:`BtfFile.index_state` / :meth:`BtfFile.from_index`
let :mod:`stap_ls.targets.cache` store that pass on disk.  A truncated or
corrupt blob raises :class:`~stap_ls.targets.base.TargetError`, never anything
else.
"""

from __future__ import annotations

import struct
import zlib
from array import array

from stap_ls.targets.base import BTF, Member, TargetError, TypeInfo, TypeRef, Var

MAGIC = 0xEB9F
INT, PTR, ARRAY, STRUCT, UNION, ENUM, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, \
    FUNC, FUNC_PROTO, VAR, DATASEC, FLOAT, DECL_TAG, TYPE_TAG, ENUM64 = range(1, 20)

_QUALS = {VOLATILE: "volatile", CONST: "const", RESTRICT: "restrict"}
# bytes of kind-specific data: fixed, or per vlen item
_FIXED = {INT: 4, ARRAY: 12, VAR: 4, DECL_TAG: 4}
_PER_ITEM = {STRUCT: 12, UNION: 12, ENUM: 8, FUNC_PROTO: 8, DATASEC: 12, ENUM64: 12}
_NAMED_KINDS = {STRUCT: "struct", UNION: "union", ENUM: "enum", ENUM64: "enum",
                TYPEDEF: "typedef", INT: "base", FLOAT: "base", FWD: "fwd"}
_HDR = struct.Struct("<HBBIIIII")
_TYPE = struct.Struct("<III")


def _guard(method):
    """Turn a read past the blob (a corrupt id or offset) into TargetError."""
    import functools

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except TargetError:
            raise
        except (struct.error, IndexError, ValueError, RecursionError) as e:
            raise TargetError(f"{self.path}: corrupt BTF ({type(e).__name__}: {e})") from None
    return wrapper


class BtfFile:
    """One BTF blob (vmlinux, or a module's split BTF over ``base``)."""

    def __init__(self, data: bytes, path: str = "<btf>", base: BtfFile | None = None,
                 _index: dict | None = None) -> None:
        self.path = path
        self.data = data
        self.base = base
        self.first_id = (base.next_id if base else 1)
        self.str_base = (base.str_len_total if base else 0)
        self._parse_header()
        if _index is not None:
            self.offsets = _index["offsets"]
            self.funcs: dict[str, int] = _index["funcs"]
            self.named: dict[str, list[int]] = _index["named"]
        else:
            self._scan()
        self._fmt_cache: dict[int, str] = {}

    # -- parsing -------------------------------------------------------------
    def _parse_header(self) -> None:
        d = self.data
        if len(d) < _HDR.size:
            raise TargetError(f"{self.path}: BTF truncated: {len(d)} bytes, no header")
        magic, version, _flags, hdr_len, toff, tlen, soff, slen = _HDR.unpack_from(d, 0)
        if magic != MAGIC:
            raise TargetError(f"{self.path}: not BTF (magic {magic:#06x}, expected 0xeb9f)")
        if version != 1:
            raise TargetError(f"{self.path}: unsupported BTF version {version}")
        if hdr_len < _HDR.size or hdr_len > len(d):
            raise TargetError(f"{self.path}: BTF header length {hdr_len} is invalid")
        self.type_start = hdr_len + toff
        self.type_end = self.type_start + tlen
        self.str_start = hdr_len + soff
        self.str_end = self.str_start + slen
        if self.type_end > len(d) or self.str_end > len(d):
            raise TargetError(f"{self.path}: BTF truncated: sections end at byte "
                              f"{max(self.type_end, self.str_end)}, file has {len(d)}")
        self.str_len_total = self.str_base + slen

    def _scan(self) -> None:
        d = self.data
        off = self.type_start
        end = self.type_end
        offsets = array("I")
        funcs: dict[str, int] = {}
        named: dict[str, list[int]] = {}
        unpack = _TYPE.unpack_from
        tid = self.first_id
        fixed, per_item = _FIXED, _PER_ITEM
        while off < end:
            if off + 12 > end:
                raise TargetError(f"{self.path}: BTF type {tid} truncated at byte {off}")
            name_off, info, _ = unpack(d, off)
            kind = (info >> 24) & 0x1F
            vlen = info & 0xFFFF
            if kind == 0 or kind > ENUM64:
                raise TargetError(f"{self.path}: BTF type {tid} has unknown kind {kind}")
            offsets.append(off)
            if name_off and (kind == FUNC or kind in _NAMED_KINDS):
                name = self.string(name_off)
                if kind == FUNC:
                    funcs.setdefault(name, tid)
                else:
                    named.setdefault(name, []).append(tid)
            off += 12 + fixed.get(kind, 0) + per_item.get(kind, 0) * vlen
            tid += 1
        if off != end:
            raise TargetError(f"{self.path}: BTF type section overruns its length")
        self.offsets = offsets
        self.funcs = funcs
        self.named = named

    @property
    def next_id(self) -> int:
        return self.first_id + len(self.offsets)

    def index_state(self) -> dict:
        return {"offsets": self.offsets, "funcs": self.funcs, "named": self.named}

    @classmethod
    def from_index(cls, data: bytes, path: str, index: dict,
                   base: BtfFile | None = None) -> BtfFile:
        return cls(data, path, base, _index=index)

    @staticmethod
    def checksum(data: bytes) -> str:
        return f"{zlib.crc32(data):08x}-{len(data)}"

    # -- low-level access ----------------------------------------------------
    def _owner(self, tid: int) -> BtfFile:
        if tid < self.first_id:
            if self.base is None:
                raise TargetError(f"{self.path}: BTF type id {tid} out of range")
            return self.base._owner(tid)
        return self

    def string(self, off: int) -> str:
        if off < self.str_base:
            if self.base is None:
                raise TargetError(f"{self.path}: BTF string offset {off} out of range")
            return self.base.string(off)
        start = self.str_start + off - self.str_base
        if start >= self.str_end:
            raise TargetError(f"{self.path}: BTF string offset {off} out of range")
        nul = self.data.find(b"\0", start, self.str_end)
        if nul < 0:
            raise TargetError(f"{self.path}: BTF string at {off} is not terminated")
        return self.data[start:nul].decode("utf-8", "replace")

    def raw(self, tid: int) -> tuple[int, int, int, int, int]:
        """``(kind, vlen, kind_flag, name_off, size_or_type)`` and the data offset."""
        owner = self._owner(tid)
        if owner is not self:
            return owner.raw(tid)
        i = tid - self.first_id
        if not 0 <= i < len(self.offsets):
            raise TargetError(f"{self.path}: BTF type id {tid} out of range")
        off = self.offsets[i]
        name_off, info, st = _TYPE.unpack_from(self.data, off)
        return (info >> 24) & 0x1F, info & 0xFFFF, info >> 31, name_off, st

    def _items(self, tid: int, fmt: str, size: int) -> list[tuple]:
        owner = self._owner(tid)
        off = owner.offsets[tid - owner.first_id] + 12
        _k, vlen, *_ = owner.raw(tid)
        return [struct.unpack_from(fmt, owner.data, off + i * size) for i in range(vlen)]

    def name_of(self, tid: int) -> str:
        if tid == 0:
            return ""
        kind, _v, _f, name_off, _st = self.raw(tid)
        return self.string(name_off) if name_off else ""

    def kind_of(self, tid: int) -> int:
        return self.raw(tid)[0] if tid else 0

    # -- types as stap prints them ---------------------------------------------
    @_guard
    def type_name(self, tid: int, depth: int = 0) -> str:
        """The type spelled as stap spells DWARF types: ``char const*``, ``int[]``."""
        if tid in self._fmt_cache:
            return self._fmt_cache[tid]
        if depth > 64:
            return "?"
        s = self._type_name(tid, depth)
        self._fmt_cache[tid] = s
        return s

    def _type_name(self, tid: int, depth: int) -> str:
        if tid == 0:
            return "void"
        kind, vlen, kflag, name_off, st = self.raw(tid)
        name = self.string(name_off) if name_off else ""
        if kind in (INT, FLOAT, TYPEDEF):
            return name or "?"
        if kind in (STRUCT, UNION, ENUM, ENUM64):
            word = {STRUCT: "struct", UNION: "union"}.get(kind, "enum")
            return f"{word} {name}" if name else f"{word} {{...}}"
        if kind == FWD:
            return ("union " if kflag else "struct ") + name
        if kind == PTR:
            kt = self._skip_tags(st)
            if kt and self.kind_of(kt) == FUNC_PROTO:
                return self._proto_name(kt, depth, "(*)")
            return self.type_name(st, depth + 1) + "*"
        if kind in _QUALS:
            return self.type_name(st, depth + 1) + " " + _QUALS[kind]
        if kind == ARRAY:
            elem = self._items_array(tid)[0]
            return self.type_name(elem, depth + 1) + "[]"
        if kind in (TYPE_TAG,):
            return self.type_name(st, depth + 1)
        if kind == FUNC_PROTO:
            return self._proto_name(tid, depth, "")
        if kind == FUNC:
            return self._proto_name(st, depth, "")
        return name or "?"

    def _skip_tags(self, tid: int) -> int:
        while tid and self.kind_of(tid) == TYPE_TAG:
            tid = self.raw(tid)[4]
        return tid

    def _proto_name(self, proto: int, depth: int, mid: str) -> str:
        _k, _v, _f, _n, ret = self.raw(proto)
        params = [self.type_name(t, depth + 1) if t else "..."
                  for _no, t in self._items(proto, "<II", 8)]
        inner = f" {mid} " if mid else " "
        return f"{self.type_name(ret, depth + 1)}{inner}({', '.join(params) or 'void'})"

    def _items_array(self, tid: int) -> tuple[int, int, int]:
        owner = self._owner(tid)
        off = owner.offsets[tid - owner.first_id] + 12
        return struct.unpack_from("<III", owner.data, off)

    def ref(self, tid: int, origin: str = "kernel") -> TypeRef:
        return TypeRef(self.type_name(tid), BTF, origin, tid)

    # -- functions -----------------------------------------------------------
    @_guard
    def function_params(self, name: str, origin: str = "kernel") -> list[Var] | None:
        tid = self.funcs.get(name)
        if tid is None:
            return None
        return self.proto_params(self.raw(tid)[4], origin)

    @_guard
    def proto_params(self, proto: int, origin: str = "kernel") -> list[Var]:
        if self.kind_of(proto) != FUNC_PROTO:
            raise TargetError(f"{self.path}: BTF type {proto} is not a function prototype")
        out = []
        for i, (name_off, t) in enumerate(self._items(proto, "<II", 8)):
            if t == 0:       # varargs
                continue
            pname = self.string(name_off) if name_off else f"arg{i + 1}"
            out.append(Var(pname, self.ref(t, origin), "param"))
        return out

    @_guard
    def function_return(self, name: str, origin: str = "kernel") -> TypeRef | None:
        tid = self.funcs.get(name)
        if tid is None:
            return None
        return self.ref(self.raw(self.raw(tid)[4])[4], origin)

    # -- type descriptions ---------------------------------------------------
    @_guard
    def describe(self, tid: int, origin: str = "kernel") -> TypeInfo:
        name = self.type_name(tid)
        if tid == 0:
            return TypeInfo("void", "void", BTF)
        kind, vlen, kflag, name_off, st = self.raw(tid)
        if kind in (INT, FLOAT):
            return TypeInfo(name, "base", BTF, size=st)
        if kind == PTR:
            return TypeInfo(name, "pointer", BTF, size=8, target=self.ref(st, origin))
        if kind == ARRAY:
            elem, _idx, n = self._items_array(tid)
            return TypeInfo(name, "array", BTF, size=n, target=self.ref(elem, origin))
        if kind in (STRUCT, UNION):
            members = []
            for m_name, m_type, m_off in self._items(tid, "<III", 12):
                bit_off = m_off & 0xFFFFFF if kflag else m_off
                members.append(Member(self.string(m_name) if m_name else "",
                                      self.ref(m_type, origin), bit_off))
            return TypeInfo(name, "struct" if kind == STRUCT else "union", BTF,
                            size=st, members=tuple(members))
        if kind in (ENUM, ENUM64):
            size = 12 if kind == ENUM64 else 8
            fmt = "<III" if kind == ENUM64 else "<Ii"
            names = tuple(self.string(it[0]) for it in self._items(tid, fmt, size))
            return TypeInfo(name, "enum", BTF, size=st, enumerators=names)
        if kind == TYPEDEF:
            return TypeInfo(name, "typedef", BTF, target=self.ref(st, origin))
        if kind in _QUALS:
            return TypeInfo(name, _QUALS[kind], BTF, target=self.ref(st, origin))
        if kind == TYPE_TAG:
            return TypeInfo(name, "typedef", BTF, target=self.ref(st, origin))
        if kind == FWD:
            return TypeInfo(name, "fwd", BTF)
        if kind in (FUNC_PROTO, FUNC):
            return TypeInfo(name, "function", BTF)
        return TypeInfo(name, "base", BTF)

    @_guard
    def find_type(self, spelling: str) -> int | None:
        """Look up ``struct task_struct``, ``union X``, ``enum Y`` or a typedef name."""
        spelling = " ".join(spelling.split())
        word, _, rest = spelling.partition(" ")
        kinds: tuple[int, ...]
        if word in ("struct", "union", "enum") and rest:
            kinds = {"struct": (STRUCT, FWD), "union": (UNION, FWD),
                     "enum": (ENUM, ENUM64)}[word]
            name = rest
        else:
            kinds = (TYPEDEF, INT, FLOAT, STRUCT, UNION, ENUM, ENUM64)
            name = spelling
        best = None
        for owner in self._chain():
            for tid in owner.named.get(name, ()):
                k = owner.kind_of(tid)
                if k in kinds:
                    if k != FWD:
                        return tid
                    best = best or tid
        return best

    def _chain(self) -> list[BtfFile]:
        out: list[BtfFile] = [self]
        b = self.base
        while b is not None:
            out.append(b)
            b = b.base
        return out

    def func_names(self) -> list[str]:
        return list(self.funcs)
