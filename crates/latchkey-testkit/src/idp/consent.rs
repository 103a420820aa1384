//! The authorization (consent) step the fakes share: an OAuth 2.0 authorization
//! request, the consent page a browser test clicks through, and the redirect back to
//! the client (a `302` with `code`/`state` in the query, or Apple's `form_post`: an
//! auto-submitting HTML form).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// An authorization request, as the client sent it to the authorization endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuthorizationRequest {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) state: String,
    pub(crate) scope: String,
    pub(crate) code_challenge: Option<String>,
    pub(crate) form_post: bool,
}

impl AuthorizationRequest {
    /// Parse the query of an authorization request. `Err` names what is wrong.
    pub(crate) fn from_query(q: &HashMap<String, String>) -> Result<Self, String> {
        let get = |k: &str| q.get(k).filter(|v| !v.is_empty()).cloned();
        if get("response_type").as_deref() != Some("code") {
            return Err("response_type must be code".to_owned());
        }
        let code_challenge = get("code_challenge");
        if code_challenge.is_some() && get("code_challenge_method").as_deref() != Some("S256") {
            return Err("code_challenge_method must be S256".to_owned());
        }
        Ok(AuthorizationRequest {
            client_id: get("client_id").ok_or("missing client_id")?,
            redirect_uri: get("redirect_uri").ok_or("missing redirect_uri")?,
            state: get("state").ok_or("missing state")?,
            scope: get("scope").unwrap_or_default(),
            code_challenge,
            form_post: get("response_mode").as_deref() == Some("form_post"),
        })
    }

    /// Parse a whole authorization URL.
    pub(crate) fn from_url(url: &str) -> Result<Self, String> {
        let url = url::Url::parse(url).map_err(|e| format!("bad authorization URL: {e}"))?;
        let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
        Self::from_query(&q)
    }
}

/// Where the provider sends the browser back: a `GET` of `url`, or (form_post) a
/// `POST` of `form` to `url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRedirect {
    /// The client's redirect URI (for a `GET`, with `code`/`error` and `state`).
    pub url: String,
    /// `Some`: the fields of the form POST (`response_mode=form_post`).
    pub form: Option<Vec<(String, String)>>,
}

impl ProviderRedirect {
    /// The redirect for `request` with `Ok(code)` or `Err(oauth error)`.
    pub(crate) fn new(request: &AuthorizationRequest, outcome: Result<&str, &str>) -> Self {
        let mut fields = vec![match outcome {
            Ok(code) => ("code".to_owned(), code.to_owned()),
            Err(error) => ("error".to_owned(), error.to_owned()),
        }];
        fields.push(("state".to_owned(), request.state.clone()));
        if request.form_post {
            return ProviderRedirect {
                url: request.redirect_uri.clone(),
                form: Some(fields),
            };
        }
        let mut url = url::Url::parse(&request.redirect_uri).expect("validated redirect_uri");
        url.query_pairs_mut().extend_pairs(fields);
        ProviderRedirect {
            url: url.into(),
            form: None,
        }
    }

    /// The browser's answer: a `302`, or a page that posts the form at once.
    pub(crate) fn into_response(self) -> Response {
        match self.form {
            None => (StatusCode::FOUND, [(header::LOCATION, self.url)]).into_response(),
            Some(fields) => {
                let inputs: String = fields
                    .iter()
                    .map(|(k, v)| {
                        format!(
                            r#"<input type="hidden" name="{}" value="{}">"#,
                            escape(k),
                            escape(v)
                        )
                    })
                    .collect();
                Html(format!(
                    r#"<!doctype html><html><body onload="document.forms[0].submit()"><form method="post" action="{}">{inputs}<noscript><button>Continue</button></noscript></form></body></html>"#,
                    escape(&self.url)
                ))
                .into_response()
            }
        }
    }
}

/// Whether `verifier` matches an S256 `challenge` (no challenge: nothing to check).
pub(crate) fn pkce_matches(challenge: Option<&str>, verifier: Option<&str>) -> bool {
    match (challenge, verifier) {
        (None, _) => true,
        (Some(challenge), Some(verifier)) => {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(Sha256::digest(verifier.as_bytes()))
                == challenge
        }
        (Some(_), None) => false,
    }
}

/// The consent page of pending request `id`: the user's fields (prefilled) and
/// "Allow" / "Deny" buttons, posting to `/consent`.
fn page(provider: &str, id: &str, request: &AuthorizationRequest) -> Response {
    Html(format!(
        r#"<!doctype html><html><head><title>{provider} sign-in (fake)</title></head><body>
<h1>{provider}: sign in to {client}</h1><p>Scopes: {scope}</p>
<form method="post" action="/consent">
<input type="hidden" name="request" value="{id}">
<label>User id <input name="sub" id="sub" value="fake-user-1"></label>
<label>Email <input name="email" id="email" value="someone@example.com"></label>
<label>Name <input name="name" id="name" value="Some One"></label>
<button id="allow" name="decision" value="allow">Allow</button>
<button id="deny" name="decision" value="deny">Deny</button>
</form></body></html>"#,
        provider = escape(provider),
        client = escape(&request.client_id),
        scope = escape(&request.scope),
        id = escape(id),
    ))
    .into_response()
}

/// The user named on the consent form (empty fields are `None`).
#[derive(Debug, Default)]
pub(crate) struct ConsentUser {
    pub(crate) sub: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) name: Option<String>,
}

/// Authorization requests waiting at a consent page, by page id.
#[derive(Debug, Default)]
pub(crate) struct PendingRequests(Mutex<HashMap<String, AuthorizationRequest>>);

impl PendingRequests {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, AuthorizationRequest>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The authorization endpoint: the consent page of `provider` for a valid request
    /// of a client that `known` accepts, else a `400`.
    pub(crate) fn open(
        &self,
        provider: &str,
        query: &HashMap<String, String>,
        known: impl Fn(&str) -> bool,
    ) -> Response {
        let request = match AuthorizationRequest::from_query(query) {
            Ok(r) => r,
            Err(why) => return bad_request(&why),
        };
        if !known(&request.client_id) {
            return bad_request("unknown client_id");
        }
        let id = super::serve::random_alnum(24);
        let page = page(provider, &id, &request);
        self.lock().insert(id, request);
        page
    }

    /// The consent form (`request`, `decision`, `sub`, `email`, `name`): back to the
    /// client with `grant`'s code, or `error=access_denied`.
    pub(crate) fn decide(
        &self,
        form: &HashMap<String, String>,
        grant: impl FnOnce(&AuthorizationRequest, ConsentUser) -> Result<String, String>,
    ) -> Response {
        let id = form.get("request").cloned().unwrap_or_default();
        let Some(request) = self.lock().remove(&id) else {
            return bad_request("unknown or finished authorization request");
        };
        if form.get("decision").map(String::as_str) != Some("allow") {
            return ProviderRedirect::new(&request, Err("access_denied")).into_response();
        }
        let field = |k: &str| form.get(k).filter(|v| !v.is_empty()).cloned();
        let user = ConsentUser {
            sub: field("sub"),
            email: field("email"),
            name: field("name"),
        };
        match grant(&request, user) {
            Ok(code) => ProviderRedirect::new(&request, Ok(&code)).into_response(),
            Err(why) => bad_request(&why),
        }
    }
}

/// A `400` text answer naming a bad authorization request.
pub(crate) fn bad_request(why: &str) -> Response {
    (StatusCode::BAD_REQUEST, why.to_owned()).into_response()
}

/// HTML-escape text for an attribute or element.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
