//! VIP labels (`VIP_0: "/name:port"` or `"ip:port"`) and their DNS names, as dcos-net reads
//! them (contract: ../shared/contracts/discovery.md §2.1–2.2), plus the Marathon task name an
//! app id maps to (§1.3). Pure functions: the single home of these rules for the CLI and the
//! VIP implementation.

use std::fmt;
use std::net::IpAddr;

use crate::labels;

/// The zone of named VIPs.
pub const L4LB_ZONE: &str = "l4lb.thisdcos.directory";

/// What a VIP label names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VipAddress {
    /// A named VIP (`/my/svc`), raw as written in the label.
    Named(String),
    /// An IP VIP (`1.2.3.4`, `::1`); it gets no DNS name.
    Ip(IpAddr),
}

/// One parsed VIP label value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vip {
    pub address: VipAddress,
    pub port: u16,
}

/// Why a VIP label value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VipError {
    #[error("VIP label value {0:?} has no ':port' (expected /name:port or ip:port)")]
    MissingPort(String),
    #[error("VIP label value {value:?}: port {port:?} is not an integer between 1 and 65535")]
    BadPort { value: String, port: String },
    #[error("VIP label value {0:?} has an empty name (expected /name:port or ip:port)")]
    EmptyName(String),
    #[error("VIP label value {0:?}: the name has no DNS-usable character (a-z, 0-9)")]
    UnusableName(String),
}

/// Whether a port label key declares a VIP: any key starting with `VIP` or `vip` (`VIP_0`, …).
pub fn is_vip_key(key: &str) -> bool {
    key.starts_with("VIP") || key.starts_with("vip")
}

/// Parses a VIP label value: split at the LAST `:`, the port must be an integer in 1..=65535;
/// an IPv4/IPv6 address (IPv6 optionally in brackets) is an IP VIP, anything else a named VIP.
pub fn parse_vip(value: &str) -> Result<Vip, VipError> {
    let v = value.trim();
    let (addr, port) = v
        .rsplit_once(':')
        .ok_or_else(|| VipError::MissingPort(value.to_string()))?;
    let port = match port.parse::<u16>() {
        Ok(p) if p > 0 => p,
        _ => {
            return Err(VipError::BadPort {
                value: value.to_string(),
                port: port.to_string(),
            })
        }
    };
    if addr.is_empty() {
        return Err(VipError::EmptyName(value.to_string()));
    }
    let bare = addr
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(addr);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(Vip {
            address: VipAddress::Ip(ip),
            port,
        });
    }
    if labels::domain_frag(addr, false).is_empty() {
        return Err(VipError::UnusableName(value.to_string()));
    }
    Ok(Vip {
        address: VipAddress::Named(addr.to_string()),
        port,
    })
}

/// DNS name of a named VIP: `<DomainFrag(name)>.<DomainFrag(framework)>.l4lb.thisdcos.directory`
/// (`/` is dropped: `/mygroup/myapp` on `marathon` → `mygroupmyapp.marathon.l4lb.thisdcos.directory`).
pub fn vip_dns_name(name: &str, framework: &str) -> String {
    format!(
        "{}.{}.{L4LB_ZONE}",
        labels::domain_frag(name, false),
        labels::domain_frag(framework, false)
    )
}

impl Vip {
    /// `name:port` for a named VIP (its DNS name), `ip:port` for an IP VIP (`[v6]:port`).
    pub fn endpoint(&self, framework: &str) -> String {
        match &self.address {
            VipAddress::Named(n) => format!("{}:{}", vip_dns_name(n, framework), self.port),
            VipAddress::Ip(IpAddr::V6(ip)) => format!("[{ip}]:{}", self.port),
            VipAddress::Ip(ip) => format!("{ip}:{}", self.port),
        }
    }
}

impl fmt::Display for Vip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.address {
            VipAddress::Named(n) => write!(f, "{n}:{}", self.port),
            VipAddress::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            VipAddress::Ip(ip) => write!(f, "{ip}:{}", self.port),
        }
    }
}

