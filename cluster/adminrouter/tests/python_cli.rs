//! The published DC/OS CLI 0.6.1 (Python) against the Admin Router with auth on: cluster setup
//! with credentials, cluster list, --version, and a refused token. Skipped with a message when
//! the CLI is not installed (`../shared/tools/install-dcoscli.sh`; found through `DCOS_PY_CLI`
//! or `/tmp/dcoscli-venv/bin/dcos`).

mod common;

use std::process::Command;
use std::sync::Arc;

use common::*;
use dcos_adminrouter::auth::{AuthConfig, Credential, PasswordCost, Superuser};
use dcos_adminrouter::store::MemoryAuthStore;
use dcos_adminrouter::AdminRouterConfig;

fn python_cli() -> Option<String> {
    let candidate =
        std::env::var("DCOS_PY_CLI").unwrap_or_else(|_| "/tmp/dcoscli-venv/bin/dcos".into());
    std::path::Path::new(&candidate)
        .exists()
        .then_some(candidate)
}

fn run(
    cli: &str,
    dir: &std::path::Path,
    args: &[&str],
    token: Option<&str>,
) -> (i32, String, String) {
    let mut c = Command::new(cli);
    c.args(args)
        .env("DCOS_DIR", dir)
        .env("PAGER", "cat")
        .env_remove("DCOS_URL")
        .env_remove("DCOS_ACS_TOKEN");
    if let Some(t) = token {
        c.env("DCOS_ACS_TOKEN", t);
    }
    let out = c.output().expect("run the DC/OS CLI");
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(!se.contains("Traceback"), "{args:?}: {se}");
    (out.status.code().unwrap_or(-1), so, se)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_dcos_cli_logs_in_and_reads_metadata() {
    let Some(cli) = python_cli() else {
        eprintln!("SKIPPED: the DC/OS CLI 0.6.1 is not installed (run ../shared/tools/install-dcoscli.sh or set DCOS_PY_CLI)");
        return;
    };
    // Mesos down: `cluster setup` ignores the failed /mesos/state-summary and names the cluster
    // by its id. (A 200 without a "cluster" string would crash the Python CLI.)
    let mesos_url = dead_url().await;
    let mut cfg = AdminRouterConfig::new("3a1f5c2e-9b7d-4e6f-8a1b-2c3d4e5f6a7b");
    cfg.mesos = Some(mesos_url);
    let mut auth = AuthConfig::enabled(Arc::new(MemoryAuthStore::new()));
    auth.password_cost = PasswordCost::Fast;
    auth.superuser = Some(Superuser {
        uid: "admin".into(),
        credential: Credential::Plain("s3cret".into()),
    });
    cfg.auth = auth;
    let (ar, _) = start_router(cfg).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let (code, _, se) = run(
            &cli,
            &d,
            &[
                "cluster",
                "setup",
                &ar,
                "--username",
                "admin",
                "--password",
                "wrong",
            ],
            None,
        );
        assert_ne!(code, 0, "{se}");
        let (code, _, se) = run(
            &cli,
            &d,
            &[
                "cluster",
                "setup",
                &ar,
                "--username",
                "admin",
                "--password",
                "s3cret",
            ],
            None,
        );
        assert_eq!(code, 0, "{se}");
        assert!(d
            .join("clusters/3a1f5c2e-9b7d-4e6f-8a1b-2c3d4e5f6a7b/dcos.toml")
            .exists());
        let (code, so, se) = run(&cli, &d, &["cluster", "list"], None);
        assert_eq!(code, 0, "{se}");
        assert!(so.contains("AVAILABLE"), "{so}");
        let (_, so, _) = run(&cli, &d, &["--version"], None);
        assert!(so.contains("dcos.version=2.2.0"), "{so}");
        let (code, _, se) = run(&cli, &d, &["package", "list"], Some("not-a-valid-token"));
        assert_eq!(code, 1);
        assert!(se.contains("dcos_acs_token is invalid"), "{se}");
    })
    .await
    .unwrap();
}
