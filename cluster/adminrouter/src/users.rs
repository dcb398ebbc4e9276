//! `/acs/api/v1/users[/<uid>]`: local users, as DC/OS's IAM API (bouncer) serves them.
//!
//! * `GET /acs/api/v1/users` → `{"array": [{"uid", "description", "url", "is_remote",
//!   "is_service", "provider_type", "provider_id"}]}`
//! * `GET /acs/api/v1/users/<uid>` → one user, 404 if unknown
//! * `PUT /acs/api/v1/users/<uid>` `{"password", "description"?}` → 201; 409 if it exists
//! * `PATCH /acs/api/v1/users/<uid>` `{"password"?, "description"?}` → 204; a new password
//!   revokes the user's tokens
//! * `DELETE /acs/api/v1/users/<uid>` → 204; the user's tokens stop working
//!
//! A uid that cannot be one ([`crate::auth::validate_uid`]) is a 400 `ERR_INVALID_USER_ID`
//! naming the rule; it never reaches the store. Errors have the login errors' shape
//! `{"title", "description", "code"}`.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{hash_password, validate_uid, Auth, AuthError, User};
use crate::{json_response, Inner};

const MAX_BODY: usize = 64 * 1024;
const MIN_PASSWORD: usize = 8;
const MAX_PASSWORD: usize = 1024;

fn error(status: StatusCode, code: &str, description: impl Into<String>) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    json_response(
        status,
        json!({"title": title, "description": description.into(), "code": code}),
    )
}

fn method_not_allowed(allow: &'static str) -> Response {
    let mut r = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "ERR_METHOD_NOT_ALLOWED",
        format!("allowed methods: {allow}"),
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "user management failed");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "ERR_UNAVAILABLE",
        format!("the auth store failed: {e}"),
    )
}

fn user_json(uid: &str, description: &str) -> serde_json::Value {
    json!({
        "uid": uid,
        "description": description,
        "url": format!("/acs/api/v1/users/{uid}"),
        "is_remote": false,
        "is_service": false,
        "provider_type": "internal",
        "provider_id": "",
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody {
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

/// The 400 for a password out of bounds, if it is.
fn bad_password(p: &str) -> Option<Response> {
    let n = p.chars().count();
    (!(MIN_PASSWORD..=MAX_PASSWORD).contains(&n)).then(|| {
        error(
            StatusCode::BAD_REQUEST,
            "ERR_INVALID_DATA",
            format!("'password' must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long"),
        )
    })
}

async fn read_body(req: Request) -> Result<UserBody, Response> {
    let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY)
        .await
        .map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                "ERR_INVALID_DATA",
                format!("could not read the request body: {e}"),
            )
        })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(UserBody {
            password: None,
            description: None,
        });
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "ERR_INVALID_DATA",
            format!(
                "request body is not a valid user object ({{\"password\", \"description\"}}): {e}"
            ),
        )
    })
}

/// Runs a store/hashing job off the async threads, bounded like logins.
async fn blocking<T: Send + 'static>(
    inner: &Arc<Inner>,
    f: impl FnOnce(&Auth) -> T + Send + 'static,
) -> Result<T, Response> {
    let Ok(_permit) = inner.login_permits.acquire().await else {
        return Err(internal("shutting down"));
    };
    let auth = inner.auth.clone();
    tokio::task::spawn_blocking(move || f(&auth))
        .await
        .map_err(internal)
}

pub(crate) async fn handle(inner: &Arc<Inner>, uid: Option<String>, req: Request) -> Response {
    let Some(uid) = uid else {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return method_not_allowed("GET, HEAD");
        }
        return match blocking(inner, |a| {
            let uids = a.list_users()?;
            let mut out = Vec::with_capacity(uids.len());
            for u in uids {
                if let Some(user) = a.get_user(&u)? {
                    out.push(user_json(&user.uid, &user.description));
                }
            }
            Ok::<_, AuthError>(out)
        })
        .await
        {
            Ok(Ok(users)) => json_response(StatusCode::OK, json!({"array": users})),
            Ok(Err(e)) => internal(e),
            Err(r) => r,
        };
    };
    if let Err(e) = validate_uid(&uid) {
        return error(
            StatusCode::BAD_REQUEST,
            "ERR_INVALID_USER_ID",
            format!("Invalid user ID: {e}"),
        );
    }
    let method = req.method().clone();
    match method {
        Method::GET | Method::HEAD => {
            let u = uid.clone();
            match blocking(inner, move |a| a.get_user(&u)).await {
                Ok(Ok(Some(user))) => {
                    json_response(StatusCode::OK, user_json(&user.uid, &user.description))
                }
                Ok(Ok(None)) => unknown(&uid),
                Ok(Err(e)) => internal(e),
                Err(r) => r,
            }
        }
        Method::PUT => {
            let body = match read_body(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let Some(password) = body.password else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "ERR_INVALID_DATA",
                    "'password' is required to create a local user",
                );
            };
            if let Some(r) = bad_password(&password) {
                return r;
            }
            let description = body.description.unwrap_or_default();
            let u = uid.clone();
            let created = blocking(inner, move |a| {
                if a.get_user(&u)?.is_some() {
                    return Ok(false);
                }
                let password_hash = hash_password(&password, a.password_cost())?;
                a.put_user(&User {
                    uid: u,
                    password_hash,
                    description,
                })?;
                Ok::<_, AuthError>(true)
            })
            .await;
            match created {
                Ok(Ok(true)) => StatusCode::CREATED.into_response(),
                Ok(Ok(false)) => error(
                    StatusCode::CONFLICT,
                    "ERR_USER_EXISTS",
                    format!("User with uid `{uid}` already exists"),
                ),
                Ok(Err(e)) => internal(e),
                Err(r) => r,
            }
        }
        Method::PATCH => {
            let body = match read_body(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            if let Some(p) = &body.password {
                if let Some(r) = bad_password(p) {
                    return r;
                }
            }
            let u = uid.clone();
            let changed = blocking(inner, move |a| {
                let Some(mut user) = a.get_user(&u)? else {
                    return Ok(false);
                };
                if let Some(p) = body.password {
                    user.password_hash = hash_password(&p, a.password_cost())?;
                }
                if let Some(d) = body.description {
                    user.description = d;
                }
                a.put_user(&user)?;
                Ok::<_, AuthError>(true)
            })
            .await;
            match changed {
                Ok(Ok(true)) => StatusCode::NO_CONTENT.into_response(),
                Ok(Ok(false)) => unknown(&uid),
                Ok(Err(e)) => internal(e),
                Err(r) => r,
            }
        }
        Method::DELETE => {
            let u = uid.clone();
            match blocking(inner, move |a| a.delete_user(&u)).await {
                Ok(Ok(true)) => StatusCode::NO_CONTENT.into_response(),
                Ok(Ok(false)) => unknown(&uid),
                Ok(Err(e)) => internal(e),
                Err(r) => r,
            }
        }
        _ => method_not_allowed("GET, HEAD, PUT, PATCH, DELETE"),
    }
}

fn unknown(uid: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "ERR_UNKNOWN_USER_ID",
        format!("User with uid `{uid}` not known."),
    )
}
