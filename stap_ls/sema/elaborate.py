"""Pass 2 as stap does it: ``elaborate(FrontendResult) -> ElabResult``.

The algorithm follows stap's ``semantic_pass``:

1. **Symbols** (``semantic_pass_symbols``): the files of the program start as
   the user's script(s) and grow as library files are pulled in.  For each file
   in turn: its globals join the program (a second global of the same name is
   "conflicting global variables"), its top-level ``%{ %}`` blocks join the
   embeds, each probe is derived (:mod:`stap_ls.sema.derive`, alias expansion
   and wildcards) and each derived body resolved (:mod:`stap_ls.sema.resolve`),
   then each function body.  A library file joins when one of its aliases,
   functions or globals is used.
2. "no probes found" when nothing but synthetic probes remain.
3. **Optimisation** (unless ``-u``): functions no probe reaches are dropped
   (:mod:`stap_ls.sema.optimize`).
4. **Types** (:mod:`stap_ls.sema.types`).
5. **Global display**: a global the script writes but never reads gets stap's
   synthetic ``end`` probe that prints it.

Everything returns as data (:class:`ElabResult`); no exception escapes.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field

from stap_ls.sema.derive import AliasIndex, Deriver, SemError, sem_error
from stap_ls.syntax.printer import probe_point_str
from stap_ls.sema.program import STATS, STRING, DerivedProbe, Program, VarInfo
from stap_ls.sema.resolve import Resolver, SymbolTable
from stap_ls.sema.types import TypeInference
from stap_ls.syntax import ast as A
from stap_ls.text import Diagnostic, Related, Severity, SourceFile


@dataclass
class ElabResult:
    program: Program
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == Severity.ERROR]


class _LibIndex:
    """Names the library defines, from the file summaries (trees load on demand)."""

    def __init__(self, library) -> None:
        self.library = library
        self.aliases = AliasIndex()
        self.paths: dict[str, object] = {}
        self.func_files: dict[str, list[str]] = {}
        self.global_files: dict[str, list[str]] = {}
        #: (alias name, library path) -> (tree, its AliasDecls): see _Session._alias_decls
        self.alias_memo: dict[tuple[str, str], tuple[A.StapFile, list[A.AliasDecl]]] = {}
        for lf in library.files:
            self.paths[lf.path] = lf
            summ = lf.summary if hasattr(lf, "summary") else None
            if summ is None:
                f = lf.result.file
                fnames = [d.name for d in f.functions]
                gnames = [g.name for g in f.globals]
                anames = [probe_point_str(n) for al in f.aliases for n in al.names]
            else:
                fnames, gnames, anames = summ.functions, summ.globals, summ.aliases
            for nm in dict.fromkeys(fnames):
                self.func_files.setdefault(nm, []).append(lf.path)
            for nm in dict.fromkeys(gnames):
                self.global_files.setdefault(nm, []).append(lf.path)
            for nm in anames:
                self.aliases.add_alias_name(nm, lf.path)

    def tree(self, path: str) -> A.StapFile | None:
        lf = self.paths.get(path)
        return lf.result.file if lf is not None else None


class _LazyDefs(dict):
    """name -> [(path, decl)] for functions or globals, loading files on first use."""

    def __init__(self, lib: _LibIndex, files: dict[str, list[str]], kind: str,
                 user: dict[str, list]) -> None:
        super().__init__()
        self.lib, self.files, self.kind, self.user = lib, files, kind, user

    def get(self, name, default=None):
        if name in self:
            return self[name]
        out = list(self.user.get(name, []))
        for path in self.files.get(name, []):
            f = self.lib.tree(path)
            if f is None:
                continue
            decls = f.functions if self.kind == "function" else f.globals
            out.extend((path, d) for d in decls if d.name == name)
        self[name] = out
        return out

    def __iter__(self):
        return iter(set(self.files) | set(self.user))


_LIB_CACHE: dict[int, tuple[object, _LibIndex]] = {}


def _library_index(library) -> _LibIndex:
    from stap_ls.sema.libextra import complete_library
    complete_library(library)
    hit = _LIB_CACHE.get(id(library))
    if hit is not None and hit[0] is library:
        return hit[1]
    idx = _LibIndex(library)
    _LIB_CACHE.clear()
    _LIB_CACHE[id(library)] = (library, idx)
    return idx


class _Session:
    def __init__(self, fe, model) -> None:
        self.fe = fe
        self.opts = fe.options
        self.model = model
        self.program = Program()
        self.diags: list[Diagnostic] = []
        lib = _library_index(fe.library)
        self.lib = lib
        self.files: list[tuple[str, A.StapFile]] = []
        self.queued: set[str] = set()
        user = [(r.file.name, r.file) for r in fe.user]
        self.user_names = {p for p, _ in user}
        self.user_map = dict(user)
        # user definitions come first (stap parses the script before the library)
        user_functions: dict[str, list] = {}
        for path, f in user:
            for fd in f.functions:
                user_functions.setdefault(fd.name, []).append((path, fd))
        user_globals: dict[str, list] = {}
        for path, f in user:
            for g in f.globals:
                user_globals.setdefault(g.name, []).append((path, g))
        functions = _LazyDefs(lib, lib.func_files, "function", user_functions)
        globals_ = _LazyDefs(lib, lib.global_files, "global", user_globals)
        self.table = SymbolTable(self.program, globals_, functions, self.pull, self.user_names)
        self.resolved: set[int] = set()
        if any(f.aliases for _p, f in user):
            aliases = AliasIndex()
            aliases.root = _copy_tree(lib.aliases.root)
            for path, f in user:
                for a in f.aliases:
                    aliases.add_alias(a, path)
        else:
            aliases = lib.aliases
        self.deriver = Deriver(aliases, model=model, opts=self.opts, pull_file=self.pull,
                               warn=self.diags.append)
        self.deriver.alias_decls = self._alias_decls
        for path, f in user:
            self.pull(path)

    def _alias_decls(self, name: str, path: str) -> list[A.AliasDecl]:
        f = self._file(path)
        if f is None:
            return []
        lib_file = path not in self.user_map
        if lib_file:        # a library tree is looked up once per alias name (while it stays)
            hit = self.lib.alias_memo.get((name, path))
            if hit is not None and hit[0] is f:
                return list(hit[1])
        found = [a for a in f.aliases if any(probe_point_str(n) == name for n in a.names)]
        if lib_file:
            self.lib.alias_memo[(name, path)] = (f, found)
        return list(found)

    def _file(self, path: str) -> A.StapFile | None:
        f = self.user_map.get(path)
        return f if f is not None else self.lib.tree(path)

    def pull(self, path: str) -> None:
        if path in self.queued:
            return
        f = self._file(path)
        if f is None:
            return
        self.queued.add(path)
        self.files.append((path, f))

    def run_symbols(self) -> None:
        i = 0
        seen_globals: dict[str, VarInfo] = {}
        while i < len(self.files):
            path, f = self.files[i]
            i += 1
            self.program.files_used.append(path)
            for g in f.globals:
                existing = next((v for v in self.table.global_list if v.decl is g), None)
                if existing is None and id(g) in self.table.var_of_decl:
                    self.table.add_global(g, path)      # found by a lookup before its file was processed
                    continue
                other = next((v for v in self.table.global_list
                              if v.name == g.name and v.decl is not g
                              and (not v.private or v.file == path)
                              and (not g.private or v.file == path)), None)
                if other is not None and existing is None:
                    self.diags.append(sem_error("conflicting global variables",
                                                g.name_span or g.span, f"identifier '{g.name}'",
                                                related=(Related(other.span, f"identifier '{g.name}'"),)))
                    continue
                if existing is None:
                    self.table.add_global(g, path)
            self.program.embeds.extend(f.embeds)
            for p in f.probes:
                dps, diags = self.deriver.derive_probe(p, path)
                self.diags.extend(diags)
                for dp in dps:
                    self.program.probes.append(dp)
                    self._resolve_probe(dp)
            # stap 4.8 resolves the script's functions, and library functions
            # only once something calls them (so their files are pulled in only then)
            if path in self.user_names:
                for fd in f.functions:
                    self._resolve_function(self.table.function_info(fd, path))
            self._drain()
        self._drain()
        # stap lists globals in the order resolution first refers to them
        order = self.table.ref_order
        ranked = sorted(enumerate(self.table.global_list),
                        key=lambda iv: (order.get(id(iv[1]), len(order) + iv[0])))
        for _i, v in ranked:
            self.program.globals.setdefault(_gkey(v), v)

    def _resolve_function(self, fi) -> None:
        if id(fi) in self.resolved:
            return
        self.resolved.add(id(fi))
        lst = self.program.functions.setdefault(fi.name, [])
        if fi not in lst:
            lst.append(fi)
        if isinstance(fi.body, A.Block):
            r = Resolver(self.table, fi.file, fi.locals, fi.params, self.diags)
            r.block(fi.body)

    def _drain(self) -> None:
        while self.table.pending:
            self._resolve_function(self.table.pending.pop(0))

    def _resolve_probe(self, dp: DerivedProbe) -> None:
        r = Resolver(self.table, dp.file, dp.locals, None, self.diags)
        r.block(dp.body)
        if dp.condition is not None:
            rc = Resolver(self.table, dp.file, dp.locals, None, self.diags, in_condition=True)
            try:
                rc.expr(dp.condition)
            except SemError as e:
                self.diags.append(e.diagnostic())


def _gkey(v: VarInfo) -> str:
    return f"{v.name}@{v.file}" if v.private else v.name


def _copy_tree(node):
    from stap_ls.sema.probe_types import Node
    n = Node(family=node.family, aliases=list(node.aliases))
    n.children = {k: _copy_tree(c) for k, c in node.children.items()}
    return n


def elaborate(fe, model=None) -> ElabResult:
    """Elaborate the front end's result; never raises for user errors.

    The cyclic garbage collector is paused meanwhile: elaboration allocates
    hundreds of thousands of short-lived nodes (cloned alias bodies, and
    library trees loaded on first use), and each full collection would walk
    every object the library holds (a third of a cold ``syscall.*``).  It is
    switched back on, and catches up, when the pass ends."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _elaborate_safely(fe, model)
    finally:
        if was_enabled:
            gc.enable()


