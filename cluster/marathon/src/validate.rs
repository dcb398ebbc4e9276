//! App validation: every violation, grouped by JSON path, in Marathon's 422 shape
//! `{"message":"Object is not valid","details":[{"path":"/id","errors":["..."]}]}`.

use std::collections::HashSet;

use indexmap::IndexMap;
use serde_json::{json, Value};

use crate::model::App;

pub const SEGMENT_RE: &str = r"^(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])|(\.|\.\.)$";
const RESERVED_MSG: &str =
    "must not end with any of the following reserved keywords: restart, tasks, versions, ., ..";
pub const CMD_ARGS_MSG: &str =
    "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'.";
pub const OPERATORS: &[&str] = &[
    "UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER", "IS",
];

/// Violations by path, in the order found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Violations(pub IndexMap<String, Vec<String>>);

impl Violations {
    pub fn add(&mut self, path: impl Into<String>, msg: impl Into<String>) {
        let e = self.0.entry(path.into()).or_default();
        let m = msg.into();
        if !e.contains(&m) {
            e.push(m);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Prefixes every path (group payloads: `/apps(0)`).
    pub fn prefixed(self, prefix: &str) -> Violations {
        Violations(
            self.0
                .into_iter()
                .map(|(p, e)| {
                    let p = if p == "/" {
                        prefix.to_string()
                    } else {
                        format!("{prefix}{p}")
                    };
                    (p, e)
                })
                .collect(),
        )
    }

    pub fn merge(&mut self, other: Violations) {
        for (p, es) in other.0 {
            for e in es {
                self.add(p.clone(), e);
            }
        }
    }

    pub fn body(&self) -> Value {
        json!({
            "message": "Object is not valid",
            "details": self.0.iter().map(|(p, e)| json!({"path": p, "errors": e})).collect::<Vec<_>>()
        })
    }

    pub fn errors_at(&self, path: &str) -> &[String] {
        self.0.get(path).map(|v| v.as_slice()).unwrap_or(&[])
    }
}

fn segment_ok(s: &str) -> bool {
    // ^(label\.)*label$ | ^\.$ | ^\.\.$  with label = [a-z0-9] | [a-z0-9][a-z0-9-]*[a-z0-9]
    if s == "." || s == ".." {
        return true;
    }
    s.split('.').all(|label| {
        let b = label.as_bytes();
        let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        match b.len() {
            0 => false,
            1 => alnum(b[0]),
            n => {
                alnum(b[0]) && alnum(b[n - 1]) && b[1..n - 1].iter().all(|&c| alnum(c) || c == b'-')
            }
        }
    })
}

/// Checks a raw id (before canonicalization) as Marathon's `PathId` validators do.
pub fn validate_id(raw: &str, v: &mut Violations) {
    let path = "/id";
    if raw.trim_matches('/').is_empty() {
        if raw.is_empty() {
            v.add(path, "Path must contain at least one path element");
        } else {
            v.add(path, "Path must contain at least one path element");
            v.add(path, "must not be root");
        }
        return;
    }
    let segs: Vec<&str> = raw.split('/').filter(|s| !s.is_empty()).collect();
    if segs.iter().any(|s| !segment_ok(s)) {
        v.add(
            path,
            format!("must fully match regular expression '{SEGMENT_RE}'"),
        );
    }
    if let Some(last) = segs.last() {
        if matches!(*last, "restart" | "tasks" | "versions" | "." | "..") {
            v.add(path, RESERVED_MSG);
        }
    }
}

fn non_negative_f(v: &mut Violations, path: &str, x: f64) {
    if x.is_nan() || x < 0.0 {
        v.add(path, format!("got {x:?}, expected 0.0 or more"));
    }
}

fn between01(v: &mut Violations, path: &str, x: f64) {
    if x.is_nan() || !(0.0..=1.0).contains(&x) {
        v.add(path, format!("got {x:?}, expected between 0.0 and 1.0"));
    }
}

fn constraint_value_text(x: &Value) -> Option<String> {
    match x {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Validates a (normalized) app; `raw_id` is the id as sent.
pub fn validate_app(app: &App, raw_id: &str) -> Violations {
    let mut v = Violations::default();
    validate_id(raw_id, &mut v);
    // One limit for every id that becomes a task id (`<id>.<uuid>` names files on agents);
    // checked on the resolved id (a relative id grows by its group's path).
    if let Err(m) = dcos_types::ids::check_service_id_len(&app.id) {
        v.add("/id", m);
    }

    // cmd / args / container
    let has_cmd = app.cmd.is_some();
    let has_args = app.args.as_ref().is_some_and(|a| !a.is_empty());
    if (has_cmd && has_args) || (!has_cmd && !has_args && app.container.is_none()) {
        v.add("/", CMD_ARGS_MSG);
    }
    if app.cmd.as_deref().is_some_and(|c| c.trim().is_empty()) {
        v.add("/cmd", "must not be empty");
    }

    // resources and counts
    non_negative_f(&mut v, "/cpus", app.cpus);
    non_negative_f(&mut v, "/mem", app.mem);
    non_negative_f(&mut v, "/disk", app.disk);
    non_negative_f(&mut v, "/gpus", app.gpus);
    if app.gpus.fract() != 0.0 {
        v.add("/gpus", "must be a whole number of devices");
    }
    if app.instances < 0 {
        v.add(
            "/instances",
            format!("got {}, expected 0 or more", app.instances),
        );
    }
    if app.gpus > 0.0 && app.container.as_ref().is_some_and(|c| c.kind == "DOCKER") {
        v.add(
            "/gpus",
            "GPU resources only work with the Mesos containerizer",
        );
    }

    // backoff
    non_negative_f(&mut v, "/backoffSeconds", app.backoff_seconds);
    if app.backoff_factor.is_nan() || app.backoff_factor < 1.0 {
        v.add(
            "/backoffFactor",
            format!("got {:?}, expected 1.0 or more", app.backoff_factor),
        );
    }
    non_negative_f(
        &mut v,
        "/maxLaunchDelaySeconds",
        app.max_launch_delay_seconds,
    );
    if let Some(g) = app.task_kill_grace_period_seconds {
        non_negative_f(&mut v, "/taskKillGracePeriodSeconds", g);
    }

    // upgrade strategy
    between01(
        &mut v,
        "/upgradeStrategy/minimumHealthCapacity",
        app.upgrade_strategy.minimum_health_capacity,
    );
    between01(
        &mut v,
        "/upgradeStrategy/maximumOverCapacity",
        app.upgrade_strategy.maximum_over_capacity,
    );
    if app.labels.contains_key("MARATHON_SINGLE_INSTANCE_APP") {
        if app.instances > 1 {
            v.add(
                "/instances",
                "got more than 1, expected 1 or less (single instance app)",
            );
        }
        if app.upgrade_strategy.minimum_health_capacity != 0.0
            || app.upgrade_strategy.maximum_over_capacity != 0.0
        {
            v.add(
                "/upgradeStrategy",
                "Single instance app may only have minimumHealthCapacity=0 and maximumOverCapacity=0",
            );
        }
    }

    if !matches!(
        app.kill_selection.as_str(),
        "YOUNGEST_FIRST" | "OLDEST_FIRST"
    ) {
        v.add(
            "/killSelection",
            "must be one of (YOUNGEST_FIRST, OLDEST_FIRST)",
        );
    }

    // constraints
    let mut seen = HashSet::new();
    for (i, c) in app.constraints.iter().enumerate() {
        let path = format!("/constraints({i})");
        if !(2..=3).contains(&c.len()) {
            v.add(&path, "Each constraint must have either 2 or 3 fields");
            continue;
        }
        let field = c.first().and_then(|x| x.as_str()).unwrap_or("");
        let op = c.get(1).and_then(|x| x.as_str()).unwrap_or("");
        let value = c.get(2).and_then(constraint_value_text);
        if field.is_empty() {
            v.add(&path, "Missing field and operator");
        }
        if !OPERATORS.contains(&op) {
            v.add(
                &path,
                format!(
                    "Constraint operator must be one of the following: [{}]",
                    OPERATORS.join(", ")
                ),
            );
            continue;
        }
        if c.len() == 3 && value.is_none() {
            v.add(&path, "Constraint value must be a string");
            continue;
        }
        match op {
            "UNIQUE" if value.is_some() => v.add(&path, "Value specified but not used"),
            "LIKE" | "UNLIKE" => match &value {
                None => v.add(
                    &path,
                    format!("A regular expression value must be provided for {op}"),
                ),
                Some(re) => {
                    if regex::Regex::new(&format!("^(?:{re})$")).is_err() {
                        v.add(&path, format!("'{re}' is not a valid regular expression"));
                    }
                }
            },
            "MAX_PER" => match value.as_deref().map(str::parse::<u32>) {
                Some(Ok(_)) => {}
                _ => v.add(&path, "Value was not a valid integer"),
            },
            "GROUP_BY" => {
                if let Some(x) = &value {
                    if x.parse::<u32>().is_err() {
                        v.add(&path, "Value was not a valid integer");
                    }
                }
            }
            "IS" if value.is_none() => v.add(&path, "Value is required for IS"),
            _ => {}
        }
        if !seen.insert(format!("{c:?}")) {
            v.add("/constraints", "must be unique");
        }
    }

    // ports
    if app.ports.as_ref().is_some_and(|p| !p.is_empty())
        && app.port_definitions.as_ref().is_some_and(|p| !p.is_empty())
    {
        v.add("/", "cannot specify both ports and port definitions");
    }
    if let Some(pds) = &app.port_definitions {
        if app.uses_port_mappings() && !pds.is_empty() {
            v.add(
                "/portDefinitions",
                "portDefinitions are only allowed with host-networking",
            );
        }
        let mut ports = HashSet::new();
        let mut names = HashSet::new();
        for (i, pd) in pds.iter().enumerate() {
            if !(0..=65535).contains(&pd.port) {
                v.add(
                    format!("/portDefinitions({i})/port"),
                    format!("got {}, expected between 0 and 65535", pd.port),
                );
            }
            if pd.port != 0 && !ports.insert(pd.port) {
                v.add("/portDefinitions", "ports must be unique");
            }
            if let Some(n) = &pd.name {
                if !names.insert(n.clone()) {
                    v.add("/portDefinitions", "Port names must be unique.");
                }
            }
            if !matches!(pd.protocol.as_str(), "tcp" | "udp" | "udp,tcp" | "tcp,udp") {
                v.add(
                    format!("/portDefinitions({i})/protocol"),
                    "must be one of (tcp, udp, udp,tcp)",
                );
            }
        }
    }

    // container
    if let Some(c) = &app.container {
        if !matches!(c.kind.as_str(), "DOCKER" | "MESOS") {
            v.add("/container/type", "must be one of (DOCKER, MESOS)");
        }
        if c.kind == "DOCKER" && c.docker.is_none() {
            v.add("/container/docker", "not defined");
        }
        if let Some(d) = &c.docker {
            if d.image.trim().is_empty() {
                v.add("/container/docker/image", "must not be empty");
            }
            if let Some(n) = &d.network {
                if !matches!(n.as_str(), "HOST" | "BRIDGE" | "USER" | "NONE") {
                    v.add(
                        "/container/docker/network",
                        "must be one of (HOST, BRIDGE, USER, NONE)",
                    );
                }
            }
            if c.kind == "MESOS" && d.privileged {
                v.add(
                    "/container/docker/privileged",
                    "Privileged containers are only supported by the Docker containerizer",
                );
            }
        }
        let pms = app.port_mappings();
        if !pms.is_empty() && !app.uses_port_mappings() {
            v.add(
                "/container/portMappings",
                "portMappings are not allowed with host-networking",
            );
        }
        let mut names = HashSet::new();
        for (i, pm) in pms.iter().enumerate() {
            let base = format!("/container/portMappings({i})");
            for (f, x) in [
                ("containerPort", Some(pm.container_port)),
                ("hostPort", pm.host_port),
                ("servicePort", Some(pm.service_port)),
            ] {
                if let Some(x) = x {
                    if !(0..=65535).contains(&x) {
                        v.add(
                            format!("{base}/{f}"),
                            format!("got {x}, expected between 0 and 65535"),
                        );
                    }
                }
            }
            if let Some(n) = &pm.name {
                if !names.insert(n.clone()) {
                    v.add("/container/portMappings", "Port names must be unique.");
                }
            }
        }
    }

    // health checks
    let port_count = if app.uses_port_mappings() {
        app.port_mappings().len()
    } else {
        app.port_definitions.as_ref().map(|p| p.len()).unwrap_or(0)
    };
    let mut mesos_checks = 0;
    for (i, hc) in app.health_checks.iter().enumerate() {
        let path = format!("/healthChecks({i})");
        let known = [
            "HTTP",
            "HTTPS",
            "TCP",
            "COMMAND",
            "MESOS_HTTP",
            "MESOS_HTTPS",
            "MESOS_TCP",
        ];
        if !known.contains(&hc.protocol.as_str()) {
            v.add(
                format!("{path}/protocol"),
                format!("must be one of ({})", known.join(", ")),
            );
            continue;
        }
        if hc.is_mesos_level() {
            mesos_checks += 1;
        }
        if hc.protocol == "COMMAND" {
            if hc
                .command
                .as_ref()
                .is_none_or(|c| c.value.trim().is_empty())
            {
                v.add(format!("{path}/command"), "not defined");
            }
        } else if hc.port.is_none() {
            let idx = hc.port_index.unwrap_or(0);
            if idx < 0 || idx as usize >= port_count {
                v.add(
                    &path,
                    "Health check port indices must address an element of the ports array or container port mappings.",
                );
            }
        }
        if let Some(p) = hc.port {
            if !(0..=65535).contains(&p) {
                v.add(
                    format!("{path}/port"),
                    format!("got {p}, expected between 0 and 65535"),
                );
            }
        }
        if hc.port.is_some() && hc.port_index.is_some() {
            v.add(
                &path,
                "Health check must specify either port or portIndex, not both",
            );
        }
        non_negative_f(
            &mut v,
            &format!("{path}/gracePeriodSeconds"),
            hc.grace_period_seconds,
        );
        if hc.interval_seconds.is_nan() || hc.interval_seconds <= 0.0 {
            v.add(
                format!("{path}/intervalSeconds"),
                format!("got {:?}, expected more than 0.0", hc.interval_seconds),
            );
        }
        non_negative_f(
            &mut v,
            &format!("{path}/timeoutSeconds"),
            hc.timeout_seconds,
        );
        if hc.max_consecutive_failures < 0 {
            v.add(
                format!("{path}/maxConsecutiveFailures"),
                format!("got {}, expected 0 or more", hc.max_consecutive_failures),
            );
        }
    }
    if mesos_checks > 1 {
        v.add(
            "/",
            "AppDefinition can contain at most one Mesos health check",
        );
    }
    if mesos_checks > 0 && mesos_checks < app.health_checks.len() {
        v.add(
            "/healthChecks",
            "AppDefinition cannot mix Marathon and Mesos health checks",
        );
    }

    // readiness checks
    if app.readiness_checks.len() > 1 {
        v.add(
            "/readinessChecks",
            "AppDefinition can contain at most one readiness check",
        );
    }
    let names = app.port_names();
    for (i, rc) in app.readiness_checks.iter().enumerate() {
        let path = format!("/readinessChecks({i})");
        if rc.name.trim().is_empty() {
            v.add(format!("{path}/name"), "must not be empty");
        }
        if !matches!(rc.protocol.as_str(), "HTTP" | "HTTPS") {
            v.add(format!("{path}/protocol"), "must be one of (HTTP, HTTPS)");
        }
        if !rc.path.starts_with('/') {
            v.add(format!("{path}/path"), "must start with /");
        }
        if !names.iter().flatten().any(|n| *n == rc.port_name) {
            let known: Vec<&str> = names.iter().flatten().map(|n| n.as_str()).collect();
            v.add(
                format!("{path}/portName"),
                format!(
                    "'{}' must name a host port of the app (portDefinitions or portMappings with a hostPort); known: [{}]",
                    rc.port_name,
                    known.join(", ")
                ),
            );
        }
        if rc.interval_seconds.is_nan() || rc.interval_seconds <= 0.0 {
            v.add(
                format!("{path}/intervalSeconds"),
                format!("got {:?}, expected more than 0.0", rc.interval_seconds),
            );
        }
        if rc.timeout_seconds.is_nan() || rc.timeout_seconds <= 0.0 {
            v.add(
                format!("{path}/timeoutSeconds"),
                format!("got {:?}, expected more than 0.0", rc.timeout_seconds),
            );
        } else if rc.timeout_seconds >= rc.interval_seconds {
            v.add(
                format!("{path}/timeoutSeconds"),
                "must be less than intervalSeconds",
            );
        }
        if rc.http_status_codes_for_ready.is_empty() {
            v.add(
                format!("{path}/httpStatusCodesForReady"),
                "must not be empty",
            );
        }
        for (j, c) in rc.http_status_codes_for_ready.iter().enumerate() {
            if !(100..=599).contains(c) {
                v.add(
                    format!("{path}/httpStatusCodesForReady({j})"),
                    format!("got {c}, expected an HTTP status code between 100 and 599"),
                );
            }
        }
    }

    // roles
    if let Some(roles) = &app.accepted_resource_roles {
        if roles.is_empty() {
            v.add("/acceptedResourceRoles", "must not be empty");
        }
        for (i, r) in roles.iter().enumerate() {
            if !role_ok(r) {
                v.add(
                    format!("/acceptedResourceRoles({i})"),
                    format!("'{r}' is not a valid role name"),
                );
            }
        }
    }

    // fetch / uris
    if !app.uris.is_empty() && !app.fetch.is_empty() {
        v.add("/uris", "may not be set in conjunction with fetch");
    }
    for (i, f) in app.fetch.iter().enumerate() {
        if f.uri.trim().is_empty() {
            v.add(format!("/fetch({i})/uri"), "must not be empty");
        } else if f.uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
            v.add(format!("/fetch({i})/uri"), "URI has invalid syntax.");
        }
        if let Some(s) = &f.sha256 {
            if s.len() != 64 || !s.chars().all(|c| c.is_ascii_hexdigit()) {
                v.add(
                    format!("/fetch({i})/sha256"),
                    "must be 64 hexadecimal digits",
                );
            }
        }
    }

    // env and secrets
    for (k, x) in &app.env {
        match x {
            Value::String(_) => {}
            Value::Object(o) => match o.get("secret").and_then(|s| s.as_str()) {
                Some(s) if app.secrets.contains_key(s) => {}
                Some(s) => v.add(
                    format!("/env/{k}"),
                    format!("references an undefined secret named '{s}'"),
                ),
                None => v.add(
                    format!("/env/{k}"),
                    "must be a string or a secret reference",
                ),
            },
            _ => v.add(
                format!("/env/{k}"),
                "must be a string or a secret reference",
            ),
        }
    }

    // executor
    if !app.executor.is_empty() {
        let ok = app.executor == "//cmd"
            || (!app.executor.contains("//") && !app.executor.ends_with('/'));
        if !ok {
            v.add(
                "/executor",
                "must fully match regular expression '^(//cmd)|(/?[^/]+(/[^/]+)*)|$'",
            );
        }
    }

    // dependencies
    for (i, d) in app.dependencies.iter().enumerate() {
        let mut dv = Violations::default();
        validate_id(d, &mut dv);
        for (_, es) in dv.0 {
            for e in es {
                v.add(format!("/dependencies({i})"), e);
            }
        }
    }

    // unreachable strategy
    match &app.unreachable_strategy {
        None => {}
        Some(Value::String(s)) if s == "disabled" => {}
        Some(Value::Object(o)) => {
            let get = |k: &str| o.get(k).and_then(|x| x.as_f64()).unwrap_or(0.0);
            let (ina, exp) = (get("inactiveAfterSeconds"), get("expungeAfterSeconds"));
            non_negative_f(&mut v, "/unreachableStrategy/inactiveAfterSeconds", ina);
            non_negative_f(&mut v, "/unreachableStrategy/expungeAfterSeconds", exp);
            if ina > exp {
                v.add(
                    "/unreachableStrategy",
                    "inactiveAfterSeconds must be less or equal to expungeAfterSeconds",
                );
            }
        }
        Some(_) => v.add(
            "/unreachableStrategy",
            "must be \"disabled\" or an object {inactiveAfterSeconds, expungeAfterSeconds}",
        ),
    }

    // networks
    let mut modes = HashSet::new();
    for (i, n) in app.networks.iter().enumerate() {
        match n.get("mode").and_then(|m| m.as_str()) {
            Some(m @ ("host" | "container/bridge" | "container")) => {
                modes.insert(m.to_string());
            }
            _ => v.add(
                format!("/networks({i})/mode"),
                "must be one of (host, container/bridge, container)",
            ),
        }
    }
    if modes.len() > 1 {
        v.add("/networks", "Networking modes may not be mixed");
    }
    v
}

fn role_ok(r: &str) -> bool {
    if r == "*" {
        return true;
    }
    !r.is_empty()
        && r != "."
        && r != ".."
        && !r.starts_with('-')
        && r.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::App;

    fn check(v: serde_json::Value) -> Violations {
        let raw = v
            .get("id")
            .and_then(|x| x.as_str())
            .unwrap_or("")
            .to_string();
        let mut app = App::from_value(v).unwrap();
        app.normalize();
        validate_app(&app, &raw)
    }

    #[test]
    fn valid_app_passes() {
        let v = check(
            json!({"id":"/prod/web-1","cmd":"sleep 100","cpus":0.1,"mem":32,
            "constraints":[["hostname","UNIQUE"],["rack","MAX_PER","2"],["zone","LIKE","a.*"]],
            "healthChecks":[{"protocol":"HTTP","portIndex":0},{"protocol":"TCP"}]}),
        );
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn id_rules() {
        assert!(!check(json!({"id":"Bad_Id","cmd":"x"}))
            .errors_at("/id")
            .is_empty());
        assert!(
            check(json!({"id":"/a/tasks","cmd":"x"})).errors_at("/id")[0]
                .contains("reserved keywords")
        );
        assert!(!check(json!({"id":"/","cmd":"x"}))
            .errors_at("/id")
            .is_empty());
        assert!(!check(json!({"cmd":"x"})).errors_at("/id").is_empty());
        assert!(!check(json!({"id":"-a","cmd":"x"}))
            .errors_at("/id")
            .is_empty());
        assert!(check(json!({"id":"a.b-c/d","cmd":"x"})).is_empty());
        let long = "a".repeat(2000);
        assert!(check(json!({"id": long, "cmd":"x"})).errors_at("/id")[0].contains("too long"));
    }

    #[test]
    fn cmd_args_container() {
        assert_eq!(check(json!({"id":"a"})).errors_at("/"), [CMD_ARGS_MSG]);
        assert_eq!(
            check(json!({"id":"a","cmd":"x","args":["y"]})).errors_at("/"),
            [CMD_ARGS_MSG]
        );
        assert!(
            check(json!({"id":"a","container":{"type":"DOCKER","docker":{"image":"nginx"}}}))
                .is_empty()
        );
        assert!(!check(json!({"id":"a","cmd":" "}))
            .errors_at("/cmd")
            .is_empty());
    }

    #[test]
    fn numeric_bounds_report_every_violation() {
        let v = check(
            json!({"id":"a","cmd":"x","cpus":-1,"mem":-2,"disk":-3,"instances":-1,
            "backoffFactor":0.5,"upgradeStrategy":{"minimumHealthCapacity":1.5,"maximumOverCapacity":-0.1}}),
        );
        for p in [
            "/cpus",
            "/mem",
            "/disk",
            "/instances",
            "/backoffFactor",
            "/upgradeStrategy/minimumHealthCapacity",
            "/upgradeStrategy/maximumOverCapacity",
        ] {
            assert!(!v.errors_at(p).is_empty(), "missing {p}: {v:?}");
        }
        assert_eq!(v.errors_at("/cpus"), ["got -1.0, expected 0.0 or more"]);
        let body = v.body();
        assert_eq!(body["message"], "Object is not valid");
        assert_eq!(body["details"].as_array().unwrap().len(), 7);
    }

    #[test]
    fn readiness_check_rules() {
        // The Kafka package's shape passes: defaults fill the rest.
        let v = check(
            json!({"id":"a","cmd":"x","portDefinitions":[{"port":0,"name":"api"}],
            "readinessChecks":[{"name":"kafkaUpdateProgress","path":"/v1/plan","portName":"api",
            "intervalSeconds":30,"timeoutSeconds":10}]}),
        );
        assert!(
            v.errors_at("/readinessChecks(0)/portName").is_empty(),
            "{v:?}"
        );
        assert_eq!(v.body()["details"].as_array().map(|d| d.len()), Some(0));
        let v = check(
            json!({"id":"a","cmd":"x","portDefinitions":[{"port":0,"name":"api"}],
            "readinessChecks":[{"portName":"web","protocol":"TCP","path":"v1",
            "intervalSeconds":5,"timeoutSeconds":5,"httpStatusCodesForReady":[200, 42]},
            {"portName":"api"}]}),
        );
        assert_eq!(
            v.errors_at("/readinessChecks"),
            ["AppDefinition can contain at most one readiness check"]
        );
        let port = v.errors_at("/readinessChecks(0)/portName");
        assert!(
            port[0].contains("'web'") && port[0].contains("[api]"),
            "{port:?}"
        );
        assert!(!v.errors_at("/readinessChecks(0)/protocol").is_empty());
        assert!(!v.errors_at("/readinessChecks(0)/path").is_empty());
        assert_eq!(
            v.errors_at("/readinessChecks(0)/timeoutSeconds"),
            ["must be less than intervalSeconds"]
        );
        assert!(!v
            .errors_at("/readinessChecks(0)/httpStatusCodesForReady(1)")
            .is_empty());
        // The second check is valid on its own (default name, path, interval, timeout).
        assert!(v.errors_at("/readinessChecks(1)/portName").is_empty());
    }

    #[test]
    fn constraint_rules() {
        let v = check(json!({"id":"a","cmd":"x","constraints":[
            ["hostname"], ["hostname","NOPE"], ["rack","LIKE"], ["rack","LIKE","("],
            ["rack","MAX_PER","x"], ["hostname","UNIQUE","v"], ["rack","GROUP_BY","3"]]}));
        assert!(v.errors_at("/constraints(0)")[0].contains("2 or 3"));
        assert!(v.errors_at("/constraints(1)")[0].contains("operator must be one of"));
        assert!(!v.errors_at("/constraints(2)").is_empty());
        assert!(v.errors_at("/constraints(3)")[0].contains("not a valid regular expression"));
        assert!(!v.errors_at("/constraints(4)").is_empty());
        assert!(!v.errors_at("/constraints(5)").is_empty());
        assert!(v.errors_at("/constraints(6)").is_empty());
    }

    #[test]
    fn port_rules() {
        let v = check(
            json!({"id":"a","cmd":"x","portDefinitions":[{"port":80,"name":"a"},
            {"port":80,"name":"a"},{"port":70000}]}),
        );
        assert!(v
            .errors_at("/portDefinitions")
            .contains(&"ports must be unique".to_string()));
        assert!(v
            .errors_at("/portDefinitions")
            .contains(&"Port names must be unique.".to_string()));
        assert!(!v.errors_at("/portDefinitions(2)/port").is_empty());
        let v = check(json!({"id":"a","cmd":"x","ports":[1],"portDefinitions":[{"port":2}]}));
        assert!(v
            .errors_at("/")
            .contains(&"cannot specify both ports and port definitions".to_string()));
    }

    #[test]
    fn container_rules() {
        let v = check(json!({"id":"a","container":{"type":"DOCKER","docker":{"image":""}}}));
        assert!(!v.errors_at("/container/docker/image").is_empty());
        let v = check(json!({"id":"a","cmd":"x","container":{"type":"RKT"}}));
        assert!(!v.errors_at("/container/type").is_empty());
        let v = check(json!({"id":"a","cmd":"x","container":{"type":"DOCKER",
            "docker":{"image":"x","network":"HOST"},"portMappings":[{"containerPort":80}]}}));
        assert!(!v.errors_at("/container/portMappings").is_empty());
        let v = check(
            json!({"id":"a","cmd":"x","gpus":1,"container":{"type":"DOCKER","docker":{"image":"x"}}}),
        );
        assert!(!v.errors_at("/gpus").is_empty());
    }

    #[test]
    fn health_check_rules() {
        let v = check(json!({"id":"a","cmd":"x","portDefinitions":[],
            "healthChecks":[{"protocol":"HTTP","portIndex":0}]}));
        assert!(v.errors_at("/healthChecks(0)")[0].contains("port indices"));
        let v = check(json!({"id":"a","cmd":"x","healthChecks":[
            {"protocol":"COMMAND","command":{"value":"true"}},{"protocol":"MESOS_TCP"}]}));
        assert!(v
            .errors_at("/")
            .contains(&"AppDefinition can contain at most one Mesos health check".to_string()));
        let v = check(
            json!({"id":"a","cmd":"x","healthChecks":[{"protocol":"COMMAND"},
            {"protocol":"GOPHER"},{"protocol":"TCP","intervalSeconds":0}]}),
        );
        assert!(!v.errors_at("/healthChecks(0)/command").is_empty());
        assert!(!v.errors_at("/healthChecks(1)/protocol").is_empty());
        assert!(!v.errors_at("/healthChecks(2)/intervalSeconds").is_empty());
    }

    #[test]
    fn misc_rules() {
        let v = check(
            json!({"id":"a","cmd":"x","killSelection":"RANDOM","acceptedResourceRoles":[],
            "uris":["http://x"],"fetch":[{"uri":"http://y"}],"env":{"A":{"secret":"nope"},"B":3},
            "unreachableStrategy":{"inactiveAfterSeconds":10,"expungeAfterSeconds":5},
            "labels":{"MARATHON_SINGLE_INSTANCE_APP":"true"},"instances":2,
            "dependencies":["BAD"],"networks":[{"mode":"weird"}]}),
        );
        for p in [
            "/killSelection",
            "/acceptedResourceRoles",
            "/uris",
            "/env/A",
            "/env/B",
            "/unreachableStrategy",
            "/instances",
            "/upgradeStrategy",
            "/dependencies(0)",
            "/networks(0)/mode",
        ] {
            assert!(!v.errors_at(p).is_empty(), "missing {p}: {v:?}");
        }
    }
}
