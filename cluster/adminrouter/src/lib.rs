//! Admin Router: the single entry point of the cluster, routing and auth, the way DC/OS's
//! OpenResty Admin Router does it (`packages/adminrouter` in dcos/dcos; contract
//! `dcos-installer.md` §4–5).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use dcos_adminrouter::{AdminRouter, AdminRouterConfig, auth::AuthConfig};
//! let mut cfg = AdminRouterConfig::new("0b7a4b6e-8a43-4b5c-9a3d-6d0c1f9a7e21");
//! cfg.cosmos = Some("http://127.0.0.1:7070".into());
//! cfg.marathon = Some("http://127.0.0.1:8080".into());
//! cfg.mesos = Some("http://127.0.0.1:5050".into());
//! cfg.auth = AuthConfig::disabled();
//! let ar = AdminRouter::new(cfg)?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! ar.serve(listener).await?;
//! # Ok(()) }
//! ```
//!
//! # Routes
//!
//! | path | goes to | auth |
//! |---|---|---|
//! | `/package/*`, `/capabilities` | Cosmos, path kept | JWT |
//! | `/cosmos/service/*` | Cosmos `/service/*` | JWT |
//! | `/service/marathon/*`, `/marathon/*` | Marathon, prefix stripped (`/marathon` → 307) | JWT |
//! | `/service/metronome/*` | Metronome, prefix stripped | JWT |
//! | `/service/<name>/*` | [`ServiceResolver`] (longest name first), prefix stripped; `/service/<name>` → 301 | JWT |
//! | `/mesos/*` | Mesos master, prefix stripped (`/mesos` → 301) | JWT |
//! | `/mesos_dns/*` | Mesos-DNS, prefix stripped, `Authorization` removed (built-in answers for `master.mesos`/`leader.mesos` when not configured) | JWT |
//! | `/agent/<id>/*`, `/slave/<id>/*` | [`AgentResolver`], prefix stripped | JWT |
//! | `/metadata` | `{"PUBLIC_IPV4", "CLUSTER_ID"}` | JWT |
//! | `/pkgpanda/active.buildinfo.full.json` | [`AdminRouterConfig::buildinfo`] (GET/HEAD) | JWT |
//! | `/system/health/v1[/units[/<unit>]\|/nodes]` | [`HealthProvider`] | JWT |
//! | `/dcos-metadata/dcos-version.json` | [`DcosVersion`] | none |
//! | `/acs/api/v1/auth/login` (POST), `/logout`, `/providers` | built-in (see [`auth`]) | none |
//! | `/acs/api/v1/users[/<uid>]` (GET, PUT, PATCH, DELETE) | built-in user management | JWT |
//! | anything else | 404 JSON | `/acs/*` JWT, else none |
//!
//! Paths are normalised first ([`path::normalize`]): `//` merged, `.`/`..` (also `%2e%2e`)
//! resolved, `..` above the root, `%2f`, `%5c` and `%00` refused with 400, so nothing escapes a
//! route prefix. An upstream that is down or not configured gives 502
//! `{"code": 502, "service": "<name>", "message": "Upstream service '<name>' is unavailable: …"}`.
//! A missing, malformed, forged, wrongly signed or expired token on a JWT route gives 401 with
//! `WWW-Authenticate: oauthjwt` (unless auth is disabled).
//!
//! Requests are proxied with a pooled hyper client; request and response bodies are streamed
//! in both directions (never buffered), so SSE (`/service/marathon/v2/events`) and log-follow
//! reads pass through as they are produced. The `dcos-internal-token` header
//! ([`dcos_types::INTERNAL_TOKEN_HEADER`]) is always removed from what clients send; with
//! [`AdminRouterConfig::internal_token`] set, the cluster's own credential is added to every
//! request forwarded to a cluster component (not to `/service/<name>` apps).
//!
//! `/acs/api/v1/auth/logout` revokes every token of the uid whose valid token it is called with
//! (see [`auth::Auth::revoke_tokens`]); failed logins are throttled per uid and per client
//! address (429 with `Retry-After`, see [`throttle`]).
//!
//! Serve it with [`serve`] / [`serve_with_shutdown`] (or [`AdminRouter::serve`]): header read
//! timeout and connection limit ([`ServeLimits`]).

pub mod auth;
pub mod cluster_store;
pub mod discovery;
pub mod path;
mod proxy;
mod serve;
pub mod store;
pub mod throttle;
mod users;

