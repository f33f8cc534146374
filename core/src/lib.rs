//! Tape's deterministic core: every order book and every balance, as one state
//! machine. `Core::apply` turns one command into events; its output is a pure
//! function of the commands applied so far.
//!
//! Never here: IO, the system clock, randomness, floats, or hash-map iteration that
//! reaches an event or a snapshot. Hash maps are lookups only; everything that is
//! walked in order is a `BTreeMap`, a `BTreeSet` or a `Vec`.
//!
//! Each part owns its state. A part (`ledger`, `fees`, `custody`, `restrictions`,
//! the orders' index, `market` and its `book`, `assets`, `clock`, `keys`,
//! `signing`, `dedupe`, `deadman`) keeps its fields private to its module; other
//! files read and change it only through its methods, and it lists its own state
//! for the snapshot and rebuilds itself from that list. `Core` composes the parts
//! and orchestrates them: the `impl Core` blocks call the parts' methods, and
//! `snapshot.rs` only joins the parts' lists. A part checks, in release, what it is
//! given and what it leaves where a mistake would corrupt state; no input reaches
//! those checks, because every input is refused earlier with a `RejectReason`.

// No function over 70 lines (clippy.toml): split along the seams, or allow it with
// the reason beside it. `.ci/run` denies warnings, so this is a gate.
#![warn(clippy::too_many_lines)]

mod admin;
mod assets;
mod book;
mod by_account;
mod checked;
mod clock;
mod config;
mod custody;
mod deadman;
mod dedupe;
mod exchange;
mod fees;
mod funding;
mod invariants;
mod keys;
mod ladder;
mod ledger;
mod leverage;
mod liabilities;
mod liquidation;
mod margin;
mod market;
mod matching;
mod orders;
mod perp_fills;
mod perp_orders;
mod perps;
mod positions;
mod queries;
mod restrictions;
mod settlement;
mod signing;
mod snapshot;
mod sorted;
mod units;
mod watch;

pub use exchange::{ApiKey, Core, CoreConfig, PREFETCH_AHEAD};
pub use invariants::InvariantViolation;
pub use ledger::Balance;
pub use liabilities::{LastRound, Leaves, LIABILITY_ALGORITHM};
pub use queries::{FundingInfo, MarginSummary, PerpetualPrices, PositionInfo};
pub use snapshot::{state_hash_of, SnapshotError};
