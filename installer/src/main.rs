//! `dcos-installer`: genesis config -> bootstrap bundle -> node install.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use dcos_installer::{bundle, genesis, health, password};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "dcos-installer",
    version,
    about = "Bootstrap a dcos-rs cluster from genconf/config.yaml"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Validate genconf/config.yaml and write genconf/serve/ (bundle, manifest, role configs, dcos_install.sh).
    Genconf {
        /// The genconf directory (config.yaml, ip-detect).
        #[arg(long, default_value = "genconf")]
        genconf_dir: PathBuf,
        /// The dcosd binary to ship (default: `dcosd` beside this binary, then on PATH).
        #[arg(long)]
        dcosd: Option<PathBuf>,
        /// Also write serve/upgrade/<ID>/dcos_node_upgrade.sh for nodes at bootstrap ID.
        #[arg(long, value_name = "BOOTSTRAP_ID")]
        upgrade_from: Option<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Only validate genconf/config.yaml (and ip-detect).
    Validate {
        #[arg(long, default_value = "genconf")]
        genconf_dir: PathBuf,
    },
    /// Verify a serve directory against its manifest.
    Verify {
        #[arg(long, default_value = "genconf/serve")]
        serve_dir: PathBuf,
    },
    /// Serve a directory (genconf/serve) over HTTP (GET/HEAD, static files).
    Serve {
        #[arg(long, default_value = "genconf/serve")]
        serve_dir: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "0.0.0.0:8080")]
        listen: String,
    },
    /// Poll every node's health endpoint until all are healthy or the timeout passes.
    Postflight {
        #[arg(long, default_value = "genconf")]
        genconf_dir: PathBuf,
        /// Superuser to log in with at Admin Router (when oauth is enabled).
        #[arg(long, env = "DCOS_INSTALLER_USERNAME")]
        username: Option<String>,
        #[arg(long, env = "DCOS_INSTALLER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        /// Check once, do not poll.
        #[arg(long)]
        once: bool,
    },
    /// Hash a password into an argon2id PHC string for superuser_password_hash (reads stdin if not given).
    HashPassword { password: Option<String> },
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("dcos-installer: error: {e:#}");
        std::process::exit(1);
    }
}

fn find_dcosd() -> Option<PathBuf> {
    let beside = std::env::current_exe().ok()?.parent()?.join("dcosd");
    if beside.is_file() {
        return Some(beside);
    }
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("dcosd"))
            .find(|c| c.is_file())
    })
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Genconf {
            genconf_dir,
            dcosd,
            upgrade_from,
            json,
        } => {
            let t0 = Instant::now();
            let cfg = genesis::load_genconf(&genconf_dir).map_err(|e| anyhow::anyhow!("{e}"))?;
            if let Some(from) = &upgrade_from {
                if from.len() != 64 || !from.chars().all(|c| c.is_ascii_hexdigit()) {
                    bail!("--upgrade-from '{from}' is not a bootstrap id (64 hex characters, see genconf/serve/bootstrap.latest or /opt/dcos-rs/etc/bootstrap-id on a node)");
                }
            }
            let dcosd = match dcosd.or_else(find_dcosd) {
                Some(p) => p,
                None => bail!(
                    "no dcosd binary found beside dcos-installer or on PATH; pass --dcosd PATH"
                ),
            };
            let out = bundle::genconf(
                &cfg,
                &genconf_dir.join("serve"),
                &bundle::GenconfOptions {
                    dcosd,
                    upgrade_from: upgrade_from.clone(),
                    internal_token: if cfg.oauth_enabled {
                        Some(bundle::internal_token(&genconf_dir)?)
                    } else {
                        None
                    },
                },
            )?;
            let elapsed = t0.elapsed();
            if json {
                let v = serde_json::json!({
                    "bootstrap_id": out.bootstrap_id,
                    "config_id": out.config_id,
                    "serve_dir": out.serve_dir,
                    "upgrade_script": out.upgrade_script,
                    "elapsed_ms": elapsed.as_millis() as u64,
                });
                println!("{v}");
            } else {
                println!("bootstrap id: {}", out.bootstrap_id);
                println!("config id:    {}", out.config_id);
                println!(
                    "wrote {} files to {} in {:.2?}",
                    out.files.len(),
                    out.serve_dir.display(),
                    elapsed
                );
                println!(
                    "serve it at {} (dcos-installer serve, or any static HTTP server)",
                    cfg.bootstrap_url
                );
                println!("on each node: curl -fO {}/dcos_install.sh && sudo bash dcos_install.sh master|slave|slave_public", cfg.bootstrap_url);
                if let Some(u) = out.upgrade_script {
                    println!(
                        "node upgrade script (from {}): {}/{u}",
                        upgrade_from.unwrap_or_default(),
                        cfg.bootstrap_url
                    );
                }
            }
        }
        Cmd::Validate { genconf_dir } => {
            let cfg = genesis::load_genconf(&genconf_dir).map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "{}: valid (cluster '{}', {} master(s), {} agent(s), {} public agent(s))",
                genconf_dir.join("config.yaml").display(),
                cfg.cluster_name,
                cfg.master_list.len(),
                cfg.agent_list.len(),
                cfg.public_agent_list.len()
            );
        }
        Cmd::Verify { serve_dir } => {
            let id = bundle::verify_serve_dir(&serve_dir)?;
            println!("{}: OK (bootstrap id {id})", serve_dir.display());
        }
        Cmd::Serve { serve_dir, listen } => serve(&serve_dir, &listen)?,
        Cmd::Postflight {
            genconf_dir,
            username,
            password,
            timeout,
            once,
        } => postflight(&genconf_dir, username, password, timeout, once)?,
        Cmd::HashPassword { password } => {
            let pw = match password {
                Some(p) => p,
                None => {
                    let mut s = String::new();
                    std::io::stdin()
                        .read_line(&mut s)
                        .context("reading the password from stdin")?;
                    s.trim_end_matches(['\n', '\r']).to_string()
                }
            };
            if pw.len() < 8 {
                bail!("the password must be at least 8 characters");
            }
            println!("{}", password::hash_password(&pw)?);
        }
    }
    Ok(())
}

