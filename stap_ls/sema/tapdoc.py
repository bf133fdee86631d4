"""Tapset documentation index: the kernel-doc comments of the tapset library.

SystemTap's tapset files document their functions, probe aliases and macros with
``/** ... */`` comments in the Linux kernel-doc style::

    /**
     * sfunction user_string_n - Retrieves string of given length from user space
     *
     * @addr: the user space address to retrieve the string from
     * @n: the maximum length of the string (if not null terminated)
     *
     * Description: Returns the C string of a maximum given length ...
     */
    function user_string_n:string (addr:long, n:long)

The header line is ``KIND NAME - summary`` where KIND is ``sfunction`` (or
``function``), ``probe`` or ``smacro``; ``@name: text`` lines are arguments (for a
probe alias: the variables it sets); ``Title: text`` starts a titled section
(``Description``, ``Context``, ``Returns``, ``Note`` ...).  These comments are
what ``man function::X`` / ``man probe::Y`` show; this module keeps them for hover.

How a comment gets its name (found by comparing with the ``systemtap-doc`` pages):

* the header is split at its first ``-``: ``print_ubacktrace_brief- Print``,
  ``nfsd.rename -NFS ...`` and ``netfilter.arp.in -- Called`` all work, the last
  one keeping ``- Called ...`` as its summary, as the man page does;
* a function is named by the declaration that follows the comment when there is
  one (``sfunction MKDEF`` documents ``function MKDEV``; ``sfunction - strtol -
  ...`` documents ``strtol``), because that is the name the man page content uses;
  a probe alias or macro is named by its header (probe headers may document names
  no single declaration spells, and a wildcard name is kept verbatim).

The scanner is a line scanner, independent of the parser, and never raises on
bad input: odd comments become :class:`Diagnostic` warnings.  Directory choice
follows stap (``tapset_search_dirs``), and a built index is cached on disk as
JSON, keyed by the directories and invalidated by any tapset file's mtime or
size; a corrupted cache is rebuilt.  I/O is confined to ``read_tapset_file``
(tapset text), ``_list_tapset_files`` (directory listing) and the two cache
functions.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path

from stap_ls.text import Diagnostic, Severity, SourceFile, Span

__all__ = [
    "TapsetDoc", "TapsetDocIndex", "scan_text", "build_index", "tapset_search_dirs",
    "default_cache_dir", "read_tapset_file", "kerneldoc_plain", "DEFAULT_TAPSET_ROOT",
]

DEFAULT_TAPSET_ROOT = "/usr/share/systemtap/tapset"
CACHE_FORMAT = 1  # bump when TapsetDoc or the scanner's output changes

#: diagnostic codes of this module
CODE_UNREADABLE = "tapdoc-unreadable"
CODE_UNTERMINATED = "tapdoc-unterminated"
CODE_NO_NAME = "tapdoc-no-name"
CODE_NAME_MISMATCH = "tapdoc-name-mismatch"
CODE_CACHE = "tapdoc-cache"

_KINDS = {"sfunction": "function", "function": "function", "probe": "probe",
          "smacro": "macro"}
#: runtime -> the tapset subdirectory stap adds for it
_RUNTIME_DIRS = {"kernel": "linux", "dyninst": "dyninst", "bpf": "bpf"}

_OPEN_RE = re.compile(r"^[ \t]*/\*\*(?![*/])")
_HEADER_RE = re.compile(r"^(sfunction|function|probe|smacro)(?:\s+(.*))?$")
#: ``@name: text``; also ``@name - text`` (kept with its dash, as the man page does)
_PARAM_RE = re.compile(r"^@([\w.]+|\.\.\.)\s*(?::|(?=-))(.*)$")
_SECTION_RE = re.compile(r"^([A-Za-z][\w ]{0,40}?)\s*:(?!//)(.*)$")
_FUNC_DECL_RE = re.compile(
    r"^\s*(?:private\s+)?function\s+([A-Za-z_]\w*)\s*(?::\s*(\w+))?\s*\(([^)]*)\)")
_PROBE_DECL_RE = re.compile(r"^\s*(?:private\s+)?probe\s+([^\s=,{]+)")
_MACRO_DECL_RE = re.compile(r"^\s*@define\s+(\w+)\s*(?:\(([^)]*)\))?")
_SKIP_LINE_RE = re.compile(r"^\s*(?:$|//|#|%\(|%\?|%:|%\))")


@dataclass(slots=True)
class TapsetDoc:
    """One documented tapset function, probe alias or macro."""

    kind: str                      # "function" | "probe" | "macro"
    name: str                      # as in ``man function::NAME`` / ``man probe::NAME``
    summary: str
    params: list[tuple[str, str]] = field(default_factory=list)
    description: str = ""
    context: str = ""
    returns: str = ""
    file: str = ""
    line: int = 0                  # 1-based line of the ``/**``
    #: ``name:type(arg:type,...)`` for a function, the name for a probe,
    #: ``@name(args)`` for a macro; empty when no declaration follows
    synopsis: str = ""
    #: other titled sections, in order: ("Note", "...")
    sections: list[tuple[str, str]] = field(default_factory=list)
    #: the name as the header line spells it (may differ from ``name``)
    header_name: str = ""

    @property
    def man_name(self) -> str:
        return f"{self.kind}::{self.name}"

    @property
    def man_summary(self) -> str:
        """The summary as ``man`` shows it (kernel-doc inline markup rendered)."""
        return kerneldoc_plain(self.summary)

    def to_markdown(self) -> str:
        """This one definition rendered for hover."""
        return _render([self])

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "TapsetDoc":
        d = dict(d)
        d["params"] = [(str(a), str(b)) for a, b in d.get("params", [])]
        d["sections"] = [(str(a), str(b)) for a, b in d.get("sections", [])]
        return cls(**d)


# ---------------------------------------------------------------------------
# scanning one file's text

def _comment_lines(raw: list[str]) -> list[str]:
    """Strip the ``*`` gutter of each line of a comment body."""
    out = []
    for line in raw:
        s = line.lstrip()
        if s.startswith("*") and not s.startswith("*/"):
            s = s[1:]
            if s.startswith(" "):
                s = s[1:]
        out.append(s.rstrip())
    return out


_INLINE_MARKUP = [
    (re.compile(r"\b(\w+)\(\)"), r"\1"),                  # func()   -> function reference
    (re.compile(r"@(\w+)"), r"\1"),                          # @param   -> parameter
    (re.compile(r"%([-\w]+)"), r"\1"),                       # %CONST   -> constant
    (re.compile(r"&((?:struct\s*)*\w+)"), r"\1"),             # &struct x -> structure name
]


def kerneldoc_plain(text: str) -> str:
    """Render kernel-doc inline markup as plain text, as the man pages do.

    kernel-doc turns ``name()`` into a highlighted function name *without* the
    parentheses, ``@arg`` into a parameter, ``%CONST`` into a constant and
    ``&struct foo`` into a structure name; the man pages show just the word.
    """
    for rx, rep in _INLINE_MARKUP:
        text = rx.sub(rep, text)
    return text


def _split_header(rest: str) -> tuple[str, str]:
    """``NAME - summary`` -> (name, summary); split at the first ``-``."""
    if "-" in rest:
        name, summary = rest.split("-", 1)
        return name.strip(), " ".join(summary.split())
    parts = rest.split(None, 1)
    if not parts:
        return "", ""
    return parts[0], " ".join(parts[1].split()) if len(parts) > 1 else ""


def _join(lines: list[str]) -> str:
    """Lines of one block -> text; blank lines separate paragraphs."""
    paras: list[str] = []
    cur: list[str] = []
    for ln in lines:
        if ln.strip():
            cur.append(ln.strip())
        elif cur:
            paras.append(" ".join(cur))
            cur = []
    if cur:
        paras.append(" ".join(cur))
    return "\n\n".join(paras)


@dataclass(slots=True)
class _Body:
    params: list[tuple[str, list[str]]] = field(default_factory=list)
    sections: list[tuple[str, list[str]]] = field(default_factory=list)


def _parse_body(lines: list[str]) -> _Body:
    body = _Body()
    # where continuation lines go: ("param", i) / ("section", i)
    target: tuple[str, int] | None = None
    for ln in lines:
        s = ln.strip()
        if not s:
            if target is not None and target[0] == "param":
                target = None          # a blank line ends an argument's text
            elif target is not None:
                body.sections[target[1]][1].append("")
            continue
        m = _PARAM_RE.match(s)
        if m:
            body.params.append((m.group(1), [m.group(2)]))
            target = ("param", len(body.params) - 1)
            continue
        m = _SECTION_RE.match(s)
        if m:
            body.sections.append((m.group(1).strip(), [m.group(2)]))
            target = ("section", len(body.sections) - 1)
            continue
        if target is None:
            # untitled text belongs to the description, as kernel-doc does
            body.sections.append(("Description", [s]))
            target = ("section", len(body.sections) - 1)
        elif target[0] == "param":
            body.params[target[1]][1].append(s)
        else:
            body.sections[target[1]][1].append(s)
    return body


def _find_declaration(lines: list[str], start: int) -> tuple[str, str, str] | None:
    """The declaration after a comment ending on line index ``start - 1``.

    Returns (keyword, name, synopsis) or None.  Blank lines, comments and
    preprocessor conditional lines in between are skipped.
    """
    i = start
    limit = min(len(lines), start + 12)
    while i < limit and _SKIP_LINE_RE.match(lines[i]):
        i += 1
    if i >= limit:
        return None
    text = " ".join(lines[i:i + 4])  # a function's parameter list may wrap
    m = _FUNC_DECL_RE.match(text)
    if m:
        name, rtype, args = m.group(1), m.group(2), m.group(3)
        arglist = ",".join(re.sub(r"\s+", "", a) for a in args.split(",") if a.strip())
        return "function", name, f"{name}{':' + rtype if rtype else ''}({arglist})"
    m = _PROBE_DECL_RE.match(lines[i])
    if m:
        return "probe", m.group(1), m.group(1)
    m = _MACRO_DECL_RE.match(text)
    if m:
        args = m.group(2)
        sig = f"@{m.group(1)}"
        if args is not None:
            sig += "(" + re.sub(r"\s+", "", args) + ")"
        return "macro", m.group(1), sig
    return None


def scan_text(text: str, file: str) -> tuple[list[TapsetDoc], list[Diagnostic]]:
    """All kernel-doc comments of one tapset file's text, in file order."""
    docs: list[TapsetDoc] = []
    diags: list[Diagnostic] = []
    src: SourceFile | None = None

    def warn(line_idx: int, message: str, code: str) -> None:
        nonlocal src
        if src is None:
            src = SourceFile(file, text)
        off = src.offset(line_idx + 1, 1)
        end = off + len(src.line_text(line_idx + 1))
        diags.append(Diagnostic(Severity.WARNING, message, Span(src, off, end),
                                code=code, kind="tapset doc"))

    lines = text.splitlines()
    i = 0
    n = len(lines)
    while i < n:
        m = _OPEN_RE.match(lines[i])
        if not m:
            i += 1
            continue
        open_idx = i
        first = lines[i][m.end():]
        raw: list[str] = []
        closed = False
        if "*/" in first:
            raw.append(first[:first.index("*/")])
            closed = True
        else:
            raw.append(first)
            i += 1
            while i < n:
                if "*/" in lines[i]:
                    raw.append(lines[i][:lines[i].index("*/")])
                    closed = True
                    break
                raw.append(lines[i])
                i += 1
        if not closed:
            warn(open_idx, "unterminated '/**' documentation comment", CODE_UNTERMINATED)
            break
        i += 1  # past the closing line
        body_lines = _comment_lines(raw)
        # the header is the first non-blank line
        k = 0
        while k < len(body_lines) and not body_lines[k].strip():
            k += 1
        if k == len(body_lines):
            continue
        hm = _HEADER_RE.match(body_lines[k].strip())
        if not hm:
            continue  # an ordinary comment, not kernel-doc
        kind = _KINDS[hm.group(1)]
        header_name, summary = _split_header(hm.group(2) or "")
        decl = _find_declaration(lines, i)
        name = header_name
        synopsis = ""
        if decl is not None and decl[0] == kind:
            synopsis = decl[2]
            if kind == "function" and decl[1] != header_name:
                if header_name:
                    warn(open_idx, f"documentation names '{header_name}' but documents "
                         f"function '{decl[1]}'", CODE_NAME_MISMATCH)
                name = decl[1]
            elif kind == "probe":
                # the next probe may be a helper (``__foo.kp``) of the documented
                # alias: the header's name is what the man page shows
                synopsis = ""
                if not name:
                    name = decl[1]
            elif not name:
                name = decl[1]
        if not name:
            warn(open_idx, f"'{hm.group(1)}' documentation comment without a name",
                 CODE_NO_NAME)
            continue
        if kind == "probe" and not synopsis:
            synopsis = name
        body = _parse_body(body_lines[k + 1:])
        doc = TapsetDoc(kind=kind, name=name, summary=summary, file=file,
                        line=open_idx + 1, synopsis=synopsis, header_name=header_name)
        doc.params = [(p, " ".join(" ".join(t).split())) for p, t in body.params]
        for title, tl in body.sections:
            txt = _join(tl)
            key = title.lower()
            if key == "description":
                doc.description = f"{doc.description}\n\n{txt}".strip()
            elif key == "context":
                doc.context = f"{doc.context}\n\n{txt}".strip()
            elif key in ("returns", "return"):
                doc.returns = f"{doc.returns}\n\n{txt}".strip()
            elif txt or key not in ("arguments", "values"):
                doc.sections.append((title, txt))
        docs.append(doc)
    return docs, diags


