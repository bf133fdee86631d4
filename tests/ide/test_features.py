"""ide features beyond the fixtures: settings, hints, pass 2, actions, folding,
tokens, symbols, and a machine without tapsets, BTF or tracefs."""

from __future__ import annotations

from stap_ls.ide.analysis import DeclCache, analyze, full_environment, quick_environment
from stap_ls.ide.completion import complete
from stap_ls.ide.config import Settings, settings_from
from stap_ls.ide.hover import hover
from stap_ls.ide.navigation import document_symbols, rename
from stap_ls.ide.structure import code_actions, folding_ranges
from stap_ls.ide.tokens import semantic_tokens
from stap_ls.targets.model import TargetModel
from stap_ls.text import Severity
from tests.ide.conftest import analysis_of


def test_settings_from_vscode_section():
    s = settings_from({"stap-ls": {"tapsetDirs": ["/a"], "kernelRelease": "6.1.0-56-amd64",
                                   "guru": True, "privilege": "stapusr", "scriptArgs": ["x"],
                                   "defines": ["N=1"], "engine": "bpf"}})
    o = s.options()
    assert o.include_dirs == ["/a"] and o.kernel_release == "6.1.0-56-amd64" and o.guru
    assert o.privilege == "stapusr" and o.script_args == ["x"] and o.engine == "bpf"
    assert s.stap_args() == ["-I", "/a", "-r", "6.1.0-56-amd64", "-g", "--privilege=stapusr",
                             "-D", "N=1"]


def test_bad_settings_are_reported_not_fatal():
    s = settings_from({"guru": "yes", "privilege": "root", "tapsetDirs": 3})
    assert not s.guru and s.privilege == "stapdev" and s.tapset_dirs == ()
    assert len(s.problems) == 3
    assert settings_from("nonsense").problems


def test_missing_script_argument_is_a_hint(env):
    a, _ = analysis_of(env, "probe begin { printf(\"%s %d\\n\", @1, $2) }\n", pass2=False)
    assert [d.severity for d in a.diagnostics] == [Severity.HINT, Severity.HINT]
    assert "$2 is not set" in a.diagnostics[1].message
    with_args = Settings(script_args=("a", "2"), script_args_given=True)
    e2 = quick_environment(with_args)
    b = analyze("u", "/tmp/z.stp", "probe begin { print($3) }", 1, e2, DeclCache())
    assert b.diagnostics[0].severity == Severity.ERROR
    assert "out of range" in b.diagnostics[0].message


def test_pass2_diagnostics_and_types(env):
    a, _ = analysis_of(env, "global g\nprobe begin { g = \"s\"; g = 1 }\n")
    assert a.elab is not None, "pass 2 did not run"
    assert a.pass2 is not None, a.elab.note
    msgs = [d.message for d in a.diagnostics]
    assert any("type mismatch" in m for m in msgs), msgs


def test_similar_code_action(env):
    a, _ = analysis_of(env, "probe begin { print(execnam()) }\n")
    diags = a.diagnostics
    assert a.pass2 is not None, a.elab.note if a.elab else "pass 2 did not run"
    acts = code_actions(a, 0, len(a.source.text), diags)
    assert acts, [d.message for d in diags]
    (span, new), = acts[0].edits
    assert a.source.text[span.start:span.end] == "execnam" and new == "execname"


def test_deprecated_this_action(env):
    from stap_ls.text import Diagnostic, SourceFile, Span
    src = SourceFile("/tmp/d.stp", "function f:long(a:long) %{ THIS->__retvalue = THIS->a; %}")
    d = Diagnostic(Severity.WARNING, "THIS-> is deprecated", Span(src, 27, 54), "x",
                   tags=("deprecated",))
    a, _ = analysis_of(env, src.text, pass2=False)
    acts = code_actions(a, 0, 60, [d])
    assert [n for _, n in acts[0].edits] == ["STAP_RETVALUE", "STAP_ARG_a"]


def test_folding_tokens_symbols(env):
    text = ("# one\n# two\n@define M %( 1 %)\nglobal g\n"
            "probe begin {\n  %( arch == \"nosucharch\" %? g = 1 %: g = 2 %)\n}\n"
            "function f() %{\n  /* c */ int x = 1;\n%}\n")
    a, _ = analysis_of(env, text, pass2=False)
    folds = {(a.source.position(f.start).line, a.source.position(f.end - 1).line, f.kind)
             for f in folding_ranges(a)}
    assert (1, 2, "comment") in folds and (5, 7, "region") in folds and (8, 10, "region") in folds
    toks = semantic_tokens(a)
    inactive = [text[t.start:t.end] for t in toks if "inactive" in t.modifiers]
    assert inactive == ["g", "=", "1"]
    c_types = {(text[t.start:t.end], t.type) for t in toks if t.start > text.index("%{")}
    assert ("int", "type") in c_types and ("/* c */", "comment") in c_types
    # a %{ %} function needs guru mode: it is an error, not a declaration
    assert [s.name for s in document_symbols(a)] == ["M", "g", "begin"]


def test_rename_refuses_library_symbols(env):
    a, off = analysis_of(env, "probe begin { print(exec$0name()) }", pass2=False)
    r = rename(a, off, "foo", [])
    assert r.error and "tapset library" in r.error
    a, off = analysis_of(env, "global x\nprobe begin { x$0 = 1 }", pass2=False)
    assert rename(a, off, "1bad", []).error


def test_machine_without_tapsets_btf_or_tracefs(monkeypatch, tmp_path):
    monkeypatch.setenv("SYSTEMTAP_TAPSET", str(tmp_path / "nonexistent"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    empty = tmp_path / "empty"
    empty.mkdir()

    def model(opts):
        return TargetModel(opts, btf_path=str(empty / "vmlinux"),
                           kallsyms_path=str(empty / "kallsyms"), tracefs_root=str(empty))

    e = full_environment(Settings(), model_factory=model)
    assert e.problems and "no tapset library" in e.problems[0]
    a = analyze("u", "/tmp/n.stp", "probe kernel.function(\"vfs_read\") { print($f) }\n"
                "probe begin { x = }\n", 1, e, DeclCache())
    assert [d.message for d in a.diagnostics if d.severity == Severity.ERROR][:1] == \
        ["expected literal string or number"]
    text = a.source.text
    c = complete(a, text.index("$f") + 2)
    assert all(i.kind == "text" for i in c.items)          # nothing known, no crash
    c = complete(a, text.index("vfs_read") + 3)
    assert c.items == []
    h = hover(a, text.index("$f") + 1)
    assert h is not None and "$f" in h.markdown
