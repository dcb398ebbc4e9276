//! Universe package and repository formats.
//!
//! * [`package`]: package definitions (package.json, resource.json, command.json, config.json
//!   as a JSON-schema value, the base64 Marathon template), typed and lossless.
//! * [`index`]: repository indexes v3/v4/v5 ([`index::Repository`]).
//! * [`convert`]: the upstream build's per-DC/OS-version filtering, escaping and downgrades.
//! * [`version`]: packaging versions, repo media-type versions, `LooseVersion` ordering.
//! * [`validate`]: the upstream validation rules with precise errors (file, JSON pointer, rule).
//! * [`mustache`]: a syntax check of Marathon templates.
//! * [`pyjson`]: JSON output byte-compatible with Python's `json.dump`.
//!
//! Loading an index, as Cosmos does:
//!
//! ```
//! use repo_schema::index::Repository;
//! use repo_schema::version::RepoVersion;
//! let bytes = br#"{"packages":[{"packagingVersion":"3.0","name":"hello","version":"1.0",
//!   "releaseVersion":2,"maintainer":"m","description":"d","tags":[],
//!   "marathon":{"v2AppMustacheTemplate":"eyJpZCI6ICJ7e25hbWV9fSJ9"}}]}"#;
//! let repo = Repository::from_slice(bytes, RepoVersion::V3).unwrap();
//! let p = &repo.packages[0];
//! assert_eq!((p.name(), p.version(), p.release_version()), ("hello", "1.0", 2));
//! assert_eq!(p.marathon_template().unwrap(), r#"{"id": "{{name}}"}"#);
//! ```

pub mod convert;
pub mod index;
pub mod mustache;
pub mod package;
pub mod pyjson;
pub mod validate;
pub mod version;

pub use index::Repository;
pub use package::PackageDefinition;
pub use version::{LooseVersion, PackagingVersion, RepoVersion};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid JSON: {0}")]
    Json(#[source] serde_json::Error),
    #[error("unknown packagingVersion {0:?} (expected \"2.0\", \"3.0\", \"4.0\" or \"5.0\")")]
    UnknownPackagingVersion(String),
    #[error("unknown repository version {0:?} (expected v3, v4 or v5)")]
    UnknownRepoVersion(String),
    #[error("missing required field `{0}`")]
    MissingField(&'static str),
    #[error("field `{field}` must be {expected}, found {found}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
        found: &'static str,
    },
    #[error("marathon.v2AppMustacheTemplate is not valid base64: {0}")]
    Base64(String),
    #[error("marathon.v2AppMustacheTemplate does not decode to UTF-8 text")]
    TemplateNotUtf8,
    #[error("package #{index} ({name:?}) in the index: {source}")]
    InPackage {
        index: usize,
        name: String,
        #[source]
        source: Box<Error>,
    },
    #[error("unsupported repository media type {0:?}")]
    UnsupportedMediaType(String),
    #[error(
        "package {name} {version} has packagingVersion {packaging_version}, which a {repo_version} index cannot carry"
    )]
    PackagingVersionNotAllowed {
        name: String,
        version: String,
        packaging_version: PackagingVersion,
        repo_version: RepoVersion,
    },
    #[error("schema {file}: {message}")]
    Schema { file: String, message: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}
