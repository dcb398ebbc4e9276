//! Renders every template of ../shared/universe-corpus (the entries of expected-renders.jsonl)
//! with option defaults and validation. `cargo bench -p cosmos-render --bench render_corpus`.

use std::path::{Path, PathBuf};

use cosmos_render::{render_app, PackageRenderer};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::Value;

// The binaries that embed the renderer (`dcosd`, `cosmos`, `universe`) use mimalloc: the
// rendered apps are many small allocations. Measure with the allocator they run with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Case {
    template: String,
    config: Option<Value>,
    resource: Option<Value>,
}

fn load() -> Option<Vec<Case>> {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    let jsonl = shared.join("reference/expected-renders.jsonl");
    let Ok(text) = std::fs::read_to_string(&jsonl) else {
        eprintln!("SKIP: {} not found", jsonl.display());
        return None;
    };
    let packages: PathBuf = shared.join("universe-corpus/repo/packages");
    let read_json = |p: PathBuf| -> Option<Value> {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
    };
    let mut cases = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let rec: Value = serde_json::from_str(line).ok()?;
        let name = rec["package"].as_str()?;
        let rev = rec["revision"].as_i64()?;
        let letter = name.chars().next()?.to_ascii_uppercase().to_string();
        let dir = packages.join(letter).join(name).join(rev.to_string());
        cases.push(Case {
            template: std::fs::read_to_string(dir.join("marathon.json.mustache")).ok()?,
            config: read_json(dir.join("config.json")),
            resource: read_json(dir.join("resource.json")),
        });
    }
    Some(cases)
}

fn bench(c: &mut Criterion) {
    let Some(cases) = load() else { return };
    let n = cases.len();
    // The very first pass: nothing parsed, no validator compiled yet.
    let t = std::time::Instant::now();
    let ok = cases
        .iter()
        .filter(|c| render_app(&c.template, c.config.as_ref(), c.resource.as_ref(), None).is_ok())
        .count();
    eprintln!(
        "first render_app pass over {n} templates ({ok} ok): {:?}",
        t.elapsed()
    );
    phases(&cases);
    sweep_phases(&cases);
    let mut g = c.benchmark_group("corpus");
    g.sample_size(20);
    // render_app per template: parse the template, extract defaults, validate (validators are
    // compiled once per distinct config.json and cached by content), render, parse the JSON.
    g.bench_function(format!("render_app_{n}_templates"), |b| {
        b.iter(|| {
            let mut ok = 0usize;
            for c in &cases {
                if render_app(&c.template, c.config.as_ref(), c.resource.as_ref(), None).is_ok() {
                    ok += 1;
                }
            }
            ok
        })
    });
    // Cosmos keeps one prepared renderer per package version: template parsed and validator
    // compiled once; each render validates the merged options and renders.
    let prepared: Vec<PackageRenderer> = cases
        .iter()
        .filter_map(|c| {
            PackageRenderer::new(&c.template, c.config.as_ref(), c.resource.as_ref()).ok()
        })
        .collect();
    for p in &prepared {
        let _ = p.render(None);
    }
    g.bench_function(format!("render_prepared_{n}_templates"), |b| {
        b.iter(|| {
            let mut ok = 0usize;
            for p in &prepared {
                if p.render(None).is_ok() {
                    ok += 1;
                }
            }
            ok
        })
    });
    g.finish();
}

/// One pass with a per-phase breakdown (printed, for the performance notes).
fn phases(cases: &[Case]) {
    use std::time::{Duration, Instant};
    let mut t_validate2 = Duration::ZERO;
    let (mut t_parse, mut t_defaults, mut t_compile, mut t_validate, mut t_render, mut t_json) = (
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
    );
    for c in cases {
        let t = Instant::now();
        let Ok(tpl) = cosmos_render::mustache::Template::parse(&c.template) else {
            continue;
        };
        t_parse += t.elapsed();
        let t = Instant::now();
        let defaults = c
            .config
            .as_ref()
            .map(cosmos_render::options::defaults)
            .unwrap_or_default();
        t_defaults += t.elapsed();
        if let Some(cfg) = &c.config {
            let t = Instant::now();
            let v = cosmos_render::OptionsValidator::new(cfg);
            t_compile += t.elapsed();
            let t = Instant::now();
            if let Ok(v) = v {
                let _ = v.is_valid(&defaults);
                let t2 = Instant::now();
                let _ = v.is_valid(&defaults);
                t_validate2 += t2.elapsed();
            }
            t_validate += t.elapsed();
        }
        let mut ctx = defaults;
        if let (Some(r), Value::Object(m)) = (&c.resource, &mut ctx) {
            m.insert("resource".into(), r.clone());
        }
        let t = Instant::now();
        let text = tpl.render(&ctx);
        t_render += t.elapsed();
        let t = Instant::now();
        let _ = cosmos_render::parse_rendered(text);
        t_json += t.elapsed();
    }
    eprintln!(
        "phases over {} templates: parse {:?}, defaults {:?}, compile validators {:?}, validate {:?} (again: {:?}), render {:?}, parse JSON {:?}",
        cases.len(), t_parse, t_defaults, t_compile, t_validate, t_validate2, t_render, t_json
    );
}

/// Each phase swept over all packages (as the criterion sweep does), median of 7 sweeps.
fn sweep_phases(cases: &[Case]) {
    use std::time::Instant;
    struct Prep {
        tpl: cosmos_render::mustache::Template,
        defaults: Value,
        ctx: cosmos_render::mustache::Context,
        validator: Option<std::sync::Arc<cosmos_render::OptionsValidator>>,
        text: String,
    }
    let preps: Vec<Prep> = cases
        .iter()
        .filter_map(|c| {
            let tpl = cosmos_render::mustache::Template::parse(&c.template).ok()?;
            let defaults = c
                .config
                .as_ref()
                .map(cosmos_render::options::defaults)
                .unwrap_or_default();
            let validator = c
                .config
                .as_ref()
                .and_then(|cfg| cosmos_render::options::cached_validator(cfg).ok());
            let mut ctx = defaults.clone();
            if let (Some(r), Value::Object(m)) = (&c.resource, &mut ctx) {
                m.insert("resource".into(), r.clone());
            }
            let text = tpl.render(&ctx);
            let ctx = cosmos_render::mustache::Context::new(&ctx);
            Some(Prep {
                tpl,
                defaults,
                ctx,
                validator,
                text,
            })
        })
        .collect();
    let median = |f: &dyn Fn() -> usize| {
        let mut v: Vec<_> = (0..7)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                t.elapsed()
            })
            .collect();
        v.sort();
        v[3]
    };
    let validate = median(&|| {
        preps
            .iter()
            .filter(|p| {
                p.validator
                    .as_ref()
                    .is_some_and(|v| v.is_valid(&p.defaults))
            })
            .count()
    });
    let render = median(&|| {
        preps
            .iter()
            .map(|p| p.tpl.render_context(&p.ctx).len())
            .sum()
    });
    let parse = median(&|| {
        preps
            .iter()
            .filter(|p| cosmos_render::parse_rendered(p.text.clone()).is_ok())
            .count()
    });
    let serde = median(&|| {
        preps
            .iter()
            .filter(|p| serde_json::from_str::<Value>(&p.text.clone()).is_ok())
            .count()
    });
    let clone = median(&|| preps.iter().map(|p| p.text.clone().len()).sum());
    eprintln!(
        "sweep phases over {} templates (median of 7): validate {validate:?}, render {render:?}, parse JSON {parse:?} (serde_json::from_str alone: {serde:?}; incl. text clone {clone:?})",
        preps.len()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
