//! Signing and verifying the server's own tokens: each app's [`KeyRing`].
//!
//! Access tokens are signed with the app's active `[[apps.signing_keys]]` entry
//! (ES256, EdDSA, RS256 or HS256), or with its HS256 `signing_secret` when it has
//! none; refresh tokens always with `signing_secret`. Every token carries a `kid`
//! header naming its key; a token without one (minted by an earlier release) names the
//! `signing_secret`. The public keys are published as a JWKS ([`KeyRing::jwks`]).
//!
//! Verification here is cryptographic and temporal only: signature (with the one
//! algorithm of the key its `kid` names), integer `exp`/`iat`, the expected `typ`,
//! and `exp` against the server [`Clock`](crate::Clock). The session lookup that makes
//! revocation immediate happens in the domain layer (`auth::sessions`).

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use latchkey_protocol::{AccessTokenClaims, RefreshTokenClaims, Secret, TokenType};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::Digest as _;

use crate::config::{AppConfig, MIN_SIGNING_SECRET_LEN, SigningKeyConfig, TokenAlgorithm};

/// Why a token was rejected. None of the variants carries the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a three-part JWS, bad base64 or JSON, missing or non-integer claims.
    #[error("malformed token")]
    Malformed,
    /// The signature does not verify, its `kid` names no key that still verifies, or
    /// the algorithm is not that key's.
    #[error("invalid token signature")]
    Signature,
    /// An access token where a refresh token is required, or the other way round.
    #[error("wrong token type")]
    WrongType,
    /// `exp` is not in the future.
    #[error("token expired")]
    Expired,
    /// Signing failed.
    #[error("cannot sign token: {0}")]
    Sign(String),
}

/// A signing key could not be loaded. The messages name the app, the `kid` and the
/// file, never the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("app {app:?}: signing key {kid:?}: {reason}")]
pub struct KeyError {
    /// The app.
    pub app: String,
    /// The key id.
    pub kid: String,
    /// What is wrong.
    pub reason: String,
}

/// One signing key as the admin API lists it ([`KeyRing::describe`]): no private
/// material.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct KeyInfo {
    /// The key id (the tokens' `kid`).
    pub kid: String,
    /// The algorithm.
    pub algorithm: TokenAlgorithm,
    /// Whether this key signs new access tokens.
    pub active: bool,
    /// Unix time at which an inactive key stops verifying (`None`: until removed).
    pub verify_until: Option<i64>,
    /// Whether the key verifies access tokens now.
    pub verifies: bool,
    /// The public key (asymmetric keys only), as published in the JWKS.
    pub public_jwk: Option<Jwk>,
}

/// Smallest accepted RSA modulus, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// One key of a [`KeyRing`].
#[derive(Clone)]
struct Key {
    kid: String,
    algorithm: TokenAlgorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// The base64url JSON header of the tokens it signs (`alg` and `kid`), made once.
    encoded_header: String,
    /// The public key (asymmetric keys only).
    public: Option<Jwk>,
    /// Verifies until this Unix time (inactive keys only).
    verify_until: Option<i64>,
}

impl Key {
    fn verifies_at(&self, now: i64) -> bool {
        self.verify_until.is_none_or(|until| now < until)
    }
}

/// The claims read before a token is verified: the app it names, and what
/// [`KeyRing::verify`] checks before the claims struct is read. Any JSON value (a `typ`
/// that is not a string is a wrong type; an `exp`/`iat` that is not an integer, a
/// malformed token; a `baas_domain_id` that is not a string names no app); the other
/// claims are skipped.
#[derive(serde::Deserialize)]
struct CheckedClaims {
    baas_domain_id: Option<Value>,
    typ: Option<Value>,
    exp: Option<Value>,
    iat: Option<Value>,
}

/// A token split into its three parts and its claims decoded once, **not verified**:
/// its [`domain`](Self::domain) picks the app whose [`KeyRing`] verifies it
/// ([`KeyRing::verify_access_parsed`], [`KeyRing::verify_refresh_parsed`]), which
/// reads the claims decoded here rather than decoding them again.
pub struct UnverifiedToken<'a> {
    /// The whole token.
    token: &'a str,
    /// `header.claims`, the signed message.
    message: &'a str,
    /// The base64url header.
    header: &'a str,
    /// The base64url signature.
    signature: &'a str,
    /// The decoded claims and the checked ones; `Err` when they are not base64url
    /// JSON (reported as [`TokenError::Malformed`] after the signature check, as
    /// before the split was made once).
    claims: Result<(Vec<u8>, CheckedClaims), ()>,
}

impl fmt::Debug for UnverifiedToken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnverifiedToken")
            .field("domain", &self.domain())
            .finish_non_exhaustive()
    }
}

