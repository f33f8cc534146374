//! Credentials on the commands topic. A command acts for an account only when it
//! carries [`Credentials`] of a live API key allowed to: the key's id, its signing
//! stream and sequence number, an expiry, and a MAC — blake3 in keyed mode, under
//! the key's MAC key — over the record as written.
//!
//! * The MAC key is derived from the API secret (`tape_<id>_<secret>`, the same
//!   token the gateway takes) with [`mac_key`]; it travels on the commands log inside
//!   `CreateApiKey`, never on the events log, so market makers must be able to write
//!   `tape.commands` but not read it (a Kafka ACL).
//! * A bincode record's MAC covers the record's own bytes before the MAC: the MAC is
//!   the record's last 32 bytes, so a signer encodes the envelope with 32 zero bytes
//!   for it, hashes all but those, and writes the digest in their place. The engine
//!   hashes the bytes it received; nothing is re-encoded.
//! * A JSON record's MAC covers the record's own text as written, with the MAC's 64
//!   hex digits replaced by 64 `0`s: a client in any language writes its JSON with
//!   `"mac":"000…0"`, hashes that text, and puts the hex digest in place of the
//!   zeros ([`sign_json`] does it in Rust). The digest must occur in the text
//!   exactly once, in lowercase.
//! * Time: a trader key's `time_ms` moves the engine's clock at most
//!   [`TIME_TOLERANCE_MS`] past the operator's latest time, so no key holder can push
//!   everyone's clock forward; the operator's time comes from admin keys (`tape
//!   clock` ticks once a second).
//! * Replay protection: a signing process picks a random *stream* when it starts and
//!   numbers its commands `seq` = 1, 2, 3, … within it. The engine keeps, per key and
//!   live stream, the highest `seq` seen and a bitmap of the [`SEQ_WINDOW`] below it
//!   (RFC 4303's anti-replay window), so a copy of a signed record executes nothing
//!   however fast the key signs; several processes sign with one key by each using
//!   their own stream. A stream is forgotten once every command it signed has expired.
//! * A signed command is valid until `expires_ms` (command time) and must expire
//!   within [`MAX_VALIDITY_MS`] of the engine's clock when it arrives.

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

/// How far below a stream's highest `seq` a command may still arrive (out of order)
/// and be told apart from a replay.
pub const SEQ_WINDOW: u64 = 256;

/// The blake3 key-derivation context of MAC keys.
pub const MAC_KEY_CONTEXT: &str = "tape 2026-11-21 command MAC key";

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Credentials {
    /// The API key that signs.
    pub key: ApiKeyId,
    /// The signing process's stream: any number, chosen at random when the process
    /// starts (JavaScript clients: below 2^53), and never shared with another process
    /// signing with the same key.
    pub stream: u64,
    /// The command's number within its stream: 1 for the first, then increasing.
    /// Gaps are fine; a `seq` used once is never accepted again.
    pub seq: u64,
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

/// Signs an envelope as a JSON record under `unsigned` (key, stream, seq, expiry;
/// its `mac` is ignored) and returns the text (see the module notes).
pub fn sign_json(
    envelope: &CommandEnvelope,
    mac_key: &Hash32,
    unsigned: Credentials,
) -> Result<String, CodecError> {
    let mut placeholder_signed = envelope.clone();
    placeholder_signed.auth = Some(Credentials {
        mac: Hash32::default(),
        ..unsigned
    });
    let text = crate::codec::to_json(&placeholder_signed)?;
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

/// A command record as it arrived, for its MAC: the bytes as written.
#[derive(Clone, Copy, Debug)]
pub enum Record<'a> {
    Bincode(&'a [u8]),
    Json(&'a str),
}

/// The bytes a bincode record's MAC covers: all but its last 32 bytes, which must be
/// `mac`; `None` when they are not.
pub fn bincode_signed_bytes<'a>(record: &'a [u8], mac: &Hash32) -> Option<&'a [u8]> {
    let at = record.len().checked_sub(mac.0.len())?;
    (record[at..] == mac.0).then_some(&record[..at])
}

/// Serializes exactly as `CommandEnvelope` does, with borrowed parts.
#[derive(Serialize)]
struct EnvelopeView<'a> {
    version: u16,
    id: &'a CommandId,
    time_ms: u64,
    command: &'a Command,
    auth: Option<&'a Credentials>,
}

