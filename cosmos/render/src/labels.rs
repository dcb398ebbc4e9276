//! The `DCOS_PACKAGE_*` labels Cosmos writes on the apps it launches (contract §3.4), and their
//! readers.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{Map, Value};
use std::io::{Read as _, Write as _};

/// Label holding the package name.
pub const NAME: &str = "DCOS_PACKAGE_NAME";
/// Label holding the package version string.
pub const VERSION: &str = "DCOS_PACKAGE_VERSION";
/// Label holding the URI of the repository the package came from.
pub const SOURCE: &str = "DCOS_PACKAGE_SOURCE";
/// Label holding base64 of the user-supplied options.
pub const OPTIONS: &str = "DCOS_PACKAGE_OPTIONS";
/// Label holding base64 of the storage envelope of the package definition.
pub const DEFINITION: &str = "DCOS_PACKAGE_DEFINITION";
/// Label (set by templates) naming the Mesos framework to tear down on uninstall.
pub const FRAMEWORK_NAME: &str = "DCOS_PACKAGE_FRAMEWORK_NAME";
/// Label (set by SDK templates) asking for the SDK uninstall flow.
pub const COMMONS_UNINSTALL: &str = "DCOS_COMMONS_UNINSTALL";
/// Label (set by SDK templates) naming the SDK API version (default `v1`).
pub const COMMONS_API_VERSION: &str = "DCOS_COMMONS_API_VERSION";

/// The universe package media type for a packagingVersion (`"4.0"` →
/// `application/vnd.dcos.universe.package+json;charset=utf-8;version=v4`).
pub fn package_media_type(packaging_version: &str) -> String {
    let v = match packaging_version {
        "2.0" => "v2",
        "3.0" => "v3",
        "4.0" => "v4",
        "5.0" => "v5",
        other => {
            let major = other.split('.').next().unwrap_or("");
            return format!(
                "application/vnd.dcos.universe.package+json;charset=utf-8;version=v{major}"
            );
        }
    };
    format!("application/vnd.dcos.universe.package+json;charset=utf-8;version={v}")
}

/// Recursively drops `null`-valued object fields (circe `dropNullValues`).
pub fn drop_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), drop_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(drop_nulls).collect()),
        other => other.clone(),
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(
        Vec::with_capacity(bytes.len() / 3 + 64),
        Compression::default(),
    );
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

/// `DCOS_PACKAGE_DEFINITION`: base64 of the compact storage envelope
/// `{"metadata":{"Content-Type":<package media type>,"Content-Encoding":"gzip"},"data":<base64 gzip of the package JSON>}`.
pub fn encode_package_definition(package: &Value) -> String {
    match package {
        Value::Object(m) => encode_package_definition_map(m),
        other => encode_definition("2.0", &serde_json::to_vec(other).unwrap_or_default()),
    }
}

/// [`encode_package_definition`] of a package JSON object.
pub fn encode_package_definition_map(package: &Map<String, Value>) -> String {
    let pv = package
        .get("packagingVersion")
        .and_then(Value::as_str)
        .unwrap_or("2.0");
    encode_definition(pv, &serde_json::to_vec(package).unwrap_or_default())
}

fn encode_definition(packaging_version: &str, inner: &[u8]) -> String {
    let envelope = serde_json::json!({
        "metadata": {
            "Content-Type": package_media_type(packaging_version),
            "Content-Encoding": "gzip",
        },
        "data": B64.encode(gzip(inner)),
    });
    B64.encode(serde_json::to_vec(&envelope).unwrap_or_default())
}

/// A label that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("label {label} could not be decoded: {reason}")]
pub struct LabelError {
    /// Which label.
    pub label: &'static str,
    /// Why.
    pub reason: String,
}

fn label_err(label: &'static str, reason: impl Into<String>) -> LabelError {
    LabelError {
        label,
        reason: reason.into(),
    }
}

