#!/usr/bin/env bash
# Multi-host installer test: real separate hosts as Docker containers on a
# private network, from locally built images (no registry pulls).
#
#   bootstrap (.2)  serves genconf/serve with `dcos-installer serve`, runs postflight
#   master    (.10) dcos_install.sh master
#   agent1/2  (.21, .22) dcos_install.sh slave
#   public1   (.31) dcos_install.sh slave_public
#   spare     (.41) bad-input cases (port in use, tampered/truncated download,
#                   unreachable bootstrap, wrong role) — must be left untouched
#   sdnode    (.51) systemd as PID 1: dcos_install.sh slave starts dcos-rs-agent.service,
#                   --uninstall removes it (phase systemd)
#
# Usage: tests/multihost/run.sh [PHASE...]
#   phases (default: all but scenario; scenario is added when DCOSD is a real dcosd):
#     images install badinput postflight upgrade systemd scenario
# Environment:
#   DCOSD=PATH       the dcosd to ship, stripped of debug info (default target/debug/dcosd once its --help lists
#                    --config, else the stand-in tests/multihost/fake-dcosd.sh, which only
#                    serves health; DCOSD=fake forces the stand-in)
#   INSTALLER=PATH   dcos-installer binary (default: cargo build -p dcos-installer)
#   SUBNET=A.B.C     /24 of the private network (default 172.31.250)
#   NAME=dcos-rs-mh  prefix of containers and network
#   KEEP=1           leave the cluster running at the end
#   DCOS_USERNAME / DCOS_PASSWORD   superuser (default admin / dcos-rs-admin-pw)
set -o errexit -o nounset -o pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
NAME="${NAME:-dcos-rs-mh}"
SUBNET="${SUBNET:-172.31.250}"
BASE_TAG="${BASE_TAG:-dcos-rs/base:bookworm-2}"
NODE_TAG="dcos-rs/node:1"
BOOT_TAG="dcos-rs/bootstrap:test"
NET="$NAME-net"
BOOT_IP="$SUBNET.2"
MASTER_IP="$SUBNET.10"
AGENT_IPS=("$SUBNET.21" "$SUBNET.22")
PUBLIC_IP="$SUBNET.31"
SPARE_IP="$SUBNET.41"
BOOT_URL="http://$BOOT_IP:8080"
DCOS_USERNAME="${DCOS_USERNAME:-admin}"
DCOS_PASSWORD="${DCOS_PASSWORD:-dcos-rs-admin-pw}"
WORK="$(mktemp -d /tmp/dcos-rs-mh.XXXXXX)"
FAILED=0
FIGURES=()

say() { printf '\n=== %s\n' "$*"; }
ok() { printf '  ok   %s\n' "$*"; }
bad() { printf '  FAIL %s\n' "$*"; FAILED=$((FAILED + 1)); }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; }
node_exec() { local c="$1"; shift; docker exec "$NAME-$c" bash -c "$*"; }

cleanup() {
  local rc=$?
  if [[ "${KEEP:-0}" == 1 ]]; then
    echo "KEEP=1: cluster left running (docker ps --filter name=$NAME); work dir $WORK"
  else
    docker rm -f "$NAME-bootstrap" "$NAME-master" "$NAME-agent1" "$NAME-agent2" "$NAME-public1" "$NAME-spare" "$NAME-sdnode" >/dev/null 2>&1 || true
    docker network rm "$NET" >/dev/null 2>&1 || true
    rm -rf "$WORK"
  fi
  return $rc
}
trap cleanup EXIT
trap 'exit 143' TERM INT

if ! docker info >/dev/null 2>&1; then
  echo "SKIP: multi-host test: no usable Docker engine here (docker info failed)."
  exit 0
fi

