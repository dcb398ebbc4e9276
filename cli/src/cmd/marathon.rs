//! `dcos marathon …` (Marathon API at `/service/marathon/v2`).

use std::io::Read;

use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde_json::{json, Map, Value};

use super::Ctx;
use crate::client::{app_path, query_value, Api};
use crate::error::{CliError, Result};
use crate::output::{cell, print_json, print_table, truncate};
use crate::{read_json_file, AppCmd, DeploymentCmd, MarathonCmd, MarathonTaskCmd};

const BASE: &str = "/service/marathon/v2";

fn norm_id(id: &str) -> String {
    format!("/{}", id.trim_matches('/'))
}

fn deployment_id(v: &Value) -> String {
    v.get("deploymentId")
        .and_then(Value::as_str)
        .or_else(|| v.pointer("/deployments/0/id").and_then(Value::as_str))
        .unwrap_or("N/A")
        .to_string()
}

pub fn run(ctx: &Ctx, cmd: MarathonCmd) -> Result<()> {
    let api = &ctx.api;
    match cmd {
        MarathonCmd::About => {
            print_json(&api.get_json(&format!("{BASE}/info"))?);
            Ok(())
        }
        MarathonCmd::App(a) => app(api, a),
        MarathonCmd::Task(MarathonTaskCmd::List { app_id, json }) => {
            task_list(api, app_id.as_deref(), json)
        }
        MarathonCmd::Deployment(DeploymentCmd::List { app_id, json }) => {
            deployment_list(api, app_id.as_deref(), json)
        }
        MarathonCmd::Deployment(DeploymentCmd::Rollback { deployment_id }) => {
            let v = api.json(api.request(
                Method::DELETE,
                &format!("{BASE}/deployments/{}", query_value(&deployment_id)),
            ))?;
            print_json(&v);
            Ok(())
        }
    }
}

fn app(api: &Api, cmd: AppCmd) -> Result<()> {
    match cmd {
        AppCmd::List { json } => app_list(api, json),
        AppCmd::Add { file } => {
            let app = match file {
                Some(f) => read_json_file(&f)?,
                None => read_stdin_json()?,
            };
            let id = app.get("id").and_then(Value::as_str).ok_or_else(|| {
                CliError::usage(
                    "the app definition has no \"id\"",
                    "add an \"id\": \"/my-app\" field",
                )
            })?;
            let id = norm_id(id);
            let existing =
                api.send(api.request(Method::GET, &format!("{BASE}/apps{}", app_path(&id))))?;
            if existing.status().is_success() {
                return Err(CliError::failed_hint(
                    format!("Application '{id}' already exists"),
                    format!(
                        "change it with `dcos marathon app update {id} ...` or remove it first"
                    ),
                ));
            }
            let v = api.send_json(Method::POST, &format!("{BASE}/apps"), &app)?;
            println!("Created deployment {}", deployment_id(&v));
            Ok(())
        }
        AppCmd::Show {
            app_id,
            app_version,
        } => {
            let path = match app_version {
                Some(v) => format!(
                    "{BASE}/apps{}/versions/{}",
                    app_path(&app_id),
                    query_value(&v)
                ),
                None => format!("{BASE}/apps{}", app_path(&app_id)),
            };
            let v = api.get_json(&path)?;
            let app = v.get("app").unwrap_or(&v);
            print_json(app);
            // Where it is reachable, for people: on stderr, so stdout stays the app JSON.
            let e = super::endpoints::endpoints(app, "");
            if let Some(a) = e.pointer("/dns/a").and_then(Value::as_str) {
                eprintln!("DNS: {a}");
            }
            for v in e["vips"].as_array().into_iter().flatten() {
                if let Some(ep) = v.get("endpoint").and_then(Value::as_str) {
                    eprintln!("VIP: {ep}");
                }
            }
            Ok(())
        }
        AppCmd::Update {
            app_id,
            properties,
            force,
        } => {
            let body = if properties.is_empty() {
                read_stdin_json()?
            } else {
                let mut m = Map::new();
                for p in &properties {
                    let (k, v) = p.split_once('=').ok_or_else(|| {
                        CliError::usage(
                            format!("'{p}' is not a key=value property"),
                            "e.g. `dcos marathon app update /app instances=2 'env={\"A\":\"1\"}'`",
                        )
                    })?;
                    let value =
                        serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()));
                    m.insert(k.to_string(), value);
                }
                Value::Object(m)
            };
            let v = api.send_json(
                Method::PUT,
                &format!("{BASE}/apps{}?force={force}", app_path(&app_id)),
                &body,
            )?;
            println!("Created deployment {}", deployment_id(&v));
            Ok(())
        }
        AppCmd::Remove { app_id, force } => {
            let v = api.json(api.request(
                Method::DELETE,
                &format!("{BASE}/apps{}?force={force}", app_path(&app_id)),
            ))?;
            eprintln!(
                "Removing {} (deployment {})",
                norm_id(&app_id),
                deployment_id(&v)
            );
            Ok(())
        }
        AppCmd::Restart { app_id, force } => {
            let v = api.json(
                api.request(
                    Method::POST,
                    &format!("{BASE}/apps{}/restart?force={force}", app_path(&app_id)),
                )
                .header(CONTENT_TYPE, "application/json")
                .body("{}"),
            )?;
            println!("Created deployment {}", deployment_id(&v));
            Ok(())
        }
        AppCmd::Scale {
            app_id,
            instances,
            force,
        } => {
            let v = api.send_json(
                Method::PUT,
                &format!("{BASE}/apps{}?force={force}", app_path(&app_id)),
                &json!({"instances": instances}),
            )?;
            println!("Created deployment {}", deployment_id(&v));
            Ok(())
        }
    }
}

