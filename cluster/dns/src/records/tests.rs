use super::*;
use serde_json::json;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn snap(v: serde_json::Value) -> Snapshot {
    serde_json::from_value(v).unwrap()
}

fn hosts(rs: &RecordSet, name: &str) -> Vec<IpAddr> {
    rs.hosts
        .get(name)
        .map(|s| s.iter().copied().collect())
        .unwrap_or_default()
}

fn srvs(rs: &RecordSet, name: &str) -> Vec<(String, u16)> {
    rs.srvs
        .get(name)
        .map(|s| s.iter().map(|r| (r.target.clone(), r.port)).collect())
        .unwrap_or_default()
}

const TASK: &str = "shop_web.instance-8b7c7a8e-3c6b-11eb-9a8e-0242ac110002._app.1";

fn worked_example(discovery: bool) -> Snapshot {
    let mut task = json!({
        "id": TASK, "name": "web.shop", "slave_id": "20201208-0001-S3",
        "state": "TASK_RUNNING", "resources": {"cpus": 1, "ports": "[31005-31005]"},
        "statuses": [{"state": "TASK_RUNNING", "timestamp": 1.0}],
    });
    if discovery {
        task["discovery"] = json!({"name": "web.shop", "ports": {"ports": [
            {"number": 31005, "name": "http", "protocol": "tcp"}]}});
    }
    snap(json!({
        "leader": "master@10.0.0.1:5050",
        "slaves": [{"id": "20201208-0001-S3", "pid": "slave(1)@10.0.1.5:5051", "hostname": "a3"}],
        "frameworks": [{"name": "marathon", "pid": "scheduler-1@10.0.0.1:8080", "tasks": [task]}],
    }))
}

/// The worked example of the contract (§1.4), with DiscoveryInfo as Marathon sets it.
#[test]
fn contract_worked_example() {
    let rs = generate(&worked_example(true), &NamingConfig::default(), 7);
    let agent = vec![ip("10.0.1.5")];
    for n in [
        "web-shop.marathon.mesos.",
        "web-shop-rszjw-s3.marathon.mesos.",
        "web-shop.marathon.slave.mesos.",
        "web-shop-rszjw-s3.marathon.slave.mesos.",
        // the raw name, as DC/OS docs advertise
        "web.shop.marathon.mesos.",
        "web.shop-rszjw-s3.marathon.mesos.",
        "web.shop.marathon.slave.mesos.",
    ] {
        assert_eq!(hosts(&rs, n), agent, "{n}");
    }
    let slave_t = ("web-shop-rszjw-s3.marathon.slave.mesos.".to_string(), 31005);
    let task_t = ("web-shop-rszjw-s3.marathon.mesos.".to_string(), 31005);
    assert_eq!(
        srvs(&rs, "_web-shop._tcp.marathon.slave.mesos."),
        vec![slave_t.clone()]
    );
    assert_eq!(
        srvs(&rs, "_web-shop._udp.marathon.slave.mesos."),
        vec![slave_t]
    );
    assert_eq!(
        srvs(&rs, "_web-shop._tcp.marathon.mesos."),
        vec![task_t.clone()]
    );
    assert_eq!(
        srvs(&rs, "_http._web-shop._tcp.marathon.mesos."),
        vec![task_t]
    );
    // With DiscoveryInfo the task-domain SRV comes from its ports only (tcp here).
    assert!(srvs(&rs, "_web-shop._udp.marathon.mesos.").is_empty());
    assert_eq!(
        srvs(&rs, "_http._web.shop._tcp.marathon.mesos."),
        vec![("web.shop-rszjw-s3.marathon.mesos.".to_string(), 31005)]
    );
    assert_eq!(rs.serial, 7);
    assert_eq!(rs.tasks, 1);
}

/// Our master today has no DiscoveryInfo in its state: the sanitised name only, SRV from the
/// allocated ports in both the slave and the task domain.
#[test]
fn without_discovery_info() {
    let rs = generate(&worked_example(false), &NamingConfig::default(), 1);
    assert_eq!(hosts(&rs, "web-shop.marathon.mesos."), vec![ip("10.0.1.5")]);
    assert!(hosts(&rs, "web.shop.marathon.mesos.").is_empty());
    let slave_t = ("web-shop-rszjw-s3.marathon.slave.mesos.".to_string(), 31005);
    for n in [
        "_web-shop._tcp.marathon.mesos.",
        "_web-shop._udp.marathon.mesos.",
        "_web-shop._tcp.marathon.slave.mesos.",
    ] {
        assert_eq!(srvs(&rs, n), vec![slave_t.clone()], "{n}");
    }
}

