//! Commands arrive as canonical bincode or as JSON (a record whose first
//! non-blank byte is `{`). Anything else, or anything that does not decode, is
//! malformed and becomes a rejection event; it never stops the engine.

use tape_schemas::{codec, CodecError, CommandEnvelope};

pub fn decode_command(bytes: &[u8]) -> Result<CommandEnvelope, CodecError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {
            let text = std::str::from_utf8(bytes)
                .map_err(|e| CodecError::Json(serde::de::Error::custom(e)))?;
            codec::command_from_json(text)
        }
        _ => codec::command_from_bincode(bytes),
    }
}
