//! The housekeeping task: expired sessions, stale throttle buckets and inactive
//! anonymous users are purged in the background (on either engine).

use std::time::{Duration, Instant};

use crate::common::*;

/// Wait until `done` holds (the task runs every second here), at most 10 s.
async fn eventually<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done().await {
        assert!(Instant::now() < deadline, "housekeeping did not: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn expired_sessions_and_inactive_anonymous_users_are_purged() {
    let mut c = config();
    c.housekeeping.interval_secs = 1;
    c.housekeeping.anonymous_user_max_idle_secs = 2000;
    // The shortest session the configuration accepts (30 minutes).
    c.apps[0].refresh_token_ttl_secs = 1800;
    c.throttle.max_failures_per_ip = 1;
    let h = start_with(c).await;
    let store = h.server.store().clone();
    let anon = h.anon().await;
    let named = h.signed_up("keep@example.com", "secret123").await;
    // One failure from this client: the next is refused.
    h.userpass("keep@example.com", "wrong")
        .await
        .assert_error(401, "InvalidPassword");
    h.userpass("keep@example.com", "wrong")
        .await
        .assert_error(429, "TooManyRequests");

    // Nothing is due yet: a run keeps everything.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    h.refresh(&anon.refresh).await.assert_ok_json();
    assert!(store.get_user(APP, &anon.user_id).await.unwrap().is_some());

    // 4000 s later: both sessions expired, the anonymous user idle, the window over.
    h.server.clock().advance(Duration::from_secs(4000));
    eventually("delete the idle anonymous user", || async {
        store.get_user(APP, &anon.user_id).await.unwrap().is_none()
    })
    .await;
    // The named user stays, without its expired session.
    assert!(store.get_user(APP, &named.user_id).await.unwrap().is_some());
    assert_eq!(
        store
            .delete_user_sessions(APP, &named.user_id)
            .await
            .unwrap(),
        0
    );
    // The throttle window is over (and its bucket purged): a failure counts afresh.
    h.userpass("keep@example.com", "wrong")
        .await
        .assert_error(401, "InvalidPassword");
    h.server.shutdown().await;
}

#[tokio::test]
async fn housekeeping_can_be_turned_off() {
    let mut c = config();
    c.housekeeping.interval_secs = 0;
    c.housekeeping.anonymous_user_max_idle_secs = 1;
    let h = start_with(c).await;
    let anon = h.anon().await;
    h.server.clock().advance(Duration::from_secs(10));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        h.server
            .store()
            .get_user(APP, &anon.user_id)
            .await
            .unwrap()
            .is_some()
    );
    h.server.shutdown().await;
}