pub use crate::serve::{serve, serve_with_shutdown, ServeLimits};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::Serialize;
use serde_json::json;

use crate::auth::{Auth, AuthConfig, AuthError, LoginError, LoginRequest, TokenError};
use crate::path::{NormPath, Segment};
pub use crate::proxy::Upstream;
use crate::throttle::Outcome;

/// Maps a Mesos agent id to the base URL of its HTTP endpoint (e.g. `http://10.0.0.5:5051`).
/// Called on every `/agent/<id>/…` request: keep it cheap (an in-memory lookup).
pub trait AgentResolver: Send + Sync + 'static {
    fn agent_url(&self, agent_id: &str) -> Option<String>;
}

impl<F> AgentResolver for F
where
    F: Fn(&str) -> Option<String> + Send + Sync + 'static,
{
    fn agent_url(&self, agent_id: &str) -> Option<String> {
        self(agent_id)
    }
}

/// Maps a service name (`/service/<name>/…`, e.g. a Marathon app id without the leading `/`,
/// possibly with `/` for apps in groups) to the base URL of a running task
/// (`http://host:port`). Called on every request: keep it cheap (a cache refreshed elsewhere).
pub trait ServiceResolver: Send + Sync + 'static {
    fn service_url(&self, name: &str) -> Option<String>;
}

impl<F> ServiceResolver for F
where
    F: Fn(&str) -> Option<String> + Send + Sync + 'static,
{
    fn service_url(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// Health of one unit (role) of this node, as dcos-diagnostics reports it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UnitHealth {
    /// e.g. `dcos-marathon.service`
    pub id: String,
    /// e.g. `Marathon`
    pub name: String,
    /// 0 healthy, 1 unhealthy.
    pub health: u8,
    pub output: String,
    pub description: String,
    pub help: String,
}

/// Reports the health of this node's units for `/system/health/v1`.
pub trait HealthProvider: Send + Sync + 'static {
    fn units(&self) -> Vec<UnitHealth>;
}

impl<F> HealthProvider for F
where
    F: Fn() -> Vec<UnitHealth> + Send + Sync + 'static,
{
    fn units(&self) -> Vec<UnitHealth> {
        self()
    }
}

/// Content of `/dcos-metadata/dcos-version.json`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DcosVersion {
    pub version: String,
    #[serde(rename = "dcos-image-commit")]
    pub dcos_image_commit: String,
    #[serde(rename = "bootstrap-id")]
    pub bootstrap_id: String,
    #[serde(rename = "dcos-variant")]
    pub dcos_variant: String,
}

impl Default for DcosVersion {
    fn default() -> Self {
        Self {
            version: "2.2.0".into(),
            dcos_image_commit: "unknown".into(),
            bootstrap_id: "unknown".into(),
            dcos_variant: "open".into(),
        }
    }
}

/// This node, for `/system/health/v1` and `/metadata`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeInfo {
    pub hostname: String,
    pub ip: String,
    /// `master`, `agent` or `agent_public`.
    pub role: String,
    pub mesos_id: String,
}

/// Everything the Admin Router needs. Upstream URLs are base URLs such as
/// `http://127.0.0.1:7070` (a path prefix is allowed: `http://h:p/prefix`).
#[derive(Clone)]
pub struct AdminRouterConfig {
    /// Cosmos: `/package/*`, `/capabilities`, `/cosmos/service/*` (→ `/service/*`).
    pub cosmos: Option<String>,
    /// Marathon: `/service/marathon/*` (prefix stripped), `/marathon/*`.
    pub marathon: Option<String>,
    /// Metronome: `/service/metronome/*`.
    pub metronome: Option<String>,
    /// The leading Mesos master: `/mesos/*` (prefix stripped).
    pub mesos: Option<String>,
    /// Mesos-DNS HTTP API: `/mesos_dns/*` (prefix stripped, `Authorization` removed).
    pub mesos_dns: Option<String>,
    /// `/agent/<id>/*` and `/slave/<id>/*` → agent base URL.
    pub agents: Option<Arc<dyn AgentResolver>>,
    /// `/service/<name>/*` for names other than marathon/metronome.
    pub services: Option<Arc<dyn ServiceResolver>>,
    /// `CLUSTER_ID` of `/metadata`; must be stable (the caller persists it). A UUID v4.
    pub cluster_id: String,
    /// `PUBLIC_IPV4` of `/metadata` (defaults to `node.ip`).
    pub public_ipv4: Option<String>,
    pub version: DcosVersion,
    /// Served at `/pkgpanda/active.buildinfo.full.json`.
    pub buildinfo: serde_json::Value,
    pub node: NodeInfo,
    pub health: Option<Arc<dyn HealthProvider>>,
    pub auth: AuthConfig,
    /// TCP connect timeout to upstreams.
    pub connect_timeout: Duration,
    /// `X-Forwarded-Proto` sent upstream (`http` unless TLS is terminated in front).
    pub forwarded_proto: String,
    /// The cluster's internal credential: when set, sent as `dcos-internal-token`
    /// ([`dcos_types::INTERNAL_TOKEN_HEADER`]) with every request forwarded to a cluster
    /// component (Cosmos, Marathon, Metronome, Mesos, Mesos-DNS, agents) — never to
    /// `/service/<name>` apps. Any copy of that header sent by a client is always removed.
    pub internal_token: Option<String>,
}

