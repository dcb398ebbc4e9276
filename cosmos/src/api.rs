//! The HTTP handlers of every Cosmos RPC (contract §1).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cosmos_render::{labels, PackageRenderer};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::error::{CosmosError, CosmosResult};
use crate::media::{self, MediaType};
use crate::repo::{Collection, Entry, RepoPackage, Repository};
use crate::urls;
use crate::Inner;

type Shared = State<Arc<Inner>>;

// ---------------------------------------------------------------------------------------------
// warnings: repositories a request was answered without

tokio::task_local! {
    static WARNINGS: Arc<std::sync::Mutex<Vec<String>>>;
}

/// Notes, for the response of the current request, the repositories `coll` was built without.
pub(crate) fn note_unreachable(coll: &Collection) {
    if coll.unreachable().is_empty() {
        return;
    }
    let _ = WARNINGS.try_with(|w| {
        if let Ok(mut w) = w.lock() {
            for u in coll.unreachable() {
                let m = u.message();
                if !w.contains(&m) {
                    w.push(m);
                }
            }
        }
    });
}

/// `199 cosmos "<text>"` (RFC 7234 §5.5): printable ASCII only, quotes and backslashes
/// replaced so that the quoted string needs no escaping.
pub fn warning_header_value(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            ' '..='~' => c,
            _ => '?',
        })
        .collect();
    format!("199 cosmos \"{clean}\"")
}

/// Middleware: collects the repositories left out while answering and names each in a
/// `Warning: 199 cosmos "repository 'NAME' (URI) is unreachable: …"` header (on errors too).
/// Published clients ignore the header; our `dcos` prints it on stderr.
pub(crate) async fn unreachable_warnings(req: Request, next: axum::middleware::Next) -> Response {
    let notes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut resp = WARNINGS.scope(notes.clone(), next.run(req)).await;
    if let Ok(notes) = notes.lock() {
        for n in notes.iter() {
            if let Ok(v) = HeaderValue::from_str(&warning_header_value(n)) {
                resp.headers_mut().append(header::WARNING, v);
            }
        }
    }
    resp
}

// ---------------------------------------------------------------------------------------------
// request validation

/// Validates Accept, Content-Type and body together (all failures reported, in that order) and
/// returns the decoded body and the negotiated response type.
pub fn validate_rpc<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
    request_type: &MediaType,
    offered: &[MediaType],
) -> CosmosResult<(T, MediaType)> {
    let mut errors = Vec::new();
    let negotiated = negotiate_accept(headers, offered)
        .map_err(|e| errors.push(e))
        .ok();
    match headers.get(header::CONTENT_TYPE).map(|v| v.to_str()) {
        None => errors.push(CosmosError::not_present_header("Content-Type")),
        Some(v) => {
            let ok = v
                .ok()
                .and_then(MediaType::parse)
                .is_some_and(|m| m.satisfies(request_type));
            if !ok {
                errors.push(CosmosError::not_valid_header(
                    "Content-Type",
                    &format!("should match one of {request_type}"),
                ));
            }
        }
    }
    let decoded = decode_body::<T>(body).map_err(|e| errors.push(e)).ok();
    if let Some(e) = CosmosError::combine(errors) {
        return Err(e);
    }
    match (decoded, negotiated) {
        (Some(d), Some(n)) => Ok((d, n)),
        _ => Err(CosmosError::unhandled("request validation failed")),
    }
}

/// A request body type of an RPC, with its media types (contract §1).
pub trait RpcRequest: DeserializeOwned + Send {
    /// The Content-Type the request must be sent with.
    fn request_type() -> MediaType;
    /// The response types offered, best first.
    fn response_types() -> Vec<MediaType>;
}

/// Declares the media types of an RPC request type.
macro_rules! rpc {
    ($t:ty, $req:expr => $($resp:expr),+) => {
        impl RpcRequest for $t {
            fn request_type() -> MediaType {
                $req
            }
            fn response_types() -> Vec<MediaType> {
                vec![$($resp),+]
            }
        }
    };
}

/// The extractor of every RPC: Accept, Content-Type and body validated together (all failures
/// reported, in that order, see [`validate_rpc`]), the body decoded and the response type
/// negotiated. Handlers only parse (this), call, and render.
pub struct Rpc<T> {
    /// The decoded request body.
    pub body: T,
    /// The negotiated response media type.
    pub media: MediaType,
    /// The request headers (Authorization, Host, X-Forwarded-Proto).
    pub headers: HeaderMap,
}

impl<S: Send + Sync, T: RpcRequest> FromRequest<S> for Rpc<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let headers = req.headers().clone();
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let (body, media) =
            validate_rpc(&headers, &bytes, &T::request_type(), &T::response_types())
                .map_err(IntoResponse::into_response)?;
        Ok(Rpc {
            body,
            media,
            headers,
        })
    }
}

