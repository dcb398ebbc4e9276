//! The upstream package validation (`scripts/validate_packages.py`) as data: every rule yields
//! [`Issue`]s that name the file, the JSON pointer and the rule, and nothing stops at the first
//! failure.
//!
//! Rules of one revision directory (see [`validate_revision`]):
//! * `json-syntax`: each `.json` file parses;
//! * `ascii-only`: each `.json` file is ASCII and, once parsed, has no character that Python's
//!   `json.dumps` would write as `\uXXXX` (DCOS-42473);
//! * `package-schema`: package.json against `package-schema.json`, using the branch of its
//!   packagingVersion so that errors point at the real field;
//! * `packaging-version`: packagingVersion is one of 2.0–5.0;
//! * `name-matches-folder` / `folder-name`: the package folder matches
//!   `^[a-z][a-z0-9-]*[a-z0-9]$` and equals `name`;
//! * `command-forbidden`: no command.json from packagingVersion 4.0 on;
//! * `command-schema`, `config-schema` (config.json must be a valid draft-04 schema),
//!   `resource-schema` (v2 schema for 2.0, else v3);
//! * `cli-needs-command`: a package for DC/OS < 1.8 with a binary CLI needs command.json;
//! * `template-syntax`: marathon.json.mustache parses as mustache and is UTF-8.

use std::path::Path;

use jsonschema::Validator;
use serde::Serialize;
use serde_json::{json, Value};

use crate::version::{LooseVersion, PackagingVersion};
use crate::Error;

/// How serious an issue is. Errors make `universe validate` fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    pub severity: Severity,
    /// Path of the file, relative to the repository root given to the validator.
    pub file: String,
    /// JSON pointer inside the file (`""` for the whole file).
    pub pointer: String,
    /// Short rule id (`package-schema`, `ascii-only`, …).
    pub rule: String,
    pub message: String,
}

impl Issue {
    pub fn error(file: &str, pointer: &str, rule: &str, message: impl Into<String>) -> Issue {
        Issue {
            severity: Severity::Error,
            file: file.to_string(),
            pointer: pointer.to_string(),
            rule: rule.to_string(),
            message: message.into(),
        }
    }

    pub fn warning(file: &str, pointer: &str, rule: &str, message: impl Into<String>) -> Issue {
        Issue {
            severity: Severity::Warning,
            ..Issue::error(file, pointer, rule, message)
        }
    }
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let ptr = if self.pointer.is_empty() { "" } else { "#" };
        write!(
            f,
            "{sev}[{}]: {}{ptr}{}: {}",
            self.rule, self.file, self.pointer, self.message
        )
    }
}

/// Compiled upstream schemas (`repo/meta/schema`).
pub struct Schemas {
    package: [Validator; 4],
    command: Validator,
    config: Validator,
    resource_v2: Validator,
    resource_v3: Validator,
    /// Index entry schemas (`vX-repo-definitions.json#/vNNPackage`), when loaded.
    index: Option<[Validator; 4]>,
}

/// Compiles a draft-04 schema the way upstream applies it (`Draft4Validator`, no format
/// checker, no network).
pub fn compile_draft4(schema: &Value) -> Result<Validator, String> {
    jsonschema::draft4::options()
        .should_validate_formats(false)
        .build(schema)
        .map_err(|e| e.to_string())
}

impl Schemas {
    /// Loads and compiles the schemas from a `repo/meta/schema` folder.
    pub fn load(dir: &Path) -> Result<Schemas, Error> {
        let read = |name: &str| -> Result<Value, Error> {
            let path = dir.join(name);
            let bytes = std::fs::read(&path).map_err(|source| Error::Io {
                path: path.display().to_string(),
                source,
            })?;
            serde_json::from_slice(&bytes).map_err(|e| Error::Schema {
                file: path.display().to_string(),
                message: e.to_string(),
            })
        };
        Schemas::from_values(
            &read("package-schema.json")?,
            &read("command-schema.json")?,
            &read("config-schema.json")?,
            &read("v2-resource-schema.json")?,
            &read("v3-resource-schema.json")?,
        )
    }

