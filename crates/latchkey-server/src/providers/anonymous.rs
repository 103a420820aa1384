//! `anon-user`: no credential; every login is a new user with one anonymous identity.

use latchkey_protocol::{LoginBody, ProviderType};
use serde_json::Map;

use super::{ProviderContext, VerifiedIdentity};
use crate::ids::new_random_id;

/// Any body is accepted (realm-core sends `{}` after removing `provider` and `options`).
pub(crate) fn authenticate(_ctx: ProviderContext<'_>, _body: &LoginBody) -> VerifiedIdentity {
    VerifiedIdentity {
        provider: ProviderType::Anonymous,
        id: new_random_id(),
        data: Map::new(),
    }
}
