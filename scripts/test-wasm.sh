#!/usr/bin/env bash
# Runs the browser tests of the driver (sdk-wasm/tests/browser.rs) in headless Chromium against the
# real Node socket.io test server: starts seven servers on ephemeral ports (s0, more s0s for the
# kill-transports and block-websocket tests, s1 with connection state recovery, another s1 for the
# REST feed test, polling-only, and an s1 with a 500 + 500 ms heartbeat behind the fault proxy),
# the fault proxy (testing/node-server/fault-proxy.mjs: a Node TCP proxy that the fault tests
# switch through its HTTP control port to blackhole, reset every connection, cut WebSocket
# upgrades or add latency), and a Node cluster for the cluster tests (redis-server on an
# ephemeral port, then s1 nodes on it with the Redis streams adapter: a pair A/B per test, A
# ended by the test, and a publisher C); builds and starts the reference server
# (examples/server, no session recovery, its REST feed; 500 + 500 ms heartbeat) with a fault
# proxy of its own and the relay the tests publish through (testing/node-server/emit-relay.mjs),
# its CORS open to the test page alone (the page's address is fixed here:
# WASM_BINDGEN_TEST_ADDRESS); passes their URLs to the test build at compile time, runs
# `cargo test -p tidings-wasm --target wasm32-unknown-unknown` with wasm-bindgen-test-runner,
# then builds the npm package (scripts/build-wasm.sh) and runs it where front-ends run: its
# browser smoke test (npm/test/browser/smoke.mjs) and the same API in a dedicated Web Worker
# (worker.mjs), each in Chromium (playwright-core) and in Firefox ESR (WebDriver BiDi); on Node 20
# and Node 22 and on Deno (npm/test/node/connect.mjs, both transports); a server render with React
# then hydration in Chromium (ssr.mjs). Stops the servers on exit. Needs the tools of
# scripts/install-wasm-tools.sh (the runtimes of scripts/install-runtimes.sh are installed here
# when missing). Works from any directory.
# Usage: bash scripts/test-wasm.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-node-deps.sh >/dev/null
bash scripts/install-runtimes.sh >/dev/null
for tool in wasm-bindgen-test-runner chromedriver firefox-esr; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "test-wasm: $tool is missing; run bash scripts/install-wasm-tools.sh" >&2
    exit 1
  fi
done

tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for fd in "${fds[@]:-}"; do [[ -n "$fd" ]] && eval "exec $fd>&-" 2>/dev/null || true; done
  rm -rf "$tmp"
}
fds=()
trap cleanup EXIT

# Runs `node "$@"` as $name, its stdin a pipe held by this shell (it exits when the pipe closes,
# so it also goes away if this script is killed), and waits for its JSON line ({"port":N,...}) in
# $tmp/$name.out.
launch() {
  local name=$1
  shift
  mkfifo "$tmp/$name.in"
  node "$@" <"$tmp/$name.in" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  pids+=($!)
  local fd
  exec {fd}>"$tmp/$name.in"
  fds+=("$fd")
  for _ in $(seq 100); do
    if grep -q '"port"' "$tmp/$name.out" 2>/dev/null; then return; fi
    sleep 0.1
  done
  echo "test-wasm: $name did not start:" >&2
  cat "$tmp/$name.err" >&2
  exit 1
}

# A port from the JSON line of $1: its field $2.
port_of() {
  sed -E "s/.*\"$2\":([0-9]+).*/\1/" "$tmp/$1.out"
}

# Starts a server with `--setup $1` (and any further arguments) as $2; prints its base URL.
start() {
  local setup=$1 name=$2
  shift 2
  launch "$name" testing/node-server/tidings-test-server.mjs --setup "$setup" "$@"
  echo "http://127.0.0.1:$(port_of "$name" port)"
}

