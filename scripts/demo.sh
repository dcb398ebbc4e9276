#!/usr/bin/env bash
# The main job: build, start a single-node cluster, install a bundled package, reach it.
#   bash scripts/demo.sh          # start (or reuse) the cluster in ./.demo and install hello-service
#   bash scripts/demo.sh stop     # stop the cluster (its tasks are stopped too)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
demo="$root/.demo"
port=${DEMO_PORT:-8000}
url="http://127.0.0.1:$port"

stop() {
  if [ -f "$demo/dcosd.pid" ]; then
    kill "$(cat "$demo/dcosd.pid")" 2>/dev/null || true
    rm -f "$demo/dcosd.pid"
  fi
  # Tasks survive an agent restart by design; a demo stop removes them too.
  for p in /proc/[0-9]*; do
    case "$(readlink "$p/cwd" 2>/dev/null)" in "$demo/work"/*) kill "${p#/proc/}" 2>/dev/null || true ;; esac
  done
}
if [ "${1:-}" = stop ]; then stop; echo "stopped"; exit 0; fi

bash scripts/setup.sh
profile=${DEMO_PROFILE:-release}
echo "== building dcosd and dcos ($profile)"
if [ "$profile" = release ]; then
  cargo build --release --locked -p dcosd -p dcos-cli
else
  cargo build --locked -p dcosd -p dcos-cli
fi
bin="$root/target/$profile"
mkdir -p "$demo"
export DCOS_DIR="$demo/cli" PATH="$bin:$PATH"

if ! curl -fsS "$url/system/health/v1" >/dev/null 2>&1; then
  stop
  echo "== starting a single-node cluster on $url (work dir $demo/work)"
  nohup "$bin/dcosd" all-in-one --work-dir "$demo/work" --listen "127.0.0.1:$port" \
    >"$demo/dcosd.log" 2>&1 &
  echo $! >"$demo/dcosd.pid"
  for _ in $(seq 1 100); do
    curl -fsS "$url/system/health/v1" >/dev/null 2>&1 && break
    sleep 0.1
  done
fi
dcos cluster setup "$url"
echo "== bundled packages"
dcos package search
if curl -fsS -o /dev/null "$url/service/marathon/v2/apps/hello-service" 2>/dev/null; then
  echo "== hello-service is already installed"
else
  echo "== installing hello-service"
  dcos package install hello-service --yes --wait
fi
endpoint=$(curl -fsS "$url/service/marathon/v2/apps/hello-service" |
  python3 -c 'import json,sys; t=json.load(sys.stdin)["app"]["tasks"][0]; print("%s:%s" % (t["host"], t["ports"][0]))')
echo "== GET http://$endpoint/"
curl -fsS "http://$endpoint/"
echo "== and through Admin Router: GET $url/service/hello-service/"
curl -fsS "$url/service/hello-service/"
echo
echo "The cluster is running: export DCOS_DIR=$demo/cli PATH=$bin:\$PATH and try 'dcos task list'."
echo "Stop it with: bash scripts/demo.sh stop"
