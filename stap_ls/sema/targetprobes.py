"""Pass 2 for probe points that bind to a target: kernel, module, kprobe, process, perf.

stap resolves ``kernel.function("vfs_*")``, ``kernel.trace("sched:*")``,
``process("/bin/ls").function("main")`` ... against debug information and
turns each into concrete probe points (the text ``stap -p2`` prints) with the
target variables (``$vars``) their context offers.  This module does the same
against :class:`stap_ls.targets.model.TargetModel`:

* :func:`is_target_family` says which probe points need the target model;
* :func:`resolve_target_point` expands one probe point into
  :class:`ConcretePoint` s, or returns stap's "no match" error (with the
  "(similar functions: ...)" names stap gives) and warnings naming what is
  missing (kernel DWARF on machines that only have BTF);
* :func:`resolve_target_expr` gives the stap type (``long``/``string``) of
  ``$var``, ``$var->a->b[2]``, ``$$vars``, ``$return``, ``@cast(...)`` and
  ``@var(...)`` in a concrete point's context, with stap's wording for its
  errors; :func:`target_expr_ctype` gives the C type for hover.

Where stap needs kernel DWARF and only BTF/kallsyms/tracefs are present, the
answer comes from those (no ``@file:line``, no locals, one warning naming the
missing debug info) and ``target_vars`` of kallsyms-only functions is ``None``
(unknown: a ``$var`` there is a warning, not an error).  ``fn@file``
patterns, which only DWARF can check, are accepted unchecked when ``fn``
exists.  For ``-r`` a release with no kernel facts on the machine at all,
the running kernel answers (:func:`kernel_model`), with a warning.

Differences from stap kept on purpose: ``.plt("name")`` points keep that
text (stap prints ``.statement(0xADDR)``); kprobe points are checked against
kallsyms (stap 4.8 finds no match here); ``@var`` is typed ``long`` without
a lookup of global variables.
"""

from __future__ import annotations

import fnmatch
import glob as globmod
import os
import re
from dataclasses import dataclass, field

from stap_ls.options import StapOptions
from stap_ls.syntax import ast as A
from stap_ls.targets.base import (BTF, DWARF, SDT, SYMBOLS, FunctionInfo, TargetError,
                                  TypeInfo, TypeRef, Var)
from stap_ls.targets.elfinfo import find_executable, script_interpreter
from stap_ls.targets.model import TargetModel
from stap_ls.targets.suggest import suggest
from stap_ls.text import Diagnostic, Severity, Span

CODE_NO_MATCH = "no-match"
CODE_TARGET = "target-symbol"
CODE_MISSING = "missing-debuginfo"

#: source files stap refuses to probe (dwflpp::build_blacklist); every function
#: of such a file is blocklisted, so a point naming one never matches
_BLOCKLISTED_FILE = re.compile(r"kernel/kprobes\.c|arch/.*/kernel/kprobes\.c|include/asm/io\.h"
                               r"|include/asm/bitops\.h|arch/.*/include/asm/io\.h"
                               r"|arch/.*/include/asm/bitops\.h|drivers/ide/ide-iops\.c")
_FUNC_SUFFIXES = ("call", "return", "inline", "exported", "maxactive")
_PROCESS_EVENTS = ("begin", "end", "syscall", "thread", "insn", "mark", "plt", "function",
                   "statement", "library", "provider", "memory", "data")


@dataclass
class TargetVar:
    """A ``$variable`` a probe's context offers."""

    name: str               # without '$'
    type: str               # C type as stap prints it in -L
    type_ref: object | None  # stap_ls.targets.base.TypeRef, for ->member chains
    source: str             # "btf" | "dwarf" | "tracefs" | "headers" | "symbols" | "sdt"


@dataclass
class ConcretePoint:
    """One concrete probe point as ``stap -p2`` prints it, with its context."""

    text: str
    family: str
    is_return: bool
    target_vars: list[TargetVar] | None   # None = unknown (no debug info)
    source: str
    #: "kernel", a module name or a binary path: where @cast/@var look by default
    origin: str = "kernel"
    #: the probed function's name (function/statement points), for messages
    function: str = ""
    #: what is missing for target variables here (with target_vars None)
    missing: str = ""


@dataclass
class TargetResolution:
    points: list[ConcretePoint] = field(default_factory=list)   # empty = no match
    diagnostics: list[Diagnostic] = field(default_factory=list)
    #: answered by the running kernel standing in for a ``-r`` release that has
    #: no kernel facts here (:func:`kernel_model`)
    proxy: bool = False


def error(msg: str, span: Span | None, code: str = CODE_NO_MATCH) -> Diagnostic:
    return Diagnostic(Severity.ERROR, msg, span, code=code, kind="semantic error")


