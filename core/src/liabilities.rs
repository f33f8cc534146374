//! Proof of liabilities, the core's part: what each account owes the exchange's
//! users at this moment (the tree's leaves, built outside the core by `tape pol`
//! from a checkpoint's snapshot), the totals beside them, and the rule a round's
//! commitment must follow to go on the log. The root itself cannot be checked
//! here (its salts come from a secret the core never sees); `tape replay` checks
//! it, and the totals, against the checkpoint the round names.

use serde::{Deserialize, Serialize};
use tape_schemas::{Event, LiabilityCommitment, LiabilityTotal, RejectReason};

use crate::exchange::{Core, Outcome};

/// The last round on the log: its number and its checkpoint.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRound {
    pub round: u64,
    pub checkpoint: u64,
}

/// Every account's liabilities, account by account (by id): one sum per asset,
/// available plus held, in minor units.
pub struct Leaves {
    pub accounts: Vec<u64>,
    pub sums: Vec<u128>,
    pub assets: usize,
}

impl Core {
    /// Per asset: what the accounts hold, the fee account's balance and the
    /// insurance fund, in minor units.
    pub fn liability_totals(&self) -> Vec<LiabilityTotal> {
        let mut users = vec![0u128; self.assets.len()];
        for (_, asset, b) in self.ledger.balances() {
            users[asset as usize] += b.total();
        }
        (0u16..)
            .zip(self.assets.iter())
            .map(|(i, a)| {
                let system = self.ledger.system(i);
                LiabilityTotal {
                    asset: a.code,
                    users: users[i as usize],
                    fees: system.fees,
                    insurance: system.insurance,
                }
            })
            .collect()
    }

    /// Every account's leaf sums, by account id.
    pub fn liability_leaves(&self) -> Leaves {
        let assets = self.assets.len();
        let listed = self.ledger.accounts_by_id();
        let mut sums = vec![0u128; listed.len() * assets];
        let mut accounts = Vec::with_capacity(listed.len());
        for (k, (id, balances)) in listed.iter().enumerate() {
            accounts.push(id.0);
            for (i, b) in balances.iter().enumerate().take(assets) {
                sums[k * assets + i] = b.total();
            }
        }
        Leaves {
            accounts,
            sums,
            assets,
        }
    }

    /// The last round committed on the log.
    pub fn last_liability_round(&self) -> Option<LastRound> {
        self.liabilities
    }

    /// `CommitLiabilities`: the next round, at a later checkpoint, in the shape
    /// this build makes (the root and the totals are the auditors' to check).
    pub(crate) fn commit_liabilities(
        &mut self,
        c: &LiabilityCommitment,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let last = self.liabilities.unwrap_or_default();
        if c.round != last.round.saturating_add(1) || c.checkpoint <= last.checkpoint {
            return Err(RejectReason::LiabilityRound);
        }
        let assets_in_order = c.totals.len() == self.assets.len()
            && c.totals
                .iter()
                .zip(self.assets.iter())
                .all(|(t, a)| t.asset == a.code);
        let shape = c.algorithm == LIABILITY_ALGORITHM
            && (1..=32).contains(&c.height)
            && (1..=tape_schemas::LIABILITY_ASSETS_MAX).contains(&c.totals.len())
            && assets_in_order;
        if !shape {
            return Err(RejectReason::LiabilityRecord);
        }
        self.liabilities = Some(LastRound {
            round: c.round,
            checkpoint: c.checkpoint,
        });
        out.push(Event::LiabilitiesCommitted(c.clone()));
        Ok(0)
    }
}

/// The construction this build commits to (`tape_pol::ALGORITHM`; the core does
/// not depend on the tree's crate, and a test keeps the two equal).
pub const LIABILITY_ALGORITHM: u16 = 1;