impl<'a> UnverifiedToken<'a> {
    /// Split `token` (from the right, as `jsonwebtoken::decode` splits it) and decode
    /// its claims. `Malformed` if it has fewer than three parts.
    pub fn parse(token: &'a str) -> Result<Self, TokenError> {
        let (message, signature) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let (header, payload) = message.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let claims = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| ())
            .and_then(|bytes| {
                let checked = serde_json::from_slice(&bytes).map_err(|_| ())?;
                Ok((bytes, checked))
            });
        Ok(UnverifiedToken {
            token,
            message,
            header,
            signature,
            claims,
        })
    }

    /// The `baas_domain_id` claim (the app id), unverified; `None` when it is missing
    /// or not a string, or the claims are not a JSON object.
    pub fn domain(&self) -> Option<&str> {
        match &self.claims.as_ref().ok()?.1.baas_domain_id {
            Some(Value::String(domain)) => Some(domain),
            _ => None,
        }
    }
}

/// One app's keys: the `signing_secret` (refresh tokens, and access tokens of an app
/// without `signing_keys`) and the `[[apps.signing_keys]]`, one of them active.
#[derive(Clone)]
pub struct KeyRing {
    secret: Key,
    keys: Vec<Key>,
    /// Index in `keys` of the key that signs access tokens; `None`: `secret` does.
    active: Option<usize>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        f.debug_struct("KeyRing")
            .field("secret", &"<redacted>")
            .field("kids", &kids)
            .field("active", &self.active_kid())
            .finish()
    }
}

/// The `kid` of the app's `signing_secret`: derived from the secret (a one-way hash,
/// 48 bits of it), so that changing the secret changes it.
pub fn secret_kid(secret: &[u8]) -> String {
    let mut h = sha2::Sha256::new();
    h.update(b"latchkey signing_secret kid\0");
    h.update(secret);
    format!("hs-{}", hex::encode(&h.finalize()[..6]))
}

fn jwt_algorithm(a: TokenAlgorithm) -> Algorithm {
    match a {
        TokenAlgorithm::ES256 => Algorithm::ES256,
        TokenAlgorithm::EdDSA => Algorithm::EdDSA,
        TokenAlgorithm::RS256 => Algorithm::RS256,
        TokenAlgorithm::HS256 => Algorithm::HS256,
    }
}

fn validation(alg: Algorithm) -> Validation {
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    validation.leeway = 0;
    validation
}

/// The base64url JSON of a token header naming `alg` and `kid`.
fn encoded_header(alg: Algorithm, kid: &str) -> Result<String, String> {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    let json = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

/// The DER inside one PEM block, with its label.
fn pem_der(text: &str) -> Result<(String, rsa::pkcs8::SecretDocument), String> {
    rsa::pkcs8::SecretDocument::from_pem(text.trim())
        .map(|(label, doc)| (label.to_owned(), doc))
        .map_err(|_| "not a PEM private key (-----BEGIN PRIVATE KEY-----)".to_owned())
}

/// The private key's PKCS#8 v1 prefix for an Ed25519 seed (RFC 8410).
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Signing and verifying keys from `material` (PEM, or the HS256 secret).
fn parse_key(
    algorithm: TokenAlgorithm,
    material: &str,
) -> Result<(EncodingKey, DecodingKey), String> {
    let alg = jwt_algorithm(algorithm);
    let encoding = match algorithm {
        TokenAlgorithm::HS256 => {
            if material.len() < MIN_SIGNING_SECRET_LEN {
                return Err(format!(
                    "an HS256 secret must be at least {MIN_SIGNING_SECRET_LEN} bytes long"
                ));
            }
            let decoding =
                DecodingKey::from_secret(material.as_bytes()).map_err(|e| e.to_string())?;
            let encoding =
                EncodingKey::from_secret(material.as_bytes()).map_err(|e| e.to_string())?;
            return Ok((encoding, decoding));
        }
        TokenAlgorithm::ES256 => {
            let (label, der) = pem_der(material)?;
            if label != "PRIVATE KEY" {
                return Err(format!("expected a PKCS#8 PRIVATE KEY, found {label}"));
            }
            EncodingKey::from_ec_der(der.as_bytes())
        }
        TokenAlgorithm::EdDSA => {
            let (label, der) = pem_der(material)?;
            let der = der.as_bytes();
            if label != "PRIVATE KEY" || der.len() != 48 || der[..16] != ED25519_PKCS8_PREFIX {
                return Err("expected an Ed25519 PKCS#8 PRIVATE KEY \
                            (openssl genpkey -algorithm ed25519)"
                    .to_owned());
            }
            EncodingKey::from_ed_der(der)
        }
        TokenAlgorithm::RS256 => {
            use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _};
            use rsa::pkcs8::DecodePrivateKey as _;
            use rsa::traits::PublicKeyParts as _;
            let (label, der) = pem_der(material)?;
            let key = match label.as_str() {
                "PRIVATE KEY" => rsa::RsaPrivateKey::from_pkcs8_der(der.as_bytes()),
                "RSA PRIVATE KEY" => rsa::RsaPrivateKey::from_pkcs1_der(der.as_bytes())
                    .map_err(rsa::pkcs8::Error::from),
                other => return Err(format!("expected an RSA PRIVATE KEY, found {other}")),
            }
            .map_err(|_| "not a valid RSA private key".to_owned())?;
            if key.size() * 8 < MIN_RSA_BITS {
                return Err(format!("RSA keys must have at least {MIN_RSA_BITS} bits"));
            }
            let pkcs1 = key
                .to_pkcs1_der()
                .map_err(|_| "not a valid RSA private key".to_owned())?;
            EncodingKey::from_rsa_der(pkcs1.as_bytes())
        }
    };
    let jwk = Jwk::from_encoding_key(&encoding, alg)
        .map_err(|_| format!("not a valid {algorithm} private key"))?;
    let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| e.to_string())?;
    Ok((encoding, decoding))
}

