"""``stap-ls doctor [-r RELEASE] [--format=json]``: explain what this machine can run.

Prints every finding of :func:`stap_ls.backends.doctor.diagnose` with its fix
(Debian and Fedora packages) and which run engine can work.  Exits 0 when at
least one engine can run scripts here, 1 when none can, 2 for a bad command line.
"""

from __future__ import annotations

import json
import sys

from stap_ls.backends.doctor import diagnose

USAGE = "usage: stap-ls doctor [-r RELEASE] [--format=text|json]\n"


def main(argv: list[str]) -> int:
    release: str | None = None
    fmt = "text"
    args = list(argv)
    while args:
        a = args.pop(0)
        if a in ("-h", "--help"):
            sys.stdout.write(USAGE)
            return 0
        if a == "-r" and args:
            release = args.pop(0)
        elif a.startswith("-r") and len(a) > 2:
            release = a[2:]
        elif a.startswith("--format="):
            fmt = a.split("=", 1)[1]
        elif a == "--format" and args:
            fmt = args.pop(0)
        else:
            sys.stderr.write(f"stap-ls doctor: unexpected argument '{a}'\n{USAGE}")
            return 2
    if fmt not in ("text", "json"):
        sys.stderr.write(f"stap-ls doctor: --format is text or json, not '{fmt}'\n")
        return 2
    report = diagnose(release)
    if fmt == "json":
        sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
    else:
        sys.stdout.write(report.render())
    return 0 if report.recommended_engine else 1
