//! The single-node cluster (`dcosd all-in-one`) in process: every role behind one Admin Router,
//! a bundled package installed through Cosmos and reached over HTTP; and the built-in
//! Universe kept equal to the `packages/` tree it is built from.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dcosd::allinone::AllInOneArgs;
use serde_json::{json, Value};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn args(dir: &Path) -> AllInOneArgs {
    AllInOneArgs {
        work_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        auth: false,
        superuser: "admin".into(),
        cluster_name: "test".into(),
        resources: Some("cpus:2;mem:2048;disk:1000;ports:[32100-32199]".into()),
        repositories: vec![],
        no_builtin_repository: false,
        isolation: "none".into(),
        log: "warn".into(),
        listen_dns: None,
        dns_resolvers: vec![],
    }
}

const P: &str = "application/vnd.dcos.package";

async fn cosmos(url: &str, what: &str, resp: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{url}/package/{what}"))
        .header(
            "Content-Type",
            format!("{P}.{what}-request+json;charset=utf-8;version=v1"),
        )
        .header(
            "Accept",
            format!("{P}.{what}-response+json;charset=utf-8;version={resp}"),
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The dcosd binary is what tasks of the bundled packages run (`dcosd example hello`); the
/// test process is not dcosd, so put the built binary first on PATH for the agent.
fn put_dcosd_on_path() {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_dcosd"));
    let dir = bin.parent().unwrap().to_path_buf();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<_> = std::env::split_paths(&path).collect();
    dirs.insert(0, dir);
    std::env::set_var("PATH", std::env::join_paths(dirs).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_a_bundled_package_and_reach_it() {
    put_dcosd_on_path();
    let dir = tempfile::tempdir().unwrap();
    let (config, extras) = args(dir.path()).resolve().unwrap();
    let node = dcosd::node::start(config, extras).await.unwrap();
    let url = node.url().unwrap();

    // The whitelist and metadata the DC/OS CLI needs before anything else.
    let meta: Value = reqwest::get(format!("{url}/metadata"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["CLUSTER_ID"].as_str().unwrap().len(), 36);

    let (status, search) = cosmos(&url, "search", "v1", json!({"query": "hello"})).await;
    assert_eq!(status, 200, "{search}");
    assert_eq!(search["packages"][0]["name"], "hello-service");

    let (status, installed) = cosmos(
        &url,
        "install",
        "v2",
        json!({"packageName": "hello-service", "options": {"hello": {"message": "hi from a test"}}}),
    )
    .await;
    assert_eq!(status, 200, "{installed}");
    assert_eq!(installed["appId"], "/hello-service");

    // Marathon runs it on the agent; the health check passes; it answers on its port.
    let mut app = Value::Null;
    for _ in 0..200 {
        app = reqwest::get(format!("{url}/service/marathon/v2/apps/hello-service"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if app["app"]["tasksHealthy"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app["app"]["tasksHealthy"], 1, "{app}");
    assert_eq!(app["app"]["labels"]["DCOS_PACKAGE_NAME"], "hello-service");
    let task = &app["app"]["tasks"][0];
    let port = task["ports"][0].as_u64().unwrap();
    assert!(
        (32100..=32199).contains(&port),
        "port {port} from the agent's range"
    );
    let body = reqwest::get(format!("http://127.0.0.1:{port}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "hi from a test\n");

    // And through the Admin Router's /service/<name>/ route, as soon as the app is healthy:
    // it resolves from Marathon's state, so there is no window where the app is healthy and
    // the route still 404s. Also by DCOS_SERVICE_NAME and for a missing service.
    let r = reqwest::get(format!("{url}/service/hello-service/"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let proxied = r.text().await.unwrap();
    let missing = reqwest::get(format!("{url}/service/no-such-service/"))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(proxied, "hi from a test\n");

    let (status, gone) = cosmos(
        &url,
        "uninstall",
        "v1",
        json!({"packageName": "hello-service"}),
    )
    .await;
    assert_eq!(status, 200, "{gone}");
    for _ in 0..100 {
        if reqwest::get(format!("http://127.0.0.1:{port}/"))
            .await
            .is_err()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        reqwest::get(format!("http://127.0.0.1:{port}/"))
            .await
            .is_err(),
        "the task is killed on uninstall"
    );
    node.stop().await;
}

#[tokio::test]
async fn auth_on_needs_a_superuser_password() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = args(dir.path());
    a.auth = true;
    std::env::remove_var("DCOS_SUPERUSER_PASSWORD");
    std::env::remove_var("DCOS_SUPERUSER_PASSWORD_HASH");
    let err = a
        .resolve()
        .map(|_| ())
        .expect_err("--auth without a password is refused");
    assert!(err.to_string().contains("DCOS_SUPERUSER_PASSWORD"), "{err}");
}

#[test]
fn builtin_repository_is_built_from_the_packages_tree() {
    let out = tempfile::tempdir().unwrap();
    let tree = universe::source::FsTree::new(&workspace().join("packages/repo")).unwrap();
    universe::build::build_tree(
        &tree,
        "packages",
        out.path(),
        &universe::build::BuildOptions::default(),
        Default::default(),
    )
    .unwrap();
    let built = std::fs::read_to_string(out.path().join("universe.json")).unwrap();
    assert_eq!(
        built,
        dcosd::services::BUILTIN_REPOSITORY,
        "packages/builtin-repo.json is stale: run \
         `universe build packages/repo/packages --out /tmp/b && cp /tmp/b/universe.json packages/builtin-repo.json`"
    );
}

#[test]
fn builtin_packages_pass_strict_validation() {
    let tree = universe::source::FsTree::new(&workspace().join("packages/repo")).unwrap();
    let schema_dir = workspace().join("../shared/universe-corpus/repo/meta/schema");
    let schemas = if schema_dir.is_dir() {
        let t = universe::source::FsTree::new(&schema_dir).unwrap();
        Some(universe::validate::load_schemas(&t, "").unwrap())
    } else {
        eprintln!("SKIPPED schema rules: ../shared/universe-corpus is absent");
        None
    };
    let opts = universe::validate::ValidateOptions {
        strict: true,
        ..Default::default()
    };
    let report = universe::validate::validate_tree(&tree, "packages", schemas.as_ref(), &opts);
    assert!(report.valid, "{:#?}", report.issues);
    assert_eq!(report.rendered, 3);
}

/// `--listen-dns`: Mesos-DNS answers from the live state, and its HTTP API is behind the
/// Admin Router at `/mesos_dns/` (the internal credential is added by the Admin Router).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesos_dns_http_api_is_behind_the_admin_router() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = args(dir.path());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    a.listen_dns = Some(format!("127.0.0.1:{port}").parse().unwrap());
    let (config, extras) = a.resolve().unwrap();
    let node = dcosd::node::start(config, extras).await.unwrap();
    let url = node.url().unwrap();
    let mut hosts = Value::Null;
    for _ in 0..100 {
        let r = reqwest::get(format!("{url}/mesos_dns/v1/hosts/leader.mesos"))
            .await
            .unwrap();
        if r.status() == 200 {
            hosts = r.json().await.unwrap();
            if hosts.as_array().is_some_and(|h| !h.is_empty()) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(hosts[0]["ip"], "127.0.0.1", "{hosts}");
    let version: Value = reqwest::get(format!("{url}/mesos_dns/v1/version"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        version.get("Version").is_some() || version.get("version").is_some(),
        "{version}"
    );
    node.stop().await;
}
