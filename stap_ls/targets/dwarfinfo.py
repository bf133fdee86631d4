"""DWARF of a user-space binary (or vmlinux), through pyelftools, read lazily.

:class:`DwarfReader` builds a *function index* — every ``DW_TAG_subprogram``
with a name that is defined here (has code, or is inlined), with its
declaration file and line and where its DIE lives — by walking only the
top-level children of each compile unit.  The walk follows ``DW_AT_sibling``
only forwards and steps DIE by DIE otherwise, so a corrupt file can not make
it loop.  Parameters, locals and line tables are read on demand, one compile
unit at a time.

Type names are spelled as stap spells them: ``char const*``, ``int[]``,
``struct node``, ``int (*) (int)``, ``unsigned int volatile``.

Every parse failure becomes a :class:`~stap_ls.targets.base.TargetError`.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any, Iterator

from stap_ls.targets.base import DWARF, LineRow, Member, TargetError, TypeInfo, TypeRef, Var

_QUAL = {"DW_TAG_const_type": "const", "DW_TAG_volatile_type": "volatile",
         "DW_TAG_restrict_type": "restrict"}
_AGG = {"DW_TAG_structure_type": "struct", "DW_TAG_union_type": "union",
        "DW_TAG_enumeration_type": "enum", "DW_TAG_class_type": "class"}


@dataclass(frozen=True, slots=True)
class FuncEntry:
    """One function of the index (plain data, pickled into the disk cache)."""

    name: str
    file: str | None
    line: int | None
    cu_offset: int
    die_offset: int
    low_pc: int | None
    high_pc: int | None
    inlined: bool


def _fail(path: str, e: BaseException) -> TargetError:
    return TargetError(f"{path}: corrupt or truncated DWARF ({type(e).__name__}: {e})")


def _guard(method):
    """Turn any parse failure inside a public reader method into TargetError."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except TargetError:
            raise
        except RecursionError:
            raise TargetError(f"{self.path}: corrupt DWARF (reference cycle)") from None
        except Exception as e:  # noqa: BLE001
            raise _fail(self.path, e) from None
    return wrapper


