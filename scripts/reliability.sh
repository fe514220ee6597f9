#!/usr/bin/env bash
# The whole reliability campaign (docs/RELIABILITY.md) in one command: the fault matrix (native
# client through the fault proxy against Node socket.io and the reference server with its feed,
# the hostile server, slow consumers, several servers, load balancer and cluster faults), the
# reference server's own fault tests, the core's random fault schedules with many more cases,
# the browser package's faults in headless Chromium, and a long fuzz run of every target. The
# test command (scripts/test-all.sh) runs a representative cut of the same tests once; this runs
# them ROUNDS times (flakes show up as failures) and fuzzes for FUZZ_SECONDS per target.
#
#   bash scripts/reliability.sh                         # 3 rounds, 4096 schedules, 600 s per fuzz target
#   ROUNDS=1 PROPTEST_CASES=512 FUZZ_SECONDS=60 bash scripts/reliability.sh
#
# Needs what scripts/test-all.sh installs (it can be run first). Prints a summary at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds=${ROUNDS:-3}
export PROPTEST_CASES=${PROPTEST_CASES:-4096}
export FUZZ_SECONDS=${FUZZ_SECONDS:-600}
started=$(date +%s)
step() { printf '\n=== %s\n' "$*"; }

bash scripts/install-node-deps.sh >/dev/null
bash scripts/install-cluster-tools.sh >/dev/null

native=(--test faults_e2e --test hostile_e2e --test delivery_e2e --test resilience_e2e --test balancer_e2e
  --test cluster_e2e --test node_e2e)
server=(--test faults_e2e --test cluster_e2e --test slow_socket_e2e --test server_e2e)
cargo test -p tidings --locked "${native[@]}" --no-run
cargo test -p tidings-example-server --locked "${server[@]}" --no-run
for round in $(seq "$rounds"); do
  step "round $round/$rounds: native client fault matrix and hostile server"
  cargo test -p tidings --locked "${native[@]}"
  step "round $round/$rounds: reference server faults, slow sockets, cluster"
  cargo test -p tidings-example-server --locked "${server[@]}"
done

step "core: $PROPTEST_CASES random fault schedules, the scenarios"
cargo test -p tidings-core --locked --test properties --test scenarios

step "browser package: faults in headless Chromium (and the rest of the browser suite)"
bash scripts/install-wasm-tools.sh >/dev/null
bash scripts/test-wasm.sh

step "fuzzing every target for $FUZZ_SECONDS s"
bash scripts/fuzz-smoke.sh

echo
echo "reliability: all passed in $(( $(date +%s) - started )) s ($rounds rounds, $PROPTEST_CASES schedules, ${FUZZ_SECONDS} s per fuzz target)"
