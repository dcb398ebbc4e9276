//! Repository indexes: `{"packages": [<package definition>…]}` served as
//! `application/vnd.dcos.universe.repo+json;charset=utf-8;version=v3|v4|v5`.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::convert;
use crate::package::PackageDefinition;
use crate::version::{LooseVersion, RepoVersion};
use crate::Error;

/// A parsed repository index.
#[derive(Debug, Clone, PartialEq)]
pub struct Repository {
    /// The media-type version the index was served or loaded as.
    pub version: RepoVersion,
    pub packages: Vec<PackageDefinition>,
}

#[derive(Deserialize)]
struct RawIndex {
    packages: Vec<Map<String, Value>>,
}

impl Repository {
    /// Parses an index. Every package must be a well-formed definition (see
    /// [`PackageDefinition::from_map`]); the first bad one fails the whole index, as in Cosmos,
    /// with its position and name in the error. Packaging versions newer than `version` allows are
    /// accepted (Cosmos decodes every version with one decoder); use
    /// [`Repository::check_media_type`] to enforce that. Unknown top-level fields are ignored.
    pub fn from_slice(bytes: &[u8], version: RepoVersion) -> Result<Repository, Error> {
        let raw: RawIndex = serde_json::from_slice(bytes).map_err(Error::Json)?;
        Self::from_raw(raw.packages, version)
    }

    /// Decodes like Cosmos does: on top of [`Repository::from_slice`], `packagingVersion`,
    /// `maintainer`, `description` and `tags` are required and every known package.json field
    /// must have its type (nulls count as absent); unknown fields are still kept.
    pub fn from_slice_strict(bytes: &[u8], version: RepoVersion) -> Result<Repository, Error> {
        let repo = Self::from_slice(bytes, version)?;
        for (index, p) in repo.packages.iter().enumerate() {
            let wrap = |source: Error| Error::InPackage {
                index,
                name: p.name().to_string(),
                source: Box::new(source),
            };
            if p.as_map().get("packagingVersion").is_none() {
                return Err(wrap(Error::MissingField("packagingVersion")));
            }
            p.metadata().map_err(wrap)?;
            p.resource_typed().map_err(wrap)?;
        }
        Ok(repo)
    }

    /// Like [`Repository::from_slice`] for an already parsed JSON value.
    pub fn from_value(value: Value, version: RepoVersion) -> Result<Repository, Error> {
        let raw: RawIndex = serde_json::from_value(value).map_err(Error::Json)?;
        Self::from_raw(raw.packages, version)
    }

    fn from_raw(raw: Vec<Map<String, Value>>, version: RepoVersion) -> Result<Repository, Error> {
        let mut packages = Vec::with_capacity(raw.len());
        for (index, p) in raw.into_iter().enumerate() {
            let name = p.get("name").and_then(Value::as_str).map(str::to_string);
            let pkg = PackageDefinition::from_map(p).map_err(|source| Error::InPackage {
                index,
                name: name.unwrap_or_else(|| "?".into()),
                source: Box::new(source),
            })?;
            packages.push(pkg);
        }
        Ok(Repository { version, packages })
    }

    /// Parses an index served with Content-Type `media_type`.
    pub fn from_slice_with_media_type(bytes: &[u8], media_type: &str) -> Result<Repository, Error> {
        let version = RepoVersion::from_media_type(media_type)
            .ok_or_else(|| Error::UnsupportedMediaType(media_type.to_string()))?;
        Self::from_slice(bytes, version)
    }

    /// Errors when a package's packaging version is newer than the index's media type allows
    /// (e.g. a 5.0 package in a v4 index).
    pub fn check_media_type(&self) -> Result<(), Error> {
        for p in &self.packages {
            if !self.version.allows(p.packaging_version()) {
                return Err(Error::PackagingVersionNotAllowed {
                    name: p.name().to_string(),
                    version: p.version().to_string(),
                    packaging_version: p.packaging_version(),
                    repo_version: self.version,
                });
            }
        }
        Ok(())
    }

