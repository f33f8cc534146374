//! API keys and credentials: the live keys with their roles, whether every command
//! must be signed, and the check a signed command passes before it runs.

use std::collections::BTreeMap;

use tape_schemas::*;

use crate::exchange::{Core, Outcome};

/// A registered API key as the core keeps it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub struct ApiKey {
    pub role: ApiRole,
    pub account: Option<AccountId>,
    pub secret_hash: Hash32,
    /// Commands signed by this key carry `blake3::keyed_hash(mac_key, …)`.
    pub mac_key: Hash32,
}

/// The live keys (revoked ones are removed) and the credentials mode.
#[derive(Clone, Debug, Default)]
pub(crate) struct Keys {
    live: BTreeMap<u64, ApiKey>,
    next_id: u64,
    /// Whether every command must carry credentials (`RequireCredentials`).
    required: bool,
}

/// The keys as the snapshot lists them.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct KeysSnapshot {
    next_id: u64,
    live: Vec<(u64, ApiKey)>,
    required: bool,
}

impl Keys {
    pub fn new() -> Self {
        Keys {
            next_id: 1,
            ..Keys::default()
        }
    }

    pub fn get(&self, key: ApiKeyId) -> Option<&ApiKey> {
        self.live.get(&key.0)
    }

    /// Whether every command must carry credentials.
    pub fn required(&self) -> bool {
        self.required
    }

    pub fn snapshot(&self) -> KeysSnapshot {
        KeysSnapshot {
            next_id: self.next_id,
            live: self.live.iter().map(|(k, v)| (*k, *v)).collect(),
            required: self.required,
        }
    }

    pub fn restore(s: KeysSnapshot) -> Result<Self, String> {
        if s.live.iter().any(|(id, _)| *id == 0 || *id >= s.next_id) {
            return Err("an API key beyond the id counter".into());
        }
        Ok(Keys {
            live: s.live.into_iter().collect(),
            next_id: s.next_id,
            required: s.required,
        })
    }
}

impl Core {
    pub(crate) fn create_api_key(
        &mut self,
        role: ApiRole,
        account: Option<AccountId>,
        secret_hash: Hash32,
        mac_key: Hash32,
        out: &mut Vec<Event>,
    ) -> Outcome {
        if (role == ApiRole::Trader) != account.is_some() {
            return Err(RejectReason::InvalidApiKey);
        }
        if self.keys.live.len() >= self.cfg.api_keys_max {
            return Err(RejectReason::TooManyApiKeys);
        }
        let key = self.keys.next_id;
        self.keys.next_id += 1;
        let record = ApiKey {
            role,
            account,
            secret_hash,
            mac_key,
        };
        self.keys.live.insert(key, record);
        out.push(Event::ApiKeyCreated {
            key: ApiKeyId(key),
            role,
            account,
            secret_hash,
        });
        Ok(key)
    }

    pub(crate) fn require_credentials(&mut self, required: bool, out: &mut Vec<Event>) -> Outcome {
        self.keys.required = required;
        out.push(Event::CredentialsRequired { required });
        Ok(0)
    }

    pub(crate) fn revoke_api_key(&mut self, key: ApiKeyId, out: &mut Vec<Event>) -> Outcome {
        self.keys
            .live
            .remove(&key.0)
            .ok_or(RejectReason::UnknownApiKey)?;
        self.signing.forget_key(key.0);
        out.push(Event::ApiKeyRevoked { key });
        Ok(key.0)
    }

    /// Checks a command's credentials against the clock as it stands (before the
    /// command's own time): the key is live, the MAC matches, the expiry is neither
    /// past nor too far ahead, the key's role allows the command, and — last, so only
    /// a command that passed everything else uses it up — its stream has not used its
    /// `seq`. Returns the signing key's role.
    pub(crate) fn authorize(
        &mut self,
        envelope: &CommandEnvelope,
        record: Option<Record<'_>>,
    ) -> Result<ApiRole, RejectReason> {
        let auth = envelope.auth.ok_or(RejectReason::MissingCredentials)?;
        let key = *self.keys.get(auth.key).ok_or(RejectReason::UnknownApiKey)?;
        let mac = match record {
            Some(Record::Json(text)) => {
                let signed =
                    json_signing_text(text, &auth.mac).ok_or(RejectReason::BadSignature)?;
                mac_of(&key.mac_key, signed.as_bytes())
            }
            Some(Record::Bincode(bytes)) => {
                let signed =
                    bincode_signed_bytes(bytes, &auth.mac).ok_or(RejectReason::BadSignature)?;
                mac_of(&key.mac_key, signed)
            }
            None => envelope
                .mac(&auth, &key.mac_key, &mut self.scratch)
                .map_err(|_| RejectReason::BadSignature)?,
        };
        // blake3::Hash compares in constant time.
        if blake3::Hash::from_bytes(mac.0) != blake3::Hash::from_bytes(auth.mac.0) {
            return Err(RejectReason::BadSignature);
        }
        if auth.expires_ms < self.clock.now() {
            return Err(RejectReason::CredentialsExpired);
        }
        if auth.expires_ms > self.clock.now().saturating_add(MAX_VALIDITY_MS) {
            return Err(RejectReason::ExpiryTooFar);
        }
        let allowed = match key.role {
            ApiRole::Admin => true,
            ApiRole::Auditor => false,
            ApiRole::Oracle => matches!(envelope.command, Command::SetIndexPrice { .. }),
            ApiRole::Trader => {
                !envelope.command.is_admin() && envelope.command.account() == key.account
            }
        };
        if !allowed {
            return Err(RejectReason::NotPermitted);
        }
        if key.role == ApiRole::Admin {
            self.clock.check_trusted(&self.cfg, envelope)?;
        }
        self.signing.admit(
            auth.key.0,
            auth.stream,
            auth.seq,
            auth.expires_ms,
            self.clock.now(),
            self.cfg.signing_streams_per_key_max,
        )?;
        Ok(key.role)
    }
}
