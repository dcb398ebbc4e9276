//! Media types and the strict Accept / Content-Type negotiation of Cosmos (contract §0).

/// A parsed media type. Type, subtype, parameter names and the `charset` value are
/// lower-cased (Guava semantics); other values are kept as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    /// e.g. `application`
    pub typ: String,
    /// e.g. `vnd.dcos.package.search-request+json`
    pub subtype: String,
    /// Parameters in order of appearance (without `q`).
    pub params: Vec<(String, String)>,
}

impl MediaType {
    /// A vendor type `application/vnd.dcos.<ns>.<kind>+json;charset=utf-8;version=<v>`
    /// (`ns` empty → `application/vnd.dcos.<kind>+json…`).
    pub fn vnd(ns: &str, kind: &str, version: &str) -> MediaType {
        let subtype = if ns.is_empty() {
            format!("vnd.dcos.{kind}+json")
        } else {
            format!("vnd.dcos.{ns}.{kind}+json")
        };
        MediaType {
            typ: "application".into(),
            subtype,
            params: vec![
                ("charset".into(), "utf-8".into()),
                ("version".into(), version.into()),
            ],
        }
    }

    /// `P(kind, version)` of the contract.
    pub fn package(kind: &str, version: &str) -> MediaType {
        MediaType::vnd("package", kind, version)
    }

    /// `S(kind, version)` of the contract.
    pub fn service(kind: &str, version: &str) -> MediaType {
        MediaType::vnd("service", kind, version)
    }

    /// Parses one media type (`type/subtype;k=v;…`). Returns the type and its `q` value.
    pub fn parse_with_q(s: &str) -> Option<(MediaType, f32)> {
        let mut parts = s.split(';');
        let full = parts.next()?.trim();
        let (typ, subtype) = full.split_once('/')?;
        let (typ, subtype) = (typ.trim(), subtype.trim());
        if typ.is_empty() || subtype.is_empty() || !is_token(typ) || !is_token(subtype) {
            return None;
        }
        let mut params = Vec::new();
        let mut q = 1.0f32;
        for p in parts {
            let p = p.trim();
            if p.is_empty() {
                continue;
            }
            let (k, v) = p.split_once('=')?;
            let k = k.trim().to_ascii_lowercase();
            let mut v = v.trim().trim_matches('"').to_string();
            if !is_token(&k) {
                return None;
            }
            if k == "q" {
                q = v.parse().ok()?;
                continue;
            }
            if k == "charset" {
                v = v.to_ascii_lowercase();
            }
            params.push((k, v));
        }
        Some((
            MediaType {
                typ: typ.to_ascii_lowercase(),
                subtype: subtype.to_ascii_lowercase(),
                params,
            },
            q,
        ))
    }

    /// Parses one media type, ignoring `q`.
    pub fn parse(s: &str) -> Option<MediaType> {
        Self::parse_with_q(s).map(|(m, _)| m)
    }

    /// The value of a parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Same type and subtype, and every parameter of `self` present with the same value in
    /// `other` (wildcards allowed in `self`).
    pub fn is_compatible_with(&self, other: &MediaType) -> bool {
        (self.typ == "*" || self.typ == other.typ)
            && (self.subtype == "*" || self.subtype == other.subtype)
            && self
                .params
                .iter()
                .all(|(k, v)| other.param(k) == Some(v.as_str()))
    }

    /// Exact equality of type, subtype and the parameter map (order-insensitive).
    pub fn same_as(&self, other: &MediaType) -> bool {
        self.typ == other.typ
            && self.subtype == other.subtype
            && self.params.len() == other.params.len()
            && self
                .params
                .iter()
                .all(|(k, v)| other.param(k) == Some(v.as_str()))
    }

    /// Whether `self` (a request Content-Type) satisfies `expected`: same type/subtype and
    /// contains all of `expected`'s parameters (extra parameters allowed).
    pub fn satisfies(&self, expected: &MediaType) -> bool {
        self.typ == expected.typ
            && self.subtype == expected.subtype
            && expected
                .params
                .iter()
                .all(|(k, v)| self.param(k) == Some(v.as_str()))
    }
}

