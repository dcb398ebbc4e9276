//! Conformance against ../shared/reference/expected-renders.jsonl (the Python model of the
//! Cosmos rules run over ../shared/universe-corpus). Skipped with a message when ../shared is absent.

use cosmos_render::{render_app, PackageRenderer, RenderError};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn shared() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    if p.join("reference/expected-renders.jsonl").is_file()
        && p.join("universe-corpus/repo/packages").is_dir()
    {
        Some(p)
    } else {
        eprintln!(
            "SKIP: {} not found (no ../shared reference corpus in this checkout)",
            p.display()
        );
        None
    }
}

fn load_json(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

struct Case {
    id: String,
    rec: Value,
    template: String,
    config: Option<Value>,
    resource: Option<Value>,
}

fn cases(shared: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(shared.join("reference/expected-renders.jsonl"))
        .expect("read expected-renders.jsonl");
    let packages = shared.join("universe-corpus/repo/packages");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let rec: Value = serde_json::from_str(line).expect("jsonl line");
            let name = rec["package"].as_str().expect("package").to_string();
            let rev = rec["revision"].as_i64().expect("revision");
            let letter = name
                .chars()
                .next()
                .expect("name")
                .to_ascii_uppercase()
                .to_string();
            let dir = packages.join(letter).join(&name).join(rev.to_string());
            let template = std::fs::read_to_string(dir.join("marathon.json.mustache"))
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            Case {
                id: format!("{name}/{rev}"),
                config: load_json(&dir.join("config.json")),
                resource: load_json(&dir.join("resource.json")),
                rec,
                template,
            }
        })
        .collect()
}

#[test]
fn every_reference_render_matches() {
    let Some(shared) = shared() else { return };
    let cases = cases(&shared);
    assert!(
        cases.len() > 1000,
        "expected the whole corpus, got {}",
        cases.len()
    );
    let mut failures = Vec::new();
    let (mut ok, mut schema_rejected, mut invalid) = (0, 0, 0);
    for c in &cases {
        let status = c.rec["status"].as_str().unwrap_or("");
        let options_valid = c.rec["options_valid"].as_bool().unwrap_or(true);
        // 1. The whole Cosmos pipeline (with validation).
        let full = render_app(&c.template, c.config.as_ref(), c.resource.as_ref(), None);
        // 2. The renderer alone on the default options (what the reference renders).
        let renderer = PackageRenderer::new(&c.template, c.config.as_ref(), c.resource.as_ref())
            .unwrap_or_else(|e| panic!("{}: {e}", c.id));
        let raw = renderer.render_resolved(renderer.defaults().clone());
        match (status, &raw) {
            ("ok", Ok(app)) => {
                if Value::Object(app.clone()) != c.rec["rendered"] {
                    failures.push(format!("{}: rendered object differs", c.id));
                }
            }
            ("ok", Err(e)) => failures.push(format!("{}: expected ok, got {e}", c.id)),
            (_, Ok(_)) => failures.push(format!("{}: expected {status}, rendered fine", c.id)),
            (_, Err(RenderError::JsonParsingError { .. })) => invalid += 1,
            (_, Err(e)) => failures.push(format!("{}: expected JsonParsingError, got {e:?}", c.id)),
        }
        match (options_valid, &full) {
            (true, Ok(_)) => ok += 1,
            (true, Err(RenderError::JsonParsingError { .. })) if status != "ok" => {}
            (true, Err(e)) => failures.push(format!("{}: defaults valid, got {e}", c.id)),
            (false, Err(RenderError::JsonSchemaMismatch { violations })) => {
                schema_rejected += 1;
                let expected = c.rec["options_errors"].as_array().map_or(0, Vec::len);
                if violations.is_empty() || (expected < 5 && violations.len() != expected) {
                    failures.push(format!(
                        "{}: {} violations, reference lists {:?}: {:?}",
                        c.id,
                        violations.len(),
                        c.rec["options_errors"],
                        violations.iter().map(|v| v.to_string()).collect::<Vec<_>>()
                    ));
                }
            }
            (false, other) => failures.push(format!(
                "{}: defaults invalid per reference ({}), got {:?}",
                c.id,
                c.rec["options_errors"],
                other.as_ref().map(|_| "ok")
            )),
        }
    }
    eprintln!(
        "conformance: {} cases, {ok} render through the full pipeline, {schema_rejected} rejected by schema, {invalid} invalid JSON",
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