fn postflight(
    genconf_dir: &Path,
    username: Option<String>,
    password: Option<String>,
    timeout: u64,
    once: bool,
) -> Result<()> {
    let cfg = genesis::load_genconf(genconf_dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    let targets = health::targets(&cfg);
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let http = health::HttpClient::new(Duration::from_secs(5))?;
    let t0 = Instant::now();
    loop {
        let mut token = None;
        let mut login_err = None;
        if cfg.oauth_enabled {
            match (&username, &password, cfg.master_list.first()) {
                (Some(u), Some(p), Some(m)) => {
                    match health::login(&http, &format!("http://{m}:{}", cfg.ports.adminrouter), u, p) {
                        Ok(t) => token = Some(t),
                        Err(e) => login_err = Some(e.to_string()),
                    }
                }
                _ => login_err = Some("oauth_enabled is true: pass --username and --password (or DCOS_INSTALLER_USERNAME/PASSWORD)".to_string()),
            }
        }
        let reports: Vec<_> = targets
            .iter()
            .map(|t| health::check_node(&http, t, token.as_deref()))
            .collect();
        let all_ok = reports.iter().all(|r| r.result.is_ok());
        if all_ok || once || Instant::now() >= deadline {
            for r in &reports {
                match &r.result {
                    Ok(n) => println!(
                        "{:<15} {:<12} healthy ({n} units)",
                        r.target.ip, r.target.role
                    ),
                    Err(reasons) => {
                        println!(
                            "{:<15} {:<12} UNHEALTHY ({})",
                            r.target.ip, r.target.role, r.target.url
                        );
                        for why in reasons {
                            println!("    - {why}");
                        }
                    }
                }
            }
            if let Some(e) = &login_err {
                println!("login: {e}");
            }
            if all_ok {
                println!(
                    "all {} nodes healthy after {:.1?}",
                    reports.len(),
                    t0.elapsed()
                );
                return Ok(());
            }
            let bad = reports.iter().filter(|r| r.result.is_err()).count();
            bail!("{bad} of {} nodes not healthy", reports.len());
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

fn content_type(p: &Path) -> &'static str {
    match p.extension().and_then(|e| e.to_str()) {
        Some("sh") => "text/x-shellscript",
        Some("json") => "application/json",
        Some("gz") => "application/gzip",
        _ => "application/octet-stream",
    }
}

fn respond(
    stream: &mut TcpStream,
    status: &str,
    ctype: &str,
    body: &[u8],
    head_only: bool,
) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if !head_only {
        stream.write_all(body)?;
    }
    stream.flush()
}

fn handle(root: &Path, mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    // Drain the headers.
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method != "GET" && method != "HEAD" {
        return respond(
            &mut stream,
            "405 Method Not Allowed",
            "text/plain",
            b"only GET and HEAD\n",
            false,
        );
    }
    let path = target.split('?').next().unwrap_or("/");
    let rel = Path::new(path.trim_start_matches('/'));
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) && !rel.as_os_str().is_empty() {
        return respond(
            &mut stream,
            "400 Bad Request",
            "text/plain",
            b"bad path\n",
            false,
        );
    }
    let full = root.join(rel);
    let head = method == "HEAD";
    if full.is_file() {
        let mut f = std::fs::File::open(&full)?;
        let len = f.metadata()?.len();
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n",
            content_type(&full)
        )?;
        if !head {
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                stream.write_all(&buf[..n])?;
            }
        }
        stream.flush()
    } else {
        respond(
            &mut stream,
            "404 Not Found",
            "text/plain",
            format!("not found: {path}\n").as_bytes(),
            head,
        )
    }
}

fn serve(root: &Path, listen: &str) -> Result<()> {
    if !root.is_dir() {
        bail!(
            "{} is not a directory; run `dcos-installer genconf` first",
            root.display()
        );
    }
    let listener =
        TcpListener::bind(listen).with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    println!("serving {} at http://{addr}", root.display());
    std::io::stdout().flush().ok();
    for conn in listener.incoming() {
        let Ok(stream) = conn else { continue };
        let root = root.to_path_buf();
        std::thread::spawn(move || {
            let peer = stream.peer_addr().ok();
            if let Err(e) = handle(&root, stream) {
                eprintln!("serve: {peer:?}: {e}");
            }
        });
    }
    Ok(())
}
