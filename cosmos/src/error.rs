//! Cosmos errors: `{"type","message","data"?}` with the error media type (contract §2).
//!
//! [`CosmosError`] is an enum: the JSON `type` and the HTTP status of an answer follow from
//! its variant ([`CosmosError::type_name`], [`CosmosError::status`]); each variant carries the
//! `message` and `data` ([`Detail`]).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cosmos_render::RenderError;
use serde_json::{json, Map, Value};

use crate::media;

/// The `message` and `data` of an error answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Detail {
    /// The `message` field.
    pub message: String,
    /// The `data` field.
    pub data: Option<Box<Value>>,
}

impl Detail {
    /// A message with optional data.
    pub fn new(message: impl Into<String>, data: Option<Value>) -> Self {
        Detail {
            message: message.into(),
            data: data.map(Box::new),
        }
    }
}

macro_rules! cosmos_errors {
    ($($variant:ident => $ty:literal, $status:literal;)*) => {
        /// An error answered to the client. The variant decides the JSON `type` and the status.
        #[derive(Debug, Clone)]
        pub enum CosmosError {
            $(
                #[doc = concat!("`", $ty, "` (", stringify!($status), ")")]
                $variant(Detail),
            )*
            /// `Unauthorized` (401), with the `WWW-Authenticate` to forward.
            Unauthorized {
                /// message and data
                detail: Detail,
                /// `WWW-Authenticate` of the upstream answer.
                www_authenticate: Option<Box<str>>,
            },
            /// `UniverseClientHttpError`: 400 while adding a repository, 500 otherwise.
            UniverseClientHttpError {
                /// HTTP status answered.
                status: u16,
                /// message and data
                detail: Detail,
            },
            /// `GenericHttpError` with the status answered.
            GenericHttpError {
                /// HTTP status answered.
                status: u16,
                /// message and data
                detail: Detail,
            },
            /// A rendering failure: type, status, message and data are the render error's.
            Render(Box<RenderError>),
        }

        impl CosmosError {
            /// The JSON `type` field.
            pub fn type_name(&self) -> &'static str {
                match self {
                    $(CosmosError::$variant(_) => $ty,)*
                    CosmosError::Unauthorized { .. } => "Unauthorized",
                    CosmosError::UniverseClientHttpError { .. } => "UniverseClientHttpError",
                    CosmosError::GenericHttpError { .. } => "GenericHttpError",
                    CosmosError::Render(e) => e.cosmos_type(),
                }
            }

            /// The HTTP status.
            pub fn status(&self) -> u16 {
                match self {
                    $(CosmosError::$variant(_) => $status,)*
                    CosmosError::Unauthorized { .. } => 401,
                    CosmosError::UniverseClientHttpError { status, .. }
                    | CosmosError::GenericHttpError { status, .. } => *status,
                    CosmosError::Render(e) => e.http_status(),
                }
            }

            fn detail(&self) -> Option<&Detail> {
                match self {
                    $(CosmosError::$variant(d) => Some(d),)*
                    CosmosError::Unauthorized { detail, .. }
                    | CosmosError::UniverseClientHttpError { detail, .. }
                    | CosmosError::GenericHttpError { detail, .. } => Some(detail),
                    CosmosError::Render(_) => None,
                }
            }
        }
    };
}

