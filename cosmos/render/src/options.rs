//! Package options: defaults from config.json, deep merge, draft-04 validation.

use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::{Map, Value};

/// One way the options violate the package's config schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// JSON pointer to the offending part of the options document (`""` = the whole document).
    pub pointer: String,
    /// Human-readable description.
    pub message: String,
    /// The schema keyword that failed (`type`, `required`, …; `schema` when the schema itself
    /// could not be compiled).
    pub keyword: String,
    /// JSON pointer into the schema, to the failing keyword.
    pub schema_pointer: String,
    /// Keyword-specific details in the shape of the json-schema-validator report that Cosmos
    /// returns (`found`/`expected` for `type`, `missing` for `required`, `unwanted` for
    /// `additionalProperties`, …). The DC/OS CLI prints these.
    pub details: Map<String, Value>,
}

impl Violation {
    /// The violation as a json-schema-validator (fge) report object, the element type of
    /// `JsonSchemaMismatch.data.errors`.
    pub fn to_report(&self) -> Value {
        let mut m = Map::new();
        m.insert("level".into(), "error".into());
        let mut schema = Map::new();
        schema.insert("loadingURI".into(), "#".into());
        schema.insert(
            "pointer".into(),
            Value::String(
                self.schema_pointer
                    .strip_suffix(&format!("/{}", self.keyword))
                    .unwrap_or(&self.schema_pointer)
                    .to_string(),
            ),
        );
        m.insert("schema".into(), Value::Object(schema));
        let mut instance = Map::new();
        instance.insert("pointer".into(), Value::String(self.pointer.clone()));
        m.insert("instance".into(), Value::Object(instance));
        m.insert("domain".into(), "validation".into());
        m.insert("keyword".into(), Value::String(self.keyword.clone()));
        m.insert("message".into(), Value::String(self.message.clone()));
        for (k, v) in &self.details {
            m.insert(k.clone(), v.clone());
        }
        Value::Object(m)
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(f, "{p}: {}", self.message)
    }
}

/// Default options of a config schema (Cosmos `JsonSchema.extractDefaultsFromSchema`): for each
/// property of `config.properties`, its `default` verbatim if present, else (if it has an object
/// `properties`) the defaults of its sub-properties, kept even when empty; else nothing.
/// `$ref`, `oneOf`, `allOf`, `dependencies`, `items` are not looked into. Always returns an object.
pub fn defaults(config_schema: &Value) -> Value {
    Value::Object(filter_defaults(config_schema.get("properties")))
}

fn filter_defaults(props: Option<&Value>) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(Value::Object(props)) = props else {
        return out;
    };
    for (name, sub) in props {
        let Value::Object(sub) = sub else { continue };
        if let Some(d) = sub.get("default") {
            out.insert(name.clone(), d.clone());
        } else if let Some(p @ Value::Object(_)) = sub.get("properties") {
            out.insert(name.clone(), Value::Object(filter_defaults(Some(p))));
        }
    }
    out
}

/// Deep merge (circe `deepMerge`): objects merge key by key recursively; anything else in `user`
/// (scalars, arrays, an explicit `null`) replaces what `defaults` had. Non-object `user` replaces
/// `defaults` entirely.
pub fn merge(defaults: &Value, user: &Value) -> Value {
    match (defaults, user) {
        (Value::Object(d), Value::Object(u)) => Value::Object(merge_maps(d.clone(), u)),
        _ => user.clone(),
    }
}

/// In-place form of [`merge`] for maps.
pub fn merge_maps(
    mut target: Map<String, Value>,
    fragment: &Map<String, Value>,
) -> Map<String, Value> {
    for (k, v) in fragment {
        match (target.get_mut(k), v) {
            (Some(Value::Object(t)), Value::Object(f)) => {
                let t = std::mem::take(t);
                target.insert(k.clone(), Value::Object(merge_maps(t, f)));
            }
            _ => {
                target.insert(k.clone(), v.clone());
            }
        }
    }
    target
}

/// A compiled draft-04 validator for one config schema. Compile once, validate many times.
pub struct OptionsValidator {
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for OptionsValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OptionsValidator")
    }
}

