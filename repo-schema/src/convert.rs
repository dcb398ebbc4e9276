//! The conversions the upstream build (`gen_universe.py`) applies when it writes the index for
//! one DC/OS version, reproduced exactly.

use serde_json::{Map, Value};

use crate::version::{LooseVersion, PackagingVersion, RepoVersion};

/// The DC/OS versions the upstream build writes `repo-up-to-<v>.json` for.
pub const UPSTREAM_DCOS_VERSIONS: [&str; 7] = ["1.8", "1.9", "1.10", "1.11", "1.12", "1.13", "2.0"];

/// Upstream `escape_json_string`: `re.sub(r'([^\\])"', r'\1\"', s)` — every double quote that
/// follows a character other than a backslash gets a backslash (matches do not overlap, so in
/// `a""` only the first quote is escaped, and a leading quote never is).
pub fn escape_json_string(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '\\' && chars.get(i + 1) == Some(&'"') {
            out.push(c);
            out.push_str("\\\"");
            i += 2;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Upstream `json_escape_compatibility` over a config's top-level `properties`: for each property
/// schema, escape its `description`; escape a `default` of a `type: string` property; recurse into
/// the `properties` of a `type: object` property. Values of unexpected types are left alone
/// (upstream would crash on them).
pub fn json_escape_compatibility(properties: &mut Map<String, Value>) {
    for value in properties.values_mut() {
        let Some(obj) = value.as_object_mut() else {
            continue;
        };
        if let Some(Value::String(d)) = obj.get_mut("description") {
            if d.contains('"') {
                *d = escape_json_string(d);
            }
        }
        match obj.get("type").and_then(Value::as_str) {
            Some("string") => {
                if let Some(Value::String(d)) = obj.get_mut("default") {
                    if d.contains('"') {
                        *d = escape_json_string(d);
                    }
                }
            }
            Some("object") => {
                if let Some(Value::Object(props)) = obj.get_mut("properties") {
                    json_escape_compatibility(props);
                }
            }
            _ => {}
        }
    }
}

/// Applies [`json_escape_compatibility`] to a package's `config.properties`, as upstream does for
/// DC/OS < 1.10 (Cosmos before 1.10 inserted strings into templates unescaped).
pub fn escape_config_for_legacy_cosmos(package: &mut Map<String, Value>) {
    if let Some(Value::Object(config)) = package.get_mut("config") {
        if let Some(Value::Object(props)) = config.get_mut("properties") {
            json_escape_compatibility(props);
        }
    }
}

/// Upstream `downgrade_package_to_v3`: packages that are not 2.0/3.0 lose `upgradesFrom` and
/// `downgradesTo` and are relabelled `"3.0"` (a 5.0 `manager` is kept, as upstream keeps it).
pub fn downgrade_package_to_v3(package: &mut Map<String, Value>) {
    let pv = package.get("packagingVersion").and_then(Value::as_str);
    if matches!(pv, Some("2.0") | Some("3.0")) {
        return;
    }
    package.shift_remove("upgradesFrom");
    package.shift_remove("downgradesTo");
    package.insert("packagingVersion".into(), Value::String("3.0".into()));
}

/// Whether a package (raw index object) passes upstream `filter_by_version` for DC/OS `dcos`.
pub fn available_on(package: &Map<String, Value>, dcos: &LooseVersion) -> bool {
    let min = package
        .get("minDcosReleaseVersion")
        .and_then(Value::as_str)
        .unwrap_or("0.0");
    LooseVersion::new(min) <= *dcos
}

/// Whether the DC/OS version needs the legacy (< 1.10) treatment: escaping and downgrade.
pub fn is_legacy_dcos(dcos: &LooseVersion) -> bool {
    *dcos < LooseVersion::new("1.10")
}

/// Upstream `filter_and_downgrade_packages_by_version` for one package: `None` when the package
/// is not available on `dcos`, else the package as it appears in `repo-up-to-<dcos>.json`.
pub fn package_for_dcos(
    package: &Map<String, Value>,
    dcos: &LooseVersion,
) -> Option<Map<String, Value>> {
    if !available_on(package, dcos) {
        return None;
    }
    let mut p = package.clone();
    if is_legacy_dcos(dcos) {
        escape_config_for_legacy_cosmos(&mut p);
        downgrade_package_to_v3(&mut p);
    }
    Some(p)
}

/// Converts a package so that an index of media-type version `target` can carry it, the way a
/// server answers an older client: packages newer than `target` allows are downgraded to 3.0 when
/// `target` is v3 and they are 4.0, and dropped otherwise (a 5.0 package has a `manager` that older
/// clients cannot honour). Returns `None` when the package must be dropped.
pub fn package_for_repo_version(
    package: &Map<String, Value>,
    target: RepoVersion,
) -> Option<Map<String, Value>> {
    let pv = crate::package::packaging_version_of(package).ok()?;
    if target.allows(pv) {
        return Some(package.clone());
    }
    match (pv, target) {
        (PackagingVersion::V4, RepoVersion::V3) => {
            let mut p = package.clone();
            downgrade_package_to_v3(&mut p);
            Some(p)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn escape_matches_python_regex() {
        // Python: re.sub('([^\\\\])\\"', lambda m: m.group(1) + '\\"', s)
        assert_eq!(
            escape_json_string(r#"[["hostname","UNIQUE"]]"#),
            r#"[[\"hostname\",\"UNIQUE\"]]"#
        );
        assert_eq!(escape_json_string(r#""a""#), r#""a\""#);
        assert_eq!(escape_json_string(r#"a""b"#), r#"a\""b"#);
        assert_eq!(escape_json_string(r#"already \"x\""#), r#"already \"x\""#);
        assert_eq!(escape_json_string("no quotes"), "no quotes");
        assert_eq!(escape_json_string(""), "");
        assert_eq!(escape_json_string("é\""), "é\\\"");
    }

    #[test]
    fn compat_recurses_into_objects_only() {
        let mut p = obj(json!({
            "config": {"properties": {
                "a": {"type": "string", "default": "[\"x\"]", "description": "say \"hi\""},
                "b": {"type": "object", "properties": {"c": {"type": "string", "default": "\"q\""}}},
                "d": {"type": "integer", "default": 1, "description": 5},
                "e": {"type": "array", "default": "x\"y"},
                "f": "not an object"
            }}
        }));
        escape_config_for_legacy_cosmos(&mut p);
        let props = &p["config"]["properties"];
        assert_eq!(props["a"]["default"], json!("[\\\"x\\\"]"));
        assert_eq!(props["a"]["description"], json!("say \\\"hi\\\""));
        assert_eq!(props["b"]["properties"]["c"]["default"], json!("\"q\\\""));
        assert_eq!(props["e"]["default"], json!("x\"y"));
    }

    #[test]
    fn downgrade_drops_update_fields() {
        let mut p = obj(
            json!({"packagingVersion":"4.0","name":"a","upgradesFrom":["*"],"downgradesTo":["1"],"x":1}),
        );
        downgrade_package_to_v3(&mut p);
        assert_eq!(
            Value::Object(p.clone()),
            json!({"packagingVersion":"3.0","name":"a","x":1})
        );
        let keys: Vec<_> = p.keys().cloned().collect();
        assert_eq!(keys, ["packagingVersion", "name", "x"]);
        let mut v5 = obj(json!({"packagingVersion":"5.0","manager":{"packageName":"m"}}));
        downgrade_package_to_v3(&mut v5);
        assert_eq!(
            Value::Object(v5),
            json!({"packagingVersion":"3.0","manager":{"packageName":"m"}})
        );
        let mut v2 = obj(json!({"packagingVersion":"2.0","upgradesFrom":["*"]}));
        downgrade_package_to_v3(&mut v2);
        assert_eq!(v2["upgradesFrom"], json!(["*"]));
    }

    #[test]
    fn filter_by_min_dcos() {
        let p = obj(json!({"minDcosReleaseVersion":"1.9.0"}));
        assert!(!available_on(&p, &LooseVersion::new("1.9")));
        assert!(available_on(&p, &LooseVersion::new("1.10")));
        assert!(available_on(&obj(json!({})), &LooseVersion::new("1.8")));
        assert!(!available_on(
            &obj(json!({"minDcosReleaseVersion":"999"})),
            &LooseVersion::new("2.0")
        ));
        let legacy = package_for_dcos(
            &obj(json!({"packagingVersion":"4.0","minDcosReleaseVersion":"1.8","upgradesFrom":["*"]})),
            &LooseVersion::new("1.9"),
        )
        .unwrap();
        assert_eq!(legacy["packagingVersion"], json!("3.0"));
        assert!(package_for_dcos(
            &obj(json!({"minDcosReleaseVersion":"1.10"})),
            &LooseVersion::new("1.9")
        )
        .is_none());
    }

    #[test]
    fn repo_version_conversion() {
        let v4 = obj(json!({"packagingVersion":"4.0","upgradesFrom":["*"]}));
        let v5 = obj(json!({"packagingVersion":"5.0"}));
        assert_eq!(
            package_for_repo_version(&v4, RepoVersion::V3).unwrap()["packagingVersion"],
            json!("3.0")
        );
        assert_eq!(package_for_repo_version(&v4, RepoVersion::V4).unwrap(), v4);
        assert!(package_for_repo_version(&v5, RepoVersion::V4).is_none());
        assert!(package_for_repo_version(&v5, RepoVersion::V3).is_none());
    }
}
