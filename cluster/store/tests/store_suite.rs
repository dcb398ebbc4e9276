//! The same `Store` trait suite against the embedded store and a real ZooKeeper
//! (`ZkStore`), plus ZooKeeper-only tests: session loss ends leadership, an ensemble outage
//! fails writes with `Unavailable` (no hang) and the store recovers when it is back.
//!
//! ZooKeeper tests start their own server (Debian's `zookeeper` package) and print
//! "SKIPPED: zookeeper not installed" when it is absent.

mod common;

use std::time::Duration;

use common::{wait_for, Proxy, ZkServer};
use dcos_store::{EmbeddedStore, Op, Precondition, Store, StoreError, Watch, WatchEvent, ZkStore};

const TIMEOUT: Duration = Duration::from_secs(3);

/// The largest value a store accepts, if it has a limit.
type Limit = Option<usize>;

type Case = fn(&dyn Store, Limit);

const SUITE: &[(&str, Case)] = &[
    ("cas_and_versions", cas_and_versions),
    ("multi_is_atomic", multi_is_atomic),
    (
        "absent_and_exists_preconditions",
        absent_and_exists_preconditions,
    ),
    ("list_by_prefix", list_by_prefix),
    ("watches", watches),
    ("elections_hand_over_on_drop", elections_hand_over_on_drop),
    ("large_values", large_values),
    ("bad_keys", bad_keys),
];

#[test]
fn suite_on_embedded_store() {
    for (name, case) in SUITE {
        eprintln!("embedded: {name}");
        case(&EmbeddedStore::in_memory(), None);
    }
}

#[test]
fn suite_on_zookeeper() {
    let Some(server) = ZkServer::start() else {
        return;
    };
    for (name, case) in SUITE {
        eprintln!("zookeeper: {name}");
        let s = ZkStore::connect(&server.url(&format!("suite/{name}")), TIMEOUT).unwrap();
        case(&s, Some(dcos_store::zk::MAX_VALUE_BYTES));
    }
}

// ---- the suite --------------------------------------------------------------------------

fn cas_and_versions(s: &dyn Store, _: Limit) {
    assert_eq!(s.put("/a", b"1".to_vec(), Precondition::Absent).unwrap(), 1);
    let e = s
        .put("/a", b"2".to_vec(), Precondition::Absent)
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::Conflict { key, actual: Some(1), .. } if key == "/a"),
        "{e}"
    );
    assert_eq!(
        s.put("/a", b"2".to_vec(), Precondition::Version(1))
            .unwrap(),
        2
    );
    assert!(s
        .put("/a", b"3".to_vec(), Precondition::Version(1))
        .unwrap_err()
        .is_conflict());
    let e = s.get("/a").unwrap().unwrap();
    assert_eq!((e.value.as_slice(), e.version), (&b"2"[..], 2));
    assert_eq!(s.put("/a", b"3".to_vec(), Precondition::Any).unwrap(), 3);
    assert_eq!(s.put("/a", b"4".to_vec(), Precondition::Exists).unwrap(), 4);
    assert!(s
        .delete("/a", Precondition::Version(3))
        .unwrap_err()
        .is_conflict());
    s.delete("/a", Precondition::Version(4)).unwrap();
    assert!(s.get("/a").unwrap().is_none());
    // Deleting a missing key with Any is fine; with Exists it is a conflict.
    s.delete("/a", Precondition::Any).unwrap();
    assert!(s
        .delete("/a", Precondition::Exists)
        .unwrap_err()
        .is_conflict());
    assert!(s
        .put("/a", b"x".to_vec(), Precondition::Exists)
        .unwrap_err()
        .is_conflict());
    // Re-creation starts again at version 1.
    assert_eq!(s.put("/a", b"x".to_vec(), Precondition::Absent).unwrap(), 1);
    assert_eq!(s.put("/new", b"n".to_vec(), Precondition::Any).unwrap(), 1);
    // Empty values are values.
    assert_eq!(s.put("/empty", vec![], Precondition::Absent).unwrap(), 1);
    assert_eq!(s.get("/empty").unwrap().unwrap().value, Vec::<u8>::new());
}

