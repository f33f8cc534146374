//! Tape's wire language: the commands that enter the commands log, the events the
//! engine writes to the events log, their envelopes, ids and money types, and the two
//! codecs (bincode 2, canonical, for logs and hashing; JSON for people and non-Rust
//! clients). Nothing here decides anything: this crate only says what may be said.

// No function over 70 lines (clippy.toml): split along the seams, or allow it with
// the reason beside it. `.ci/run` denies warnings, so this is a gate.
#![warn(clippy::too_many_lines)]

pub mod auth;
pub mod codec;
pub mod command;
pub mod control;
pub mod event;
pub mod feeds;
pub mod ids;
pub mod liabilities;
pub mod limits;
pub mod money;
pub mod perp;
pub mod reason;
pub mod record;

pub use auth::{
    bincode_signed_bytes, hash_secret, json_signing_text, mac_key, mac_of, parse_token, sign_json,
    Credentials, Record, Signer, SigningStream, MAX_VALIDITY_MS, SEQ_WINDOW, TIME_TOLERANCE_MS,
};
pub use codec::{CodecError, MAX_MESSAGE_BYTES};
pub use command::*;
pub use control::{Change, ControlRecord, Leadership};
pub use event::*;
pub use feeds::{AccountRecord, AccountUpdate, FillSide, MarketRecord, MarketUpdate};
pub use ids::*;
pub use liabilities::{LiabilityCommitment, LiabilityTotal, LIABILITY_ASSETS_MAX};
pub use money::Dec;
pub use perp::{
    BracketTerms, IndexRules, LeverageBracket, LeverageTier, LiquidationStage, PerpetualSpec,
    TierCaps, PERP_BRACKETS_MAX,
};
pub use reason::{DoneReason, RejectReason};
pub use record::{
    epoch_before, event_frame, fence_record, frame_event, set_epoch, Admit, EventFilter,
    EventRecord, Fence, Fencing, RecordError, APPEND_RECORDS_MAX, FRAME_BYTES,
};

/// The schema version written in every envelope. A decoder refuses any other version
/// with a clear error instead of guessing.
pub const SCHEMA_VERSION: u16 = 3;
