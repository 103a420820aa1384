//! The web console over raw HTTP: off unless enabled, nothing without signing in,
//! CSRF on actions, everything escaped. (The browser tests are tests/compat/console.js.)

use reqwest::redirect::Policy;
use serde_json::json;

use crate::common::*;

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// Sign in; the cookie header value and the page's CSRF token.
async fn sign_in(h: &Harness) -> (String, String) {
    let admin = admin_token(h);
    let resp = browser()
        .post(h.url("/console/login"))
        .form(&[("token", admin.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let set = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.contains("HttpOnly")
            && set.contains("SameSite=Strict")
            && set.contains("Path=/console"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "no TLS here: {set}");
    let cookie = set.split(';').next().unwrap().to_owned();
    let page = browser()
        .get(h.url(&format!("/console/apps/{APP}")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF field")
        .to_owned();
    (cookie, csrf)
}

const ADMIN_TOKEN: &str = "console-admin-token-0123456789";

fn admin_token(_: &Harness) -> String {
    ADMIN_TOKEN.to_owned()
}

fn console_config() -> latchkey_server::Config {
    let mut c = config();
    c.admin_token = Some(ADMIN_TOKEN.into());
    c
}

#[tokio::test]
async fn off_without_the_table_or_without_an_admin_token() {
    let mut c = console_config();
    c.console.enabled = false;
    let h = start_with(c).await;
    let resp = browser().get(h.url("/console")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let mut c = console_config();
    c.admin_token = None;
    let h = start_with(c).await;
    let resp = browser()
        .post(h.url("/console/login"))
        .form(&[("token", "anything-anything")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn nothing_without_a_valid_session_and_actions_need_the_csrf_token() {
    let h = start_with(console_config()).await;
    let user = h.anon().await;
    for path in [
        format!("/console/apps/{APP}"),
        format!("/console/apps/{APP}/users/{}", user.user_id),
        format!("/console/apps/{APP}/keys"),
        format!("/console/apps/{APP}/audit"),
    ] {
        for cookie in [
            "",
            "latchkey_console=1.2.3",
            "latchkey_console=99999999999.x.forged",
        ] {
            let resp = browser()
                .get(h.url(&path))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 401, "{path} {cookie}");
            assert!(!resp.text().await.unwrap().contains(&user.user_id));
        }
    }
    let wrong = browser()
        .post(h.url("/console/login"))
        .form(&[("token", "wrong-token-wrong-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());

    let (cookie, csrf) = sign_in(&h).await;
    let disable = format!("/console/apps/{APP}/users/{}/disable", user.user_id);
    for token in ["", "forged", &csrf[..csrf.len() - 1]] {
        let resp = browser()
            .post(h.url(&disable))
            .header("cookie", &cookie)
            .form(&[("csrf", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "csrf {token:?}");
    }
    let user_now = h
        .server
        .store()
        .get_user(APP, &user.user_id)
        .await
        .unwrap()
        .unwrap();
    assert!(!user_now.disabled, "refused actions change nothing");
    let resp = browser()
        .post(h.url(&disable))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let user_now = h
        .server
        .store()
        .get_user(APP, &user.user_id)
        .await
        .unwrap()
        .unwrap();
    assert!(user_now.disabled);
    let audit = h.server.store().list_audit(APP, None, 10).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].actor, "console 127.0.0.1");
    assert_eq!(audit[0].action, "disable_user");
}

#[tokio::test]
async fn pages_escape_what_users_and_operators_typed() {
    let h = start_with(console_config()).await;
    let email = "<script>alert(1)</script>@example.com";
    h.register(email, "Pa55w0rd!").await;
    let tokens = h.userpass_tokens(email, "Pa55w0rd!").await;
    let (cookie, csrf) = sign_in(&h).await;
    let resp = browser()
        .post(h.url(&format!(
            "/console/apps/{APP}/users/{}/custom_data",
            tokens.user_id
        )))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            (
                "custom_data",
                r#"{"x": "</textarea><img src=x onerror=alert(1)>"}"#,
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    let page = resp.text().await.unwrap();
    assert!(
        !page.contains("<img src=x") && page.contains("&lt;/textarea&gt;&lt;img"),
        "{page}"
    );
    for path in [
        format!("/console/apps/{APP}?q=%3Cscript%3E"),
        format!("/console/apps/{APP}/users/{}", tokens.user_id),
    ] {
        let page = browser()
            .get(h.url(&path))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!page.contains("<script>"), "{path}: {page}");
        assert!(page.contains("&lt;script&gt;"), "{path}");
    }
    let user = h
        .server
        .store()
        .get_user(APP, &tokens.user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        user.custom_data,
        Some(
            json!({"x": "</textarea><img src=x onerror=alert(1)>"})
                .as_object()
                .unwrap()
                .clone()
        )
    );
}
