//! The checks every adapter must pass. Each takes the transport under test.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use latchkey_transport::{
    HttpRequest, HttpResponse, RequestOptions, SharedTransport, TransportError, TransportErrorKind,
};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::raw;

fn request(method: Method, url: &str, body: impl Into<Bytes>) -> HttpRequest {
    http::Request::builder()
        .method(method)
        .uri(url)
        .body(body.into())
        .unwrap()
}

fn get(url: &str) -> HttpRequest {
    request(Method::GET, url, Bytes::new())
}

async fn send(t: &SharedTransport, req: HttpRequest) -> HttpResponse {
    let shown = format!("{} {}", req.method(), req.uri());
    match t.send(req, &RequestOptions::new()).await {
        Ok(resp) => resp,
        Err(e) => panic!("{shown}: expected a response, got {e:?}"),
    }
}

async fn send_err(t: &SharedTransport, req: HttpRequest, opts: &RequestOptions) -> TransportError {
    let shown = format!("{} {}", req.method(), req.uri());
    match t.send(req, opts).await {
        Ok(resp) => panic!("{shown}: expected an error, got status {}", resp.status()),
        Err(e) => e,
    }
}

async fn received(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.expect("recording is on")
}

/// Answers 200 with the request's body and content type.
struct Echo;

impl Respond for Echo {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mime = request
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream");
        ResponseTemplate::new(200).set_body_raw(request.body.clone(), mime)
    }
}

pub(crate) async fn methods_arrive(t: SharedTransport) {
    let server = MockServer::start().await;
    for m in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
        Mock::given(method(m))
            .and(path("/resource"))
            .respond_with(ResponseTemplate::new(200).set_body_string(m))
            .expect(1)
            .mount(&server)
            .await;
    }
    for m in [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
    ] {
        let body = if m == Method::GET || m == Method::DELETE {
            Bytes::new()
        } else {
            Bytes::from_static(b"{}")
        };
        let resp = send(
            &t,
            request(m.clone(), &format!("{}/resource", server.uri()), body),
        )
        .await;
        assert_eq!(resp.status(), 200, "{m}");
        assert_eq!(resp.body().as_ref(), m.as_str().as_bytes(), "{m}");
    }
    let methods: Vec<Method> = received(&server)
        .await
        .into_iter()
        .map(|r| r.method)
        .collect();
    assert_eq!(
        methods,
        [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH
        ]
    );
    server.verify().await;
}

pub(crate) async fn request_headers_arrive(t: SharedTransport) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let req = http::Request::post(format!("{}/api/client/v2.0/auth/session", server.uri()))
        .header("authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2ln")
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .header("x-latchkey-test", "one")
        .header("x-latchkey-multi", "a")
        .header("x-latchkey-multi", "b")
        .body(Bytes::from_static(b"{}"))
        .unwrap();
    assert_eq!(send(&t, req).await.status(), 200);
    let got = received(&server).await;
    assert_eq!(got.len(), 1);
    let h = &got[0].headers;
    assert_eq!(h["authorization"], "Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2ln");
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(h["accept"], "application/json");
    assert_eq!(h["x-latchkey-test"], "one");
    let multi: Vec<_> = h.get_all("x-latchkey-multi").iter().collect();
    assert_eq!(multi, ["a", "b"]);
    assert_eq!(h["host"], server.address().to_string());
}

pub(crate) async fn request_body_arrives_exactly(t: SharedTransport) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/echo"))
        .respond_with(Echo)
        .mount(&server)
        .await;
    // Every byte value, including invalid UTF-8 and NULs.
    let mut body: Vec<u8> = (0..=255u8).collect();
    body.extend_from_slice("{\"email\":\"é@例え.jp\"}\r\n".as_bytes());
    let req = http::Request::post(format!("{}/echo", server.uri()))
        .header("content-type", "application/octet-stream")
        .body(Bytes::from(body.clone()))
        .unwrap();
    let resp = send(&t, req).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.body().as_ref(), body.as_slice());
    let got = received(&server).await;
    assert_eq!(got[0].body, body);
    assert_eq!(got[0].headers["content-length"], body.len().to_string());
}

pub(crate) async fn empty_post_body_arrives_empty(t: SharedTransport) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let resp = send(
        &t,
        request(
            Method::POST,
            &format!("{}/auth/session", server.uri()),
            Bytes::new(),
        ),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let got = received(&server).await;
    assert!(got[0].body.is_empty());
    if let Some(len) = got[0].headers.get("content-length") {
        assert_eq!(len, "0");
    }
}

