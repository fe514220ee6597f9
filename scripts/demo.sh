#!/usr/bin/env bash
# The demo: the reference server (examples/server) on 127.0.0.1 serving the React dashboard
# (examples/react-app), and the bot (examples/bot) assigning every new task. Open the printed
# URL, sign in as alice, create a task: the bot assigns it and announces it in #general.
# Ctrl-C stops everything.
#   DEMO_PORT=3000         the server's port
#   DEMO_EXIT_AFTER=SECS   non-interactive: wait until /health answers, stay up SECS seconds
#                          (0: stop at once), stop everything and exit 0 (CI smoke test)
#   --cluster              the same on three server nodes over one Redis, behind HAProxy on
#                          DEMO_PORT (nodes on the next three ports; docs/DEPLOYMENT.md). Kill a
#                          node (its pid is printed) and watch the dashboard move and catch up.
# Idempotent: installs and builds only what is missing or changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cluster=0
for a in "$@"; do
  case "$a" in
    --cluster) cluster=1 ;;
    *) echo "usage: bash scripts/demo.sh [--cluster]" >&2; exit 2 ;;
  esac
done

port=${DEMO_PORT:-3000}
exit_after=${DEMO_EXIT_AFTER:-}
app=examples/react-app
url="http://127.0.0.1:$port"
key=${TIDINGS_INTERNAL_API_KEY:-tidings-dev-internal-key}
data_dir=${DEMO_DATA_DIR:-target/demo-data}

if curl -s -o /dev/null "$url/health" 2>/dev/null; then
  echo "demo: something already answers on $url; stop it or set DEMO_PORT" >&2
  exit 1
fi

echo "== tools (scripts/install-wasm-tools.sh)"
bash scripts/install-wasm-tools.sh
echo "== npm/dist (scripts/build-wasm.sh)"
nice -n 5 bash scripts/build-wasm.sh | tail -n 3
echo "== $app: npm ci when needed, vite build"
if [[ ! -f "$app/node_modules/.package-lock.json" || "$app/package-lock.json" -nt "$app/node_modules/.package-lock.json" ]]; then
  (cd "$app" && npm ci --no-audit --no-fund)
fi
(cd "$app" && npx --no-install vite build --logLevel warn)
echo "== cargo build -p tidings-example-server -p tidings-example-bot"
nice -n 5 cargo build -q -p tidings-example-server -p tidings-example-bot

pids=()
stopping=0
cleanup() {
  [[ $stopping == 1 ]] && return
  stopping=1
  echo
  echo "demo: stopping…"
  # Reverse order: the bot first, then the server (SIGTERM: both shut down gracefully).
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  echo "demo: stopped."
}
trap cleanup EXIT
trap 'exit 0' INT TERM

