//! Credentials on the commands topic. A command acts for an account only when it
//! carries [`Credentials`] of a live API key allowed to: the key's id, an expiry, and
//! a MAC — blake3 in keyed mode — over the command's *signing bytes* with the key's
//! MAC key.
//!
//! * The MAC key is derived from the API secret (`tape_<id>_<secret>`, the same
//!   token the gateway takes) with [`mac_key`]; it travels on the commands log inside
//!   `CreateApiKey`, never on the events log, so market makers must be able to write
//!   `tape.commands` but not read it (a Kafka ACL).
//! * A bincode record's MAC covers its *signing bytes*: the canonical bincode of
//!   `(version, id, time_ms, command, key, expires_ms)` — every field of the
//!   envelope except the MAC.
//! * A JSON record's MAC covers the record's own text as written, with the MAC's 64
//!   hex digits replaced by 64 `0`s: a client in any language writes its JSON with
//!   `"mac":"000…0"`, hashes that text, and puts the hex digest in place of the
//!   zeros ([`sign_json`] does it in Rust). The digest must occur in the text
//!   exactly once, in lowercase.
//! * Time: a trader key's `time_ms` moves the engine's clock at most
//!   [`TIME_TOLERANCE_MS`] past the operator's latest time, so no key holder can push
//!   everyone's clock forward; the operator's time comes from admin keys (`tape
//!   clock` ticks once a second).
//! * A signed command is valid until `expires_ms` (command time) and must expire
//!   within [`MAX_VALIDITY_MS`] of the engine's clock when it arrives: within that
//!   span the dedupe window answers a repeat of its id as a duplicate, so a replayed
//!   record executes nothing.

use serde::{Deserialize, Serialize};

use crate::codec::{write_bincode, CodecError};
use crate::command::{Command, CommandEnvelope};
use crate::ids::{ApiKeyId, CommandId};
use crate::Hash32;

/// How far ahead of the engine's clock a signed command may expire.
pub const MAX_VALIDITY_MS: u64 = 60_000;

/// How far a trader key's `time_ms` may run ahead of the latest time the operator's
/// side stamped (admin keys — `tape clock` ticks — or unsigned commands while
/// credentials are optional); a later stamp counts as that bound.
pub const TIME_TOLERANCE_MS: u64 = 2_000;

/// The blake3 key-derivation context of MAC keys.
pub const MAC_KEY_CONTEXT: &str = "tape 2026-11-21 command MAC key";

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Credentials {
    /// The API key that signs.
    pub key: ApiKeyId,
    /// Command time (ms since the UNIX epoch) after which the command is refused.
    pub expires_ms: u64,
    /// `blake3::keyed_hash(mac_key, signing bytes)`.
    pub mac: Hash32,
}

/// The 64-zero placeholder a JSON record carries where its MAC goes while it is
/// being signed.
pub const JSON_MAC_PLACEHOLDER: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// The bytes a JSON record's MAC covers: `text` with the MAC's hex replaced by the
/// placeholder; `None` when the hex does not occur exactly once.
pub fn json_signing_text(text: &str, mac: &Hash32) -> Option<String> {
    let hex = mac.to_string();
    let mut found = text.match_indices(&hex);
    let (at, _) = found.next()?;
    if found.next().is_some() {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..at]);
    out.push_str(JSON_MAC_PLACEHOLDER);
    out.push_str(&text[at + hex.len()..]);
    Some(out)
}

/// Signs an envelope as a JSON record (see the module notes) and returns the text.
pub fn sign_json(
    envelope: &CommandEnvelope,
    key: ApiKeyId,
    mac_key: &Hash32,
    expires_ms: u64,
) -> Result<String, CodecError> {
    let mut unsigned = envelope.clone();
    unsigned.auth = Some(Credentials {
        key,
        expires_ms,
        mac: Hash32::default(),
    });
    let text = crate::codec::to_json(&unsigned)?;
    let mac = mac_of(mac_key, text.as_bytes());
    let placeholder = format!("\"mac\":\"{JSON_MAC_PLACEHOLDER}\"");
    Ok(text.replacen(&placeholder, &format!("\"mac\":\"{mac}\""), 1))
}

/// The hash of an API secret that goes on the log (the gateway checks bearer tokens
/// against it).
pub fn hash_secret(secret: &str) -> Hash32 {
    Hash32(*blake3::hash(secret.as_bytes()).as_bytes())
}

/// `blake3::keyed_hash(mac_key, bytes)`: the MAC of every credential.
pub fn mac_of(mac_key: &Hash32, bytes: &[u8]) -> Hash32 {
    Hash32(*blake3::keyed_hash(&mac_key.0, bytes).as_bytes())
}

/// The MAC key of an API secret (the hex text after the key id in the token).
pub fn mac_key(secret: &str) -> Hash32 {
    Hash32(blake3::derive_key(MAC_KEY_CONTEXT, secret.as_bytes()))
}

#[derive(Serialize)]
struct SigningBytes<'a> {
    version: u16,
    id: &'a CommandId,
    time_ms: u64,
    command: &'a Command,
    key: ApiKeyId,
    expires_ms: u64,
}

impl CommandEnvelope {
    /// Appends the signing bytes of this envelope under `key` and `expires_ms` to `out`.
    pub fn write_signing_bytes(
        &self,
        key: ApiKeyId,
        expires_ms: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        let bytes = SigningBytes {
            version: self.version,
            id: &self.id,
            time_ms: self.time_ms,
            command: &self.command,
            key,
            expires_ms,
        };
        write_bincode(&bytes, out)
    }

    /// The MAC this envelope needs under `key`, `expires_ms` and `mac_key`; `scratch`
    /// is a reusable buffer.
    pub fn mac(
        &self,
        key: ApiKeyId,
        expires_ms: u64,
        mac_key: &Hash32,
        scratch: &mut Vec<u8>,
    ) -> Result<Hash32, CodecError> {
        scratch.clear();
        self.write_signing_bytes(key, expires_ms, scratch)?;
        Ok(mac_of(mac_key, scratch))
    }

    /// Signs this envelope with an API key (replacing any credentials it had).
    pub fn sign(
        mut self,
        key: ApiKeyId,
        mac_key: &Hash32,
        expires_ms: u64,
    ) -> Result<Self, CodecError> {
        let mac = self.mac(key, expires_ms, mac_key, &mut Vec::new())?;
        self.auth = Some(Credentials {
            key,
            expires_ms,
            mac,
        });
        Ok(self)
    }
}
