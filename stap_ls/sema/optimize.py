"""stap's pass-2 optimisations that change what ``-p2`` shows (skipped under ``-u``).

Run to a fixed point, as ``semantic_pass_optimize1`` does:

* **opt1** — functions no probe reaches (directly or through other functions)
  are dropped ("Eliding unused function" for the script's own);
* **opt2** — variables neither read nor written are dropped ("Eliding unused
  variable"); ones read but never written get "never-assigned ... variable";
* **opt3** — an assignment to a local never read becomes its right-hand side
  ("Eliding assignment to 'x'");
* **opt4** — expression statements without side effects disappear ("Eliding
  side-effect-free expression"), nested blocks flatten, empty ``if``s and
  loops with side-effect-free control go, and a probe left empty is elided
  ("Probe 'begin' has been elided").

Warnings are given only for code in the user's files, as stap does.
"""

from __future__ import annotations

from stap_ls.sema.program import FunctionInfo, Program, VarInfo
from stap_ls.sema.types import describe, tok_span
from stap_ls.sema.usage import var_usage
from stap_ls.syntax import ast as A
from stap_ls.targets.suggest import suggest
from stap_ls.text import Diagnostic, Severity


def _calls(node, refs) -> list[FunctionInfo]:
    out: list[FunctionInfo] = []
    for n in A.walk(node):
        if isinstance(n, A.FunctionCall):
            fis = refs.get(id(n))
            if fis:
                out.extend(fis)
    return out


def reachable_functions(prog: Program) -> set[int]:
    seen: set[int] = set()
    work: list[FunctionInfo] = []
    for dp in prog.probes:
        work.extend(_calls(dp.body, prog.referents))
        if dp.condition is not None:
            work.extend(_calls(dp.condition, prog.referents))
    while work:
        fi = work.pop()
        if id(fi) in seen:
            continue
        seen.add(id(fi))
        if fi.body is not None and not isinstance(fi.body, A.EmbeddedCode):
            work.extend(_calls(fi.body, prog.referents))   # a singleton body is no Block
    return seen


def optimize_functions(prog: Program) -> None:
    keep = reachable_functions(prog)
    for name in list(prog.functions):
        fis = [f for f in prog.functions[name] if id(f) in keep]
        if fis:
            prog.functions[name] = fis
        else:
            del prog.functions[name]


