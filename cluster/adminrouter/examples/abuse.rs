//! What a careless or hostile client can do to a running Admin Router, measured (issue 9):
//!
//! ```sh
//! # N wrong logins in a row from this address: how many 401, how many 429 (throttled)?
//! cargo run -p dcos-adminrouter --example abuse -- logins http://127.0.0.1:8000 200 admin
//! # N connections that never finish their headers (half send nothing, half an unfinished
//! # head): are they closed by the server, and does a normal request still get through?
//! cargo run -p dcos-adminrouter --example abuse -- stall 127.0.0.1:8000 1500
//! ```
//!
//! Start the Admin Router with the `adminrouter` example (`--auth-store … --superuser …`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Wrong-password logins, one after the other.
    Logins {
        url: String,
        #[arg(default_value_t = 200)]
        count: usize,
        #[arg(default_value = "admin")]
        uid: String,
    },
    /// Connections that never finish their request head.
    Stall {
        addr: String,
        #[arg(default_value_t = 1500)]
        count: usize,
    },
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    match Args::parse().cmd {
        Cmd::Logins { url, count, uid } => {
            let client = reqwest::Client::new();
            let mut codes: BTreeMap<u16, usize> = BTreeMap::new();
            let start = Instant::now();
            for _ in 0..count {
                let r = client
                    .post(format!("{url}/acs/api/v1/auth/login"))
                    .json(&serde_json::json!({"uid": uid, "password": "wrong password"}))
                    .send()
                    .await?;
                *codes.entry(r.status().as_u16()).or_default() += 1;
            }
            println!(
                "{count} wrong logins for {uid:?} in {:.1} s: {codes:?}",
                start.elapsed().as_secs_f64()
            );
        }
        Cmd::Stall { addr, count } => {
            let start = Instant::now();
            let mut socks = Vec::with_capacity(count);
            for i in 0..count {
                let mut s = tokio::net::TcpStream::connect(&addr).await?;
                if i % 2 == 1 {
                    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await?;
                }
                socks.push(s);
            }
            println!(
                "opened {count} stalled connections in {:.1} s",
                start.elapsed().as_secs_f64()
            );
            let t = Instant::now();
            let r = reqwest::Client::new()
                .get(format!("http://{addr}/dcos-metadata/dcos-version.json"))
                .timeout(Duration::from_secs(120))
                .send()
                .await;
            println!(
                "a normal request during the attack: {} after {:.2} s",
                match &r {
                    Ok(r) => r.status().to_string(),
                    Err(e) => format!("error {e}"),
                },
                t.elapsed().as_secs_f64()
            );
            let (mut closed, mut answered, mut open) = (0, 0, 0);
            for mut s in socks {
                let mut buf = [0u8; 64];
                match tokio::time::timeout(Duration::from_secs(120), s.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => closed += 1,
                    Ok(Ok(_)) => answered += 1,
                    Err(_) => open += 1,
                }
            }
            println!(
                "closed by the server: {closed}, answered: {answered}, still open after 120 s: {open}; done {:.1} s after the first connect",
                start.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}
