"""SystemTap's own example scripts (/usr/share/systemtap/examples) on the bpf
engine, run as their .meta files say (``-T 1`` for the installcheck runs).

Only the shape of the output is asserted (no stap output is committed): the
scripts are SystemTap's code, and their counts depend on the machine.
"""

from __future__ import annotations

import os
import re
import threading
import time

from scriptrun import cli

EXAMPLES = "/usr/share/systemtap/examples"


def example(rel: str) -> str:
    path = os.path.join(EXAMPLES, rel)
    assert os.path.exists(path), f"{path} is missing: apt-get install systemtap-doc (scripts/setup.sh)"
    return path


def test_helloworld_oneshot_alias(bpf_ready):
    r = cli(["--engine=bpf", example("general/helloworld.stp")])
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello world\n"


def test_syscalls_by_proc_counts_our_syscalls(bpf_ready):
    """syscall_any (tapset alias -> raw_syscalls:sys_enter), <<< into a per-name
    aggregate, foreach sorted in end; -T 1 ends it after a second."""
    stop = threading.Event()

    def busy() -> None:  # a steady stream of our own syscalls
        while not stop.is_set():
            os.getppid()
            time.sleep(0.001)

    t = threading.Thread(target=busy, daemon=True)
    t.start()
    try:
        r = cli(["--engine=bpf", "-T", "1", example("process/syscalls_by_proc.stp")], timeout=120)
    finally:
        stop.set()
        t.join()
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "Collecting data... Type Ctrl-C to exit and display results"
    assert lines[1] == "#SysCalls  Process Name"
    rows = [re.fullmatch(r"(\d+) +(\S.*)", ln) for ln in lines[2:]]
    assert rows and all(rows), lines
    counts = [int(m.group(1)) for m in rows]
    assert counts == sorted(counts, reverse=True)
    comm = open("/proc/self/comm").read().strip()
    ours = [int(m.group(1)) for m in rows if m.group(2) == comm]
    assert ours and max(ours) >= 400, (comm, lines[:10])  # ~900 getppid() in the second
