"""Code stap synthesises in pass 2 for target variables, as ``-p2`` shows it.

stap rewrites target-variable accesses into generated code, and ``-p2``
prints what that code adds to the program:

* **tracepoint argument locals** — a ``kernel.trace`` probe reads each
  tracepoint argument its body names (``$irq``, ``@defined($irq)``, all of
  them for ``$$parms``/``$$vars``) into a probe local
  ``__tracepoint_arg_NAME:long``.  They are made when the probe is derived,
  before the optimiser runs, so they stay even when the optimiser removes the
  code that named them; they are listed first, in the tracepoint's argument
  order (not the order of use).
* **netfilter context locals** — ``$skb``, ``$in``, ``$out``, ``$hooknum``,
  ``$okfn``, ``$verdict`` of a ``netfilter.hook`` probe become probe locals
  ``__nf_skb`` ... (``long``), listed first, sorted by name; other ``$names``
  are "unsupported context variable", ``$verdict`` needs guru mode, and the
  others may not be written.
* **tracepoint member functions** — ``$var->member...`` in a tracepoint probe
  becomes a call of a generated function ``_tracepoint_tvar_get_VAR_N``
  (``long (pointer:long)``, private to the file holding the expression).  N
  counts every such access in the order probes are derived and their bodies
  are walked, before optimisation.  The optimiser then drops the functions
  whose access it removed, and merges functions with the same generated body
  (the same member path from the same pointer type), keeping the first by
  name; under ``-u`` all of them stay.

:func:`record_before_optimisation` must see the probes before the optimiser
changes their bodies (``Optimizer.run`` calls it); under ``-u`` the bodies are
not changed and the record is made when the program is printed.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, replace

from stap_ls.sema.program import LONG, DerivedProbe, FunctionInfo, Program, VarInfo
from stap_ls.syntax import ast as A

_ALL_ARGS = ("$$parms", "$$vars")


@dataclass
class TvarAccess:
    """One ``$var->member...`` access of a tracepoint probe, as stap numbers it."""

    var: str            # without '$'
    number: int
    file: str           # the file whose private function it becomes
    key: tuple          # what makes two generated bodies equal
    node: A.TargetSymbol  # the access in the unoptimised body

    @property
    def name(self) -> str:
        return f"_tracepoint_tvar_get_{self.var}_{self.number}"


@dataclass
class _Record:
    tp_args: dict[int, list[str]]             # id(probe) -> context variables used
    accesses: list[TvarAccess]


_RECORDS: "weakref.WeakKeyDictionary[Program, _Record]" = weakref.WeakKeyDictionary()


#: netfilter context variables -> the probe locals stap maps them to (tapset-netfilter.cxx)
NETFILTER_VARS = {"$hooknum": "__nf_hooknum", "$skb": "__nf_skb", "$in": "__nf_in",
                  "$out": "__nf_out", "$okfn": "__nf_okfn", "$verdict": "__nf_verdict"}


def is_netfilter(dp: DerivedProbe) -> bool:
    return dp.family.startswith("netfilter")


def _name_token(e: A.TargetSymbol) -> A.Expr:
    """The ``$name`` token of ``&$name...`` (stap blames it, not the '&')."""
    name = A.Symbol(None, e.name)
    if e.span is not None:
        at = e.span.source.text.find("$", e.span.start, e.span.end)
        name.span = replace(e.span, start=at, end=at + len(e.name)) if at >= 0 else e.span
    return name


def tracepoint_var_errors(dp: DerivedProbe, e: A.TargetSymbol) -> list[tuple[str, A.Expr]]:
    """stap's complaint about ``&$arg`` in a kernel.trace probe (message, node)."""
    names = _tp_arg_names(dp)
    if e.addressof and names is not None and e.name[1:] in names:
        return [("cannot take address of tracepoint variable", _name_token(e))]
    return []


def netfilter_var_errors(e: A.TargetSymbol, guru: bool) -> list[tuple[str, A.Expr]]:
    """stap's complaints about a ``$variable`` read in a netfilter probe (message, node)."""
    if e.name not in NETFILTER_VARS:
        return [("unsupported context variable", e)]
    if e.addressof:
        return [("cannot take address of netfilter hook context variable", _name_token(e))]
    if e.name == "$verdict" and not guru:
        return [("write to netfilter verdict requires guru mode; need stap -g", e)]
    return []


def _tp_arg_names(dp: DerivedProbe) -> list[str] | None:
    if dp.family != "kernel.trace" or dp.target is None:
        return None
    tvs = getattr(dp.target, "target_vars", None)
    return [v.name for v in tvs] if tvs else None


