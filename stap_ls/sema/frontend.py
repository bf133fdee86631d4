"""The front end as one call: stap's command line in, passes 1 (and 2) out.

:func:`run_frontend` is what ``stap-ls check`` and the language server share:
it turns :class:`~stap_ls.options.StapOptions` into a preprocessor
environment for the target kernel, loads the tapset library (macros, and the
parsed files when asked), and parses the user's script.  The result is plain
data: the parse result, the library, and every diagnostic, in stap's order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stap_ls.options import StapOptions
from stap_ls.sema.library import TapsetLibrary, load_library, read_source
from stap_ls.syntax.parser import ParseOptions, ParseResult, parse_file
from stap_ls.syntax.preprocessor import PPEnv
from stap_ls.targets.kernel_env import DEFAULT_COMPATIBLE, kernel_env
from stap_ls.text import Diagnostic, Severity, SourceFile


def pp_env(opts: StapOptions) -> PPEnv:
    """The preprocessor's view of a stap command line."""
    k = kernel_env(opts.kernel_release, opts.arch)
    return PPEnv(kernel_release=k.release, arch=k.arch, kernel_config=k.config,
                 compatible=opts.compatible or DEFAULT_COMPATIBLE,
                 privilege=opts.privilege, guru=opts.guru, runtime=opts.runtime)


@dataclass
class FrontendResult:
    options: StapOptions
    env: PPEnv
    library: TapsetLibrary
    user: list[ParseResult] = field(default_factory=list)
    #: library problems: warnings, or errors under -W
    library_diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def user_errors(self) -> list[Diagnostic]:
        return [d for r in self.user for d in r.errors]


def user_sources(opts: StapOptions, stdin_text: str | None = None) -> list[SourceFile]:
    """The script(s) named on the command line (-e, FILE, '-', and -E)."""
    out: list[SourceFile] = []
    if opts.script_text is not None:
        out.append(SourceFile("<input>", opts.script_text))
    elif opts.script_file == "-":
        out.append(SourceFile("<input>", stdin_text or ""))
    elif opts.script_file is not None:
        out.append(read_source(opts.script_file))
    for i, extra in enumerate(opts.extra_scripts):
        out.append(SourceFile("<input%d>" % (i + 1), extra))
    return out


def run_frontend(opts: StapOptions, sources: list[SourceFile], *,
                 parse_library: bool = True, use_cache: bool = True,
                 library: TapsetLibrary | None = None) -> FrontendResult:
    env = pp_env(opts)
    if library is None:
        library = load_library(opts.include_dirs, env, use_cache=use_cache,
                               parse_files=parse_library)
    res = FrontendResult(opts, env, library)
    for d in library.diagnostics:
        sev = Severity.ERROR if (opts.warnings_as_errors and d.severity == Severity.ERROR) \
            else Severity.WARNING
        if d.severity == Severity.ERROR or not opts.suppress_warnings:
            res.library_diagnostics.append(_with_severity(d, sev))
    popts = ParseOptions(env=env, args=opts.script_args, privileged=opts.guru,
                         user_file=True, library_macros=library.macros)
    for src in sources:
        res.user.append(parse_file(src, popts))
    return res


def _with_severity(d: Diagnostic, sev: Severity) -> Diagnostic:
    if d.severity == sev:
        return d
    return Diagnostic(sev, d.message, d.span, d.code, d.kind, d.saw, d.marker, d.related, d.tags)
