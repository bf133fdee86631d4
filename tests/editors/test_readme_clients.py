"""The client registrations shown in README.md's "## Editors" section work as
written: the Neovim Lua block starts `stap-ls serve` for a systemtap buffer in
the real Neovim 0.7 (the call to vim.lsp.start_client is observed, then made),
the vim-lsp block registers the server (vim-lsp itself is not installable
here, so its one entry point lsp#register_server records what it is given),
and the coc.nvim block is valid JSON with the right command and filetype."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from editors_support import ROOT, run_vim


def editors_section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Editors")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else len(text)]


def block(lang: str) -> str:
    m = re.search(rf"```{lang}\n(.*?)```", editors_section(), re.S)
    assert m is not None, f"README ## Editors has no ```{lang} block"
    return m.group(1)


def test_neovim_lua_snippet_starts_the_server(tmp_path: Path) -> None:
    lua = tmp_path / "init.lua"
    lua.write_text(
        "_G.seen = {}\n"
        "local real = vim.lsp.start_client\n"
        "vim.lsp.start_client = function(c) table.insert(_G.seen, c); return real(c) end\n"
        + block("lua"))
    f = tmp_path / "s.stp"
    f.write_text("probe begin { exit() }\n")
    r = run_vim("nvim", None,
                f"luafile {lua}\nedit {f}\n"
                "let g:result = luaeval('vim.tbl_map(function(c) return {c.name, c.cmd, "
                "c.root_dir, c.init_options} end, _G.seen)')")
    assert r == [["stap-ls", ["stap-ls", "serve"], str(tmp_path), {"kernelRelease": ""}]]


def test_vim_lsp_snippet_registers_the_server(tmp_path: Path) -> None:
    autoload = tmp_path / "rtp" / "autoload"
    autoload.mkdir(parents=True)
    (autoload / "lsp.vim").write_text(
        "let g:registered = []\n"
        "function! lsp#register_server(info) abort\n"
        "  call add(g:registered, a:info)\nendfunction\n")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "stap-ls"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    vimrc = tmp_path / "vimrc"
    vimrc.write_text(block("vim"))
    old = os.environ["PATH"]
    os.environ["PATH"] = f"{bindir}:{old}"
    try:
        r = run_vim("vim", None,
                    f"set rtp^={tmp_path / 'rtp'}\nsource {vimrc}\ndoautocmd User lsp_setup\n"
                    "let s:i = g:registered[0]\n"
                    "let g:result = [len(g:registered), s:i.name, s:i.cmd({}), s:i.allowlist,"
                    " s:i.workspace_config]")
    finally:
        os.environ["PATH"] = old
    assert r == [1, "stap-ls", ["stap-ls", "serve"], ["systemtap"],
                 {"stap-ls": {"kernelRelease": ""}}]


def test_coc_snippet() -> None:
    conf = json.loads(block("json"))["languageserver"]["stap-ls"]
    assert conf["command"] == "stap-ls"
    assert conf["args"] == ["serve"]
    assert conf["filetypes"] == ["systemtap"]
    assert "stap-ls" in conf["settings"]
