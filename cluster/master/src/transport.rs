//! How the master reaches agents. The default is HTTP+JSON ([`HttpTransport`]); simulations
//! plug in their own.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use dcos_types::protocol::{
    AckUpdate, KillTask, LaunchTasks, ShutdownFramework, PATH_ACK, PATH_KILL, PATH_LAUNCH,
    PATH_SHUTDOWN_FRAMEWORK,
};
use dcos_types::{AgentId, MasterError, INTERNAL_TOKEN_HEADER};
use reqwest::header::{HeaderMap, HeaderValue};

/// A message from the master to an agent.
#[derive(Clone, Debug)]
pub enum ToAgent {
    Launch(LaunchTasks),
    Kill(KillTask),
    Ack(AckUpdate),
    ShutdownFramework(ShutdownFramework),
}

pub type SendFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'static>>;

/// Delivers [`ToAgent`] messages. `base_url` is `http://host:port` of the agent.
pub trait AgentTransport: Send + Sync + 'static {
    fn send(&self, agent_id: &AgentId, base_url: &str, msg: ToAgent) -> SendFuture;
}

/// HTTP+JSON to the agent's port.
#[derive(Clone)]
pub struct HttpTransport {
    client: reqwest::Client,
}

impl HttpTransport {
    /// A transport that sends no internal credential (auth off).
    pub fn new() -> HttpTransport {
        HttpTransport {
            client: Self::builder()
                .build()
                .unwrap_or_else(|_| reqwest::Client::new()),
        }
    }

    /// A transport that sends `token` (the cluster's internal credential) in
    /// [`INTERNAL_TOKEN_HEADER`] on every request to an agent; `None` is [`HttpTransport::new`].
    pub fn with_internal_token(token: Option<&str>) -> Result<HttpTransport, MasterError> {
        let Some(token) = token else {
            return Ok(HttpTransport::new());
        };
        let mut value = HeaderValue::from_str(token).map_err(|_| {
            MasterError::Invalid(
                "the internal token is not a valid HTTP header value (visible ASCII only)".into(),
            )
        })?;
        value.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(INTERNAL_TOKEN_HEADER, value);
        let client = Self::builder()
            .default_headers(headers)
            .build()
            .map_err(|e| MasterError::Invalid(format!("building the agent HTTP client: {e}")))?;
        Ok(HttpTransport { client })
    }

    fn builder() -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(3))
            .pool_max_idle_per_host(8)
    }
}

impl Default for HttpTransport {
    fn default() -> Self {
        HttpTransport::new()
    }
}

impl AgentTransport for HttpTransport {
    fn send(&self, _agent_id: &AgentId, base_url: &str, msg: ToAgent) -> SendFuture {
        let (path, body) = match &msg {
            ToAgent::Launch(m) => (PATH_LAUNCH, serde_json::to_vec(m)),
            ToAgent::Kill(m) => (PATH_KILL, serde_json::to_vec(m)),
            ToAgent::Ack(m) => (PATH_ACK, serde_json::to_vec(m)),
            ToAgent::ShutdownFramework(m) => (PATH_SHUTDOWN_FRAMEWORK, serde_json::to_vec(m)),
        };
        let url = format!("{}{}", base_url.trim_end_matches('/'), path);
        let client = self.client.clone();
        Box::pin(async move {
            let body = body.map_err(|e| e.to_string())?;
            let resp = client
                .post(&url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .map_err(|e| format!("POST {url}: {e}"))?;
            if resp.status().is_success() {
                Ok(())
            } else {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                Err(format!("POST {url}: {status}: {text}"))
            }
        })
    }
}