fn read_stdin_json() -> Result<Value> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| CliError::failed(format!("cannot read stdin: {e}")))?;
    serde_json::from_str(&text).map_err(|e| {
        CliError::usage(
            format!("stdin is not valid JSON: {e}"),
            "pipe a JSON document in, or pass a file",
        )
    })
}

/// Rows of `dcos marathon app list`.
pub fn app_rows(apps: &[Value]) -> Vec<Vec<String>> {
    apps.iter()
        .map(|a| {
            let instances = a.get("instances").and_then(Value::as_u64).unwrap_or(0);
            let running = a.get("tasksRunning").and_then(Value::as_u64).unwrap_or(0);
            let health = if a
                .get("healthChecks")
                .and_then(Value::as_array)
                .is_some_and(|h| !h.is_empty())
            {
                format!(
                    "{}/{}",
                    a.get("tasksHealthy").and_then(Value::as_u64).unwrap_or(0),
                    instances
                )
            } else {
                "N/A".into()
            };
            let deploying = a
                .get("deployments")
                .and_then(Value::as_array)
                .is_some_and(|d| !d.is_empty());
            let container = a
                .pointer("/container/type")
                .and_then(Value::as_str)
                .unwrap_or("mesos")
                .to_string();
            let cmd = match a.get("cmd") {
                Some(Value::String(c)) => c.clone(),
                _ => a
                    .get("args")
                    .and_then(Value::as_array)
                    .map(|v| {
                        v.iter()
                            .map(|x| cell(Some(x)))
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_else(|| "N/A".into()),
            };
            vec![
                cell(a.get("id")),
                cell(a.get("mem")),
                cell(a.get("cpus")),
                format!("{running}/{instances}"),
                health,
                if deploying { "yes".into() } else { "-".into() },
                container.to_ascii_uppercase(),
                truncate(&cmd, 40),
            ]
        })
        .collect()
}

pub const APP_HEADERS: [&str; 8] = [
    "ID",
    "MEM",
    "CPUS",
    "TASKS",
    "HEALTH",
    "DEPLOYMENT",
    "CONTAINER",
    "CMD",
];

fn app_list(api: &Api, json_out: bool) -> Result<()> {
    let v = api.get_json(&format!("{BASE}/apps"))?;
    let apps = v
        .get("apps")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if json_out {
        print_json(&Value::Array(apps));
    } else if apps.is_empty() {
        eprintln!("There are no apps. Add one with `dcos marathon app add FILE` or `dcos package install`.");
    } else {
        print_table(&APP_HEADERS, &app_rows(&apps));
    }
    Ok(())
}

fn task_list(api: &Api, app_id: Option<&str>, json_out: bool) -> Result<()> {
    let v = api.get_json(&format!("{BASE}/tasks"))?;
    let want = app_id.map(norm_id);
    let tasks: Vec<Value> = v
        .get("tasks")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|t| {
            want.as_ref()
                .is_none_or(|w| t.get("appId").and_then(Value::as_str) == Some(w))
        })
        .collect();
    if json_out {
        print_json(&Value::Array(tasks));
        return Ok(());
    }
    if tasks.is_empty() {
        eprintln!("There are no tasks.");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = tasks
        .iter()
        .map(|t| {
            let checks = t.get("healthCheckResults").and_then(Value::as_array);
            let healthy = match checks {
                Some(c) if !c.is_empty() => {
                    if c.iter().all(|r| r.get("alive") == Some(&json!(true))) {
                        "True"
                    } else {
                        "False"
                    }
                }
                _ => "N/A",
            };
            vec![
                cell(t.get("appId")),
                healthy.into(),
                cell(t.get("startedAt")),
                cell(t.get("host")),
                cell(t.get("state")),
                cell(t.get("id")),
            ]
        })
        .collect();
    print_table(&["APP", "HEALTHY", "STARTED", "HOST", "STATE", "ID"], &rows);
    Ok(())
}

fn deployment_list(api: &Api, app_id: Option<&str>, json_out: bool) -> Result<()> {
    let v = api.get_json(&format!("{BASE}/deployments"))?;
    let want = app_id.map(norm_id);
    let deployments: Vec<Value> = v
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|d| {
            want.as_ref().is_none_or(|w| {
                d.get("affectedApps")
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(w)))
            })
        })
        .collect();
    if json_out {
        print_json(&Value::Array(deployments));
        return Ok(());
    }
    if deployments.is_empty() {
        eprintln!("There are no deployments.");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = deployments
        .iter()
        .map(|d| {
            let apps = d
                .get("affectedApps")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|x| cell(Some(x)))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            let actions = d
                .get("currentActions")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|x| cell(x.get("action")))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            vec![
                apps,
                actions,
                format!(
                    "{}/{}",
                    cell(d.get("currentStep")),
                    cell(d.get("totalSteps"))
                ),
                cell(d.get("id")),
            ]
        })
        .collect();
    print_table(&["APP", "ACTION", "PROGRESS", "ID"], &rows);
    Ok(())
}
