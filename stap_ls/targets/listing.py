"""``stap -l PROBE`` and ``stap -L PROBE`` for the probe families the target model backs.

:func:`main_listing` prints, in stap's format and order (sorted lines), the
probe points matching ``opts.list_probes`` (``-l``) or ``opts.list_probes_vars``
(``-L``, with `` $name:type`` for each target variable):

* ``kernel.function("PAT[@FILE[:LINE]]")[.call|.return|.inline]``,
  ``kernel.statement(...)``, ``module("M").function(...)``;
* ``kernel.trace("SYSTEM:NAME")``;
* ``process("PATH").function/statement/mark/plt(...)``, also under
  ``.library("LIB")``, and ``process("PATH").provider("P").mark("M")``.

Where stap would need kernel DWARF and only BTF is there, the listing shows
what BTF knows: ``kernel.function("vfs_read") $file:struct file* ...`` (no
``@file:line``, no locals).  Tapset aliases (``syscall.*``) are pass 2's:
:func:`is_target_probe` tells the caller which listings belong here.

Returns 0 when something matched, 1 otherwise (as stap does), with a "no
match" message and stap's similar names on ``err``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TextIO

from stap_ls.options import StapOptions, UsageError, parse_stap_args
from stap_ls.targets.base import SDT, FunctionInfo, TargetError, TypeRef, Var
from stap_ls.targets.elfinfo import find_executable
from stap_ls.targets.model import TargetModel
from stap_ls.targets.userspace import UserBinary


@dataclass
class Component:
    name: str
    arg: str | int | None = None


class ProbeSyntaxError(Exception):
    pass


def parse_probe_point(text: str) -> list[Component]:
    """Split ``process("a.out").function("m*").call`` into components."""
    comps: list[Component] = []
    i, n = 0, len(text)
    while i < n:
        j = i
        while j < n and (text[j].isalnum() or text[j] in "_*?"):
            j += 1
        if j == i:
            raise ProbeSyntaxError(f"expected a probe point component at column {i + 1}")
        comp = Component(text[i:j])
        i = j
        if i < n and text[i] == "(":
            i += 1
            if i < n and text[i] == '"':
                k = i + 1
                buf = []
                while k < n and text[k] != '"':
                    if text[k] == "\\" and k + 1 < n:
                        k += 1
                    buf.append(text[k])
                    k += 1
                if k >= n:
                    raise ProbeSyntaxError("unterminated string in probe point")
                comp.arg = "".join(buf)
                i = k + 1
            else:
                k = i
                while k < n and text[k] != ")":
                    k += 1
                raw = text[i:k].strip()
                try:
                    comp.arg = int(raw, 0)
                except ValueError:
                    raise ProbeSyntaxError(f"bad probe point argument '{raw}'") from None
                i = k
            if i >= n or text[i] != ")":
                raise ProbeSyntaxError("expected ')' in probe point")
            i += 1
        comps.append(comp)
        if i < n:
            if text[i] != ".":
                raise ProbeSyntaxError(f"unexpected '{text[i]}' in probe point")
            i += 1
    return comps


def is_target_probe(pattern: str) -> bool:
    """True for the probe families this module lists (not tapset aliases)."""
    try:
        c = parse_probe_point(pattern.strip())
    except ProbeSyntaxError:
        return False
    if not c:
        return False
    if c[0].name == "kernel" and len(c) > 1:
        return c[1].name in ("function", "statement", "trace")
    return c[0].name in ("module", "process") and len(c) > 1


@dataclass
class FuncSpec:
    name: str
    file: str | None = None
    line: str | None = None     # digits or "*"


def parse_func_spec(spec: str) -> FuncSpec:
    name, at, rest = spec.partition("@")
    if not at:
        return FuncSpec(name)
    file, line = rest, None
    head, colon, tail = rest.rpartition(":")
    if colon and (tail.isdigit() or tail == "*"):
        file, line = head, tail
    return FuncSpec(name, file or None, line)


def _vars_text(vs: list[Var]) -> str:
    return "".join(f" ${v.name}:{v.type.name}" for v in vs)


class _Lister:
    def __init__(self, model: TargetModel, with_vars: bool, err: TextIO) -> None:
        self.model = model
        self.with_vars = with_vars
        self.err = err
        self.lines: set[str] = set()
        self.no_match: list[str] = []

    def add(self, probe: str, vs: list[Var] | None = None) -> None:
        self.lines.add(probe + (_vars_text(vs or []) if self.with_vars else ""))

    # -- kernel --------------------------------------------------------------
    def kernel(self, comps: list[Component]) -> None:
        what = comps[1].name
        arg = str(comps[1].arg or "*")
        suffix = comps[2:]
        if what == "trace":
            return self.trace(arg)
        spec = parse_func_spec(arg)
        funcs = self.model.kernel_functions(spec.name, spec.file, with_vars=self.with_vars)
        self._emit_functions(f"kernel.{what}", funcs, suffix, spec, None)
        if not funcs and not _is_glob(spec.name):
            self.no_match.append(", ".join(self.model.similar_kernel_functions(spec.name)))

    def module(self, comps: list[Component]) -> None:
        mod = str(comps[0].arg or "*")
        if len(comps) < 2 or comps[1].name not in ("function", "statement"):
            raise ProbeSyntaxError("module(...) listing supports .function and .statement")
        spec = parse_func_spec(str(comps[1].arg or "*"))
        for f in self.model.module_functions(mod, spec.name, self.with_vars):
            self.add(f'module("{f.module}").{comps[1].name}("{f.spec()}")'
                     + _suffix_text(comps[2:]), f.vars)

    def trace(self, pattern: str) -> None:
        for tp in self.model.tracepoints(pattern, with_fields=self.with_vars):
            self.add(f'kernel.trace("{tp.full_name}")', tp.args)

    # -- user space ----------------------------------------------------------
    def process(self, comps: list[Component]) -> None:
        target = comps[0].arg
        if not isinstance(target, str):
            raise ProbeSyntaxError("process(PID) and bare process probes are not listed; "
                                   "give process(\"PATH\")")
        path = find_executable(target)
        if path is None:
            raise TargetError(f"cannot find executable '{target}'")
        rest = comps[1:]
        if rest and rest[0].name == "library":
            pat = str(rest[0].arg or "*")
            binary = self.model.binary(path)
            libs = [p for p in binary.libraries() if _lib_matches(p, pat)]
            if not libs and "/" in pat and os.path.exists(pat) and not _is_glob(pat):
                libs = [os.path.realpath(pat)]
            for lib in libs:
                try:
                    ub = self.model.binary(lib)
                except TargetError as e:
                    print(f"WARNING: {e}", file=self.err)
                    continue
                # stap echoes a literal library name as given, globs as resolved paths
                shown = lib if _is_glob(pat) else pat
                self._binary(f'process("{path}").library("{shown}")', ub, rest[1:])
            return
        self._binary(f'process("{path}")', self.model.binary(path), rest)

    def _binary(self, prefix: str, ub: UserBinary, comps: list[Component]) -> None:
        if not comps:
            raise ProbeSyntaxError("incomplete process probe point")
        head = comps[0]
        if head.name == "provider":
            if len(comps) < 2 or comps[1].name != "mark":
                raise ProbeSyntaxError("provider(...) must be followed by .mark(...)")
            return self._marks(prefix, ub, str(comps[1].arg or "*"), str(head.arg or "*"), True)
        if head.name == "mark":
            return self._marks(prefix, ub, str(head.arg or "*"), "*", False)
        if head.name == "plt":
            for n in ub.plt(str(head.arg or "*")):
                self.add(f'{prefix}.plt("{n}")' + _suffix_text(comps[1:]))
            return
        if head.name in ("function", "statement"):
            spec = parse_func_spec(str(head.arg if head.arg is not None else "*"))
            funcs = ub.match_functions(spec.name, spec.file)
            if head.name == "statement":
                self._statements(prefix, ub, funcs, spec)
            else:
                self._emit_functions(f"{prefix}.function", funcs, comps[1:], spec, ub)
            if not funcs and not _is_glob(spec.name):
                self.no_match.append(", ".join(ub.similar_functions(spec.name)))
            return
        raise ProbeSyntaxError(f"process(...).{head.name} is not a listable probe point")

    def _marks(self, prefix: str, ub: UserBinary, pat: str, provider: str,
               show_provider: bool) -> None:
        for m in ub.marks(pat, provider):
            # stap types every SDT argument as long
            args = [Var(f"arg{i + 1}", TypeRef("long", SDT), "arg") for i in range(m.nargs)]
            prov = f'.provider("{m.provider}")' if show_provider else ""
            self.add(f'{prefix}{prov}.mark("{m.name}")', args)

    def _statements(self, prefix: str, ub: UserBinary, funcs: list[FunctionInfo],
                    spec: FuncSpec) -> None:
        for f in funcs:
            if self.with_vars:
                ub.load_vars(f)
            if spec.line:
                want = int(spec.line) if spec.line.isdigit() else None
                for file, line, addr in ub.statement_lines(f, spec.file, want):
                    vs = ub.vars_at(f, addr) if self.with_vars else []
                    self.add(f'{prefix}.statement("{f.name}@{file}:{line}")', vs)
            else:
                self.add(f'{prefix}.statement("{f.spec()}")', f.vars)

    # -- functions (kernel and user) -------------------------------------------
    def _emit_functions(self, prefix: str, funcs: list[FunctionInfo], suffix: list[Component],
                        spec: FuncSpec, ub: UserBinary | None) -> None:
        sfx = suffix[0].name if suffix else ""
        if sfx not in ("", "call", "return", "inline", "exported"):
            raise ProbeSyntaxError(f"unknown function probe suffix '.{sfx}'")
        for f in funcs:
            if sfx in ("call", "return") and f.source == "dwarf" and not f.has_body:
                continue
            if sfx == "inline" and not (f.inlined or f.source == "symbols"):
                continue        # stap does not filter symbol-table functions
            if self.with_vars and ub is not None:
                ub.load_vars(f)
            vs = list(f.vars)
            if sfx == "return" and f.return_type is not None and f.return_type.name != "void":
                vs.insert(0, Var("return", f.return_type, "return"))
            if spec.line and spec.line.isdigit() and ub is not None:
                # the function whose code holds that line, named by its declaration
                rows = ub.statement_lines(f, spec.file, int(spec.line))
                if not rows and f.line != int(spec.line):
                    continue
            name = f.spec()
            self.add(f'{prefix}("{name}")' + (f".{sfx}" if sfx else ""), vs)


def _suffix_text(comps: list[Component]) -> str:
    return "".join("." + c.name for c in comps)


def _is_glob(s: str) -> bool:
    return any(c in s for c in "*?[")


def _lib_matches(path: str, pat: str) -> bool:
    import fnmatch
    if "/" in pat:
        return fnmatch.fnmatchcase(path, pat) or os.path.realpath(pat) == path
    return fnmatch.fnmatchcase(os.path.basename(path), pat) or fnmatch.fnmatchcase(path, pat)


def main_listing(opts: StapOptions, out: TextIO, err: TextIO,
                 model: TargetModel | None = None) -> int:
    """Print ``-l``/``-L`` listings; 0 if anything matched, 1 if not or on error."""
    pattern = opts.list_probes_vars if opts.list_probes_vars is not None else opts.list_probes
    if pattern is None:
        print("stap-ls: no -l or -L probe point given", file=err)
        return 1
    with_vars = opts.list_probes_vars is not None
    model = model or TargetModel(opts)
    lister = _Lister(model, with_vars, err)
    try:
        comps = parse_probe_point(pattern.strip())
        if not comps:
            raise ProbeSyntaxError("empty probe point")
        head = comps[0].name
        if head == "kernel" and len(comps) > 1 and comps[1].name in ("function", "statement", "trace"):
            lister.kernel(comps)
        elif head == "module":
            lister.module(comps)
        elif head == "process" and len(comps) > 1:
            lister.process(comps)
        else:
            print(f"stap-ls: '{pattern}' is not a kernel, module, tracepoint or process "
                  f"probe point (tapset aliases are listed by pass 2)", file=err)
            return 1
    except ProbeSyntaxError as e:
        print(f"parse error: {e}\n        in: {pattern}", file=err)
        return 1
    except TargetError as e:
        print(f"semantic error: {e}", file=err)
        return 1
    for line in sorted(lister.lines):
        out.write(line + "\n")
    try:
        model.flush()
    except TargetError:
        pass
    if not lister.lines:
        sim = next((s for s in lister.no_match if s), "")
        print("semantic error: no match" + (f" (similar functions: {sim})" if sim else ""),
              file=err)
        for m in model.missing():
            print(f"note: {m}", file=err)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        opts, _warnings = parse_stap_args(sys.argv[1:] if argv is None else argv)
    except UsageError as e:
        print(f"stap-ls: {e}", file=sys.stderr)
        return 1
    return main_listing(opts, sys.stdout, sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
