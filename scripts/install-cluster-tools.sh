#!/usr/bin/env bash
# Installs what the cluster tests and `scripts/demo.sh --cluster` run: HAProxy (the load balancer)
# and Redis (the shared event log and the Node cluster's adapter), from Debian's packages, only
# when missing. Idempotent. The tests start their own instances on 127.0.0.1 with ephemeral
# ports; the services the packages install are not used (and not started here).
set -euo pipefail
missing=()
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if ((${#missing[@]})); then
  sudo_=""; [ "$(id -u)" -ne 0 ] && sudo_="sudo"
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq "${missing[@]}"
fi
haproxy -v | sed -n 1p
redis-server --version