/// The naming table of the Mesos-DNS docs (contract §1.3): Marathon id → A names.
#[test]
fn naming_table() {
    let cases: &[(&str, &str, &[&str])] = &[
        ("web", "web", &["web.marathon.mesos."]),
        (
            "web.group",
            "web-group",
            &["web-group.marathon.mesos.", "web.group.marathon.mesos."],
        ),
        (
            "v2.users.api.prod",
            "v2-users-api-prod",
            &[
                "v2-users-api-prod.marathon.mesos.",
                "v2.users.api.prod.marathon.mesos.",
            ],
        ),
        (
            "nginx-router.mesosphere-tutorial",
            "nginx-router-mesosphere-tutorial",
            &["nginx-router-mesosphere-tutorial.marathon.mesos."],
        ),
    ];
    for (raw, sanitised, names) in cases {
        let s = snap(json!({
            "leader": "master@10.0.0.1:5050",
            "slaves": [{"id": "x-S0", "pid": "slave(1)@10.0.1.1:5051"}],
            "frameworks": [{"name": "marathon", "pid": "scheduler-1@10.0.0.1:8080", "tasks": [{
                "id": format!("{raw}.1"), "name": raw, "slave_id": "x-S0", "state": "TASK_RUNNING",
                "resources": {"ports": "[31000-31001]"},
                "discovery": {"name": raw, "ports": {"ports": [{"number": 31000, "protocol": "tcp"}]}},
            }]}],
        }));
        let rs = generate(&s, &NamingConfig::default(), 1);
        for n in *names {
            assert_eq!(hosts(&rs, n), vec![ip("10.0.1.1")], "{raw}: {n}");
        }
        assert_eq!(
            srvs(&rs, &format!("_{sanitised}._tcp.marathon.mesos.")).len(),
            1
        );
        assert_eq!(
            srvs(&rs, &format!("_{sanitised}._tcp.marathon.slave.mesos.")).len(),
            2,
            "{raw}: one per allocated port"
        );
    }
    let rfc952 = NamingConfig {
        enforce_rfc952: true,
        ..Default::default()
    };
    let s = snap(json!({
        "slaves": [{"id": "x-S0", "pid": "slave(1)@10.0.1.1:5051"}],
        "frameworks": [{"name": "marathon", "tasks": [{
            "id": "t1", "name": "nginx-router.mesosphere-tutorial", "slave_id": "x-S0",
            "state": "TASK_RUNNING"}]}],
    }));
    let rs = generate(&s, &rfc952, 1);
    assert!(rs.has_name("nginx-router-mesospheret.marathon.mesos."));
}

#[test]
fn cluster_records() {
    let s = Snapshot {
        masters: vec![
            "10.0.0.2:5050".into(),
            "10.0.0.1".into(),
            "m3.example".into(),
        ],
        host_ips: [
            ("m3.example".to_string(), vec![ip("10.0.0.3")]),
            ("fw.host".to_string(), vec![ip("fd00::7")]),
        ]
        .into_iter()
        .collect(),
        ..snap(json!({
            "leader": "master@10.0.0.1:5050",
            "slaves": [
                {"id": "x-S0", "pid": "slave(1)@10.0.1.1:5051"},
                {"id": "x-S1", "pid": "slave(1)@10.0.1.2:5052"},
                {"id": "x-S2", "pid": "slave(1)@unresolvable:5051"},
            ],
            "frameworks": [
                {"name": "marathon", "pid": "scheduler-a@10.0.0.1:8080"},
                {"name": "marathon", "pid": "scheduler-b@10.0.0.9:8080"},
                {"name": "Jobs_Service.prod", "pid": "scheduler-c@fw.host:9000"},
                {"name": "!!!", "pid": "scheduler-d@10.0.0.1:1"},
            ],
        }))
    };
    let cfg = NamingConfig {
        ns_ips: vec![ip("10.0.0.1")],
        ..Default::default()
    };
    let rs = generate(&s, &cfg, 1);
    assert_eq!(hosts(&rs, "leader.mesos."), vec![ip("10.0.0.1")]);
    assert_eq!(
        srvs(&rs, "_leader._tcp.mesos."),
        vec![("leader.mesos.".to_string(), 5050)]
    );
    assert_eq!(srvs(&rs, "_leader._udp.mesos.").len(), 1);
    assert_eq!(
        hosts(&rs, "master.mesos."),
        vec![ip("10.0.0.1"), ip("10.0.0.2"), ip("10.0.0.3")]
    );
    assert_eq!(hosts(&rs, "master0.mesos."), vec![ip("10.0.0.1")]);
    assert_eq!(hosts(&rs, "master1.mesos."), vec![ip("10.0.0.2")]);
    assert_eq!(hosts(&rs, "master2.mesos."), vec![ip("10.0.0.3")]);
    assert_eq!(
        hosts(&rs, "slave.mesos."),
        vec![ip("10.0.1.1"), ip("10.0.1.2")]
    );
    assert_eq!(
        srvs(&rs, "_slave._tcp.mesos."),
        vec![
            ("slave.mesos.".to_string(), 5051),
            ("slave.mesos.".to_string(), 5052)
        ]
    );
    assert_eq!(
        hosts(&rs, "marathon.mesos."),
        vec![ip("10.0.0.1"), ip("10.0.0.9")]
    );
    assert_eq!(
        srvs(&rs, "_framework._tcp.marathon.mesos."),
        vec![("marathon.mesos.".to_string(), 8080)]
    );
    assert_eq!(hosts(&rs, "jobs-service.prod.mesos."), vec![ip("fd00::7")]);
    assert_eq!(hosts(&rs, "ns1.mesos."), vec![ip("10.0.0.1")]);
    assert!(!rs.has_name("agent.mesos."));
}

