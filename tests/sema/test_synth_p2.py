"""Synthetic target-variable code in ``-p2`` and autocast checks, against the real stap.

Each script runs through ``stap -r RELEASE -p2`` and ``stap-ls check -p2``
(with and without ``-u``): where stap succeeds the printed programs must be
the same byte for byte (``__tracepoint_arg_*`` locals, ``_tracepoint_tvar_get_*``
functions, their numbering and merging); where stap fails both must fail with
the same first error (stap's autocast rules, netfilter context variables
and hook/family/priority names).  Both run live.
"""

from __future__ import annotations

import pytest

from tests.support.oracle import release, run, stap_ls_cmd, stap_path

SAME_PROGRAM = {
    # arguments in tracepoint order, whatever order the body uses them in
    "tp_arg_order": 'probe kernel.trace("irq_handler_entry") { a = 1; println($action); println($irq) }',
    # @defined and $$parms count as uses; locals stay although the optimiser drops the code
    "tp_defined": 'probe kernel.trace("irq_handler_entry") { if (@defined($irq)) println(1) }',
    "tp_parms": 'probe kernel.trace("irq_handler_entry") { println($$parms) }',
    "tp_dead_use": 'probe kernel.trace("irq_handler_entry") { x = $irq; println(2) }',
    # $var->member: numbered at derivation, dropped with its code, merged by body
    "tvar_numbering": 'probe kernel.trace("sched_wakeup") { x = $p->tgid;  y = $p->prio; '
                      'println($p->pid) }',
    "tvar_merge": 'probe kernel.trace("sched_switch") { println($prev->pid) } '
                  'probe kernel.trace("sched_wakeup") { println($p->pid) }',
    # netfilter context variables become __nf_* locals, sorted by name
    "netfilter_locals": 'probe netfilter.hook("NF_INET_LOCAL_IN").pf("NFPROTO_IPV4") '
                        '{ println($skb, $in, $out, $hooknum) }',
    "netfilter_ipv6_hook": 'probe netfilter.hook("NF_IP6_LOCAL_OUT").pf("NFPROTO_IPV6") { println($out) }',
    "tvar_two": 'probe kernel.trace("sched_wakeup") { x = $p->tgid; println(x); println($p->pid) }',
}

SAME_ERROR = {
    "ternary_modules": 'probe begin { println((randint(2) ? & @cast(0, "sockaddr_un", "<sys/un.h>")'
                       ' : & @cast(0, "sockaddr_un", "<sys/socket.h><sys/un.h>"))->sun_family) }',
    "local_two_types": 'probe begin { if (randint(2)) s = & @cast(0, "sockaddr_un", "<sys/un.h>"); '
                       'else s = & @cast(0, "sockaddr_un", "<sys/socket.h><sys/un.h>"); '
                       'println(s->sun_family) }',
    "ternary_untyped": 'probe begin { println((randint(2) ? & @cast(0, "sockaddr_un", "<sys/un.h>")'
                       ' : 0)->sun_family) }',
    "foreach_key": 'global a probe begin { a[& @cast(0, "sockaddr_un", "<sys/un.h>")] = 1; '
                   'foreach ([k] in a) println(k->sun_family) }',
    "function_untyped_return": 'function f(p) { return 0 } probe begin { println(f(1)->sun_family) }',
    "parameter": 'function f(p) { println(p->sun_family) } '
                 'probe begin { f(& @cast(0, "sockaddr_un", "<sys/un.h>")) }',
    "autocast_write": 'probe begin { s = & @cast(0, "sockaddr_un", "<sys/un.h>"); s->sun_family = 1 }',
    "netfilter_unknown_var": 'probe netfilter.hook("NF_INET_LOCAL_IN").pf("NFPROTO_IPV4") { println($foo) }',
    "netfilter_verdict": 'probe netfilter.hook("NF_INET_LOCAL_IN").pf("NFPROTO_IPV4") { println($verdict) }',
    "netfilter_write": 'probe netfilter.hook("NF_INET_LOCAL_IN").pf("NFPROTO_IPV4") { $skb = 1 }',
    "netfilter_address": 'probe netfilter.hook("NF_INET_LOCAL_IN").pf("NFPROTO_IPV4") { println(&$skb) }',
    "netfilter_hook_family": 'probe netfilter.hook("NF_IP_LOCAL_OUT").pf("NFPROTO_IPV6") { println(1) }',
    "netfilter_priority": 'probe netfilter.hook("NF_IP6_LOCAL_OUT").pf("NFPROTO_IPV6")'
                          '.priority("NF_IP_PRI_FIRST") { println(1) }',
    "tracepoint_address": 'probe kernel.trace("irq_handler_entry") { println(&$action) }',
    "tracepoint_address_member": 'probe kernel.trace("sched_wakeup") { println(&$p->pid) }',
    "number_deref": 'probe begin { x = 4; println(x->y) }',
}

#: stap accepts these (a value without a C type neither gives nor spoils one)
ACCEPTED = {
    "function_returns": 'function f(p) { if (p) return & @cast(p, "sockaddr_un", "<sys/un.h>"); '
                        'return 0 } probe begin { println(f(1)->sun_family) }',
    "local_untyped_value": 'probe begin { if (randint(2)) s = & @cast(0, "sockaddr_un", "<sys/un.h>"); '
                           'else s = 5; s++; println(s->sun_family) }',
    "global": 'global g probe begin { g = & @cast(0, "sockaddr_un", "<sys/un.h>") } '
              'probe end { println(g->sun_family) }',
}


def _first_error(text: str) -> str:
    for line in text.splitlines():
        if "error:" in line:
            return line.split(" at ")[0]
    return ""


def _both(script: str, unopt: bool):
    argv = ["-p2", *(["-u"] if unopt else []), "-e", script]
    stap = run([stap_path(), "-r", release(), *argv])
    mine = run([*stap_ls_cmd(), "check", "-r", release(), *argv])
    return stap, mine


@pytest.mark.parametrize("unopt", [False, True], ids=["opt", "u"])
@pytest.mark.parametrize("name", sorted(SAME_PROGRAM))
def test_same_program(name: str, unopt: bool) -> None:
    stap, mine = _both(SAME_PROGRAM[name], unopt)
    assert stap.returncode == 0, stap.stderr[-1500:]
    assert mine.returncode == 0, mine.stderr[-1500:]
    assert mine.stdout == stap.stdout


@pytest.mark.parametrize("unopt", [False, True], ids=["opt", "u"])
@pytest.mark.parametrize("name", sorted(SAME_ERROR))
def test_same_error(name: str, unopt: bool) -> None:
    stap, mine = _both(SAME_ERROR[name], unopt)
    assert stap.returncode != 0, "stap accepted the script; the case no longer tests a rejection"
    assert mine.returncode != 0, mine.stdout[-1500:]
    assert _first_error(mine.stderr) == _first_error(stap.stderr), (stap.stderr, mine.stderr)


@pytest.mark.parametrize("unopt", [False, True], ids=["opt", "u"])
@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_accepted(name: str, unopt: bool) -> None:
    stap, mine = _both(ACCEPTED[name], unopt)
    assert stap.returncode == 0, stap.stderr[-1500:]
    assert mine.returncode == 0, mine.stderr[-1500:]
