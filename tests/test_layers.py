"""The layer rules of docs/architecture.md, held by scanning imports.

Every module under ``stap_ls/`` is parsed with :mod:`ast`; each ``import`` and
``from ... import`` (relative ones resolved, imports inside functions
included) is checked against what its layer may import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "stap_ls"

# layer -> stap_ls layers it may import (itself always allowed)
ALLOWED = {
    "text": set(),
    "options": set(),
    "syntax": {"text", "options"},
    "targets": {"text", "options"},
    "sema": {"syntax", "text", "options", "targets"},
    "backends": {"sema", "syntax", "targets", "text", "options"},
    "ide": {"syntax", "sema", "targets", "backends", "text", "options"},
    "lsp": {"ide", "text", "options"},
    "cli": {"ide", "backends", "syntax", "sema", "targets", "text", "options", "lsp"},
}
# third-party or standard modules a layer must not import
FORBIDDEN = {
    "text": {"pygls", "lsprotocol", "subprocess", "lark"},
    "options": {"pygls", "lsprotocol", "subprocess"},
    "syntax": {"pygls", "lsprotocol", "subprocess"},
    "sema": {"pygls", "lsprotocol", "subprocess"},
    "targets": {"pygls", "lsprotocol", "subprocess"},
    "ide": {"pygls", "lsprotocol", "subprocess"},
    "backends": {"pygls", "lsprotocol"},
    "cli": {"lsprotocol"},
}


def layer_of(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 else rel.stem


def imports(path: Path, root: Path = PKG) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    package = ".".join(("stap_ls", *path.relative_to(root).parent.parts))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.append((node.lineno, name))
            if name in ("stap_ls",):          # from stap_ls import syntax
                out.extend((node.lineno, f"stap_ls.{a.name}") for a in node.names)
    return out


MODULES = sorted(p for p in PKG.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_layer_is_known():
    layers = {layer_of(p) for p in MODULES} - {"__init__", "__main__"}
    assert layers <= set(ALLOWED), layers - set(ALLOWED)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PKG)))
def test_imports_follow_the_layers(path):
    layer = layer_of(path)
    if layer not in ALLOWED:
        return
    bad = []
    for line, name in imports(path):
        top = name.split(".")[0]
        if top in FORBIDDEN.get(layer, ()):
            bad.append(f"line {line}: {layer}/ must not import {name}")
        if top == "stap_ls" and len(name.split(".")) > 1:
            target = name.split(".")[1]
            if target != layer and target not in ALLOWED[layer] and target != "__init__":
                bad.append(f"line {line}: {layer}/ must not import {name}")
    assert not bad, "\n".join(bad)


def test_the_scanner_sees_violations(tmp_path):
    """The check itself can fail: upward and forbidden imports are seen."""
    probe = tmp_path / "stap_ls" / "syntax" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("import subprocess\nfrom stap_ls.lsp import server\n"
                     "def f():\n    from ..ide import x\n")
    names = [n for _l, n in imports(probe, tmp_path / "stap_ls")]
    assert names == ["subprocess", "stap_ls.lsp", "stap_ls.ide"]