#[test]
fn only_running_tasks_on_known_agents() {
    let task = |id: &str, state: &str, agent: &str| {
        json!({"id": id, "name": id, "slave_id": agent, "state": state,
               "resources": {"ports": "[31000-31000]"}})
    };
    let s = snap(json!({
        "slaves": [{"id": "x-S0", "pid": "slave(1)@10.0.1.1:5051"}],
        "frameworks": [{"name": "marathon", "tasks": [
            task("a", "TASK_RUNNING", "x-S0"),
            task("b", "TASK_STAGING", "x-S0"),
            task("c", "TASK_KILLED", "x-S0"),
            task("d", "TASK_RUNNING", "gone-S9"),
            task("---", "TASK_RUNNING", "x-S0"),
        ]}],
    }));
    let rs = generate(&s, &NamingConfig::default(), 1);
    assert!(rs.has_name("a.marathon.mesos."));
    for n in ["b", "c", "d"] {
        assert!(!rs.has_name(&format!("{n}.marathon.mesos.")), "{n}");
    }
    assert_eq!(
        rs.tasks, 1,
        "a name that sanitises to empty gets no records"
    );
}

#[test]
fn ip_sources_order() {
    let s = snap(json!({
        "slaves": [{"id": "x-S0", "pid": "slave(1)@10.0.1.1:5051"}],
        "frameworks": [{"name": "marathon", "tasks": [{
            "id": "a.1", "name": "a", "slave_id": "x-S0", "state": "TASK_RUNNING",
            "statuses": [
                {"state": "TASK_STARTING", "container_status": {"network_infos": [{"ip_addresses": [{"ip_address": "9.9.9.9"}]}]}},
                {"state": "TASK_RUNNING",
                 "labels": [{"key": "Docker.NetworkSettings.IPAddress", "value": "172.17.0.2"}],
                 "container_status": {"network_infos": [{"ip_addresses": [{"ip_address": "192.168.0.5"}, {"ip_address": "junk"}]}]}},
            ]}]}],
    }));
    let mut cfg = NamingConfig::default();
    let rs = generate(&s, &cfg, 1);
    assert_eq!(
        hosts(&rs, "a.marathon.mesos."),
        vec![ip("10.0.1.1")],
        "DC/OS default: host first"
    );
    cfg.ip_sources = vec![IpSource::Netinfo, IpSource::Mesos, IpSource::Host];
    let rs = generate(&s, &cfg, 1);
    assert_eq!(hosts(&rs, "a.marathon.mesos."), vec![ip("192.168.0.5")]);
    assert_eq!(hosts(&rs, "a.marathon.slave.mesos."), vec![ip("10.0.1.1")]);
    cfg.ip_sources = vec![IpSource::Mesos, IpSource::Docker];
    let rs = generate(&s, &cfg, 1);
    assert_eq!(hosts(&rs, "a.marathon.mesos."), vec![ip("172.17.0.2")]);
}

#[test]
fn ports_and_pids() {
    assert_eq!(
        parse_ports("[31000-31002, 31005-31005]"),
        vec![31000, 31001, 31002, 31005]
    );
    assert_eq!(parse_ports("[5-3, x-y, 70000-70001, 7]"), vec![7]);
    assert!(parse_ports("").is_empty());
    assert_eq!(parse_ports("[0-65535]").len(), 65536);
    assert_eq!(
        split_pid("master@10.0.0.1:5050"),
        ("10.0.0.1".into(), Some(5050))
    );
    assert_eq!(
        split_pid("slave(1)@[fd00::1]:5051"),
        ("fd00::1".into(), Some(5051))
    );
    assert_eq!(split_pid("host"), ("host".into(), None));
    assert_eq!(split_pid("fd00::1"), ("fd00::1".into(), None));
}

#[test]
fn junk_state_never_panics() {
    for v in [
        json!({}),
        json!({"slaves": [{}], "frameworks": [{"tasks": [{}]}]}),
        json!({"leader": "@@@:::", "slaves": [{"id": "", "pid": ":"}],
               "frameworks": [{"name": "", "pid": "@", "tasks": [{"state": "TASK_RUNNING", "name": "x",
               "resources": {"ports": "[[[-]]]"}, "discovery": {"name": "", "ports": {"ports": [{"number": 99999999}]}}}]}]}),
    ] {
        let s = snap(v);
        let _ = generate(&s, &NamingConfig::default(), 0);
    }
}
