"""The installed examples: ``stap-ls check -p1`` against the real ``stap -p1``.

For every example whose ``.meta`` has a ``test_check:`` line, both run with
that line's options and arguments (its ``-pN`` replaced by ``-p1``) in the
example's directory.  The parse-tree dumps must be byte-identical (the
``# file`` header aside) and the exit statuses equal.  stap runs on two
threads while stap-ls runs in-process; nothing of stap's output is stored.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor

from tests.support import oracle
from tests.syntax.conftest import check


def p1_argv(argv: list[str]) -> list[str]:
    """The command line with ``-p1`` for its pass (``-gp4`` becomes ``-g -p1``)."""
    split = []
    for a in argv:
        m = re.fullmatch(r"-([a-zA-Z]*)p([1-5])([a-zA-Z]*)", a)
        if m and (m.group(1) or m.group(3)):
            split += [f"-{m.group(1)}{m.group(3)}", f"-p{m.group(2)}"]
        else:
            split.append(a)
    return oracle.with_pass(split, 1)


def test_examples_p1_match_stap(rel, stap):
    examples = oracle.examples()
    assert len(examples) > 150, "systemtap's examples are missing; " + oracle.INSTALL_HINT

    def real(ex):
        t = time.perf_counter()
        r = oracle.run([stap, "-r", rel, *p1_argv(ex.argv)], cwd=ex.dir)
        return r, time.perf_counter() - t

    bad = []
    ours_time = 0.0
    stap_time = 0.0
    with ThreadPoolExecutor(max_workers=2) as ex_pool:
        futures = [ex_pool.submit(real, ex) for ex in examples]
        for ex, fut in zip(examples, futures):
            t = time.perf_counter()
            mine = check(["-r", rel, *p1_argv(ex.argv)], cwd=ex.dir)
            ours_time += time.perf_counter() - t
            theirs, secs = fut.result()
            stap_time += secs
            if (mine.rc == 0) != (theirs.returncode == 0):
                bad.append(f"{ex.name}: exit {mine.rc}, stap {theirs.returncode}\n"
                           f"ours: {mine.err[-600:]}\nstap: {theirs.stderr[-600:]}")
                continue
            if oracle.strip_file_header(mine.out) != oracle.strip_file_header(theirs.stdout):
                a = oracle.strip_file_header(mine.out).splitlines()
                b = oracle.strip_file_header(theirs.stdout).splitlines()
                first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y),
                             min(len(a), len(b)))
                bad.append(f"{ex.name}: -p1 differs at line {first + 1}:\n"
                           f"  ours: {a[first] if first < len(a) else '<end>'}\n"
                           f"  stap: {b[first] if first < len(b) else '<end>'}")
    print(f"\n{len(examples)} examples: stap-ls {ours_time:.1f}s in-process, "
          f"stap {stap_time:.1f}s ({stap_time / max(ours_time, 1e-9):.1f}x)")
    assert not bad, "\n\n".join(bad)
