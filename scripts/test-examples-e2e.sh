#!/usr/bin/env bash
# End-to-end test of the examples: builds npm/dist (scripts/build-wasm.sh), the React app
# (examples/react-app, `vite build`) and the example server, then runs
# examples/react-app/e2e/e2e.mjs in headless Chromium (playwright-core, /usr/bin/chromium).
# The test starts the server itself on a free 127.0.0.1 port with a temporary data dir, and
# restarts it once. Screenshots: examples/react-app/e2e/artifacts/*.png.
# Needs: scripts/install-wasm-tools.sh done, chromium installed (apt-get install -y chromium).
# Usage: bash scripts/test-examples-e2e.sh        (E2E_SKIP_BUILD=1 to reuse the builds)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
app=examples/react-app

pidfile=$(mktemp)
node_pid=""
cleanup() {
  local rc=$?
  [[ -n "$node_pid" ]] && kill "$node_pid" 2>/dev/null || true
  # Servers the test started (it stops them itself; this is for an interrupted run).
  while read -r p; do [[ -n "$p" ]] && kill -9 "$p" 2>/dev/null || true; done <"$pidfile"
  rm -f "$pidfile"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ "${E2E_SKIP_BUILD:-0}" != 1 ]]; then
  echo "== build npm/dist"
  nice -n 5 bash scripts/build-wasm.sh
  echo "== npm ci ($app)"
  # Reinstall when the lock file changed since the last install (or nothing is installed).
  if [[ ! -f "$app/node_modules/.package-lock.json" || "$app/package-lock.json" -nt "$app/node_modules/.package-lock.json" ]]; then
    (cd "$app" && npm ci --no-audit --no-fund)
  else
    echo "up to date"
  fi
  echo "== event catalogue: generated files up to date, TypeScript compiles and agrees with Rust (examples/catalogue)"
  CATALOGUE_REQUIRE_TS=1 nice -n 5 cargo test -p tidings-example-catalogue --locked --test catalogue
  echo "== typecheck + vite build"
  (cd "$app" && npx --no-install tsc --noEmit -p tsconfig.json && npx --no-install vite build --logLevel warn)
  echo "== cargo build -p tidings-example-server"
  nice -n 5 cargo build -p tidings-example-server
fi

[[ -f "$app/dist/index.html" ]] || { echo "test-examples-e2e: $app/dist is missing (vite build)" >&2; exit 1; }
rm -f "$app"/e2e/artifacts/*.png "$app"/e2e/artifacts/server.log

echo "== e2e"
SERVER_BIN="$root/target/debug/tidings-example-server" E2E_PID_FILE="$pidfile" \
  node "$app/e2e/e2e.mjs" &
node_pid=$!
wait "$node_pid"
node_pid=""
