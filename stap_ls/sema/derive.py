"""Probe derivation: from a probe point in the script to concrete probes.

stap matches each probe point against one tree holding the built-in probe
families (:mod:`stap_ls.sema.probe_types`) and every probe alias of the
library and the script (``match_node``).  A component matches a tree edge
with the same functor (or a glob over functors: ``syscall.*``) and the same
kind of argument.  Where the walk ends on:

* a built-in family, the point is concrete: its parameters are checked
  (timers, procfs, ...) and kernel or user-space families go to the target
  model through :mod:`stap_ls.sema.targetprobes` (when that module is there);
* an alias, the alias is expanded (``alias_expansion_builder``): each point of
  its right-hand side is derived in turn, with the alias body before the
  handler (``=``) or after it (``+=``), any components left over appended as a
  suffix; ``?`` points may fail silently and a ``!`` point that resolves stops
  the list.

Every derived probe remembers its alias chain, printed by ``-p2`` as
``/* <- alias = rhs <- user point */``.  A library file whose alias is used
is pulled into the program, as stap does.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

from stap_ls.sema.clone import clone
from stap_ls.sema.probe_types import Node, build_builtin_tree, check_builtin, component_str
from stap_ls.sema.program import DerivedProbe
from stap_ls.syntax import ast as A
from stap_ls.syntax.printer import probe_point_str
from stap_ls.targets.suggest import suggest
from stap_ls.text import Diagnostic, Related, Severity, Span

_TARGET_HEADS = ("kernel", "module", "kprobe", "process")
MAX_DEPTH = 25


class SemError(Exception):
    """A semantic error with stap's wording; becomes a Diagnostic."""

    def __init__(self, message: str, span: Span | None = None, saw: str = "",
                 related: tuple[Related, ...] = (), code: str = "semantic",
                 chain: list[Diagnostic] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.span = span
        self.saw = saw
        self.related = related
        self.code = code
        #: diagnostics stap prints before this one (inner failures)
        self.chain = chain or []

    def diagnostic(self) -> Diagnostic:
        return Diagnostic(Severity.ERROR, self.message, self.span, self.code,
                          kind="semantic error", saw=self.saw, marker="at",
                          related=self.related)


def sem_error(message: str, span: Span | None = None, saw: str = "", **kw) -> Diagnostic:
    return SemError(message, span, saw, **kw).diagnostic()


def _ident(c: A.PPComponent) -> str:
    return f"identifier '{c.functor}'"


def _arg_kind(arg) -> str:
    if arg is None:
        return ""
    return "number" if isinstance(arg, A.NumberLit) else "string"


def _arg_value(arg):
    if arg is None:
        return None
    return arg.value


@dataclass
class _Match:
    node: Node
    comps: list[A.PPComponent]          # the concrete components walked
    suffix: list[A.PPComponent]         # left over (alias suffix)


@dataclass
class AliasIndex:
    """The probe-point tree: built-ins plus aliases (with the file each is in)."""
    root: Node = field(default_factory=build_builtin_tree)
    #: (functor, argument kind) per component -> [(node, functors walked)]: a
    #: point's matches depend on nothing else, so they are computed once per
    #: tree (``syscall.*`` walks hundreds of aliases on every elaboration)
    match_memo: dict = field(default_factory=dict, repr=False, compare=False)
    #: id(alias) -> (alias, whether its bodies use @probewrite)
    probewrite_memo: dict = field(default_factory=dict, repr=False, compare=False)

    def add_alias(self, alias: A.AliasDecl, file: str) -> None:
        self.match_memo.clear()
        for name in alias.names:
            node = self.root
            for c in name.components:
                node = node.child(c.functor, _arg_kind(c.arg))
            node.aliases.append((alias, probe_point_str(name), file))

    def add_alias_name(self, name: str, file: str) -> None:
        """An alias known only by its printed name (its file not loaded yet)."""
        self.match_memo.clear()
        node = self.root
        for functor, kind in split_point(name):
            node = node.child(functor, kind)
        if not any(n == name and f == file for _a, n, f in node.aliases):
            node.aliases.append((None, name, file))


def split_point(text: str) -> list[tuple[str, str]]:
    """``a.b("x").c(1)`` -> [(a, ''), (b, 'string'), (c, 'number')]."""
    out = []
    i, n = 0, len(text)
    while i < n:
        j = i
        while j < n and text[j] not in ".(":
            j += 1
        functor = text[i:j]
        kind = ""
        if j < n and text[j] == "(":
            k = j + 1
            quote = False
            while k < n and (quote or text[k] != ")"):
                if text[k] == '"' and text[k - 1] != "\\":
                    quote = not quote
                k += 1
            arg = text[j + 1:k].strip()
            kind = "string" if arg.startswith('"') else "number"
            j = k + 1
        out.append((functor, kind))
        i = j + 1 if j < n and text[j] == "." else j
    return out


class Deriver:
    """Derives the probes of one elaboration (holds the pull-in callback)."""

    def __init__(self, index: AliasIndex, *, model=None, opts=None, pull_file=None,
                 warn=None) -> None:
        self.index = index
        self.model = model
        self.opts = opts
        self.pull_file = pull_file or (lambda path: None)
        self.warn = warn or (lambda d: None)
        #: > 0 while deriving under an optional/sufficient point or a wildcard
        self.quiet = 0
        #: (name text, file) -> the AliasDecls, loading the file when needed
        self.alias_decls = lambda name, path: []
        self.printed: list[Diagnostic] = []

    # -- matching -------------------------------------------------------------
    def _match(self, comps: list[A.PPComponent]) -> list[_Match]:
        key = tuple((c.functor, _arg_kind(c.arg)) for c in comps)
        if any("**" in c.functor for c in comps):
            out: list[_Match] = []      # '**' spans components: matches are not 1:1, no memo
            self._walk(self.index.root, comps, 0, [], out)
            return out
        memo = self.index.match_memo
        hit = memo.get(key)
        if hit is None:
            out: list[_Match] = []
            self._walk(self.index.root, comps, 0, [], out)     # a failure is not memoised
            memo[key] = [(m.node, tuple(c.functor for c in m.comps)) for m in out]
            return out
        return [_Match(node, [A.PPComponent(f, comps[i].arg, comps[i].span)
                              for i, f in enumerate(functors)], list(comps[len(functors):]))
                for node, functors in hit]

    def _uses_probewrite(self, alias: A.AliasDecl) -> bool:
        hit = self.index.probewrite_memo.get(id(alias))
        if hit is None or hit[0] is not alias:
            bodies = [b for b in (alias.body, alias.body2) if b is not None]
            hit = (alias, any(isinstance(n, A.ProbewriteOp) for b in bodies for n in A.walk(b)))
            self.index.probewrite_memo[id(alias)] = hit
        return hit[1]

    def _walk(self, node: Node, comps, pos, walked, out) -> None:
        if pos == len(comps):
            if node.ends:
                out.append(_Match(node, list(walked), []))
                return
            follow = " ".join(component_str(f, k) for f, k in sorted(node.children))
            raise SemError(f"probe point truncated (follow:  {follow})",
                           comps[pos - 1].span, _ident(comps[pos - 1]))
        c = comps[pos]
        kind = _arg_kind(c.arg)
        wild = "*" in c.functor or "?" in c.functor or "[" in c.functor
        found = False
        errors: list[SemError] = []
        if "**" in c.functor:
            # 'H**T' also spans dots: a component matching 'H*' (taking no
            # argument), then '**T' from the next component on
            head, _, tail = c.functor.partition("**")
            for (functor, k), child in sorted(node.children.items()):
                if k != "" or not fnmatch.fnmatchcase(functor, head + "*") \
                        or functor.startswith("__") and not head.startswith("__"):
                    continue
                nc = A.PPComponent(functor, None, c.span)
                more = comps[:pos] + [nc, A.PPComponent("**" + tail, c.arg, c.span)] \
                    + comps[pos + 1:]
                try:
                    before = len(out)
                    self._walk(child, more, pos + 1, walked + [nc], out)
                    found = found or len(out) > before
                except SemError as e:
                    errors.append(e)
        for (functor, k), child in sorted(node.children.items()):
            if k != kind and not (k == "" and kind == "" ):
                if not (k == "string" and kind == "string") and not (k == "number" and kind == "number"):
                    continue
            if wild:
                if not fnmatch.fnmatchcase(functor, c.functor) or functor.startswith("__") and not c.functor.startswith("__"):
                    continue
            elif functor != c.functor:
                continue
            nc = A.PPComponent(functor, c.arg, c.span)
            try:
                before = len(out)
                self._walk(child, comps, pos + 1, walked + [nc], out)
                found = found or len(out) > before
            except SemError as e:
                if not wild:
                    raise
                errors.append(e)
        if found:
            return
        if node.aliases and pos > 0 and "**" not in c.functor:
            out.append(_Match(node, list(walked), comps[pos:]))
            return
        if node.family is not None and not node.children:
            raise SemError("invalid suffix for probe", c.span, _ident(c))
        if wild and errors and not any("truncated" in e.message for e in errors):
            raise errors[0]
        names = sorted({f for (f, _k) in node.children})
        sim = suggest(c.functor.replace("*", "").replace("?", "") if wild else c.functor, names)
        sim_s = f" (similar: {', '.join(sim)})" if sim else ""
        if wild:
            raise SemError("probe point mismatch: didn't find any wildcard matches" + sim_s,
                           c.span, _ident(c))
        raise SemError("probe point mismatch" + sim_s, c.span, _ident(c))

    # -- derivation -----------------------------------------------------------
    def derive_probe(self, decl: A.ProbeDecl, file: str, user_body: A.Block | None = None
                     ) -> tuple[list[DerivedProbe], list[Diagnostic]]:
        body = user_body if user_body is not None else decl.body
        user_text = ",".join(probe_point_str(p, True) for p in decl.points)
        out: list[DerivedProbe] = []
        diags: list[Diagnostic] = []
        first = True
        for pp in decl.points:
            b = body if first else clone(body)
            first = False
            self.quiet += pp.optional       # its failure is dropped: no similar-name search
            try:
                res = self._derive(pp, b, [user_text], decl, file, 0, pp)
            except SemError as e:
                if pp.optional or pp.sufficient:    # '!' implies '?' in stap
                    continue
                diags.extend(e.chain)
                head = pp.components[0] if pp.components else None
                if head is not None:
                    diags.append(sem_error("while resolving probe point", head.span if head else None,
                                           _ident(head) if head else ""))
                diags.append(e.diagnostic())
                continue
            finally:
                self.quiet -= pp.optional
            if not res and not pp.optional:
                head = pp.components[0]
                diags.append(sem_error("while resolving probe point", head.span, _ident(head)))
                diags.append(sem_error("no match", None))
            for dp in res:
                dp.condition = pp.condition
            out.extend(res)
            if res and pp.sufficient:           # a sufficient point that matched ends the list
                break
        return out, diags

    def _derive(self, pp: A.ProbePoint, body: A.Block, chain: list[str], decl: A.ProbeDecl,
                file: str, depth: int, location: A.ProbePoint) -> list[DerivedProbe]:
        if depth > MAX_DEPTH:
            raise SemError("recursive loop in alias expansion", pp.span,
                           _ident(pp.components[0]) if pp.components else "")
        matches = self._match(pp.components)
        out: list[DerivedProbe] = []
        # a wildcard component expanding to several built-in points: stap keeps
        # those that resolve (kernel.function("f").* has no .inline or .callees
        # everywhere) and fails only when none does
        wild = len(matches) > 1 and any(ch in c.functor for c in pp.components for ch in "*?[")
        failed: list[SemError] = []
        for m in matches:
            if m.node.family is not None and not m.suffix:
                if not wild:
                    out.extend(self._builtin(m, pp, body, chain, decl, file))
                else:
                    try:
                        out.extend(self._builtin(m, pp, body, chain, decl, file))
                    except SemError as e:
                        failed.append(e)
            if m.node.aliases:
                for alias, name, afile in m.node.aliases:
                    decls = [alias] if alias is not None else self.alias_decls(name, afile)
                    for a in decls:     # each derived probe owns its body: later ones copy it
                        out.extend(self._expand(a, m, pp, clone(body) if out else body, chain,
                                                decl, afile, depth))
        if failed and not out:
            raise failed[0]
        return out

    def _builtin(self, m: _Match, pp: A.ProbePoint, body, chain, decl, file) -> list[DerivedProbe]:
        family = m.node.family or ""
        cpp = A.ProbePoint(pp.span, m.comps, pp.optional, pp.sufficient, None)
        text = probe_point_str(cpp, False)
        msg = check_builtin(family, [(c.functor, _arg_value(c.arg)) for c in m.comps],
                            bool(getattr(self.opts, "guru", False)))
        if msg is not None:
            raise SemError(msg, None)
        target = None
        is_return = any(c.functor == "return" for c in m.comps)
        if len(m.comps) >= 3 and m.comps[0].functor == "kernel" and m.comps[1].functor == "data":
            return [self._hwbkpt(m, pp, body, chain, decl, file)]
        if m.comps and m.comps[0].functor in _TARGET_HEADS:
            optional = pp.optional or pp.sufficient or self.quiet > 0
            res = self._target(cpp, quiet=optional)
            if res is not None:
                if res.proxy and optional:
                    # only the running kernel knows this point, standing in for
                    # the -r release: stap, which has no symbols for that
                    # release, drops an optional point silently; so do we
                    raise SemError("no match", cpp.span)
                if not res.points:
                    err = next((d for d in res.diagnostics if d.severity == Severity.ERROR), None)
                    for d in res.diagnostics:
                        if d is not err:
                            self.warn(d)
                    raise SemError(err.message if err else "no match", err.span if err else None,
                                   err.saw if err else "")
                for d in res.diagnostics:
                    self.warn(d)
                out = []
                for i, cp in enumerate(res.points):
                    t = cp.text + ("!" if pp.sufficient else "?" if pp.optional else "")
                    out.append(DerivedProbe(decl, pp, t, list(chain), body if i == 0 else clone(body),
                                            file, target=cp, family=cp.family,
                                            is_return=cp.is_return, location=pp))
                return out
        if family == "perf":
            # stap's perf probe is rebuilt from its concrete point: the sample
            # period is made explicit and the alias chain is not kept
            base = text
            if not any(c.functor in ("sample", "hz") for c in m.comps):
                text += ".sample(1000000)"
            chain = [base]
        if pp.sufficient:
            text += "!"
        elif pp.optional:
            text += "?"
        return [DerivedProbe(decl, pp, text, list(chain), body, file, target=target,
                             family=family, is_return=is_return, location=pp)]

    def _hwbkpt(self, m: _Match, pp, body, chain, decl, file) -> DerivedProbe:
        """A hardware breakpoint, ``kernel.data(ADDR|"SYMBOL")[.length(N)].rw|write``:
        stap prints an address in hex and the length (1 unless given) always; a
        symbol is looked up only when the module is built."""
        where = _arg_value(m.comps[1].arg)
        length = 1
        for c in m.comps[2:]:
            if c.functor == "length" and isinstance(_arg_value(c.arg), int):
                length = _arg_value(c.arg)
        access = m.comps[-1].functor
        loc = f"0x{where:x}" if isinstance(where, int) else '"' + str(where) + '"'
        text = f"kernel.data({loc}).length({length}).{access}"
        if pp.sufficient:
            text += "!"
        elif pp.optional:
            text += "?"
        chain = list(chain)
        if isinstance(where, int) and len(chain) == 1 and len(decl.points) == 1:
            # the point as written, with stap's hex address
            chain[0] = chain[0].replace(f"kernel.data({where})", f"kernel.data({loc})", 1)
        return DerivedProbe(decl, pp, text, chain, body, file, family="kernel.data",
                            location=pp)

    def _target(self, cpp: A.ProbePoint, quiet: bool = False):
        try:
            from stap_ls.sema.targetprobes import resolve_target_point
        except ImportError:
            return None
        if self.model is None:
            return None
        try:
            return resolve_target_point(cpp, self.model, self.opts, suggest_similar=not quiet)
        except Exception as e:  # the target model must not take pass 2 down
            raise SemError(f"internal error resolving {probe_point_str(cpp)}: {e}", cpp.span)

    def _expand(self, alias: A.AliasDecl, m: _Match, pp, body, chain, decl, afile, depth
                ) -> list[DerivedProbe]:
        self.pull_file(afile)
        name_text = probe_point_str(A.ProbePoint(None, m.comps), False)
        rhs_text = ", ".join(probe_point_str(p, True) for p in alias.points)
        op = " += " if alias.epilogue else " = "
        new_chain = [f"{name_text}{op}{rhs_text}"] + chain
        abody = clone(alias.body)
        probewrite = self._uses_probewrite(alias)      # most aliases: nothing to fold
        written = _written_names(body) if probewrite else set()
        if probewrite:
            _fold_probewrite(abody, written)
        if alias.body2 is not None:
            abody2 = clone(alias.body2)
            if probewrite:
                _fold_probewrite(abody2, written)
            stmts = [abody, body, abody2]
        elif alias.epilogue:
            stmts = [body, abody]
        else:
            stmts = [abody, body]
        merged = A.Block(None, stmts)
        out: list[DerivedProbe] = []
        first_body = True
        for rhs in alias.points:
            target_pp = rhs
            if m.suffix:
                target_pp = A.ProbePoint(rhs.span, list(rhs.components) + list(m.suffix),
                                         rhs.optional, rhs.sufficient, rhs.condition)
            b = merged if first_body else clone(merged)
            quiet = rhs.optional or rhs.sufficient
            self.quiet += quiet
            try:
                res = self._derive(target_pp, b, new_chain, decl, afile, depth + 1, rhs)
            except SemError as e:
                if rhs.optional or rhs.sufficient:
                    continue
                if m.suffix and "mismatch" in e.message:
                    raise SemError("invalid suffix for probe", m.suffix[0].span,
                                   _ident(m.suffix[0]))
                head = rhs.components[0]
                inner = list(e.chain)
                inner.append(sem_error("while resolving probe point", head.span, _ident(head)))
                inner.append(e.diagnostic())
                raise SemError("resolution failed in alias expansion builder", None, chain=inner)
            finally:
                self.quiet -= quiet
            if res:
                first_body = False
            if rhs.condition is not None:
                for dp in res:
                    dp.condition = rhs.condition
            out.extend(res)
            if res and rhs.sufficient:
                break
        return out


def derive_synthetic_end(body: A.Block, decl: A.ProbeDecl) -> DerivedProbe:
    """The ``end`` probe stap adds to print globals written and never read."""
    return DerivedProbe(decl, decl.points[0], "end", ["end"], body, "", family="end",
                        location=decl.points[0], synthetic=True)


def _written_names(node) -> set[str]:
    out: set[str] = set()
    for n in A.walk(node):
        tgt = None
        if isinstance(n, A.AssignExpr):
            tgt = n.left
        elif isinstance(n, (A.PreCrement, A.PostCrement)):
            tgt = n.operand
        if isinstance(tgt, A.ArrayIndex):
            tgt = tgt.base
        if isinstance(tgt, A.Symbol):
            out.add(tgt.name)
    return out


def _fold_probewrite(node, written: set[str]) -> None:
    """``if (@probewrite(x)) S``: stap keeps S only when the handler writes x, and drops
    it before resolving symbols (tapset code behind it may not even resolve)."""
    for n in list(A.walk(node)):
        for attr in ("statements",):
            stmts = getattr(n, attr, None)
            if isinstance(n, A.Block) and stmts is not None:
                for i, st in enumerate(stmts):
                    if isinstance(st, A.IfStmt) and isinstance(st.cond, A.ProbewriteOp) \
                            and st.cond.name not in written:
                        stmts[i] = st.else_ if st.else_ is not None else A.NullStmt(st.span)
