//! Commit latency of the embedded store: `cargo bench -p dcos-store --bench commit`.
//!
//! Prints p50/p99 latency and commits per second for single-key commits of a 300-byte value
//! (the size of a stored task) with fsync on (what a cluster runs) and off (simulations), in a
//! temporary folder (set TMPDIR to measure another disk).

use std::time::{Duration, Instant};

use dcos_store::{EmbeddedStore, Op, Options, Store};

fn run(fsync: bool, n: usize) -> (Duration, Duration, f64) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open_with(
        dir.path(),
        Options {
            fsync,
            ..Options::default()
        },
    )
    .unwrap();
    let value = vec![b'x'; 300];
    let mut lat = Vec::with_capacity(n);
    let t0 = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        store
            .commit(vec![Op::put(
                format!("/bench/tasks/{}", i % 1000),
                value.clone(),
            )])
            .unwrap();
        lat.push(t.elapsed());
    }
    let total = t0.elapsed();
    lat.sort();
    (
        lat[n / 2],
        lat[n * 99 / 100],
        n as f64 / total.as_secs_f64(),
    )
}

fn main() {
    // `cargo bench` passes --bench; nothing else to parse.
    for (fsync, n) in [(true, 2_000), (false, 200_000)] {
        let (p50, p99, rate) = run(fsync, n);
        println!(
            "commit fsync={fsync:<5} n={n:<7} p50 {:>8.1} µs  p99 {:>8.1} µs  {:>9.0} commits/s",
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6,
            rate
        );
    }
}