def _elaborate_safely(fe, model) -> ElabResult:
    try:
        return _elaborate(fe, model)
    except RecursionError:
        return ElabResult(Program(), [sem_error("script too deeply nested to elaborate")])
    except Exception as e:  # a bug: report it as a diagnostic rather than crash the caller
        return ElabResult(Program(), [sem_error(f"internal error in pass 2: {type(e).__name__}: {e}")])


def _elaborate(fe, model) -> ElabResult:
    s = _Session(fe, model)
    s.run_symbols()
    prog = s.program
    diags = s.diags
    if _has_errors(diags):
        return ElabResult(prog, _dedupe(diags))
    from stap_ls.sema.checks import check_privilege, check_program, elide_empty_probes
    diags.extend(check_privilege(prog, fe.options))
    from stap_ls.sema.optimize import Optimizer
    if not fe.options.unoptimized:
        diags.extend(elide_empty_probes(prog))
        diags.extend(Optimizer(prog, s.user_names, fe.options.suppress_warnings).run())
    ti = TypeInference(prog, _target_typer(model))
    diags.extend(ti.run())
    from stap_ls.sema.autocast import check_autocasts
    diags.extend(check_autocasts(prog, fe.options.guru))
    if not _has_errors(diags):
        diags.extend(check_program(prog, fe.options, s.user_names))
    if not fe.options.unoptimized and not _has_errors(diags):
        from stap_ls.sema.optimize import merge_duplicate_functions
        from stap_ls.sema.stable import hoist_stable_calls
        merge_duplicate_functions(prog)
        hoist_stable_calls(prog)
    if not _has_errors(diags):
        _global_display(s)
    if not any(not dp.synthetic for dp in prog.probes) and not _has_errors(diags):
        diags.append(sem_error("no probes found"))
    return ElabResult(prog, _dedupe(diags))