class Optimizer:
    def __init__(self, prog: Program, user_files: set[str], suppress: bool = False) -> None:
        self.p = prog
        self.user = user_files
        self.suppress = suppress
        self.diags: list[Diagnostic] = []
        self.changed = False
        self._warned: set[tuple[str, int]] = set()
        self._pure_cache: dict[int, bool] = {}

    def warn(self, msg: str, span, saw: str) -> None:
        if span is None or span.source.name not in self.user:
            return
        key = (msg, span.start)
        if key in self._warned:
            return
        self._warned.add(key)
        self.diags.append(Diagnostic(Severity.WARNING, msg, span, "elided", kind="WARNING",
                                     saw=saw, marker="at", tags=("unnecessary",)))

    # -- side effects --------------------------------------------------------------------
    def _fn_pure(self, fi: FunctionInfo, depth: int = 0) -> bool:
        hit = self._pure_cache.get(id(fi))
        if hit is not None:
            return hit
        self._pure_cache[id(fi)] = True          # recursion: assume pure while computing
        body = fi.body
        if isinstance(body, A.EmbeddedCode):
            pure = "/* pure */" in body.code
        else:
            pure = self._body_pure(body, set(id(v) for v in fi.locals + fi.params), depth)
        self._pure_cache[id(fi)] = pure
        return pure

    def _body_pure(self, node, own: set[int], depth: int) -> bool:
        for n in A.walk(node):
            if isinstance(n, A.PrintFormat) and not n.name.startswith("sprint"):
                return False                    # output is a side effect; sprintf is not
            if isinstance(n, (A.EmbeddedExpr, A.EmbeddedCode)) and "/* pure */" not in n.code:
                return False                    # stap's kludge: a /* pure */ marker is trusted
            if isinstance(n, A.NextStmt):
                return False
            if isinstance(n, A.FunctionCall):
                for fi in self.p.referents.get(id(n)) or []:
                    if depth > 20 or not self._fn_pure(fi, depth + 1):
                        return False
            tgt = None
            if isinstance(n, A.AssignExpr):
                tgt = n.left
            elif isinstance(n, (A.PreCrement, A.PostCrement)):
                tgt = n.operand
            elif isinstance(n, A.DeleteStmt):
                tgt = n.value
            if tgt is not None:
                if isinstance(tgt, A.ArrayIndex):
                    tgt = tgt.base
                v = self.p.referents.get(id(tgt)) if isinstance(tgt, A.Symbol) else None
                if not isinstance(v, VarInfo) or id(v) not in own:
                    return False
        return True

    def side_effect_free(self, e) -> bool:
        return self._body_pure(e, set(), 0) and not any(
            isinstance(n, (A.AssignExpr, A.PreCrement, A.PostCrement)) for n in A.walk(e))

    # -- passes --------------------------------------------------------------------------------
    def run(self) -> list[Diagnostic]:
        # work on copies: the syntax trees (the user's and the cached library's) stay as parsed
        from stap_ls.sema.clone import clone_keyed
        from stap_ls.sema.synth import note_clone, record_before_optimisation
        record_before_optimisation(self.p)      # what stap synthesised at derivation
        tables = [self.p.referents]
        for dp in self.p.probes:
            original = dp.body
            dp.body = clone_keyed(dp.body, tables)
            note_clone(self.p, original, dp.body)
        for fi in self.p.all_functions():
            if not isinstance(fi.body, A.EmbeddedCode):
                fi.body = clone_keyed(fi.body, tables)
        for it in range(20):
            self.changed = False
            self.opt1()
            self.opt2(it)
            self.opt3()
            self.opt4()
            if not self.changed:
                break
        return self.diags

    def opt1(self) -> None:
        keep = reachable_functions(self.p)
        for name in list(self.p.functions):
            fis = []
            for f in self.p.functions[name]:
                if id(f) in keep:
                    fis.append(f)
                else:
                    self.warn(f"Eliding unused function '{f.name}'", f.decl.name_span or f.decl.span,
                              f"identifier '{f.name}'")
                    self.changed = True
            if fis:
                self.p.functions[name] = fis
            else:
                del self.p.functions[name]

    def opt2(self, iteration: int) -> None:
        read, written = var_usage(self.p)
        gl = list(self.p.globals.values())
        for dp in self.p.probes:
            self._locals(dp.locals, read, written, iteration, gl, [])
        for fi in self.p.all_functions():
            self._locals(fi.locals, read, written, iteration, gl, fi.params)
        for key, v in list(self.p.globals.items()):
            if id(v) not in read and id(v) not in written:
                self.warn(f"Eliding unused variable '{v.name}'", v.span, f"identifier '{v.name}'")
                del self.p.globals[key]
                self.changed = True
            elif id(v) not in written and v.init is None and iteration == 0 and not self.suppress:
                sims = suggest(v.name, [g.name for g in gl if g.name != v.name])
                sim = f" (similar: {', '.join(sims)})" if sims else ""
                self.warn(f"never-assigned global variable '{v.name}'{sim}", v.span,
                          f"identifier '{v.name}'")

    def _locals(self, locals_: list[VarInfo], read, written, iteration, gl, params) -> None:
        keep = []
        for v in locals_:
            if id(v) not in read and id(v) not in written:
                self.warn(f"Eliding unused variable '{v.name}'", v.span, f"identifier '{v.name}'")
                self.changed = True
                continue
            if id(v) not in written and iteration == 0 and not self.suppress:
                names = [x.name for x in params + locals_ + gl if x.name != v.name]
                sims = suggest(v.name, names)
                sim = f" (similar: {', '.join(sims)})" if sims else ""
                self.warn(f"never-assigned local variable '{v.name}'{sim}", v.span,
                          f"identifier '{v.name}'")
            keep.append(v)
        locals_[:] = keep

    def opt3(self) -> None:
        read, _written = var_usage(self.p)
        for dp in self.p.probes:
            self._dead_assign(dp.body, read)
        for fi in self.p.all_functions():
            if fi.body is not None and not isinstance(fi.body, A.EmbeddedCode):
                self._dead_assign(fi.body, read)

    def _dead_assign(self, node, read) -> None:
        for n in list(A.walk(node)):
            for name in _expr_fields(n):
                e = getattr(n, name)
                new = self._strip_assign(e, read)
                if new is not e:
                    setattr(n, name, new)

    def _strip_assign(self, e, read):
        while isinstance(e, A.AssignExpr):
            left = e.left
            sym = left.base if isinstance(left, A.ArrayIndex) else left
            if not isinstance(sym, A.Symbol):
                return e
            v = self.p.referents.get(id(sym))
            if not isinstance(v, VarInfo) or id(v) in read or v.kind == "global":
                return e
            if isinstance(left, A.ArrayIndex) and not all(
                    i is None or self.side_effect_free(i) for i in left.indexes):
                return e
            self.warn(f"Eliding assignment to '{sym.name}'", tok_span(e), f"operator '{e.op}'")
            self.changed = True
            e = e.right
        return e

    def opt4(self) -> None:
        keep = []
        for dp in self.p.probes:
            body = self._stmt(dp.body)
            dp.body = body if body is not None else A.Block(dp.body.span, [])
            if isinstance(dp.body, A.Block) and not dp.body.statements and not dp.synthetic \
                    and dp.condition is None:
                self.warn(f"Probe '{dp.text}' has been elided", dp.decl.span, "keyword")
                self.changed = True
                continue
            keep.append(dp)
        self.p.probes[:] = keep
        for fi in self.p.all_functions():
            if not isinstance(fi.body, A.EmbeddedCode):
                body = self._stmt(fi.body)
                fi.body = body if body is not None else A.Block(fi.body.span, [])

    def _block(self, b: A.Block) -> A.Block | None:
        out = []
        for s in b.statements:
            r = self._stmt(s)
            if r is None:
                continue
            if isinstance(r, A.Block):
                out.extend(r.statements)
            else:
                out.append(r)
        if len(out) == 1:
            return out[0]                     # stap elides singleton blocks
        if len(out) != len(b.statements) or any(x is not y for x, y in zip(out, b.statements)):
            b = A.Block(b.span, out)
        return b if out else None

    def _stmt(self, s):
        if isinstance(s, A.NullStmt):
            return None
        if isinstance(s, A.Block):
            return self._block(s)
        if isinstance(s, A.ExprStmt):
            if self.side_effect_free(s.expr):
                self.warn("Eliding side-effect-free expression ", tok_span(s.expr), describe(s.expr))
                self.changed = True
                return None
            return s
        if isinstance(s, A.IfStmt):
            s.then = self._stmt(s.then) or A.Block(None, [])
            if s.else_ is not None:
                s.else_ = self._stmt(s.else_)
            empty_then = isinstance(s.then, A.Block) and not s.then.statements
            if empty_then and s.else_ is None and self.side_effect_free(s.cond):
                self.changed = True
                return None
            if empty_then and s.else_ is None:
                self.changed = True           # stap: "Creating simple evaluation from if"
                return A.ExprStmt(s.cond.span, s.cond)
            return s
        if isinstance(s, A.ForLoop):
            body = self._stmt(s.body)
            if body is None and all(x is None or self.side_effect_free(x)
                                    for x in (s.init, s.cond, s.incr)):
                self.changed = True           # stap elides a side-effect-free empty loop
                return None
            s.body = body or A.Block(None, [])
            return s
        if isinstance(s, A.ForeachLoop):
            body = self._stmt(s.body)
            if body is None:
                self.changed = True           # stap: "Eliding side-effect-free foreach"
                return None
            s.body = body
            return s
        if isinstance(s, A.TryBlock):
            s.body = _as_block(self._block(s.body))
            s.catch_body = _as_block(self._block(s.catch_body))
            if not s.body.statements:
                self.changed = True
                return None
            return s
        return s


