#!/usr/bin/env bash
# Installs what the browser build and its tests need, only what is missing (idempotent):
#   - the Rust target wasm32-unknown-unknown
#   - wasm-bindgen-cli 0.2.130 (wasm-bindgen + wasm-bindgen-test-runner), matching the pinned crate
#   - chromium + chromium-driver (headless browser tests), firefox-esr (the npm smoke tests in
#     Firefox, over WebDriver BiDi), from Debian
#   - npm/node_modules (esbuild, TypeScript, binaryen's wasm-opt), from npm/package-lock.json
#   - testing/node-server/node_modules (the Node socket.io test server)
#   - testing/runtimes/node_modules (Node 22 and Deno, from npm: scripts/install-runtimes.sh)
# Works from any directory.
# Usage: bash scripts/install-wasm-tools.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

WASM_BINDGEN_VERSION=0.2.130

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  echo "install-wasm-tools: rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

if [[ "$(wasm-bindgen --version 2>/dev/null || true)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]]; then
  # Not --locked: the CLI's lock file wants a webpki-roots version the registry lacks.
  echo "install-wasm-tools: cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 2.5 min)"
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --no-default-features --force
fi

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1 ||
   ! command -v firefox-esr >/dev/null 2>&1; then
  echo "install-wasm-tools: apt-get install chromium chromium-driver firefox-esr"
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq chromium chromium-driver firefox-esr
fi

# npm/node_modules: only when missing or older than the lock file (npm writes
# node_modules/.package-lock.json after every install).
if [[ ! -d npm/node_modules ||
      ! -f npm/node_modules/.package-lock.json ||
      npm/package-lock.json -nt npm/node_modules/.package-lock.json ]]; then
  echo "install-wasm-tools: npm ci in npm"
  (cd npm && npm ci --no-audit --no-fund)
else
  echo "install-wasm-tools: npm/node_modules is up to date"
fi

bash scripts/install-node-deps.sh
bash scripts/install-runtimes.sh
