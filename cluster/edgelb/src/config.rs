//! The pure part: Marathon apps (with their tasks and health) → HAProxy configuration text,
//! honouring marathon-lb's labels. Deterministic: the same input gives the same bytes.
//!
//! Anything in a label that HAProxy could reject, or that conflicts with another app, skips
//! that app's port (or just the offending feature) with a [`Warning`] naming every problem;
//! it never reaches the configuration.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;
use std::net::IpAddr;

use crate::model::{App, HealthCheck, Task};

/// How the balancer is set up (marathon-lb's command-line flags).
#[derive(Debug, Clone)]
pub struct Options {
    /// The LB's group (`--group`, default `external`); `*` takes every app, even those
    /// without a group.
    pub group: String,
    /// `--strict-mode`: only ports with `HAPROXY_{n}_ENABLED=true` are exposed.
    pub strict: bool,
    /// `--health-check`: use Marathon's health results to pick servers and let HAProxy check
    /// servers of ports that have a Marathon health check. Default true (as the DC/OS package).
    pub health_check: bool,
    /// Default bind address for every frontend (`*` = all addresses).
    pub bind_addr: String,
    /// Port of the vhost frontend (`marathon_http_in`); `None` = no vhost routing.
    pub http_port: Option<u16>,
    /// Port of the stats/health listener (`/haproxy?stats`, `/_haproxy_health_check`).
    pub stats_port: Option<u16>,
    /// App id of the balancer itself (`/$FRAMEWORK_NAME` in marathon-lb), never exposed.
    pub self_app_id: Option<String>,
    /// Admin socket path written as `stats socket ... expose-fd listeners`.
    pub admin_socket: Option<String>,
    /// `hard-stop-after`: how long old workers may keep long-lived connections after a
    /// reload (bounds the pile-up of old processes). `None` = forever.
    pub hard_stop_after: Option<String>,
    /// `global maxconn`.
    pub maxconn: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            group: "external".into(),
            strict: false,
            health_check: true,
            bind_addr: "*".into(),
            http_port: Some(80),
            stats_port: Some(9090),
            self_app_id: None,
            admin_socket: None,
            hard_stop_after: Some("15m".into()),
            maxconn: fd_limited_maxconn(50000),
        }
    }
}

/// `want`, lowered so HAProxy's file descriptors (about 2 per connection) fit under this
/// process's hard `RLIMIT_NOFILE` (HAProxy refuses to start otherwise).
pub fn fd_limited_maxconn(want: u32) -> u32 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) fills the struct we pass.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    if rc != 0 || lim.rlim_max == libc::RLIM_INFINITY {
        return want;
    }
    let fit = lim.rlim_max.saturating_sub(1000) / 2;
    want.min(u32::try_from(fit).unwrap_or(u32::MAX)).max(100)
}

/// Something skipped while generating, with every reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub app: String,
    /// The service-port index, or `None` for the whole app.
    pub port_index: Option<usize>,
    pub problems: Vec<String>,
    /// Whether the port (or app) was left out (`true`) or only a feature ignored.
    pub skipped: bool,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "app {}", self.app)?;
        if let Some(i) = self.port_index {
            write!(f, " port index {i}")?;
        }
        write!(
            f,
            "{}: {}",
            if self.skipped { " skipped" } else { "" },
            self.problems.join("; ")
        )
    }
}

/// The generated configuration and what went into it.
#[derive(Debug, Clone, Default)]
pub struct Generated {
    pub text: String,
    pub warnings: Vec<Warning>,
    /// Number of backends (one per exposed app port).
    pub backends: usize,
    /// Number of `server` lines.
    pub servers: usize,
}

/// `http` or `tcp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Http,
    Tcp,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Http => "http",
            Mode::Tcp => "tcp",
        }
    }
}

const BALANCE: &[&str] = &[
    "roundrobin",
    "static-rr",
    "leastconn",
    "first",
    "source",
    "random",
];

/// Labels understood (per port); others with a port index are reported once per app.
const KNOWN_PORT_LABELS: &[&str] = &[
    "GROUP",
    "ENABLED",
    "VHOST",
    "PATH",
    "BACKEND_WEIGHT",
    "MODE",
    "PORT",
    "BIND_ADDR",
    "BALANCE",
    "STICKY",
];

/// One exposed service port of one app.
#[derive(Debug)]
struct Port {
    app: String,
    index: usize,
    backend: String,
    mode: Mode,
    bind_addr: String,
    bind_port: Option<u16>,
    vhosts: Vec<String>,
    paths: Vec<String>,
    weight: i64,
    balance: String,
    sticky: bool,
    check: Option<Check>,
    servers: Vec<(String, String)>,
}

#[derive(Debug)]
struct Check {
    http_path: Option<String>,
    inter: u64,
    fall: u64,
}

