//! 500 real `sleep` tasks on one agent: time until all are RUNNING (then they are killed).
//! A real master, a real agent over HTTP on loopback, cgroups when the host allows.
//!
//! `cargo bench -p dcos-agent --bench real_tasks`

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use dcos_agent::Isolation;
use dcos_types::{Resources, TaskState};

const TASKS: usize = 500;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let c = start_master().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let isolation = if std::env::var("DCOS_BENCH_NO_CGROUPS").is_ok() {
        Isolation::None
    } else {
        Isolation::Auto
    };
    let (agent, _) = start_agent(&c.master_url, dir.path(), isolation, 16.0).await;
    let mut fw = Framework::new(&c.master);
    let start = Instant::now();
    let mut launched = 0;
    while launched < TASKS {
        let n = (TASKS - launched).min(250);
        let tasks = (launched..launched + n)
            .map(|i| {
                let mut t = shell_task(&format!("sleep-{i}"), "sleep 1000");
                t.resources = Resources::new(0.01, 32.0, 0.0);
                t.kill_grace_period_seconds = 1.0;
                t
            })
            .collect();
        fw.launch(tasks).await;
        launched += n;
        println!(
            "  accepted {launched} at {:.2} s",
            start.elapsed().as_secs_f64()
        );
    }
    let mut marks = [false; 5];
    loop {
        let running = fw
            .statuses
            .values()
            .filter(|s| s.state == TaskState::Running)
            .count();
        for (i, m) in marks.iter_mut().enumerate() {
            if !*m && running >= (i + 1) * 100 {
                *m = true;
                println!(
                    "  {} RUNNING at {:.2} s",
                    (i + 1) * 100,
                    start.elapsed().as_secs_f64()
                );
            }
        }
        if running == TASKS {
            break;
        }
        let failed = fw.statuses.values().find(|s| s.state.is_terminal());
        if let Some(f) = failed {
            panic!("a task ended: {f:?}");
        }
        if start.elapsed() > Duration::from_secs(120) {
            panic!("only {running} RUNNING after 120 s");
        }
        fw.pump(Duration::from_millis(100)).await;
    }
    let elapsed = start.elapsed();
    println!(
        "real tasks: {TASKS} `sleep` tasks RUNNING on one agent in {:.2} s ({:.0} tasks/s), isolation {:?}",
        elapsed.as_secs_f64(),
        TASKS as f64 / elapsed.as_secs_f64(),
        isolation
    );
    let kill_start = Instant::now();
    for i in 0..TASKS {
        fw.kill(&format!("sleep-{i}"), Some(1.0));
    }
    loop {
        let done = fw
            .statuses
            .values()
            .filter(|s| s.state.is_terminal())
            .count();
        if done == TASKS || kill_start.elapsed() > Duration::from_secs(120) {
            println!(
                "real tasks: {done} killed in {:.2} s",
                kill_start.elapsed().as_secs_f64()
            );
            break;
        }
        fw.pump(Duration::from_millis(100)).await;
    }
    agent.shutdown();
}
