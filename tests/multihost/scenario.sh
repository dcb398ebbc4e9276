#!/usr/bin/env bash
# The cluster scenario of issue 6, through Admin Router on the master, run by
# run.sh when the real dcosd is shipped (not with the stand-in).
#
#   scenario.sh before-upgrade   log in, add a repository, install a package, see its
#                                tasks on the agents and reach it; a slave_public app
#                                lands on the public agent; remember the task ids
#   scenario.sh after-upgrade    the same task ids still run (agents upgraded one by one);
#                                stop an agent container: its tasks are replaced on the other
#
# Environment (set by run.sh): NAME, MASTER_IP, BOOT_IP, DCOS_USERNAME, DCOS_PASSWORD,
# AGENT_IPS (space separated), PUBLIC_IP, STATE (file), REPO_URI; optional REPO_NAME, PACKAGE,
# INSTANCES.
# HTTP calls run inside the bootstrap container (the network is internal).
set -o errexit -o nounset -o pipefail

AR="http://$MASTER_IP:80"
REPO_NAME="${REPO_NAME:-local}"
REPO_URI="${REPO_URI:-http://$BOOT_IP:8085/repo}"
PACKAGE="${PACKAGE:-hello-service}"
INSTANCES="${INSTANCES:-2}"
STATE="${STATE:-/tmp/dcos-rs-mh-scenario.state}"

in_boot() { docker exec -i "$NAME-bootstrap" "$@"; }
# http METHOD PATH [BODY] [extra curl args...] -> body on stdout; on HTTP >= 400 or no
# answer prints the request, the status and the body on stderr and fails.
http() {
  local m="$1" p="$2" body="$3"; shift 3
  local auth=() ctype=() out code
  [[ -n "${TOKEN:-}" ]] && auth=(-H "Authorization: token=$TOKEN")
  [[ "$*" == *Content-Type:* ]] || ctype=(-H 'Content-Type: application/json')
  if [[ -n "$body" ]]; then
    out="$(in_boot curl -sS -m 30 -w '\n%{http_code}' -X "$m" "${auth[@]}" "${ctype[@]}" "$@" --data-binary @- "$AR$p" <<<"$body" 2>&1)" || true
  else
    out="$(in_boot curl -sS -m 30 -w '\n%{http_code}' -X "$m" "${auth[@]}" "$@" "$AR$p" 2>&1)" || true
  fi
  code="${out##*$'\n'}"
  out="${out%$'\n'*}"
  if [[ ! "$code" =~ ^[0-9]{3}$ ]] || (( code == 0 || code >= 400 )); then
    echo "    $m $p -> HTTP ${code:-?}: $(head -c 600 <<<"$out")" >&2
    return 1
  fi
  printf '%s\n' "$out"
}
json() { # EXPR over d, the JSON document on stdin
  python3 -c "
import json, sys
try:
    d = json.load(sys.stdin)
    print($1)
except Exception as e:
    sys.exit('    not the expected JSON (%s: %s)' % (type(e).__name__, e))"
}
step() { echo "  - $*"; }
# reach HOST PORT: a task's HTTP server answers (a task is RUNNING once its process
# started, which can be a moment before it listens: retry for up to ~10 s).
reach() { in_boot curl -fsS -m 5 --retry 10 --retry-connrefused --retry-delay 1 -o /dev/null "http://$1:$2/"; }
fail() { echo "  FAILED STEP: $*" >&2; return 1; }
app_tasks() { # app id -> "taskid host port0" lines of running tasks
  http GET "/service/marathon/v2/apps$1?embed=apps.tasks" "" | json "'\n'.join(t['id']+' '+t['host']+' '+str((t.get('ports') or [0])[0]) for t in d['app'].get('tasks', []) if t.get('state', 'TASK_RUNNING') == 'TASK_RUNNING')"
}
# wait_tasks APP COUNT SECONDS -> running tasks on stdout once there are COUNT of them
wait_tasks() {
  local t="" i
  for i in $(seq 1 "$3"); do
    t="$(app_tasks "$1" 2>/dev/null || true)"
    [[ -n "$t" && "$(wc -l <<<"$t")" -ge "$2" ]] && { echo "$t"; return 0; }
    sleep 1
  done
  echo "$t"
  return 1
}
# Why an app has no task yet: Marathon's queue (the reason offers were declined).
why_not() {
  http GET "/service/marathon/v2/queue" "" 2>/dev/null | head -c 800 >&2 || true
  echo >&2
  http GET "/service/marathon/v2/apps$1?embed=apps.lastTaskFailure" "" 2>/dev/null | json "d['app'].get('lastTaskFailure')" >&2 || true
}

