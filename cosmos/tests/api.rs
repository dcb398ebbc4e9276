//! The Cosmos HTTP API against an in-process repository server and a Marathon stand-in.

mod common;

use common::*;
use serde_json::{json, Value};

const ERR: &str = "application/vnd.dcos.package.error+json;charset=utf-8;version=v1";
const CAP: &str = "application/vnd.dcos.capabilities+json;charset=utf-8;version=v1";

// ---------------------------------------------------------------------------------------------
// transport

#[tokio::test]
async fn capabilities() {
    let e = env().await;
    let r = e
        .client
        .get(format!("{}/capabilities", e.cosmos))
        .header("Accept", CAP)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], CAP);
    let body: Value = r.json().await.expect("json");
    assert_eq!(
        body,
        json!({"capabilities":[{"name":"PACKAGE_MANAGEMENT"},{"name":"SUPPORT_CLUSTER_REPORT"},
              {"name":"METRONOME"},{"name":"LOGGING"},{"name":"LOGGING_V2"}]})
    );
    let (status, head, body) = raw_http(
        &e.cosmos,
        "GET /capabilities HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 400);
    assert!(head.contains(ERR), "{head}");
    assert_eq!(
        body,
        json!({"type": "not_present", "message": "Item header 'Accept' not present but required"})
    );
    let r = e
        .client
        .get(format!("{}/capabilities", e.cosmos))
        .header("Accept", "application/json")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn request_errors_are_all_reported() {
    let e = env().await;
    let r = e
        .raw(
            "/package/install",
            Some(&p("install-response", "v3")),
            Some("application/json"),
            "{}",
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.content_type, ERR);
    assert_eq!(r.body["type"], "multiple_errors");
    assert_eq!(
        r.body["message"],
        "Multiple errors while processing request"
    );
    let errs = r.body["data"]["errors"].as_array().expect("errors");
    assert_eq!(errs.len(), 3);
    assert_eq!(errs[0]["type"], "not_valid");
    assert_eq!(
        errs[0]["message"],
        format!(
            "Item header 'Accept' deemed invalid by rule: Media type was [{}] but should be one of [{}, {}]",
            p("install-response", "v3"), p("install-response", "v2"), p("install-response", "v1")
        )
    );
    assert_eq!(errs[1]["type"], "not_valid");
    assert!(errs[1]["message"]
        .as_str()
        .expect("msg")
        .starts_with("Item header 'Content-Type' deemed invalid"));
    assert_eq!(errs[2]["type"], "not_parsed");
    assert_eq!(
        errs[2]["message"],
        "Item 'body' unable to be parsed: Attempt to decode value on failed cursor: DownField(packageName)"
    );

    let (status, _, body) = raw_http(
        &e.cosmos,
        "POST /package/install HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 400);
    let msgs: Vec<&str> = body["data"]["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["message"].as_str().expect("m"))
        .collect();
    assert_eq!(
        msgs,
        vec![
            "Item header 'Accept' not present but required",
            "Item header 'Content-Type' not present but required",
            "Item body not present but required"
        ]
    );
}

#[tokio::test]
async fn malformed_bodies_and_media_types() {
    let e = env().await;
    let accept = p("search-response", "v1");
    let ct = p("search-request", "v1");
    // malformed JSON
    let r = e
        .raw("/package/search", Some(&accept), Some(&ct), "{\"query\": ")
        .await;
    assert_eq!(
        (r.status, r.body["type"].as_str()),
        (400, Some("not_parsed"))
    );
    // wrong field type
    let r = e
        .raw(
            "/package/search",
            Some(&accept),
            Some(&ct),
            "{\"query\": 5}",
        )
        .await;
    assert_eq!(r.body["type"], "not_parsed");
    assert!(r.body["message"].as_str().expect("m").contains("query"));
    // body that lacks the required field
    let r = e.pkg("describe", "v3", json!({"invalid": true})).await;
    assert_eq!(r.body["type"], "not_parsed");
    assert!(r.body["message"]
        .as_str()
        .expect("m")
        .contains("packageName"));
    // version-less, wildcard and json Accept
    for bad in [
        "*/*",
        "application/json",
        "application/vnd.dcos.package.search-response+json",
    ] {
        let r = e.raw("/package/search", Some(bad), Some(&ct), "{}").await;
        assert_eq!(
            (r.status, r.body["type"].as_str()),
            (400, Some("not_valid")),
            "{bad}"
        );
    }
    // Content-Type with extra parameters and other case is fine
    let r = e
        .raw(
            "/package/search",
            Some(&accept),
            Some(
                "application/vnd.dcos.package.search-request+json; version=v1; charset=UTF-8; x=1",
            ),
            "{}",
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, accept);
    // version=V1 is not v1
    let r = e
        .raw(
            "/package/search",
            Some(&accept),
            Some("application/vnd.dcos.package.search-request+json;charset=utf-8;version=V1"),
            "{}",
        )
        .await;
    assert_eq!(r.body["type"], "not_valid");
    // unknown path, wrong method → empty 404
    let resp = e
        .client
        .post(format!("{}/package/nope", e.cosmos))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.text().await.expect("t"), "");
    let resp = e
        .client
        .get(format!("{}/package/search", e.cosmos))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 404);
    // bad X-Forwarded-Proto
    let resp = e
        .client
        .post(format!("{}/package/search", e.cosmos))
        .header("Accept", &accept)
        .header("Content-Type", &ct)
        .header("X-Forwarded-Proto", "gopher")
        .body("{}")
        .send()
        .await
        .expect("send");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(
        body["message"],
        "Unable to determine scheme used to contact service: [gopher]"
    );
}

// ---------------------------------------------------------------------------------------------
// queries

#[tokio::test]
async fn search() {
    let e = env().await;
    let host = e.cosmos.trim_start_matches("http://").to_string();
    let r = e.pkg("search", "v1", json!({"query": "hello"})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, p("search-response", "v1"));
    assert_eq!(
        r.body,
        json!({"packages": [{
            "name": "helloworld", "currentVersion": "0.4.2",
            "versions": {"0.4.2": 5, "0.4.1": 4, "0.4.0": 3, "0.1.0": 0},
            "description": "Example DCOS application package", "framework": false,
            "tags": ["mesosphere", "example", "subcommand"],
            "images": {
                "icon-small": format!("http://{host}/package/resource?url=https://example.invalid/small.png"),
                "icon-medium": format!("http://{host}/package/resource?url=https://example.invalid/m.png"),
                "icon-large": format!("http://{host}/package/resource?url=https://example.invalid/l.png")
            }
        }]})
    );
    // everything: selected first, then by name
    let r = e.pkg("search", "v1", json!({"query": ""})).await;
    let names: Vec<&str> = r.body["packages"]
        .as_array()
        .expect("p")
        .iter()
        .map(|p| p["name"].as_str().expect("n"))
        .collect();
    assert_eq!(
        names,
        vec!["cli-only", "broken", "frameworky", "helloworld", "sdk"]
    );
    assert_eq!(r.body["packages"][0]["selected"], true);
    // wildcard on tags, case-sensitive
    let r = e.pkg("search", "v1", json!({"query": "data*e"})).await;
    assert_eq!(r.body["packages"][0]["name"], "frameworky");
    let r = e.pkg("search", "v1", json!({"query": "Hello*"})).await;
    assert_eq!(r.body, json!({"packages": []}));
    let r = e.pkg("search", "v1", json!({})).await;
    assert_eq!(r.body["packages"].as_array().map(Vec::len), Some(5));
}

#[tokio::test]
async fn describe_v3_v2_and_errors() {
    let e = env().await;
    let host = e.cosmos.trim_start_matches("http://").to_string();
    let r = e
        .pkg("describe", "v3", json!({"packageName": "helloworld"}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, p("describe-response", "v3"));
    let mut expected = fixture_packages()[3].clone();
    expected["resource"]["images"]["icon-small"] = json!(format!(
        "http://{host}/package/resource?url=https://example.invalid/small.png"
    ));
    expected["resource"]["images"]["icon-medium"] = json!(format!(
        "http://{host}/package/resource?url=https://example.invalid/m.png"
    ));
    expected["resource"]["images"]["icon-large"] = json!(format!(
        "http://{host}/package/resource?url=https://example.invalid/l.png"
    ));
    expected["resource"]["assets"]["uris"]["x"] = json!(format!(
        "http://{host}/package/resource?url=http://example.invalid/x%20y.tgz"
    ));
    assert_eq!(r.body, json!({ "package": expected }));

    let r = e
        .pkg(
            "describe",
            "v2",
            json!({"packageName": "helloworld", "packageVersion": "0.1.0"}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, p("describe-response", "v2"));
    assert_eq!(r.body["packagingVersion"], "2.0");
    assert_eq!(r.body["selected"], false);
    assert!(r.body.get("releaseVersion").is_none());
    let r = e
        .pkg(
            "describe",
            "v2",
            json!({"packageName": "helloworld", "packageVersion": "0.4.0"}),
        )
        .await;
    assert_eq!(r.body["packagingVersion"], "3.0");
    let r = e
        .pkg(
            "describe",
            "v2",
            json!({"packageName": "helloworld", "packageVersion": "0.4.1"}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["type"], "ConversionFromPackageToV2DescribeResponse");

    let r = e
        .pkg(
            "describe",
            "v3",
            json!({"packageName": "helloworld", "packageVersion": "a.b.c"}),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"type": "VersionNotFound", "message": "Version [a.b.c] of package [helloworld] not found",
               "data": {"packageName": "helloworld", "packageVersion": "a.b.c"}})
    );
    let r = e
        .pkg(
            "describe",
            "v3",
            json!({"packageName": "nope", "packageVersion": null}),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"type": "PackageNotFound", "message": "Package [nope] not found", "data": {"packageName": "nope"}})
    );
}

