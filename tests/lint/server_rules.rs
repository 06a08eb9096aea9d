//! Server rules.

use super::*;

#[tokio::test]
async fn rule_server_required_features() {
    // A server that forgot the ResponseFeature.
    let (report, outcome) = server_violation(|f| {
        f.remove::<ResponseFeature>();
    })
    .await;
    assert_only(&report, "server.required-features");
    assert_eq!(side("server.required-features"), Side::Server);
    assert_rule_error(&outcome, "server.required-features");
    assert!(!outcome.completed);

    // And one that forgot the sink.
    let (report, outcome) = server_violation(|f| {
        f.remove_dyn::<dyn ResponseBody>();
    })
    .await;
    assert_only(&report, "server.required-features");
    assert!(!outcome.completed);
}

#[tokio::test]
async fn rule_server_response_fresh() {
    let (report, _) = server_violation(|f| response(f).mark_started()).await;
    assert_only(&report, "server.response-fresh");
    let (report, _) = server_violation(|f| response(f).status = StatusCode::NOT_FOUND).await;
    assert_only(&report, "server.response-fresh");
    let (report, _) = server_violation(|f| {
        response(f)
            .headers
            .insert("x-stale", HeaderValue::from_static("1"));
    })
    .await;
    assert_only(&report, "server.response-fresh");
}

#[tokio::test]
async fn rule_server_request_id() {
    let (report, _) = server_violation(|f| {
        f.insert(RequestId::new(""));
    })
    .await;
    assert_only(&report, "server.request-id");
}

#[tokio::test]
async fn rule_request_path() {
    let (report, _) = server_violation(|f| request(f).path = "x".into()).await;
    assert_only(&report, "request.path");
    // Empty without a path base or a special form.
    let (report, _) = server_violation(|f| request(f).path = String::new()).await;
    assert_only(&report, "request.path");
}

#[tokio::test]
async fn rule_request_path_base() {
    let (report, _) = server_violation(|f| request(f).path_base = "/a/".into()).await;
    assert_only(&report, "request.path-base");
    let (report, _) = server_violation(|f| request(f).path_base = "a".into()).await;
    assert_only(&report, "request.path-base");
}

#[tokio::test]
async fn rule_request_query() {
    let (report, _) = server_violation(|f| request(f).query = "?x".into()).await;
    assert_only(&report, "request.query");
}

#[tokio::test]
async fn rule_request_raw_target() {
    let (report, _) = server_violation(|f| request(f).raw_target = String::new()).await;
    assert_only(&report, "request.raw-target");
}

#[tokio::test]
async fn rule_request_scheme() {
    let (report, _) = server_violation(|f| request(f).scheme = "ftp".parse().unwrap()).await;
    assert_only(&report, "request.scheme");
}

#[tokio::test]
async fn rule_request_version() {
    let (report, _) = server_violation(|f| request(f).version = Version::HTTP_09).await;
    assert_only(&report, "request.version");
}

#[tokio::test]
async fn rule_request_host() {
    let (report, _) = server_violation(|f| {
        request(f).headers.remove(HOST);
    })
    .await;
    assert_only(&report, "request.host");
    let (report, _) = server_violation(|f| {
        request(f)
            .headers
            .append(HOST, HeaderValue::from_static("other.example"));
    })
    .await;
    assert_only(&report, "request.host");
}

#[tokio::test]
async fn several_server_violations_are_all_recorded() {
    let (report, _) = server_violation(|f| {
        let r = request(f);
        r.query = "?x".into();
        r.scheme = "ftp".parse().unwrap();
        f.insert(RequestId::new(""));
    })
    .await;
    assert_eq!(
        report.rule_ids(),
        vec!["server.request-id", "request.query", "request.scheme"]
    );
}
