//! Operators' routes: `/healthz`, `/readyz`, `/metrics` (and `[metrics]`).

use reqwest::Method;
use serde_json::json;

use crate::common::*;

async fn get(h: &Harness, path: &str) -> Reply {
    h.send(Method::GET, &h.url(path), None, None).await
}

/// The value of the series `name{labels}` (labels as rendered, sorted as the exporter
/// writes them), 0 when absent.
fn series(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().expect("a number"))
}

#[tokio::test]
async fn health_and_readiness() {
    let h = start().await;
    let live = get(&h, "/healthz").await;
    assert_eq!(live.assert_ok_json(), json!({"status": "ok"}));
    let ready = get(&h, "/readyz").await;
    assert_eq!(ready.assert_ok_json(), json!({"status": "ready"}));
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_gone_and_liveness_does_not() {
    let h = start().await;
    h.server.store().close().await;
    let ready = get(&h, "/readyz").await;
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert_eq!(ready.json()["status"], "unavailable");
    assert!(
        !ready.json()["reason"].as_str().unwrap().is_empty(),
        "{}",
        ready.text
    );
    assert_eq!(get(&h, "/healthz").await.status, 200);
}

#[tokio::test]
async fn readiness_fails_before_the_migrations_are_applied() {
    // A store that was never migrated: the server refuses to start on it through
    // `start_with_store` (which migrates), so ask the store directly, as /readyz does.
    let store = latchkey_server::SqliteStore::connect("sqlite::memory:")
        .await
        .unwrap();
    let err = latchkey_server::Store::check_ready(&store)
        .await
        .expect_err("not migrated");
    assert!(err.is_unavailable(), "{err:?}");
}

#[tokio::test]
async fn metrics_count_logins_refreshes_registrations_and_throttling_by_route_template() {
    let h = start().await;
    let tokens = h.anon().await;
    h.refresh(&tokens.refresh).await.assert_ok_json();
    h.refresh("not-a-token").await;
    h.register("someone@example.com", "Pa55w0rd!").await;
    h.login(
        "local-userpass",
        json!({"username": "someone@example.com", "password": "wrong-password"}),
    )
    .await;
    h.login("no-such-provider", json!({})).await;
    h.profile(&tokens.access).await.assert_ok_json();
    let user_id = tokens.user_id.clone();

    let m = get(&h, "/metrics").await;
    assert_eq!(m.status, 200);
    assert!(
        m.content_type
            .as_deref()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "{:?}",
        m.content_type
    );
    let t = &m.text;
    let login = |p: &str, o: &str| {
        series(
            t,
            &format!("latchkey_logins_total{{provider=\"{p}\",outcome=\"{o}\"}}"),
        )
    };
    assert_eq!(login("anon-user", "success"), 1.0, "{t}");
    assert_eq!(login("local-userpass", "failure"), 1.0, "{t}");
    assert_eq!(login("other", "failure"), 1.0, "{t}");
    assert_eq!(
        series(t, "latchkey_refreshes_total{outcome=\"success\"}"),
        1.0
    );
    assert_eq!(
        series(t, "latchkey_refreshes_total{outcome=\"failure\"}"),
        1.0
    );
    assert_eq!(
        series(t, "latchkey_registrations_total{outcome=\"success\"}"),
        1.0
    );
    let login_route = "/api/client/v2.0/app/{app_id}/auth/providers/{provider}/login";
    assert!(
        t.contains(&format!(
            "latchkey_http_request_duration_seconds_bucket{{route=\"{login_route}\",method=\"POST\",le=\"+Inf\"}} 3"
        )),
        "{t}"
    );
    assert!(t.contains("# TYPE latchkey_http_request_duration_seconds histogram"));
    assert!(t.contains("latchkey_db_pool_max_connections 1"), "{t}");
    assert!(t.contains("latchkey_db_query_errors_total{kind=\"unavailable\"}"));
    // No raw path, id or token in any label.
    assert!(!t.contains(&user_id) && !t.contains(&tokens.refresh));
    assert!(!t.contains("no-such-provider") && !t.contains(APP), "{t}");
    // An unknown path is one series, whatever the path.
    get(&h, "/nope/1").await;
    get(&h, "/nope/2").await;
    let t = get(&h, "/metrics").await.text;
    assert_eq!(
        series(
            &t,
            "latchkey_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"4xx\"}"
        ),
        2.0,
        "{t}"
    );
    assert!(!t.contains("/nope"));
}

#[tokio::test]
async fn throttled_requests_are_counted() {
    let mut c = config();
    c.throttle.max_failures_per_identifier = 2;
    let h = start_with(c).await;
    for _ in 0..4 {
        h.login(
            "local-userpass",
            json!({"username": "a@b.c", "password": "wrong-password"}),
        )
        .await;
    }
    let t = get(&h, "/metrics").await.text;
    let login_route = "/api/client/v2.0/app/{app_id}/auth/providers/{provider}/login";
    assert!(
        series(
            &t,
            &format!("latchkey_throttled_requests_total{{route=\"{login_route}\"}}")
        ) >= 1.0,
        "{t}"
    );
    assert!(
        series(
            &t,
            "latchkey_logins_total{provider=\"local-userpass\",outcome=\"throttled\"}"
        ) >= 1.0,
        "{t}"
    );
}

#[tokio::test]
async fn metrics_are_off_by_default_and_can_have_their_own_address() {
    let mut c = config();
    c.metrics = latchkey_server::MetricsConfig::default();
    let h = start_with(c).await;
    get(&h, "/metrics").await.assert_error(404, "NotFound");
    assert_eq!(get(&h, "/healthz").await.status, 200);

    let mut c = config();
    c.metrics.listen = Some("127.0.0.1:0".parse().unwrap());
    let h = start_with(c).await;
    get(&h, "/metrics").await.assert_error(404, "NotFound");
    h.anon().await;
    let addr = h.server.metrics_addr().expect("a metrics address");
    let t = h
        .http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        t.contains("latchkey_logins_total{provider=\"anon-user\",outcome=\"success\"} 1"),
        "{t}"
    );
}

#[test]
fn metrics_listen_without_enabled_is_refused() {
    let err = latchkey_server::Config::from_toml_str(
        r#"
        listen = "127.0.0.1:0"
        database = "sqlite::memory:"
        [metrics]
        listen = "127.0.0.1:9464"
        "#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("metrics.enabled"), "{err}");
    let err = latchkey_server::Config::from_toml_str(
        "listen = \"127.0.0.1:0\"\ndatabase = \"sqlite::memory:\"\n[metrics]\nenable = true\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("enable"), "{err}");
}
