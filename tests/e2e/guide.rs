//! The official Realm SDK "Authenticate Users" guides (Node.js, Swift, Kotlin pages of
//! `mongodb/docs-realm`: Authenticate Users, Manage Email/Password Users, Create & Manage
//! User API Keys, Link User Identities, Custom User Data, User Metadata, Multi-User
//! Applications, Create & Delete Users), translated name for name into the `latchkey`
//! facade and run against the real server.
//!
//! Each test is one guide section. The guide's call is quoted in a comment above its
//! translation. The translated code uses the facade only (`latchkey::...`); test plumbing
//! (servers, the admin API, the outbox, webhooks) is marked `// (test setup)`.

use http::Method;
use latchkey::events::UserEvent;
use latchkey::{App, Credentials, UserState};
use latchkey_testkit::{FullStack, TestServer};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::kit::{admin_ok, drain, mails};
use crate::support::app;

type Result<T = ()> = std::result::Result<T, latchkey::Error>;

/// `app.emailPasswordAuth.registerUser({ email, password })` then
/// `app.logIn(Realm.Credentials.emailPassword(email, password))`.
async fn register_and_log_in(app: &App, email: &str, password: &str) -> Result<latchkey::User> {
    app.email_password_auth()
        .register_user(email, password)
        .await?;
    app.log_in(Credentials::email_password(email, password))
        .await
}

// ---------------------------------------------------------------------------------------
// Authenticate Users: log in with each provider
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn log_in_anonymous() -> Result {
    let stack = FullStack::start().await; // (test setup)
    // const app = new Realm.App({ id: APP_ID });
    let app = app(stack.server());

    // const credentials = Realm.Credentials.anonymous();
    // const user = await app.logIn(credentials);
    let credentials = Credentials::anonymous();
    let user = app.log_in(credentials).await?;
    // console.assert(user.id === app.currentUser.id);
    assert_eq!(Some(user.id()), app.current_user().as_ref().map(|u| u.id()));

    // Kotlin: app.login(Credentials.anonymous(reuseExisting = false))
    let other = app.log_in(Credentials::anonymous_no_reuse()).await?;
    assert_ne!(other.id(), user.id());
    // Kotlin: user.provider == AuthenticationProvider.ANONYMOUS
    assert_eq!(other.provider_type().as_deref(), Some("anon-user"));
    Ok(())
}

#[tokio::test]
async fn log_in_email_password() -> Result {
    let stack = FullStack::start().await; // (test setup)
    let app = app(stack.server());
    app.email_password_auth()
        .register_user("someone@example.com", "Pa55w0rd!")
        .await?; // (test setup)

    // const credentials = Realm.Credentials.emailPassword("someone@example.com", "Pa55w0rd!");
    // const user = await app.logIn(credentials);
    let credentials = Credentials::email_password("someone@example.com", "Pa55w0rd!");
    let user = app.log_in(credentials).await?;
    // console.log("Successfully logged in!", user.id);
    assert!(!user.id().is_empty());

    // try { await app.logIn(...) } catch (err) { console.error("Failed to log in", err.message); }
    match app
        .log_in(Credentials::email_password("someone@example.com", "wrong"))
        .await
    {
        Ok(_) => panic!("a wrong password logs in"),
        Err(err) => assert!(!err.to_string().is_empty()),
    }
    Ok(())
}

#[tokio::test]
async fn log_in_api_key() -> Result {
    let stack = FullStack::start().await; // (test setup)
    let server = stack.server();
    // (test setup) a server API key, as `process.env.appServicesApiKey` would hold.
    let created = admin_ok(
        server,
        stack.admin_token(),
        Method::POST,
        "/api_keys",
        Some(json!({ "name": "backend" })),
    )
    .await;
    let api_key = created["key"].as_str().expect("key").to_owned();
    let app = app(server);

    // const credentials = Realm.Credentials.apiKey(apiKey);
    // user = await app.logIn(credentials);
    let credentials = Credentials::api_key(api_key);
    let user = app.log_in(credentials).await?;
    assert_eq!(user.user_type().as_deref(), Some("server"));
    Ok(())
}

