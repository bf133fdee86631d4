"""One kernel-side probe exercising the language: its output must equal what
stap's semantics give (worked out in the comments), and the user-space
interpreter must agree with the kernel on the same statements."""

import os

from bpfrun import run
from stap_ls.backends.bpf.ir import (ArrayGet, Assign, Begin, Binary, Break, Call, Compare, Concat,
                                     Cond, Continue, Delete, End, Exists, Exit, For, Global,
                                     GlobalVar, If, IntLit, Local, Logical, Next, Print, Printf,
                                     Probe, Program, Sprintf, StrLit, Timer, Type, Unary, While)
from stap_ls.backends.bpf.runtime import RunOptions


def body():
    L = Local
    return [
        # integer arithmetic: C99 truncation, wrap-around, shifts
        Printf("div %d %d %d %d\n", [Binary("/", IntLit(-7), IntLit(2)), Binary("%", IntLit(-7), IntLit(2)),
                                     Binary("/", IntLit(7), IntLit(-2)), Binary("%", IntLit(7), IntLit(-2))]),
        Printf("wrap %d %d %x\n", [Binary("+", IntLit(2**63 - 1), IntLit(1)),
                                   Unary("-", IntLit(-2**63)),
                                   Binary(">>", IntLit(-16), IntLit(2))]),
        Printf("logic %d %d %d %d\n", [Logical("&&", IntLit(3), IntLit(0)), Logical("||", IntLit(0), IntLit(5)),
                                       Unary("!", IntLit(7)), Unary("~", IntLit(0))]),
        # strings: concat, compare, strlen, ternary, sprintf
        Assign(L("s"), Concat(StrLit("foo"), StrLit("bar"))),
        Assign(L("s"), StrLit("!"), op=".="),
        Printf("str %s %d %d %d\n", [L("s"), Call("strlen", [L("s")]),
                                     Compare("<", StrLit("abc"), StrLit("abd")),
                                     Compare("==", L("s"), StrLit("foobar!"))]),
        Printf("cond %s\n", [Cond(Compare(">", IntLit(2), IntLit(1)), StrLit("yes"), StrLit("no"))]),
        Assign(L("t"), Sprintf("<%5d|%-4s|%x>", [IntLit(42), StrLit("ab"), IntLit(255)])),
        Print([L("t")], newline=True),
        # arrays with string keys and values, exists, delete
        Assign(ArrayGet("names", [StrLit("a"), IntLit(1)]), StrLit("alpha")),
        Assign(ArrayGet("names", [StrLit("b"), IntLit(2)]), StrLit("beta")),
        Printf("arr %s %s [%s] %d %d\n", [ArrayGet("names", [StrLit("a"), IntLit(1)]),
                                          ArrayGet("names", [StrLit("b"), IntLit(2)]),
                                          ArrayGet("names", [StrLit("c"), IntLit(3)]),
                                          Exists("names", [StrLit("a"), IntLit(1)]),
                                          Exists("names", [StrLit("a"), IntLit(2)])]),
        Delete(ArrayGet("names", [StrLit("a"), IntLit(1)])),
        Printf("deleted %d\n", [Exists("names", [StrLit("a"), IntLit(1)])]),
        Assign(ArrayGet("nums", [IntLit(1)]), IntLit(10)),
        Assign(ArrayGet("nums", [IntLit(2)]), IntLit(20)),
        Delete(GlobalVar("nums")),
        Printf("cleared %d %d\n", [Exists("nums", [IntLit(1)]), Exists("nums", [IntLit(2)])]),
        # loops: for with continue, while with break; sum of odd i < 10 = 25
        For(Assign(L("i"), IntLit(0)), Compare("<", L("i"), IntLit(10)), Assign(L("i"), IntLit(1), op="+="),
            [If(Compare("==", Binary("%", L("i"), IntLit(2)), IntLit(0)), [Continue()]),
             Assign(L("sum"), L("i"), op="+=")]),
        While(IntLit(1), [Assign(L("j"), IntLit(1), op="+="), If(Compare(">=", L("j"), IntLit(7)), [Break()])]),
        Printf("loops %d %d %d\n", [L("sum"), L("i"), L("j")]),
        # context builtins agree with this process's view
        Printf("ids %d %d\n", [Compare("==", Call("uid"), IntLit(os.getuid())),
                               Compare(">", Call("gettimeofday_s"), IntLit(1_600_000_000))]),
        If(IntLit(1), [Next()]),
        Printf("not reached\n"),
    ]


EXPECTED = [
    "div -3 -1 -3 1",
    "wrap -9223372036854775808 -9223372036854775808 fffffffffffffffc",
    "logic 0 1 0 -1",
    "str foobar! 7 1 1",
    "cond yes",
    "<   42|ab  |ff>",
    "arr alpha beta [] 1 0",
    "deleted 0",
    "cleared 0 0",
    "loops 25 10 7",
    "ids 1 1",
]

LOCALS = {"s": Type.STRING, "t": Type.STRING, "i": Type.LONG, "sum": Type.LONG, "j": Type.LONG}
GLOBALS = [Global("names", Type.STRING, keys=[Type.STRING, Type.LONG]),
           Global("nums", Type.LONG, keys=[Type.LONG]), Global("once", Type.LONG)]


def test_kernel_probe_semantics(bpf_ready):
    guard = [If(GlobalVar("once"), [Next()]), Assign(GlobalVar("once"), IntLit(1)), Exit()]
    prog = Program(globals=GLOBALS, probes=[
        Probe(Timer("ms", 10), guard + body(), locals=LOCALS, pp="timer.ms(10)"),
        Probe(End(), [Printf("end\n")], pp="end")])
    c = run(prog, RunOptions(), timeout=30)
    assert c.code == 0, (c.diagnostics, c.stderr)
    assert c.stdout == EXPECTED + ["end"]


def test_user_space_interpreter_agrees(bpf_ready):
    prog = Program(globals=GLOBALS, probes=[Probe(Begin(), body() + [], locals=LOCALS, pp="begin"),
                                            Probe(Begin(), [Exit()], pp="begin")])
    c = run(prog, RunOptions(), timeout=30)
    assert c.code == 0, (c.diagnostics, c.stderr)
    assert c.stdout == EXPECTED


def test_array_overflow_and_wrap(bpf_ready):
    """global a[4]: the fifth key is stap's 'Array overflow' error (exit 1);
    global w[4]%: old entries make room instead."""
    def prog(wrap: bool) -> Program:
        name = "w" if wrap else "a"
        fill = [For(Assign(Local("i"), IntLit(0)), Compare("<", Local("i"), IntLit(10)),
                    Assign(Local("i"), IntLit(1), op="+="),
                    [Assign(ArrayGet(name, [Local("i")]), Local("i"))]), Exit()]
        return Program(globals=[Global(name, Type.LONG, keys=[Type.LONG], size=4, wrap=wrap), Global("once", Type.LONG)],
                       probes=[Probe(Timer("ms", 10), [If(GlobalVar("once"), [Next()]),
                                                       Assign(GlobalVar("once"), IntLit(1))] + fill,
                                     locals={"i": Type.LONG}, pp="timer.ms(10)"),
                               Probe(End(), [Printf("end\n")], pp="end")])
    c = run(prog(False), RunOptions(), timeout=30)
    assert c.code == 1
    assert c.stderr == ["ERROR: Array overflow, check MAXMAPENTRIES"]
    c = run(prog(True), RunOptions(), timeout=30)
    assert c.code == 0 and c.stdout == ["end"], (c.stderr, c.diagnostics)