class DwarfReader:
    """Lazy access to the DWARF of one ELF file (``path`` may be a separate .debug)."""

    def __init__(self, path: str, origin: str | None = None) -> None:
        from elftools.elf.elffile import ELFFile
        self.path = path
        self.origin = origin or path
        try:
            self._fh = open(path, "rb")
            self.elf = ELFFile(self._fh)
            if not self.elf.has_dwarf_info():
                raise TargetError(f"{path}: no DWARF information")
            self.dwarf = self.elf.get_dwarf_info(relocate_dwarf_sections=False)
        except TargetError:
            raise
        except OSError as e:
            raise TargetError(f"{path}: {e.strerror or e}") from None
        except Exception as e:  # noqa: BLE001
            raise _fail(path, e) from None
        self._cus: dict[int, Any] = {}
        self._files: dict[int, list[str]] = {}
        self._tname: dict[int, str] = {}
        self._info_size = self.dwarf.debug_info_sec.size

    def close(self) -> None:
        self._fh.close()

    # -- compile units -------------------------------------------------------
    def _cu_at(self, cu_offset: int):
        cu = self._cus.get(cu_offset)
        if cu is None:
            try:
                cu = self.dwarf._parse_CU_at_offset(cu_offset)
            except Exception as e:  # noqa: BLE001
                raise _fail(self.path, e) from None
            self._cus[cu_offset] = cu
        return cu

    def _iter_cus(self) -> Iterator[Any]:
        off = 0
        seen = 0
        while off < self._info_size:
            cu = self._cu_at(off)
            yield cu
            nxt = cu.cu_offset + cu["unit_length"] + cu.structs.initial_length_field_size()
            if nxt <= off:
                raise TargetError(f"{self.path}: corrupt DWARF: unit at {off} has length 0")
            off = nxt
            seen += 1

    def _cu_end(self, cu) -> int:
        return cu.cu_offset + cu["unit_length"] + cu.structs.initial_length_field_size()

    def _die(self, cu, offset: int):
        from elftools.dwarf.die import DIE
        if not cu.cu_offset <= offset < self._cu_end(cu):
            raise TargetError(f"{self.path}: corrupt DWARF: DIE offset {offset:#x} outside its unit")
        try:
            return DIE(cu, self.dwarf.debug_info_sec.stream, offset)
        except Exception as e:  # noqa: BLE001
            raise _fail(self.path, e) from None

    def children(self, cu, parent) -> Iterator[Any]:
        """Direct children of ``parent``, never looping on corrupt sibling links."""
        if not parent.has_children:
            return
        end = self._cu_end(cu)
        off = parent.offset + parent.size
        while off < end:
            die = self._die(cu, off)
            if die.is_null():
                return
            yield die
            sib = die.attributes.get("DW_AT_sibling")
            if sib is not None and die.has_children:
                target = sib.value + (cu.cu_offset if sib.form != "DW_FORM_ref_addr" else 0)
                if target > off + die.size - 1 and target <= end:
                    off = target
                    continue
            if die.has_children:
                off = self._skip_subtree(cu, die, end)
            else:
                off = off + die.size
                if die.size <= 0:
                    raise TargetError(f"{self.path}: corrupt DWARF: empty DIE at {off:#x}")

    def _skip_subtree(self, cu, die, end: int) -> int:
        depth = 1
        off = die.offset + die.size
        while off < end and depth:
            d = self._die(cu, off)
            if d.size <= 0:
                raise TargetError(f"{self.path}: corrupt DWARF: empty DIE at {off:#x}")
            off += d.size
            if d.is_null():
                depth -= 1
            elif d.has_children:
                depth += 1
        return off

    def _ref(self, die, attr: str):
        a = die.attributes.get(attr)
        if a is None:
            return None
        try:
            if a.form == "DW_FORM_ref_addr":
                return die.cu.dwarfinfo.get_DIE_from_refaddr(a.value)
            return self._die(die.cu, a.value + die.cu.cu_offset)
        except TargetError:
            raise
        except Exception as e:  # noqa: BLE001
            raise _fail(self.path, e) from None

    # -- files ---------------------------------------------------------------
    def file_names(self, cu) -> list[str]:
        names = self._files.get(cu.cu_offset)
        if names is not None:
            return names
        names = []
        try:
            lp = self.dwarf.line_program_for_CU(cu)
        except Exception as e:  # noqa: BLE001
            raise _fail(self.path, e) from None
        if lp is not None:
            version = lp.header["version"]
            dirs = [_s(d) for d in lp.header["include_directory"]]
            top = cu.get_top_DIE()
            comp_dir = _s(top.attributes["DW_AT_comp_dir"].value) if "DW_AT_comp_dir" in top.attributes else ""
            for fe in lp.header["file_entry"]:
                name = _s(fe.name)
                di = fe.dir_index
                if version >= 5:
                    d = dirs[di] if di < len(dirs) else ""
                else:
                    d = comp_dir if di == 0 else (dirs[di - 1] if di - 1 < len(dirs) else "")
                names.append(name if name.startswith("/") or not d else f"{d}/{name}")
            if version < 5:
                names.insert(0, "")     # DWARF < 5 numbers files from 1
        self._files[cu.cu_offset] = names
        return names

    def _decl(self, die, cu) -> tuple[str | None, int | None]:
        f = die.attributes.get("DW_AT_decl_file")
        ln = die.attributes.get("DW_AT_decl_line")
        files = self.file_names(cu) if f is not None else []
        fname = files[f.value] if f is not None and 0 <= f.value < len(files) else None
        return fname, (ln.value if ln is not None else None)

    # -- function index ------------------------------------------------------
    @_guard
    def function_index(self) -> list[FuncEntry]:
        """Every named function defined or inlined in this file, one CU at a time."""
        out: list[FuncEntry] = []
        for cu in self._iter_cus():
            try:
                top = cu.get_top_DIE()
            except Exception as e:  # noqa: BLE001
                raise _fail(self.path, e) from None
            if top.tag not in ("DW_TAG_compile_unit", "DW_TAG_partial_unit"):
                continue
            for die in self.children(cu, top):
                if die.tag == "DW_TAG_subprogram":
                    e = self._func_entry(cu, die)
                    if e is not None:
                        out.append(e)
        return out

    def _func_entry(self, cu, die) -> FuncEntry | None:
        at = die.attributes
        if "DW_AT_declaration" in at:
            return None
        origin = die
        for link in ("DW_AT_abstract_origin", "DW_AT_specification"):
            if link in at and "DW_AT_name" not in at:
                o = self._ref(die, link)
                if o is not None:
                    origin = o
                    break
        name_attr = origin.attributes.get("DW_AT_name")
        if name_attr is None:
            return None
        low = at["DW_AT_low_pc"].value if "DW_AT_low_pc" in at else None
        inlined = "DW_AT_inline" in at and at["DW_AT_inline"].value in (1, 3)
        if low is None and not inlined:
            return None
        high = None
        if low is not None and "DW_AT_high_pc" in at:
            h = at["DW_AT_high_pc"]
            high = h.value if h.form == "DW_FORM_addr" else low + h.value
        fname, line = self._decl(origin, origin.cu)
        return FuncEntry(_s(name_attr.value), fname, line, cu.cu_offset, die.offset,
                         low, high, inlined)

    # -- variables -----------------------------------------------------------
    @_guard
    def function_vars(self, entry: FuncEntry) -> tuple[list[Var], list[Var]]:
        """Parameters and top-scope locals of a function, as stap's -L lists them."""
        cu = self._cu_at(entry.cu_offset)
        die = self._die(cu, entry.die_offset)
        params: list[Var] = []
        local: list[Var] = []
        for child in self.children(cu, die):
            if child.tag not in ("DW_TAG_formal_parameter", "DW_TAG_variable"):
                continue
            src = child
            if "DW_AT_name" not in child.attributes and "DW_AT_abstract_origin" in child.attributes:
                src = self._ref(child, "DW_AT_abstract_origin") or child
            nm = src.attributes.get("DW_AT_name")
            if nm is None or "DW_AT_declaration" in src.attributes:
                continue
            t = self.type_ref_of(src)
            v = Var(_s(nm.value), t, "param" if child.tag == "DW_TAG_formal_parameter" else "local")
            (params if v.kind == "param" else local).append(v)
        return params, local

    @_guard
    def function_return(self, entry: FuncEntry) -> TypeRef:
        """The return type of a function (``void`` when it has none)."""
        cu = self._cu_at(entry.cu_offset)
        die = self._die(cu, entry.die_offset)
        if "DW_AT_type" not in die.attributes and "DW_AT_abstract_origin" in die.attributes:
            die = self._ref(die, "DW_AT_abstract_origin") or die
        if "DW_AT_type" not in die.attributes and "DW_AT_specification" in die.attributes:
            die = self._ref(die, "DW_AT_specification") or die
        return self.type_ref_of(die)

    @_guard
    def scope_vars(self, entry: FuncEntry, address: int) -> list[Var]:
        """Variables visible at ``address``: innermost lexical block first, as stap
        lists them for a ``.statement`` probe, then the function's own."""
        cu = self._cu_at(entry.cu_offset)
        die = self._die(cu, entry.die_offset)
        blocks: list[Any] = []
        cur = die
        for _depth in range(64):
            inner = None
            for child in self.children(cu, cur):
                if child.tag == "DW_TAG_lexical_block" and self._contains(child, address):
                    inner = child
                    break
            if inner is None:
                break
            blocks.append(inner)
            cur = inner
        out: list[Var] = []
        for b in reversed(blocks):
            for child in self.children(cu, b):
                if child.tag == "DW_TAG_variable" and "DW_AT_name" in child.attributes:
                    out.append(Var(_s(child.attributes["DW_AT_name"].value),
                                   self.type_ref_of(child), "local"))
        params, local = self.function_vars(entry)
        return out + params + local

    @staticmethod
    def _contains(die, address: int) -> bool:
        at = die.attributes
        if "DW_AT_low_pc" not in at or "DW_AT_high_pc" not in at:
            return False
        low = at["DW_AT_low_pc"].value
        h = at["DW_AT_high_pc"]
        high = h.value if h.form == "DW_FORM_addr" else low + h.value
        return low <= address < high

    @_guard
    def type_ref_of(self, die) -> TypeRef:
        t = self._ref(die, "DW_AT_type")
        if t is None:
            return TypeRef("void", DWARF, self.origin, None)
        return TypeRef(self.type_name(t), DWARF, self.origin, t.offset)

    # -- types ---------------------------------------------------------------
    def type_name(self, die, depth: int = 0) -> str:
        if die.offset in self._tname:
            return self._tname[die.offset]
        if depth > 40:
            return "?"
        s = self._type_name(die, depth)
        self._tname[die.offset] = s
        return s

    def _type_name(self, die, depth: int) -> str:
        tag = die.tag
        name = _s(die.attributes["DW_AT_name"].value) if "DW_AT_name" in die.attributes else ""
        if tag in ("DW_TAG_base_type", "DW_TAG_typedef", "DW_TAG_unspecified_type"):
            return name or "?"
        if tag in _AGG:
            return f"{_AGG[tag]} {name}" if name else f"{_AGG[tag]} {{...}}"
        inner = self._ref(die, "DW_AT_type")
        inner_name = self.type_name(inner, depth + 1) if inner is not None else "void"
        if tag == "DW_TAG_pointer_type":
            if inner is not None and inner.tag == "DW_TAG_subroutine_type":
                return self._proto(inner, depth, "(*)")
            return inner_name + "*"
        if tag in ("DW_TAG_reference_type", "DW_TAG_rvalue_reference_type"):
            return inner_name + ("&" if tag == "DW_TAG_reference_type" else "&&")
        if tag in _QUAL:
            return f"{inner_name} {_QUAL[tag]}"
        if tag == "DW_TAG_array_type":
            return inner_name + "[]"
        if tag == "DW_TAG_subroutine_type":
            return self._proto(die, depth, "")
        return name or "?"

    def _proto(self, die, depth: int, mid: str) -> str:
        ret = self._ref(die, "DW_AT_type")
        rname = self.type_name(ret, depth + 1) if ret is not None else "void"
        params = []
        for c in self.children(die.cu, die):
            if c.tag == "DW_TAG_formal_parameter":
                t = self._ref(c, "DW_AT_type")
                params.append(self.type_name(t, depth + 1) if t is not None else "void")
            elif c.tag == "DW_TAG_unspecified_parameters":
                params.append("...")
        mid = f" {mid} " if mid else " "
        return f"{rname}{mid}({', '.join(params) or 'void'})"

    @_guard
    def describe(self, offset: int) -> TypeInfo:
        """One level of the type at DIE ``offset`` (found through its unit)."""
        die = self._die_anywhere(offset)
        name = self.type_name(die)
        tag = die.tag
        at = die.attributes
        size = at["DW_AT_byte_size"].value if "DW_AT_byte_size" in at else None
        if tag in ("DW_TAG_structure_type", "DW_TAG_union_type", "DW_TAG_class_type"):
            members = []
            for c in self.children(die.cu, die):
                if c.tag != "DW_TAG_member":
                    continue
                nm = _s(c.attributes["DW_AT_name"].value) if "DW_AT_name" in c.attributes else ""
                loc = c.attributes.get("DW_AT_data_member_location")
                bit = (loc.value * 8) if loc is not None and isinstance(loc.value, int) else 0
                members.append(Member(nm, self.type_ref_of(c), bit))
            kind = "union" if tag == "DW_TAG_union_type" else "struct"
            return TypeInfo(name, kind, DWARF, size=size, members=tuple(members))
        if tag == "DW_TAG_enumeration_type":
            names = tuple(_s(c.attributes["DW_AT_name"].value)
                          for c in self.children(die.cu, die)
                          if c.tag == "DW_TAG_enumerator" and "DW_AT_name" in c.attributes)
            return TypeInfo(name, "enum", DWARF, size=size, enumerators=names)
        kinds = {"DW_TAG_pointer_type": "pointer", "DW_TAG_array_type": "array",
                 "DW_TAG_typedef": "typedef", "DW_TAG_base_type": "base",
                 "DW_TAG_subroutine_type": "function", "DW_TAG_reference_type": "pointer"}
        kind = kinds.get(tag) or _QUAL.get(tag, "base")
        target = self.type_ref_of(die) if "DW_AT_type" in at or tag == "DW_TAG_pointer_type" else None
        return TypeInfo(name, kind, DWARF, size=size, target=target)

    def _die_anywhere(self, offset: int):
        for cu_off, cu in self._cus.items():
            if cu_off <= offset < self._cu_end(cu):
                return self._die(cu, offset)
        for cu in self._iter_cus():
            if cu.cu_offset <= offset < self._cu_end(cu):
                return self._die(cu, offset)
        raise TargetError(f"{self.path}: no DWARF type at offset {offset:#x}")

    @_guard
    def find_type(self, spelling: str) -> int | None:
        """DIE offset of a named struct/union/enum/typedef (``struct node``, ``node_t``)."""
        word, _, rest = " ".join(spelling.split()).partition(" ")
        want = {"struct": "DW_TAG_structure_type", "union": "DW_TAG_union_type",
                "enum": "DW_TAG_enumeration_type"}.get(word)
        name = rest if want else spelling.strip()
        for cu in self._iter_cus():
            for die in self.children(cu, cu.get_top_DIE()):
                if want and die.tag != want:
                    continue
                if not want and die.tag not in ("DW_TAG_typedef", "DW_TAG_base_type"):
                    continue
                nm = die.attributes.get("DW_AT_name")
                if nm is not None and _s(nm.value) == name and "DW_AT_declaration" not in die.attributes:
                    return die.offset
        return None

    # -- line tables ---------------------------------------------------------
    @_guard
    def line_rows(self, cu_offset: int) -> list[LineRow]:
        cu = self._cu_at(cu_offset)
        files = self.file_names(cu)
        try:
            lp = self.dwarf.line_program_for_CU(cu)
            entries = lp.get_entries() if lp is not None else []
        except Exception as e:  # noqa: BLE001
            raise _fail(self.path, e) from None
        rows = []
        for ent in entries:
            st = ent.state
            if st is None or st.end_sequence or not st.is_stmt:
                continue
            f = files[st.file] if 0 <= st.file < len(files) else "?"
            rows.append(LineRow(f, st.line, st.address))
        return rows

    @_guard
    def cu_offsets(self) -> list[int]:
        return [cu.cu_offset for cu in self._iter_cus()]


def _s(v: Any) -> str:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return str(v)


def file_matches(path: str | None, pattern: str) -> bool:
    """stap's ``@file`` match: the whole path or a trailing path component run."""
    import fnmatch
    if path is None:
        return False
    if fnmatch.fnmatchcase(path, pattern):
        return True
    if not pattern.startswith("/"):
        return fnmatch.fnmatchcase(path, "*/" + pattern) or \
            fnmatch.fnmatchcase(os.path.normpath(path), "*/" + pattern)
    return False