#[tokio::test]
async fn log_in_custom_jwt() -> Result {
    let stack = FullStack::start().await; // (test setup)
    let app = app(stack.server());
    // const jwt = await authenticateWithExternalSystem();
    let jwt = stack.custom_jwt("ext-1", "Jay Walker", "jay@example.com");

    // const credentials = Realm.Credentials.jwt(jwt);
    // user = await app.logIn(credentials);
    let credentials = Credentials::jwt(jwt);
    let user = app.log_in(credentials).await?;
    assert_eq!(user.profile().name().as_deref(), Some("Jay Walker"));
    Ok(())
}

#[tokio::test]
async fn log_in_custom_function() -> Result {
    let stack = FullStack::start().await; // (test setup)
    let app = app(stack.server());

    // const credentials = Realm.Credentials.function({ username: "ilovemongodb" });
    // const user = await app.logIn(credentials);
    let credentials = Credentials::function(json!({ "username": "ilovemongodb" }));
    let user = app.log_in(credentials).await?;
    assert_eq!(user.identities()[0].provider_type, "custom-function");
    Ok(())
}

#[tokio::test]
async fn log_in_facebook() -> Result {
    let stack = FullStack::start().await; // (test setup)
    let app = app(stack.server());
    // const { accessToken } = FB.getAuthResponse();
    let access_token = stack.facebook_token("10001", "Fay Book", "fay@example.com");

    // const credentials = Realm.Credentials.facebook(accessToken);
    // app.logIn(credentials).then((user) => console.log(`Logged in with id: ${user.id}`));
    let credentials = Credentials::facebook(access_token);
    let user = app.log_in(credentials).await?;
    assert_eq!(user.profile().email().as_deref(), Some("fay@example.com"));
    Ok(())
}

#[tokio::test]
async fn log_in_google() -> Result {
    let stack = FullStack::start().await; // (test setup)
    let app = app(stack.server());
    let id_token = stack.google_id_token("g-1", "gina@example.com", "Gina Google");
    let auth_code = stack.google_auth_code("g-1", "gina@example.com", "Gina Google");

    // Node:  Realm.Credentials.google({ idToken: tokens.id_token })
    // Swift: Credentials.googleId(token: idToken)
    let user = app.log_in(Credentials::google_id_token(id_token)).await?;
    // Node:  Realm.Credentials.google({ authCode })
    // Swift: Credentials.google(serverAuthCode: serverAuthCode)
    let same = app.log_in(Credentials::google_auth_code(auth_code)).await?;
    assert_eq!(user.id(), same.id());
    Ok(())
}

