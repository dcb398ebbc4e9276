//! `dcos package …` (Cosmos, through `/package/*` with the exact vendor media types).

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Map, Value};

use super::{confirm, Ctx};
use crate::client::{app_path, Api};
use crate::error::{CliError, Result};
use crate::output::{cell, print_json, print_table, truncate};
use crate::{read_json_file, InstallArgs, PackageCmd, RepoCmd};

pub fn run(ctx: &Ctx, cmd: PackageCmd) -> Result<()> {
    let api = &ctx.api;
    match cmd {
        PackageCmd::Search { query, json } => search(api, query.as_deref(), json),
        PackageCmd::Describe {
            name,
            package_version,
            package_versions,
            config,
            render: do_render,
            options,
            app_id,
        } => {
            if package_versions {
                let v = api.cosmos(
                    "list-versions",
                    "list-versions",
                    "v1",
                    &json!({"packageName": name, "includePackageVersions": true}),
                )?;
                print_json(v.get("results").unwrap_or(&v));
                return Ok(());
            }
            if do_render {
                return render(
                    api,
                    &name,
                    package_version.as_deref(),
                    options.as_deref(),
                    app_id.as_deref(),
                );
            }
            let pkg = describe(api, &name, package_version.as_deref())?;
            if config {
                print_json(pkg.get("config").unwrap_or(&json!({})));
            } else {
                print_json(&pkg);
            }
            Ok(())
        }
        PackageCmd::Install(args) => install(ctx, &args),
        PackageCmd::Uninstall {
            name,
            app_id,
            all,
            yes,
            app: _,
        } => uninstall(api, &name, app_id.as_deref(), all, yes),
        PackageCmd::List { name, app_id, json } => {
            list(api, name.as_deref(), app_id.as_deref(), json)
        }
        PackageCmd::Render {
            name,
            package_version,
            options,
            app_id,
        } => render(
            api,
            &name,
            package_version.as_deref(),
            options.as_deref(),
            app_id.as_deref(),
        ),
        PackageCmd::Repo(r) => repo(api, r),
    }
}

fn search(api: &Api, query: Option<&str>, json_out: bool) -> Result<()> {
    let v = api.cosmos(
        "search",
        "search",
        "v1",
        &json!({"query": query.unwrap_or("")}),
    )?;
    if json_out {
        print_json(&v);
        return Ok(());
    }
    let packages = v
        .get("packages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if packages.is_empty() {
        return Err(CliError::failed_hint(
            "No packages found.",
            "list the repositories with `dcos package repo list`; add one with `dcos package repo add NAME URL`",
        ));
    }
    let rows: Vec<Vec<String>> = packages
        .iter()
        .map(|p| {
            vec![
                cell(p.get("name")),
                cell(p.get("currentVersion")),
                cell(Some(p.get("selected").unwrap_or(&json!(false)))),
                cell(Some(p.get("framework").unwrap_or(&json!(false)))),
                truncate(&cell(p.get("description")), 70),
            ]
        })
        .collect();
    print_table(
        &["NAME", "VERSION", "SELECTED", "FRAMEWORK", "DESCRIPTION"],
        &rows,
    );
    Ok(())
}

/// The package definition (describe v3 `.package`).
pub fn describe(api: &Api, name: &str, version: Option<&str>) -> Result<Value> {
    let mut body = json!({"packageName": name});
    if let Some(v) = version {
        body["packageVersion"] = json!(v);
    }
    let v = api.cosmos("describe", "describe", "v3", &body)?;
    Ok(v.get("package").cloned().unwrap_or(v))
}

fn options_from(path: Option<&std::path::Path>) -> Result<Option<Value>> {
    match path {
        None => Ok(None),
        Some(p) => {
            let v = read_json_file(p)?;
            if !v.is_object() {
                return Err(CliError::usage(
                    format!("{} must contain a JSON object of options", p.display()),
                    "see the package's options with `dcos package describe NAME --config`",
                ));
            }
            Ok(Some(v))
        }
    }
}

