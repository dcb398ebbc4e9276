//! Cosmos: the DC/OS package manager service (API of DC/OS Cosmos v0.6.3).
//!
//! Embed it in the master with [`Cosmos::new`] and mount [`Cosmos::router`] (routes at
//! `/capabilities`, `/package/*`, `/service/*`), or run the `cosmos` binary standalone.
//!
//! ```no_run
//! # use std::sync::Arc;
//! let store: Arc<dyn dcos_store::Store> = Arc::new(dcos_store::EmbeddedStore::in_memory());
//! let cosmos = cosmos::Cosmos::new(cosmos::CosmosConfig::new(
//!     "http://127.0.0.1:8080", "http://127.0.0.1:5050", store));
//! let app: axum::Router = cosmos.router();
//! ```

pub mod api;
pub mod error;
pub mod manager;
pub mod media;
pub mod repo;
pub mod upstream;
pub mod urls;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;

pub use error::{CosmosError, CosmosResult};
pub use repo::{FetchConfig, Repository, Unreachable};

/// Everything Cosmos needs to run.
#[derive(Clone)]
pub struct CosmosConfig {
    /// Marathon API base URL (`http://host:8080`; Cosmos calls `{url}/v2/apps`).
    pub marathon_url: String,
    /// Mesos master base URL (`http://host:5050`; Cosmos calls `{url}/master/frameworks`).
    pub mesos_master_url: String,
    /// Where the repository list is persisted (key [`repo::REPO_LIST_KEY`]).
    pub store: Arc<dyn dcos_store::Store>,
    /// The list written on first use (Cosmos default: Universe at universe.mesosphere.com).
    pub default_repositories: Vec<Repository>,
    /// Repository fetching: User-Agent, retries, timeouts, cache TTL.
    pub fetch: FetchConfig,
    /// Whether `/package/repository/add` accepts `file://` URIs (Cosmos accepts only
    /// http/https; default repositories may always be files).
    pub allow_file_repositories: bool,
    /// Poll interval of the background SDK uninstall (Cosmos: 10 s).
    pub sdk_poll_interval: Duration,
    /// Admin Router base URL, for custom package managers (v5 `manager`), reached at
    /// `{url}/service/<managerId>/…`. `None`: no routing, every package is handled here.
    pub admin_router_url: Option<String>,
    /// The cluster's internal credential. When set, it is sent as
    /// [`dcos_types::INTERNAL_TOKEN_HEADER`] on every call to Marathon and to the Mesos
    /// master, and on nothing else: repositories, resource URLs, Admin Router and custom
    /// package managers never see it.
    pub internal_token: Option<String>,
}

impl CosmosConfig {
    /// A configuration with Cosmos defaults.
    pub fn new(
        marathon_url: impl Into<String>,
        mesos_master_url: impl Into<String>,
        store: Arc<dyn dcos_store::Store>,
    ) -> Self {
        CosmosConfig {
            marathon_url: marathon_url.into(),
            mesos_master_url: mesos_master_url.into(),
            store,
            default_repositories: repo::default_repositories(),
            fetch: FetchConfig::default(),
            allow_file_repositories: false,
            sdk_poll_interval: Duration::from_secs(10),
            admin_router_url: None,
            internal_token: None,
        }
    }
}

/// Shared state behind the router.
pub struct Inner {
    pub(crate) config: CosmosConfig,
    pub(crate) http: reqwest::Client,
    pub(crate) upstreams: upstream::Upstreams,
    pub(crate) repos: Arc<repo::RepositoryList>,
    pub(crate) cache: repo::RepoCache,
    /// DC/OS version read from Admin Router (cached after the first success).
    pub(crate) dcos_version: tokio::sync::OnceCell<String>,
}

/// The Cosmos service.
#[derive(Clone)]
pub struct Cosmos {
    inner: Arc<Inner>,
}

