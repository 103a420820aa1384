//! Transport conformance: the same checks, run against every HTTP adapter.
//!
//! Each check in [`checks`] is an `async fn(SharedTransport)`; the
//! [`conformance_suite!`] macro instantiates one `#[tokio::test]` per check and
//! per adapter, so a failure names both (`hyper::redirect_308_keeps_method_and_body`).
//! Servers are wiremock instances or raw TCP listeners on 127.0.0.1.

mod checks;
mod raw;

use latchkey_transport::SharedTransport;
use latchkey_transport_hyper::HyperTransport;
use latchkey_transport_reqwest::ReqwestTransport;

macro_rules! conformance_suite {
    ($($adapter:ident => $make:expr;)+) => {
        $(
            mod $adapter {
                use super::*;

                fn transport() -> SharedTransport {
                    SharedTransport::new($make)
                }

                conformance_suite!(@tests
                    methods_arrive,
                    request_headers_arrive,
                    request_body_arrives_exactly,
                    empty_post_body_arrives_empty,
                    query_string_arrives,
                    status_codes_are_responses,
                    no_content_has_empty_body,
                    response_headers_are_exact,
                    large_body_round_trip,
                    body_over_the_limit_is_permanent_protocol,
                    chunked_body_over_the_limit_is_permanent_protocol,
                    body_at_the_limit_is_read,
                    head_response_is_not_limited,
                    timeout_is_transient_timeout,
                    timeout_covers_a_stalled_body,
                    fast_response_within_timeout,
                    connection_refused_is_transient_connect,
                    redirect_308_keeps_method_and_body,
                    redirect_303_and_302_post_become_get,
                    redirect_same_origin_keeps_authorization,
                    redirect_cross_origin_drops_authorization,
                    redirect_loop_is_permanent_error,
                    accept_then_close_is_transient,
                    torn_response_body_is_transient_io,
                    tls_handshake_failure_is_permanent_tls,
                    invalid_url_is_permanent,
                    concurrent_requests_share_transport,
                    usable_after_error,
                );
            }
        )+
    };
    (@tests $($check:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                crate::checks::$check(transport()).await;
            }
        )+
    };
}

conformance_suite! {
    reqwest => ReqwestTransport::new();
    hyper => HyperTransport::new();
}