    /// The index as upstream writes `repo-up-to-<dcos>.json`: packages filtered by
    /// `minDcosReleaseVersion`, and for DC/OS < 1.10 config strings escaped and 4.0/5.0 packages
    /// relabelled 3.0. The media-type version follows [`RepoVersion::for_dcos`].
    pub fn for_dcos(&self, dcos: &LooseVersion) -> Result<Repository, Error> {
        let mut packages = Vec::new();
        for p in &self.packages {
            if let Some(m) = convert::package_for_dcos(p.as_map(), dcos) {
                packages.push(PackageDefinition::from_map(m)?);
            }
        }
        Ok(Repository {
            version: RepoVersion::for_dcos(dcos),
            packages,
        })
    }

    /// The index converted for a client that only understands `target` (see
    /// [`convert::package_for_repo_version`]). Indexes already at or below `target` are returned
    /// unchanged (relabelled).
    pub fn for_repo_version(&self, target: RepoVersion) -> Result<Repository, Error> {
        let mut packages = Vec::new();
        for p in &self.packages {
            if let Some(m) = convert::package_for_repo_version(p.as_map(), target) {
                packages.push(PackageDefinition::from_map(m)?);
            }
        }
        Ok(Repository {
            version: target,
            packages,
        })
    }

    /// Packages sorted the way Cosmos orders one repository: name ascending, releaseVersion
    /// descending.
    pub fn sorted_for_cosmos(&self) -> Vec<&PackageDefinition> {
        let mut v: Vec<&PackageDefinition> = self.packages.iter().collect();
        v.sort_by(|a, b| {
            a.name()
                .cmp(b.name())
                .then(b.release_version().cmp(&a.release_version()))
        });
        v
    }

