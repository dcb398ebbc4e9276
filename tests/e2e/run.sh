#!/usr/bin/env bash
# End-to-end suite: real single-node clusters (dcosd all-in-one on loopback), driven by our
# `dcos`, by the published DC/OS CLI 0.6.1 and by marathon-python, with auth off and on.
#
#   bash tests/e2e/run.sh            # builds release binaries first
#
# Needs ../shared (the Universe corpus and the DC/OS CLI installer); without it the corpus
# steps and the published-CLI steps are skipped with a message.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
shared="$root/../shared"
venv=${DCOSCLI_VENV:-/tmp/dcoscli-venv}
work=$(mktemp -d /tmp/dcos-e2e.XXXXXX)
pids=()
passed=0
failed=0
skipped=0

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  # Tasks outlive their agent by design (checkpointing); the suite removes its own: every
  # process whose working directory is a sandbox under $work.
  for p in /proc/[0-9]*; do
    case "$(readlink "$p/cwd" 2>/dev/null)" in "$work"/*) kill -9 "${p#/proc/}" 2>/dev/null || true ;; esac
  done
  [ -n "${KEEP_E2E:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

log() { printf '\n== %s\n' "$*"; }
ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() {
  failed=$((failed + 1))
  echo "not ok - $1"
  [ -f "$work/out" ] && sed 's/^/    | /' "$work/out" | tail -25
}
skip() { skipped=$((skipped + 1)); echo "skip - $1"; }

# check DESC CMD... : CMD must succeed.
check() {
  local desc=$1; shift
  if "$@" >"$work/out" 2>&1; then ok "$desc"; else not_ok "$desc"; fi
}
# check_fails DESC CMD... : CMD must fail.
check_fails() {
  local desc=$1; shift
  if "$@" >"$work/out" 2>&1; then not_ok "$desc (succeeded)"; else ok "$desc"; fi
}
# check_out DESC PATTERN CMD... : CMD must succeed and print something matching PATTERN.
check_out() {
  local desc=$1 pat=$2; shift 2
  if "$@" >"$work/out" 2>&1 && grep -Eq -- "$pat" "$work/out"; then
    ok "$desc"
  else
    not_ok "$desc (wanted /$pat/)"
  fi
}
# The published CLI exits 1 on tracebacks too: a run must also print none.
no_traceback() { ! grep -q Traceback "$work/out"; }
check_real() {
  local desc=$1; shift
  if "$@" >"$work/out" 2>&1 && no_traceback; then ok "$desc"; else not_ok "$desc"; fi
}
# retry N CMD...: run CMD until it succeeds, N times, 0.5 s apart.
retry() {
  local n=$1; shift
  for _ in $(seq 1 "$n"); do "$@" >"$work/out" 2>&1 && return 0; sleep 0.5; done
  return 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

profile=${E2E_PROFILE:-release}
log "building $profile binaries"
if [ "$profile" = release ]; then
  cargo build --release --locked -p dcosd -p dcos-cli -p universe || { echo "build failed"; exit 1; }
else
  cargo build --locked -p dcosd -p dcos-cli -p universe || { echo "build failed"; exit 1; }
fi
bin="$root/target/$profile"
export PATH="$bin:$PATH" PAGER=cat

# start_cluster NAME [dcosd flags...] -> sets URL
start_cluster() {
  local name=$1; shift
  local port; port=$(free_port)
  URL="http://127.0.0.1:$port"
  "$bin/dcosd" all-in-one --work-dir "$work/$name" --listen "127.0.0.1:$port" "$@" \
    >"$work/$name.log" 2>&1 &
  pids+=($!)
  local t0; t0=$(date +%s.%N)
  for _ in $(seq 1 200); do
    curl -fsS -o /dev/null "$URL/dcos-metadata/dcos-version.json" 2>/dev/null && break
    sleep 0.05
  done
  echo "cluster $name ready on $URL after $(python3 -c "print(round($(date +%s.%N)-$t0,2))") s"
}

# app_endpoint URL APP -> host:port of the app's first task, through Marathon's API.
app_endpoint() {
  curl -fsS ${TOKEN:+-H "Authorization: token=$TOKEN"} "$1/service/marathon/v2/apps$2" |
    python3 -c 'import json,sys; t=json.load(sys.stdin)["app"]["tasks"][0]; print("%s:%s" % (t["host"], t["ports"][0]))'
}
app_label() {
  curl -fsS ${TOKEN:+-H "Authorization: token=$TOKEN"} "$1/service/marathon/v2/apps$2" |
    python3 -c "import json,sys; print(json.load(sys.stdin)['app']['labels'].get('$3',''))"
}
last_failure() {
  curl -fsS ${TOKEN:+-H "Authorization: token=$TOKEN"} "$1/service/marathon/v2/apps$2?embed=apps.lastTaskFailure" |
    python3 -c 'import json,sys; f=json.load(sys.stdin)["app"].get("lastTaskFailure") or {}; print(f.get("state",""), f.get("message",""))'
}

# ---- a Universe built from the shared corpus, served by `universe serve` -----------------
CORPUS_URL=""
if [ -d "$shared/universe-corpus/repo/packages" ]; then
  log "universe build + serve of the shared corpus"
  check "universe build of the corpus" "$bin/universe" build "$shared/universe-corpus/repo/packages" --out "$work/universe"
  uport=$(free_port)
  "$bin/universe" serve "$work/universe" --listen "127.0.0.1:$uport" >"$work/universe.log" 2>&1 &
  pids+=($!)
  CORPUS_URL="http://127.0.0.1:$uport/repo"
  retry 40 curl -fsS -o /dev/null -H 'Accept: application/vnd.dcos.universe.repo+json;charset=utf-8;version=v4' "$CORPUS_URL" &&
    ok "universe serve answers" || not_ok "universe serve answers"
else
  skip "no ../shared/universe-corpus: corpus repository steps"
fi

# ---- scenario 1: our `dcos`, auth off ----------------------------------------------------
log "scenario 1: our dcos CLI against a cluster with auth off"
start_cluster open
export DCOS_DIR="$work/cli-ours-open"
check "dcos cluster setup" dcos cluster setup "$URL"
check_out "dcos package search lists bundled packages" "hello-service" dcos package search
if [ -n "$CORPUS_URL" ]; then
  check "dcos package repo add corpus" dcos package repo add corpus "$CORPUS_URL"
  check_out "dcos package repo list shows it" "corpus" dcos package repo list
  check_out "dcos package search spark" "spark" dcos package search spark
  check_out "dcos package describe spark" '"name": ?"spark"' dcos package describe spark
fi
check "dcos package install hello-service --yes --wait" dcos package install hello-service --yes --wait
if ep=$(app_endpoint "$URL" /hello-service); then
  check_out "hello-service answers on its port ($ep)" "Hello from DC/OS" curl -fsS "http://$ep/"
else
  not_ok "hello-service has a task with a port"
fi
check_out "hello-service reachable through Admin Router /service/hello-service/" "Hello from DC/OS" \
  curl -fsS "$URL/service/hello-service/"
check_out "dcos task list shows it" "hello-service" dcos task list
if [ -n "$CORPUS_URL" ]; then
  check "dcos package install spark --yes" dcos package install spark --yes
  check_out "spark app carries DCOS_PACKAGE_NAME=spark" "^spark$" app_label "$URL" /spark DCOS_PACKAGE_NAME
  if retry 120 sh -c "$(declare -f last_failure); last_failure '$URL' /spark | grep -Eiq 'TASK_FAILED.*(image|pull|docker)'"; then
    ok "spark task fails with a clear reason: $(last_failure "$URL" /spark | cut -c1-160)"
  else
    not_ok "spark task fails with a clear image-pull reason"
  fi
  check_out "dcos package list shows both" "spark" dcos package list
  check "dcos package uninstall spark --yes" dcos package uninstall spark --yes
  check_fails "spark app is gone" curl -fsS "$URL/service/marathon/v2/apps/spark"
fi
check "dcos package uninstall hello-service --yes" dcos package uninstall hello-service --yes
check_fails "hello-service app is gone" curl -fsS "$URL/service/marathon/v2/apps/hello-service"

# Jobs (Metronome): a job with a schedule, run now, its task writes to its sandbox.
cat >"$work/job.json" <<'JOB'
{"id": "e2e.report", "description": "writes a report",
 "run": {"cmd": "echo report-$MESOS_TASK_ID > report.txt && cat report.txt", "cpus": 0.1, "mem": 32},
 "schedules": [{"id": "nightly", "cron": "0 3 * * *", "timezone": "Europe/Berlin"}]}
JOB
check_out "dcos job add (with a schedule)" "Created job e2e.report" dcos job add "$work/job.json"
check_out "dcos job list shows it Scheduled" "e2e\.report +Scheduled" dcos job list
check_out "dcos job schedule show has the next run" "nightly +0 3 \* \* \* +Europe/Berlin" dcos job schedule show e2e.report
check_out "dcos job run" "^Run ID: [0-9]{14}[A-Za-z0-9]{5}" dcos job run e2e.report
if retry 60 sh -c "dcos job history e2e.report | grep -q SUCCESS"; then
  ok "the run finished with SUCCESS (dcos job history)"
else
  not_ok "the run finished with SUCCESS (dcos job history)"
fi
check_out "its task wrote to its sandbox (dcos task log)" "report-e2e" dcos task log --completed e2e.report report.txt
check_fails "dcos job add of an invalid job is refused" dcos job add "$root/README.md"
echo '{"id": "Bad_Id", "run": {"cmd": "true", "mem": 8}}' >"$work/badjob.json"
check_out "an invalid job gets the server's reasons" "mem|id" sh -c "dcos job add '$work/badjob.json' 2>&1; true"
check "dcos job remove" dcos job remove e2e.report
check_fails "the job is gone" curl -fsS "$URL/service/metronome/v1/jobs/e2e.report"
[ -n "$CORPUS_URL" ] && check "dcos package repo remove corpus" dcos package repo remove corpus

# ---- scenario 2: the published DC/OS CLI 0.6.1, auth off -----------------------------------
real="$venv/bin/dcos"
if [ -x "$real" ]; then
  log "scenario 2: published DC/OS CLI 0.6.1, auth off"
  export DCOS_DIR="$work/cli-real-open"
  check_real "dcos cluster setup (real)" "$real" cluster setup "$URL"
  check_real "dcos package search (real)" "$real" package search
  if [ -n "$CORPUS_URL" ]; then
    check_real "dcos package repo add --index=0 (real)" "$real" package repo add corpus2 "$CORPUS_URL" --index=0
    check_real "dcos package repo list (real)" "$real" package repo list
    check_real "dcos package describe spark (real)" "$real" package describe spark
  fi
  check_real "dcos package install hello-service --yes (real)" "$real" package install hello-service --yes
  if retry 60 sh -c "curl -fsS '$URL/service/marathon/v2/apps/hello-service' | grep -q '\"tasksHealthy\":1'"; then
    ok "hello-service healthy (real CLI install)"
  else
    not_ok "hello-service healthy (real CLI install)"
  fi
  if [ -n "$CORPUS_URL" ]; then
    check_real "dcos package install spark --app --yes (real)" "$real" package install spark --app --yes
  fi
  check_real "dcos package install sandbox-worker --yes (real)" "$real" package install sandbox-worker --yes
  if retry 40 sh -c "'$real' task log sandbox-worker work.log 2>&1 | grep -q 'work item'"; then
    ok "dcos task log sandbox-worker work.log (real, through /system/v1/logs)"
  else
    not_ok "dcos task log sandbox-worker work.log (real, through /system/v1/logs)"
  fi
  check_real "dcos package uninstall sandbox-worker --yes (real)" "$real" package uninstall sandbox-worker --yes
  check_real "dcos package list (real)" "$real" package list
  echo '{"id": "e2e.real", "run": {"cmd": "echo hi", "cpus": 0.1, "mem": 32, "disk": 0}}' >"$work/realjob.json"
  check_real "dcos job add (real)" "$real" job add "$work/realjob.json"
  check_out "dcos job list (real)" "e2e.real" "$real" job list
  check_out "dcos job run (real)" "Run ID" "$real" job run e2e.real
  check_real "dcos job show (real)" "$real" job show e2e.real
  check_real "dcos job remove (real)" "$real" job remove e2e.real --stop-current-job-runs
  check_real "dcos marathon app list (real)" "$real" marathon app list
  check_real "dcos marathon task list (real)" "$real" marathon task list
  check_real "dcos node (real)" "$real" node
  check_real "dcos service (real)" "$real" service
  check_real "dcos task (real)" "$real" task
  [ -n "$CORPUS_URL" ] && check_real "dcos package uninstall spark --yes (real)" "$real" package uninstall spark --yes
  check_real "dcos package uninstall hello-service --yes (real)" "$real" package uninstall hello-service --yes
  check_real "dcos package repo remove (real)" "$real" package repo remove corpus2
  if "$venv/bin/python" -c 'import marathon' 2>/dev/null; then
    check "marathon-python create/list/get/delete/get_info" "$venv/bin/python" "$root/tests/e2e/marathon_python.py" "$URL/service/marathon"
  else
    skip "marathon-python not installed"
  fi
else
  skip "published DC/OS CLI not installed at $real (run ../shared/tools/install-dcoscli.sh)"
fi

# ---- scenario 3: auth on ---------------------------------------------------------------
log "scenario 3: auth on"
export DCOS_SUPERUSER_PASSWORD=e2e-secret
start_cluster secured --auth --superuser admin
unset DCOS_SUPERUSER_PASSWORD
code=$(curl -s -o "$work/out" -w '%{http_code}' "$URL/service/marathon/v2/apps")
[ "$code" = 401 ] && ok "unauthenticated /service/marathon/v2/apps is 401" || not_ok "unauthenticated request gets 401 (got $code)"
hdr=$(curl -s -D - -o /dev/null "$URL/package/search" -X POST | tr -d '\r' | grep -i '^www-authenticate:' || true)
echo "$hdr" | grep -qi oauthjwt && ok "401 carries WWW-Authenticate: oauthjwt" || not_ok "401 carries WWW-Authenticate: oauthjwt ($hdr)"
check_out "the whitelist stays open: /dcos-metadata/dcos-version.json" "version" curl -fsS "$URL/dcos-metadata/dcos-version.json"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
  -d '{"uid":"admin","password":"wrong"}' "$URL/acs/api/v1/auth/login")
[ "$code" = 401 ] && ok "login with a wrong password is 401" || not_ok "login with a wrong password is 401 (got $code)"

export DCOS_DIR="$work/cli-ours-secured"
check "dcos cluster setup --username --password" dcos cluster setup "$URL" --username admin --password e2e-secret
check "dcos package install sandbox-worker --yes --wait (auth on)" dcos package install sandbox-worker --yes --wait
check_out "dcos task log sandbox-worker work.log" "work item" dcos task log sandbox-worker work.log
check "dcos package uninstall sandbox-worker --yes (auth on)" dcos package uninstall sandbox-worker --yes

if [ -x "$real" ]; then
  export DCOS_DIR="$work/cli-real-secured"
  check_real "dcos cluster setup --username --password (real)" "$real" cluster setup "$URL" --username admin --password e2e-secret
  check_real "dcos package search (real, auth on)" "$real" package search
  check_real "dcos package install hello-service --yes (real, auth on)" "$real" package install hello-service --yes
  check_real "dcos package list (real, auth on)" "$real" package list
  check_real "dcos marathon app list (real, auth on)" "$real" marathon app list
  check_real "dcos package uninstall hello-service --yes (real, auth on)" "$real" package uninstall hello-service --yes
  export DCOS_DIR="$work/cli-real-noauth"
  if DCOS_URL="$URL" "$real" package search >"$work/out" 2>&1; then
    not_ok "real CLI without a token is refused"
  else
    grep -q "Authentication failed" "$work/out" && no_traceback && ok "real CLI without a token is refused with 'Authentication failed'" ||
      not_ok "real CLI without a token is refused with 'Authentication failed'"
  fi
fi

echo
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