impl std::fmt::Display for MediaType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.typ, self.subtype)?;
        for (k, v) in &self.params {
            write!(f, ";{k}={v}")?;
        }
        Ok(())
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Parses an Accept header into entries ordered as Cosmos orders them: q=0 dropped, highest q
/// first (stable), with the RFC 7231 back-fill quirk (an entry without parameters takes those of
/// the next entry). Unparseable entries are dropped.
pub fn parse_accept(header: &str) -> Vec<MediaType> {
    let mut entries: Vec<(MediaType, f32, bool)> = header
        .split(',')
        .filter_map(|e| {
            let had_params = e.contains(';');
            MediaType::parse_with_q(e).map(|(m, q)| (m, q, had_params))
        })
        .collect();
    // back-fill, from the end so that chains propagate
    for i in (0..entries.len().saturating_sub(1)).rev() {
        if !entries[i].2 && entries[i].0.params.is_empty() {
            let next = entries[i + 1].0.params.clone();
            let next_q = entries[i + 1].1;
            entries[i].0.params = next;
            entries[i].1 = next_q;
            entries[i].2 = entries[i + 1].2;
        }
    }
    let mut entries: Vec<(MediaType, f32)> = entries
        .into_iter()
        .filter(|(_, q, _)| *q > 0.0)
        .map(|(m, q, _)| (m, q))
        .collect();
    entries.sort_by(|a, b| {
        b.1.partial_cmp(&a.1)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| b.0.params.len().cmp(&a.0.params.len()))
    });
    entries.into_iter().map(|(m, _)| m).collect()
}

/// Picks the response type: the first Accept entry compatible with any offered type, which must
/// then equal one of them exactly.
pub fn negotiate<'a>(accept: &str, offered: &'a [MediaType]) -> Option<&'a MediaType> {
    let entries = parse_accept(accept);
    let first = entries
        .iter()
        .find(|e| offered.iter().any(|o| e.is_compatible_with(o)))?;
    offered.iter().find(|o| o.same_as(first))
}

/// `application/vnd.dcos.package.error+json;charset=utf-8;version=v1`
pub fn error_type() -> MediaType {
    MediaType::package("error", "v1")
}

/// `application/vnd.dcos.capabilities+json;charset=utf-8;version=v1`
pub fn capabilities_type() -> MediaType {
    MediaType::vnd("", "capabilities", "v1")
}

/// `application/vnd.dcos.universe.repo+json;charset=utf-8;version=<v>`
pub fn repo_type(version: &str) -> MediaType {
    MediaType::vnd("universe", "repo", version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_in_cosmos_order() {
        assert_eq!(
            MediaType::package("search-response", "v1").to_string(),
            "application/vnd.dcos.package.search-response+json;charset=utf-8;version=v1"
        );
        assert_eq!(
            capabilities_type().to_string(),
            "application/vnd.dcos.capabilities+json;charset=utf-8;version=v1"
        );
    }

    #[test]
    fn negotiation_is_strict() {
        let offered = [
            MediaType::package("describe-response", "v3"),
            MediaType::package("describe-response", "v2"),
        ];
        let v3 = "application/vnd.dcos.package.describe-response+json;charset=utf-8;version=v3";
        let v2 = "application/vnd.dcos.package.describe-response+json;charset=utf-8;version=v2";
        assert_eq!(negotiate(v3, &offered), Some(&offered[0]));
        assert_eq!(negotiate(v2, &offered), Some(&offered[1]));
        assert_eq!(
            negotiate(&format!("{v2};q=0.5,{v3}"), &offered),
            Some(&offered[0])
        );
        assert_eq!(
            negotiate(&format!("{v3};q=0.1,{v2};q=0.9"), &offered),
            Some(&offered[1])
        );
        assert_eq!(
            negotiate(
                "application/vnd.dcos.package.describe-response+json; version=v3; charset=UTF-8",
                &offered
            ),
            Some(&offered[0])
        );
        assert_eq!(negotiate("*/*", &offered), None);
        assert_eq!(negotiate("application/json", &offered), None);
        assert_eq!(
            negotiate(
                "application/vnd.dcos.package.describe-response+json",
                &offered
            ),
            None
        );
        assert_eq!(
            negotiate(
                "application/vnd.dcos.package.describe-response+json;charset=utf-8;version=V3",
                &offered
            ),
            None
        );
        assert_eq!(negotiate(&format!("{v3};q=0"), &offered), None);
    }

    #[test]
    fn content_type_may_have_extra_params() {
        let want = MediaType::package("search-request", "v1");
        let got = MediaType::parse(
            "application/vnd.dcos.package.search-request+json; charset=UTF-8; version=v1; x=y",
        )
        .expect("parse");
        assert!(got.satisfies(&want));
        let no_version =
            MediaType::parse("application/vnd.dcos.package.search-request+json;charset=utf-8")
                .expect("parse");
        assert!(!no_version.satisfies(&want));
        assert!(MediaType::parse("garbage").is_none());
    }
}
