"""uprobes and USDT on a test binary built with gcc -g during the test.

The expected lines are what target.c computes; the run is ``-c`` style, so it
ends when the command exits and target() is the command's pid.
"""

from bpfrun import run, target_steps
from stap_ls.backends.bpf.ir import (AggAdd, Arg, Binary, Call, Compare, End, Global, HistSpec, If,
                                     IntLit, Print, PrintHist, Printf, Probe, Program, ReturnValue,
                                     StatOp, Type, Uprobe, Usdt)
from stap_ls.backends.bpf.runtime import RunOptions

N = 6


def expected_calls(n: int) -> list[str]:
    out = []
    for i, r, c, _, total in target_steps(n):
        out.append(f"add3({i}, {i * 10}, {-i})")
        out.append(f"add3 -> {r} [a1={i} a3={-i}]")
        out.append(f"classify -> {c}")
        out.append(f"tick {i} {total}")
    return out


def test_uprobe_args_returns_and_usdt(target_binary):
    b = target_binary
    mine = Compare("==", Call("pid"), Call("target"))
    prog = Program(globals=[], probes=[
        Probe(Uprobe(b, "add3"), [If(mine, [Printf("add3(%d, %d, %d)\n", [Arg(1), Arg(2), Arg(3)])])],
              pp=f'process("{b}").function("add3")'),
        Probe(Uprobe(b, "add3", is_return=True), [
            If(mine, [Printf("add3 -> %d [a1=%d a3=%d]\n", [ReturnValue(), Arg(1), Arg(3)])])],
            pp=f'process("{b}").function("add3").return'),
        Probe(Uprobe(b, "classify", is_return=True), [
            # an int return value: the translator masks to the declared width
            If(mine, [Printf("classify -> %d\n", [Binary("&", ReturnValue(), IntLit(0xFFFFFFFF))])])],
            pp=f'process("{b}").function("classify").return'),
        Probe(Usdt(b, "tick"), [If(mine, [Printf("tick %d %d\n", [Arg(1), Arg(2)])])],
              pp=f'process("{b}").mark("tick")'),
    ])
    c = run(prog, RunOptions(command=f"{b} {N} >/dev/null"), timeout=30)
    assert c.code == 0, (c.diagnostics, c.stderr)
    assert c.stdout == expected_calls(N)


def test_aggregates_from_uprobe_data(target_binary):
    """<<< in the kernel (per-CPU), @count inside the kernel, @sum/@avg/... and
    both histograms printed in end, compared with stap's rules in format.py."""
    from stap_ls.backends.bpf import format as F
    b = target_binary
    n = 12
    mine = Compare("==", Call("pid"), Call("target"))
    prog = Program(
        globals=[Global("s", Type.STATS, hist=HistSpec("log")),
                 Global("l", Type.STATS, hist=HistSpec("linear", 0, 100, 10))],
        probes=[
            Probe(Uprobe(b, "add3"), [If(mine, [
                AggAdd("s", [], Arg(2)), AggAdd("l", [], Arg(2)),
                Printf("seen %d\n", [StatOp("count", "s")])])], pp="add3"),
            Probe(End(), [
                Printf("count=%d sum=%d min=%d max=%d avg=%d\n",
                       [StatOp(op, "s") for op in ("count", "sum", "min", "max", "avg")]),
                PrintHist("s"), PrintHist("l"),
                Print([StatOp("count", "l")], newline=True),
            ], pp="end"),
        ])
    c = run(prog, RunOptions(command=f"{b} {n} >/dev/null"), timeout=30)
    assert c.code == 0, (c.diagnostics, c.stderr)
    values = [10 * i for i in range(1, n + 1)]
    seen = [ln for ln in c.stdout if ln.startswith("seen ")]
    assert seen == [f"seen {i}" for i in range(1, n + 1)]
    rest = "\n".join(ln for ln in c.stdout if not ln.startswith("seen ")) + "\n"
    hlog = [0] * 128
    for v in values:
        hlog[F.log_bucket(v)] += 1
    nb = F.linear_buckets(0, 100, 10)
    hlin = [0] * nb
    for v in values:
        hlin[F.linear_bucket(v, 0, 10, nb)] += 1
    expected = (f"count={n} sum={sum(values)} min=10 max=120 avg={sum(values) // n}\n"
                + F.format_histogram(hlog, "log") + F.format_histogram(hlin, "linear", 0, 10)
                + f"{n}\n")
    assert rest == expected
    # one literal line pinned by hand: 64..127 holds 70,80,...,120 = 6 values
    assert "   64 |@@@@@@                                             6" in rest
    assert " >100 |@@                                                 2" in rest
