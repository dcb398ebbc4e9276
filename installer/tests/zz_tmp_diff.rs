#![allow(dead_code, clippy::all)]
#[path = "zz_tmp_old_genesis.rs"]
mod old;
use dcos_installer::genesis::parse_config;
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


const GOOD2: &str = "\
bootstrap_url: http://10.0.0.2:8080
cluster_name: prod
master_discovery: static
exhibitor_storage_backend: static
master_list:
- 10.0.0.11
public_agent_list: '[\"10.0.0.31\", 5]'
oauth_enabled: 'false'
superuser_username: admin
superuser_password: hunter2hunter2
store: embedded
ports:
  adminrouter: '8000'
  agent: 5051
universe_repositories:
- name: local
  uri: http://10.0.0.2:8082/repo
- {name: b, uri: 'file:///x', extra: 1}
install_dir: /opt/x
work_dir: /var/x
min_free_disk_mb: 10
ip_detect_filename: genconf/ip-detect
dns_search: a.b
";

fn same(text: &str, ipd: Option<&str>) -> bool {
    let a = old::parse_config(text, ipd, "f");
    let b = parse_config(text, ipd, "f");
    let sa = format!("{:?}", a.as_ref().map(|c| format!("{c:?}")).map_err(|e| e.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>()));
    let sb = format!("{:?}", b.as_ref().map(|c| format!("{c:?}")).map_err(|e| e.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>()));
    if sa != sb {
        eprintln!("DIFF for:\n{text}\nold: {sa}\nnew: {sb}\n");
        return false;
    }
    true
}

#[test]
fn old_and_new_agree() {
    let mut bad = 0;
    let mut n = 0;
    for base in [CONFIG, GOOD2] {
        for seed in [0x9e37_79b9_7f4a_7c15u64, 1, 2, 3, 42, 77] {
            let mut rng = Rng(seed);
            for _ in 0..20000 {
                let text = mutate(&mut rng, base);
                n += 1;
                if !same(&text, Some("#!/bin/sh\necho 1\n")) { bad += 1; }
            }
        }
    }
    for ipd in [None, Some(""), Some(" \n")] { if !same(CONFIG, ipd) { bad += 1; } }
    eprintln!("{n} cases, {bad} differ");
    assert_eq!(bad, 0);
}