# Not in $(...): the servers must be children of this shell, not of a subshell.
start s0 s0 >"$tmp/url.s0"
start s0 s0kill >"$tmp/url.s0kill"
start s1 s1 >"$tmp/url.s1"
start polling-only polling >"$tmp/url.polling"
start s0 s0block >"$tmp/url.s0block"
start s1 s1feed >"$tmp/url.s1feed"
# The fault tests' server (s1 with the native fault tests' 500 + 500 ms heartbeat) behind the fault
# proxy; the tests reach the server directly (broadcasts), the proxy's port (the client) and its
# control port (the faults).
start s1 s1faults --ping-interval 500 --ping-timeout 500 >"$tmp/url.s1faults"
launch faultproxy testing/node-server/fault-proxy.mjs --upstream-port "$(port_of s1faults port)"

# The test page's address (wasm-bindgen-test-runner's server), fixed here instead of an ephemeral
# port so that the reference server's CORS can allow exactly that origin (the page calls its
# dev login, its feed and long-polling through the proxy: all cross-origin). A free port below
# the kernel's ephemeral range (32768-60999 on Linux, 49152+ on macOS), where no port-0 listener
# of another run can take it between now and the runner's bind. A WASM_BINDGEN_TEST_ADDRESS the
# caller set (host:port) is kept.
if [[ -z "${WASM_BINDGEN_TEST_ADDRESS:-}" ]]; then
  page_port=$(node -e '
    const net = require("net");
    const attempt = (left) => {
      const port = 20000 + Math.floor(Math.random() * 10000);
      const s = net.createServer();
      s.once("error", () => (left > 0 ? attempt(left - 1) : process.exit(1)));
      s.listen(port, "127.0.0.1", () => { console.log(port); s.close(); });
    };
    attempt(50);')
  export WASM_BINDGEN_TEST_ADDRESS="127.0.0.1:$page_port"
fi
page_origin="http://$WASM_BINDGEN_TEST_ADDRESS"

# The reference server (examples/server: socketioxide, no session recovery, the REST feed) for
# the reference fault tests: its own binary, in whatever target dir cargo uses
# (CARGO_TARGET_DIR included), on 127.0.0.1 and an ephemeral port, a data dir in $tmp, the
# native fault tests' 500 + 500 ms heartbeat, dev login on (loopback), secrets of this run, CORS
# for the test page only. Then a fault proxy in front of it, and the relay the page publishes
# through (POST /internal/emit with the key, testing/node-server/emit-relay.mjs).
cargo build -q -p tidings-example-server
target_dir=$(cargo metadata --format-version 1 --no-deps |
  node -e 'let s = ""; process.stdin.on("data", (c) => (s += c)).on("end", () => console.log(JSON.parse(s).target_directory))')
node -e 'console.log(require("crypto").randomBytes(24).toString("hex"))' >"$tmp/reference.key"
: >"$tmp/reference.log"
# None of the caller's TIDINGS_* settings (a Redis URL, JSON logs, ...): only these.
unset_tidings=()
while IFS='=' read -r name _; do
  if [[ $name == TIDINGS_* ]]; then unset_tidings+=(-u "$name"); fi
done < <(env)
env ${unset_tidings[@]+"${unset_tidings[@]}"} \
  TIDINGS_JWT_SECRET=$(node -e 'console.log(require("crypto").randomBytes(24).toString("hex"))') \
  TIDINGS_INTERNAL_API_KEY=$(cat "$tmp/reference.key") \
  TIDINGS_PING_INTERVAL_MS=500 TIDINGS_PING_TIMEOUT_MS=500 \
  "$target_dir/debug/tidings-example-server" --bind 127.0.0.1:0 --data-dir "$tmp/reference" --dev-login \
  --cors-origin "$page_origin" >>"$tmp/reference.log" 2>&1 &
pids+=($!)
reference_port=""
for _ in $(seq 100); do
  reference_port=$(sed -nE 's/.*listening.*addr=127\.0\.0\.1:([0-9]+).*/\1/p' "$tmp/reference.log" | head -1)
  if [[ -n "$reference_port" ]]; then break; fi
  kill -0 "${pids[-1]}" 2>/dev/null || break
  sleep 0.1
done
if [[ -z "$reference_port" ]]; then
  echo "test-wasm: the reference server did not start:" >&2
  cat "$tmp/reference.log" >&2
  exit 1
fi
launch referenceproxy testing/node-server/fault-proxy.mjs --upstream-port "$reference_port"
launch emitrelay testing/node-server/emit-relay.mjs --upstream-port "$reference_port" \
  --key-file "$tmp/reference.key" --origin "$page_origin"
# Redis for the cluster, on 127.0.0.1 and a port that was free a moment ago (another port if that
# one was taken meanwhile), without persistence, in $tmp; killed on exit like the servers.
redis_port=""
for _ in 1 2 3 4 5; do
  port=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
  redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --dir "$tmp" --loglevel warning \
    >"$tmp/redis.log" 2>&1 &
  redis_pid=$!
  for _ in $(seq 50); do
    if redis-cli -p "$port" info server 2>/dev/null | grep -q "^process_id:$redis_pid"; then redis_port=$port; break; fi
    kill -0 "$redis_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -n "$redis_port" ]]; then pids+=("$redis_pid"); break; fi
  kill "$redis_pid" 2>/dev/null || true
done
if [[ -z "$redis_port" ]]; then
  echo "test-wasm: redis-server did not start (bash scripts/install-cluster-tools.sh installs it):" >&2
  cat "$tmp/redis.log" >&2
  exit 1
fi
redis_url="redis://127.0.0.1:$redis_port"
for pair in stop_ws stop_polling crash_ws; do
  start s1 "cluster_${pair}_a" --redis-url "$redis_url" >"$tmp/url.cluster_${pair}_a"
  start s1 "cluster_${pair}_b" --redis-url "$redis_url" >"$tmp/url.cluster_${pair}_b"
done
start s1 cluster_c --redis-url "$redis_url" >"$tmp/url.cluster_c"
export TIDINGS_WASM_CLUSTER_STOP_WS_A_URL=$(cat "$tmp/url.cluster_stop_ws_a")
export TIDINGS_WASM_CLUSTER_STOP_WS_B_URL=$(cat "$tmp/url.cluster_stop_ws_b")
export TIDINGS_WASM_CLUSTER_STOP_POLLING_A_URL=$(cat "$tmp/url.cluster_stop_polling_a")
export TIDINGS_WASM_CLUSTER_STOP_POLLING_B_URL=$(cat "$tmp/url.cluster_stop_polling_b")
export TIDINGS_WASM_CLUSTER_CRASH_WS_A_URL=$(cat "$tmp/url.cluster_crash_ws_a")
export TIDINGS_WASM_CLUSTER_CRASH_WS_B_URL=$(cat "$tmp/url.cluster_crash_ws_b")
export TIDINGS_WASM_CLUSTER_C_URL=$(cat "$tmp/url.cluster_c")
export TIDINGS_WASM_S0_URL=$(cat "$tmp/url.s0")
export TIDINGS_WASM_S0_KILL_URL=$(cat "$tmp/url.s0kill")
export TIDINGS_WASM_S1_URL=$(cat "$tmp/url.s1")
export TIDINGS_WASM_POLLING_ONLY_URL=$(cat "$tmp/url.polling")
export TIDINGS_WASM_S0_BLOCK_URL=$(cat "$tmp/url.s0block")
export TIDINGS_WASM_S1_FEED_URL=$(cat "$tmp/url.s1feed")
export TIDINGS_WASM_FAULT_SERVER_URL=$(cat "$tmp/url.s1faults")
export TIDINGS_WASM_FAULT_PROXY_URL="http://127.0.0.1:$(port_of faultproxy port)"
export TIDINGS_WASM_FAULT_CONTROL_URL="http://127.0.0.1:$(port_of faultproxy control)"
export TIDINGS_WASM_REFERENCE_SERVER_URL="http://127.0.0.1:$reference_port"
export TIDINGS_WASM_REFERENCE_PROXY_URL="http://127.0.0.1:$(port_of referenceproxy port)"
export TIDINGS_WASM_REFERENCE_CONTROL_URL="http://127.0.0.1:$(port_of referenceproxy control)"
export TIDINGS_WASM_REFERENCE_EMIT_URL="http://127.0.0.1:$(port_of emitrelay port)"
echo "test-wasm: servers s0 $TIDINGS_WASM_S0_URL, s0 (kill) $TIDINGS_WASM_S0_KILL_URL, s1 $TIDINGS_WASM_S1_URL, polling-only $TIDINGS_WASM_POLLING_ONLY_URL, cluster on $redis_url"
echo "test-wasm: fault proxy $TIDINGS_WASM_FAULT_PROXY_URL (control $TIDINGS_WASM_FAULT_CONTROL_URL) in front of $TIDINGS_WASM_FAULT_SERVER_URL"
echo "test-wasm: fault proxy $TIDINGS_WASM_REFERENCE_PROXY_URL (control $TIDINGS_WASM_REFERENCE_CONTROL_URL) in front of the reference server $TIDINGS_WASM_REFERENCE_SERVER_URL (emits through $TIDINGS_WASM_REFERENCE_EMIT_URL; CORS for the test page $page_origin)"

# The package first: the driver's tests (sdk-wasm/tests/browser.rs) import its JavaScript half
# with the built .wasm inlined, one file (sdk-wasm/tests/generated/driver.js, not committed).
bash scripts/build-wasm.sh
mkdir -p sdk-wasm/tests/generated
npm/node_modules/.bin/esbuild sdk-wasm/tests/driver-entry.ts --bundle --format=esm --target=es2022 \
  --loader:.wasm=binary --outfile=sdk-wasm/tests/generated/driver.js --log-level=warning
# The crate is empty on the host: lint it for the target it is built for (its tests need the
# bundle above to compile).
cargo clippy -p tidings-wasm --target wasm32-unknown-unknown --all-targets --locked -- -D warnings

export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
export WASM_BINDGEN_TEST_TIMEOUT=${WASM_BINDGEN_TEST_TIMEOUT:-120}
cargo test -p tidings-wasm --target wasm32-unknown-unknown "$@"

# The built npm package in the browser: dist/index.js + its driver + the .wasm (another origin),
# in a page and in a dedicated Web Worker, in Chromium and in Firefox ESR (driven over WebDriver
# BiDi, which needs a global WebSocket in this Node: behind a flag on Node 20, built in from 22).
ws_flag=""
node -e 'process.exit(typeof WebSocket === "function" ? 0 : 1)' || ws_flag="--experimental-websocket"
node npm/test/browser/smoke.mjs "$TIDINGS_WASM_S0_URL"
node npm/test/browser/worker.mjs "$TIDINGS_WASM_S0_URL"
node $ws_flag npm/test/browser/smoke.mjs "$TIDINGS_WASM_S0_URL" --browser firefox
node $ws_flag npm/test/browser/worker.mjs "$TIDINGS_WASM_S0_URL" --browser firefox

# The package on Node (its "node" export condition): long-polling with fetch, and WebSocket with
# the global one (behind a flag on Node 20, built in from Node 22).
node npm/test/node/connect.mjs "$TIDINGS_WASM_S0_URL" polling
node $ws_flag npm/test/node/connect.mjs "$TIDINGS_WASM_S0_URL" websocket
# The same on Node 22 and on Deno (testing/runtimes, pinned). Deno resolves `tidings` through the
# package's exports with its "node" condition (dist/node.js), as it would from node_modules.
runtimes=testing/runtimes/node_modules/.bin
"$runtimes/node" npm/test/node/connect.mjs "$TIDINGS_WASM_S0_URL" polling
"$runtimes/node" npm/test/node/connect.mjs "$TIDINGS_WASM_S0_URL" websocket
for transport in polling websocket; do
  DENO_NO_UPDATE_CHECK=1 "$runtimes/deno" run --no-prompt --allow-net=127.0.0.1 --allow-read=npm \
    npm/test/node/connect.mjs "$TIDINGS_WASM_S0_URL" "$transport"
done
# Resuming from a stored cursor (feed.since, socket.cursor): history, then live, once each.
node npm/test/node/resume.mjs "$TIDINGS_WASM_S0_URL"
# Subscribe with a snapshot (tidings/snapshot) against the server's subscribe:<topic>.
node npm/test/node/snapshot.mjs "$TIDINGS_WASM_S0_KILL_URL"
# Server rendering (react-dom/server) with no browser global and no connection, then hydration in
# Chromium, which connects.
node npm/test/node/ssr.mjs "$TIDINGS_WASM_S0_URL"
