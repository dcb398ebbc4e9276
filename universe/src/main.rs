//! The `universe` command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use repo_schema::validate::Severity;
use universe::build::{self, BuildInfo, BuildOptions};
use universe::source::{FsTree, Layout, Tree};
use universe::validate::{self, ValidateOptions};

#[derive(Parser)]
#[command(
    name = "universe",
    version,
    about = "Universe repository tooling: validate, build, serve, mirror"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check every package of a Universe tree (upstream rules + default options + rendering).
    Validate {
        /// A universe checkout, its `repo` folder, or a packages folder.
        dir: PathBuf,
        /// Print a machine-readable JSON report.
        #[arg(long)]
        json: bool,
        /// Treat warnings (default options, rendering) as errors.
        #[arg(long)]
        strict: bool,
        /// Skip default-option and rendering checks.
        #[arg(long)]
        no_render: bool,
        /// Folder of the upstream schemas (default: `repo/meta/schema` of the tree).
        #[arg(long)]
        schema_dir: Option<PathBuf>,
        /// Read the packages from this git ref of the repository at DIR (no checkout).
        #[arg(long, value_name = "REF")]
        git_ref: Option<String>,
    },
    /// Build the repository index files from a package tree.
    Build {
        /// A universe checkout, its `repo` folder, or a packages folder.
        dir: PathBuf,
        /// Output folder (created; an existing one is updated).
        #[arg(long)]
        out: PathBuf,
        /// Leave invalid packages out (with a warning) instead of failing.
        #[arg(long)]
        skip_invalid: bool,
        /// DC/OS versions to write `repo-up-to-<v>.json` for (default: upstream's list).
        #[arg(long = "dcos-version", value_name = "VERSION")]
        dcos_versions: Vec<String>,
        /// Read the packages from this git ref of the repository at DIR (no checkout); the
        /// commit is recorded in build-info.json.
        #[arg(long, value_name = "REF")]
        git_ref: Option<String>,
    },
    /// List the package versions added, removed or changed between two git refs.
    Diff {
        from: String,
        to: String,
        /// The git repository (a path or file:// URL).
        #[arg(long, default_value = ".")]
        repo: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make a self-contained offline repository: download, verify and re-host every artifact.
    Mirror {
        /// Repository URL, index file (.json/.json.gz), built output folder, or package tree.
        #[arg(long)]
        repo: String,
        /// Output folder (a repository that `universe serve` hosts, with its artifacts).
        #[arg(long)]
        out: PathBuf,
        /// URL where the offline repository will be served (artifact URLs are rewritten to it).
        #[arg(long)]
        base_url: String,
        /// Package to include, `NAME` (every version) or `NAME@VERSION`; repeatable. Default: all.
        #[arg(long = "package", value_name = "NAME[@VERSION]")]
        packages: Vec<String>,
        /// Parallel downloads.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
    },
    /// Serve a built (or mirrored) repository over HTTP.
    Serve {
        /// Output folder of `universe build` or `universe mirror`.
        dir: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8085")]
        listen: std::net::SocketAddr,
    },
}

