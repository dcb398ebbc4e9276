//! `dns-bench`: queries/s and latency of the DNS server at 1,000 apps / 10,000 tasks, the cost
//! of a record rebuild, and the time from "task running in the state" to "answered".
//!
//! `cargo run --release -p dcos-dns --bin dns-bench -- --apps 1000 --tasks-per-app 10`

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use dcos_dns::refresh::Refresher;
use dcos_dns::{DnsOptions, DnsService, FnSource, NamingConfig, Zone};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use rand::Rng;
use serde_json::{json, Value};

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, default_value_t = 1000)]
    apps: usize,
    #[arg(long, default_value_t = 10)]
    tasks_per_app: usize,
    #[arg(long, default_value_t = 100)]
    agents: usize,
    /// Concurrent UDP clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Refresh interval of the server, ms.
    #[arg(long, default_value_t = 250)]
    refresh_ms: u64,
}

fn state(args: &Args, extra: Option<usize>) -> Value {
    let slaves: Vec<Value> = (0..args.agents)
        .map(|i| json!({"id": format!("agent-S{i}"), "hostname": format!("10.1.{}.{}", i / 250, i % 250 + 1),
                        "pid": format!("slave(1)@10.1.{}.{}:5051", i / 250, i % 250 + 1)}))
        .collect();
    let mut tasks = Vec::with_capacity(args.apps * args.tasks_per_app);
    let mut n = 0usize;
    for a in 0..args.apps {
        for t in 0..args.tasks_per_app {
            n += 1;
            tasks.push(json!({
                "id": format!("grp{}_app{a}.instance-{t}-{n:08x}._app.1", a % 10),
                "name": format!("app{a}.grp{}", a % 10),
                "slave_id": format!("agent-S{}", n % args.agents),
                "state": "TASK_RUNNING",
                "resources": {"cpus": 0.1, "mem": 32, "ports": format!("[{}-{}]", 20000 + n % 10000, 20000 + n % 10000)},
                "statuses": [{"state": "TASK_RUNNING", "timestamp": 1.0}],
            }));
        }
    }
    if let Some(k) = extra {
        tasks.push(
            json!({"id": format!("fresh{k}.1"), "name": format!("fresh{k}"), "slave_id": "agent-S0",
                          "state": "TASK_RUNNING", "resources": {"ports": "[31000-31000]"}}),
        );
    }
    json!({"leader": "master@10.0.0.1:5050", "slaves": slaves,
           "frameworks": [{"name": "marathon", "pid": "scheduler-m@10.0.0.1:8080", "tasks": tasks}]})
}

fn query(name: &str, t: RecordType) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(0)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true);
    if let Ok(n) = Name::from_ascii(name) {
        m.add_query(Query::query(n, t));
    }
    m.to_vec().unwrap_or_default()
}

