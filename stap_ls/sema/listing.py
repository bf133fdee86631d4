"""``stap -l PATTERN`` / ``stap -L PATTERN`` through pass 2 (tapset aliases and built-ins).

stap lists probe points by elaborating the script ``probe PATTERN {}`` in a
listing mode and printing, for each derived probe that traces back to the
user's point, that point *after wildcard expansion* and before alias
expansion (``syscall.open*`` lists ``syscall.open``, not the tracepoint it
becomes).  Lines are deduplicated and sorted.  With ``-L`` each line also
carries the probe's locals as ``name:type`` (what pass 2 inferred for the
alias bodies, in stap's order; nothing is optimised away) and then the
target variables of the concrete point (``$regs:struct pt_regs*``); when one
listed point derives several probes, only the items all of them share are
printed, in the order first seen.

Listing mode forgives: a point, or one wildcard match of it, that fails to
resolve (``netdev.*`` members that need kernel DWARF, ``begin,nothing.foo``)
is dropped silently; only when nothing at all is left is the listing a
failure (exit status 1).

This module mirrors that with our pass 2:

1. :func:`expand_point` expands each wildcard *functor* of a user point over
   the probe-point tree (built-in families and every tapset alias), keeping the
   argument kinds, so ``syscall.*`` becomes the ~380 concrete alias names;
2. every expansion becomes an optional point (``probe syscall.accept? {}``,
   one probe each) of one listing script, elaborated unoptimised (``-u``) so
   failures drop out the way stap's listing mode drops them and every alias
   local survives; should that elaboration still report an error (a type
   error in a function an alias body calls), the points are bisected until the
   failing ones can be dropped alone;
3. :func:`listing_lines` groups the derived probes by the expanded point and
   formats them.

Where BTF or kallsyms answer a ``kernel.function``/``kprobe`` point that stap
here can only resolve with kernel DWARF, we list it (as ``-p2`` accepts it)
and :attr:`Listing.without_dwarf` names it, so the caller can say so: stap
drops such points (``netdev.*``) or, for ``kprobe`` alternatives it cannot
check, derives another branch (``syscall.getpid``'s tracepoint).

Target variables come from the concrete point's target model answer
(``ConcretePoint.target_vars``: tracefs/BTF/DWARF); ``process.begin`` and the
other utrace events list stap's fixed ``$syscall $arg1..6``.  Target-only
patterns (``kernel.function(...)``, ``kernel.trace(...)``,
``process("P").function(...)``) stay with :mod:`stap_ls.targets.listing`;
:func:`wants_pass2` tells the two apart.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field, replace

from stap_ls.options import StapOptions
from stap_ls.sema.probe_types import Node
from stap_ls.syntax import ast as A
from stap_ls.syntax.printer import probe_point_str
from stap_ls.targets.base import BTF, SYMBOLS
from stap_ls.text import Diagnostic, Severity

#: process(...) events that are not target (symbol/DWARF) points: stap's utrace probes
_UTRACE_EVENTS = ("begin", "end", "syscall", "thread")
#: families whose concrete point stap lists as resolved (paths, tracepoint names)
_TARGET_HEADS = ("kernel", "module", "process", "kprobe")
#: what stap 4.8's utrace probes offer to -L, whatever the event
_UTRACE_VARS = ["$syscall:long"] + [f"$arg{i}:long" for i in range(1, 7)]


@dataclass
class Listing:
    """The result of a pass-2 listing: the lines to print, and why nothing matched."""
    lines: list[str] = field(default_factory=list)
    #: pass-2 errors of the points that were dropped (stap prints none of them)
    dropped: list[Diagnostic] = field(default_factory=list)
    #: listed points that rest on BTF or kernel symbols where stap needs kernel
    #: debug information (stap here drops them or derives them another way)
    without_dwarf: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.lines)


def listing_script(pattern: str) -> str:
    """The script stap builds for ``-l PATTERN``."""
    return f"probe {pattern} {{}}"


def wants_pass2(pattern: str) -> bool:
    """True unless the target lister (kernel/module/tracepoint/process symbols) owns ``pattern``."""
    from stap_ls.targets.listing import ProbeSyntaxError, is_target_probe, parse_probe_point
    if not is_target_probe(pattern):
        return True
    try:
        comps = parse_probe_point(pattern.strip())
    except ProbeSyntaxError:
        return True
    if comps[0].name != "process":
        return False
    # process("P").begin/.end/.syscall/.thread are utrace points, not symbols; bare
    # process.* and process(PID) ones have no binary to read
    return (not isinstance(comps[0].arg, str) or comps[1].name in _UTRACE_EVENTS
            or _is_wild(comps[1].name))


def _is_wild(functor: str) -> bool:
    return any(c in functor for c in "*?[")


def _kind(arg) -> str:
    if arg is None:
        return ""
    return "number" if isinstance(arg, A.NumberLit) else "string"


def expand_point(root: Node, pp: A.ProbePoint) -> list[list[A.PPComponent]]:
    """Each wildcard functor of ``pp`` replaced by the tree's matching names.

    Components without wildcards pass through unchecked (pass 2 checks them);
    a wildcard that matches nothing yields no expansion.  ``__``-prefixed
    names match only a pattern that starts with ``__``, as in stap."""
    out: list[list[A.PPComponent]] = []

    def walk(node: Node | None, pos: int, acc: list[A.PPComponent]) -> None:
        if pos == len(pp.components):
            out.append(acc)
            return
        c = pp.components[pos]
        if not _is_wild(c.functor):
            nxt = node.children.get((c.functor, _kind(c.arg))) if node is not None else None
            walk(nxt, pos + 1, acc + [c])
            return
        if node is None:            # past the tree (an alias suffix): leave it to pass 2
            walk(None, pos + 1, acc + [c])
            return
        kind = _kind(c.arg)
        for (functor, k), child in sorted(node.children.items()):
            if k != kind or not fnmatch.fnmatchcase(functor, c.functor):
                continue
            if functor.startswith("__") and not c.functor.startswith("__"):
                continue
            walk(child, pos + 1, acc + [A.PPComponent(functor, c.arg, c.span)])

    walk(root, 0, [])
    return out


def _point_text(comps: list[A.PPComponent]) -> str:
    return probe_point_str(A.ProbePoint(None, comps), False)


def expanded_script(fe, root: Node) -> tuple[str, list[str]]:
    """The listing script with every user point expanded and made optional.

    Returns the script text and, in order, the listed name of each point (one
    probe per point: a derived probe's declaration says which point it came from)."""
    names: list[str] = []
    for r in fe.user[:1]:        # -E scripts' probes are not the user's points (stap)
        for decl in r.file.probes:
            for pp in decl.points:
                for comps in expand_point(root, pp):
                    names.append(_point_text(comps))
    names = list(dict.fromkeys(names))
    return "".join(f"probe {n}? {{}}\n" for n in names), names


def list_probes(fe, model, with_vars: bool) -> Listing:
    """Elaborate the listing script of ``fe`` (its user file is ``probe PATTERN {}``).

    When nothing is listed, ``dropped`` holds the pass-2 errors of the pattern
    itself (elaborated as written), which say why."""
    from stap_ls.sema.elaborate import _library_index, elaborate
    root = _library_index(fe.library).aliases.root
    _text, names = expanded_script(fe, root)
    ok = _bisect(fe, model, names, with_vars)
    out = Listing(sorted(l for p in ok for l in p.lines),
                  without_dwarf=sorted({n for p in ok for n in p.without_dwarf}))
    if not out.lines:
        res = elaborate(fe, model)
        out.dropped = [d for d in res.diagnostics if d.severity == Severity.ERROR]
    return out


def _bisect(fe, model, names: list[str], with_vars: bool) -> list[Listing]:
    """Listings of the points that elaborate cleanly.  An error outside the optional
    points (a type error in a function one alias calls) fails the whole script, while
    stap's listing drops that point only: halve the points until the failing ones are
    alone (a few elaborations per failing point, not one per point)."""
    res = _elaborate_points(fe, model, names, with_vars)
    if res is not None:
        return [res]
    if len(names) == 1:
        return []
    mid = len(names) // 2
    return (_bisect(fe, model, names[:mid], with_vars)
            + _bisect(fe, model, names[mid:], with_vars))


def _elaborate_points(fe, model, names: list[str], with_vars: bool) -> Listing | None:
    """One elaboration of ``probe NAME? {}`` per name; None if it reports errors."""
    from stap_ls.sema.elaborate import elaborate
    from stap_ls.sema.frontend import run_frontend, user_sources
    if not names:
        return Listing()
    text = "".join(f"probe {n}? {{}}\n" for n in names)
    # -E scripts stay out: stap parses them after the listing script, so their
    # aliases are not there when its points are derived (`-l 'begin,A' -E 'probe A
    # = begin {}'` lists begin only), and their probes are never listed
    opts: StapOptions = replace(fe.options, unoptimized=True, script_text=text,
                                script_file=None, extra_scripts=[])
    fe2 = run_frontend(opts, user_sources(opts), library=fe.library)
    if fe2.user_errors:            # a name we printed does not parse back
        return None
    res = elaborate(fe2, model)
    errors = [d for d in res.diagnostics if d.severity == Severity.ERROR]
    if errors and all(d.message == "no probes found" for d in errors):
        return Listing()            # every point dropped: nothing to list, not a failure here
    if errors:
        return None
    decl_names = {id(d): n for d, n in zip(fe2.user[0].file.probes, names)}
    return Listing(listing_lines(res.program, with_vars, decl_names),
                   without_dwarf=_without_dwarf(res.program, decl_names))


def _without_dwarf(prog, decl_names: dict[int, str]) -> list[str]:
    out: set[str] = set()
    for dp in prog.probes:
        t = dp.target
        if id(dp.decl) not in decl_names or t is None:
            continue
        fam = getattr(t, "family", "")
        if getattr(t, "source", "") in (BTF, SYMBOLS) and fam.split(".")[0] in (
                "kernel", "module", "kprobe") and fam != "kernel.trace":
            out.add(_listed_name(dp, decl_names))
    return sorted(out)


def _listed_name(dp, decl_names: dict[int, str]) -> str:
    """The point stap prints for a derived probe: the user's expanded point, or for a
    built-in family reached directly, the concrete point (resolved paths, tracepoints)."""
    comps = dp.point.components
    if len(dp.chain) > 1 or not comps or comps[0].functor not in _TARGET_HEADS:
        return decl_names[id(dp.decl)]     # timer.profile, not the perf point it becomes
    return dp.text.rstrip("?!")


def _probe_items(prog, dp) -> tuple[list[str], list[str]]:
    """(locals as ``name:type``, target variables as ``$name:type``) of one probe."""
    from stap_ls.sema.p2print import var_sig
    from stap_ls.sema.synth import tracepoint_locals
    locals_ = [var_sig(v) for v in tracepoint_locals(prog, dp) + dp.locals]
    tv = getattr(dp.target, "target_vars", None) if dp.target is not None else None
    if tv:
        # stap lists the variables themselves, never the $$vars/$$parms/$$name summaries
        return locals_, [f"${v.name}:{v.type}" for v in tv if not v.name.startswith("$")]
    if _is_utrace(dp):
        return locals_, list(_UTRACE_VARS)
    return locals_, []


def _is_utrace(dp) -> bool:
    comps = [c.functor for c in dp.point.components]
    return len(comps) > 1 and comps[0] == "process" and comps[1] in _UTRACE_EVENTS


def _shared(lists: list[list[str]]) -> list[str]:
    """Items present in every list, in the order first seen."""
    counts: dict[str, int] = {}
    for lst in lists:
        for it in dict.fromkeys(lst):
            counts[it] = counts.get(it, 0) + 1
    return [it for it, n in counts.items() if n == len(lists)]


def listing_lines(prog, with_vars: bool, decl_names: dict[int, str]) -> list[str]:
    """Sorted, deduplicated lines for the program's primary probes (locals, then $vars).

    ``decl_names`` maps ``id()`` of each listing-script probe declaration to its
    point; probes of other declarations (tapset ``init`` probes, the synthetic
    global display) are not the user's and are not listed, as in stap."""
    groups: dict[str, list] = {}
    for dp in prog.probes:
        if dp.synthetic or id(dp.decl) not in decl_names:
            continue
        groups.setdefault(_listed_name(dp, decl_names), []).append(dp)
    lines = []
    for name in sorted(groups):
        if not with_vars:
            lines.append(name)
            continue
        items = [_probe_items(prog, dp) for dp in groups[name]]
        shared = _shared([i[0] for i in items]) + _shared([i[1] for i in items])
        lines.append(" ".join([name] + shared))
    return lines
