"""Deep copies of syntax trees that share spans and source files.

Alias expansion gives every derived probe its own copy of the alias (and,
for a point list, handler) body, as stap's ``deep_copy_visitor`` does, so that
each copy can carry its own locals and types.  ``copy.deepcopy`` would also
copy the :class:`~stap_ls.text.SourceFile` behind every span; :func:`clone`
copies only the nodes.
"""

from __future__ import annotations

from dataclasses import fields

from stap_ls.syntax import ast as A

_FIELDS: dict[type, tuple[str, ...]] = {}
_NODE_TYPES = (A.Node, A.Component, A.PPComponent, A.Param)


def clone(node):
    if isinstance(node, list):
        return [clone(x) for x in node]
    if not isinstance(node, _NODE_TYPES):
        return node
    cls = type(node)
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in fields(cls))
    new = object.__new__(cls)
    for n in names:
        v = getattr(node, n)
        if isinstance(v, list):
            v = [clone(x) for x in v]
        elif isinstance(v, _NODE_TYPES):
            v = clone(v)
        object.__setattr__(new, n, v)
    return new


def clone_keyed(node, tables: list[dict]):
    """A clone whose nodes inherit the entries of ``tables`` (dicts keyed by
    ``id(node)``, e.g. ``Program.referents``) from the nodes they copy."""
    if isinstance(node, list):
        return [clone_keyed(x, tables) for x in node]
    if not isinstance(node, _NODE_TYPES):
        return node
    cls = type(node)
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in fields(cls))
    new = object.__new__(cls)
    for n in names:
        v = getattr(node, n)
        if isinstance(v, list):
            v = [clone_keyed(x, tables) for x in v]
        elif isinstance(v, _NODE_TYPES):
            v = clone_keyed(v, tables)
        object.__setattr__(new, n, v)
    for t in tables:
        hit = t.get(id(node))
        if hit is not None:
            t[id(new)] = hit
    return new
