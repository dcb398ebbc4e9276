//! Custom package managers (packagingVersion 5.0 `manager`, contract §4.6): requests for such
//! packages are forwarded through Admin Router to `/service/<managerId>/…`.

use axum::http::{header, HeaderMap};
use serde_json::{json, Map, Value};

use crate::error::{CosmosError, CosmosResult};
use crate::media::MediaType;
use crate::repo::error_chain;
use crate::Inner;

/// The manager a package declares (`manager.packageName`), if any.
pub fn declared_manager(package: &Map<String, Value>) -> Option<&str> {
    package
        .get("manager")
        .and_then(|m| m.get("packageName"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Forwards an RPC to the custom manager `manager_id` through Admin Router and returns its
/// decoded answer. `rpc` is the path below the manager (`package/install`, `service/describe`).
/// 409 → `ServiceAlreadyStarted`, 404 → `CustomPackageManagerNotFound`, other non-2xx →
/// `CustomPackageManagerError`. Without an Admin Router URL nothing can be forwarded.
pub async fn forward(
    c: &Inner,
    headers: &HeaderMap,
    manager_id: &str,
    rpc: &str,
    content_type: &MediaType,
    accept: &MediaType,
    body: &Value,
) -> CosmosResult<Value> {
    let Some(ar) = c.config.admin_router_url.as_deref() else {
        return Err(CosmosError::unhandled(
            "custom package managers need Cosmos' admin_router_url",
        ));
    };
    let url = format!(
        "{}/service/{}/{rpc}",
        ar.trim_end_matches('/'),
        manager_id.trim_matches('/')
    );
    let mut req = c
        .http
        .post(&url)
        .header(header::CONTENT_TYPE, content_type.to_string())
        .header(header::ACCEPT, accept.to_string())
        .body(serde_json::to_vec(&cosmos_render::labels::drop_nulls(body)).unwrap_or_default());
    for h in [header::AUTHORIZATION.as_str(), "x-forwarded-proto"] {
        if let Some(v) = headers.get(h) {
            req = req.header(h, v.clone());
        }
    }
    if let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) {
        let (h, port) = match host.rsplit_once(':') {
            Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => (h, Some(p)),
            _ => (host, None),
        };
        req = req.header("x-forwarded-host", h);
        if let Some(p) = port {
            req = req.header("x-forwarded-port", p);
        }
    }
    let resp = req.send().await.map_err(|e| {
        tracing::warn!(manager = manager_id, error = %error_chain(&e), "custom manager unreachable");
        CosmosError::service_unavailable("adminRouter")
    })?;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    match status {
        200..=299 => serde_json::from_str(&text)
            .map_err(|e| CosmosError::json_parsing("ParseException", &e.to_string(), &text)),
        409 => Err(CosmosError::new(
            CosmosError::ServiceAlreadyStarted,
            "The service has already been started",
            None,
        )),
        404 => Err(CosmosError::new(
            CosmosError::CustomPackageManagerNotFound,
            format!("the custom manager: '{manager_id}', is not installed for this package"),
            Some(json!({"managerId": manager_id})),
        )),
        _ => Err(CosmosError::new(
            CosmosError::CustomPackageManagerError,
            format!(
                "Custom manager [{manager_id}] returned error code [{status}] and response [{text}]"
            ),
            Some(json!({"managerId": manager_id, "statusCode": status, "responseContent": text})),
        )),
    }
}