fn pct(v: &[Duration], p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let st = state(&args, None);
    let t = Instant::now();
    let bytes = serde_json::to_vec(&st)?;
    let ser = t.elapsed();
    println!(
        "state: {} apps, {} tasks, {} agents, {:.1} MB JSON (serialise {:.1?})",
        args.apps,
        args.apps * args.tasks_per_app,
        args.agents,
        bytes.len() as f64 / 1e6,
        ser
    );

    // Rebuild cost: parse + generate (the refresher skips unchanged states by hash).
    let b2 = bytes.clone();
    let mut r = Refresher::new(
        Zone::new(),
        Arc::new(FnSource(move || Ok(b2.clone()))),
        NamingConfig::default(),
        vec![],
    );
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        r = {
            let mut fresh = Refresher::new(
                r.zone.clone(),
                Arc::new(FnSource({
                    let b = bytes.clone();
                    move || Ok(b.clone())
                })),
                NamingConfig::default(),
                vec![],
            );
            fresh.refresh_once().await.map_err(anyhow::Error::msg)?;
            fresh
        };
        times.push(t.elapsed());
    }
    times.sort();
    let t = Instant::now();
    r.refresh_once().await.map_err(anyhow::Error::msg)?;
    let unchanged = t.elapsed();
    let records = r
        .zone
        .get()
        .map(|z| (z.len(), z.hosts.len() + z.srvs.len()))
        .unwrap_or((0, 0));
    println!(
        "rebuild (fetch+hash+parse+generate): median {:.1?}, max {:.1?}; unchanged state (fetch+hash): {:.1?}; {} records under {} names",
        times[times.len() / 2],
        times[times.len() - 1],
        unchanged,
        records.0,
        records.1
    );

    let t = Instant::now();
    let snap: dcos_dns::Snapshot = serde_json::from_slice(&bytes)?;
    let parse = t.elapsed();
    let t = Instant::now();
    let rs = dcos_dns::generate(&snap, &NamingConfig::default(), 1);
    let gen = t.elapsed();
    println!(
        "  of which parse {parse:.1?}, generate {gen:.1?} ({} tasks with records)",
        rs.tasks
    );
    drop((snap, rs));

    // The server.
    let shared = Arc::new(Mutex::new(bytes));
    let s = shared.clone();
    let source = FnSource(move || Ok(s.lock().map_err(|e| e.to_string())?.clone()));
    let mut opts = DnsOptions::new("127.0.0.1:0".parse()?);
    opts.refresh = Duration::from_millis(args.refresh_ms);
    let svc = DnsService::start(opts, Arc::new(source)).await?;
    let addr = svc.server.udp_addr;

    // Load: a mix of A (hit), SRV (10 answers), and NXDOMAIN.
    let mut names = Vec::new();
    for a in 0..args.apps {
        names.push(query(
            &format!("app{a}-grp{}.marathon.mesos.", a % 10),
            RecordType::A,
        ));
        names.push(query(
            &format!("_app{a}-grp{}._tcp.marathon.mesos.", a % 10),
            RecordType::SRV,
        ));
        names.push(query(&format!("missing{a}.marathon.mesos."), RecordType::A));
    }
    let names = Arc::new(names);
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for c in 0..args.clients {
        let names = names.clone();
        let stop = stop.clone();
        handles.push(tokio::spawn(async move {
            let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
            sock.connect(addr).await?;
            let mut lat = Vec::new();
            let mut lost = 0u64;
            let mut buf = vec![0u8; 4096];
            let mut id: u16 = (c as u16).wrapping_mul(4099);
            while !stop.load(Ordering::Relaxed) {
                let i = rand::thread_rng().gen_range(0..names.len());
                let mut q = names[i].clone();
                id = id.wrapping_add(1);
                q[..2].copy_from_slice(&id.to_be_bytes());
                let t = Instant::now();
                sock.send(&q).await?;
                loop {
                    match tokio::time::timeout(Duration::from_secs(1), sock.recv(&mut buf)).await {
                        Ok(Ok(n)) if n >= 2 && buf[..2] == id.to_be_bytes() => {
                            lat.push(t.elapsed());
                            break;
                        }
                        Ok(Ok(_)) => continue,
                        _ => {
                            lost += 1;
                            break;
                        }
                    }
                }
            }
            Ok::<_, std::io::Error>((lat, lost))
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut lost = 0;
    for h in handles {
        let (l, x) = h.await??;
        all.extend(l);
        lost += x;
    }
    let elapsed = started.elapsed();
    all.sort();
    println!(
        "UDP load: {} clients, {:.0} queries/s, p50 {:.0?}, p99 {:.0?}, max {:.1?}, {} lost ({} queries in {:.1?})",
        args.clients,
        all.len() as f64 / elapsed.as_secs_f64(),
        pct(&all, 0.5),
        pct(&all, 0.99),
        all.last().copied().unwrap_or_default(),
        lost,
        all.len(),
        elapsed
    );

    // Freshness: a new running task in the state → answered.
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    sock.connect(addr).await?;
    let mut fresh = Vec::new();
    let mut buf = vec![0u8; 4096];
    for k in 0..10 {
        tokio::time::sleep(Duration::from_millis(
            rand::thread_rng().gen_range(0..args.refresh_ms.max(1)),
        ))
        .await;
        let next = serde_json::to_vec(&state(&args, Some(k)))?;
        let q = query(&format!("fresh{k}.marathon.mesos."), RecordType::A);
        let t = Instant::now();
        if let Ok(mut g) = shared.lock() {
            *g = next;
        }
        loop {
            sock.send(&q).await?;
            if let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_secs(1), sock.recv(&mut buf)).await
            {
                if let Ok(m) = Message::from_vec(&buf[..n]) {
                    if m.response_code() == ResponseCode::NoError && !m.answers().is_empty() {
                        break;
                    }
                }
            }
            if t.elapsed() > Duration::from_secs(30) {
                anyhow::bail!("fresh{k} never answered");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        fresh.push(t.elapsed());
    }
    fresh.sort();
    println!(
        "task running in the state → DNS answer: median {:.0?}, max {:.0?} (refresh every {} ms, 10 samples)",
        pct(&fresh, 0.5),
        fresh.last().copied().unwrap_or_default(),
        args.refresh_ms
    );
    svc.stop().await;
    Ok(())
}