def warning(msg: str, span: Span | None, code: str = CODE_MISSING) -> Diagnostic:
    return Diagnostic(Severity.WARNING, msg, span, code=code, kind="WARNING")


def var_of(v: Var) -> TargetVar:
    """A target model variable as a :class:`TargetVar`."""
    return TargetVar(v.name, v.type.name, v.type, v.type.source)


_RUNNING: dict[str, TargetModel] = {}


def kernel_model(model: TargetModel) -> TargetModel:
    """The model that answers kernel questions for ``model``.

    When ``model`` is for another release (``-r``) and has neither debug
    information, a symbol table nor BTF for it (the usual case on machines
    that only have that release's headers), the running kernel's BTF and
    kallsyms answer instead — the nearest facts there are.  Callers say so in
    a warning (:func:`kernel_fallback_note`).
    """
    if model.is_running or model.btf() is not None or model.symbols() is not None \
            or model.kernel_dwarf() is not None:
        return model
    running = _RUNNING.get("model")
    if running is None:
        running = _RUNNING["model"] = TargetModel(use_cache=model.use_cache)
    return running


def kernel_fallback_note(model: TargetModel) -> str:
    return (f"kernel {model.release} has no debug information, symbol table or BTF here: "
            f"resolved against the running kernel ({model.running_release})")


# -- which points are ours -----------------------------------------------------
def is_target_family(pp: A.ProbePoint) -> bool:
    """kernel./module(/kprobe./process(/perf. points that need the target model."""
    c = pp.components
    if not c:
        return False
    head = c[0].functor
    if head == "kernel":
        return len(c) > 1 and c[1].functor in ("function", "statement", "trace", "mark")
    if head in ("module", "kprobe", "perf"):
        return len(c) > 1
    if head == "process":
        return len(c) > 1 and c[1].functor in _PROCESS_EVENTS
    return False


def _arg(c: A.PPComponent) -> str | int | None:
    return c.arg.value if c.arg is not None else None


def _q(s: str | int | None) -> str:
    if isinstance(s, int):
        return f"({s})" if s >= 0 else f"({s})"
    return f'("{s}")' if s is not None else ""


def _comp_text(c: A.PPComponent) -> str:
    return c.functor + _q(_arg(c))


def _is_glob(s: str) -> bool:
    return any(ch in s for ch in "*?[")


@dataclass
class _Spec:
    name: str
    file: str | None = None
    line: str | None = None


def _func_spec(spec: str) -> _Spec:
    name, at, rest = spec.partition("@")
    if not at:
        return _Spec(name)
    head, colon, tail = rest.rpartition(":")
    if colon and (tail.isdigit() or tail == "*" or "-" in tail or tail.startswith("+")):
        return _Spec(name, head or None, tail)
    return _Spec(name, rest or None, None)