cosmos_errors! {
    // framework errors
    NotPresent => "not_present", 400;
    NotValid => "not_valid", 400;
    NotParsed => "not_parsed", 400;
    MultipleErrors => "multiple_errors", 400;
    UnhandledException => "unhandled_exception", 500;
    ServiceUnavailable => "ServiceUnavailable", 503;
    Forbidden => "Forbidden", 403;
    // packages
    PackageNotFound => "PackageNotFound", 400;
    VersionNotFound => "VersionNotFound", 400;
    PackageNotInstalled => "PackageNotInstalled", 400;
    PackageAlreadyInstalled => "PackageAlreadyInstalled", 409;
    UninstallNonExistentAppForPackage => "UninstallNonExistentAppForPackage", 400;
    AmbiguousAppId => "AmbiguousAppId", 400;
    ServiceMarathonTemplateNotFound => "ServiceMarathonTemplateNotFound", 400;
    ConversionFromPackageToV2DescribeResponse => "ConversionFromPackageToV2DescribeResponse", 400;
    OptionsNotStored => "OptionsNotStored", 400;
    AppIdChanged => "AppIdChanged", 400;
    VersionUpgradeNotSupportedInOpen => "VersionUpgradeNotSupportedInOpen", 400;
    // Marathon and Mesos
    MarathonAppNotFound => "MarathonAppNotFound", 400;
    MarathonAppDeleteError => "MarathonAppDeleteError", 400;
    MarathonBadResponse => "MarathonBadResponse", 400;
    MarathonGenericError => "MarathonGenericError", 500;
    MarathonBadGateway => "MarathonBadGateway", 502;
    MultipleFrameworkIds => "MultipleFrameworkIds", 400;
    IncompleteUninstall => "IncompleteUninstall", 503;
    FailedToStartUninstall => "FailedToStartUninstall", 400;
    // custom package managers
    ServiceAlreadyStarted => "ServiceAlreadyStarted", 409;
    CustomPackageManagerNotFound => "CustomPackageManagerNotFound", 400;
    CustomPackageManagerError => "CustomPackageManagerError", 400;
    // repositories and resources
    ConcurrentAccess => "ConcurrentAccess", 400;
    RepositoryUriSyntax => "RepositoryUriSyntax", 400;
    RepositoryUriConnection => "RepositoryUriConnection", 400;
    UnsupportedRepositoryUri => "UnsupportedRepositoryUri", 400;
    RepositoryAlreadyPresent => "RepositoryAlreadyPresent", 400;
    RepositoryAddIndexOutOfBounds => "RepositoryAddIndexOutOfBounds", 400;
    RepositoryNotPresent => "RepositoryNotPresent", 400;
    RepoNameOrUriMissing => "RepoNameOrUriMissing", 400;
    EndpointUriConnection => "EndpointUriConnection", 502;
    // decoding
    JsonDecodingError => "JsonDecodingError", 400;
    JsonParsingError => "JsonParsingError", 400;
    UnsupportedContentType => "UnsupportedContentType", 400;
    UnsupportedContentEncoding => "UnsupportedContentEncoding", 400;
    UnsupportedRedirect => "UnsupportedRedirect", 400;
}

impl std::fmt::Display for CosmosError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.type_name(),
            self.status(),
            self.message()
        )
    }
}

impl std::error::Error for CosmosError {}

/// Result alias.
pub type CosmosResult<T> = Result<T, CosmosError>;

fn obj(v: Value) -> Option<Value> {
    Some(v)
}

impl CosmosError {
    /// An error of the variant `variant` (e.g. `CosmosError::RepositoryNotPresent`).
    pub fn new(
        variant: fn(Detail) -> Self,
        message: impl Into<String>,
        data: Option<Value>,
    ) -> Self {
        variant(Detail::new(message, data))
    }

    /// The `message` field.
    pub fn message(&self) -> String {
        match self {
            CosmosError::Render(e) => e.cosmos_message(),
            other => other
                .detail()
                .map(|d| d.message.clone())
                .unwrap_or_default(),
        }
    }

    /// The `data` field (before nulls are dropped).
    pub fn data(&self) -> Option<Value> {
        match self {
            CosmosError::Render(e) => e.cosmos_data(),
            other => other.detail().and_then(|d| d.data.as_deref().cloned()),
        }
    }

    /// The `WWW-Authenticate` header to forward (Unauthorized).
    pub fn www_authenticate(&self) -> Option<&str> {
        match self {
            CosmosError::Unauthorized {
                www_authenticate, ..
            } => www_authenticate.as_deref(),
            _ => None,
        }
    }

