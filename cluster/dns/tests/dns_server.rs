//! The DNS server on a free loopback port, queried with a real client (hickory-client), an
//! upstream that is a second local server, junk packets, and the HTTP API.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dcos_dns::{DnsOptions, DnsServer, DnsService, FnSource, RecordSet, ServerConfig, Zone};
use hickory_client::client::{Client, ClientHandle};
use hickory_client::proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_client::proto::rr::{DNSClass, Name, RData, RecordType};
use hickory_client::proto::runtime::TokioRuntimeProvider;
use hickory_client::proto::tcp::TcpClientStream;
use hickory_client::proto::udp::UdpClientStream;
use rand::{Rng, RngCore};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

fn state(tasks: Vec<Value>) -> Value {
    json!({
        "leader": "master@127.0.0.1:5050",
        "slaves": [{"id": "abc-S0", "pid": "slave(1)@127.0.0.2:5051", "hostname": "127.0.0.2"}],
        "frameworks": [{"name": "marathon", "pid": "scheduler-1@127.0.0.1:8080", "tasks": tasks}],
    })
}

fn task(id: &str, name: &str, state: &str, ports: &str) -> Value {
    json!({"id": id, "name": name, "slave_id": "abc-S0", "state": state,
           "resources": {"ports": ports}})
}

type Shared = Arc<Mutex<Value>>;

async fn start(initial: Value, resolvers: Vec<SocketAddr>) -> (DnsService, Shared) {
    let shared: Shared = Arc::new(Mutex::new(initial));
    let s = shared.clone();
    let source = FnSource(move || {
        serde_json::to_vec(&*s.lock().map_err(|e| e.to_string())?).map_err(|e| e.to_string())
    });
    let mut opts = DnsOptions::new("127.0.0.1:0".parse().unwrap());
    opts.resolvers = resolvers;
    opts.refresh = Duration::from_millis(50);
    opts.server.timeout = Duration::from_millis(500);
    let svc = DnsService::start(opts, Arc::new(source)).await.unwrap();
    (svc, shared)
}

async fn udp_client(addr: SocketAddr) -> Client {
    let stream = UdpClientStream::builder(addr, TokioRuntimeProvider::default()).build();
    let (client, bg) = Client::connect(stream).await.unwrap();
    tokio::spawn(bg);
    client
}

async fn tcp_client(addr: SocketAddr) -> Client {
    let (stream, sender) = TcpClientStream::new(addr, None, None, TokioRuntimeProvider::new());
    let (client, bg) = Client::new(stream, sender, None).await.unwrap();
    tokio::spawn(bg);
    client
}

fn name(s: &str) -> Name {
    Name::from_str(s).unwrap()
}

fn ips(m: &hickory_client::proto::xfer::DnsResponse) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = m
        .answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn answers_mesos_names_over_udp_and_tcp() {
    let (svc, _) = start(
        state(vec![task(
            "group_web.1",
            "web.group",
            "TASK_RUNNING",
            "[31000-31001]",
        )]),
        vec![],
    )
    .await;
    let agent: IpAddr = "127.0.0.2".parse().unwrap();
    for mut c in [
        udp_client(svc.server.udp_addr).await,
        tcp_client(svc.server.tcp_addr).await,
    ] {
        let r = c
            .query(
                name("Web-Group.Marathon.Mesos."),
                DNSClass::IN,
                RecordType::A,
            )
            .await
            .unwrap();
        assert_eq!(r.response_code(), ResponseCode::NoError);
        assert!(r.authoritative());
        assert_eq!(ips(&r), vec![agent]);

        let r = c
            .query(
                name("_web-group._tcp.marathon.mesos."),
                DNSClass::IN,
                RecordType::SRV,
            )
            .await
            .unwrap();
        let mut ports: Vec<u16> = r
            .answers()
            .iter()
            .filter_map(|a| match a.data() {
                RData::SRV(s) => {
                    assert_eq!((s.priority(), s.weight()), (0, 1));
                    assert!(s.target().to_ascii().starts_with("web-group-"));
                    assert!(s.target().to_ascii().ends_with(".marathon.slave.mesos."));
                    Some(s.port())
                }
                _ => None,
            })
            .collect();
        ports.sort();
        assert_eq!(ports, vec![31000, 31001]);
        assert!(
            r.additionals()
                .iter()
                .any(|a| matches!(a.data(), RData::A(x) if IpAddr::V4(x.0) == agent)),
            "the target's A record comes in ADDITIONAL"
        );

        for (n, want) in [
            ("leader.mesos.", "127.0.0.1"),
            ("master.mesos.", "127.0.0.1"),
            ("slave.mesos.", "127.0.0.2"),
            ("marathon.mesos.", "127.0.0.1"),
        ] {
            let r = c.query(name(n), DNSClass::IN, RecordType::A).await.unwrap();
            assert_eq!(ips(&r), vec![want.parse::<IpAddr>().unwrap()], "{n}");
        }

        // Unknown name: NXDOMAIN + SOA; SRV: NOERROR, empty, no SOA; AAAA of a v4-only name:
        // NODATA + SOA.
        let r = c
            .query(name("foo.marathon.mesos."), DNSClass::IN, RecordType::A)
            .await
            .unwrap();
        assert_eq!(r.response_code(), ResponseCode::NXDomain);
        assert!(r
            .name_servers()
            .iter()
            .any(|a| a.record_type() == RecordType::SOA));
        let r = c
            .query(
                name("_foo._tcp.marathon.mesos."),
                DNSClass::IN,
                RecordType::SRV,
            )
            .await
            .unwrap();
        assert_eq!(r.response_code(), ResponseCode::NoError);
        assert!(r.answers().is_empty() && r.name_servers().is_empty());
        let r = c
            .query(name("leader.mesos."), DNSClass::IN, RecordType::AAAA)
            .await
            .unwrap();
        assert_eq!(r.response_code(), ResponseCode::NoError);
        assert!(r.answers().is_empty());
        let r = c
            .query(name("mesos."), DNSClass::IN, RecordType::SOA)
            .await
            .unwrap();
        assert_eq!(r.answers().len(), 1);
        // No upstream configured: names outside the zone are REFUSED.
        let r = c
            .query(name("example.com."), DNSClass::IN, RecordType::A)
            .await
            .unwrap();
        assert_eq!(r.response_code(), ResponseCode::Refused);
    }
    svc.stop().await;
}

