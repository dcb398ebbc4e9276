// Genesis configuration: `genconf/config.yaml` + `genconf/ip-detect`.
//
// Parsing never stops at the first problem: every problem is collected with
// the key it concerns and the reason, and reported at once.

use dcos_installer::node_config::{Ports, Repository};
use serde_yaml::Value;
use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// Keys accepted in config.yaml.
pub const KNOWN_KEYS: &[&str] = &[
    "bootstrap_url",
    "cluster_name",
    "master_discovery",
    "exhibitor_storage_backend",
    "master_list",
    "agent_list",
    "public_agent_list",
    "resolvers",
    "dns_search",
    "oauth_enabled",
    "superuser_username",
    "superuser_password",
    "superuser_password_hash",
    "store",
    "ports",
    "universe_repositories",
    "ip_detect_filename",
    "install_dir",
    "work_dir",
    "min_free_disk_mb",
];

/// Keys DC/OS computes; setting them is an error (as in DC/OS `must` entries).
pub const COMPUTED_KEYS: &[&str] = &[
    "num_masters",
    "master_quorum",
    "dcos_version",
    "dcos_variant",
    "provider",
    "bootstrap_id",
    "cluster_id",
    "config_id",
];

/// The dcos-net addresses resolvers must not point at.
const RESERVED_RESOLVERS: [Ipv4Addr; 3] = [
    Ipv4Addr::new(198, 51, 100, 1),
    Ipv4Addr::new(198, 51, 100, 2),
    Ipv4Addr::new(198, 51, 100, 3),
];

/// One problem in the genesis config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key (dotted for nested keys, e.g. `ports.master`), or the file name.
    pub key: String,
    /// Why it is wrong and what to do.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

/// Every problem found in a genesis config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file that was checked.
    pub file: String,
    /// The problems, in key order of discovery.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {} problem{} found:",
            self.file,
            self.problems.len(),
            if self.problems.len() == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl ConfigError {
    /// Whether some problem concerns `key`.
    pub fn has(&self, key: &str) -> bool {
        self.problems.iter().any(|p| p.key == key)
    }
}

/// How the superuser password is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SuperuserPassword {
    /// A plaintext password, hashed by genconf (never written out in clear).
    Plain(String),
    /// An already hashed PHC string (`dcos-installer hash-password`).
    Hash(String),
}

/// The state store choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    /// Embedded store (one master).
    Embedded,
    /// ZooKeeper URL.
    Zookeeper(String),
}

/// A validated genesis config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenesisConfig {
    /// Base URL of the serve dir, no trailing slash.
    pub bootstrap_url: String,
    /// Cluster name.
    pub cluster_name: String,
    /// Master IPv4 addresses (odd count).
    pub master_list: Vec<Ipv4Addr>,
    /// Private agents (optional; used by postflight and role checks).
    pub agent_list: Vec<Ipv4Addr>,
    /// Public agents (optional).
    pub public_agent_list: Vec<Ipv4Addr>,
    /// Upstream resolvers (`ip` or `ip:port`).
    pub resolvers: Vec<String>,
    /// DNS search domains.
    pub dns_search: Vec<String>,
    /// Admin Router authentication.
    pub oauth_enabled: bool,
    /// Superuser uid and password, if any.
    pub superuser: Option<(String, SuperuserPassword)>,
    /// State store.
    pub store: Store,
    /// Ports.
    pub ports: Ports,
    /// Default repositories.
    pub universe_repositories: Vec<Repository>,
    /// Install tree on nodes.
    pub install_dir: String,
    /// State dir on nodes.
    pub work_dir: String,
    /// Minimum free disk space preflight demands, MiB.
    pub min_free_disk_mb: u64,
    /// The ip-detect script's content.
    pub ip_detect: String,
}

/// Levenshtein distance (for "did you mean").
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest candidate to `word`, if close enough to be a plausible typo.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let max = (word.chars().count() / 3).clamp(1, 4);
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, _)| *d <= max)
        .min()
        .map(|(_, c)| c)
}

