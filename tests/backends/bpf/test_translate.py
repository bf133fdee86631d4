"""The stap -> IR translator on real elaborated scripts: its lowering choices and
its refusals (issue test 6: each on the construct, naming it, suggesting stap)."""

from __future__ import annotations

import pytest

from scriptrun import run_script
from stap_ls.backends.bpf import ir
from stap_ls.backends.bpf.translate import decode_string, translate
from stap_ls.options import parse_stap_args
from stap_ls.sema.elaborate import elaborate
from stap_ls.sema.frontend import run_frontend, user_sources
from stap_ls.targets.model import TargetModel


def lower(script: str, *args: str):
    opts, _ = parse_stap_args([*args, "-e", script])
    fe = run_frontend(opts, user_sources(opts))
    res = elaborate(fe, TargetModel(opts))
    assert not res.errors, [d.format() for d in res.errors]
    return translate(res.program, {"<input>"})


def at(script: str, d) -> str:
    """The script text a diagnostic points at (from its start)."""
    assert d.span is not None, d.format()
    return script[d.span.start:]


def test_decode_string():
    assert decode_string(r"a\n\t\\\"\101\x42%") == 'a\n\t\\"AB%'


def test_function_inlined_with_fresh_locals():
    prog, diags = lower("function sq(x) { y = x * x; return y } "
                        "probe begin { n = 3; println(sq(n) + sq(n + 1)) }")
    assert not diags
    (probe,) = prog.probes
    assigns = [s for s in probe.body if isinstance(s, ir.Assign)]
    # two calls -> two sets of parameter/local/return locals, each initialised
    params = [s.target.name for s in assigns if s.target.name.endswith("_sq_x")]
    assert len(params) == 2 and params[0] != params[1]
    assert all(t is ir.Type.LONG for n, t in probe.locals.items() if n.startswith("__t"))
    assert isinstance(probe.body[-1], ir.Print)


def test_literal_arguments_are_substituted_and_folded():
    """return_str(1, ret)-style calls: a literal bound to a parameter nobody
    assigns is substituted, so `if (format == 2)` folds and only one branch stays."""
    prog, diags = lower('function fmt(kind, v) { if (kind == 2) return sprintf("%x", v) '
                        'return sprintf("%d", v) } probe begin { n = 5; println(fmt(1, n)) }')
    assert not diags
    body = prog.probes[0].body
    assert not any(isinstance(s, ir.Assign) and s.target.name.endswith("_kind") for s in body)
    sprintfs = [x for x in _walk_ir(body) if isinstance(x, ir.Sprintf)]
    assert [x.fmt for x in sprintfs] == ["%d"]


def _walk_ir(node):
    if isinstance(node, list):
        for x in node:
            yield from _walk_ir(x)
        return
    if not isinstance(node, ir.Node):
        return
    yield node
    for v in vars(node).values():
        if isinstance(v, (list, ir.Node)):
            yield from _walk_ir(v)


def test_short_circuit_keeps_call_under_if():
    prog, diags = lower("global n; function f() { n++; return 1 } probe begin { x = 0 && f(); println(x) }")
    assert not diags
    body = prog.probes[0].body
    ifs = [s for s in body if isinstance(s, ir.If)]
    assert len(ifs) == 1 and any(isinstance(s, ir.Assign) and isinstance(s.target, ir.GlobalVar)
                                 for s in ifs[0].then)


def test_globals_keep_sizes_wrap_and_hist():
    prog, diags = lower("global a%[8], s, t = 5 probe timer.s(1) { a[execname(), 1] = t; s <<< 1 } "
                        "probe end { print(@hist_linear(s, 0, 10, 2)) }")
    assert not diags
    a, s, t = (prog.global_named(n) for n in "ast")
    assert a.keys == [ir.Type.STRING, ir.Type.LONG] and a.size == 8 and a.wrap
    assert s.type is ir.Type.STATS and s.hist == ir.HistSpec("linear", 0, 10, 2)
    assert t.init == 5
    assert isinstance(prog.probes[0].point, ir.Timer) and prog.probes[0].point.unit == "s"


def test_probe_points():
    prog, diags = lower('probe timer.ms(20).randomize(3), timer.profile, timer.hz(7), never { println(1) } '
                        'probe kernel.trace("sched:sched_process_exec") { println($old_pid) }')
    assert not diags
    points = [p.point for p in prog.probes]
    assert ir.Timer("ms", 20, 3) in points and ir.Timer("hz", 7) in points
    assert any(isinstance(p, ir.TimerProfile) for p in points)
    tp = next(p for p in points if isinstance(p, ir.Tracepoint))
    assert (tp.group, tp.name) == ("sched", "sched_process_exec")
    assert any(f.name == "pid" for f in tp.fields)


