//! The auditor's check of proof-of-liabilities rounds. At every checkpoint the
//! re-execution keeps what a round may name (the checkpoint's `seq`, its state
//! hash and the liability totals there); a `LiabilitiesCommitted` event must name
//! a checkpoint the log has, with that seq, that state hash and those totals.
//! Given the operator's round secret, the tree is rebuilt at each round's
//! checkpoint and its root must be the published one, byte for byte.

use std::collections::BTreeMap;
use std::time::Duration;

use tape_core::Core;
use tape_log::{Log, LogReader, Record};
use tape_schemas::{EventEnvelope, Hash32, LiabilityCommitment, LiabilityTotal};

use crate::{disagreement, Disagreement, VerifyError};

/// How many checkpoints back a round may name: an older one cannot be checked.
pub const CHECKPOINTS_KEPT: usize = 4096;

struct Facts {
    seq: u64,
    state_hash: Hash32,
    totals: Vec<LiabilityTotal>,
    /// The rebuilt root, when a round names this checkpoint and the secret is known.
    root: Option<Hash32>,
}

/// The rounds to rebuild (found on the events log first) and the secret.
pub struct Rebuild {
    pub secret: Vec<u8>,
    /// Checkpoint -> (round, height).
    pub rounds: BTreeMap<u64, (u64, u8)>,
}

#[derive(Default)]
pub(crate) struct Checks {
    facts: BTreeMap<u64, Facts>,
    pub rebuild: Option<Rebuild>,
    pub rounds: u64,
    pub rebuilt: u64,
}

impl Checks {
    /// Notes the checkpoint after `commands_applied` commands, written at `seq`.
    ///
    /// A rebuilt tree has `2^height` leaves as the round committed it (the engine
    /// takes 1 to 32): memory grows with it, 2^20 leaves of 4 assets are ~250 MB.
    /// Only an admin key can commit a round, and this runs only with the round
    /// secret, in the auditor's hands; a stranger's command cannot size it.
    pub fn checkpoint(&mut self, core: &Core, commands_applied: u64, seq: u64, state_hash: Hash32) {
        let root = self.rebuild.as_ref().and_then(|r| {
            let (round, height) = *r.rounds.get(&commands_applied)?;
            let leaves = core.liability_leaves();
            let balances = tape_pol::Balances {
                assets: leaves.assets,
                accounts: leaves.accounts,
                sums: leaves.sums,
            };
            let tree = tape_pol::Tree::build(&r.secret, round, commands_applied, height, &balances);
            // A tree that cannot be built has no root: the round then fails below.
            tree.ok().map(|t| Hash32(t.published.root))
        });
        let totals = core.liability_totals();
        self.facts.insert(
            commands_applied,
            Facts {
                seq,
                state_hash,
                totals,
                root,
            },
        );
        while self.facts.len() > CHECKPOINTS_KEPT {
            self.facts.pop_first();
        }
    }

    /// A commitment produced at `seq` (by the command at `offset`).
    pub fn commitment(
        &mut self,
        c: &LiabilityCommitment,
        seq: u64,
        offset: u64,
    ) -> Result<(), Disagreement> {
        let bad = |what: &str, expected: String, found: String| {
            let what = format!("liabilities round {} {what}", c.round);
            disagreement(seq, offset, &what, expected, found)
        };
        let Some(f) = self.facts.get(&c.checkpoint) else {
            let expected = format!("one of the last {CHECKPOINTS_KEPT} checkpoints");
            let found = format!("checkpoint {}", c.checkpoint);
            return Err(bad(
                "names a checkpoint the log does not have",
                expected,
                found,
            ));
        };
        if (c.checkpoint_seq, c.state_hash) != (f.seq, f.state_hash) {
            let expected = format!("seq {} state hash {}", f.seq, f.state_hash);
            let found = format!("seq {} state hash {}", c.checkpoint_seq, c.state_hash);
            return Err(bad("does not match its checkpoint", expected, found));
        }
        if c.totals != f.totals {
            let (expected, found) = (format!("{:?}", f.totals), format!("{:?}", c.totals));
            return Err(bad(
                "publishes totals the ledger did not hold",
                expected,
                found,
            ));
        }
        if let Some(r) = &self.rebuild {
            let expected = match f.root {
                Some(root) if r.rounds.get(&c.checkpoint) == Some(&(c.round, c.height)) => root,
                _ => Hash32::default(),
            };
            if expected != c.root {
                let (e, found) = (format!("root {expected}"), format!("root {}", c.root));
                return Err(bad(
                    "has a root the round secret does not rebuild",
                    e,
                    found,
                ));
            }
            self.rebuilt += 1;
        }
        self.rounds += 1;
        Ok(())
    }
}

/// Every round committed on the events log, in order (read before re-execution,
/// so the trees are rebuilt at the right checkpoints).
pub async fn rounds_on_log<E: Log>(events: &E) -> Result<Vec<LiabilityCommitment>, VerifyError> {
    let total = events.end_offset().await?;
    let mut reader = events.reader(0).await?;
    let mut fencing = tape_schemas::Fencing::new();
    let mut found = Vec::new();
    let mut read = 0u64;
    while read < total {
        let want = (total - read).min(crate::READ_BATCH_RECORDS as u64) as usize;
        let batch = reader.next_batch(want, Duration::from_secs(30)).await?;
        if batch.is_empty() {
            return Err(tape_log::LogError::OffsetOutOfRange(read).into());
        }
        read += batch.len() as u64;
        for Record { bytes, .. } in batch {
            // What does not decode is the verification's to report, not this scan's.
            let Ok(tape_schemas::Admit::Event { envelope, .. }) = fencing.admit(&bytes) else {
                continue;
            };
            if let Ok(e) = tape_schemas::codec::from_bincode::<EventEnvelope>(envelope) {
                if let tape_schemas::Event::LiabilitiesCommitted(c) = e.event {
                    found.push(c);
                }
            }
        }
    }
    Ok(found)
}