fn http_client() -> reqwest::Client {
    // Follow same-scheme redirects like the JDK; a scheme change is left to the caller
    // (`UnsupportedRedirect`).
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        let same = attempt
            .previous()
            .last()
            .is_some_and(|prev| prev.scheme() == attempt.url().scheme());
        if same && attempt.previous().len() < 10 {
            attempt.follow()
        } else {
            attempt.stop()
        }
    });
    reqwest::Client::builder()
        .redirect(policy)
        .connect_timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default()
}

impl Cosmos {
    /// Builds the service.
    pub fn new(config: CosmosConfig) -> Cosmos {
        let http = http_client();
        let upstreams =
            upstream::Upstreams::new(http.clone(), &config.marathon_url, &config.mesos_master_url)
                .with_internal_token(config.internal_token.clone());
        let repos = Arc::new(repo::RepositoryList::new(
            config.store.clone(),
            config.default_repositories.clone(),
        ));
        Cosmos {
            inner: Arc::new(Inner {
                config,
                http,
                upstreams,
                repos,
                cache: repo::RepoCache::default(),
                dcos_version: tokio::sync::OnceCell::new(),
            }),
        }
    }

    /// The HTTP API: `GET /capabilities`, `POST /package/*`, `GET /package/resource`,
    /// `POST /service/{describe,update}`. Unknown paths and methods → 404 with an empty body.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/capabilities", get(api::capabilities))
            .route("/package/search", post(api::search))
            .route("/package/describe", post(api::describe))
            .route("/package/list-versions", post(api::list_versions))
            .route("/package/render", post(api::render))
            .route("/package/install", post(api::install))
            .route("/package/uninstall", post(api::uninstall))
            .route("/package/list", post(api::list))
            .route("/package/repository/list", post(api::repository_list))
            .route("/package/repository/add", post(api::repository_add))
            .route("/package/repository/delete", post(api::repository_delete))
            .route("/package/resource", get(api::resource))
            .route("/service/describe", post(api::service_describe))
            .route("/service/update", post(api::service_update))
            .method_not_allowed_fallback(not_found)
            .fallback(not_found)
            .layer(axum::middleware::from_fn(api::unreachable_warnings))
            .with_state(self.inner.clone())
    }

    /// Starts fetching the repositories in the background (when called inside a Tokio runtime),
    /// so that the first request finds them loaded — or already known to be unreachable, and
    /// then does not wait for them at all. Reads (and on first use stores) the repository list.
    pub fn warm_up(&self) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let inner = self.inner.clone();
        rt.spawn(async move {
            match inner.collection().await {
                Ok(c) if c.unreachable().is_empty() => {
                    tracing::info!(packages = c.entries().len(), "repositories loaded")
                }
                Ok(c) => {
                    for u in c.unreachable() {
                        tracing::warn!("{}", u.message());
                    }
                }
                Err(e) => tracing::warn!(error = %e.message(), "repositories not loaded"),
            }
        });
    }

    /// The merged package collection over the current repositories (fetching as needed).
    pub async fn collection(&self) -> CosmosResult<Arc<repo::Collection>> {
        self.inner.collection().await
    }
}

async fn not_found() -> axum::http::StatusCode {
    axum::http::StatusCode::NOT_FOUND
}

impl Inner {
    pub(crate) async fn read_repositories(&self) -> CosmosResult<(Vec<Repository>, u64)> {
        let repos = self.repos.clone();
        tokio::task::spawn_blocking(move || repos.read())
            .await
            .map_err(|e| CosmosError::unhandled(e.to_string()))?
    }

    pub(crate) async fn write_repositories(
        &self,
        list: Vec<Repository>,
        version: u64,
    ) -> CosmosResult<()> {
        let repos = self.repos.clone();
        tokio::task::spawn_blocking(move || repos.write(&list, version))
            .await
            .map_err(|e| CosmosError::unhandled(e.to_string()))?
    }