fn multi_is_atomic(s: &dyn Store, _: Limit) {
    s.put("/x", b"x".to_vec(), Precondition::Any).unwrap();
    let err = s
        .commit(vec![
            Op::put("/y", b"y".to_vec()),
            Op::Check {
                key: "/x".into(),
                expect: Precondition::Version(7),
            },
        ])
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict { key, .. } if key == "/x"),
        "{err}"
    );
    assert!(s.get("/y").unwrap().is_none(), "nothing applied");
    // Later ops see the effect of earlier ones in the same commit.
    let v = s
        .commit(vec![
            Op::put("/z", b"1".to_vec()),
            Op::Put {
                key: "/z".into(),
                value: b"2".to_vec(),
                expect: Precondition::Version(1),
            },
            Op::Check {
                key: "/z".into(),
                expect: Precondition::Version(2),
            },
            Op::put("/deep/er/key", b"d".to_vec()),
            Op::delete("/x"),
        ])
        .unwrap();
    assert_eq!(v, vec![Some(1), Some(2), None, Some(1), None]);
    assert_eq!(s.get("/z").unwrap().unwrap().value, b"2");
    assert!(s.get("/x").unwrap().is_none());
    // A failure in the middle of a long commit leaves everything as it was.
    let err = s
        .commit(vec![
            Op::put("/p/1", b"1".to_vec()),
            Op::Put {
                key: "/z".into(),
                value: b"3".to_vec(),
                expect: Precondition::Version(2),
            },
            Op::Delete {
                key: "/deep/er/key".into(),
                expect: Precondition::Version(9),
            },
        ])
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict { key, expected: Precondition::Version(9), actual: Some(1) } if key == "/deep/er/key"),
        "{err}"
    );
    assert!(s.get("/p/1").unwrap().is_none());
    assert_eq!(s.get("/z").unwrap().unwrap().version, 2);
    assert_eq!(s.commit(vec![]).unwrap(), Vec::<Option<u64>>::new());
}

fn absent_and_exists_preconditions(s: &dyn Store, _: Limit) {
    s.put("/there", b"t".to_vec(), Precondition::Any).unwrap();
    // Check Absent passes for a missing key and writes nothing there.
    s.commit(vec![
        Op::Check {
            key: "/missing".into(),
            expect: Precondition::Absent,
        },
        Op::Check {
            key: "/there".into(),
            expect: Precondition::Exists,
        },
        Op::put("/written", b"w".to_vec()),
    ])
    .unwrap();
    assert!(s.get("/missing").unwrap().is_none());
    assert!(s.get("/written").unwrap().is_some());
    let e = s
        .commit(vec![
            Op::put("/not-written", b"w".to_vec()),
            Op::Check {
                key: "/there".into(),
                expect: Precondition::Absent,
            },
        ])
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::Conflict { key, .. } if key == "/there"),
        "{e}"
    );
    let e = s
        .commit(vec![Op::Check {
            key: "/missing".into(),
            expect: Precondition::Exists,
        }])
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::Conflict { key, actual: None, .. } if key == "/missing"),
        "{e}"
    );
    // Delete with Absent: a no-op on a missing key, a conflict on a present one.
    s.delete("/missing", Precondition::Absent).unwrap();
    assert!(s
        .delete("/there", Precondition::Absent)
        .unwrap_err()
        .is_conflict());
    assert!(s.get("/not-written").unwrap().is_none());
    assert!(s.get("/there").unwrap().is_some());
}

fn keys(s: &dyn Store, prefix: &str) -> Vec<String> {
    s.list(prefix).unwrap().into_iter().map(|e| e.key).collect()
}

