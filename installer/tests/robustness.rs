//! Malformed input never panics: mutated config.yaml, node configs, health answers.
//! (Deterministic pseudo-random mutations; no timing, no external crates.)

use dcos_installer::genesis::parse_config;
use dcos_installer::health::{evaluate, parse_http_url};
use dcos_installer::{InstallRole, NodeConfig};

const CONFIG: &str = "\
bootstrap_url: http://10.0.0.2:8080
cluster_name: prod
master_list: [10.0.0.11, 10.0.0.12, 10.0.0.13]
store: zk://10.0.0.11:2181,10.0.0.12:2181/dcos
agent_list: [10.0.0.21]
resolvers: ['10.0.0.1:53']
dns_search: a.example b.example
superuser_username: admin
superuser_password_hash: $argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNo
ports: {adminrouter: 80, agent: 5051}
universe_repositories: [{name: u, uri: 'http://x/repo'}]
";

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: &[&str] = &[
    "\n",
    ":",
    "- ",
    "[",
    "]",
    "{",
    "}",
    "'",
    "\"",
    "#",
    "&a",
    "*a",
    "!!binary ",
    "~",
    "null",
    "-1",
    "99999999999999999999",
    "\u{0}",
    "é",
    "\t",
    "  ",
    ",",
    "%",
    "|",
    ">",
    "? ",
];

fn mutate(rng: &mut Rng, base: &str) -> String {
    let mut s: Vec<char> = base.chars().collect();
    for _ in 0..1 + rng.below(4) {
        let pos = rng.below(s.len() + 1);
        match rng.below(3) {
            0 if !s.is_empty() => {
                let end = (pos + rng.below(8)).min(s.len());
                s.drain(pos.min(s.len())..end);
            }
            1 => {
                let ins = INTERESTING[rng.below(INTERESTING.len())];
                for (i, c) in ins.chars().enumerate() {
                    s.insert((pos + i).min(s.len()), c);
                }
            }
            _ => {
                if pos < s.len() {
                    s[pos] = char::from(b' ' + (rng.next() % 95) as u8);
                }
            }
        }
    }
    s.into_iter().collect()
}

#[test]
fn mutated_configs_are_accepted_or_rejected_with_reasons_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut rejected = 0;
    for _ in 0..3000 {
        let text = mutate(&mut rng, CONFIG);
        match parse_config(&text, Some("#!/bin/sh\necho 10.0.0.11\n"), "fuzz.yaml") {
            Ok(_) => {}
            Err(e) => {
                rejected += 1;
                assert!(
                    !e.problems.is_empty(),
                    "an error without problems for:\n{text}"
                );
                for p in &e.problems {
                    assert!(!p.key.is_empty() && !p.reason.is_empty(), "{p:?}");
                }
            }
        }
    }
    assert!(
        rejected > 100,
        "mutations should mostly be caught ({rejected})"
    );
}

#[test]
fn mutated_node_configs_never_panic() {
    let template = r#"{"format":1,"cluster_name":"c","cluster_id":"x","config_id":"y","role":"slave","dcosd_roles":["agent"],"ip":null,"ip_detect":"/d","masters":["10.0.0.1"],"agents":[],"public_agents":[],"ports":{"adminrouter":80},"store":{"type":"embedded","path":"/s"},"oauth_enabled":false,"superuser":null,"universe_repositories":[],"resolvers":[],"dns_search":[],"install_dir":"/opt/dcos-rs","work_dir":"/var/lib/dcos-rs","bootstrap_url":"http://b","agent":{"resource_role":"*","attributes":{}}}"#;
    let c = NodeConfig::from_json(template, "t").unwrap();
    assert_eq!(c.ports.agent, 5051, "missing ports take their defaults");
    let mut rng = Rng(42);
    for _ in 0..3000 {
        let _ = NodeConfig::from_json(&mutate(&mut rng, template), "fuzz");
    }
}

#[test]
fn garbage_health_answers_and_urls_never_panic() {
    let mut rng = Rng(7);
    let base = r#"{"node_role":"agent","units":[{"id":"u","health":0,"output":""}]}"#;
    for _ in 0..2000 {
        let body = mutate(&mut rng, base);
        for role in InstallRole::ALL {
            let _ = evaluate(role, 200, &body);
        }
        let _ = parse_http_url(&mutate(&mut rng, "http://10.0.0.1:61001/system/health/v1"));
    }
    assert!(parse_http_url("http://h:99999/").is_err());
    assert!(parse_http_url("https://h/").is_err());
    assert!(parse_http_url("http:///x").is_err());
}