def _has_errors(diags) -> bool:
    return any(d.severity == Severity.ERROR for d in diags)


def _dedupe(diags: list[Diagnostic]) -> list[Diagnostic]:
    seen = set()
    out = []
    for d in diags:
        key = (d.severity, d.message, d.span.start if d.span else None,
               d.span.source.name if d.span else None)
        if key in seen:
            continue
        seen.add(key)
        out.append(d)
    return out


def _target_typer(model):
    """(probe, target expression) -> (type or None, diagnostic or None), via targetprobes."""
    try:
        from stap_ls.sema.targetprobes import resolve_target_expr
    except ImportError:
        return None
    if model is None:
        return None

    def typer(dp: DerivedProbe, e):
        if dp.target is None and isinstance(e, A.TargetSymbol):
            return None, None
        try:
            t, diag = resolve_target_expr(dp.target, e, model)
        except Exception as ex:  # the target model must not take pass 2 down
            return None, sem_error(f"internal error typing a target expression: {ex}", e.span)
        return t, diag
    return typer


def _global_display(s: _Session) -> None:
    """stap's add_global_var_display: print user globals written but never read."""
    from stap_ls.sema.usage import var_usage
    prog = s.program
    _read, written = var_usage(prog)
    read = _pure_reads(prog)
    for v in list(prog.globals.values()):
        if v.file not in s.user_names or v.synthetic:
            continue
        if id(v) in read or id(v) not in written:
            continue
        code = _display_code(v)
        src = SourceFile(v.span.source.name if v.span else "<synthetic>", code)
        from stap_ls.syntax.parser import ParseOptions, parse_file
        res = parse_file(src, ParseOptions(env=s.fe.env, privileged=True, user_file=False,
                                           library_macros={}))
        for p in res.file.probes:
            dps, diags = s.deriver.derive_probe(p, src.name)
            for dp in dps:
                dp.synthetic = True
                dp.chain = ["end"]
                prog.probes.append(dp)
                # the synthetic code refers to the global by name
                r = Resolver(s.table, v.file, dp.locals, None, s.diags)
                r.block(dp.body)
        TypeInference(prog).run()


