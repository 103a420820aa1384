//! Faults injected between the SDK and the real server (`latchkey_testkit::faults`):
//! refused, reset, stalled, truncated, garbage and `5xx` answers. Every one is a typed
//! error (never a panic), none logs anybody out, and when the network recovers, any
//! number of callers that need a fresh token share one refresh.

use std::time::Duration;

use futures::future::join_all;
use latchkey::events::UserEvent;
use latchkey::{App, Credentials, ErrorKind, RetryPolicy, User, UserState};
use latchkey_testkit::TestServer;
use latchkey_testkit::faults::{Fault, FaultTransport, Rule};
use latchkey_transport_reqwest::ReqwestTransport;

use crate::kit::drain;

const SESSION: &str = "/auth/session";
const PROFILE: &str = "/auth/profile";

/// An App on `dir` (the default on-disk store) that talks to `server` through `faults`,
/// with a short timeout (for [`Fault::Stall`]; long enough for a loaded machine's real
/// answers) and one quick retry.
fn app_through(
    server: &TestServer,
    faults: &FaultTransport<ReqwestTransport>,
    dir: &std::path::Path,
) -> App {
    App::builder(server.app_id())
        .base_url(server.url())
        .storage_dir(dir)
        .transport(faults.clone())
        .request_timeout(Duration::from_millis(1500))
        .retry_policy(
            RetryPolicy::new()
                .with_max_retries(1)
                .with_initial_backoff(Duration::from_millis(5))
                .with_max_backoff(Duration::from_millis(20)),
        )
        .build()
        .expect("App::build")
}

/// The error kind each fault must surface as.
fn expected_kind(fault: Fault) -> ErrorKind {
    match fault {
        Fault::Refuse | Fault::Reset => ErrorKind::Transport,
        Fault::Stall => ErrorKind::Timeout,
        Fault::Truncate | Fault::Garbage => ErrorKind::Decode,
        _ => ErrorKind::Server,
    }
}

fn assert_still_logged_in(app: &App, user: &User, refresh_token: &str, context: &str) {
    assert_eq!(user.state(), UserState::LoggedIn, "{context}");
    assert_eq!(
        user.refresh_token().as_deref(),
        Some(refresh_token),
        "{context}"
    );
    assert_eq!(
        app.current_user().map(|u| u.id().to_owned()).as_deref(),
        Some(user.id()),
        "{context}"
    );
}

#[tokio::test]
async fn every_fault_is_a_typed_error_and_logs_nobody_out() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultTransport::new(ReqwestTransport::new());
    let app = app_through(&server, &faults, dir.path());
    let mut events = app.subscribe();
    app.email_password_auth()
        .register_user("f@example.com", "s3cret-pass")
        .await
        .unwrap();
    let user = app
        .log_in(Credentials::email_password("f@example.com", "s3cret-pass"))
        .await
        .unwrap();
    let refresh_token = user.refresh_token().unwrap();

    for fault in Fault::ALL {
        // On an access-token call (the profile).
        faults.add(Rule::new(fault).on(PROFILE));
        let err = user.refresh_profile().await.unwrap_err();
        assert_eq!(
            err.kind(),
            expected_kind(fault),
            "{fault:?} on profile: {err:?}"
        );
        assert!(!err.is_session_expired(), "{fault:?}: {err:?}");
        assert_still_logged_in(
            &app,
            &user,
            &refresh_token,
            &format!("{fault:?} on profile"),
        );
        faults.clear();

        // On the refresh itself.
        faults.add(Rule::new(fault).on(SESSION));
        let err = user.refresh_access_token().await.unwrap_err();
        assert_eq!(
            err.kind(),
            expected_kind(fault),
            "{fault:?} on refresh: {err:?}"
        );
        assert!(!err.is_session_expired(), "{fault:?}: {err:?}");
        assert_still_logged_in(
            &app,
            &user,
            &refresh_token,
            &format!("{fault:?} on refresh"),
        );
        faults.clear();

        // Recovered: the same user works at once.
        user.refresh_profile().await.unwrap();
    }
    assert!(faults.injected() >= 2 * Fault::ALL.len());
    let seen = drain(&mut events);
    assert!(
        !seen.iter().any(|e| matches!(
            e,
            UserEvent::LoggedOut { .. }
                | UserEvent::SessionExpired { .. }
                | UserEvent::Removed { .. }
        )),
        "{seen:?}"
    );
    drop(user);
    drop(app);

    // The store on disk still has the user logged in: a restarted program finds it.
    let restarted = app_through(&server, &faults, dir.path());
    let again = restarted
        .current_user()
        .expect("the user is still in the store");
    assert_eq!(again.state(), UserState::LoggedIn);
    assert_eq!(again.refresh_token(), Some(refresh_token));
    again.refresh_profile().await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn many_callers_share_one_refresh_after_recovery() {
    const CALLERS: usize = 24;
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultTransport::new(ReqwestTransport::new());
    let app = app_through(&server, &faults, dir.path());
    let user = app.log_in(Credentials::anonymous()).await.unwrap();
    let refresh_token = user.refresh_token().unwrap();
    let old_access = user.access_token().unwrap();
    // Every access token issued so far is now expired on the server: each call needs a
    // refresh.
    server.advance_clock(Duration::from_secs(31 * 60));

    for storm in [Fault::Reset, Fault::Status(503), Fault::Garbage] {
        faults.add(Rule::new(storm).on(SESSION));
        let results = join_all((0..CALLERS).map(|_| user.refresh_profile())).await;
        for r in results {
            let err = r.expect_err("no refresh can succeed during the storm");
            assert!(!err.is_session_expired(), "{storm:?}: {err:?}");
        }
        assert_still_logged_in(&app, &user, &refresh_token, &format!("{storm:?} storm"));
        assert_eq!(user.access_token().as_deref(), Some(old_access.as_str()));
        faults.clear();
    }

    faults.reset_counters();
    let results = join_all((0..CALLERS).map(|_| user.refresh_profile())).await;
    for r in results {
        r.expect("the network recovered");
    }
    assert_eq!(faults.forwarded(SESSION), 1, "exactly one refresh");
    assert_ne!(user.access_token().unwrap(), old_access);
    assert_eq!(faults.injected(), 0);
    server.shutdown().await;
}