#[tokio::test]
async fn list_versions() {
    let e = env().await;
    let r = e
        .pkg(
            "list-versions",
            "v1",
            json!({"packageName": "helloworld", "includePackageVersions": true}),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"results": {"0.4.2": "5", "0.4.1": "4", "0.4.0": "3", "0.1.0": "0"}})
    );
    let r = e
        .pkg("list-versions", "v1", json!({"packageName": "helloworld"}))
        .await;
    assert_eq!(r.body["type"], "not_parsed");
    let r = e
        .pkg(
            "list-versions",
            "v1",
            json!({"packageName": "x", "includePackageVersions": false}),
        )
        .await;
    assert_eq!(r.body["type"], "PackageNotFound");
}

// ---------------------------------------------------------------------------------------------
// render

#[tokio::test]
async fn render_adds_labels_and_honours_options_and_app_id() {
    let e = env().await;
    let r = e
        .pkg(
            "render",
            "v1",
            json!({"packageName": "helloworld", "packageVersion": "0.4.1"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let app = &r.body["marathonJson"];
    assert_eq!(app["id"], "helloworld");
    assert_eq!(app["cpus"], json!(1));
    assert_eq!(app["cmd"], "python3 -m http.server 8080");
    assert_eq!(app["container"]["docker"]["image"], "python:3");
    let labels = app["labels"].as_object().expect("labels");
    assert_eq!(labels.len(), 6);
    assert_eq!(labels["MY_LABEL"], "x");
    assert_eq!(labels["DCOS_PACKAGE_NAME"], "helloworld");
    assert_eq!(labels["DCOS_PACKAGE_VERSION"], "0.4.1");
    assert_eq!(labels["DCOS_PACKAGE_SOURCE"], format!("{}/repo", e.repo));
    assert_eq!(labels["DCOS_PACKAGE_OPTIONS"], "e30=");
    let def = cosmos_render::labels::decode_package_definition(
        labels["DCOS_PACKAGE_DEFINITION"].as_str().expect("s"),
    )
    .expect("definition");
    assert_eq!(def, fixture_packages()[2]);

    let r = e
        .pkg("render", "v1", json!({"packageName": "helloworld", "options": {"port": 8888, "service": {"name": "other"}}, "appId": "custom"}))
        .await;
    let app = &r.body["marathonJson"];
    assert_eq!(app["id"], "/custom");
    assert_eq!(app["cmd"], "python3 -m http.server 8888");
    assert_eq!(
        decode_label(app, "DCOS_PACKAGE_OPTIONS"),
        json!({"port": 8888, "service": {"name": "other"}})
    );
    assert_eq!(app["labels"]["DCOS_PACKAGE_VERSION"], "0.4.2");
}

#[tokio::test]
async fn render_reports_every_schema_violation() {
    let e = env().await;
    let r = e
        .pkg(
            "render",
            "v1",
            json!({"packageName": "helloworld",
            "options": {"port": "9999", "service": {"cpus": 0, "extra": true}, "unknown": 1}}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["type"], "JsonSchemaMismatch");
    assert_eq!(r.body["message"], "Options JSON failed validation");
    let errs = r.body["data"]["errors"].as_array().expect("errors");
    let mut seen: Vec<(String, String)> = errs
        .iter()
        .map(|e| {
            (
                e["instance"]["pointer"].as_str().expect("p").to_string(),
                e["keyword"].as_str().expect("k").to_string(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("".to_string(), "additionalProperties".to_string()),
            ("/port".to_string(), "type".to_string()),
            ("/service".to_string(), "additionalProperties".to_string()),
            ("/service/cpus".to_string(), "minimum".to_string()),
        ]
    );
    let ty = errs.iter().find(|e| e["keyword"] == "type").expect("type");
    assert_eq!(ty["found"], "string");
    assert_eq!(ty["expected"], json!(["integer"]));
    assert_eq!(ty["level"], "error");
    // options given to a package without a config schema
    let r = e
        .pkg(
            "render",
            "v1",
            json!({"packageName": "broken", "options": {"a": 1}}),
        )
        .await;
    assert_eq!(r.body["type"], "OptionsNotAllowed");
    // options that are not an object
    let r = e
        .pkg(
            "render",
            "v1",
            json!({"packageName": "helloworld", "options": [1]}),
        )
        .await;
    assert_eq!(r.body["type"], "not_parsed");
}

#[tokio::test]
async fn render_errors() {
    let e = env().await;
    let r = e
        .pkg("render", "v1", json!({"packageName": "cli-only"}))
        .await;
    assert_eq!(
        r.body,
        json!({"type": "ServiceMarathonTemplateNotFound",
               "message": "Package: [cli-only] version: [1.0] does not have a Marathon template defined and can not be rendered",
               "data": {"packageName": "cli-only", "packageVersion": "1.0"}})
    );
    let r = e
        .pkg("render", "v1", json!({"packageName": "broken"}))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["type"], "JsonParsingError");
    assert_eq!(
        r.body["message"],
        "Unable to parse the string as a JSON value"
    );
    assert_eq!(
        r.body["data"]["parsingInput"],
        "{\"id\": \"/broken\", \"instances\": }"
    );
    let r = e
        .pkg(
            "render",
            "v1",
            json!({"packageName": "helloworld", "packageVersion": "7"}),
        )
        .await;
    assert_eq!(r.body["type"], "VersionNotFound");
}

// ---------------------------------------------------------------------------------------------
// install / list / uninstall

#[tokio::test]
async fn install_list_uninstall() {
    let e = env().await;
    let r = e
        .pkg(
            "install",
            "v2",
            json!({"packageName": "helloworld", "options": {}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.content_type, p("install-response", "v2"));
    assert_eq!(
        r.body,
        json!({"packageName": "helloworld", "packageVersion": "0.4.2", "appId": "/helloworld",
               "postInstallNotes": "A sample post-installation message"})
    );
    {
        let apps = e.cluster.apps.lock().expect("lock");
        let app = &apps["/helloworld"];
        assert_eq!(app["labels"]["DCOS_PACKAGE_NAME"], "helloworld");
        assert_eq!(app["labels"]["DCOS_PACKAGE_OPTIONS"], "e30=");
    }
    // the same again → 409
    let r = e
        .pkg("install", "v2", json!({"packageName": "helloworld"}))
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(
        r.body,
        json!({"type": "PackageAlreadyInstalled", "message": "Package is already installed"})
    );
    // a second instance with v1
    let r = e.pkg("install", "v1", json!({"packageName": "helloworld", "packageVersion": "0.1.0", "appId": "hello2", "options": {"port": 9999}})).await;
    assert_eq!(
        r.body,
        json!({"packageName": "helloworld", "packageVersion": "0.1.0", "appId": "/hello2"})
    );

    let r = e.pkg("list", "v1", json!({})).await;
    assert_eq!(r.status, 200);
    let pk = r.body["packages"].as_array().expect("packages");
    assert_eq!(pk.len(), 2);
    assert_eq!(pk[0]["appId"], "/hello2");
    assert_eq!(pk[1]["appId"], "/helloworld");
    let def = &pk[1]["packageInformation"]["packageDefinition"];
    assert_eq!(def["name"], "helloworld");
    assert_eq!(def["version"], "0.4.2");
    assert_eq!(def["selected"], false);
    assert_eq!(def["framework"], false);
    assert!(def.get("marathon").is_none());
    assert!(
        pk[1]["packageInformation"]["resourceDefinition"]["images"]["icon-small"]
            .as_str()
            .expect("icon")
            .contains("/package/resource?url=")
    );
    let r = e.pkg("list", "v1", json!({"appId": "hello2"})).await;
    assert_eq!(r.body["packages"].as_array().map(Vec::len), Some(1));
    let r = e.pkg("list", "v1", json!({"packageName": "other"})).await;
    assert_eq!(r.body, json!({"packages": []}));

    // uninstall without appId is ambiguous
    let r = e
        .pkg("uninstall", "v1", json!({"packageName": "helloworld"}))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["type"], "AmbiguousAppId");
    assert_eq!(r.body["data"]["appIds"], json!(["/hello2", "/helloworld"]));
    // one by appId
    let r = e
        .pkg(
            "uninstall",
            "v1",
            json!({"packageName": "helloworld", "appId": "/hello2"}),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"results": [{"packageName": "helloworld", "appId": "/hello2", "packageVersion": "0.1.0",
                            "postUninstallNotes": "A sample post-uninstall message"}]})
    );
    let r = e
        .pkg(
            "uninstall",
            "v1",
            json!({"packageName": "helloworld", "appId": "/hello2"}),
        )
        .await;
    assert_eq!(r.body["type"], "UninstallNonExistentAppForPackage");
    let r = e
        .pkg("uninstall", "v1", json!({"packageName": "frameworky"}))
        .await;
    assert_eq!(r.body["type"], "PackageNotInstalled");
    // all
    e.pkg(
        "install",
        "v2",
        json!({"packageName": "helloworld", "appId": "/h3"}),
    )
    .await;
    let r = e
        .pkg(
            "uninstall",
            "v1",
            json!({"packageName": "helloworld", "all": true}),
        )
        .await;
    assert_eq!(r.body["results"].as_array().map(Vec::len), Some(2));
    assert!(e.cluster.apps.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn install_without_template_and_marathon_errors() {
    let e = env().await;
    let host = e.cosmos.trim_start_matches("http://").to_string();
    let r = e
        .pkg("install", "v1", json!({"packageName": "cli-only"}))
        .await;
    assert_eq!(r.body["type"], "ServiceMarathonTemplateNotFound");
    let r = e
        .pkg(
            "install",
            "v2",
            json!({"packageName": "cli-only", "options": {"ignored": true}}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body.get("appId").is_none());
    assert_eq!(
        r.body["cli"]["binaries"]["linux"]["x86-64"]["url"],
        format!("http://{host}/package/resource?url=https://example.invalid/cli")
    );
    *e.cluster.fail_create_with.lock().expect("lock") = Some(503);
    let r = e
        .pkg("install", "v2", json!({"packageName": "helloworld"}))
        .await;
    assert_eq!(
        (r.status, r.body["type"].as_str()),
        (502, Some("MarathonBadGateway"))
    );
    assert_eq!(
        r.body["data"],
        json!({"marathonStatus": 503, "status": 502})
    );
    *e.cluster.fail_create_with.lock().expect("lock") = Some(422);
    let r = e
        .pkg("install", "v2", json!({"packageName": "helloworld"}))
        .await;
    assert_eq!(
        (r.status, r.body["type"].as_str()),
        (400, Some("MarathonBadResponse"))
    );
    assert_eq!(r.body["message"], "Object is not valid");
    assert_eq!(r.body["data"]["errors"][0]["path"], "/cpus");
    *e.cluster.fail_create_with.lock().expect("lock") = Some(400);
    let r = e
        .pkg("install", "v2", json!({"packageName": "helloworld"}))
        .await;
    assert_eq!(
        (r.status, r.body["type"].as_str()),
        (500, Some("MarathonGenericError"))
    );
    // a template that renders to non-JSON never reaches Marathon
    *e.cluster.fail_create_with.lock().expect("lock") = None;
    let r = e
        .pkg("install", "v2", json!({"packageName": "broken"}))
        .await;
    assert_eq!(r.body["type"], "JsonParsingError");
    assert!(e.cluster.apps.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn marathon_down_is_service_unavailable() {
    let (repo, _st) = repo_server(fixture_packages()).await;
    let store: std::sync::Arc<dyn dcos_store::Store> =
        std::sync::Arc::new(dcos_store::EmbeddedStore::in_memory());
    // a port nobody listens on
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut cfg = cosmos::CosmosConfig::new(
        format!("http://127.0.0.1:{closed}"),
        format!("http://127.0.0.1:{closed}"),
        store,
    );
    cfg.default_repositories = vec![cosmos::Repository::new("r", format!("{repo}/repo"))];
    cfg.fetch = fast_fetch();
    let url = serve(cosmos::Cosmos::new(cfg).router()).await;
    let e = Env {
        cosmos: url,
        repo,
        repo_state: _st,
        cluster: Default::default(),
        marathon: String::new(),
        client: reqwest::Client::new(),
    };
    let r = e
        .pkg("install", "v2", json!({"packageName": "helloworld"}))
        .await;
    assert_eq!(r.status, 503);
    assert_eq!(r.body["type"], "ServiceUnavailable");
    assert_eq!(
        r.body["data"],
        json!({"serviceName": "marathon", "status": 503})
    );
    let r = e.pkg("list", "v1", json!({})).await;
    assert_eq!(r.body["type"], "ServiceUnavailable");
}

#[tokio::test]
async fn uninstall_tears_down_the_framework() {
    let e = env().await;
    let r = e
        .pkg("install", "v2", json!({"packageName": "frameworky"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = e
        .pkg("uninstall", "v1", json!({"packageName": "frameworky"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["results"][0]["postUninstallNotes"], "bye");
    assert_eq!(
        *e.cluster.teardowns.lock().expect("lock"),
        vec!["frameworkId=fw-id-fw-one".to_string()]
    );
}

#[tokio::test]
async fn sdk_uninstall_marks_then_deletes() {
    let e = env().await;
    e.pkg("install", "v2", json!({"packageName": "sdk"})).await;
    let r = e
        .pkg("uninstall", "v1", json!({"packageName": "sdk"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    for _ in 0..200 {
        if e.cluster.apps.lock().expect("lock").is_empty() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("SDK app was not deleted in the background");
}

// ---------------------------------------------------------------------------------------------
// services

#[tokio::test]
async fn service_describe_and_update() {
    let e = env().await;
    let r = e
        .pkg("install", "v2", json!({"packageName": "helloworld", "packageVersion": "0.4.0", "options": {"port": 9999, "service": {"mem": 256}}}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = e.svc("describe", json!({"appId": "helloworld"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.content_type, s("describe-response", "v1"));
    assert_eq!(r.body["upgradesTo"], json!(["0.4.2", "0.4.1"]));
    assert_eq!(r.body["downgradesTo"], json!([]));
    assert_eq!(
        r.body["userProvidedOptions"],
        json!({"port": 9999, "service": {"mem": 256}})
    );
    assert_eq!(
        r.body["resolvedOptions"],
        json!({"service": {"name": "helloworld", "cpus": 1.0, "mem": 256}, "port": 9999})
    );
    assert_eq!(r.body["package"]["version"], "0.4.0");

    // update keeps stored nested keys, changes the given one
    let r = e
        .svc(
            "update",
            json!({"appId": "/helloworld", "options": {"service": {"cpus": 2}}, "replace": false}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["resolvedOptions"],
        json!({"service": {"name": "helloworld", "cpus": 2, "mem": 256}, "port": 9999})
    );
    assert!(r.body["marathonDeploymentId"].is_string());
    let app = e.cluster.apps.lock().expect("lock")["/helloworld"].clone();
    assert_eq!(app["cpus"], json!(2));
    assert_eq!(
        decode_label(&app, "DCOS_PACKAGE_OPTIONS"),
        json!({"port": 9999, "service": {"mem": 256, "cpus": 2}})
    );
    let r = e.svc("describe", json!({"appId": "helloworld"})).await;
    assert_eq!(r.body["resolvedOptions"]["service"]["cpus"], json!(2));

    let r = e
        .svc(
            "update",
            json!({"appId": "/helloworld", "packageVersion": "0.4.2", "replace": false}),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"type": "VersionUpgradeNotSupportedInOpen", "message": "Version Upgrades are an Enterprise DC/OS feature only",
               "data": {"requested": "0.4.2", "actual": "0.4.0"}})
    );
    let r = e
        .svc(
            "update",
            json!({"appId": "/helloworld", "options": {"port": "x"}, "replace": true}),
        )
        .await;
    assert_eq!(r.body["type"], "JsonSchemaMismatch");
    let r = e.svc("update", json!({"appId": "/helloworld", "options": {"service": {"name": "renamed"}}, "replace": false})).await;
    assert_eq!(r.body["type"], "AppIdChanged");
    let r = e.svc("update", json!({"appId": "/helloworld"})).await;
    assert_eq!(r.body["type"], "not_parsed");
    let r = e.svc("describe", json!({"appId": "/does-not-exist"})).await;
    assert_eq!(
        r.body,
        json!({"type":"MarathonAppNotFound","message":"Unable to locate service with marathon appId: '/does-not-exist'","data":{"appId":"/does-not-exist"}})
    );

    // 0.4.2 can go down to every version its downgradesTo ["*"] allows
    e.pkg(
        "install",
        "v2",
        json!({"packageName": "helloworld", "appId": "/latest"}),
    )
    .await;
    let r = e.svc("describe", json!({"appId": "/latest"})).await;
    assert_eq!(
        r.body["downgradesTo"],
        json!(["0.4.2", "0.4.1", "0.4.0", "0.1.0"])
    );
}

// ---------------------------------------------------------------------------------------------
// resource proxy

#[tokio::test]
async fn resource_proxy() {
    let e = env().await;
    let mut pkg = fixture_packages()[4].clone();
    pkg["name"] = json!("proxied");
    pkg["resource"]["assets"] = json!({"uris": {"a": format!("{}/download/a+b.tgz", e.repo)}});
    let (repo2, _) = repo_server(vec![pkg]).await;
    let r = e
        .pkg(
            "repository/add",
            "v1",
            json!({"name": "two", "uri": format!("{repo2}/repo")}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let target = format!("{}/download/a+b.tgz", e.repo);
    for q in [target.clone(), target.replace('+', "%2B")] {
        let resp = e
            .client
            .get(format!("{}/package/resource", e.cosmos))
            .query(&[("url", q.as_str())])
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()["content-disposition"],
            "attachment; filename=\"a+b.tgz\""
        );
        assert_eq!(resp.text().await.expect("t"), "content of a+b.tgz");
    }
    let resp = e
        .client
        .get(format!("{}/package/resource", e.cosmos))
        .query(&[("url", format!("{}/download/secret", e.repo))])
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["type"], "Forbidden");
    assert_eq!(body["data"]["serviceName"], "ResourceProxyHandler$");
}

#[tokio::test]
async fn authorization_is_forwarded_and_upstream_auth_errors_map() {
    let e = env().await;
    *e.cluster.require_auth.lock().expect("lock") = Some("token=abc".into());
    let list = |auth: Option<&'static str>| {
        let mut req = e
            .client
            .post(format!("{}/package/list", e.cosmos))
            .header("Accept", p("list-response", "v1"))
            .header("Content-Type", p("list-request", "v1"))
            .body("{}");
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        req.send()
    };
    let r = list(Some("token=abc")).await.expect("send");
    assert_eq!(r.status(), 200);
    let r = list(None).await.expect("send");
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "acsjwt");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["type"], "Unauthorized");
    assert_eq!(body["data"]["serviceName"], "marathon");
    *e.cluster.forbid.lock().expect("lock") = true;
    let r = list(Some("token=abc")).await.expect("send");
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["type"], "Forbidden");
    // repositories never see the token
    let seen = e.cluster.auth_seen.lock().expect("lock").clone();
    assert!(seen.contains(&Some("token=abc".to_string())));
    assert!(e.repo_state.hits.load(std::sync::atomic::Ordering::SeqCst) <= 1);
}

#[tokio::test]
async fn mesos_down_during_teardown_is_incomplete_uninstall() {
    let port = closed_port();
    let e = env_with(|cfg| cfg.mesos_master_url = format!("http://127.0.0.1:{port}")).await;
    let r = e
        .pkg("install", "v2", json!({"packageName": "frameworky"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = e
        .pkg("uninstall", "v1", json!({"packageName": "frameworky"}))
        .await;
    assert_eq!(r.status, 503);
    assert_eq!(
        r.body,
        json!({"type": "IncompleteUninstall",
               "message": "Incomplete uninstall of package [frameworky] due to Mesos unavailability",
               "data": {"packageName": "frameworky", "status": 503}})
    );
}

#[tokio::test]
async fn custom_package_managers_are_forwarded_through_admin_router() {
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<Vec<(String, Value, String)>>> = Arc::default();
    let s2 = seen.clone();
    let ar = axum::Router::new().route(
        "/service/{mgr}/{kind}/{rpc}",
        axum::routing::post(
            move |axum::extract::Path((mgr, kind, rpc)): axum::extract::Path<(String, String, String)>,
                  headers: axum::http::HeaderMap,
                  body: String| {
                let s2 = s2.clone();
                async move {
                    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    let ct = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                    s2.lock().expect("lock").push((format!("{mgr}/{kind}/{rpc}"), body.clone(), ct));
                    if mgr == "gone" {
                        return (axum::http::StatusCode::NOT_FOUND, String::new());
                    }
                    let answer = match rpc.as_str() {
                        "install" => json!({"packageName": body["packageName"], "packageVersion": body["packageVersion"], "appId": "/managed"}),
                        "uninstall" => json!({"results": [{"packageName": body["packageName"], "appId": body["appId"], "packageVersion": body["packageVersion"]}]}),
                        _ => json!({"package": {"name": "managed"}, "upgradesTo": [], "downgradesTo": []}),
                    };
                    (axum::http::StatusCode::OK, answer.to_string())
                }
            },
        ),
    );
    let ar_url = serve(ar).await;
    let e = env_with(|cfg| cfg.admin_router_url = Some(ar_url.clone())).await;
    let mut managed = fixture_packages()[5].clone();
    managed["packagingVersion"] = json!("5.0");
    managed["name"] = json!("managed");
    managed["version"] = json!("1");
    managed["marathon"] =
        json!({"v2AppMustacheTemplate": b64(r#"{"id": "/managed", "cmd": "sleep 1"}"#)});
    managed["manager"] = json!({"packageName": "mgr"});
    let (repo2, _) = repo_server(vec![managed]).await;
    let r = e
        .pkg(
            "repository/add",
            "v1",
            json!({"name": "two", "uri": format!("{repo2}/repo")}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // with a version (what the CLI sends) the install goes to the manager
    let r = e
        .pkg(
            "install",
            "v2",
            json!({"packageName": "managed", "packageVersion": "1", "options": {}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"packageName": "managed", "packageVersion": "1", "appId": "/managed"})
    );
    {
        let seen = seen.lock().expect("lock");
        assert_eq!(seen[0].0, "mgr/package/install");
        assert_eq!(
            seen[0].1,
            json!({"packageName": "managed", "packageVersion": "1", "options": {}})
        );
        assert_eq!(seen[0].2, p("install-request", "v1"));
    }
    assert!(e.cluster.apps.lock().expect("lock").is_empty());
    // without a version Cosmos installs it itself
    let r = e
        .pkg("install", "v2", json!({"packageName": "managed"}))
        .await;
    assert_eq!(r.body["appId"], "/managed");
    // uninstall and service describe of that app are forwarded (package-declared manager)
    let r = e.svc("describe", json!({"appId": "/managed"})).await;
    assert_eq!(r.body["package"]["name"], "managed");
    let r = e
        .pkg("uninstall", "v1", json!({"packageName": "managed"}))
        .await;
    assert_eq!(r.body["results"][0]["appId"], "/managed");
    assert_eq!(
        seen.lock().expect("lock").last().map(|s| s.0.clone()),
        Some("mgr/package/uninstall".into())
    );
    // an explicit managerId that is not installed
    let r = e
        .pkg(
            "install",
            "v2",
            json!({"packageName": "managed", "managerId": "gone"}),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"type": "CustomPackageManagerNotFound",
               "message": "the custom manager: 'gone', is not installed for this package",
               "data": {"managerId": "gone"}})
    );
}