/// A config schema that cannot be compiled.
#[derive(Debug, Clone, thiserror::Error)]
#[error("config schema is not a valid draft-04 schema: {0}")]
pub struct SchemaError(pub String);

impl OptionsValidator {
    /// Compiles `schema` as JSON Schema draft 04 (unknown keywords such as `media` ignored,
    /// formats not asserted, no remote references).
    pub fn new(schema: &Value) -> Result<Self, SchemaError> {
        let validator = jsonschema::draft4::options()
            .should_validate_formats(false)
            .build(schema)
            .map_err(|e| SchemaError(e.to_string()))?;
        Ok(OptionsValidator { validator })
    }

    /// Validates `options`, returning every violation.
    pub fn validate(&self, options: &Value) -> Result<(), Vec<Violation>> {
        let violations: Vec<Violation> = self
            .validator
            .iter_errors(options)
            .map(|e| to_violation(&e))
            .collect();
        if violations.is_empty() {
            Ok(())
        } else {
            Err(violations)
        }
    }

    /// Whether `options` is valid (faster than [`OptionsValidator::validate`] on success).
    pub fn is_valid(&self, options: &Value) -> bool {
        self.validator.is_valid(options)
    }
}

/// Compiled validators shared by content: the same config.json (many package revisions share
/// theirs) is compiled once per process. Keyed by the schema's serialized bytes (hash first, then
/// exact comparison); cleared when it grows past a bound.
type CachedValidators = Vec<(Vec<u8>, std::sync::Arc<OptionsValidator>)>;

struct SchemaCache {
    map: std::collections::HashMap<u64, CachedValidators>,
    entries: usize,
}

const SCHEMA_CACHE_MAX: usize = 4096;

fn schema_cache() -> &'static std::sync::Mutex<SchemaCache> {
    static CACHE: std::sync::OnceLock<std::sync::Mutex<SchemaCache>> = std::sync::OnceLock::new();
    CACHE.get_or_init(|| {
        std::sync::Mutex::new(SchemaCache {
            map: std::collections::HashMap::new(),
            entries: 0,
        })
    })
}

/// The compiled validator for `schema`, compiling it only if this exact schema was not compiled
/// before in this process.
pub fn cached_validator(schema: &Value) -> Result<std::sync::Arc<OptionsValidator>, SchemaError> {
    use std::hash::{Hash as _, Hasher as _};
    let bytes = serde_json::to_vec(schema).unwrap_or_default();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    let key = h.finish();
    if let Ok(c) = schema_cache().lock() {
        if let Some(v) = c
            .map
            .get(&key)
            .and_then(|b| b.iter().find(|(k, _)| *k == bytes))
        {
            return Ok(v.1.clone());
        }
    }
    let v = std::sync::Arc::new(OptionsValidator::new(schema)?);
    if let Ok(mut c) = schema_cache().lock() {
        if c.entries >= SCHEMA_CACHE_MAX {
            c.map.clear();
            c.entries = 0;
        }
        c.map.entry(key).or_default().push((bytes, v.clone()));
        c.entries += 1;
    }
    Ok(v)
}

/// Validates `options` against the draft-04 `schema`, listing every violation. A schema that
/// does not compile gives one violation with keyword `schema`. Compiled validators are cached
/// by schema content ([`cached_validator`]).
pub fn validate(schema: &Value, options: &Value) -> Result<(), Vec<Violation>> {
    match cached_validator(schema) {
        Ok(v) => v.validate(options),
        Err(e) => Err(vec![Violation {
            pointer: String::new(),
            message: e.to_string(),
            keyword: "schema".into(),
            schema_pointer: String::new(),
            details: Map::new(),
        }]),
    }
}

fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn to_violation(e: &jsonschema::ValidationError<'_>) -> Violation {
    let kind = e.kind();
    let mut details = Map::new();
    let instance = e.instance();
    match kind {
        ValidationErrorKind::Type { kind } => {
            details.insert("found".into(), json_type_name(instance).into());
            let expected: Vec<Value> = match kind {
                TypeKind::Single(t) => vec![Value::String(t.to_string())],
                TypeKind::Multiple(set) => {
                    set.iter().map(|t| Value::String(t.to_string())).collect()
                }
            };
            details.insert("expected".into(), Value::Array(expected));
        }
        ValidationErrorKind::Required { property } => {
            details.insert("missing".into(), Value::Array(vec![property.clone()]));
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            details.insert(
                "unwanted".into(),
                Value::Array(unexpected.iter().cloned().map(Value::String).collect()),
            );
        }
        ValidationErrorKind::Minimum { limit } => {
            details.insert("minimum".into(), limit.clone());
            details.insert("found".into(), instance.as_ref().clone());
        }
        ValidationErrorKind::Maximum { limit } => {
            details.insert("maximum".into(), limit.clone());
            details.insert("found".into(), instance.as_ref().clone());
        }
        ValidationErrorKind::Enum { options } => {
            details.insert("enum".into(), options.as_ref().clone());
            details.insert("value".into(), instance.as_ref().clone());
        }
        ValidationErrorKind::Pattern { pattern } => {
            details.insert("regex".into(), Value::String(pattern.clone()));
            details.insert("string".into(), instance.as_ref().clone());
        }
        _ => {}
    }
    Violation {
        pointer: e.instance_path().as_str().to_string(),
        message: e.to_string(),
        keyword: kind.keyword().to_string(),
        schema_pointer: e.schema_path().as_str().to_string(),
        details,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_follow_cosmos() {
        let schema = json!({"properties": {
            "a": {"type": "integer", "default": 1},
            "b": {"type": "object", "properties": {"c": {"default": "x"}, "d": {"type": "string"}}},
            "e": {"type": "object", "properties": {"f": {"type": "string"}}},
            "g": {"type": "object", "default": {"z": 1}, "properties": {"h": {"default": 2}}},
            "i": {"type": "string"},
            "j": {"oneOf": [{"default": 3}]}
        }});
        assert_eq!(
            defaults(&schema),
            json!({"a": 1, "b": {"c": "x"}, "e": {}, "g": {"z": 1}})
        );
        assert_eq!(defaults(&json!({})), json!({}));
        assert_eq!(defaults(&json!({"properties": 3})), json!({}));
    }

    #[test]
    fn merge_is_deep_and_right_wins() {
        let d = json!({"a": {"b": 1, "c": [1, 2]}, "x": 1});
        let u = json!({"a": {"c": [3], "d": null}, "x": {"y": 2}});
        assert_eq!(
            merge(&d, &u),
            json!({"a": {"b": 1, "c": [3], "d": null}, "x": {"y": 2}})
        );
    }

    #[test]
    fn validate_lists_every_violation_with_pointers() {
        let schema = json!({"type": "object", "properties": {
            "port": {"type": "integer", "minimum": 1},
            "svc": {"type": "object", "required": ["name"], "additionalProperties": false,
                    "properties": {"name": {"type": "string"}}}
        }});
        let errs =
            validate(&schema, &json!({"port": "9999", "svc": {"extra": 1}})).expect_err("invalid");
        let mut pointers: Vec<_> = errs
            .iter()
            .map(|v| (v.pointer.as_str(), v.keyword.as_str()))
            .collect();
        pointers.sort();
        assert_eq!(
            pointers,
            vec![
                ("/port", "type"),
                ("/svc", "additionalProperties"),
                ("/svc", "required")
            ]
        );
        let ty = errs.iter().find(|v| v.keyword == "type").expect("type");
        assert_eq!(ty.details["found"], "string");
        assert_eq!(ty.details["expected"], json!(["integer"]));
        let rep = ty.to_report();
        assert_eq!(rep["instance"]["pointer"], "/port");
        assert_eq!(rep["schema"]["pointer"], "/properties/port");
        assert!(validate(&schema, &json!({"port": 2})).is_ok());
    }

    #[test]
    fn uncompilable_schema_is_a_violation() {
        let errs = validate(&json!({"type": 5}), &json!({})).expect_err("bad schema");
        assert_eq!(errs[0].keyword, "schema");
    }
}
