//! Tape's client side, apart from the server: a `Submitter` that signs commands on
//! one random signing stream and appends them to the commands log in `seq` order,
//! remembering where each went (so a retry gets the original receipt), and
//! `wait_outcome`, which follows the read models for the engine's answer. The
//! gateway submits through it; so do `tape mm`, `tape load` and `tape produce`.

// No function over 70 lines (clippy.toml): split along the seams, or allow it with
// the reason beside it. `.ci/run` denies warnings, so this is a gate.
#![warn(clippy::too_many_lines)]

pub mod explain;
pub mod submit;

use tape_schemas::MAX_VALIDITY_MS;

pub use explain::{explain, explain_item, rule, Facts, NoFacts};
pub use submit::{wait_outcome, CommandsDoor, QueueError, Submitter};

/// Milliseconds since the UNIX epoch, by this machine's clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// When a signature made at `time_ms` expires: half the longest the engine allows,
/// so clock skew between a signer and the engine leaves room.
pub fn expiry(time_ms: u64) -> u64 {
    time_ms + MAX_VALIDITY_MS / 2
}
