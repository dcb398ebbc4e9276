//! CLI configuration, laid out like the DC/OS CLI's:
//! `$DCOS_DIR` (default `~/.dcos`) / `clusters/<CLUSTER_ID>/dcos.toml` plus an empty `attached`
//! marker in the attached cluster's folder. `dcos.toml` has `[core] dcos_url, dcos_acs_token,
//! ssl_verify` and `[cluster] name`. Environment overrides: `DCOS_URL`, `DCOS_ACS_TOKEN`,
//! `DCOS_CLUSTER` (name or id), `DCOS_DIR`. A legacy `$DCOS_DIR/dcos.toml` with `core.dcos_url`
//! is honoured when no cluster is attached.

use std::path::{Path, PathBuf};

use crate::error::{CliError, Result};

/// One configured cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    pub id: String,
    pub name: String,
    pub url: String,
    pub token: Option<String>,
    pub attached: bool,
}

/// The `$DCOS_DIR` folder.
#[derive(Debug, Clone)]
pub struct ConfigDir {
    pub root: PathBuf,
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> CliError {
    CliError::failed_hint(
        format!("cannot {what} {}: {e}", path.display()),
        "check the permissions of the DC/OS CLI config folder ($DCOS_DIR, default ~/.dcos)",
    )
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl ConfigDir {
    /// `$DCOS_DIR`, else `$HOME/.dcos`.
    pub fn from_env() -> Result<Self> {
        if let Some(d) = env_nonempty("DCOS_DIR") {
            return Ok(Self { root: d.into() });
        }
        match env_nonempty("HOME") {
            Some(h) => Ok(Self {
                root: Path::new(&h).join(".dcos"),
            }),
            None => Err(CliError::usage(
                "neither DCOS_DIR nor HOME is set",
                "set DCOS_DIR to a folder for the CLI configuration",
            )),
        }
    }

    fn clusters_dir(&self) -> PathBuf {
        self.root.join("clusters")
    }

    /// Every configured cluster, sorted by name.
    pub fn clusters(&self) -> Result<Vec<ClusterConfig>> {
        let dir = self.clusters_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("read", &dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(id) = path
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_string)
            else {
                continue;
            };
            let toml_path = path.join("dcos.toml");
            let Ok(text) = std::fs::read_to_string(&toml_path) else {
                continue;
            };
            let table: toml::Table = text.parse().map_err(|e| {
                CliError::failed_hint(
                    format!("{} is not valid TOML: {e}", toml_path.display()),
                    format!("fix or delete {}", path.display()),
                )
            })?;
            let get = |section: &str, key: &str| {
                table
                    .get(section)
                    .and_then(|s| s.get(key))
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            };
            let Some(url) = get("core", "dcos_url") else {
                continue;
            };
            out.push(ClusterConfig {
                name: get("cluster", "name").unwrap_or_else(|| id.clone()),
                token: get("core", "dcos_acs_token").filter(|t| !t.is_empty()),
                attached: path.join("attached").exists(),
                id,
                url,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Writes a cluster's `dcos.toml` (keeping keys this CLI does not know).
    pub fn save(&self, c: &ClusterConfig) -> Result<()> {
        let dir = self.clusters_dir().join(&c.id);
        std::fs::create_dir_all(&dir).map_err(|e| io_err("create", &dir, e))?;
        let path = dir.join("dcos.toml");
        let mut table: toml::Table = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or_default();
        let core = table
            .entry("core")
            .or_insert_with(|| toml::Value::Table(Default::default()));
        if let Some(core) = core.as_table_mut() {
            core.insert("dcos_url".into(), c.url.clone().into());
            match &c.token {
                Some(t) => {
                    core.insert("dcos_acs_token".into(), t.clone().into());
                }
                None => {
                    core.remove("dcos_acs_token");
                }
            }
            if c.url.starts_with("http://") {
                core.insert("ssl_verify".into(), "false".into());
            }
        }
        let cluster = table
            .entry("cluster")
            .or_insert_with(|| toml::Value::Table(Default::default()));
        if let Some(cluster) = cluster.as_table_mut() {
            cluster.insert("name".into(), c.name.clone().into());
        }
        let text = toml::to_string(&table)
            .map_err(|e| CliError::failed(format!("cannot serialise config: {e}")))?;
        std::fs::write(&path, text).map_err(|e| io_err("write", &path, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        }
        Ok(())
    }

    /// Marks `id` attached (and every other cluster detached).
    pub fn attach(&self, id: &str) -> Result<()> {
        for c in self.clusters()? {
            let marker = self.clusters_dir().join(&c.id).join("attached");
            if c.id == id {
                std::fs::write(&marker, b"").map_err(|e| io_err("write", &marker, e))?;
            } else if marker.exists() {
                std::fs::remove_file(&marker).map_err(|e| io_err("remove", &marker, e))?;
            }
        }
        Ok(())
    }

    /// Deletes a cluster's configuration.
    pub fn remove(&self, id: &str) -> Result<()> {
        let dir = self.clusters_dir().join(id);
        std::fs::remove_dir_all(&dir).map_err(|e| io_err("remove", &dir, e))
    }

    /// A cluster by name or id (a unique id prefix is enough).
    pub fn find(&self, name_or_id: &str) -> Result<ClusterConfig> {
        let all = self.clusters()?;
        if let Some(c) = all
            .iter()
            .find(|c| c.id == name_or_id || c.name == name_or_id)
        {
            return Ok(c.clone());
        }
        let prefixed: Vec<_> = all
            .iter()
            .filter(|c| c.id.starts_with(name_or_id))
            .collect();
        match prefixed.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(CliError::failed_hint(
                format!("no cluster named '{name_or_id}' is configured"),
                "see the configured clusters with `dcos cluster list`",
            )),
            _ => Err(CliError::failed_hint(
                format!("'{name_or_id}' matches several clusters"),
                "use the full cluster ID from `dcos cluster list`",
            )),
        }
    }

    fn legacy_url(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.root.join("dcos.toml")).ok()?;
        let table: toml::Table = text.parse().ok()?;
        table
            .get("core")?
            .get("dcos_url")?
            .as_str()
            .map(str::to_string)
    }
}

/// What the current command talks to.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    pub token: Option<String>,
    /// The configured cluster, when the target came from the config.
    pub cluster: Option<ClusterConfig>,
}

/// Normalises a user-typed cluster URL: adds `http://`, drops trailing slashes.
pub fn normalize_url(url: &str) -> Result<String> {
    let url = url.trim();
    if url.trim_end_matches('/').is_empty() {
        return Err(CliError::usage(
            "the cluster URL is empty",
            "pass the URL of the cluster's Admin Router, e.g. http://10.0.0.1",
        ));
    }
    let url = if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    };
    match reqwest::Url::parse(&url) {
        Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => {
            Ok(url.trim_end_matches('/').to_string())
        }
        Ok(u) => Err(CliError::usage(
            format!("'{url}' is not an http(s) URL (scheme {})", u.scheme()),
            "use http://HOST[:PORT] or https://HOST[:PORT]",
        )),
        Err(e) => Err(CliError::usage(
            format!("'{url}' is not a valid URL: {e}"),
            "use http://HOST[:PORT] or https://HOST[:PORT]",
        )),
    }
}

/// Resolves the target: `DCOS_URL` (+ `DCOS_ACS_TOKEN`), else `DCOS_CLUSTER`, else the attached
/// cluster, else the legacy `core.dcos_url`.
pub fn current(dir: &ConfigDir) -> Result<Target> {
    let env_token = env_nonempty("DCOS_ACS_TOKEN");
    if let Some(url) = env_nonempty("DCOS_URL") {
        let url = normalize_url(&url)?;
        let cluster = dir
            .clusters()
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.url == url);
        let token = env_token.or_else(|| cluster.as_ref().and_then(|c| c.token.clone()));
        return Ok(Target {
            url,
            token,
            cluster,
        });
    }
    let cluster = if let Some(sel) = env_nonempty("DCOS_CLUSTER") {
        Some(dir.find(&sel)?)
    } else {
        let all = dir.clusters()?;
        let attached = all.iter().find(|c| c.attached).cloned();
        match (attached, all.len()) {
            (Some(c), _) => Some(c),
            (None, 1) => all.into_iter().next(),
            (None, 0) => None,
            (None, _) => {
                return Err(CliError::failed_hint(
                    "no cluster is attached",
                    "attach one with `dcos cluster attach <name>` (see `dcos cluster list`)",
                ))
            }
        }
    };
    match cluster {
        Some(c) => Ok(Target {
            url: c.url.clone(),
            token: env_token.or_else(|| c.token.clone()),
            cluster: Some(c),
        }),
        None => match dir.legacy_url() {
            Some(url) => Ok(Target {
                url: normalize_url(&url)?,
                token: env_token,
                cluster: None,
            }),
            None => Err(CliError::failed_hint(
                "no cluster is configured",
                "run `dcos cluster setup <URL>` or set DCOS_URL",
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_normalisation() {
        assert_eq!(normalize_url("10.0.0.1/").unwrap(), "http://10.0.0.1");
        assert_eq!(
            normalize_url("https://x.y:8443").unwrap(),
            "https://x.y:8443"
        );
        assert!(normalize_url("").is_err());
        assert!(normalize_url("ftp://x").is_err());
        assert!(normalize_url("http://").is_err());
    }

    #[test]
    fn save_list_attach_find() {
        let d = tempfile::tempdir().unwrap();
        let dir = ConfigDir {
            root: d.path().to_path_buf(),
        };
        let mut a = ClusterConfig {
            id: "aaaaaaaa-0000-4000-8000-000000000001".into(),
            name: "one".into(),
            url: "http://h1".into(),
            token: Some("t".into()),
            attached: false,
        };
        dir.save(&a).unwrap();
        let b = ClusterConfig {
            id: "bbbbbbbb-0000-4000-8000-000000000002".into(),
            name: "two".into(),
            url: "http://h2".into(),
            token: None,
            attached: false,
        };
        dir.save(&b).unwrap();
        dir.attach(&b.id).unwrap();
        let all = dir.clusters().unwrap();
        assert_eq!(all.len(), 2);
        assert!(all[1].attached && !all[0].attached);
        assert_eq!(dir.find("one").unwrap().token.as_deref(), Some("t"));
        assert_eq!(dir.find("bbbb").unwrap().name, "two");
        assert!(dir.find("zzz").is_err());
        a.token = None;
        dir.save(&a).unwrap();
        assert_eq!(dir.find("one").unwrap().token, None);
    }
}