fn render(
    api: &Api,
    name: &str,
    version: Option<&str>,
    options: Option<&std::path::Path>,
    app_id: Option<&str>,
) -> Result<()> {
    let mut body = json!({"packageName": name});
    if let Some(v) = version {
        body["packageVersion"] = json!(v);
    }
    if let Some(o) = options_from(options)? {
        body["options"] = o;
    }
    if let Some(a) = app_id {
        body["appId"] = json!(a);
    }
    let v = api.cosmos("render", "render", "v1", &body)?;
    print_json(v.get("marathonJson").unwrap_or(&v));
    Ok(())
}

fn install(ctx: &Ctx, args: &InstallArgs) -> Result<()> {
    let api = &ctx.api;
    let pkg = describe(api, &args.name, args.package_version.as_deref())?;
    let version = args.package_version.clone().or_else(|| {
        pkg.get("version")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let options = options_from(args.options.as_deref())?;
    if let Some(notes) = pkg.get("preInstallNotes").and_then(Value::as_str) {
        if !args.json {
            eprintln!("{notes}");
        }
    }
    if !args.yes && !confirm("Continue installing?", "installing a package")? {
        return Err(CliError::failed("installation cancelled"));
    }
    let mut body =
        json!({"packageName": args.name, "options": options.unwrap_or_else(|| json!({}))});
    if let Some(v) = &version {
        body["packageVersion"] = json!(v);
    }
    if let Some(a) = &args.app_id {
        body["appId"] = json!(a);
    }
    let resp = match api.cosmos("install", "install", "v2", &body) {
        Err(CliError::Failed {
            message,
            hint,
            error_type,
        }) if error_type.as_deref() == Some("PackageAlreadyInstalled") => {
            let app = args
                .app_id
                .clone()
                .unwrap_or_else(|| format!("/{}", args.name));
            let hint = match stopping_deployment(api, &app) {
                Some(dep) => Some(format!(
                    "{app} is still being removed (deployment {dep}); install again once \
                     `dcos marathon deployment list` no longer shows it"
                )),
                None => hint,
            };
            return Err(CliError::Failed {
                message,
                hint,
                error_type,
            });
        }
        r => r?,
    };
    let app_id = resp
        .get("appId")
        .and_then(Value::as_str)
        .map(str::to_string);
    let shown_version = resp
        .get("packageVersion")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or(version)
        .unwrap_or_default();
    if !args.json {
        match &app_id {
            Some(id) => eprintln!(
                "Installing Marathon app for package [{}] version [{shown_version}] as {id}",
                args.name
            ),
            None => eprintln!(
                "Installed package [{}] version [{shown_version}] (it runs no app)",
                args.name
            ),
        }
        if let Some(notes) = resp
            .get("postInstallNotes")
            .or_else(|| pkg.get("postInstallNotes"))
            .and_then(Value::as_str)
        {
            eprintln!("{notes}");
        }
    }
    let mut out = resp.clone();
    if args.wait {
        if let Some(id) = &app_id {
            let app = wait_for_app(api, id, Duration::from_secs(args.timeout), !args.json)?;
            let endpoints = endpoints(&ctx.target.url, &app);
            if args.json {
                out["endpoints"] = json!(endpoints);
            } else {
                let instances = app.get("instances").and_then(Value::as_u64).unwrap_or(1);
                let healthy = app.get("tasksHealthy").and_then(Value::as_u64).unwrap_or(0);
                let running = app.get("tasksRunning").and_then(Value::as_u64).unwrap_or(0);
                let has_hc = has_health_checks(&app);
                if has_hc {
                    println!("{id} is healthy: {healthy}/{instances} tasks healthy");
                } else {
                    println!("{id} is running: {running}/{instances} tasks running");
                }
                if !endpoints.is_empty() {
                    println!("Reachable at:");
                    for e in &endpoints {
                        println!("  {e}");
                    }
                }
            }
        }
    }
    if args.json {
        print_json(&out);
    }
    Ok(())
}

/// The id of a running deployment that stops `app` (an uninstall still killing its tasks).
fn stopping_deployment(api: &crate::client::Api, app: &str) -> Option<String> {
    let deps = api.get_json("/service/marathon/v2/deployments").ok()?;
    deps.as_array()?.iter().find_map(|d| {
        let stops = d
            .get("currentActions")
            .and_then(Value::as_array)?
            .iter()
            .any(|a| {
                a.get("action").and_then(Value::as_str) == Some("StopApplication")
                    && a.get("app").and_then(Value::as_str) == Some(app)
            });
        stops
            .then(|| d.get("id").and_then(Value::as_str).map(str::to_string))
            .flatten()
    })
}

fn has_health_checks(app: &Value) -> bool {
    app.get("healthChecks")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
}

/// Where an app's tasks can be reached: each task's `host:port`, plus the Admin Router's
/// `/service/<name>/` when the app declares `DCOS_SERVICE_NAME`.
pub fn endpoints(base: &str, app: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for t in app
        .get("tasks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let host = t.get("host").and_then(Value::as_str).unwrap_or("");
        for p in t
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(p) = p.as_u64() {
                if !host.is_empty() {
                    out.push(format!("http://{host}:{p}"));
                }
            }
        }
    }
    if let Some(name) = app
        .pointer("/labels/DCOS_SERVICE_NAME")
        .and_then(Value::as_str)
    {
        out.push(format!("{base}/service/{}/", name.trim_matches('/')));
    }
    out
}

/// Polls Marathon until the app's deployment is done and its tasks are healthy (or running
/// without health checks). Fails on a task failure of the current version or on timeout.
pub fn wait_for_app(api: &Api, app_id: &str, timeout: Duration, progress: bool) -> Result<Value> {
    let start = Instant::now();
    let bar = if progress {
        let b = indicatif::ProgressBar::new_spinner();
        b.enable_steady_tick(Duration::from_millis(120));
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let path = format!(
        "/service/marathon/v2/apps{}?embed=app.tasks",
        app_path(app_id)
    );
    let result = loop {
        let resp = api.send(api.request(Method::GET, &path))?;
        let status = resp.status().as_u16();
        let app = if status == 404 {
            None
        } else if resp.status().is_success() {
            let v: Value = resp
                .json()
                .map_err(|e| CliError::failed(format!("Marathon's answer is not JSON: {e}")))?;
            v.get("app").cloned()
        } else {
            break Err(api.error_from(resp));
        };
        if let Some(app) = app {
            let instances = app.get("instances").and_then(Value::as_u64).unwrap_or(1);
            let running = app.get("tasksRunning").and_then(Value::as_u64).unwrap_or(0);
            let healthy = app.get("tasksHealthy").and_then(Value::as_u64).unwrap_or(0);
            let deploying = app
                .get("deployments")
                .and_then(Value::as_array)
                .is_some_and(|d| !d.is_empty());
            let hc = has_health_checks(&app);
            let ready = !deploying && running >= instances && (!hc || healthy >= instances);
            bar.set_message(format!(
                "{app_id}: {running}/{instances} running{}{}",
                if hc {
                    format!(", {healthy} healthy")
                } else {
                    String::new()
                },
                if deploying {
                    ", deployment in progress"
                } else {
                    ""
                }
            ));
            if ready {
                break Ok(app);
            }
            if let Some(f) = app.get("lastTaskFailure") {
                let same_version = match (f.get("version"), app.get("version")) {
                    (Some(a), Some(b)) => a == b,
                    _ => true,
                };
                if same_version && running == 0 {
                    let msg = f
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("no reason given");
                    let state = f
                        .get("state")
                        .and_then(Value::as_str)
                        .unwrap_or("TASK_FAILED");
                    let task = f.get("taskId").and_then(Value::as_str).unwrap_or("");
                    break Err(CliError::failed_hint(
                        format!("a task of {app_id} failed ({state}): {msg}"),
                        format!(
                            "see its output with `dcos task log --completed {task} stderr`; remove the app with `dcos package uninstall` or `dcos marathon app remove {app_id}`"
                        ),
                    ));
                }
            }
        } else {
            bar.set_message(format!("{app_id}: waiting for the app to appear"));
        }
        if start.elapsed() > timeout {
            break Err(CliError::failed_hint(
                format!(
                    "{app_id} did not become ready within {} s",
                    timeout.as_secs()
                ),
                format!(
                    "check `dcos marathon app show {app_id}` and `dcos marathon deployment list`"
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    bar.finish_and_clear();
    result
}

fn uninstall(api: &Api, name: &str, app_id: Option<&str>, all: bool, yes: bool) -> Result<()> {
    if !yes {
        let what = match (app_id, all) {
            (Some(a), _) => format!("Uninstall {a} (package {name})?"),
            (None, true) => format!("Uninstall every instance of {name}?"),
            (None, false) => format!("Uninstall {name}?"),
        };
        if !confirm(&what, "uninstalling a package")? {
            return Err(CliError::failed("uninstall cancelled"));
        }
    }
    let mut body = json!({"packageName": name});
    if let Some(a) = app_id {
        body["appId"] = json!(a);
    }
    if all {
        body["all"] = json!(true);
    }
    let v = api.cosmos("uninstall", "uninstall", "v1", &body)?;
    for r in v
        .get("results")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        eprintln!(
            "Uninstalled package [{}] version [{}] (app {})",
            cell(r.get("packageName")),
            cell(r.get("packageVersion")),
            cell(r.get("appId"))
        );
        if let Some(n) = r.get("postUninstallNotes").and_then(Value::as_str) {
            eprintln!("{n}");
        }
    }
    Ok(())
}

fn list(api: &Api, name: Option<&str>, app_id: Option<&str>, json_out: bool) -> Result<()> {
    let mut body = Map::new();
    if let Some(n) = name {
        body.insert("packageName".into(), json!(n));
    }
    if let Some(a) = app_id {
        body.insert("appId".into(), json!(a));
    }
    let v = api.cosmos("list", "list", "v1", &Value::Object(body))?;
    let packages = v
        .get("packages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if json_out {
        print_json(&Value::Array(packages));
        return Ok(());
    }
    if packages.is_empty() {
        eprintln!("There are currently no installed packages.");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = packages
        .iter()
        .map(|p| {
            let d = p.pointer("/packageInformation/packageDefinition");
            vec![
                cell(d.and_then(|d| d.get("name"))),
                cell(d.and_then(|d| d.get("version"))),
                cell(p.get("appId")),
                truncate(&cell(d.and_then(|d| d.get("description"))), 60),
            ]
        })
        .collect();
    print_table(&["NAME", "VERSION", "APP", "DESCRIPTION"], &rows);
    Ok(())
}

fn repo(api: &Api, cmd: RepoCmd) -> Result<()> {
    match cmd {
        RepoCmd::Add { name, url, index } => {
            let mut body = json!({"name": name, "uri": url});
            if let Some(i) = index {
                body["index"] = json!(i);
            }
            api.cosmos("repository/add", "repository.add", "v1", &body)?;
            eprintln!("Added repository {name} ({url})");
            Ok(())
        }
        RepoCmd::List { json: json_out } => {
            let v = api.cosmos("repository/list", "repository.list", "v1", &json!({}))?;
            let repos = v
                .get("repositories")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if json_out {
                print_json(&v);
            } else if repos.is_empty() {
                eprintln!("There are no package repositories configured. Add one with `dcos package repo add NAME URL`.");
            } else {
                let rows: Vec<Vec<String>> = repos
                    .iter()
                    .enumerate()
                    .map(|(i, r)| vec![i.to_string(), cell(r.get("name")), cell(r.get("uri"))])
                    .collect();
                print_table(&["INDEX", "NAME", "URI"], &rows);
            }
            Ok(())
        }
        RepoCmd::Remove { names } => {
            for name in names {
                api.cosmos(
                    "repository/delete",
                    "repository.delete",
                    "v1",
                    &json!({"name": name}),
                )?;
                eprintln!("Removed repository {name}");
            }
            Ok(())
        }
    }
}
