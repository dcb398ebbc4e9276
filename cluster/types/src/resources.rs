//! Resource vectors: scalars (cpus, mem, disk, gpus) and port ranges.

use serde::{Deserialize, Serialize};

/// An inclusive range of ports, `[begin, end]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PortRange {
    pub begin: u16,
    pub end: u16,
}

impl PortRange {
    pub fn len(&self) -> usize {
        (self.end as usize + 1).saturating_sub(self.begin as usize)
    }
    pub fn is_empty(&self) -> bool {
        self.end < self.begin
    }
}

/// A bundle of resources. Scalars are in Mesos units: cpus (shares of a core), mem and disk
/// (MB), gpus (whole devices). Ports are kept as sorted, non-overlapping, non-adjacent ranges.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    #[serde(default)]
    pub cpus: f64,
    #[serde(default)]
    pub mem: f64,
    #[serde(default)]
    pub disk: f64,
    #[serde(default)]
    pub gpus: f64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortRange>,
}

/// Scalars are compared with this tolerance (Mesos uses fixed-point with 3 decimals).
const EPS: f64 = 1e-6;

impl Resources {
    pub fn new(cpus: f64, mem: f64, disk: f64) -> Resources {
        Resources {
            cpus,
            mem,
            disk,
            ..Resources::default()
        }
    }

    pub fn with_ports(mut self, ranges: impl IntoIterator<Item = (u16, u16)>) -> Resources {
        self.ports = normalize(
            ranges
                .into_iter()
                .map(|(begin, end)| PortRange { begin, end })
                .collect(),
        );
        self
    }

    pub fn is_empty(&self) -> bool {
        self.cpus <= EPS
            && self.mem <= EPS
            && self.disk <= EPS
            && self.gpus <= EPS
            && self.ports.is_empty()
    }

    /// Number of ports in the bundle.
    pub fn port_count(&self) -> usize {
        self.ports.iter().map(|r| r.len()).sum()
    }

    pub fn contains_port(&self, port: u16) -> bool {
        self.ports.iter().any(|r| r.begin <= port && port <= r.end)
    }

    /// Does `self` contain all of `other`?
    pub fn contains(&self, other: &Resources) -> bool {
        self.cpus + EPS >= other.cpus
            && self.mem + EPS >= other.mem
            && self.disk + EPS >= other.disk
            && self.gpus + EPS >= other.gpus
            && other.ports.iter().all(|o| {
                self.ports
                    .iter()
                    .any(|s| s.begin <= o.begin && o.end <= s.end)
            })
    }

    pub fn plus(&self, other: &Resources) -> Resources {
        let mut ports = self.ports.clone();
        ports.extend_from_slice(&other.ports);
        Resources {
            cpus: self.cpus + other.cpus,
            mem: self.mem + other.mem,
            disk: self.disk + other.disk,
            gpus: self.gpus + other.gpus,
            ports: normalize(ports),
        }
    }

    /// `self - other`, saturating at zero; ports of `other` are removed from `self`.
    pub fn minus(&self, other: &Resources) -> Resources {
        let mut ports = self.ports.clone();
        for o in &other.ports {
            let mut next = Vec::with_capacity(ports.len() + 1);
            for r in ports {
                if o.end < r.begin || o.begin > r.end {
                    next.push(r);
                    continue;
                }
                if r.begin < o.begin {
                    next.push(PortRange {
                        begin: r.begin,
                        end: o.begin - 1,
                    });
                }
                if o.end < r.end {
                    next.push(PortRange {
                        begin: o.end + 1,
                        end: r.end,
                    });
                }
            }
            ports = next;
        }
        let sub = |a: f64, b: f64| if a - b > EPS { a - b } else { 0.0 };
        Resources {
            cpus: sub(self.cpus, other.cpus),
            mem: sub(self.mem, other.mem),
            disk: sub(self.disk, other.disk),
            gpus: sub(self.gpus, other.gpus),
            ports,
        }
    }

    /// Takes `n` ports from the lowest available ones, if there are enough.
    pub fn take_ports(&self, n: usize) -> Option<Vec<u16>> {
        let mut out = Vec::with_capacity(n);
        for r in &self.ports {
            let mut p = r.begin;
            loop {
                if out.len() == n {
                    return Some(out);
                }
                out.push(p);
                if p == r.end {
                    break;
                }
                p += 1;
            }
        }
        (out.len() == n).then_some(out)
    }
}