fn negotiate_accept(headers: &HeaderMap, offered: &[MediaType]) -> CosmosResult<MediaType> {
    let Some(raw) = headers.get(header::ACCEPT) else {
        return Err(CosmosError::not_present_header("Accept"));
    };
    let sent = String::from_utf8_lossy(raw.as_bytes()).into_owned();
    media::negotiate(&sent, offered).cloned().ok_or_else(|| {
        CosmosError::not_valid_header(
            "Accept",
            &format!(
                "Media type was [{sent}] but should be one of [{}]",
                offered
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

fn decode_body<T: DeserializeOwned>(body: &[u8]) -> CosmosResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(CosmosError::not_present_body());
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| CosmosError::not_parsed_body(&e.to_string()))?;
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let msg = if let Some(field) = inner
            .strip_prefix("missing field `")
            .and_then(|s| s.strip_suffix('`'))
        {
            let full = if path == "." || path.is_empty() {
                field.to_string()
            } else {
                format!("{path}.{field}")
            };
            format!(
                "Attempt to decode value on failed cursor: {}",
                full.split('.')
                    .map(|f| format!("DownField({f})"))
                    .collect::<Vec<_>>()
                    .join(",")
            )
        } else if path == "." || path.is_empty() {
            inner
        } else {
            format!("{inner}: DownField({path})")
        };
        CosmosError::not_parsed_body(&msg)
    })
}

/// A success answer with the negotiated type and nulls dropped.
fn ok(media: &MediaType, body: Value) -> Response {
    let mut bytes = Vec::with_capacity(4096);
    write_without_nulls(&body, &mut bytes);
    ok_raw(media, bytes)
}

/// A success answer with an already serialized body.
fn ok_raw(media: &MediaType, bytes: Vec<u8>) -> Response {
    let mut resp = (StatusCode::OK, bytes).into_response();
    if let Ok(v) = HeaderValue::from_str(&media.to_string()) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

/// Compact JSON with every `null`-valued object field dropped, recursively (circe
/// `dropNullValues`), without copying the tree first.
pub fn write_without_nulls(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(m) => {
            out.push(b'{');
            let mut first = true;
            for (k, item) in m {
                if item.is_null() {
                    continue;
                }
                if !first {
                    out.push(b',');
                }
                first = false;
                let _ = serde_json::to_writer(&mut *out, k);
                out.push(b':');
                write_without_nulls(item, out);
            }
            out.push(b'}');
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_without_nulls(item, out);
            }
            out.push(b']');
        }
        scalar => {
            let _ = serde_json::to_writer(&mut *out, scalar);
        }
    }
}

/// `<scheme>://<Host>` for proxy URLs.
fn base_url(headers: &HeaderMap) -> CosmosResult<String> {
    let scheme = match headers.get("x-forwarded-proto") {
        None => "http".to_string(),
        Some(v) => {
            let s = String::from_utf8_lossy(v.as_bytes()).into_owned();
            match s.as_str() {
                "http" | "https" => s,
                _ => {
                    return Err(CosmosError::new(
                        CosmosError::NotValid,
                        format!("Unable to determine scheme used to contact service: [{s}]"),
                        None,
                    ))
                }
            }
        }
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| CosmosError::not_present_header("Host"))?;
    Ok(format!("{scheme}://{host}"))
}

fn auth(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn p(kind: &str, v: &str) -> MediaType {
    MediaType::package(kind, v)
}

fn s(kind: &str, v: &str) -> MediaType {
    MediaType::service(kind, v)
}

/// An integer that the CLI may send as a numeric string (`repo add --index=0`).
#[derive(Debug, Clone, Copy)]
struct LenientInt(i64);

impl<'de> Deserialize<'de> for LenientInt {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Number(n) => n
                .as_i64()
                .map(LenientInt)
                .ok_or_else(|| serde::de::Error::custom(format!("Int: {n} is not an integer"))),
            Value::String(s) => {
                s.trim().parse().map(LenientInt).map_err(|_| {
                    serde::de::Error::custom(format!("Int: \"{s}\" is not an integer"))
                })
            }
            other => Err(serde::de::Error::custom(format!("Int: got {other}"))),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// capabilities

pub async fn capabilities(headers: HeaderMap) -> Response {
    let offered = [media::capabilities_type()];
    match negotiate_accept(&headers, &offered) {
        Ok(m) => ok(
            &m,
            json!({"capabilities": [
                {"name": "PACKAGE_MANAGEMENT"}, {"name": "SUPPORT_CLUSTER_REPORT"},
                {"name": "METRONOME"}, {"name": "LOGGING"}, {"name": "LOGGING_V2"}
            ]}),
        ),
        Err(e) => e.into_response(),
    }
}

// ---------------------------------------------------------------------------------------------
// package queries

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_are_dropped_recursively_but_kept_in_arrays() {
        let v =
            json!({"a": null, "b": {"c": null, "d": [null, {"e": null, "f": 1}]}, "g": "\"x\""});
        let mut out = Vec::new();
        write_without_nulls(&v, &mut out);
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            r#"{"b":{"d":[null,{"f":1}]},"g":"\"x\""}"#
        );
    }
}

#[derive(Deserialize)]
pub(crate) struct SearchRequest {
    query: Option<String>,
}

rpc!(SearchRequest, p("search-request", "v1") => p("search-response", "v1"));

pub(crate) async fn search(
    State(c): Shared,
    Rpc {
        body: req,
        media: m,
        headers,
    }: Rpc<SearchRequest>,
) -> CosmosResult<Response> {
    let base = base_url(&headers)?;
    let coll = c.collection().await?;
    let fragments = coll.search_fragments(&base, |group| {
        let mut out = Vec::new();
        write_without_nulls(&search_result(group, &base), &mut out);
        String::from_utf8(out).unwrap_or_default()
    });
    let hits = coll.search_indices(req.query.as_deref());
    let mut body = String::with_capacity(64 + hits.len() * 512);
    body.push_str("{\"packages\":[");
    for (n, i) in hits.into_iter().enumerate() {
        if n > 0 {
            body.push(',');
        }
        body.push_str(fragments.get(i).map(String::as_str).unwrap_or("null"));
    }
    body.push_str("]}");
    Ok(ok_raw(&m, body.into_bytes()))
}

