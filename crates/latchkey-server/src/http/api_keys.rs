//! User API key routes (`/api/client/v2.0/auth/api_keys...`, protocol.md §6).
//!
//! They are not app-scoped: the app comes from the bearer token, which must be a
//! REFRESH token (see [`ApiKeyCaller`]).

use axum::extract::{Path, State};
use axum::response::Response;
use http::StatusCode;
use serde_json::Value;

use super::error::ApiError;
use super::extract::{ApiKeyCaller, EJson};
use super::response::{json_response, no_content, ok_json};
use crate::auth::api_keys;
use crate::auth::state::SharedState;
use crate::error::Error;

/// `POST /auth/api_keys` `{"name": ...}`: 201 with the key, whose secret is shown once.
pub(crate) async fn create(
    State(state): State<SharedState>,
    ApiKeyCaller(auth): ApiKeyCaller,
    EJson(body): EJson,
) -> Result<Response, ApiError> {
    let name = match body.get("name") {
        Some(Value::String(s)) => s,
        Some(_) => return Err(Error::bad_request("'name' must be a string").into()),
        None => return Err(Error::bad_request("missing required field 'name'").into()),
    };
    let created = api_keys::create_user_key(&state, &auth, name).await?;
    Ok(json_response(StatusCode::CREATED, &created))
}

/// `GET /auth/api_keys`: the caller's keys, oldest first, without secrets.
pub(crate) async fn list(
    State(state): State<SharedState>,
    ApiKeyCaller(auth): ApiKeyCaller,
) -> Result<Response, ApiError> {
    Ok(ok_json(&api_keys::list_user_keys(&state, &auth).await?))
}

/// `GET /auth/api_keys/{key_id}`.
pub(crate) async fn get_one(
    State(state): State<SharedState>,
    Path(key_id): Path<String>,
    ApiKeyCaller(auth): ApiKeyCaller,
) -> Result<Response, ApiError> {
    Ok(ok_json(
        &api_keys::get_user_key(&state, &auth, &key_id).await?,
    ))
}

/// `DELETE /auth/api_keys/{key_id}`: 204.
pub(crate) async fn delete(
    State(state): State<SharedState>,
    Path(key_id): Path<String>,
    ApiKeyCaller(auth): ApiKeyCaller,
) -> Result<Response, ApiError> {
    api_keys::delete_user_key(&state, &auth, &key_id).await?;
    Ok(no_content())
}

/// `PUT /auth/api_keys/{key_id}/enable`: 204.
pub(crate) async fn enable(
    State(state): State<SharedState>,
    Path(key_id): Path<String>,
    ApiKeyCaller(auth): ApiKeyCaller,
) -> Result<Response, ApiError> {
    api_keys::set_user_key_disabled(&state, &auth, &key_id, false).await?;
    Ok(no_content())
}

