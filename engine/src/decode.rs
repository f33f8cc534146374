//! Commands arrive as canonical bincode or as JSON (a record whose first
//! non-blank byte is `{`). Anything else, or anything that does not decode, is
//! malformed and becomes a rejection event; it never stops the engine.

use tape_schemas::{codec, CodecError, CommandEnvelope, Record};

pub fn decode_command(bytes: &[u8]) -> Result<CommandEnvelope, CodecError> {
    decode_record(bytes).map(|(command, _)| command)
}

/// Decodes a command record; also returns the record as written (its MAC covers
/// that).
pub fn decode_record(bytes: &[u8]) -> Result<(CommandEnvelope, Record<'_>), CodecError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {
            let text = std::str::from_utf8(bytes)
                .map_err(|e| CodecError::Json(serde::de::Error::custom(e)))?;
            Ok((codec::command_from_json(text)?, Record::Json(text)))
        }
        _ => Ok((codec::command_from_bincode(bytes)?, Record::Bincode(bytes))),
    }
}

/// Applies one command record to `core`; a malformed record is answered with its
/// rejection and the decoding error is returned. The engine and the auditors'
/// replay both apply records through this.
pub fn apply_record(
    core: &mut tape_core::Core,
    bytes: &[u8],
    out: &mut Vec<tape_schemas::Event>,
) -> Result<(), CodecError> {
    match decode_record(bytes) {
        Ok((command, record)) => {
            core.apply_record(&command, Some(record), out);
            Ok(())
        }
        Err(e) => {
            core.reject_malformed(out);
            Err(e)
        }
    }
}
