//! CORS for realm-web in browsers (protocol.md §1.6), for the origins an app allows.

use reqwest::Method;

use crate::common::*;

fn header(r: &Reply, name: &str) -> String {
    r.headers
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// A server whose app allows the two origins these tests use.
async fn start_allowing() -> Harness {
    let mut c = config();
    c.apps[0].allowed_origins = vec![
        "https://app.example.org".into(),
        "http://localhost:3000".into(),
    ];
    start_with(c).await
}

#[tokio::test]
async fn preflight_echoes_origin_and_allows_auth_headers() {
    let h = start_allowing().await;
    let resp = h
        .http
        .request(Method::OPTIONS, h.url(&format!("{PREFIX}/auth/profile")))
        .header("origin", "https://app.example.org")
        .header("access-control-request-method", "GET")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap();
    let r = Reply::from(resp).await;
    assert!(r.status.is_success(), "{:?}", r.status);
    assert_eq!(
        header(&r, "access-control-allow-origin"),
        "https://app.example.org"
    );
    // Bearer headers need no credentials mode; the server sets no cookie.
    assert_eq!(header(&r, "access-control-allow-credentials"), "");
    let methods = header(&r, "access-control-allow-methods").to_ascii_uppercase();
    for m in ["GET", "POST", "PUT", "DELETE", "OPTIONS"] {
        assert!(methods.contains(m), "{methods}");
    }
    let headers = header(&r, "access-control-allow-headers").to_ascii_lowercase();
    for hd in ["authorization", "content-type", "accept"] {
        assert!(headers.contains(hd), "{headers}");
    }
    assert!(header(&r, "vary").to_ascii_lowercase().contains("origin"));
}

#[tokio::test]
async fn actual_responses_carry_cors_headers_even_on_errors() {
    let h = start_allowing().await;
    let resp = h
        .http
        .get(h.app_url(APP, "/location"))
        .header("origin", "http://localhost:3000")
        .send()
        .await
        .unwrap();
    let r = Reply::from(resp).await;
    r.assert_ok_json();
    assert_eq!(
        header(&r, "access-control-allow-origin"),
        "http://localhost:3000"
    );
    // Bearer headers need no credentials mode; the server sets no cookie.
    assert_eq!(header(&r, "access-control-allow-credentials"), "");
    assert!(
        header(&r, "access-control-expose-headers")
            .to_ascii_lowercase()
            .contains("x-baas-location")
    );
    assert!(header(&r, "vary").to_ascii_lowercase().contains("origin"));

    let resp = h
        .http
        .get(h.url(&format!("{PREFIX}/auth/profile")))
        .header("origin", "http://localhost:3000")
        .send()
        .await
        .unwrap();
    let r = Reply::from(resp).await;
    r.assert_error(401, "MissingAuthReq");
    assert_eq!(
        header(&r, "access-control-allow-origin"),
        "http://localhost:3000"
    );
}
