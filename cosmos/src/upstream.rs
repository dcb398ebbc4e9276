//! Clients for Marathon and the Mesos master, with the Cosmos error mapping (contract §1.6, §2,
//! §4.3, §4.4).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::error::{CosmosError, CosmosResult};
use crate::repo::error_chain;

const MAX_BODY: usize = 40 << 20;

/// Marathon and Mesos endpoints Cosmos talks to.
#[derive(Clone, Debug)]
pub struct Upstreams {
    client: reqwest::Client,
    marathon: String,
    mesos: String,
    user_agent: String,
    /// Sent as [`dcos_types::INTERNAL_TOKEN_HEADER`] (Marathon and the master only).
    internal_token: Option<String>,
}

/// An upstream answer: status, headers we care about, parsed JSON body (if JSON).
struct Answer {
    status: StatusCode,
    body: Option<Value>,
    raw: String,
}

fn app_path(id: &str) -> String {
    let id = cosmos_render::labels::normalize_app_id(id);
    // keep '/' separators, encode the rest conservatively
    id.split('/')
        .map(|seg| crate::urls::encode_query_value(seg).replace('/', "%2F"))
        .collect::<Vec<_>>()
        .join("/")
}

impl Upstreams {
    /// Clients for `marathon_url` (e.g. `http://127.0.0.1:8080`) and `mesos_url`
    /// (e.g. `http://127.0.0.1:5050`).
    pub fn new(client: reqwest::Client, marathon_url: &str, mesos_url: &str) -> Self {
        Upstreams {
            client,
            marathon: marathon_url.trim_end_matches('/').to_string(),
            mesos: mesos_url.trim_end_matches('/').to_string(),
            user_agent: "cosmos/0.6.3".into(),
            internal_token: None,
        }
    }

    /// Sends `token` as [`dcos_types::INTERNAL_TOKEN_HEADER`] on every call to Marathon and
    /// the master (these clients talk to nothing else).
    pub fn with_internal_token(mut self, token: Option<String>) -> Self {
        self.internal_token = token.filter(|t| !t.is_empty());
        self
    }