    /// Every version of `name`, highest releaseVersion first.
    pub fn versions_of<'a>(&'a self, name: &str) -> Vec<&'a PackageDefinition> {
        let mut v: Vec<&PackageDefinition> =
            self.packages.iter().filter(|p| p.name() == name).collect();
        v.sort_by_key(|p| std::cmp::Reverse(p.release_version()));
        v
    }

    /// The highest-releaseVersion package of `name`.
    pub fn latest(&self, name: &str) -> Option<&PackageDefinition> {
        self.packages
            .iter()
            .filter(|p| p.name() == name)
            .max_by_key(|p| p.release_version())
    }

    /// The index as JSON.
    pub fn to_json(&self) -> Value {
        let packages = self
            .packages
            .iter()
            .map(PackageDefinition::to_json)
            .collect();
        let mut m = Map::new();
        m.insert("packages".into(), Value::Array(packages));
        Value::Object(m)
    }

    /// The index serialized the way upstream writes it (Python `json.dump` formatting).
    pub fn to_python_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.packages.len() * 16 * 1024);
        out.extend_from_slice(b"{\"packages\": [");
        for (i, p) in self.packages.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b", ");
            }
            // Serializing a map of Values into a Vec cannot fail.
            let _ = crate::pyjson::write_value(&mut out, p.as_map());
        }
        out.extend_from_slice(b"]}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::PackagingVersion;

    const INDEX: &str = r#"{"packages": [
      {"packagingVersion":"4.0","name":"b","version":"2","releaseVersion":1,"minDcosReleaseVersion":"1.10","upgradesFrom":["*"]},
      {"packagingVersion":"4.0","name":"b","version":"1","releaseVersion":0,"minDcosReleaseVersion":"1.8","upgradesFrom":["*"],
       "config":{"properties":{"s":{"type":"string","default":"[\"x\"]"}}}},
      {"packagingVersion":"5.0","name":"a","version":"1","releaseVersion":7,"manager":{"packageName":"m"}},
      {"packagingVersion":"2.0","name":"c","version":"1","releaseVersion":0}
    ], "extra": true}"#;

    #[test]
    fn parse_and_query() {
        let r = Repository::from_slice(INDEX.as_bytes(), RepoVersion::V5).unwrap();
        assert_eq!(r.packages.len(), 4);
        assert_eq!(r.latest("b").unwrap().version(), "2");
        let names: Vec<_> = r
            .sorted_for_cosmos()
            .iter()
            .map(|p| (p.name(), p.release_version()))
            .collect();
        assert_eq!(names, [("a", 7), ("b", 1), ("b", 0), ("c", 0)]);
        assert!(r.check_media_type().is_ok());
        let as_v4 = Repository {
            version: RepoVersion::V4,
            ..r.clone()
        };
        assert!(as_v4.check_media_type().is_err());
    }

    #[test]
    fn for_dcos_legacy() {
        let r = Repository::from_slice(INDEX.as_bytes(), RepoVersion::V5).unwrap();
        let r18 = r.for_dcos(&LooseVersion::new("1.8")).unwrap();
        assert_eq!(r18.version, RepoVersion::V3);
        let names: Vec<_> = r18
            .packages
            .iter()
            .map(|p| (p.name(), p.version()))
            .collect();
        assert_eq!(names, [("b", "1"), ("a", "1"), ("c", "1")]);
        let b = &r18.packages[0];
        assert_eq!(b.packaging_version(), PackagingVersion::V3);
        assert!(b.as_map().get("upgradesFrom").is_none());
        assert_eq!(
            b.config().unwrap()["properties"]["s"]["default"],
            "[\\\"x\\\"]"
        );
        let r20 = r.for_dcos(&LooseVersion::new("2.0")).unwrap();
        assert_eq!(r20.packages.len(), 4);
        assert_eq!(r20.packages[0].packaging_version(), PackagingVersion::V4);
    }

    #[test]
    fn for_repo_version_drops_v5() {
        let r = Repository::from_slice(INDEX.as_bytes(), RepoVersion::V5).unwrap();
        let v4 = r.for_repo_version(RepoVersion::V4).unwrap();
        assert_eq!(v4.packages.len(), 3);
        assert!(v4.check_media_type().is_ok());
        let v3 = r.for_repo_version(RepoVersion::V3).unwrap();
        assert!(v3.check_media_type().is_ok());
    }

    #[test]
    fn bad_indexes_are_errors() {
        for bad in [
            "",
            "[]",
            "{}",
            r#"{"packages": {}}"#,
            r#"{"packages": [1]}"#,
            r#"{"packages": [{"name":"x","version":"1","releaseVersion":0,"packagingVersion":"9.0"}]}"#,
            r#"{"packages": [{"name":"x"#,
        ] {
            let e = Repository::from_slice(bad.as_bytes(), RepoVersion::V5);
            assert!(e.is_err(), "{bad:?}");
        }
        let e = Repository::from_slice(
            br#"{"packages": [{"name":"ok","version":"1","releaseVersion":0},{"name":"x","version":"1","releaseVersion":0,"packagingVersion":"9.0"}]}"#,
            RepoVersion::V5,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("package #1") && e.contains("\"x\"") && e.contains("9.0"),
            "{e}"
        );
    }

    #[test]
    fn strict_decoding_like_cosmos() {
        let ok = br#"{"packages":[{"packagingVersion":"3.0","name":"a","version":"1","releaseVersion":0,"maintainer":"m","description":"d","tags":["x"],"selected":null,"extra":1}]}"#;
        assert!(Repository::from_slice_strict(ok, RepoVersion::V3).is_ok());
        for bad in [
            r#"{"packages":[{"name":"a","version":"1","releaseVersion":0,"maintainer":"m","description":"d","tags":[]}]}"#,
            r#"{"packages":[{"packagingVersion":"3.0","name":"a","version":"1","releaseVersion":0,"description":"d","tags":[]}]}"#,
            r#"{"packages":[{"packagingVersion":"3.0","name":"a","version":"1","releaseVersion":0,"maintainer":"m","description":"d","tags":[1]}]}"#,
            r#"{"packages":[{"packagingVersion":"3.0","name":"a","version":"1","releaseVersion":0,"maintainer":"m","description":"d","tags":[],"framework":"yes"}]}"#,
            r#"{"packages":[{"packagingVersion":"3.0","name":"a","version":"1","releaseVersion":0,"maintainer":"m","description":"d","tags":[],"resource":{"images":{"icon-small":3}}}]}"#,
        ] {
            assert!(
                Repository::from_slice(bad.as_bytes(), RepoVersion::V3).is_ok(),
                "{bad}"
            );
            let e = Repository::from_slice_strict(bad.as_bytes(), RepoVersion::V3).unwrap_err();
            assert!(e.to_string().contains("package #0"), "{e}");
        }
    }

    #[test]
    fn python_json_output() {
        let r = Repository::from_slice(
            br#"{"packages":[{"name":"x","version":"1","releaseVersion":0,"n":1.0}]}"#,
            RepoVersion::V3,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(r.to_python_json()).unwrap(),
            r#"{"packages": [{"name": "x", "version": "1", "releaseVersion": 0, "n": 1.0}]}"#
        );
    }
}
