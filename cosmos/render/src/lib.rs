//! Cosmos rendering rules: how a Universe package plus user options becomes a Marathon app.
//!
//! * [`options`]: defaults from config.json, deep merge, draft-04 validation.
//! * [`mustache`]: a mustache engine with the mustache.java rules Cosmos uses.
//! * [`labels`]: the `DCOS_PACKAGE_*` labels.
//! * [`render_app`] / [`PackageRenderer`]: the whole pipeline (contract cosmos-api.md §3).

mod json;
pub mod labels;
pub mod mustache;
pub mod options;

use base64::Engine as _;
use serde_json::{Map, Value};
use std::sync::OnceLock;

pub use labels::decorate;
pub use options::{OptionsValidator, Violation};

/// Why a package could not be rendered. Each variant corresponds to a Cosmos error type
/// ([`RenderError::cosmos_type`]).
#[derive(Debug, Clone, thiserror::Error)]
pub enum RenderError {
    /// Options were given (or defaulted) but the package has no config schema.
    #[error("No schema available to validate the provided options")]
    OptionsNotAllowed,
    /// The merged options violate the config schema; every violation is listed.
    #[error("Options JSON failed validation: {}", display_violations(.violations))]
    JsonSchemaMismatch {
        /// All violations, with JSON pointers.
        violations: Vec<Violation>,
    },
    /// The template is not valid mustache.
    #[error("Marathon template is not a valid mustache template: {0}")]
    TemplateSyntax(#[from] mustache::TemplateError),
    /// The template bytes are not base64 / UTF-8.
    #[error("Marathon template could not be decoded: {0}")]
    TemplateEncoding(String),
    /// The rendered text is not JSON.
    #[error("Unable to parse the string as a JSON value: {message}")]
    JsonParsingError {
        /// The parser's message (with line and column).
        message: String,
        /// The rendered text.
        input: String,
    },
    /// The rendered JSON is not an object.
    #[error("Rendered Marathon JSON must be a JSON object")]
    NotJsonObject,
    /// The rendered `labels` is not a map of strings.
    #[error("Unable to decode the JSON value as a scala.collection.immutable.Map: {message}")]
    LabelsNotStringMap {
        /// What is wrong.
        message: String,
        /// The offending `labels` value, as JSON text.
        input: String,
    },
}

fn display_violations(v: &[Violation]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl RenderError {
    /// The Cosmos error `type` (cosmos-api.md §2.2).
    pub fn cosmos_type(&self) -> &'static str {
        match self {
            RenderError::OptionsNotAllowed => "OptionsNotAllowed",
            RenderError::JsonSchemaMismatch { .. } => "JsonSchemaMismatch",
            RenderError::TemplateSyntax(_) | RenderError::TemplateEncoding(_) => {
                "unhandled_exception"
            }
            RenderError::JsonParsingError { .. } => "JsonParsingError",
            RenderError::NotJsonObject => "MarathonTemplateMustBeJsonObject$",
            RenderError::LabelsNotStringMap { .. } => "JsonDecodingError",
        }
    }

    /// HTTP status Cosmos answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            RenderError::TemplateSyntax(_) | RenderError::TemplateEncoding(_) => 500,
            _ => 400,
        }
    }

    /// The Cosmos error `message`.
    pub fn cosmos_message(&self) -> String {
        match self {
            RenderError::JsonSchemaMismatch { .. } => "Options JSON failed validation".into(),
            RenderError::JsonParsingError { .. } => {
                "Unable to parse the string as a JSON value".into()
            }
            RenderError::LabelsNotStringMap { .. } => {
                "Unable to decode the JSON value as a scala.collection.immutable.Map".into()
            }
            other => other.to_string(),
        }
    }

    /// The Cosmos error `data`, if the error type has any.
    pub fn cosmos_data(&self) -> Option<Value> {
        match self {
            RenderError::JsonSchemaMismatch { violations } => Some(serde_json::json!({
                "errors": violations.iter().map(Violation::to_report).collect::<Vec<_>>()
            })),
            RenderError::JsonParsingError { message, input } => Some(serde_json::json!({
                "underlyingType": "ParseException",
                "parsingErrorMessage": message,
                "parsingInput": input,
            })),
            RenderError::LabelsNotStringMap { message, input } => Some(serde_json::json!({
                "typeName": "scala.collection.immutable.Map",
                "decodingErrorMessage": message,
                "decodeInput": input,
            })),
            _ => None,
        }
    }
}

/// Decodes `marathon.v2AppMustacheTemplate` (base64 of UTF-8 text).
pub fn decode_template(v2_app_mustache_template: &str) -> Result<String, RenderError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(v2_app_mustache_template.trim())
        .map_err(|e| RenderError::TemplateEncoding(format!("not base64: {e}")))?;
    String::from_utf8(bytes).map_err(|e| RenderError::TemplateEncoding(format!("not UTF-8: {e}")))
}