/// Removes everything HAProxy does not accept in a proxy or server name.
fn clean_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Backend name as marathon-lb: app id without the leading `/`, `/` → `_`, then
/// `_<servicePort>` (`_idx<n>` when the port has no service port).
fn backend_name(app_id: &str, service_port: u32, index: usize) -> String {
    let base = clean_name(app_id.trim_start_matches('/'));
    if service_port == 0 {
        format!("{base}_idx{index}")
    } else {
        format!("{base}_{service_port}")
    }
}

fn is_true(s: &str) -> bool {
    matches!(s.to_ascii_lowercase().as_str(), "true" | "t" | "yes" | "y")
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "1" => Some(true),
        "false" | "f" | "no" | "n" | "0" | "" => Some(false),
        _ => None,
    }
}

fn valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// A `path_beg` token: `-i` or an absolute path without spaces, quotes or comment characters.
fn valid_path_token(t: &str) -> bool {
    t == "-i"
        || (t.starts_with('/')
            && t.len() <= 1024
            && t.chars()
                .all(|c| c.is_ascii_graphic() && !"\"'\\#{}".contains(c)))
}

/// The port's groups: `HAPROXY_{n}_GROUP` if set, else `HAPROXY_GROUP`.
fn port_groups(app: &App, index: usize) -> Vec<String> {
    let raw = app
        .labels
        .get(&format!("HAPROXY_{index}_GROUP"))
        .or_else(|| app.labels.get("HAPROXY_GROUP"));
    raw.map(|g| {
        g.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    })
    .unwrap_or_default()
}

/// Whether a task serves traffic (marathon-lb `get_apps`): a host, a state other than the
/// skipped ones (RUNNING, LOST and UNREACHABLE are kept, as marathon-lb does), and, with
/// health checks on and when the app has any, one result alive — or, while it has no result
/// yet, remembered alive from an earlier generation.
fn task_serves(
    app: &App,
    t: &Task,
    opts: &Options,
    remembered_alive: &dyn Fn(&str) -> bool,
) -> bool {
    if t.host.is_empty() {
        return false;
    }
    if !matches!(
        t.state.as_str(),
        "TASK_RUNNING" | "TASK_LOST" | "TASK_UNREACHABLE"
    ) {
        return false;
    }
    if opts.health_check && !app.health_checks.is_empty() {
        if t.health.is_empty() {
            return remembered_alive(&t.id);
        }
        return t.health.iter().any(|a| *a);
    }
    true
}

/// Task ids whose health results say alive now: what the caller should remember (the
/// LRU cache of marathon-lb PR #148) for the next call to [`generate`].
pub fn alive_task_ids(apps: &[App]) -> Vec<String> {
    apps.iter()
        .flat_map(|a| a.tasks.iter())
        .filter(|t| t.health.iter().any(|a| *a))
        .map(|t| t.id.clone())
        .collect()
}

fn check_for(app: &App, index: usize, mode: Mode, problems: &mut Vec<String>) -> Option<Check> {
    let hc: &HealthCheck = app
        .health_checks
        .iter()
        .find(|h| h.port_index == Some(index) && h.protocol != "COMMAND")?;
    let http = matches!(
        hc.protocol.as_str(),
        "HTTP" | "HTTPS" | "MESOS_HTTP" | "MESOS_HTTPS"
    );
    let http_path = if http && mode == Mode::Http && !hc.protocol.ends_with("HTTPS") {
        let p = hc.path.clone().unwrap_or_else(|| "/".into());
        if valid_path_token(&p) && p != "-i" {
            Some(p)
        } else {
            problems.push(format!(
                "health check path {p:?} is not usable by HAProxy; plain connect check used"
            ));
            None
        }
    } else {
        None
    };
    Some(Check {
        http_path,
        inter: hc.interval_seconds.clamp(1, 3600),
        fall: hc.max_consecutive_failures.saturating_add(1).min(100),
    })
}

