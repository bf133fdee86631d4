"""ELF-level facts about a user-space binary or a vmlinux, through pyelftools.

:class:`ElfBinary` opens one file and answers, without touching DWARF:

* its build-id (``.note.gnu.build-id``) and ``.gnu_debuglink``;
* defined function symbols (``.symtab``, else ``.dynsym``) with addresses;
* PLT entries (the symbols of the ``.rela.plt`` relocations), as ``.plt("*")``;
* SDT markers from the ``stapsdt`` notes (``NT_STAPSDT`` = 3: pc, base,
  semaphore, then provider, name and argument strings), as ``.mark("*")``;
* ``DT_NEEDED`` libraries, resolved the way the dynamic loader would
  (``DT_RUNPATH``/``DT_RPATH`` with ``$ORIGIN``, then the system directories);
* where separate debug information lives (``/usr/lib/debug/.build-id/xx/yyy.debug``
  or the debuglink beside the file or under ``/usr/lib/debug``).

Any failure to read (truncated, not ELF, corrupt sections) becomes a
:class:`~stap_ls.targets.base.TargetError` naming the file.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field

from stap_ls.targets.base import SdtMarker, TargetError

DEBUG_ROOT = "/usr/lib/debug"
SYSTEM_LIB_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64",
                   "/usr/lib64", "/lib", "/usr/lib")


@dataclass
class ElfFacts:
    """What the ELF file itself says; cached on disk with the DWARF index."""

    path: str
    build_id: str | None = None
    debuglink: str | None = None
    elf_type: str = ""
    has_dwarf: bool = False
    symbols: dict[str, int] = field(default_factory=dict)   # name -> address
    imports: list[str] = field(default_factory=list)         # undefined function symbols
    plt: list[str] = field(default_factory=list)
    marks: list[SdtMarker] = field(default_factory=list)
    needed: list[str] = field(default_factory=list)
    rpaths: list[str] = field(default_factory=list)
    interp: str | None = None


def read_elf_facts(path: str) -> ElfFacts:
    """Read everything :class:`ElfFacts` holds from ``path``."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    try:
        with open(path, "rb") as f:
            head = f.read(4)
            if head != b"\x7fELF":
                raise TargetError(f"{path}: not an ELF file")
            f.seek(0)
            elf = ELFFile(f)
            facts = ElfFacts(path=path, elf_type=elf["e_type"])
            _read_sections(elf, facts)
            return facts
    except TargetError:
        raise
    except OSError as e:
        raise TargetError(f"{path}: {e.strerror or e}") from None
    except (ELFError, Exception) as e:  # noqa: BLE001 - any parse failure is the file's fault
        raise TargetError(f"{path}: corrupt or truncated ELF ({type(e).__name__}: {e})") from None


def _read_sections(elf, facts: ElfFacts) -> None:
    names = set()
    for sec in elf.iter_sections():
        names.add(sec.name)
        stype = sec["sh_type"]
        if sec.name == ".note.gnu.build-id" or (stype == "SHT_NOTE" and sec.name == ".note.gnu.build-id"):
            facts.build_id = _build_id(sec.data())
        elif sec.name == ".note.stapsdt":
            facts.marks = parse_stapsdt(sec.data())
        elif sec.name == ".gnu_debuglink":
            d = sec.data()
            facts.debuglink = d[:d.find(b"\0")].decode("utf-8", "replace") if b"\0" in d else None
        elif sec.name == ".interp":
            facts.interp = sec.data().rstrip(b"\0").decode("utf-8", "replace")
    facts.has_dwarf = ".debug_info" in names
    symtab = elf.get_section_by_name(".symtab") or elf.get_section_by_name(".dynsym")
    if symtab is not None and hasattr(symtab, "iter_symbols"):
        for sym in symtab.iter_symbols():
            if sym["st_info"]["type"] != "STT_FUNC" or not sym.name or "@" in sym.name:
                continue
            if sym["st_shndx"] == "SHN_UNDEF":
                facts.imports.append(sym.name)
            else:
                facts.symbols.setdefault(sym.name, sym["st_value"])
    facts.plt = _plt_names(elf)
    dyn = elf.get_section_by_name(".dynamic")
    if dyn is not None and hasattr(dyn, "iter_tags"):
        for tag in dyn.iter_tags():
            if tag.entry.d_tag == "DT_NEEDED":
                facts.needed.append(tag.needed)
            elif tag.entry.d_tag == "DT_RUNPATH":
                facts.rpaths.extend(tag.runpath.split(":"))
            elif tag.entry.d_tag == "DT_RPATH":
                facts.rpaths.extend(tag.rpath.split(":"))


