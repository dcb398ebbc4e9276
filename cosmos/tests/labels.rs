//! The labels Cosmos sends to Marathon come from one place, `cosmos_render::labels::decorate`:
//! the app Marathon receives on install and on service update carries exactly the labels that
//! `decorate` puts on the rendered template.

mod common;

use common::*;
use cosmos_render::labels;
use serde_json::{json, Map, Value};

/// What `labels::decorate` makes of `package` rendered with `options` (the reference).
fn decorated_labels(
    package: &Value,
    source: &str,
    options: Option<&Value>,
    app_id: Option<&str>,
) -> Map<String, Value> {
    let template = cosmos_render::decode_template(
        package["marathon"]["v2AppMustacheTemplate"]
            .as_str()
            .expect("template"),
    )
    .expect("base64");
    let rendered = cosmos_render::render_app(
        &template,
        package.get("config"),
        package.get("resource"),
        options,
    )
    .expect("render");
    let app = labels::decorate(rendered, package, source, options, app_id);
    app["labels"].as_object().expect("labels").clone()
}

fn marathon_labels(e: &Env, id: &str) -> Map<String, Value> {
    let apps = e.cluster.apps.lock().expect("lock");
    apps[id]["labels"].as_object().expect("labels").clone()
}

#[tokio::test]
async fn install_and_update_send_exactly_the_labels_of_decorate() {
    let e = env().await;
    let source = format!("{}/repo", e.repo);
    let package = fixture_packages()[2].clone(); // helloworld 0.4.1
    assert_eq!(package["version"], "0.4.1");

    let options = json!({"port": 9999, "service": {"mem": 256}});
    let r = e
        .pkg(
            "install",
            "v2",
            json!({"packageName": "helloworld", "packageVersion": "0.4.1", "options": options}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let sent = marathon_labels(&e, "/helloworld");
    let expected = decorated_labels(&package, &source, Some(&options), None);
    assert_eq!(sent, expected);
    // the template's own label is kept beside the five Cosmos labels
    assert_eq!(sent.len(), 6);
    assert_eq!(sent["MY_LABEL"], "x");

    // service update re-renders with the merged options and decorates again
    let r = e
        .svc(
            "update",
            json!({"appId": "/helloworld", "options": {"service": {"cpus": 2}}, "replace": false}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let merged = json!({"port": 9999, "service": {"mem": 256, "cpus": 2}});
    let sent = marathon_labels(&e, "/helloworld");
    assert_eq!(
        sent,
        decorated_labels(&package, &source, Some(&merged), None)
    );
}

#[tokio::test]
async fn render_answers_the_labels_of_decorate() {
    let e = env().await;
    let package = fixture_packages()[3].clone(); // helloworld 0.4.2, the latest
    let r = e
        .pkg(
            "render",
            "v1",
            json!({"packageName": "helloworld", "appId": "other"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let answered = r.body["marathonJson"]["labels"]
        .as_object()
        .expect("labels")
        .clone();
    let source = format!("{}/repo", e.repo);
    assert_eq!(
        answered,
        decorated_labels(&package, &source, None, Some("other"))
    );
}
