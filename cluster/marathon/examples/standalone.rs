//! Marathon served standalone over a simulated master (no real processes), for trying
//! clients against it: `cargo run -p dcos-marathon --example standalone -- [PORT] [AGENTS]`.
//! Serves the API at `/` and under `/service/marathon/` (as Admin Router mounts it).

use std::sync::Arc;
use std::time::Duration;

use dcos_marathon::sim::{SimMaster, SimOptions};
use dcos_marathon::{Marathon, MarathonConfig};
use dcos_store::EmbeddedStore;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().map(|p| p.parse()).transpose()?.unwrap_or(0);
    let agents: usize = args.next().map(|p| p.parse()).transpose()?.unwrap_or(3);
    let sim = SimMaster::new(SimOptions::default());
    for i in 0..agents {
        sim.add_simple_agent(&format!("agent-{i}"), 4.0, 8192.0);
    }
    sim.spawn_ticker(Duration::from_millis(100));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let config = MarathonConfig {
        hostname: "127.0.0.1".into(),
        http_port: addr.port(),
        ..MarathonConfig::default()
    };
    let m = Marathon::start(sim, Arc::new(EmbeddedStore::in_memory()), config)?;
    let app = axum::Router::new()
        .nest("/service/marathon", m.router())
        .fallback_service(m.router());
    println!("marathon listening on http://{addr}");
    axum::serve(listener, app).await?;
    Ok(())
}
