//! Proof-of-liabilities rounds under replay: a round built honestly verifies (its
//! root rebuilt from the secret); a round whose totals are not the ledger's, whose
//! state hash is not its checkpoint's, or whose root the secret does not rebuild,
//! fails `tape replay`, naming the round.

use tape_core::Core;
use tape_log::{FileLog, FileLogOptions};
use tape_replay::{verify_with, VerifyError};
use tape_schemas::{
    codec, Command, CommandEnvelope, CommandId, Event, EventEnvelope, Hash32, LiabilityCommitment,
};

const CHECKPOINT_EVERY: u64 = 500;
const SECRET: &[u8] = b"the operator's round secret, 32+";

fn mix() -> Vec<CommandEnvelope> {
    let m = tape_benches::standard_mix(1_500, 9);
    m.setup.into_iter().chain(m.commands).collect()
}

/// Round 1 at the checkpoint after 500 commands, as `tape pol build` makes it.
fn honest_round(commands: &[CommandEnvelope], secret: &[u8]) -> LiabilityCommitment {
    let mut core = Core::default();
    let mut out = Vec::new();
    for c in &commands[..CHECKPOINT_EVERY as usize] {
        core.apply_bytes(&codec::to_bincode(c).unwrap(), &mut out)
            .unwrap();
    }
    // The checkpoint's seq: the events of the first 500 commands, then it.
    let checkpoint_seq = out.len() as u64 + 1;
    let leaves = core.liability_leaves();
    let balances = tape_pol::Balances {
        assets: leaves.assets,
        accounts: leaves.accounts,
        sums: leaves.sums,
    };
    assert!(balances.accounts.len() > 10, "the mix funds accounts");
    let tree = tape_pol::Tree::build(secret, 1, CHECKPOINT_EVERY, 10, &balances).unwrap();
    LiabilityCommitment {
        round: 1,
        checkpoint: CHECKPOINT_EVERY,
        checkpoint_seq,
        state_hash: Hash32(core.state_hash()),
        height: 10,
        algorithm: tape_pol::ALGORITHM,
        root: Hash32(tree.published.root),
        totals: core.liability_totals(),
    }
}

/// The mix with the commitment appended after command 700.
fn with_round(commands: &[CommandEnvelope], c: LiabilityCommitment) -> Vec<Vec<u8>> {
    let at = 700;
    let time = commands[at - 1].time_ms;
    let commit = CommandEnvelope::new(CommandId::default(), time, Command::CommitLiabilities(c));
    let mut all: Vec<CommandEnvelope> = commands[..at].to_vec();
    all.push(commit);
    all.extend_from_slice(&commands[at..]);
    all.iter().map(|c| codec::to_bincode(c).unwrap()).collect()
}

async fn replay(
    commands: &[Vec<u8>],
    secret: Option<&[u8]>,
) -> Result<tape_replay::Verified, VerifyError> {
    let events = tape_engine::derive_records(commands, Default::default(), CHECKPOINT_EVERY);
    let committed = events
        .iter()
        .filter_map(|r| EventEnvelope::from_record(r).ok())
        .filter(|e| matches!(e.event, Event::LiabilitiesCommitted(_)))
        .count();
    assert_eq!(committed, 1, "the engine takes the round on the log");
    let dir = tempfile::tempdir().unwrap();
    let open = |name: &str| {
        FileLog::open(dir.path().join(name), FileLogOptions::default())
            .unwrap()
            .0
    };
    let (c, e) = (open("commands"), open("events"));
    c.append(commands.to_vec()).await.unwrap();
    e.append(events).await.unwrap();
    verify_with(
        &c,
        &e,
        Default::default(),
        secret.map(<[u8]>::to_vec),
        |_, _| {},
    )
    .await
}

fn refusal(r: Result<tape_replay::Verified, VerifyError>) -> String {
    match r {
        Err(VerifyError::Disagrees(d)) => d.what,
        other => panic!("expected a disagreement, got {other:?}"),
    }
}

#[tokio::test]
async fn an_honest_round_verifies_and_its_root_is_rebuilt_from_the_secret() {
    let commands = mix();
    let log = with_round(&commands, honest_round(&commands, SECRET));
    let v = replay(&log, Some(SECRET)).await.unwrap();
    assert_eq!((v.liability_rounds, v.roots_rebuilt), (1, 1));
    let v = replay(&log, None).await.unwrap();
    assert_eq!((v.liability_rounds, v.roots_rebuilt), (1, 0));
}

#[tokio::test]
async fn totals_the_ledger_did_not_hold_fail_replay() {
    let commands = mix();
    let mut c = honest_round(&commands, SECRET);
    // The exchange publishes less than its users hold in one asset.
    let t = c.totals.iter_mut().find(|t| t.users > 0).unwrap();
    t.users -= 1;
    let what = refusal(replay(&with_round(&commands, c), None).await);
    assert_eq!(
        what,
        "liabilities round 1 publishes totals the ledger did not hold"
    );
}

#[tokio::test]
async fn a_root_the_secret_does_not_rebuild_fails_replay() {
    let commands = mix();
    // Built with a secret other than the one the operator hands the auditor.
    let c = honest_round(&commands, b"another secret, not the operator's");
    let log = with_round(&commands, c);
    let what = refusal(replay(&log, Some(SECRET)).await);
    assert_eq!(
        what,
        "liabilities round 1 has a root the round secret does not rebuild"
    );
    // Without the secret only the checkpoint and the totals can be checked.
    assert!(replay(&log, None).await.is_ok());
}

#[tokio::test]
async fn a_round_that_misnames_its_checkpoint_fails_replay() {
    let commands = mix();
    let mut c = honest_round(&commands, SECRET);
    c.state_hash.0[0] ^= 1;
    let what = refusal(replay(&with_round(&commands, c.clone()), None).await);
    assert_eq!(what, "liabilities round 1 does not match its checkpoint");
    let mut c = honest_round(&commands, SECRET);
    c.checkpoint = 600;
    let what = refusal(replay(&with_round(&commands, c), None).await);
    assert_eq!(
        what,
        "liabilities round 1 names a checkpoint the log does not have"
    );
}