/// Builds the plan of one app port, or the problems that skip it.
#[allow(clippy::too_many_arguments)]
fn plan_port(
    app: &App,
    index: usize,
    service_port: u32,
    opts: &Options,
    resolve: &dyn Fn(&str) -> Option<IpAddr>,
    remembered_alive: &dyn Fn(&str) -> bool,
    notes: &mut Vec<String>,
) -> Result<Port, Vec<String>> {
    let label = |name: &str| app.labels.get(&format!("HAPROXY_{index}_{name}"));
    let mut problems = Vec::new();

    let mut vhosts = Vec::new();
    if let Some(v) = label("VHOST") {
        for h in v.split(',').map(|h| h.trim().to_ascii_lowercase()) {
            if h.is_empty() {
                continue;
            }
            if valid_hostname(&h) {
                vhosts.push(h);
            } else {
                problems.push(format!(
                    "HAPROXY_{index}_VHOST: {h:?} is not a valid host name"
                ));
            }
        }
        vhosts.sort();
        vhosts.dedup();
    }
    let mut paths = Vec::new();
    if let Some(p) = label("PATH") {
        for t in p.split_whitespace() {
            if valid_path_token(t) {
                paths.push(t.to_string());
            } else {
                problems.push(format!(
                    "HAPROXY_{index}_PATH: {t:?} is not -i or an absolute path without quotes or spaces"
                ));
            }
        }
        if !paths.iter().any(|t| t != "-i") && problems.is_empty() {
            problems.push(format!("HAPROXY_{index}_PATH: no path given"));
        }
        if vhosts.is_empty() {
            notes.push(format!(
                "HAPROXY_{index}_PATH ignored: it needs a HAPROXY_{index}_VHOST"
            ));
            paths.clear();
        }
    }
    let mut weight = if paths.is_empty() { 0 } else { 1 };
    if let Some(w) = label("BACKEND_WEIGHT") {
        match w.trim().parse::<i64>() {
            Ok(w) => weight = w,
            Err(_) => problems.push(format!(
                "HAPROXY_{index}_BACKEND_WEIGHT: {w:?} is not an integer"
            )),
        }
    }
    let http_check = app.health_checks.iter().any(|h| {
        h.port_index == Some(index) && matches!(h.protocol.as_str(), "HTTP" | "MESOS_HTTP")
    });
    let mode = match label("MODE").map(|m| m.trim().to_ascii_lowercase()) {
        Some(m) if m == "http" => Mode::Http,
        Some(m) if m == "tcp" => Mode::Tcp,
        Some(m) => {
            problems.push(format!(
                "HAPROXY_{index}_MODE: {m:?} is neither http nor tcp"
            ));
            if vhosts.is_empty() {
                Mode::Tcp
            } else {
                Mode::Http
            }
        }
        None if !vhosts.is_empty() || http_check => Mode::Http,
        None => Mode::Tcp,
    };
    if mode == Mode::Tcp && !vhosts.is_empty() {
        notes.push(format!(
            "HAPROXY_{index}_VHOST ignored: HAPROXY_{index}_MODE is tcp (vhosts need http)"
        ));
        vhosts.clear();
        paths.clear();
    }
    let mut bind_port = match u16::try_from(service_port) {
        Ok(0) => None,
        Ok(p) => Some(p),
        Err(_) => {
            problems.push(format!("service port {service_port} is out of range"));
            None
        }
    };
    if let Some(p) = label("PORT") {
        match p.trim().parse::<u16>() {
            Ok(p) if p > 0 => bind_port = Some(p),
            _ => problems.push(format!(
                "HAPROXY_{index}_PORT: {p:?} is not a port (1-65535)"
            )),
        }
    }
    let bind_addr = match label("BIND_ADDR").map(|a| a.trim()) {
        None => opts.bind_addr.clone(),
        Some("*") => "*".into(),
        Some(a) => match a.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => ip.to_string(),
            Ok(IpAddr::V6(ip)) => format!("[{ip}]"),
            Err(_) => {
                problems.push(format!(
                    "HAPROXY_{index}_BIND_ADDR: {a:?} is not an IP address"
                ));
                String::new()
            }
        },
    };
    let balance = match label("BALANCE").map(|b| b.trim().to_ascii_lowercase()) {
        None => "roundrobin".to_string(),
        Some(b) if BALANCE.contains(&b.as_str()) => b,
        Some(b) => {
            problems.push(format!(
                "HAPROXY_{index}_BALANCE: {b:?} is not one of {}",
                BALANCE.join(", ")
            ));
            String::new()
        }
    };
    let sticky = match label("STICKY") {
        None => false,
        Some(s) => match parse_bool(s.trim()) {
            Some(b) => b,
            None => {
                problems.push(format!("HAPROXY_{index}_STICKY: {s:?} is not a boolean"));
                false
            }
        },
    };
    if sticky && mode == Mode::Tcp {
        notes.push(format!("HAPROXY_{index}_STICKY ignored in tcp mode"));
    }
    if bind_port.is_none() && vhosts.is_empty() {
        problems.push(format!(
            "no service port, no HAPROXY_{index}_PORT and no vhost: nothing to expose"
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let check = if opts.health_check {
        check_for(app, index, mode, notes)
    } else {
        None
    };

    let mut servers = BTreeMap::new();
    for t in &app.tasks {
        if !task_serves(app, t, opts, remembered_alive) {
            continue;
        }
        let (ip, port) = if app.container_network {
            let ip = t
                .ip_addresses
                .first()
                .and_then(|ip| ip.parse::<IpAddr>().ok());
            let port = app
                .container_ports
                .get(index)
                .copied()
                .filter(|p| *p != 0)
                .or_else(|| t.ports.get(index).copied());
            (ip, port)
        } else {
            (resolve(&t.host), t.ports.get(index).copied())
        };
        let (Some(ip), Some(port)) = (
            ip,
            port.and_then(|p| u16::try_from(p).ok()).filter(|p| *p != 0),
        ) else {
            continue;
        };
        let addr = match ip {
            IpAddr::V4(v4) => format!("{v4}:{port}"),
            IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        };
        let name = clean_name(&format!("{}_{}_{}", t.host, ip, port));
        servers.entry(name).or_insert(addr);
    }
    Ok(Port {
        app: app.id.clone(),
        index,
        backend: backend_name(&app.id, service_port, index),
        mode,
        bind_addr,
        bind_port,
        vhosts,
        paths,
        weight,
        balance,
        sticky: sticky && mode == Mode::Http,
        check,
        servers: servers.into_iter().collect(),
    })
}

fn bind_line(addr: &str, port: u16) -> String {
    if addr == "*" {
        format!("*:{port}")
    } else {
        format!("{addr}:{port}")
    }
}

/// Generates the HAProxy configuration for `apps`.
///
/// * `resolve` maps a task's `host` to an IP (host-network tasks); `None` skips the task.
/// * `remembered_alive` says whether a task with no health result yet was alive before.
pub fn generate(
    apps: &[App],
    opts: &Options,
    resolve: &dyn Fn(&str) -> Option<IpAddr>,
    remembered_alive: &dyn Fn(&str) -> bool,
) -> Generated {
    let mut warnings = Vec::new();
    let mut ports: Vec<Port> = Vec::new();
    let mut sorted: Vec<&App> = apps.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    let mut seen_ids = HashSet::new();
    for app in sorted {
        if !seen_ids.insert(app.id.as_str()) {
            warnings.push(Warning {
                app: app.id.clone(),
                port_index: None,
                problems: vec!["duplicate app id".into()],
                skipped: true,
            });
            continue;
        }
        if opts.self_app_id.as_deref() == Some(app.id.as_str()) {
            continue;
        }
        // Labels with a port index that does not exist, or that we do not implement.
        let mut app_notes = Vec::new();
        for k in app.labels.keys() {
            let Some(rest) = k.strip_prefix("HAPROXY_") else {
                continue;
            };
            let Some((n, name)) = rest.split_once('_') else {
                continue;
            };
            let Ok(n) = n.parse::<usize>() else {
                continue;
            };
            if n >= app.service_ports.len() {
                app_notes.push(format!("{k}: the app has no port index {n}; ignored"));
            } else if !KNOWN_PORT_LABELS.contains(&name) {
                app_notes.push(format!("{k}: not supported by this balancer; ignored"));
            }
        }
        if !app_notes.is_empty() {
            warnings.push(Warning {
                app: app.id.clone(),
                port_index: None,
                problems: app_notes,
                skipped: false,
            });
        }
        for (index, sp) in app.service_ports.iter().enumerate() {
            let groups = port_groups(app, index);
            let in_group = if opts.group == "*" {
                true
            } else {
                groups.iter().any(|g| g == &opts.group)
            };
            if !in_group {
                continue;
            }
            if opts.strict
                && !app
                    .labels
                    .get(&format!("HAPROXY_{index}_ENABLED"))
                    .is_some_and(|v| is_true(v))
            {
                continue;
            }
            let mut notes = Vec::new();
            match plan_port(app, index, *sp, opts, resolve, remembered_alive, &mut notes) {
                Ok(p) => {
                    if !notes.is_empty() {
                        warnings.push(Warning {
                            app: app.id.clone(),
                            port_index: Some(index),
                            problems: notes,
                            skipped: false,
                        });
                    }
                    ports.push(p);
                }
                Err(mut problems) => {
                    problems.extend(notes);
                    warnings.push(Warning {
                        app: app.id.clone(),
                        port_index: Some(index),
                        problems,
                        skipped: true,
                    });
                }
            }
        }
    }

    // Conflicts between apps: backend names and bind ports (first app by id wins).
    let mut used_ports: BTreeMap<u16, String> = BTreeMap::new();
    if let Some(p) = opts.http_port {
        used_ports.insert(p, "the vhost frontend".into());
    }
    if let Some(p) = opts.stats_port {
        used_ports.insert(p, "the stats listener".into());
    }
    let mut backends = BTreeSet::new();
    let mut kept = Vec::with_capacity(ports.len());
    for p in ports {
        let mut problems = Vec::new();
        if backends.contains(&p.backend) {
            problems.push(format!("backend name {} is already used", p.backend));
        }
        if let Some(bp) = p.bind_port {
            if let Some(owner) = used_ports.get(&bp) {
                problems.push(format!("port {bp} is already used by {owner}"));
            }
        }
        if !problems.is_empty() {
            warnings.push(Warning {
                app: p.app.clone(),
                port_index: Some(p.index),
                problems: problems
                    .into_iter()
                    .map(|s| format!("backend {}: {s}", p.backend))
                    .collect(),
                skipped: true,
            });
            continue;
        }
        backends.insert(p.backend.clone());
        if let Some(bp) = p.bind_port {
            used_ports.insert(bp, format!("app {}", p.app));
        }
        kept.push(p);
    }

    let text = render(&kept, opts);
    Generated {
        backends: kept.len(),
        servers: kept.iter().map(|p| p.servers.len()).sum(),
        text,
        warnings,
    }
}

fn render(ports: &[Port], opts: &Options) -> String {
    let mut o = String::with_capacity(4096 + ports.len() * 512);
    o.push_str("# Generated by dcos-edgelb; do not edit.\n");
    o.push_str("global\n");
    // Every listener takes a file descriptor too: keep within the budget maxconn was sized for.
    let listeners = ports.iter().filter(|p| p.bind_port.is_some()).count()
        + usize::from(opts.http_port.is_some())
        + usize::from(opts.stats_port.is_some());
    let maxconn = opts
        .maxconn
        .saturating_sub(u32::try_from(listeners).unwrap_or(u32::MAX))
        .max(100);
    let _ = writeln!(o, "  maxconn {maxconn}");
    if let Some(h) = &opts.hard_stop_after {
        let _ = writeln!(o, "  hard-stop-after {h}");
    }
    if let Some(s) = &opts.admin_socket {
        let _ = writeln!(
            o,
            "  stats socket {s} mode 600 level admin expose-fd listeners"
        );
    }
    o.push_str(
        "\ndefaults\n  mode tcp\n  retries 3\n  backlog 10000\n  maxconn 10000\n  \
         timeout connect 3s\n  timeout client 30s\n  timeout server 30s\n  \
         timeout tunnel 3600s\n  timeout http-keep-alive 1s\n  timeout http-request 15s\n  \
         timeout queue 30s\n  option dontlognull\n  option redispatch\n",
    );
    if let Some(p) = opts.stats_port {
        let _ = write!(
            o,
            "\nlisten stats\n  bind {}\n  mode http\n  stats enable\n  stats uri /haproxy?stats\n  \
             monitor-uri /_haproxy_health_check\n",
            bind_line(&opts.bind_addr, p)
        );
    }
    if let Some(p) = opts.http_port {
        let _ = write!(
            o,
            "\nfrontend marathon_http_in\n  bind {}\n  mode http\n",
            bind_line(&opts.bind_addr, p)
        );
        let mut routed: Vec<&Port> = ports.iter().filter(|p| !p.vhosts.is_empty()).collect();
        // Larger weight first, then paths before catch-alls, then by name: deterministic.
        routed.sort_by(|a, b| {
            b.weight
                .cmp(&a.weight)
                .then(b.paths.is_empty().cmp(&a.paths.is_empty()).reverse())
                .then(a.backend.cmp(&b.backend))
        });
        for p in &routed {
            let _ = writeln!(
                o,
                "  acl host_{} req.hdr(host),field(1,:),lower -m str {}",
                p.backend,
                p.vhosts.join(" ")
            );
            if !p.paths.is_empty() {
                let _ = writeln!(o, "  acl path_{} path_beg {}", p.backend, p.paths.join(" "));
            }
        }
        for p in &routed {
            if p.paths.is_empty() {
                let _ = writeln!(o, "  use_backend {0} if host_{0}", p.backend);
            } else {
                let _ = writeln!(o, "  use_backend {0} if host_{0} path_{0}", p.backend);
            }
        }
    }
    for p in ports {
        if let Some(bp) = p.bind_port {
            let _ = write!(
                o,
                "\nfrontend {0}\n  bind {1}\n  mode {2}\n  use_backend {0}\n",
                p.backend,
                bind_line(&p.bind_addr, bp),
                p.mode.as_str()
            );
        }
    }
    for p in ports {
        let _ = write!(
            o,
            "\nbackend {}\n  balance {}\n  mode {}\n",
            p.backend,
            p.balance,
            p.mode.as_str()
        );
        if p.mode == Mode::Http {
            o.push_str(
                "  option forwardfor\n  http-request set-header X-Forwarded-Port %[dst_port]\n  \
                 http-request add-header X-Forwarded-Proto https if { ssl_fc }\n",
            );
            if let Some(Check {
                http_path: Some(path),
                ..
            }) = &p.check
            {
                let _ = writeln!(o, "  option httpchk GET {path}");
            }
            if p.sticky {
                o.push_str("  cookie mesosphere_server_id insert indirect nocache\n");
            }
        }
        for (name, addr) in &p.servers {
            let _ = write!(o, "  server {name} {addr}");
            if let Some(c) = &p.check {
                let _ = write!(o, " check inter {}s fall {}", c.inter, c.fall);
            }
            if p.sticky {
                let _ = write!(o, " cookie {name}");
            }
            o.push('\n');
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{App, HealthCheck, Task};

    fn task(id: &str, host: &str, port: u32) -> Task {
        Task {
            id: id.into(),
            host: host.into(),
            ports: vec![port],
            state: "TASK_RUNNING".into(),
            ..Task::default()
        }
    }

    fn app(id: &str, port: u32, labels: &[(&str, &str)], tasks: Vec<Task>) -> App {
        App {
            id: id.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            service_ports: vec![port],
            tasks,
            ..App::default()
        }
    }

    fn resolve(h: &str) -> Option<IpAddr> {
        match h {
            "agent1" => "10.0.0.1".parse().ok(),
            "agent2" => "10.0.0.2".parse().ok(),
            other => other.parse().ok(),
        }
    }

    fn gen(apps: &[App]) -> Generated {
        generate(apps, &Options::default(), &resolve, &|_| false)
    }

    const EXT: (&str, &str) = ("HAPROXY_GROUP", "external");

    #[test]
    fn tcp_frontend_and_backend_per_service_port() {
        let g = gen(&[app(
            "/db/redis",
            10001,
            &[EXT],
            vec![task("t1", "agent1", 31001), task("t2", "agent2", 31002)],
        )]);
        assert!(g.warnings.is_empty(), "{:?}", g.warnings);
        assert!(g.text.contains(
            "\nfrontend db_redis_10001\n  bind *:10001\n  mode tcp\n  use_backend db_redis_10001\n"
        ));
        assert!(g
            .text
            .contains("\nbackend db_redis_10001\n  balance roundrobin\n  mode tcp\n"));
        assert!(g
            .text
            .contains("  server agent1_10.0.0.1_31001 10.0.0.1:31001\n"));
        assert!(g
            .text
            .contains("  server agent2_10.0.0.2_31002 10.0.0.2:31002\n"));
        assert_eq!((g.backends, g.servers), (1, 2));
    }

    #[test]
    fn only_apps_of_the_group_are_exposed() {
        let apps = [
            app("/a", 10001, &[EXT], vec![]),
            app("/b", 10002, &[("HAPROXY_GROUP", "internal")], vec![]),
            app("/c", 10003, &[], vec![]),
            app(
                "/d",
                10004,
                &[("HAPROXY_GROUP", "internal, external")],
                vec![],
            ),
            app(
                "/e",
                10005,
                &[
                    ("HAPROXY_GROUP", "external"),
                    ("HAPROXY_0_GROUP", "internal"),
                ],
                vec![],
            ),
        ];
        let g = gen(&apps);
        assert!(g.text.contains("backend a_10001"));
        assert!(!g.text.contains("backend b_10002"));
        assert!(!g.text.contains("backend c_10003"));
        assert!(g.text.contains("backend d_10004"));
        assert!(!g.text.contains("backend e_10005"), "HAPROXY_0_GROUP wins");
        let all = Options {
            group: "*".into(),
            ..Options::default()
        };
        let g = generate(&apps, &all, &resolve, &|_| false);
        assert_eq!(g.backends, 5);
        let internal = Options {
            group: "internal".into(),
            ..Options::default()
        };
        let g = generate(&apps, &internal, &resolve, &|_| false);
        assert_eq!(g.backends, 3);
        let strict = Options {
            strict: true,
            ..Options::default()
        };
        let mut enabled = app("/f", 10006, &[EXT, ("HAPROXY_0_ENABLED", "Yes")], vec![]);
        let g = generate(
            &[apps[0].clone(), enabled.clone()],
            &strict,
            &resolve,
            &|_| false,
        );
        assert_eq!(g.backends, 1);
        assert!(g.text.contains("backend f_10006"));
        enabled
            .labels
            .insert("HAPROXY_0_ENABLED".into(), "nope".into());
        assert_eq!(
            generate(&[enabled], &strict, &resolve, &|_| false).backends,
            0
        );
    }

    #[test]
    fn the_balancer_itself_is_skipped() {
        let opts = Options {
            self_app_id: Some("/marathon-lb".into()),
            ..Options::default()
        };
        let g = generate(
            &[app("/marathon-lb", 10001, &[EXT], vec![])],
            &opts,
            &resolve,
            &|_| false,
        );
        assert_eq!(g.backends, 0);
    }

    #[test]
    fn vhosts_route_on_the_http_frontend_and_imply_http() {
        let apps = [
            app(
                "/web",
                10001,
                &[EXT, ("HAPROXY_0_VHOST", "Web.Example.com, www.example.com")],
                vec![task("t1", "agent1", 31001)],
            ),
            app(
                "/api",
                10002,
                &[
                    EXT,
                    ("HAPROXY_0_VHOST", "web.example.com"),
                    ("HAPROXY_0_PATH", "-i /api /v2"),
                ],
                vec![task("t2", "agent2", 31002)],
            ),
        ];
        let g = gen(&apps);
        assert!(g.warnings.is_empty(), "{:?}", g.warnings);
        let fe = g
            .text
            .split("\nfrontend marathon_http_in\n")
            .nth(1)
            .unwrap();
        let fe = fe.split("\n\n").next().unwrap();
        assert_eq!(
            fe,
            "  bind *:80\n  mode http\n\
             \x20 acl host_api_10002 req.hdr(host),field(1,:),lower -m str web.example.com\n\
             \x20 acl path_api_10002 path_beg -i /api /v2\n\
             \x20 acl host_web_10001 req.hdr(host),field(1,:),lower -m str web.example.com www.example.com\n\
             \x20 use_backend api_10002 if host_api_10002 path_api_10002\n\
             \x20 use_backend web_10001 if host_web_10001"
        );
        assert!(g.text.contains(
            "\nbackend web_10001\n  balance roundrobin\n  mode http\n  option forwardfor\n"
        ));
        assert!(g
            .text
            .contains("\nfrontend web_10001\n  bind *:10001\n  mode http\n"));
    }

    #[test]
    fn backend_weight_orders_the_rules() {
        let apps = [
            app("/a", 10001, &[EXT, ("HAPROXY_0_VHOST", "a.com")], vec![]),
            app(
                "/b",
                10002,
                &[
                    EXT,
                    ("HAPROXY_0_VHOST", "b.com"),
                    ("HAPROXY_0_BACKEND_WEIGHT", "5"),
                ],
                vec![],
            ),
        ];
        let g = gen(&apps);
        let b = g.text.find("use_backend b_10002 if").unwrap();
        let a = g.text.find("use_backend a_10001 if").unwrap();
        assert!(b < a);
    }

    #[test]
    fn mode_label_and_http_health_check() {
        let mut a = app("/x", 10001, &[EXT], vec![task("t1", "agent1", 31001)]);
        a.health_checks = vec![HealthCheck {
            protocol: "HTTP".into(),
            port_index: Some(0),
            path: Some("/health".into()),
            interval_seconds: 5,
            max_consecutive_failures: 2,
        }];
        a.tasks[0].health = vec![true];
        let g = gen(&[a.clone()]);
        assert!(
            g.text
                .contains("backend x_10001\n  balance roundrobin\n  mode http\n"),
            "an HTTP check implies http"
        );
        assert!(g.text.contains("  option httpchk GET /health\n"));
        assert!(g
            .text
            .contains("  server agent1_10.0.0.1_31001 10.0.0.1:31001 check inter 5s fall 3\n"));
        a.labels.insert("HAPROXY_0_MODE".into(), "TCP".into());
        let g = gen(&[a]);
        assert!(g
            .text
            .contains("backend x_10001\n  balance roundrobin\n  mode tcp\n"));
        assert!(!g.text.contains("httpchk"));
        assert!(g.text.contains("check inter 5s fall 3"));
    }

    #[test]
    fn only_running_and_healthy_tasks_are_servers() {
        let mut a = app("/h", 10001, &[EXT], vec![]);
        a.health_checks = vec![HealthCheck {
            protocol: "COMMAND".into(),
            port_index: Some(0),
            ..HealthCheck::default()
        }];
        let mk = |id: &str, port: u32, state: &str, health: Vec<bool>| Task {
            state: state.into(),
            health,
            ..task(id, "agent1", port)
        };
        a.tasks = vec![
            mk("healthy", 1, "TASK_RUNNING", vec![true]),
            mk("any-alive", 2, "TASK_RUNNING", vec![false, true]),
            mk("unhealthy", 3, "TASK_RUNNING", vec![false]),
            mk("no-result", 4, "TASK_RUNNING", vec![]),
            mk("remembered", 5, "TASK_RUNNING", vec![]),
            mk("staging", 6, "TASK_STAGING", vec![true]),
            mk("killing", 7, "TASK_KILLING", vec![true]),
            mk("unreachable", 8, "TASK_UNREACHABLE", vec![true]),
            Task {
                host: String::new(),
                ..mk("nohost", 9, "TASK_RUNNING", vec![true])
            },
            mk("unresolvable", 10, "TASK_RUNNING", vec![true]),
        ];
        a.tasks[9].host = "nowhere".into();
        let g = generate(&[a.clone()], &Options::default(), &resolve, &|id| {
            id == "remembered"
        });
        let ports: Vec<&str> = g
            .text
            .lines()
            .filter(|l| l.trim_start().starts_with("server "))
            .map(|l| l.rsplit(':').next().unwrap())
            .collect();
        assert_eq!(ports, vec!["1", "2", "5", "8"]);
        // Without --health-check results do not matter.
        let opts = Options {
            health_check: false,
            ..Options::default()
        };
        let g = generate(&[a.clone()], &opts, &resolve, &|_| false);
        assert_eq!(g.servers, 6);
        assert_eq!(alive_task_ids(&[a]).len(), 7);
    }

    #[test]
    fn invalid_labels_skip_the_port_with_every_reason() {
        let bad = app(
            "/bad",
            10001,
            &[
                EXT,
                (
                    "HAPROXY_0_VHOST",
                    "ok.com,bad host\n  server evil 1.2.3.4:1",
                ),
                ("HAPROXY_0_MODE", "udp"),
                ("HAPROXY_0_PORT", "70000"),
                ("HAPROXY_0_BALANCE", "roundrobin\n  bogus"),
                ("HAPROXY_0_STICKY", "maybe"),
                ("HAPROXY_0_BIND_ADDR", "not-an-ip"),
                ("HAPROXY_0_BACKEND_WEIGHT", "heavy"),
            ],
            vec![task("t1", "agent1", 31001)],
        );
        let good = app("/good", 10002, &[EXT], vec![task("t2", "agent1", 31002)]);
        let g = gen(&[bad, good]);
        assert!(!g.text.contains("bad"), "{}", g.text);
        assert!(!g.text.contains("evil"));
        assert!(g.text.contains("backend good_10002"));
        assert_eq!(g.warnings.len(), 1);
        let w = &g.warnings[0];
        assert_eq!(
            (w.app.as_str(), w.port_index, w.skipped),
            ("/bad", Some(0), true)
        );
        assert_eq!(w.problems.len(), 7, "{:?}", w.problems);
        let s = w.to_string();
        for what in [
            "VHOST",
            "MODE",
            "PORT",
            "BALANCE",
            "STICKY",
            "BIND_ADDR",
            "BACKEND_WEIGHT",
        ] {
            assert!(s.contains(&format!("HAPROXY_0_{what}")), "{s}");
        }
        let path = app(
            "/p",
            10003,
            &[
                EXT,
                ("HAPROXY_0_VHOST", "p.com"),
                ("HAPROXY_0_PATH", "/a\"b"),
            ],
            vec![],
        );
        let g = gen(&[path]);
        assert_eq!(g.backends, 0);
        assert!(g.warnings[0].problems[0].contains("HAPROXY_0_PATH"));
    }

    #[test]
    fn port_conflicts_keep_the_first_app() {
        let apps = [
            app("/a", 10001, &[EXT], vec![]),
            app("/b", 10002, &[EXT, ("HAPROXY_0_PORT", "10001")], vec![]),
            app("/c", 80, &[EXT], vec![]),
            app("/d", 10004, &[EXT, ("HAPROXY_0_PORT", "10010")], vec![]),
        ];
        let g = gen(&apps);
        assert_eq!(g.backends, 2);
        assert!(g.text.contains("bind *:10010"));
        assert_eq!(g.warnings.len(), 2, "{:?}", g.warnings);
        assert!(g.warnings[0]
            .to_string()
            .contains("port 10001 is already used by app /a"));
        assert!(g.warnings[1].to_string().contains("the vhost frontend"));
    }

    #[test]
    fn unknown_and_out_of_range_labels_are_reported_not_fatal() {
        let g = gen(&[app(
            "/a",
            10001,
            &[
                EXT,
                ("HAPROXY_1_VHOST", "x.com"),
                ("HAPROXY_0_SSL_CERT", "/x.pem"),
            ],
            vec![],
        )]);
        assert_eq!(g.backends, 1);
        assert_eq!(g.warnings.len(), 1);
        assert!(!g.warnings[0].skipped);
        assert_eq!(g.warnings[0].problems.len(), 2);
    }

    #[test]
    fn tcp_mode_with_a_vhost_drops_the_vhost() {
        let g = gen(&[app(
            "/a",
            10001,
            &[EXT, ("HAPROXY_0_VHOST", "a.com"), ("HAPROXY_0_MODE", "tcp")],
            vec![],
        )]);
        assert_eq!(g.backends, 1);
        assert!(!g.text.contains("host_a_10001"));
        assert!(g.warnings[0].problems[0].contains("VHOST ignored"));
    }

    #[test]
    fn output_is_deterministic_and_order_independent() {
        let apps = vec![
            app(
                "/z",
                10001,
                &[EXT, ("HAPROXY_0_VHOST", "z.com")],
                vec![task("1", "agent2", 2), task("2", "agent1", 1)],
            ),
            app(
                "/a",
                10002,
                &[EXT, ("HAPROXY_0_VHOST", "a.com")],
                vec![task("3", "agent1", 3)],
            ),
        ];
        let mut rev = apps.clone();
        rev.reverse();
        for a in &mut rev {
            a.tasks.reverse();
        }
        assert_eq!(gen(&apps).text, gen(&rev).text);
    }

    #[test]
    fn container_network_tasks_use_their_ip_and_container_port() {
        let mut a = app("/c", 10001, &[EXT], vec![task("t", "agent1", 31001)]);
        a.container_network = true;
        a.container_ports = vec![8080];
        a.tasks[0].ip_addresses = vec!["9.0.0.7".into()];
        let g = gen(&[a]);
        assert!(g
            .text
            .contains("  server agent1_9.0.0.7_8080 9.0.0.7:8080\n"));
    }
}