pub(crate) async fn query_string_arrives(t: SharedTransport) {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let url = format!(
        "{}/api/admin/v3.0/groups/g/apps?product=atlas&name=a%20b",
        server.uri()
    );
    assert_eq!(send(&t, get(&url)).await.status(), 200);
    let got = received(&server).await;
    assert_eq!(got[0].url.path(), "/api/admin/v3.0/groups/g/apps");
    assert_eq!(got[0].url.query(), Some("product=atlas&name=a%20b"));
}

pub(crate) async fn status_codes_are_responses(t: SharedTransport) {
    let server = MockServer::start().await;
    for code in [200u16, 201, 400, 401, 403, 404, 409, 429, 500, 502, 503] {
        Mock::given(path(format!("/status/{code}")))
            .respond_with(ResponseTemplate::new(code).set_body_raw(
                format!("{{\"error_code\":\"E{code}\"}}"),
                "application/json",
            ))
            .mount(&server)
            .await;
    }
    for code in [200u16, 201, 400, 401, 403, 404, 409, 429, 500, 502, 503] {
        let resp = send(&t, get(&format!("{}/status/{code}", server.uri()))).await;
        assert_eq!(resp.status().as_u16(), code);
        assert_eq!(
            resp.body().as_ref(),
            format!("{{\"error_code\":\"E{code}\"}}").as_bytes(),
            "{code}"
        );
    }
}

pub(crate) async fn no_content_has_empty_body(t: SharedTransport) {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let resp = send(
        &t,
        request(
            Method::DELETE,
            &format!("{}/auth/session", server.uri()),
            Bytes::new(),
        ),
    )
    .await;
    assert_eq!(resp.status(), 204);
    assert!(resp.body().is_empty());
}

pub(crate) async fn response_headers_are_exact(t: SharedTransport) {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(r#"{"hostname":"http://127.0.0.1"}"#, "application/json")
                .insert_header("x-request-id", "abc-123")
                .append_header("set-cookie", "a=1")
                .append_header("set-cookie", "b=2"),
        )
        .mount(&server)
        .await;
    let resp = send(&t, get(&format!("{}/location", server.uri()))).await;
    let h = resp.headers();
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(h["x-request-id"], "abc-123");
    let cookies: Vec<_> = h.get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
    assert_eq!(h["content-length"], resp.body().len().to_string());
    assert_eq!(resp.body().as_ref(), br#"{"hostname":"http://127.0.0.1"}"#);
}

pub(crate) async fn large_body_round_trip(t: SharedTransport) {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/big"))
        .respond_with(Echo)
        .mount(&server)
        .await;
    // 1 MiB of a non-repeating-looking pattern.
    let body: Vec<u8> = (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let req = http::Request::put(format!("{}/big", server.uri()))
        .header("content-type", "application/octet-stream")
        .body(Bytes::from(body.clone()))
        .unwrap();
    let resp = t
        .send(
            req,
            &RequestOptions::new().with_timeout(Duration::from_secs(30)),
        )
        .await
        .expect("1 MiB round trip");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.body().len(), body.len());
    assert!(resp.body().as_ref() == body.as_slice(), "body differs");
    assert_eq!(received(&server).await[0].body.len(), body.len());
}

pub(crate) async fn timeout_is_transient_timeout(t: SharedTransport) {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let start = Instant::now();
    let err = send_err(
        &t,
        get(&format!("{}/slow", server.uri())),
        &RequestOptions::new().with_timeout(Duration::from_millis(200)),
    )
    .await;
    let elapsed = start.elapsed();
    assert_eq!(err.kind(), TransportErrorKind::Timeout, "{err:?}");
    assert!(err.is_timeout());
    assert!(err.is_transient());
    assert!(
        elapsed < Duration::from_secs(3),
        "the timeout was not honoured: {elapsed:?}"
    );
}

pub(crate) async fn timeout_covers_a_stalled_body(t: SharedTransport) {
    let server = raw::reply_then_stall(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"user_id\":",
    )
    .await;
    let start = Instant::now();
    let err = send_err(
        &t,
        get(&server.url("/auth/profile")),
        &RequestOptions::new().with_timeout(Duration::from_millis(300)),
    )
    .await;
    let elapsed = start.elapsed();
    assert_eq!(err.kind(), TransportErrorKind::Timeout, "{err:?}");
    assert!(err.is_transient());
    assert!(
        elapsed < Duration::from_secs(3),
        "the timeout did not cover the body: {elapsed:?}"
    );
}

pub(crate) async fn fast_response_within_timeout(t: SharedTransport) {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(50)))
        .mount(&server)
        .await;
    let resp = t
        .send(
            get(&format!("{}/quick", server.uri())),
            &RequestOptions::new().with_timeout(Duration::from_secs(10)),
        )
        .await
        .expect("within the timeout");
    assert_eq!(resp.status(), 200);
}

