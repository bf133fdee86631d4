"""stap's "similar" suggestions for a name that matched nothing.

stap scores candidates with a weighted edit distance — inside the table,
insertion, deletion and substitution cost 2 and a substitution that only
changes letter case costs 1, while the table's first row and column count 1
per character — and prints the five best, ties in byte order of the names (it
walks a sorted set and keeps earlier names on equal scores).  :func:`suggest`
reproduces that ranking (checked against stap 4.8's own "similar functions"
lists in the tests), pruning candidates whose length difference alone rules
them out and computing only the band of the table that can still beat the
current fifth best.
"""

from __future__ import annotations

from typing import Iterable


def distance(a: str, b: str, limit: int | None = None) -> int:
    """Weighted edit distance; with ``limit``, any result above it may be inexact
    (but is then still above it).

    Every cell (i, j) of the table is at least ``|i - j|`` and values never
    decrease along a path, so with a limit only the band ``|i - j| <= limit``
    is computed (cells outside count as infinite) and a row whose band is all
    above the limit stops the walk."""
    if a == b:
        return 0
    m = len(b)
    if limit is None:
        limit = len(a) + m
    if abs(len(a) - m) > limit:
        return abs(len(a) - m)
    inf = limit + 1
    prev = [j if j <= limit else inf for j in range(m + 1)]
    for i, ca in enumerate(a, 1):
        lo = max(1, i - limit)
        hi = min(m, i + limit)
        cur = [inf] * (m + 1)
        if i <= limit:
            cur[0] = i
        lower_a = ca.lower()
        best = cur[0]
        for j in range(lo, hi + 1):
            cb = b[j - 1]
            if ca == cb:
                v = prev[j - 1]
            else:
                v = prev[j - 1] + (1 if lower_a == cb.lower() else 2)
                w = prev[j] + 2
                if w < v:
                    v = w
                w = cur[j - 1] + 2
                if w < v:
                    v = w
            if v > inf:
                v = inf
            cur[j] = v
            if v < best:
                best = v
        if best > limit:
            return inf
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
        d = distance(target, name, None if worst is None else worst - 1)
        if worst is not None and d >= worst:
            continue
        scored.append((d, name))
        scored.sort(key=lambda p: p[0])        # stable: byte order on ties
        del scored[limit:]
        if len(scored) >= limit:
            worst = scored[-1][0]
    return [n for _, n in scored]
