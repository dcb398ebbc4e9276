#!/usr/bin/env bash
# Figures of the single-node cluster (issue 5), on release binaries:
#   * dcosd all-in-one: process start → Admin Router answering (target ≤ 3 s);
#   * `dcos package install hello-service --yes --wait` → healthy task (target ≤ 1.5 s),
#     repeated (install, then uninstall and wait until the app is gone) N times.
#   bash scripts/bench-single-node.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10}
cargo build --release --locked -q -p dcosd -p dcos-cli
bin=$(pwd)/target/release
work=$(mktemp -d /tmp/dcos-bench.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
cleanup() {
  kill "$pid" 2>/dev/null || true
  for p in /proc/[0-9]*; do
    case "$(readlink "$p/cwd" 2>/dev/null)" in "$work"/*) kill -9 "${p#/proc/}" 2>/dev/null || true ;; esac
  done
  rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }
t0=$(now)
"$bin/dcosd" all-in-one --work-dir "$work/node" --listen "127.0.0.1:$port" --log warn 2>"$work/log" &
pid=$!
until curl -fsS -o /dev/null "$url/system/health/v1" 2>/dev/null; do sleep 0.01; done
t1=$(now)
echo "ready: $(python3 -c "print(f'{($t1-$t0)*1000:.0f} ms')")"
export DCOS_DIR=$work/cli
"$bin/dcos" cluster setup "$url" >/dev/null 2>&1
times=()
for i in $(seq 1 "$n"); do
  s=$(now)
  "$bin/dcos" package install hello-service --yes --wait >/dev/null 2>&1
  e=$(now)
  times+=("$(python3 -c "print(round(($e-$s)*1000))")")
  "$bin/dcos" package uninstall hello-service --yes >/dev/null 2>&1
  # Gone = its StopApplication deployment is over (until then a new install is a 409).
  until curl -fsS "$url/service/marathon/v2/deployments" 2>/dev/null | grep -qx '\[\]'; do sleep 0.02; done
done
python3 - "${times[@]}" <<'PY'
import statistics, sys
t = sorted(int(x) for x in sys.argv[1:])
print(f"install --wait to healthy over {len(t)} runs: min {t[0]} ms, median {statistics.median(t):.0f} ms, max {t[-1]} ms")
PY
