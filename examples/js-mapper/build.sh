#!/usr/bin/env bash
# Builds app.js into a component of the sluice:mapper world with the pinned
# jco (package.json, package-lock.json; installed with `npm ci` when
# missing). Usage: ./build.sh [OUT.wasm]   (default: pagerduty_js_mapper.wasm)
#   SLUICE_WIT   the folder holding mapper.wit (default: ../../wit)
set -euo pipefail
cd "$(dirname "$0")"
out="$(realpath -m "${1:-pagerduty_js_mapper.wasm}")"
wit="${SLUICE_WIT:-../../wit}"

if [ ! -x node_modules/.bin/jco ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi

# app.js imports `sluice:mapper/host` without a version; jco needs the one
# the WIT package declares, so it is filled in here, on the same line.
version="$(sed -n 's/^package sluice:mapper@\([^;]*\);.*/\1/p' "$wit"/*.wit | head -n1)"
if [ -z "$version" ]; then
  echo "build.sh: no \`package sluice:mapper@VERSION;\` in $wit" >&2
  exit 1
fi
# The guard rewraps the exports, which `export const` would not allow.
if ! grep -qE '^export function mapToTicketEvent\b' app.js; then
  echo "build.sh: app.js must declare \`export function mapToTicketEvent(delivery, config)\` (not \`export const\`): the guard that reports bugs rewraps it" >&2
  exit 1
fi
mkdir -p build
sed "s#'sluice:mapper/host'#'sluice:mapper/host@$version'#" app.js > build/app.js
cat sluice-guard.js >> build/app.js

# TypeScript declarations of the world, for editors (types/mapper.d.ts).
node_modules/.bin/jco guest-types "$wit" -n mapper -o types >/dev/null
# --disable http: otherwise jco adds wasi:http imports, which the host refuses.
node_modules/.bin/jco componentize build/app.js --wit "$wit" -n mapper --disable http -o "$out" >/dev/null
