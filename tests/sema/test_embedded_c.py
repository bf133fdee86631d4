"""Embedded C checks: syntax errors placed in the script, STAP_ARG_ names, deprecated
THIS-> spellings, and few false warnings over the whole installed tapset library."""

from __future__ import annotations

import random
import re
import time

import pytest

from stap_ls.options import StapOptions
from stap_ls.sema.embedded_c import check_embedded, normalise
from stap_ls.sema.frontend import pp_env
from stap_ls.sema.library import load_library
from stap_ls.syntax import ast as A
from stap_ls.syntax.parser import ParseOptions, parse_file
from stap_ls.text import Severity, SourceFile, Span


def decls(src: str) -> list[A.Decl]:
    r = parse_file(SourceFile("e.stp", src), ParseOptions(privileged=True))
    assert not r.diagnostics, [d.format() for d in r.diagnostics]
    return r.file.decls


def check_fn(src: str):
    (d,) = decls(src)
    assert isinstance(d, A.FunctionDecl) and isinstance(d.body, A.EmbeddedCode)
    return check_embedded(d.body.code, d.body.span, [p.name for p in d.params], "function")


def test_syntax_error_is_placed_in_the_script():
    src = ("function f:long (x:long) %{\n"
           "  long y = STAP_ARG_x * 2\n"
           "  STAP_RETVALUE = y;\n"
           "%}\n")
    (d,) = check_fn(src)
    assert d.severity == Severity.WARNING and d.code == "embedded-c-syntax"
    pos = d.span.start_pos
    # tree-sitter reports the missing ';' right after "* 2" on line 2
    assert (pos.line, pos.column) == (2, 26)
    assert "';'" in d.message


def test_clean_code_of_each_kind_gives_nothing():
    src = ('%{\n#include <linux/sched.h>\nstatic int counter;\n'
           'static inline int twice(int v) { return 2 * v; }\n%}\n'
           'function f:long (a:long, b:string) %{ /* pure */\n'
           '  if (STAP_ARG_a > 0) STAP_RETURN(twice(STAP_ARG_a));\n'
           '  strlcpy(STAP_RETVALUE, STAP_ARG_b, MAXSTRINGLEN);\n%}\n'
           'function g() %{ STAP_RETVALUE = 1; counter++; %}\n'
           'probe begin { x = %{ counter + 1 %} }\n')
    out = []
    for d in decls(src):
        if isinstance(d, A.TopEmbedded):
            out += check_embedded(d.code, d.span, None, "toplevel")
        elif isinstance(d, A.FunctionDecl):
            out += check_embedded(d.body.code, d.body.span, [p.name for p in d.params],
                                  "function")
        else:
            e = d.body.statements[0].expr.right
            assert isinstance(e, A.EmbeddedExpr)
            out += check_embedded(e.code, e.span, None, "expr")
    assert out == []


def test_expression_error():
    (d,) = decls("probe begin { x = %{ 1 + %} }")
    e = d.body.statements[0].expr.right
    (w,) = check_embedded(e.code, e.span, None, "expr")
    assert w.span.start >= e.span.start and w.span.end <= e.span.end


def test_stap_arg_must_name_a_parameter():
    (d,) = check_fn("function f:long (count:long) %{ STAP_RETVALUE = STAP_ARG_cnt; %}")
    assert d.code == "embedded-c-arg"
    assert "'STAP_ARG_cnt'" in d.message and "parameters: count" in d.message
    assert "pass 4" in d.message
    assert d.span.source.text[d.span.start:d.span.end] == "STAP_ARG_cnt"
    assert check_fn("function f:long (count:long) %{ STAP_RETVALUE = STAP_ARG_count; %}") == []


def test_retvalue_without_return_type_is_fine():
    assert check_fn("function f () %{ STAP_RETVALUE = 0; %}") == []


@pytest.mark.parametrize("old,modern", [
    ("THIS->__retvalue", "STAP_RETVALUE"), ("THIS->x", "STAP_ARG_x"), ("THIS->l_x", "STAP_ARG_x"),
])
def test_old_this_spellings_are_deprecated(old, modern):
    (d,) = check_fn(f"function f:long (x:long) %{{ {old} = 1; %}}")
    assert "deprecated" in d.tags and modern in d.message
    assert d.span.source.text[d.span.start:d.span.end].replace(" ", "") == old