#[tokio::test]
async fn log_in_apple() -> Result {
    let stack = FullStack::start().await; // (test setup)
    let app = app(stack.server());
    // AppleID.auth.signIn().then(({ id_token }) => ...
    let id_token = stack.apple_id_token("apple-1", "ann@privaterelay.appleid.com");

    // const credentials = Realm.Credentials.apple(id_token);
    // return app.logIn(credentials);
    let credentials = Credentials::apple(id_token);
    let user = app.log_in(credentials).await?;
    assert_eq!(user.state(), UserState::LoggedIn);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Authenticate Users: offline login, current user, access tokens, log out
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn offline_login_and_current_user() -> Result {
    let stack = FullStack::start().await; // (test setup)
    let server = stack.server();
    let dir = tempfile::tempdir().expect("temp dir"); // (test setup)
    let build = || {
        App::builder(server.app_id())
            .base_url(server.url())
            .storage_dir(dir.path())
            .build()
    };
    let app = build()?;
    register_and_log_in(&app, "off@example.com", "Pa55w0rd!").await?;

    // Node (Offline Login):
    //   const app = new Realm.App({ id: APP_ID });
    //   if (app.currentUser) { user = app.currentUser } else { user = await app.logIn(credentials) }
    // Kotlin: val user = app.currentUser
    let restarted = build()?;
    let user = match restarted.current_user() {
        Some(user) => user,
        None => {
            restarted
                .log_in(Credentials::email_password("off@example.com", "Pa55w0rd!"))
                .await?
        }
    };
    assert_eq!(user.profile().email().as_deref(), Some("off@example.com"));
    Ok(())
}

#[tokio::test]
async fn get_a_user_access_token() -> Result {
    let stack = FullStack::start().await; // (test setup)
    let app = app(stack.server());
    let user = app.log_in(Credentials::anonymous()).await?;

    // async function getValidAccessToken(user) {
    //   await user.refreshCustomData();
    //   return user.accessToken;
    // }
    async fn get_valid_access_token(user: &latchkey::User) -> Result<Option<String>> {
        user.refresh_custom_data().await?;
        Ok(user.access_token())
    }
    let token = get_valid_access_token(&user).await?;
    assert!(token.is_some());

    // Idiomatic: one call that refreshes only when needed.
    let valid = user.valid_access_token().await?;
    assert_eq!(Some(valid), user.access_token());

    // Kotlin: user.accessToken / user.refreshToken
    assert!(user.access_token().is_some());
    assert!(user.refresh_token().is_some());
    // Swift: user.refreshCustomData() to "refresh the user's auth session"; explicit:
    user.refresh_access_token().await?;
    Ok(())
}

#[tokio::test]
async fn log_a_user_out() -> Result {
    let stack = FullStack::start().await; // (test setup)
    let app = app(stack.server());
    let joe = register_and_log_in(&app, "joe@example.com", "passw0rd").await?;
    let emma = register_and_log_in(&app, "emma@example.com", "pa55word").await?;

    // await app.currentUser.logOut();
    app.current_user()
        .expect("a current user")
        .log_out()
        .await?;
    assert_eq!(emma.state(), UserState::LoggedOut);

    // await app.allUsers[app.currentUser.id].logOut();   (log out a specific user by id)
    let id = app.current_user().expect("joe").id().to_owned();
    let specific = app
        .all_users()
        .into_iter()
        .find(|u| u.id() == id)
        .expect("on the device");
    specific.log_out().await?;

    // Kotlin: user.logOut(); user.state == User.State.LOGGED_OUT
    assert_eq!(joe.state(), UserState::LoggedOut);
    assert!(app.current_user().is_none());
    // The access token is removed after the user logs out.
    assert!(joe.access_token().is_none());
    Ok(())
}

#[tokio::test]
async fn authentication_changes_as_a_flow() -> Result {
    let stack = FullStack::start().await; // (test setup)
    let app = app(stack.server());

    // Kotlin: app.authenticationChangeAsFlow().collect { change -> when (change) { ... } }
    let mut changes = app.subscribe();
    let user = register_and_log_in(&app, "flow@example.com", "Pa55w0rd!").await?;
    user.log_out().await?;
    app.remove_user(&user).await?;

    let mut seen = Vec::new();
    while let Ok(change) = changes.try_recv() {
        match change {
            UserEvent::LoggedIn { user_id } => seen.push(("LoggedIn", user_id)),
            UserEvent::LoggedOut { user_id } => seen.push(("LoggedOut", user_id)),
            UserEvent::Removed { user_id } => seen.push(("Removed", user_id)),
            _ => {}
        }
    }
    let id = user.id().to_owned();
    assert_eq!(
        seen,
        vec![
            ("LoggedIn", id.clone()),
            ("LoggedOut", id.clone()),
            ("Removed", id)
        ]
    );

    // Node (realm-js): user.addListener(() => ...) — per user: filter the app's events.
    let mut events = app.subscribe();
    let other = app.log_in(Credentials::anonymous()).await?;
    let mine: Vec<UserEvent> = drain(&mut events)
        .into_iter()
        .filter(|e| e.user_id() == Some(other.id()))
        .collect();
    assert!(!mine.is_empty());
    Ok(())
}

// ---------------------------------------------------------------------------------------
// User metadata (profile), identities, custom user data
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn user_metadata_and_identities() -> Result {
    let stack = FullStack::start().await; // (test setup)
    let app = app(stack.server());
    app.email_password_auth()
        .register_user("meta@example.com", "Pa55w0rd!")
        .await?; // (test setup)

    // await app.logIn(Realm.Credentials.emailPassword(email, password));
    // const userEmail = app.currentUser.profile.email;
    app.log_in(Credentials::email_password("meta@example.com", "Pa55w0rd!"))
        .await?;
    let user_email = app.current_user().expect("logged in").profile().email();
    assert_eq!(user_email.as_deref(), Some("meta@example.com"));

    // Kotlin: user.profileAsBsonDocument()
    let user = app.current_user().expect("logged in");
    let document = user.profile().data().clone();
    assert_eq!(document["email"], "meta@example.com");

    // user.identities  →  [{ id, providerType }]
    for identity in user.identities() {
        assert_eq!(identity.provider_type, "local-userpass");
        assert!(!identity.id.is_empty());
    }
    // Swift: user.refreshProfile  (re-read it from the server)
    user.refresh_profile().await?;
    Ok(())
}

#[tokio::test]
async fn custom_user_data() -> Result {
    let stack = FullStack::start().await; // (test setup)
    let app = app(stack.server());
    let user = register_and_log_in(&app, "test@test.com", "Pa55w0rd!").await?;
    // (test setup) what the guide does with a MongoClient `updateOne`:
    admin_ok(
        stack.server(),
        stack.admin_token(),
        Method::PUT,
        &format!("/users/{}/custom_data", user.id()),
        Some(json!({ "favoriteColor": "pink" })),
    )
    .await;

    // const customUserData = await user.refreshCustomData();
    user.refresh_custom_data().await?;
    let custom_user_data = user.custom_data::<serde_json::Value>()?;
    assert_eq!(
        custom_user_data.as_ref().map(|d| &d["favoriteColor"]),
        Some(&json!("pink"))
    );

    // const customUserData = user.customData;
    let custom_user_data: Option<serde_json::Value> = user.custom_data()?;
    assert!(custom_user_data.is_some());

    // Kotlin: user.customDataAsBsonDocument()
    let document = user.custom_data::<serde_json::Map<String, serde_json::Value>>()?;
    assert_eq!(document.expect("set")["favoriteColor"], "pink");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Link User Identities
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn link_user_identities() -> Result {
    let stack = FullStack::start().await; // (test setup)
    let app = app(stack.server());
    let (email, password) = ("link@example.com", "Pa55w0rd!");

    // val user = app.login(Credentials.anonymous())
    let user = app.log_in(Credentials::anonymous()).await?;
    // app.emailPasswordAuth.registerUser(email, password)
    app.email_password_auth()
        .register_user(email, password)
        .await?;
    // user.linkCredentials(Credentials.emailPassword(email, password))
    user.link_credentials(Credentials::email_password(email, password))
        .await?;
    assert_eq!(user.identities().len(), 2);

    // Any other provider links the same way (Node: user.linkCredentials(credentials)).
    let google = stack.google_id_token("g-link", "link@example.com", "Lin K");
    user.link_credentials(Credentials::google_id_token(google))
        .await?;
    assert_eq!(user.identities().len(), 3);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Multi-User Applications, Create & Delete Users
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn multi_user_applications() -> Result {
    let stack = FullStack::start().await; // (test setup)
    let app = app(stack.server());
    for (email, password) in [
        ("joe@example.com", "passw0rd"),
        ("emma@example.com", "pa55word"),
    ] {
        app.email_password_auth()
            .register_user(email, password)
            .await?; // (test setup)
    }

    // Add a new user to the device:
    // const joe = await app.logIn(Realm.Credentials.emailPassword("joe@example.com", "passw0rd"));
    // console.assert(joe.id === app.currentUser.id);
    let joe_credentials = Credentials::email_password("joe@example.com", "passw0rd");
    let joe = app.log_in(joe_credentials).await?;
    assert_eq!(app.current_user().as_ref(), Some(&joe));
    let emma_credentials = Credentials::email_password("emma@example.com", "pa55word");
    let emma = app.log_in(emma_credentials).await?;
    assert_eq!(app.current_user().as_ref(), Some(&emma));

    // List all users on the device:
    // app.allUsers.forEach((user) => console.log(`... ${user.isLoggedIn ? "logged in" : "logged out"}`));
    let mut lines = Vec::new();
    for user in app.all_users() {
        let state = if user.state() == UserState::LoggedIn {
            "logged in"
        } else {
            "logged out"
        };
        lines.push(format!("User with id {} is {state}", user.id()));
    }
    assert_eq!(lines.len(), 2);

    // Switch the active user:
    // const authenticatedUsers = app.allUsers.filter((user) => user.isLoggedIn);
    // app.switchUser(user1); console.assert(app.currentUser.id === user1.id);
    let authenticated_users: Vec<_> = app
        .all_users()
        .into_iter()
        .filter(|user| user.state() == UserState::LoggedIn)
        .collect();
    let user1 = &authenticated_users[0];
    let user2 = &authenticated_users[1];
    app.switch_user(user1)?;
    assert_eq!(app.current_user().as_ref(), Some(user1));
    app.switch_user(user2)?;
    assert_eq!(app.current_user().as_ref(), Some(user2));

    // Remove a user from the device:
    // const user = app.currentUser; await app.removeUser(user);
    // Kotlin: user.remove()
    let user = app.current_user().expect("current");
    app.remove_user(&user).await?;
    if let Some(current) = app.current_user() {
        assert_ne!(current.id(), user.id());
    }
    assert!(app.all_users().iter().all(|u| u.id() != user.id()));
    // Kotlin: user.state == User.State.REMOVED
    assert_eq!(user.state(), UserState::Removed);
    Ok(())
}

#[tokio::test]
async fn delete_a_user() -> Result {
    let stack = FullStack::start().await; // (test setup)
    let app = app(stack.server());
    let user = register_and_log_in(&app, "gone@example.com", "Pa55w0rd!").await?;

    // await app.deleteUser(app.currentUser);
    // Kotlin / Swift: user.delete()
    app.delete_user(&app.current_user().expect("logged in"))
        .await?;
    assert_eq!(user.state(), UserState::Removed);

    // Same credentials, after signing up again: a new user id.
    let again = register_and_log_in(&app, "gone@example.com", "Pa55w0rd!").await?;
    assert_ne!(again.id(), user.id());
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Manage Email/Password Users
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn manage_email_password_users_by_email() -> Result {
    // (test setup) a server that sends confirmation emails (to its outbox).
    let mut config = TestServer::config();
    config.apps[0].providers.local_userpass.auto_confirm = false;
    let admin = config
        .admin_token
        .clone()
        .expect("admin token")
        .into_exposed();
    let server = TestServer::start_with(config).await;
    let app = app(&server);
    let email = "someone@example.com";

    // await app.emailPasswordAuth.registerUser({ email: "someone@example.com", password: "passw0rd" });
    app.email_password_auth()
        .register_user(email, "passw0rd")
        .await?;

    // await app.emailPasswordAuth.resendConfirmationEmail({ email });
    app.email_password_auth()
        .resend_confirmation_email(email)
        .await?;

    // const token = params.get("token"); const tokenId = params.get("tokenId");
    let mail = mails(&server, &admin, email, "confirm")
        .await
        .pop()
        .expect("mail");
    let (token, token_id) = (mail.token, mail.token_id);
    // await app.emailPasswordAuth.confirmUser({ token, tokenId });
    app.email_password_auth()
        .confirm_user(token, token_id)
        .await?;
    app.log_in(Credentials::email_password(email, "passw0rd"))
        .await?;

    // await app.emailPasswordAuth.sendResetPasswordEmail({ email });
    app.email_password_auth()
        .send_reset_password_email(email)
        .await?;
    let mail = mails(&server, &admin, email, "reset")
        .await
        .pop()
        .expect("mail");
    let (token, token_id) = (mail.token, mail.token_id);
    // await app.emailPasswordAuth.resetPassword({ password: "newPassw0rd", token, tokenId });
    app.email_password_auth()
        .reset_password(token, token_id, "newPassw0rd")
        .await?;
    app.log_in(Credentials::email_password(email, "newPassw0rd"))
        .await?;
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn manage_email_password_users_by_function() -> Result {
    // (test setup) a confirmation function that answers "pending" once, then "success",
    // and a reset function that answers "success" (webhooks).
    let hook = MockServer::start().await;
    let answer =
        |status: &str| ResponseTemplate::new(200).set_body_json(json!({ "status": status }));
    Mock::given(method("POST"))
        .and(path("/confirm"))
        .respond_with(answer("pending"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&hook)
        .await;
    for route in ["/confirm", "/reset"] {
        Mock::given(method("POST"))
            .and(path(route))
            .respond_with(answer("success"))
            .mount(&hook)
            .await;
    }
    let mut config = TestServer::config();
    let userpass = &mut config.apps[0].providers.local_userpass;
    userpass.auto_confirm = false;
    userpass.confirmation_webhook_url = Some(format!("{}/confirm", hook.uri()));
    userpass.reset_webhook_url = Some(format!("{}/reset", hook.uri()));
    let server = TestServer::start_with(config).await;
    let app = app(&server);

    app.email_password_auth()
        .register_user("someone@example.com", "passw0rd")
        .await?;
    // Pending: cannot log in yet.
    assert!(
        app.log_in(Credentials::email_password(
            "someone@example.com",
            "passw0rd"
        ))
        .await
        .is_err()
    );
    // const email = "someone@example.com";
    // await app.emailPasswordAuth.retryCustomConfirmation({ email });
    let email = "someone@example.com";
    app.email_password_auth()
        .retry_custom_confirmation(email)
        .await?;
    app.log_in(Credentials::email_password(email, "passw0rd"))
        .await?;

    // const email = "joe.jasper@example.com"; const password = "newPassw0rd"; const args = [];
    // await app.emailPasswordAuth.callResetPasswordFunction({ email, password }, args);
    let password = "newPassw0rd";
    let args: [&str; 0] = [];
    app.email_password_auth()
        .call_reset_password_function(email, password, args)
        .await?;
    app.log_in(Credentials::email_password(email, password))
        .await?;
    server.shutdown().await;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Create & Manage User API Keys
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn manage_user_api_keys() -> Result {
    let stack = FullStack::start().await; // (test setup)
    let app = app(stack.server());
    register_and_log_in(&app, "keys@example.com", "Pa55w0rd!").await?;

    // const user = app.currentUser;
    // const key = await user.apiKeys.create("apiKeyName");
    let user = app.current_user().expect("logged in");
    let key = user.api_keys().create("apiKeyName").await?;
    // The secret (`key.key`) is returned only now.
    let secret = key
        .key
        .as_ref()
        .expect("shown on create")
        .expose()
        .to_owned();

    // const keys = await user.apiKeys.fetchAll();
    // const key = await user.apiKeys.fetch("5eb5931548d79bc784adf46e");
    let keys = user.api_keys().fetch_all().await?;
    let fetched = user.api_keys().fetch(&keys[0].id).await?;
    assert_eq!(fetched.name, "apiKeyName");
    assert!(fetched.key.is_none());

    // const keyId = apiKeys[0]["_id"];
    // await user.apiKeys.disable(keyId);  await user.apiKeys.enable(keyId);
    let api_keys = user.api_keys().fetch_all().await?;
    let key_id = api_keys[0].id.clone();
    user.api_keys().disable(&key_id).await?;
    assert!(user.api_keys().fetch(&key_id).await?.disabled);
    user.api_keys().enable(&key_id).await?;

    // A server process logs in with the user API key (Node: Realm.Credentials.apiKey(key)):
    // the same user. (On the *same* App this would swap the user's session for the key's
    // session, which deleting the key then ends.)
    let server_process = crate::support::app(stack.server());
    let same = server_process.log_in(Credentials::api_key(secret)).await?;
    assert_eq!(same.id(), user.id());

    // await user.apiKeys.delete(keyId);
    user.api_keys().delete(&key_id).await?;
    assert!(user.api_keys().fetch_all().await?.is_empty());
    Ok(())
}
