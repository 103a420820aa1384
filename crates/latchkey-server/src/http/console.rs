//! The web console at `/console` (the `[console]` table; always on in `dev`): pages
//! rendered on the server with every value HTML-escaped, no script, no external
//! resource. Sign-in exchanges the admin token for a cookie (`HttpOnly`,
//! `SameSite=Strict`, `Secure` when `public_url` is `https`); every form carries the
//! session's CSRF token. Every action is an administrative operation of the domain
//! (`auth::admin`), audited as `console`.

use std::fmt::Write as _;

use axum::Router;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use latchkey_protocol::routes::percent_encode;
use serde::Deserialize;
use serde_json::Value;

use super::extract::ClientIp;
use crate::auth::admin::{Actor, AdminOp, Channel, execute};
use crate::auth::console::{self, ConsoleSession};
use crate::auth::state::SharedState;
use crate::error::Error;

/// The console's cookie.
const COOKIE: &str = "latchkey_console";
/// Users per page.
const PAGE: u32 = 50;

/// The console routes (each answers 404 when the console is off).
pub(crate) fn routes() -> Router<SharedState> {
    Router::new()
        .route("/console", get(home))
        .route("/console/login", post(login))
        .route("/console/logout", post(logout))
        .route("/console/apps/{app}", get(users_page))
        .route("/console/apps/{app}/users/{id}", get(user_page))
        .route(
            "/console/apps/{app}/users/{id}/confirm-delete",
            get(confirm_delete),
        )
        .route("/console/apps/{app}/users/{id}/{action}", post(user_action))
        .route("/console/apps/{app}/keys", get(keys_page).post(create_key))
        .route("/console/apps/{app}/keys/{id}/{action}", post(key_action))
        .route("/console/apps/{app}/outbox", get(outbox_page))
        .route("/console/apps/{app}/audit", get(audit_page))
}

