//! Genesis config validation: every problem at once, with key and reason.

use dcos_installer::genesis::{did_you_mean, parse_config, ConfigError, Store, SuperuserPassword};

const IPD: Option<&str> = Some("#!/bin/sh\necho 10.0.0.11\n");

fn errors(yaml: &str) -> ConfigError {
    parse_config(yaml, IPD, "genconf/config.yaml").expect_err("config should be rejected")
}

fn reason(e: &ConfigError, key: &str) -> String {
    e.problems
        .iter()
        .find(|p| p.key == key)
        .map(|p| p.reason.clone())
        .unwrap_or_else(|| panic!("no problem for key {key} in:\n{e}"))
}

const GOOD: &str = "\
bootstrap_url: http://10.0.0.2:8080
cluster_name: prod
master_discovery: static
master_list:
- 10.0.0.11
- 10.0.0.12
- 10.0.0.13
store: zk://10.0.0.11:2181,10.0.0.12:2181,10.0.0.13:2181/dcos
agent_list: [10.0.0.21, 10.0.0.22]
public_agent_list: [10.0.0.31]
resolvers: [10.0.0.1, '10.0.0.2:5353']
dns_search: corp.example.com example.com
superuser_username: admin
superuser_password_hash: $argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$4Qk1xM6Xc4Rl0nYb5SLYDVtqvxaOz0yqIc3N2yFmJUM
ports:
  adminrouter: 8000
universe_repositories:
- name: local
  uri: http://10.0.0.2:8082/repo
";

#[test]
fn a_good_config_parses_with_defaults() {
    let c = parse_config(GOOD, IPD, "config.yaml").unwrap();
    assert_eq!(c.cluster_name, "prod");
    assert_eq!(c.master_list.len(), 3);
    assert_eq!(c.agent_list.len(), 2);
    assert_eq!(c.public_agent_list.len(), 1);
    assert_eq!(c.dns_search, vec!["corp.example.com", "example.com"]);
    assert!(c.oauth_enabled, "oauth_enabled defaults to true");
    assert_eq!(c.ports.adminrouter, 8000);
    assert_eq!(c.ports.master, 5050, "unset ports keep DC/OS defaults");
    assert!(matches!(c.store, Store::Zookeeper(ref u) if u.starts_with("zk://")));
    assert!(matches!(c.superuser, Some((ref u, SuperuserPassword::Hash(_))) if u == "admin"));
    assert_eq!(c.install_dir, "/opt/dcos-rs");
    assert_eq!(c.work_dir, "/var/lib/dcos-rs");
    assert_eq!(c.universe_repositories[0].name, "local");
}

#[test]
fn defaults_for_a_minimal_single_master_config() {
    let c = parse_config(
        "bootstrap_url: http://b\ncluster_name: c\nmaster_list: [10.0.0.11]\noauth_enabled: false\n",
        IPD,
        "x",
    )
    .unwrap();
    assert_eq!(c.resolvers, vec!["8.8.8.8", "8.8.4.4"]);
    assert_eq!(c.store, Store::Embedded);
    assert_eq!(
        c.universe_repositories[0].uri,
        "https://universe.mesosphere.com/repo"
    );
    assert!(c.superuser.is_none());
}

#[test]
fn invalid_yaml_is_reported_with_position() {
    let e = errors("bootstrap_url: [unclosed\ncluster_name: x\n");
    let r = reason(&e, "(yaml)");
    assert!(r.contains("invalid YAML"), "{r}");
    assert!(r.contains("line"), "YAML errors carry a position: {r}");
}

#[test]
fn empty_file_and_non_mapping_are_rejected() {
    assert!(reason(&errors(""), "(yaml)").contains("empty"));
    assert!(reason(&errors("- a\n- b\n"), "(yaml)").contains("mapping"));
}

#[test]
fn every_problem_is_reported_at_once() {
    let e = errors(
        "bootstrap_url: http://b/\n\
         master_list: [10.0.0.1, 10.0.0.2]\n\
         resolvers: [198.51.100.1]\n\
         dns_search: a.com,b.com\n\
         oauth_enabled: 'True'\n\
         clustr_name: typo\n",
    );
    for key in [
        "bootstrap_url",
        "cluster_name",
        "master_list",
        "resolvers[0]",
        "dns_search",
        "oauth_enabled",
        "clustr_name",
    ] {
        assert!(e.has(key), "missing problem for {key}:\n{e}");
    }
    assert!(reason(&e, "bootstrap_url").contains("must not end with '/'"));
    assert!(reason(&e, "cluster_name").contains("required"));
    assert!(reason(&e, "master_list").contains("odd"));
    assert!(reason(&e, "resolvers[0]").contains("reserved"));
    assert!(reason(&e, "dns_search").contains("spaces"));
    assert!(reason(&e, "oauth_enabled").contains("true or false"));
    // The rendered error lists them all.
    let shown = e.to_string();
    assert!(
        shown.contains(&format!("{} problems found", e.problems.len())),
        "{shown}"
    );
}