/// Reads a `DCOS_PACKAGE_DEFINITION` label: any of the four package media types, gzip or identity.
pub fn decode_package_definition(label: &str) -> Result<Value, LabelError> {
    let raw = B64
        .decode(label.trim())
        .map_err(|e| label_err(DEFINITION, format!("not base64: {e}")))?;
    let env: Value = serde_json::from_slice(&raw)
        .map_err(|e| label_err(DEFINITION, format!("envelope is not JSON: {e}")))?;
    let ct = env
        .pointer("/metadata/Content-Type")
        .and_then(Value::as_str)
        .ok_or_else(|| label_err(DEFINITION, "envelope has no metadata.Content-Type"))?;
    if !ct
        .to_ascii_lowercase()
        .starts_with("application/vnd.dcos.universe.package+json")
    {
        return Err(label_err(
            DEFINITION,
            format!("unsupported content type {ct}"),
        ));
    }
    let data = env
        .get("data")
        .and_then(Value::as_str)
        .ok_or_else(|| label_err(DEFINITION, "envelope has no data"))?;
    let bytes = B64
        .decode(data)
        .map_err(|e| label_err(DEFINITION, format!("data is not base64: {e}")))?;
    let bytes = match env
        .pointer("/metadata/Content-Encoding")
        .and_then(Value::as_str)
    {
        None => bytes,
        Some(enc) if enc.eq_ignore_ascii_case("gzip") => {
            let mut out = Vec::new();
            GzDecoder::new(bytes.as_slice())
                .take(64 << 20)
                .read_to_end(&mut out)
                .map_err(|e| label_err(DEFINITION, format!("data is not gzip: {e}")))?;
            out
        }
        Some(enc) => {
            return Err(label_err(DEFINITION, format!("unsupported encoding {enc}")));
        }
    };
    serde_json::from_slice(&bytes)
        .map_err(|e| label_err(DEFINITION, format!("package is not JSON: {e}")))
}

/// `DCOS_PACKAGE_OPTIONS`: base64 of the compact user options with nulls dropped (`e30=` for none).
pub fn encode_options(user_options: Option<&Value>) -> String {
    let v = match user_options {
        Some(v) => drop_nulls(v),
        None => Value::Object(Map::new()),
    };
    B64.encode(serde_json::to_vec(&v).unwrap_or_default())
}

/// Reads a `DCOS_PACKAGE_OPTIONS` label.
pub fn decode_options(label: &str) -> Result<Value, LabelError> {
    let raw = B64
        .decode(label.trim())
        .map_err(|e| label_err(OPTIONS, format!("not base64: {e}")))?;
    serde_json::from_slice(&raw).map_err(|e| label_err(OPTIONS, format!("not JSON: {e}")))
}

/// What the labels say about the package itself: its name, its version and its
/// `DCOS_PACKAGE_DEFINITION` label (already encoded: it is the costly part, so a caller that
/// renders a package version many times encodes it once).
#[derive(Debug, Clone, Copy)]
pub struct PackageIdentity<'a> {
    /// `DCOS_PACKAGE_NAME`
    pub name: &'a str,
    /// `DCOS_PACKAGE_VERSION`
    pub version: &'a str,
    /// `DCOS_PACKAGE_DEFINITION` ([`encode_package_definition`] of the package).
    pub definition: &'a str,
}

/// The five labels Cosmos writes.
pub fn cosmos_labels(
    package: &Value,
    source_uri: &str,
    user_options: Option<&Value>,
) -> Map<String, Value> {
    let definition = encode_package_definition(package);
    cosmos_labels_for(&identity_of(package, &definition), source_uri, user_options)
}

fn identity_of<'a>(package: &'a Value, definition: &'a str) -> PackageIdentity<'a> {
    let s = |k: &str| package.get(k).and_then(Value::as_str).unwrap_or("");
    PackageIdentity {
        name: s("name"),
        version: s("version"),
        definition,
    }
}

/// The five labels Cosmos writes, for a package whose definition label is already encoded.
pub fn cosmos_labels_for(
    package: &PackageIdentity<'_>,
    source_uri: &str,
    user_options: Option<&Value>,
) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(NAME.into(), Value::String(package.name.to_string()));
    m.insert(VERSION.into(), Value::String(package.version.to_string()));
    m.insert(SOURCE.into(), Value::String(source_uri.to_string()));
    m.insert(OPTIONS.into(), Value::String(encode_options(user_options)));
    m.insert(
        DEFINITION.into(),
        Value::String(package.definition.to_string()),
    );
    m
}