fn list_by_prefix(s: &dyn Store, _: Limit) {
    for k in [
        "/apps/b",
        "/apps/a",
        "/appsx",
        "/tasks/t",
        "/apps/a/x",
        "/apps",
        "/apps-z",
        "/b",
    ] {
        s.put(k, k.as_bytes().to_vec(), Precondition::Any).unwrap();
    }
    assert_eq!(keys(s, "/apps/"), ["/apps/a", "/apps/a/x", "/apps/b"]);
    assert_eq!(
        keys(s, "/apps"),
        [
            "/apps",
            "/apps-z",
            "/apps/a",
            "/apps/a/x",
            "/apps/b",
            "/appsx"
        ]
    );
    assert_eq!(keys(s, "/ap"), keys(s, "/apps"));
    assert_eq!(keys(s, "/apps/a"), ["/apps/a", "/apps/a/x"]);
    assert_eq!(keys(s, "/apps/a/"), ["/apps/a/x"]);
    assert_eq!(keys(s, "/nothing/"), Vec::<String>::new());
    assert_eq!(keys(s, "/").len(), 8);
    assert_eq!(keys(s, ""), keys(s, "/"));
    let all = s.list("/").unwrap();
    assert!(
        all.windows(2).all(|w| w[0].key < w[1].key),
        "ordered by key"
    );
    assert!(all
        .iter()
        .all(|e| e.value == e.key.as_bytes() && e.version == 1));
    // A key and its descendants live independently.
    s.delete("/apps/a", Precondition::Any).unwrap();
    assert_eq!(keys(s, "/apps/"), ["/apps/a/x", "/apps/b"]);
    s.delete("/apps/a/x", Precondition::Any).unwrap();
    assert_eq!(keys(s, "/apps/"), ["/apps/b"]);
    // Keys with characters that need escaping.
    for k in ["/odd/100%", "/odd/\u{e000}", "/odd/sp ace"] {
        s.put(k, vec![1], Precondition::Absent).unwrap();
        assert_eq!(s.get(k).unwrap().unwrap().key, k);
    }
    assert_eq!(keys(s, "/odd/").len(), 3);
}

fn next_event(w: &mut Watch) -> WatchEvent {
    let mut out = None;
    wait_for("a watch event", || match w.try_recv() {
        Ok(ev) => {
            out = Some(ev);
            true
        }
        Err(_) => false,
    });
    out.unwrap()
}

fn watches(s: &dyn Store, _: Limit) {
    let mut w = s.watch("/apps/");
    s.put("/other", vec![], Precondition::Any).unwrap();
    s.put("/apps/a", vec![], Precondition::Any).unwrap();
    assert_eq!(
        next_event(&mut w),
        WatchEvent::Put {
            key: "/apps/a".into(),
            version: 1
        }
    );
    s.put("/apps/a", vec![1], Precondition::Version(1)).unwrap();
    assert_eq!(
        next_event(&mut w),
        WatchEvent::Put {
            key: "/apps/a".into(),
            version: 2
        }
    );
    s.put("/apps/deep/b", vec![], Precondition::Any).unwrap();
    assert_eq!(next_event(&mut w).key(), "/apps/deep/b");
    s.delete("/apps/a", Precondition::Any).unwrap();
    assert_eq!(
        next_event(&mut w),
        WatchEvent::Deleted {
            key: "/apps/a".into()
        }
    );
    // A prefix that is not a whole segment.
    let mut w2 = s.watch("/ta");
    s.put("/tb", vec![], Precondition::Any).unwrap();
    s.put("/tasks/1", vec![], Precondition::Any).unwrap();
    assert_eq!(next_event(&mut w2).key(), "/tasks/1");
    assert!(w2.try_recv().is_err(), "nothing outside the prefix");
    drop(w);
    s.put("/apps/after-drop", vec![], Precondition::Any)
        .unwrap();
}