/// A package prepared for rendering: template parsed, defaults extracted, validator compiled on
/// first use. Cheap to render many times (Cosmos caches one per package version).
#[derive(Debug)]
pub struct PackageRenderer {
    template: mustache::Template,
    config: Option<Value>,
    defaults: Value,
    resource: Option<Value>,
    validator: OnceLock<Result<std::sync::Arc<OptionsValidator>, options::SchemaError>>,
    /// defaults ⊕ resource, compiled on first use (the context of a render without user
    /// options).
    default_context: OnceLock<mustache::Context>,
}

impl PackageRenderer {
    /// Prepares a package. Fails only on a template that is not valid mustache.
    pub fn new(
        template: &str,
        config: Option<&Value>,
        resource: Option<&Value>,
    ) -> Result<Self, RenderError> {
        let template = mustache::Template::parse(template)?;
        let defaults = config
            .map(options::defaults)
            .unwrap_or_else(|| Value::Object(Map::new()));
        Ok(PackageRenderer {
            template,
            config: config.cloned(),
            defaults,
            resource: resource.cloned(),
            validator: OnceLock::new(),
            default_context: OnceLock::new(),
        })
    }

    /// The default options of the package's config.
    pub fn defaults(&self) -> &Value {
        &self.defaults
    }

    /// Merges `user_options` over the defaults and validates the result (contract §3.1).
    pub fn resolve_options(&self, user_options: Option<&Value>) -> Result<Value, RenderError> {
        let merged = match user_options {
            None => self.defaults.clone(),
            Some(u @ Value::Object(_)) => options::merge(&self.defaults, u),
            Some(other) => {
                return Err(RenderError::JsonSchemaMismatch {
                    violations: vec![Violation {
                        pointer: String::new(),
                        message: format!("options must be a JSON object, got {other}"),
                        keyword: "type".into(),
                        schema_pointer: "/type".into(),
                        details: Map::new(),
                    }],
                })
            }
        };
        self.check_options(&merged)?;
        Ok(merged)
    }

    /// Validates merged options (nothing to do when they are empty).
    fn check_options(&self, merged: &Value) -> Result<(), RenderError> {
        let empty = merged.as_object().is_none_or(Map::is_empty);
        if empty {
            return Ok(());
        }
        let Some(config) = &self.config else {
            return Err(RenderError::OptionsNotAllowed);
        };
        let validator = self
            .validator
            .get_or_init(|| options::cached_validator(config));
        match validator {
            Ok(v) => {
                if v.is_valid(merged) {
                    Ok(())
                } else {
                    v.validate(merged)
                        .map_err(|violations| RenderError::JsonSchemaMismatch { violations })
                }
            }
            Err(e) => Err(RenderError::JsonSchemaMismatch {
                violations: vec![Violation {
                    pointer: String::new(),
                    message: e.to_string(),
                    keyword: "schema".into(),
                    schema_pointer: String::new(),
                    details: Map::new(),
                }],
            }),
        }
    }

    /// The full pipeline without the `DCOS_PACKAGE_*` labels: resolve options, render, parse,
    /// check the object and its labels.
    pub fn render(&self, user_options: Option<&Value>) -> Result<Map<String, Value>, RenderError> {
        let no_user_options = match user_options {
            None => true,
            Some(Value::Object(m)) => m.is_empty(),
            Some(_) => false,
        };
        if no_user_options {
            // Same pipeline, without copying the defaults for every render.
            self.check_options(&self.defaults)?;
            let context = self
                .default_context
                .get_or_init(|| mustache::Context::new(&self.context_for(self.defaults.clone())));
            return render_and_parse(&self.template, context);
        }
        let merged = self.resolve_options(user_options)?;
        self.render_resolved(merged)
    }

    /// Renders already-resolved options (no validation).
    pub fn render_resolved(&self, merged: Value) -> Result<Map<String, Value>, RenderError> {
        let context = mustache::Context::new(&self.context_for(merged));
        render_and_parse(&self.template, &context)
    }

    /// merged ⊕ `{"resource": resource}`.
    fn context_for(&self, merged: Value) -> Value {
        match (&self.resource, merged) {
            (Some(res), Value::Object(mut m)) => {
                let r = match m.remove("resource") {
                    Some(existing) => options::merge(&existing, res),
                    None => res.clone(),
                };
                m.insert("resource".into(), r);
                Value::Object(m)
            }
            (_, merged) => merged,
        }
    }
}

/// Output buffers kept per thread: rendered text is parsed straight from here, so a render
/// allocates nothing for its text.
const KEPT_BUFFER_MAX: usize = 1 << 20;

thread_local! {
    static RENDER_BUFFER: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Renders `template` into the thread's buffer and parses the text.
fn render_and_parse(
    template: &mustache::Template,
    context: &mustache::Context,
) -> Result<Map<String, Value>, RenderError> {
    RENDER_BUFFER.with(|buf| match buf.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            template.render_context_into(context, &mut buf);
            let result = parse_rendered_str(&buf);
            if buf.capacity() > KEPT_BUFFER_MAX {
                *buf = String::new();
            }
            result
        }
        Err(_) => parse_rendered(template.render_context(context)),
    })
}

