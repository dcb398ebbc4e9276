//! Cosmos errors: `{"type","message","data"?}` with the error media type (contract §2).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::media;

/// An error answered to the client. `kind` is the Cosmos error `type`.
#[derive(Debug, Clone, PartialEq)]
pub struct CosmosError {
    /// HTTP status.
    pub status: u16,
    /// The `type` field (`PackageNotFound`, `not_valid`, …).
    pub kind: &'static str,
    /// The `message` field.
    pub message: String,
    /// The `data` field.
    pub data: Option<Box<Value>>,
    /// `WWW-Authenticate` to forward (Unauthorized).
    pub www_authenticate: Option<Box<str>>,
}

impl std::fmt::Display for CosmosError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.kind, self.status, self.message)
    }
}

impl std::error::Error for CosmosError {}

/// Result alias.
pub type CosmosResult<T> = Result<T, CosmosError>;

fn obj(v: Value) -> Option<Value> {
    Some(v)
}

impl CosmosError {
    /// A generic constructor.
    pub fn new(
        status: u16,
        kind: &'static str,
        message: impl Into<String>,
        data: Option<Value>,
    ) -> Self {
        CosmosError {
            status,
            kind,
            message: message.into(),
            data: data.map(Box::new),
            www_authenticate: None,
        }
    }

    /// The JSON body (nulls dropped).
    pub fn body(&self) -> Value {
        let mut m = Map::new();
        m.insert("type".into(), Value::String(self.kind.to_string()));
        m.insert("message".into(), Value::String(self.message.clone()));
        if let Some(d) = &self.data {
            m.insert("data".into(), cosmos_render::labels::drop_nulls(d));
        }
        Value::Object(m)
    }

    // ---- framework errors --------------------------------------------------------------

    /// `not_present`: a required header or the body is missing.
    pub fn not_present_header(name: &str) -> Self {
        Self::new(
            400,
            "not_present",
            format!("Item header '{name}' not present but required"),
            None,
        )
    }

    /// `not_present` for the body.
    pub fn not_present_body() -> Self {
        Self::new(
            400,
            "not_present",
            "Item body not present but required",
            None,
        )
    }

    /// `not_valid` for a header.
    pub fn not_valid_header(name: &str, rule: &str) -> Self {
        Self::new(
            400,
            "not_valid",
            format!("Item header '{name}' deemed invalid by rule: {rule}"),
            None,
        )
    }

    /// `not_parsed` for the body.
    pub fn not_parsed_body(msg: &str) -> Self {
        Self::new(
            400,
            "not_parsed",
            format!("Item 'body' unable to be parsed: {msg}"),
            None,
        )
    }

