#!/usr/bin/env bash
# The demo: a real Node socket.io server on 127.0.0.1, the `tidings` CLI listening to it, and a
# few events and an ack round trip sent through it. Ctrl-C stops everything.
# (The full demo with the reference server, the React dashboard and the bot comes with the examples.)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-node-deps.sh
echo "building the tidings CLI…"
cargo build -q -p tidings --bin tidings
cli=target/debug/tidings

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped."
}
trap cleanup EXIT INT TERM

fifo=$(mktemp -u); mkfifo "$fifo"
node testing/node-server/tidings-test-server.mjs --setup s1 >"$fifo" &
pids+=($!)
read -r line <"$fifo"
port=$(printf '%s' "$line" | sed -E 's/.*"port":([0-9]+).*/\1/')
control=$(printf '%s' "$line" | sed -nE 's/.*"control":([0-9]+).*/\1/p'); control=${control:-$port}
cat "$fifo" >/dev/null & pids+=($!)
url="http://127.0.0.1:$port"
echo "Socket.IO server (Node socket.io 4.8, connection state recovery on): $url"

echo
echo "listening with: $cli listen $url --token demo-token --join demo-room"
"$cli" listen "$url" --token demo-token --join demo-room &
pids+=($!)
sleep 1.5

echo
echo "emitting an event with an ack through the CLI:"
echo "  $cli emit $url echo '{\"hello\":\"world\"}' --ack"
"$cli" emit "$url" echo '{"hello":"world"}' --ack
echo
echo "broadcasting through the server's control API (the listener prints them):"
curl -s -X POST "http://127.0.0.1:$control/control/emit?ns=/&event=task.created" \
  -H 'content-type: application/json' -d '[{"id":"evt_1","type":"task.created","data":{"taskId":"t1","title":"Write the demo"}}]' >/dev/null
curl -s -X POST "http://127.0.0.1:$control/control/to?room=demo-room&event=chat.message" \
  -H 'content-type: application/json' -d '[{"room":"demo-room","text":"hi from the room"}]' >/dev/null
sleep 0.5
echo
echo "simulating a network drop (the client reconnects and recovers missed events):"
curl -s -X POST "http://127.0.0.1:$control/control/kill-transports" >/dev/null
curl -s -X POST "http://127.0.0.1:$control/control/emit?ns=/&event=task.completed" \
  -H 'content-type: application/json' -d '[{"id":"evt_2","type":"task.completed","data":{"taskId":"t1"}}]' >/dev/null
sleep 2
cat <<TXT

Emit more yourself, for example:
  curl -X POST 'http://127.0.0.1:$control/control/emit?ns=/&event=notification.created' -H 'content-type: application/json' -d '[{"text":"hello"}]'
  $cli emit $url echo '"ping"' --ack
Press Ctrl-C to stop.
TXT
wait
