"""The Program that elaborate() returns: what the server and translators read."""

from __future__ import annotations

from stap_ls.options import parse_stap_args
from stap_ls.sema.elaborate import elaborate
from stap_ls.sema.frontend import run_frontend
from stap_ls.sema.p2print import print_program
from stap_ls.sema.program import FunctionInfo, VarInfo
from stap_ls.syntax import ast as A
from stap_ls.text import Severity, SourceFile
from tests.support.oracle import release


def _elab(script: str, *extra: str):
    opts, _ = parse_stap_args(["-r", release(), "-p2", *extra, "-e", script])
    fe = run_frontend(opts, [SourceFile("<input>", script)])
    assert not fe.user_errors
    return fe, elaborate(fe)


def test_referents_and_types_on_the_users_nodes() -> None:
    script = 'global n\nprobe begin { n = strlen(execname()); s = "x"; print(n, s) }\n'
    fe, res = _elab(script, "-u")
    assert not res.errors, res.errors
    body = fe.user[0].file.probes[0].body
    syms = [x for x in A.walk(body) if isinstance(x, A.Symbol)]
    calls = [x for x in A.walk(body) if isinstance(x, A.FunctionCall)]
    n = res.program.referents[id(syms[0])]
    assert isinstance(n, VarInfo) and n.kind == "global" and n.type == "long"
    s = res.program.referents[id(syms[1])]
    assert isinstance(s, VarInfo) and s.kind == "local" and s.type == "string"
    fis = res.program.referents[id(calls[0])]
    assert isinstance(fis[0], FunctionInfo) and fis[0].file.endswith(".stp")
    assert fis[0].return_type == "long" and fis[0].params[0].type == "string"
    assert res.program.types[id(calls[1])] == "string"
    assert any(f.endswith("context.stp") for f in res.program.files_used)


def test_alias_expansion_order_chain_and_locals() -> None:
    script = ("probe pre = begin { x = 1 }\nprobe post += end { y = 2 }\n"
              "probe pre { print(x) }\nprobe post { y = 3; print(y) }\n")
    _fe, res = _elab(script, "-u")
    assert not res.errors, res.errors
    pre, post = res.program.probes
    assert (pre.text, pre.chain) == ("begin", ["pre = begin", "pre"])
    assert (post.text, post.chain) == ("end", ["post += end", "post"])
    # '=' runs the alias body first, '+=' after the handler
    assert isinstance(pre.body.statements[0], A.Block) and "x" in _names(pre.body.statements[0])
    assert "y" in _names(post.body.statements[1]) and "print" not in _names(post.body.statements[1])
    assert [(v.name, v.type) for v in pre.locals] == [("x", "long")]
    text = print_program(res.program)
    assert "begin /* <- pre = begin <- pre */\n  # locals\n  x:long\n" in text
    assert "end /* <- post += end <- post */" in text


def _names(node) -> set[str]:
    return {getattr(x, "name", "") for x in A.walk(node)}


def test_optimiser_keeps_the_syntax_tree() -> None:
    script = "probe begin { x = 1; y = 2; print(y) }\n"
    fe, res = _elab(script)
    assert not res.errors
    assert any(d.severity == Severity.WARNING and d.message == "Eliding assignment to 'x'"
               for d in res.diagnostics)
    stmts = fe.user[0].file.probes[0].body.statements
    assert len(stmts) == 3                      # the parsed tree is untouched
    assert [v.name for v in res.program.probes[0].locals] == ["y"]


def test_bad_input_gives_diagnostics_not_exceptions() -> None:
    for script in ("probe begin { f(f(f(1))) }", "function f(a) { return f(a) } probe begin { f(1) }",
                   "probe syscall.* ?? { }", "global a probe begin { a[a[1]] = a }"):
        opts, _ = parse_stap_args(["-r", release(), "-p2", "-e", script])
        fe = run_frontend(opts, [SourceFile("<input>", script)])
        res = elaborate(fe)
        assert all(not d.message.startswith("internal error") for d in res.diagnostics), \
            (script, [d.message for d in res.diagnostics])