/// `PUT /auth/api_keys/{key_id}/disable`: 204.
pub(crate) async fn disable(
    State(state): State<SharedState>,
    Path(key_id): Path<String>,
    ApiKeyCaller(auth): ApiKeyCaller,
) -> Result<Response, ApiError> {
    api_keys::set_user_key_disabled(&state, &auth, &key_id, true).await?;
    Ok(no_content())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use serde_json::{Value, json};

    use crate::auth::api_keys::{
        MAX_SERVER_KEYS, create_server_key, delete_server_key, list_server_keys,
    };
    use crate::auth::state::{AppRuntime, ServerState};
    use crate::clock::Clock;
    use crate::config::{AppConfig, Config};
    use crate::error::Error;
    use crate::providers::api_key::KEY_LEN;
    use crate::store::{SqliteStore, Store};

    /// A served router and its state, for driving library functions and HTTP together.
    async fn serve() -> (Arc<ServerState>, Arc<AppRuntime>, String) {
        let mut config = Config::dev();
        config.apps =
            vec![AppConfig::new("srv", "0123456789abcdef0123456789abcdef").with_all_providers()];
        let app = Arc::new(AppRuntime::new(config.apps[0].clone()).unwrap());
        let mut apps = HashMap::new();
        apps.insert("srv".to_owned(), app.clone());
        let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        let store: Arc<dyn Store> = Arc::new(store);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ServerState::new(
            &config,
            apps,
            store,
            Clock::system(),
            addr,
        ));
        let router = crate::http::router(
            state.clone(),
            crate::http::cors::CorsPolicy::new(&config.apps),
            crate::http::metrics::Metrics::start(),
            false,
        );
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        (state, app, format!("http://{addr}/api/client/v2.0"))
    }

    async fn post_json(url: &str, bearer: Option<&str>, body: Value) -> (u16, Value) {
        let mut req = reqwest::Client::new().post(url).json(&body);
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn get_json(url: &str, bearer: &str) -> (u16, Value) {
        let resp = reqwest::Client::new()
            .get(url)
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn server_keys_log_in_as_their_server_user() {
        let (state, app, base) = serve().await;
        let login = format!("{base}/app/srv/auth/providers/api-key/login");
        let created = create_server_key(&state, &app, "backend").await.unwrap();
        let key = created
            .key
            .clone()
            .expect("secret on create")
            .into_exposed();
        assert_eq!(key.len(), KEY_LEN);
        assert!(!format!("{created:?}").contains(&key));
        // 409 APIKeyAlreadyExists (see `http::error`).
        assert_eq!(
            create_server_key(&state, &app, "backend")
                .await
                .unwrap_err(),
            Error::ApiKeyNameTaken
        );
        assert!(create_server_key(&state, &app, "").await.is_err());

        let (status, v) = post_json(&login, None, json!({"key": key})).await;
        assert_eq!(status, 200, "{v}");
        let user_id = v["user_id"].as_str().unwrap().to_owned();
        let (status, again) = post_json(&login, None, json!({"key": key})).await;
        assert_eq!(status, 200);
        assert_eq!(again["user_id"], user_id.as_str(), "same server user");
        let access = v["access_token"].as_str().unwrap();
        let (status, p) = get_json(&format!("{base}/auth/profile"), access).await;
        assert_eq!(status, 200, "{p}");
        assert_eq!(p["type"], "server");
        assert_eq!(p["data"]["name"], "backend");
        assert_eq!(p["identities"][0]["provider_type"], "api-key");
        assert_eq!(p["identities"][0]["id"], created.id.as_str());

        // A server user cannot create user keys, and does not see server keys.
        let refresh = v["refresh_token"].as_str().unwrap();
        let (status, e) = post_json(
            &format!("{base}/auth/api_keys"),
            Some(refresh),
            json!({"name": "x"}),
        )
        .await;
        assert_eq!(status, 400, "{e}");
        let (status, list) = get_json(&format!("{base}/auth/api_keys"), refresh).await;
        assert_eq!((status, list), (200, json!([])));
        let (status, e) = get_json(&format!("{base}/auth/api_keys/{}", created.id), refresh).await;
        assert_eq!(status, 404, "{e}");
        assert_eq!(e["error_code"], "APIKeyNotFound");

        let listed = list_server_keys(&state, &app).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].key, None);
        assert_eq!(listed[0].name, "backend");

        // Deleting the key deletes its user and sessions.
        assert!(delete_server_key(&state, &app, "nope").await.is_err());
        delete_server_key(&state, &app, &created.id).await.unwrap();
        assert!(delete_server_key(&state, &app, &created.id).await.is_err());
        let (status, e) = post_json(&login, None, json!({"key": key})).await;
        assert_eq!(status, 401, "{e}");
        assert_eq!(e["error_code"], "AuthError");
        assert!(
            state
                .store
                .get_user("srv", &user_id)
                .await
                .unwrap()
                .is_none()
        );
        let (status, _) =
            post_json(&format!("{base}/auth/session"), Some(refresh), json!({})).await;
        assert_eq!(status, 401);
        // The name is free again.
        create_server_key(&state, &app, "backend").await.unwrap();
    }

    #[tokio::test]
    async fn server_key_limit() {
        let (state, app, _) = serve().await;
        for i in 0..MAX_SERVER_KEYS {
            create_server_key(&state, &app, &format!("k{i}"))
                .await
                .unwrap();
        }
        let e = create_server_key(&state, &app, "one-too-many")
            .await
            .unwrap_err();
        assert!(e.to_string().contains("at most 100"), "{e:?}");
        assert_eq!(list_server_keys(&state, &app).await.unwrap().len(), 100);
    }
}
