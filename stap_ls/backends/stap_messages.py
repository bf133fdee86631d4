"""Reading what ``stap -v`` says on stderr, line by line, as it says it.

:class:`StderrReader` is fed stderr lines in order and reports:

* pass progress -- ``Pass 2: analyzed script: ... in 10usr/0sys/9real ms.``
  ends pass 2 (and so starts pass 3); ``Pass 2: analysis failed.`` fails it;
  ``Pass 5: starting run.`` means the script is running;
* diagnostics -- stap's ``parse error:`` / ``semantic error:`` / ``WARNING:``
  blocks (``... at FILE:LINE:COL`` then ``source:`` and a caret line) become
  :class:`~stap_ls.text.Diagnostic` objects placed in the script; an empty file
  name (``at :3:3``) means "the same file as the message before", and a
  located "while resolving probe point" error lends its place to the
  location-less reason stap chains after it;
* the first real compiler error of pass 4 (``file.c:107:40: error: ...``),
  summarised when pass 4 fails;
* pass-5 loader errors (``ERROR: ...`` from staprun/stapio), verbatim;
* environment problems (missing build tree, debug info, module support,
  privileges, ``sudo``), named as the doctor names its findings.

Nothing here runs a program; the driver feeds the lines.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from stap_ls.text import Diagnostic, Related, Severity, SourceFile, Span

PASS_NAMES = {1: "parse", 2: "elaborate", 3: "translate", 4: "compile", 5: "run"}

_PASS_DONE = re.compile(r"^Pass (\d): (.*?)(?: in (\d+)usr/(\d+)sys/(\d+)real ms)?\.?$")
_PASS_FAILED = re.compile(r"^Pass (\d): .*\bfailed\.")
_KIND = re.compile(r"^(parse error|semantic error|WARNING|ERROR|error): (.*)$")
_AT = re.compile(r"^(.*) at (\S*):(\d+):(\d+)$")
_SAW = re.compile(r"^\s+saw: (.*)$")
_SOURCE = re.compile(r"^\s+source: ")
_CARET = re.compile(r"^\s+\^\s*$")
_ALSO = re.compile(r"^((?:identifier|keyword|operator|string|number|embedded-code) .*)"
                   r" at (\S*):(\d+):(\d+)$")
_CHECKING = re.compile(r'^Checking "(.*)" failed with error: ')
_CC_ERROR = re.compile(r"^(\S+?):(\d+):(?:(\d+):)? (?:fatal )?error: (.*)$")
_TOKEN_TEXT = re.compile(r"'(.*)'$")

#: stderr text -> doctor finding name
ENVIRONMENT_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r'Checking "(.*)/build/\.config" failed'), "build-tree"),
    (re.compile(r"missing \S+ kernel/module debuginfo"), "debuginfo"),
    (re.compile(r"(?i)couldn't insert module|/proc/modules|module loading is disabled"
                r"|modules_disabled"), "modules"),
    (re.compile(r"(?i)stapusr|stapdev|stapsys|You are trying to run systemtap as a normal"),
     "privileges"),
    (re.compile(r"^sudo: "), "sudo"),
    (re.compile(r"(?i)kprobes? (?:is |are )?(?:not supported|disabled)|CONFIG_KPROBES"),
     "kprobes"),
    (re.compile(r"(?i)uprobes? .*(?:not supported|disabled)|CONFIG_UPROBES"), "uprobes"),
]


@dataclass
class StapMessage:
    """One diagnostic block of stap's stderr, before placement."""

    kind: str                  # "parse error", "semantic error", "WARNING", ...
    message: str
    file: str | None = None
    line: int = 0
    column: int = 0
    token: str = ""            # stap's token description: "identifier 'foo'"
    saw: str = ""
    lines: list[str] = field(default_factory=list)
    #: further places stap names after the first (e.g. the declaration of a
    #: function called with the wrong arity): (file, line, column, token)
    also: list[tuple[str, int, int, str]] = field(default_factory=list)


class Placement:
    """Maps file names in stap's messages to :class:`SourceFile` objects.

    ``aliases`` maps the path stap was given (a temporary copy of an unsaved
    buffer, say) to the script's own :class:`SourceFile`.  Other files (tapsets)
    are read on demand so related locations can point into them.
    """

    def __init__(self, script: SourceFile | None, aliases: dict[str, SourceFile]) -> None:
        self.script = script
        self.aliases = dict(aliases)
        self._cache: dict[str, SourceFile | None] = {}

    def source(self, name: str) -> SourceFile | None:
        if name in self.aliases:
            return self.aliases[name]
        real = os.path.realpath(name) if name and not name.startswith("<") else name
        for alias, src in self.aliases.items():
            if not alias.startswith("<") and os.path.realpath(alias) == real:
                return src
        if name in self._cache:
            return self._cache[name]
        src: SourceFile | None = None
        try:
            if os.path.isfile(name) and os.path.getsize(name) < 8 << 20:
                with open(name, encoding="utf-8", errors="replace") as f:
                    src = SourceFile(name, f.read())
        except OSError:
            src = None
        self._cache[name] = src
        return src

    def span(self, name: str, line: int, column: int, token: str) -> Span | None:
        src = self.source(name)
        if src is None:
            return None
        column = min(column, len(src.line_text(line)) + 1)
        start = src.offset(line, column)
        return Span(src, start, start + _token_length(src, start, token))

    def script_start(self) -> Span | None:
        return Span(self.script, 0, 0) if self.script is not None else None