    /// Combines request-validation errors (one → itself, several → `multiple_errors`).
    pub fn combine(mut errors: Vec<CosmosError>) -> Option<Self> {
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            _ => Some(Self::new(
                400,
                "multiple_errors",
                "Multiple errors while processing request",
                obj(json!({"errors": errors.iter().map(CosmosError::body).collect::<Vec<_>>()})),
            )),
        }
    }

    /// A write the cluster store refused (a full disk, an I/O error): 503
    /// `ServiceUnavailable` (service `store`) naming the cause. Nothing was changed.
    pub fn store_refused(e: &dyn std::fmt::Display) -> Self {
        Self::new(
            503,
            "ServiceUnavailable",
            format!("the cluster store refused the write: {e}; nothing was changed"),
            obj(json!({"serviceName": "store", "status": 503})),
        )
    }

    /// A read of the cluster store failed: 503 `ServiceUnavailable` (service `store`).
    pub fn store_unreadable(e: &dyn std::fmt::Display) -> Self {
        Self::new(
            503,
            "ServiceUnavailable",
            format!("the cluster store could not be read: {e}"),
            obj(json!({"serviceName": "store", "status": 503})),
        )
    }

    /// `unhandled_exception` (500).
    pub fn unhandled(msg: impl Into<String>) -> Self {
        Self::new(500, "unhandled_exception", msg, None)
    }

    // ---- domain errors -----------------------------------------------------------------

    /// `PackageNotFound`
    pub fn package_not_found(name: &str) -> Self {
        Self::new(
            400,
            "PackageNotFound",
            format!("Package [{name}] not found"),
            obj(json!({"packageName": name})),
        )
    }

    /// `VersionNotFound`
    pub fn version_not_found(name: &str, version: &str) -> Self {
        Self::new(
            400,
            "VersionNotFound",
            format!("Version [{version}] of package [{name}] not found"),
            obj(json!({"packageName": name, "packageVersion": version})),
        )
    }

    /// `PackageNotInstalled`
    pub fn package_not_installed(name: &str) -> Self {
        Self::new(
            400,
            "PackageNotInstalled",
            format!("Package [{name}] is not installed"),
            obj(json!({"packageName": name})),
        )
    }

    /// `UninstallNonExistentAppForPackage`
    pub fn uninstall_non_existent_app(name: &str, app_id: &str) -> Self {
        Self::new(
            400,
            "UninstallNonExistentAppForPackage",
            format!("Package [{name}] with id [{app_id}] is not installed"),
            obj(json!({"packageName": name, "appId": app_id})),
        )
    }

    /// `AmbiguousAppId`
    pub fn ambiguous_app_id(name: &str, app_ids: &[String]) -> Self {
        Self::new(
            400,
            "AmbiguousAppId",
            format!(
                "Multiple apps named [{name}] are installed: [{}]",
                app_ids.join(", ")
            ),
            obj(json!({"packageName": name, "appIds": app_ids})),
        )
    }

    /// `ServiceMarathonTemplateNotFound`
    pub fn template_not_found(name: &str, version: &str) -> Self {
        Self::new(
            400,
            "ServiceMarathonTemplateNotFound",
            format!("Package: [{name}] version: [{version}] does not have a Marathon template defined and can not be rendered"),
            obj(json!({"packageName": name, "packageVersion": version})),
        )
    }

    /// `ConversionFromPackageToV2DescribeResponse`
    pub fn conversion_to_v2() -> Self {
        Self::new(
            400,
            "ConversionFromPackageToV2DescribeResponse",
            "A v4 package cannot be converted into a v2 DescribeResponse",
            None,
        )
    }

    /// `PackageAlreadyInstalled` (409)
    pub fn package_already_installed() -> Self {
        Self::new(
            409,
            "PackageAlreadyInstalled",
            "Package is already installed",
            None,
        )
    }

    /// `MarathonAppNotFound`
    pub fn marathon_app_not_found(app_id: &str) -> Self {
        Self::new(
            400,
            "MarathonAppNotFound",
            format!("Unable to locate service with marathon appId: '{app_id}'"),
            obj(json!({"appId": app_id})),
        )
    }

    /// `MarathonAppDeleteError`
    pub fn marathon_app_delete_error(app_id: &str) -> Self {
        Self::new(
            400,
            "MarathonAppDeleteError",
            format!("Error while deleting marathon app '{app_id}'"),
            obj(json!({"appId": app_id})),
        )
    }

    /// `ServiceUnavailable` (503)
    pub fn service_unavailable(service: &str) -> Self {
        Self::new(
            503,
            "ServiceUnavailable",
            format!("Unable to complete request due to service [{service}] unavailability"),
            obj(json!({"serviceName": service, "status": 503})),
        )
    }

    /// `Unauthorized` (401)
    pub fn unauthorized(service: &str, realm: Option<String>) -> Self {
        let mut e = Self::new(
            401,
            "Unauthorized",
            format!(
                "Unable to complete request due to Unauthorized response from service [{service}]"
            ),
            obj(json!({"serviceName": service, "realm": realm, "status": 401})),
        );
        e.www_authenticate = realm.map(String::into_boxed_str);
        e
    }

    /// `Forbidden` (403)
    pub fn forbidden(service: &str, destination: Option<&str>) -> Self {
        let msg = match destination {
            Some(d) => format!("Unable to complete request due to Forbidden response from service [{service}] while accessing{d}"),
            None => format!("Unable to complete request due to Forbidden response from service [{service}]"),
        };
        Self::new(
            403,
            "Forbidden",
            msg,
            obj(json!({"serviceName": service, "destination": destination, "status": 403})),
        )
    }

    /// `GenericHttpError`
    pub fn generic_http(method: &str, uri: &str, client_status: u16, status: u16) -> Self {
        Self::new(
            status,
            "GenericHttpError",
            format!("Unexpected upstream http error: {method} {uri} {client_status}"),
            obj(
                json!({"method": method, "uri": uri, "clientStatus": client_status, "status": status}),
            ),
        )
    }

    /// `OptionsNotStored`
    pub fn options_not_stored() -> Self {
        Self::new(
            400,
            "OptionsNotStored",
            "The options of the current service were not stored",
            None,
        )
    }

    /// `AppIdChanged`
    pub fn app_id_changed(new_id: &str, old_id: &str) -> Self {
        Self::new(
            400,
            "AppIdChanged",
            format!("The new appId {new_id} must be equal to the old appId {old_id}"),
            obj(json!({"newAppId": new_id, "oldAppId": old_id})),
        )
    }

    /// `VersionUpgradeNotSupportedInOpen`
    pub fn version_upgrade_not_supported(requested: Option<&str>, actual: &str) -> Self {
        Self::new(
            400,
            "VersionUpgradeNotSupportedInOpen",
            "Version Upgrades are an Enterprise DC/OS feature only",
            obj(json!({"requested": requested, "actual": actual})),
        )
    }

    /// `MultipleFrameworkIds`
    pub fn multiple_framework_ids(
        name: &str,
        version: Option<&str>,
        framework: &str,
        ids: &[String],
    ) -> Self {
        Self::new(
            400,
            "MultipleFrameworkIds",
            format!("Uninstalled package [{name}] version [{}]\nUnable to shutdown [{name}] service framework with name [{framework}] because there are multiple framework ids matching this name: [{}]", version.unwrap_or(""), ids.join(", ")),
            obj(json!({"packageName": name, "packageVersion": version, "frameworkName": framework, "ids": ids})),
        )
    }

    /// `IncompleteUninstall` (503)
    pub fn incomplete_uninstall(name: &str) -> Self {
        Self::new(
            503,
            "IncompleteUninstall",
            format!("Incomplete uninstall of package [{name}] due to Mesos unavailability"),
            obj(json!({"packageName": name, "status": 503})),
        )
    }

    /// `FailedToStartUninstall`
    pub fn failed_to_start_uninstall(app_id: &str, explanation: &str) -> Self {
        Self::new(
            400,
            "FailedToStartUninstall",
            format!("Failed to start an uninstall for the service '{app_id}': {explanation}"),
            obj(json!({"appId": app_id, "explanation": explanation})),
        )
    }

    /// `ConcurrentAccess`
    pub fn concurrent_access() -> Self {
        Self::new(
            400,
            "ConcurrentAccess",
            "Retry operation. Operation didn't complete due to concurrent access.",
            None,
        )
    }

    /// `JsonDecodingError`
    pub fn json_decoding(type_name: &str, msg: &str, input: &str) -> Self {
        Self::new(
            400,
            "JsonDecodingError",
            format!("Unable to decode the JSON value as a {type_name}"),
            obj(json!({"typeName": type_name, "decodingErrorMessage": msg, "decodeInput": input})),
        )
    }

    /// `JsonParsingError`
    pub fn json_parsing(underlying: &str, msg: &str, input: &str) -> Self {
        Self::new(
            400,
            "JsonParsingError",
            "Unable to parse the string as a JSON value",
            obj(
                json!({"underlyingType": underlying, "parsingErrorMessage": msg, "parsingInput": input}),
            ),
        )
    }

    /// `UnsupportedContentType`
    pub fn unsupported_content_type(supported: &[String], actual: Option<&str>) -> Self {
        let msg = match actual {
            Some(a) => format!(
                "Unsupported Content-Type: {a} Accept: {}",
                supported.join(",")
            ),
            None => format!("Unspecified Content-Type Accept: {}", supported.join(",")),
        };
        Self::new(
            400,
            "UnsupportedContentType",
            msg,
            obj(json!({"supported": supported, "actual": actual})),
        )
    }

    /// `UnsupportedContentEncoding`
    pub fn unsupported_content_encoding(actual: Option<&str>) -> Self {
        Self::new(
            400,
            "UnsupportedContentEncoding",
            format!(
                "Unsupported Content-Encoding: {} Accept-Encoding: gzip",
                actual.unwrap_or("")
            ),
            obj(json!({"supported": ["gzip"], "actual": actual})),
        )
    }

    /// `UnsupportedRedirect`
    pub fn unsupported_redirect(supported: &[String], actual: Option<&str>) -> Self {
        Self::new(
            400,
            "UnsupportedRedirect",
            format!(
                "Unsupported redirect scheme - supported: {} actual: {}",
                supported.join(","),
                actual.unwrap_or("")
            ),
            obj(json!({"supported": supported, "actual": actual})),
        )
    }
}

impl From<cosmos_render::RenderError> for CosmosError {
    fn from(e: cosmos_render::RenderError) -> Self {
        CosmosError::new(
            e.http_status(),
            e.cosmos_type(),
            e.cosmos_message(),
            e.cosmos_data(),
        )
    }
}

impl IntoResponse for CosmosError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut resp = (status, body).into_response();
        if let Ok(v) = HeaderValue::from_str(&media::error_type().to_string()) {
            resp.headers_mut()
                .insert(axum::http::header::CONTENT_TYPE, v);
        }
        if let Some(realm) = &self.www_authenticate {
            if let Ok(v) = HeaderValue::from_str(realm) {
                resp.headers_mut()
                    .insert(axum::http::header::WWW_AUTHENTICATE, v);
            }
        }
        resp
    }
}