fn elections_hand_over_on_drop(s: &dyn Store, _: Limit) {
    let a = s.elect("/leader", "a").unwrap();
    let b = s.elect("/leader", "b").unwrap();
    let c = s.elect("/leader", "c").unwrap();
    let other = s.elect("/other-election", "z").unwrap();
    assert!(a.is_leader());
    assert!(!b.is_leader());
    assert_eq!(b.leader().as_deref(), Some("a"));
    assert!(other.is_leader(), "elections are independent");
    drop(a);
    wait_for("b leads after a withdrew", || b.is_leader());
    wait_for("c sees b lead", || c.leader().as_deref() == Some("b"));
    drop(b);
    wait_for("c leads after b withdrew", || c.is_leader());
    let d = s.elect("/leader", "d").unwrap();
    assert_eq!(d.leader().as_deref(), Some("c"));
}

fn large_values(s: &dyn Store, limit: Limit) {
    match limit {
        Some(max) => {
            let e = s
                .put("/big", vec![7; max + 1], Precondition::Any)
                .unwrap_err();
            let msg = e.to_string();
            assert!(
                matches!(e, StoreError::TooLarge { ref key, size, .. } if key == "/big" && size == max + 1),
                "{msg}"
            );
            assert!(
                msg.contains("/big") && msg.contains(&(max + 1).to_string()),
                "{msg}"
            );
            assert!(s.get("/big").unwrap().is_none());
            // The limit itself fits.
            s.put("/big", vec![7; max], Precondition::Any).unwrap();
            assert_eq!(s.get("/big").unwrap().unwrap().value.len(), max);
            // So does the whole commit: two values under the limit but over it together.
            let e = s
                .commit(vec![
                    Op::put("/h1", vec![1; max / 2 + 1]),
                    Op::put("/h2", vec![1; max / 2 + 1]),
                ])
                .unwrap_err();
            assert!(matches!(e, StoreError::TooLarge { .. }), "{e}");
        }
        None => {
            s.put("/big", vec![7; 2 << 20], Precondition::Any).unwrap();
            assert_eq!(s.get("/big").unwrap().unwrap().value.len(), 2 << 20);
        }
    }
}

fn bad_keys(s: &dyn Store, _: Limit) {
    for k in ["a/b", "/a//b", "/a/", "/a/../b", "/a\nb"] {
        assert!(
            matches!(s.get(k), Err(StoreError::InvalidKey { .. })),
            "get {k:?}"
        );
        assert!(
            matches!(
                s.put(k, vec![], Precondition::Any),
                Err(StoreError::InvalidKey { .. })
            ),
            "put {k:?}"
        );
    }
}

// ---- ZooKeeper only ---------------------------------------------------------------------

#[test]
fn bad_urls_and_unreachable_ensembles_are_clear_errors() {
    for bad in [
        "http://127.0.0.1:2181/x",
        "zk://127.0.0.1/x",
        "zk://127.0.0.1:2181",
    ] {
        let e = ZkStore::connect(bad, TIMEOUT).err().unwrap().to_string();
        assert!(e.contains("bad ZooKeeper URL") && e.contains(bad), "{e}");
    }
    // Nothing listens there: a clear error within the timeout, no hang.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = ZkStore::connect(&format!("zk://127.0.0.1:{port}/x"), Duration::from_secs(1))
        .err()
        .unwrap();
    assert!(matches!(e, StoreError::Unavailable(_)), "{e}");
    assert!(e.to_string().contains(&port.to_string()), "{e}");
}

