//! Proof of liabilities: the rounds published on the log (any caller), and an
//! account's inclusion proof in a round (its owner, or staff naming it). Every
//! account's proof is made when the round is built (`tape pol build`), so asking
//! for one tells the exchange nothing it could still act on.

use async_graphql::SimpleObject;

use super::*;

#[derive(Default)]
pub struct LiabilitiesQuery;

/// One asset's totals at a round's checkpoint, in minor units (decimal strings:
/// they may pass 2^53).
#[derive(SimpleObject, Clone)]
pub struct LiabilityTotal {
    pub asset: String,
    /// Decimal places of a minor unit: `users` / 10^scale is in the asset.
    pub scale: u8,
    /// What the accounts hold: the tree's total, checked by every proof.
    pub users: String,
    /// The fee account and the insurance fund: the exchange's own, no leaf.
    pub fees: String,
    pub insurance: String,
}

/// A proof-of-liabilities round as the log published it.
#[derive(SimpleObject, Clone)]
pub struct LiabilityRound {
    pub round: u64,
    /// The checkpoint its balances were taken at: commands applied, the
    /// checkpoint event's seq and its state hash (hex).
    pub checkpoint: u64,
    pub checkpoint_seq: u64,
    pub state_hash: String,
    pub height: u8,
    pub algorithm: u16,
    /// The tree's root (hex).
    pub root: String,
    pub totals: Vec<LiabilityTotal>,
    /// Where the round is on the events log, and when.
    pub seq: u64,
    pub time_ms: u64,
    /// Whether this gateway serves the round's proofs.
    pub proofs_available: bool,
}

/// A sibling on the path from a leaf to the root.
#[derive(SimpleObject, Clone)]
pub struct LiabilitySibling {
    pub hash: String,
    pub sums: Vec<String>,
}

/// An account's inclusion proof: with the round's record, all a verifier needs.
#[derive(SimpleObject, Clone)]
pub struct LiabilityProof {
    pub round: u64,
    pub account: u64,
    /// The account's salt this round (hex): keep it private, it ties the leaf to you.
    pub salt: String,
    /// The leaf's place: bit i says whether the path goes left (0) or right (1)
    /// at level i.
    pub index: u64,
    /// The leaf's sums, one per asset of the round, in minor units.
    pub balances: Vec<String>,
    pub path: Vec<LiabilitySibling>,
    /// The asset of each sum.
    pub assets: Vec<String>,
}

fn round_of(st: &AppState, v: LiabilityRoundView) -> LiabilityRound {
    let c = v.commitment;
    let totals = c
        .totals
        .iter()
        .map(|t| LiabilityTotal {
            asset: t.asset.to_string(),
            scale: st
                .views
                .asset(&t.asset)
                .ok()
                .flatten()
                .map_or(0, |a| a.scale),
            users: t.users.to_string(),
            fees: t.fees.to_string(),
            insurance: t.insurance.to_string(),
        })
        .collect();
    let proofs_available = st
        .config
        .pol_dir
        .as_ref()
        .is_some_and(|d| d.join(tape_pol::tree_file_name(c.round)).exists());
    LiabilityRound {
        round: c.round,
        checkpoint: c.checkpoint,
        checkpoint_seq: c.checkpoint_seq,
        state_hash: hex::encode(c.state_hash.0),
        height: c.height,
        algorithm: c.algorithm,
        root: hex::encode(c.root.0),
        totals,
        seq: v.seq,
        time_ms: v.time_ms,
        proofs_available,
    }
}

#[Object]
impl LiabilitiesQuery {
    /// The proof-of-liabilities rounds on the log, newest first (any caller).
    async fn liability_rounds(&self, ctx: &Context<'_>) -> Result<Vec<LiabilityRound>> {
        let st = state(ctx);
        let mut rounds = st.views.liability_rounds().map_err(store)?;
        rounds.reverse();
        Ok(rounds.into_iter().map(|v| round_of(st, v)).collect())
    }

    /// An account's proof in a round (the newest when `round` is left out): a
    /// trader's own, or any account's for staff who name it.
    async fn my_liability_proof(
        &self,
        ctx: &Context<'_>,
        round: Option<u64>,
        account: Option<u64>,
    ) -> Result<LiabilityProof> {
        let account = readable(ctx, account)?;
        let st = state(ctx);
        let round = match round {
            Some(r) => r,
            None => st
                .views
                .liability_rounds()
                .map_err(store)?
                .last()
                .map_or(0, |v| v.commitment.round),
        };
        let missing = |what: String| coded(Code::NotFound, what);
        let Some(view) = st.views.liability_round(round).map_err(store)? else {
            return Err(missing(format!("no liabilities round {round} on the log")));
        };
        let Some(dir) = st.config.pol_dir.as_ref() else {
            return Err(coded(
                Code::Unavailable,
                "this gateway serves no proofs (no --pol-dir)",
            ));
        };
        let path = dir.join(tape_pol::tree_file_name(round));
        let file = tape_pol::TreeFile::open(&path).map_err(|e| {
            coded(
                Code::Unavailable,
                format!("round {round}'s proofs are not here: {e}"),
            )
        })?;
        if file.header.published.root != view.commitment.root.0 {
            let what = format!("the tree kept for round {round} is not the one committed");
            return Err(coded(Code::Unavailable, what));
        }
        let proof = file
            .proof(account.0)
            .map_err(|e| coded(Code::Unavailable, e.to_string()))?
            .ok_or_else(|| {
                missing(format!(
                    "account {} has no leaf in round {round}: it did not exist at checkpoint {}",
                    account.0, view.commitment.checkpoint
                ))
            })?;
        let sums = |v: &[u128]| v.iter().map(u128::to_string).collect();
        Ok(LiabilityProof {
            round,
            account: proof.account,
            salt: hex::encode(proof.salt),
            index: proof.index,
            balances: sums(&proof.balances),
            path: proof
                .path
                .iter()
                .map(|s| LiabilitySibling {
                    hash: hex::encode(s.hash),
                    sums: sums(&s.sums),
                })
                .collect(),
            assets: file.header.assets.clone(),
        })
    }
}
