//! Request-path normalisation.
//!
//! Routing and authentication decisions are made on the *normalised* path, and the upstream gets
//! a path rebuilt from the same normalised segments, so nothing can escape the route prefix:
//!
//! * empty segments (`//`) are merged, as nginx does with `merge_slashes on`;
//! * `.` segments are dropped and `..` segments remove the previous segment (RFC 3986 §5.2.4),
//!   also when they are percent-encoded (`%2e%2e`, `.%2E`); a `..` above the root is rejected;
//! * a segment that decodes to something containing `/`, `\` or NUL (`%2f`, `%5c`, `%00`) is
//!   rejected, because upstreams would split it differently from us.

use std::fmt;

/// Why a path was refused (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    /// A segment contains an encoded `/` or `\` (`%2f`, `%5c`).
    EncodedSeparator,
    /// A segment contains a NUL byte or a raw backslash.
    ForbiddenByte,
    /// `..` would climb above the root.
    Traversal,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::EncodedSeparator => {
                f.write_str("encoded path separators (%2F, %5C) are not allowed in the path")
            }
            PathError::ForbiddenByte => f.write_str("the path contains a forbidden character"),
            PathError::Traversal => f.write_str("the path climbs above the root with '..'"),
        }
    }
}

/// One path segment: the text as received (still percent-encoded) and its decoded form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub raw: String,
    pub decoded: String,
}

/// A normalised path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormPath {
    pub segments: Vec<Segment>,
    /// The request path ended with `/` (kept when forwarding).
    pub trailing_slash: bool,
}

impl NormPath {
    /// The decoded segment at `i`, if any.
    pub fn seg(&self, i: usize) -> Option<&str> {
        self.segments.get(i).map(|s| s.decoded.as_str())
    }

    /// The normalised path as a string of raw segments: `/a/b` or `/a/b/`.
    pub fn to_raw_string(&self) -> String {
        join_raw(&self.segments, self.trailing_slash)
    }
}

/// Joins raw segments into `/a/b` (+ `/` when `trailing`). No segments gives `/`.
pub fn join_raw(segments: &[Segment], trailing: bool) -> String {
    let mut out = String::new();
    for s in segments {
        out.push('/');
        out.push_str(&s.raw);
    }
    if trailing || out.is_empty() {
        out.push('/');
    }
    out
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `s`; invalid escapes are kept literally (like nginx).
pub fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex_val(bytes[i + 1]), hex_val(bytes[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

/// Normalises a raw request path (without the query).
pub fn normalize(raw_path: &str) -> Result<NormPath, PathError> {
    let mut segments: Vec<Segment> = Vec::new();
    let mut last_was_dot = false;
    for raw in raw_path.split('/') {
        if raw.is_empty() {
            continue;
        }
        let decoded = percent_decode(raw);
        if decoded.contains(&b'/') {
            return Err(PathError::EncodedSeparator);
        }
        if decoded.contains(&b'\\') {
            return Err(if raw.contains('\\') {
                PathError::ForbiddenByte
            } else {
                PathError::EncodedSeparator
            });
        }
        if decoded.contains(&0) {
            return Err(PathError::ForbiddenByte);
        }
        last_was_dot = true;
        match decoded.as_slice() {
            b"." => continue,
            b".." => {
                if segments.pop().is_none() {
                    return Err(PathError::Traversal);
                }
                continue;
            }
            _ => {}
        }
        last_was_dot = false;
        segments.push(Segment {
            raw: raw.to_string(),
            decoded: String::from_utf8_lossy(&decoded).into_owned(),
        });
    }
    let trailing_slash = !segments.is_empty() && (raw_path.ends_with('/') || last_was_dot);
    Ok(NormPath {
        segments,
        trailing_slash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(p: &str) -> String {
        normalize(p)
            .map(|p| p.to_raw_string())
            .unwrap_or_else(|e| format!("ERR {e:?}"))
    }

    #[test]
    fn plain_paths() {
        assert_eq!(n("/"), "/");
        assert_eq!(n(""), "/");
        assert_eq!(n("/package/search"), "/package/search");
        assert_eq!(n("/service/marathon/"), "/service/marathon/");
        assert_eq!(n("//mesos///master//state"), "/mesos/master/state");
    }

    #[test]
    fn dot_segments() {
        assert_eq!(n("/a/./b"), "/a/b");
        assert_eq!(n("/a/b/../c"), "/a/c");
        assert_eq!(n("/a/b/.."), "/a/");
        assert_eq!(n("/a/%2e%2e/b"), "/b");
        assert_eq!(n("/a/.%2E/b"), "/b");
        assert_eq!(n("/.."), "ERR Traversal");
        assert_eq!(n("/a/../../etc/passwd"), "ERR Traversal");
        assert_eq!(n("/%2e%2e/%2e%2e/etc"), "ERR Traversal");
    }

    #[test]
    fn encoded_separators_rejected() {
        assert_eq!(
            n("/service/marathon/..%2f..%2fmesos"),
            "ERR EncodedSeparator"
        );
        assert_eq!(n("/a%2Fb"), "ERR EncodedSeparator");
        assert_eq!(n("/a%5cb"), "ERR EncodedSeparator");
        assert_eq!(n("/a%00b"), "ERR ForbiddenByte");
    }

    #[test]
    fn decoding_keeps_raw_and_invalid_escapes() {
        let p = normalize("/%70ackage/a%zz/%").unwrap();
        assert_eq!(p.seg(0), Some("package"));
        assert_eq!(p.segments[0].raw, "%70ackage");
        assert_eq!(p.seg(1), Some("a%zz"));
        assert_eq!(p.seg(2), Some("%"));
    }
}
