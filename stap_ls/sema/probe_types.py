"""The probe point families stap builds in, as a tree of components.

stap keeps its probe types in a tree of ``match_node``s: each edge is one
component (a functor, with no argument, a number or a string argument) and a
node may end a probe family.  Script aliases hang off the same tree (see
:mod:`stap_ls.sema.derive`).  This module builds the built-in part from a
compact description of the families (``stap --dump-probe-types``) and checks
the parameters of the families that need no target model (``timer``,
``begin``/``end``/``error``, ``procfs``, ``perf``, ``netfilter``), with stap's
messages.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

# {a,b} alternatives, [x] optional tail; n = number argument, s = string argument
_FUNC_TAILS = ["", ".call", ".exported", ".inline", ".label(s)", ".callees", ".callees(n)",
               ".callee(s)", ".callee(s).call", ".callee(s).return", ".return",
               ".return.maxactive(n)"]
_FUNCN_TAILS = ["", ".call", ".exported", ".return", ".return.maxactive(n)"]
_STMT = ["statement(n)", "statement(n).nearest", "statement(s)", "statement(s).nearest"]
_PLT = ["plt", "plt.return", "plt(s)", "plt(s).return", "mark(s)", "provider(s).mark(s)"]


def _family_patterns() -> list[str]:
    pats = ["begin", "begin(n)", "end", "end(n)", "error", "error(n)", "never",
            "timer.hz(n)", "timer.profile.tick"]
    for u in ("s", "sec", "ms", "msec", "us", "usec", "ns", "nsec", "jiffies"):
        pats += [f"timer.{u}(n)", f"timer.{u}(n).randomize(n)"]
    for p in ("procfs", "procfs(s)"):
        for u in ("", ".umask(n)"):
            pats += [f"{p}{u}.read", f"{p}{u}.read.maxsize(n)", f"{p}{u}.write"]
    for a, b in (("hook", "pf"), ("pf", "hook")):
        pats += [f"netfilter.{a}(s).{b}(s)", f"netfilter.{a}(s).{b}(s).priority(s)"]
    base = "perf.type(n).config(n)"
    pats += [base, base + ".counter(s)", base + ".hz(n)", base + ".process", base + ".process(s)",
             base + ".process(s).counter(s)", base + ".sample(n)"]
    # kernel and modules
    for t in _FUNC_TAILS:
        pats += ["kernel.function(s)" + t, "module(s).function(s)" + t]
    for t in _FUNCN_TAILS:
        pats += ["kernel.function(n)" + t, "module(s).function(n)" + t]
    pats += ["kernel.statement(n)", "kernel.statement(n).absolute", "kernel.statement(n).nearest",
             "kernel.statement(s)", "kernel.statement(s).nearest", "kernel.trace(s)",
             "kernel.mark(s)", "kernel.mark(s).format(s)"]
    pats += ["module(s)." + s for s in _STMT]
    for d in ("kernel.data(n)", "kernel.data(s)"):
        pats += [d + ".rw", d + ".write"]
    pats += ["kernel.data(n).length(n).rw", "kernel.data(n).length(n).write"]
    for k in ("kprobe", "kprobe.module(s)"):
        pats += [f"{k}.function(s)", f"{k}.function(s).call", f"{k}.function(s).return",
                 f"{k}.function(s).return.maxactive(n)"]
    pats.append("kprobe.statement(n).absolute")
    # user space
    for proc in ("process", "process(n)", "process(s)"):
        for lib in ("", ".library(s)"):
            for t in _FUNC_TAILS:
                pats.append(f"{proc}{lib}.function(s){t}")
            for t in _FUNCN_TAILS:
                pats.append(f"{proc}{lib}.function(n){t}")
            pats += [f"{proc}{lib}.{s}" for s in _STMT + _PLT]
        pats += [f"{proc}.{x}" for x in ("begin", "end", "syscall", "syscall.return",
                                         "thread.begin", "thread.end")]
        if proc != "process":
            pats += [f"{proc}.insn", f"{proc}.insn.block",
                     f"{proc}.statement(n).absolute", f"{proc}.statement(n).absolute.return"]
    return pats


_COMP = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\(([ns])\))?")


@dataclass(eq=False)
class Node:
    children: dict[tuple[str, str], "Node"] = field(default_factory=dict)
    #: the family a built-in point ending here belongs to ("timer", "kernel.function", ...)
    family: str | None = None
    #: script aliases ending here: list of (AliasDecl, name ProbePoint, file)
    aliases: list = field(default_factory=list)

    def child(self, functor: str, kind: str) -> "Node":
        key = (functor, kind)
        n = self.children.get(key)
        if n is None:
            n = self.children[key] = Node()
        return n

    @property
    def ends(self) -> bool:
        return self.family is not None or bool(self.aliases)


def family_of(pattern: str) -> str:
    comps = [m.group(1) for m in _COMP.finditer(pattern)]
    if comps[0] in ("process", "module"):
        rest = [c for c in comps[1:] if c != "library"]
        return comps[0] + "." + (rest[0] if rest else "")
    if comps[0] in ("kernel", "kprobe", "timer", "netfilter"):
        return comps[0] + "." + comps[1] if comps[0] != "timer" else "timer"
    return comps[0]


def build_builtin_tree() -> Node:
    root = Node()
    for pat in _family_patterns():
        node = root
        for m in _COMP.finditer(pat):
            kind = {"n": "number", "s": "string"}.get(m.group(2) or "", "")
            node = node.child(m.group(1), kind)
        node.family = family_of(pat)
    return root


def component_str(functor: str, kind: str) -> str:
    return functor + (f"({kind})" if kind else "")


# -- parameter checks -----------------------------------------------------------
_TIMER_RANGES = {"s": 86400, "sec": 86400, "ms": 86400000, "msec": 86400000,
                 "us": 86400000000, "usec": 86400000000, "ns": 86400000000000,
                 "nsec": 86400000000000, "jiffies": 1000000}
_TIMER_MIN = {"ns": 100000, "nsec": 100000, "us": 100, "usec": 100}


def check_builtin(family: str, comps: list[tuple[str, object]], guru: bool = False) -> str | None:
    """stap's complaint about a built-in point's parameters, or None.

    ``comps`` are (functor, argument value) pairs of the concrete point.
    """
    if family == "timer":
        unit, val = comps[1]
        if unit == "hz":
            if not isinstance(val, int) or val <= 0 or val > 1000000:
                return "frequency value out of range"
            return None
        if unit == "profile":
            # stap 4.8 looks for register_timer_hook among the kernel's exports;
            # Linux removed it in 2.6.39, so on any kernel it supports this fails
            # (the timer.profile alias then falls back to perf.sw.cpu_clock)
            return "profiling timer support (register_timer_hook) not found in kernel!"
        hi = _TIMER_RANGES.get(unit, 86400)
        lo = _TIMER_MIN.get(unit, 1)
        if isinstance(val, int) and (val < 1 or val > hi):
            return f"interval value out of range ({lo}, {hi})"
        if isinstance(val, int) and val < lo:
            return f"interval value out of range ({lo}, {hi})"
        if len(comps) > 2:
            rnd = comps[2][1]
            if isinstance(rnd, int) and isinstance(val, int) and (rnd < 0 or rnd > val):
                return "randomization value out of range"
        return None
    if family == "procfs":
        for f, v in comps:
            if f == "procfs" and isinstance(v, str):
                if v.startswith("/") or v.endswith("/") or "//" in v or v == "":
                    return "procfs path cannot begin or end with a '/'" \
                        if v.startswith("/") or v.endswith("/") else "invalid procfs path"
                for part in v.split("/"):
                    if part in (".", ".."):
                        return "procfs path cannot contain '.' or '..'"
                    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", part):
                        return f"procfs path component '{part}' contains invalid characters"
            if f == "maxsize" and isinstance(v, int) and v <= 0:
                return "maxsize must be greater than 0"
        return None
    if family == "perf":
        return None
    if family.startswith("netfilter"):
        return None if guru else _netfilter_error(dict(comps))
    return None


_NF_ROUTE = ("PRE_ROUTING", "LOCAL_IN", "FORWARD", "LOCAL_OUT", "POST_ROUTING")
_NF_PRI = ("FIRST", "CONNTRACK_DEFRAG", "RAW", "SELINUX_FIRST", "CONNTRACK", "MANGLE", "NAT_DST",
           "FILTER", "SECURITY", "NAT_SRC", "SELINUX_LAST", "LAST")
#: protocol family -> (its number, hook names, named priorities): tapset-netfilter.cxx
_NF_FAMILIES = {
    "NFPROTO_IPV4": ("2", {f"NF_{p}_{h}" for p in ("INET", "IP") for h in _NF_ROUTE},
                     {f"NF_IP_PRI_{n}" for n in _NF_PRI + ("CONNTRACK_CONFIRM",)}),
    "NFPROTO_IPV6": ("10", {f"NF_IP6_{h}" for h in _NF_ROUTE}, {f"NF_IP6_PRI_{n}" for n in _NF_PRI}),
    "NFPROTO_ARP": ("3", {"NF_ARP_IN", "NF_ARP_OUT", "NF_ARP_FORWARD"}, set()),
    "NFPROTO_BRIDGE": ("7", {f"NF_BR_{h}" for h in _NF_ROUTE}, set()),
}


def _netfilter_error(vals: dict) -> str | None:
    """stap's checks of netfilter.hook().pf().priority() without guru mode, in its order."""
    pf, hook = str(vals.get("pf")), str(vals.get("hook"))
    prio = str(vals.get("priority", "0"))
    fam = _NF_FAMILIES.get(pf)
    number = fam[0] if fam else pf
    if not (fam and prio in fam[2]):
        try:
            if not -2**31 <= int(prio, 0) < 2**31:
                raise ValueError(prio)
        except ValueError:
            return f'unsupported netfilter priority "{prio}" for protocol family "{number}"; need stap -g'
    if fam and hook not in fam[1]:
        return f'unsupported netfilter hook "{hook}" for protocol family "{number}"; need stap -g'
    if fam is None:
        return f'unsupported netfilter protocol family "{pf}"; need stap -g'
    return None


def iter_patterns() -> itertools.chain:
    return itertools.chain(_family_patterns())