def _pure_reads(prog) -> set[int]:
    """ids of the variables read other than as the target of ``=``, ``+=``, ``++``...:
    for the display of globals stap does not count ``a += 1`` or ``a++`` as a read
    (``delete a`` it does, as profiling/ucalls shows)."""
    roots = [dp.body for dp in prog.probes] + [dp.condition for dp in prog.probes
                                               if dp.condition is not None]
    roots += [f.body for f in prog.all_functions() if not isinstance(f.body, A.EmbeddedCode)]
    targets: set[int] = set()
    for root in roots:
        # a read-modify-write is no read when its value is dropped (``a++;``),
        # it is one when used (``if (++a > n)``, proctop.stp)
        dropped = set()
        for n in A.walk(root):
            if isinstance(n, A.ExprStmt):
                dropped.add(id(n.expr))
            elif isinstance(n, A.ForLoop):
                dropped.update(id(x) for x in (n.init, n.incr) if x is not None)
        for n in A.walk(root):
            t = None
            if isinstance(n, A.AssignExpr) and (n.op == "=" or id(n) in dropped):
                t = n.left
            elif isinstance(n, (A.PreCrement, A.PostCrement)) and id(n) in dropped:
                t = n.operand
            if isinstance(t, A.ArrayIndex):
                t = t.base
            if isinstance(t, A.Symbol):
                targets.add(id(t))
    reads: set[int] = set()
    for root in roots:
        for n in A.walk(root):
            if isinstance(n, A.Symbol) and id(n) not in targets:
                v = prog.referents.get(id(n))
                if isinstance(v, VarInfo):
                    reads.add(id(v))
    return reads


def _display_code(v: VarInfo) -> str:
    name = v.name
    fmt = name
    lines = ["probe end {"]
    foreach_value = ""
    if v.index_types:
        idx = ",".join(f"__idx{i}" for i in range(len(v.index_types)))
        fmt += "[" + ",".join('\\"%#s\\"' if t == STRING else "%#d" for t in v.index_types) + "]"
        head = "foreach ("
        if v.type != STATS:
            foreach_value = "__val"
            head += "__val = "
        lines.append(head + f"[{idx}] in {name}-)")
    elif v.type == STATS:
        lines.append(f"if (@count({name}) == 0)")
        lines.append(f'printf("{name} @count=0x0\\n")')
        lines.append("else")
    stats = ["@count", "@min", "@max", "@sum", "@avg"]
    if v.type == STATS:
        fmt += "".join(f" {st}=%#d" for st in stats)
    elif v.type == STRING:
        fmt += '=\\"%#s\\"'
    else:
        fmt += "=%d"                 # stap 4.8 prints a long's value in decimal
    fmt += "\\n"
    call = f'printf ("{fmt}"'
    value = foreach_value or name
    if v.index_types:
        idx = ",".join(f"__idx{i}" for i in range(len(v.index_types)))
        call += "," + idx
        if not foreach_value:
            value += f"[{idx}]"
    if v.type == STATS:
        call += "".join(f",{st}({value})" for st in stats)
    else:
        call += "," + value
    lines.append(call + ")")
    lines.append("}")
    return "\n".join(lines) + "\n"
