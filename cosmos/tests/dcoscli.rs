//! The real DC/OS CLI 0.6.1 (Python) against Cosmos + the Marathon stand-in. Skipped with a
//! message when the CLI is not installed (../shared/tools/install-dcoscli.sh puts it in
//! /tmp/dcoscli-venv; override with DCOS_CLI=/path/to/dcos).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;
use serde_json::{json, Value};

fn cli() -> Option<PathBuf> {
    let p = std::env::var_os("DCOS_CLI")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/dcoscli-venv/bin/dcos"));
    if p.is_file() {
        Some(p)
    } else {
        eprintln!(
            "SKIP: DC/OS CLI not found at {} (run ../shared/tools/install-dcoscli.sh)",
            p.display()
        );
        None
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn dcos(bin: &std::path::Path, dir: &std::path::Path, url: &str, args: &[&str]) -> Run {
    let bin = bin.to_path_buf();
    let dir = dir.to_path_buf();
    let url = url.to_string();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(&bin)
            .args(&args)
            .env("DCOS_DIR", &dir)
            .env("HOME", &dir)
            .env("DCOS_URL", &url)
            .env("PAGER", "cat")
            .env_remove("DCOS_ACS_TOKEN")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run dcos");
        let r = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert!(
            !r.stderr.contains("Traceback"),
            "dcos {args:?} crashed:\n{}",
            r.stderr
        );
        r
    })
    .await
    .expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dcos_cli_package_commands() {
    let Some(bin) = cli() else { return };
    let e = env().await;
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let url = e.cosmos.clone();
    let ok = |r: &Run, what: &str| {
        assert_eq!(r.code, 0, "{what}: stdout {} stderr {}", r.stdout, r.stderr)
    };

    let r = dcos(&bin, d, &url, &["package", "search"]).await;
    ok(&r, "search");
    assert!(
        r.stdout.contains("helloworld") && r.stdout.contains("frameworky"),
        "{}",
        r.stdout
    );
    let r = dcos(&bin, d, &url, &["package", "search", "hello", "--json"]).await;
    ok(&r, "search hello");
    let v: Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v["packages"][0]["name"], "helloworld");

    let r = dcos(&bin, d, &url, &["package", "describe", "helloworld"]).await;
    ok(&r, "describe");
    let v: Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v["package"]["version"], "0.4.2", "{}", r.stdout);
    let r = dcos(
        &bin,
        d,
        &url,
        &["package", "describe", "helloworld", "--package-versions"],
    )
    .await;
    ok(&r, "describe --package-versions");
    assert!(r.stdout.contains("0.1.0"), "{}", r.stdout);
    let r = dcos(&bin, d, &url, &["package", "describe", "nope"]).await;
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("Package [nope] not found"),
        "{}",
        r.stderr
    );

    let r = dcos(
        &bin,
        d,
        &url,
        &["package", "install", "helloworld", "--yes"],
    )
    .await;
    ok(&r, "install");
    let opts = d.join("opts.json");
    std::fs::write(
        &opts,
        json!({"port": 9999, "service": {"name": "hello2"}}).to_string(),
    )
    .expect("write");
    let r = dcos(
        &bin,
        d,
        &url,
        &[
            "package",
            "install",
            "helloworld",
            &format!("--options={}", opts.display()),
            "--yes",
        ],
    )
    .await;
    ok(&r, "install --options");
    {
        let apps = e.cluster.apps.lock().expect("lock");
        assert!(
            apps.contains_key("/helloworld") && apps.contains_key("/hello2"),
            "{:?}",
            apps.keys()
        );
        assert_eq!(
            decode_label(&apps["/hello2"], "DCOS_PACKAGE_OPTIONS"),
            json!({"port": 9999, "service": {"name": "hello2"}})
        );
    }
    let r = dcos(
        &bin,
        d,
        &url,
        &["package", "install", "helloworld", "--yes"],
    )
    .await;
    assert_eq!(r.code, 1, "second install must fail");
    assert!(r.stderr.contains("already installed"), "{}", r.stderr);
    let bad = d.join("bad.json");
    std::fs::write(&bad, json!({"port": "x"}).to_string()).expect("write");
    let r = dcos(
        &bin,
        d,
        &url,
        &[
            "package",
            "install",
            "helloworld",
            &format!("--options={}", bad.display()),
            "--yes",
        ],
    )
    .await;
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("Options JSON failed validation"),
        "{}",
        r.stderr
    );

    let r = dcos(&bin, d, &url, &["package", "list"]).await;
    ok(&r, "list");
    assert!(
        r.stdout.contains("/hello2") && r.stdout.contains("/helloworld"),
        "{}",
        r.stdout
    );
    let r = dcos(&bin, d, &url, &["package", "list", "--json"]).await;
    ok(&r, "list --json");

    let r = dcos(
        &bin,
        d,
        &url,
        &["package", "uninstall", "helloworld", "--yes"],
    )
    .await;
    assert_eq!(r.code, 1, "ambiguous uninstall must fail: {}", r.stdout);
    let r = dcos(
        &bin,
        d,
        &url,
        &[
            "package",
            "uninstall",
            "helloworld",
            "--app-id=/hello2",
            "--yes",
        ],
    )
    .await;
    ok(&r, "uninstall --app-id");
    let r = dcos(
        &bin,
        d,
        &url,
        &["package", "uninstall", "helloworld", "--yes"],
    )
    .await;
    ok(&r, "uninstall");
    assert!(e.cluster.apps.lock().expect("lock").is_empty());

    let r = dcos(&bin, d, &url, &["package", "repo", "list"]).await;
    ok(&r, "repo list");
    assert!(r.stdout.contains("V4TestUniverse"), "{}", r.stdout);
    let (second, _) = repo_server(second_repo_packages()).await;
    let r = dcos(
        &bin,
        d,
        &url,
        &[
            "package",
            "repo",
            "add",
            "second",
            &format!("{second}/repo"),
            "--index=0",
        ],
    )
    .await;
    ok(&r, "repo add --index=0");
    let r = dcos(&bin, d, &url, &["package", "repo", "list", "--json"]).await;
    ok(&r, "repo list --json");
    let v: Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v["repositories"][0]["name"], "second");
    let r = dcos(&bin, d, &url, &["package", "describe", "helloworld"]).await;
    let v: Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(
        v["package"]["version"], "9.9.9",
        "the repository at index 0 now wins"
    );
    let r = dcos(&bin, d, &url, &["package", "repo", "remove", "second"]).await;
    ok(&r, "repo remove");
    let r = dcos(
        &bin,
        d,
        &url,
        &["package", "repo", "add", "bad", &format!("{}/html", e.repo)],
    )
    .await;
    assert_eq!(r.code, 1);
}