    /// The JSON body (nulls dropped).
    pub fn body(&self) -> Value {
        let mut m = Map::new();
        m.insert("type".into(), Value::String(self.type_name().to_string()));
        m.insert("message".into(), Value::String(self.message()));
        if let Some(d) = self.data() {
            m.insert("data".into(), cosmos_render::labels::drop_nulls(&d));
        }
        Value::Object(m)
    }

    // ---- framework errors --------------------------------------------------------------

    /// `not_present`: a required header or the body is missing.
    pub fn not_present_header(name: &str) -> Self {
        Self::new(
            Self::NotPresent,
            format!("Item header '{name}' not present but required"),
            None,
        )
    }

    /// `not_present` for the body.
    pub fn not_present_body() -> Self {
        Self::new(Self::NotPresent, "Item body not present but required", None)
    }

    /// `not_valid` for a header.
    pub fn not_valid_header(name: &str, rule: &str) -> Self {
        Self::new(
            Self::NotValid,
            format!("Item header '{name}' deemed invalid by rule: {rule}"),
            None,
        )
    }

    /// `not_parsed` for the body.
    pub fn not_parsed_body(msg: &str) -> Self {
        Self::new(
            Self::NotParsed,
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
                Self::MultipleErrors,
                "Multiple errors while processing request",
                obj(json!({"errors": errors.iter().map(CosmosError::body).collect::<Vec<_>>()})),
            )),
        }
    }

    /// A write the cluster store refused (a full disk, an I/O error): 503
    /// `ServiceUnavailable` (service `store`) naming the cause. Nothing was changed.
    pub fn store_refused(e: &dyn std::fmt::Display) -> Self {
        Self::new(
            Self::ServiceUnavailable,
            format!("the cluster store refused the write: {e}; nothing was changed"),
            obj(json!({"serviceName": "store", "status": 503})),
        )
    }

    /// A read of the cluster store failed: 503 `ServiceUnavailable` (service `store`).
    pub fn store_unreadable(e: &dyn std::fmt::Display) -> Self {
        Self::new(
            Self::ServiceUnavailable,
            format!("the cluster store could not be read: {e}"),
            obj(json!({"serviceName": "store", "status": 503})),
        )
    }

    /// `unhandled_exception` (500).
    pub fn unhandled(msg: impl Into<String>) -> Self {
        Self::new(Self::UnhandledException, msg, None)
    }

    // ---- domain errors -----------------------------------------------------------------

    /// `PackageNotFound`
    pub fn package_not_found(name: &str) -> Self {
        Self::new(
            Self::PackageNotFound,
            format!("Package [{name}] not found"),
            obj(json!({"packageName": name})),
        )
    }

    /// `VersionNotFound`
    pub fn version_not_found(name: &str, version: &str) -> Self {
        Self::new(
            Self::VersionNotFound,
            format!("Version [{version}] of package [{name}] not found"),
            obj(json!({"packageName": name, "packageVersion": version})),
        )
    }

    /// `PackageNotInstalled`
    pub fn package_not_installed(name: &str) -> Self {
        Self::new(
            Self::PackageNotInstalled,
            format!("Package [{name}] is not installed"),
            obj(json!({"packageName": name})),
        )
    }

    /// `UninstallNonExistentAppForPackage`
    pub fn uninstall_non_existent_app(name: &str, app_id: &str) -> Self {
        Self::new(
            Self::UninstallNonExistentAppForPackage,
            format!("Package [{name}] with id [{app_id}] is not installed"),
            obj(json!({"packageName": name, "appId": app_id})),
        )
    }

    /// `AmbiguousAppId`
    pub fn ambiguous_app_id(name: &str, app_ids: &[String]) -> Self {
        Self::new(
            Self::AmbiguousAppId,
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
            Self::ServiceMarathonTemplateNotFound,
            format!("Package: [{name}] version: [{version}] does not have a Marathon template defined and can not be rendered"),
            obj(json!({"packageName": name, "packageVersion": version})),
        )
    }

    /// `ConversionFromPackageToV2DescribeResponse`
    pub fn conversion_to_v2() -> Self {
        Self::new(
            Self::ConversionFromPackageToV2DescribeResponse,
            "A v4 package cannot be converted into a v2 DescribeResponse",
            None,
        )
    }

    /// `PackageAlreadyInstalled` (409)
    pub fn package_already_installed() -> Self {
        Self::new(
            Self::PackageAlreadyInstalled,
            "Package is already installed",
            None,
        )
    }

    /// `MarathonAppNotFound`
    pub fn marathon_app_not_found(app_id: &str) -> Self {
        Self::new(
            Self::MarathonAppNotFound,
            format!("Unable to locate service with marathon appId: '{app_id}'"),
            obj(json!({"appId": app_id})),
        )
    }

    /// `MarathonAppDeleteError`
    pub fn marathon_app_delete_error(app_id: &str) -> Self {
        Self::new(
            Self::MarathonAppDeleteError,
            format!("Error while deleting marathon app '{app_id}'"),
            obj(json!({"appId": app_id})),
        )
    }

    /// `ServiceUnavailable` (503)
    pub fn service_unavailable(service: &str) -> Self {
        Self::new(
            Self::ServiceUnavailable,
            format!("Unable to complete request due to service [{service}] unavailability"),
            obj(json!({"serviceName": service, "status": 503})),
        )
    }

    /// `Unauthorized` (401)
    pub fn unauthorized(service: &str, realm: Option<String>) -> Self {
        let detail = Detail::new(
            format!(
                "Unable to complete request due to Unauthorized response from service [{service}]"
            ),
            obj(json!({"serviceName": service, "realm": realm, "status": 401})),
        );
        CosmosError::Unauthorized {
            detail,
            www_authenticate: realm.map(String::into_boxed_str),
        }
    }

    /// `Forbidden` (403)
    pub fn forbidden(service: &str, destination: Option<&str>) -> Self {
        let msg = match destination {
            Some(d) => format!("Unable to complete request due to Forbidden response from service [{service}] while accessing{d}"),
            None => format!("Unable to complete request due to Forbidden response from service [{service}]"),
        };
        Self::new(
            Self::Forbidden,
            msg,
            obj(json!({"serviceName": service, "destination": destination, "status": 403})),
        )
    }

    /// `GenericHttpError`
    pub fn generic_http(method: &str, uri: &str, client_status: u16, status: u16) -> Self {
        CosmosError::GenericHttpError {
            status,
            detail: Detail::new(
                format!("Unexpected upstream http error: {method} {uri} {client_status}"),
                obj(
                    json!({"method": method, "uri": uri, "clientStatus": client_status, "status": status}),
                ),
            ),
        }
    }

    /// `OptionsNotStored`
    pub fn options_not_stored() -> Self {
        Self::new(
            Self::OptionsNotStored,
            "The options of the current service were not stored",
            None,
        )
    }

    /// `AppIdChanged`
    pub fn app_id_changed(new_id: &str, old_id: &str) -> Self {
        Self::new(
            Self::AppIdChanged,
            format!("The new appId {new_id} must be equal to the old appId {old_id}"),
            obj(json!({"newAppId": new_id, "oldAppId": old_id})),
        )
    }

    /// `VersionUpgradeNotSupportedInOpen`
    pub fn version_upgrade_not_supported(requested: Option<&str>, actual: &str) -> Self {
        Self::new(
            Self::VersionUpgradeNotSupportedInOpen,
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
            Self::MultipleFrameworkIds,
            format!("Uninstalled package [{name}] version [{}]\nUnable to shutdown [{name}] service framework with name [{framework}] because there are multiple framework ids matching this name: [{}]", version.unwrap_or(""), ids.join(", ")),
            obj(json!({"packageName": name, "packageVersion": version, "frameworkName": framework, "ids": ids})),
        )
    }

    /// `IncompleteUninstall` (503)
    pub fn incomplete_uninstall(name: &str) -> Self {
        Self::new(
            Self::IncompleteUninstall,
            format!("Incomplete uninstall of package [{name}] due to Mesos unavailability"),
            obj(json!({"packageName": name, "status": 503})),
        )
    }

    /// `FailedToStartUninstall`
    pub fn failed_to_start_uninstall(app_id: &str, explanation: &str) -> Self {
        Self::new(
            Self::FailedToStartUninstall,
            format!("Failed to start an uninstall for the service '{app_id}': {explanation}"),
            obj(json!({"appId": app_id, "explanation": explanation})),
        )
    }

    /// `ConcurrentAccess`
    pub fn concurrent_access() -> Self {
        Self::new(
            Self::ConcurrentAccess,
            "Retry operation. Operation didn't complete due to concurrent access.",
            None,
        )
    }

    /// `JsonDecodingError`
    pub fn json_decoding(type_name: &str, msg: &str, input: &str) -> Self {
        Self::new(
            Self::JsonDecodingError,
            format!("Unable to decode the JSON value as a {type_name}"),
            obj(json!({"typeName": type_name, "decodingErrorMessage": msg, "decodeInput": input})),
        )
    }

    /// `JsonParsingError`
    pub fn json_parsing(underlying: &str, msg: &str, input: &str) -> Self {
        Self::new(
            Self::JsonParsingError,
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
            Self::UnsupportedContentType,
            msg,
            obj(json!({"supported": supported, "actual": actual})),
        )
    }

    /// `UnsupportedContentEncoding`
    pub fn unsupported_content_encoding(actual: Option<&str>) -> Self {
        Self::new(
            Self::UnsupportedContentEncoding,
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
            Self::UnsupportedRedirect,
            format!(
                "Unsupported redirect scheme - supported: {} actual: {}",
                supported.join(","),
                actual.unwrap_or("")
            ),
            obj(json!({"supported": supported, "actual": actual})),
        )
    }
}

