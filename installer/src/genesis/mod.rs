//! Genesis configuration: `genconf/config.yaml` + `genconf/ip-detect`.
//!
//! Parsing never stops at the first problem: every problem is collected with
//! the key it concerns and the reason, and reported at once.
//!
//! * [`raw`]: the file as serde types ([`raw::RawConfig`]); a value of the
//!   wrong shape is kept, not fatal.
//! * `validate`: the validation pass, from [`raw::RawConfig`] to
//!   [`GenesisConfig`] or every [`Problem`].

pub mod raw;
mod validate;

use crate::node_config::{Ports, Repository};
use serde_yaml::Value;
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

pub(crate) fn unknown_key_reason(key: &str, candidates: &[&str]) -> String {
    match did_you_mean(key, candidates) {
        Some(s) => format!("unknown key; did you mean `{s}`?"),
        None => format!("unknown key; known keys are: {}", candidates.join(", ")),
    }
}

/// Parse and validate `config.yaml` text. `ip_detect` is the content of the
/// ip-detect script (`None` if the file does not exist), `origin` names the file.
pub fn parse_config(
    yaml: &str,
    ip_detect: Option<&str>,
    origin: &str,
) -> Result<GenesisConfig, ConfigError> {
    let mut problems = validate::Problems::default();
    let config = read_document(yaml, &mut problems)
        .and_then(|doc| validate::validate(doc, ip_detect, &mut problems));
    match config {
        Some(c) if problems.is_empty() => Ok(c),
        _ => Err(ConfigError {
            file: origin.to_string(),
            problems: problems.into_vec(),
        }),
    }
}

/// The YAML document as [`raw::RawConfig`] plus its unknown keys; `None`
/// (with the problem) when it is not YAML or not a mapping.
fn read_document(
    yaml: &str,
    problems: &mut validate::Problems,
) -> Option<raw::Keyed<raw::RawConfig>> {
    let doc: Value = match serde_yaml::from_str(yaml) {
        Ok(v) => v,
        Err(e) => {
            problems.err("(yaml)", format!("invalid YAML: {e}"));
            return None;
        }
    };
    let map = match doc {
        Value::Mapping(m) => m,
        Value::Null => {
            problems.err(
                "(yaml)",
                "the file is empty; it must be a mapping of keys to values",
            );
            return None;
        }
        other => {
            problems.err(
                "(yaml)",
                format!(
                    "the document must be a mapping of keys to values, got {}",
                    raw::describe(&other)
                ),
            );
            return None;
        }
    };
    match raw::Keyed::from_mapping(map) {
        Ok(k) => Some(k),
        Err(e) => {
            problems.err("(yaml)", format!("invalid YAML: {e}"));
            None
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "bootstrap_url: http://b\ncluster_name: c\nmaster_list: [10.0.0.11]\noauth_enabled: false\n";

    fn problems(extra: &str) -> Vec<String> {
        parse_config(&format!("{BASE}{extra}"), Some("echo 10.0.0.11"), "x")
            .expect_err("should be rejected")
            .problems
            .iter()
            .map(Problem::to_string)
            .collect()
    }

    #[test]
    fn values_of_the_wrong_shape_are_reported_per_key() {
        assert_eq!(
            problems("agent_list: ~\nstore: !custom x\nuniverse_repositories: ~\nmin_free_disk_mb: '5'\n"),
            [
                "agent_list: must be a list, got null",
                "store: must be a string, got a tagged value",
                "universe_repositories: must be a list of {name, uri}, got null",
                "min_free_disk_mb: must be a non-negative integer (MiB)",
            ]
        );
        assert_eq!(
            problems("ports: {1: 80}\nresolvers: '[1.1.1.1'\n"),
            [
                "resolvers: must be a list (a YAML list, or a JSON list in a string)",
                "ports: port names must be strings",
            ]
        );
    }

    #[test]
    fn a_repository_key_that_is_not_a_string_is_reported() {
        // (It used to fail the config without saying why.)
        assert_eq!(
            problems("universe_repositories: [{name: a, uri: 'http://x', 1: 2}]\n"),
            ["universe_repositories[0]: keys must be strings, got a number"]
        );
    }

    #[test]
    fn null_means_absent_only_where_documented() {
        let c = parse_config(&format!("{BASE}dns_search: ~\n"), Some("x"), "x").unwrap();
        assert!(c.dns_search.is_empty());
        let e = parse_config(&BASE.replace("http://b", "~"), Some("x"), "x").unwrap_err();
        assert_eq!(e.problems[0].to_string(), "bootstrap_url: is required");
    }
}