login() {
  TOKEN="$(http POST /acs/api/v1/auth/login "{\"uid\":\"$DCOS_USERNAME\",\"password\":\"$DCOS_PASSWORD\"}" | json "d['token']")" \
    || fail "log in as $DCOS_USERNAME through Admin Router ($AR/acs/api/v1/auth/login)"
  [[ -n "$TOKEN" ]] || fail "login returned an empty token"
  export TOKEN
  step "logged in as $DCOS_USERNAME"
}

before_upgrade() {
  rm -f "$STATE"
  login
  local agents want
  agents="$(http GET /mesos/master/slaves "" | json "' '.join(sorted(a['hostname'] for a in d['slaves'] if a.get('active', True)))")" \
    || fail "list agents through Admin Router (/mesos/master/slaves)"
  want="$(tr ' ' '\n' <<<"$AGENT_IPS $PUBLIC_IP" | sort | tr '\n' ' ' | sed 's/ $//')"
  [[ "$agents" == "$want" ]] || fail "active agents are '$agents', expected '$want'"
  step "the master lists every agent active: $agents"
  http POST /package/repository/add "{\"name\":\"$REPO_NAME\",\"uri\":\"$REPO_URI\",\"index\":0}" \
    -H 'Content-Type: application/vnd.dcos.package.repository.add-request+json;charset=utf-8;version=v1' \
    -H 'Accept: application/vnd.dcos.package.repository.add-response+json;charset=utf-8;version=v1' >/dev/null \
    || fail "add repository $REPO_NAME ($REPO_URI) through Cosmos"
  local first
  first="$(http POST /package/repository/list '{}' \
    -H 'Content-Type: application/vnd.dcos.package.repository.list-request+json;charset=utf-8;version=v1' \
    -H 'Accept: application/vnd.dcos.package.repository.list-response+json;charset=utf-8;version=v1' | json "d['repositories'][0]['name']")" \
    || fail "list repositories"
  [[ "$first" == "$REPO_NAME" ]] || fail "repository $REPO_NAME is not first in the list (first: $first)"
  step "added repository $REPO_NAME ($REPO_URI) first in the list"
  local app
  app="$(http POST /package/install "{\"packageName\":\"$PACKAGE\",\"options\":{\"service\":{\"instances\":$INSTANCES}}}" \
    -H 'Content-Type: application/vnd.dcos.package.install-request+json;charset=utf-8;version=v1' \
    -H 'Accept: application/vnd.dcos.package.install-response+json;charset=utf-8;version=v2' | json "d['appId']")" \
    || fail "install $PACKAGE"
  step "installed $PACKAGE as $app ($INSTANCES instances)"
  local tasks
  if ! tasks="$(wait_tasks "$app" "$INSTANCES" 90)"; then
    why_not "$app"
    fail "$app: $INSTANCES running tasks expected within 90 s, got: ${tasks:-none}"
  fi
  local id host port
  while read -r id host port; do
    [[ " $AGENT_IPS " == *" $host "* ]] || fail "task $id of $app runs on $host, not on a private agent ($AGENT_IPS)"
  done <<<"$tasks"
  step "$app tasks running on private agents: $(awk '{print $2}' <<<"$tasks" | tr '\n' ' ')"
  while read -r id host port; do
    reach "$host" "$port" || fail "cannot reach task $id of $app at http://$host:$port/"
  done <<<"$tasks"
  step "reached every task of $app over the network (http://host:port/)"
  http POST /service/marathon/v2/apps '{"id":"/public-web","cmd":"exec python3 -m http.server $PORT0","cpus":0.1,"mem":32,"instances":1,"acceptedResourceRoles":["slave_public"]}' >/dev/null \
    || fail "create /public-web"
  local pub
  if ! pub="$(wait_tasks /public-web 1 60)"; then
    why_not /public-web
    fail "/public-web (acceptedResourceRoles slave_public) has no running task after 60 s"
  fi
  [[ "$(awk '{print $2}' <<<"$pub")" == "$PUBLIC_IP" ]] || fail "/public-web not on the public agent $PUBLIC_IP: $pub"
  read -r id host port <<<"$pub"
  reach "$host" "$port" || fail "cannot reach /public-web at http://$host:$port/"
  step "/public-web (acceptedResourceRoles slave_public) runs on the public agent $PUBLIC_IP and answers"
  { echo "APP=$app"; echo "TASKS='$tasks'"; echo "PUB='$pub'"; } > "$STATE"
}