/// Sorts ranges and merges overlapping or adjacent ones.
pub fn normalize(mut ranges: Vec<PortRange>) -> Vec<PortRange> {
    ranges.retain(|r| !r.is_empty());
    ranges.sort();
    let mut out: Vec<PortRange> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if (last.end as u32) + 1 >= r.begin as u32 => {
                last.end = last.end.max(r.end);
            }
            _ => out.push(r),
        }
    }
    out
}

/// Ports as single-port ranges (for a task that uses exactly these ports).
pub fn ports_of(ports: &[u16]) -> Vec<PortRange> {
    normalize(
        ports
            .iter()
            .map(|&p| PortRange { begin: p, end: p })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_and_ports() {
        let agent = Resources::new(4.0, 4096.0, 10000.0).with_ports([(31000, 31009)]);
        let task = Resources {
            ports: ports_of(&[31000, 31005]),
            ..Resources::new(1.0, 512.0, 0.0)
        };
        assert!(agent.contains(&task));
        let left = agent.minus(&task);
        assert_eq!(left.cpus, 3.0);
        assert_eq!(left.port_count(), 8);
        assert!(!left.contains_port(31005));
        assert!(!left.contains(&task));
        let back = left.plus(&task);
        assert_eq!(
            back.ports,
            vec![PortRange {
                begin: 31000,
                end: 31009
            }]
        );
        assert_eq!(back.take_ports(3), Some(vec![31000, 31001, 31002]));
        assert_eq!(Resources::default().take_ports(1), None);
    }

    #[test]
    fn scalars_saturate() {
        let r = Resources::new(1.0, 1.0, 1.0).minus(&Resources::new(2.0, 0.5, 1.0));
        assert_eq!((r.cpus, r.mem, r.disk), (0.0, 0.5, 0.0));
    }
}

impl Resources {
    /// Parses the Mesos `--resources` text form: `cpus:4;mem:8192;disk:10000;gpus:0;ports:[31000-32000,33000-33100]`.
    /// Unknown names are an error; a missing name is zero.
    pub fn parse(text: &str) -> Result<Resources, String> {
        let mut r = Resources::default();
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part
                .split_once(':')
                .ok_or_else(|| format!("resource {part:?} is not NAME:VALUE"))?;
            let name = name.trim();
            let value = value.trim();
            let scalar = || {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .ok_or_else(|| {
                        format!("resource {name}: {value:?} is not a non-negative number")
                    })
            };
            match name {
                "cpus" => r.cpus = scalar()?,
                "mem" => r.mem = scalar()?,
                "disk" => r.disk = scalar()?,
                "gpus" => r.gpus = scalar()?,
                "ports" => r.ports = parse_ranges(value)?,
                other => {
                    return Err(format!(
                        "unknown resource {other:?} (cpus, mem, disk, gpus, ports)"
                    ))
                }
            }
        }
        Ok(r)
    }
}

/// Parses `[31000-32000,33000-33100]` (brackets optional; a single port is `80`).
pub fn parse_ranges(text: &str) -> Result<Vec<PortRange>, String> {
    let inner = text.trim().trim_start_matches('[').trim_end_matches(']');
    let mut out = Vec::new();
    for item in inner.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (a, b) = item.split_once('-').unwrap_or((item, item));
        let begin: u16 = a
            .trim()
            .parse()
            .map_err(|_| format!("bad port {a:?} in {text:?}"))?;
        let end: u16 = b
            .trim()
            .parse()
            .map_err(|_| format!("bad port {b:?} in {text:?}"))?;
        if end < begin {
            return Err(format!("port range {item:?} ends before it begins"));
        }
        out.push(PortRange { begin, end });
    }
    Ok(normalize(out))
}

/// Formats ranges the Mesos way: `[31000-31005, 31010-31010]`.
pub fn format_ranges(ranges: &[PortRange]) -> String {
    let items: Vec<String> = ranges
        .iter()
        .map(|r| format!("{}-{}", r.begin, r.end))
        .collect();
    format!("[{}]", items.join(", "))
}

#[cfg(test)]
mod parse_tests {
    use super::*;

    #[test]
    fn parse_text_form() {
        let r = Resources::parse("cpus:2;mem:1024; ports:[31000-31002,80]").unwrap();
        assert_eq!(r.cpus, 2.0);
        assert_eq!(r.port_count(), 4);
        assert_eq!(format_ranges(&r.ports), "[80-80, 31000-31002]");
        assert!(Resources::parse("cpus:-1").is_err());
        assert!(Resources::parse("foo:1").is_err());
        assert!(Resources::parse("ports:[9-1]").is_err());
        assert!(Resources::parse("cpus").is_err());
    }
}
