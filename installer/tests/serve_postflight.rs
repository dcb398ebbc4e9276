//! `dcos-installer` binary: genconf/validate/verify CLI, `serve` + an install over
//! HTTP, postflight against health endpoints, hash-password.

mod common;

use common::{text, Workspace};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_dcos-installer");

struct Serve(Child, String);
impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_serve(dir: &std::path::Path) -> Serve {
    std::fs::create_dir_all(dir).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--serve-dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    Serve(child, url)
}

#[test]
fn genconf_cli_reports_all_problems_and_exits_non_zero() {
    let w = Workspace::new(|_| {
        "bootstrap_url: http://x/\nmaster_list: [a, b]\nclustername: x\n".into()
    });
    let o = Command::new(BIN)
        .args(["genconf", "--genconf-dir"])
        .arg(w.genconf())
        .arg("--dcosd")
        .arg(w.dcosd())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    for needle in [
        "bootstrap_url: 'http://x/' must not end with '/'",
        "master_list[0]: 'a' is not an IPv4 address",
        "clustername: unknown key; did you mean `cluster_name`?",
        "cluster_name: is required",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in\n{err}");
    }
    assert!(!w.serve().exists(), "nothing written on error");
    let o = Command::new(BIN)
        .args(["validate", "--genconf-dir"])
        .arg(w.genconf())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn genconf_cli_needs_a_dcosd_and_a_real_upgrade_id() {
    let w = Workspace::new(|_| common::base_config("http://10.0.0.2:8080"));
    let o = Command::new(BIN)
        .args(["genconf", "--genconf-dir"])
        .arg(w.genconf())
        .arg("--dcosd")
        .arg(w.path().join("missing"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cannot read dcosd binary"),
        "{}",
        text(&o)
    );
    let o = Command::new(BIN)
        .args(["genconf", "--upgrade-from", "v1.2", "--genconf-dir"])
        .arg(w.genconf())
        .arg("--dcosd")
        .arg(w.dcosd())
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not a bootstrap id"),
        "{}",
        text(&o)
    );
}

#[test]
fn serve_hosts_the_bundle_and_a_node_installs_over_http() {
    let w = Workspace::new(|_| String::new());
    let serve = start_serve(&w.serve());
    std::fs::write(
        w.genconf().join("config.yaml"),
        common::base_config(&serve.1),
    )
    .unwrap();
    let o = Command::new(BIN)
        .args(["genconf", "--json", "--genconf-dir"])
        .arg(w.genconf())
        .arg("--dcosd")
        .arg(w.dcosd())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let out: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let id = out["bootstrap_id"].as_str().unwrap().to_string();
    let o = Command::new(BIN)
        .args(["verify", "--serve-dir"])
        .arg(w.serve())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));

    // Fetch the script as an operator would, with curl, and run it.
    let script = w.path().join("dcos_install.sh");
    let st = Command::new("curl")
        .args(["-fsS", "-o"])
        .arg(&script)
        .arg(format!("{}/dcos_install.sh", serve.1))
        .status()
        .unwrap();
    assert!(st.success());
    let o = Command::new("bash")
        .arg(&script)
        .arg("--root")
        .arg(w.root())
        .args([
            "--supervisor",
            "supervise",
            "--ip",
            "10.0.0.3",
            "slave_public",
        ])
        .env("TMPDIR", w.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(w.root().join("opt/dcos-rs/etc/bootstrap-id"))
            .unwrap()
            .trim(),
        id
    );

    // 404 and path traversal.
    let o = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("{}/nope", serve.1))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "404");
    let o = Command::new("curl")
        .args([
            "-s",
            "--path-as-is",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg(format!("{}/../../etc/passwd", serve.1))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "400");
}

/// A fake node endpoint: answers every request with `respond(request_head_and_body)`.
fn fake_server(addr: &str, respond: impl Fn(&str) -> (u16, String) + Send + 'static) -> u16 {
    let l = TcpListener::bind(addr).unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = vec![0u8; 8192];
            let mut req = Vec::new();
            while !String::from_utf8_lossy(&req).contains("\r\n\r\n") {
                let n = s.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&buf[..n]);
            }
            let head = String::from_utf8_lossy(&req).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            let body_have = req.len() - head.find("\r\n\r\n").map(|i| i + 4).unwrap_or(req.len());
            let mut rest = vec![0u8; len.saturating_sub(body_have)];
            let _ = s.read_exact(&mut rest);
            let full = format!("{head}{}", String::from_utf8_lossy(&rest));
            let (status, body) = respond(&full);
            let _ = write!(s, "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        }
    });
    port
}

fn healthy(role: &str) -> String {
    format!(
        r#"{{"node_role":"{role}","units":[{{"id":"dcosd","name":"dcosd","health":0,"output":""}}]}}"#
    )
}

