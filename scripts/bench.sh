#!/usr/bin/env bash
# Benchmarks: Tidings vs socket.io-client (Node) vs rust_socketio vs a bare tokio-tungstenite floor,
# on 127.0.0.1, and the npm package vs socket.io-client in headless Chromium. See docs/BENCHMARKS.md.
#
#   bash scripts/bench.sh                 full run  -> bench/results/results.{json,md}, *.png
#   bash scripts/bench.sh --smoke         tiny N    -> bench/results/smoke/ (exits non-zero if any client fails)
#   bash scripts/bench.sh --only rtt,storm    a subset (throughput, rtt, memory, storm, cluster-storm,
#                                             browser); the other sections of results.json are kept
#
# Sizes can be overridden: BENCH_EVENTS, BENCH_ACKS, BENCH_IDLE (BENCH_IDLE_RSIO, BENCH_IDLE_NODE),
# BENCH_STORM_CLIENTS, BENCH_STORM_DOWN_MS, BENCH_CLUSTER_STORM_CLIENTS, BENCH_CLUSTER_STORM_RATE,
# BENCH_REPEATS, BENCH_BROWSER_EVENTS, BENCH_BROWSER_REPEATS.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target/bench}"

out="bench/results"
browser=1
cluster=1
prev=""
for a in "$@"; do
  [ "$a" = "--smoke" ] && out="bench/results/smoke"
  if [ "$prev" = "--only" ]; then
    case ",$a," in *,browser,*) browser=1 ;; *) browser=0 ;; esac
    case ",$a," in *,cluster-storm,*) cluster=1 ;; *) cluster=0 ;; esac
  fi
  prev=$a
done
sudo_=""; [ "$(id -u)" -ne 0 ] && sudo_="sudo"

# rust_socketio 0.6 pulls native-tls, which needs OpenSSL headers.
if command -v dpkg >/dev/null && ! dpkg -s libssl-dev >/dev/null 2>&1; then
  $sudo_ apt-get update -qq && $sudo_ apt-get install -y -qq libssl-dev pkg-config
fi

# socket.io-client 4.8.4, pinned by bench/node/package-lock.json.
if [ ! -f bench/node/node_modules/socket.io-client/package.json ] \
  || [ bench/node/package-lock.json -nt bench/node/node_modules/.package-lock.json ]; then
  (cd bench/node && npm ci --no-audit --no-fund --loglevel=error)
fi

# The browser section (bench/browser/run.mjs): esbuild from npm/node_modules, Chromium from Debian,
# and the npm package in npm/dist (built only when missing: the build needs the wasm toolchain).
if [ "$browser" = 1 ]; then
  if [ ! -f npm/node_modules/.package-lock.json ] || [ npm/package-lock.json -nt npm/node_modules/.package-lock.json ]; then
    (cd npm && npm ci --no-audit --no-fund --loglevel=error)
  fi
  if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
    $sudo_ apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq chromium
  fi
  if [ ! -f npm/dist/index.js ]; then
    bash scripts/install-wasm-tools.sh
    # The wasm build uses the root workspace's target dir, not the benchmark's.
    CARGO_TARGET_DIR="$root/target" bash scripts/build-wasm.sh
  fi
fi

# The cluster-storm section (bench/src/cluster.rs): Redis and HAProxy from Debian, and the reference
# server (release) next to tidings-bench in the same directory.
if [ "$cluster" = 1 ] && ! { command -v haproxy && command -v redis-server; } >/dev/null 2>&1; then
  bash scripts/install-cluster-tools.sh
fi

cargo build --release --locked --manifest-path bench/Cargo.toml
# The `tidings` CLI, measured as a client of its own (next to tidings-bench in the same directory).
cargo build --release --locked -p tidings --bin tidings
if [ "$cluster" = 1 ]; then
  if [ "$out" = "bench/results/smoke" ] && [ -x "$root/target/debug/tidings-example-server" ] && [ -z "${BENCH_SERVER_BIN:-}" ]; then
    # The smoke's numbers mean nothing: the debug build the tests made saves a release build.
    export BENCH_SERVER_BIN="$root/target/debug/tidings-example-server"
  else
    cargo build --release --locked -p tidings-example-server --bin tidings-example-server
  fi
fi
exec "$CARGO_TARGET_DIR/release/tidings-bench" run --out "$out" --node-dir bench/node "$@"
