//! The master's HTTP API: Mesos-style read endpoints and the agent protocol.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use dcos_types::protocol::{
    Heartbeat, RegisterAgent, StatusUpdate, PATH_HEARTBEAT, PATH_REGISTER, PATH_STATUS,
};
use dcos_types::{FrameworkId, MasterError, INTERNAL_TOKEN_HEADER};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::master::Master;
use crate::state;

/// The master's router. Serve it at the root of the master's port (the Admin Router forwards
/// `/mesos/*` here with the prefix stripped).
pub fn router(master: Master) -> Router {
    Router::new()
        .route("/master/state", get(get_state))
        .route("/master/state.json", get(get_state))
        .route("/state", get(get_state))
        .route("/state.json", get(get_state))
        .route("/master/state-summary", get(get_summary))
        .route("/state-summary", get(get_summary))
        .route("/master/frameworks", get(get_frameworks))
        .route("/frameworks", get(get_frameworks))
        .route("/master/slaves", get(get_slaves))
        .route("/slaves", get(get_slaves))
        .route("/master/tasks", get(get_tasks))
        .route("/tasks", get(get_tasks))
        .route("/master/teardown", post(teardown))
        .route("/teardown", post(teardown))
        .route("/master/redirect", get(redirect))
        .route("/redirect", get(redirect))
        .route("/version", get(version))
        .route("/health", get(health))
        .route("/master/health", get(health))
        .route("/system/v1/logs/v2/task/{task}/file/{*file}", get(task_log))
        .route(PATH_REGISTER, post(register))
        .route(PATH_HEARTBEAT, post(heartbeat))
        .route(PATH_STATUS, post(status))
        .layer(DefaultBodyLimit::max(64 << 20))
        .with_state(master)
}

fn json_ok(v: serde_json::Value) -> Response {
    (StatusCode::OK, Json(v)).into_response()
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "message": message.into() }))).into_response()
}

#[allow(clippy::result_large_err)]
fn parse<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!("malformed {what} message: {e}"),
        )
    })
}

fn master_error(e: MasterError) -> Response {
    let code = match e {
        MasterError::Invalid(_) | MasterError::InvalidOffer(_) => StatusCode::BAD_REQUEST,
        MasterError::UnknownFramework(_) => StatusCode::NOT_FOUND,
        MasterError::NotLeader(_) => StatusCode::TEMPORARY_REDIRECT,
        MasterError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    error(code, e.to_string())
}

async fn get_state(State(m): State<Master>) -> Response {
    json_ok(state::state(&m))
}

async fn get_summary(State(m): State<Master>) -> Response {
    json_ok(state::state_summary(&m))
}

async fn get_frameworks(State(m): State<Master>) -> Response {
    json_ok(state::frameworks(&m))
}

async fn get_slaves(State(m): State<Master>) -> Response {
    json_ok(state::slaves(&m))
}

async fn get_tasks(State(m): State<Master>, Query(q): Query<HashMap<String, String>>) -> Response {
    let limit = q
        .get("limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100usize);
    let offset = q.get("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
    let desc = q.get("order").map(|o| o != "asc").unwrap_or(true);
    json_ok(state::tasks(&m, limit, offset, desc))
}

/// `POST /master/teardown` with the form body `frameworkId=ID` (as Mesos).
async fn teardown(State(m): State<Master>, headers: HeaderMap, body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body).to_string();
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let id = if is_json {
        serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| {
                v.get("frameworkId")
                    .or_else(|| v.get("framework_id"))
                    .and_then(|x| x.as_str().map(String::from))
            })
    } else {
        text.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == "frameworkId").then(|| percent_decode(v))
        })
    };
    let Some(id) = id.filter(|i| !i.is_empty()) else {
        return (
            StatusCode::BAD_REQUEST,
            "Missing 'frameworkId' query parameter in the request body",
        )
            .into_response();
    };
    match m.teardown(&FrameworkId(id)) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(MasterError::UnknownFramework(_)) => (
            StatusCode::BAD_REQUEST,
            "No framework found with specified ID",
        )
            .into_response(),
        Err(e) => master_error(e),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3).unwrap_or(&[])).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

async fn redirect(State(m): State<Master>) -> Response {
    let c = m.config();
    (
        StatusCode::TEMPORARY_REDIRECT,
        [(header::LOCATION, format!("//{}:{}", c.hostname, c.port))],
    )
        .into_response()
}

async fn version() -> Response {
    json_ok(json!({
        "version": state::VERSION,
        "build_date": "",
        "build_time": 0,
        "build_user": "",
        "git_sha": "",
        "implementation": "dcosd",
        "implementation_version": env!("CARGO_PKG_VERSION"),
    }))
}

async fn health() -> Response {
    StatusCode::OK.into_response()
}

/// dcos-log v2 for a task's sandbox file: proxied to the task's agent (streams for
/// `Accept: text/event-stream`).
async fn task_log(
    State(m): State<Master>,
    axum::extract::Path((task, file)): axum::extract::Path<(String, String)>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    headers: HeaderMap,
) -> Response {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let Some(base) = m.task_agent_url(&task) else {
        return error(StatusCode::NOT_FOUND, format!("No task {task} is known"));
    };
    let client = CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(3))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new())
    });
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    let mut url = format!(
        "{base}/system/v1/logs/v2/task/{}/file/{}",
        enc(&task).replace('/', "%2F"),
        enc(&file)
    );
    if let Some(q) = query {
        url.push('?');
        url.push_str(&q);
    }
    let mut req = client.get(&url);
    if let Some(token) = &m.config().internal_token {
        req = req.header(INTERNAL_TOKEN_HEADER, token.as_str());
    }
    if let Some(a) = headers.get(header::ACCEPT) {
        req = req.header(header::ACCEPT, a.clone());
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_GATEWAY, format!("agent unreachable: {e}")),
    };
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let ctype = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("text/plain")
        .to_string();
    (
        status,
        [(header::CONTENT_TYPE, ctype)],
        axum::body::Body::from_stream(resp.bytes_stream()),
    )
        .into_response()
}

async fn register(State(m): State<Master>, body: Bytes) -> Response {
    let msg: RegisterAgent = match parse(&body, "register") {
        Ok(m) => m,
        Err(r) => return r,
    };
    match m.register_agent(msg) {
        Ok(r) => (StatusCode::OK, Json(r)).into_response(),
        Err(e) => master_error(e),
    }
}

async fn heartbeat(State(m): State<Master>, body: Bytes) -> Response {
    let msg: Heartbeat = match parse(&body, "heartbeat") {
        Ok(m) => m,
        Err(r) => return r,
    };
    (StatusCode::OK, Json(m.heartbeat(&msg.agent_id))).into_response()
}

async fn status(State(m): State<Master>, body: Bytes) -> Response {
    let msg: StatusUpdate = match parse(&body, "status update") {
        Ok(m) => m,
        Err(r) => return r,
    };
    match m.status_update(msg.status) {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(e) => master_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn decodes_form_values() {
        assert_eq!(percent_decode("a%2Db+c"), "a-b c");
        assert_eq!(percent_decode("bad%zz%"), "bad%zz%");
        assert_eq!(percent_decode("%4"), "%4");
    }
}