impl AdminRouterConfig {
    /// A config with no upstreams, auth **on** with an in-memory store, and defaults elsewhere.
    pub fn new(cluster_id: impl Into<String>) -> Self {
        Self {
            cosmos: None,
            marathon: None,
            metronome: None,
            mesos: None,
            mesos_dns: None,
            agents: None,
            services: None,
            cluster_id: cluster_id.into(),
            public_ipv4: None,
            version: DcosVersion::default(),
            buildinfo: json!({}),
            node: NodeInfo {
                hostname: "localhost".into(),
                ip: "127.0.0.1".into(),
                role: "master".into(),
                mesos_id: String::new(),
            },
            health: None,
            auth: AuthConfig::enabled(Arc::new(store::MemoryAuthStore::new())),
            connect_timeout: Duration::from_secs(5),
            forwarded_proto: "http".into(),
            internal_token: None,
        }
    }
}

impl std::fmt::Debug for AdminRouterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminRouterConfig")
            .field("cosmos", &self.cosmos)
            .field("marathon", &self.marathon)
            .field("metronome", &self.metronome)
            .field("mesos", &self.mesos)
            .field("mesos_dns", &self.mesos_dns)
            .field("agents", &self.agents.is_some())
            .field("services", &self.services.is_some())
            .field("cluster_id", &self.cluster_id)
            .field("auth", &self.auth)
            .field(
                "internal_token",
                &self.internal_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Errors building an [`AdminRouter`].
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid upstream URL for {service}: {url:?}: {reason}")]
    Upstream {
        service: &'static str,
        url: String,
        reason: String,
    },
    #[error("auth setup failed: {0}")]
    Auth(#[from] AuthError),
    #[error("the internal token cannot be sent as an HTTP header value (use visible ASCII)")]
    InternalToken,
}

pub(crate) struct Inner {
    cosmos: Option<Upstream>,
    marathon: Option<Upstream>,
    metronome: Option<Upstream>,
    mesos: Option<Upstream>,
    mesos_dns: Option<Upstream>,
    agents: Option<Arc<dyn AgentResolver>>,
    services: Option<Arc<dyn ServiceResolver>>,
    cluster_id: String,
    public_ipv4: String,
    version: DcosVersion,
    buildinfo: serde_json::Value,
    node: NodeInfo,
    health: Option<Arc<dyn HealthProvider>>,
    auth: Arc<Auth>,
    client: proxy::Client,
    forwarded_proto: HeaderValue,
    /// Bounds concurrent password hashing (logins are CPU- and memory-heavy by design).
    login_permits: tokio::sync::Semaphore,
    /// Sent upstream as `dcos-internal-token` (marked sensitive).
    internal_token: Option<HeaderValue>,
}

/// The Admin Router. Cheap to clone.
#[derive(Clone)]
pub struct AdminRouter {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AdminRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminRouter")
            .field("cluster_id", &self.inner.cluster_id)
            .finish()
    }
}

fn parse_upstream(
    service: &'static str,
    url: &Option<String>,
) -> Result<Option<Upstream>, ConfigError> {
    match url {
        None => Ok(None),
        Some(u) => Upstream::parse(u)
            .map(Some)
            .map_err(|reason| ConfigError::Upstream {
                service,
                url: u.clone(),
                reason,
            }),
    }
}