# ---------------------------------------------------------------------------
# rendering

def _md_escape(s: str) -> str:
    return re.sub(r"([\\`*\[\]<>])", r"\\\1", s)


def _render(docs: list[TapsetDoc]) -> str:
    """Markdown close to ``man KIND::NAME``: name, synopsis, arguments, text.

    Several definitions of one name (overloads) are numbered as the man page
    numbers them.
    """
    first = docs[0]
    numbered = len(docs) > 1
    out = [f"**{first.kind}::{_md_escape(first.name)}** — {_md_escape(first.summary)}".rstrip(" —"),
           "", "```stap"]
    for j, d in enumerate(docs, 1):
        syn = d.synopsis or d.name
        out.append(f"{j}) {syn}" if numbered else syn)
    out.append("```")
    params: dict[str, str] = {}
    for d in docs:
        for p, t in d.params:
            params.setdefault(p, t)
    title = "Values" if first.kind == "probe" else "Arguments"
    if params:
        out += ["", f"**{title}**", ""]
        out += [f"- `{p}`: {_md_escape(t)}" for p, t in params.items()]
    elif first.kind == "function":
        out += ["", f"**{title}**", "", "None"]

    def block(label: str, texts: list[str]) -> None:
        texts = [t for t in texts if t]
        if not texts:
            return
        out.extend(["", f"**{label}**", ""])
        if numbered and len(texts) > 1:
            out.append("\n\n".join(f"{j}) {_md_escape(t)}" for j, t in enumerate(texts, 1)))
        else:
            out.append(_md_escape(texts[0]))

    block("Description", [d.description for d in docs])
    block("Context", [d.context for d in docs])
    block("Returns", [d.returns for d in docs])
    seen: set[tuple[str, str]] = set()
    for d in docs:
        for t, txt in d.sections:
            if (t, txt) not in seen:
                seen.add((t, txt))
                block(t, [txt])
    out += ["", "  \n".join(f"*{os.path.basename(d.file)}:{d.line}*" for d in docs)]
    return "\n".join(out)