/// Parses rendered template text as a Marathon app: strict JSON, an object, labels a string map.
pub fn parse_rendered(text: String) -> Result<Map<String, Value>, RenderError> {
    parse_rendered_str(&text)
}

/// [`parse_rendered`] from a borrowed text.
pub fn parse_rendered_str(text: &str) -> Result<Map<String, Value>, RenderError> {
    let parsed = match json::parse(text) {
        Some(v) => Ok(v),
        None => serde_json::from_str(text),
    };
    let v: Value = match parsed {
        Ok(v) => v,
        Err(e) => {
            return Err(RenderError::JsonParsingError {
                message: e.to_string(),
                input: text.to_owned(),
            })
        }
    };
    let Value::Object(m) = v else {
        return Err(RenderError::NotJsonObject);
    };
    match m.get("labels") {
        None => {}
        Some(Value::Object(l)) => {
            if let Some((k, bad)) = l.iter().find(|(_, v)| !v.is_string()) {
                return Err(RenderError::LabelsNotStringMap {
                    message: format!("label '{k}' is not a string: {bad}"),
                    input: Value::Object(l.clone()).to_string(),
                });
            }
        }
        Some(other) => {
            return Err(RenderError::LabelsNotStringMap {
                message: "labels is not a JSON object".into(),
                input: other.to_string(),
            })
        }
    }
    Ok(m)
}

/// Renders a Marathon template the way Cosmos does (contract §3.1–3.3, without the
/// `DCOS_PACKAGE_*` labels — add them with [`decorate`]):
/// defaults of `config` deep-merged with `user_options`, validated against `config` (draft 04)
/// unless empty, context = merged ⊕ `{"resource": resource}`, rendered under the mustache.java
/// rules, parsed as a JSON object whose `labels` are strings.
pub fn render_app(
    template: &str,
    config: Option<&Value>,
    resource: Option<&Value>,
    user_options: Option<&Value>,
) -> Result<Map<String, Value>, RenderError> {
    PackageRenderer::new(template, config, resource)?.render(user_options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pipeline_merges_validates_and_renders() {
        let config = json!({"type": "object", "properties": {
            "port": {"type": "integer", "default": 8080},
            "name": {"type": "string", "default": "hello"}
        }});
        let resource = json!({"assets": {"container": {"docker": {"img": "python:3"}}}});
        let t = r#"{"id": "{{name}}", "port": {{port}}, "image": "{{resource.assets.container.docker.img}}"}"#;
        let app = render_app(t, Some(&config), Some(&resource), Some(&json!({"port": 9})))
            .expect("render");
        assert_eq!(
            Value::Object(app),
            json!({"id": "hello", "port": 9, "image": "python:3"})
        );
        let e = render_app(
            t,
            Some(&config),
            Some(&resource),
            Some(&json!({"port": "9"})),
        )
        .expect_err("bad");
        assert_eq!(e.cosmos_type(), "JsonSchemaMismatch");
        let data = e.cosmos_data().expect("data");
        assert_eq!(data["errors"][0]["instance"]["pointer"], "/port");
    }

    #[test]
    fn options_without_config_are_rejected() {
        let e = render_app("{}", None, None, Some(&json!({"a": 1}))).expect_err("no schema");
        assert_eq!(e.cosmos_type(), "OptionsNotAllowed");
        assert!(render_app("{}", None, None, Some(&json!({}))).is_ok());
    }

    #[test]
    fn non_json_non_object_and_bad_labels() {
        let e = render_app("{\"a\": {{x}}}", None, None, None).expect_err("empty value");
        assert_eq!(e.cosmos_type(), "JsonParsingError");
        assert!(e.cosmos_data().expect("data")["parsingInput"] == "{\"a\": }");
        let e = render_app("[1]", None, None, None).expect_err("array");
        assert_eq!(e.cosmos_type(), "MarathonTemplateMustBeJsonObject$");
        let e = render_app("{\"labels\": {\"a\": 1}}", None, None, None).expect_err("labels");
        assert_eq!(e.cosmos_type(), "JsonDecodingError");
        let e = render_app("{{#a}}", None, None, None).expect_err("syntax");
        assert_eq!(e.http_status(), 500);
        let e = render_app("{} {}", None, None, None).expect_err("trailing");
        assert_eq!(e.cosmos_type(), "JsonParsingError");
        let e = render_app("{\"a\": NaN}", None, None, None).expect_err("nan");
        assert_eq!(e.cosmos_type(), "JsonParsingError");
    }

    #[test]
    fn resource_overrides_option_named_resource_and_duplicates_keep_last() {
        let config = json!({"properties": {"resource": {"properties": {"cpus": {"default": 1}}}}});
        let resource = json!({"assets": {"uris": {"u": "http://x"}}});
        let t = r#"{"cpus": {{resource.cpus}}, "u": "{{resource.assets.uris.u}}", "u": "{{resource.assets.uris.u}}!"}"#;
        let app = render_app(t, Some(&config), Some(&resource), None).expect("render");
        assert_eq!(Value::Object(app), json!({"cpus": 1, "u": "http://x!"}));
    }
}