# -- resolution --------------------------------------------------------------------
class _Resolver:
    def __init__(self, pp: A.ProbePoint, model: TargetModel, opts: StapOptions,
                 suggest_similar: bool = True) -> None:
        self.pp = pp
        self.model = model
        self.opts = opts
        #: search "(similar functions: ...)" on a miss (off where the miss is silent)
        self.suggest_similar = suggest_similar
        self.span = pp.span
        self.res = TargetResolution()

    def no_match(self, similar: list[str] | None = None, what: str = "functions") -> None:
        sim = f" (similar {what}: {', '.join(similar)})" if similar else ""
        self.res.diagnostics.append(error(f"no match{sim}", self.span))

    def fail(self, msg: str, code: str = CODE_NO_MATCH) -> None:
        self.res.diagnostics.append(error(msg, self.span, code))

    def warn(self, msg: str, code: str = CODE_MISSING) -> None:
        self.res.diagnostics.append(warning(msg, self.span, code))

    def run(self) -> TargetResolution:
        c = self.pp.components
        head = c[0].functor
        if head == "kernel":
            kind = c[1].functor
            if kind == "trace":
                self.trace(c[1], c[2:])
            elif kind == "mark":
                self.no_match()
                self.warn("kernel markers do not exist in this kernel (kernel.mark probes "
                          "were removed in Linux 2.6.32; use kernel.trace)", "no-markers")
            else:
                self.kernel_function("kernel", c[1], c[2:])
        elif head == "module":
            self.module(c)
        elif head == "kprobe":
            self.kprobe(c)
        elif head == "process":
            self.process(c)
        elif head == "perf":
            self.perf(c)
        return self.res

    # -- kernel ----------------------------------------------------------------
    def _suffix(self, rest: list[A.PPComponent], kind: str = "function") -> tuple[str, str] | None:
        """(suffix name, suffix text) of a function/statement point, or None after an error."""
        sfx, text = "", ""
        allowed = _FUNC_SUFFIXES if kind == "function" else ("nearest", "absolute")
        for comp in rest:
            if comp.functor not in allowed or (sfx and comp.functor != "maxactive"):
                self.res.diagnostics.append(error(
                    "invalid suffix for probe",
                    comp.span or self.span, "probe-point"))
                return None
            if comp.functor != "maxactive":
                sfx = comp.functor
            if comp.functor != "nearest":      # stap drops .nearest once resolved
                text += "." + _comp_text(comp)
        return sfx, text

    def kernel_function(self, prefix: str, comp: A.PPComponent,
                        rest: list[A.PPComponent], module: str | None = None) -> None:
        arg = _arg(comp)
        kind = comp.functor
        sfx_t = self._suffix(rest, kind)
        if sfx_t is None:
            return
        sfx, sfx_text = sfx_t
        family = f"{'kernel' if module is None else 'module'}.{kind}"
        if isinstance(arg, int) or arg is None:
            # kernel.statement(0xADDR).absolute and friends: addresses need no lookup
            shown = f"(0x{arg & (2 ** 64 - 1):x})" if isinstance(arg, int) else ""
            self.res.points.append(ConcretePoint(f"{prefix}.{kind}{shown}{sfx_text}", family,
                                                 False, None, SYMBOLS,
                                                 missing="debug information for an address"))
            return
        spec = _func_spec(arg)
        if spec.file is not None and not _is_glob(spec.file) \
                and _BLOCKLISTED_FILE.fullmatch(spec.file):
            self.no_match()     # stap never probes these files (its blocklist)
            return
        km = kernel_model(self.model)
        if km is not self.model:
            self.res.proxy = True
            self.warn(kernel_fallback_note(self.model))
        if module is None and spec.file is not None and km.kernel_dwarf() is None:
            # only DWARF knows source files: accept the point unchecked when its name matches
            if km.kernel_functions(spec.name, None, with_vars=False):
                self.res.points.append(ConcretePoint(
                    f"{prefix}.{kind}{_q(arg)}{sfx_text}", family, sfx == "return", None,
                    SYMBOLS, missing=f"kernel debug information (for '@{spec.file}')"))
                self.warn(f"'@{spec.file}' cannot be checked without kernel debug information "
                          f"(install linux-image-{self.model.release}-dbg): functions named "
                          f"'{spec.name}' exist, their files and variables are unknown")
                return
        if module is None:
            funcs = km.kernel_functions(spec.name, spec.file)
        else:
            funcs = km.module_functions(module, spec.name)
        dwarf = any(f.source == DWARF for f in funcs)
        for f in funcs:
            if sfx == "inline" and f.source == BTF:
                continue        # BTF only has out-of-line functions
            if sfx in ("call", "return") and f.source == DWARF and not f.has_body:
                continue
            vs = self._func_vars(f, sfx == "return")
            where = f.module if module is not None else "kernel"
            shown = f'{prefix.replace(_q(module), _q(where)) if module else prefix}'
            self.res.points.append(ConcretePoint(
                f'{shown}.{kind}("{f.spec()}"){sfx_text}', family, sfx == "return", vs,
                f.source, where, f.name,
                "" if vs is not None else f"no debug information for '{f.name}'"))
        if not self.res.points:
            if spec.file is not None and km.kernel_dwarf() is None:
                self.fail(f"no match: '{arg}' names a source file, which needs kernel "
                          f"debug information (install linux-image-{self.model.release}-dbg)")
            elif module is not None:
                self.no_match()
            else:
                self.no_match(None if _is_glob(spec.name) or not self.suggest_similar else
                              km.similar_kernel_functions(spec.name))
        elif not dwarf and module is None:
            self.warn(f"no kernel debug information for {km.release}: "
                      f"'{prefix}.{kind}(\"{arg}\")' resolved from BTF/kallsyms, without "
                      f"@file:line, locals or inlined instances (install "
                      f"linux-image-{km.release}-dbg)")

    def _func_vars(self, f: FunctionInfo, is_return: bool) -> list[TargetVar] | None:
        if f.source == SYMBOLS:
            return None
        vs = [var_of(v) for v in f.vars]
        if is_return and f.return_type is not None and f.return_type.name != "void":
            vs.insert(0, TargetVar("return", f.return_type.name, f.return_type,
                                   f.return_type.source))
        return vs

    def trace(self, comp: A.PPComponent, rest: list[A.PPComponent]) -> None:
        arg = _arg(comp)
        if rest or not isinstance(arg, str):
            self.fail("kernel.trace needs a \"SYSTEM:NAME\" string and takes no suffix",
                      "probe-point")
            return
        tps = self.model.tracepoints(arg)
        if not tps and not self.model.is_running and not self.model.has_tracepoints():
            km = kernel_model(self.model)
            if km is not self.model:
                self.res.proxy = True
                self.warn(kernel_fallback_note(self.model))
                tps = km.tracepoints(arg)
        for tp in tps:
            vs = [TargetVar(v.name, v.type.name, v.type, tp.args_source or v.type.source)
                  for v in tp.args] if tp.args_source else None
            self.res.points.append(ConcretePoint(
                f'kernel.trace("{tp.full_name}")', "kernel.trace", False, vs,
                tp.args_source or tp.source, "kernel", tp.name,
                "" if vs is not None else "kernel BTF (tracepoint arguments)"))
        if not self.res.points:
            system, _, name = arg.rpartition(":")
            similar = None
            if not _is_glob(name) and self.suggest_similar:
                similar = suggest(name, {tp.name for tp in self.model.tracepoints(
                    f"{system or '*'}:*", with_fields=False)})
            self.no_match(similar, "tracepoints")

    def module(self, c: list[A.PPComponent]) -> None:
        mod = _arg(c[0])
        if not isinstance(mod, str) or c[1].functor not in ("function", "statement"):
            self.fail("module(\"NAME\") must be followed by .function(...) or .statement(...)",
                      "probe-point")
            return
        self.kernel_function(f'module("{mod}")', c[1], c[2:], module=mod)
        if not self.res.points and not os.path.exists("/proc/modules"):
            self.warn("this kernel has no loadable module support: module probes never match")

    def kprobe(self, c: list[A.PPComponent]) -> None:
        rest = c[1:]
        module = None
        if rest and rest[0].functor == "module":
            module = _arg(rest[0])
            rest = rest[1:]
        if not rest or rest[0].functor not in ("function", "statement"):
            self.fail("kprobe needs .function(\"NAME\") or .statement(ADDRESS)", "probe-point")
            return
        text = ".".join(_comp_text(x) for x in c)
        is_ret = any(x.functor == "return" for x in rest[1:])
        arg = _arg(rest[0])
        if rest[0].functor == "function" and isinstance(arg, str):
            km = kernel_model(self.model)
            self.res.proxy = km is not self.model
            if km.symbols() is not None:
                names = km.kernel_symbols_matching(arg, None if module is None else str(module))
                if not names:
                    self.no_match()
                    return
                for n in names:
                    self.res.points.append(ConcretePoint(
                        text.replace(f'function("{arg}")', f'function("{n}")'),
                        "kprobe.function", is_ret, [], SYMBOLS, module or "kernel", n))
                return
        self.res.points.append(ConcretePoint(text, f"kprobe.{rest[0].functor}", is_ret, [],
                                             SYMBOLS, str(module or "kernel")))

    def perf(self, c: list[A.PPComponent]) -> None:
        names = [x.functor for x in c]
        if len(c) < 3 or names[1] != "type" or names[2] != "config":
            self.fail("perf probes are perf.type(N).config(M)[.sample(N)][.process(\"P\")]"
                      "[.counter(\"NAME\")] (or the perf.hw.*/perf.sw.* tapset aliases)",
                      "probe-point")
            return
        for x in c[3:]:
            if x.functor == "process" and isinstance(_arg(x), str) \
                    and find_executable(str(_arg(x))) is None:
                self.fail(f"cannot find executable '{_arg(x)}'", "no-executable")
                return
        comps = [_comp_text(x) for x in c]
        if "sample" not in names and "counter" not in names:
            comps.insert(3, "sample(1000000)")     # stap's default sampling period
        self.res.points.append(ConcretePoint(".".join(comps), "perf", False, [], "perf"))

    # -- user space ------------------------------------------------------------
    def process(self, c: list[A.PPComponent]) -> None:
        target = _arg(c[0])
        rest = c[1:]
        kind = rest[0].functor
        if isinstance(target, str) and "/" in target and _is_glob(target):
            # stap expands a path glob (process("/usr/lib*/libc.so.*")): each file found
            hits = sorted(h for h in globmod.glob(target) if os.path.isfile(h))
            if hits:
                for h in hits:
                    arg = A.StringLit(c[0].arg.span if c[0].arg else None, h)
                    self.process([A.PPComponent(c[0].functor, arg, c[0].span)] + rest)
                return
        path: str | None = None
        if target is None and self.opts.command and kind in ("function", "statement", "plt",
                                                             "mark", "library"):
            target = self.opts.command.split()[0]   # -c COMMAND: its executable
        if isinstance(target, str):
            path = find_executable(target)
            if path is not None and kind in ("function", "statement", "plt", "mark", "library"):
                path = script_interpreter(path) or path     # a #! script: its interpreter
            if path is None:
                if kind in ("begin", "end", "thread", "syscall", "insn"):
                    # stap accepts these for a path that does not exist (yet)
                    self.warn(f"no executable '{target}' exists now: this probe fires only "
                              f"if one is started later", "no-executable")
                else:
                    self.res.diagnostics.append(error("no match", self.span))
                    self.warn(f"cannot find executable '{target}'", "no-executable")
                    return
            prefix = f'process("{path or target}")'
        elif isinstance(target, int):
            exe = f"/proc/{target}/exe"
            path = os.path.realpath(exe) if os.path.exists(exe) else None
            prefix = f"process({target})"
            if path is None and kind in ("function", "statement", "mark", "plt", "library"):
                self.fail(f"process {target} does not exist (its binary is needed to "
                          f"resolve .{kind})", "no-process")
                return
        else:
            prefix = "process"
        if kind in ("begin", "end", "thread", "syscall", "insn", "memory", "data"):
            text = ".".join([prefix] + [_comp_text(x) for x in rest])
            is_ret = rest[-1].functor == "return"
            vs = None
            if kind == "syscall":
                vs = [TargetVar("syscall", "long", None, "regs")] + [
                    TargetVar(f"arg{i}", "long", None, "regs") for i in range(1, 7)]
                if is_ret:
                    vs.append(TargetVar("return", "long", None, "regs"))
            elif kind in ("begin", "end", "thread"):
                vs = []
            self.res.points.append(ConcretePoint(text, f"process.{kind}", is_ret, vs,
                                                 "process", path or "kernel"))
            return
        if path is None:
            self.fail(f"process.{kind} needs an executable: process(\"PATH\").{kind}(...)",
                      "no-executable")
            return
        try:
            ub = self.model.binary(path)
        except TargetError as e:
            self.fail(str(e), "no-executable")
            return
        if kind == "library":
            self.library(prefix, ub, rest)
            return
        self.binary(prefix, ub, rest, "process")

    def library(self, prefix: str, ub, rest: list[A.PPComponent]) -> None:
        pat = _arg(rest[0])
        if not isinstance(pat, str) or len(rest) < 2:
            self.fail("process(...).library(\"LIB\") must be followed by .function(...), "
                      ".statement(...), .mark(...) or .plt(...)", "probe-point")
            return
        libs = [p for p in ub.libraries()
                if fnmatch.fnmatchcase(os.path.basename(p), pat) or fnmatch.fnmatchcase(p, pat)
                or os.path.realpath(pat) == p]
        if not libs and "/" in pat and os.path.exists(pat):
            libs = [os.path.realpath(pat)]
        if not libs:
            self.fail(f"cannot find library '{pat}' among the libraries of {ub.path}",
                      "no-executable")
            return
        for lib in libs:
            try:
                lb = self.model.binary(lib)
            except TargetError as e:
                self.warn(str(e))
                continue
            # stap names the library itself as the process of the concrete point
            self.binary(f'process("{lib}")', lb, rest[1:], "process.library")

    def binary(self, prefix: str, ub, rest: list[A.PPComponent], fam: str) -> None:
        head = rest[0]
        kind = head.functor
        arg = _arg(head)
        if kind in ("mark", "provider"):
            provider = "*"
            if kind == "provider":
                provider = str(arg or "*")
                if len(rest) < 2 or rest[1].functor != "mark":
                    self.fail(".provider(...) must be followed by .mark(...)", "probe-point")
                    return
                arg = _arg(rest[1])
            before = len(self.res.points)
            for m in ub.marks(str(arg if arg is not None else "*"), provider):
                vs = [TargetVar(f"arg{i + 1}", "long", TypeRef("long", SDT), SDT)
                      for i in range(m.nargs)]
                vs.append(TargetVar("$name", "string", None, SDT))
                prov = f'.provider("{m.provider}")' if kind == "provider" else ""
                self.res.points.append(ConcretePoint(f'{prefix}{prov}.mark("{m.name}")',
                                                     f"{fam}.mark".replace("library.", ""),
                                                     False, vs, SDT, ub.path, m.name))
            if len(self.res.points) == before:
                self.no_match()
            return
        if kind == "plt":
            sfx = "".join("." + _comp_text(x) for x in rest[1:])
            names = ub.plt(str(arg if arg is not None else "*"))
            for n in names:
                self.res.points.append(ConcretePoint(f'{prefix}.plt("{n}"){sfx}',
                                                     "process.plt", sfx == ".return",
                                                     [], "symbols", ub.path, n))
            if not names:
                self.no_match()
            return
        if kind not in ("function", "statement"):
            self.fail(f"probe point mismatch: unknown process probe '.{kind}'", "probe-point")
            return
        if isinstance(arg, int) or arg is None:
            text = ".".join([prefix] + [_comp_text(x) for x in rest])
            self.res.points.append(ConcretePoint(text, f"{fam}.{kind}", False, None, SYMBOLS,
                                                 ub.path, missing="debug information for an address"))
            return
        spec = _func_spec(arg)
        sfx_t = self._suffix(rest[1:], kind)
        if sfx_t is None:
            return
        sfx, sfx_text = sfx_t
        funcs = ub.match_functions(spec.name, spec.file)
        before = len(self.res.points)
        for f in funcs:
            if sfx in ("call", "return") and f.source == DWARF and not f.has_body:
                continue
            if sfx == "inline" and not (f.inlined or f.source == SYMBOLS):
                continue
            ub.load_vars(f)
            if kind == "statement" and spec.line:
                want = int(spec.line) if spec.line.isdigit() else None
                for file, line, addr in ub.statement_lines(f, spec.file, want):
                    vs = [var_of(v) for v in ub.vars_at(f, addr)]
                    self.res.points.append(ConcretePoint(
                        f'{prefix}.statement("{f.name}@{file}:{line}"){sfx_text}',
                        f"{fam}.statement", False, vs, f.source, ub.path, f.name))
                continue
            if spec.line and spec.line.isdigit():
                rows = ub.statement_lines(f, spec.file, int(spec.line))
                if not rows and f.line != int(spec.line):
                    continue
            if sfx == "return":
                ub.return_type(f)
            vs = self._func_vars(f, sfx == "return")
            self.res.points.append(ConcretePoint(
                f'{prefix}.{kind}("{f.spec()}"){sfx_text}', f"{fam}.{kind}",
                sfx == "return", vs, f.source, ub.path, f.name,
                "" if vs is not None else f"debug information for {ub.path} "
                f"(it has only a symbol table)"))
        if len(self.res.points) == before:
            self.no_match(None if _is_glob(spec.name) or not self.suggest_similar
                          else ub.similar_functions(spec.name))