    pub(crate) async fn collection(&self) -> CosmosResult<Arc<repo::Collection>> {
        let (list, _) = self.read_repositories().await?;
        let fetch = self.fetch_config().await;
        let coll = self.cache.collection(&self.http, &fetch, &list).await?;
        api::note_unreachable(&coll);
        Ok(coll)
    }

    /// The fetch settings, with `User-Agent: cosmos/0.6.3 dcos/<version>` from Admin Router's
    /// `/dcos-metadata/dcos-version.json` when an Admin Router is configured (Cosmos does this to
    /// let repositories filter by DC/OS version). If it cannot be read, the configured
    /// User-Agent is used (Cosmos would fail the fetch).
    pub(crate) async fn fetch_config(&self) -> repo::FetchConfig {
        let mut cfg = self.config.fetch.clone();
        let Some(ar) = self.config.admin_router_url.as_deref() else {
            return cfg;
        };
        let url = format!(
            "{}/dcos-metadata/dcos-version.json",
            ar.trim_end_matches('/')
        );
        let version = self
            .dcos_version
            .get_or_try_init(|| async {
                let v: Value = self
                    .http
                    .get(&url)
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await
                    .map_err(|e| e.to_string())?
                    .error_for_status()
                    .map_err(|e| e.to_string())?
                    .json()
                    .await
                    .map_err(|e| e.to_string())?;
                v.get("version")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| "no version field".to_string())
            })
            .await;
        match version {
            Ok(v) => cfg.user_agent = format!("cosmos/0.6.3 dcos/{v}"),
            Err(e) => {
                tracing::warn!(url, error = %e, "DC/OS version unavailable; using the configured User-Agent")
            }
        }
        cfg
    }

    /// SDK uninstall (contract §4.3): mark the app with `SDK_UNINSTALL=true`, then delete it in
    /// the background once Marathon's deployment is done.
    pub(crate) async fn sdk_uninstall(&self, id: &str, auth: Option<&str>) -> CosmosResult<()> {
        let app = self
            .upstreams
            .get_app(id, auth)
            .await?
            .ok_or_else(|| CosmosError::marathon_app_not_found(id))?;
        let mut app = app;
        if let Value::Object(m) = &mut app {
            m.remove("uris");
            m.remove("version");
            let env = m
                .entry("env")
                .or_insert_with(|| Value::Object(Default::default()));
            if let Value::Object(env) = env {
                env.insert("SDK_UNINSTALL".into(), Value::String("true".into()));
            }
        }
        let Some(deployment) = self.upstreams.put_app_forced(id, &app, auth).await? else {
            return Err(CosmosError::failed_to_start_uninstall(
                id,
                "Marathon did not accept the uninstall marker or returned no deploymentId",
            ));
        };
        let upstreams = self.upstreams.clone();
        let interval = self.config.sdk_poll_interval;
        let id = id.to_string();
        let auth = auth.map(str::to_string);
        tokio::spawn(async move {
            for _ in 0..10_000 {
                tokio::time::sleep(interval).await;
                match upstreams.deployment_ids(auth.as_deref()).await {
                    Ok(ids) if ids.contains(&deployment) => continue,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(app = %id, error = %e, "sdk uninstall: deployments unreadable");
                        if e.status() == 401 {
                            return;
                        }
                        continue;
                    }
                }
                match upstreams.get_app(&id, auth.as_deref()).await {
                    Ok(Some(app)) => {
                        let marked = app.pointer("/env/SDK_UNINSTALL").and_then(Value::as_str)
                            == Some("true");
                        if marked {
                            if let Err(e) = upstreams.delete_app(&id, false, auth.as_deref()).await
                            {
                                tracing::warn!(app = %id, error = %e, "sdk uninstall: delete failed");
                            }
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(app = %id, error = %e, "sdk uninstall: app unreadable")
                    }
                }
                return;
            }
        });
        Ok(())
    }
}