def test_macros_and_conditionals_do_not_warn():
    code = ("function f:long (p:long) %{\n"
            "  struct task_struct *t; int n = 0;\n"
            "#if LINUX_VERSION_CODE > KERNEL_VERSION(5,0,0)\n"
            "  rcu_read_lock(); {\n"
            "#else\n"
            "  read_lock(&tasklist_lock); {\n"
            "#endif\n"
            "  for_each_process(t) {\n"
            "    n++;\n"
            "  }\n"
            "  list_for_each_entry(t, &current->children, sibling)\n"
            "    n++;\n"
            "  }\n"
            "  n += container_of(&t->tasks, struct task_struct, tasks)->pid;\n"
            "  char __user *u = (char __user *)(uintptr_t)STAP_ARG_p;\n"
            "  STAP_RETVALUE = n;\n"
            "%}\n")
    assert check_fn(code) == []


def test_normalise_keeps_offsets():
    code = "#define X(a) \\\n  (a)\n#ifdef Y\nint a;\n#else\nint b;\n#endif\nchar __user *p;"
    out = normalise(code)
    assert len(out) == len(code) and out.count("\n") == code.count("\n")
    assert "int a;" in out and "int b;" not in out and "__user" not in out


def test_non_ascii_and_garbage_never_crash():
    src = 'function f:long () %{ /* é→ */ int x = "ü"; x ++ + ; %}'
    (d,) = check_fn(src)
    text = d.span.source.text
    # the missing operand is placed between '+' and ';' (character, not byte, offsets)
    assert text.index("++ +") + 4 <= d.span.start <= text.index("; %}")
    rnd = random.Random(7)
    junk = "".join(rnd.choice("{}()[];,#\\\"'*/%<>x \n\t\x00é") for _ in range(5000))
    t = time.time()
    out = check_embedded(junk, decls("function f () %{ x %}")[0].body.span, [], "function")
    assert time.time() - t < 5
    assert all(d.severity == Severity.WARNING for d in out)


def _library_blocks():
    """Every %{ %} of the installed library: function bodies, top level, expressions."""
    lib = load_library([], pp_env(StapOptions()))
    blocks = []

    def walk(n):
        if isinstance(n, A.EmbeddedExpr):
            blocks.append((n.code, n.span, None, "expr"))
        for c in A.iter_children(n):
            if isinstance(c, A.Node):
                walk(c)
    for f in lib.files:
        for d in f.result.file.decls:
            if isinstance(d, A.FunctionDecl) and isinstance(d.body, A.EmbeddedCode):
                blocks.append((d.body.code, d.body.span, [p.name for p in d.params], "function"))
            elif isinstance(d, A.TopEmbedded):
                blocks.append((d.code, d.span, None, "toplevel"))
            else:
                walk(d)
    return blocks


@pytest.fixture(scope="module")
def library_blocks():
    blocks = _library_blocks()
    if len(blocks) < 4000 or sum(b[3] == "function" for b in blocks) < 200:
        pytest.fail("the tapset library is missing or small: install systemtap "
                    "(scripts/setup.sh does)")
    return blocks


def test_tapset_library_gives_almost_no_false_warnings(library_blocks):
    warnings = [d for b in library_blocks for d in check_embedded(*b)]
    assert len(warnings) <= 3, [d.format() for d in warnings]


def test_injected_errors_are_found(library_blocks):
    """Break one statement in each function block three ways; most must be caught."""
    rnd = random.Random(1)
    tried = found = 0
    for code, span, params, where in library_blocks:
        ends = [m.start() for m in re.finditer(r";[ \t]*\n", code)]
        if where != "function" or not ends:
            continue
        k = rnd.choice(ends)
        if code[code.rfind("\n", 0, k) + 1:].lstrip().startswith("#"):
            continue
        for broken in (code[:k] + ")" + code[k:], code[:k] + " @@ " + code[k:]):
            tried += 1
            src = SourceFile("m", "%{" + broken + "%}")
            if any(d.code == "embedded-c-syntax"
                   for d in check_embedded(broken, Span(src, 0, len(src.text)), params, where)):
                found += 1
    assert tried > 200
    assert found / tried > 0.8, f"{found}/{tried}"
