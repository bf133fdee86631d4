#!/usr/bin/env bash
# Set up everything stap_ls needs on a Debian 12 machine (run as root).
# Idempotent: packages already installed are not fetched again.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

APT_PACKAGES=(
  systemtap systemtap-doc systemtap-sdt-dev linux-headers-amd64   # oracle, tapsets, docs, sys/sdt.h
  python3 python3-venv python3-dev gcc make                      # the package itself
  clang libbpf-dev libbpf1 bpftool                               # the BPF engine (+ its leak checks)
  vim neovim                                                     # real editor clients in tests
  nodejs npm                                                     # the VS Code extension
  man-db                                                         # man pages of the tapsets
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
# node/npm may come from elsewhere (e.g. nodesource); don't replace a working one
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
missing=($(printf '%s\n' "${missing[@]}" | sed '/^$/d'))
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'

if [ -f vscode-ext/package.json ]; then
  (cd vscode-ext && { [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error; })
fi

# tracefs for the target model and the BPF engine (harmless where not permitted)
if [ -d /sys/kernel/tracing ] && [ ! -e /sys/kernel/tracing/events ]; then
  mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
fi
echo "setup: done" >&2
