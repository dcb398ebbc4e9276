//! Rendering for `universe validate`, through the Cosmos renderer (`cosmos-render`): default
//! options extracted as Cosmos does, validated against the package's own config.json, and the
//! Marathon template rendered with them must give a JSON object (with string labels).

use serde_json::Value;

/// Whether templates are really rendered.
pub const AVAILABLE: bool = true;
/// Name of the renderer, for reports.
pub const NAME: &str = "cosmos-render";

/// Cosmos' default options of a config schema (`extractDefaultsFromSchema`).
pub fn defaults(config: &Value) -> Value {
    cosmos_render::options::defaults(config)
}

/// Validates options against the config schema: `(pointer, message)` per violation, or an error
/// when the schema does not compile.
pub fn validate_options(config: &Value, options: &Value) -> Result<Vec<(String, String)>, String> {
    let validator = cosmos_render::OptionsValidator::new(config).map_err(|e| e.0)?;
    Ok(match validator.validate(options) {
        Ok(()) => Vec::new(),
        Err(violations) => violations
            .into_iter()
            .map(|v| (v.pointer, v.message))
            .collect(),
    })
}

/// Result of rendering one template with its defaults.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Rendered to a JSON object.
    Object,
    /// Not rendered.
    Skipped,
    /// Rendering failed or did not give a JSON object.
    Failed(String),
}

/// Renders `template` with `options` (already resolved, not re-validated) and the resource.
pub fn render(
    template: &str,
    config: Option<&Value>,
    resource: Option<&Value>,
    options: &Value,
) -> Outcome {
    let renderer = match cosmos_render::PackageRenderer::new(template, config, resource) {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(format!("the Cosmos renderer rejects the template: {e}")),
    };
    match renderer.render_resolved(options.clone()) {
        Ok(_) => Outcome::Object,
        Err(e) => {
            let detail = match &e {
                cosmos_render::RenderError::JsonParsingError { message, .. } => {
                    format!("rendered with the default options, the template is not valid JSON: {message}")
                }
                other => format!("rendered with the default options: {other}"),
            };
            Outcome::Failed(detail)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_like_cosmos() {
        let cfg = json!({"type":"object","properties":{
            "service":{"type":"object","properties":{
                "name":{"type":"string","default":"kafka"},
                "none":{"type":"string"},
                "nested":{"type":"object","properties":{"x":{"type":"integer"}}}}},
            "n":{"type":"number","default":0.5}}});
        assert_eq!(
            defaults(&cfg),
            json!({"service":{"name":"kafka","nested":{}},"n":0.5})
        );
    }

    #[test]
    fn options_validation() {
        let cfg =
            json!({"type":"object","properties":{"port":{"type":"integer"}},"required":["port"]});
        assert_eq!(validate_options(&cfg, &json!({})).unwrap().len(), 1);
        assert!(validate_options(&cfg, &json!({"port":1}))
            .unwrap()
            .is_empty());
        assert_eq!(
            validate_options(&cfg, &json!({"port":"x"})).unwrap()[0].0,
            "/port"
        );
    }

    #[test]
    fn rendering_outcomes() {
        let cfg = json!({"type":"object","properties":{"n":{"type":"integer","default":2},"s":{"type":"string"}}});
        let opts = defaults(&cfg);
        assert_eq!(
            render(r#"{"id":"a","instances":{{n}}}"#, Some(&cfg), None, &opts),
            Outcome::Object
        );
        assert!(
            matches!(render(r#"{"id":"a","x":{{s}}}"#, Some(&cfg), None, &opts), Outcome::Failed(m) if m.contains("not valid JSON"))
        );
        assert!(matches!(
            render(r#"[{{n}}]"#, Some(&cfg), None, &opts),
            Outcome::Failed(_)
        ));
        assert!(matches!(
            render(r#"{{#n}}"#, Some(&cfg), None, &opts),
            Outcome::Failed(_)
        ));
    }
}
