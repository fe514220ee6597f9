#!/usr/bin/env bash
# Installs the dependencies of the Node socket.io test server
# (testing/node-server) from its lock file, only when needed:
#   - node_modules is missing, or
#   - package-lock.json is newer than node_modules/.package-lock.json
#     (the copy npm writes after every install).
# Idempotent; works from any directory.
# Usage: bash scripts/install-node-deps.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

dir=testing/node-server

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "install-node-deps: node and npm are required (Node >= 18)" >&2
  exit 1
fi

if [[ ! -d "$dir/node_modules" ||
      ! -f "$dir/node_modules/.package-lock.json" ||
      "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]]; then
  echo "install-node-deps: npm ci in $dir"
  (cd "$dir" && npm ci --no-audit --no-fund)
else
  echo "install-node-deps: $dir/node_modules is up to date"
fi