impl AdminRouter {
    /// Validates the upstream URLs and sets up auth (creating the configured superuser and
    /// service accounts in the auth store).
    pub fn new(config: AdminRouterConfig) -> Result<Self, ConfigError> {
        let auth = Arc::new(Auth::new(config.auth.clone())?);
        let forwarded_proto =
            HeaderValue::from_str(&config.forwarded_proto).map_err(|e| ConfigError::Upstream {
                service: "forwarded_proto",
                url: config.forwarded_proto.clone(),
                reason: e.to_string(),
            })?;
        let internal_token = match &config.internal_token {
            None => None,
            Some(t) => {
                let mut v = HeaderValue::from_str(t).map_err(|_| ConfigError::InternalToken)?;
                if t.is_empty() {
                    return Err(ConfigError::InternalToken);
                }
                v.set_sensitive(true);
                Some(v)
            }
        };
        let inner = Inner {
            internal_token,
            cosmos: parse_upstream("cosmos", &config.cosmos)?,
            marathon: parse_upstream("marathon", &config.marathon)?,
            metronome: parse_upstream("metronome", &config.metronome)?,
            mesos: parse_upstream("mesos", &config.mesos)?,
            mesos_dns: parse_upstream("mesos_dns", &config.mesos_dns)?,
            agents: config.agents,
            services: config.services,
            public_ipv4: config.public_ipv4.unwrap_or_else(|| config.node.ip.clone()),
            cluster_id: config.cluster_id,
            version: config.version,
            buildinfo: config.buildinfo,
            node: config.node,
            health: config.health,
            auth,
            client: proxy::client(config.connect_timeout),
            forwarded_proto,
            login_permits: tokio::sync::Semaphore::new(4),
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The auth state (to add users, issue tokens for internal callers, …).
    pub fn auth(&self) -> Arc<Auth> {
        self.inner.auth.clone()
    }

    /// The axum router answering every path (mount it at the root of a listener).
    pub fn router(&self) -> Router {
        Router::new()
            .fallback(handle)
            .with_state(self.inner.clone())
    }

    /// Serves on `listener` with the default [`ServeLimits`] until the process ends.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        serve::serve(listener, self.router(), ServeLimits::default()).await
    }

    /// Serves on `listener` with `limits` until `shutdown` resolves, then drains in-flight
    /// requests.
    pub async fn serve_with_shutdown<F>(
        self,
        listener: tokio::net::TcpListener,
        limits: ServeLimits,
        shutdown: F,
    ) -> std::io::Result<()>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        serve::serve_with_shutdown(listener, self.router(), limits, shutdown).await
    }
}

/// Where a target upstream comes from.
enum Target<'a> {
    Fixed(&'static str, &'a Option<Upstream>),
    Agent(String),
    Service(String, String),
}

enum Action<'a> {
    Proxy {
        target: Target<'a>,
        /// Path segments to append to the upstream base.
        rest: Vec<Segment>,
        strip_authorization: bool,
    },
    Redirect(StatusCode, String),
    Login,
    Logout,
    Providers,
    /// `/acs/api/v1/users` (`None`) or `/acs/api/v1/users/<uid>`.
    Users(Option<String>),
    Metadata,
    DcosVersion,
    BuildInfo,
    Health(Vec<String>),
    /// No Mesos-DNS configured: answer the few lookups clients make from this node's info.
    BuiltinDns(Vec<String>),
    NotFound,
}

struct Decision<'a> {
    action: Action<'a>,
    protected: bool,
}

fn segs_from(p: &NormPath, i: usize) -> Vec<Segment> {
    p.segments.get(i..).map(|s| s.to_vec()).unwrap_or_default()
}

fn with_query(path: String, query: Option<&str>) -> String {
    match query {
        Some(q) => format!("{path}?{q}"),
        None => path,
    }
}