#[test]
fn unknown_keys_are_errors_with_did_you_mean() {
    let e = errors(&format!(
        "{GOOD}master_lst: [10.0.0.1]\nresolver: [1.1.1.1]\nfoo_bar_baz_qux: 1\n"
    ));
    assert_eq!(
        reason(&e, "master_lst"),
        "unknown key; did you mean `master_list`?"
    );
    assert_eq!(
        reason(&e, "resolver"),
        "unknown key; did you mean `resolvers`?"
    );
    assert!(reason(&e, "foo_bar_baz_qux").contains("known keys are"));
}

#[test]
fn unknown_port_names_get_did_you_mean() {
    let e = errors(&GOOD.replace("  adminrouter: 8000", "  marathn: 8000\n  agent: 70000"));
    assert_eq!(
        reason(&e, "ports.marathn"),
        "unknown key; did you mean `marathon`?"
    );
    assert!(reason(&e, "ports.agent").contains("1-65535"));
}

#[test]
fn computed_keys_cannot_be_set() {
    let e = errors(&format!("{GOOD}num_masters: 3\n"));
    assert!(reason(&e, "num_masters").contains("calculated"));
}

#[test]
fn master_list_must_be_an_odd_count_of_ipv4_without_duplicates() {
    for (list, want) in [
        ("[10.0.0.1, 10.0.0.2]", "odd"),
        ("[]", "odd"),
        ("[10.0.0.1, 10.0.0.2, 10.0.0.3, 10.0.0.4, 10.0.0.5, 10.0.0.6, 10.0.0.7, 10.0.0.8, 10.0.0.9, 10.0.0.10, 10.0.0.12]", "odd"),
    ] {
        let e = errors(&GOOD.replace(
            "master_list:\n- 10.0.0.11\n- 10.0.0.12\n- 10.0.0.13",
            &format!("master_list: {list}"),
        ));
        assert!(reason(&e, "master_list").contains(want), "{list}: {e}");
    }
    let e = errors(&GOOD.replace("- 10.0.0.12", "- master-2.example.com"));
    assert!(reason(&e, "master_list[1]").contains("not an IPv4 address"));
    let e = errors(&GOOD.replace("- 10.0.0.12", "- 10.0.0.11"));
    assert!(reason(&e, "master_list[1]").contains("duplicate"));
    let e = errors(&GOOD.replace("- 10.0.0.12", "- 10.0.0.256"));
    assert!(e.has("master_list[1]"));
}

#[test]
fn master_list_as_a_json_string_is_accepted() {
    let c = parse_config(
        &GOOD.replace(
            "master_list:\n- 10.0.0.11\n- 10.0.0.12\n- 10.0.0.13",
            "master_list: '[\"10.0.0.11\", \"10.0.0.12\", \"10.0.0.13\"]'",
        ),
        IPD,
        "x",
    )
    .unwrap();
    assert_eq!(c.master_list.len(), 3);
}

#[test]
fn a_node_has_one_role() {
    let e = errors(&GOOD.replace(
        "agent_list: [10.0.0.21, 10.0.0.22]",
        "agent_list: [10.0.0.11, 10.0.0.31]",
    ));
    let r: Vec<_> = e
        .problems
        .iter()
        .filter(|p| p.key == "agent_list")
        .collect();
    assert_eq!(r.len(), 2, "{e}");
}

#[test]
fn resolvers_format() {
    for (bad, want) in [
        ("[10.0.0.1:0]", "1-65535"),
        ("[10.0.0.1:99999]", "1-65535"),
        ("[dns.example.com]", "not an IPv4"),
        ("[10.0.0.1, 10.0.0.1]", "duplicate"),
        ("[198.51.100.3]", "reserved"),
    ] {
        let e = errors(&GOOD.replace(
            "resolvers: [10.0.0.1, '10.0.0.2:5353']",
            &format!("resolvers: {bad}"),
        ));
        let p = e
            .problems
            .iter()
            .find(|p| p.key.starts_with("resolvers"))
            .unwrap_or_else(|| panic!("{bad}: {e}"));
        assert!(p.reason.contains(want), "{bad}: {}", p.reason);
    }
}

#[test]
fn dns_search_limits() {
    let e = errors(&GOOD.replace(
        "dns_search: corp.example.com example.com",
        "dns_search: a b c d e f g",
    ));
    assert!(reason(&e, "dns_search").contains("at most 6"));
}

#[test]
fn bootstrap_url_forms() {
    for bad in [
        "ftp://x",
        "http://",
        "10.0.0.2:8080",
        "file://relative/path",
    ] {
        let e = errors(&GOOD.replace(
            "bootstrap_url: http://10.0.0.2:8080",
            &format!("bootstrap_url: '{bad}'"),
        ));
        assert!(e.has("bootstrap_url"), "{bad} should be rejected");
    }
    parse_config(
        &GOOD.replace("http://10.0.0.2:8080", "file:///opt/serve"),
        IPD,
        "x",
    )
    .unwrap();
    parse_config(
        &GOOD.replace("http://10.0.0.2:8080", "https://boot.example.com/dcos"),
        IPD,
        "x",
    )
    .unwrap();
}

