//! The validation pass: from [`RawConfig`] to a [`GenesisConfig`], collecting
//! every problem (key + reason) instead of stopping at the first.
//!
//! Problems are reported in this order: the keys themselves (unknown,
//! computed), then the keys in the order of the table in docs/installer.md.

use super::raw::{
    describe, Entries, Field, Flag, Keyed, KnownKeys, List, PortNumber, RawConfig, RawRepository,
    StrList, Text,
};
use super::{
    unknown_key_reason, GenesisConfig, Problem, Store, SuperuserPassword, COMPUTED_KEYS, KNOWN_KEYS,
};
use crate::node_config::{InstallRole, Ports, Repository};
use serde_yaml::Value;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// The dcos-net addresses resolvers must not point at.
const RESERVED_RESOLVERS: [Ipv4Addr; 3] = [
    Ipv4Addr::new(198, 51, 100, 1),
    Ipv4Addr::new(198, 51, 100, 2),
    Ipv4Addr::new(198, 51, 100, 3),
];

/// The problems found so far.
#[derive(Debug, Default)]
pub(super) struct Problems(Vec<Problem>);

impl Problems {
    /// Record that `key` is wrong because of `reason`.
    pub(super) fn err(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        self.0.push(Problem {
            key: key.into(),
            reason: reason.into(),
        });
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn into_vec(self) -> Vec<Problem> {
        self.0
    }
}

/// A string value; `None` if absent or (with a problem) not a string.
fn string(p: &mut Problems, key: &str, f: Field<Text>) -> Option<String> {
    match f {
        Field::Missing => None,
        Field::Good(Text(s)) => Some(s),
        Field::Bad(v) => {
            p.err(key, format!("must be a string, got {}", describe(&v)));
            None
        }
    }
}

/// A string value that must be given (`null` counts as not given).
fn required_string(p: &mut Problems, key: &str, f: Field<Text>) -> Option<String> {
    match f {
        Field::Missing | Field::Bad(Value::Null) => {
            p.err(key, "is required");
            None
        }
        f => string(p, key, f),
    }
}

/// A list of strings (every item checked); `None` if absent or malformed.
fn str_list(p: &mut Problems, key: &str, f: Field<StrList>) -> Option<Vec<String>> {
    let items = match f {
        Field::Missing => return None,
        Field::Good(StrList(items)) => items,
        Field::Bad(Value::String(_)) => {
            p.err(
                key,
                "must be a list (a YAML list, or a JSON list in a string)",
            );
            return None;
        }
        Field::Bad(v) => {
            p.err(key, format!("must be a list, got {}", describe(&v)));
            return None;
        }
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in items.into_iter().enumerate() {
        match item {
            Field::Good(s) => out.push(s),
            Field::Bad(v) => {
                p.err(
                    format!("{key}[{i}]"),
                    format!("must be a string, got {}", describe(&v)),
                );
                ok = false;
            }
            Field::Missing => ok = false,
        }
    }
    ok.then_some(out)
}

/// A list of distinct IPv4 addresses.
fn ip_list(p: &mut Problems, key: &str, f: Field<StrList>) -> Option<Vec<Ipv4Addr>> {
    let items = str_list(p, key, f)?;
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let mut ok = true;
    for (i, s) in items.iter().enumerate() {
        match s.trim().parse::<Ipv4Addr>() {
            Ok(ip) => {
                if !seen.insert(ip) {
                    p.err(format!("{key}[{i}]"), format!("duplicate address {ip}"));
                    ok = false;
                }
                out.push(ip);
            }
            Err(_) => {
                p.err(
                    format!("{key}[{i}]"),
                    format!("'{s}' is not an IPv4 address (hostnames are not allowed)"),
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// The validation pass over a document read by `read_document`.
pub(super) fn validate(
    doc: Keyed<RawConfig>,
    ip_detect: Option<&str>,
    p: &mut Problems,
) -> Option<GenesisConfig> {
    check_keys(p, doc.unknown);
    let RawConfig {
        bootstrap_url,
        cluster_name,
        master_discovery,
        exhibitor_storage_backend,
        master_list,
        agent_list,
        public_agent_list,
        resolvers,
        dns_search,
        oauth_enabled,
        superuser_username,
        superuser_password,
        superuser_password_hash,
        store,
        ports,
        universe_repositories,
        ip_detect_filename,
        install_dir,
        work_dir,
        min_free_disk_mb,
    } = doc.known;
    let bootstrap_url = bootstrap_url_rule(p, bootstrap_url);
    let cluster_name = cluster_name_rule(p, cluster_name);
    discovery_rules(p, master_discovery, exhibitor_storage_backend);
    let nodes = node_lists(p, master_list, agent_list, public_agent_list);
    let resolvers = resolvers_rule(p, resolvers);
    let dns_search = dns_search_rule(p, dns_search);
    let oauth_enabled = oauth_rule(p, oauth_enabled);
    let superuser = superuser_rule(
        p,
        oauth_enabled,
        [
            superuser_username,
            superuser_password,
            superuser_password_hash,
        ],
    );
    let store = store_rule(p, store, nodes.0.as_deref());
    let ports = ports_rule(p, ports);
    let universe_repositories = repositories_rule(p, universe_repositories);
    let (install_dir, work_dir) = dirs_rule(p, install_dir, work_dir);
    let min_free_disk_mb = match min_free_disk_mb {
        Field::Missing => Some(1024),
        Field::Good(n) => Some(n),
        Field::Bad(_) => {
            p.err("min_free_disk_mb", "must be a non-negative integer (MiB)");
            None
        }
    };
    // Resolved by load_genconf; only type-checked here.
    string(p, "ip_detect_filename", ip_detect_filename);
    let ip_detect = ip_detect_rule(p, ip_detect);
    if !p.is_empty() {
        return None;
    }
    Some(GenesisConfig {
        bootstrap_url: bootstrap_url?,
        cluster_name: cluster_name?,
        master_list: nodes.0?,
        agent_list: nodes.1?,
        public_agent_list: nodes.2?,
        resolvers: resolvers?,
        dns_search: dns_search?,
        oauth_enabled: oauth_enabled?,
        superuser,
        store: store?,
        ports,
        universe_repositories: universe_repositories?,
        install_dir: install_dir?,
        work_dir: work_dir?,
        min_free_disk_mb: min_free_disk_mb?,
        ip_detect: ip_detect?,
    })
}

/// Keys that are not in [`KNOWN_KEYS`]: computed by the installer, typos, or not strings.
fn check_keys(p: &mut Problems, unknown: Vec<(Value, Value)>) {
    for (k, _) in unknown {
        match k {
            Value::String(key) if COMPUTED_KEYS.contains(&key.as_str()) => p.err(
                key,
                "is calculated by the installer and must not be set in the configuration",
            ),
            Value::String(key) => {
                let reason = unknown_key_reason(&key, KNOWN_KEYS);
                p.err(key, reason);
            }
            other => p.err(
                "(yaml)",
                format!("keys must be strings, got {}", describe(&other)),
            ),
        }
    }
}

fn bootstrap_url_rule(p: &mut Problems, f: Field<Text>) -> Option<String> {
    let s = required_string(p, "bootstrap_url", f)?;
    match bootstrap_url_problem(&s) {
        None => Some(s),
        Some(e) => {
            p.err("bootstrap_url", e);
            None
        }
    }
}

fn cluster_name_rule(p: &mut Problems, f: Field<Text>) -> Option<String> {
    let s = required_string(p, "cluster_name", f)?;
    if s.trim().is_empty() {
        p.err("cluster_name", "must not be empty");
        None
    } else if s.chars().any(|c| c.is_control()) || s.len() > 128 {
        p.err("cluster_name", "must be one line of at most 128 characters");
        None
    } else {
        Some(s)
    }
}

fn discovery_rules(p: &mut Problems, discovery: Field<Text>, exhibitor: Field<Text>) {
    if let Some(s) = string(p, "master_discovery", discovery) {
        match s.as_str() {
            "static" => {}
            "master_http_loadbalancer" => p.err(
                "master_discovery",
                "master_http_loadbalancer is not supported; use static with master_list",
            ),
            other => p.err(
                "master_discovery",
                format!("'{other}' is not one of: static"),
            ),
        }
    }
    if let Some(s) = string(p, "exhibitor_storage_backend", exhibitor) {
        if s != "static" && s != "zookeeper" {
            p.err(
                "exhibitor_storage_backend",
                format!("'{s}' is not supported (accepted for compatibility: static, zookeeper); use `store`"),
            );
        }
    }
}

type NodeLists = (
    Option<Vec<Ipv4Addr>>,
    Option<Vec<Ipv4Addr>>,
    Option<Vec<Ipv4Addr>>,
);

/// `master_list` (required, odd count), `agent_list`, `public_agent_list`; a node in one list only.
fn node_lists(
    p: &mut Problems,
    masters: Field<StrList>,
    agents: Field<StrList>,
    public_agents: Field<StrList>,
) -> NodeLists {
    let masters = match masters {
        Field::Missing | Field::Bad(Value::Null) => {
            p.err("master_list", "is required");
            None
        }
        f => ip_list(p, "master_list", f),
    }
    .and_then(|l| {
        if [1, 3, 5, 7, 9].contains(&l.len()) {
            return Some(l);
        }
        p.err(
            "master_list",
            format!(
                "must have 1, 3, 5, 7 or 9 masters (an odd count for a quorum), got {}",
                l.len()
            ),
        );
        None
    });
    let mut optional = |key: &str, f: Field<StrList>| match f {
        Field::Missing => Some(Vec::new()),
        f => ip_list(p, key, f),
    };
    let agents = optional("agent_list", agents);
    let public_agents = optional("public_agent_list", public_agents);
    if let (Some(m), Some(a), Some(pa)) = (&masters, &agents, &public_agents) {
        for ip in a {
            if m.contains(ip) {
                p.err(
                    "agent_list",
                    format!("{ip} is also in master_list; a node has one role"),
                );
            }
            if pa.contains(ip) {
                p.err(
                    "agent_list",
                    format!("{ip} is also in public_agent_list; a node has one role"),
                );
            }
        }
        for ip in pa.iter().filter(|ip| m.contains(ip)) {
            p.err(
                "public_agent_list",
                format!("{ip} is also in master_list; a node has one role"),
            );
        }
    }
    (masters, agents, public_agents)
}

fn resolvers_rule(p: &mut Problems, f: Field<StrList>) -> Option<Vec<String>> {
    if f == Field::Missing {
        return Some(vec!["8.8.8.8".to_string(), "8.8.4.4".to_string()]);
    }
    let l = str_list(p, "resolvers", f)?;
    let mut ok = true;
    let mut seen = BTreeSet::new();
    for (i, r) in l.iter().enumerate() {
        if let Some(e) = resolver_problem(r) {
            p.err(format!("resolvers[{i}]"), e);
            ok = false;
        } else if !seen.insert(r.clone()) {
            p.err(format!("resolvers[{i}]"), format!("duplicate resolver {r}"));
            ok = false;
        }
    }
    ok.then_some(l)
}

fn dns_search_rule(p: &mut Problems, f: Field<Text>) -> Option<Vec<String>> {
    if matches!(f, Field::Missing | Field::Bad(Value::Null)) {
        return Some(Vec::new());
    }
    let s = string(p, "dns_search", f)?;
    let reason = if s.contains('\n') {
        "must be one line".to_string()
    } else if s.contains(',') {
        "domains must be separated by spaces, not commas".to_string()
    } else if s.len() >= 256 {
        "must be shorter than 256 characters".to_string()
    } else {
        let d: Vec<String> = s.split_whitespace().map(str::to_string).collect();
        if d.len() <= 6 {
            return Some(d);
        }
        format!("at most 6 domains, got {}", d.len())
    };
    p.err("dns_search", reason);
    None
}

fn oauth_rule(p: &mut Problems, f: Field<Flag>) -> Option<bool> {
    match f {
        Field::Missing => Some(true),
        Field::Good(Flag(b)) => Some(b),
        Field::Bad(Value::String(s)) => {
            p.err("oauth_enabled", format!("must be true or false, got '{s}'"));
            None
        }
        Field::Bad(v) => {
            p.err(
                "oauth_enabled",
                format!("must be true or false, got {}", describe(&v)),
            );
            None
        }
    }
}

/// `superuser_username` with `superuser_password` or `superuser_password_hash`
/// (`fields` in that order); one is required when `oauth_enabled` is true.
fn superuser_rule(
    p: &mut Problems,
    oauth_enabled: Option<bool>,
    fields: [Field<Text>; 3],
) -> Option<(String, SuperuserPassword)> {
    let [name, plain, hash] = fields;
    let name = string(p, "superuser_username", name);
    let plain = string(p, "superuser_password", plain);
    let hash = string(p, "superuser_password_hash", hash);
    let mut superuser = None;
    match (&name, &plain, &hash) {
        (_, Some(_), Some(_)) => p.err(
            "superuser_password",
            "set superuser_password or superuser_password_hash, not both",
        ),
        (None, Some(_), None) | (None, None, Some(_)) => p.err(
            "superuser_username",
            "is required when a superuser password is given",
        ),
        (Some(_), None, None) => p.err(
            "superuser_password_hash",
            "superuser_username needs superuser_password_hash (from `dcos-installer hash-password`) or superuser_password",
        ),
        (Some(u), pw, h) => {
            let valid_uid = !u.is_empty()
                && u.len() <= 96
                && u
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c));
            if !valid_uid {
                p.err(
                    "superuser_username",
                    format!("'{u}' must be 1-96 characters of a-z A-Z 0-9 . _ @ -"),
                );
            }
            if let Some(pw) = pw {
                if pw.len() < 8 {
                    p.err("superuser_password", "must be at least 8 characters");
                } else if valid_uid {
                    superuser = Some((u.clone(), SuperuserPassword::Plain(pw.clone())));
                }
            }
            if let Some(h) = h {
                if let Err(e) = crate::password::check_phc(h) {
                    p.err("superuser_password_hash", e.to_string());
                } else if valid_uid {
                    superuser = Some((u.clone(), SuperuserPassword::Hash(h.clone())));
                }
            }
        }
        (None, None, None) => {
            if oauth_enabled == Some(true) {
                p.err(
                    "superuser_username",
                    "oauth_enabled is true, so a superuser is required (superuser_username + superuser_password_hash); or set oauth_enabled: false",
                );
            }
        }
    }
    superuser
}

fn store_rule(p: &mut Problems, f: Field<Text>, masters: Option<&[Ipv4Addr]>) -> Option<Store> {
    let store = match f {
        Field::Missing => Some(Store::Embedded),
        f => string(p, "store", f).and_then(|s| {
            if s == "embedded" {
                return Some(Store::Embedded);
            }
            match zk_url_problem(&s) {
                None => Some(Store::Zookeeper(s)),
                Some(e) => {
                    p.err("store", e);
                    None
                }
            }
        }),
    };
    if let (Some(Store::Embedded), Some(m)) = (&store, masters) {
        if m.len() > 1 {
            p.err(
                "store",
                format!(
                    "the embedded store serves one master, master_list has {}; set store: zk://host:2181[,…]/dcos",
                    m.len()
                ),
            );
        }
    }
    store
}

/// Port overrides by name, then no two services of a role on one port.
fn ports_rule(p: &mut Problems, f: Field<Entries<PortNumber>>) -> Ports {
    let mut ports = Ports::default();
    let entries = match f {
        Field::Missing => Vec::new(),
        Field::Good(Entries(e)) => e,
        Field::Bad(v) => {
            p.err(
                "ports",
                format!(
                    "must be a mapping of port name to number, got {}",
                    describe(&v)
                ),
            );
            return ports;
        }
    };
    let mut ok = true;
    for (name, number) in entries {
        let Field::Good(name) = name else {
            p.err("ports", "port names must be strings");
            ok = false;
            continue;
        };
        let key = format!("ports.{name}");
        match number {
            Field::Good(PortNumber(n @ 1..=65535)) => {
                if !ports.set(&name, n as u16) {
                    p.err(key, unknown_key_reason(&name, &Ports::NAMES));
                    ok = false;
                }
            }
            _ => {
                p.err(key, "must be a port number 1-65535");
                ok = false;
            }
        }
    }
    if ok {
        port_clashes(p, &ports);
    }
    ports
}

fn port_clashes(p: &mut Problems, ports: &Ports) {
    for role in InstallRole::ALL {
        let all = match role {
            InstallRole::Master => vec![
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
        let mut seen = BTreeSet::new();
        for (name, port) in all {
            if !seen.insert(port) {
                p.err(
                    format!("ports.{name}"),
                    format!("port {port} is used twice on {role} nodes"),
                );
            }
        }
    }
}

type RawRepositories = Field<List<Keyed<RawRepository>>>;

fn repositories_rule(p: &mut Problems, f: RawRepositories) -> Option<Vec<Repository>> {
    let items = match f {
        Field::Missing => {
            return Some(vec![Repository {
                name: "Universe".into(),
                uri: "https://universe.mesosphere.com/repo".into(),
            }])
        }
        Field::Good(List(items)) => items,
        Field::Bad(v) => {
            p.err(
                "universe_repositories",
                format!("must be a list of {{name, uri}}, got {}", describe(&v)),
            );
            return None;
        }
    };
    let mut out = Vec::new();
    let mut names = BTreeSet::new();
    let mut ok = true;
    for (i, item) in items.into_iter().enumerate() {
        let key = format!("universe_repositories[{i}]");
        let Field::Good(item) = item else {
            p.err(key, "must be a mapping with `name` and `uri`");
            ok = false;
            continue;
        };
        match repository(p, &key, item, &mut names) {
            Some(r) => out.push(r),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// One `{name, uri}` entry (`names`: those of the entries before it); `None`
/// (with the problems) if it is not valid.
fn repository(
    p: &mut Problems,
    key: &str,
    item: Keyed<RawRepository>,
    names: &mut BTreeSet<String>,
) -> Option<Repository> {
    let name = string(p, &format!("{key}.name"), item.known.name);
    let uri = string(p, &format!("{key}.uri"), item.known.uri);
    let mut ok = true;
    for (k, _) in item.unknown {
        match k {
            Value::String(other) => p.err(
                format!("{key}.{other}"),
                unknown_key_reason(&other, RawRepository::KEYS),
            ),
            other => p.err(
                key,
                format!("keys must be strings, got {}", describe(&other)),
            ),
        }
        ok = false;
    }
    let (Some(name), Some(uri)) = (&name, &uri) else {
        if name.is_none() {
            p.err(format!("{key}.name"), "is required");
        }
        if uri.is_none() {
            p.err(format!("{key}.uri"), "is required");
        }
        return None;
    };
    if name.trim().is_empty() {
        p.err(format!("{key}.name"), "must not be empty");
        ok = false;
    } else if !names.insert(name.clone()) {
        p.err(
            format!("{key}.name"),
            format!("duplicate repository name '{name}'"),
        );
        ok = false;
    }
    if !(uri.starts_with("http://") || uri.starts_with("https://") || uri.starts_with("file:///")) {
        p.err(
            format!("{key}.uri"),
            format!("'{uri}' must be an http://, https:// or file:/// URL"),
        );
        ok = false;
    }
    ok.then(|| Repository {
        name: name.clone(),
        uri: uri.clone(),
    })
}

/// `install_dir` and `work_dir`: absolute, safe in a shell, not overlapping.
fn dirs_rule(
    p: &mut Problems,
    install_dir: Field<Text>,
    work_dir: Field<Text>,
) -> (Option<String>, Option<String>) {
    let mut path = |key: &str, f: Field<Text>, default: &str| match f {
        Field::Missing => Some(default.to_string()),
        f => string(p, key, f).and_then(|s| match abs_path_problem(&s) {
            None => Some(s),
            Some(e) => {
                p.err(key, e);
                None
            }
        }),
    };
    let install_dir = path("install_dir", install_dir, "/opt/dcos-rs");
    let work_dir = path("work_dir", work_dir, "/var/lib/dcos-rs");
    if let (Some(i), Some(w)) = (&install_dir, &work_dir) {
        if i == w || w.starts_with(&format!("{i}/")) || i.starts_with(&format!("{w}/")) {
            p.err(
                "work_dir",
                format!("'{w}' must not overlap install_dir '{i}'"),
            );
        }
    }
    (install_dir, work_dir)
}

fn ip_detect_rule(p: &mut Problems, ip_detect: Option<&str>) -> Option<String> {
    match ip_detect {
        None => {
            p.err(
                "ip-detect",
                "the ip-detect script must exist (genconf/ip-detect); it must print this node's IPv4 address",
            );
            None
        }
        Some(s) if s.trim().is_empty() => {
            p.err("ip-detect", "the ip-detect script is empty");
            None
        }
        Some(s) => Some(s.to_string()),
    }
}

/// Why `s` is not an upstream resolver (`ip` or `ip:port`), if it is not.
fn resolver_problem(s: &str) -> Option<String> {
    let (ip, port) = match s.split_once(':') {
        Some((ip, port)) => (ip, Some(port)),
        None => (s, None),
    };
    let Ok(ip) = ip.parse::<Ipv4Addr>() else {
        return Some(format!(
            "'{s}' is not an IPv4 address with an optional :port"
        ));
    };
    if let Some(port) = port {
        if !matches!(port.parse::<u16>(), Ok(n) if n >= 1) {
            return Some(format!("'{s}': port must be 1-65535"));
        }
    }
    RESERVED_RESOLVERS.contains(&ip).then(|| {
        format!(
            "'{s}' is a reserved internal DNS address (198.51.100.1-3) and cannot be an upstream resolver"
        )
    })
}

/// Why `s` is not a bootstrap URL, if it is not.
fn bootstrap_url_problem(s: &str) -> Option<String> {
    if s.len() <= 1 {
        return Some("must be a URL like http://10.0.0.2:8080".into());
    }
    if s.ends_with('/') {
        return Some(format!("'{s}' must not end with '/'"));
    }
    let rest = if let Some(r) = s.strip_prefix("http://") {
        r
    } else if let Some(r) = s.strip_prefix("https://") {
        r
    } else if let Some(r) = s.strip_prefix("file://") {
        return (!r.starts_with('/')).then(|| format!("'{s}': file:// URLs need an absolute path"));
    } else {
        return Some(format!(
            "'{s}' must start with http://, https:// or file:///"
        ));
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Some(format!("'{s}' has no host"));
    }
    s.chars()
        .any(|c| c.is_whitespace() || c == '\'' || c == '"')
        .then(|| format!("'{s}' contains whitespace or quotes"))
}

/// Why `s` is not a `zk://host:port[,host:port]/path` URL, if it is not.
fn zk_url_problem(s: &str) -> Option<String> {
    let Some(rest) = s.strip_prefix("zk://") else {
        return Some(format!(
            "'{s}' must be `embedded` or a zk://host:port[,host:port]/path URL"
        ));
    };
    let Some((hosts, path)) = rest.split_once('/') else {
        return Some(format!("'{s}' needs a path, e.g. zk://10.0.0.1:2181/dcos"));
    };
    if path.is_empty() {
        return Some(format!("'{s}' needs a non-empty path after the hosts"));
    }
    for h in hosts.split(',') {
        let Some((host, port)) = h.rsplit_once(':') else {
            return Some(format!("'{s}': '{h}' must be host:port"));
        };
        if host.is_empty() || port.parse::<u16>().map(|p| p == 0).unwrap_or(true) {
            return Some(format!("'{s}': '{h}' must be host:port with port 1-65535"));
        }
    }
    None
}

/// Why `s` is not an absolute, shell-safe directory, if it is not.
fn abs_path_problem(s: &str) -> Option<String> {
    if !s.starts_with('/') || s.len() < 2 {
        return Some(format!("'{s}' must be an absolute path (not /)"));
    }
    if s.ends_with('/') {
        return Some(format!("'{s}' must not end with '/'"));
    }
    s.chars()
        .any(|c| c.is_whitespace() || "'\"$`\\;&|<>*?".contains(c))
        .then(|| format!("'{s}' contains whitespace or shell metacharacters"))
}