# ---------------------------------------------------------------------------
# the index

class TapsetDocIndex:
    """Documentation of a tapset library, looked up by kind and name."""

    def __init__(self, docs: list[TapsetDoc], diagnostics: list[Diagnostic] | None = None,
                 from_cache: bool = False) -> None:
        self.docs = docs
        self.diagnostics = diagnostics or []
        self.from_cache = from_cache
        self._by_key: dict[tuple[str, str], list[TapsetDoc]] = {}
        for d in docs:
            lst = self._by_key.setdefault((d.kind, d.name), [])
            # the same definition read from two files (arch overrides) once only
            if not any(x.synopsis == d.synopsis and x.summary == d.summary
                       and x.description == d.description for x in lst):
                lst.append(d)

    def __len__(self) -> int:
        return len(self._by_key)

    def lookup(self, kind: str, name: str) -> list[TapsetDoc]:
        """Every documented definition of ``kind::name`` in search order."""
        return list(self._by_key.get((kind, name), ()))

    def get(self, kind: str, name: str) -> TapsetDoc | None:
        lst = self._by_key.get((kind, name))
        return lst[0] if lst else None

    def names(self, kind: str) -> list[str]:
        return sorted(n for k, n in self._by_key if k == kind)

    def to_markdown(self, kind: str, name: str) -> str | None:
        """All definitions of ``kind::name`` rendered as ``man`` would, or None."""
        lst = self._by_key.get((kind, name))
        return _render(lst) if lst else None

    @classmethod
    def build(cls, dirs: list[str] | None = None, cache_dir: str | None = None,
              use_cache: bool = True) -> "TapsetDocIndex":
        return build_index(dirs, cache_dir=cache_dir, use_cache=use_cache)[0]


