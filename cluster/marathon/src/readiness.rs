//! Readiness checks (Marathon's `ReadinessCheckExecutor`): while a deployment runs, Marathon
//! itself probes each task launched for it over HTTP(S) on the port named by the check, and the
//! task counts toward the deployment's progress only once the answer's status is one of
//! `httpStatusCodesForReady`. Checks are deployment-time only: a ready task is never probed
//! again, and tasks of apps that are not deploying are not probed at all.
//!
//! The split: [`due`] picks the probes to run now and marks them in flight (pure, under the
//! state lock); [`probe`] runs one (async, no lock); [`record`] applies its result. Results live
//! in memory only, as in Marathon: after a restart the tasks of a running deployment are
//! probed again.

use std::time::Duration;

use serde_json::{json, Value};

use crate::state::{AppEntry, State};

/// The largest response body kept for `lastResponse` (the rest is cut).
pub const MAX_BODY: usize = 64 * 1024;

/// A task's readiness while a deployment needs it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Readiness {
    pub ready: bool,
    /// Probes completed so far.
    pub checks: u32,
    /// When the next probe is due (seconds since the epoch).
    pub next_at: f64,
    pub in_flight: bool,
    pub last_response: Option<LastResponse>,
    /// Why the last probe got no answer (connection refused, timeout, ...).
    pub last_error: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LastResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

/// One probe to run.
#[derive(Clone, Debug, PartialEq)]
pub struct Probe {
    pub app_id: String,
    pub task_id: String,
    pub url: String,
    pub timeout: Duration,
}

/// What a probe got.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Response(LastResponse),
    Error(String),
}

/// Picks the probes due at `now` and marks them in flight. Only apps in a deployment's
/// current step are looked at, so steady apps cost nothing here.
pub fn due(st: &mut State, now: f64) -> Vec<Probe> {
    let apps: Vec<String> = st
        .deployments
        .values()
        .filter_map(|d| d.steps.get(d.current_step.saturating_sub(1)))
        .flatten()
        .map(|a| a.app.clone())
        .collect();
    let mut out = Vec::new();
    for id in apps {
        let Some(e) = st.apps.get_mut(&id) else {
            continue;
        };
        let Some(rc) = e.app.readiness_checks.first().cloned() else {
            continue;
        };
        let has_hc = !e.app.health_checks.is_empty();
        let port_index = e
            .app
            .port_names()
            .iter()
            .position(|n| n.as_deref() == Some(rc.port_name.as_str()));
        for t in e.tasks.values_mut() {
            // Probed once running (and healthy, when the app has health checks).
            let probeable = t.is_running()
                && t.kill_requested.is_none()
                && (!has_hc || t.healthy == Some(true));
            let Some(r) = t.readiness.as_mut() else {
                continue;
            };
            if !probeable || r.ready || r.in_flight || now < r.next_at {
                continue;
            }
            let Some(port) = port_index.and_then(|i| t.ports.get(i)) else {
                r.last_error = Some(format!(
                    "the task has no host port named '{}'",
                    rc.port_name
                ));
                r.next_at = now + rc.interval_seconds;
                continue;
            };
            r.in_flight = true;
            let scheme = if rc.protocol == "HTTPS" {
                "https"
            } else {
                "http"
            };
            out.push(Probe {
                app_id: id.clone(),
                task_id: t.id.clone(),
                url: format!("{scheme}://{}:{port}{}", t.host, rc.path),
                timeout: Duration::from_secs_f64(rc.timeout_seconds.clamp(0.001, 3600.0)),
            });
        }
    }
    out
}

/// Applies a probe's outcome. Returns whether the task just became ready (the app must be
/// planned again: the deployment may move on).
pub fn record(st: &mut State, p: &Probe, outcome: Outcome, now: f64) -> bool {
    let Some(e) = st.apps.get_mut(&p.app_id) else {
        return false;
    };
    let Some(rc) = e.app.readiness_checks.first().cloned() else {
        return false;
    };
    let Some(t) = e.tasks.get_mut(&p.task_id) else {
        return false;
    };
    let Some(r) = t.readiness.as_mut() else {
        return false;
    };
    r.in_flight = false;
    r.checks += 1;
    r.next_at = now + rc.interval_seconds;
    let was = r.ready;
    match outcome {
        Outcome::Response(resp) => {
            r.ready = rc
                .http_status_codes_for_ready
                .contains(&i64::from(resp.status));
            r.last_error = None;
            r.last_response = Some(resp);
        }
        Outcome::Error(err) => {
            r.ready = false;
            r.last_error = Some(err);
        }
    }
    if r.ready && !was {
        tracing::info!("marathon: task {} is ready", p.task_id);
        st.dirty.insert(p.app_id.clone());
        return true;
    }
    false
}

/// Runs one probe: a GET with the check's timeout (HTTPS without certificate verification:
/// tasks serve their own certificates, as with Marathon's HTTPS health checks).
pub async fn probe(client: &reqwest::Client, p: &Probe) -> Outcome {
    let send = async {
        let mut resp = client.get(&p.url).send().await?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await? {
            let room = MAX_BODY - body.len();
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= MAX_BODY {
                break;
            }
        }
        Ok::<_, reqwest::Error>(LastResponse {
            status,
            content_type,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    };
    match tokio::time::timeout(p.timeout, send).await {
        Ok(Ok(r)) => Outcome::Response(r),
        Ok(Err(e)) => Outcome::Error(format!("GET {}: {}", p.url, error_chain(&e))),
        Err(_) => Outcome::Error(format!(
            "GET {}: no answer within {:.1}s",
            p.url,
            p.timeout.as_secs_f64()
        )),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}

/// The client the probes share.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap_or_default()
}

/// `readinessCheckResults` of an app: one entry per task probed at least once.
pub fn results_json(e: &AppEntry) -> Vec<Value> {
    let Some(rc) = e.app.readiness_checks.first() else {
        return Vec::new();
    };
    e.tasks
        .values()
        .filter_map(|t| t.readiness.as_ref().map(|r| (t, r)))
        .filter(|(_, r)| r.checks > 0)
        .map(|(t, r)| {
            let mut v = json!({"name": rc.name, "taskId": t.id, "ready": r.ready});
            if rc.preserve_last_response {
                if let Some(l) = &r.last_response {
                    v["lastResponse"] = json!({
                        "status": l.status,
                        "contentType": l.content_type.clone().unwrap_or_default(),
                        "body": l.body,
                    });
                }
            }
            if let Some(err) = &r.last_error {
                // Not in Marathon's shape: why a probe got no answer at all.
                v["lastError"] = json!(err);
            }
            v
        })
        .collect()
}