/// One SearchResult (contract §1.2).
pub fn search_result(group: &[Entry], base: &str) -> Value {
    let first = group[0].pkg.json();
    let mut r = Map::new();
    r.insert("name".into(), Value::from(group[0].pkg.name()));
    r.insert("currentVersion".into(), Value::from(group[0].pkg.version()));
    let versions: Map<String, Value> = group
        .iter()
        .map(|e| (e.pkg.version().to_string(), Value::from(e.pkg.release())))
        .collect();
    r.insert("versions".into(), Value::Object(versions));
    r.insert(
        "description".into(),
        first.get("description").cloned().unwrap_or(Value::Null),
    );
    r.insert(
        "framework".into(),
        Value::Bool(
            first
                .get("framework")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        ),
    );
    r.insert(
        "tags".into(),
        first.get("tags").cloned().unwrap_or(json!([])),
    );
    if let Some(sel) = first.get("selected").filter(|v| v.is_boolean()) {
        r.insert("selected".into(), sel.clone());
    }
    let images = first
        .get("resource")
        .and_then(|r| r.get("images"))
        .or_else(|| first.get("images"))
        .cloned();
    if let Some(mut images) = images {
        urls::rewrite_images(&mut images, base);
        r.insert("images".into(), images);
    }
    Value::Object(r)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DescribeRequest {
    package_name: String,
    package_version: Option<String>,
}

rpc!(DescribeRequest, p("describe-request", "v1") => p("describe-response", "v3"), p("describe-response", "v2"));

pub(crate) async fn describe(
    State(c): Shared,
    Rpc {
        body: req,
        media: m,
        headers,
    }: Rpc<DescribeRequest>,
) -> CosmosResult<Response> {
    let base = base_url(&headers)?;
    let coll = c.collection().await?;
    let entry = coll.resolve(&req.package_name, req.package_version.as_deref())?;
    let pkg = urls::rewrite_package_map(entry.pkg.json(), &base);
    if m.param("version") == Some("v2") {
        Ok(ok(&m, describe_v2(&pkg)?))
    } else {
        Ok(ok(&m, json!({ "package": pkg })))
    }
}

fn has_updates(pkg: &Value) -> bool {
    ["upgradesFrom", "downgradesTo"].iter().any(|k| {
        pkg.get(*k)
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    })
}

/// The package metadata shared by the v2 describe response and an installed package's
/// `packageDefinition`, in Cosmos's key order: `selected` and `framework` default to false.
fn v2_metadata(pkg: &Value, packaging_version: Value) -> Map<String, Value> {
    let mut d = Map::new();
    d.insert("packagingVersion".into(), packaging_version);
    for k in ["name", "version", "maintainer", "description", "tags"] {
        d.insert(k.into(), pkg.get(k).cloned().unwrap_or(Value::Null));
    }
    let flag = |k: &str| Value::Bool(pkg.get(k).and_then(Value::as_bool).unwrap_or(false));
    d.insert("selected".into(), flag("selected"));
    for k in ["scm", "website"] {
        if let Some(v) = pkg.get(k) {
            d.insert(k.into(), v.clone());
        }
    }
    d.insert("framework".into(), flag("framework"));
    for k in [
        "preInstallNotes",
        "postInstallNotes",
        "postUninstallNotes",
        "licenses",
    ] {
        if let Some(v) = pkg.get(k) {
            d.insert(k.into(), v.clone());
        }
    }
    d
}

/// The flattened v2 DescribeResponse (contract §1.3).
pub fn describe_v2(pkg: &Value) -> CosmosResult<Value> {
    let pv = pkg
        .get("packagingVersion")
        .and_then(Value::as_str)
        .unwrap_or("2.0");
    let reported = match pv {
        "2.0" => "2.0",
        "3.0" => "3.0",
        "4.0" if !has_updates(pkg) => "3.0",
        _ => return Err(CosmosError::conversion_to_v2()),
    };
    let mut r = v2_metadata(pkg, reported.into());
    for k in [
        "minDcosReleaseVersion",
        "marathon",
        "resource",
        "config",
        "command",
    ] {
        if let Some(v) = pkg.get(k) {
            r.insert(k.into(), v.clone());
        }
    }
    Ok(Value::Object(r))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListVersionsRequest {
    package_name: String,
    #[allow(dead_code)]
    include_package_versions: bool,
}

rpc!(ListVersionsRequest, p("list-versions-request", "v1") => p("list-versions-response", "v1"));

pub(crate) async fn list_versions(
    State(c): Shared,
    Rpc {
        body: req,
        media: m,
        ..
    }: Rpc<ListVersionsRequest>,
) -> CosmosResult<Response> {
    let coll = c.collection().await?;
    let all = coll.versions_of(&req.package_name);
    if all.is_empty() {
        return Err(coll.package_not_found(&req.package_name));
    }
    let results: Map<String, Value> = all
        .iter()
        .map(|e| {
            (
                e.pkg.version().to_string(),
                Value::String(e.pkg.release().to_string()),
            )
        })
        .collect();
    Ok(ok(&m, json!({ "results": results })))
}

// ---------------------------------------------------------------------------------------------
// render / install

/// Renders an entry into a decorated Marathon app (contract §3). The labels are
/// [`labels::decorate_for`]'s, with the definition label encoded once per package version.
pub fn render_package(
    pkg: &RepoPackage,
    source: &str,
    options: Option<&Value>,
    app_id: Option<&str>,
) -> CosmosResult<Map<String, Value>> {
    let renderer = match pkg.renderer() {
        None => return Err(CosmosError::template_not_found(pkg.name(), pkg.version())),
        Some(r) => r?,
    };
    let app = renderer.render(options)?;
    Ok(labels::decorate_for(
        app,
        &pkg.label_identity(),
        source,
        options,
        app_id,
    ))
}

/// Renders the package of a running app (read from its definition label, so it is used as
/// it was installed, without the repository index checks) with [`labels::decorate`].
fn render_installed(
    pkg: &Value,
    source: &str,
    options: Option<&Value>,
) -> CosmosResult<Map<String, Value>> {
    let field = |k: &str| pkg.get(k).and_then(Value::as_str).unwrap_or("");
    let Some(b64) = pkg
        .get("marathon")
        .and_then(|m| m.get("v2AppMustacheTemplate"))
        .and_then(Value::as_str)
    else {
        return Err(CosmosError::template_not_found(
            field("name"),
            field("version"),
        ));
    };
    let text = cosmos_render::decode_template(b64)?;
    let renderer = PackageRenderer::new(&text, pkg.get("config"), pkg.get("resource"))?;
    let app = renderer.render(options)?;
    Ok(labels::decorate(app, pkg, source, options, None))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RenderRequest {
    package_name: String,
    package_version: Option<String>,
    options: Option<Map<String, Value>>,
    app_id: Option<String>,
}

rpc!(RenderRequest, p("render-request", "v1") => p("render-response", "v1"));

pub(crate) async fn render(
    State(c): Shared,
    Rpc {
        body: req,
        media: m,
        ..
    }: Rpc<RenderRequest>,
) -> CosmosResult<Response> {
    let coll = c.collection().await?;
    let entry = coll.resolve(&req.package_name, req.package_version.as_deref())?;
    let options = req.options.map(Value::Object);
    let app = render_package(
        &entry.pkg,
        &entry.repo_uri,
        options.as_ref(),
        req.app_id.as_deref(),
    )?;
    Ok(ok(&m, json!({ "marathonJson": app })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InstallRequest {
    package_name: String,
    package_version: Option<String>,
    options: Option<Map<String, Value>>,
    app_id: Option<String>,
    #[allow(dead_code)]
    manager_id: Option<String>,
}

rpc!(InstallRequest, p("install-request", "v1") => p("install-response", "v2"), p("install-response", "v1"));

pub(crate) async fn install(
    State(c): Shared,
    Rpc {
        body: req,
        media: m,
        headers,
    }: Rpc<InstallRequest>,
) -> CosmosResult<Response> {
    let v1 = m.param("version") == Some("v1");
    let base = base_url(&headers)?;
    let routed_body = || {
        json!({"packageName": req.package_name, "packageVersion": req.package_version,
               "options": req.options, "appId": req.app_id})
    };
    if c.config.admin_router_url.is_some() {
        if let Some(mgr) = req.manager_id.as_deref().filter(|s| !s.is_empty()) {
            let answer = install_via_manager(&c, &headers, mgr, &routed_body()).await?;
            return Ok(ok(&m, install_answer(answer, v1)));
        }
    }
    let coll = c.collection().await?;
    let entry = coll.resolve(&req.package_name, req.package_version.as_deref())?;
    let pkg = &entry.pkg;
    if c.config.admin_router_url.is_some() && req.package_version.is_some() {
        if let Some(mgr) = crate::manager::declared_manager(pkg.json()) {
            let answer = install_via_manager(&c, &headers, mgr, &routed_body()).await?;
            return Ok(ok(&m, install_answer(answer, v1)));
        }
    }
    let cli = pkg
        .def
        .resource()
        .and_then(|r| r.get("cli"))
        .cloned()
        .map(|mut cli| {
            urls::rewrite_cli(&mut cli, &base);
            cli
        });
    let notes = pkg.get("postInstallNotes").cloned();
    if !pkg.has_template() {
        if v1 {
            return Err(CosmosError::template_not_found(pkg.name(), pkg.version()));
        }
        return Ok(ok(
            &m,
            json!({"packageName": pkg.name(), "packageVersion": pkg.version(),
                   "postInstallNotes": notes, "cli": cli}),
        ));
    }
    let options = req.options.map(Value::Object);
    let app = render_package(
        pkg,
        &entry.repo_uri,
        options.as_ref(),
        req.app_id.as_deref(),
    )?;
    let created = c
        .upstreams
        .create_app(&Value::Object(app.clone()), auth(&headers).as_deref())
        .await?;
    let app_id = created
        .get("id")
        .and_then(Value::as_str)
        .or_else(|| app.get("id").and_then(Value::as_str))
        .map(labels::normalize_app_id);
    tracing::info!(package = %pkg.name(), version = %pkg.version(), app = ?app_id, "installed");
    if v1 {
        Ok(ok(
            &m,
            json!({"packageName": pkg.name(), "packageVersion": pkg.version(), "appId": app_id}),
        ))
    } else {
        Ok(ok(
            &m,
            json!({"packageName": pkg.name(), "packageVersion": pkg.version(), "appId": app_id,
                   "postInstallNotes": notes, "cli": cli}),
        ))
    }
}

async fn install_via_manager(
    c: &Inner,
    headers: &HeaderMap,
    manager: &str,
    body: &Value,
) -> CosmosResult<Value> {
    crate::manager::forward(
        c,
        headers,
        manager,
        "package/install",
        &p("install-request", "v1"),
        &p("install-response", "v2"),
        body,
    )
    .await
}

fn install_answer(answer: Value, v1: bool) -> Value {
    if v1 {
        json!({"packageName": answer.get("packageName"), "packageVersion": answer.get("packageVersion"),
               "appId": answer.get("appId")})
    } else {
        answer
    }
}

/// The package a custom manager handles for this app, if Admin Router routing is on and the
/// app's package (repository lookup by its labels, else its definition label) declares one.
async fn app_manager(c: &Inner, app: &Value) -> Option<(String, String, String)> {
    c.config.admin_router_url.as_ref()?;
    let name = app_label(app, labels::NAME)?;
    let version = app_label(app, labels::VERSION)?;
    let from_repo = match c.collection().await {
        Ok(coll) => coll
            .resolve(name, Some(version))
            .ok()
            .and_then(|e| crate::manager::declared_manager(e.pkg.json()).map(str::to_string)),
        Err(_) => None,
    };
    let mgr = from_repo.or_else(|| {
        app_package(app).and_then(|p| {
            p.as_object()
                .and_then(crate::manager::declared_manager)
                .map(str::to_string)
        })
    })?;
    Some((mgr, name.to_string(), version.to_string()))
}

// ---------------------------------------------------------------------------------------------
// installed packages

fn app_label<'a>(app: &'a Value, name: &str) -> Option<&'a str> {
    app.get("labels")?.get(name)?.as_str()
}

fn app_id_of(app: &Value) -> String {
    labels::normalize_app_id(app.get("id").and_then(Value::as_str).unwrap_or(""))
}

fn app_package(app: &Value) -> Option<Value> {
    app_label(app, labels::DEFINITION).and_then(|l| labels::decode_package_definition(l).ok())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListRequest {
    package_name: Option<String>,
    app_id: Option<String>,
}

rpc!(ListRequest, p("list-request", "v1") => p("list-response", "v1"));

pub(crate) async fn list(
    State(c): Shared,
    Rpc {
        body: req,
        media: m,
        headers,
    }: Rpc<ListRequest>,
) -> CosmosResult<Response> {
    let base = base_url(&headers)?;
    let apps = c.upstreams.list_apps(auth(&headers).as_deref()).await?;
    let want_id = req.app_id.as_deref().map(labels::normalize_app_id);
    let mut out: Vec<(String, String, Value)> = Vec::new();
    for app in &apps {
        let Some(name) = app_label(app, labels::NAME) else {
            continue;
        };
        if req.package_name.as_deref().is_some_and(|n| n != name) {
            continue;
        }
        let id = app_id_of(app);
        if want_id.as_deref().is_some_and(|w| w != id) {
            continue;
        }
        let Some(pkg) = app_package(app) else {
            continue;
        };
        let info = installed_information(&pkg, &base);
        out.push((
            pkg.get("name")
                .and_then(Value::as_str)
                .unwrap_or(name)
                .to_string(),
            id.clone(),
            json!({"appId": id, "packageInformation": info}),
        ));
    }
    out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let packages: Vec<Value> = out.into_iter().map(|(_, _, v)| v).collect();
    Ok(ok(&m, json!({ "packages": packages })))
}

/// `packageInformation` of an installed package (contract §1.8).
pub fn installed_information(pkg: &Value, base: &str) -> Value {
    let d = v2_metadata(
        pkg,
        pkg.get("packagingVersion").cloned().unwrap_or(Value::Null),
    );
    let mut info = Map::new();
    info.insert("packageDefinition".into(), Value::Object(d));
    if let Some(res) = pkg.get("resource").filter(|r| r.is_object()) {
        let mut r = Map::new();
        for k in ["assets", "images"] {
            if let Some(v) = res.get(k) {
                r.insert(k.into(), v.clone());
            }
        }
        let mut r = Value::Object(r);
        urls::rewrite_resource(&mut r, base);
        info.insert("resourceDefinition".into(), r);
    }
    Value::Object(info)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UninstallRequest {
    package_name: String,
    app_id: Option<String>,
    all: Option<bool>,
    #[allow(dead_code)]
    manager_id: Option<String>,
    #[allow(dead_code)]
    package_version: Option<String>,
}

rpc!(UninstallRequest, p("uninstall-request", "v1") => p("uninstall-response", "v1"));

pub(crate) async fn uninstall(
    State(c): Shared,
    Rpc {
        body: req,
        media: m,
        headers,
    }: Rpc<UninstallRequest>,
) -> CosmosResult<Response> {
    let auth = auth(&headers);
    let auth = auth.as_deref();
    let candidates = match &req.app_id {
        Some(id) => {
            let id = labels::normalize_app_id(id);
            match c.upstreams.get_app(&id, auth).await? {
                Some(app) => vec![app],
                None => {
                    return Err(CosmosError::uninstall_non_existent_app(
                        &req.package_name,
                        &id,
                    ))
                }
            }
        }
        None => c.upstreams.list_apps(auth).await?,
    };
    let matching: Vec<Value> = candidates
        .into_iter()
        .filter(|a| app_label(a, labels::NAME) == Some(req.package_name.as_str()))
        .collect();
    if matching.is_empty() {
        return Err(CosmosError::package_not_installed(&req.package_name));
    }
    if matching.len() > 1 && req.all != Some(true) {
        let ids: Vec<String> = matching.iter().map(app_id_of).collect();
        return Err(CosmosError::ambiguous_app_id(&req.package_name, &ids));
    }
    let mut results = Vec::new();
    for app in &matching {
        let id = app_id_of(app);
        if let Some((mgr, name, version)) = app_manager(&c, app).await {
            let answer = crate::manager::forward(
                &c,
                &headers,
                &mgr,
                "package/uninstall",
                &p("uninstall-request", "v1"),
                &p("uninstall-response", "v1"),
                &json!({"packageName": name, "packageVersion": version, "appId": id, "all": req.all}),
            )
            .await?;
            if let Some(r) = answer.get("results").and_then(Value::as_array) {
                results.extend(r.iter().cloned());
            }
            continue;
        }
        let version = app_label(app, labels::VERSION).map(str::to_string);
        if app_label(app, labels::COMMONS_UNINSTALL).is_some() {
            c.sdk_uninstall(&id, auth).await?;
        } else {
            c.upstreams.delete_app(&id, true, auth).await?;
            if let Some(fw) = app_label(app, labels::FRAMEWORK_NAME) {
                c.upstreams
                    .teardown_framework(&req.package_name, version.as_deref(), fw, auth)
                    .await?;
            }
        }
        let notes = match app_package(app) {
            Some(pkg) => pkg.get("postUninstallNotes").cloned(),
            None => match (&version, c.collection().await) {
                (Some(v), Ok(coll)) => coll
                    .resolve(&req.package_name, Some(v))
                    .ok()
                    .and_then(|e| e.pkg.get("postUninstallNotes").cloned()),
                _ => None,
            },
        };
        tracing::info!(package = %req.package_name, app = %id, "uninstalled");
        results.push(json!({"packageName": req.package_name, "appId": id,
                            "packageVersion": version, "postUninstallNotes": notes}));
    }
    Ok(ok(&m, json!({ "results": results })))
}

// ---------------------------------------------------------------------------------------------
// services

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ServiceDescribeRequest {
    app_id: String,
}

rpc!(ServiceDescribeRequest, s("describe-request", "v1") => s("describe-response", "v1"));

/// The installed package of an app: its definition label, else a repository lookup by the name
/// and version labels. Returns the package and its source URI.
async fn installed_package(c: &Inner, app: &Value) -> CosmosResult<(Value, Option<String>)> {
    let source = app_label(app, labels::SOURCE).map(str::to_string);
    if let Some(pkg) = app_package(app) {
        return Ok((pkg, source));
    }
    let (Some(name), Some(version)) = (
        app_label(app, labels::NAME),
        app_label(app, labels::VERSION),
    ) else {
        return Err(CosmosError::unhandled(format!(
            "app {} carries neither {} nor {}/{} labels",
            app_id_of(app),
            labels::DEFINITION,
            labels::NAME,
            labels::VERSION
        )));
    };
    let coll = c.collection().await?;
    let e = coll.resolve(name, Some(version)).map_err(|e| {
        CosmosError::unhandled(format!("installed package not found: {}", e.message()))
    })?;
    Ok((
        Value::Object(e.pkg.json().clone()),
        source.or_else(|| Some(e.repo_uri.to_string())),
    ))
}

fn matches_version(list: Option<&Value>, version: &str) -> bool {
    list.and_then(Value::as_array).is_some_and(|a| {
        a.iter()
            .filter_map(Value::as_str)
            .any(|v| v == "*" || v == version)
    })
}

pub(crate) async fn service_describe(
    State(c): Shared,
    Rpc {
        body: req,
        media: m,
        headers,
    }: Rpc<ServiceDescribeRequest>,
) -> CosmosResult<Response> {
    let base = base_url(&headers)?;
    let id = labels::normalize_app_id(&req.app_id);
    let app = c
        .upstreams
        .get_app(&id, auth(&headers).as_deref())
        .await?
        .ok_or_else(|| CosmosError::marathon_app_not_found(&id))?;
    if let Some((mgr, name, version)) = app_manager(&c, &app).await {
        let answer = crate::manager::forward(
            &c,
            &headers,
            &mgr,
            "service/describe",
            &s("describe-request", "v1"),
            &s("describe-response", "v1"),
            &json!({"appId": id, "packageName": name, "packageVersion": version}),
        )
        .await?;
        return Ok(ok(&m, answer));
    }
    let (pkg, _) = installed_package(&c, &app).await?;
    let name = pkg.get("name").and_then(Value::as_str).unwrap_or("");
    let installed = pkg.get("version").and_then(Value::as_str).unwrap_or("");
    let coll = c.collection().await?;
    let versions = coll.versions_of(name);
    let upgrades: Vec<&str> = versions
        .iter()
        .filter(|e| matches_version(e.pkg.get("upgradesFrom"), installed))
        .map(|e| e.pkg.version())
        .collect();
    let downgrades: Vec<&str> = versions
        .iter()
        .filter(|e| matches_version(pkg.get("downgradesTo"), e.pkg.version()))
        .map(|e| e.pkg.version())
        .collect();
    let stored = app_label(&app, labels::OPTIONS).and_then(|l| labels::decode_options(l).ok());
    let resolved = stored.as_ref().map(|u| {
        let d = pkg
            .get("config")
            .map(cosmos_render::options::defaults)
            .unwrap_or_else(|| json!({}));
        cosmos_render::options::merge(&d, u)
    });
    Ok(ok(
        &m,
        json!({"package": urls::rewrite_package(&pkg, &base), "upgradesTo": upgrades,
               "downgradesTo": downgrades, "resolvedOptions": resolved,
               "userProvidedOptions": stored}),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ServiceUpdateRequest {
    app_id: String,
    package_version: Option<String>,
    options: Option<Map<String, Value>>,
    replace: bool,
}

rpc!(ServiceUpdateRequest, s("update-request", "v1") => s("update-response", "v1"));

pub(crate) async fn service_update(
    State(c): Shared,
    Rpc {
        body: req,
        media: m,
        headers,
    }: Rpc<ServiceUpdateRequest>,
) -> CosmosResult<Response> {
    let auth = auth(&headers);
    let id = labels::normalize_app_id(&req.app_id);
    let app = c
        .upstreams
        .get_app(&id, auth.as_deref())
        .await?
        .ok_or_else(|| CosmosError::marathon_app_not_found(&id))?;
    if let Some((mgr, name, version)) = app_manager(&c, &app).await {
        let answer = crate::manager::forward(
            &c,
            &headers,
            &mgr,
            "service/update",
            &s("update-request", "v1"),
            &s("update-response", "v1"),
            &json!({"appId": id, "packageName": name, "currentPackageVersion": version,
                    "packageVersion": req.package_version, "options": req.options,
                    "replace": req.replace}),
        )
        .await?;
        return Ok(ok(&m, answer));
    }
    let (pkg, source) = installed_package(&c, &app).await?;
    let installed = pkg
        .get("version")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if let Some(v) = &req.package_version {
        if *v != installed {
            return Err(CosmosError::version_upgrade_not_supported(
                Some(v),
                &installed,
            ));
        }
    }
    let provided = req.options.map(Value::Object);
    let options = if req.replace {
        provided
    } else {
        let stored = app_label(&app, labels::OPTIONS)
            .and_then(|l| labels::decode_options(l).ok())
            .ok_or_else(CosmosError::options_not_stored)?;
        Some(match provided {
            None => stored,
            Some(p) => cosmos_render::options::merge(&stored, &p),
        })
    };
    let rendered = render_installed(&pkg, source.as_deref().unwrap_or(""), options.as_ref())?;
    let new_id = labels::normalize_app_id(rendered.get("id").and_then(Value::as_str).unwrap_or(""));
    if new_id != id {
        return Err(CosmosError::app_id_changed(&new_id, &id));
    }
    let deployment = c
        .upstreams
        .update_app(&id, &Value::Object(rendered), auth.as_deref())
        .await?;
    let defaults = pkg
        .get("config")
        .map(cosmos_render::options::defaults)
        .unwrap_or_else(|| json!({}));
    let resolved = cosmos_render::options::merge(&defaults, options.as_ref().unwrap_or(&json!({})));
    Ok(ok(
        &m,
        json!({"package": pkg, "resolvedOptions": resolved, "marathonDeploymentId": deployment}),
    ))
}

// ---------------------------------------------------------------------------------------------
// repositories

#[derive(Deserialize)]
pub(crate) struct RepoListRequest {}

rpc!(RepoListRequest, p("repository.list-request", "v1") => p("repository.list-response", "v1"));

pub(crate) async fn repository_list(
    State(c): Shared,
    Rpc {
        body: _req,
        media: m,
        ..
    }: Rpc<RepoListRequest>,
) -> CosmosResult<Response> {
    let (list, _) = c.read_repositories().await?;
    Ok(ok(&m, json!({ "repositories": list })))
}

#[derive(Deserialize)]
pub(crate) struct RepoAddRequest {
    name: String,
    uri: String,
    index: Option<LenientInt>,
}

rpc!(RepoAddRequest, p("repository.add-request", "v1") => p("repository.add-response", "v1"));

pub(crate) async fn repository_add(
    State(c): Shared,
    Rpc {
        body: req,
        media: m,
        ..
    }: Rpc<RepoAddRequest>,
) -> CosmosResult<Response> {
    let scheme = req.uri.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    let allowed = match scheme.as_deref() {
        Some("http") | Some("https") => true,
        Some("file") => c.config.allow_file_repositories,
        _ => false,
    };
    if !allowed {
        return Err(CosmosError::new(
            CosmosError::UnsupportedRepositoryUri,
            format!(
                "Repository URI [{}] uses an unsupported scheme. Only http and https are supported",
                req.uri
            ),
            Some(json!({"uri": req.uri})),
        ));
    }
    let repo = Repository::new(req.name.clone(), req.uri.clone());
    // fetch and decode fully before touching the list
    let fetch = c.fetch_config().await;
    let fetched = crate::repo::fetch_repository(&c.http, &fetch, &repo, None, 400).await?;
    let (mut list, version) = c.read_repositories().await?;
    let name_dup = list.iter().any(|r| r.name == req.name);
    let uri_dup = list.iter().any(|r| r.uri == req.uri);
    if name_dup || uri_dup {
        let (msg, data) = match (name_dup, uri_dup) {
            (true, true) => (
                format!(
                    "Repository name [{}] and URI [{}] are both already present in the list",
                    req.name, req.uri
                ),
                json!({"name": req.name, "uri": req.uri}),
            ),
            (true, false) => (
                format!(
                    "Repository name [{}] is already present in the list",
                    req.name
                ),
                json!({"name": req.name}),
            ),
            _ => (
                format!(
                    "Repository URI [{}] is already present in the list",
                    req.uri
                ),
                json!({"uri": req.uri}),
            ),
        };
        return Err(CosmosError::new(
            CosmosError::RepositoryAlreadyPresent,
            msg,
            Some(data),
        ));
    }
    let size = list.len();
    match req.index.map(|i| i.0) {
        None => list.push(repo.clone()),
        Some(i) if i >= 0 && (i as u64) <= size as u64 => list.insert(i as usize, repo.clone()),
        Some(i) => {
            let msg = if size == 0 {
                format!("Index ({i}) is out of range. Index value can be at most 0.")
            } else {
                format!(
                    "Index ({i}) is out of range. Index value must be between 0 and {size} inclusive."
                )
            };
            return Err(CosmosError::new(
                CosmosError::RepositoryAddIndexOutOfBounds,
                msg,
                Some(json!({"attempted": i, "max": size})),
            ));
        }
    }
    c.write_repositories(list.clone(), version).await?;
    c.cache.invalidate_all();
    if let crate::repo::Fetched::Index { packages, etag } = fetched {
        c.cache.insert(&repo.uri, packages, etag);
    }
    tracing::info!(name = %repo.name, uri = %repo.uri, "repository added");
    Ok(ok(&m, json!({ "repositories": list })))
}

#[derive(Deserialize)]
pub(crate) struct RepoDeleteRequest {
    name: Option<String>,
    uri: Option<String>,
}

rpc!(RepoDeleteRequest, p("repository.delete-request", "v1") => p("repository.delete-response", "v1"));

pub(crate) async fn repository_delete(
    State(c): Shared,
    Rpc {
        body: req,
        media: m,
        ..
    }: Rpc<RepoDeleteRequest>,
) -> CosmosResult<Response> {
    if req.name.is_none() && req.uri.is_none() {
        return Err(CosmosError::new(
            CosmosError::RepoNameOrUriMissing,
            "Must specify either the name or URI of the repository",
            None,
        ));
    }
    let (list, version) = c.read_repositories().await?;
    let keep: Vec<Repository> = list
        .iter()
        .filter(|r| {
            let hit = match (&req.name, &req.uri) {
                (Some(n), Some(u)) => r.name == *n && r.uri == *u,
                (Some(n), None) => r.name == *n,
                (None, Some(u)) => r.uri == *u,
                (None, None) => false,
            };
            !hit
        })
        .cloned()
        .collect();
    if keep.len() == list.len() {
        let (msg, data) = match (&req.name, &req.uri) {
            (Some(n), Some(u)) => (
                format!("Neither repository name [{n}] nor URI [{u}] are present in the list"),
                json!({"name": n, "uri": u}),
            ),
            (Some(n), None) => (
                format!("Repository name [{n}] is not present in the list"),
                json!({"name": n}),
            ),
            (_, Some(u)) => (
                format!("Repository URI [{u}] is not present in the list"),
                json!({"uri": u}),
            ),
            (None, None) => (String::new(), json!({})),
        };
        return Err(CosmosError::new(
            CosmosError::RepositoryNotPresent,
            msg,
            Some(data),
        ));
    }
    c.write_repositories(keep.clone(), version).await?;
    c.cache.invalidate_all();
    Ok(ok(&m, json!({ "repositories": keep })))
}

// ---------------------------------------------------------------------------------------------
// resource proxy

pub async fn resource(
    State(c): Shared,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> CosmosResult<Response> {
    let Some(url) = q.get("url") else {
        return Err(CosmosError::new(
            CosmosError::NotPresent,
            "Item param 'url' not present but required",
            None,
        ));
    };
    let coll: Arc<Collection> = c.collection().await?;
    let Some(target) = coll.resource_target(url) else {
        return Err(CosmosError::forbidden("ResourceProxyHandler$", Some(url)));
    };
    let resp = c
        .http
        .get(&target)
        .header(header::USER_AGENT, "cosmos/0.6.3")
        .send()
        .await
        .map_err(|e| {
            CosmosError::new(
                CosmosError::EndpointUriConnection,
                format!("Could not access data at URI {target}"),
                Some(json!({"destination": target, "cause": crate::repo::error_chain(&e)})),
            )
        })?;
    let status = resp.status().as_u16();
    if status != 200 {
        return Err(CosmosError::generic_http("GET", &target, status, 400));
    }
    if resp.content_length().unwrap_or(0) == 0 {
        return Err(CosmosError::generic_http("GET", &target, 502, 400));
    }
    let ct = resp.headers().get(header::CONTENT_TYPE).cloned();
    let filename = target
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_string();
    let stream = resp.bytes_stream();
    let mut out = Response::new(Body::from_stream(stream));
    if let Some(ct) = ct {
        out.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        out.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(out)
}