def resolve_target_point(pp: A.ProbePoint, model: TargetModel, opts: StapOptions,
                         suggest_similar: bool = True) -> TargetResolution:
    """Expand ``pp`` into concrete points, or stap's error for it.

    ``suggest_similar=False`` skips the "(similar functions: ...)" search on a
    miss (seconds over every kernel symbol): callers pass it for points whose
    failure stap drops silently (``?``, ``!`` and what they expand to)."""
    if not is_target_family(pp):
        return TargetResolution([], [error("not a kernel, module, kprobe, process or perf "
                                           "probe point", pp.span, "probe-point")])
    try:
        return _Resolver(pp, model, opts, suggest_similar).run()
    except TargetError as e:
        return TargetResolution([], [error(str(e), pp.span, "target-error")])


# -- target expressions --------------------------------------------------------------
_PSEUDO = ("$$vars", "$$parms", "$$locals", "$$return", "$$name")


@dataclass
class _Typed:
    """A target expression's C type (``ref``) or its stap-only type (``stap``)."""

    ref: TypeRef | None = None
    stap: str | None = None
    error: Diagnostic | None = None


def _alternatives(point: ConcretePoint) -> str:
    names = [f"${v.name}" for v in point.target_vars or [] if v.name != "return"]
    if point.family == "kernel.trace":
        names = sorted(names + ["$$name", "$$vars", "$$parms"])
    return ", ".join(names)