fn route<'a>(inner: &'a Inner, p: &NormPath, query: Option<&str>) -> Decision<'a> {
    let s = |i| p.seg(i);
    let n = p.segments.len();
    let open = |action| Decision {
        action,
        protected: false,
    };
    let jwt = |action| Decision {
        action,
        protected: true,
    };
    match s(0) {
        Some("acs") => {
            if s(1) == Some("api") && s(2) == Some("v1") && s(3) == Some("auth") && n == 5 {
                match s(4) {
                    Some("login") => return open(Action::Login),
                    Some("logout") => return open(Action::Logout),
                    Some("providers") => return open(Action::Providers),
                    _ => {}
                }
            }
            if s(1) == Some("api") && s(2) == Some("v1") && s(3) == Some("users") {
                match n {
                    4 => return jwt(Action::Users(None)),
                    5 => return jwt(Action::Users(p.seg(4).map(str::to_string))),
                    _ => {}
                }
            }
            jwt(Action::NotFound)
        }
        Some("dcos-metadata") if n == 2 && s(1) == Some("dcos-version.json") => {
            open(Action::DcosVersion)
        }
        Some("metadata") if n == 1 => jwt(Action::Metadata),
        Some("pkgpanda") if n == 2 && s(1) == Some("active.buildinfo.full.json") => {
            jwt(Action::BuildInfo)
        }
        // dcos-log (the DC/OS CLI's `task log` when Cosmos advertises LOGGING_V2): the master
        // serves it and forwards to the task's agent.
        Some("system") if s(1) == Some("v1") && s(2) == Some("logs") => jwt(Action::Proxy {
            target: Target::Fixed("mesos", &inner.mesos),
            rest: segs_from(p, 0),
            strip_authorization: false,
        }),
        Some("system") if s(1) == Some("health") && s(2) == Some("v1") => jwt(Action::Health(
            p.segments[3..].iter().map(|s| s.decoded.clone()).collect(),
        )),
        Some("mesos") => {
            if n == 1 && !p.trailing_slash {
                return open(Action::Redirect(
                    StatusCode::MOVED_PERMANENTLY,
                    with_query("/mesos/".into(), query),
                ));
            }
            jwt(Action::Proxy {
                target: Target::Fixed("mesos", &inner.mesos),
                rest: segs_from(p, 1),
                strip_authorization: false,
            })
        }
        Some("mesos_dns") if inner.mesos_dns.is_none() => jwt(Action::BuiltinDns(
            p.segments[1..].iter().map(|s| s.decoded.clone()).collect(),
        )),
        Some("mesos_dns") => jwt(Action::Proxy {
            target: Target::Fixed("mesos_dns", &inner.mesos_dns),
            rest: segs_from(p, 1),
            strip_authorization: true,
        }),
        Some("package") => jwt(Action::Proxy {
            target: Target::Fixed("cosmos", &inner.cosmos),
            rest: segs_from(p, 0),
            strip_authorization: false,
        }),
        Some("capabilities") if n == 1 => jwt(Action::Proxy {
            target: Target::Fixed("cosmos", &inner.cosmos),
            rest: segs_from(p, 0),
            strip_authorization: false,
        }),
        Some("cosmos") if s(1) == Some("service") => jwt(Action::Proxy {
            target: Target::Fixed("cosmos", &inner.cosmos),
            rest: segs_from(p, 1),
            strip_authorization: false,
        }),
        Some("marathon") => {
            if n == 1 && !p.trailing_slash {
                return open(Action::Redirect(
                    StatusCode::TEMPORARY_REDIRECT,
                    with_query("/marathon/".into(), query),
                ));
            }
            jwt(Action::Proxy {
                target: Target::Fixed("marathon", &inner.marathon),
                rest: segs_from(p, 1),
                strip_authorization: false,
            })
        }
        Some("service") if n >= 2 => {
            if n == 2 && !p.trailing_slash {
                let path = format!("/service/{}/", p.segments[1].raw);
                return open(Action::Redirect(
                    StatusCode::MOVED_PERMANENTLY,
                    with_query(path, query),
                ));
            }
            match s(1) {
                Some("marathon") => jwt(Action::Proxy {
                    target: Target::Fixed("marathon", &inner.marathon),
                    rest: segs_from(p, 2),
                    strip_authorization: false,
                }),
                Some("metronome") => jwt(Action::Proxy {
                    target: Target::Fixed("metronome", &inner.metronome),
                    rest: segs_from(p, 2),
                    strip_authorization: false,
                }),
                _ => {
                    // Longest service name first: /service/group/app/… before /service/group/….
                    if let Some(resolver) = &inner.services {
                        for k in (2..=n).rev() {
                            let name = p.segments[1..k]
                                .iter()
                                .map(|s| s.decoded.as_str())
                                .collect::<Vec<_>>()
                                .join("/");
                            if let Some(url) = resolver.service_url(&name) {
                                return jwt(Action::Proxy {
                                    target: Target::Service(name, url),
                                    rest: segs_from(p, k),
                                    strip_authorization: false,
                                });
                            }
                        }
                    }
                    jwt(Action::NotFound)
                }
            }
        }
        Some("agent") | Some("slave") if n >= 2 => jwt(Action::Proxy {
            target: Target::Agent(p.segments[1].decoded.clone()),
            rest: segs_from(p, 2),
            strip_authorization: false,
        }),
        _ => open(Action::NotFound),
    }
}