impl From<RenderError> for CosmosError {
    fn from(e: RenderError) -> Self {
        CosmosError::Render(Box::new(e))
    }
}

impl IntoResponse for CosmosError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut resp = (status, body).into_response();
        if let Ok(v) = HeaderValue::from_str(&media::error_type().to_string()) {
            resp.headers_mut()
                .insert(axum::http::header::CONTENT_TYPE, v);
        }
        if let Some(realm) = self.www_authenticate() {
            if let Ok(v) = HeaderValue::from_str(realm) {
                resp.headers_mut()
                    .insert(axum::http::header::WWW_AUTHENTICATE, v);
            }
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_and_status_follow_the_variant() {
        let e = CosmosError::package_already_installed();
        assert!(matches!(e, CosmosError::PackageAlreadyInstalled(_)));
        assert_eq!(
            (e.type_name(), e.status()),
            ("PackageAlreadyInstalled", 409)
        );
        assert_eq!(
            e.body(),
            json!({"type": "PackageAlreadyInstalled", "message": "Package is already installed"})
        );
        let e = CosmosError::generic_http("GET", "http://x", 404, 400);
        assert_eq!((e.type_name(), e.status()), ("GenericHttpError", 400));
        let e = CosmosError::unauthorized("marathon", Some("Basic".into()));
        assert_eq!((e.type_name(), e.status()), ("Unauthorized", 401));
        assert_eq!(e.www_authenticate(), Some("Basic"));
        assert_eq!(
            e.body()["data"],
            json!({"serviceName": "marathon", "realm": "Basic", "status": 401})
        );
        let e = CosmosError::from(RenderError::OptionsNotAllowed);
        assert_eq!((e.type_name(), e.status()), ("OptionsNotAllowed", 400));
        assert_eq!(
            e.to_string(),
            format!("OptionsNotAllowed (400): {}", e.message())
        );
    }
}
