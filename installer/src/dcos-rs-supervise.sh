#!/usr/bin/env bash
# dcos-rs-supervise: keeps dcosd running where systemd does not run (containers).
# Usage: dcos-rs-supervise PIDFILE LOGFILE COMMAND [ARGS...]
# Writes its own pid to PIDFILE and the child's to PIDFILE.child; restarts the
# command when it exits (backoff 1 s doubling to 30 s, reset after 30 s of uptime);
# on SIGTERM/SIGINT stops the child and exits.
set -o nounset
if (( $# < 3 )); then
  echo "usage: dcos-rs-supervise PIDFILE LOGFILE COMMAND [ARGS...]" >&2
  exit 2
fi
pidfile=$1 logfile=$2
shift 2
child=""
stop() {
  if [[ -n "$child" ]]; then
    kill -TERM "$child" 2>/dev/null
    wait "$child" 2>/dev/null
  fi
  rm -f "$pidfile" "$pidfile.child"
  exit 0
}
trap stop TERM INT
echo "$$" > "$pidfile"
delay=1
while true; do
  started=$(date +%s)
  echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) dcos-rs-supervise: starting $*" >> "$logfile"
  "$@" >> "$logfile" 2>&1 < /dev/null &
  child=$!
  echo "$child" > "$pidfile.child"
  wait "$child"
  rc=$?
  child=""
  if (( $(date +%s) - started >= 30 )); then delay=1; fi
  echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) dcos-rs-supervise: exited with status $rc; restarting in ${delay}s" >> "$logfile"
  sleep "$delay" &
  wait $!
  delay=$(( delay * 2 > 30 ? 30 : delay * 2 ))
done
