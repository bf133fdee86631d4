"""``stap-ls serve [--tcp HOST:PORT] [--log FILE] [-v]``: the language server.

Also reached as ``stap-ls --language-server`` so clients configured for
stap's own server can use this one unchanged.  Speaks LSP on stdio by
default; ``--tcp`` listens on a socket (for debugging).  Logs go to stderr
(or ``--log FILE``), never to stdout, which carries the protocol.
"""

from __future__ import annotations

import logging
import sys

USAGE = "usage: stap-ls serve [--stdio] [--tcp HOST:PORT] [--log FILE] [-v]\n"


def main(argv: list[str]) -> int:
    tcp = None
    log_file = None
    level = logging.WARNING
    args = list(argv)
    while args:
        a = args.pop(0)
        if a in ("-h", "--help"):
            sys.stdout.write(USAGE)
            return 0
        if a == "--tcp" and args:
            tcp = args.pop(0)
        elif a.startswith("--tcp="):
            tcp = a.split("=", 1)[1]
        elif a == "--log" and args:
            log_file = args.pop(0)
        elif a == "-v":
            level = logging.INFO if level == logging.WARNING else logging.DEBUG
        elif a in ("--stdio", "--language-server"):
            pass
        else:
            sys.stderr.write(f"stap-ls serve: unexpected argument '{a}'\n{USAGE}")
            return 2
    logging.basicConfig(filename=log_file, level=level,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    import multiprocessing
    # the library may parse on worker processes from a loader thread: forking a
    # threaded server can deadlock, a fork server cannot
    try:
        multiprocessing.set_start_method("forkserver", force=True)
    except (ValueError, RuntimeError):
        pass
    from stap_ls.syntax.parser import raise_recursion_limit
    raise_recursion_limit()
    import threading
    threading.stack_size(64 * 1024 * 1024)
    from stap_ls.lsp.server import build_server
    server = build_server()
    if tcp:
        host, _, port = tcp.rpartition(":")
        if not port.isdigit():
            sys.stderr.write(f"stap-ls serve: --tcp wants HOST:PORT, not '{tcp}'\n")
            return 2
        try:
            server.start_tcp(host or "127.0.0.1", int(port))
        except OSError as e:          # e.g. the port is taken: a message, not a traceback
            sys.stderr.write(f"stap-ls serve: cannot listen on {tcp}: {e.strerror or e}\n")
            return 2
    else:
        server.start_io()
    # the client went away (end of input): do not wait for background loaders
    server.runs.stop_all()
    logging.shutdown()
    sys.stdout.flush()
    import os
    os._exit(0)