/// Normalizes an app id to start with `/`.
pub fn normalize_app_id(id: &str) -> String {
    if id.starts_with('/') {
        id.to_string()
    } else {
        format!("/{id}")
    }
}

/// Result = rendered ⊕ `{"id": appId}` (if given, normalized) ⊕ `{"labels": rendered labels}` ⊕
/// `{"labels": Cosmos labels}` — Cosmos labels win over template labels.
pub fn decorate(
    app: Map<String, Value>,
    package: &Value,
    source_uri: &str,
    user_options: Option<&Value>,
    app_id: Option<&str>,
) -> Map<String, Value> {
    let definition = encode_package_definition(package);
    decorate_for(
        app,
        &identity_of(package, &definition),
        source_uri,
        user_options,
        app_id,
    )
}

/// [`decorate`] for a package whose definition label is already encoded. This is what Cosmos
/// sends to Marathon on install and service update.
pub fn decorate_for(
    mut app: Map<String, Value>,
    package: &PackageIdentity<'_>,
    source_uri: &str,
    user_options: Option<&Value>,
    app_id: Option<&str>,
) -> Map<String, Value> {
    if let Some(id) = app_id {
        app.insert("id".into(), Value::String(normalize_app_id(id)));
    }
    let mut labels = match app.remove("labels") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    for (k, v) in cosmos_labels_for(package, source_uri, user_options) {
        labels.insert(k, v);
    }
    app.insert("labels".into(), Value::Object(labels));
    app
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn definition_round_trips() {
        let pkg = json!({"packagingVersion": "4.0", "name": "hello", "version": "0.4.2", "releaseVersion": 5});
        let label = encode_package_definition(&pkg);
        assert_eq!(decode_package_definition(&label), Ok(pkg));
        let env: Value = serde_json::from_slice(&B64.decode(&label).expect("b64")).expect("json");
        assert_eq!(
            env["metadata"]["Content-Type"],
            "application/vnd.dcos.universe.package+json;charset=utf-8;version=v4"
        );
        assert_eq!(env["metadata"]["Content-Encoding"], "gzip");
    }

    #[test]
    fn identity_encoded_definition_is_read() {
        let pkg = json!({"packagingVersion": "2.0", "name": "x"});
        let env = json!({"metadata": {"Content-Type": package_media_type("2.0")},
                         "data": B64.encode(serde_json::to_vec(&pkg).expect("json"))});
        let label = B64.encode(serde_json::to_vec(&env).expect("json"));
        assert_eq!(decode_package_definition(&label), Ok(pkg));
        assert!(decode_package_definition("!!").is_err());
    }

    #[test]
    fn options_label() {
        assert_eq!(encode_options(None), "e30=");
        assert_eq!(encode_options(Some(&json!({}))), "e30=");
        let l = encode_options(Some(&json!({"a": null, "b": {"c": null, "d": 1}})));
        assert_eq!(decode_options(&l), Ok(json!({"b": {"d": 1}})));
    }

    #[test]
    fn decorate_cosmos_labels_win() {
        let app = json!({"id": "x", "labels": {"DCOS_PACKAGE_NAME": "evil", "MINE": "1"}});
        let Value::Object(app) = app else {
            unreachable!()
        };
        let pkg = json!({"packagingVersion": "3.0", "name": "n", "version": "1"});
        let out = decorate(app, &pkg, "http://repo", None, Some("my-app"));
        assert_eq!(out["id"], "/my-app");
        assert_eq!(out["labels"]["DCOS_PACKAGE_NAME"], "n");
        assert_eq!(out["labels"]["MINE"], "1");
        assert_eq!(out["labels"]["DCOS_PACKAGE_SOURCE"], "http://repo");
        assert_eq!(out["labels"]["DCOS_PACKAGE_OPTIONS"], "e30=");
        assert_eq!(out["labels"].as_object().map(|m| m.len()), Some(6));
    }
}