mkdir -p "$data_dir"
# Waits until $1/health answers; $2: the pid that must stay alive meanwhile.
wait_health() {
  for _ in $(seq 100); do
    curl -s -o /dev/null "$1/health" && return 0
    kill -0 "$2" 2>/dev/null || { echo "demo: a process exited (see above)" >&2; exit 1; }
    sleep 0.1
  done
  curl -s -o /dev/null "$1/health" || { echo "demo: $1/health did not answer" >&2; exit 1; }
}
if [[ $cluster == 1 ]]; then
  echo "== HAProxy and Redis (scripts/install-cluster-tools.sh)"
  bash scripts/install-cluster-tools.sh >/dev/null
  redis_port=$((port + 4))
  mkdir -p "$data_dir/redis"
  echo "== starting Redis on 127.0.0.1:$redis_port (append-only, fsync always; data in $data_dir/redis)"
  redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly yes --appendfsync always \
    --dir "$data_dir/redis" --logfile "" >"$data_dir/redis.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do
    [[ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" == PONG ]] && break
    sleep 0.1
  done
  node_pids=()
  for i in 1 2 3; do
    echo "== starting node $i on 127.0.0.1:$((port + i))"
    target/debug/tidings-example-server --bind "127.0.0.1:$((port + i))" --data-dir "$data_dir/node$i" \
      --static-dir "$app/dist" --internal-api-key "$key" --redis-url "redis://127.0.0.1:$redis_port" &
    pids+=($!)
    node_pids+=($!)
    wait_health "http://127.0.0.1:$((port + i))" "$!"
  done
  cat >"$data_dir/haproxy.cfg" <<CFG
global
  maxconn 4096
defaults
  mode http
  timeout connect 1s
  timeout client 60s
  timeout server 60s
  timeout tunnel 1h
  timeout check 1s
  option redispatch
  retries 2
frontend fe
  bind 127.0.0.1:$port
  default_backend nodes
backend nodes
  balance roundrobin
  cookie SRV insert indirect nocache
  option httpchk GET /health
  http-check expect status 200
  default-server check inter 500 fall 2 rise 2 on-marked-down shutdown-sessions
  server n1 127.0.0.1:$((port + 1)) cookie n1
  server n2 127.0.0.1:$((port + 2)) cookie n2
  server n3 127.0.0.1:$((port + 3)) cookie n3
CFG
  echo "== starting HAProxy on 127.0.0.1:$port"
  haproxy -db -f "$data_dir/haproxy.cfg" 2>"$data_dir/haproxy.log" &
  pids+=($!)
  wait_health "$url" "$!"
else
  echo "== starting the server (data in $data_dir)"
  target/debug/tidings-example-server --bind "127.0.0.1:$port" --data-dir "$data_dir" --static-dir "$app/dist" \
    --internal-api-key "$key" &
  pids+=($!)
  wait_health "$url" "${pids[0]}"
fi

echo "== starting the bot"
target/debug/tidings-example-bot --url "$url" --internal-api-key "$key" &
pids+=($!)

cat <<TXT

  Tidings demo is running.

  Open  $url  and sign in as alice (bob in another window to chat).
  Create a task in the dashboard: the bot assigns it and announces it in #general.

  From a shell (dev login, then events through the internal API):
    TOKEN=\$(curl -s -XPOST $url/api/dev/login -H 'content-type: application/json' -d '{"userId":"alice"}' | sed 's/.*"token":"\\([^"]*\\)".*/\\1/')
    curl -s -XPOST $url/internal/emit -H 'x-internal-api-key: $key' -H 'content-type: application/json' \\
      -d '{"to":{"room":"tenant:acme"},"event":"task.created","data":{"taskId":"t1","tenantId":"acme","userId":"carol","task":{"id":"t1","title":"Write the docs"}}}'
    curl -s -XPOST $url/internal/emit -H 'x-internal-api-key: $key' -H 'content-type: application/json' \\
      -d '{"to":{"users":["alice"]},"event":"notification.created","tenantId":"acme","data":{"title":"Hello","text":"from curl"}}'
    curl -s "$url/api/polling/acme/events?since=0" -H "authorization: Bearer \$TOKEN"

  Restart the server (Ctrl-C, run again): the dashboard reconnects and catches up from the feed.
  Press Ctrl-C to stop.

TXT
if [[ $cluster == 1 ]]; then
  cat <<TXT
  Cluster: HAProxy on $url in front of three nodes (pids ${node_pids[*]}) on ports $((port + 1))-$((port + 3)),
  one Redis on $redis_port. Kill a node (kill -9 PID): its clients move to another node and catch
  up from the feed; restart it by running the demo again. docs/DEPLOYMENT.md says what each
  failure does.

TXT
fi

if [[ -n "$exit_after" ]]; then
  sleep "$exit_after"
  curl -sf "$url/health" >/dev/null || { echo "demo: $url/health stopped answering" >&2; exit 1; }
  echo "demo: DEMO_EXIT_AFTER=$exit_after: /health answered; stopping."
  exit 0
fi
wait
