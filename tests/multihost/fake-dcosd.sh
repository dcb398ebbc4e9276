#!/usr/bin/env bash
# STAND-IN for the real `dcosd`, used only to verify the multi-host harness
# (images, network, bootstrap serving, dcos_install.sh per role, supervision,
# postflight) before `dcosd` exists. It parses the same command line
# (`--roles R --config FILE`), reads the node config the installer wrote and
# serves `GET /system/health/v1` in the DC/OS dcos-diagnostics shape on the
# port the real node would (masters: ports.adminrouter; agents: ports.agent_adminrouter).
# Run the harness with DCOSD=/path/to/dcosd to test the real thing.
set -o errexit -o nounset
roles="" config=""
while (( $# > 0 )); do
  case "$1" in
    --roles) roles="$2"; shift ;;
    --config) config="$2"; shift ;;
  esac
  shift
done
[[ -n "$config" && -r "$config" ]] || { echo "fake dcosd: --config FILE required" >&2; exit 2; }
exec python3 - "$roles" "$config" <<'PY'
import http.server, json, sys
roles, config = sys.argv[1], sys.argv[2]
cfg = json.load(open(config))
ports = cfg["ports"]
if "master" in roles.split(","):
    port, node_role = ports["adminrouter"], "master"
else:
    port = ports["agent_adminrouter"]
    node_role = "agent_public" if "agent_public" in roles.split(",") else "agent"
body = json.dumps({
    "hostname": cfg.get("ip"), "ip": cfg.get("ip"), "node_role": node_role,
    "dcos_version": "fake", "units": [{"id": "dcosd", "name": "dcosd (fake stand-in)",
    "health": 0, "output": "", "description": "stand-in for harness tests", "help": ""}],
}).encode()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.rstrip("/") == "/system/health/v1":
            self.send_response(200); self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
        else:
            self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
print(f"fake dcosd: roles={roles} ip={cfg.get('ip')} serving health on :{port}", flush=True)
http.server.ThreadingHTTPServer(("0.0.0.0", port), H).serve_forever()
PY
