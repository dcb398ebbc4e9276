//! Versions: packaging versions, repository media-type versions, DC/OS release versions.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::Error;

/// The `packagingVersion` of a package definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PackagingVersion {
    V2,
    V3,
    V4,
    V5,
}

impl PackagingVersion {
    pub const ALL: [PackagingVersion; 4] = [Self::V2, Self::V3, Self::V4, Self::V5];

    /// The string used in package.json (`"2.0"` … `"5.0"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V2 => "2.0",
            Self::V3 => "3.0",
            Self::V4 => "4.0",
            Self::V5 => "5.0",
        }
    }

    /// Name of the definition in the upstream schemas (`v20Package` …).
    pub fn schema_definition(self) -> &'static str {
        match self {
            Self::V2 => "v20Package",
            Self::V3 => "v30Package",
            Self::V4 => "v40Package",
            Self::V5 => "v50Package",
        }
    }

    /// The oldest repository media-type version that can carry this packaging version.
    pub fn min_repo_version(self) -> RepoVersion {
        match self {
            Self::V2 | Self::V3 => RepoVersion::V3,
            Self::V4 => RepoVersion::V4,
            Self::V5 => RepoVersion::V5,
        }
    }

    /// Whether `command.json` is allowed (only before 4.0).
    pub fn allows_command(self) -> bool {
        self < Self::V4
    }
}

impl FromStr for PackagingVersion {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "2.0" => Ok(Self::V2),
            "3.0" => Ok(Self::V3),
            "4.0" => Ok(Self::V4),
            "5.0" => Ok(Self::V5),
            other => Err(Error::UnknownPackagingVersion(other.to_string())),
        }
    }
}

impl fmt::Display for PackagingVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Version of the repository index media type
/// `application/vnd.dcos.universe.repo+json;charset=utf-8;version=vN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RepoVersion {
    V3,
    V4,
    V5,
}

/// Media type of repository indexes without its version parameter.
pub const REPO_MEDIA_TYPE_BASE: &str = "application/vnd.dcos.universe.repo+json";

impl RepoVersion {
    pub const ALL: [RepoVersion; 3] = [Self::V3, Self::V4, Self::V5];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::V3 => "v3",
            Self::V4 => "v4",
            Self::V5 => "v5",
        }
    }

    /// The full media type, exactly as the upstream `.content_type` files spell it.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::V3 => "application/vnd.dcos.universe.repo+json;charset=utf-8;version=v3",
            Self::V4 => "application/vnd.dcos.universe.repo+json;charset=utf-8;version=v4",
            Self::V5 => "application/vnd.dcos.universe.repo+json;charset=utf-8;version=v5",
        }
    }

    /// Parses a media type such as `application/vnd.dcos.universe.repo+json;charset=utf-8;version=v4`
    /// (parameters in any order, case-insensitive type, optional whitespace). Returns `None` for
    /// other types or a missing/unknown version parameter.
    pub fn from_media_type(s: &str) -> Option<RepoVersion> {
        let mut parts = s.split(';');
        let essence = parts.next()?.trim();
        if !essence.eq_ignore_ascii_case(REPO_MEDIA_TYPE_BASE) {
            return None;
        }
        for p in parts {
            let (k, v) = p.split_once('=')?;
            if k.trim().eq_ignore_ascii_case("version") {
                return v.trim().trim_matches('"').parse().ok();
            }
        }
        None
    }

    /// Which packaging versions an index of this media type may contain.
    pub fn allows(self, pv: PackagingVersion) -> bool {
        pv.min_repo_version() <= self
    }

    /// Upstream `get_universe_version_for_dcos`: ≤1.9 → v3, ≤1.11 → v4, else v5.
    pub fn for_dcos(dcos: &LooseVersion) -> RepoVersion {
        if *dcos <= LooseVersion::new("1.9") {
            Self::V3
        } else if *dcos <= LooseVersion::new("1.11") {
            Self::V4
        } else {
            Self::V5
        }
    }
}

impl FromStr for RepoVersion {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "v3" | "V3" => Ok(Self::V3),
            "v4" | "V4" => Ok(Self::V4),
            "v5" | "V5" => Ok(Self::V5),
            other => Err(Error::UnknownRepoVersion(other.to_string())),
        }
    }
}

impl fmt::Display for RepoVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One component of a [`LooseVersion`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Component {
    /// Digits, leading zeros stripped (compared numerically without overflow).
    Num(String),
    Text(String),
}

impl Ord for Component {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Component::Num(a), Component::Num(b)) => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
            (Component::Text(a), Component::Text(b)) => a.cmp(b),
            // Python raises TypeError here; we order numbers before text, deterministically.
            (Component::Num(_), Component::Text(_)) => Ordering::Less,
            (Component::Text(_), Component::Num(_)) => Ordering::Greater,
        }
    }
}