impl CommandEnvelope {
    /// Appends the bytes a bincode record of this envelope signed under `auth`
    /// (its `mac` is ignored) has before its MAC to `out`.
    pub fn write_signing_bytes(
        &self,
        auth: &Credentials,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        let placeholder = Credentials {
            mac: Hash32::default(),
            ..*auth
        };
        let view = EnvelopeView {
            version: self.version,
            id: &self.id,
            time_ms: self.time_ms,
            command: &self.command,
            auth: Some(&placeholder),
        };
        write_bincode(&view, out)?;
        // The MAC is the envelope's last field, so the encoding ends with its 32
        // bytes: `out` holds at least those.
        out.truncate(out.len() - placeholder.mac.0.len());
        Ok(())
    }

    /// The MAC this envelope needs under `auth` (its `mac` is ignored) and `mac_key`;
    /// `scratch` is a reusable buffer.
    pub fn mac(
        &self,
        auth: &Credentials,
        mac_key: &Hash32,
        scratch: &mut Vec<u8>,
    ) -> Result<Hash32, CodecError> {
        scratch.clear();
        self.write_signing_bytes(auth, scratch)?;
        Ok(mac_of(mac_key, scratch))
    }

    /// Signs this envelope under `unsigned` (key, stream, seq, expiry; its `mac` is
    /// ignored), replacing any credentials it had.
    pub fn sign(mut self, mac_key: &Hash32, unsigned: Credentials) -> Result<Self, CodecError> {
        let mac = self.mac(&unsigned, mac_key, &mut Vec::new())?;
        self.auth = Some(Credentials { mac, ..unsigned });
        Ok(self)
    }
}

/// A signing process's stream: a number picked at random when the process starts
/// and the next `seq`. One stream may serve many keys (a gateway signs for all its
/// callers on one); each key then sees increasing numbers with gaps, which is fine.
/// Records should reach the log in about the order their numbers were taken: the
/// engine takes them up to [`SEQ_WINDOW`] out of order.
#[derive(Debug)]
pub struct SigningStream {
    stream: u64,
    next_seq: std::sync::atomic::AtomicU64,
}

impl SigningStream {
    pub fn new(stream: u64) -> SigningStream {
        SigningStream {
            stream,
            next_seq: std::sync::atomic::AtomicU64::new(1),
        }
    }

    pub fn stream(&self) -> u64 {
        self.stream
    }

    /// Takes the next `seq`.
    pub fn take(&self) -> u64 {
        self.next_seq
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}

/// An API key's id and MAC key, and the stream it signs on.
#[derive(Clone, Debug)]
pub struct Signer {
    key: ApiKeyId,
    mac_key: Hash32,
    stream: std::sync::Arc<SigningStream>,
}

impl Signer {
    pub fn new(key: ApiKeyId, mac_key: Hash32, stream: std::sync::Arc<SigningStream>) -> Signer {
        Signer {
            key,
            mac_key,
            stream,
        }
    }

    /// The signer of an API token `tape_<key id>_<secret>` on `stream` (`None` if
    /// the token is malformed). It checks nothing against the log: the engine does.
    pub fn from_token(token: &str, stream: std::sync::Arc<SigningStream>) -> Option<Signer> {
        let (key, secret) = parse_token(token)?;
        Some(Signer::new(key, mac_key(secret), stream))
    }

    pub fn key(&self) -> ApiKeyId {
        self.key
    }

    pub fn stream(&self) -> &std::sync::Arc<SigningStream> {
        &self.stream
    }

    /// The next credentials of this signer (MAC not yet computed).
    pub fn next(&self, expires_ms: u64) -> Credentials {
        Credentials {
            key: self.key,
            stream: self.stream.stream(),
            seq: self.stream.take(),
            expires_ms,
            mac: Hash32::default(),
        }
    }

    /// Signs `envelope` with the next seq, valid until `expires_ms`.
    pub fn sign(
        &self,
        envelope: CommandEnvelope,
        expires_ms: u64,
    ) -> Result<CommandEnvelope, CodecError> {
        envelope.sign(&self.mac_key, self.next(expires_ms))
    }

    /// Signs `envelope` as a JSON record with the next seq.
    pub fn sign_json(
        &self,
        envelope: &CommandEnvelope,
        expires_ms: u64,
    ) -> Result<String, CodecError> {
        sign_json(envelope, &self.mac_key, self.next(expires_ms))
    }
}

/// The key id and secret of an API token `tape_<key id>_<secret>`.
pub fn parse_token(token: &str) -> Option<(ApiKeyId, &str)> {
    let (id, secret) = token.trim().strip_prefix("tape_")?.split_once('_')?;
    Some((ApiKeyId(id.parse().ok()?), secret))
}
