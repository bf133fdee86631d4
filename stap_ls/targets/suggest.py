"""stap's "similar" suggestions for a name that matched nothing.

stap scores candidates with a weighted edit distance — inside the table,
insertion, deletion and substitution cost 2 and a substitution that only
changes letter case costs 1, while the table's first row and column count 1
per character — and prints the five best, ties in byte order of the names (it
walks a sorted set and keeps earlier names on equal scores).  :func:`suggest`
reproduces that ranking (checked against stap 4.8's own "similar functions"
lists in the tests), pruning candidates whose length difference alone rules
them out.
"""

from __future__ import annotations

from typing import Iterable


def distance(a: str, b: str, limit: int | None = None) -> int:
    """Weighted edit distance; may stop early and return > ``limit``."""
    if a == b:
        return 0
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        lower_a = ca.lower()
        best = cur[0]
        for j, cb in enumerate(b, 1):
            if ca == cb:
                v = prev[j - 1]
            else:
                sub = prev[j - 1] + (1 if lower_a == cb.lower() else 2)
                v = min(sub, prev[j] + 2, cur[j - 1] + 2)
            cur.append(v)
            if v < best:
                best = v
        if limit is not None and best > limit:
            return best
        prev = cur
    return prev[-1]


def suggest(target: str, candidates: Iterable[str], limit: int = 5) -> list[str]:
    """The ``limit`` candidates closest to ``target``, best first, as stap orders them."""
    scored: list[tuple[int, str]] = []
    worst: int | None = None
    for name in sorted(set(candidates)):
        if not name:
            continue
        # a later name needs a strictly better score than the current
        # limit-th best to get in (ties keep the earlier, byte-smaller name)
        if worst is not None and abs(len(name) - len(target)) >= worst:
            continue
        d = distance(target, name, worst)
        if worst is not None and d >= worst:
            continue
        scored.append((d, name))
        scored.sort(key=lambda p: p[0])        # stable: byte order on ties
        del scored[limit:]
        if len(scored) >= limit:
            worst = scored[-1][0]
    return [n for _, n in scored]
