//! `Retry-After` on 429 and 503: honoured (bounded) for requests safe to retry, reported
//! on the error for the others. Paused tokio time measures the waits.

use super::*;

type Reply = (u16, Option<String>);

/// A transport answering every request from `replies` (then 200 with a location body),
/// recording each attempt's method and (paused) time.
fn with_headers(replies: Vec<Reply>) -> (SharedTransport, Script) {
    let log: Script = Arc::default();
    let replies = Arc::new(Mutex::new(replies));
    let l = log.clone();
    let t = SharedTransport::new(latchkey_transport::transport_fn(
        move |req: HttpRequest, _o: RequestOptions| {
            let log = l.clone();
            let replies = replies.clone();
            async move {
                log.lock().unwrap().push((
                    req.method().clone(),
                    req.uri().path().to_owned(),
                    tokio::time::Instant::now(),
                ));
                let next = {
                    let mut q = replies.lock().unwrap();
                    if q.is_empty() {
                        (200, None)
                    } else {
                        q.remove(0)
                    }
                };
                let mut b = http::Response::builder()
                    .status(next.0)
                    .header("content-type", "application/json");
                if let Some(wait) = next.1 {
                    b = b.header("retry-after", wait);
                }
                let body = if next.0 == 200 {
                    r#"{"hostname":"http://host.test"}"#
                } else {
                    r#"{"error":"slow down","error_code":"TooManyRequests"}"#
                };
                Ok::<_, TransportError>(b.body(Bytes::from_static(body.as_bytes())).unwrap())
            }
        },
    ));
    (t, log)
}

fn gaps(log: &Script) -> Vec<Duration> {
    let log = log.lock().unwrap();
    log.windows(2).map(|w| w[1].2 - w[0].2).collect()
}

/// An HTTP date `secs` after the app's clock (LOCAL_NOW).
fn http_date(secs: u64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(LOCAL_NOW + secs))
}

#[tokio::test(start_paused = true)]
async fn retry_after_on_429_and_503_is_waited_for_on_requests_safe_to_retry() {
    let (t, log) = with_headers(vec![(429, Some("3".into())), (503, Some(http_date(5)))]);
    let app = retry_app(t, RetryPolicy::default());
    // GET location: safe to retry.
    app.routes().await.unwrap();
    let gaps = gaps(&log);
    assert_eq!(gaps.len(), 2);
    // The wait asked for (longer than the backoff of at most 400 ms), to the millisecond.
    assert!(
        gaps[0] >= Duration::from_secs(3) && gaps[0] < Duration::from_millis(3_010),
        "{gaps:?}"
    );
    assert!(
        gaps[1] >= Duration::from_secs(5) && gaps[1] < Duration::from_millis(5_010),
        "{gaps:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_beyond_the_bound_is_returned_at_once() {
    for policy in [
        RetryPolicy::default(),
        RetryPolicy::default().with_max_retry_after(Duration::from_secs(2)),
    ] {
        let wait = policy.max_retry_after() + Duration::from_secs(1);
        for status in [429, 503] {
            let (t, log) = with_headers(vec![(status, Some(wait.as_secs().to_string()))]);
            let app = retry_app(t, policy);
            let started = tokio::time::Instant::now();
            let err = app.routes().await.unwrap_err();
            assert_eq!(err.status().map(|s| s.as_u16()), Some(status));
            assert!(err.is_transient());
            assert_eq!(err.retry_after(), Some(wait));
            assert_eq!(log.lock().unwrap().len(), 1, "not retried");
            assert_eq!(started.elapsed(), Duration::ZERO, "no wait");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn requests_unsafe_to_retry_report_retry_after_without_waiting() {
    let (t, log) = with_headers(vec![(200, None), (429, Some("1".into()))]);
    let app = retry_app(t, RetryPolicy::default());
    let started = tokio::time::Instant::now();
    // location (200), then the login POST: answered 429, never sent again.
    let err = app.log_in(&Anon(false)).await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::TOO_MANY_REQUESTS));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    assert!(format!("{err:?}").contains("retry_after"));
    let methods: Vec<Method> = log.lock().unwrap().iter().map(|r| r.0.clone()).collect();
    assert_eq!(methods, [Method::GET, Method::POST]);
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn retries_stay_bounded_by_max_retries() {
    let (t, log) = with_headers(vec![(503, Some("1".into())); 5]);
    let app = retry_app(t, RetryPolicy::default());
    let err = app.routes().await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    assert_eq!(
        log.lock().unwrap().len(),
        3,
        "one try and max_retries = 2 retries"
    );
}