impl PartialOrd for Component {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Python `distutils.version.LooseVersion`, which the upstream build uses for
/// `minDcosReleaseVersion` filtering: `1.9.0 > 1.9`, `1.10 > 1.9`, `999 > 2.0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LooseVersion {
    raw: String,
    components: Vec<Component>,
}

impl LooseVersion {
    pub fn new(s: &str) -> Self {
        let mut components = Vec::new();
        let bytes = s.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let start = i;
            let c = bytes[i];
            if c.is_ascii_digit() {
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                let digits = s[start..i].trim_start_matches('0');
                components.push(Component::Num(digits.to_string()));
            } else if c.is_ascii_lowercase() {
                while i < bytes.len() && bytes[i].is_ascii_lowercase() {
                    i += 1;
                }
                components.push(Component::Text(s[start..i].to_string()));
            } else if c == b'.' {
                i += 1;
            } else {
                // Text between matches of `\d+|[a-z]+|\.` is kept as one component.
                while i < bytes.len()
                    && !bytes[i].is_ascii_digit()
                    && !bytes[i].is_ascii_lowercase()
                    && bytes[i] != b'.'
                {
                    i += 1;
                }
                // Stay on a char boundary for non-ASCII text.
                while i < bytes.len() && !s.is_char_boundary(i) {
                    i += 1;
                }
                components.push(Component::Text(s[start..i].to_string()));
            }
        }
        LooseVersion {
            raw: s.to_string(),
            components,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

impl Ord for LooseVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.components.cmp(&other.components)
    }
}

impl PartialOrd for LooseVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for LooseVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl From<&str> for LooseVersion {
    fn from(s: &str) -> Self {
        LooseVersion::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lv(s: &str) -> LooseVersion {
        LooseVersion::new(s)
    }

    #[test]
    fn loose_version_orders_like_distutils() {
        assert!(lv("1.9") < lv("1.10"));
        assert!(lv("1.9") < lv("1.9.0"));
        assert!(lv("1.10") < lv("2.0"));
        assert!(lv("2.0") < lv("999"));
        assert!(lv("0.0") < lv("1.6"));
        assert_eq!(lv("1.10").cmp(&lv("1.10")), Ordering::Equal);
        assert_eq!(lv("01.10").cmp(&lv("1.10")), Ordering::Equal);
        assert!(lv("1.0-beta") > lv("1.0"));
        assert!(lv("99999999999999999999999") > lv("9999"));
    }

    #[test]
    fn repo_version_for_dcos() {
        assert_eq!(RepoVersion::for_dcos(&lv("1.8")), RepoVersion::V3);
        assert_eq!(RepoVersion::for_dcos(&lv("1.9")), RepoVersion::V3);
        assert_eq!(RepoVersion::for_dcos(&lv("1.10")), RepoVersion::V4);
        assert_eq!(RepoVersion::for_dcos(&lv("1.11")), RepoVersion::V4);
        assert_eq!(RepoVersion::for_dcos(&lv("1.12")), RepoVersion::V5);
        assert_eq!(RepoVersion::for_dcos(&lv("2.0")), RepoVersion::V5);
    }

    #[test]
    fn media_types_round_trip() {
        for v in RepoVersion::ALL {
            assert_eq!(RepoVersion::from_media_type(v.media_type()), Some(v));
        }
        assert_eq!(
            RepoVersion::from_media_type(
                "Application/vnd.dcos.universe.repo+json; version=v4; charset=utf-8"
            ),
            Some(RepoVersion::V4)
        );
        assert_eq!(RepoVersion::from_media_type("application/json"), None);
        assert_eq!(
            RepoVersion::from_media_type("application/vnd.dcos.universe.repo+json;version=v9"),
            None
        );
    }

    #[test]
    fn packaging_versions() {
        assert_eq!(
            "4.0".parse::<PackagingVersion>().ok(),
            Some(PackagingVersion::V4)
        );
        assert!("6.0".parse::<PackagingVersion>().is_err());
        assert!(RepoVersion::V3.allows(PackagingVersion::V3));
        assert!(!RepoVersion::V3.allows(PackagingVersion::V4));
        assert!(RepoVersion::V4.allows(PackagingVersion::V4));
        assert!(!RepoVersion::V4.allows(PackagingVersion::V5));
        assert!(!PackagingVersion::V4.allows_command());
    }
}
