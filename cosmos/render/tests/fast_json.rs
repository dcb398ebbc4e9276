//! The fast JSON path of `parse_rendered_str` builds exactly what serde_json builds (same key
//! order, same numbers), over every rendered template of ../shared/universe-corpus and over
//! mutated texts. Skipped with a message when ../shared is absent.

use cosmos_render::mustache::Template;
use cosmos_render::{options, parse_rendered_str, RenderError};
use serde_json::Value;
use std::path::Path;

fn check(text: &str) {
    let ours = parse_rendered_str(text);
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => {
            if let Ok(o) = &ours {
                assert_eq!(
                    Value::Object(o.clone()).to_string(),
                    Value::Object(m).to_string()
                );
            }
        }
        Ok(_) => assert!(matches!(ours, Err(RenderError::NotJsonObject))),
        Err(e) => match ours {
            Err(RenderError::JsonParsingError { message, .. }) => {
                assert_eq!(message, e.to_string())
            }
            other => panic!("serde_json fails ({e}), we gave {other:?}"),
        },
    }
}

#[test]
fn fast_parse_matches_serde_json_on_the_corpus() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    let Ok(jsonl) = std::fs::read_to_string(shared.join("reference/expected-renders.jsonl")) else {
        eprintln!("SKIP: {} not found", shared.display());
        return;
    };
    let packages = shared.join("universe-corpus/repo/packages");
    let mut n = 0;
    for line in jsonl.lines().filter(|l| !l.trim().is_empty()) {
        let rec: Value = serde_json::from_str(line).expect("jsonl line");
        let name = rec["package"].as_str().expect("package");
        let rev = rec["revision"].as_i64().expect("revision");
        let letter = name[..1].to_ascii_uppercase();
        let dir = packages.join(letter).join(name).join(rev.to_string());
        let Ok(t) = std::fs::read_to_string(dir.join("marathon.json.mustache")) else {
            continue;
        };
        let Ok(tpl) = Template::parse(&t) else {
            continue;
        };
        let config: Option<Value> = std::fs::read_to_string(dir.join("config.json"))
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok());
        let resource: Option<Value> = std::fs::read_to_string(dir.join("resource.json"))
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok());
        let mut ctx = config.as_ref().map(options::defaults).unwrap_or_default();
        if let (Some(r), Value::Object(m)) = (resource, &mut ctx) {
            m.insert("resource".into(), r);
        }
        let text = tpl.render(&ctx);
        check(&text);
        // truncated and altered texts take the error paths
        let cut = text.len() / 2;
        if text.is_char_boundary(cut) {
            check(&text[..cut]);
        }
        check(&text.replacen(':', " ", 1));
        check(&text.replacen('"', "'", 1));
        n += 1;
    }
    assert!(n > 1000, "{n} templates");
}
