//! Credentials on the commands topic. A command acts for an account only when it
//! carries [`Credentials`] of a live API key allowed to: the key's id, an expiry, and
//! a MAC — blake3 in keyed mode — over the command's *signing bytes* with the key's
//! MAC key.
//!
//! * The MAC key is derived from the API secret (`tape_<id>_<secret>`, the same
//!   token the gateway takes) with [`mac_key`]; it travels on the commands log inside
//!   `CreateApiKey`, never on the events log, so market makers must be able to write
//!   `tape.commands` but not read it (a Kafka ACL).
//! * The signing bytes are the canonical bincode of `(version, id, time_ms, command,
//!   key, expires_ms)` — every field of the envelope except the MAC — whatever codec
//!   the record itself uses, so a JSON record and a bincode record of one command
//!   carry the same MAC.
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
        Ok(Hash32(*blake3::keyed_hash(&mac_key.0, scratch).as_bytes()))
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