pub(crate) fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

const UNAUTHORIZED_HTML: &str = "<html>\n<head><title>401 Authorization Required</title></head>\n<body>\n<center><h1>401 Authorization Required</h1></center>\n<center>Log in with 'dcos auth login' or send 'Authorization: token=&lt;jwt&gt;'.</center>\n</body>\n</html>\n";

fn unauthorized(inner: &Inner, err: &TokenError) -> Response {
    tracing::debug!(reason = %err, "rejecting unauthenticated request");
    let mut r = (StatusCode::UNAUTHORIZED, UNAUTHORIZED_HTML).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(inner.auth.challenge()) {
        h.insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

/// 503 when the auth store cannot be read to check a token.
fn auth_unavailable(message: &str) -> Response {
    tracing::warn!(error = %message, "cannot check a token");
    json_response(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({"code": 503, "message": format!("Authentication is unavailable: {message}")}),
    )
}

fn not_found() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        json!({"code": 404, "message": "Not Found"}),
    )
}

async fn handle(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let norm = match path::normalize(req.uri().path()) {
        Ok(p) => p,
        Err(e) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                json!({"code": 400, "message": format!("Bad request path: {e}")}),
            )
        }
    };
    let query = req.uri().query().map(str::to_string);
    let decision = route(&inner, &norm, query.as_deref());

    let mut token_from_cookie = None;
    if decision.protected && inner.auth.enabled() {
        let checked = auth::extract_token(req.headers())
            .and_then(|(t, from_cookie)| inner.auth.verify_token(&t).map(|_| (t, from_cookie)));
        match checked {
            Ok((t, true)) => token_from_cookie = Some(t),
            Ok((_, false)) => {}
            Err(TokenError::Unavailable(m)) => return auth_unavailable(&m),
            Err(e) => return unauthorized(&inner, &e),
        }
    }

    match decision.action {
        Action::Proxy {
            target,
            rest,
            strip_authorization,
        } => {
            // Cluster components get the internal credential; apps behind /service/<name> never.
            let internal = !matches!(target, Target::Service(..));
            let (service, upstream) = match target {
                Target::Fixed(name, up) => match up {
                    Some(u) => (name.to_string(), std::borrow::Cow::Borrowed(u)),
                    None => {
                        return proxy::unavailable(
                            name,
                            "the service is not configured on this cluster",
                        )
                    }
                },
                Target::Agent(id) => {
                    let url = inner.agents.as_ref().and_then(|r| r.agent_url(&id));
                    let Some(url) = url else {
                        return json_response(
                            StatusCode::NOT_FOUND,
                            json!({"code": 404, "message": format!("Agent '{id}' is unknown to this cluster")}),
                        );
                    };
                    match Upstream::parse(&url) {
                        Ok(u) => (format!("agent {id}"), std::borrow::Cow::Owned(u)),
                        Err(e) => {
                            return proxy::unavailable(
                                &format!("agent {id}"),
                                &format!("bad agent address {url:?}: {e}"),
                            )
                        }
                    }
                }
                Target::Service(name, url) => match Upstream::parse(&url) {
                    Ok(u) => (format!("service {name}"), std::borrow::Cow::Owned(u)),
                    Err(e) => {
                        return proxy::unavailable(
                            &format!("service {name}"),
                            &format!("bad service address {url:?}: {e}"),
                        )
                    }
                },
            };
            let upstream_path = path::join_raw(&rest, norm.trailing_slash);
            proxy::forward(
                &inner,
                &service,
                &upstream,
                &upstream_path,
                query.as_deref(),
                strip_authorization,
                token_from_cookie,
                internal,
                req,
            )
            .await
        }
        Action::Redirect(status, location) => {
            let mut r = status.into_response();
            if let Ok(v) = HeaderValue::from_str(&location) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        Action::Login => login(&inner, req).await,
        Action::Logout => logout(&inner, req).await,
        Action::Users(uid) => users::handle(&inner, uid, req).await,
        Action::Providers => json_response(
            StatusCode::OK,
            json!({
                "dcos-users": {
                    "authentication-type": "dcos-uid-password",
                    "client-method": "dcos-usercredential-post-receive-authtoken",
                    "config": {"start_flow_url": "/acs/api/v1/auth/login"},
                    "description": "Default DC/OS login provider"
                },
                "dcos-services": {
                    "authentication-type": "dcos-uid-servicekey",
                    "client-method": "dcos-servicecredential-post-receive-authtoken",
                    "config": {"start_flow_url": "/acs/api/v1/auth/login"},
                    "description": "Default DC/OS login provider"
                }
            }),
        ),
        Action::Metadata => json_response(
            StatusCode::OK,
            json!({"PUBLIC_IPV4": inner.public_ipv4, "CLUSTER_ID": inner.cluster_id}),
        ),
        Action::DcosVersion => json_response(StatusCode::OK, json!(inner.version)),
        Action::BuildInfo => json_response(StatusCode::OK, inner.buildinfo.clone()),
        Action::Health(rest) => health(&inner, &rest),
        Action::BuiltinDns(rest) => builtin_dns(&inner, &rest),
        Action::NotFound => not_found(),
    }
}

