//! `dcos cluster …` and `dcos auth …`.

use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde_json::{json, Value};

use crate::client::Api;
use crate::config::{self, ClusterConfig, ConfigDir};
use crate::error::{CliError, Result};
use crate::output::{print_json, print_table};
use crate::{AuthCmd, ClusterCmd, LoginArgs};

pub fn cluster(cmd: ClusterCmd) -> Result<()> {
    let dir = ConfigDir::from_env()?;
    match cmd {
        ClusterCmd::Setup { url, name, login } => setup(&dir, &url, name, &login),
        ClusterCmd::List { json, attached } => list(&dir, json, attached),
        ClusterCmd::Attach { name } => {
            let c = dir.find(&name)?;
            dir.attach(&c.id)?;
            eprintln!("Attached to cluster {} ({}) at {}", c.name, c.id, c.url);
            Ok(())
        }
        ClusterCmd::Remove { name } => {
            let c = dir.find(&name)?;
            dir.remove(&c.id)?;
            eprintln!("Removed cluster {} ({})", c.name, c.id);
            Ok(())
        }
    }
}

fn setup(dir: &ConfigDir, url: &str, name: Option<String>, login: &LoginArgs) -> Result<()> {
    if std::env::var("DCOS_URL").is_ok_and(|v| !v.is_empty()) {
        eprintln!("Note: DCOS_URL is set; `cluster setup` uses the URL given on the command line.");
    }
    let url = config::normalize_url(url)?;
    let anon = Api::new(&url, None)?;
    let token = obtain_token(&anon, login)?;
    let api = Api::new(&url, token.clone())?;
    let meta = api.get_json("/metadata").map_err(|e| match e {
        CliError::Failed { message, .. } => CliError::Unreachable {
            message: format!(
                "{url} does not look like a DC/OS cluster: GET /metadata failed: {message}"
            ),
            hint: Some(
                "pass the URL of the cluster's Admin Router (the master's port 80 by default)"
                    .into(),
            ),
        },
        other => other,
    })?;
    let id = meta
        .get("CLUSTER_ID")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && !s.contains('/') && !s.contains(".."))
        .ok_or_else(|| CliError::Unreachable {
            message: format!("{url}/metadata has no valid CLUSTER_ID"),
            hint: Some("is this the Admin Router of a DC/OS cluster?".into()),
        })?
        .to_string();
    let cluster_name = name.unwrap_or_else(|| {
        api.get_json("/mesos/state-summary")
            .ok()
            .and_then(|s| s.get("cluster").and_then(Value::as_str).map(str::to_string))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| id.clone())
    });
    let c = ClusterConfig {
        id: id.clone(),
        name: cluster_name.clone(),
        url: url.clone(),
        token,
        attached: true,
    };
    dir.save(&c)?;
    dir.attach(&id)?;
    eprintln!("Cluster {cluster_name} ({id}) at {url} is set up and attached.");
    Ok(())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Logs in if the cluster needs it: `Ok(None)` when auth is disabled on the cluster.
pub fn obtain_token(api: &Api, login: &LoginArgs) -> Result<Option<String>> {
    if login.username.is_some() || login.private_key.is_some() {
        return login_request(api, login).map(Some);
    }
    // The DC/OS CLI's probe: 200 = no login needed, 401 = log in.
    let resp = api.send(api.request(Method::HEAD, "/pkgpanda/active.buildinfo.full.json"))?;
    match resp.status().as_u16() {
        200..=299 => {
            eprintln!("Authentication is disabled on this cluster: no login needed.");
            Ok(None)
        }
        401 => {
            if !std::io::stdin().is_terminal() {
                return Err(CliError::Auth {
                    message: "this cluster requires a login and no terminal is attached to prompt for it".into(),
                    hint: Some("pass --username and --password (or --username and --private-key)".into()),
                });
            }
            eprint!("Username: ");
            let _ = std::io::stderr().flush();
            let mut user = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut user)
                .map_err(|e| CliError::failed(format!("cannot read the username: {e}")))?;
            let password = rpassword::prompt_password("Password: ")
                .map_err(|e| CliError::failed(format!("cannot read the password: {e}")))?;
            let args = LoginArgs {
                username: Some(user.trim().to_string()),
                password: Some(password),
                private_key: None,
            };
            login_request(api, &args).map(Some)
        }
        other => Err(CliError::Unreachable {
            message: format!(
                "{} does not look like a DC/OS cluster: HEAD /pkgpanda/active.buildinfo.full.json returned {other}",
                api.base
            ),
            hint: Some("pass the URL of the cluster's Admin Router".into()),
        }),
    }
}

