"""``stap-ls check``: a stap-compatible front end (passes 1 and 2, -l/-L).

Takes stap's command line.  With ``-p1`` prints the parse tree as ``stap -p1``
does; errors go to stderr in stap's layout and the exit status is stap's
(0 on success, 1 on errors).  ``--format=json`` prints diagnostics as JSON on
stdout instead.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import replace
from typing import TextIO

from stap_ls.cli.report import ErrorPrinter, write_json
from stap_ls.options import HELP_HINT, UsageError, parse_stap_args
from stap_ls.sema.frontend import run_frontend, user_sources
from stap_ls.syntax.printer import print_file
from stap_ls.text import Severity


def main(argv: list[str], out: TextIO | None = None, err: TextIO | None = None,
         stdin: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        opts, warnings = parse_stap_args(argv)
    except UsageError as e:
        err.write(f"{e}\n")
        if e.hint:
            err.write(HELP_HINT + "\n")
        return 1
    tmp = os.environ.get("TMPDIR")
    if tmp and not re.fullmatch(r"[-/._0-9a-z]+", tmp, re.I):
        err.write(f"ERROR: Safety pattern mismatch for TMPDIR ('{tmp}' vs. "
                  "'^[-/._0-9a-z]+$') rc=1\n")
        return 1
    if tmp and not os.path.isdir(tmp):
        # stap creates its temporary directory before anything else
        err.write(f'cannot create temporary directory (" {tmp}/stapXXXXXX "): '
                  "Not a directory\n")
        return 1
    for w in warnings:
        err.write(f"stap-ls: {w}\n")

    listing = opts.list_probes_vars if opts.list_probes_vars is not None else opts.list_probes
    if listing is not None:
        from stap_ls.sema.listing import listing_script, wants_pass2
        if not wants_pass2(listing):
            from stap_ls.targets.listing import main_listing
            return main_listing(opts, out, err)
        # tapset aliases and built-ins: pass 1 of `probe PATTERN {}`, then pass 2's listing
        opts = replace(opts, script_text=listing_script(listing), script_file=None)

    stdin_text = None
    if opts.script_file == "-":
        stdin_text = (stdin or sys.stdin).read()
    if opts.script_text is None and opts.script_file is None:
        err.write("A script must be specified.\n")
        return 1
    try:
        sources = user_sources(opts, stdin_text)
    except OSError as e:
        name = opts.script_file
        msg = (f"Input file '{name}' can't be opened for reading."
               if e.errno not in (2,) else f"Input file '{name}' is missing.")
        err.write(msg + "\n")
        return 1

    res = run_frontend(opts, sources)
    json_mode = opts.output_format == "json"
    printer = ErrorPrinter(err, opts.verbose)
    diags = []
    failed = False
    lib_errors = [d for d in res.library_diagnostics if d.severity == Severity.ERROR]
    if not json_mode:
        printer.write(res.library_diagnostics)
    diags.extend(res.library_diagnostics)
    if lib_errors:
        failed = True
    n_errors = 0
    for r in res.user:
        shown = [d for d in r.diagnostics
                 if d.severity == Severity.ERROR or not opts.suppress_warnings]
        if not json_mode:
            printer.write(shown)
        diags.extend(shown)
        n_errors += len(r.errors)
        if r.empty:
            failed = True
            if not json_mode:
                state = "is empty after preprocessing" if r.saw_tokens else "is empty"
                err.write(f"Input file '{r.file.name}' {state}.\n")
        elif r.errors:
            failed = True
    if n_errors and not json_mode and not any(r.empty for r in res.user):
        err.write(f"{n_errors} parse error{'s' if n_errors != 1 else ''}.\n")
    if failed:
        if json_mode:
            write_json(diags, out, ok=False, passes=1)
        else:
            err.write("Pass 1: parse failed.  [man error::pass1]\n")
            printer.summary()
        return 1
    if opts.last_pass == 1:
        if json_mode:
            write_json(diags, out, ok=True, passes=1)
        else:
            out.write("# parse tree dump\n")
            for r in res.user:      # stap: the user files, then one blank line
                out.write(print_file(r.file))
            out.write("\n")
            if opts.verbose:
                # stap -v -p1 dumps the library too: macro files (no
                # declarations), then the tapset files, in the order read
                for path in res.library.macro_files:
                    out.write(f"# file {path}\n\n")
                for lf in res.library.files:
                    out.write(print_file(lf.result.file))
                    out.write("\n")
        return 0
    if listing is not None:
        return _pass2_listing(res, opts, out, err)
    from stap_ls.cli.pass2 import run_pass2
    return run_pass2(res, opts, out, err, diags)


def _pass2_listing(fe, opts, out: TextIO, err: TextIO) -> int:
    """Print what stap_ls.sema.listing finds.  Like stap, a listing that finds
    nothing prints nothing on stdout and exits 1; stap says no more, we print the
    pass-2 errors of the pattern, which say why."""
    from stap_ls.cli.pass2 import format_diagnostics
    from stap_ls.sema.listing import list_probes
    from stap_ls.targets.model import TargetModel
    pattern = opts.list_probes_vars if opts.list_probes_vars is not None else opts.list_probes
    res = list_probes(fe, TargetModel(opts), opts.list_probes_vars is not None)
    for line in res.lines:
        out.write(line + "\n")
    if res.without_dwarf and not opts.suppress_warnings:
        shown = ": " + ", ".join(res.without_dwarf) if opts.verbose else " (-v names them)"
        err.write(f"note: {len(res.without_dwarf)} listed point(s) rest on BTF or kernel "
                  f"symbols where stap needs kernel debug information{shown}\n")
    if not res.ok:
        err.write(format_diagnostics(res.dropped)[0])
        err.write(f"semantic error: no probe point matches '{pattern}'\n")
        return 1
    return 0