def _lookup_var(point: ConcretePoint, e: A.TargetSymbol, model: TargetModel) -> _Typed:
    name = e.name
    if name in _PSEUDO or name.startswith("$$"):
        if name not in _PSEUDO:
            return _Typed(error=error(f"unknown context variable '{name}' (alternatives: "
                                      f"{', '.join(_PSEUDO)})", e.span, CODE_TARGET))
        if name == "$$return" and not point.is_return:
            return _Typed(error=error("'$$return' is only available in .return probes",
                                      e.span, CODE_TARGET))
        return _Typed(stap="string")
    bare = name[1:]
    if point.target_vars is None:
        why = point.missing or "debug information"
        return _Typed(stap="long", error=warning(
            f"cannot check '{name}' at {point.text}: {why} is missing", e.span))
    for v in point.target_vars:
        if v.name == bare:
            if isinstance(v.type_ref, TypeRef):
                return _Typed(ref=v.type_ref)
            return _Typed(stap="string" if v.type == "string" else "long")
    alts = _alternatives(point)
    if point.family == "kernel.trace":
        msg = f"unable to find tracepoint variable '{name}' (alternatives: {alts})"
    elif bare == "return":
        msg = (f"unable to find local 'return' in {point.function or point.text}: $return is "
               f"only available in .return probes" if not point.is_return else
               f"unable to find local 'return': '{point.function}' returns void")
        if alts:
            msg += f" (alternatives: {alts})"
    elif point.family.endswith(".mark"):
        msg = f"unable to find marker variable '{name}' (alternatives: {alts})"
    else:
        msg = (f"unable to find local '{bare}' in {point.function or point.text}"
               + (f" (alternatives: {alts})" if alts else ""))
    return _Typed(error=error(msg, e.span, CODE_TARGET))