impl Key {
    fn new(
        kid: &str,
        algorithm: TokenAlgorithm,
        material: &str,
        verify_until: Option<i64>,
    ) -> Result<Key, String> {
        let (encoding, decoding) = parse_key(algorithm, material)?;
        let alg = jwt_algorithm(algorithm);
        let public = if algorithm.is_asymmetric() {
            let mut jwk = Jwk::from_encoding_key(&encoding, alg).map_err(|e| e.to_string())?;
            jwk.common.key_id = Some(kid.to_owned());
            jwk.common.public_key_use = Some(PublicKeyUse::Signature);
            Some(jwk)
        } else {
            None
        };
        let key = Key {
            kid: kid.to_owned(),
            algorithm,
            encoding,
            decoding,
            encoded_header: encoded_header(alg, kid)?,
            public,
            verify_until,
        };
        // The key must verify what it signs (a public key that does not match the
        // private one would be published otherwise).
        let probe = key
            .sign(&serde_json::json!({ "probe": true }))
            .map_err(|e| e.to_string())?;
        jsonwebtoken::decode::<Value>(&probe, &key.decoding, &validation(alg))
            .map_err(|_| format!("the {algorithm} key does not verify its own signature"))?;
        Ok(key)
    }

    /// `header.claims.signature`, as `jsonwebtoken::encode` makes it, with the header
    /// encoded once per key.
    fn sign<T: serde::Serialize>(&self, claims: &T) -> Result<String, TokenError> {
        let json = serde_json::to_vec(claims).map_err(|e| TokenError::Sign(e.to_string()))?;
        let mut token = String::with_capacity(self.encoded_header.len() + json.len() * 2);
        token.push_str(&self.encoded_header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&json, &mut token);
        let signature = jsonwebtoken::crypto::sign(
            token.as_bytes(),
            &self.encoding,
            jwt_algorithm(self.algorithm),
        )
        .map_err(|e| TokenError::Sign(e.to_string()))?;
        token.push('.');
        token.push_str(&signature);
        Ok(token)
    }
}

/// Read a `private_key_file`: it must exist and, on Unix, not be readable by group or
/// others.
fn read_key_file(path: &Path) -> Result<Secret, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "{shown} is readable by group or others (mode {:o}); chmod 600 it",
                mode & 0o777
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    Ok(Secret::from(text.trim().to_owned()))
}

impl KeyRing {
    /// Keys from an HS256 secret alone (an app without `signing_keys`).
    pub fn new(secret: &[u8]) -> Result<Self, TokenError> {
        let text = std::str::from_utf8(secret).map_err(|_| TokenError::Sign("secret".into()))?;
        let key = Key::new(&secret_kid(secret), TokenAlgorithm::HS256, text, None)
            .map_err(TokenError::Sign)?;
        Ok(KeyRing {
            secret: key,
            keys: Vec::new(),
            active: None,
        })
    }

    /// The app's keys: its `signing_secret` and its `signing_keys`, private key files
    /// read and checked.
    pub fn load(app: &AppConfig) -> Result<Self, KeyError> {
        let error = |kid: &str, reason: String| KeyError {
            app: app.id.clone(),
            kid: kid.to_owned(),
            reason,
        };
        let secret = app.signing_secret.expose();
        let secret_kid = secret_kid(secret.as_bytes());
        let mut ring =
            KeyRing::new(secret.as_bytes()).map_err(|e| error(&secret_kid, e.to_string()))?;
        for (i, entry) in app.signing_keys.iter().enumerate() {
            let (key, material) = load_entry(entry).map_err(|reason| error(&entry.kid, reason))?;
            // The signing_secret's kid may be listed (to retire the secret as an
            // access-token key), with the secret itself only.
            if entry.kid == secret_kid
                && (entry.algorithm != TokenAlgorithm::HS256 || material.expose() != secret)
            {
                return Err(error(
                    &entry.kid,
                    "this kid names the signing_secret: the entry must be HS256 with the \
                     same secret"
                        .into(),
                ));
            }
            ring.keys.push(key);
            if entry.active {
                ring.active = Some(i);
            }
        }
        Ok(ring)
    }

    /// The `kid` of the key that signs new access tokens.
    pub fn active_kid(&self) -> &str {
        &self.active_key().kid
    }

    /// The algorithm of the key that signs new access tokens.
    pub fn active_algorithm(&self) -> TokenAlgorithm {
        self.active_key().algorithm
    }

    /// The `kid` of the `signing_secret` (refresh tokens).
    pub fn secret_kid(&self) -> &str {
        &self.secret.kid
    }

    /// The `signing_secret` and every `signing_keys` entry.
    fn all_keys(&self) -> impl Iterator<Item = &Key> {
        std::iter::once(&self.secret).chain(&self.keys)
    }

