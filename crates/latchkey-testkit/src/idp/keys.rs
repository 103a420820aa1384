//! RSA key pairs for the OIDC fakes.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::Rng as _;
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::traits::PublicKeyParts as _;
use serde::Serialize;

/// Modulus size of every generated key.
const BITS: usize = 2048;

/// A real RSA key pair with a key id, ready to sign RS256 JWTs.
#[derive(Clone)]
pub(crate) struct KeyPair {
    kid: String,
    encoding: EncodingKey,
    /// base64url (no padding) big-endian modulus.
    n: String,
    /// base64url (no padding) big-endian public exponent.
    e: String,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// One entry of a JSON Web Key Set.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Jwk {
    kty: &'static str,
    kid: String,
    #[serde(rename = "use")]
    use_: &'static str,
    alg: &'static str,
    n: String,
    e: String,
}

impl KeyPair {
    /// Generate a fresh RSA-2048 key with a random key id. CPU-bound (tens to a few
    /// hundred milliseconds): call from a blocking context when convenient.
    pub(crate) fn generate() -> KeyPair {
        let mut rng = rand::thread_rng();
        let private = rsa::RsaPrivateKey::new(&mut rng, BITS).expect("RSA key generation");
        let der = private
            .to_pkcs1_der()
            .expect("PKCS#1 DER encoding of a fresh RSA key");
        let kid: String = (0..16)
            .map(|_| format!("{:x}", rng.gen_range(0..16u8)))
            .collect();
        KeyPair {
            kid,
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            n: URL_SAFE_NO_PAD.encode(private.n().to_bytes_be()),
            e: URL_SAFE_NO_PAD.encode(private.e().to_bytes_be()),
        }
    }

    /// Generate a key on tokio's blocking pool (keeps the runtime responsive).
    pub(crate) async fn generate_async() -> KeyPair {
        tokio::task::spawn_blocking(KeyPair::generate)
            .await
            .expect("RSA key generation task")
    }

    /// The key id (`kid`) put in JWT headers and in the JWKS.
    pub(crate) fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half as a JWK.
    pub(crate) fn jwk(&self) -> Jwk {
        Jwk {
            kty: "RSA",
            kid: self.kid.clone(),
            use_: "sig",
            alg: "RS256",
            n: self.n.clone(),
            e: self.e.clone(),
        }
    }

    /// Sign `claims` as an RS256 JWT whose header names this key.
    pub(crate) fn sign<T: Serialize>(&self, claims: &T) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("RS256 signing")
    }
}