def tapset_search_dirs(root: str = DEFAULT_TAPSET_ROOT, arch: str = "x86_64",
                       runtime: str = "kernel", release: str | None = None) -> list[str]:
    """The tapset directories stap reads, most specific first, that exist.

    Observed with ``stap -I DIR -vvv`` (``Searched: "DIR"`` lines, kernel and bpf
    runtimes): the runtime's subdirectory (``linux/``, ``bpf/``) before the root,
    and within each, kernel-version directories (RELEASE, VERSION, FAMILY, each
    with ARCH, then without) before ARCH before the directory itself.  stap
    prints only directories holding tapset files; this returns every existing one.
    """
    suffixes: list[str] = []
    if release:
        version = release.split("-", 1)[0]
        bases = [release]
        if version != release:
            bases.append(version)
        if version.count(".") >= 2:
            bases.append(version.rsplit(".", 1)[0])
        for b in bases:
            suffixes += [f"{b}/{arch}", b]
    suffixes += [arch, ""]
    prefixes = [_RUNTIME_DIRS.get(runtime, runtime), ""]
    out = []
    for p in prefixes:
        for s in suffixes:
            d = os.path.normpath(os.path.join(root, p, s))
            if os.path.isdir(d) and d not in out:
                out.append(d)
    return out


def read_tapset_file(path: str) -> str:
    """The one place tapset text is read (tests may scan text directly)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def dir_files(d: str, suffixes: str | tuple[str, ...]) -> list[tuple[str, os.stat_result]]:
    """The regular files directly in ``d`` whose names end with ``suffixes``,
    sorted by name, with their stat (an unreadable directory has none)."""
    try:
        names = sorted(os.listdir(d))
    except OSError:
        return []
    out = []
    for nm in names:
        if not nm.endswith(suffixes):
            continue
        path = os.path.join(d, nm)
        try:
            st = os.stat(path)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            out.append((path, st))
    return out


def _list_tapset_files(dirs: list[str]) -> list[tuple[str, int, int]]:
    """(path, mtime_ns, size) of every ``*.stp``/``*.stpm`` directly in ``dirs``."""
    return [(p, st.st_mtime_ns, st.st_size) for d in dirs for p, st in dir_files(d, (".stp", ".stpm"))]


def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "stap-ls")


def _cache_path(cache_dir: str, dirs: list[str]) -> str:
    key = hashlib.sha256(json.dumps([CACHE_FORMAT, dirs]).encode()).hexdigest()[:16]
    return os.path.join(cache_dir, f"tapdoc-{key}.json")


def _diag_to_json(d: Diagnostic) -> dict:
    return {"message": d.message, "code": d.code, "file": d.span.source.name if d.span else "",
            "start": d.span.start if d.span else 0, "end": d.span.end if d.span else 0}


def _load_cache(path: str, files: list[tuple[str, int, int]]) -> TapsetDocIndex | None:
    """The cached index if it is intact and every file is unchanged, else None."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if data.get("format") != CACHE_FORMAT:
            return None
        if [tuple(x) for x in data["files"]] != [tuple(x) for x in files]:
            return None
        docs = [TapsetDoc.from_json(x) for x in data["docs"]]
        diags = []
        texts: dict[str, SourceFile] = {}
        for x in data["diagnostics"]:
            fn = x["file"]
            if not fn:
                diags.append(Diagnostic(Severity.WARNING, x["message"], None,
                                        code=x["code"], kind="tapset doc"))
                continue
            if fn not in texts:
                texts[fn] = SourceFile(fn, read_tapset_file(fn))
            src = texts[fn]
            diags.append(Diagnostic(Severity.WARNING, x["message"],
                                    Span(src, min(x["start"], len(src.text)),
                                         min(x["end"], len(src.text))),
                                    code=x["code"], kind="tapset doc"))
        return TapsetDocIndex(docs, diags, from_cache=True)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _save_cache(path: str, files: list[tuple[str, int, int]], index: TapsetDocIndex) -> str | None:
    """Write the cache atomically; returns an error message on failure."""
    data = {"format": CACHE_FORMAT, "files": files,
            "docs": [d.to_json() for d in index.docs],
            "diagnostics": [_diag_to_json(d) for d in index.diagnostics]}
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, path)
        return None
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return f"cannot write tapset documentation cache {path}: {e.strerror or e}"