pub(crate) async fn connection_refused_is_transient_connect(t: SharedTransport) {
    let port = raw::closed_port();
    let err = send_err(
        &t,
        get(&format!(
            "http://127.0.0.1:{port}/api/client/v2.0/app/x/location"
        )),
        &RequestOptions::new().with_timeout(Duration::from_secs(10)),
    )
    .await;
    assert_eq!(err.kind(), TransportErrorKind::Connect, "{err:?}");
    assert!(err.is_connect());
    assert!(err.is_transient());
    assert!(
        std::error::Error::source(&err).is_some(),
        "the adapter's error is kept as the source"
    );
}

pub(crate) async fn redirect_308_keeps_method_and_body(t: SharedTransport) {
    let server = MockServer::start().await;
    Mock::given(path("/old"))
        .respond_with(ResponseTemplate::new(308).insert_header("location", "/new"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/new"))
        .respond_with(Echo)
        .expect(1)
        .mount(&server)
        .await;
    let req = http::Request::post(format!("{}/old", server.uri()))
        .header("content-type", "application/json")
        .body(Bytes::from_static(br#"{"provider":"anon-user"}"#))
        .unwrap();
    let resp = send(&t, req).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.body().as_ref(), br#"{"provider":"anon-user"}"#);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let got = received(&server).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].method, Method::POST);
    assert_eq!(got[1].body, br#"{"provider":"anon-user"}"#);
    server.verify().await;
}

pub(crate) async fn redirect_303_and_302_post_become_get(t: SharedTransport) {
    for code in [303u16, 302, 301] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/form"))
            .respond_with(ResponseTemplate::new(code).insert_header("location", "/result"))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/result"))
            .respond_with(ResponseTemplate::new(200).set_body_string("done"))
            .expect(1)
            .mount(&server)
            .await;
        let req = http::Request::post(format!("{}/form", server.uri()))
            .header("content-type", "application/json")
            .body(Bytes::from_static(b"{\"a\":1}"))
            .unwrap();
        let resp = send(&t, req).await;
        assert_eq!(resp.status(), 200, "{code}");
        assert_eq!(resp.body().as_ref(), b"done", "{code}");
        let got = received(&server).await;
        assert_eq!(got.len(), 2, "{code}");
        assert_eq!(got[1].method, Method::GET, "{code}");
        assert!(got[1].body.is_empty(), "{code}");
        assert!(
            !got[1].headers.contains_key("content-type"),
            "{code}: the body's content type went with it"
        );
        server.verify().await;
    }
}

pub(crate) async fn redirect_same_origin_keeps_authorization(t: SharedTransport) {
    let server = MockServer::start().await;
    Mock::given(path("/a"))
        .respond_with(ResponseTemplate::new(307).insert_header("location", "/b"))
        .mount(&server)
        .await;
    Mock::given(path("/b"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let req = http::Request::get(format!("{}/a", server.uri()))
        .header("authorization", "Bearer same-origin-token")
        .body(Bytes::new())
        .unwrap();
    assert_eq!(send(&t, req).await.status(), 200);
    let got = received(&server).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].url.path(), "/b");
    assert_eq!(got[1].headers["authorization"], "Bearer same-origin-token");
}

pub(crate) async fn redirect_cross_origin_drops_authorization(t: SharedTransport) {
    let origin = MockServer::start().await;
    let other = MockServer::start().await;
    Mock::given(path("/start"))
        .respond_with(
            ResponseTemplate::new(307).insert_header("location", format!("{}/land", other.uri())),
        )
        .mount(&origin)
        .await;
    Mock::given(path("/land"))
        .respond_with(ResponseTemplate::new(200).set_body_string("landed"))
        .mount(&other)
        .await;
    let req = http::Request::get(format!("{}/start", origin.uri()))
        .header("authorization", "Bearer must-not-leak")
        .header("accept", "application/json")
        .body(Bytes::new())
        .unwrap();
    let resp = send(&t, req).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.body().as_ref(), b"landed");
    let got = received(&other).await;
    assert_eq!(got.len(), 1);
    assert!(
        !got[0].headers.contains_key("authorization"),
        "Authorization was sent to another origin"
    );
    assert_eq!(got[0].headers["accept"], "application/json");
    assert_eq!(got[0].headers["host"], other.address().to_string());
}

pub(crate) async fn redirect_loop_is_permanent_error(t: SharedTransport) {
    let server = MockServer::start().await;
    // /loop/n -> /loop/n+1, forever: no URL repeats, so only the limit stops it.
    struct Onward;
    impl Respond for Onward {
        fn respond(&self, request: &Request) -> ResponseTemplate {
            let n: u32 = request
                .url
                .path()
                .trim_start_matches("/loop/")
                .parse()
                .unwrap_or(0);
            ResponseTemplate::new(302).insert_header("location", format!("/loop/{}", n + 1))
        }
    }
    Mock::given(method("GET"))
        .respond_with(Onward)
        .mount(&server)
        .await;
    let err = send_err(
        &t,
        get(&format!("{}/loop/0", server.uri())),
        &RequestOptions::new().with_timeout(Duration::from_secs(10)),
    )
    .await;
    assert!(!err.is_transient(), "{err:?}");
    assert_eq!(err.kind(), TransportErrorKind::Protocol, "{err:?}");
    let hops = received(&server).await.len();
    assert!((10..=11).contains(&hops), "followed {hops} hops");
}

pub(crate) async fn accept_then_close_is_transient(t: SharedTransport) {
    let server = raw::accept_then_close().await;
    let err = send_err(
        &t,
        get(&server.url("/api/client/v2.0/app/x/location")),
        &RequestOptions::new().with_timeout(Duration::from_secs(10)),
    )
    .await;
    assert!(
        matches!(
            err.kind(),
            TransportErrorKind::Io | TransportErrorKind::Connect
        ),
        "{err:?}"
    );
    assert!(err.is_transient(), "{err:?}");
}

pub(crate) async fn torn_response_body_is_transient_io(t: SharedTransport) {
    let server = raw::reply_then_close(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"access_token\":",
    )
    .await;
    let err = send_err(
        &t,
        get(&server.url("/auth/session")),
        &RequestOptions::new().with_timeout(Duration::from_secs(10)),
    )
    .await;
    assert_eq!(err.kind(), TransportErrorKind::Io, "{err:?}");
    assert!(err.is_transient());
}

pub(crate) async fn tls_handshake_failure_is_permanent_tls(t: SharedTransport) {
    // An `https` URL pointing at a plain-HTTP server: the handshake fails.
    let server =
        raw::answer_first_read(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").await;
    let err = send_err(
        &t,
        get(&format!("https://{}/", server.addr)),
        &RequestOptions::new().with_timeout(Duration::from_secs(10)),
    )
    .await;
    assert_eq!(err.kind(), TransportErrorKind::Tls, "{err:?}");
    assert!(!err.is_transient());
}

pub(crate) async fn invalid_url_is_permanent(t: SharedTransport) {
    for url in [
        "/relative/only",
        "ftp://127.0.0.1/file",
        "mailto:someone@example.com",
    ] {
        let err = send_err(&t, get(url), &RequestOptions::new()).await;
        assert!(!err.is_transient(), "{url}: {err:?}");
        assert_eq!(err.kind(), TransportErrorKind::Protocol, "{url}: {err:?}");
    }
}

pub(crate) async fn concurrent_requests_share_transport(t: SharedTransport) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(Echo)
        .expect(32)
        .mount(&server)
        .await;
    let mut tasks = Vec::new();
    for i in 0..32 {
        let t = t.clone();
        let url = format!("{}/n/{i}", server.uri());
        tasks.push(tokio::spawn(async move {
            let resp = t
                .send(
                    request(Method::POST, &url, format!("body {i}")),
                    &RequestOptions::new().with_timeout(Duration::from_secs(30)),
                )
                .await
                .expect("concurrent request");
            assert_eq!(resp.body().as_ref(), format!("body {i}").as_bytes());
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    server.verify().await;
}

pub(crate) async fn usable_after_error(t: SharedTransport) {
    let port = raw::closed_port();
    let err = send_err(
        &t,
        get(&format!("http://127.0.0.1:{port}/")),
        &RequestOptions::new(),
    )
    .await;
    assert!(err.is_transient());
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    for _ in 0..3 {
        assert_eq!(
            send(&t, get(&format!("{}/again", server.uri())))
                .await
                .status(),
            200
        );
    }
}

const MIB: usize = 1024 * 1024;

fn assert_body_too_large(err: &TransportError, limit: usize) {
    assert_eq!(err.kind(), TransportErrorKind::Protocol, "{err:?}");
    assert!(!err.is_transient(), "{err:?}");
    let shown = err.to_string();
    assert!(
        shown.contains(&format!("response body larger than {limit} bytes")),
        "{shown}"
    );
}

pub(crate) async fn body_over_the_limit_is_permanent_protocol(t: SharedTransport) {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/big"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(vec![b'x'; 2 * MIB], "application/json"),
        )
        .mount(&server)
        .await;
    let err = send_err(
        &t,
        get(&format!("{}/big", server.uri())),
        &RequestOptions::new()
            .with_timeout(Duration::from_secs(30))
            .with_max_response_bytes(MIB),
    )
    .await;
    assert_body_too_large(&err, MIB);
    // The transport stays usable.
    Mock::given(method("GET"))
        .and(path("/small"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&server)
        .await;
    assert_eq!(
        send(&t, get(&format!("{}/small", server.uri())))
            .await
            .body()
            .as_ref(),
        b"ok"
    );
}

pub(crate) async fn chunked_body_over_the_limit_is_permanent_protocol(t: SharedTransport) {
    // No Content-Length: the limit is found while streaming.
    let server =
        raw::reply_owned_then_close(raw::chunked_response(&vec![b'y'; 2 * MIB], 64 * 1024)).await;
    let err = send_err(
        &t,
        get(&server.url("/stream")),
        &RequestOptions::new()
            .with_timeout(Duration::from_secs(30))
            .with_max_response_bytes(MIB),
    )
    .await;
    assert_body_too_large(&err, MIB);
    // One byte over is too much as well.
    let server = raw::reply_owned_then_close(raw::chunked_response(&[b'z'; 11], 4)).await;
    let err = send_err(
        &t,
        get(&server.url("/stream")),
        &RequestOptions::new().with_max_response_bytes(10),
    )
    .await;
    assert_body_too_large(&err, 10);
}

pub(crate) async fn body_at_the_limit_is_read(t: SharedTransport) {
    // 1 MiB with the default limit (16 MiB), announced by Content-Length.
    let server = MockServer::start().await;
    let body: Vec<u8> = (0..MIB).map(|i| (i % 251) as u8).collect();
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body.clone(), "application/json"))
        .mount(&server)
        .await;
    let resp = t
        .send(
            get(&format!("{}/mib", server.uri())),
            &RequestOptions::new().with_timeout(Duration::from_secs(30)),
        )
        .await
        .expect("1 MiB is under the default limit");
    assert!(resp.body().as_ref() == body.as_slice(), "body differs");
    // Exactly at an explicit limit, with Content-Length and chunked.
    let resp = t
        .send(
            get(&format!("{}/mib", server.uri())),
            &RequestOptions::new()
                .with_timeout(Duration::from_secs(30))
                .with_max_response_bytes(MIB),
        )
        .await
        .expect("a body exactly at the limit");
    assert_eq!(resp.body().len(), MIB);
    let raw = raw::reply_owned_then_close(raw::chunked_response(&body, 50_000)).await;
    let resp = t
        .send(
            get(&raw.url("/stream")),
            &RequestOptions::new()
                .with_timeout(Duration::from_secs(30))
                .with_max_response_bytes(MIB),
        )
        .await
        .expect("a chunked body exactly at the limit");
    assert!(
        resp.body().as_ref() == body.as_slice(),
        "chunked body differs"
    );
}

pub(crate) async fn head_response_is_not_limited(t: SharedTransport) {
    // A HEAD answer announces the length of a body it does not carry.
    let server = MockServer::start().await;
    Mock::given(method("HEAD"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(vec![b'h'; 2 * MIB], "application/json"),
        )
        .mount(&server)
        .await;
    let resp = t
        .send(
            request(Method::HEAD, &format!("{}/big", server.uri()), Bytes::new()),
            &RequestOptions::new()
                .with_timeout(Duration::from_secs(10))
                .with_max_response_bytes(MIB),
        )
        .await
        .expect("a HEAD answer has no body to limit");
    assert_eq!(resp.status(), 200);
    assert!(resp.body().is_empty());
}
