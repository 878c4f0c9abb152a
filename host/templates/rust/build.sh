#!/usr/bin/env bash
# Builds the mapper into a component of the sluice:mapper world.
# Usage: ./build.sh [OUT.wasm]   (default: {{name}}.wasm)
set -euo pipefail
cd "$(dirname "$0")"
out="$(realpath -m "${1:-{{name}}.wasm}")"
if command -v rustup >/dev/null 2>&1; then
  rustup target add wasm32-wasip2 >/dev/null 2>&1
fi
cargo build --quiet --release --target wasm32-wasip2
cp "${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release/{{crate}}_mapper.wasm" "$out"
