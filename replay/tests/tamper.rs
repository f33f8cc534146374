//! Tamper tests: each kind of damage is caught, and named by the right first bad seq.

use tape_log::{FileLog, FileLogOptions};
use tape_replay::{verify, VerifyError};
use tape_schemas::{codec, Dec, Event, EventEnvelope};

const CHECKPOINT_EVERY: u64 = 500;

fn commands() -> Vec<Vec<u8>> {
    let m = tape_benches::standard_mix(2_000, 5);
    m.setup
        .iter()
        .chain(&m.commands)
        .map(|c| codec::to_bincode(c).unwrap())
        .collect()
}

fn derive(commands: &[Vec<u8>]) -> Vec<Vec<u8>> {
    tape_engine::derive_records(commands, Default::default(), CHECKPOINT_EVERY)
}

async fn log_of(dir: &tempfile::TempDir, name: &str, records: &[Vec<u8>]) -> FileLog {
    let log = FileLog::open(dir.path().join(name), FileLogOptions::default())
        .unwrap()
        .0;
    log.append(records.to_vec()).await.unwrap();
    log
}

async fn check(
    commands: &[Vec<u8>],
    events: &[Vec<u8>],
) -> Result<tape_replay::Verified, VerifyError> {
    let dir = tempfile::tempdir().unwrap();
    let c = log_of(&dir, "commands", commands).await;
    let e = log_of(&dir, "events", events).await;
    verify(&c, &e, Default::default(), |_, _| {}).await
}

fn first_bad(r: Result<tape_replay::Verified, VerifyError>) -> (u64, String) {
    match r {
        Err(VerifyError::Disagrees(d)) => (d.seq, d.what),
        other => panic!("expected a disagreement, got {other:?}"),
    }
}

fn decode(b: &[u8]) -> EventEnvelope {
    EventEnvelope::from_record(b).unwrap()
}

/// An event record of epoch 0, as the embedded log holds it.
fn record(e: &EventEnvelope) -> Vec<u8> {
    tape_schemas::frame_event(0, &codec::to_bincode(e).unwrap())
}