REFUSALS = [
    # (script, the text the diagnostic must point at, words the message must hold, stap args)
    ('function f:long () %{ STAP_RETURN(1); %}\nprobe begin { println(f()) }', "f()",
     ["function f()", "embedded C"], ["-g"]),
    ('probe kernel.function("vfs_read") { println(1) }', 'kernel.function("vfs_read")',
     ["kernel.function", "kprobes"], []),
    ('function r(n) { return n <= 0 ? 0 : r(n - 1) + 1 }\nprobe begin { println(r(3)) }', "r(n - 1)",
     ["recursive call of r()"], []),
    ('probe begin { if ("abc" =~ "b") println(1) }', '"abc" =~', ["'=~'"], []),
    ('probe begin { println(cmdline_str()) }', "cmdline_str()", ["tapset function cmdline_str()"], []),
    # $p is a TP_PROTO argument (a struct pointer), not a field of the record
    ('probe kernel.trace("sched:sched_process_exec") { println($p) }', "$p",
     ["'$p'", "record: $filename, $pid, $old_pid"], []),
]


@pytest.mark.parametrize("script,where,words,args", REFUSALS)
def test_refusal_on_the_construct(script, where, words, args):
    prog, diags = lower(script, *args)
    assert prog is None and diags
    d = diags[0]
    assert d.code == "bpf-unsupported"
    assert at(script, d).startswith(where), (d.format(), at(script, d)[:40])
    for w in words:
        assert w in d.message, d.message
    assert d.message.endswith("run it with the stap engine instead")


def test_refused_script_never_loads(bpf_ready):
    """Through the run API: pass 3 fails, nothing runs, exit status 1."""
    sr = run_script("probe begin { println(1) } probe kernel.function(\"vfs_read\") { println(2) }")
    assert sr.code == 1
    assert (3, "failed") in sr.progress and not any(p[0] == 5 for p in sr.progress)
    assert sr.stdout == []
    assert any("kprobes" in ln for ln in sr.stderr)


@pytest.mark.parametrize("garbage", ["probe begin {", "}}}", "probe nosuch.point { }", "\x00\x01",
                                     "global x; probe begin { x = \"s\"; x = 1 }"])
def test_bad_input_is_a_diagnostic(bpf_ready, garbage):
    sr = run_script(garbage, timeout=60)
    assert sr.code == 1 and sr.diagnostics
    assert not any(d.code in ("bpf-internal", "sema-internal") for d in sr.diagnostics), \
        [d.format() for d in sr.diagnostics]


@pytest.mark.parametrize("script,words", [
    ("probe scheduler.process_exit { println(pid) }", ["$p->tgid", "sched_process_exit"]),
    ("probe scheduler.cpu_on { println(idle) }", ['kernel.function("finish_task_switch")', "kprobes"]),
    ("probe syscall.write { println(argstr) }", ["raw_syscalls:sys_enter", "user_buffer_quoted()"]),
])
def test_alias_refusal_lands_on_the_users_probe_point(script, words):
    """A tapset alias body the engine cannot run: one diagnostic on the user's
    point, the tapset places as related information."""
    prog, diags = lower(script)
    assert prog is None
    (d,) = diags
    assert at(script, d).startswith(script.split()[1])
    for w in words:
        assert w in d.message, d.message
    assert d.related and all(not r.span.source.name.startswith("<") for r in d.related)


def test_codegen_refusal_in_tapset_code_is_placed_on_the_users_point():
    from stap_ls.backends.bpf.codegen import CodegenOptions, generate
    from stap_ls.backends.bpf.translate_engine import place_codegen_refusals
    from stap_ls.text import SourceFile, Span
    user = SourceFile("<input>", 'probe my.alias { println(x) }')
    lib = SourceFile("/usr/share/systemtap/tapset/fake.stp", 'x = sprintf("%#o", 8)')
    uspan, lspan = Span(user, 6, 14), Span(lib, 4, 21)
    prog = ir.Program(probes=[ir.Probe(ir.Tracepoint("sched", "sched_process_exec"), [
        ir.Print([ir.Sprintf("%#o", [ir.IntLit(8)], span=lspan)], span=lspan)],
        pp='kernel.trace("sched:sched_process_exec")', span=uspan)])
    copts = CodegenOptions()
    gen, diags = generate(prog, copts)
    assert gen is None and diags[0].span == lspan
    (d,) = place_codegen_refusals(prog, diags, {"<input>"}, copts)
    assert d.span == uspan and "my.alias" in d.message and "%#o" in d.message
    assert d.related[0].span == lspan
