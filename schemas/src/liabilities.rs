//! What a proof-of-liabilities round publishes on the log: the tree's root over
//! every account's balances at one checkpoint, and the totals beside it. The tree
//! itself, the salts and the proofs stay off the log (`tape-pol`, `tape pol`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{AssetCode, Hash32};

/// The most assets a round's tree carries.
pub const LIABILITY_ASSETS_MAX: usize = 16;

/// One asset's totals at the checkpoint, in minor units (exactly as the tree adds
/// them): what the accounts hold (the tree's total: available plus held, pending
/// withdrawals included), and beside it the fee account and the insurance fund,
/// which are the exchange's own and have no leaf.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct LiabilityTotal {
    pub asset: AssetCode,
    pub users: u128,
    pub fees: u64,
    /// Signed: below zero is bad debt.
    pub insurance: i128,
}

/// A round's commitment: appended by `tape pol` (an admin command) and written as
/// an event, so it is in the hash chain with the log's time.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct LiabilityCommitment {
    /// 1, 2, …: one more than the last round.
    pub round: u64,
    /// The checkpoint the balances were taken at: commands applied there.
    pub checkpoint: u64,
    /// The `seq` of that checkpoint's `Checkpoint` event, and its state hash.
    pub checkpoint_seq: u64,
    pub state_hash: Hash32,
    /// The tree has `2^height` leaves, padding included.
    pub height: u8,
    /// The construction's version (`tape_pol::ALGORITHM`).
    pub algorithm: u16,
    pub root: Hash32,
    /// Every asset, in the order of the assets' creation (the tree's sums).
    pub totals: Vec<LiabilityTotal>,
}