    /// Compiles schemas given as values.
    pub fn from_values(
        package: &Value,
        command: &Value,
        config: &Value,
        resource_v2: &Value,
        resource_v3: &Value,
    ) -> Result<Schemas, Error> {
        let compile = |file: &str, v: &Value| {
            compile_draft4(v).map_err(|message| Error::Schema {
                file: file.to_string(),
                message,
            })
        };
        let definitions = package.get("definitions").cloned().unwrap_or(json!({}));
        let branch = |pv: PackagingVersion| {
            let schema = json!({
                "definitions": definitions,
                "allOf": [{"$ref": format!("#/definitions/{}", pv.schema_definition())}],
            });
            compile("package-schema.json", &schema)
        };
        Ok(Schemas {
            package: [
                branch(PackagingVersion::V2)?,
                branch(PackagingVersion::V3)?,
                branch(PackagingVersion::V4)?,
                branch(PackagingVersion::V5)?,
            ],
            command: compile("command-schema.json", command)?,
            config: compile("config-schema.json", config)?,
            resource_v2: compile("v2-resource-schema.json", resource_v2)?,
            resource_v3: compile("v3-resource-schema.json", resource_v3)?,
            index: None,
        })
    }

    /// Adds the index-entry schemas from `vX-repo-definitions.json` (what upstream
    /// `gen_universe.py` validates each `repo-up-to-*.json` with).
    pub fn with_index_definitions(mut self, definitions: &Value) -> Result<Schemas, Error> {
        let branch = |pv: PackagingVersion| {
            let mut schema = definitions.clone();
            if let Value::Object(m) = &mut schema {
                m.insert(
                    "allOf".into(),
                    json!([{"$ref": format!("#/{}", pv.schema_definition())}]),
                );
            }
            compile_draft4(&schema).map_err(|message| Error::Schema {
                file: "vX-repo-definitions.json".into(),
                message,
            })
        };
        self.index = Some([
            branch(PackagingVersion::V2)?,
            branch(PackagingVersion::V3)?,
            branch(PackagingVersion::V4)?,
            branch(PackagingVersion::V5)?,
        ]);
        Ok(self)
    }

    /// Validates an assembled index entry (`index-schema`), if the index schemas are loaded.
    pub fn index_entry_issues(
        &self,
        entry: &Value,
        pv: PackagingVersion,
        file: &str,
    ) -> Vec<Issue> {
        let Some(index) = &self.index else {
            return Vec::new();
        };
        let v = match pv {
            PackagingVersion::V2 => &index[0],
            PackagingVersion::V3 => &index[1],
            PackagingVersion::V4 => &index[2],
            PackagingVersion::V5 => &index[3],
        };
        schema_issues(v, entry, file, "index-schema")
    }

    fn package_for(&self, pv: PackagingVersion) -> &Validator {
        match pv {
            PackagingVersion::V2 => &self.package[0],
            PackagingVersion::V3 => &self.package[1],
            PackagingVersion::V4 => &self.package[2],
            PackagingVersion::V5 => &self.package[3],
        }
    }
}

/// Validates `instance` with `validator`, one issue per error.
pub fn schema_issues(
    validator: &Validator,
    instance: &Value,
    file: &str,
    rule: &str,
) -> Vec<Issue> {
    validator
        .iter_errors(instance)
        .map(|e| {
            Issue::error(
                file,
                &e.instance_path().to_string(),
                rule,
                format!("{e} (schema {})", e.schema_path()),
            )
        })
        .collect()
}

/// `ascii-only` on raw bytes: the first non-ASCII byte, with its line and column.
pub fn ascii_issue(bytes: &[u8], file: &str) -> Option<Issue> {
    let pos = bytes.iter().position(|b| !b.is_ascii())?;
    let line = bytes[..pos].iter().filter(|b| **b == b'\n').count() + 1;
    let col = pos
        - bytes[..pos]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    Some(Issue::error(
        file,
        "",
        "ascii-only",
        format!(
            "non-ASCII byte 0x{:02x} at line {line}, column {col}; package files must be ASCII (Cosmos <= 0.6.2 reads them as ASCII)",
            bytes[pos]
        ),
    ))
}