def build_index(dirs: list[str] | None = None, cache_dir: str | None = None,
                use_cache: bool = True) -> tuple[TapsetDocIndex, list[Diagnostic]]:
    """Scan every tapset file of ``dirs`` (default: stap's for x86_64/kernel).

    With ``use_cache``, a cache in ``cache_dir`` (default
    ``$XDG_CACHE_HOME/stap-ls``) is used when every file's mtime and size match,
    and (re)written otherwise.
    """
    if dirs is None:
        dirs = tapset_search_dirs()
    dirs = [os.path.abspath(d) for d in dirs]
    files = _list_tapset_files(dirs)
    path = _cache_path(cache_dir or default_cache_dir(), dirs) if use_cache else ""
    if use_cache:
        cached = _load_cache(path, files)
        if cached is not None:
            return cached, cached.diagnostics
    docs: list[TapsetDoc] = []
    diags: list[Diagnostic] = [
        Diagnostic(Severity.WARNING, f"tapset directory {d} does not exist", None,
                   code=CODE_UNREADABLE, kind="tapset doc")
        for d in dirs if not os.path.isdir(d)]
    for p, _, _ in files:
        try:
            text = read_tapset_file(p)
        except OSError as e:
            diags.append(Diagnostic(Severity.WARNING, f"cannot read tapset {p}: {e.strerror or e}",
                                    None, code=CODE_UNREADABLE, kind="tapset doc"))
            continue
        d, g = scan_text(text, p)
        docs += d
        diags += g
    index = TapsetDocIndex(docs, diags)
    if use_cache:
        err = _save_cache(path, files, index)
        if err:
            index.diagnostics.append(Diagnostic(Severity.INFO, err, None, code=CODE_CACHE,
                                                kind="tapset doc"))
    return index, index.diagnostics
