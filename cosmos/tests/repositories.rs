//! Repository list, fetching, caching and every kind of broken repository.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn list_add_delete_and_precedence() {
    let e = env().await;
    let first = format!("{}/repo", e.repo);
    let r = e.pkg("repository/list", "v1", json!({})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, p("repository.list-response", "v1"));
    assert_eq!(
        r.body,
        json!({"repositories": [{"name": "V4TestUniverse", "uri": first}]})
    );

    let (second, _) = repo_server(second_repo_packages()).await;
    let second = format!("{second}/repo");
    let r = e
        .pkg(
            "repository/add",
            "v1",
            json!({"name": "second", "uri": second}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"repositories": [{"name": "V4TestUniverse", "uri": first}, {"name": "second", "uri": second}]})
    );
    // latest stays in the lowest-index repository; duplicate versions come from there too
    let r = e
        .pkg("describe", "v3", json!({"packageName": "helloworld"}))
        .await;
    assert_eq!(r.body["package"]["version"], "0.4.2");
    assert_eq!(
        r.body["package"]["description"],
        "Example DCOS application package"
    );
    let r = e
        .pkg(
            "describe",
            "v3",
            json!({"packageName": "helloworld", "packageVersion": "9.9.9"}),
        )
        .await;
    assert_eq!(r.body["package"]["description"], "from the second repo");
    let r = e
        .pkg(
            "list-versions",
            "v1",
            json!({"packageName": "helloworld", "includePackageVersions": true}),
        )
        .await;
    assert_eq!(
        r.body["results"],
        json!({"0.4.2": "5", "0.4.1": "4", "0.4.0": "3", "0.1.0": "0", "9.9.9": "99"})
    );
    let r = e
        .pkg(
            "render",
            "v1",
            json!({"packageName": "helloworld", "packageVersion": "0.4.2"}),
        )
        .await;
    assert_eq!(
        r.body["marathonJson"]["labels"]["DCOS_PACKAGE_SOURCE"],
        first
    );

    // duplicates
    let r = e
        .pkg(
            "repository/add",
            "v1",
            json!({"name": "second", "uri": second}),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"type": "RepositoryAlreadyPresent",
               "message": format!("Repository name [second] and URI [{second}] are both already present in the list"),
               "data": {"name": "second", "uri": second}})
    );
    let r = e
        .pkg(
            "repository/add",
            "v1",
            json!({"name": "other", "uri": second}),
        )
        .await;
    assert_eq!(r.body["data"], json!({"uri": second}));
    // index bounds
    let r = e
        .pkg(
            "repository/add",
            "v1",
            json!({"name": "x", "uri": format!("{}/gzip", e.repo), "index": 2147483647}),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"type": "RepositoryAddIndexOutOfBounds",
               "message": "Index (2147483647) is out of range. Index value must be between 0 and 2 inclusive.",
               "data": {"attempted": 2147483647, "max": 2}})
    );
    // the CLI sends the index as a string
    let r = e
        .pkg(
            "repository/add",
            "v1",
            json!({"name": "front", "uri": format!("{}/gzip", e.repo), "index": "0"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["repositories"][0]["name"], "front");
    let r = e
        .pkg(
            "repository/add",
            "v1",
            json!({"name": "end", "uri": format!("{}/bare-type", e.repo), "index": 3}),
        )
        .await;
    assert_eq!(r.body["repositories"][3]["name"], "end");

    // delete
    let r = e
        .pkg("repository/delete", "v1", json!({"name": "front"}))
        .await;
    assert_eq!(r.body["repositories"].as_array().map(Vec::len), Some(3));
    let r = e
        .pkg("repository/delete", "v1", json!({"uri": second}))
        .await;
    assert_eq!(r.body["repositories"].as_array().map(Vec::len), Some(2));
    let r = e
        .pkg("repository/delete", "v1", json!({"name": "front"}))
        .await;
    assert_eq!(
        r.body,
        json!({"type": "RepositoryNotPresent", "message": "Repository name [front] is not present in the list",
               "data": {"name": "front"}})
    );
    let r = e
        .pkg(
            "repository/delete",
            "v1",
            json!({"name": "end", "uri": "http://wrong"}),
        )
        .await;
    assert_eq!(r.body["type"], "RepositoryNotPresent");
    assert_eq!(
        r.body["data"],
        json!({"name": "end", "uri": "http://wrong"})
    );
    let r = e.pkg("repository/delete", "v1", json!({})).await;
    assert_eq!(
        r.body,
        json!({"type": "RepoNameOrUriMissing", "message": "Must specify either the name or URI of the repository"})
    );
    // after deleting the second repo its version is gone
    let r = e
        .pkg(
            "describe",
            "v3",
            json!({"packageName": "helloworld", "packageVersion": "9.9.9"}),
        )
        .await;
    assert_eq!(r.body["type"], "VersionNotFound");
}

async fn add_error(e: &Env, path: &str) -> (u16, Value) {
    let r = e
        .pkg(
            "repository/add",
            "v1",
            json!({"name": "bad", "uri": format!("{}{path}", e.repo)}),
        )
        .await;
    (r.status, r.body)
}

#[tokio::test]
async fn broken_repositories_are_refused_on_add() {
    let e = env().await;
    let (st, b) = add_error(&e, "/html").await;
    assert_eq!(st, 400);
    assert_eq!(b["type"], "UnsupportedContentType");
    assert_eq!(b["data"]["actual"], "text/html;charset=iso-8859-1");
    assert_eq!(
        b["data"]["supported"],
        json!([
            "application/vnd.dcos.universe.repo+json;charset=utf-8;version=v4",
            "application/vnd.dcos.universe.repo+json;charset=utf-8;version=v3"
        ])
    );
    let (st, b) = add_error(&e, "/missing").await;
    assert_eq!(st, 400);
    assert_eq!(b["type"], "UniverseClientHttpError");
    assert_eq!(b["data"]["clientStatus"], 404);
    assert_eq!(b["data"]["status"], 400);
    assert_eq!(b["data"]["packageRepository"]["name"], "bad");
    let (_, b) = add_error(&e, "/down").await;
    assert_eq!(
        (b["type"].as_str(), b["data"]["clientStatus"].as_u64()),
        (Some("UniverseClientHttpError"), Some(503))
    );
    let (_, b) = add_error(&e, "/invalid-json").await;
    assert_eq!(b["type"], "JsonParsingError");
    let (_, b) = add_error(&e, "/bad-package").await;
    assert_eq!(b["type"], "JsonDecodingError");
    assert!(b["data"]["decodingErrorMessage"]
        .as_str()
        .expect("m")
        .contains("packagingVersion"));
    let (_, b) = add_error(&e, "/redirect-https").await;
    assert_eq!(b["type"], "UnsupportedRedirect");
    assert_eq!(b["data"], json!({"supported": ["http"], "actual": "https"}));
    let (_, b) = add_error(&e, "/brotli").await;
    assert_eq!(b["type"], "UnsupportedContentEncoding");
    let (_, b) = add_error(&e, "/slow").await;
    assert_eq!(b["type"], "RepositoryUriConnection");
    assert_eq!(
        b["message"],
        format!(
            "Could not access data at URI for repository [bad]: {}/slow",
            e.repo
        )
    );
    // a same-scheme redirect is followed
    let (st, b) = add_error(&e, "/redirect-same").await;
    assert_eq!(st, 200, "{b}");

    let r = e
        .pkg(
            "repository/add",
            "v1",
            json!({"name": "x", "uri": "http://fake.fake"}),
        )
        .await;
    assert_eq!(r.body["type"], "RepositoryUriConnection");
    assert_eq!(
        r.body["data"]["repository"],
        json!({"name": "x", "uri": "http://fake.fake"})
    );
    assert!(r.body["data"]["cause"]
        .as_str()
        .expect("cause")
        .contains("fake.fake"));
    for uri in ["file:///etc/passwd", "ftp://x/y", "relative/path"] {
        let r = e
            .pkg("repository/add", "v1", json!({"name": "x", "uri": uri}))
            .await;
        assert_eq!(
            r.body,
            json!({"type": "UnsupportedRepositoryUri",
                   "message": format!("Repository URI [{uri}] uses an unsupported scheme. Only http and https are supported"),
                   "data": {"uri": uri}})
        );
    }
    let r = e
        .pkg(
            "repository/add",
            "v1",
            json!({"name": "x", "uri": "http://[bad"}),
        )
        .await;
    assert_eq!(r.body["type"], "RepositoryUriSyntax");
    // nothing was added
    let r = e.pkg("repository/list", "v1", json!({})).await;
    assert_eq!(r.body["repositories"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn a_broken_repository_in_the_list_says_which_and_why() {
    let e = env().await;
    let (gone, st) = repo_server(vec![]).await;
    let r = e
        .pkg(
            "repository/add",
            "v1",
            json!({"name": "flaky", "uri": format!("{gone}/repo")}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(st.hits.load(Ordering::SeqCst), 1);
    // make it serve garbage: point a new list entry at an endpoint that 404s, by swapping URIs
    let r = e
        .pkg("repository/delete", "v1", json!({"name": "flaky"}))
        .await;
    assert_eq!(r.status, 200);
    let store_err = e
        .pkg(
            "repository/add",
            "v1",
            json!({"name": "flaky", "uri": format!("{}/missing", e.repo)}),
        )
        .await;
    assert_eq!(store_err.body["type"], "UniverseClientHttpError");
    // a repository that broke after being added: the request fails naming it (status 500)
    let e2 = broken_default_env().await;
    let r = e2.pkg("search", "v1", json!({"query": ""})).await;
    assert_eq!(r.status, 500);
    assert_eq!(r.body["type"], "UniverseClientHttpError");
    assert_eq!(r.body["data"]["packageRepository"]["name"], "Broken");
    assert_eq!(r.body["data"]["clientStatus"], 404);
}

async fn broken_default_env() -> Env {
    let (repo, repo_state) = repo_server(fixture_packages()).await;
    let (marathon, cluster) = cluster().await;
    let store: Arc<dyn dcos_store::Store> = Arc::new(dcos_store::EmbeddedStore::in_memory());
    let mut cfg = cosmos::CosmosConfig::new(&marathon, &marathon, store);
    cfg.default_repositories = vec![
        cosmos::Repository::new("Good", format!("{repo}/repo")),
        cosmos::Repository::new("Broken", format!("{repo}/missing")),
    ];
    cfg.fetch = fast_fetch();
    let cosmos = serve(cosmos::Cosmos::new(cfg).router()).await;
    Env {
        cosmos,
        repo,
        repo_state,
        cluster,
        marathon,
        client: reqwest::Client::new(),
    }
}

#[tokio::test]
async fn cache_revalidates_with_etag_and_sends_user_agent() {
    let (repo, st) = repo_server(fixture_packages()).await;
    let (marathon, cluster) = cluster().await;
    let store: Arc<dyn dcos_store::Store> = Arc::new(dcos_store::EmbeddedStore::in_memory());
    let mut cfg = cosmos::CosmosConfig::new(&marathon, &marathon, store);
    cfg.default_repositories = vec![cosmos::Repository::new("r", format!("{repo}/repo"))];
    cfg.fetch = cosmos::FetchConfig {
        ttl: Duration::from_millis(50),
        ..fast_fetch()
    };
    let cosmos = serve(cosmos::Cosmos::new(cfg).router()).await;
    let e = Env {
        cosmos,
        repo,
        repo_state: st.clone(),
        cluster,
        marathon,
        client: reqwest::Client::new(),
    };
    e.pkg("search", "v1", json!({})).await;
    e.pkg("search", "v1", json!({})).await;
    assert_eq!(
        st.hits.load(Ordering::SeqCst),
        1,
        "second request served from cache"
    );
    tokio::time::sleep(Duration::from_millis(80)).await;
    let r = e.pkg("search", "v1", json!({})).await;
    assert_eq!(r.status, 200);
    assert_eq!(st.hits.load(Ordering::SeqCst), 2);
    assert_eq!(
        st.not_modified.load(Ordering::SeqCst),
        1,
        "re-fetch used the ETag"
    );
    assert_eq!(
        st.user_agents.lock().expect("lock")[0],
        "cosmos/0.6.3 dcos/2.1.0"
    );
}

#[tokio::test]
async fn repository_list_is_persisted_in_the_store() {
    let dir = tempfile::tempdir().expect("tmp");
    let (repo, _st) = repo_server(fixture_packages()).await;
    let (second, _) = repo_server(second_repo_packages()).await;
    {
        let store: Arc<dyn dcos_store::Store> =
            Arc::new(dcos_store::EmbeddedStore::open(dir.path()).expect("store"));
        let mut cfg = cosmos::CosmosConfig::new("http://127.0.0.1:1", "http://127.0.0.1:1", store);
        cfg.default_repositories = vec![cosmos::Repository::new("r", format!("{repo}/repo"))];
        cfg.fetch = fast_fetch();
        let url = serve(cosmos::Cosmos::new(cfg).router()).await;
        let e = Env {
            cosmos: url,
            repo: repo.clone(),
            repo_state: _st.clone(),
            cluster: Default::default(),
            marathon: String::new(),
            client: reqwest::Client::new(),
        };
        let r = e
            .pkg(
                "repository/add",
                "v1",
                json!({"name": "s", "uri": format!("{second}/repo"), "index": 0}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let store: Arc<dyn dcos_store::Store> =
        Arc::new(dcos_store::EmbeddedStore::open(dir.path()).expect("reopen"));
    let mut cfg = cosmos::CosmosConfig::new("http://127.0.0.1:1", "http://127.0.0.1:1", store);
    cfg.default_repositories = vec![];
    let url = serve(cosmos::Cosmos::new(cfg).router()).await;
    let e = Env {
        cosmos: url,
        repo,
        repo_state: _st,
        cluster: Default::default(),
        marathon: String::new(),
        client: reqwest::Client::new(),
    };
    let r = e.pkg("repository/list", "v1", json!({})).await;
    let names: Vec<&str> = r.body["repositories"]
        .as_array()
        .expect("r")
        .iter()
        .map(|r| r["name"].as_str().expect("n"))
        .collect();
    assert_eq!(names, vec!["s", "r"]);
}

#[tokio::test]
async fn file_repositories() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("repo.json");
    std::fs::write(
        &path,
        serde_json::to_vec(&json!({"packages": fixture_packages()})).expect("json"),
    )
    .expect("write");
    let store: Arc<dyn dcos_store::Store> = Arc::new(dcos_store::EmbeddedStore::in_memory());
    let mut cfg = cosmos::CosmosConfig::new("http://127.0.0.1:1", "http://127.0.0.1:1", store);
    cfg.default_repositories = vec![cosmos::Repository::new(
        "local",
        format!("file://{}", path.display()),
    )];
    cfg.allow_file_repositories = true;
    let url = serve(cosmos::Cosmos::new(cfg).router()).await;
    let e = Env {
        cosmos: url,
        repo: String::new(),
        repo_state: Default::default(),
        cluster: Default::default(),
        marathon: String::new(),
        client: reqwest::Client::new(),
    };
    let r = e.pkg("search", "v1", json!({"query": "hello"})).await;
    assert_eq!(r.body["packages"][0]["currentVersion"], "0.4.2");
    let r = e.pkg("repository/add", "v1", json!({"name": "nofile", "uri": format!("file://{}/absent.json", dir.path().display())})).await;
    assert_eq!(r.body["type"], "RepositoryUriConnection");
}

/// The shared corpus' real universe.json served over HTTP (gzip on the wire).
#[tokio::test]
async fn real_universe_index() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/reference/universe-build/repo-up-to-2.0.json.gz");
    if !path.is_file() {
        eprintln!(
            "SKIP: {} not found (no ../shared in this checkout)",
            path.display()
        );
        return;
    }
    let gz = std::fs::read(&path).expect("read");
    let router = axum::Router::new().route(
        "/repo",
        axum::routing::get(move || {
            let gz = gz.clone();
            async move {
                (
                    [
                        (
                            "content-type",
                            "application/vnd.dcos.universe.repo+json;charset=utf-8;version=v5",
                        ),
                        ("content-encoding", "gzip"),
                    ],
                    gz,
                )
            }
        }),
    );
    let repo = serve(router).await;
    let (marathon, cluster) = cluster().await;
    let store: Arc<dyn dcos_store::Store> = Arc::new(dcos_store::EmbeddedStore::in_memory());
    let mut cfg = cosmos::CosmosConfig::new(&marathon, &marathon, store);
    cfg.default_repositories = vec![cosmos::Repository::new("Universe", format!("{repo}/repo"))];
    cfg.fetch = cosmos::FetchConfig {
        timeout: Duration::from_secs(60),
        answer_wait: Duration::from_secs(60),
        ..fast_fetch()
    };
    let cosmos = serve(cosmos::Cosmos::new(cfg).router()).await;
    let e = Env {
        cosmos,
        repo,
        repo_state: Default::default(),
        cluster,
        marathon,
        client: reqwest::Client::new(),
    };
    let r = e.pkg("search", "v1", json!({"query": "spark"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["packages"]
        .as_array()
        .expect("p")
        .iter()
        .any(|p| p["name"] == "spark"));
    let r = e
        .pkg("render", "v1", json!({"packageName": "cassandra"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["marathonJson"]["labels"]["DCOS_PACKAGE_NAME"],
        "cassandra"
    );
    let r = e
        .pkg(
            "install",
            "v2",
            json!({"packageName": "marathon-lb", "options": {}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn dcos_version_from_admin_router_drives_the_user_agent() {
    let ar = axum::Router::new().route(
        "/dcos-metadata/dcos-version.json",
        axum::routing::get(|| async {
            axum::Json(json!({"version": "1.12.3", "dcos-image-commit": "x", "bootstrap-id": "y"}))
        }),
    );
    let ar = serve(ar).await;
    let e = env_with(|cfg| cfg.admin_router_url = Some(ar)).await;
    let r = e.pkg("search", "v1", json!({})).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        e.repo_state.user_agents.lock().expect("lock")[0],
        "cosmos/0.6.3 dcos/1.12.3"
    );
}

/// Cosmos against the team's `universe serve` (content negotiation by Accept and by the DC/OS
/// version in the User-Agent, gzip, ETag) over the shared reference build.
#[tokio::test]
async fn universe_serve_interop() {
    let build = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/reference/universe-build");
    if !build.is_dir() {
        eprintln!(
            "SKIP: {} not found (no ../shared in this checkout)",
            build.display()
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    for entry in std::fs::read_dir(&build).expect("read dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        if name.starts_with("universe.") {
            continue; // the all-versions index is not needed for /repo
        }
        if let Some(plain) = name.strip_suffix(".gz") {
            let mut out = Vec::new();
            use std::io::Read as _;
            flate2::read::GzDecoder::new(std::fs::File::open(&path).expect("open"))
                .read_to_end(&mut out)
                .expect("gunzip");
            std::fs::write(dir.path().join(plain), out).expect("write");
        } else {
            std::fs::copy(&path, dir.path().join(&name)).expect("copy");
        }
    }
    let server = serve(universe::serve::router(dir.path())).await;
    let (marathon, cluster) = cluster().await;
    let mut spark_versions = Vec::new();
    for dcos in ["2.1.0", "1.8"] {
        let store: Arc<dyn dcos_store::Store> = Arc::new(dcos_store::EmbeddedStore::in_memory());
        let mut cfg = cosmos::CosmosConfig::new(&marathon, &marathon, store);
        cfg.default_repositories = vec![cosmos::Repository::new(
            "Universe",
            format!("{server}/repo"),
        )];
        cfg.fetch = cosmos::FetchConfig {
            user_agent: format!("cosmos/0.6.3 dcos/{dcos}"),
            timeout: Duration::from_secs(60),
            // the debug-build server filters the 28 MB index before it answers
            answer_wait: Duration::from_secs(60),
            ttl: Duration::from_millis(1),
            ..fast_fetch()
        };
        let url = serve(cosmos::Cosmos::new(cfg).router()).await;
        let e = Env {
            cosmos: url,
            repo: server.clone(),
            repo_state: Default::default(),
            cluster: cluster.clone(),
            marathon: marathon.clone(),
            client: reqwest::Client::new(),
        };
        let r = e.pkg("search", "v1", json!({"query": "spark"})).await;
        assert_eq!(r.status, 200, "dcos {dcos}: {}", r.body);
        let spark = r.body["packages"]
            .as_array()
            .expect("packages")
            .iter()
            .find(|p| p["name"] == "spark")
            .cloned()
            .expect("spark");
        spark_versions.push(spark["versions"].as_object().map_or(0, |m| m.len()));
        // re-validated with the ETag after the (1 ms) TTL
        tokio::time::sleep(Duration::from_millis(5)).await;
        let r = e
            .pkg("describe", "v3", json!({"packageName": "marathon-lb"}))
            .await;
        assert_eq!(r.status, 200, "dcos {dcos}: {}", r.body);
        let r = e
            .pkg("render", "v1", json!({"packageName": "marathon-lb"}))
            .await;
        assert_eq!(r.status, 200, "dcos {dcos}: {}", r.body);
    }
}
