//! `universe validate`: every upstream rule (see [`repo_schema::validate`]) on every revision,
//! plus what upstream never checks: the package's default options against its own config.json,
//! and the Marathon template rendered with those defaults must give a JSON object.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use repo_schema::validate::{self as rules, Issue, Schemas, Severity};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::render;
use crate::source::{self, Revision, Tree};

/// Options of a validation run.
#[derive(Debug, Clone)]
pub struct ValidateOptions {
    pub threads: usize,
    /// Render every template with its defaults (and check the defaults against config.json).
    pub render: bool,
    /// Treat rendering findings (warnings) as errors.
    pub strict: bool,
}

impl Default for ValidateOptions {
    fn default() -> Self {
        ValidateOptions {
            threads: source::default_threads(),
            render: true,
            strict: false,
        }
    }
}

/// The machine-readable report (`--json`).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub valid: bool,
    pub packages: usize,
    pub revisions: usize,
    #[serde(rename = "invalidRevisions")]
    pub invalid_revisions: usize,
    pub errors: usize,
    pub warnings: usize,
    /// Rendered with the defaults: how many templates gave a JSON object.
    pub rendered: usize,
    #[serde(rename = "renderer")]
    pub renderer: &'static str,
    pub issues: Vec<Issue>,
}

/// Results of checking defaults, per config.json content (many revisions share one).
type DefaultsCache = Mutex<HashMap<Vec<u8>, Result<Vec<(String, String)>, String>>>;

fn check_rendering(
    rev: &Revision,
    report: &rules::RevisionReport,
    cache: &DefaultsCache,
    out: &mut Vec<Issue>,
) {
    let dir = &rev.dir;
    let config = report.config.as_ref();
    // Defaults against the package's own schema.
    let defaults = config
        .map(render::defaults)
        .unwrap_or(Value::Object(Map::new()));
    if let (Some(cfg), Some(bytes)) = (config, rev.files.config_json.as_ref()) {
        let cached = cache.lock().ok().and_then(|c| c.get(bytes).cloned());
        let result = match cached {
            Some(r) => r,
            None => {
                let r = render::validate_options(cfg, &defaults);
                if let Ok(mut c) = cache.lock() {
                    c.insert(bytes.clone(), r.clone());
                }
                r
            }
        };
        match result {
            Ok(errors) => {
                for (pointer, message) in errors {
                    out.push(Issue::warning(
                        &format!("{dir}/config.json"),
                        &pointer,
                        "defaults-valid",
                        format!("default options fail the package's own config schema: {message} (installing needs user options)"),
                    ));
                }
            }
            Err(message) => out.push(Issue::error(
                &format!("{dir}/config.json"),
                "",
                "config-compiles",
                format!("config.json cannot be compiled as a draft-04 schema: {message}"),
            )),
        }
    }
    if let Some(template) = &report.template {
        let file = format!("{dir}/marathon.json.mustache");
        match render::render(template, config, report.resource.as_ref(), &defaults) {
            render::Outcome::Object => {}
            render::Outcome::Skipped => {}
            render::Outcome::Failed(message) => {
                out.push(Issue::warning(&file, "", "renders-to-object", message))
            }
        }
    }
}

/// Validates a tree. `packages_dir` and `schemas` come from [`source::Layout`].
pub fn validate_tree(
    tree: &dyn Tree,
    packages_dir: &str,
    schemas: Option<&Schemas>,
    opts: &ValidateOptions,
) -> Report {
    let scan = source::scan(tree, packages_dir, opts.threads);
    let cache = DefaultsCache::default();
    let per_rev = source::parallel_map(&scan.revisions, opts.threads, |rev| {
        let files = rev
            .files
            .as_revision_files(&rev.folder, &rev.dir, rev.release_version);
        let report = rules::validate_revision(&files, schemas);
        let mut issues = rev.issues.clone();
        issues.extend(report.issues.iter().cloned());
        let mut rendered = false;
        if opts.render && report.package.is_some() {
            let before = issues.len();
            check_rendering(rev, &report, &cache, &mut issues);
            rendered = report.template.is_some()
                && render::AVAILABLE
                && !issues[before..]
                    .iter()
                    .any(|i| i.rule == "renders-to-object");
        }
        if opts.strict {
            for i in &mut issues {
                i.severity = Severity::Error;
            }
        }
        (issues, rendered)
    });
    let mut issues = scan.issues;
    let mut invalid = 0;
    let mut rendered = 0;
    for (rev_issues, ok) in per_rev {
        if rev_issues.iter().any(|i| i.severity == Severity::Error) {
            invalid += 1;
        }
        rendered += usize::from(ok);
        issues.extend(rev_issues);
    }
    let packages: BTreeSet<&str> = scan.revisions.iter().map(|r| r.folder.as_str()).collect();
    let errors = issues
        .iter()
        .filter(|i| i.severity == Severity::Error)
        .count();
    Report {
        valid: errors == 0,
        packages: packages.len(),
        revisions: scan.revisions.len(),
        invalid_revisions: invalid,
        errors,
        warnings: issues.len() - errors,
        rendered,
        renderer: render::NAME,
        issues,
    }
}

/// Reads and compiles the upstream schemas from the tree.
pub fn load_schemas(tree: &dyn Tree, dir: &str) -> Result<Schemas, String> {
    let read = |name: &str| -> Result<Value, String> {
        let rel = if dir.is_empty() {
            name.to_string()
        } else {
            format!("{dir}/{name}")
        };
        let bytes = tree
            .read_file(&rel, source::MAX_FILE_BYTES)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{rel}: missing"))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("{rel}: {e}"))
    };
    let schemas = Schemas::from_values(
        &read("package-schema.json")?,
        &read("command-schema.json")?,
        &read("config-schema.json")?,
        &read("v2-resource-schema.json")?,
        &read("v3-resource-schema.json")?,
    )
    .map_err(|e| e.to_string())?;
    // The repository definitions are optional (older checkouts lack them).
    match read("vX-repo-definitions.json") {
        Ok(defs) => schemas
            .with_index_definitions(&defs)
            .map_err(|e| e.to_string()),
        Err(_) => Ok(schemas),
    }
}
