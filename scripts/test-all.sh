#!/usr/bin/env bash
# Runs every test of the project. Installs what it needs, idempotently.
# Usage: bash scripts/test-all.sh        (FUZZ_SECONDS=20 per fuzz target by default)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n=== %s (at %d s)\n' "$*" "$(( $(date +%s) - started ))"; }
started=$(date +%s)

step "toolchain"
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || rustup target add wasm32-unknown-unknown
rustup component add clippy rustfmt >/dev/null 2>&1 || true

step "node test server dependencies (npm ci from the lock file)"
bash scripts/install-node-deps.sh

step "HAProxy and Redis for the load-balancer and cluster tests (Debian packages, installed when missing)"
bash scripts/install-cluster-tools.sh

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The browser driver (an empty crate on the host) is linted for wasm32 by scripts/test-wasm.sh,
# once its tests' generated driver bundle exists.

step "tidings-core has no IO or runtime dependency"
if cargo tree -p tidings-core -e normal --locked | grep -E '\b(tokio|web-sys|wasm-bindgen|js-sys|serde_json)\b'; then
  echo "tidings-core must not depend on an IO runtime, web-sys, wasm-bindgen or serde_json" >&2
  exit 1
fi

step "tidings-core and its tests build for wasm32-unknown-unknown"
cargo build -p tidings-core --target wasm32-unknown-unknown --locked
cargo test -p tidings-core --target wasm32-unknown-unknown --no-run --locked

step "event catalogue: the generated Rust and TypeScript are what examples/catalogue/events.json generates"
cargo run -q -p tidings-example-catalogue --bin tidings-catalogue-gen --locked -- --check

step "unit, vector, property, harness, integration and doc tests"
# Builds and runs every test binary. Tests bound their own waits; this bound is the backstop so
# that a hang fails this step with its name in the log instead of stalling the whole run.
cargo test --workspace --locked --no-run
timeout --kill-after=30 1200 cargo test --workspace --locked || {
  rc=$?
  [ "$rc" -ge 124 ] && echo "cargo test did not finish within 20 minutes: the last test named above hung" >&2
  exit "$rc"
}

step "browser toolchain: wasm-bindgen-cli, Chromium, npm packages (installed when missing)"
bash scripts/install-wasm-tools.sh

step "npm package: type checks (event-map generics), React hook tests, tidings/publisher against the reference server"
# npm/test/publisher/e2e.test.ts runs the reference server's debug binary (built by cargo test
# above; this makes sure of it) and fails, saying so, when it is missing.
cargo build -p tidings-example-server --locked
(cd npm && npm run -s typecheck && npx vitest run)

step "browser driver in headless Chromium against Node socket.io; npm build and browser smoke"
bash scripts/test-wasm.sh

step "npm package: exports resolve (publint, typed consumer, ESM imports)"
(cd npm && npm run -s test:package)

step "examples end to end: the React app on tidings/react against the example server, with a restart (Playwright + Chromium)"
bash scripts/test-examples-e2e.sh

step "the demo command starts and stops cleanly"
demo_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
DEMO_PORT=$demo_port DEMO_EXIT_AFTER=3 DEMO_DATA_DIR="$(mktemp -d)" bash scripts/demo.sh
step "the cluster demo (three nodes, Redis, HAProxy) starts and stops cleanly"
DEMO_PORT=$demo_port DEMO_EXIT_AFTER=3 DEMO_DATA_DIR="$(mktemp -d)" bash scripts/demo.sh --cluster

step "benchmark smoke (tiny sizes, every client must finish; numbers not meaningful)"
bash scripts/bench.sh --smoke

step "fuzz smoke (${FUZZ_SECONDS:-20} s per decoder)"
bash scripts/fuzz-smoke.sh

echo
echo "all tests passed in $(( $(date +%s) - started )) s"
