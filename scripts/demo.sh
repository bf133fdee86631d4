#!/usr/bin/env bash
# Set up, then run the main job on the bundled example: its diagnostics (passes 1
# and 2, as stap reports them) and its -p1 parse tree.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
bash scripts/setup.sh
script=${1:-examples/demo.stp}
echo "== diagnostics of $script (stap-ls check -p2) ==" >&2
.venv/bin/stap-ls check -p2 "$script" >/dev/null || true
echo "== parse tree of $script (stap-ls check -p1) ==" >&2
.venv/bin/stap-ls check -p1 "$script"