def _strip(model: TargetModel, ref: TypeRef) -> TypeInfo | None:
    if ref.key is None:
        return None
    info = model.describe(ref)
    hops = 0
    while info is not None and info.kind in ("typedef", "const", "volatile", "restrict") \
            and info.target is not None and hops < 32:
        info = model.describe(info.target)
        hops += 1
    return info


def _walk(model: TargetModel, ref: TypeRef, comps: list[A.Component],
          span: Span | None) -> _Typed:
    """Follow ``->member`` and ``[index]`` components from a value of type ``ref``."""
    cur = ref
    for comp in comps:
        where = comp.span or span
        if comp.kind == "pretty":
            return _Typed(stap="string")
        info = _strip(model, cur)
        if info is None:
            if cur.key is None:
                return _Typed(error=error(f"invalid access '{_comp_str(comp)}' vs. {cur.name}",
                                          where, CODE_TARGET))
            return _Typed(stap="long")
        if comp.kind == "index":
            if info.kind in ("pointer", "array") and info.target is not None:
                inner = _strip(model, info.target)
                if info.kind == "pointer" and inner is not None and inner.kind == "void":
                    return _Typed(error=error(f"invalid access '[...]' vs. {cur.name}",
                                              where, CODE_TARGET))
                cur = info.target
                continue
            if info.kind in ("struct", "union"):
                mem = next((m.name for m in info.members if m.name), "")
                return _Typed(error=error(f"'{info.name}' is being accessed instead of a "
                                          f"member such as '->{mem}'", where, CODE_TARGET))
            return _Typed(error=error(f"invalid access '[...]' vs. {cur.name}", where,
                                      CODE_TARGET))
        # member
        agg = info
        if info.kind in ("pointer", "array") and info.target is not None:
            agg = _strip(model, info.target)
        if agg is None or agg.kind not in ("struct", "union"):
            base = agg.name if agg is not None and info.kind == "pointer" else info.name
            return _Typed(error=error(f"invalid access '->{comp.member}' vs. {base or cur.name}",
                                      where, CODE_TARGET))
        m = model.member(cur, comp.member)
        if m is None:
            alts = ", ".join(x.name for x in model.members(cur))
            return _Typed(error=error(f"unable to find member '{comp.member}' for {agg.name}"
                                      + (f" (alternatives: {alts})" if alts else ""),
                                      where, CODE_TARGET))
        cur = m.type
    return _Typed(ref=cur)