#[tokio::test]
async fn records_follow_the_state() {
    let (svc, shared) = start(state(vec![]), vec![]).await;
    let mut c = udp_client(svc.server.udp_addr).await;
    let q = |c: &mut Client| {
        let mut c = c.clone();
        async move {
            c.query(name("api.marathon.mesos."), DNSClass::IN, RecordType::A)
                .await
                .unwrap()
                .response_code()
        }
    };
    assert_eq!(q(&mut c).await, ResponseCode::NXDomain);
    *shared.lock().unwrap() = state(vec![task("api.1", "api", "TASK_RUNNING", "[31000-31000]")]);
    let t = Instant::now();
    while q(&mut c).await != ResponseCode::NoError {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the task never appeared"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!(
        "task running → answered in {:?} (refresh 50 ms)",
        t.elapsed()
    );
    *shared.lock().unwrap() = state(vec![task("api.1", "api", "TASK_KILLED", "[31000-31000]")]);
    let t = Instant::now();
    while q(&mut c).await != ResponseCode::NXDomain {
        assert!(t.elapsed() < Duration::from_secs(10), "the task never left");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // A broken state keeps the previous set.
    *shared.lock().unwrap() = json!("not a state");
    tokio::time::sleep(Duration::from_millis(150)).await;
    let r = c
        .query(name("leader.mesos."), DNSClass::IN, RecordType::A)
        .await
        .unwrap();
    assert_eq!(r.response_code(), ResponseCode::NoError);
    assert!(svc.stats.errors.load(std::sync::atomic::Ordering::Relaxed) > 0);
    svc.stop().await;
}

/// A second local server authoritative for `example.com`, as the upstream.
async fn upstream() -> DnsServer {
    let zone = Zone::new();
    let mut rs = RecordSet {
        zone: "example.com.".into(),
        serial: 1,
        ..Default::default()
    };
    rs.hosts
        .entry("www.example.com.".into())
        .or_default()
        .insert("192.0.2.7".parse().unwrap());
    zone.set(rs);
    let cfg = ServerConfig {
        domain: "example.com".into(),
        soa_mname: "ns1.example.com".into(),
        soa_rname: "root.example.com".into(),
        ..Default::default()
    };
    DnsServer::start("127.0.0.1:0".parse().unwrap(), zone, cfg)
        .await
        .unwrap()
}

#[tokio::test]
async fn forwards_other_names_to_upstreams_in_order() {
    let up = upstream().await;
    // A dead upstream first (a bound socket that never answers), then the real one.
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead_tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    let (svc, _) = start(state(vec![]), vec![dead_addr, up.udp_addr]).await;
    for mut c in [
        udp_client(svc.server.udp_addr).await,
        tcp_client(svc.server.tcp_addr).await,
    ] {
        let r = c
            .query(name("www.example.com."), DNSClass::IN, RecordType::A)
            .await
            .unwrap();
        assert_eq!(r.response_code(), ResponseCode::NoError);
        assert_eq!(ips(&r), vec!["192.0.2.7".parse::<IpAddr>().unwrap()]);
        assert!(!r.authoritative());
        assert!(r.recursion_available());
        let r = c
            .query(name("nope.example.com."), DNSClass::IN, RecordType::A)
            .await
            .unwrap();
        assert_eq!(r.response_code(), ResponseCode::NXDomain);
    }
    svc.stop().await;
    // Every upstream failing: SERVFAIL.
    let (svc, _) = start(
        state(vec![]),
        vec![dead_addr, dead_tcp.local_addr().unwrap()],
    )
    .await;
    let mut c = udp_client(svc.server.udp_addr).await;
    let r = c
        .query(name("www.example.com."), DNSClass::IN, RecordType::A)
        .await
        .unwrap();
    assert_eq!(r.response_code(), ResponseCode::ServFail);
    svc.stop().await;
    up.stop().await;
}

fn raw_query(n: &str, t: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(4242)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true);
    m.add_query(Query::query(name(n), t));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

async fn udp_exchange(addr: SocketAddr, q: &[u8]) -> Option<Vec<u8>> {
    let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    s.send_to(q, addr).await.unwrap();
    let mut buf = vec![0u8; 65536];
    match tokio::time::timeout(Duration::from_secs(2), s.recv(&mut buf)).await {
        Ok(Ok(n)) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

async fn tcp_exchange(addr: SocketAddr, q: &[u8]) -> Vec<u8> {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut out = (q.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(q);
    s.write_all(&out).await.unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).await.unwrap();
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).await.unwrap();
    buf
}

#[tokio::test]
async fn large_answers_are_truncated_with_tc_over_udp() {
    // 40 tasks of one app on 40 agents: 40 A records for big.marathon.mesos.
    let slaves: Vec<Value> = (0..40)
        .map(|i| json!({"id": format!("a-S{i}"), "pid": format!("slave(1)@10.0.{}.{}:5051", i / 200, i % 200 + 1)}))
        .collect();
    let tasks: Vec<Value> = (0..40)
        .map(|i| {
            json!({"id": format!("big.{i}"), "name": "big", "slave_id": format!("a-S{i}"),
                        "state": "TASK_RUNNING", "resources": {"ports": "[31000-31000]"}})
        })
        .collect();
    let st = json!({"leader": "master@127.0.0.1:5050", "slaves": slaves,
                    "frameworks": [{"name": "marathon", "tasks": tasks}]});
    let (svc, _) = start(st, vec![]).await;
    let addr = svc.server.udp_addr;
    let bytes = udp_exchange(addr, &raw_query("big.marathon.mesos.", RecordType::A, None))
        .await
        .unwrap();
    assert!(bytes.len() <= 512, "{} bytes", bytes.len());
    let m = Message::from_vec(&bytes).unwrap();
    assert!(m.truncated());
    assert!(!m.answers().is_empty() && m.answers().len() < 40);
    let bytes = udp_exchange(
        addr,
        &raw_query("big.marathon.mesos.", RecordType::A, Some(4096)),
    )
    .await
    .unwrap();
    let m = Message::from_vec(&bytes).unwrap();
    assert!(!m.truncated());
    assert_eq!(m.answers().len(), 40);
    // SRV: additionals go first.
    let bytes = udp_exchange(
        addr,
        &raw_query("_big._tcp.marathon.mesos.", RecordType::SRV, None),
    )
    .await
    .unwrap();
    let m = Message::from_vec(&bytes).unwrap();
    assert!(bytes.len() <= 512 && m.truncated() && m.additionals().is_empty());
    let m = Message::from_vec(
        &tcp_exchange(
            svc.server.tcp_addr,
            &raw_query("_big._tcp.marathon.mesos.", RecordType::SRV, None),
        )
        .await,
    )
    .unwrap();
    assert!(!m.truncated());
    assert_eq!(m.answers().len(), 40);
    assert_eq!(m.additionals().len(), 40);
    svc.stop().await;
}

#[tokio::test]
async fn junk_packets_never_stop_the_server() {
    let up = upstream().await;
    let (svc, _) = start(
        state(vec![task("web.1", "web", "TASK_RUNNING", "[31000-31000]")]),
        vec![up.udp_addr],
    )
    .await;
    let (uaddr, taddr) = (svc.server.udp_addr, svc.server.tcp_addr);
    let mut rng = rand::thread_rng();
    let valid = raw_query("web.marathon.mesos.", RecordType::A, None);
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..2000 {
        let pkt: Vec<u8> = match i % 5 {
            // random bytes of any size, up to beyond 4 KiB
            0 | 1 => {
                let mut v = vec![0u8; rng.gen_range(0..5000)];
                rng.fill_bytes(&mut v);
                v
            }
            // a valid query cut short
            2 => valid[..rng.gen_range(0..valid.len())].to_vec(),
            // a valid query with random bytes flipped
            3 => {
                let mut v = valid.clone();
                for _ in 0..3 {
                    let at = rng.gen_range(0..v.len());
                    v[at] = rng.gen();
                }
                v
            }
            // valid header claiming many records, then garbage
            _ => {
                let mut v = vec![
                    0x12, 0x34, 0x01, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                ];
                v.extend((0..rng.gen_range(0..600)).map(|_| rng.gen::<u8>()));
                v
            }
        };
        let _ = sock.send_to(&pkt, uaddr).await;
    }
    // TCP: garbage, a length prefix that lies, a connection closed mid-message, and
    // random bytes after a valid length.
    for i in 0..200 {
        let Ok(mut s) = tokio::net::TcpStream::connect(taddr).await else {
            continue;
        };
        let mut v = match i % 4 {
            0 => vec![0xff, 0xff],
            1 => {
                let mut v = (valid.len() as u16).to_be_bytes().to_vec();
                v.extend_from_slice(&valid[..valid.len() / 2]);
                v
            }
            _ => vec![0u8; rng.gen_range(0..3000)],
        };
        if i % 4 >= 2 {
            rng.fill_bytes(&mut v);
        }
        let _ = s.write_all(&v).await;
        drop(s);
    }
    // Still answering, both transports, both local and forwarded.
    let bytes = udp_exchange(uaddr, &valid)
        .await
        .expect("UDP answer after junk");
    let m = Message::from_vec(&bytes).unwrap();
    assert_eq!(m.response_code(), ResponseCode::NoError);
    assert_eq!(m.answers().len(), 1);
    let m = Message::from_vec(&tcp_exchange(taddr, &valid).await).unwrap();
    assert_eq!(m.answers().len(), 1);
    let m = Message::from_vec(
        &tcp_exchange(taddr, &raw_query("www.example.com.", RecordType::A, None)).await,
    )
    .unwrap();
    assert_eq!(m.answers().len(), 1);
    // A response sent to the server (QR=1) is not answered; the server goes on.
    let mut resp = Message::from_vec(&valid).unwrap();
    resp.set_message_type(MessageType::Response);
    let _ = udp_exchange(uaddr, &resp.to_vec().unwrap()).await;
    assert!(udp_exchange(uaddr, &valid).await.is_some());
    svc.stop().await;
    up.stop().await;
}

async fn get(app: &axum::Router, path: &str) -> (u16, String) {
    let req = axum::http::Request::get(path)
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn http_api() {
    let (svc, _) = start(
        state(vec![task(
            "group_web.1",
            "web.group",
            "TASK_RUNNING",
            "[31005-31005]",
        )]),
        vec![],
    )
    .await;
    let app = axum::Router::new().nest("/mesos_dns", svc.http_router());
    let (s, b) = get(&app, "/mesos_dns/v1/version").await;
    assert_eq!(s, 200);
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["Service"], "Mesos-DNS");
    let (_, b) = get(&app, "/mesos_dns/v1/hosts/web-group.marathon.mesos").await;
    assert_eq!(
        serde_json::from_str::<Value>(&b).unwrap(),
        json!([{"host": "web-group.marathon.mesos.", "ip": "127.0.0.2"}])
    );
    let (_, b) = get(&app, "/mesos_dns/v1/hosts/foo.marathon.mesos").await;
    assert_eq!(
        serde_json::from_str::<Value>(&b).unwrap(),
        json!([{"host": "", "ip": ""}])
    );
    let (s, b) = get(&app, "/mesos_dns/v1/hosts/x/ports").await;
    assert_eq!((s, b.as_str()), (501, "To be implemented..."));
    let (_, b) = get(
        &app,
        "/mesos_dns/v1/services/_web-group._tcp.marathon.mesos.",
    )
    .await;
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v[0]["service"], "_web-group._tcp.marathon.mesos.");
    assert_eq!(v[0]["ip"], "127.0.0.2");
    assert_eq!(v[0]["port"], "31005");
    assert!(v[0]["host"]
        .as_str()
        .unwrap()
        .ends_with(".marathon.slave.mesos."));
    let (_, b) = get(&app, "/mesos_dns/v1/services/_nope._tcp.marathon.mesos").await;
    assert_eq!(
        serde_json::from_str::<Value>(&b).unwrap(),
        json!([{"service": "", "host": "", "ip": "", "port": ""}])
    );
    let (s, b) = get(&app, "/mesos_dns/v1/axfr").await;
    assert_eq!(s, 200);
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["Records"]["As"]["leader.mesos."], json!(["127.0.0.1"]));
    let (s, b) = get(&app, "/mesos_dns/v1/config").await;
    assert_eq!(s, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&b).unwrap()["Domain"],
        "mesos"
    );
    svc.stop().await;
}
