"""The target model: what probe points bind to, from every source a machine has.

:class:`TargetModel` is the one interface pass 2, completion, hover and the
``-l``/``-L`` listing use.  It is built from :class:`stap_ls.options.StapOptions`
(or explicit paths, for tests) and loads each source lazily:

=============  ==============================================================
kernel BTF      ``/sys/kernel/btf/vmlinux`` (+ module BTF beside it): function
                prototypes with parameter names, structs/unions/enums/typedefs.
                Only for the running kernel.
kernel DWARF    ``/usr/lib/debug/boot/vmlinux-R`` or
                ``/usr/lib/debug/lib/modules/R/vmlinux``: adds ``@file:line``
                and locals when installed.
symbols         ``/proc/kallsyms`` (running kernel) or ``/boot/System.map-R``.
tracepoints     tracefs ``events/*/*/format`` for names and record fields;
                arguments (stap's ``$vars``) from BTF's ``__bpf_trace_*``
                functions; the kernel headers' ``TRACE_EVENT`` definitions
                for another release (``-r``).
user space      :class:`~stap_ls.targets.userspace.UserBinary` per path.
=============  ==============================================================

Nothing here raises because a source is missing: :meth:`TargetModel.missing`
lists what is absent with what to install.  Every answer carries its
``source``.  A corrupt file raises :class:`~stap_ls.targets.base.TargetError`
from the call that needed it.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass

from stap_ls.options import StapOptions
from stap_ls.targets import cache
from stap_ls.targets.base import (BTF, DWARF, HEADERS, SYMBOLS, TRACEFS, FunctionInfo, Member,
                                  TargetError, Tracepoint, TypeInfo, TypeRef, Var)
from stap_ls.targets.btf import FUNC_PROTO, PTR, TYPEDEF, BtfFile
from stap_ls.targets.kernel_sources import KernelSymbols, Tracefs
from stap_ls.targets.elfinfo import read_elf_facts
from stap_ls.targets.modules import ModuleInfo, list_modules
from stap_ls.targets.suggest import suggest
from stap_ls.targets.trace_headers import header_vars
from stap_ls.targets.userspace import UserBinary

BTF_PATH = "/sys/kernel/btf/vmlinux"


@dataclass
class ChainResult:
    """The members walked by a ``$var->a->b`` chain; ``error`` when a step fails."""

    steps: list[Member]
    error: str | None = None

    @property
    def type(self) -> TypeRef | None:
        return self.steps[-1].type if self.steps and self.error is None else None


class TargetModel:
    """Lazy, source-tagged knowledge of a kernel and of user-space binaries."""

    def __init__(self, opts: StapOptions | None = None, *, kernel_release: str | None = None,
                 btf_path: str | None = None, kallsyms_path: str | None = None,
                 tracefs_root: str | None = None, vmlinux_debug: str | None = None,
                 headers_dir: str | None = None, use_cache: bool = True) -> None:
        running = os.uname().release
        self.running_release = running
        self.release = kernel_release or (opts.kernel_release if opts else None) or running
        self.is_running = self.release == running
        self.use_cache = use_cache
        self._btf_path = btf_path or (BTF_PATH if self.is_running else None)
        self._kallsyms_path = kallsyms_path or ("/proc/kallsyms" if self.is_running
                                                else f"/boot/System.map-{self.release}")
        self._tracefs_root = tracefs_root
        self._vmlinux_debug = vmlinux_debug
        self._headers_dir = headers_dir
        self._btf: BtfFile | None | bool = None
        self._syms: KernelSymbols | None | bool = None
        self._tracefs: Tracefs | None | bool = None
        self._kdwarf: UserBinary | None | bool = None
        self._binaries: dict[str, UserBinary] = {}
        self._missing: dict[str, str] = {}
        self._bpf_trace: dict[tuple, list[str]] | None = None
        self._header_tps: dict[str, tuple] | None = None
        self._kfnames: set[str] | None = None
        self._header_sorted: list | None = None
        self._header_by_name: dict[str, list] = {}
        self._ksym_match: dict[tuple, list[str]] = {}
        self._similar: dict[str, list[str]] = {}

    # -- sources -------------------------------------------------------------
    def missing(self) -> list[str]:
        """Human messages for every source that was wanted and is absent."""
        return list(self._missing.values())

    def _note(self, key: str, msg: str) -> None:
        self._missing.setdefault(key, msg)

    def btf(self) -> BtfFile | None:
        if self._btf is None:
            self._btf = False
            if not self.is_running and self._btf_path is None:
                self._note("btf", f"kernel {self.release} is not the running kernel "
                           f"({self.running_release}): no BTF for it")
            elif self._btf_path:
                try:
                    self._btf = load_btf(self._btf_path, self.use_cache)
                except TargetError as e:
                    self._note("btf", f"{e} (needs a kernel built with CONFIG_DEBUG_INFO_BTF)")
        return self._btf or None

    def symbols(self) -> KernelSymbols | None:
        if self._syms is None:
            self._syms = False
            try:
                self._syms = KernelSymbols.load(self._kallsyms_path, self.use_cache)
            except TargetError as e:
                self._note("symbols", f"no kernel symbol table: {e}")
        return self._syms or None

    def tracefs(self) -> Tracefs | None:
        if self._tracefs is None:
            self._tracefs = False
            if self._tracefs_root:
                self._tracefs = Tracefs(self._tracefs_root)
            elif self.is_running:
                self._tracefs = Tracefs.find() or False
                if not self._tracefs:
                    self._note("tracefs", "tracefs is not mounted and could not be mounted "
                               "(mount -t tracefs nodev /sys/kernel/tracing as root)")
        return self._tracefs or None

    def kernel_dwarf(self) -> UserBinary | None:
        if self._kdwarf is None:
            self._kdwarf = False
            cands = [self._vmlinux_debug] if self._vmlinux_debug else [
                f"/usr/lib/debug/boot/vmlinux-{self.release}",
                f"/usr/lib/debug/lib/modules/{self.release}/vmlinux",
                f"/lib/modules/{self.release}/build/vmlinux"]
            for p in cands:
                if p and os.path.isfile(p):
                    try:
                        self._kdwarf = UserBinary(p, self.use_cache)
                        break
                    except TargetError as e:
                        self._note("kdwarf", str(e))
            if not self._kdwarf:
                self._note("kdwarf", f"no kernel debug info for {self.release} (install "
                           f"linux-image-{self.release}-dbg): kernel functions come from "
                           f"BTF, without @file:line, locals or inlined functions")
        return self._kdwarf or None

    # -- kernel functions ----------------------------------------------------
    def kernel_function_names(self) -> set[str]:
        """Every kernel function name any source knows (computed once per model)."""
        if self._kfnames is not None:
            return self._kfnames
        names: set[str] = set()
        kd = self.kernel_dwarf()
        if kd is not None:
            names.update(f.name for f in kd.functions())
        b = self.btf()
        if b is not None:
            names.update(b.funcs)
        s = self.symbols()
        if s is not None:
            names.update(n for n, m in s.owner.items() if m == "kernel")
        self._kfnames = names
        return names

    def kernel_functions(self, pattern: str = "*", file_pattern: str | None = None,
                         with_vars: bool = True) -> list[FunctionInfo]:
        """Kernel functions whose name matches the glob, best source first."""
        out: list[FunctionInfo] = []
        kd = self.kernel_dwarf()
        seen: set[str] = set()
        if kd is not None:
            for f in kd.match_functions(pattern, file_pattern):
                if with_vars:
                    kd.load_vars(f)
                f.module = "kernel"
                out.append(f)
                seen.add(f.name)
        if file_pattern is not None:
            return out          # only DWARF knows files
        b = self.btf()
        if b is not None:
            for name in _glob(b.funcs, pattern):
                if name in seen:
                    continue
                seen.add(name)
                out.append(self._btf_function(b, name, with_vars))
        s = self.symbols()
        if s is not None:
            for name in _glob(s.owner, pattern):
                if name not in seen and s.owner[name] == "kernel":
                    seen.add(name)
                    out.append(FunctionInfo(name, SYMBOLS))
        return out

    def _btf_function(self, b: BtfFile, name: str, with_vars: bool = True,
                      module: str = "kernel") -> FunctionInfo:
        fi = FunctionInfo(name, BTF, module=module)
        if with_vars:
            fi.params = b.function_params(name) or []
            fi.return_type = b.function_return(name)
            fi.vars_loaded = True
        return fi

    def kernel_function(self, name: str) -> FunctionInfo | None:
        found = [f for f in self.kernel_functions(_escape(name)) if f.name == name]
        return found[0] if found else None

    def similar_kernel_functions(self, name: str) -> list[str]:
        """stap's "(similar functions: ...)" list for a kernel function (memoised:
        the search scores every kernel symbol)."""
        key = name.split("@")[0]
        hit = self._similar.get(key)
        if hit is None:
            hit = self._similar[key] = suggest(key, self.kernel_function_names())
        return list(hit)

    def kernel_symbols_matching(self, pattern: str, module_pattern: str | None = None
                                ) -> list[str]:
        """Sorted names of kallsyms text symbols matching the glob, owned by the kernel
        (``module_pattern`` None) or by modules matching ``module_pattern``
        (memoised: syscall aliases ask for hundreds of names)."""
        key = (pattern, module_pattern)
        hit = self._ksym_match.get(key)
        if hit is not None:
            return list(hit)
        s = self.symbols()
        if s is None:
            return []
        def owned(m: str) -> bool:
            return m == "kernel" if module_pattern is None else \
                fnmatch.fnmatchcase(m, module_pattern)
        if _is_glob(pattern):
            names = sorted(n for n, m in s.owner.items()
                           if fnmatch.fnmatchcase(n, pattern) and owned(m))
        else:
            m = s.owner.get(pattern)
            names = [pattern] if m is not None and owned(m) else []
        self._ksym_match[key] = names
        return list(names)

    def module_functions(self, module_pattern: str, pattern: str = "*",
                         with_vars: bool = True) -> list[FunctionInfo]:
        """Functions of loaded modules (from kallsyms, typed by module BTF)."""
        s = self.symbols()
        if s is None:
            return []
        out = []
        base = self.btf()
        for name, mod in sorted(s.owner.items()):
            if mod == "kernel" or not fnmatch.fnmatchcase(mod, module_pattern):
                continue
            if not fnmatch.fnmatchcase(name, pattern):
                continue
            mb = self._module_btf(mod, base)
            if mb is not None and name in mb.funcs:
                out.append(self._btf_function(mb, name, with_vars, module=mod))
            else:
                out.append(FunctionInfo(name, SYMBOLS, module=mod))
        return out

    def _module_btf(self, mod: str, base: BtfFile | None) -> BtfFile | None:
        if base is None:
            return None
        p = os.path.join(os.path.dirname(self._btf_path or BTF_PATH), mod)
        try:
            with open(p, "rb") as f:
                return BtfFile(f.read(), p, base)
        except (OSError, TargetError):
            return None

    #: the module tree (``/lib/modules/RELEASE`` unless set, e.g. by a test)
    modules_root: str | None = None

    def modules(self) -> list[ModuleInfo]:
        """Modules of the release's tree plus loaded ones (``/proc/modules``, kallsyms)."""
        root = self.modules_root or os.path.join("/lib/modules", self.release)
        loaded: list[str] = []
        if self.is_running and self.modules_root is None:
            s = self.symbols()
            loaded = sorted(n for n in s.modules() if not n.startswith("__builtin"))\
                if s is not None else []
        running = self.is_running and self.modules_root is None
        return list_modules(root, "/proc/modules" if running else None, loaded,
                            os.path.dirname(self._btf_path or BTF_PATH) if running else None)

    def module_function_list(self, name: str) -> list[FunctionInfo]:
        """Functions of module ``name``: loaded (kallsyms + BTF), else its ``.ko`` file's
        symbol table (names only: the DWARF of an unrelocated ``.ko`` is not read);
        compressed files are not read."""
        found = self.module_functions(name, "*", with_vars=False)
        if found:
            return found
        for m in self.modules():
            if m.name == name and m.path.endswith(".ko"):
                try:
                    syms = read_elf_facts(m.path).symbols
                except TargetError:
                    return []
                return [FunctionInfo(n, SYMBOLS, module=name) for n in sorted(syms)]
        return []

    # -- tracepoints ---------------------------------------------------------
    def tracepoints(self, pattern: str = "*:*", with_fields: bool = True) -> list[Tracepoint]:
        """Tracepoints ``system:name`` matching the glob (a bare name matches any system)."""
        sys_pat, _, name_pat = pattern.rpartition(":")
        sys_pat = sys_pat or "*"
        out: list[Tracepoint] = []
        tf = self.tracefs()
        if tf is not None:
            for system, events in tf.events().items():
                if not fnmatch.fnmatchcase(system, sys_pat):
                    continue
                for ev in events:
                    if not fnmatch.fnmatchcase(ev, name_pat):
                        continue
                    tp = Tracepoint(system, ev, TRACEFS)
                    if with_fields:
                        fmt = tf.format(system, ev)
                        tp.fields = list(fmt.fields) if fmt else []
                        tp.args = self._tracepoint_args(ev)
                        tp.args_source = BTF if tp.args is not None else None
                        tp.args = tp.args or []
                    out.append(tp)
            return out
        hdr = self._headers()
        if not _is_glob(sys_pat) and not _is_glob(name_pat):
            args = hdr.get(f"{sys_pat}:{name_pat}")
            if args is not None:
                out.append(Tracepoint(sys_pat, name_pat, HEADERS, args=header_vars(args),
                                      args_source=HEADERS))
            return out
        if self._header_sorted is None:
            self._header_sorted = [(full.split(":", 1), args) for full, args in sorted(hdr.items())]
            self._header_by_name = {}
            for (system, ev), args in self._header_sorted:
                self._header_by_name.setdefault(ev, []).append(((system, ev), args))
        cands = self._header_sorted if _is_glob(name_pat) else \
            self._header_by_name.get(name_pat, [])
        for (system, ev), args in cands:
            if fnmatch.fnmatchcase(system, sys_pat) and fnmatch.fnmatchcase(ev, name_pat):
                out.append(Tracepoint(system, ev, HEADERS, args=header_vars(args),
                                      args_source=HEADERS))
        return out

    def has_tracepoints(self) -> bool:
        """Whether any source lists tracepoints (tracefs, or the headers of another release)."""
        tf = self.tracefs()
        if tf is not None:
            return bool(tf.events())
        return bool(self._headers())

    def _tracepoint_args(self, event: str) -> list[Var] | None:
        b = self.btf()
        if b is None:
            return None
        direct = b.function_params("__bpf_trace_" + event)
        if direct is not None:
            return direct[1:]
        # DEFINE_EVENT: the class's __bpf_trace_ function has the names;
        # btf_trace_<event> (a pointer to its prototype) has the types.
        td = b.find_type("btf_trace_" + event)
        if td is None or b.kind_of(td) != TYPEDEF:
            return None
        ptr = b.raw(td)[4]
        if b.kind_of(ptr) != PTR:
            return None
        proto = b.raw(ptr)[4]
        if b.kind_of(proto) != FUNC_PROTO:
            return None
        key = tuple(t for _n, t in b._items(proto, "<II", 8))[1:]
        index = self._bpf_trace_index(b)
        cands = index.get(key, [])
        if not cands:
            return [Var(v.name, v.type, "arg") for v in b.proto_params(proto)[1:]]
        best = max(cands, key=lambda c: (len(os.path.commonprefix([c, event])), -len(c)))
        params = b.function_params("__bpf_trace_" + best) or []
        return params[1:]

    def _bpf_trace_index(self, b: BtfFile) -> dict[tuple, list[str]]:
        if self._bpf_trace is None:
            idx: dict[tuple, list[str]] = {}
            for name, tid in b.funcs.items():
                if name.startswith("__bpf_trace_"):
                    proto = b.raw(tid)[4]
                    key = tuple(t for _n, t in b._items(proto, "<II", 8))[1:]
                    idx.setdefault(key, []).append(name[len("__bpf_trace_"):])
            self._bpf_trace = idx
        return self._bpf_trace

    def _headers(self) -> dict[str, tuple]:
        """``{"system:name": ((arg, type), ...)}`` from another release's headers."""
        if self._header_tps is None:
            from stap_ls.targets.trace_headers import trace_header_index
            d = self._headers_dir or f"/lib/modules/{self.release}/build"
            self._header_tps = trace_header_index(d, self.use_cache)
            if not self._header_tps:
                self._note("headers", f"no tracepoint definitions for {self.release} "
                           f"(install linux-headers-{self.release})")
        return self._header_tps

    # -- user space ----------------------------------------------------------
    def binary(self, path: str) -> UserBinary:
        """The binary at ``path`` (raises TargetError if it cannot be read)."""
        real = os.path.realpath(path)
        ub = self._binaries.get(real)
        if ub is None:
            ub = UserBinary(real, self.use_cache)
            self._binaries[real] = ub
            for m in ub.missing():
                self._note("dwarf:" + real, m)
        return ub

    def flush(self) -> None:
        """Save what was learnt about binaries (variables) to the disk cache."""
        for ub in self._binaries.values():
            ub.flush()
        if isinstance(self._kdwarf, UserBinary):
            self._kdwarf.flush()

    # -- types ---------------------------------------------------------------
    def kernel_type(self, spelling: str) -> TypeRef | None:
        """``struct file``, ``union X``, ``enum Y`` or a typedef of the kernel."""
        kd = self.kernel_dwarf() if self._kdwarf is not False else None
        if kd is not None:
            t = kd.find_type(spelling)
            if t is not None:
                return t
        b = self.btf()
        if b is None:
            return None
        tid = b.find_type(spelling)
        return b.ref(tid) if tid is not None else None

    def describe(self, ref: TypeRef) -> TypeInfo | None:
        """One level of a type: its kind, target, members or enumerators."""
        if ref.key is None:
            return None
        if ref.source == BTF:
            b = self.btf()
            return b.describe(ref.key, ref.origin) if b is not None else None
        if ref.source == DWARF:
            if ref.origin in ("kernel", ""):
                kd = self.kernel_dwarf()
                return kd.describe(ref) if kd is not None else None
            return self.binary(ref.origin).describe(ref)
        return None

    def _strip(self, ref: TypeRef) -> TypeInfo | None:
        info = self.describe(ref)
        hops = 0
        while info is not None and info.kind in ("typedef", "const", "volatile", "restrict") \
                and info.target is not None and hops < 32:
            info = self.describe(info.target)
            hops += 1
        return info

    def member(self, ref: TypeRef, name: str) -> Member | None:
        """Member ``name`` of a struct/union, through one pointer and any typedefs."""
        info = self._strip(ref)
        if info is not None and info.kind in ("pointer", "array") and info.target is not None:
            info = self._strip(info.target)
        if info is None or info.kind not in ("struct", "union"):
            return None
        return self._find_member(info, name, 0)

    def _find_member(self, info: TypeInfo, name: str, depth: int) -> Member | None:
        for m in info.members:
            if m.name == name:
                return m
        if depth > 8:
            return None
        for m in info.members:
            if m.name == "":
                sub = self._strip(m.type)
                if sub is not None and sub.kind in ("struct", "union"):
                    found = self._find_member(sub, name, depth + 1)
                    if found is not None:
                        return found
        return None

    def members(self, ref: TypeRef) -> list[Member]:
        """Members reachable with ``->``/``.`` from a value of type ``ref`` (for completion)."""
        info = self._strip(ref)
        if info is not None and info.kind in ("pointer", "array") and info.target is not None:
            info = self._strip(info.target)
        if info is None or info.kind not in ("struct", "union"):
            return []
        out: list[Member] = []
        for m in info.members:
            if m.name:
                out.append(m)
            else:
                out.extend(self.members(m.type))
        return out

    def resolve_chain(self, ref: TypeRef, names: list[str]) -> ChainResult:
        """Walk ``$v->a->b->c`` member by member; say where and why it stops."""
        steps: list[Member] = []
        cur = ref
        for n in names:
            m = self.member(cur, n)
            if m is None:
                info = self._strip(cur)
                what = info.name if info is not None else cur.name
                if info is None or info.kind not in ("struct", "union", "pointer", "array"):
                    why = f"'{what}' is not a struct, union or pointer to one"
                else:
                    why = f"'{what}' has no member '{n}'"
                return ChainResult(steps, f"{why} (from {cur.source.upper()})")
            steps.append(m)
            cur = m.type
        return ChainResult(steps)


def load_btf(path: str, use_cache: bool = True) -> BtfFile:
    """Read a BTF blob, reusing the on-disk index keyed by its checksum."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise TargetError(f"{path}: {e.strerror}") from None
    # a kernel is keyed by its release and the BTF checksum
    key = (os.uname().release, os.path.realpath(path), BtfFile.checksum(data))
    idx = cache.load("btf", key) if use_cache else None
    if isinstance(idx, dict):
        try:
            return BtfFile.from_index(data, path, idx)
        except (TargetError, KeyError, TypeError):
            pass
    b = BtfFile(data, path)
    if use_cache:
        cache.store("btf", key, b.index_state())
    return b


def _glob(names, pattern: str) -> list[str]:
    if not any(c in pattern for c in "*?["):
        return [pattern] if pattern in names else []
    return sorted(n for n in names if fnmatch.fnmatchcase(n, pattern))


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def _escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)