    fn active_key(&self) -> &Key {
        self.active.map_or(&self.secret, |i| &self.keys[i])
    }

    /// The public keys that verify access tokens at `now`: every asymmetric key of
    /// `signing_keys` not past its `verify_until`. Empty for an HS256 app.
    pub fn jwks(&self, now: i64) -> JwkSet {
        JwkSet {
            keys: self
                .keys
                .iter()
                .filter(|k| k.verifies_at(now))
                .filter_map(|k| k.public.clone())
                .collect(),
        }
    }

    /// What an operator may see of the app's `signing_keys`, in configuration order:
    /// kid, algorithm, whether it signs, until when it verifies, and the public JWK of
    /// an asymmetric key. Never private material.
    pub fn describe(&self, now: i64) -> Vec<KeyInfo> {
        self.keys
            .iter()
            .enumerate()
            .map(|(i, k)| KeyInfo {
                kid: k.kid.clone(),
                algorithm: k.algorithm,
                active: self.active == Some(i),
                verify_until: k.verify_until,
                verifies: k.verifies_at(now),
                public_jwk: k.public.clone(),
            })
            .collect()
    }

    /// Sign access-token claims with the active key.
    pub fn sign_access(&self, claims: &AccessTokenClaims) -> Result<String, TokenError> {
        self.active_key().sign(claims)
    }

    /// Sign refresh-token claims with the `signing_secret`.
    pub fn sign_refresh(&self, claims: &RefreshTokenClaims) -> Result<String, TokenError> {
        self.secret.sign(claims)
    }

    /// The key that verifies a token of type `typ` whose header names `kid` (`None`:
    /// the `signing_secret`, as tokens of earlier releases).
    fn verifying_key(&self, kid: Option<&str>, typ: TokenType, now: i64) -> Option<&Key> {
        let kid = kid.unwrap_or(&self.secret.kid);
        // The secret verifies refresh tokens, and access tokens while it signs them
        // (afterwards, only if listed in `signing_keys`, until its `verify_until`).
        let secret = (kid == self.secret.kid).then_some(&self.secret);
        if typ == TokenType::Refresh {
            return secret;
        }
        if self.active.is_none() {
            return secret;
        }
        self.keys
            .iter()
            .find(|k| k.kid == kid)
            .filter(|k| k.verifies_at(now))
    }

    fn verify<T: DeserializeOwned>(
        &self,
        token: &UnverifiedToken<'_>,
        typ: TokenType,
        now: i64,
    ) -> Result<T, TokenError> {
        // The header of a token this ring signed is one of its keys' encoded headers:
        // matched, not parsed. Any other header is parsed (once; jsonwebtoken's
        // `decode` would parse the header and the claims twice each).
        let parsed;
        let (kid, header_alg) = match self.all_keys().find(|k| k.encoded_header == token.header) {
            Some(k) => (Some(k.kid.as_str()), jwt_algorithm(k.algorithm)),
            None => {
                parsed =
                    jsonwebtoken::decode_header(token.token).map_err(|_| TokenError::Malformed)?;
                (parsed.kid.as_deref(), parsed.alg)
            }
        };
        let key = self
            .verifying_key(kid, typ, now)
            .ok_or(TokenError::Signature)?;
        let alg = jwt_algorithm(key.algorithm);
        if header_alg != alg {
            return Err(TokenError::Signature);
        }
        match jsonwebtoken::crypto::verify(
            token.signature,
            token.message.as_bytes(),
            &key.decoding,
            alg,
        ) {
            Ok(true) => {}
            Ok(false) => return Err(TokenError::Signature),
            Err(_) => return Err(TokenError::Malformed),
        }
        let (payload, checked) = token.claims.as_ref().map_err(|()| TokenError::Malformed)?;
        // The checked claims first (a missing or other `typ` is a wrong type, not a
        // malformed token), then the claims struct from the same bytes.
        let expected = match typ {
            TokenType::Access => "access",
            TokenType::Refresh => "refresh",
        };
        if checked.typ.as_ref().and_then(Value::as_str) != Some(expected) {
            return Err(TokenError::WrongType);
        }
        let exp = match &checked.exp {
            Some(Value::Number(n)) => n.as_i64().ok_or(TokenError::Malformed)?,
            _ => return Err(TokenError::Malformed),
        };
        if !matches!(&checked.iat, Some(Value::Number(n)) if n.is_i64()) {
            return Err(TokenError::Malformed);
        }
        let claims: T = serde_json::from_slice(payload).map_err(|_| TokenError::Malformed)?;
        if exp <= now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }

    /// Verify an access token: the key its `kid` names (the active key, an inactive
    /// one before its `verify_until`, or the `signing_secret` of an app without
    /// `signing_keys`) with that key's algorithm, `typ:"access"`, integer
    /// `exp`/`iat`, `exp > now`.
    pub fn verify_access(&self, token: &str, now: i64) -> Result<AccessTokenClaims, TokenError> {
        self.verify_access_parsed(&UnverifiedToken::parse(token)?, now)
    }

