//! Label sanitisation and hashing exactly as Mesos-DNS does it (`records/labels/labels.go`,
//! `records/generator.go hashString`).

use sha1::{Digest, Sha1};

/// Maps one character the Mesos-DNS way: `A-Z` lower-cased, `a-z0-9` kept, `-._` → `-`,
/// everything else dropped.
fn map_char(c: char) -> Option<char> {
    match c {
        'A'..='Z' => Some(c.to_ascii_lowercase()),
        'a'..='z' | '0'..='9' => Some(c),
        '-' | '.' | '_' => Some('-'),
        _ => None,
    }
}

/// `trimCut` of `labels.go`: strip `left` chars at the start, cut to `max`, strip `right`
/// chars at the end; when that shortened the cut, refill from the rest (after stripping its
/// leading `left` chars) up to `max` (quirk kept on purpose).
fn trim_cut(label: &str, max: usize, left: &[char], right: &[char]) -> String {
    let trim: Vec<char> = label.trim_start_matches(left).chars().collect();
    let size = trim.len().min(max);
    let head: String = trim[..size].iter().collect();
    let head = head.trim_end_matches(right).to_string();
    let head_len = head.chars().count();
    if head_len == size {
        return head;
    }
    let rest: String = trim[size..].iter().collect();
    let tail = rest.trim_start_matches(left);
    let mut out = head;
    out.extend(tail.chars().take(size - head_len));
    out
}

/// One DNS label, RFC 1123 (default) or RFC 952 (`EnforceRFC952`: 24 chars, no leading digit).
pub fn label(name: &str, rfc952: bool) -> String {
    let mapped: String = name.chars().filter_map(map_char).collect();
    if rfc952 {
        let left: Vec<char> = "-0123456789".chars().collect();
        trim_cut(&mapped, 24, &left, &['-'])
    } else {
        trim_cut(&mapped, 63, &['-'], &['-'])
    }
}

/// `DomainFrag`: a dotted name (a framework name) sanitised label by label; empty labels
/// dropped (`marathon.prod` stays two labels).
pub fn domain_frag(name: &str, rfc952: bool) -> String {
    name.split('.')
        .map(|p| label(p, rfc952))
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(".")
}

const ZBASE32: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";

/// The first 5 characters of zbase32(sha1(s)) (standard base32 bit order, zbase32 alphabet):
/// the `H` in a task's canonical name `T-H-S`.
pub fn hash5(s: &str) -> String {
    let digest = Sha1::digest(s.as_bytes());
    // 25 bits from the first 4 bytes.
    let bits = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    (0..5)
        .map(|i| ZBASE32[((bits >> (27 - 5 * i)) & 31) as usize] as char)
        .collect()
}

/// `S`: the last `-`-separated field of an agent id, lower-cased (`…-S3` → `s3`), sanitised.
pub fn agent_tail(agent_id: &str) -> String {
    label(agent_id.rsplit('-').next().unwrap_or(agent_id), false)
}

/// A query name as Mesos-DNS looks it up: lower-cased, `.*` wildcards removed, with the
/// trailing dot.
pub fn normalize_query(name: &str) -> String {
    let mut n = name.to_ascii_lowercase().replace(".*", "");
    if !n.ends_with('.') {
        n.push('.');
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_label_vectors() {
        assert_eq!(label("My_App", false), "my-app");
        assert_eq!(label(&"x".repeat(70), false), "x".repeat(63));
        assert_eq!(label("-svc", false), "svc");
        assert_eq!(label("1st-app", true), "st-app");
        assert_eq!(label("1st-app", false), "1st-app");
        assert_eq!(label("web.group", false), "web-group");
        assert_eq!(label("v2.users.api.prod", false), "v2-users-api-prod");
        assert_eq!(
            label("nginx-router.mesosphere-tutorial", false),
            "nginx-router-mesosphere-tutorial"
        );
        assert_eq!(
            label("nginx-router.mesosphere-tutorial", true),
            "nginx-router-mesospheret"
        );
        assert_eq!(label("héllo wörld!", false), "hllowrld");
        assert_eq!(label("---", false), "");
        assert_eq!(label("", true), "");
    }

    #[test]
    fn refill_quirk_and_limits() {
        // 62 chars, a dash at 63, more after: the cut ends in '-', refilled from the rest.
        let name = format!("{}-{}", "a".repeat(62), "bcd");
        let l = label(&name, false);
        assert_eq!(l, format!("{}b", "a".repeat(62)));
        assert!(l.len() <= 63);
        for n in ["", "-", "a-", "-a-", &"-".repeat(100), &"ab-".repeat(40)] {
            assert!(label(n, false).len() <= 63);
            assert!(label(n, true).len() <= 24);
            assert!(!label(n, false).starts_with('-'));
        }
    }

    #[test]
    fn framework_domain_frag() {
        assert_eq!(domain_frag("marathon", false), "marathon");
        assert_eq!(domain_frag("marathon.prod", false), "marathon.prod");
        assert_eq!(domain_frag("Marathon_User", false), "marathon-user");
        assert_eq!(domain_frag("a..b.", false), "a.b");
        assert_eq!(domain_frag("!!!", false), "");
    }

    #[test]
    fn zbase32_hash_vectors_from_the_docs() {
        assert_eq!(hash5("nginx.48dccce7-90bc-11e6-ae70-70b3d5800001"), "jhy6r");
        assert_eq!(
            hash5("shop_web.instance-8b7c7a8e-3c6b-11eb-9a8e-0242ac110002._app.1"),
            "rszjw"
        );
    }

    #[test]
    fn agent_tails_and_queries() {
        assert_eq!(agent_tail("a1b2-c3d4-S3"), "s3");
        assert_eq!(agent_tail("S0"), "s0");
        assert_eq!(normalize_query("Web.Marathon.MESOS"), "web.marathon.mesos.");
        assert_eq!(normalize_query("a.*.mesos."), "a.mesos.");
    }
}
