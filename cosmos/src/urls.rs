//! Resource URLs of packages and their rewriting to `/package/resource?url=…` proxy URLs
//! (contract §1.12).

use serde_json::{Map, Value};

/// Percent-encodes a URL for use as the `url` query value the way scala-uri does: space,
/// non-ASCII, controls and `% < > [ ] # { } ^ \` | & \ + = "` are encoded; `: / ? @` are kept.
pub fn encode_query_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for &b in s.as_bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'_'
                    | b'.'
                    | b'~'
                    | b':'
                    | b'/'
                    | b'?'
                    | b'@'
                    | b'!'
                    | b'$'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b','
                    | b';'
            );
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` sequences (invalid sequences are kept as they are).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a string parses as an absolute URI we would proxy.
fn is_proxyable(s: &str) -> bool {
    match s.split_once("://") {
        Some((scheme, rest)) => {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.')
                && !rest.is_empty()
        }
        None => false,
    }
}

/// The proxy URL for `original`: `<scheme>://<host>/package/resource?url=<encoded>`. Strings
/// that are not URLs are returned unchanged.
pub fn proxy_url(base: &str, original: &str) -> String {
    if !is_proxyable(original) {
        return original.to_string();
    }
    format!(
        "{base}/package/resource?url={}",
        encode_query_value(original)
    )
}

fn rewrite_str(v: &mut Value, base: &str) {
    if let Value::String(s) = v {
        *s = proxy_url(base, s);
    }
}

/// Rewrites the `images` object (icons and screenshots).
pub fn rewrite_images(images: &mut Value, base: &str) {
    if let Value::Object(m) = images {
        for (k, v) in m.iter_mut() {
            if k == "screenshots" {
                if let Value::Array(a) = v {
                    a.iter_mut().for_each(|x| rewrite_str(x, base));
                }
            } else {
                rewrite_str(v, base);
            }
        }
    }
}

/// Rewrites `resource.cli.binaries.*.*.url`.
pub fn rewrite_cli(cli: &mut Value, base: &str) {
    if let Some(Value::Object(bins)) = cli.get_mut("binaries") {
        for (_, os) in bins.iter_mut() {
            if let Value::Object(archs) = os {
                for (_, arch) in archs.iter_mut() {
                    if let Some(u) = arch.get_mut("url") {
                        rewrite_str(u, base);
                    }
                }
            }
        }
    }
}

/// Rewrites every resource URL of a resource object: `assets.uris` values, `images`, cli
/// binaries. Docker image names are left alone.
pub fn rewrite_resource(resource: &mut Value, base: &str) {
    if let Some(Value::Object(uris)) = resource.pointer_mut("/assets/uris") {
        uris.values_mut().for_each(|v| rewrite_str(v, base));
    }
    if let Some(images) = resource.get_mut("images") {
        rewrite_images(images, base);
    }
    if let Some(cli) = resource.get_mut("cli") {
        rewrite_cli(cli, base);
    }
}

/// A package definition with its resource URLs rewritten (v2 packages keep `images` at the top
/// level in some old indexes; those are rewritten too).
pub fn rewrite_package(package: &Value, base: &str) -> Value {
    match package {
        Value::Object(m) => rewrite_package_map(m, base),
        other => other.clone(),
    }
}

/// [`rewrite_package`] of a package JSON object.
pub fn rewrite_package_map(package: &Map<String, Value>, base: &str) -> Value {
    let mut p = Value::Object(package.clone());
    if let Some(r) = p.get_mut("resource") {
        rewrite_resource(r, base);
    }
    if let Some(i) = p.get_mut("images") {
        rewrite_images(i, base);
    }
    p
}

/// Every resource URL of a package (for the resource proxy allow-list).
pub fn resource_urls(package: &Value, out: &mut Vec<String>) {
    resource_urls_of(package.get("resource"), out)
}

/// Every URL of a package's `resource` object (see [`resource_urls`]).
pub fn resource_urls_of(resource: Option<&Value>, out: &mut Vec<String>) {
    let Some(r) = resource else {
        return;
    };
    if let Some(Value::Object(uris)) = r.pointer("/assets/uris") {
        out.extend(uris.values().filter_map(Value::as_str).map(str::to_string));
    }
    if let Some(Value::Object(images)) = r.get("images") {
        for (k, v) in images {
            if k == "screenshots" {
                if let Value::Array(a) = v {
                    out.extend(a.iter().filter_map(Value::as_str).map(str::to_string));
                }
            } else if let Some(s) = v.as_str() {
                out.push(s.to_string());
            }
        }
    }
    if let Some(Value::Object(bins)) = r.pointer("/cli/binaries") {
        for os in bins.values() {
            if let Value::Object(archs) = os {
                for arch in archs.values() {
                    if let Some(u) = arch.get("url").and_then(Value::as_str) {
                        out.push(u.to_string());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encodes_like_scala_uri() {
        assert_eq!(
            proxy_url("http://h", "https://a.b/x y/%2B?q=1&r=[2]"),
            "http://h/package/resource?url=https://a.b/x%20y/%252B?q%3D1%26r%3D%5B2%5D"
        );
        assert_eq!(proxy_url("http://h", "not a url"), "not a url");
        assert_eq!(percent_decode("a%20b%2Bc%zz"), "a b+c%zz");
    }

    #[test]
    fn rewrites_resource_but_not_docker() {
        let mut r = json!({"assets": {"uris": {"a": "https://x/a"}, "container": {"docker": {"d": "img:1"}}},
                           "images": {"icon-small": "https://x/i.png", "screenshots": ["https://x/s.png"]},
                           "cli": {"binaries": {"linux": {"x86-64": {"url": "https://x/cli", "kind": "executable"}}}}});
        let mut urls = Vec::new();
        resource_urls(&json!({"resource": r.clone()}), &mut urls);
        assert_eq!(urls.len(), 4);
        rewrite_resource(&mut r, "http://h");
        assert_eq!(
            r["assets"]["uris"]["a"],
            "http://h/package/resource?url=https://x/a"
        );
        assert_eq!(r["assets"]["container"]["docker"]["d"], "img:1");
        assert_eq!(
            r["images"]["screenshots"][0],
            "http://h/package/resource?url=https://x/s.png"
        );
        assert_eq!(
            r["cli"]["binaries"]["linux"]["x86-64"]["url"],
            "http://h/package/resource?url=https://x/cli"
        );
    }
}
