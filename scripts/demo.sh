#!/usr/bin/env bash
# Set up, then run the main job on the bundled example: its diagnostics and its -p1 tree.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
bash scripts/setup.sh
.venv/bin/stap-ls check -p1 examples/demo.stp
