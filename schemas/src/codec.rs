//! The two codecs. bincode 2 (standard config: little-endian varints) is canonical:
//! logs and hashes use it, and golden files pin it. JSON is for people. Decoding never
//! panics: bad bytes, trailing bytes, wrong versions and oversize input are errors.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::command::CommandEnvelope;
use crate::SCHEMA_VERSION;

/// No message on a log may be larger than this.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

const CONFIG: bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_MESSAGE_BYTES>,
> = bincode::config::standard().with_limit::<MAX_MESSAGE_BYTES>();

/// Snapshots are state, not messages: they may be large.
pub const MAX_SNAPSHOT_BYTES: usize = 1 << 32;

const LARGE: bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_SNAPSHOT_BYTES>,
> = bincode::config::standard().with_limit::<MAX_SNAPSHOT_BYTES>();

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("message is {size_bytes} bytes; the limit is {MAX_MESSAGE_BYTES}")]
    TooLarge { size_bytes: usize },
    #[error("bincode: {0}")]
    Decode(#[from] bincode::error::DecodeError),
    #[error("bincode: {0}")]
    Encode(#[from] bincode::error::EncodeError),
    #[error("{trailing} unexpected bytes after the message")]
    Trailing { trailing: usize },
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("schema version {found} is not supported (this build speaks {SCHEMA_VERSION})")]
    Version { found: u16 },
    #[error("not an event record: {0}")]
    NotAnEvent(String),
}

/// Canonical bytes of any wire value.
pub fn to_bincode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    Ok(bincode::serde::encode_to_vec(value, CONFIG)?)
}

/// Appends the canonical bytes of `value` to `out` (no allocation when `out` has room).
pub fn write_bincode<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
    bincode::serde::encode_into_std_write(value, out, CONFIG)?;
    Ok(())
}

pub fn from_bincode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(CodecError::TooLarge {
            size_bytes: bytes.len(),
        });
    }
    let (value, used) = bincode::serde::decode_from_slice(bytes, CONFIG)?;
    if used != bytes.len() {
        return Err(CodecError::Trailing {
            trailing: bytes.len() - used,
        });
    }
    Ok(value)
}

/// Canonical bytes of a snapshot-sized value (same encoding, larger limit).
pub fn to_bincode_large<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    Ok(bincode::serde::encode_to_vec(value, LARGE)?)
}

pub fn from_bincode_large<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, used) = bincode::serde::decode_from_slice(bytes, LARGE)?;
    if used != bytes.len() {
        return Err(CodecError::Trailing {
            trailing: bytes.len() - used,
        });
    }
    Ok(value)
}

/// Decodes a value at the start of `bytes` (canonical bincode, large limits) and
/// ignores what follows: a header read before the rest is known to decode.
pub fn from_bincode_prefix<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, _) = bincode::serde::decode_from_slice(bytes, LARGE)?;
    Ok(value)
}

pub fn to_json<T: Serialize>(value: &T) -> Result<String, CodecError> {
    Ok(serde_json::to_string(value)?)
}

pub fn from_json<T: DeserializeOwned>(text: &str) -> Result<T, CodecError> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(CodecError::TooLarge {
            size_bytes: text.len(),
        });
    }
    Ok(serde_json::from_str(text)?)
}

fn check_version(envelope: CommandEnvelope) -> Result<CommandEnvelope, CodecError> {
    if envelope.version != SCHEMA_VERSION {
        return Err(CodecError::Version {
            found: envelope.version,
        });
    }
    Ok(envelope)
}

/// Decodes a command from its canonical bytes and checks its version.
pub fn command_from_bincode(bytes: &[u8]) -> Result<CommandEnvelope, CodecError> {
    check_version(from_bincode(bytes)?)
}

/// Decodes a command from JSON and checks its version.
pub fn command_from_json(text: &str) -> Result<CommandEnvelope, CodecError> {
    check_version(from_json(text)?)
}

/// Decodes a command record as it sits on the commands log: JSON when its first
/// non-blank byte is `{`, canonical bincode otherwise. Also returns the record as
/// written (its MAC covers that). Anything that does not decode is malformed; the
/// engine answers it with a rejection.
pub fn decode_record(bytes: &[u8]) -> Result<(CommandEnvelope, crate::Record<'_>), CodecError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {
            let text = std::str::from_utf8(bytes)
                .map_err(|e| CodecError::Json(serde::de::Error::custom(e)))?;
            Ok((command_from_json(text)?, crate::Record::Json(text)))
        }
        _ => Ok((command_from_bincode(bytes)?, crate::Record::Bincode(bytes))),
    }
}

/// `decode_record` without the record.
pub fn decode_command(bytes: &[u8]) -> Result<CommandEnvelope, CodecError> {
    decode_record(bytes).map(|(command, _)| command)
}