PHASES=("$@")
if (( ${#PHASES[@]} == 0 )); then PHASES=(images install badinput postflight upgrade systemd); fi
want() { [[ " ${PHASES[*]} " == *" $1 "* ]]; }

# ---- binaries ----------------------------------------------------------------
if [[ -z "${INSTALLER:-}" ]]; then
  (cd "$ROOT" && cargo build -q -p dcos-installer)
  INSTALLER="$ROOT/target/debug/dcos-installer"
fi
REAL_DCOSD=0
if [[ -z "${DCOSD:-}" && -x "$ROOT/target/debug/dcosd" ]]; then
  # Use the workspace's dcosd once it reads the installer's node config.
  if "$ROOT/target/debug/dcosd" --help 2>&1 | grep -q -- '--config'; then
    DCOSD="$ROOT/target/debug/dcosd"
  else
    echo "NOTE: $ROOT/target/debug/dcosd has no --config option yet; not using it."
  fi
fi
if [[ "${DCOSD:-}" == fake ]]; then DCOSD=""; fi
if [[ -n "${DCOSD:-}" ]]; then
  REAL_DCOSD=1
  if (( ${#} == 0 )); then PHASES+=(scenario); fi
else
  DCOSD="$HERE/fake-dcosd.sh"
  echo "NOTE: no dcosd binary: using the stand-in $DCOSD (health endpoint only)."
fi
echo "installer: $INSTALLER"
echo "dcosd:     $DCOSD"
# Ship dcosd without debug info, as a release would: a debug build is ~270 MB, stripped
# ~45 MB, which is what every node downloads, verifies and unpacks (and genconf hashes
# and compresses). The binary's code is unchanged.
ship_dcosd() { # path -> path of the binary to put in the bundle
  if [[ "$1" == *.sh ]] || ! command -v strip >/dev/null 2>&1; then echo "$1"; return; fi
  local out="$WORK/ship/$(basename "$1")-$(sha256sum "$1" | cut -c1-12)"
  mkdir -p "$WORK/ship"
  [[ -x "$out" ]] || strip -o "$out" "$1" 2>/dev/null || cp "$1" "$out"
  echo "$out"
}
SHIP_DCOSD="$(ship_dcosd "$DCOSD")"
[[ "$SHIP_DCOSD" != "$DCOSD" ]] && echo "shipping:  $SHIP_DCOSD ($(du -h "$SHIP_DCOSD" | cut -f1), stripped)"

# ---- images (cached) ---------------------------------------------------------
say "images"
t0=$(now)
"$HERE/build-base-image.sh"
docker build -q -t "$NODE_TAG" --build-arg BASE="$BASE_TAG" -f "$HERE/Dockerfile.node" "$HERE" >/dev/null
mkdir -p "$WORK/ctx"
cp "$INSTALLER" "$WORK/ctx/dcos-installer"
docker build -q -t "$BOOT_TAG" --build-arg BASE="$BASE_TAG" -f "$HERE/Dockerfile.bootstrap" "$WORK/ctx" >/dev/null
ok "images $BASE_TAG, $NODE_TAG, $BOOT_TAG ready in $(secs "$t0" "$(now)") s"
want install || want badinput || want postflight || want upgrade || want systemd || want scenario || exit 0

# ---- genconf on the operator's machine ---------------------------------------
say "genconf"
mkdir -p "$WORK/genconf"
cat > "$WORK/genconf/config.yaml" <<EOF
bootstrap_url: $BOOT_URL
cluster_name: multihost
master_discovery: static
master_list: [$MASTER_IP]
agent_list: [${AGENT_IPS[0]}, ${AGENT_IPS[1]}]
public_agent_list: [$PUBLIC_IP]
resolvers: [$SUBNET.1]
oauth_enabled: true
superuser_username: $DCOS_USERNAME
superuser_password_hash: '$("$INSTALLER" hash-password "$DCOS_PASSWORD")'
min_free_disk_mb: 256
# An offline cluster (the network is internal): no repository on the internet. The
# scenario adds the local one served by the bootstrap host; the built-in one is always there.
universe_repositories: []
EOF
cat > "$WORK/genconf/ip-detect" <<'EOF'
#!/usr/bin/env bash
set -o nounset -o errexit
ip -4 -o addr show scope global | awk '{split($4, a, "/"); print a[1]; exit}'
EOF
t0=$(now)
"$INSTALLER" genconf --genconf-dir "$WORK/genconf" --dcosd "$SHIP_DCOSD"
t1=$(now)
FIGURES+=("genconf (dcosd $(du -h "$SHIP_DCOSD" | cut -f1)): $(secs "$t0" "$t1") s")
BOOTSTRAP_ID="$(cat "$WORK/genconf/serve/bootstrap.latest")"
"$INSTALLER" verify --serve-dir "$WORK/genconf/serve"

# ---- network and hosts ---------------------------------------------------------
say "hosts"
docker rm -f "$NAME-bootstrap" "$NAME-master" "$NAME-agent1" "$NAME-agent2" "$NAME-public1" "$NAME-spare" "$NAME-sdnode" >/dev/null 2>&1 || true
docker network rm "$NET" >/dev/null 2>&1 || true
docker network create --internal --subnet "$SUBNET.0/24" "$NET" >/dev/null
start_host() { # name ip image [docker args...]
  local n="$1" ip="$2" img="$3"; shift 3
  docker run -d --init --name "$NAME-$n" --hostname "$n" --network "$NET" --ip "$ip" "$@" "$img" >/dev/null
}
docker create --init --name "$NAME-bootstrap" --hostname bootstrap --network "$NET" --ip "$BOOT_IP" "$BOOT_TAG" >/dev/null
docker cp "$WORK/genconf" "$NAME-bootstrap:/bootstrap/" >/dev/null
docker start "$NAME-bootstrap" >/dev/null
start_host master "$MASTER_IP" "$NODE_TAG"
start_host agent1 "${AGENT_IPS[0]}" "$NODE_TAG"
start_host agent2 "${AGENT_IPS[1]}" "$NODE_TAG"
start_host public1 "$PUBLIC_IP" "$NODE_TAG"
start_host spare "$SPARE_IP" "$NODE_TAG"
for _ in $(seq 1 50); do
  node_exec master "curl -fsS -o /dev/null $BOOT_URL/bootstrap.latest" 2>/dev/null && break
  sleep 0.2
done
if node_exec master "curl -fsS $BOOT_URL/bootstrap.latest" | grep -q "$BOOTSTRAP_ID"; then
  ok "bootstrap node serves genconf/serve at $BOOT_URL (bootstrap $BOOTSTRAP_ID)"
else
  bad "bootstrap node does not serve $BOOT_URL"; exit 1
fi

# A local Universe repository on the bootstrap host (the cluster has no internet): the
# bundled example packages' index, served with the repository media type Cosmos requires.
UNIVERSE_PORT=8085
REPO_URI="http://$BOOT_IP:$UNIVERSE_PORT/repo"
if want scenario; then
  docker cp "$ROOT/packages/builtin-repo.json" "$NAME-bootstrap:/bootstrap/universe-repo.json" >/dev/null
  node_exec bootstrap "setsid nohup python3 -c '
import http.server
body = open(\"/bootstrap/universe-repo.json\", \"rb\").read()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path == \"/repo\"
        self.send_response(200 if ok else 404)
        self.send_header(\"Content-Type\", \"application/vnd.dcos.universe.repo+json;charset=utf-8;version=v4\")
        self.send_header(\"Content-Length\", str(len(body) if ok else 0))
        self.end_headers()
        if ok: self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer((\"0.0.0.0\", $UNIVERSE_PORT), H).serve_forever()
' >/tmp/universe.log 2>&1 < /dev/null &"
fi

health_url() { # role ip
  case "$1" in
    master) echo "http://$2:80/system/health/v1" ;;
    *) echo "http://$2:61001/system/health/v1" ;;
  esac
}
wait_healthy() { # role ip timeout -> 0 when the node answers its health endpoint
  local deadline=$(( $(date +%s) + $3 ))
  while (( $(date +%s) < deadline )); do
    if [[ "$1" == master ]]; then
      # Through Admin Router: 200, or 401 (auth on) means it is up and routing.
      code="$(node_exec bootstrap "curl -s -o /dev/null -w '%{http_code}' $(health_url "$1" "$2")" || true)"
      [[ "$code" == 200 || "$code" == 401 ]] && return 0
    else
      node_exec bootstrap "curl -fsS -o /dev/null $(health_url "$1" "$2")" 2>/dev/null && return 0
    fi
    sleep 0.5
  done
  return 1
}
install_node() { # container role ip; may run in the background: results go to files
  local c="$1" role="$2" ip="$3" t0 t1
  t0=$(now)
  if node_exec "$c" "cd /root && curl -fsSO $BOOT_URL/dcos_install.sh && bash dcos_install.sh $role" > "$WORK/install-$c.log" 2>&1; then
    if wait_healthy "$role" "$ip" 60; then
      t1=$(now)
      echo "ok   $c: dcos_install.sh $role -> healthy in $(secs "$t0" "$t1") s" > "$WORK/result-$c"
      echo "node $c ($role) dcos_install.sh to healthy: $(secs "$t0" "$t1") s" > "$WORK/figure-$c"
    else
      { echo "FAIL $c: installed but $(health_url "$role" "$ip") never answered"; sed 's/^/      /' "$WORK/install-$c.log"
        node_exec "$c" "tail -n 30 /var/lib/dcos-rs/log/dcosd.log" | sed 's/^/      log: /' || true; } > "$WORK/result-$c"
    fi
  else
    { echo "FAIL $c: dcos_install.sh $role failed:"; sed 's/^/      /' "$WORK/install-$c.log"; } > "$WORK/result-$c"
  fi
}
collect() { # containers...
  local c
  for c in "$@"; do
    sed 's/^/  /' "$WORK/result-$c"
    grep -q '^FAIL' "$WORK/result-$c" && FAILED=$((FAILED + 1))
    [[ -f "$WORK/figure-$c" ]] && FIGURES+=("$(cat "$WORK/figure-$c")")
  done
  return 0
}

# ---- install -----------------------------------------------------------------
if want install; then
  say "install (dcos_install.sh <role> on each host)"
  tc0=$(now)
  install_node master master "$MASTER_IP"
  install_node agent1 slave "${AGENT_IPS[0]}" &
  install_node agent2 slave "${AGENT_IPS[1]}" &
  install_node public1 slave_public "$PUBLIC_IP" &
  wait
  collect master agent1 agent2 public1
  # The generated units are valid for systemd (the base image carries systemd).
  for pair in master:dcos-rs-master agent1:dcos-rs-agent public1:dcos-rs-agent-public; do
    c="${pair%%:*}" unit="${pair#*:}.service"
    if node_exec "$c" "systemd-analyze verify /opt/dcos-rs/lib/systemd/$unit" > "$WORK/verify-$c.log" 2>&1; then
      ok "$c: systemd-analyze verify $unit"
    else
      bad "$c: systemd-analyze verify $unit:"; sed 's/^/      /' "$WORK/verify-$c.log"
    fi
  done
  FIGURES+=("whole 4-node cluster from first install to all healthy: $(secs "$tc0" "$(now)") s")
  # Re-run is safe.
  if node_exec agent1 "bash /root/dcos_install.sh slave" > "$WORK/rerun.log" 2>&1 && grep -q "already installed" "$WORK/rerun.log"; then
    ok "re-running dcos_install.sh slave on agent1 is a no-op"
  else
    bad "re-run on agent1:"; sed 's/^/      /' "$WORK/rerun.log"
  fi
fi

# ---- bad input ------------------------------------------------------------------
untouched() { # container -> 0 when nothing was laid down
  node_exec "$1" "test ! -e /opt/dcos-rs && test ! -e /etc/dcos-rs && test ! -e /var/lib/dcos-rs"
}
expect_refused() { # label container grep-pattern command...
  local label="$1" c="$2" pattern="$3"; shift 3
  if node_exec "$c" "$*" > "$WORK/bad.log" 2>&1; then
    bad "$label: succeeded, expected a refusal"; sed 's/^/      /' "$WORK/bad.log"; return
  fi
  if ! grep -q -- "$pattern" "$WORK/bad.log"; then
    bad "$label: error does not mention '$pattern':"; sed 's/^/      /' "$WORK/bad.log"; return
  fi
  if [[ "$c" == spare ]] && ! untouched spare; then
    bad "$label: the spare node was modified"; return
  fi
  ok "$label: refused ($(grep -m1 -E 'error: |^  - ' "$WORK/bad.log" | sed -E 's/^.*(error: |  - )//' | cut -c1-100))"
}
if want badinput; then
  say "bad input (the spare host must be left as it was)"
  node_exec spare "cd /root && curl -fsSO $BOOT_URL/dcos_install.sh"
  expect_refused "wrong role on the master" master "already installed as 'master'" "bash /root/dcos_install.sh slave"
  expect_refused "master role on a host not in master_list" spare "not in master_list" "bash /root/dcos_install.sh master"
  expect_refused "unknown role" spare "unknown role" "bash /root/dcos_install.sh worker"
  node_exec spare "setsid nohup python3 -m http.server 61001 >/dev/null 2>&1 < /dev/null & echo \$! > /tmp/listener.pid; sleep 1"
  expect_refused "port 61001 in use" spare "port 61001 is already in use" "bash /root/dcos_install.sh slave"
  node_exec spare "kill \$(cat /tmp/listener.pid); rm -f /tmp/listener.pid"
  # A tampered copy of the serve dir on :8081 and a truncated one on :8082.
  node_exec bootstrap "cp -r /bootstrap/genconf/serve /bootstrap/tampered && cp -r /bootstrap/genconf/serve /bootstrap/truncated \
    && f=bootstrap/$BOOTSTRAP_ID.bootstrap.tar.gz \
    && printf 'X' | dd of=/bootstrap/tampered/\$f bs=1 seek=2000 conv=notrunc status=none \
    && truncate -s -1000 /bootstrap/truncated/\$f \
    && (setsid nohup dcos-installer serve --serve-dir /bootstrap/tampered --listen 0.0.0.0:8081 >/dev/null 2>&1 &) \
    && (setsid nohup dcos-installer serve --serve-dir /bootstrap/truncated --listen 0.0.0.0:8082 >/dev/null 2>&1 &) && sleep 0.5"
  expect_refused "tampered download" spare "tampered with or truncated" "bash /root/dcos_install.sh --bootstrap-url http://$BOOT_IP:8081 slave"
  expect_refused "truncated download" spare "tampered with or truncated" "bash /root/dcos_install.sh --bootstrap-url http://$BOOT_IP:8082 slave"
  expect_refused "unreachable bootstrap URL" spare "cannot download" "bash /root/dcos_install.sh --bootstrap-url http://$BOOT_IP:9 slave"
  if untouched spare; then ok "spare host: nothing under /opt/dcos-rs, /etc/dcos-rs, /var/lib/dcos-rs"; else bad "spare host was modified"; fi
fi

# ---- postflight -------------------------------------------------------------------
if want postflight; then
  say "postflight (from the bootstrap host)"
  if node_exec bootstrap "dcos-installer postflight --genconf-dir /bootstrap/genconf --timeout 60 --username '$DCOS_USERNAME' --password '$DCOS_PASSWORD'" > "$WORK/postflight.log" 2>&1; then
    ok "postflight: every node healthy"; sed 's/^/      /' "$WORK/postflight.log"
  else
    bad "postflight:"; sed 's/^/      /' "$WORK/postflight.log"
  fi
fi

scenario() { # before-upgrade | after-upgrade
  NAME="$NAME" MASTER_IP="$MASTER_IP" BOOT_IP="$BOOT_IP" PUBLIC_IP="$PUBLIC_IP" AGENT_IPS="${AGENT_IPS[*]}" \
    DCOS_USERNAME="$DCOS_USERNAME" DCOS_PASSWORD="$DCOS_PASSWORD" STATE="$WORK/scenario.state" REPO_URI="$REPO_URI" \
    bash "$HERE/scenario.sh" "$1"
}
# ---- the cluster scenario, part 1 (needs the real dcosd) -------------------------
if want scenario; then
  if (( REAL_DCOSD == 1 )); then
    say "scenario before the upgrade (through Admin Router on the master)"
    if scenario before-upgrade; then ok "scenario before upgrade"; else bad "scenario before upgrade"; fi
  else
    say "scenario skipped: needs the real dcosd (DCOSD=path)"
  fi
fi

# ---- upgrade --------------------------------------------------------------------
if want upgrade; then
  say "upgrade agents one by one (genconf --upgrade-from $BOOTSTRAP_ID)"
  # A new bundle: a new dcosd build if given, else a config change (both change the id).
  if [[ -n "${UPGRADE_DCOSD:-}" ]]; then NEW_DCOSD="$(ship_dcosd "$UPGRADE_DCOSD")"; else
    NEW_DCOSD="$SHIP_DCOSD"; echo "dns_search: multihost.test" >> "$WORK/genconf/config.yaml"; fi
  "$INSTALLER" genconf --genconf-dir "$WORK/genconf" --dcosd "$NEW_DCOSD" --upgrade-from "$BOOTSTRAP_ID" > "$WORK/genconf-upgrade.log"
  NEW_ID="$(cat "$WORK/genconf/serve/bootstrap.latest")"
  docker cp "$WORK/genconf/." "$NAME-bootstrap:/bootstrap/genconf/" >/dev/null
  for c in agent1 agent2 public1; do
    t0=$(now)
    if node_exec "$c" "cd /root && curl -fsSO $BOOT_URL/upgrade/$BOOTSTRAP_ID/dcos_node_upgrade.sh && bash dcos_node_upgrade.sh" > "$WORK/upgrade-$c.log" 2>&1 \
       && [[ "$(node_exec "$c" "cat /opt/dcos-rs/etc/bootstrap-id")" == "$NEW_ID" ]]; then
      role="$(node_exec "$c" "cat /opt/dcos-rs/etc/role")"
      ip="$(node_exec "$c" "/opt/dcos-rs/bin/detect_ip")"
      if wait_healthy "$role" "$ip" 60; then
        ok "$c upgraded to $NEW_ID and healthy in $(secs "$t0" "$(now)") s"
      else
        bad "$c upgraded but not healthy"
      fi
    else
      bad "$c upgrade:"; sed 's/^/      /' "$WORK/upgrade-$c.log"
    fi
  done
fi

# ---- systemd as PID 1 ----------------------------------------------------------------
if want systemd; then
  say "systemd host (systemd is PID 1: units instead of dcos-rs-supervise)"
  docker run -d --name "$NAME-sdnode" --hostname sdnode --network "$NET" --ip "$SUBNET.51" \
    --tmpfs /run --tmpfs /run/lock -v /sys/fs/cgroup:/sys/fs/cgroup:ro "$NODE_TAG" /lib/systemd/systemd >/dev/null
  for _ in $(seq 1 40); do node_exec sdnode "systemctl is-system-running" 2>/dev/null | grep -qE 'running|degraded' && break; sleep 0.25; done
  if node_exec sdnode "cd /root && curl -fsSO $BOOT_URL/dcos_install.sh && bash dcos_install.sh slave" > "$WORK/sd-install.log" 2>&1 \
     && node_exec sdnode "systemctl is-active dcos-rs-agent.service && systemctl is-enabled dcos-rs-agent.service" >/dev/null \
     && wait_healthy slave "$SUBNET.51" 30; then
    ok "sdnode: dcos_install.sh slave -> dcos-rs-agent.service active, enabled, healthy"
  else
    bad "sdnode: systemd install:"; sed 's/^/      /' "$WORK/sd-install.log"
    node_exec sdnode "systemctl status dcos-rs-agent.service --no-pager" | sed 's/^/      /' || true
  fi
  # Upgrade under systemd: a new bundle (config change), the unit is restarted from the new tree.
  SD_FROM="$(cat "$WORK/genconf/serve/bootstrap.latest")"
  echo "# systemd upgrade $(date +%s)" >> "$WORK/genconf/ip-detect"
  "$INSTALLER" genconf --genconf-dir "$WORK/genconf" --dcosd "${NEW_DCOSD:-$SHIP_DCOSD}" --upgrade-from "$SD_FROM" > /dev/null
  SD_TO="$(cat "$WORK/genconf/serve/bootstrap.latest")"
  docker cp "$WORK/genconf/." "$NAME-bootstrap:/bootstrap/genconf/" >/dev/null
  if node_exec sdnode "cd /root && curl -fsSO $BOOT_URL/upgrade/$SD_FROM/dcos_node_upgrade.sh && bash dcos_node_upgrade.sh" > "$WORK/sd-upgrade.log" 2>&1 \
     && [[ "$(node_exec sdnode "cat /opt/dcos-rs/etc/bootstrap-id")" == "$SD_TO" ]] \
     && node_exec sdnode "systemctl is-active dcos-rs-agent.service" >/dev/null \
     && wait_healthy slave "$SUBNET.51" 30; then
    ok "sdnode: dcos_node_upgrade.sh under systemd -> $SD_TO, unit active, healthy"
  else
    bad "sdnode: systemd upgrade:"; sed 's/^/      /' "$WORK/sd-upgrade.log"
  fi
  if node_exec sdnode "bash /root/dcos_install.sh --uninstall" > "$WORK/sd-uninstall.log" 2>&1 \
     && node_exec sdnode "test ! -e /etc/systemd/system/dcos-rs-agent.service && ! systemctl is-active dcos-rs-agent.service" >/dev/null 2>&1 \
     && untouched sdnode; then
    ok "sdnode: --uninstall stopped and removed the unit and the install"
  else
    bad "sdnode: uninstall:"; sed 's/^/      /' "$WORK/sd-uninstall.log"
  fi
fi

if want scenario && (( REAL_DCOSD == 1 )); then
  say "scenario after the upgrade"
  if scenario after-upgrade; then ok "scenario after upgrade"; else bad "scenario after upgrade"; fi
fi

say "figures"
for f in "${FIGURES[@]}"; do echo "  $f"; done
if (( FAILED > 0 )); then echo "$FAILED check(s) FAILED"; exit 1; fi
echo "all checks passed"
