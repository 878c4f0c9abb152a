#!/usr/bin/env bash
# Builds app.py into a component of the sluice:mapper world with the pinned
# componentize-py (installed with pip when missing).
# Usage: ./build.sh [OUT.wasm]   (default: {{name}}.wasm)
set -euo pipefail
cd "$(dirname "$0")"
out="$(realpath -m "${1:-{{name}}.wasm}")"
version=0.25.1
# Through the module's entry point, so a user-level install works whether or
# not its scripts folder is on PATH.
componentize_py() { python3 -c 'import sys, componentize_py; sys.argv[0] = "componentize-py"; componentize_py.script()' "$@"; }
if ! componentize_py --version 2>/dev/null | grep -q "$version"; then
  python3 -m pip install --quiet --disable-pip-version-check "componentize-py==$version"
fi
# wit_world/: the bindings, for your editor (componentize makes its own).
componentize_py -d wit -w mapper bindings . >/dev/null
componentize_py -d wit -w mapper componentize app -o "$out" >/dev/null