def _comp_str(comp: A.Component) -> str:
    return f"->{comp.member}" if comp.kind == "member" else "[...]"


def _final(model: TargetModel, t: _Typed, e: A.TargetExpr, comps: list[A.Component]) -> _Typed:
    """stap's type for a walked value: long for scalars and pointers, an error for aggregates."""
    if t.error is not None or t.stap is not None or t.ref is None:
        return t
    if e.addressof:
        return _Typed(ref=t.ref, stap="long")
    info = _strip(model, t.ref)
    if info is not None and info.kind in ("struct", "union"):
        mem = next((m.name for m in info.members if m.name), "")
        sep = "->" if not comps else "."
        return _Typed(ref=t.ref, error=error(
            f"'{info.name}' is being accessed instead of a member such as '{sep}{mem}'",
            e.span, CODE_TARGET))
    if info is not None and info.kind in ("function", "void"):
        return _Typed(ref=t.ref, error=error(f"cannot read a value of type '{info.name}'",
                                             e.span, CODE_TARGET))
    return _Typed(ref=t.ref, stap="long")


def _cast_type(point: ConcretePoint | None, e: A.CastOp, model: TargetModel) -> _Typed:
    spelling = e.type_name.strip().rstrip("*").rstrip()   # ->member reads through a pointer
    module = e.module or (point.origin if point is not None else "kernel")
    found: TypeRef | None = None
    unchecked = ""
    for mod in module.split(":"):
        mod = "kernel" if mod.startswith("kernel<") or mod == "" else mod
        exe = find_executable(mod) if "/" in mod else None
        if exe is not None:
            ub = model.binary(exe)
            for cand in [spelling] + ([f"{k} {spelling}" for k in ("struct", "union", "enum")]
                                      if " " not in spelling else []):
                found = found or ub.find_type(cand)
        elif mod == "kernel" or mod.startswith(("<linux/", "<asm/", "<net/", "<uapi/")):
            found = _kernel_type(model, spelling)
            if found is None and model.btf() is None and model.kernel_dwarf() is None:
                unchecked = "no kernel BTF or debug information"
        elif mod.startswith("<"):
            unchecked = f"header {mod} is only read when stap compiles"
        else:
            # a kernel module: its types are in the kernel's BTF when it is built in
            found = _kernel_type(model, spelling)
            unchecked = unchecked or f"no debug information for module '{mod}'"
        if found is not None:
            return _Typed(ref=found)
    if unchecked:
        return _Typed(stap="long", error=warning(
            f"cannot check @cast to '{e.type_name}': {unchecked}", e.span))
    return _Typed(error=error(f"type definition '{e.type_name}' not found in '{module}'",
                              e.span, CODE_TARGET))


