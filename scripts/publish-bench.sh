#!/usr/bin/env bash
# Publishing a backlog: the time for the Rust `tidings::Publisher` and the TypeScript
# `tidings/publisher` to publish EVENTS events (queued fire-and-forget, then flush) to the reference
# server, with batches (the default, 100 events a request) and with one request per event
# (`batch(1)` / `batchMax: 1`). See docs/BENCHMARKS.md ("Publishing a backlog").
#
#   bash scripts/publish-bench.sh       10,000 events, 3 runs of each, a fresh server for each run
#
# BENCH_PUBLISH_EVENTS and BENCH_PUBLISH_REPEATS change the sizes. The server is the release build
# (file log in a temporary directory, TIDINGS_EMIT_RATE=off so that the rate limit does not set
# the pace); the Rust publisher is the release build of sdk-native/examples/publish_bench.rs, the
# TypeScript one npm/test/publisher/bench.mjs on Node (it bundles npm/src/publisher.ts with esbuild).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
events="${BENCH_PUBLISH_EVENTS:-10000}"
repeats="${BENCH_PUBLISH_REPEATS:-3}"
key="publish-bench-internal-key-0123456789"

cargo build --release -q -p tidings-example-server
cargo build --release -q -p tidings --example publish_bench
if [ ! -f npm/node_modules/esbuild/package.json ]; then
  (cd npm && npm ci --no-audit --no-fund --loglevel=error)
fi
server_bin="$CARGO_TARGET_DIR/release/tidings-example-server"
rust_bin="$CARGO_TARGET_DIR/release/examples/publish_bench"

server_pid=""
data=""
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
  if [ -n "$data" ]; then rm -rf "$data"; data=""; fi
}
trap stop_server EXIT

# Starts a fresh server on a free port of 127.0.0.1; sets $port.
start_server() {
  data="$(mktemp -d)"
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  RUST_LOG=warn TIDINGS_EMIT_RATE=off "$server_bin" --bind "127.0.0.1:$port" --data-dir "$data" \
    --jwt-secret publish-bench-jwt-secret-0123456789 --internal-api-key "$key" --no-dev-login &
  server_pid=$!
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return; fi
    sleep 0.1
  done
  echo "the server did not listen on $port within 10 s" >&2
  exit 1
}

results="$(mktemp)"
for run in $(seq "$repeats"); do
  for publisher in rust ts; do
    for batch in 100 1; do
      start_server
      if [ "$publisher" = rust ]; then
        TIDINGS_API_KEY="$key" "$rust_bin" "http://127.0.0.1:$port" "$events" "$batch" | tee -a "$results"
      else
        (cd npm && TIDINGS_API_KEY="$key" node test/publisher/bench.mjs "http://127.0.0.1:$port" "$events" "$batch") | tee -a "$results"
      fi
      stop_server
    done
  done
  echo "run $run of $repeats done" >&2
done

# The median of the runs of each (publisher, batch).
python3 - "$results" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print()
print("| publisher | batch | events | median ms | events/s | batch requests | runs (ms) |")
print("|---|---:|---:|---:|---:|---:|---|")
for pub in ("rust", "ts"):
    for batch in (100, 1):
        runs = [r for r in rows if r["publisher"] == pub and r["batch"] == batch]
        if not runs:
            continue
        ms = statistics.median(r["ms"] for r in runs)
        events = runs[0]["events"]
        failed = sum(r["failed"] for r in runs)
        name = "Rust `tidings::Publisher`" if pub == "rust" else "TypeScript `tidings/publisher`"
        note = "" if failed == 0 else f" ({failed} failed!)"
        all_ms = ", ".join(f"{r['ms']:,}" for r in runs)
        print(f"| {name} | {batch} | {events:,} | {ms:,.0f} | {events / (ms / 1000):,.0f} | {runs[0]['batches']:,}{note} | {all_ms} |")
EOF
rm -f "$results"