/// Re-seals events from `from` on so the hash chain is intact again.
fn rechain(events: &mut [EventEnvelope], from: usize) -> Vec<Vec<u8>> {
    let mut prev = events[from].prev_hash;
    for e in &mut events[from..] {
        e.prev_hash = prev;
        e.hash = e.expected_hash();
        prev = e.hash;
    }
    events.iter().map(record).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_log_verifies_with_its_checkpoints() {
    let c = commands();
    let e = derive(&c);
    let v = check(&c, &e).await.unwrap();
    assert_eq!(v.commands, c.len() as u64);
    assert_eq!(v.events, e.len() as u64);
    assert_eq!(v.checkpoints, c.len() as u64 / CHECKPOINT_EVERY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_is_caught_at_its_event() {
    let c = commands();
    let mut e = derive(&c);
    let k = e.len() / 2;
    let last = e[k].len() - 1;
    e[k][last] ^= 0x01;
    assert_eq!(first_bad(check(&c, &e).await).0, k as u64 + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_event_is_caught_where_it_is_missing() {
    let c = commands();
    let mut e = derive(&c);
    let k = e.len() / 3;
    e.remove(k);
    let (seq, what) = first_bad(check(&c, &e).await);
    assert_eq!(seq, k as u64 + 1);
    assert!(what.contains("seq out of order"), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_swapped_events_are_caught_at_the_first() {
    let c = commands();
    let mut e = derive(&c);
    let k = e.len() / 4;
    e.swap(k, k + 1);
    assert_eq!(first_bad(check(&c, &e).await).0, k as u64 + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amount_changed_with_the_chain_recomputed_is_caught_by_re_execution() {
    let c = commands();
    let mut events: Vec<EventEnvelope> = derive(&c).iter().map(|b| decode(b)).collect();
    let k = events
        .iter()
        .rposition(|e| matches!(e.event, Event::Trade { .. }))
        .unwrap();
    if let Event::Trade { quantity, .. } = &mut events[k].event {
        *quantity = Dec::from_minor(quantity.mantissa() + 1, quantity.scale());
    }
    let e = rechain(&mut events, k);
    let (seq, what) = first_bad(check(&c, &e).await);
    assert_eq!(seq, k as u64 + 1);
    assert_eq!(what, "re-execution produces a different event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_checkpoint_state_hash_is_caught() {
    let c = commands();
    let mut events: Vec<EventEnvelope> = derive(&c).iter().map(|b| decode(b)).collect();
    let k = events
        .iter()
        .position(|e| matches!(e.event, Event::Checkpoint { .. }))
        .unwrap();
    if let Event::Checkpoint { state_hash, .. } = &mut events[k].event {
        state_hash.0[0] ^= 0xff;
    }
    let e = rechain(&mut events, k);
    let (seq, what) = first_bad(check(&c, &e).await);
    assert_eq!(seq, k as u64 + 1);
    assert!(what.contains("checkpoint"), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_removed_from_the_commands_log_is_caught_at_its_first_event() {
    let mut c = commands();
    let e = derive(&c);
    let removed = c.len() as u64 / 2;
    c.remove(removed as usize);
    let first_of_removed = e
        .iter()
        .map(|b| decode(b))
        .find(|ev| ev.command_offset == removed)
        .unwrap()
        .seq;
    assert_eq!(first_bad(check(&c, &e).await).0, first_of_removed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_beyond_the_commands_are_caught() {
    let c = commands();
    let e = derive(&c);
    let (seq, _) = first_bad(check(&c[..c.len() - 1], &e).await);
    assert_eq!(seq, derive(&c[..c.len() - 1]).len() as u64 + 1);
}

/// What a standby's takeover can leave: the new engine appended 50 events, then the
/// deposed one's in-flight appends landed — copies of its last 100 events and 120 it
/// had derived further. Identical copies are skipped and counted; the log verifies.
fn with_deposed_copies(e: &[Vec<u8>], k: usize) -> Vec<Vec<u8>> {
    let mut stored = e[..k + 50].to_vec();
    stored.extend_from_slice(&e[k - 100..k + 120]);
    stored.extend_from_slice(&e[k + 120..]);
    stored
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_copies_left_by_a_deposed_engine_are_skipped_and_counted() {
    let c = commands();
    let e = derive(&c);
    let k = e.len() / 2;
    let v = check(&c, &with_deposed_copies(&e, k)).await.unwrap();
    assert_eq!(v.events, e.len() as u64);
    assert_eq!(v.copies, 150);
    assert_eq!(
        v,
        check(&c, &e)
            .await
            .map(|v| tape_replay::Verified { copies: 150, ..v })
            .unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_that_differs_from_its_original_is_caught() {
    let c = commands();
    let mut e = derive(&c);
    let k = e.len() / 2;
    let mut stored = with_deposed_copies(&e, k);
    // The copy of seq k - 40 (at index k + 50 + 60) with a flipped byte, chain intact.
    let mut copy = decode(&stored[k + 110]);
    assert_eq!(copy.seq, (k - 40) as u64 + 1);
    copy.time_ms += 1;
    copy.hash = copy.expected_hash();
    stored[k + 110] = record(&copy);
    let (seq, what) = first_bad(check(&c, &stored).await);
    assert_eq!(
        seq,
        k as u64 + 51,
        "named where the next event was expected"
    );
    assert!(what.contains("seq out of order"), "{what}");
    // And balances folded from a log with copies count each event once.
    e.truncate(k + 120);
    let dir = tempfile::tempdir().unwrap();
    let clean = log_of(&dir, "clean", &e).await;
    let copied = log_of(&dir, "copied", &with_deposed_copies(&e, k)[..k + 50 + 220]).await;
    // Every account with a posting among the copied events.
    let accounts: std::collections::BTreeSet<u64> = e[k - 100..k + 50]
        .iter()
        .filter_map(|b| match decode(b).event {
            Event::Posting { from, to, .. } => Some([from, to]),
            _ => None,
        })
        .flatten()
        .filter_map(|p| match p {
            tape_schemas::Party::Available(a) | tape_schemas::Party::Held(a) => Some(a.0),
            _ => None,
        })
        .collect();
    assert!(accounts.len() > 2, "{accounts:?}");
    for account in accounts {
        let at = tape_replay::statement::Point::Seq(e.len() as u64);
        assert_eq!(
            tape_replay::statement::balances_at(&copied, tape_schemas::AccountId(account), at)
                .await
                .unwrap(),
            tape_replay::statement::balances_at(&clean, tape_schemas::AccountId(account), at)
                .await
                .unwrap()
        );
    }
}
