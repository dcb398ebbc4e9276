//! The pure part: a snapshot of the master's state → the set of `.mesos` records, following
//! the Mesos-DNS naming rules (docs/dns.md, ../shared/contracts/discovery.md §1).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use indexmap::IndexSet;
use serde::Deserialize;

use crate::labels::{agent_tail, domain_frag, hash5, label};

/// What the generator needs of `GET /master/state` (unknown fields ignored; every field
/// optional so a partial state still yields what it can).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Snapshot {
    /// `master@host:port` of the leader.
    pub leader: String,
    pub slaves: Vec<Slave>,
    pub frameworks: Vec<Framework>,
    /// Other masters (`host` or `host:port`), beyond the leader; not part of Mesos state,
    /// filled by the caller from its configuration.
    #[serde(skip)]
    pub masters: Vec<String>,
    /// Addresses of host names that are not IP literals (filled by the caller, who may
    /// resolve; the generator never does I/O).
    #[serde(skip)]
    pub host_ips: HashMap<String, Vec<IpAddr>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Slave {
    pub id: String,
    /// `slave(1)@host:port`.
    pub pid: String,
    pub hostname: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Framework {
    pub name: String,
    /// `scheduler-<id>@host:port`.
    pub pid: String,
    pub hostname: String,
    pub tasks: Vec<Task>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Task {
    pub id: String,
    pub name: String,
    pub slave_id: String,
    pub state: String,
    pub statuses: Vec<Status>,
    pub resources: TaskResources,
    pub discovery: Option<Discovery>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct TaskResources {
    /// `"[31000-31002, 31005-31005]"`.
    pub ports: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Status {
    pub state: String,
    pub timestamp: f64,
    pub labels: Vec<KeyValue>,
    pub container_status: Option<ContainerStatus>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ContainerStatus {
    pub network_infos: Vec<NetworkInfo>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct NetworkInfo {
    pub ip_addresses: Vec<IpAddress>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct IpAddress {
    pub ip_address: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Discovery {
    pub name: String,
    pub ports: DiscoveryPorts,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct DiscoveryPorts {
    pub ports: Vec<DiscoveryPort>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct DiscoveryPort {
    pub number: u32,
    pub name: String,
    pub protocol: String,
}

/// Where task addresses come from, in order (`IPSources`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpSource {
    /// `container_status.network_infos` of the newest TASK_RUNNING status.
    Netinfo,
    /// Status label `MesosContainerizer.NetworkSettings.IPAddress`.
    Mesos,
    /// Status label `Docker.NetworkSettings.IPAddress`.
    Docker,
    /// The agent's addresses.
    Host,
}

impl std::str::FromStr for IpSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "netinfo" => Ok(IpSource::Netinfo),
            "mesos" => Ok(IpSource::Mesos),
            "docker" => Ok(IpSource::Docker),
            "host" => Ok(IpSource::Host),
            other => Err(format!(
                "unknown IP source {other:?} (netinfo, mesos, docker, host)"
            )),
        }
    }
}

/// Naming options (Mesos-DNS config keys in brackets).
#[derive(Clone, Debug)]
pub struct NamingConfig {
    /// `domain`, lower-case, no dots at the ends (`mesos`).
    pub domain: String,
    /// `IPSources` (DC/OS ships `host, netinfo`).
    pub ip_sources: Vec<IpSource>,
    /// `EnforceRFC952`.
    pub enforce_rfc952: bool,
    /// `SOAMname` (`ns1.mesos`): gets an A record with `ns_ips`.
    pub soa_mname: String,
    /// The DNS listener's addresses (for `ns1.<domain>`).
    pub ns_ips: Vec<IpAddr>,
}

impl Default for NamingConfig {
    fn default() -> Self {
        NamingConfig {
            domain: "mesos".into(),
            ip_sources: vec![IpSource::Host, IpSource::Netinfo],
            enforce_rfc952: false,
            soa_mname: "ns1.mesos".into(),
            ns_ips: Vec::new(),
        }
    }
}

/// An SRV target: `target.` (FQDN) and port. Priority 0, weight 1.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Srv {
    pub target: String,
    pub port: u16,
}

/// Every record of the zone, names lower-case FQDN (`web.marathon.mesos.`), values in
/// insertion order, no duplicates.
#[derive(Clone, Debug, Default)]
pub struct RecordSet {
    /// A and AAAA together (the family decides the type).
    pub hosts: HashMap<String, IndexSet<IpAddr>>,
    pub srvs: HashMap<String, IndexSet<Srv>>,
    /// `domain.` with the trailing dot.
    pub zone: String,
    /// Unix time of the rebuild (the SOA serial).
    pub serial: u32,
    /// The tasks that got records (for figures and logs).
    pub tasks: usize,
}

impl RecordSet {
    // `get_mut` first: most names already exist (no key allocation then).
    fn a(&mut self, name: &str, ip: IpAddr) {
        match self.hosts.get_mut(name) {
            Some(set) => {
                set.insert(ip);
            }
            None => {
                self.hosts.insert(name.to_string(), IndexSet::from([ip]));
            }
        }
    }
    fn srv(&mut self, name: &str, target: &str, port: u16) {
        let srv = Srv {
            target: target.to_string(),
            port,
        };
        match self.srvs.get_mut(name) {
            Some(set) => {
                set.insert(srv);
            }
            None => {
                self.srvs.insert(name.to_string(), IndexSet::from([srv]));
            }
        }
    }
    /// Whether `name` (normalised, FQDN) has any A, AAAA or SRV record.
    pub fn has_name(&self, name: &str) -> bool {
        self.hosts.contains_key(name) || self.srvs.contains_key(name)
    }
    /// Total number of records (A+AAAA+SRV).
    pub fn len(&self) -> usize {
        self.hosts.values().map(|s| s.len()).sum::<usize>()
            + self.srvs.values().map(|s| s.len()).sum::<usize>()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `host` of `name@host:port` (or of `host:port`, `[v6]:port`, `host`), and the port.
pub fn split_pid(pid: &str) -> (String, Option<u16>) {
    let hp = pid.rsplit_once('@').map(|(_, r)| r).unwrap_or(pid);
    if let Some(rest) = hp.strip_prefix('[') {
        if let Some((h, p)) = rest.split_once(']') {
            return (
                h.to_string(),
                p.strip_prefix(':').and_then(|p| p.parse().ok()),
            );
        }
    }
    match hp.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h.to_string(), p.parse().ok()),
        _ => (hp.to_string(), None),
    }
}

/// The addresses of a host: the literal, else what the caller resolved.
fn ips_of(snap: &Snapshot, host: &str) -> Vec<IpAddr> {
    if host.is_empty() {
        return Vec::new();
    }
    match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => snap.host_ips.get(host).cloned().unwrap_or_default(),
    }
}

/// Every host name in the snapshot that is not an IP literal (for the caller to resolve).
pub fn hostnames(snap: &Snapshot) -> HashSet<String> {
    let mut out = HashSet::new();
    let mut add = |h: String| {
        if !h.is_empty() && h.parse::<IpAddr>().is_err() {
            out.insert(h);
        }
    };
    add(split_pid(&snap.leader).0);
    for m in &snap.masters {
        add(split_pid(m).0);
    }
    for s in &snap.slaves {
        add(split_pid(&s.pid).0);
        add(s.hostname.clone());
    }
    for f in &snap.frameworks {
        add(split_pid(&f.pid).0);
        add(f.hostname.clone());
    }
    out
}

/// Parses Mesos port ranges `"[31000-31002, 31005-31005]"`; junk is skipped. At most 65536
/// ports per task.
pub fn parse_ports(s: &str) -> Vec<u16> {
    let mut out = Vec::new();
    for part in s
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
    {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let (Ok(lo), Ok(hi)) = (lo.trim().parse::<u16>(), hi.trim().parse::<u16>()) else {
            continue;
        };
        if lo > hi {
            continue;
        }
        for p in lo..=hi {
            out.push(p);
            if out.len() >= 65536 {
                return out;
            }
        }
    }
    out
}

fn task_ips(task: &Task, agent_ips: &[IpAddr], sources: &[IpSource]) -> Vec<IpAddr> {
    let running = task
        .statuses
        .iter()
        .rev()
        .find(|s| s.state == "TASK_RUNNING");
    let label_ip = |key: &str| -> Vec<IpAddr> {
        running
            .into_iter()
            .flat_map(|s| s.labels.iter())
            .filter(|l| l.key == key)
            .filter_map(|l| l.value.trim().parse().ok())
            .collect()
    };
    for src in sources {
        let ips: Vec<IpAddr> = match src {
            IpSource::Netinfo => running
                .and_then(|s| s.container_status.as_ref())
                .into_iter()
                .flat_map(|c| c.network_infos.iter())
                .flat_map(|n| n.ip_addresses.iter())
                .filter_map(|a| a.ip_address.trim().parse().ok())
                .collect(),
            IpSource::Mesos => label_ip("MesosContainerizer.NetworkSettings.IPAddress"),
            IpSource::Docker => label_ip("Docker.NetworkSettings.IPAddress"),
            IpSource::Host => agent_ips.to_vec(),
        };
        if !ips.is_empty() {
            return ips;
        }
    }
    Vec::new()
}

/// Builds the whole record set of a snapshot. Pure: no I/O, no clock (`serial` is given).
pub fn generate(snap: &Snapshot, cfg: &NamingConfig, serial: u32) -> RecordSet {
    let d = cfg.domain.trim_matches('.').to_ascii_lowercase();
    let rfc952 = cfg.enforce_rfc952;
    let mut rs = RecordSet {
        zone: format!("{d}."),
        serial,
        ..Default::default()
    };

    // Masters: leader.D, master.D, masterN.D, _leader._{tcp,udp}.D.
    let (leader_host, leader_port) = split_pid(&snap.leader);
    let leader_ips = ips_of(snap, &leader_host);
    let leader = format!("leader.{d}.");
    let master = format!("master.{d}.");
    for ip in &leader_ips {
        rs.a(&leader, *ip);
        rs.a(&master, *ip);
    }
    if !leader_ips.is_empty() {
        let port = leader_port.unwrap_or(5050);
        rs.srv(&format!("_leader._tcp.{d}."), &leader, port);
        rs.srv(&format!("_leader._udp.{d}."), &leader, port);
    }
    let mut masters: Vec<Vec<IpAddr>> = Vec::new();
    if !leader_ips.is_empty() {
        masters.push(leader_ips.clone());
    }
    for m in &snap.masters {
        let ips = ips_of(snap, &split_pid(m).0);
        if !ips.is_empty() && !masters.contains(&ips) {
            masters.push(ips);
        }
    }
    for (i, ips) in masters.iter().enumerate() {
        for ip in ips {
            rs.a(&master, *ip);
            rs.a(&format!("master{i}.{d}."), *ip);
        }
    }

    // ns1.D (SOAMname).
    let mname = format!(
        "{}.",
        cfg.soa_mname.trim_end_matches('.').to_ascii_lowercase()
    );
    for ip in &cfg.ns_ips {
        rs.a(&mname, *ip);
    }

    // Agents: slave.D, _slave._tcp.D.
    let slave = format!("slave.{d}.");
    let mut agents: HashMap<&str, Vec<IpAddr>> = HashMap::new();
    for s in &snap.slaves {
        let (host, port) = split_pid(&s.pid);
        let mut ips = ips_of(snap, &host);
        if ips.is_empty() {
            ips = ips_of(snap, &s.hostname);
        }
        for ip in &ips {
            rs.a(&slave, *ip);
        }
        if !ips.is_empty() {
            rs.srv(&format!("_slave._tcp.{d}."), &slave, port.unwrap_or(5051));
        }
        agents.insert(s.id.as_str(), ips);
    }

    // Frameworks and their tasks.
    for fw in &snap.frameworks {
        let f = domain_frag(&fw.name, rfc952);
        if f.is_empty() {
            continue;
        }
        let (fhost, fport) = split_pid(&fw.pid);
        let mut fips = ips_of(snap, &fhost);
        if fips.is_empty() {
            fips = ips_of(snap, &fw.hostname);
        }
        let fname = format!("{f}.{d}.");
        for ip in &fips {
            rs.a(&fname, *ip);
        }
        if let (false, Some(port)) = (fips.is_empty(), fport) {
            rs.srv(&format!("_framework._tcp.{f}.{d}."), &fname, port);
        }
        for task in &fw.tasks {
            if task.state != "TASK_RUNNING" {
                continue;
            }
            let Some(agent_ips) = agents.get(task.slave_id.as_str()) else {
                continue;
            };
            let ips = task_ips(task, agent_ips, &cfg.ip_sources);
            let raw = match &task.discovery {
                Some(dsc) if !dsc.name.is_empty() => dsc.name.as_str(),
                _ => task.name.as_str(),
            };
            let t = label(raw, rfc952);
            if t.is_empty() {
                continue;
            }
            rs.tasks += 1;
            let ctx = TaskCtx {
                d: &d,
                f: &f,
                h: hash5(&task.id),
                s: agent_tail(&task.slave_id),
                ips: &ips,
                agent_ips,
                task,
            };
            ctx.records(&mut rs, &t);
            if task.discovery.is_some() {
                // Mesos-DNS also emits the raw (unsanitised) name when DiscoveryInfo exists;
                // DC/OS docs advertise it (`web.group.marathon.mesos`).
                let raw = raw.to_ascii_lowercase();
                if raw != t && !raw.is_empty() && raw.len() <= 253 {
                    ctx.records(&mut rs, &raw);
                }
            }
        }
    }
    rs
}

struct TaskCtx<'a> {
    d: &'a str,
    f: &'a str,
    h: String,
    s: String,
    ips: &'a [IpAddr],
    agent_ips: &'a [IpAddr],
    task: &'a Task,
}

impl TaskCtx<'_> {
    fn records(&self, rs: &mut RecordSet, t: &str) {
        let (d, f) = (self.d, self.f);
        let c = format!("{t}-{}-{}", self.h, self.s);
        let task_name = format!("{t}.{f}.{d}.");
        let canon = format!("{c}.{f}.{d}.");
        let slave_name = format!("{t}.{f}.slave.{d}.");
        let slave_canon = format!("{c}.{f}.slave.{d}.");
        for ip in self.ips {
            rs.a(&task_name, *ip);
            rs.a(&canon, *ip);
        }
        for ip in self.agent_ips {
            rs.a(&slave_name, *ip);
            rs.a(&slave_canon, *ip);
        }
        let ports = self
            .task
            .resources
            .ports
            .as_deref()
            .map(parse_ports)
            .unwrap_or_default();
        let with_discovery = self.task.discovery.is_some();
        if !ports.is_empty() {
            let mut names = Vec::with_capacity(4);
            for proto in ["tcp", "udp"] {
                names.push(format!("_{t}._{proto}.{f}.slave.{d}."));
                if !with_discovery {
                    names.push(format!("_{t}._{proto}.{f}.{d}."));
                }
            }
            for port in ports {
                for n in &names {
                    rs.srv(n, &slave_canon, port);
                }
            }
        }
        if let Some(dsc) = &self.task.discovery {
            for p in &dsc.ports.ports {
                let Ok(number) = u16::try_from(p.number) else {
                    continue;
                };
                let proto = match p.protocol.to_ascii_lowercase().as_str() {
                    "" => "tcp".to_string(),
                    other => label(other, false),
                };
                if proto.is_empty() {
                    continue;
                }
                rs.srv(&format!("_{t}._{proto}.{f}.{d}."), &canon, number);
                let n = label(&p.name, false);
                if !n.is_empty() {
                    rs.srv(&format!("_{n}._{t}._{proto}.{f}.{d}."), &canon, number);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