fn health(inner: &Inner, rest: &[String]) -> Response {
    let units = inner.health.as_ref().map(|h| h.units()).unwrap_or_default();
    let node = json!({
        "hostname": inner.node.hostname,
        "ip": inner.node.ip,
        "dcos_version": inner.version.version,
        "node_role": inner.node.role,
        "mesos_id": inner.node.mesos_id,
        "dcos_diagnostics_version": "0.4.0",
    });
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    match rest.as_slice() {
        [] => {
            let mut v = node;
            v["units"] = json!(units);
            json_response(StatusCode::OK, v)
        }
        ["units"] => json_response(StatusCode::OK, json!({"units": units})),
        ["units", unit] => match units.iter().find(|u| u.id == *unit) {
            Some(u) => json_response(StatusCode::OK, json!(u)),
            None => json_response(
                StatusCode::NOT_FOUND,
                json!({"code": 404, "message": format!("Unit {unit} not found")}),
            ),
        },
        ["nodes"] => {
            let health = units.iter().map(|u| u.health).max().unwrap_or(0);
            json_response(
                StatusCode::OK,
                json!({"nodes": [{"host_ip": inner.node.ip, "health": health, "role": inner.node.role}]}),
            )
        }
        _ => not_found(),
    }
}

/// A minimal Mesos-DNS HTTP API for single-node clusters without Mesos-DNS: `master.mesos`,
/// `leader.mesos` (and `<name>.mesos` of this node's role) resolve to this node; anything else
/// gets Mesos-DNS's "not found" answer (`[{"host": "", "ip": ""}]`).
fn builtin_dns(inner: &Inner, rest: &[String]) -> Response {
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    match rest.as_slice() {
        ["v1", "version"] => json_response(
            StatusCode::OK,
            json!({"Service": "Mesos-DNS (built into the Admin Router)", "URL": "", "Version": "0.0.0"}),
        ),
        ["v1", "hosts", host] => {
            let h = host.trim_end_matches('.');
            let known = ["master.mesos", "leader.mesos"].contains(&h);
            let v = if known {
                json!([{"host": format!("{h}."), "ip": inner.node.ip}])
            } else {
                json!([{"host": "", "ip": ""}])
            };
            json_response(StatusCode::OK, v)
        }
        _ => not_found(),
    }
}

fn login_error(status: StatusCode, code: &str, description: &str) -> Response {
    let mut r = json_response(
        status,
        json!({"title": if status == StatusCode::UNAUTHORIZED {"Authentication error"} else {"Bad request"},
               "description": description, "code": code}),
    );
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("acsjwt"));
    }
    r
}

const MAX_LOGIN_BODY: usize = 64 * 1024;

/// 429 with `Retry-After`, in the shape of the other login errors.
fn too_many_logins(retry_after: u64) -> Response {
    let mut r = json_response(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"title": "Too many login attempts",
               "description": format!("Too many failed login attempts for this uid or from this address: try again in {retry_after} seconds"),
               "code": "ERR_TOO_MANY_LOGIN_ATTEMPTS"}),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    r
}

