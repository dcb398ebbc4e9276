#!/usr/bin/env bash
# Installs what building and testing this project needs on a fresh Debian machine with Rust.
# Idempotent; safe to re-run. Needs root (or sudo) for apt-get.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
need=()
# zookeeper, haproxy: the ZooKeeper store's and the edge load balancer's tests run the real servers.
for p in pkg-config libssl-dev curl git ca-certificates procps iproute2 psmisc util-linux zookeeper haproxy; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
fi
command -v cargo-nextest >/dev/null 2>&1 || cargo install --locked cargo-nextest
# The published DC/OS CLI and marathon-python, used by the end-to-end suite as real clients.
if [ -f "$here/../shared/tools/install-dcoscli.sh" ]; then
  sh "$here/../shared/tools/install-dcoscli.sh" "${DCOSCLI_VENV:-/tmp/dcoscli-venv}" >/dev/null
fi
