//! Proof of liabilities, the core's part: each account's leaf sums (available
//! plus held, pending withdrawals included), the totals beside them, and the
//! rule a round's commitment must follow to go on the log.

mod common;
use common::*;
use tape_schemas::*;

fn commitment(h: &H, round: u64, checkpoint: u64) -> LiabilityCommitment {
    LiabilityCommitment {
        round,
        checkpoint,
        checkpoint_seq: 1,
        state_hash: Hash32::default(),
        height: 20,
        algorithm: tape_core::LIABILITY_ALGORITHM,
        root: Hash32([7; 32]),
        totals: h.core.liability_totals(),
    }
}

#[test]
fn the_leaves_hold_available_plus_held_and_the_totals_add_them_up() {
    let mut h = H::new();
    h.deposit(AccountId(9), "USDT", "100");
    // A pending withdrawal is still owed: it moves to held and stays in the leaf.
    h.ok(Command::RequestWithdrawal {
        account: AccountId(9),
        asset: code("USDT"),
        amount: d("40"),
    });
    assert_eq!(h.held(AccountId(9), "USDT"), 40_000_000);
    let leaves = h.core.liability_leaves();
    let usdt = h
        .core
        .liability_totals()
        .iter()
        .position(|t| t.asset == code("USDT"))
        .unwrap();
    let at = leaves.accounts.iter().position(|a| *a == 9).unwrap();
    assert_eq!(leaves.sums[at * leaves.assets + usdt], 100_000_000);
    assert!(
        leaves.accounts.windows(2).all(|w| w[0] < w[1]),
        "by account id"
    );
    let totals = h.core.liability_totals();
    for (i, t) in totals.iter().enumerate() {
        let sum: u128 = (0..leaves.accounts.len())
            .map(|k| leaves.sums[k * leaves.assets + i])
            .sum();
        assert_eq!(t.users, sum, "{}", t.asset);
    }
}

#[test]
fn rounds_go_on_the_log_in_order_at_later_checkpoints() {
    let mut h = H::new();
    let (_, events) = h.ok(Command::CommitLiabilities(commitment(&h, 1, 10)));
    assert!(events.contains(&Event::LiabilitiesCommitted(commitment(&h, 1, 10))));
    let last = h.core.last_liability_round().unwrap();
    assert_eq!((last.round, last.checkpoint), (1, 10));
    for (round, checkpoint) in [(1, 20), (3, 20), (2, 10), (2, 5)] {
        let c = Command::CommitLiabilities(commitment(&h, round, checkpoint));
        assert_eq!(
            h.rejected(c),
            RejectReason::LiabilityRound,
            "{round} at {checkpoint}"
        );
    }
    h.ok(Command::CommitLiabilities(commitment(&h, 2, 20)));
    // The last round survives a snapshot.
    let restored = tape_core::Core::restore(&h.core.snapshot()).unwrap();
    assert_eq!(restored.last_liability_round().unwrap().round, 2);
}

#[test]
fn a_record_in_another_shape_is_refused_and_changes_nothing() {
    let mut h = H::new();
    let mut bad = Vec::new();
    let mut c = commitment(&h, 1, 10);
    c.algorithm = 2;
    bad.push(c);
    for height in [0, 33] {
        let mut c = commitment(&h, 1, 10);
        c.height = height;
        bad.push(c);
    }
    let mut c = commitment(&h, 1, 10);
    c.totals.pop();
    bad.push(c);
    let mut c = commitment(&h, 1, 10);
    c.totals.swap(0, 1);
    bad.push(c);
    for c in bad {
        let why = h.rejected(Command::CommitLiabilities(c));
        assert_eq!(why, RejectReason::LiabilityRecord);
    }
    assert_eq!(h.core.last_liability_round(), None);
}

#[test]
fn only_an_admin_key_commits_a_round() {
    let mut h = H::new();
    let trader = h.key(ApiRole::Trader, Some(ALICE), "trader-secret");
    let c = Command::CommitLiabilities(commitment(&h, 1, 10));
    let expires = h.core.time_ms() + 10_000;
    let signed = h.signed(c, trader, "trader-secret", expires);
    assert_eq!(h.rejected_envelope(&signed), RejectReason::NotPermitted);
    assert_eq!(h.core.last_liability_round(), None);
}

#[test]
fn the_core_commits_to_the_trees_algorithm() {
    assert_eq!(tape_core::LIABILITY_ALGORITHM, tape_pol::ALGORITHM);
}