def _as_block(s) -> A.Block:
    if s is None:
        return A.Block(None, [])
    return s if isinstance(s, A.Block) else A.Block(s.span, [s])


def _expr_fields(n) -> list[str]:
    if isinstance(n, A.ExprStmt):
        return ["expr"]
    if isinstance(n, A.AssignExpr | A.BinaryExpr):
        return ["left", "right"] if not isinstance(n, A.AssignExpr) else ["right"]
    if isinstance(n, A.ForLoop):
        return ["init", "incr"]
    return []


def merge_duplicate_functions(prog: Program) -> bool:
    """stap's duplicate-function elimination (not under ``-u``), after type inference.

    Functions whose signature without the name (``:type (param:type, ...)``) and
    printed body are the same are one function: in the order of stap's function
    map (by mangled name) the first one wins, and every call of a later one is
    redirected to it (``ulong_arg(3)`` becomes ``pointer_arg(3)``); the losers are
    then unreachable and no longer listed.  Repeated until nothing changes, since
    a merge can make two callers' bodies equal.  Returns whether anything merged.
    """
    from stap_ls.sema.p2print import MangledPrinter, function_key
    merged_any = False
    for _round in range(10):
        pr = MangledPrinter(prog, {})
        keep = reachable_functions(prog)
        fns = sorted((f for f in prog.all_functions() if id(f) in keep),
                     key=lambda f: (function_key(f), f.overload))
        first: dict[str, FunctionInfo] = {}
        dupes: dict[int, FunctionInfo] = {}
        for f in fns:
            if isinstance(f.body, A.EmbeddedCode):
                body = "%{" + f.body.code + "%}"
            else:
                body = pr.stmt(f.body)
            sig = (f":{f.return_type} (" + ", ".join(f"{p.name}:{p.type}" for p in f.params)
                   + ")\n" + body)
            win = first.setdefault(sig, f)
            if win is not f:
                dupes[id(f)] = win
        if not dupes:
            return merged_any
        merged_any = True
        # bodies are the optimiser's copies (renaming their calls is safe); a
        # condition is the parsed tree's, so only its referents change
        roots = [(dp.body, True) for dp in prog.probes]
        roots += [(dp.condition, False) for dp in prog.probes if dp.condition is not None]
        roots += [(f.body, True) for f in prog.all_functions()
                  if not isinstance(f.body, A.EmbeddedCode)]
        for root, own in roots:
            for n in A.walk(root):
                if isinstance(n, A.FunctionCall):
                    fis = prog.referents.get(id(n))
                    if fis and any(id(fi) in dupes for fi in fis):
                        new = [dupes.get(id(fi), fi) for fi in fis]
                        prog.referents[id(n)] = new
                        if own:
                            n.name = new[0].name
    return merged_any
