"""``stap-ls``: the command line face of stap_ls.

Sub-commands: ``check`` (stap-compatible front end: -p1/-p2, -l/-L),
``run`` (drive a run engine), ``doctor`` (explain the environment),
``serve`` / ``--language-server`` (the language server on stdio).
"""

from __future__ import annotations

import sys

USAGE = """usage: stap-ls COMMAND [ARGS]

commands:
  check [stap options] FILE|-e SCRIPT [ARGS]   parse and elaborate as stap -p1/-p2 does
  run [stap options] FILE [ARGS]               run a script (--engine=stap|bpf)
  doctor                                       explain what this machine can run
  serve [--tcp HOST:PORT]                      the language server (stdio by default)
  --language-server                            same as 'serve', for clients set up for stap's
"""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        sys.stdout.write(USAGE)
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "check":
        from stap_ls.cli.check import main as check_main
        return check_main(rest)
    if cmd == "run":
        from stap_ls.cli.run import main as run_main
        return run_main(rest)
    if cmd == "doctor":
        from stap_ls.cli.doctor import main as doctor_main
        return doctor_main(rest)
    if cmd in ("serve", "--language-server"):
        from stap_ls.cli.serve import main as serve_main
        return serve_main(rest)
    sys.stderr.write(f"stap-ls: unknown command '{cmd}'\n{USAGE}")
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