/// The task name Marathon gives an app's tasks (`PathId.toHostname`): the id's segments
/// reversed and joined by `.` (`/group/web` → `web.group`). Its Mesos-DNS label is
/// [`labels::label`] of it (`web-group`).
pub fn marathon_task_name(app_id: &str) -> String {
    app_id
        .split('/')
        .filter(|s| !s.is_empty())
        .rev()
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(n: &str, port: u16) -> Vip {
        Vip {
            address: VipAddress::Named(n.into()),
            port,
        }
    }

    #[test]
    fn named_vips_and_their_dns_names() {
        assert_eq!(parse_vip("/myapp:80"), Ok(named("/myapp", 80)));
        assert_eq!(parse_vip("myapp:80"), Ok(named("myapp", 80)));
        let cases = [
            ("/myapp:80", "myapp.marathon.l4lb.thisdcos.directory:80"),
            ("myapp:80", "myapp.marathon.l4lb.thisdcos.directory:80"),
            (
                "/mygroup/myapp:80",
                "mygroupmyapp.marathon.l4lb.thisdcos.directory:80",
            ),
            ("/my/svc:80", "mysvc.marathon.l4lb.thisdcos.directory:80"),
            ("my.svc:80", "my.svc.marathon.l4lb.thisdcos.directory:80"),
        ];
        for (label, want) in cases {
            assert_eq!(parse_vip(label).unwrap().endpoint("marathon"), want);
        }
        assert_eq!(
            parse_vip("broker:9092").unwrap().endpoint("kafka"),
            "broker.kafka.l4lb.thisdcos.directory:9092"
        );
    }

    #[test]
    fn ip_vips() {
        let v = parse_vip("1.2.3.4:5000").unwrap();
        assert_eq!(v.address, VipAddress::Ip("1.2.3.4".parse().unwrap()));
        assert_eq!(v.port, 5000);
        assert_eq!(v.endpoint("marathon"), "1.2.3.4:5000");
        let v6 = parse_vip("fd01:c::1:8080").unwrap();
        assert_eq!(v6.address, VipAddress::Ip("fd01:c::1".parse().unwrap()));
        assert_eq!(v6.endpoint("marathon"), "[fd01:c::1]:8080");
        assert_eq!(parse_vip("[::1]:53").unwrap().port, 53);
    }

    #[test]
    fn bad_values_are_clear_errors() {
        assert!(matches!(parse_vip("myapp"), Err(VipError::MissingPort(_))));
        assert!(matches!(parse_vip(""), Err(VipError::MissingPort(_))));
        for bad in [
            "/a:0", "/a:", "/a:x", "/a:65536", "/a:-1", "/a:80 ", "/a:1.5",
        ] {
            let e = parse_vip(bad);
            // "/a:80 " is trimmed and valid; the others are bad ports.
            if bad == "/a:80 " {
                assert_eq!(e, Ok(named("/a", 80)));
            } else {
                assert!(matches!(e, Err(VipError::BadPort { .. })), "{bad}: {e:?}");
            }
        }
        assert!(matches!(parse_vip(":80"), Err(VipError::EmptyName(_))));
        assert!(matches!(
            parse_vip("/!/:80"),
            Err(VipError::UnusableName(_))
        ));
        let msg = parse_vip("/a:x").unwrap_err().to_string();
        assert!(msg.contains("\"/a:x\"") && msg.contains("port"), "{msg}");
        // Never a panic on junk.
        for junk in ["::::", "[", "]:1", "ü:1", "\u{0}:1", &"x".repeat(10_000)] {
            let _ = parse_vip(junk);
        }
    }

    #[test]
    fn keys_and_marathon_names() {
        assert!(is_vip_key("VIP_0") && is_vip_key("vip_1") && is_vip_key("VIP"));
        assert!(!is_vip_key("HAPROXY_0_VHOST") && !is_vip_key("Vip_0"));
        assert_eq!(marathon_task_name("/group/web"), "web.group");
        assert_eq!(marathon_task_name("/web"), "web");
        assert_eq!(marathon_task_name("prod/api/v2.users"), "v2.users.api.prod");
        assert_eq!(
            labels::label(&marathon_task_name("/prod/api/v2.users"), false),
            "v2-users-api-prod"
        );
    }
}
