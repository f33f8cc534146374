//! Who is calling. A token is `tape_<key id>_<secret hex>`; the key (its role, its
//! account, the blake3 hash of its secret) comes from the log through the read
//! models, so every gateway of a deployment knows every key. The operator's
//! bootstrap admin token is configured, not on the log. Secrets are 32 random bytes:
//! a fast hash is enough, there is nothing to brute-force.

use std::sync::Arc;

use tape_projections::Views;
use tape_schemas::*;

/// What a request may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// No token: public market data only.
    Anonymous,
    Trader {
        key: ApiKeyId,
        account: AccountId,
    },
    Auditor {
        key: ApiKeyId,
    },
    /// `key` is `None` for the operator's bootstrap token.
    Admin {
        key: Option<ApiKeyId>,
    },
}

impl Caller {
    /// The rate-limit bucket this caller draws from.
    pub fn bucket(&self, peer: &str) -> String {
        match self {
            Caller::Anonymous => format!("anon:{peer}"),
            Caller::Trader { key, .. } | Caller::Auditor { key } => format!("key:{key}"),
            Caller::Admin { key: Some(key) } => format!("key:{key}"),
            Caller::Admin { key: None } => "admin".to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("malformed API token: expected `tape_<key id>_<secret>` (send it as `Authorization: Bearer <token>`)")]
    Malformed,
    #[error("unknown or revoked API key, or wrong secret")]
    Rejected,
    #[error("the read models could not be read: {0}")]
    Store(String),
}

/// A new secret and the hash that goes on the log.
pub fn new_secret() -> (String, Hash32) {
    let bytes: [u8; 32] = rand::random();
    let secret = hex::encode(bytes);
    let hash = hash_secret(&secret);
    (secret, hash)
}

pub fn token(key: ApiKeyId, secret: &str) -> String {
    format!("tape_{key}_{secret}")
}

/// The signer of an authenticated caller's token on `stream`: the caller's own
/// on-log key, so the engine checks every command against the key's role and account
/// no matter which door it came through. `None` for the anonymous and for the
/// operator's bootstrap token (which is not on the log, so cannot sign).
pub fn signer(caller: &Caller, token: &str, stream: Arc<SigningStream>) -> Option<Signer> {
    let key = match *caller {
        Caller::Trader { key, .. } | Caller::Auditor { key } => key,
        Caller::Admin { key: Some(key) } => key,
        Caller::Anonymous | Caller::Admin { key: None } => return None,
    };
    let signer = Signer::from_token(token, stream)?;
    (signer.key() == key).then_some(signer)
}

/// Checks a bearer token (without the `Bearer ` prefix).
pub fn authenticate(views: &Views, admin_hash: &Hash32, token: &str) -> Result<Caller, AuthError> {
    let token = token.trim();
    if token.is_empty() {
        return Ok(Caller::Anonymous);
    }
    if blake3::hash(token.as_bytes()) == blake3::Hash::from_bytes(admin_hash.0) {
        return Ok(Caller::Admin { key: None });
    }
    let (id, secret) = parse_token(token).ok_or(AuthError::Malformed)?;
    let key = views
        .api_key(id)
        .map_err(|e| AuthError::Store(e.to_string()))?
        .ok_or(AuthError::Rejected)?;
    // blake3::Hash compares in constant time.
    if blake3::hash(secret.as_bytes()) != blake3::Hash::from_bytes(key.secret_hash.0) {
        return Err(AuthError::Rejected);
    }
    Ok(match (key.role, key.account) {
        (ApiRole::Trader, Some(account)) => Caller::Trader {
            key: key.key,
            account,
        },
        (ApiRole::Auditor, _) => Caller::Auditor { key: key.key },
        (ApiRole::Admin, _) => Caller::Admin { key: Some(key.key) },
        // Oracle keys sign index prices onto the commands log (`tape oracle`); they
        // read nothing here.
        (ApiRole::Trader, None) | (ApiRole::Oracle, _) => return Err(AuthError::Rejected),
    })
}