    async fn call(
        &self,
        service: &str,
        method: Method,
        url: String,
        auth: Option<&str>,
        body: Option<&Value>,
        form: Option<String>,
    ) -> CosmosResult<Answer> {
        let mut req = self
            .client
            .request(method, &url)
            .timeout(Duration::from_secs(60))
            .header(reqwest::header::USER_AGENT, &self.user_agent)
            .header(reqwest::header::ACCEPT, "application/json;charset=utf-8");
        if let Some(a) = auth {
            req = req.header(reqwest::header::AUTHORIZATION, a);
        }
        if let Some(t) = &self.internal_token {
            req = req.header(dcos_types::INTERNAL_TOKEN_HEADER, t);
        }
        if let Some(b) = body {
            req = req
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/json;charset=utf-8",
                )
                .body(serde_json::to_vec(b).unwrap_or_default());
        } else if let Some(f) = form {
            req = req
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded; charset=utf-8",
                )
                .body(f);
        }
        let resp = req.send().await.map_err(|e| {
            tracing::warn!(service, url, error = %error_chain(&e), "upstream unavailable");
            CosmosError::service_unavailable(service)
        })?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED {
            let realm = resp
                .headers()
                .get(reqwest::header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            return Err(CosmosError::unauthorized(service, realm));
        }
        if status == StatusCode::FORBIDDEN {
            return Err(CosmosError::forbidden(service, None));
        }
        let is_json = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(crate::media::MediaType::parse)
            .is_some_and(|m| m.typ == "application" && m.subtype == "json");
        let mut bytes = Vec::new();
        let mut resp = resp;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|_| CosmosError::service_unavailable(service))?
        {
            if bytes.len() + chunk.len() > MAX_BODY {
                return Err(CosmosError::unhandled(format!(
                    "{service} response larger than {MAX_BODY} bytes"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        let raw = String::from_utf8_lossy(&bytes).into_owned();
        let body = if is_json {
            serde_json::from_slice(&bytes).ok()
        } else {
            None
        };
        Ok(Answer { status, body, raw })
    }

    fn require_json(service: &str, a: &Answer) -> CosmosResult<Value> {
        a.body.clone().ok_or_else(|| {
            CosmosError::unsupported_content_type(
                &["application/json".to_string()],
                Some(&format!("non-JSON answer from {service}")),
            )
        })
    }

    /// `POST /v2/apps`. 409 → `PackageAlreadyInstalled`; 4xx → `MarathonBadResponse` (or
    /// `MarathonGenericError` when the body is not `{message, details?}`); 5xx →
    /// `MarathonBadGateway`. Returns Marathon's answer.
    pub async fn create_app(&self, app: &Value, auth: Option<&str>) -> CosmosResult<Value> {
        let a = self
            .call(
                "marathon",
                Method::POST,
                format!("{}/v2/apps", self.marathon),
                auth,
                Some(app),
                None,
            )
            .await?;
        let code = a.status.as_u16();
        match code {
            200..=299 => Self::require_json("marathon", &a),
            409 => Err(CosmosError::package_already_installed()),
            400..=499 => match a
                .body
                .as_ref()
                .and_then(|b| b.get("message"))
                .and_then(Value::as_str)
            {
                Some(msg) => {
                    let data = a
                        .body
                        .as_ref()
                        .and_then(|b| b.get("details"))
                        .map(|d| json!({"errors": d}));
                    Err(CosmosError::new(
                        CosmosError::MarathonBadResponse,
                        msg,
                        data,
                    ))
                }
                None => Err(CosmosError::new(
                    CosmosError::MarathonGenericError,
                    format!("Received response status code {code} from Marathon"),
                    Some(json!({"marathonStatus": code, "status": 500})),
                )),
            },
            _ => Err(Self::bad_gateway(&a)),
        }
    }

    /// `MarathonBadGateway` (502) for a 5xx from Marathon. The message is Cosmos's
    /// `Received response status code N from Marathon`, followed by Marathon's own `message`
    /// when it sent one (a 503 says why: e.g. its store refused the write), so that the
    /// client sees the cause; `data.marathonMessage` carries it too.
    fn bad_gateway(a: &Answer) -> CosmosError {
        let code = a.status.as_u16();
        let cause = a
            .body
            .as_ref()
            .and_then(|b| b.get("message"))
            .and_then(Value::as_str)
            .map(|m| m.chars().take(1024).collect::<String>());
        let mut data = json!({"marathonStatus": code, "status": 502});
        let message = match &cause {
            Some(m) => {
                data["marathonMessage"] = json!(m);
                format!("Received response status code {code} from Marathon: {m}")
            }
            None => format!("Received response status code {code} from Marathon"),
        };
        CosmosError::new(CosmosError::MarathonBadGateway, message, Some(data))
    }

    /// `GET {marathon}{path}`: a 200 with a JSON body, else Cosmos's generic HTTP error.
    async fn marathon_get_json(&self, path: &str, auth: Option<&str>) -> CosmosResult<Value> {
        let url = format!("{}{path}", self.marathon);
        let a = self
            .call("marathon", Method::GET, url.clone(), auth, None, None)
            .await?;
        if a.status != StatusCode::OK {
            return Err(CosmosError::generic_http(
                "GET",
                &url,
                a.status.as_u16(),
                400,
            ));
        }
        Self::require_json("marathon", &a)
    }

    /// `GET /v2/apps` → the `apps` array.
    pub async fn list_apps(&self, auth: Option<&str>) -> CosmosResult<Vec<Value>> {
        let body = self.marathon_get_json("/v2/apps", auth).await?;
        Ok(body
            .get("apps")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    /// `GET /v2/apps/{id}` → the `app` object, `None` on 404.
    pub async fn get_app(&self, id: &str, auth: Option<&str>) -> CosmosResult<Option<Value>> {
        let url = format!("{}/v2/apps{}", self.marathon, app_path(id));
        let a = self
            .call("marathon", Method::GET, url.clone(), auth, None, None)
            .await?;
        match a.status {
            StatusCode::OK => {
                let body = Self::require_json("marathon", &a)?;
                Ok(body.get("app").cloned())
            }
            StatusCode::NOT_FOUND => Ok(None),
            s => Err(CosmosError::generic_http("GET", &url, s.as_u16(), 400)),
        }
    }

    /// `PUT /v2/apps/{id}?force=true&partialUpdate=false` → Marathon's `deploymentId`.
    /// Non-200 → 500 `unhandled_exception` (as Cosmos).
    pub async fn update_app(
        &self,
        id: &str,
        app: &Value,
        auth: Option<&str>,
    ) -> CosmosResult<String> {
        let url = format!(
            "{}/v2/apps{}?force=true&partialUpdate=false",
            self.marathon,
            app_path(id)
        );
        let a = self
            .call("marathon", Method::PUT, url, auth, Some(app), None)
            .await?;
        if a.status.is_server_error() {
            return Err(Self::bad_gateway(&a));
        }
        if a.status != StatusCode::OK {
            return Err(CosmosError::unhandled(format!(
                "Marathon answered {} to the app update: {}",
                a.status.as_u16(),
                a.raw.chars().take(512).collect::<String>()
            )));
        }
        let body = Self::require_json("marathon", &a)?;
        Ok(body
            .get("deploymentId")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string())
    }

    /// `PUT /v2/apps/{id}?force=true` of a raw app (SDK uninstall marker). Returns the deployment id.
    pub async fn put_app_forced(
        &self,
        id: &str,
        app: &Value,
        auth: Option<&str>,
    ) -> CosmosResult<Option<String>> {
        let url = format!("{}/v2/apps{}?force=true", self.marathon, app_path(id));
        let a = self
            .call("marathon", Method::PUT, url, auth, Some(app), None)
            .await?;
        if !a.status.is_success() {
            return Ok(None);
        }
        Ok(a.body
            .as_ref()
            .and_then(|b| b.get("deploymentId"))
            .and_then(Value::as_str)
            .map(str::to_string))
    }

    /// `DELETE /v2/apps/{id}[?force=true]`. Non-2xx → `MarathonAppDeleteError`.
    pub async fn delete_app(&self, id: &str, force: bool, auth: Option<&str>) -> CosmosResult<()> {
        let url = format!(
            "{}/v2/apps{}{}",
            self.marathon,
            app_path(id),
            if force { "?force=true" } else { "" }
        );
        let a = self
            .call("marathon", Method::DELETE, url, auth, None, None)
            .await?;
        if a.status.is_success() {
            Ok(())
        } else if a.status.is_server_error() {
            Err(Self::bad_gateway(&a))
        } else {
            Err(CosmosError::marathon_app_delete_error(
                &cosmos_render::labels::normalize_app_id(id),
            ))
        }
    }

    /// `GET /v2/deployments` → ids of running deployments.
    pub async fn deployment_ids(&self, auth: Option<&str>) -> CosmosResult<Vec<String>> {
        let body = self.marathon_get_json("/v2/deployments", auth).await?;
        Ok(body
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| d.get("id").and_then(Value::as_str).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Tears down the Mesos framework named `framework` (none → nothing; several →
    /// `MultipleFrameworkIds`; Mesos unreachable → `IncompleteUninstall`).
    pub async fn teardown_framework(
        &self,
        package: &str,
        version: Option<&str>,
        framework: &str,
        auth: Option<&str>,
    ) -> CosmosResult<()> {
        let unavailable = |e: CosmosError| {
            if matches!(e, CosmosError::ServiceUnavailable(_)) {
                CosmosError::incomplete_uninstall(package)
            } else {
                e
            }
        };
        let url = format!("{}/master/frameworks", self.mesos);
        let a = self
            .call("mesos", Method::GET, url.clone(), auth, None, None)
            .await
            .map_err(unavailable)?;
        if a.status != StatusCode::OK {
            return Err(CosmosError::generic_http(
                "GET",
                &url,
                a.status.as_u16(),
                400,
            ));
        }
        let body = Self::require_json("mesos", &a)?;
        let ids: Vec<String> = body
            .get("frameworks")
            .and_then(Value::as_array)
            .map(|fs| {
                fs.iter()
                    .filter(|f| f.get("name").and_then(Value::as_str) == Some(framework))
                    .filter_map(|f| f.get("id").and_then(Value::as_str).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        match ids.as_slice() {
            [] => Ok(()),
            [id] => {
                let url = format!("{}/master/teardown", self.mesos);
                let form = format!("frameworkId={}", crate::urls::encode_query_value(id));
                let a = self
                    .call("mesos", Method::POST, url.clone(), auth, None, Some(form))
                    .await
                    .map_err(unavailable)?;
                if a.status == StatusCode::OK {
                    Ok(())
                } else {
                    Err(CosmosError::generic_http(
                        "POST",
                        &url,
                        a.status.as_u16(),
                        400,
                    ))
                }
            }
            _ => Err(CosmosError::multiple_framework_ids(
                package, version, framework, &ids,
            )),
        }
    }
}