async fn login(inner: &Arc<Inner>, req: Request) -> Response {
    if req.method() != Method::POST {
        let mut r = json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"code": 405, "message": "Use POST /acs/api/v1/auth/login"}),
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    let address = peer_addr(&req).map(|a| a.ip());
    let body = match axum::body::to_bytes(req.into_body(), MAX_LOGIN_BODY).await {
        Ok(b) => b,
        Err(e) => {
            return login_error(
                StatusCode::BAD_REQUEST,
                "ERR_INVALID_DATA",
                &format!("could not read the request body: {e}"),
            )
        }
    };
    let request: LoginRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return login_error(
                StatusCode::BAD_REQUEST,
                "ERR_INVALID_DATA",
                &format!("request body is not a valid login object: {e}"),
            )
        }
    };
    let attempt = match inner.auth.throttle().begin(request.uid.as_deref(), address) {
        Ok(a) => a,
        Err(retry_after) => {
            tracing::warn!(?address, "login throttled");
            return too_many_logins(retry_after);
        }
    };
    let Ok(_permit) = inner.login_permits.acquire().await else {
        inner.auth.throttle().finish(attempt, Outcome::Neutral);
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"title": "Unavailable", "description": "login is shutting down", "code": "ERR_UNAVAILABLE"}),
        );
    };
    let auth = inner.auth.clone();
    let result = tokio::task::spawn_blocking(move || auth.login(&request)).await;
    let outcome = match &result {
        Ok(Ok(_)) => Outcome::Success,
        Ok(Err(LoginError::Unauthorized(_))) => Outcome::Failure,
        _ => Outcome::Neutral,
    };
    inner.auth.throttle().finish(attempt, outcome);
    match result {
        Ok(Ok(token)) => {
            let mut r = json_response(StatusCode::OK, json!({"token": token}));
            if let Ok(v) = HeaderValue::from_str(&format!(
                "{}={token}; Path=/; HttpOnly; SameSite=Strict",
                auth::AUTH_COOKIE
            )) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Ok(Err(LoginError::BadRequest(m))) => {
            login_error(StatusCode::BAD_REQUEST, "ERR_INVALID_DATA", &m)
        }
        Ok(Err(LoginError::Unauthorized(m))) => {
            login_error(StatusCode::UNAUTHORIZED, "ERR_INVALID_CREDENTIALS", &m)
        }
        Ok(Err(LoginError::Internal(m))) => {
            tracing::error!(error = %m, "login failed");
            json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"title": "Internal error", "description": m, "code": "ERR_INTERNAL"}),
            )
        }
        Err(e) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"title": "Internal error", "description": e.to_string(), "code": "ERR_INTERNAL"}),
        ),
    }
}

/// `/acs/api/v1/auth/logout`: expires the UI cookie and, when called with a valid token (any
/// carrier), revokes every token of that uid. Without a valid token it only expires the cookie.
async fn logout(inner: &Arc<Inner>, req: Request) -> Response {
    let uid = auth::extract_token(req.headers())
        .ok()
        .and_then(|(t, _)| inner.auth.verify_token(&t).ok())
        .map(|c| c.uid);
    let mut r = match uid {
        None => json_response(StatusCode::OK, json!({})),
        Some(uid) => {
            let auth = inner.auth.clone();
            let who = uid.clone();
            match tokio::task::spawn_blocking(move || auth.revoke_tokens(&who)).await {
                Ok(Ok(_)) => json_response(StatusCode::OK, json!({})),
                Ok(Err(e)) => {
                    tracing::error!(uid, error = %e, "logout could not revoke the tokens");
                    json_response(
                        StatusCode::SERVICE_UNAVAILABLE,
                        json!({"title": "Unavailable",
                               "description": format!("logout could not revoke the tokens of '{uid}': {e}"),
                               "code": "ERR_UNAVAILABLE"}),
                    )
                }
                Err(e) => json_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"title": "Internal error", "description": e.to_string(), "code": "ERR_INTERNAL"}),
                ),
            }
        }
    };
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "dcos-acs-auth-cookie=; Path=/; HttpOnly; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
        ),
    );
    r
}

/// Remote address, when served with connect info.
pub(crate) fn peer_addr(req: &Request) -> Option<SocketAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}