#[test]
fn two_stores_share_state_and_elections() {
    let Some(server) = ZkServer::start() else {
        return;
    };
    let s1 = ZkStore::connect(&server.url("shared"), TIMEOUT).unwrap();
    let s2 = ZkStore::connect(&server.url("shared"), TIMEOUT).unwrap();
    let other_root = ZkStore::connect(&server.url("elsewhere"), TIMEOUT).unwrap();
    let mut w = s2.watch("/apps/");
    s1.put("/apps/web", b"1".to_vec(), Precondition::Absent)
        .unwrap();
    assert_eq!(s2.get("/apps/web").unwrap().unwrap().value, b"1");
    assert!(s2
        .put("/apps/web", b"2".to_vec(), Precondition::Absent)
        .unwrap_err()
        .is_conflict());
    assert_eq!(next_event(&mut w).key(), "/apps/web");
    assert!(
        other_root.get("/apps/web").unwrap().is_none(),
        "roots are separate"
    );

    let a = s1.elect("/master", "a").unwrap();
    let b = s2.elect("/master", "b").unwrap();
    assert!(a.is_leader());
    assert_eq!(b.leader().as_deref(), Some("a"));
    drop(a);
    wait_for("b on the other store leads", || b.is_leader());
}

#[test]
fn session_loss_ends_leadership() {
    let Some(server) = ZkServer::start() else {
        return;
    };
    // s1 reaches ZooKeeper through a proxy the test cuts, as a partition would.
    let proxy = Proxy::start(server.port);
    let s1 = ZkStore::connect(&proxy.url("session"), TIMEOUT).unwrap();
    let s2 = ZkStore::connect(&server.url("session"), TIMEOUT).unwrap();
    let a = s1.elect("/master", "a").unwrap();
    let b = s2.elect("/master", "b").unwrap();
    assert!(a.is_leader());
    let mut w = s1.watch("/k/");
    proxy.set_blocked(true);
    wait_for("a stops leading once disconnected", || !a.is_leader());
    assert!(s1.writable().is_err());
    // The server expires s1's session after the session timeout; b takes over.
    wait_for("b takes over", || b.is_leader());
    assert!(!a.is_leader());
    proxy.set_blocked(false);
    // s1 opens a new session by itself: it serves again, a stands again behind b, and its
    // watch is registered on the new session.
    wait_for("s1 writable again", || s1.writable().is_ok());
    wait_for("a sees b lead", || a.leader().as_deref() == Some("b"));
    s1.put("/k/after", vec![], Precondition::Any).unwrap();
    let mut seen = false;
    wait_for("the watch sees writes after the new session", || {
        while let Ok(ev) = w.try_recv() {
            seen |= ev.key() == "/k/after";
        }
        if !seen {
            let _ = s2.put("/k/after", vec![], Precondition::Any);
        }
        seen
    });
}

#[test]
fn ensemble_outage_fails_writes_then_recovers() {
    let Some(mut server) = ZkServer::start() else {
        return;
    };
    let s = ZkStore::connect(&server.url("outage"), Duration::from_secs(2)).unwrap();
    s.put("/k", b"1".to_vec(), Precondition::Absent).unwrap();
    let a = s.elect("/master", "a").unwrap();
    assert!(a.is_leader());
    assert!(s.writable().is_ok());

    server.stop();
    wait_for("the leader stops leading without ZooKeeper", || {
        !a.is_leader()
    });
    wait_for("writable() reports the lost session", || {
        s.writable().is_err()
    });
    let e = s.put("/k", b"2".to_vec(), Precondition::Any).unwrap_err();
    assert!(matches!(e, StoreError::Unavailable(_)), "{e}");
    eprintln!("write during the outage: {e}");
    match s.get("/k") {
        Err(StoreError::Unavailable(m)) => eprintln!("read during the outage: {m}"),
        other => panic!("read during the outage: {other:?}"),
    }

    server.restart();
    wait_for("writable again", || s.writable().is_ok());
    wait_for("a write succeeds", || {
        s.put("/k", b"3".to_vec(), Precondition::Any).is_ok()
    });
    assert_eq!(s.get("/k").unwrap().unwrap().value, b"3");
    wait_for("a leads again", || a.is_leader());
}
