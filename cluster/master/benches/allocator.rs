//! One DRF allocation cycle over 1,000 agents and 100 frameworks.
//!
//! `cargo bench -p dcos-master --bench allocator`

use std::collections::{BTreeMap, HashMap};

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use dcos_master::allocator::{allocate, AgentSnapshot, FrameworkSnapshot, RolePolicy, Snapshot};
use dcos_types::Resources;

fn snapshot(agents: usize, frameworks: usize) -> Snapshot {
    let agents = (0..agents)
        .map(|i| {
            let mut total = BTreeMap::new();
            total.insert(
                "*".to_string(),
                Resources::new(16.0, 65536.0, 100_000.0).with_ports([(31000, 32000)]),
            );
            // A tenth of the agents are public; some are half used.
            if i % 10 == 0 {
                total.insert(
                    "slave_public".to_string(),
                    Resources::new(4.0, 8192.0, 10_000.0).with_ports([(80, 80), (443, 443)]),
                );
            }
            let mut available = total.clone();
            if i % 3 == 0 {
                available.insert("*".to_string(), Resources::new(8.0, 30000.0, 50_000.0));
            }
            AgentSnapshot {
                id: format!("agent-{i:04}").into(),
                total,
                available,
            }
        })
        .collect();
    let frameworks = (0..frameworks)
        .map(|i| {
            let roles = if i % 10 == 0 {
                vec!["slave_public".to_string(), "*".to_string()]
            } else {
                vec![format!("role-{}", i % 7)]
            };
            let mut filters = HashMap::new();
            for a in 0..5 {
                filters.insert(
                    format!("agent-{:04}", (i * 7 + a) % 1000).into(),
                    Resources::new(1.0, 1.0, 1.0),
                );
            }
            FrameworkSnapshot {
                id: format!("fw-{i:03}").into(),
                roles,
                allocated: Resources::new(i as f64, 1000.0 * i as f64, 0.0),
                suppressed: i % 13 == 0,
                filters,
            }
        })
        .collect();
    let mut roles = BTreeMap::new();
    roles.insert(
        "role-1".to_string(),
        RolePolicy {
            weight: Some(2.0),
            guarantee: Some(Resources::new(100.0, 100_000.0, 0.0)),
        },
    );
    Snapshot {
        agents,
        frameworks,
        roles,
    }
}

fn bench(c: &mut Criterion) {
    let snap = snapshot(1000, 100);
    let plan = allocate(&snap);
    assert!(!plan.offers.is_empty());
    c.bench_function("allocate 1000 agents x 100 frameworks", |b| {
        b.iter(|| allocate(black_box(&snap)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
