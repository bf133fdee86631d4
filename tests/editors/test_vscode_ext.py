"""The VS Code side, driven from pytest with the real npm tools: the TextMate
grammar against the shared fixtures (vscode-tmgrammar-test), the extension's
compile, lint and `node --test` unit tests, and packaging with @vscode/vsce
into a .vsix that holds the grammar, the language configuration and the
runtime dependencies."""
from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import pytest

from editors_support import DATA, EXT, ROOT, require

C_GRAMMAR = "node_modules/tm-grammars/grammars/c.json"
SETTINGS = {"command", "tapsetDirs", "kernelRelease", "arch", "guru", "privilege",
            "scriptArgs", "defines", "stapPath", "binarySearchPaths", "engine"}


def npm_ready() -> None:
    require("node", "nodejs")
    require("npm", "npm")
    if not (EXT / "node_modules" / ".bin" / "vsce").exists():
        raise AssertionError("vscode-ext/node_modules is missing: run scripts/setup.sh "
                             "(it runs `npm ci` in vscode-ext)")


def run(cmd: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=EXT, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def grammar_test(pattern: str) -> subprocess.CompletedProcess[str]:
    npm_ready()
    copied = run(["npm", "run", "--silent", "copy-grammar"])
    assert copied.returncode == 0, copied.stderr
    return run(["npx", "--no-install", "vscode-tmgrammar-test", "-c", "-g", C_GRAMMAR, pattern])


def test_grammar_fixtures_pass() -> None:
    fixtures = sorted((DATA / "syntax").glob("*.stp"))
    assert len(fixtures) >= 5
    proc = grammar_test(str(DATA / "syntax" / "*.stp"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for f in fixtures:
        assert f"{f} run successfuly" in proc.stdout, f"{f.name} was not run:\n{proc.stdout}"


def test_grammar_runner_catches_a_wrong_scope(tmp_path: Path) -> None:
    bad = tmp_path / "bad.stp"
    bad.write_text('// SYNTAX TEST "source.systemtap" "control"\n'
                   'probe begin { x = "s" }\n'
                   '// <----- string.quoted.double.systemtap\n')
    proc = grammar_test(str(bad))
    assert proc.returncode != 0
    assert "Missing required scopes" in proc.stdout + proc.stderr


def test_embedded_c_is_c_not_cpp() -> None:
    grammar = json.loads((ROOT / "syntaxes" / "systemtap.tmLanguage.json").read_text())
    text = json.dumps(grammar)
    assert grammar["scopeName"] == "source.systemtap"
    assert '"source.c"' in text and "source.cpp" not in text


def test_compile_lint_and_unit_tests() -> None:
    npm_ready()
    for cmd in (["npm", "run", "compile"], ["npm", "run", "lint"]):
        proc = run(cmd)
        assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    assert (EXT / "out" / "src" / "extension.js").exists()
    proc = run(["node", "--test", "out/test/"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "# fail 0" in proc.stdout and "# pass " in proc.stdout
    passed = int(proc.stdout.split("# pass ")[1].split()[0])
    assert passed >= 10


def test_settings_contract_matches_package_json() -> None:
    """package.json declares exactly the server's settings, with the same
    defaults that the config module uses."""
    npm_ready()
    assert run(["npm", "run", "compile"]).returncode == 0
    manifest = json.loads((EXT / "package.json").read_text())
    props = manifest["contributes"]["configuration"]["properties"]
    assert {k.removeprefix("stap-ls.") for k in props} == SETTINGS
    proc = run(["node", "-e", "console.log(JSON.stringify(require('./out/src/config.js').DEFAULTS))"])
    defaults = json.loads(proc.stdout)
    for key in SETTINGS:
        assert props[f"stap-ls.{key}"]["default"] == defaults[key], key
    assert props["stap-ls.privilege"]["enum"] == ["stapdev", "stapsys", "stapusr"]
    assert props["stap-ls.engine"]["enum"] == ["auto", "stap", "bpf"]
    titles = {c["title"] for c in manifest["contributes"]["commands"]}
    assert titles == {"Run Script", "Stop", "Run to Pass N", "List Probes",
                      "Show Translated C", "Doctor"}


def test_vsix_package(tmp_path: Path) -> None:
    npm_ready()
    vsix = tmp_path / "stap-ls.vsix"
    proc = run(["npx", "--no-install", "vsce", "package", "-o", str(vsix)], timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with zipfile.ZipFile(vsix) as z:
        names = set(z.namelist())
        for need in ("extension/package.json", "extension/out/src/extension.js",
                     "extension/out/src/config.js", "extension/language-configuration.json",
                     "extension/syntaxes/systemtap.tmLanguage.json",
                     "extension/node_modules/vscode-languageclient/package.json"):
            assert need in names, f"{need} missing from the .vsix"
        assert not any(n.startswith("extension/src/") for n in names)
        packed = json.loads(z.read("extension/syntaxes/systemtap.tmLanguage.json"))
        assert packed == json.loads((ROOT / "syntaxes" / "systemtap.tmLanguage.json").read_text())
        langconf = json.loads(z.read("extension/language-configuration.json"))
        assert langconf["folding"]["markers"]["start"].find("%\\(") >= 0
        assert ["%(", "%)"] in langconf["brackets"]