// The build and validate passes allocate many small JSON values; mimalloc halves their cost.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn open_tree(dir: &std::path::Path, git_ref: Option<&str>) -> Result<(Box<dyn Tree>, Layout)> {
    let tree: Box<dyn Tree> = match git_ref {
        Some(r) => Box::new(
            universe::git::GitTree::open(&dir.to_string_lossy(), r)
                .with_context(|| format!("cannot read {} at {r}", dir.display()))?,
        ),
        None => {
            Box::new(FsTree::new(dir).with_context(|| format!("cannot open {}", dir.display()))?)
        }
    };
    let layout = Layout::detect(tree.as_ref());
    Ok((tree, layout))
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Mirror {
            repo,
            out,
            base_url,
            packages,
            concurrency,
        } => {
            if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
                bail!("--base-url must be an http(s) URL, got {base_url:?}");
            }
            let opts = universe::mirror::MirrorOptions {
                repo,
                out: out.clone(),
                base_url,
                packages,
                concurrency,
                progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            };
            let rt = tokio::runtime::Runtime::new()?;
            let report = rt.block_on(universe::mirror::mirror(&opts))?;
            let m = &report.manifest;
            for f in &m.failures {
                eprintln!("error: {}: {}", f.url, f.error);
            }
            eprintln!(
                "mirrored {} package versions into {}: {} artifacts ({} downloaded, {} already there), {} Docker images recorded in mirror-manifest.json, {} failed",
                m.packages.len(),
                out.display(),
                m.artifacts.len(),
                report.downloaded,
                report.reused,
                m.images.len(),
                m.failures.len()
            );
            Ok(if m.failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Diff {
            from,
            to,
            repo,
            json,
        } => {
            let d = universe::git::diff(&repo, &from, &to)
                .with_context(|| format!("cannot diff {from}..{to} in {repo}"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&d)?);
            } else {
                println!("{} -> {}", d.from, d.to);
                let show = |c: &universe::git::VersionChange| {
                    format!(
                        "{} {} (releaseVersion {})",
                        c.name,
                        c.version.as_deref().unwrap_or("?"),
                        c.release_version
                    )
                };
                for c in &d.added {
                    println!("+ {}", show(c));
                }
                for c in &d.removed {
                    println!("- {}", show(c));
                }
                for c in &d.changed {
                    println!("~ {}: {}", show(c), c.files.join(", "));
                }
                eprintln!(
                    "{} added, {} removed, {} changed",
                    d.added.len(),
                    d.removed.len(),
                    d.changed.len()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { dir, listen } => {
            if !dir.join("universe.json").is_file() && !dir.join("repo-empty-v3.json").is_file() {
                bail!("{} does not look like a built repository (no universe.json); run `universe build DIR --out {}` first", dir.display(), dir.display());
            }
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(universe::serve::serve(dir, listen))
                .with_context(|| format!("cannot serve on {listen}"))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate {
            dir,
            json,
            strict,
            no_render,
            schema_dir,
            git_ref,
        } => {
            let started = Instant::now();
            let (tree, layout) = open_tree(&dir, git_ref.as_deref())?;
            let schemas = match (&schema_dir, &layout.schemas) {
                (Some(sd), _) => {
                    let t =
                        FsTree::new(sd).with_context(|| format!("cannot open {}", sd.display()))?;
                    Some(validate::load_schemas(&t, "").map_err(anyhow::Error::msg)?)
                }
                (None, Some(sd)) => {
                    Some(validate::load_schemas(tree.as_ref(), sd).map_err(anyhow::Error::msg)?)
                }
                (None, None) => {
                    eprintln!("warning: no meta/schema folder found next to the packages; schema rules are skipped (use --schema-dir)");
                    None
                }
            };
            let opts = ValidateOptions {
                render: !no_render,
                strict,
                ..Default::default()
            };
            let report =
                validate::validate_tree(tree.as_ref(), &layout.packages, schemas.as_ref(), &opts);
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                for i in &report.issues {
                    println!("{i}");
                }
                eprintln!(
                    "{} packages, {} revisions: {} invalid, {} errors, {} warnings ({} templates rendered; renderer: {}) in {:.2?}",
                    report.packages,
                    report.revisions,
                    report.invalid_revisions,
                    report.errors,
                    report.warnings,
                    report.rendered,
                    report.renderer,
                    started.elapsed()
                );
            }
            Ok(if report.valid {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Build {
            dir,
            out,
            skip_invalid,
            dcos_versions,
            git_ref,
        } => {
            let started = Instant::now();
            let (tree, layout) = open_tree(&dir, git_ref.as_deref())?;
            let mut opts = BuildOptions {
                skip_invalid,
                ..Default::default()
            };
            if !dcos_versions.is_empty() {
                opts.dcos_versions = dcos_versions;
            }
            let info = BuildInfo {
                generator: format!("universe {}", env!("CARGO_PKG_VERSION")),
                commit: tree.commit(),
                git_ref: git_ref.clone(),
                ..Default::default()
            };
            match build::build_tree(tree.as_ref(), &layout.packages, &out, &opts, info) {
                Ok(summary) => {
                    for w in &summary.warnings {
                        eprintln!("{w}");
                    }
                    eprintln!(
                        "built {} versions of {} packages into {}: {} files, {} bytes in {:.2?}",
                        summary.package_versions,
                        summary.packages,
                        out.display(),
                        summary.files,
                        summary.bytes,
                        started.elapsed()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(build::BuildError::Invalid(issues)) => {
                    for i in &issues {
                        eprintln!("{i}");
                    }
                    let n = issues
                        .iter()
                        .filter(|i| i.severity == Severity::Error)
                        .count();
                    bail!("{n} problem(s) in the package tree; nothing was written (use --skip-invalid to build the valid packages)")
                }
                Err(e) => Err(e.into()),
            }
        }
    }
}
