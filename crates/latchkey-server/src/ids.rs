//! Identifier generation: ObjectIds for users, devices and credentials, 128-bit
//! random ids for sessions and anonymous identities, random secrets, and the stored
//! (hashed) form of random tokens.

use latchkey_protocol::ObjectId;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::clock::Clock;

/// A new ObjectId: 4 bytes of big-endian Unix time, then 8 random bytes.
pub(crate) fn new_object_id(clock: &Clock) -> ObjectId {
    let mut bytes = [0u8; 12];
    let secs = u32::try_from(clock.now_secs().max(0)).unwrap_or(u32::MAX);
    bytes[..4].copy_from_slice(&secs.to_be_bytes());
    rand::rngs::OsRng.fill_bytes(&mut bytes[4..]);
    ObjectId::from_bytes(bytes)
}

/// 128 random bits from the OS CSPRNG, as 32 lowercase hex digits.
pub(crate) fn new_random_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// 32 random bytes as 64 hex digits (development secrets and keys).
pub(crate) fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Lowercase hex SHA-256: the stored form of high-entropy tokens and keys.
pub(crate) fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// A stable ObjectId-shaped id derived from names (e.g. a provider configuration id
/// from the app id and provider name).
pub(crate) fn derived_object_id(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    let digest = h.finalize();
    hex::encode(&digest[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_are_unique_and_timestamped() {
        let c = Clock::system();
        let a = new_object_id(&c);
        let b = new_object_id(&c);
        assert_ne!(a, b);
        let ts = u32::from_be_bytes(a.bytes()[..4].try_into().unwrap()) as i64;
        assert!((ts - c.now_secs()).abs() <= 1);
        assert_eq!(new_random_id().len(), 32);
        assert_eq!(
            derived_object_id(&["a", "b"]),
            derived_object_id(&["a", "b"])
        );
        assert_ne!(
            derived_object_id(&["ab", ""]),
            derived_object_id(&["a", "b"])
        );
        assert_eq!(derived_object_id(&["x"]).len(), 24);
    }
}