def _token_length(src: SourceFile, start: int, token: str) -> int:
    """Length of the token stap described as e.g. ``identifier 'foo'``."""
    text = src.text
    m = _TOKEN_TEXT.search(token)
    if m:
        word = m.group(1)
        if word and text.startswith(word, start):
            return len(word)
        if word and text.startswith('"' + word, start):
            return len(word) + 2
    n = start
    while n < len(text) and (text[n].isalnum() or text[n] in "_$@"):
        n += 1
    return max(n - start, 1 if start < len(text) else 0)


@dataclass
class PassEvent:
    pass_no: int
    state: str                 # "end" | "failed"
    seconds: float | None      # stap's own 'real' figure when it gives one
    #: time.monotonic() when stap printed the line (a held event is sent later)
    at: float = 0.0


class StderrReader:
    """Feed stderr lines; get pass events, diagnostics and a summary."""

    def __init__(self, placement: Placement,
                 on_pass: Callable[[PassEvent], None],
                 on_diagnostic: Callable[[Diagnostic], None]) -> None:
        self.placement = placement
        self._on_pass = on_pass
        self._on_diag = on_diagnostic
        self._pending: StapMessage | None = None
        self._last_file = ""
        self._last_span: Span | None = None
        self._last_resolving = False
        self.compiler_errors: list[tuple[str, int, int, str]] = []
        self.loader_errors: list[str] = []
        self.environment: list[str] = []
        self.failed_pass: int | None = None
        self.diagnostics: list[Diagnostic] = []
        self.module_path: str | None = None
        #: a pass end is held back until the next line (or a quiet moment), since
        #: stap prints "Pass 2: analyzed script ..." and *then* "analysis failed"
        self._held: PassEvent | None = None

    # -- feeding ----------------------------------------------------------------
    def feed(self, line: str) -> None:
        for pattern, name in ENVIRONMENT_PATTERNS:
            if pattern.search(line) and name not in self.environment:
                self.environment.append(name)
        if self._pending is not None:
            if self._continue_block(line):
                return
            self._flush()
        m = _PASS_FAILED.match(line)
        held, self._held = self._held, None
        if held is not None and not (m and int(m.group(1)) == held.pass_no):
            self._on_pass(held)
        if m:
            self.failed_pass = int(m.group(1))
            seconds = held.seconds if held is not None else None
            self._on_pass(PassEvent(int(m.group(1)), "failed", seconds))
            if self.failed_pass == 4:
                self._summarise_compile()
            return
        m = _PASS_DONE.match(line)
        if m:
            self._pass_line(int(m.group(1)), m.group(2), m.group(5))
            return
        m = _CHECKING.match(line)
        if m:
            self._emit_plain(f"{line} (the kernel build tree is missing; "
                             "'stap-ls doctor' says how to get it, or pass -r RELEASE)",
                             "stap-environment", "environment")
            return
        m = _CC_ERROR.match(line)
        if m:
            self.compiler_errors.append((m.group(1), int(m.group(2)),
                                         int(m.group(3) or 0), m.group(4)))
            return
        m = _KIND.match(line)
        if m:
            self._start_block(m.group(1), m.group(2), line)

    def tick(self) -> None:
        """Nothing arrived for a while: release a held pass end."""
        if self._pending is not None and len(self._pending.lines) > 1:
            self._flush()
        held, self._held = self._held, None
        if held is not None:
            self._on_pass(held)

    def close(self) -> None:
        if self._pending is not None:
            self._flush()
        self.tick()

    # -- passes -----------------------------------------------------------------
    def _pass_line(self, n: int, text: str, real_ms: str | None) -> None:
        if n == 5 and text.startswith("starting run"):
            return  # the driver reports pass 5's start itself
        if n == 4:
            m = re.search(r'compiled C into "([^"]+)"', text)
            if m:
                self.module_path = m.group(1)
        seconds = int(real_ms) / 1000.0 if real_ms is not None else None
        self._held = PassEvent(n, "end", seconds, time.monotonic())

    # -- diagnostic blocks ------------------------------------------------------
    def _start_block(self, kind: str, rest: str, line: str) -> None:
        if kind == "ERROR":
            self.loader_errors.append(rest)
        msg = StapMessage(kind=kind, message=rest, lines=[line])
        m = _AT.match(rest)
        if m:
            self._locate(msg, m.group(1), m.group(2), m.group(3), m.group(4))
        self._pending = msg

    def _locate(self, msg: StapMessage, head: str, file: str, line: str, col: str) -> None:
        msg.file = file or self._last_file
        self._last_file = msg.file
        msg.line, msg.column = int(line), int(col)
        # "unresolved function foo (similar: ...): identifier 'foo'"
        message, sep, token = head.rpartition(": ")
        if sep and re.match(r"^(identifier|keyword|operator|string|number|embedded-code)\b",
                            token):
            msg.message, msg.token = message, token
        else:
            msg.message = head

    def _continue_block(self, line: str) -> bool:
        msg = self._pending
        assert msg is not None
        m = _SAW.match(line)
        if m:
            msg.lines.append(line)
            saw = m.group(1)
            at = _AT.match(saw)
            if at:
                msg.saw = at.group(1)
                self._locate(msg, msg.message + ": " + at.group(1), at.group(2),
                             at.group(3), at.group(4))
                msg.message = msg.message if msg.message else saw
                msg.token = at.group(1)
            else:
                msg.saw = saw
            return True
        m = _ALSO.match(line)
        if m and len(msg.lines) > 1:
            msg.lines.append(line)
            file = m.group(2) or self._last_file
            msg.also.append((file, int(m.group(3)), int(m.group(4)), m.group(1)))
            return True
        if _SOURCE.match(line) or _CARET.match(line):
            msg.lines.append(line)
            return True
        if line.strip() == "" and len(msg.lines) > 1:
            msg.lines.append(line)
            self._flush()
            return True
        return False

    def _flush(self) -> None:
        msg, self._pending = self._pending, None
        if msg is None:
            return
        severity = Severity.WARNING if msg.kind == "WARNING" else Severity.ERROR
        span: Span | None = None
        related: tuple[Related, ...] = ()
        if msg.file is not None:
            span = self.placement.span(msg.file, msg.line, msg.column, msg.token)
            if span is not None and span.source is not self.placement.script:
                # the place is in a tapset: show it as related, anchor in the script
                related = (Related(span, f"{msg.kind}: {msg.message}"),)
                span = self.placement.script_start()
        elif self._last_resolving and self._last_span is not None:
            span = self._last_span
        for file, line, col, token in msg.also:
            also = self.placement.span(file, line, col, token)
            if also is not None:
                related += (Related(also, token),)
        if msg.kind == "WARNING" and msg.file is None and span is None:
            return  # e.g. "Kernel function symbol table missing": not about the script
        if span is None:  # "no probes found", loader errors: about the script as a whole
            span = self.placement.script_start()
        message = msg.message
        if msg.token and msg.kind != "parse error":
            message = f"{message}: {msg.token}"
        code = {"parse error": "stap-parse", "semantic error": "stap-semantic",
                "WARNING": "stap-warning", "ERROR": "stap-runtime"}.get(msg.kind, "stap")
        diag = Diagnostic(severity=severity, message=message, span=span, code=code,
                          kind=msg.kind, saw=msg.saw, related=related)
        self._last_resolving = msg.file is not None and message.startswith("while resolving")
        self._last_span = span if msg.file is not None else None
        self.diagnostics.append(diag)
        self._on_diag(diag)

    def _emit_plain(self, message: str, code: str, kind: str) -> None:
        diag = Diagnostic(severity=Severity.ERROR, message=message,
                          span=self.placement.script_start(), code=code, kind=kind)
        self.diagnostics.append(diag)
        self._on_diag(diag)

    def _summarise_compile(self) -> None:
        if not self.compiler_errors:
            text = "pass 4 (compile) failed; stap printed no compiler error (rerun with -v -v)"
            related: tuple[Related, ...] = ()
        else:
            file, line, col, what = self.compiler_errors[0]
            where = f"{file}:{line}:{col}" if col else f"{file}:{line}"
            more = len(self.compiler_errors) - 1
            text = (f"pass 4 (compile) failed: {where}: error: {what}"
                    + (f" (and {more} more compiler error{'s' if more > 1 else ''})"
                       if more else ""))
            # gcc counts columns in display units (tabs to 8): point at the line
            src_span = self.placement.span(file, line, 1, "")
            related = (Related(src_span, "first compiler error"),) if src_span else ()
        diag = Diagnostic(severity=Severity.ERROR, message=text,
                          span=self.placement.script_start(), code="stap-pass4",
                          kind="pass 4", related=related)
        self.diagnostics.append(diag)
        self._on_diag(diag)