/// HTML-escape `s` for text and quoted attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}\
header{background:#1f2937;color:#fff;padding:.6rem 1rem;display:flex;flex-wrap:wrap;gap:.8rem;align-items:center}\
header a{color:#fff}header form{margin-left:auto}main{padding:1rem;max-width:70rem;margin:auto}\
table{border-collapse:collapse;width:100%;background:#fff}td,th{border-bottom:1px solid #e3e6ea;padding:.4rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}\
.wrap{overflow-x:auto}.cards{display:flex;flex-wrap:wrap;gap:.6rem}.card{background:#fff;border:1px solid #e3e6ea;padding:.6rem 1rem;border-radius:6px}\
.card b{display:block;font-size:1.5rem}button,input,select,textarea{font:inherit;padding:.35rem .5rem}\
textarea{width:100%;box-sizing:border-box;font-family:ui-monospace,monospace}\
.actions{display:flex;flex-wrap:wrap;gap:.4rem}.danger{background:#b42318;color:#fff;border:0}\
.error{background:#fee4e2;border:1px solid #b42318;padding:.5rem}.ok{background:#dcfae6;border:1px solid #067647;padding:.5rem}\
code{overflow-wrap:anywhere}";

/// A whole page. `nav`: the signed-in session and the app, for the header's links.
fn page(title: &str, nav: Option<(&ConsoleSession, &str)>, body: &str) -> String {
    let mut header = String::from("<strong>latchkey console</strong>");
    if let Some((session, app)) = nav {
        let a = percent_encode(app);
        let _ = write!(
            header,
            "<a href=\"/console/apps/{a}\">Users</a><a href=\"/console/apps/{a}/keys\">API keys</a>\
             <a href=\"/console/apps/{a}/outbox\">Outbox</a><a href=\"/console/apps/{a}/audit\">Audit log</a>\
             <form method=\"post\" action=\"/console/logout\">{}<button>Log out</button></form>",
            csrf_field(session)
        );
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{} · latchkey</title><style>{STYLE}</style></head>\
         <body><header>{header}</header><main><h1>{}</h1>{body}</main></body></html>",
        esc(title),
        esc(title)
    )
}

fn csrf_field(session: &ConsoleSession) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(&session.csrf)
    )
}

/// An HTML answer with the console's security headers.
fn html(status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

fn redirect(to: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// The console is off: the same 404 as an unknown route.
fn off() -> Response {
    super::ApiError::from_status(StatusCode::NOT_FOUND).into_response()
}

fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// Why a request cannot go on: the console is off, or nobody is signed in (the
/// sign-in page), or the form's CSRF token is wrong.
enum Refusal {
    Off,
    SignIn,
    Csrf,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Off => off(),
            Refusal::SignIn => sign_in_page(StatusCode::UNAUTHORIZED, None),
            Refusal::Csrf => html(
                StatusCode::FORBIDDEN,
                page(
                    "Refused",
                    None,
                    "<p class=\"error\">The form is stale or forged (CSRF check failed). \
                     <a href=\"/console\">Back to the console</a></p>",
                ),
            ),
        }
    }
}

/// The signed-in session of a request.
fn signed_in(state: &SharedState, headers: &HeaderMap) -> Result<ConsoleSession, Refusal> {
    if state.console_ttl_secs.is_none() {
        return Err(Refusal::Off);
    }
    cookie_value(headers)
        .and_then(|c| console::session(state, c))
        .ok_or(Refusal::SignIn)
}

/// The signed-in session of a page request (an extractor).
struct Viewer(ConsoleSession);

impl axum::extract::FromRequestParts<SharedState> for Viewer {
    type Rejection = Refusal;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &SharedState,
    ) -> Result<Self, Refusal> {
        signed_in(state, &parts.headers).map(Viewer)
    }
}

/// A signed-in session whose form carries its CSRF token.
fn checked(
    state: &SharedState,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<ConsoleSession, Refusal> {
    let session = signed_in(state, headers)?;
    if console::csrf_ok(&session, csrf) {
        Ok(session)
    } else {
        Err(Refusal::Csrf)
    }
}

fn sign_in_page(status: StatusCode, error: Option<&str>) -> Response {
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", esc(e)))
        .unwrap_or_default();
    html(
        status,
        page(
            "Sign in",
            None,
            &format!(
                "{error}<form method=\"post\" action=\"/console/login\">\
                 <label>Admin token <input type=\"password\" name=\"token\" autocomplete=\"current-password\" required autofocus></label> \
                 <button>Sign in</button></form>"
            ),
        ),
    )
}

/// Run an operation as the console.
async fn op(state: &SharedState, ip: ClientIp, app: &str, op: AdminOp) -> Result<Value, Error> {
    execute(state, &Actor::new(Channel::Console, ip.0), app, op).await
}

/// An error page for a failed operation.
fn failed(session: &ConsoleSession, app: &str, e: Error) -> Response {
    let message = e.to_string();
    let status = super::ApiError::from(e).status();
    html(
        status,
        page(
            "Error",
            Some((session, app)),
            &format!("<p class=\"error\" role=\"alert\">{}</p>", esc(&message)),
        ),
    )
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// `secs` ago as a short human age.
fn age(now: i64, then: i64) -> String {
    let d = (now - then).max(0);
    match d {
        0..60 => format!("{d}s"),
        60..3600 => format!("{}m", d / 60),
        3600..86_400 => format!("{}h", d / 3600),
        _ => format!("{}d", d / 86_400),
    }
}

async fn home(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    if state.console_ttl_secs.is_none() {
        return off();
    }
    match signed_in(&state, &headers) {
        Ok(_) => {
            let mut apps: Vec<&String> = state.apps.keys().collect();
            apps.sort();
            match apps.as_slice() {
                [one] => redirect(&format!("/console/apps/{}", percent_encode(one))),
                _ => {
                    let list: String = apps
                        .iter()
                        .map(|a| {
                            format!(
                                "<li><a href=\"/console/apps/{}\">{}</a></li>",
                                percent_encode(a),
                                esc(a)
                            )
                        })
                        .collect();
                    html(
                        StatusCode::OK,
                        page("Apps", None, &format!("<ul>{list}</ul>")),
                    )
                }
            }
        }
        Err(_) => sign_in_page(StatusCode::OK, None),
    }
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(
    State(state): State<SharedState>,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let Some(ttl) = state.console_ttl_secs else {
        return off();
    };
    let Ok(Form(form)) = form else {
        return sign_in_page(StatusCode::BAD_REQUEST, Some("Enter the admin token."));
    };
    match console::sign_in(&state, &form.token, ttl) {
        Ok(session) => {
            let secure = if state
                .public_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://"))
            {
                "; Secure"
            } else {
                ""
            };
            let mut resp = redirect("/console");
            let cookie = format!(
                "{COOKIE}={}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={ttl}{secure}",
                session.cookie
            );
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp
        }
        Err(_) => sign_in_page(StatusCode::UNAUTHORIZED, Some("Wrong admin token.")),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(state): State<SharedState>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let csrf = form.map(|Form(f)| f.csrf).unwrap_or_default();
    if let Err(r) = checked(&state, &headers, &csrf) {
        return r.into_response();
    }
    let mut resp = redirect("/console");
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "latchkey_console=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    resp
}

#[derive(Deserialize, Default)]
struct UsersQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    provider: String,
    after: Option<String>,
}

async fn users_page(
    State(state): State<SharedState>,
    Viewer(session): Viewer,
    ip: ClientIp,
    Path(app): Path<String>,
    query: Result<Query<UsersQuery>, QueryRejection>,
) -> Response {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let counts = match op(&state, ip, &app, AdminOp::Counts).await {
        Ok(c) => c,
        Err(e) => return failed(&session, &app, e),
    };
    let search = AdminOp::SearchUsers {
        text: Some(q.q.clone()).filter(|t| !t.trim().is_empty()),
        provider: Some(q.provider.clone()).filter(|p| !p.is_empty()),
        after: q.after.clone().filter(|a| !a.is_empty()),
        limit: PAGE,
    };
    let found = match op(&state, ip, &app, search).await {
        Ok(f) => f,
        Err(e) => return failed(&session, &app, e),
    };
    let mut body = String::from("<section class=\"cards\" aria-label=\"counts\">");
    let _ = write!(
        body,
        "<div class=\"card\"><b id=\"count-users\">{}</b>users</div>\
         <div class=\"card\"><b id=\"count-sessions\">{}</b>active sessions</div>",
        counts["users"], counts["active_sessions"]
    );
    if let Some(logins) = counts["logins_last_hour"].as_object() {
        let total: u64 = logins.values().filter_map(Value::as_u64).sum();
        let by: Vec<String> = logins
            .iter()
            .map(|(p, n)| format!("{} {}", esc(p), n))
            .collect();
        let _ = write!(
            body,
            "<div class=\"card\"><b>{total}</b>logins in the last hour{}</div>",
            if by.is_empty() {
                String::new()
            } else {
                format!("<br><small>{}</small>", by.join(", "))
            }
        );
    }
    body.push_str("</section>");
    let providers = std::iter::once("").chain(crate::auth::ops::provider_names());
    let options: String = providers
        .map(|p| {
            format!(
                "<option value=\"{0}\"{1}>{2}</option>",
                esc(p),
                if p == q.provider { " selected" } else { "" },
                if p.is_empty() { "any provider" } else { p }
            )
        })
        .collect();
    let _ = write!(
        body,
        "<h2>Users</h2><form method=\"get\" action=\"/console/apps/{}\" class=\"actions\" role=\"search\">\
         <input type=\"search\" name=\"q\" value=\"{}\" placeholder=\"email, user id or identity id\" aria-label=\"search\">\
         <select name=\"provider\" aria-label=\"provider\">{options}</select><button>Search</button></form>",
        percent_encode(&app),
        esc(&q.q)
    );
    body.push_str("<div class=\"wrap\"><table><thead><tr><th>User</th><th>Identities</th><th>Created</th><th>State</th></tr></thead><tbody>");
    let now = state.clock.now_secs();
    let users = found["users"].as_array().cloned().unwrap_or_default();
    for u in &users {
        let id = text(u, "id");
        let identities: Vec<String> = u["identities"]
            .as_array()
            .map(|ids| {
                ids.iter()
                    .map(|i| {
                        let email = i["data"]["email"].as_str().unwrap_or_default();
                        format!(
                            "{}{}",
                            esc(text(i, "provider_type")),
                            if email.is_empty() {
                                String::new()
                            } else {
                                format!(" ({})", esc(email))
                            }
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let _ = write!(
            body,
            "<tr><td><a href=\"/console/apps/{}/users/{}\"><code>{}</code></a></td><td>{}</td><td>{} ago</td><td>{}</td></tr>",
            percent_encode(&app),
            percent_encode(id),
            esc(id),
            identities.join("<br>"),
            age(now, u["created_at"].as_i64().unwrap_or(now)),
            if u["disabled"] == Value::Bool(true) {
                "disabled"
            } else {
                "enabled"
            }
        );
    }
    if users.is_empty() {
        body.push_str("<tr><td colspan=\"4\">No users found.</td></tr>");
    }
    body.push_str("</tbody></table></div>");
    if let Some(next) = found["next"].as_str() {
        let _ = write!(
            body,
            "<p><a rel=\"next\" href=\"/console/apps/{}?q={}&amp;provider={}&amp;after={}\">Next page →</a></p>",
            percent_encode(&app),
            percent_encode(&q.q),
            percent_encode(&q.provider),
            percent_encode(next)
        );
    }
    html(
        StatusCode::OK,
        page(&format!("App {app}"), Some((&session, &app)), &body),
    )
}

async fn user_page(
    State(state): State<SharedState>,
    Viewer(session): Viewer,
    ip: ClientIp,
    Path((app, id)): Path<(String, String)>,
) -> Response {
    render_user(&state, &session, ip, &app, &id, None, None).await
}

/// The user page, with a message (`Ok`: done, `Err`: refused) and the custom data as
/// typed when it was refused.
async fn render_user(
    state: &SharedState,
    session: &ConsoleSession,
    ip: ClientIp,
    app: &str,
    id: &str,
    message: Option<Result<String, String>>,
    typed: Option<&str>,
) -> Response {
    let user = match op(state, ip, app, AdminOp::GetUser(id.to_owned())).await {
        Ok(u) => u,
        Err(e) => return failed(session, app, e),
    };
    let sessions = match op(state, ip, app, AdminOp::UserSessions(id.to_owned())).await {
        Ok(s) => s,
        Err(e) => return failed(session, app, e),
    };
    let now = state.clock.now_secs();
    let base = format!(
        "/console/apps/{}/users/{}",
        percent_encode(app),
        percent_encode(id)
    );
    let csrf = csrf_field(session);
    let mut body = String::new();
    let status = match &message {
        Some(Ok(m)) => {
            let _ = write!(body, "<p class=\"ok\" role=\"status\">{}</p>", esc(m));
            StatusCode::OK
        }
        Some(Err(m)) => {
            let _ = write!(body, "<p class=\"error\" role=\"alert\">{}</p>", esc(m));
            StatusCode::BAD_REQUEST
        }
        None => StatusCode::OK,
    };
    let disabled = user["disabled"] == Value::Bool(true);
    let _ = write!(
        body,
        "<p>State: <strong id=\"user-state\">{}</strong> · created {} ago</p><div class=\"actions\">\
         <form method=\"post\" action=\"{base}/{}\">{csrf}<button>{}</button></form>\
         <form method=\"post\" action=\"{base}/revoke\">{csrf}<button>Revoke sessions</button></form>\
         <a href=\"{base}/confirm-delete\">Delete…</a></div>",
        if disabled { "disabled" } else { "enabled" },
        age(now, user["created_at"].as_i64().unwrap_or(now)),
        if disabled { "enable" } else { "disable" },
        if disabled { "Enable" } else { "Disable" },
    );
    body.push_str("<h2>Identities</h2><div class=\"wrap\"><table><thead><tr><th>Provider</th><th>Id</th><th>Profile data</th></tr></thead><tbody>");
    for i in user["identities"].as_array().into_iter().flatten() {
        let data = i["data"]
            .as_object()
            .map(|d| {
                d.iter()
                    .map(|(k, v)| {
                        let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                        format!("{}: {}", esc(k), esc(&v))
                    })
                    .collect::<Vec<_>>()
                    .join("<br>")
            })
            .unwrap_or_default();
        let _ = write!(
            body,
            "<tr><td>{}</td><td><code>{}</code></td><td>{data}</td></tr>",
            esc(text(i, "provider_type")),
            esc(text(i, "id"))
        );
    }
    body.push_str("</tbody></table></div><h2>Sessions</h2><div class=\"wrap\"><table><thead><tr><th>Device</th><th>Provider</th><th>Age</th><th>Expires in</th></tr></thead><tbody>");
    let list = sessions.as_array().cloned().unwrap_or_default();
    for s in &list {
        let expires = s["expires_at"].as_i64().unwrap_or(now);
        let _ = write!(
            body,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(text(s, "device_id")),
            esc(s["provider_type"].as_str().unwrap_or("unknown")),
            age(now, s["created_at"].as_i64().unwrap_or(now)),
            if expires > now {
                age(expires, now)
            } else {
                "expired".to_owned()
            }
        );
    }
    if list.is_empty() {
        body.push_str("<tr><td colspan=\"4\" id=\"no-sessions\">No sessions.</td></tr>");
    }
    let custom = typed.map(str::to_owned).unwrap_or_else(|| {
        serde_json::to_string_pretty(&user["custom_data"].as_object().cloned().unwrap_or_default())
            .unwrap_or_default()
    });
    let _ = write!(
        body,
        "</tbody></table></div><h2>Custom data</h2><form method=\"post\" action=\"{base}/custom_data\">{csrf}\
         <textarea name=\"custom_data\" rows=\"8\" aria-label=\"custom data\">{}</textarea>\
         <p><button>Save custom data</button> <small>A JSON object; it is in the access token's <code>user_data</code> from the next refresh.</small></p></form>",
        esc(&custom)
    );
    html(
        status,
        page(&format!("User {id}"), Some((session, app)), &body),
    )
}

async fn confirm_delete(
    Viewer(session): Viewer,
    Path((app, id)): Path<(String, String)>,
) -> Response {
    let base = format!(
        "/console/apps/{}/users/{}",
        percent_encode(&app),
        percent_encode(&id)
    );
    let body = format!(
        "<p>Delete user <code>{}</code> with its identities, sessions and API keys? This cannot be undone.</p>\
         <div class=\"actions\"><form method=\"post\" action=\"{base}/delete\">{}<button class=\"danger\">Delete for good</button></form>\
         <a href=\"{base}\">Cancel</a></div>",
        esc(&id),
        csrf_field(&session)
    );
    html(
        StatusCode::OK,
        page("Delete user?", Some((&session, &app)), &body),
    )
}

#[derive(Deserialize)]
struct ActionForm {
    #[serde(default)]
    csrf: String,
    custom_data: Option<String>,
}

async fn user_action(
    State(state): State<SharedState>,
    headers: HeaderMap,
    ip: ClientIp,
    Path((app, id, action)): Path<(String, String, String)>,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Response {
    let form = form.map(|Form(f)| f).unwrap_or(ActionForm {
        csrf: String::new(),
        custom_data: None,
    });
    let session = match checked(&state, &headers, &form.csrf) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let (operation, done) = match action.as_str() {
        "disable" => (
            AdminOp::DisableUser(id.clone()),
            "User disabled; its sessions are revoked.",
        ),
        "enable" => (AdminOp::EnableUser(id.clone()), "User enabled."),
        "revoke" => (AdminOp::RevokeSessions(id.clone()), "Sessions revoked."),
        "delete" => (AdminOp::DeleteUser(id.clone()), "User deleted."),
        "custom_data" => {
            let typed = form.custom_data.clone().unwrap_or_default();
            match serde_json::from_str::<Value>(&typed) {
                Ok(v @ Value::Object(_)) => {
                    (AdminOp::SetCustomData(id.clone(), v), "Custom data saved.")
                }
                Ok(_) => {
                    let refused = Err("Custom data must be a JSON object.".to_owned());
                    return render_user(
                        &state,
                        &session,
                        ip,
                        &app,
                        &id,
                        Some(refused),
                        Some(&typed),
                    )
                    .await;
                }
                Err(e) => {
                    let refused = Err(format!("Not valid JSON: {e}."));
                    return render_user(
                        &state,
                        &session,
                        ip,
                        &app,
                        &id,
                        Some(refused),
                        Some(&typed),
                    )
                    .await;
                }
            }
        }
        _ => return off(),
    };
    let deleting = matches!(operation, AdminOp::DeleteUser(_));
    match op(&state, ip, &app, operation).await {
        Ok(_) if deleting => html(
            StatusCode::OK,
            page(
                "User deleted",
                Some((&session, &app)),
                &format!(
                    "<p class=\"ok\" role=\"status\">User <code>{}</code> deleted.</p><p><a href=\"/console/apps/{}\">Back to the users</a></p>",
                    esc(&id),
                    percent_encode(&app)
                ),
            ),
        ),
        Ok(_) => {
            render_user(
                &state,
                &session,
                ip,
                &app,
                &id,
                Some(Ok(done.to_owned())),
                None,
            )
            .await
        }
        Err(e @ (Error::BadRequest(_) | Error::PayloadTooLarge(_))) => {
            let typed = form.custom_data.unwrap_or_default();
            render_user(
                &state,
                &session,
                ip,
                &app,
                &id,
                Some(Err(e.to_string())),
                Some(&typed),
            )
            .await
        }
        Err(e) => failed(&session, &app, e),
    }
}

async fn keys_page(
    State(state): State<SharedState>,
    Viewer(session): Viewer,
    ip: ClientIp,
    Path(app): Path<String>,
) -> Response {
    render_keys(&state, &session, ip, &app, None).await
}

/// The server API keys page; `created`: a key just created (its secret shown once) or a
/// message.
async fn render_keys(
    state: &SharedState,
    session: &ConsoleSession,
    ip: ClientIp,
    app: &str,
    message: Option<String>,
) -> Response {
    let keys = match op(state, ip, app, AdminOp::ListServerKeys).await {
        Ok(k) => k,
        Err(e) => return failed(session, app, e),
    };
    let base = format!("/console/apps/{}/keys", percent_encode(app));
    let csrf = csrf_field(session);
    let mut body = message.unwrap_or_default();
    let _ = write!(
        body,
        "<form method=\"post\" action=\"{base}\" class=\"actions\">{csrf}\
         <input name=\"name\" required maxlength=\"200\" placeholder=\"new key name\" aria-label=\"key name\"><button>Create key</button></form>\
         <div class=\"wrap\"><table><thead><tr><th>Name</th><th>Id</th><th>State</th><th>Actions</th></tr></thead><tbody>"
    );
    let list = keys.as_array().cloned().unwrap_or_default();
    for k in &list {
        let id = text(k, "_id");
        let disabled = k["disabled"] == Value::Bool(true);
        let _ = write!(
            body,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td class=\"actions\">\
             <form method=\"post\" action=\"{base}/{}/{}\">{csrf}<button>{}</button></form>\
             <form method=\"post\" action=\"{base}/{}/delete\">{csrf}<button class=\"danger\">Delete</button></form></td></tr>",
            esc(text(k, "name")),
            esc(id),
            if disabled { "disabled" } else { "enabled" },
            percent_encode(id),
            if disabled { "enable" } else { "disable" },
            if disabled { "Enable" } else { "Disable" },
            percent_encode(id),
        );
    }
    if list.is_empty() {
        body.push_str("<tr><td colspan=\"4\">No server API keys.</td></tr>");
    }
    body.push_str("</tbody></table></div>");
    html(
        StatusCode::OK,
        page("Server API keys", Some((session, app)), &body),
    )
}

#[derive(Deserialize)]
struct KeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

async fn create_key(
    State(state): State<SharedState>,
    headers: HeaderMap,
    ip: ClientIp,
    Path(app): Path<String>,
    form: Result<Form<KeyForm>, FormRejection>,
) -> Response {
    let form = form.map(|Form(f)| f).unwrap_or(KeyForm {
        csrf: String::new(),
        name: String::new(),
    });
    let session = match checked(&state, &headers, &form.csrf) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let message = match op(
        &state,
        ip,
        &app,
        AdminOp::CreateServerKey(form.name.clone()),
    )
    .await
    {
        Ok(key) => format!(
            "<div class=\"ok\" role=\"status\"><p>Key <strong>{}</strong> created. Copy its secret now: it is not shown again.</p>\
             <p><code id=\"new-key\">{}</code></p></div>",
            esc(text(&key, "name")),
            esc(text(&key, "key"))
        ),
        Err(e) => format!(
            "<p class=\"error\" role=\"alert\">{}</p>",
            esc(&e.to_string())
        ),
    };
    render_keys(&state, &session, ip, &app, Some(message)).await
}

async fn key_action(
    State(state): State<SharedState>,
    headers: HeaderMap,
    ip: ClientIp,
    Path((app, id, action)): Path<(String, String, String)>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let csrf = form.map(|Form(f)| f.csrf).unwrap_or_default();
    let session = match checked(&state, &headers, &csrf) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let operation = match action.as_str() {
        "disable" => AdminOp::DisableServerKey(id),
        "enable" => AdminOp::EnableServerKey(id),
        "delete" => AdminOp::DeleteServerKey(id),
        _ => return off(),
    };
    let message = match op(&state, ip, &app, operation).await {
        Ok(_) => format!("<p class=\"ok\" role=\"status\">Done: {action}.</p>"),
        Err(e) => format!(
            "<p class=\"error\" role=\"alert\">{}</p>",
            esc(&e.to_string())
        ),
    };
    render_keys(&state, &session, ip, &app, Some(message)).await
}

async fn outbox_page(
    State(state): State<SharedState>,
    Viewer(session): Viewer,
    ip: ClientIp,
    Path(app): Path<String>,
) -> Response {
    let messages = match op(&state, ip, &app, AdminOp::Outbox).await {
        Ok(m) => m,
        Err(e) => return failed(&session, &app, e),
    };
    let now = state.clock.now_secs();
    let mut body = String::from(
        "<p>Confirmation and reset messages, newest first.</p><div class=\"wrap\"><table><thead><tr><th>To</th><th>Kind</th><th>Age</th><th>Message</th></tr></thead><tbody>",
    );
    let list = messages.as_array().cloned().unwrap_or_default();
    for m in list.iter().rev() {
        let text_body = text(m, "body");
        // Links are shown as links (each word that is an http(s) URL).
        let rendered: Vec<String> = text_body
            .split_whitespace()
            .map(|w| {
                if w.starts_with("http://") || w.starts_with("https://") {
                    format!("<a href=\"{0}\" rel=\"noreferrer\">{0}</a>", esc(w))
                } else {
                    esc(w)
                }
            })
            .collect();
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><strong>{}</strong><br>{}</td></tr>",
            esc(text(m, "to")),
            esc(text(m, "kind")),
            age(now, m["created_at"].as_i64().unwrap_or(now)),
            esc(text(m, "subject")),
            rendered.join(" ")
        );
    }
    if list.is_empty() {
        body.push_str("<tr><td colspan=\"4\">The outbox is empty.</td></tr>");
    }
    body.push_str("</tbody></table></div>");
    html(
        StatusCode::OK,
        page("Outbox", Some((&session, &app)), &body),
    )
}

#[derive(Deserialize, Default)]
struct AuditQuery {
    before: Option<i64>,
}

async fn audit_page(
    State(state): State<SharedState>,
    Viewer(session): Viewer,
    ip: ClientIp,
    Path(app): Path<String>,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Response {
    let before = query.map(|Query(q)| q.before).unwrap_or_default();
    let entries = match op(
        &state,
        ip,
        &app,
        AdminOp::Audit {
            before,
            limit: PAGE,
        },
    )
    .await
    {
        Ok(e) => e,
        Err(e) => return failed(&session, &app, e),
    };
    let now = state.clock.now_secs();
    let mut body = String::from(
        "<div class=\"wrap\"><table><thead><tr><th>When</th><th>Who</th><th>Action</th><th>Target</th><th>Outcome</th></tr></thead><tbody>",
    );
    let list = entries.as_array().cloned().unwrap_or_default();
    for e in &list {
        let _ = write!(
            body,
            "<tr><td>{} ago</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            age(now, e["at"].as_i64().unwrap_or(now)),
            esc(text(e, "actor")),
            esc(text(e, "action")),
            esc(text(e, "target")),
            esc(text(e, "outcome"))
        );
    }
    if list.is_empty() {
        body.push_str("<tr><td colspan=\"5\">No administrative actions yet.</td></tr>");
    }
    body.push_str("</tbody></table></div>");
    if list.len() == PAGE as usize
        && let Some(last) = list.last().and_then(|e| e["seq"].as_i64())
    {
        let _ = write!(
            body,
            "<p><a rel=\"next\" href=\"/console/apps/{}/audit?before={last}\">Older →</a></p>",
            percent_encode(&app)
        );
    }
    html(
        StatusCode::OK,
        page("Audit log", Some((&session, &app)), &body),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_encoding() {
        assert_eq!(
            esc("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(percent_encode("a b/c?d"), "a%20b%2Fc%3Fd");
    }

    #[test]
    fn cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; latchkey_console=v.w.x; b=2"),
        );
        assert_eq!(cookie_value(&h), Some("v.w.x"));
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("latchkey_consolex=1"),
        );
        assert_eq!(cookie_value(&h), None);
    }

    #[test]
    fn ages() {
        assert_eq!(age(100, 70), "30s");
        assert_eq!(age(10_000, 0), "2h");
        assert_eq!(age(0, 10), "0s");
    }
}
