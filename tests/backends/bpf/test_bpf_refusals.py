"""Refusals, verifier rejections and bad input: clear diagnostics, no crash, no hang."""

import pytest

from bpfrun import run, start
from stap_ls.backends.bpf.codegen import generate
from stap_ls.backends.bpf.ir import (Assign, Begin, Call, Compare, End, Field, Foreach, Global,
                                     GlobalVar, IntLit, Local, Printf, Probe, Program, Sprintf,
                                     StrLit, Timer, Tracepoint, TraceField, Type, Unsupported, UnsupportedStmt,
                                     Uprobe)
from stap_ls.text import SourceFile, Span

SRC = SourceFile("t.stp", "probe timer.s(1) {\n  foreach (k in a) print(k)\n}\n")


def span(line: int, col: int, length: int = 1) -> Span:
    start = SRC.offset(line, col)
    return Span(SRC, start, start + length)


def diags_of(prog: Program) -> list:
    gen, diags = generate(prog)
    assert gen is None
    return diags


@pytest.mark.parametrize("probe,construct", [
    (Probe(Timer("s", 1), [Foreach("a", ["k"], [], span=span(2, 3, 7))], locals={"k": Type.LONG}),
     "foreach in a kernel-side probe"),
    (Probe(Unsupported('kernel.function("vfs_read")'), []), 'kernel.function("vfs_read")'),
    (Probe(Timer("s", 1), [UnsupportedStmt("try/catch")]), "try/catch"),
    (Probe(Timer("s", 1), [Assign(Local("s"), Sprintf("%#x", [IntLit(1)]))], locals={"s": Type.STRING}),
     "sprintf's '%#x' directive in a kernel-side probe"),
    (Probe(Timer("s", 1), [Printf("%d", [Field("x")])]), "the context variable '$x'"),
    (Probe(Timer("hz", 10, randomize=2), []), "timer.hz(N).randomize"),
])
def test_refusal_names_construct_and_suggests_stap(probe, construct):
    prog = Program(globals=[Global("a", Type.LONG, keys=[Type.LONG])], probes=[probe])
    diags = diags_of(prog)
    assert len(diags) == 1
    d = diags[0]
    assert construct in d.message and "run it with the stap engine instead" in d.message
    assert d.code == "bpf-unsupported"


def test_refusal_carries_the_span():
    prog = Program(globals=[Global("a", Type.LONG, keys=[Type.LONG])], probes=[
        Probe(Timer("s", 1), [Foreach("a", ["k"], [], span=span(2, 3, 7))], locals={"k": Type.LONG})])
    d = diags_of(prog)[0]
    assert d.format().startswith("t.stp:2:3: error: the bpf engine does not support foreach")


def test_every_refused_probe_is_reported():
    prog = Program(probes=[Probe(Unsupported("kprobe.function(\"x\")"), []),
                           Probe(Timer("s", 1), [UnsupportedStmt("embedded C")])])
    assert len(diags_of(prog)) == 2


def test_context_variable_in_begin():
    prog = Program(probes=[Probe(Begin(), [Printf("%d\n", [Field("x")])])])
    d = diags_of(prog)
    assert d and d[0].code == "bpf-context"


def test_run_reports_refusal_and_exits_1(bpf_ready):
    prog = Program(probes=[Probe(Unsupported("kernel.function(\"do_sys_open\")"), [])])
    c = run(prog)
    assert c.code == 1 and c.exits == [1]
    assert "kernel.function" in c.diagnostics[0].message


def test_verifier_rejection_points_at_the_statement(bpf_ready):
    """A field layout the kernel disagrees with (a stale tracepoint format):
    the diagnostic names the verifier's complaint, the generated C line and
    the script span — not an instruction dump."""
    src = SourceFile("v.stp", 'probe kernel.trace("syscalls:sys_enter_getppid") {\n  x = $bogus\n}\n')
    stmt = Assign(Local("x"), Field("bogus"), span=Span(src, src.offset(2, 3), src.offset(2, 13)))
    tp = Tracepoint("syscalls", "sys_enter_getppid", fields=[TraceField("bogus", 60000, 8)])
    prog = Program(probes=[Probe(tp, [stmt, Printf("%d\n", [Local("x")])], locals={"x": Type.LONG},
                                 pp='kernel.trace("syscalls:sys_enter_getppid")')])
    c = start(prog)
    assert c.handle.wait(60) == 1, "the run did not end after the rejection"
    assert len(c.diagnostics) == 1
    d = c.diagnostics[0]
    assert d.code == "bpf-verifier"
    assert 'verifier rejected probe kernel.trace("syscalls:sys_enter_getppid")' in d.message
    assert "ctx" in d.message.split("; at generated")[0]  # the verifier's own complaint
    assert "at generated C line" in d.message and "60000" in d.message
    assert "(from the Assign statement)" in d.message
    assert "\n" not in d.message
    assert d.span is not None and d.format().startswith("v.stp:2:3: error: ")


@pytest.mark.parametrize("prog,needle", [
    (Program(probes=[Probe(Uprobe("/nonexistent/bin", "main"), [])]), "cannot find executable '/nonexistent/bin'"),
    (Program(probes=[Probe(Tracepoint("nosuch", "event"), [])]), "no tracepoint nosuch:event"),
    (Program(probes=[Probe(Timer("s", 1), [Printf("%q", [IntLit(1)])])]), "invalid or missing conversion"),
    (Program(probes=[Probe(Timer("s", 1), [Printf("%d %d", [IntLit(1)])])]), "printf with 1 arguments"),
    (Program(probes=[Probe(Timer("s", 1), [Assign(GlobalVar("nope"), IntLit(1))])]), "unknown global 'nope'"),
    (Program(probes=[Probe(Timer("ms", 0), [])]), "the interval must be positive"),
])
def test_bad_input_gives_a_diagnostic(bpf_ready, prog, needle):
    c = run(prog)
    assert c.code == 1
    assert any(needle in d.message for d in c.diagnostics), [d.message for d in c.diagnostics]


def test_user_space_error_in_end(bpf_ready):
    prog = Program(globals=[Global("z", Type.LONG)], probes=[
        Probe(End(), [Printf("%d\n", [Call("strlen", [StrLit("abc")])]),
                      Assign(GlobalVar("z"), IntLit(0)),
                      Printf("%d\n", [Compare("==", IntLit(1), IntLit(1))]),
                      Assign(GlobalVar("z"), __import__("stap_ls.backends.bpf.ir", fromlist=["Binary"]).Binary(
                          "/", IntLit(1), GlobalVar("z"), span=Span(SRC, 0, 5)))])])
    c = run(prog, action=lambda: None)
    assert c.code == 1
    assert c.stdout == ["3", "1"]
    assert c.stderr == ["ERROR: division by 0 at t.stp:1:1"]
