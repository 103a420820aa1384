//! User API keys: the six refresh-token routes and login with `api-key`.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

fn keys_url(h: &Harness) -> String {
    h.url(&format!("{PREFIX}/auth/api_keys"))
}

fn key_url(h: &Harness, id: &str) -> String {
    format!("{}/{id}", keys_url(h))
}

async fn create(h: &Harness, bearer: &str, name: &str) -> Reply {
    h.send(
        Method::POST,
        &keys_url(h),
        Some(bearer),
        Some(&json!({ "name": name }).to_string()),
    )
    .await
}

/// A 201 create answer: `{_id, key, name, disabled}`.
fn created(r: &Reply) -> Value {
    assert_eq!(r.status.as_u16(), 201, "{}", r.text);
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    r.json()
}

/// A confirmed email/password user, logged in.
async fn named_user(h: &Harness, email: &str) -> Tokens {
    h.register(email, "secret123").await.assert_no_content();
    Tokens::from(&h.userpass(email, "secret123").await.assert_ok_json())
}

async fn key_login(h: &Harness, key: &str) -> Reply {
    h.login("api-key", json!({ "key": key })).await
}

#[tokio::test]
async fn create_list_get_and_login_as_owner() {
    let h = start().await;
    let u = named_user(&h, "keys@example.com").await;
    let v = created(&create(&h, &u.refresh, "laptop").await);
    let id = v["_id"].as_str().expect("plain string _id");
    assert!(is_hex24(id), "{id}");
    let key = v["key"].as_str().expect("key on create");
    assert_eq!(key.len(), 64);
    assert!(key.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(v["name"], "laptop");
    assert_eq!(v["disabled"], false);
    assert_eq!(v.as_object().unwrap().len(), 4);

    // GET one and GET all never show the secret.
    let one = h
        .send(Method::GET, &key_url(&h, id), Some(&u.refresh), None)
        .await;
    let one_v = one.assert_ok_json();
    assert_eq!(
        one_v,
        json!({"_id": id, "name": "laptop", "disabled": false})
    );
    assert!(!one.text.contains(key));
    let all = h
        .send(Method::GET, &keys_url(&h), Some(&u.refresh), None)
        .await;
    assert_eq!(
        all.assert_ok_json(),
        json!([{"_id": id, "name": "laptop", "disabled": false}])
    );
    assert!(!all.text.contains(key));

    // The key logs in as its owner, with an api-key identity named by the key id.
    let t = Tokens::from(&key_login(&h, key).await.assert_ok_json());
    assert_eq!(t.user_id, u.user_id);
    let p = h.profile(&t.access).await.assert_ok_json();
    assert_eq!(p["type"], "normal");
    assert_eq!(p["user_id"], u.user_id.as_str());
    let ids = p["identities"].as_array().unwrap();
    assert!(
        ids.iter()
            .any(|i| i["provider_type"] == "api-key" && i["id"] == id),
        "{p}"
    );
    // core's body shape (provider first, options ignored) works too.
    let v = key_login_core(&h, key).await.assert_ok_json();
    assert_eq!(v["user_id"], u.user_id.as_str());
}

async fn key_login_core(h: &Harness, key: &str) -> Reply {
    h.login(
        "api-key",
        json!({"provider": "api-key", "key": key, "options": {"device": {"sdkVersion": "14"}}}),
    )
    .await
}

#[tokio::test]
async fn empty_list_is_an_array() {
    let h = start().await;
    let u = named_user(&h, "empty@example.com").await;
    let r = h
        .send(Method::GET, &keys_url(&h), Some(&u.refresh), None)
        .await;
    assert_eq!(r.assert_ok_json(), json!([]));
}

#[tokio::test]
async fn routes_need_the_refresh_token() {
    let h = start().await;
    let u = named_user(&h, "bearer@example.com").await;
    let id = created(&create(&h, &u.refresh, "k").await)["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({"name": "k2"}).to_string();
    let cases: Vec<(Method, String, Option<&str>)> = vec![
        (Method::POST, keys_url(&h), Some(body.as_str())),
        (Method::GET, keys_url(&h), None),
        (Method::GET, key_url(&h, &id), None),
        (Method::DELETE, key_url(&h, &id), None),
        (Method::PUT, format!("{}/enable", key_url(&h, &id)), None),
        (Method::PUT, format!("{}/disable", key_url(&h, &id)), None),
    ];
    for (method, url, body) in cases {
        h.send(method.clone(), &url, Some(&u.access), body)
            .await
            .assert_error(401, "InvalidSession");
        h.send(method.clone(), &url, None, body)
            .await
            .assert_error(401, "MissingAuthReq");
        h.send(method, &url, Some("not.a.token"), body)
            .await
            .assert_error(401, "InvalidSession");
    }
    // Nothing changed.
    let r = h
        .send(Method::GET, &key_url(&h, &id), Some(&u.refresh), None)
        .await
        .assert_ok_json();
    assert_eq!(r["disabled"], false);
}

#[tokio::test]
async fn other_users_keys_and_unknown_ids_are_not_found() {
    let h = start().await;
    let a = named_user(&h, "a@example.com").await;
    let b = named_user(&h, "b@example.com").await;
    let id = created(&create(&h, &a.refresh, "a-key").await)["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let unknown = "65f0c0ffee0000000000abcd".to_owned();
    for target in [
        id.as_str(),
        unknown.as_str(),
        "not-an-id",
        "zzzzzzzzzzzzzzzzzzzzzzzz",
    ] {
        for (method, url) in [
            (Method::GET, key_url(&h, target)),
            (Method::DELETE, key_url(&h, target)),
            (Method::PUT, format!("{}/enable", key_url(&h, target))),
            (Method::PUT, format!("{}/disable", key_url(&h, target))),
        ] {
            let m = h
                .send(method, &url, Some(&b.refresh), None)
                .await
                .assert_error(404, "APIKeyNotFound");
            assert_eq!(m, "API key not found");
        }
    }
    // B's list does not show A's key; A's key is untouched.
    let r = h
        .send(Method::GET, &keys_url(&h), Some(&b.refresh), None)
        .await;
    assert_eq!(r.assert_ok_json(), json!([]));
    let r = h
        .send(Method::GET, &key_url(&h, &id), Some(&a.refresh), None)
        .await
        .assert_ok_json();
    assert_eq!(r["disabled"], false);
}

#[tokio::test]
async fn names_are_validated_and_unique_per_user() {
    let h = start().await;
    let a = named_user(&h, "names@example.com").await;
    let b = named_user(&h, "names2@example.com").await;
    created(&create(&h, &a.refresh, "dup").await);
    let m = create(&h, &a.refresh, "dup")
        .await
        .assert_error(409, "APIKeyAlreadyExists");
    assert!(m.contains("already exists"), "{m}");
    // Another user may use the same name.
    created(&create(&h, &b.refresh, "dup").await);
    create(&h, &a.refresh, "")
        .await
        .assert_error(400, "BadRequest");
    create(&h, &a.refresh, &"x".repeat(129))
        .await
        .assert_error(400, "BadRequest");
    created(&create(&h, &a.refresh, &"x".repeat(128)).await);
    for body in ["{}", r#"{"name": 5}"#, "[1]", "{nope"] {
        h.send(Method::POST, &keys_url(&h), Some(&a.refresh), Some(body))
            .await
            .assert_error(400, "BadRequest");
    }
}

#[tokio::test]
async fn at_most_twenty_keys_per_user() {
    let h = start().await;
    let u = named_user(&h, "limit@example.com").await;
    for i in 0..20 {
        created(&create(&h, &u.refresh, &format!("k{i}")).await);
    }
    let m = create(&h, &u.refresh, "k20")
        .await
        .assert_error(400, "BadRequest");
    assert!(m.contains("at most 20"), "{m}");
    let all = h
        .send(Method::GET, &keys_url(&h), Some(&u.refresh), None)
        .await
        .assert_ok_json();
    assert_eq!(all.as_array().unwrap().len(), 20);
    // Deleting one makes room again.
    let first = all[0]["_id"].as_str().unwrap();
    h.send(Method::DELETE, &key_url(&h, first), Some(&u.refresh), None)
        .await
        .assert_no_content();
    created(&create(&h, &u.refresh, "k20").await);
}

#[tokio::test]
async fn anonymous_users_cannot_create_keys() {
    let h = start().await;
    let a = h.anon().await;
    let m = create(&h, &a.refresh, "nope")
        .await
        .assert_error(400, "BadRequest");
    assert!(m.contains("anonymous"), "{m}");
    // Listing works (and is empty).
    let r = h
        .send(Method::GET, &keys_url(&h), Some(&a.refresh), None)
        .await;
    assert_eq!(r.assert_ok_json(), json!([]));
}

#[tokio::test]
async fn disabled_key_is_refused_until_enabled() {
    let h = start().await;
    let u = named_user(&h, "disable@example.com").await;
    let v = created(&create(&h, &u.refresh, "k").await);
    let (id, key) = (v["_id"].as_str().unwrap(), v["key"].as_str().unwrap());
    h.send(
        Method::PUT,
        &format!("{}/disable", key_url(&h, id)),
        Some(&u.refresh),
        Some(""),
    )
    .await
    .assert_no_content();
    let r = h
        .send(Method::GET, &key_url(&h, id), Some(&u.refresh), None)
        .await
        .assert_ok_json();
    assert_eq!(r["disabled"], true);
    let m = key_login(&h, key).await.assert_error(401, "AuthError");
    assert_eq!(m, "invalid API key");
    h.send(
        Method::PUT,
        &format!("{}/enable", key_url(&h, id)),
        Some(&u.refresh),
        None,
    )
    .await
    .assert_no_content();
    let t = Tokens::from(&key_login(&h, key).await.assert_ok_json());
    assert_eq!(t.user_id, u.user_id);
}

#[tokio::test]
async fn deleted_key_is_refused() {
    let h = start().await;
    let u = named_user(&h, "delete@example.com").await;
    let v = created(&create(&h, &u.refresh, "k").await);
    let (id, key) = (v["_id"].as_str().unwrap(), v["key"].as_str().unwrap());
    key_login(&h, key).await.assert_ok_json();
    h.send(Method::DELETE, &key_url(&h, id), Some(&u.refresh), None)
        .await
        .assert_no_content();
    key_login(&h, key).await.assert_error(401, "AuthError");
    h.send(Method::DELETE, &key_url(&h, id), Some(&u.refresh), None)
        .await
        .assert_error(404, "APIKeyNotFound");
    // The api-key identity is gone from the owner's profile.
    let p = h.profile(&u.access).await.assert_ok_json();
    assert!(
        p["identities"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["provider_type"] != "api-key"),
        "{p}"
    );
    // The owner still logs in normally; the name is free again.
    h.userpass("delete@example.com", "secret123")
        .await
        .assert_ok_json();
    created(&create(&h, &u.refresh, "k").await);
}

#[tokio::test]
async fn wrong_or_malformed_keys_are_refused() {
    let h = start().await;
    let u = named_user(&h, "wrong@example.com").await;
    let key = created(&create(&h, &u.refresh, "k").await)["key"]
        .as_str()
        .unwrap()
        .to_owned();
    // Right id prefix, wrong secret.
    let mut tampered = key.clone();
    let last = if tampered.ends_with('a') { "b" } else { "a" };
    tampered.replace_range(63.., last);
    for bad in [
        tampered.as_str(),
        &key[..63],
        "",
        "short",
        &format!("{key}x"),
    ] {
        key_login(&h, bad).await.assert_error(401, "AuthError");
    }
    h.login("api-key", json!({}))
        .await
        .assert_error(400, "BadRequest");
    h.login("api-key", json!({"key": 5}))
        .await
        .assert_error(400, "BadRequest");
}

#[tokio::test]
async fn deleting_the_owner_removes_its_keys() {
    let h = start().await;
    let u = named_user(&h, "gone@example.com").await;
    let key = created(&create(&h, &u.refresh, "k").await)["key"]
        .as_str()
        .unwrap()
        .to_owned();
    h.send(
        Method::DELETE,
        &h.url(&format!("{PREFIX}/auth/delete")),
        Some(&u.access),
        None,
    )
    .await
    .assert_no_content();
    key_login(&h, &key).await.assert_error(401, "AuthError");
}

#[tokio::test]
async fn disabled_owner_cannot_log_in_with_a_key() {
    let h = start().await;
    let u = named_user(&h, "blocked@example.com").await;
    let key = created(&create(&h, &u.refresh, "k").await)["key"]
        .as_str()
        .unwrap()
        .to_owned();
    h.server
        .store()
        .set_user_disabled(APP, &u.user_id, true)
        .await
        .unwrap();
    let r = key_login(&h, &key).await;
    assert!(r.status.is_client_error(), "{}", r.text);
    assert_eq!(r.json()["error_code"], "UserDisabled");
}

#[tokio::test]
async fn disabled_provider_refuses_keys() {
    let mut c = config();
    c.apps[0].providers.api_key.enabled = false;
    let h = start_with(c).await;
    let u = named_user(&h, "off@example.com").await;
    let r = create(&h, &u.refresh, "k").await;
    assert_eq!(r.status.as_u16(), 404, "{}", r.text);
    assert_eq!(r.json()["error_code"], "AuthProviderNotFound");
    key_login(&h, &"a".repeat(64))
        .await
        .assert_error(404, "AuthProviderNotFound");
}

#[tokio::test]
async fn keys_are_stored_hashed() {
    let h = start().await;
    let u = named_user(&h, "hashed@example.com").await;
    let v = created(&create(&h, &u.refresh, "k").await);
    let (id, key) = (v["_id"].as_str().unwrap(), v["key"].as_str().unwrap());
    let rec = h
        .server
        .store()
        .get_api_key(APP, id)
        .await
        .unwrap()
        .expect("stored");
    assert_ne!(rec.hash.expose(), key);
    assert!(!rec.hash.expose().contains(&key[24..]));
    assert_eq!(rec.hash.len(), 64);
    assert!(
        !format!("{rec:?}").contains(rec.hash.expose()),
        "hash redacted"
    );
}

/// PUT `…/api_keys/{id}/{action}` or DELETE `…/api_keys/{id}` with the owner's token.
async fn manage(h: &Harness, bearer: &str, id: &str, action: &str) -> Reply {
    match action {
        "delete" => {
            h.send(Method::DELETE, &key_url(h, id), Some(bearer), None)
                .await
        }
        _ => {
            h.send(
                Method::PUT,
                &format!("{}/{action}", key_url(h, id)),
                Some(bearer),
                None,
            )
            .await
        }
    }
}

#[tokio::test]
async fn disabling_or_deleting_a_key_ends_its_sessions() {
    for action in ["disable", "delete"] {
        let h = start().await;
        let owner = named_user(&h, "owner@example.com").await;
        let a = created(&create(&h, &owner.refresh, "a").await);
        let b = created(&create(&h, &owner.refresh, "b").await);
        let with_a = Tokens::from(
            &key_login(&h, a["key"].as_str().unwrap())
                .await
                .assert_ok_json(),
        );
        let with_b = Tokens::from(
            &key_login(&h, b["key"].as_str().unwrap())
                .await
                .assert_ok_json(),
        );
        assert_eq!(with_a.user_id, owner.user_id);
        h.refresh(&with_a.refresh).await.assert_ok_json();

        manage(&h, &owner.refresh, a["_id"].as_str().unwrap(), action)
            .await
            .assert_no_content();
        // The key's session is gone, refresh and access tokens alike ...
        h.refresh(&with_a.refresh)
            .await
            .assert_error(401, "InvalidSession");
        h.profile(&with_a.access)
            .await
            .assert_error(401, "InvalidSession");
        // ... while the owner's other sessions survive.
        h.refresh(&owner.refresh).await.assert_ok_json();
        h.refresh(&with_b.refresh).await.assert_ok_json();
        h.profile(&owner.access).await.assert_ok_json();
    }
}

#[tokio::test]
async fn sessions_of_an_api_key_cannot_create_keys() {
    let h = start().await;
    let owner = named_user(&h, "minter@example.com").await;
    let k = created(&create(&h, &owner.refresh, "k").await);
    let with_key = Tokens::from(
        &key_login(&h, k["key"].as_str().unwrap())
            .await
            .assert_ok_json(),
    );
    let msg = create(&h, &with_key.refresh, "more")
        .await
        .assert_error(400, "BadRequest");
    assert!(msg.contains("logged in with an API key"), "{msg}");
    // The owner's own session still can.
    created(&create(&h, &owner.refresh, "more").await);
}
