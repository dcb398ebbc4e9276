//! Package definitions (one entry of a repository index = package.json + releaseVersion +
//! resource.json + base64 Marathon template + config.json + command.json).
//!
//! [`PackageDefinition`] keeps the raw JSON object (key order and unknown fields intact, because
//! Cosmos echoes package JSON back to clients) and offers typed accessors. The typed models
//! ([`PackageMetadata`], [`Resource`], [`Command`], …) keep unknown fields in `extra` so they
//! round-trip losslessly as well.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::version::{LooseVersion, PackagingVersion};
use crate::Error;

/// A license entry of package.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct License {
    pub name: String,
    pub url: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The 5.0 `manager` field: the package that manages this one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manager {
    pub package_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_package_version: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The `marathon` field of an index entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Marathon {
    /// Standard base64 of the raw `marathon.json.mustache` bytes.
    pub v2_app_mustache_template: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// package.json of every packaging version (fields absent in a version are `None`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageMetadata {
    /// Missing means `"2.0"` (as upstream `validate_packages.py` assumes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packaging_version: Option<String>,
    pub name: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_version: Option<u64>,
    pub maintainer: String,
    pub description: String,
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_install_notes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_install_notes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_uninstall_notes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licenses: Option<Vec<License>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_dcos_release_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_known_issues: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrades_from: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downgrades_to: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager: Option<Manager>,
    /// Everything else (`resource`, `config`, `marathon`, `command` of an index entry, and any
    /// unknown field), in document order.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `resource.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Images>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assets: Option<Assets>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cli: Option<Cli>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Images {
    #[serde(
        rename = "icon-small",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub icon_small: Option<String>,
    #[serde(
        rename = "icon-medium",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub icon_medium: Option<String>,
    #[serde(
        rename = "icon-large",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub icon_large: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screenshots: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Assets {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uris: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Container {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<Map<String, Value>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cli {
    /// os (`linux`, `darwin`, `windows`) → arch (`x86-64`) → binary.
    #[serde(default)]
    pub binaries: std::collections::BTreeMap<String, std::collections::BTreeMap<String, CliBinary>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CliBinary {
    pub kind: String,
    pub url: String,
    #[serde(default)]
    pub content_hash: Vec<HashValue>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HashValue {
    pub algo: String,
    pub value: String,
}

/// `command.json` (packagingVersion 2.0/3.0 only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    pub pip: Vec<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One package version as found in a repository index.
#[derive(Debug, Clone, PartialEq)]
pub struct PackageDefinition {
    raw: Map<String, Value>,
    name: String,
    version: String,
    release_version: u64,
    packaging_version: PackagingVersion,
}

fn str_field<'a>(raw: &'a Map<String, Value>, field: &'static str) -> Result<&'a str, Error> {
    match raw.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(Error::WrongType {
            field,
            expected: "a string",
            found: type_name(other),
        }),
        None => Err(Error::MissingField(field)),
    }
}

/// A short name of a JSON value's type, for messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_u64() || n.is_i64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads `packagingVersion` (missing → 2.0).
pub fn packaging_version_of(raw: &Map<String, Value>) -> Result<PackagingVersion, Error> {
    match raw.get("packagingVersion") {
        None => Ok(PackagingVersion::V2),
        Some(Value::String(s)) => s.parse(),
        Some(other) => Err(Error::WrongType {
            field: "packagingVersion",
            expected: "a string",
            found: type_name(other),
        }),
    }
}

impl PackageDefinition {
    /// Checks the fields every index entry needs (`name`, `version`, `releaseVersion`, a known
    /// `packagingVersion`, a decodable Marathon template, object-typed `config`/`resource`/
    /// `command` when present) and wraps the object. Unknown fields are kept as they are.
    pub fn from_map(raw: Map<String, Value>) -> Result<Self, Error> {
        let packaging_version = packaging_version_of(&raw)?;
        let name = str_field(&raw, "name")?.to_string();
        let version = str_field(&raw, "version")?.to_string();
        let release_version = match raw.get("releaseVersion") {
            Some(Value::Number(n)) => n.as_u64().ok_or(Error::WrongType {
                field: "releaseVersion",
                expected: "a non-negative integer",
                found: "another number",
            })?,
            Some(other) => {
                return Err(Error::WrongType {
                    field: "releaseVersion",
                    expected: "a non-negative integer",
                    found: type_name(other),
                })
            }
            None => return Err(Error::MissingField("releaseVersion")),
        };
        for field in ["config", "resource", "command"] {
            if let Some(v) = raw.get(field) {
                if !v.is_object() {
                    return Err(Error::WrongType {
                        field: match field {
                            "config" => "config",
                            "resource" => "resource",
                            _ => "command",
                        },
                        expected: "an object",
                        found: type_name(v),
                    });
                }
            }
        }
        if let Some(v) = raw.get("minDcosReleaseVersion") {
            if !v.is_string() {
                return Err(Error::WrongType {
                    field: "minDcosReleaseVersion",
                    expected: "a string",
                    found: type_name(v),
                });
            }
        }
        let pkg = PackageDefinition {
            raw,
            name,
            version,
            release_version,
            packaging_version,
        };
        pkg.template_bytes()?;
        Ok(pkg)
    }

    /// Parses one index entry from JSON text.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        let raw: Map<String, Value> = serde_json::from_slice(bytes).map_err(Error::Json)?;
        Self::from_map(raw)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn release_version(&self) -> u64 {
        self.release_version
    }

    pub fn packaging_version(&self) -> PackagingVersion {
        self.packaging_version
    }

    pub fn min_dcos_release_version(&self) -> Option<&str> {
        self.raw
            .get("minDcosReleaseVersion")
            .and_then(Value::as_str)
    }

    /// Upstream `filter_by_version`: `LooseVersion(minDcosReleaseVersion or "0.0") <= dcos`.
    pub fn is_available_on(&self, dcos: &LooseVersion) -> bool {
        LooseVersion::new(self.min_dcos_release_version().unwrap_or("0.0")) <= *dcos
    }

    /// `selected` (default false).
    pub fn selected(&self) -> bool {
        self.raw
            .get("selected")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// `framework` (default false).
    pub fn framework(&self) -> bool {
        self.raw
            .get("framework")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    pub fn description(&self) -> Option<&str> {
        self.raw.get("description").and_then(Value::as_str)
    }

    pub fn tags(&self) -> Vec<&str> {
        self.raw
            .get("tags")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    /// The config JSON schema (config.json), if any.
    pub fn config(&self) -> Option<&Value> {
        self.raw.get("config")
    }

    /// The raw resource object, if any.
    pub fn resource(&self) -> Option<&Value> {
        self.raw.get("resource")
    }

    /// resource.json as a typed model.
    pub fn resource_typed(&self) -> Result<Option<Resource>, Error> {
        self.raw
            .get("resource")
            .map(|v| Resource::deserialize(v).map_err(Error::Json))
            .transpose()
    }

    /// The raw command object (2.0/3.0 only), if any.
    pub fn command(&self) -> Option<&Value> {
        self.raw.get("command")
    }

    /// package.json fields as a typed model (unknown fields in `extra`).
    pub fn metadata(&self) -> Result<PackageMetadata, Error> {
        PackageMetadata::deserialize(&Value::Object(self.raw.clone())).map_err(Error::Json)
    }

    fn template_bytes(&self) -> Result<Option<Vec<u8>>, Error> {
        let Some(marathon) = self.raw.get("marathon") else {
            return Ok(None);
        };
        let b64 = marathon
            .get("v2AppMustacheTemplate")
            .ok_or(Error::MissingField("marathon.v2AppMustacheTemplate"))?
            .as_str()
            .ok_or(Error::WrongType {
                field: "marathon.v2AppMustacheTemplate",
                expected: "a string",
                found: "another type",
            })?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| Error::Base64(e.to_string()))?;
        if std::str::from_utf8(&bytes).is_err() {
            return Err(Error::TemplateNotUtf8);
        }
        Ok(Some(bytes))
    }

    /// The base64 text of the Marathon template as stored in the index.
    pub fn marathon_template_base64(&self) -> Option<&str> {
        self.raw
            .get("marathon")?
            .get("v2AppMustacheTemplate")?
            .as_str()
    }

    /// The decoded Marathon template (`marathon.json.mustache`), if the package has one.
    /// Decoding was checked when the definition was created.
    pub fn marathon_template(&self) -> Option<String> {
        self.template_bytes()
            .ok()
            .flatten()
            .and_then(|b| String::from_utf8(b).ok())
    }

    /// The raw JSON object, exactly as loaded (key order and unknown fields kept).
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.raw
    }

    pub fn into_map(self) -> Map<String, Value> {
        self.raw
    }

    /// The package as JSON (a clone of the raw object).
    pub fn to_json(&self) -> Value {
        Value::Object(self.raw.clone())
    }

    /// Mutable access for conversions; header fields are re-read afterwards.
    pub fn map_raw(self, f: impl FnOnce(&mut Map<String, Value>)) -> Result<Self, Error> {
        let mut raw = self.raw;
        f(&mut raw);
        Self::from_map(raw)
    }
}

impl Serialize for PackageDefinition {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(s)
    }
}

impl<'de> Deserialize<'de> for PackageDefinition {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Map::<String, Value>::deserialize(d)?;
        PackageDefinition::from_map(raw).map_err(serde::de::Error::custom)
    }
}

/// The truthiness test the upstream build applies before inlining a file (`if resource:`):
/// empty objects, arrays and strings, `null`, `false` and zero are left out.
pub fn python_truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Assembles an index entry the way upstream `generate_package` does: package.json, then
/// `releaseVersion`, then `resource`, `marathon` (base64 template), `config`, `command`, each only
/// when present and non-empty.
pub fn assemble(
    mut package_json: Map<String, Value>,
    release_version: u64,
    resource: Option<Value>,
    marathon_template: Option<&[u8]>,
    config: Option<Value>,
    command: Option<Value>,
) -> Map<String, Value> {
    package_json.insert("releaseVersion".into(), Value::from(release_version));
    if let Some(r) = resource.filter(python_truthy) {
        package_json.insert("resource".into(), r);
    }
    if let Some(t) = marathon_template.filter(|t| !t.is_empty()) {
        let mut m = Map::new();
        m.insert(
            "v2AppMustacheTemplate".into(),
            Value::String(base64::engine::general_purpose::STANDARD.encode(t)),
        );
        package_json.insert("marathon".into(), Value::Object(m));
    }
    if let Some(c) = config.filter(python_truthy) {
        package_json.insert("config".into(), c);
    }
    if let Some(c) = command.filter(python_truthy) {
        package_json.insert("command".into(), c);
    }
    package_json
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn keeps_unknown_fields_and_order() {
        let text = br#"{"zeta":1,"packagingVersion":"4.0","name":"hello","version":"1.0","releaseVersion":3,"maintainer":"m","description":"d","tags":[],"unknownThing":{"a":[1,2]},"marathon":{"v2AppMustacheTemplate":"eyJpZCI6Int7bmFtZX19In0="}}"#;
        let p = PackageDefinition::from_slice(text).unwrap();
        assert_eq!(p.name(), "hello");
        assert_eq!(p.release_version(), 3);
        assert_eq!(p.packaging_version(), PackagingVersion::V4);
        assert_eq!(
            p.marathon_template().as_deref(),
            Some(r#"{"id":"{{name}}"}"#)
        );
        let out = serde_json::to_string(&p).unwrap();
        assert_eq!(out.as_bytes(), &text[..]);
        let meta = p.metadata().unwrap();
        assert_eq!(meta.extra.get("unknownThing"), Some(&json!({"a":[1,2]})));
        let back = serde_json::to_value(&meta).unwrap();
        assert_eq!(back, p.to_json());
    }

    #[test]
    fn rejects_bad_headers() {
        let bad = [
            json!({"name":"a","version":"1","releaseVersion":0,"packagingVersion":"6.0"}),
            json!({"name":"a","version":"1","releaseVersion":"0"}),
            json!({"name":"a","version":"1","releaseVersion":-1}),
            json!({"name":"a","releaseVersion":0}),
            json!({"name":1,"version":"1","releaseVersion":0}),
            json!({"name":"a","version":"1","releaseVersion":0,"config":[]}),
            json!({"name":"a","version":"1","releaseVersion":0,"marathon":{"v2AppMustacheTemplate":"!!"}}),
            json!({"name":"a","version":"1","releaseVersion":0,"marathon":{}}),
        ];
        for b in bad {
            let err = PackageDefinition::from_map(obj(b.clone()));
            assert!(err.is_err(), "{b} should fail");
            assert!(!err.unwrap_err().to_string().is_empty());
        }
    }

    #[test]
    fn assemble_like_upstream() {
        let m = assemble(
            obj(json!({"name":"a","version":"1"})),
            4,
            Some(json!({})),
            Some(b"{}"),
            Some(json!({"type":"object"})),
            None,
        );
        assert_eq!(
            Value::Object(m),
            json!({"name":"a","version":"1","releaseVersion":4,"marathon":{"v2AppMustacheTemplate":"e30="},"config":{"type":"object"}})
        );
    }

    #[test]
    fn typed_resource() {
        let p = PackageDefinition::from_map(obj(json!({
            "name":"a","version":"1","releaseVersion":0,"packagingVersion":"3.0",
            "resource":{"assets":{"uris":{"jre":"https://x/jre.tgz"}},
                        "cli":{"binaries":{"linux":{"x86-64":{"kind":"executable","url":"https://x/cli","contentHash":[{"algo":"sha256","value":"ab"}]}}}}}
        })))
        .unwrap();
        let r = p.resource_typed().unwrap().unwrap();
        let bin = &r.cli.unwrap().binaries["linux"]["x86-64"];
        assert_eq!(bin.content_hash[0].value, "ab");
        assert_eq!(
            r.assets.unwrap().uris.unwrap()["jre"],
            json!("https://x/jre.tgz")
        );
    }
}
