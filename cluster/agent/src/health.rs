//! Health checks run by the agent next to the task (HTTP, TCP, COMMAND).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use dcos_types::HealthCheckKind;

/// Runs one check; `true` is healthy.
pub async fn check_once(
    client: &reqwest::Client,
    kind: &HealthCheckKind,
    timeout: Duration,
    env: &BTreeMap<String, String>,
    sandbox: &Path,
) -> bool {
    let timeout = if timeout.is_zero() {
        Duration::from_secs(20)
    } else {
        timeout
    };
    match kind {
        HealthCheckKind::Http { port, path, scheme } => {
            let path = if path.starts_with('/') {
                path.clone()
            } else {
                format!("/{path}")
            };
            let url = format!("{scheme}://127.0.0.1:{port}{path}");
            match tokio::time::timeout(timeout, client.get(&url).send()).await {
                Ok(Ok(resp)) => {
                    let s = resp.status().as_u16();
                    (200..400).contains(&s)
                }
                _ => false,
            }
        }
        HealthCheckKind::Tcp { port } => matches!(
            tokio::time::timeout(
                timeout,
                tokio::net::TcpStream::connect(("127.0.0.1", *port))
            )
            .await,
            Ok(Ok(_))
        ),
        HealthCheckKind::Command { value } => {
            let mut cmd = tokio::process::Command::new("/bin/sh");
            cmd.arg("-c")
                .arg(value)
                .envs(env)
                .current_dir(sandbox)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true);
            let Ok(mut child) = cmd.spawn() else {
                return false;
            };
            match tokio::time::timeout(timeout, child.wait()).await {
                Ok(Ok(status)) => status.success(),
                _ => {
                    let _ = child.start_kill();
                    false
                }
            }
        }
    }
}