#[test]
fn booleans_must_be_true_or_false() {
    for ok in ["true", "false", "'true'", "'false'"] {
        parse_config(&format!("{GOOD}oauth_enabled: {ok}\n"), IPD, "x").unwrap();
    }
    for bad in ["'True'", "yes_please", "1"] {
        let e = errors(&format!("{GOOD}oauth_enabled: {bad}\n"));
        assert!(e.has("oauth_enabled"), "{bad}");
    }
}

#[test]
fn embedded_store_serves_one_master_only() {
    let e = errors(&GOOD.replace(
        "store: zk://10.0.0.11:2181,10.0.0.12:2181,10.0.0.13:2181/dcos",
        "store: embedded",
    ));
    assert!(reason(&e, "store").contains("one master"));
    for bad in [
        "zk://10.0.0.1:2181",
        "zk://10.0.0.1/dcos",
        "mysql://x/y",
        "zk://:2181/d",
    ] {
        let e = errors(&GOOD.replace(
            "zk://10.0.0.11:2181,10.0.0.12:2181,10.0.0.13:2181/dcos",
            bad,
        ));
        assert!(e.has("store"), "{bad}");
    }
}

#[test]
fn superuser_rules() {
    let no_su = GOOD
        .lines()
        .filter(|l| !l.starts_with("superuser_"))
        .collect::<Vec<_>>()
        .join("\n");
    let e = errors(&no_su);
    assert!(reason(&e, "superuser_username").contains("oauth_enabled is true"));
    parse_config(&format!("{no_su}\noauth_enabled: false\n"), IPD, "x").unwrap();

    let e = errors(&GOOD.replace("$argon2id$v=19", "$argon2i$v=19"));
    assert!(reason(&e, "superuser_password_hash").contains("argon2id"));
    let e = errors(&GOOD.replace(
        "superuser_password_hash: $argon2id",
        "superuser_password_hash: notphc$argon2id",
    ));
    assert!(reason(&e, "superuser_password_hash").contains("PHC"));
    let e = errors(&format!("{GOOD}superuser_password: hunter2hunter2\n"));
    assert!(reason(&e, "superuser_password").contains("not both"));
    let e = errors(&GOOD.replace("superuser_password_hash", "superuser_password").replace(
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$4Qk1xM6Xc4Rl0nYb5SLYDVtqvxaOz0yqIc3N2yFmJUM",
        "short",
    ));
    assert!(reason(&e, "superuser_password").contains("at least 8"));
    let e = errors(&GOOD.replace(
        "superuser_username: admin",
        "superuser_username: 'bad user'",
    ));
    assert!(e.has("superuser_username"));
}

#[test]
fn ip_detect_must_exist_and_not_be_empty() {
    let e = parse_config(GOOD, None, "x").unwrap_err();
    assert!(reason(&e, "ip-detect").contains("must exist"));
    let e = parse_config(GOOD, Some("  \n"), "x").unwrap_err();
    assert!(reason(&e, "ip-detect").contains("empty"));
}

#[test]
fn paths_must_be_absolute_and_disjoint() {
    let e = errors(&format!("{GOOD}install_dir: opt/dcos\n"));
    assert!(reason(&e, "install_dir").contains("absolute"));
    let e = errors(&format!(
        "{GOOD}install_dir: /opt/x\nwork_dir: /opt/x/state\n"
    ));
    assert!(reason(&e, "work_dir").contains("overlap"));
    let e = errors(&format!("{GOOD}install_dir: '/opt/x y'\n"));
    assert!(e.has("install_dir"));
}

#[test]
fn repositories_are_validated() {
    let e = errors(&GOOD.replace("  uri: http://10.0.0.2:8082/repo", "  url: http://x"));
    assert_eq!(
        reason(&e, "universe_repositories[0].url"),
        "unknown key; did you mean `uri`?"
    );
    assert!(reason(&e, "universe_repositories[0].uri").contains("required"));
    let e = errors(&GOOD.replace("http://10.0.0.2:8082/repo", "gopher://x"));
    assert!(e.has("universe_repositories[0].uri"));
}

#[test]
fn did_you_mean_is_conservative() {
    assert_eq!(
        did_you_mean("bootstrap_ulr", &["bootstrap_url", "cluster_name"]),
        Some("bootstrap_url")
    );
    assert_eq!(
        did_you_mean("zzz", &["bootstrap_url", "cluster_name"]),
        None
    );
}

#[test]
fn load_genconf_reads_files_and_reports_missing_ip_detect() {
    let dir = tempfile::tempdir().unwrap();
    let g = dir.path().join("genconf");
    std::fs::create_dir_all(&g).unwrap();
    let e = dcos_installer::genesis::load_genconf(&g).unwrap_err();
    assert!(e.problems[0].reason.contains("cannot read"), "{e}");
    std::fs::write(g.join("config.yaml"), GOOD).unwrap();
    let e = dcos_installer::genesis::load_genconf(&g).unwrap_err();
    assert!(e.has("ip-detect"));
    std::fs::write(g.join("ip-detect"), "#!/bin/sh\necho 1.2.3.4\n").unwrap();
    dcos_installer::genesis::load_genconf(&g).unwrap();
}