fn unknown_key_reason(key: &str, candidates: &[&str]) -> String {
    match did_you_mean(key, candidates) {
        Some(s) => format!("unknown key; did you mean `{s}`?"),
        None => format!("unknown key; known keys are: {}", candidates.join(", ")),
    }
}

struct Ctx {
    problems: Vec<Problem>,
}

impl Ctx {
    fn err(&mut self, key: &str, reason: impl Into<String>) {
        self.problems.push(Problem {
            key: key.to_string(),
            reason: reason.into(),
        });
    }
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

fn get_str(ctx: &mut Ctx, key: &str, v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        other => {
            ctx.err(key, format!("must be a string, got {}", describe(other)));
            None
        }
    }
}

fn get_bool(ctx: &mut Ctx, key: &str, v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s == "true" => Some(true),
        Value::String(s) if s == "false" => Some(false),
        Value::String(s) => {
            ctx.err(key, format!("must be true or false, got '{s}'"));
            None
        }
        other => {
            ctx.err(
                key,
                format!("must be true or false, got {}", describe(other)),
            );
            None
        }
    }
}

/// A list given as a YAML list, or as a JSON string (DC/OS accepts both).
fn get_str_list(ctx: &mut Ctx, key: &str, v: &Value) -> Option<Vec<String>> {
    let seq: Vec<Value> = match v {
        Value::Sequence(s) => s.clone(),
        Value::String(s) => match serde_json::from_str::<Vec<serde_json::Value>>(s) {
            Ok(items) => items
                .into_iter()
                .map(|i| match i {
                    serde_json::Value::String(s) => Value::String(s),
                    other => Value::String(other.to_string()),
                })
                .collect(),
            Err(_) => {
                ctx.err(
                    key,
                    "must be a list (a YAML list, or a JSON list in a string)",
                );
                return None;
            }
        },
        other => {
            ctx.err(key, format!("must be a list, got {}", describe(other)));
            return None;
        }
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in seq.iter().enumerate() {
        match item {
            Value::String(s) => out.push(s.clone()),
            other => {
                ctx.err(
                    &format!("{key}[{i}]"),
                    format!("must be a string, got {}", describe(other)),
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

fn ip_list(ctx: &mut Ctx, key: &str, v: &Value) -> Option<Vec<Ipv4Addr>> {
    let items = get_str_list(ctx, key, v)?;
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let mut ok = true;
    for (i, s) in items.iter().enumerate() {
        match s.trim().parse::<Ipv4Addr>() {
            Ok(ip) => {
                if !seen.insert(ip) {
                    ctx.err(&format!("{key}[{i}]"), format!("duplicate address {ip}"));
                    ok = false;
                }
                out.push(ip);
            }
            Err(_) => {
                ctx.err(
                    &format!("{key}[{i}]"),
                    format!("'{s}' is not an IPv4 address (hostnames are not allowed)"),
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

fn check_resolver(s: &str) -> Result<(), String> {
    let (ip, port) = match s.split_once(':') {
        Some((ip, port)) => (ip, Some(port)),
        None => (s, None),
    };
    let ip: Ipv4Addr = ip
        .parse()
        .map_err(|_| format!("'{s}' is not an IPv4 address with an optional :port"))?;
    if let Some(p) = port {
        match p.parse::<u16>() {
            Ok(n) if n >= 1 => {}
            _ => return Err(format!("'{s}': port must be 1-65535")),
        }
    }
    if RESERVED_RESOLVERS.contains(&ip) {
        return Err(format!(
            "'{s}' is a reserved internal DNS address (198.51.100.1-3) and cannot be an upstream resolver"
        ));
    }
    Ok(())
}

fn check_bootstrap_url(s: &str) -> Result<(), String> {
    if s.len() <= 1 {
        return Err("must be a URL like http://10.0.0.2:8080".into());
    }
    if s.ends_with('/') {
        return Err(format!("'{s}' must not end with '/'"));
    }
    let rest = if let Some(r) = s.strip_prefix("http://") {
        r
    } else if let Some(r) = s.strip_prefix("https://") {
        r
    } else if let Some(r) = s.strip_prefix("file://") {
        if !r.starts_with('/') {
            return Err(format!("'{s}': file:// URLs need an absolute path"));
        }
        return Ok(());
    } else {
        return Err(format!(
            "'{s}' must start with http://, https:// or file:///"
        ));
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("'{s}' has no host"));
    }
    if s.chars()
        .any(|c| c.is_whitespace() || c == '\'' || c == '"')
    {
        return Err(format!("'{s}' contains whitespace or quotes"));
    }
    Ok(())
}

fn check_zk_url(s: &str) -> Result<(), String> {
    let rest = s.strip_prefix("zk://").ok_or_else(|| {
        format!("'{s}' must be `embedded` or a zk://host:port[,host:port]/path URL")
    })?;
    let (hosts, path) = rest
        .split_once('/')
        .ok_or_else(|| format!("'{s}' needs a path, e.g. zk://10.0.0.1:2181/dcos"))?;
    if path.is_empty() {
        return Err(format!("'{s}' needs a non-empty path after the hosts"));
    }
    for h in hosts.split(',') {
        let (host, port) = h
            .rsplit_once(':')
            .ok_or_else(|| format!("'{s}': '{h}' must be host:port"))?;
        if host.is_empty() || port.parse::<u16>().map(|p| p == 0).unwrap_or(true) {
            return Err(format!("'{s}': '{h}' must be host:port with port 1-65535"));
        }
    }
    Ok(())
}

fn check_abs_path(s: &str) -> Result<(), String> {
    if !s.starts_with('/') || s.len() < 2 {
        return Err(format!("'{s}' must be an absolute path (not /)"));
    }
    if s.ends_with('/') {
        return Err(format!("'{s}' must not end with '/'"));
    }
    if s.chars()
        .any(|c| c.is_whitespace() || "'\"$`\\;&|<>*?".contains(c))
    {
        return Err(format!("'{s}' contains whitespace or shell metacharacters"));
    }
    Ok(())
}

/// Parse and validate `config.yaml` text. `ip_detect` is the content of the
/// ip-detect script (`None` if the file does not exist), `origin` names the file.
pub fn parse_config(
    yaml: &str,
    ip_detect: Option<&str>,
    origin: &str,
) -> Result<GenesisConfig, ConfigError> {
    let mut ctx = Ctx {
        problems: Vec::new(),
    };
    let fail = |ctx: Ctx| ConfigError {
        file: origin.to_string(),
        problems: ctx.problems,
    };
    let doc: Value = match serde_yaml::from_str(yaml) {
        Ok(v) => v,
        Err(e) => {
            ctx.err("(yaml)", format!("invalid YAML: {e}"));
            return Err(fail(ctx));
        }
    };
    let map = match doc {
        Value::Mapping(m) => m,
        Value::Null => {
            ctx.err(
                "(yaml)",
                "the file is empty; it must be a mapping of keys to values",
            );
            return Err(fail(ctx));
        }
        other => {
            ctx.err(
                "(yaml)",
                format!(
                    "the document must be a mapping of keys to values, got {}",
                    describe(&other)
                ),
            );
            return Err(fail(ctx));
        }
    };

    let mut get = std::collections::BTreeMap::<String, Value>::new();
    for (k, v) in map {
        let key = match k {
            Value::String(s) => s,
            other => {
                ctx.err(
                    "(yaml)",
                    format!("keys must be strings, got {}", describe(&other)),
                );
                continue;
            }
        };
        if COMPUTED_KEYS.contains(&key.as_str()) {
            ctx.err(
                &key,
                "is calculated by the installer and must not be set in the configuration",
            );
        } else if !KNOWN_KEYS.contains(&key.as_str()) {
            let reason = unknown_key_reason(&key, KNOWN_KEYS);
            ctx.err(&key, reason);
        } else {
            get.insert(key, v);
        }
    }

    let required = |ctx: &mut Ctx, key: &str| -> Option<Value> {
        let v = get.get(key).cloned();
        if v.is_none() || matches!(v, Some(Value::Null)) {
            ctx.err(key, "is required");
            return None;
        }
        v
    };

    // bootstrap_url
    let bootstrap_url = required(&mut ctx, "bootstrap_url")
        .and_then(|v| get_str(&mut ctx, "bootstrap_url", &v))
        .and_then(|s| match check_bootstrap_url(&s) {
            Ok(()) => Some(s),
            Err(e) => {
                ctx.err("bootstrap_url", e);
                None
            }
        });

    // cluster_name
    let cluster_name = required(&mut ctx, "cluster_name")
        .and_then(|v| get_str(&mut ctx, "cluster_name", &v))
        .and_then(|s| {
            if s.trim().is_empty() {
                ctx.err("cluster_name", "must not be empty");
                None
            } else if s.chars().any(|c| c.is_control()) || s.len() > 128 {
                ctx.err("cluster_name", "must be one line of at most 128 characters");
                None
            } else {
                Some(s)
            }
        });

    // master_discovery
    if let Some(v) = get.get("master_discovery") {
        if let Some(s) = get_str(&mut ctx, "master_discovery", v) {
            match s.as_str() {
                "static" => {}
                "master_http_loadbalancer" => ctx.err(
                    "master_discovery",
                    "master_http_loadbalancer is not supported; use static with master_list",
                ),
                other => ctx.err(
                    "master_discovery",
                    format!("'{other}' is not one of: static"),
                ),
            }
        }
    }
    if let Some(v) = get.get("exhibitor_storage_backend") {
        if let Some(s) = get_str(&mut ctx, "exhibitor_storage_backend", v) {
            if s != "static" && s != "zookeeper" {
                ctx.err(
                    "exhibitor_storage_backend",
                    format!("'{s}' is not supported (accepted for compatibility: static, zookeeper); use `store`"),
                );
            }
        }
    }

    // master_list
    let master_list = required(&mut ctx, "master_list")
        .and_then(|v| ip_list(&mut ctx, "master_list", &v))
        .and_then(|l| {
            if [1, 3, 5, 7, 9].contains(&l.len()) {
                Some(l)
            } else {
                ctx.err(
                    "master_list",
                    format!(
                        "must have 1, 3, 5, 7 or 9 masters (an odd count for a quorum), got {}",
                        l.len()
                    ),
                );
                None
            }
        });
    let agent_list = match get.get("agent_list") {
        Some(v) => ip_list(&mut ctx, "agent_list", v),
        None => Some(Vec::new()),
    };
    let public_agent_list = match get.get("public_agent_list") {
        Some(v) => ip_list(&mut ctx, "public_agent_list", v),
        None => Some(Vec::new()),
    };
    if let (Some(m), Some(a), Some(p)) = (&master_list, &agent_list, &public_agent_list) {
        for ip in a.iter() {
            if m.contains(ip) {
                ctx.err(
                    "agent_list",
                    format!("{ip} is also in master_list; a node has one role"),
                );
            }
            if p.contains(ip) {
                ctx.err(
                    "agent_list",
                    format!("{ip} is also in public_agent_list; a node has one role"),
                );
            }
        }
        for ip in p.iter() {
            if m.contains(ip) {
                ctx.err(
                    "public_agent_list",
                    format!("{ip} is also in master_list; a node has one role"),
                );
            }
        }
    }

    // resolvers
    let resolvers = match get.get("resolvers") {
        None => Some(vec!["8.8.8.8".to_string(), "8.8.4.4".to_string()]),
        Some(v) => get_str_list(&mut ctx, "resolvers", v).and_then(|l| {
            let mut ok = true;
            let mut seen = BTreeSet::new();
            for (i, r) in l.iter().enumerate() {
                if let Err(e) = check_resolver(r) {
                    ctx.err(&format!("resolvers[{i}]"), e);
                    ok = false;
                } else if !seen.insert(r.clone()) {
                    ctx.err(
                        &format!("resolvers[{i}]"),
                        format!("duplicate resolver {r}"),
                    );
                    ok = false;
                }
            }
            ok.then_some(l)
        }),
    };

    // dns_search
    let dns_search = match get.get("dns_search") {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(v) => get_str(&mut ctx, "dns_search", v).and_then(|s| {
            if s.contains('\n') {
                ctx.err("dns_search", "must be one line");
                None
            } else if s.contains(',') {
                ctx.err(
                    "dns_search",
                    "domains must be separated by spaces, not commas",
                );
                None
            } else if s.len() >= 256 {
                ctx.err("dns_search", "must be shorter than 256 characters");
                None
            } else {
                let d: Vec<String> = s.split_whitespace().map(str::to_string).collect();
                if d.len() > 6 {
                    ctx.err("dns_search", format!("at most 6 domains, got {}", d.len()));
                    None
                } else {
                    Some(d)
                }
            }
        }),
    };

    let oauth_enabled = match get.get("oauth_enabled") {
        None => Some(true),
        Some(v) => get_bool(&mut ctx, "oauth_enabled", v),
    };

    // superuser
    let su_name = get
        .get("superuser_username")
        .and_then(|v| get_str(&mut ctx, "superuser_username", v));
    let su_plain = get
        .get("superuser_password")
        .and_then(|v| get_str(&mut ctx, "superuser_password", v));
    let su_hash = get
        .get("superuser_password_hash")
        .and_then(|v| get_str(&mut ctx, "superuser_password_hash", v));
    let mut superuser = None;
    match (&su_name, &su_plain, &su_hash) {
        (_, Some(_), Some(_)) => ctx.err(
            "superuser_password",
            "set superuser_password or superuser_password_hash, not both",
        ),
        (None, Some(_), None) | (None, None, Some(_)) => ctx.err(
            "superuser_username",
            "is required when a superuser password is given",
        ),
        (Some(_), None, None) => ctx.err(
            "superuser_password_hash",
            "superuser_username needs superuser_password_hash (from `dcos-installer hash-password`) or superuser_password",
        ),
        (Some(u), p, h) => {
            let valid_uid = !u.is_empty()
                && u.len() <= 96
                && u
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c));
            if !valid_uid {
                ctx.err(
                    "superuser_username",
                    format!("'{u}' must be 1-96 characters of a-z A-Z 0-9 . _ @ -"),
                );
            }
            if let Some(p) = p {
                if p.len() < 8 {
                    ctx.err("superuser_password", "must be at least 8 characters");
                } else if valid_uid {
                    superuser = Some((u.clone(), SuperuserPassword::Plain(p.clone())));
                }
            }
            if let Some(h) = h {
                if let Err(e) = dcos_installer::password::check_phc(h).map_err(|e| e.to_string()) {
                    ctx.err("superuser_password_hash", e);
                } else if valid_uid {
                    superuser = Some((u.clone(), SuperuserPassword::Hash(h.clone())));
                }
            }
        }
        (None, None, None) => {}
    }
    if oauth_enabled == Some(true) && su_name.is_none() && su_plain.is_none() && su_hash.is_none() {
        ctx.err(
            "superuser_username",
            "oauth_enabled is true, so a superuser is required (superuser_username + superuser_password_hash); or set oauth_enabled: false",
        );
    }

    // store
    let store = match get.get("store") {
        None => Some(Store::Embedded),
        Some(v) => get_str(&mut ctx, "store", v).and_then(|s| {
            if s == "embedded" {
                Some(Store::Embedded)
            } else {
                match check_zk_url(&s) {
                    Ok(()) => Some(Store::Zookeeper(s)),
                    Err(e) => {
                        ctx.err("store", e);
                        None
                    }
                }
            }
        }),
    };
    if let (Some(Store::Embedded), Some(m)) = (&store, &master_list) {
        if m.len() > 1 {
            ctx.err(
                "store",
                format!(
                    "the embedded store serves one master, master_list has {}; set store: zk://host:2181[,…]/dcos",
                    m.len()
                ),
            );
        }
    }

    // ports
    let mut ports = Ports::default();
    let mut ports_ok = true;
    if let Some(v) = get.get("ports") {
        match v {
            Value::Mapping(m) => {
                for (k, pv) in m {
                    let Value::String(name) = k else {
                        ctx.err("ports", "port names must be strings");
                        ports_ok = false;
                        continue;
                    };
                    let key = format!("ports.{name}");
                    let n = match pv {
                        Value::Number(n) => n.as_u64(),
                        Value::String(s) => s.parse::<u64>().ok(),
                        _ => None,
                    };
                    match n {
                        Some(n) if (1..=65535).contains(&n) => {
                            if !ports.set(name, n as u16) {
                                ctx.err(&key, unknown_key_reason(name, &Ports::NAMES));
                                ports_ok = false;
                            }
                        }
                        _ => {
                            ctx.err(&key, "must be a port number 1-65535");
                            ports_ok = false;
                        }
                    }
                }
            }
            other => {
                ctx.err(
                    "ports",
                    format!(
                        "must be a mapping of port name to number, got {}",
                        describe(other)
                    ),
                );
                ports_ok = false;
            }
        }
    }
    if ports_ok {
        for role in dcos_installer::node_config::InstallRole::ALL {
            let mut seen = BTreeSet::new();
            let all = match role {
                dcos_installer::node_config::InstallRole::Master => vec![
                    ("adminrouter", ports.adminrouter),
                    ("adminrouter_tls", ports.adminrouter_tls),
                    ("master", ports.master),
                    ("marathon", ports.marathon),
                    ("metronome", ports.metronome),
                    ("cosmos", ports.cosmos),
                    ("mesos_dns", ports.mesos_dns),
                    ("diagnostics", ports.diagnostics),
                ],
                _ => vec![
                    ("agent", ports.agent),
                    ("agent_adminrouter", ports.agent_adminrouter),
                ],
            };
            for (name, p) in all {
                if !seen.insert(p) {
                    ctx.err(
                        &format!("ports.{name}"),
                        format!("port {p} is used twice on {role} nodes"),
                    );
                }
            }
        }
    }

    // universe_repositories
    let universe_repositories = match get.get("universe_repositories") {
        None => Some(vec![Repository {
            name: "Universe".into(),
            uri: "https://universe.mesosphere.com/repo".into(),
        }]),
        Some(Value::Sequence(items)) => {
            let mut out = Vec::new();
            let mut names = BTreeSet::new();
            let mut ok = true;
            for (i, item) in items.iter().enumerate() {
                let key = format!("universe_repositories[{i}]");
                let Value::Mapping(m) = item else {
                    ctx.err(&key, "must be a mapping with `name` and `uri`");
                    ok = false;
                    continue;
                };
                let mut name = None;
                let mut uri = None;
                for (k, v) in m {
                    match k.as_str() {
                        Some("name") => name = get_str(&mut ctx, &format!("{key}.name"), v),
                        Some("uri") => uri = get_str(&mut ctx, &format!("{key}.uri"), v),
                        Some(other) => {
                            ctx.err(
                                &format!("{key}.{other}"),
                                unknown_key_reason(other, &["name", "uri"]),
                            );
                            ok = false;
                        }
                        None => ok = false,
                    }
                }
                match (name, uri) {
                    (Some(n), Some(u)) => {
                        if n.trim().is_empty() {
                            ctx.err(&format!("{key}.name"), "must not be empty");
                            ok = false;
                        } else if !names.insert(n.clone()) {
                            ctx.err(
                                &format!("{key}.name"),
                                format!("duplicate repository name '{n}'"),
                            );
                            ok = false;
                        }
                        if !(u.starts_with("http://")
                            || u.starts_with("https://")
                            || u.starts_with("file:///"))
                        {
                            ctx.err(
                                &format!("{key}.uri"),
                                format!("'{u}' must be an http://, https:// or file:/// URL"),
                            );
                            ok = false;
                        }
                        out.push(Repository { name: n, uri: u });
                    }
                    (n, u) => {
                        if n.is_none() {
                            ctx.err(&format!("{key}.name"), "is required");
                        }
                        if u.is_none() {
                            ctx.err(&format!("{key}.uri"), "is required");
                        }
                        ok = false;
                    }
                }
            }
            ok.then_some(out)
        }
        Some(other) => {
            ctx.err(
                "universe_repositories",
                format!("must be a list of {{name, uri}}, got {}", describe(other)),
            );
            None
        }
    };

    let path_key = |ctx: &mut Ctx, key: &str, default: &str| -> Option<String> {
        match get.get(key) {
            None => Some(default.to_string()),
            Some(v) => get_str(ctx, key, v).and_then(|s| match check_abs_path(&s) {
                Ok(()) => Some(s),
                Err(e) => {
                    ctx.err(key, e);
                    None
                }
            }),
        }
    };
    let install_dir = path_key(&mut ctx, "install_dir", "/opt/dcos-rs");
    let work_dir = path_key(&mut ctx, "work_dir", "/var/lib/dcos-rs");
    if let (Some(i), Some(w)) = (&install_dir, &work_dir) {
        if i == w || w.starts_with(&format!("{i}/")) || i.starts_with(&format!("{w}/")) {
            ctx.err(
                "work_dir",
                format!("'{w}' must not overlap install_dir '{i}'"),
            );
        }
    }
    let min_free_disk_mb = match get.get("min_free_disk_mb") {
        None => Some(1024),
        Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64(),
        Some(_) => {
            ctx.err("min_free_disk_mb", "must be a non-negative integer (MiB)");
            None
        }
    };
    if let Some(v) = get.get("ip_detect_filename") {
        // Resolved by load_genconf; only type-checked here.
        get_str(&mut ctx, "ip_detect_filename", v);
    }

    let ip_detect = match ip_detect {
        None => {
            ctx.err(
                "ip-detect",
                "the ip-detect script must exist (genconf/ip-detect); it must print this node's IPv4 address",
            );
            None
        }
        Some(s) if s.trim().is_empty() => {
            ctx.err("ip-detect", "the ip-detect script is empty");
            None
        }
        Some(s) => Some(s.to_string()),
    };

    match (
        bootstrap_url,
        cluster_name,
        master_list,
        agent_list,
        public_agent_list,
        resolvers,
        dns_search,
        oauth_enabled,
        store,
        universe_repositories,
        install_dir,
        work_dir,
        min_free_disk_mb,
        ip_detect,
    ) {
        (
            Some(bootstrap_url),
            Some(cluster_name),
            Some(master_list),
            Some(agent_list),
            Some(public_agent_list),
            Some(resolvers),
            Some(dns_search),
            Some(oauth_enabled),
            Some(store),
            Some(universe_repositories),
            Some(install_dir),
            Some(work_dir),
            Some(min_free_disk_mb),
            Some(ip_detect),
        ) if ctx.problems.is_empty() => Ok(GenesisConfig {
            bootstrap_url,
            cluster_name,
            master_list,
            agent_list,
            public_agent_list,
            resolvers,
            dns_search,
            oauth_enabled,
            superuser,
            store,
            ports,
            universe_repositories,
            install_dir,
            work_dir,
            min_free_disk_mb,
            ip_detect,
        }),
        _ => Err(fail(ctx)),
    }
}

/// Load `<genconf_dir>/config.yaml` and the ip-detect script
/// (`ip_detect_filename`, default `genconf/ip-detect`, relative to the
/// directory that contains `genconf`).
pub fn load_genconf(genconf_dir: &Path) -> Result<GenesisConfig, ConfigError> {
    let cfg_path = genconf_dir.join("config.yaml");
    let origin = cfg_path.display().to_string();
    let yaml = std::fs::read_to_string(&cfg_path).map_err(|e| ConfigError {
        file: origin.clone(),
        problems: vec![Problem {
            key: "config.yaml".into(),
            reason: format!("cannot read {origin}: {e}"),
        }],
    })?;
    let ip_detect_path = ip_detect_path(genconf_dir, &yaml);
    let ip_detect = std::fs::read_to_string(&ip_detect_path).ok();
    parse_config(&yaml, ip_detect.as_deref(), &origin)
}

fn ip_detect_path(genconf_dir: &Path, yaml: &str) -> PathBuf {
    let configured = serde_yaml::from_str::<Value>(yaml).ok().and_then(|v| {
        v.get("ip_detect_filename")
            .and_then(|f| f.as_str().map(str::to_string))
    });
    match configured {
        Some(f) if Path::new(&f).is_absolute() => PathBuf::from(f),
        Some(f) => genconf_dir
            .parent()
            .map(|p| p.join(&f))
            .unwrap_or_else(|| PathBuf::from(&f)),
        None => genconf_dir.join("ip-detect"),
    }
}
