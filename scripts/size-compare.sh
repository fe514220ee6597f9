#!/usr/bin/env bash
# Compares the browser bundle size of Tidings with the realtime client SDKs in its field
# (phoenix, socket.io-client, @supabase/realtime-js, pusher-js, centrifuge, pubnub, ably; exact
# versions pinned in bench/size/package-lock.json). Each package's client entry is bundled with
# esbuild (--bundle --minify --format=esm, platform browser) and measured with gzip -9; Tidings is
# npm/dist/wasm/tidings_wasm_bg.wasm + npm/dist/wasm/tidings_wasm.js + npm/dist/index.js, each
# gzip -9, summed (as the size budget counts it). Prints a markdown table and a JSON line.
# Needs the browser package built first: bash scripts/build-wasm.sh
# Installs bench/size's dependencies from its lock file only when needed:
#   - node_modules is missing, or
#   - package-lock.json is newer than node_modules/.package-lock.json
#     (the copy npm writes after every install).
# Works from any directory.
# Usage: bash scripts/build-wasm.sh && bash scripts/size-compare.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

dir=bench/size

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "size-compare: node and npm are required (Node >= 20)" >&2
  exit 1
fi

if [[ ! -d "$dir/node_modules" ||
      ! -f "$dir/node_modules/.package-lock.json" ||
      "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]]; then
  echo "size-compare: npm ci in $dir" >&2
  (cd "$dir" && npm ci --no-audit --no-fund >&2)
fi

node "$dir/run.mjs"
