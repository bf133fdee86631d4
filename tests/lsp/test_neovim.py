"""A real client: headless Neovim (Debian's 0.7, built-in LSP client) runs
``stap-ls serve``, opens a script with an error, receives the diagnostics,
completes after ``probe sys`` and inside a probe body, and hovers ``execname``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

LUA = r"""
local out = {}
local function done()
  local f = io.open(OUT, "w"); f:write(vim.fn.json_encode(out)); f:close()
  vim.cmd("qa!")
end
local id = vim.lsp.start_client({
  name = "stap-ls", cmd = { PYTHON, "-m", "stap_ls", "serve" },
  root_dir = ROOT, init_options = { ["stap-ls"] = {} },
})
vim.cmd("edit " .. SCRIPT)
local buf = vim.api.nvim_get_current_buf()
vim.lsp.buf_attach_client(buf, id)
local client = vim.lsp.get_client_by_id(id)
out.diag_ok = vim.wait(20000, function() return #vim.diagnostic.get(buf) > 0 end, 50)
out.diagnostics = {}
for _, d in ipairs(vim.diagnostic.get(buf)) do
  table.insert(out.diagnostics, { lnum = d.lnum, col = d.col, message = d.message })
end
local uri = vim.uri_from_bufnr(buf)
local function labels(line, character)
  local r = client.request_sync("textDocument/completion",
    { textDocument = { uri = uri }, position = { line = line, character = character } }, 10000, buf)
  local ls = {}
  if r and r.result then
    for _, it in ipairs(r.result.items or r.result) do table.insert(ls, it.label) end
  end
  return ls
end
-- line 0 is 'probe sys': the tapset aliases arrive once the library is loaded
local ok = vim.wait(60000, function()
  out.probe_sys = labels(0, 9)
  return vim.tbl_contains(out.probe_sys, "syscall")
end, 300)
out.body = labels(2, 12)       -- '  print(exec' inside the probe body
local h = client.request_sync("textDocument/hover",
  { textDocument = { uri = uri }, position = { line = 3, character = 10 } }, 10000, buf)
out.hover = h and h.result and h.result.contents and h.result.contents.value or ""
client.stop()
done()
"""

SCRIPT = "probe sys\nprobe begin {\n  print(exec\n  print(execname())\n}\n"


def test_neovim_client(tmp_path: Path):
    nvim = shutil.which("nvim")
    assert nvim, "Neovim is needed for this test: apt-get install neovim"
    script = tmp_path / "demo.stp"
    script.write_text(SCRIPT)
    out = tmp_path / "out.json"
    lua = tmp_path / "test.lua"
    root = Path(__file__).resolve().parents[2]
    lua.write_text(f"OUT={json.dumps(str(out))}\nPYTHON={json.dumps(sys.executable)}\n"
                   f"ROOT={json.dumps(str(root))}\nSCRIPT={json.dumps(str(script))}\n" + LUA)
    proc = subprocess.run([nvim, "--headless", "--clean", "-u", "NONE", "-c",
                           f"luafile {lua}"], cwd=root, capture_output=True, text=True,
                          timeout=180)
    assert out.exists(), f"nvim wrote no result: {proc.stdout[-2000:]} {proc.stderr[-2000:]}"
    res = json.loads(out.read_text())
    assert res["diag_ok"], res
    assert any("parse error" in d["message"] for d in res["diagnostics"]), res["diagnostics"]
    assert "syscall" in res["probe_sys"], res["probe_sys"]
    assert "execname" in res["body"], res["body"]
    assert "Returns the execname" in res["hover"], res["hover"]