def _kernel_type(model: TargetModel, spelling: str) -> TypeRef | None:
    """A kernel type by spelling; a bare name may be a struct, union or enum (as stap allows)."""
    found = model.kernel_type(spelling)
    if found is None and " " not in spelling:
        for kw in ("struct", "union", "enum"):
            found = model.kernel_type(f"{kw} {spelling}")
            if found is not None:
                break
    return found


def _typed(point: ConcretePoint | None, expr: A.Expr, model: TargetModel) -> _Typed:
    if point is None or point.origin == "kernel" or point.source in (BTF, SYMBOLS):
        model = kernel_model(model)
    if isinstance(expr, A.TargetSymbol):
        if point is None:
            # stap's wording; the probe has no target context
            return _Typed(error=error("unresolved target-symbol expression", expr.span,
                                      CODE_TARGET))
        base = _lookup_var(point, expr, model)
    elif isinstance(expr, A.CastOp):
        base = _cast_type(point, expr, model)
    elif isinstance(expr, A.AtVarOp):
        name, _, where = expr.target_name.partition("@")
        if not name or not (name[0].isalpha() or name[0] == "_"):
            return _Typed(error=error(f"invalid @var name '{expr.target_name}'", expr.span,
                                      CODE_TARGET))
        base = _Typed(stap="long")
        if point is not None and point.target_vars is not None and not where:
            for v in point.target_vars:
                if v.name == name and isinstance(v.type_ref, TypeRef):
                    base = _Typed(ref=v.type_ref)
    else:
        return _Typed(error=error("not a target expression", expr.span, CODE_TARGET))
    if base.error is not None and base.error.severity == Severity.ERROR:
        return base
    comps = list(expr.components)
    if isinstance(expr, A.CastOp) and comps and comps[0].kind == "index" \
            and base.ref is not None:
        info = _strip(model, base.ref)
        if info is not None and info.kind in ("struct", "union"):
            comps = comps[1:]   # @cast gives a pointer to the type: [N] indexes it (PR11556)
    if base.ref is None:
        pretty = any(c.kind == "pretty" for c in comps)
        return _Typed(stap="string" if pretty or base.stap == "string" else "long",
                      error=base.error)
    walked = _walk(model, base.ref, comps, expr.span)
    return _final(model, walked, expr, comps)


def resolve_target_expr(point: ConcretePoint | None, expr: A.Expr,
                        model: TargetModel) -> tuple[str | None, Diagnostic | None]:
    """stap's type (``long``/``string``) of a target expression in ``point``'s context.

    Returns ``(type, None)``, ``(type, warning)`` when it cannot be checked
    here (no debug information), or ``(None, error)`` with stap's wording.
    """
    try:
        t = _typed(point, expr, model)
    except TargetError as e:
        return None, error(str(e), expr.span, "target-error")
    if t.error is not None and t.error.severity == Severity.ERROR:
        return None, t.error
    return t.stap or "long", t.error


def target_expr_ctype(point: ConcretePoint | None, expr: A.Expr,
                      model: TargetModel) -> str | None:
    """The C type of a target expression as stap prints it (``struct file*``), for hover."""
    try:
        t = _typed(point, expr, model)
    except TargetError:
        return None
    if t.ref is not None and (t.error is None or t.error.severity != Severity.ERROR):
        return t.ref.name + ("*" if getattr(expr, "addressof", False) else "")
    return None