after_upgrade() {
  [[ -f "$STATE" ]] || fail "the scenario before the upgrade did not complete; nothing to check"
  # shellcheck disable=SC1090
  source "$STATE"
  login
  local now
  now="$(wait_tasks "$APP" "$(wc -l <<<"$TASKS")" 30)" || true
  [[ "$(sort <<<"$now")" == "$(sort <<<"$TASKS")" ]] \
    || fail "tasks of $APP changed across the agent upgrades: before '$TASKS', after '$now'"
  [[ "$(app_tasks /public-web)" == "$PUB" ]] || fail "/public-web task changed across the upgrade: before '$PUB', after '$(app_tasks /public-web || true)'"
  local id host port
  while read -r id host port; do
    reach "$host" "$port" || fail "task $id of $APP survived the upgrade but does not answer at http://$host:$port/"
  done <<<"$TASKS"
  step "the same tasks survived the agent upgrades and still answer"
  local victim survivor
  victim="$(head -n1 <<<"$TASKS" | awk '{print $2}')"
  for survivor in $AGENT_IPS; do [[ "$survivor" != "$victim" ]] && break; done
  local c="" n
  for n in $(docker ps --filter "name=$NAME-agent" --format '{{.Names}}'); do
    if [[ "$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$n")" == "$victim" ]]; then c="$n"; fi
  done
  [[ -n "$c" ]] || fail "no running agent container has IP $victim"
  docker stop -t 2 "$c" >/dev/null
  step "stopped $c ($victim)"
  local moved="" t0=$SECONDS
  for _ in $(seq 1 150); do
    now="$(app_tasks "$APP" 2>/dev/null || true)"
    if [[ -n "$now" && "$(wc -l <<<"$now")" -ge "$(wc -l <<<"$TASKS")" ]] && ! grep -q " $victim " <<<"$now"; then moved=1; break; fi
    sleep 1
  done
  if [[ -z "$moved" ]]; then
    why_not "$APP"
    fail "tasks of $APP were not replaced away from $victim within 150 s: ${now:-no running task}"
  fi
  while read -r id host port; do
    [[ "$host" == "$survivor" ]] || fail "replacement task $id runs on $host, expected the surviving agent $survivor"
    reach "$host" "$port" || fail "replacement task $id does not answer at http://$host:$port/"
  done <<<"$now"
  step "tasks of $APP replaced on the surviving agent $survivor in $(( SECONDS - t0 )) s and answering"
}

case "${1:-}" in
  before-upgrade) before_upgrade ;;
  after-upgrade) after_upgrade ;;
  *) echo "usage: scenario.sh before-upgrade|after-upgrade" >&2; exit 2 ;;
esac