    /// [`verify_access`](Self::verify_access) of a token already split and decoded.
    pub fn verify_access_parsed(
        &self,
        token: &UnverifiedToken<'_>,
        now: i64,
    ) -> Result<AccessTokenClaims, TokenError> {
        self.verify(token, TokenType::Access, now)
    }

    /// Verify a refresh token: the `signing_secret` (HS256), `typ:"refresh"`, integer
    /// `exp`/`iat`, `exp > now`.
    pub fn verify_refresh(&self, token: &str, now: i64) -> Result<RefreshTokenClaims, TokenError> {
        self.verify_refresh_parsed(&UnverifiedToken::parse(token)?, now)
    }

    /// [`verify_refresh`](Self::verify_refresh) of a token already split and decoded.
    pub fn verify_refresh_parsed(
        &self,
        token: &UnverifiedToken<'_>,
        now: i64,
    ) -> Result<RefreshTokenClaims, TokenError> {
        self.verify(token, TokenType::Refresh, now)
    }
}

fn load_entry(entry: &SigningKeyConfig) -> Result<(Key, Secret), String> {
    let material = match (&entry.private_key, &entry.private_key_file) {
        (Some(inline), _) => inline.clone(),
        (None, Some(path)) => read_key_file(path)?,
        (None, None) => return Err("private_key or private_key_file is required".into()),
    };
    let key = Key::new(
        &entry.kid,
        entry.algorithm,
        material.expose(),
        if entry.active {
            None
        } else {
            entry.verify_until
        },
    )?;
    Ok((key, material))
}

/// A fresh private key for `algorithm`: PKCS#8 PEM (ES256, EdDSA, RS256 with
/// [`MIN_RSA_BITS`] bits), or 64 hex digits for HS256.
pub fn generate_key(algorithm: TokenAlgorithm) -> Result<Secret, String> {
    use rand::RngCore as _;
    use rsa::pkcs8::{EncodePrivateKey as _, LineEnding, SecretDocument};
    let pem = |der: &[u8]| -> Result<Secret, String> {
        let doc = SecretDocument::try_from(der).map_err(|e| e.to_string())?;
        doc.to_pem("PRIVATE KEY", LineEnding::LF)
            .map(|p| Secret::from(p.as_str().to_owned()))
            .map_err(|e| e.to_string())
    };
    match algorithm {
        TokenAlgorithm::HS256 => {
            let mut bytes = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            Ok(Secret::from(hex::encode(bytes)))
        }
        TokenAlgorithm::EdDSA => {
            let mut der = ED25519_PKCS8_PREFIX.to_vec();
            let mut seed = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut seed);
            der.extend_from_slice(&seed);
            pem(&der)
        }
        TokenAlgorithm::ES256 => {
            let rng = ring::rand::SystemRandom::new();
            let doc = ring::signature::EcdsaKeyPair::generate_pkcs8(
                &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &rng,
            )
            .map_err(|_| "cannot generate a P-256 key".to_owned())?;
            pem(doc.as_ref())
        }
        TokenAlgorithm::RS256 => {
            let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, MIN_RSA_BITS)
                .map_err(|e| e.to_string())?;
            key.to_pkcs8_pem(LineEnding::LF)
                .map(|p| Secret::from(p.as_str().to_owned()))
                .map_err(|e| e.to_string())
        }
    }
}