/// `POST /acs/api/v1/auth/login` with a password or a service-account login token.
pub fn login_request(api: &Api, login: &LoginArgs) -> Result<String> {
    let uid = login.username.clone().ok_or_else(|| {
        CliError::usage("--username is required to log in", "pass --username NAME")
    })?;
    let body = if let Some(key_path) = &login.private_key {
        let pem = std::fs::read(key_path).map_err(|e| {
            CliError::usage(
                format!("cannot read the private key {}: {e}", key_path.display()),
                "pass the PEM file of the service account's private key",
            )
        })?;
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).map_err(|e| {
            CliError::usage(
                format!(
                    "{} is not an RSA private key in PEM format: {e}",
                    key_path.display()
                ),
                "create one with `openssl genpkey -algorithm RSA -out key.pem`",
            )
        })?;
        let login_token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &json!({"uid": uid, "exp": now_secs() + 300}),
            &key,
        )
        .map_err(|e| CliError::failed(format!("cannot sign the login token: {e}")))?;
        json!({"uid": uid, "token": login_token})
    } else {
        let password = match &login.password {
            Some(p) => p.clone(),
            None if std::io::stdin().is_terminal() => rpassword::prompt_password("Password: ")
                .map_err(|e| CliError::failed(format!("cannot read the password: {e}")))?,
            None => {
                return Err(CliError::usage(
                    "--password is required (no terminal to prompt on)",
                    "pass --password or set DCOS_PASSWORD",
                ))
            }
        };
        json!({"uid": uid, "password": password})
    };
    // No token on the login request itself.
    let anon = Api::new(&api.base, None)?;
    let resp = anon.send(
        anon.request(Method::POST, "/acs/api/v1/auth/login")
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string()),
    )?;
    let status = resp.status().as_u16();
    if status == 401 || status == 403 {
        let detail: Value = resp.json().unwrap_or(Value::Null);
        let why = detail
            .get("description")
            .or_else(|| detail.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("invalid credentials");
        return Err(CliError::Auth {
            message: format!("Authentication failed: {why}"),
            hint: Some("check the user name and password (or the service account's key)".into()),
        });
    }
    if !(200..300).contains(&status) {
        return Err(anon.error_from(resp));
    }
    let v: Value = resp
        .json()
        .map_err(|e| CliError::failed(format!("the login response is not JSON: {e}")))?;
    v.get("token")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| CliError::failed("the login response has no token"))
}

fn list(dir: &ConfigDir, json_out: bool, only_attached: bool) -> Result<()> {
    let clusters = dir.clusters()?;
    let mut rows = Vec::new();
    let mut items = Vec::new();
    for c in clusters.iter().filter(|c| !only_attached || c.attached) {
        let version = cluster_version(&c.url);
        let status = if version.is_some() {
            "AVAILABLE"
        } else {
            "UNAVAILABLE"
        };
        let version = version.unwrap_or_else(|| "N/A".into());
        items.push(
            json!({"name": c.name, "cluster_id": c.id, "url": c.url, "attached": c.attached,
                          "status": status, "version": version}),
        );
        rows.push(vec![
            if c.attached {
                format!("{}*", c.name)
            } else {
                c.name.clone()
            },
            c.id.clone(),
            status.to_string(),
            version,
            c.url.clone(),
        ]);
    }
    if json_out {
        print_json(&Value::Array(items));
    } else if rows.is_empty() {
        eprintln!("No clusters are configured. Run `dcos cluster setup <URL>`.");
    } else {
        print_table(&["NAME", "ID", "STATUS", "VERSION", "URL"], &rows);
    }
    Ok(())
}

fn cluster_version(url: &str) -> Option<String> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(3))
        .connect_timeout(Duration::from_secs(2))
        .build()
        .ok()?;
    let v: Value = client
        .get(format!("{url}/dcos-metadata/dcos-version.json"))
        .send()
        .ok()
        .filter(|r| r.status().is_success())?
        .json()
        .ok()?;
    v.get("version").and_then(Value::as_str).map(str::to_string)
}

pub fn auth(cmd: AuthCmd) -> Result<()> {
    let dir = ConfigDir::from_env()?;
    let target = config::current(&dir)?;
    match cmd {
        AuthCmd::Login { login } => {
            let api = Api::new(&target.url, None)?;
            let token = obtain_token(&api, &login)?;
            match target.cluster {
                Some(mut c) => {
                    c.token = token.clone();
                    dir.save(&c)?;
                    if token.is_some() {
                        eprintln!("Login successful!");
                    }
                }
                None => {
                    if let Some(t) = token {
                        eprintln!("Login successful! No cluster is configured for {}; use the token with:", target.url);
                        println!("export DCOS_ACS_TOKEN={t}");
                    }
                }
            }
            Ok(())
        }
        AuthCmd::Logout => {
            if let Some(mut c) = target.cluster {
                c.token = None;
                dir.save(&c)?;
            }
            eprintln!("Logged out.");
            Ok(())
        }
    }
}