def _is_deref(e: A.TargetSymbol) -> bool:
    """A member/index access (a pretty-printed one, ``$p->comm$``, is generated otherwise)."""
    return any(c.kind in ("member", "index") for c in e.components) and \
        not any(c.kind == "pretty" for c in e.components)


def _key(dp: DerivedProbe, e: A.TargetSymbol) -> tuple:
    tvs = {v.name: v for v in dp.target.target_vars}
    tv = tvs.get(e.name[1:])
    path = tuple((c.kind, c.member if c.kind == "member" else
                  (c.index.value if isinstance(c.index, A.NumberLit) else id(c.index)))
                 for c in e.components if c.kind in ("member", "index"))
    return (tv.type if tv else e.name, path)


def record_before_optimisation(prog: Program) -> None:
    """Note what stap synthesises when it derives the probes (see the module doc)."""
    tp_args: dict[int, list[str]] = {}
    accesses: list[TvarAccess] = []
    for dp in prog.probes:
        if is_netfilter(dp):
            used_nf = {NETFILTER_VARS[n.name] for n in A.walk(dp.body)
                       if isinstance(n, A.TargetSymbol) and n.name in NETFILTER_VARS}
            tp_args[id(dp)] = sorted(used_nf)       # stap keeps them in a std::set
            continue
        names = _tp_arg_names(dp)
        if names is None:
            continue
        used: set[str] = set()
        for n in A.walk(dp.body):
            if not isinstance(n, A.TargetSymbol):
                continue
            if n.name in _ALL_ARGS:
                used.update(names)
                continue
            var = n.name[1:]
            if var not in names:
                continue
            used.add(var)
            if _is_deref(n) and not n.addressof:
                file = n.span.source.name if n.span else dp.file
                accesses.append(TvarAccess(var, len(accesses), file, _key(dp, n), n))
        tp_args[id(dp)] = [a for a in names if a in used]
    _RECORDS[prog] = _Record(tp_args, accesses)


def _record(prog: Program) -> _Record:
    rec = _RECORDS.get(prog)
    if rec is None:             # -u: the bodies are as derived
        record_before_optimisation(prog)
        rec = _RECORDS[prog]
    return rec


def tracepoint_locals(prog: Program, dp: DerivedProbe) -> list[VarInfo]:
    """The context locals stap gives a probe: ``__tracepoint_arg_NAME`` for a
    kernel.trace probe, ``__nf_NAME`` for a netfilter probe."""
    names = _record(prog).tp_args.get(id(dp), [])
    prefix = "" if is_netfilter(dp) else "__tracepoint_arg_"
    return [VarInfo(prefix + n, "local", None, LONG, arity=0, synthetic=True) for n in names]


def synthetic_functions(prog: Program) -> list[FunctionInfo]:
    """Generated functions that ``-p2`` lists (as :class:`FunctionInfo` with no body).

    The program was optimised when the optimiser made the record (``-u`` otherwise)."""
    optimised = prog in _RECORDS
    rec = _record(prog)
    accesses = rec.accesses
    if optimised:
        live = _live_origins(prog)
        accesses = [a for a in accesses if id(a.node) in live]
        by_key: dict[tuple, TvarAccess] = {}
        for a in sorted(accesses, key=lambda a: _mangled(a)):
            by_key.setdefault(a.key, a)
        accesses = list(by_key.values())
    out = []
    for a in accesses:
        decl = A.FunctionDecl(None, a.name, "long", [], A.EmbeddedCode(None, ""), private=True)
        out.append(FunctionInfo(a.name, decl, a.file,
                                [VarInfo("pointer", "param", None, LONG, arity=0)],
                                return_type=LONG, private=True))
    return out


def _mangled(a: TvarAccess) -> str:
    from stap_ls.sema.p2print import mangled
    return mangled(a.name, a.file, True)


def _live_origins(prog: Program) -> set[int]:
    """ids of the unoptimised TargetSymbols whose (cloned) copies are still in a body."""
    origin = _ORIGINS.get(prog, {})
    live = set()
    for dp in prog.probes:
        for n in A.walk(dp.body):
            if isinstance(n, A.TargetSymbol):
                live.add(origin.get(id(n), id(n)))
    return live


#: program -> {id(clone): id(original)} for target symbols, filled by the optimiser's copy
_ORIGINS: "weakref.WeakKeyDictionary[Program, dict[int, int]]" = weakref.WeakKeyDictionary()


def note_clone(prog: Program, original, copy) -> None:
    """Remember which unoptimised target symbols a probe body copy came from."""
    m = _ORIGINS.setdefault(prog, {})
    for a, b in zip(A.walk(original), A.walk(copy)):
        if isinstance(a, A.TargetSymbol):
            m[id(b)] = id(a)
