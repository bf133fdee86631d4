"""Tests of stap_ls.sema.tapdoc, the tapset documentation index.

The main check is against the real ``systemtap-doc`` man pages: every
``function::*`` and ``probe::*`` page in /usr/share/man/man3 must be found in the
index built from the installed tapset library with the same summary line,
argument/value names and synopsis.  The rest are unit tests on crafted files in
tests/data/sema/tapdoc/ and on the disk cache.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from stap_ls.sema import tapdoc
from stap_ls.sema.tapdoc import (TapsetDocIndex, build_index, read_tapset_file, scan_text,
                                 tapset_search_dirs)
from stap_ls.text import Severity

DATA = Path(__file__).resolve().parents[1] / "data" / "sema" / "tapdoc"
MAN3 = Path("/usr/share/man/man3")
TAPSET_ROOT = Path(tapdoc.DEFAULT_TAPSET_ROOT)
RELEASE = "6.1.0-56-amd64"

#: man pages without a NAME section (only "SEE ALSO"): the man page generator
#: (systemtap's doc/SystemTap_Tapset_Reference/manpageus) names pages by grepping
#: header lines, while their content comes from kernel-doc, so a header kernel-doc
#: did not turn into a section of its own leaves an empty page behind.
NO_NAME_PAGES = {
    # string.stp: "sfunction - str_replace ..." and "sfunction - strtol - ...": the
    # grep takes "-" as the name; the content went to function::str_replace/strtol.
    "function::-",
    # dev.stp: "sfunction MKDEF - ..." documents "function MKDEV"; the content went
    # to function::MKDEV.
    "function::MKDEF",
    # signal.stp: "sfunction sa_handler - ..." documents "function sa_handler_str".
    "function::sa_handler",
    # floatingpoint.stp: the comment opens with "/*", not "/**": not kernel-doc.
    "function::fp_div",
    # rpc.stp: the comment opens with "/* ", not "/**": not kernel-doc.
    "probe::sunrpc.svc.authorise",
}


def _need(path: Path, package: str) -> None:
    if not path.exists():
        pytest.fail(f"{path} is missing: install the Debian package '{package}' "
                    f"(scripts/setup.sh does)")


def _roff_text(s: str) -> str:
    """The text of a roff source line as man renders it (escapes used by these pages)."""
    s = re.sub(r"\\f(\(..|\[[^]]*\]|.)", "", s)          # font changes
    s = s.replace("\\*(Aq", "'").replace("\\(aq", "'")
    s = s.replace("\\-", "-").replace("\\&", "").replace("\\e", "\\")
    return " ".join(s.split())


def _man_pages() -> dict[str, str]:
    """``function::X``/``probe::Y`` -> roff source of every systemtap-doc page."""
    _need(MAN3 / "stapprobes.3stap.gz", "systemtap-doc")
    out = {}
    for p in sorted(MAN3.iterdir()):
        m = re.match(r"^((?:function|probe)::.*)\.3stap\.gz$", p.name)
        if m:
            with gzip.open(p, "rt", encoding="utf-8", errors="replace") as f:
                out[m.group(1)] = f.read()
    return out


def _man_name_summary(roff: str) -> str | None:
    m = re.search(r'^\.SH "NAME"\n(.*)$', roff, re.M)
    if not m:
        return None
    return _roff_text(m.group(1)).split(" - ", 1)[1]


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    return _man_pages()


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> TapsetDocIndex:
    _need(TAPSET_ROOT / "context.stp", "systemtap")
    index, _ = build_index(cache_dir=str(tmp_path_factory.mktemp("cache")))
    return index


# ---------------------------------------------------------------------------
# against the real man pages

def test_every_man_page_summary_is_in_the_index(pages, library):
    matched, problems, no_name = 0, [], set()
    for page, roff in pages.items():
        want = _man_name_summary(roff)
        if want is None:
            no_name.add(page)
            continue
        kind, name = page.split("::", 1)
        docs = library.lookup(kind, name)
        if not docs:
            problems.append(f"{page}: not in the index (man summary: {want!r})")
        elif docs[0].man_summary != want:
            problems.append(f"{page}: index {docs[0].man_summary!r} != man {want!r}")
        else:
            matched += 1
    total = len(pages) - len(no_name)
    print(f"\ntapdoc: {matched}/{total} man page summaries matched "
          f"({len(pages)} pages, {len(no_name)} without a NAME section)")
    assert not problems, "\n".join(problems)
    assert no_name == NO_NAME_PAGES, f"pages without NAME section changed: {sorted(no_name)}"
    assert matched == total and total >= 700


def test_no_name_pages_are_explained_by_the_tapset_sources(library):
    # the content of the misnamed pages is under the declared function's name
    assert library.get("function", "MKDEV").summary.startswith("Creates a value")
    assert library.get("function", "MKDEV").header_name == "MKDEF"
    assert library.get("function", "sa_handler_str").header_name == "sa_handler"
    assert library.get("function", "str_replace").header_name == ""
    assert library.get("function", "MKDEF") is None
    # plain "/*" comments are not documentation
    assert library.get("function", "fp_div") is None
    assert library.get("probe", "sunrpc.svc.authorise") is None
    codes = {(d.code, os.path.basename(d.span.source.name)) for d in library.diagnostics
             if d.span is not None}
    assert ("tapdoc-name-mismatch", "dev.stp") in codes
    assert ("tapdoc-name-mismatch", "signal.stp") in codes


def test_arguments_and_synopsis_match_man_pages(pages, library):
    problems = []
    for page, roff in pages.items():
        if _man_name_summary(roff) is None:
            continue
        kind, name = page.split("::", 1)
        docs = library.lookup(kind, name)
        sec = re.search(r'^\.SH "(?:ARGUMENTS|VALUES)"\n(.*?)(?=^\.SH|\Z)', roff, re.M | re.S)
        man_args = {_roff_text(x) for x in re.findall(r"^\\fI(.*?)\\fR$", sec.group(1), re.M)} \
            if sec else set()
        # man leaves out arguments whose description is empty ("@count:")
        ours = {p for d in docs for p, t in d.params if t}
        if man_args != ours:
            problems.append(f"{page}: args man-only {sorted(man_args - ours)} "
                            f"index-only {sorted(ours - man_args)}")
        syn = re.search(r'^\.SH "SYNOPSIS"\n(.*?)(?=^\.SH)', roff, re.M | re.S).group(1)
        man_syn = [re.sub(r"^\d+\) ", "", _roff_text(x)) for x in syn.splitlines()
                   if x.strip() and not x.startswith(".")]
        # the generator prints an untyped parameter as "name:"; the index as "name"
        man_syn = [re.sub(r":([,)])", r"\1", x) for x in man_syn]
        if man_syn != [d.synopsis for d in docs]:
            problems.append(f"{page}: synopsis man {man_syn} index {[d.synopsis for d in docs]}")
    assert not problems, "\n".join(problems)


def test_roff_decoding_agrees_with_man(pages):
    """The NAME-line decoding above is checked against the real ``man`` on pages
    using every escape kind, plus a spread of others."""
    if shutil.which("man") is None:
        pytest.fail("man is missing: install the Debian package 'man-db'")
    names = sorted(p for p, r in pages.items() if _man_name_summary(r) is not None)
    pick = {p for p in names if re.search(r'\\f|\\\*|\\&', re.search(
        r'^\.SH "NAME"\n(.*)$', pages[p], re.M).group(1))}
    pick |= set(names[::40])
    assert len(pick) >= 20
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAN")}
    env.update(LC_ALL="C", MANWIDTH="2000")
    for page in sorted(pick):
        out = subprocess.run(["man", "-P", "cat", str(MAN3 / f"{page}.3stap.gz")],
                             capture_output=True, text=True, env=env, timeout=60).stdout
        lines = out.splitlines()
        assert "NAME" in lines, f"man -P cat {page}: {out[:500]!r}"
        i = lines.index("NAME")
        rendered = " ".join(lines[i + 1].split())
        assert rendered == f"{page} - {_man_name_summary(pages[page])}"


def test_markdown_of_an_overloaded_function_reads_like_man(library):
    md = library.to_markdown("function", "user_string_n")
    assert md.startswith("**function::user_string_n** — Retrieves string of given length")
    assert "1) user_string_n:string(addr:long,n:long)" in md
    assert "2) user_string_n:string(addr:long,n:long,err_msg:string)" in md
    assert "- `err_msg`: the error message to return" in md
    assert md.index("**Arguments**") < md.index("**Description**")
    assert "\n2) Returns the C string" in md
    assert library.to_markdown("probe", "no.such.probe") is None


def test_probe_values_and_context(library):
    doc = library.get("probe", "ioblock.request")
    assert doc.file.endswith("linux/ioblock.stp")
    names = [p for p, _ in doc.params]
    assert names[:3] == ["name", "devname", "ino"] and "p_start_sect" in names
    assert doc.context == "The process makes block I/O request"
    md = doc.to_markdown()
    assert "**Values**" in md and "**Context**" in md and "```stap\nioblock.request\n```" in md


# ---------------------------------------------------------------------------
# directory choice, compared with the real stap

def _stap_searched(tmp_path: Path, *args: str) -> list[str]:
    stap = shutil.which("stap")
    if stap is None:
        pytest.fail("stap is missing: install the Debian package 'systemtap'")
    if not Path(f"/lib/modules/{RELEASE}").is_dir():
        pytest.fail(f"kernel headers {RELEASE} are missing: install linux-headers-amd64")
    r = subprocess.run([stap, "-r", RELEASE, "-vvv", "-p1", *args, "-e", "probe begin {}"],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    searched = re.findall(r'^Searched: "([^"]+)"', r.stderr, re.M)
    assert searched, r.stderr[-2000:]
    return [os.path.normpath(s) for s in searched]


def test_search_dirs_match_stap(tmp_path):
    assert tapset_search_dirs(release=RELEASE) == _stap_searched(tmp_path)


@pytest.mark.parametrize("runtime", ["kernel", "bpf"])
def test_search_dirs_with_version_dirs_match_stap(tmp_path, runtime):
    """A tapset tree with version and arch directories, given to stap with -I."""
    root = tmp_path / "tapsets"
    for d in ("linux/x86_64", "linux", "linux/6.1.0", "linux/6.1", "bpf", "bpf/6.1.0",
              "6.1.0-56-amd64/x86_64", "6.1.0-56-amd64", "6.1/x86_64", "6.1", "x86_64", "i386", ""):
        (root / d).mkdir(parents=True, exist_ok=True)
        (root / d / "t.stp").write_text(f"function f_{abs(hash(d))} () {{}}\n")
    searched = _stap_searched(tmp_path, f"--runtime={runtime}", "-I", str(root))
    from_stap = [s for s in searched if s.startswith(str(root))]
    assert tapset_search_dirs(str(root), runtime=runtime, release=RELEASE) == from_stap
    assert len(from_stap) >= 7


# ---------------------------------------------------------------------------
# crafted comments

@pytest.fixture(scope="module")
def styles():
    path = str(DATA / "styles.stp")
    docs, diags = scan_text(read_tapset_file(path), path)
    return TapsetDocIndex(docs, diags), diags


def test_sections_params_and_multiline_declaration(styles):
    idx, _ = styles
    d = idx.get("function", "plain_fn")
    assert d.summary == "A plain function summary"
    assert d.params == [("addr", "the address to read"),
                        ("n", "how many bytes, continued on a second line")]
    assert d.description == ("First line of the description, second line of the "
                             "description.\n\nSecond paragraph.")
    assert d.context == "Any probe."
    assert d.returns == "the number of bytes read, or -1 on error."
    assert d.sections == [("Note", "Be careful with register() and @addr.")]
    assert d.synopsis == "plain_fn:long(addr:long,n:long)"
    assert d.line == 4 and d.file.endswith("styles.stp")


def test_header_variants(styles):
    idx, _ = styles
    assert idx.get("function", "untyped_fn").summary == "No space before the dash"
    assert idx.get("function", "untyped_fn").synopsis == "untyped_fn(handler)"
    # "sfunction - dash_first - ...": named by the declaration, summary kept whole
    assert idx.get("function", "dash_first").summary == "dash_first - The header starts with a dash"
    # "--" keeps the second dash, as the man pages do
    assert idx.get("probe", "demo.*").summary == "- Every demo probe (double dash, wildcard name)"
    assert idx.get("function", "bpf_style").summary == ""
    assert idx.get("function", "bpf_style").description == "a header without a summary."
    assert idx.get("function", "nameless_header").summary == ""
    assert idx.get("probe", "one.liner").summary == "The comment opens and closes on one line"
    assert idx.get("macro", "demo_macro").synopsis == "@demo_macro(x)"


def test_misnamed_function_is_named_by_its_declaration(styles):
    idx, diags = styles
    assert idx.get("function", "wrong_name") is None
    d = idx.get("function", "right_name")
    assert d.header_name == "wrong_name" and d.synopsis == "right_name:long()"
    msgs = [g.format() for g in diags]
    assert any("styles.stp:40:1: warning: documentation names 'wrong_name' but documents "
               "function 'right_name' [tapdoc-name-mismatch]" in m for m in msgs), msgs


def test_probe_named_by_header_not_by_helper_probe(styles):
    idx, _ = styles
    d = idx.get("probe", "demo.read")
    assert d.synopsis == "demo.read"
    assert idx.get("probe", "__demo.read.helper") is None
    assert d.params == [("name", "name of the probe point"),
                        ("bytes", "- the number of bytes (dash style)"),
                        ("flags", "see below FLAG_A 1 first flag FLAG_B 2 second flag"),
                        ("undocumented", "")]
    assert d.context == "The process doing the read."


def test_overloads_are_kept_in_order(styles):
    idx, _ = styles
    forms = idx.lookup("function", "over")
    assert [f.synopsis for f in forms] == ["over:long(a:long)", "over:long(a:long,b:long)"]
    md = idx.to_markdown("function", "over")
    assert "1) over:long(a:long)\n2) over:long(a:long,b:long)" in md
    assert md.count("- `a`:") == 1 and "- `b`: second argument" in md


def test_non_doc_comments_are_ignored(styles):
    idx, diags = styles
    assert idx.get("function", "_helper") is None
    assert idx.get("function", "single_star") is None
    assert [g.code for g in diags] == ["tapdoc-name-mismatch", "tapdoc-no-name"]
    assert all(g.severity == Severity.WARNING for g in diags)
    assert "styles.stp:117:1" in diags[1].format()


def test_unterminated_comment_is_a_diagnostic():
    path = str(DATA / "unterminated.stp")
    docs, diags = scan_text(read_tapset_file(path), path)
    assert [d.name for d in docs] == ["good"]
    assert len(diags) == 1
    assert diags[0].format().endswith(
        "unterminated.stp:6:1: warning: unterminated '/**' documentation comment "
        "[tapdoc-unterminated]")


def test_bad_bytes_and_empty_files(tmp_path):
    index, diags = build_index([str(DATA)], cache_dir=str(tmp_path))
    assert index.get("function", "latin1").summary.startswith("Caf\ufffd bytes")
    assert index.get("function", "good") is not None
    assert {d.code for d in diags} == {"tapdoc-name-mismatch", "tapdoc-no-name",
                                       "tapdoc-unterminated"}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["/**", "*/", " * sfunction ", " * probe ", "a.b", " - ",
                                 "@x:", "Description:", "\n", "function f(a) {}",
                                 "probe p = q {}", "%(", "@define m(x) %( x %)", " ",
                                 "-", ":", "x", "\t*", "\x00", "é"]), max_size=40))
def test_scanner_never_raises(parts):
    text = "".join(parts)
    docs, diags = scan_text(text, "<fuzz>")
    for d in docs:
        assert d.name and d.kind in ("function", "probe", "macro")
        assert 1 <= d.line <= text.count("\n") + 1
        d.to_markdown()
    for g in diags:
        g.format()


# ---------------------------------------------------------------------------
# the disk cache

def _tree(tmp_path: Path) -> Path:
    lib = tmp_path / "lib"
    lib.mkdir()
    shutil.copy(DATA / "styles.stp", lib / "styles.stp")
    return lib


def test_cache_cold_warm_and_invalidation(tmp_path, monkeypatch):
    lib = _tree(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    cold, _ = build_index([str(lib)])
    assert not cold.from_cache
    files = list((tmp_path / "xdg" / "stap-ls").glob("tapdoc-*.json"))
    assert len(files) == 1
    warm, wdiags = build_index([str(lib)])
    assert warm.from_cache
    assert [d.to_json() for d in warm.docs] == [d.to_json() for d in cold.docs]
    assert [g.format() for g in wdiags] == [g.format() for g in cold.diagnostics]
    # a changed file (size and mtime) invalidates the cache
    with open(lib / "styles.stp", "a") as f:
        f.write("\n/**\n * sfunction added_later - Appended\n */\nfunction added_later () {}\n")
    again, _ = build_index([str(lib)])
    assert not again.from_cache and again.get("function", "added_later") is not None
    assert build_index([str(lib)])[0].from_cache
    # same size, new mtime only
    st = os.stat(lib / "styles.stp")
    os.utime(lib / "styles.stp", ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert not build_index([str(lib)])[0].from_cache
    # a new file in the directory
    (lib / "new.stp").write_text("/**\n * probe brand.new - New\n */\nprobe brand.new = begin {}\n")
    idx, _ = build_index([str(lib)])
    assert not idx.from_cache and idx.get("probe", "brand.new") is not None


@pytest.mark.parametrize("garbage", [b"", b"\x00\xff not json", b'{"format": 1, "files": [',
                                     b'{"format": 1, "files": "x", "docs": 3}', b"[1, 2]",
                                     b"null"])
def test_corrupted_cache_is_rebuilt(tmp_path, garbage):
    lib = _tree(tmp_path)
    cache = tmp_path / "c"
    build_index([str(lib)], cache_dir=str(cache))
    (path,) = cache.glob("tapdoc-*.json")
    path.write_bytes(garbage)
    idx, _ = build_index([str(lib)], cache_dir=str(cache))
    assert not idx.from_cache and idx.get("function", "plain_fn") is not None
    assert json.loads(path.read_text())["format"] == tapdoc.CACHE_FORMAT
    assert build_index([str(lib)], cache_dir=str(cache))[0].from_cache


def test_cache_entry_with_wrong_doc_fields_is_rebuilt(tmp_path):
    lib = _tree(tmp_path)
    cache = tmp_path / "c"
    build_index([str(lib)], cache_dir=str(cache))
    (path,) = cache.glob("tapdoc-*.json")
    data = json.loads(path.read_text())
    data["docs"][0]["no_such_field"] = 1
    path.write_text(json.dumps(data))
    idx, _ = build_index([str(lib)], cache_dir=str(cache))
    assert not idx.from_cache and len(idx.docs) == len(data["docs"])


def test_unwritable_cache_is_reported_not_raised(tmp_path):
    lib = _tree(tmp_path)
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    idx, diags = build_index([str(lib)], cache_dir=str(blocker / "sub"))
    assert idx.get("function", "plain_fn") is not None
    infos = [d for d in diags if d.code == "tapdoc-cache"]
    assert len(infos) == 1 and "cannot write tapset documentation cache" in infos[0].message


def test_missing_directory_gives_empty_index(tmp_path):
    idx, diags = build_index([str(tmp_path / "nope")], use_cache=False)
    assert len(idx) == 0
    assert [d.message for d in diags] == [f"tapset directory {tmp_path / 'nope'} does not exist"]
