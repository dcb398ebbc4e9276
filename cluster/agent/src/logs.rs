//! dcos-log v2 for task sandboxes: `GET /system/v1/logs/v2/task/{task}/file/{file}`, what
//! `dcos task log` uses when the cluster advertises `LOGGING_V2`.
//!
//! Query: `cursor=BEG|END` (default BEG), `skip=N` (lines; negative from the cursor backwards,
//! so `cursor=END&skip=-10` is the last 10 lines), `limit=N`. `Accept: text/event-stream`
//! follows the file: each line is an SSE `data:` event, new lines are sent as they appear.
//! Otherwise the lines are returned as `text/plain`.

use std::collections::HashMap;
use std::io::SeekFrom;
use std::path::PathBuf;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::agent::Agent;

/// Largest file tail read for a range request.
const MAX_TAIL: u64 = 8 << 20;

fn not_found(msg: String) -> Response {
    (StatusCode::NOT_FOUND, msg).into_response()
}

/// Resolves `file` inside the task's sandbox.
#[allow(clippy::result_large_err)]
pub fn task_file(agent: &Agent, task: &str, file: &str) -> Result<PathBuf, Response> {
    let Some(sandbox) = agent.sandbox_of(task) else {
        return Err(not_found(format!("No task {task} on this agent")));
    };
    if file.is_empty()
        || file.split('/').any(|s| s == ".." || s.is_empty())
        || file.starts_with('/')
    {
        return Err((StatusCode::BAD_REQUEST, format!("Bad file name {file:?}")).into_response());
    }
    let path = sandbox.join(file);
    if !path.is_file() {
        return Err(not_found(format!(
            "No file {file} in the sandbox of {task}"
        )));
    }
    Ok(path)
}

pub async fn task_log(
    State(agent): State<Agent>,
    Path((task, file)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let path = match task_file(&agent, &task, &file) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let from_end = q.get("cursor").is_some_and(|c| c == "END");
    let skip: i64 = match q.get("skip").map(|s| s.parse::<i64>()) {
        None => 0,
        Some(Ok(v)) => v,
        Some(Err(_)) => {
            return (StatusCode::BAD_REQUEST, "skip must be an integer").into_response()
        }
    };
    let limit: Option<usize> = match q.get("limit").map(|s| s.parse::<usize>()) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => {
            return (
                StatusCode::BAD_REQUEST,
                "limit must be a non-negative integer",
            )
                .into_response()
        }
    };
    let sse = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    let (text, size) = match read_tail(&path).await {
        Ok(x) => x,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    let mut lines: Vec<&str> = text.lines().collect();
    let n = lines.len();
    let start: usize = if from_end {
        if skip < 0 {
            n.saturating_sub(skip.unsigned_abs() as usize)
        } else {
            n
        }
    } else {
        (skip.max(0) as usize).min(n)
    };
    lines = lines.split_off(start.min(n));
    if let Some(l) = limit {
        lines.truncate(l);
    }
    if !sse {
        let mut body = lines.join("\n");
        if !body.is_empty() {
            body.push('\n');
        }
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            body,
        )
            .into_response();
    }
    let first: Vec<String> = lines.iter().map(|l| format!("data: {l}\n\n")).collect();
    let stream = futures::stream::unfold(
        (first.into_iter(), path, size, String::new()),
        |(mut pending, path, mut pos, mut partial)| async move {
            if let Some(ev) = pending.next() {
                return Some((
                    Ok::<Bytes, std::io::Error>(Bytes::from(ev)),
                    (pending, path, pos, partial),
                ));
            }
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let Ok(mut f) = tokio::fs::File::open(&path).await else {
                    return None;
                };
                let len = f.metadata().await.map(|m| m.len()).unwrap_or(pos);
                if len < pos {
                    pos = 0; // truncated / rotated
                }
                if len == pos {
                    // Keep the connection alive (an SSE comment).
                    return Some((
                        Ok(Bytes::from_static(b":\n\n")),
                        (pending, path, pos, partial),
                    ));
                }
                if f.seek(SeekFrom::Start(pos)).await.is_err() {
                    return None;
                }
                let mut buf = Vec::new();
                if (&mut f).take(MAX_TAIL).read_to_end(&mut buf).await.is_err() {
                    return None;
                }
                pos += buf.len() as u64;
                partial.push_str(&String::from_utf8_lossy(&buf));
                let mut events = Vec::new();
                while let Some(i) = partial.find('\n') {
                    let line: String = partial.drain(..=i).collect();
                    events.push(format!("data: {}\n\n", line.trim_end_matches('\n')));
                }
                if events.is_empty() {
                    continue;
                }
                let mut it = events.into_iter();
                let first = it.next().unwrap_or_default();
                let rest: Vec<String> = it.collect();
                return Some((
                    Ok(Bytes::from(first)),
                    (rest.into_iter(), path, pos, partial),
                ));
            }
        },
    );
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// The last `MAX_TAIL` bytes of the file (from a line start) and the file size.
async fn read_tail(path: &std::path::Path) -> std::io::Result<(String, u64)> {
    let mut f = tokio::fs::File::open(path).await?;
    let size = f.metadata().await?.len();
    let start = size.saturating_sub(MAX_TAIL);
    f.seek(SeekFrom::Start(start)).await?;
    let mut buf = Vec::new();
    (&mut f).take(MAX_TAIL).read_to_end(&mut buf).await?;
    let mut text = String::from_utf8_lossy(&buf).to_string();
    if start > 0 {
        if let Some(i) = text.find('\n') {
            text.drain(..=i);
        }
    }
    Ok((text, size))
}