fn needs_unicode_escape(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter().enumerate().any(|(i, &c)| {
        c >= 0x7f
            || (c < 0x20 && !matches!(c, 0x08 | 0x0c | b'\n' | b'\r' | b'\t'))
            || (c == b'\\'
                && b.get(i + 1) == Some(&b'u')
                && b.len() >= i + 6
                && b[i + 2..i + 6].iter().all(u8::is_ascii_hexdigit))
    })
}

fn escape_pointer_token(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// `ascii-only` on a parsed document: strings (or keys) that `json.dumps` would write with a
/// `\uXXXX` escape.
pub fn escaped_unicode_issues(value: &Value, file: &str) -> Vec<Issue> {
    fn walk(v: &Value, ptr: &mut String, file: &str, out: &mut Vec<Issue>) {
        match v {
            Value::String(s) if needs_unicode_escape(s) => out.push(Issue::error(
                file,
                ptr,
                "ascii-only",
                "string would be written with a \\uXXXX escape (control or non-ASCII character, or a literal `\\u` sequence)",
            )),
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    let len = ptr.len();
                    ptr.push('/');
                    ptr.push_str(&i.to_string());
                    walk(x, ptr, file, out);
                    ptr.truncate(len);
                }
            }
            Value::Object(m) => {
                for (k, x) in m {
                    let len = ptr.len();
                    ptr.push('/');
                    ptr.push_str(&escape_pointer_token(k));
                    if needs_unicode_escape(k) {
                        out.push(Issue::error(
                            file,
                            ptr,
                            "ascii-only",
                            "key would be written with a \\uXXXX escape",
                        ));
                    }
                    walk(x, ptr, file, out);
                    ptr.truncate(len);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, &mut String::new(), file, &mut out);
    out
}

/// Parses a JSON file and applies `ascii-only`; `None` when it does not parse.
pub fn parse_json_file(bytes: &[u8], file: &str, issues: &mut Vec<Issue>) -> Option<Value> {
    if let Some(i) = ascii_issue(bytes, file) {
        issues.push(i);
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => {
            issues.extend(escaped_unicode_issues(&v, file));
            Some(v)
        }
        Err(e) => {
            issues.push(Issue::error(
                file,
                "",
                "json-syntax",
                format!("invalid JSON: {e}"),
            ));
            None
        }
    }
}

fn folder_pattern_ok(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_lowercase()
        && b[b.len() - 1].is_ascii_lowercase() | b[b.len() - 1].is_ascii_digit()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// `^[A-Z]$` for letter folders.
pub fn letter_folder_ok(s: &str) -> bool {
    s.len() == 1 && s.as_bytes()[0].is_ascii_uppercase()
}

/// `^[a-z][a-z0-9-]*[a-z0-9]$` for package folders.
pub fn package_folder_ok(s: &str) -> bool {
    folder_pattern_ok(s)
}

/// The files of one revision directory, as bytes (`None` = absent).
#[derive(Debug, Default, Clone, Copy)]
pub struct RevisionFiles<'a> {
    /// Package folder name (`cassandra`).
    pub folder: &'a str,
    /// Path prefix used in issues (`repo/packages/C/cassandra/3`).
    pub dir: &'a str,
    /// The revision folder's number (the entry's `releaseVersion`).
    pub release_version: u64,
    pub package_json: Option<&'a [u8]>,
    pub config_json: Option<&'a [u8]>,
    pub resource_json: Option<&'a [u8]>,
    pub command_json: Option<&'a [u8]>,
    pub template: Option<&'a [u8]>,
}

/// What validating a revision produced: issues, and the parsed files for further checks.
#[derive(Debug, Default, Clone)]
pub struct RevisionReport {
    pub issues: Vec<Issue>,
    pub package: Option<Value>,
    pub packaging_version: Option<PackagingVersion>,
    pub config: Option<Value>,
    pub resource: Option<Value>,
    pub command: Option<Value>,
    pub template: Option<String>,
}

fn file_path(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Applies every upstream rule to one revision directory.
pub fn validate_revision(files: &RevisionFiles<'_>, schemas: Option<&Schemas>) -> RevisionReport {
    let mut r = RevisionReport::default();
    let pkg_file = file_path(files.dir, "package.json");

    // package.json
    match files.package_json {
        None => r.issues.push(Issue::error(
            &pkg_file,
            "",
            "package-json-required",
            "missing required package.json",
        )),
        Some(bytes) => r.package = parse_json_file(bytes, &pkg_file, &mut r.issues),
    }
    if !package_folder_ok(files.folder) {
        r.issues.push(Issue::error(
            files.dir,
            "",
            "folder-name",
            format!(
                "package folder {:?} does not match ^[a-z][a-z0-9-]*[a-z0-9]$",
                files.folder
            ),
        ));
    }
    let pv_str = match &r.package {
        Some(Value::Object(m)) => match m.get("packagingVersion") {
            None => Some("2.0".to_string()),
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                r.issues.push(Issue::error(
                    &pkg_file,
                    "/packagingVersion",
                    "packaging-version",
                    format!("packagingVersion must be a string, found {other}"),
                ));
                None
            }
        },
        Some(_) => {
            r.issues.push(Issue::error(
                &pkg_file,
                "",
                "package-schema",
                "package.json must be a JSON object",
            ));
            None
        }
        None => None,
    };
    if let Some(s) = &pv_str {
        match s.parse::<PackagingVersion>() {
            Ok(pv) => r.packaging_version = Some(pv),
            Err(e) => r.issues.push(Issue::error(
                &pkg_file,
                "/packagingVersion",
                "packaging-version",
                e.to_string(),
            )),
        }
    }
    if let Some(Value::Object(m)) = &r.package {
        match m.get("name") {
            Some(Value::String(name)) if name == files.folder => {}
            Some(Value::String(name)) => r.issues.push(Issue::error(
                &pkg_file,
                "/name",
                "name-matches-folder",
                format!(
                    "name {name:?} differs from the package folder {:?}",
                    files.folder
                ),
            )),
            _ => r.issues.push(Issue::error(
                &pkg_file,
                "/name",
                "name-matches-folder",
                "package.json has no string `name`",
            )),
        }
        if let (Some(s), Some(pv)) = (schemas, r.packaging_version) {
            let v = r.package.as_ref().unwrap_or(&Value::Null);
            r.issues.extend(schema_issues(
                s.package_for(pv),
                v,
                &pkg_file,
                "package-schema",
            ));
        }
    }

    // command.json
    if let Some(bytes) = files.command_json {
        let file = file_path(files.dir, "command.json");
        let forbidden = pv_str
            .as_deref()
            .is_some_and(|s| LooseVersion::new(s) >= LooseVersion::new("4.0"));
        if forbidden {
            r.issues.push(Issue::error(
                &file,
                "",
                "command-forbidden",
                "command.json is not supported from packagingVersion 4.0 on (use resource.json cli binaries)",
            ));
        } else if let Some(v) = parse_json_file(bytes, &file, &mut r.issues) {
            if let Some(s) = schemas {
                r.issues
                    .extend(schema_issues(&s.command, &v, &file, "command-schema"));
            }
            r.command = Some(v);
        }
    }

    // config.json
    if let Some(bytes) = files.config_json {
        let file = file_path(files.dir, "config.json");
        if let Some(v) = parse_json_file(bytes, &file, &mut r.issues) {
            if let Some(s) = schemas {
                r.issues
                    .extend(schema_issues(&s.config, &v, &file, "config-schema"));
            }
            r.config = Some(v);
        }
    }

    // marathon.json.mustache
    if let Some(bytes) = files.template {
        let file = file_path(files.dir, "marathon.json.mustache");
        match std::str::from_utf8(bytes) {
            Err(e) => r.issues.push(Issue::error(
                &file,
                "",
                "template-syntax",
                format!("not UTF-8: {e}"),
            )),
            Ok(t) => {
                if let Err(e) = crate::mustache::check(t) {
                    r.issues
                        .push(Issue::error(&file, "", "template-syntax", e.to_string()));
                }
                r.template = Some(t.to_string());
            }
        }
    }

    // resource.json
    if let Some(bytes) = files.resource_json {
        let file = file_path(files.dir, "resource.json");
        if let Some(v) = parse_json_file(bytes, &file, &mut r.issues) {
            if let Some(s) = schemas {
                let validator = if pv_str.as_deref() == Some("2.0") {
                    &s.resource_v2
                } else {
                    &s.resource_v3
                };
                r.issues
                    .extend(schema_issues(validator, &v, &file, "resource-schema"));
            }
            r.resource = Some(v);
        }
    }

    // The index entry the build makes of these files, against the repository schema.
    if let (Some(s), Some(Value::Object(pkg)), Some(pv)) =
        (schemas, &r.package, r.packaging_version)
    {
        if s.index.is_some() && r.issues.is_empty() {
            let entry = crate::package::assemble(
                pkg.clone(),
                files.release_version,
                r.resource.clone(),
                files.template,
                r.config.clone(),
                r.command.clone(),
            );
            let file = format!("{} (index entry)", files.dir);
            r.issues
                .extend(s.index_entry_issues(&Value::Object(entry), pv, &file));
        }
    }

    // A binary CLI for DC/OS < 1.8 would be lost in the conversion to older formats.
    if let Some(Value::Object(m)) = &r.package {
        let min = m
            .get("minDcosReleaseVersion")
            .and_then(Value::as_str)
            .unwrap_or("1.0");
        let old = LooseVersion::new(min) < LooseVersion::new("1.8");
        let has_cli = r
            .resource
            .as_ref()
            .is_some_and(|res| res.get("cli").is_some());
        if old && has_cli && files.command_json.is_none() {
            r.issues.push(Issue::error(
                &file_path(files.dir, "resource.json"),
                "/cli",
                "cli-needs-command",
                "a package with a CLI in resource.json needs minDcosReleaseVersion >= 1.8 (or a command.json)",
            ));
        }
    }
    r
}

/// Validator for a package's own config.json (used to check default options), compiled once
/// per config. Configs whose `$schema`/`id` upstream ignores are compiled as draft-04.
pub fn compile_config(config: &Value) -> Result<Validator, String> {
    compile_draft4(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schemas() -> Schemas {
        let package = json!({
            "definitions": {
                "v20Package": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
                "v30Package": {"type": "object", "properties": {"name": {"type": "string"}, "tags": {"type": "array"}}, "required": ["name", "tags"]},
                "v40Package": {"type": "object", "required": ["name"]},
                "v50Package": {"type": "object", "required": ["name"]}
            },
            "oneOf": [{"$ref": "#/definitions/v20Package"}]
        });
        let command = json!({"type": "object", "required": ["pip"]});
        let config =
            json!({"type": "object", "properties": {"required": {"type": "array", "minItems": 1}}});
        let r2 = json!({"type": "object", "properties": {"cli": {"not": {}}}});
        let r3 = json!({"type": "object"});
        Schemas::from_values(&package, &command, &config, &r2, &r3).unwrap()
    }

    fn rules(r: &RevisionReport) -> Vec<&str> {
        r.issues.iter().map(|i| i.rule.as_str()).collect()
    }

    #[test]
    fn good_revision_has_no_issues() {
        let s = schemas();
        let files = RevisionFiles {
            folder: "hello",
            dir: "H/hello/0",
            release_version: 0,
            package_json: Some(br#"{"packagingVersion":"3.0","name":"hello","tags":[],"minDcosReleaseVersion":"1.8"}"#),
            config_json: Some(br#"{"type":"object","properties":{"a":{"type":"string","default":"x"}}}"#),
            resource_json: Some(br#"{"cli":{}}"#),
            command_json: None,
            template: Some(b"{\"id\": \"{{a}}\"}"),
        };
        let r = validate_revision(&files, Some(&s));
        assert!(r.issues.is_empty(), "{:?}", r.issues);
        assert_eq!(r.packaging_version, Some(PackagingVersion::V3));
    }

    #[test]
    fn every_rule_reports_without_stopping() {
        let s = schemas();
        let files = RevisionFiles {
            folder: "Bad_Name",
            dir: "B/Bad_Name/0",
            release_version: 0,
            package_json: Some(
                br#"{"packagingVersion":"4.0","name":"other","tags":[1],"d":"\u00e9"}"#,
            ),
            config_json: Some(br#"{"required": true}"#),
            resource_json: Some(b"{\"cli\": {}, \"x\": \"\xc3\xa9\"}"),
            command_json: Some(br#"{"pip":[]}"#),
            template: Some(b"{{#a}}"),
        };
        let r = validate_revision(&files, Some(&s));
        let got = rules(&r);
        for want in [
            "folder-name",
            "name-matches-folder",
            "ascii-only",
            "command-forbidden",
            "config-schema",
            "template-syntax",
        ] {
            assert!(got.contains(&want), "missing {want} in {got:?}");
        }
        let cfg = r.issues.iter().find(|i| i.rule == "config-schema").unwrap();
        assert_eq!(cfg.pointer, "/required");
        assert!(cfg.file.ends_with("config.json"));
    }

    #[test]
    fn malformed_and_missing_files() {
        let files = RevisionFiles {
            folder: "hello",
            dir: "H/hello/0",
            package_json: None,
            config_json: Some(b"{"),
            resource_json: Some(b"[1,"),
            ..Default::default()
        };
        let r = validate_revision(&files, None);
        let got = rules(&r);
        assert!(got.contains(&"package-json-required"));
        assert_eq!(got.iter().filter(|r| **r == "json-syntax").count(), 2);
        let files = RevisionFiles {
            folder: "hello",
            dir: "",
            package_json: Some(br#"{"name":"hello","packagingVersion":"9.0"}"#),
            ..Default::default()
        };
        let r = validate_revision(&files, None);
        assert_eq!(rules(&r), ["packaging-version"]);
        let files = RevisionFiles {
            folder: "hello",
            package_json: Some(b"[]"),
            ..Default::default()
        };
        assert!(!validate_revision(&files, None).issues.is_empty());
    }

    #[test]
    fn index_entry_schema() {
        let defs = json!({
            "base64String": {"type": "string", "pattern": "^[A-Za-z0-9+/]*=*$"},
            "v30Package": {"type": "object", "required": ["releaseVersion"],
                "properties": {"releaseVersion": {"type": "integer", "minimum": 0},
                               "marathon": {"type": "object", "properties": {"v2AppMustacheTemplate": {"$ref": "#/base64String"}}}}},
            "v20Package": {}, "v40Package": {}, "v50Package": {}
        });
        let s = schemas().with_index_definitions(&defs).unwrap();
        let ok = json!({"releaseVersion": 3, "marathon": {"v2AppMustacheTemplate": "e30="}});
        assert!(s
            .index_entry_issues(&ok, PackagingVersion::V3, "x")
            .is_empty());
        let bad = json!({"releaseVersion": -1, "marathon": {"v2AppMustacheTemplate": "!!"}});
        let issues = s.index_entry_issues(&bad, PackagingVersion::V3, "x");
        let ptrs: Vec<_> = issues.iter().map(|i| i.pointer.as_str()).collect();
        assert!(
            ptrs.contains(&"/releaseVersion") && ptrs.contains(&"/marathon/v2AppMustacheTemplate"),
            "{issues:?}"
        );
        assert!(issues.iter().all(|i| i.rule == "index-schema"));
    }

    #[test]
    fn folder_patterns() {
        assert!(package_folder_ok("kafka"));
        assert!(package_folder_ok("beta-kafka2"));
        assert!(!package_folder_ok("k"));
        assert!(!package_folder_ok("kafka-"));
        assert!(!package_folder_ok("2kafka"));
        assert!(!package_folder_ok("Kafka"));
        assert!(letter_folder_ok("K"));
        assert!(!letter_folder_ok("KK"));
        assert!(!letter_folder_ok("k"));
    }

    #[test]
    fn escaped_unicode() {
        let v: Value = serde_json::from_str(
            r#"{"a":["ok","tab\tok","bell\u0007"],"b\u0001":"x","c":"lit\\u0041"}"#,
        )
        .unwrap();
        let ptrs: Vec<_> = escaped_unicode_issues(&v, "f")
            .into_iter()
            .map(|i| i.pointer)
            .collect();
        assert_eq!(ptrs, ["/a/2", "/b\u{1}", "/c"]);
    }
}