/// A `kid` for a key made now: the date and 4 random hex digits, e.g.
/// `2026-11-29-a1b2`.
pub fn new_kid(now: i64) -> String {
    use rand::RngCore as _;
    let days = now.div_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut r = [0u8; 2];
    rand::rngs::OsRng.fill_bytes(&mut r);
    format!("{y:04}-{m:02}-{d:02}-{}", hex::encode(r))
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn access(exp: i64) -> AccessTokenClaims {
        AccessTokenClaims {
            sub: "u1".into(),
            exp,
            iat: exp - 1800,
            iss: Some("s1".into()),
            typ: TokenType::Access,
            baas_device_id: Some("000000000000000000000000".into()),
            baas_domain_id: Some("app".into()),
            user_data: None,
        }
    }

    fn refresh(exp: i64) -> RefreshTokenClaims {
        RefreshTokenClaims {
            sub: "u1".into(),
            exp,
            iat: exp - 60,
            baas_id: Some("s1".into()),
            typ: TokenType::Refresh,
            baas_device_id: None,
            baas_domain_id: Some("app".into()),
        }
    }

    #[test]
    fn round_trip_and_type_confusion() {
        let k = KeyRing::new(SECRET).unwrap();
        let at = k.sign_access(&access(2000)).unwrap();
        let rt = k.sign_refresh(&refresh(2000)).unwrap();
        assert_eq!(k.verify_access(&at, 1000).unwrap().sub, "u1");
        assert_eq!(
            k.verify_refresh(&rt, 1000).unwrap().baas_id.as_deref(),
            Some("s1")
        );
        assert_eq!(k.verify_access(&rt, 1000), Err(TokenError::WrongType));
        assert_eq!(k.verify_refresh(&at, 1000), Err(TokenError::WrongType));
        assert_eq!(k.verify_access(&at, 2000), Err(TokenError::Expired));
        assert_eq!(UnverifiedToken::parse(&at).unwrap().domain(), Some("app"));
    }

    /// The domain is read from the claims without verifying them; anything that is not
    /// a string claim in a JSON object names no app, and the token never shows in
    /// `Debug`.
    #[test]
    fn the_unverified_domain_is_one_string_claim() {
        let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
        let h = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#);
        let domain = |claims: &str| {
            let t = format!("{h}.{claims}.c2ln");
            UnverifiedToken::parse(&t)
                .unwrap()
                .domain()
                .map(str::to_owned)
        };
        let claims = serde_json::json!({"baas_domain_id": "app", "sub": "secret-sub"});
        assert_eq!(domain(&part(&claims)).as_deref(), Some("app"));
        assert_eq!(
            domain(&part(&serde_json::json!({"baas_domain_id": 7}))),
            None
        );
        assert_eq!(domain(&part(&serde_json::json!({"sub": "u"}))), None);
        assert_eq!(domain(&part(&serde_json::json!(["app"]))), None);
        assert_eq!(domain("not base64!"), None);
        assert_eq!(domain(&URL_SAFE_NO_PAD.encode("{not json")), None);
        assert_eq!(
            UnverifiedToken::parse("two.parts").map(|_| ()),
            Err(TokenError::Malformed)
        );
        let t = format!("{h}.{}.c2ln", part(&claims));
        let shown = format!("{:?}", UnverifiedToken::parse(&t).unwrap());
        assert!(
            !shown.contains("secret-sub") && !shown.contains("c2ln"),
            "{shown}"
        );
    }

    /// A token whose claims were changed after signing fails on its signature, even
    /// when the changed claims are not base64 or not JSON (the claims are read after
    /// the signature is checked).
    #[test]
    fn changed_claims_fail_on_the_signature() {
        let k = KeyRing::new(SECRET).unwrap();
        let at = k.sign_access(&access(2000)).unwrap();
        let (header, rest) = at.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();
        let other = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&access(3000)).unwrap());
        for claims in [other.as_str(), "not base64!", &URL_SAFE_NO_PAD.encode("{x")] {
            let t = format!("{header}.{claims}.{signature}");
            assert_eq!(
                k.verify_access(&t, 1000),
                Err(TokenError::Signature),
                "{claims}"
            );
        }
    }

    /// The ring signs exactly what `jsonwebtoken::encode` would with the same header
    /// (its header is encoded once per key), for every algorithm.
    #[test]
    fn signing_matches_jsonwebtoken_encode() {
        for alg in TokenAlgorithm::ALL {
            let ring = KeyRing::load(&app_with(vec![entry("k1", alg, true, None)])).unwrap();
            let key = ring.active_key();
            let mut header = Header::new(jwt_algorithm(alg));
            header.kid = Some("k1".into());
            let claims = access(2000);
            let expected = jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap();
            let ours = ring.sign_access(&claims).unwrap();
            if matches!(alg, TokenAlgorithm::ES256) {
                // ECDSA signatures may differ; the signed message must not.
                assert_eq!(
                    ours.rsplit_once('.').unwrap().0,
                    expected.rsplit_once('.').unwrap().0
                );
            } else {
                assert_eq!(ours, expected, "{alg}");
            }
            // Our tokens' header is matched, not parsed; an equivalent header written
            // differently is parsed and verifies the same.
            let other = jsonwebtoken::encode(
                &{
                    let mut h = header.clone();
                    h.typ = None;
                    h
                },
                &claims,
                &key.encoding,
            )
            .unwrap();
            assert_ne!(other.split_once('.').unwrap().0, key.encoded_header);
            assert_eq!(ring.verify_access(&other, 1000).unwrap(), claims, "{alg}");
        }
    }

    #[test]
    fn rejects_other_keys_and_algorithms() {
        let k = KeyRing::new(SECRET).unwrap();
        let other = KeyRing::new(b"another-secret-another-secret-xx").unwrap();
        let at = other.sign_access(&access(2000)).unwrap();
        assert_eq!(k.verify_access(&at, 1000), Err(TokenError::Signature));

        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&access(2000)).unwrap());
        for header in [
            r#"{"alg":"none","typ":"JWT"}"#,
            r#"{"alg":"HS512","typ":"JWT"}"#,
        ] {
            let h = URL_SAFE_NO_PAD.encode(header);
            for sig in ["", "c2ln"] {
                let t = format!("{h}.{payload}.{sig}");
                assert!(k.verify_access(&t, 1000).is_err(), "{header} {sig}");
            }
        }
        assert_eq!(k.verify_access("garbage", 1000), Err(TokenError::Malformed));
    }

    #[test]
    fn rejects_float_exp_and_missing_typ() {
        let k = KeyRing::new(SECRET).unwrap();
        let t = k
            .secret
            .sign(&serde_json::json!({"sub":"u","exp":2000.5,"iat":1,"typ":"access"}))
            .unwrap();
        assert_eq!(k.verify_access(&t, 1000), Err(TokenError::Malformed));
        let t = k
            .secret
            .sign(&serde_json::json!({"sub":"u","exp":2000,"iat":1}))
            .unwrap();
        assert_eq!(k.verify_access(&t, 1000), Err(TokenError::WrongType));
        let t = k
            .secret
            .sign(&serde_json::json!({"sub":"u","exp":2000,"typ":"access"}))
            .unwrap();
        assert_eq!(k.verify_access(&t, 1000), Err(TokenError::Malformed));
    }

    fn app_with(keys: Vec<SigningKeyConfig>) -> AppConfig {
        let mut app = AppConfig::new("app", std::str::from_utf8(SECRET).unwrap());
        app.signing_keys = keys;
        app
    }

    fn entry(kid: &str, alg: TokenAlgorithm, active: bool, until: Option<i64>) -> SigningKeyConfig {
        SigningKeyConfig {
            kid: kid.into(),
            algorithm: alg,
            private_key: Some(generate_key(alg).unwrap()),
            private_key_file: None,
            active,
            verify_until: until,
        }
    }

    fn header_of(token: &str) -> Header {
        jsonwebtoken::decode_header(token).unwrap()
    }

    #[test]
    fn every_algorithm_signs_verifies_and_publishes() {
        for alg in TokenAlgorithm::ALL {
            let ring = KeyRing::load(&app_with(vec![entry("k1", alg, true, None)])).unwrap();
            let at = ring.sign_access(&access(2000)).unwrap();
            let h = header_of(&at);
            assert_eq!(h.kid.as_deref(), Some("k1"), "{alg}");
            assert_eq!(h.alg, jwt_algorithm(alg));
            assert_eq!(ring.verify_access(&at, 1000).unwrap().sub, "u1", "{alg}");
            let jwks = serde_json::to_value(ring.jwks(1000)).unwrap();
            if alg.is_asymmetric() {
                let key = &jwks["keys"][0];
                assert_eq!(key["kid"], "k1");
                assert_eq!(key["alg"], alg.as_str());
                assert_eq!(key["use"], "sig");
                // Public parts only.
                assert!(key.get("d").is_none() && key.get("k").is_none(), "{key}");
                // The published key verifies the token on its own.
                let jwk: Jwk = serde_json::from_value(key.clone()).unwrap();
                let dk = DecodingKey::from_jwk(&jwk).unwrap();
                jsonwebtoken::decode::<Value>(&at, &dk, &validation(jwt_algorithm(alg))).unwrap();
            } else {
                assert_eq!(jwks, serde_json::json!({"keys": []}));
            }
            // Refresh tokens stay with the signing_secret.
            let rt = ring.sign_refresh(&refresh(2000)).unwrap();
            assert_eq!(header_of(&rt).alg, Algorithm::HS256);
            assert_eq!(header_of(&rt).kid.as_deref(), Some(ring.secret_kid()));
            assert!(ring.verify_refresh(&rt, 1000).is_ok());
            // The private key never shows in Debug.
            let shown = format!(
                "{ring:?} {:?}",
                app_with(vec![entry("k1", alg, true, None)])
            );
            assert!(
                !shown.contains("PRIVATE") && !shown.contains(std::str::from_utf8(SECRET).unwrap()),
                "{shown}"
            );
        }
    }

    #[test]
    fn hs256_app_tokens_carry_the_secret_kid_and_old_tokens_still_verify() {
        let ring = KeyRing::new(SECRET).unwrap();
        let at = ring.sign_access(&access(2000)).unwrap();
        assert_eq!(
            header_of(&at).kid.as_deref(),
            Some(secret_kid(SECRET).as_str())
        );
        // A token of an earlier release: no kid.
        let old = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &access(2000),
            &EncodingKey::from_secret(SECRET).unwrap(),
        )
        .unwrap();
        assert!(ring.verify_access(&old, 1000).is_ok());
        assert!(ring.jwks(1000).keys.is_empty());
    }

    /// Tokens minted before a rotation keep verifying until they expire, then stop;
    /// the retired key stops verifying (and is no longer published) at verify_until.
    #[test]
    fn rotation_keeps_old_tokens_until_they_expire() {
        let a = entry("a", TokenAlgorithm::ES256, true, None);
        let before = KeyRing::load(&app_with(vec![a.clone()])).unwrap();
        let old = before.sign_access(&access(2000)).unwrap();
        let old_refresh = before.sign_refresh(&refresh(5000)).unwrap();
        // Rotation at 1000: b signs, a verifies until 2100.
        let retired = SigningKeyConfig {
            active: false,
            verify_until: Some(2100),
            ..a
        };
        let after = KeyRing::load(&app_with(vec![
            retired,
            entry("b", TokenAlgorithm::EdDSA, true, None),
        ]))
        .unwrap();
        let new = after.sign_access(&access(2500)).unwrap();
        assert_eq!(header_of(&new).kid.as_deref(), Some("b"));
        assert!(after.verify_access(&old, 1500).is_ok());
        assert!(after.verify_access(&new, 1500).is_ok());
        assert!(after.verify_refresh(&old_refresh, 1500).is_ok());
        assert_eq!(after.jwks(1500).keys.len(), 2);
        assert_eq!(after.verify_access(&old, 2000), Err(TokenError::Expired));
        // Past verify_until, the key is gone from verification and the JWKS.
        assert_eq!(after.verify_access(&old, 2100), Err(TokenError::Signature));
        assert_eq!(after.jwks(2100).keys.len(), 1);
        assert!(after.verify_refresh(&old_refresh, 2100).is_ok());
        // The HS256 secret no longer verifies access tokens once a key is active.
        let hs = KeyRing::new(SECRET)
            .unwrap()
            .sign_access(&access(2000))
            .unwrap();
        assert_eq!(after.verify_access(&hs, 1000), Err(TokenError::Signature));
    }

    #[test]
    fn the_secret_can_be_retired_like_any_key() {
        let secret = std::str::from_utf8(SECRET).unwrap();
        let listed = SigningKeyConfig {
            kid: secret_kid(SECRET),
            algorithm: TokenAlgorithm::HS256,
            private_key: Some(secret.into()),
            private_key_file: None,
            active: false,
            verify_until: Some(2100),
        };
        let ring = KeyRing::load(&app_with(vec![
            listed.clone(),
            entry("n", TokenAlgorithm::ES256, true, None),
        ]))
        .unwrap();
        let hs = KeyRing::new(SECRET)
            .unwrap()
            .sign_access(&access(2000))
            .unwrap();
        assert!(ring.verify_access(&hs, 1000).is_ok());
        assert_eq!(ring.verify_access(&hs, 2100), Err(TokenError::Signature));
        // The secret's kid with another secret is refused.
        let wrong = SigningKeyConfig {
            private_key: Some("another-secret-another-secret-xxxx".into()),
            ..listed
        };
        let err = KeyRing::load(&app_with(vec![
            wrong,
            entry("n", TokenAlgorithm::ES256, true, None),
        ]))
        .unwrap_err();
        assert!(err.reason.contains("signing_secret"), "{err}");
    }

    #[test]
    fn algorithm_confusion_and_unknown_kids_are_refused() {
        let es = entry("k", TokenAlgorithm::ES256, true, None);
        let ring = KeyRing::load(&app_with(vec![es])).unwrap();
        // HS256 signed with the public key's JSON as secret, naming the ES256 kid.
        let public = serde_json::to_vec(&ring.jwks(0)).unwrap();
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("k".into());
        let forged = jsonwebtoken::encode(
            &h,
            &access(2000),
            &EncodingKey::from_secret(&public).unwrap(),
        )
        .unwrap();
        assert_eq!(
            ring.verify_access(&forged, 1000),
            Err(TokenError::Signature)
        );
        // Another ES256 key under the same kid.
        let other = KeyRing::load(&app_with(vec![entry(
            "k",
            TokenAlgorithm::ES256,
            true,
            None,
        )]))
        .unwrap();
        let t = other.sign_access(&access(2000)).unwrap();
        assert_eq!(ring.verify_access(&t, 1000), Err(TokenError::Signature));
        // A kid nobody knows.
        let t = KeyRing::load(&app_with(vec![entry(
            "zz",
            TokenAlgorithm::ES256,
            true,
            None,
        )]))
        .unwrap()
        .sign_access(&access(2000))
        .unwrap();
        assert_eq!(ring.verify_access(&t, 1000), Err(TokenError::Signature));
        // An access token is not a refresh token, whatever its kid.
        let at = ring.sign_access(&access(2000)).unwrap();
        assert!(ring.verify_refresh(&at, 1000).is_err());
    }

    #[test]
    fn bad_key_material_is_refused_without_showing_it() {
        for (alg, material) in [
            (
                TokenAlgorithm::ES256,
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
            ),
            (TokenAlgorithm::EdDSA, "not pem at all"),
            (TokenAlgorithm::HS256, "short-secret"),
        ] {
            let mut e = entry("k", alg, true, None);
            e.private_key = Some(material.into());
            let err = KeyRing::load(&app_with(vec![e])).unwrap_err().to_string();
            assert!(err.contains("\"k\""), "{err}");
            assert!(!err.contains(material), "{err}");
        }
        // An ES256 key given as EdDSA.
        let mut e = entry("k", TokenAlgorithm::ES256, true, None);
        e.algorithm = TokenAlgorithm::EdDSA;
        assert!(KeyRing::load(&app_with(vec![e])).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn key_files_must_be_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        let pem = generate_key(TokenAlgorithm::RS256).unwrap();
        std::fs::write(&path, pem.expose()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = SigningKeyConfig {
            private_key: None,
            private_key_file: Some(path.clone()),
            ..entry("f", TokenAlgorithm::RS256, true, None)
        };
        let err = KeyRing::load(&app_with(vec![e.clone()]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let ring = KeyRing::load(&app_with(vec![e])).unwrap();
        assert_eq!(ring.active_algorithm(), TokenAlgorithm::RS256);
        let t = ring.sign_access(&access(2000)).unwrap();
        assert!(ring.verify_access(&t, 1000).is_ok());
    }

    #[test]
    fn kids_are_dated() {
        assert!(new_kid(1_764_374_400).starts_with("2025-11-29-"));
        assert!(new_kid(0).starts_with("1970-01-01-"));
    }
}