#[test]
fn postflight_reports_every_node_and_why_one_is_not_healthy() {
    // Master on 127.0.0.1, agent on 127.0.0.2, public agent on 127.0.0.3 (all loopback).
    let master = fake_server("127.0.0.1:0", |req| {
        if req.starts_with("POST /acs/api/v1/auth/login") {
            if req.contains(r#""password":"secret-pass""#) {
                return (200, r#"{"token":"tok123"}"#.into());
            }
            return (401, r#"{"code":"ERR_INVALID_CREDENTIALS"}"#.into());
        }
        if !req.contains("Authorization: token=tok123") {
            return (401, "{}".into());
        }
        (200, healthy("master"))
    });
    let agents = TcpListener::bind("127.0.0.2:0").unwrap();
    let agent_port = agents.local_addr().unwrap().port();
    drop(agents);
    fake_server(&format!("127.0.0.2:{agent_port}"), |_| {
        (200, healthy("agent"))
    });
    let hash =
        dcos_installer::password::hash_password_deterministic("secret-pass", "c", "admin").unwrap();
    let cfg = format!(
        "bootstrap_url: http://127.0.0.1:1\ncluster_name: c\nmaster_list: [127.0.0.1]\nagent_list: [127.0.0.2]\n\
         public_agent_list: [127.0.0.3]\nsuperuser_username: admin\nsuperuser_password_hash: '{hash}'\n\
         ports:\n  adminrouter: {master}\n  agent_adminrouter: {agent_port}\n"
    );
    let w = Workspace::new(|_| cfg.clone());
    let run = |extra: &[&str]| {
        Command::new(BIN)
            .args(["postflight", "--once", "--genconf-dir"])
            .arg(w.genconf())
            .args(extra)
            .output()
            .unwrap()
    };
    // Public agent down (nothing on 127.0.0.3), no credentials.
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("127.0.0.1") && out.contains("master") && out.contains("HTTP 401"),
        "{out}"
    );
    assert!(
        out.contains("127.0.0.2") && out.contains("slave ") && out.contains("healthy (1 units)"),
        "{out}"
    );
    assert!(
        out.contains("127.0.0.3") && out.contains("slave_public") && out.contains("cannot connect"),
        "{out}"
    );
    assert!(out.contains("pass --username and --password"), "{out}");

    // With the public agent up but one unit unhealthy, and credentials.
    fake_server(&format!("127.0.0.3:{agent_port}"), |_| {
        (200, r#"{"node_role":"agent_public","units":[{"id":"dcos-rs-agent-public","health":1,"output":"executor registry unreachable"}]}"#.into())
    });
    let o = run(&["--username", "admin", "--password", "secret-pass"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("127.0.0.1       master       healthy"),
        "{out}"
    );
    assert!(
        out.contains("unit dcos-rs-agent-public unhealthy: executor registry unreachable"),
        "{out}"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("1 of 3 nodes not healthy"));
}

#[test]
fn postflight_succeeds_when_all_nodes_are_healthy() {
    let master = fake_server("127.0.0.1:0", |_| (200, healthy("master")));
    let cfg = format!(
        "bootstrap_url: http://127.0.0.1:1\ncluster_name: c\nmaster_list: [127.0.0.1]\noauth_enabled: false\n\
         ports:\n  adminrouter: {master}\n"
    );
    let w = Workspace::new(|_| cfg.clone());
    let o = Command::new(BIN)
        .args(["postflight", "--timeout", "10", "--genconf-dir"])
        .arg(w.genconf())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("all 1 nodes healthy"));
}

#[test]
fn health_evaluation_rules() {
    use dcos_installer::health::evaluate;
    use dcos_installer::InstallRole::*;
    assert_eq!(evaluate(Master, 200, &healthy("master")), Ok(1));
    assert!(evaluate(Slave, 200, &healthy("master")).unwrap_err()[0].contains("expected slave"));
    assert!(evaluate(Master, 503, "down").unwrap_err()[0].contains("HTTP 503"));
    assert!(evaluate(Master, 200, "<html>").unwrap_err()[0].contains("not JSON"));
    assert_eq!(evaluate(SlavePublic, 200, r#"{"units":[]}"#), Ok(0));
}

#[test]
fn hash_password_prints_a_verifiable_argon2id_phc_string() {
    let mut child = Command::new(BIN)
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    let phc = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    assert!(dcos_installer::password::verify_password(
        "correct horse",
        &phc
    ));
    dcos_installer::password::check_phc(&phc).unwrap();
    let o = Command::new(BIN)
        .args(["hash-password", "short"])
        .output()
        .unwrap();
    assert!(!o.status.success());
}
