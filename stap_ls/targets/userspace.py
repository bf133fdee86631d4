"""One user-space binary (executable or shared library) as the target model sees it.

:class:`UserBinary` joins the ELF facts (:mod:`stap_ls.targets.elfinfo`) and the
DWARF function index (:mod:`stap_ls.targets.dwarfinfo`) of a file, its
separate debug file when it has one, and the on-disk cache.  The index is
keyed by build-id, size and mtime; parameters, locals and line tables are
read from DWARF only when asked for, one compile unit at a time.

Functions come from DWARF when there is DWARF (with ``@file:line``), and from
the symbol table otherwise (``source == "symbols"``, no variables), as stap
lists them.
"""

from __future__ import annotations

import fnmatch
import os

from stap_ls.targets import cache
from stap_ls.targets.base import (DWARF, SYMBOLS, FunctionInfo, SdtMarker, TargetError,
                                  TypeInfo, TypeRef)
from stap_ls.targets.dwarfinfo import DwarfReader, FuncEntry, file_matches
from stap_ls.targets.elfinfo import (ElfFacts, debug_file_for, quick_build_id, read_elf_facts,
                                     resolve_needed)


class UserBinary:
    """Functions, variables, lines, markers, PLT and libraries of one ELF file."""

    def __init__(self, path: str, use_cache: bool = True) -> None:
        self.path = path
        try:
            st = os.stat(path)
        except OSError as e:
            raise TargetError(f"{path}: {e.strerror}") from None
        # keyed by build-id, size and mtime (and path, for files without a build-id)
        self._stat_key = (os.path.realpath(path), quick_build_id(path), st.st_size,
                          st.st_mtime_ns)
        self.problems: list[str] = []
        self.use_cache = use_cache
        #: variables read so far, by DIE offset; saved with the index by flush()
        self._vars: dict[int, tuple[list, list]] = {}
        self._dirty = False
        data = cache.load("binary", self._stat_key) if use_cache else None
        if data is not None:
            self.facts, self.debug_path, self._entries, self._vars = data
        else:
            self.facts = read_elf_facts(path)
            self.debug_path = path if self.facts.has_dwarf else debug_file_for(self.facts)
            self._entries = self._build_index()
            self._dirty = True
            self.flush()
        self._reader: DwarfReader | None = None
        self._functions: list[FunctionInfo] | None = None
        self._by_key: dict[int, list[FuncEntry]] = {}
        self._by_addr: dict[int, FunctionInfo] | None = None

    def flush(self) -> None:
        """Write the index (and variables read since) to the on-disk cache."""
        if self.use_cache and self._dirty:
            cache.store("binary", self._stat_key,
                        (self.facts, self.debug_path, self._entries, self._vars))
            self._dirty = False

    @property
    def build_id(self) -> str | None:
        return self.facts.build_id

    def _build_index(self) -> list[FuncEntry]:
        if self.debug_path is None:
            return []
        reader = DwarfReader(self.debug_path, origin=self.path)
        try:
            return reader.function_index()
        finally:
            reader.close()

    def reader(self) -> DwarfReader | None:
        if self._reader is None and self.debug_path is not None:
            self._reader = DwarfReader(self.debug_path, origin=self.path)
        return self._reader

    @property
    def has_dwarf(self) -> bool:
        return self.debug_path is not None

    def missing(self) -> list[str]:
        if self.debug_path is None:
            return [f"{self.path}: no debug information (rebuild with -g, or install its "
                    f"debug symbols package): functions come from the symbol table, "
                    f"without parameters or @file:line"]
        return []

    # -- functions -----------------------------------------------------------
    def functions(self) -> list[FunctionInfo]:
        """All functions, DWARF first, then symbol-table names DWARF does not have."""
        if self._functions is not None:
            return self._functions
        merged: dict[tuple, FunctionInfo] = {}
        for e in self._entries:
            k = (e.name, e.file, e.line)
            fi = merged.get(k)
            if fi is None:
                fi = FunctionInfo(e.name, DWARF, e.file, e.line, inlined=e.inlined,
                                  has_body=e.low_pc is not None, module=self.path,
                                  key=e.die_offset)
                merged[k] = fi
                self._by_key[e.die_offset] = [e]
            else:
                fi.inlined = fi.inlined or e.inlined
                if e.low_pc is not None and not fi.has_body:
                    fi.has_body = True
                    # the concrete copy has the locations: read variables there first
                    self._by_key[fi.key].insert(0, e)  # type: ignore[index]
                else:
                    self._by_key[fi.key].append(e)  # type: ignore[index]
        out = list(merged.values())
        names = {f.name for f in out}
        for name in sorted(self.facts.symbols):
            if name not in names:
                out.append(FunctionInfo(name, SYMBOLS, module=self.path))
        self._functions = out
        return out

    def match_functions(self, pattern: str, file_pattern: str | None = None,
                        line: int | None = None) -> list[FunctionInfo]:
        out = []
        for f in self.functions():
            if not fnmatch.fnmatchcase(f.name, pattern):
                continue
            if file_pattern is not None and not file_matches(f.file, file_pattern):
                continue
            if line is not None and f.line != line:
                continue
            if f.source == SYMBOLS:
                # an alias symbol (malloc -> __libc_malloc): stap probes the DWARF function
                f = self._dwarf_at(self.facts.symbols.get(f.name)) or f
                if f in out or (file_pattern is not None and not file_matches(f.file, file_pattern)):
                    continue
            out.append(f)
        return out

    def _dwarf_at(self, address: int | None) -> FunctionInfo | None:
        """The DWARF function whose code starts at ``address``."""
        if not address:
            return None
        if self._by_addr is None:
            self._by_addr = {}
            for fi in self.functions():
                if fi.source == DWARF and fi.key is not None:
                    for e in self._by_key.get(fi.key, []):
                        if e.low_pc:
                            self._by_addr.setdefault(e.low_pc, fi)
        return self._by_addr.get(address)

    def load_vars(self, fi: FunctionInfo) -> FunctionInfo:
        """Fill ``params``/``locals`` of a DWARF function (read once, lazily)."""
        if fi.vars_loaded or fi.source != DWARF or fi.key is None:
            return fi
        known = self._vars.get(fi.key)
        if known is not None:
            fi.params, fi.locals = list(known[0]), list(known[1])
            fi.vars_loaded = True
            return fi
        r = self.reader()
        entries = self._by_key.get(fi.key, [])
        if r is not None:
            for e in entries:
                params, local = r.function_vars(e)
                if params or local:
                    fi.params, fi.locals = params, local
                    break
        fi.vars_loaded = True
        self._vars[fi.key] = (fi.params, fi.locals)
        self._dirty = True
        return fi

    def return_type(self, fi: FunctionInfo) -> TypeRef | None:
        """A DWARF function's return type (read on demand; None without DWARF)."""
        if fi.return_type is not None or fi.source != DWARF:
            return fi.return_type
        r = self.reader()
        entries = self.entry_of(fi)
        if r is not None and entries:
            fi.return_type = r.function_return(entries[0])
        return fi.return_type

    def entry_of(self, fi: FunctionInfo) -> list[FuncEntry]:
        self.functions()
        return self._by_key.get(fi.key, []) if fi.key is not None else []

    def similar_functions(self, name: str) -> list[str]:
        from stap_ls.targets.suggest import suggest
        # stap also offers the undefined (imported) function symbols
        return suggest(name, {f.name for f in self.functions()} | set(self.facts.imports))

    # -- statements ----------------------------------------------------------
    def statement_lines(self, fi: FunctionInfo, file_pattern: str | None,
                        line: int | None) -> list[tuple[str, int, int]]:
        """``(file, line, address)`` triples of line-table rows inside ``fi``'s code.

        ``line`` None means every line of the function's own source (rows
        before its declaration line come from inlined callees and are left
        out, as stap leaves them out).
        """
        r = self.reader()
        out: list[tuple[str, int, int]] = []
        seen: set[tuple[str, int]] = set()
        if r is None:
            return out
        for e in self.entry_of(fi):
            if e.low_pc is None or e.high_pc is None:
                continue
            for row in r.line_rows(e.cu_offset):
                if not e.low_pc <= row.address < e.high_pc:
                    continue
                if line is not None and row.line != line:
                    continue
                if line is None and (row.file != fi.file or (fi.line and row.line < fi.line)):
                    continue
                if file_pattern is not None and not file_matches(row.file, file_pattern):
                    continue
                if (row.file, row.line) not in seen:
                    seen.add((row.file, row.line))
                    out.append((row.file, row.line, row.address))
        return sorted(out, key=lambda p: (p[0], p[1]))

    def vars_at(self, fi: FunctionInfo, address: int) -> list:
        """Target variables in scope at ``address`` of ``fi`` (innermost first)."""
        r = self.reader()
        entries = [e for e in self.entry_of(fi) if e.low_pc is not None]
        if r is None or not entries:
            return list(fi.vars)
        return r.scope_vars(entries[0], address)

    # -- markers, PLT, libraries ---------------------------------------------
    def marks(self, pattern: str = "*", provider: str = "*") -> list[SdtMarker]:
        return [m for m in self.facts.marks
                if fnmatch.fnmatchcase(m.name, pattern) and fnmatch.fnmatchcase(m.provider, provider)]

    def plt(self, pattern: str = "*") -> list[str]:
        return [n for n in self.facts.plt if fnmatch.fnmatchcase(n, pattern)]

    def libraries(self) -> list[str]:
        """Resolved paths of the shared libraries this binary loads (breadth first)."""
        seen: list[str] = []
        queue: list[ElfFacts] = [self.facts]
        if self.facts.interp and os.path.exists(self.facts.interp):
            seen.append(os.path.realpath(self.facts.interp))
        while queue:
            facts = queue.pop(0)
            for name in facts.needed:
                p = resolve_needed(facts, name)
                if p is None or p in seen:
                    continue
                seen.append(p)
                try:
                    queue.append(read_elf_facts(p))
                except TargetError:
                    continue
        return seen

    # -- types ---------------------------------------------------------------
    def find_type(self, spelling: str) -> TypeRef | None:
        r = self.reader()
        if r is None:
            return None
        off = r.find_type(spelling)
        if off is None:
            return None
        return TypeRef(r.type_name(r._die_anywhere(off)), DWARF, self.path, off)

    def describe(self, ref: TypeRef) -> TypeInfo | None:
        r = self.reader()
        if r is None or ref.key is None:
            return None
        return r.describe(ref.key)