def quick_build_id(path: str) -> str | None:
    """The GNU build-id of a 64-bit little-endian ELF, read with a few seeks.

    Used for cache keys before (and without) parsing the file with pyelftools;
    anything unexpected gives ``None``.
    """
    try:
        with open(path, "rb") as f:
            eh = f.read(64)
            if len(eh) < 64 or eh[:4] != b"\x7fELF" or eh[4] != 2 or eh[5] != 1:
                return None
            shoff = struct.unpack_from("<Q", eh, 0x28)[0]
            shentsize, shnum = struct.unpack_from("<HH", eh, 0x3A)
            if shentsize != 64 or not 0 < shnum < 4096:
                return None
            f.seek(shoff)
            table = f.read(64 * shnum)
            for i in range(len(table) // 64):
                sh_type = struct.unpack_from("<I", table, i * 64 + 4)[0]
                if sh_type != 7:            # SHT_NOTE
                    continue
                off, size = struct.unpack_from("<QQ", table, i * 64 + 0x18)
                if size > 1 << 16:
                    continue
                f.seek(off)
                notes = f.read(size)
                pos = 0
                while pos + 12 <= len(notes):
                    namesz, descsz, ntype = struct.unpack_from("<III", notes, pos)
                    name = notes[pos + 12:pos + 12 + namesz].rstrip(b"\0")
                    dstart = pos + 12 + ((namesz + 3) & ~3)
                    if ntype == 3 and name == b"GNU":
                        return notes[dstart:dstart + descsz].hex() or None
                    pos = dstart + ((descsz + 3) & ~3)
    except (OSError, struct.error):
        return None
    return None


def _build_id(data: bytes) -> str | None:
    if len(data) < 12:
        return None
    namesz, descsz, _type = struct.unpack_from("<III", data, 0)
    start = 12 + ((namesz + 3) & ~3)
    desc = data[start:start + descsz]
    return desc.hex() if len(desc) == descsz and descsz else None


def parse_stapsdt(data: bytes) -> list[SdtMarker]:
    """Parse the notes of a ``.note.stapsdt`` section (64-bit layout)."""
    out: list[SdtMarker] = []
    off = 0
    while off + 12 <= len(data):
        namesz, descsz, ntype = struct.unpack_from("<III", data, off)
        name_start = off + 12
        desc_start = name_start + ((namesz + 3) & ~3)
        desc_end = desc_start + descsz
        if desc_end > len(data) or namesz > len(data):
            raise TargetError(f"stapsdt note at byte {off} overruns its section")
        owner = data[name_start:name_start + namesz].rstrip(b"\0")
        if owner == b"stapsdt" and ntype == 3 and descsz >= 24:
            strings = data[desc_start + 24:desc_end].split(b"\0")
            if len(strings) >= 3:
                prov, nm, args = (s.decode("utf-8", "replace") for s in strings[:3])
                specs = tuple(a for a in args.split() if a)
                out.append(SdtMarker(prov, nm, len(specs), specs))
        off = desc_start + ((descsz + 3) & ~3)
    return out


def _plt_names(elf) -> list[str]:
    sec = elf.get_section_by_name(".rela.plt") or elf.get_section_by_name(".rel.plt")
    if sec is None or not hasattr(sec, "iter_relocations"):
        return []
    symtab = elf.get_section(sec["sh_link"])
    names = set()
    for rel in sec.iter_relocations():
        idx = rel["r_info_sym"]
        if idx == 0:
            continue
        sym = symtab.get_symbol(idx)
        if sym is not None and sym.name:
            names.add(sym.name.split("@")[0])
    return sorted(names)


def resolve_needed(facts: ElfFacts, name: str) -> str | None:
    """Where the dynamic loader would find library ``name`` for ``facts.path``."""
    if "/" in name:
        return name if os.path.exists(name) else None
    origin = os.path.dirname(os.path.abspath(facts.path))
    dirs = [r.replace("$ORIGIN", origin).replace("${ORIGIN}", origin) for r in facts.rpaths if r]
    dirs += [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d]
    dirs += list(SYSTEM_LIB_DIRS)
    for d in dirs:
        p = os.path.join(d, name)
        if os.path.isfile(p):
            return os.path.realpath(p)
    return None


def debug_file_for(facts: ElfFacts) -> str | None:
    """The separate debug-info file of a binary, by build-id then debuglink."""
    if facts.build_id and len(facts.build_id) > 2:
        p = os.path.join(DEBUG_ROOT, ".build-id", facts.build_id[:2], facts.build_id[2:] + ".debug")
        if os.path.isfile(p):
            return p
    if facts.debuglink:
        d = os.path.dirname(os.path.abspath(facts.path))
        for cand in (os.path.join(d, facts.debuglink), os.path.join(d, ".debug", facts.debuglink),
                     DEBUG_ROOT + os.path.join(d, facts.debuglink)):
            if os.path.isfile(cand) and os.path.abspath(cand) != os.path.abspath(facts.path):
                return cand
    return None


def find_executable(name: str, cwd: str | None = None) -> str | None:
    """Resolve a ``process("...")`` argument as stap does (``$PATH`` if no slash)."""
    if not name:
        return None
    if "/" in name:
        p = os.path.join(cwd or os.getcwd(), name)
        return os.path.realpath(p) if os.path.exists(p) else None
    for d in os.environ.get("PATH", "/usr/bin:/bin").split(":"):
        p = os.path.join(d or ".", name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return os.path.realpath(p)
    return None


def script_interpreter(path: str) -> str | None:
    """The interpreter of a ``#!`` script (resolved as stap does), or None.

    stap probes a script's interpreter when ``process("SCRIPT").function``
    and friends name a script rather than an ELF file.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(256)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    words = head[2:].split(b"\n", 1)[0].split()
    if not words:
        return None
    interp = find_executable(words[0].decode(errors="replace"))
    if interp is None:
        return None
    return interp
