//! Balances at a past point, folded from the events log, equal what the read models
//! showed at that `seq`; statements add up to the balances.

use tape_log::{FileLog, FileLogOptions};
use tape_replay::statement::{balances_at, statement, Point};
use tape_schemas::*;

/// The property tests' random stream (every command kind, garbage included) and the
/// events a fresh engine derives from it, on an embedded events log.
async fn recorded(dir: &std::path::Path) -> (FileLog, Vec<Vec<u8>>) {
    let commands: Vec<Vec<u8>> =
        tape_testkit::random::envelopes(&tape_testkit::random::random_steps(7, 3_000))
            .iter()
            .map(|c| codec::to_bincode(c).unwrap())
            .collect();
    let events = tape_engine::derive_records(&commands, Default::default(), 500);
    let (log, _) = FileLog::open(dir.join("events"), FileLogOptions::default()).unwrap();
    log.append(events.clone()).await.unwrap();
    (log, events)
}

#[tokio::test]
async fn balances_at_a_seq_equal_what_the_projections_showed_there() {
    let dir = tempfile::tempdir().unwrap();
    let (log, events) = recorded(dir.path()).await;
    let (mut projector, views) = tape_projections::open(&dir.path().join("views")).unwrap();
    let mut applied = 0;
    let mut compared = 0;
    for at in [
        1,
        40,
        41,
        500,
        1_234,
        events.len() / 2,
        events.len() - 1,
        events.len(),
    ] {
        projector
            .apply_records(events[applied..at].iter().map(|e| e.as_slice()))
            .unwrap();
        applied = at;
        for account in 1..=tape_testkit::random::ACCOUNTS + 1 {
            let replayed = balances_at(&log, AccountId(account), Point::Seq(at as u64))
                .await
                .unwrap();
            assert_eq!(replayed.seq, at as u64);
            let projected: Vec<(String, String, String)> = views
                .wallets(AccountId(account))
                .unwrap()
                .iter()
                .map(|w| {
                    (
                        w.asset.to_string(),
                        w.available.0.normalize().to_string(),
                        w.held.0.normalize().to_string(),
                    )
                })
                .collect();
            let folded: Vec<(String, String, String)> = replayed
                .holdings
                .iter()
                .map(|(a, h)| {
                    (
                        a.clone(),
                        h.available.normalize().to_string(),
                        h.held.normalize().to_string(),
                    )
                })
                .collect();
            assert_eq!(folded, projected, "account {account} at seq {at}");
            compared += projected.len();
        }
    }
    assert!(
        compared > 50,
        "the stream funds and moves several assets ({compared})"
    );
}

#[tokio::test]
async fn a_time_point_is_the_last_event_at_or_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let (log, events) = recorded(dir.path()).await;
    let mid = EventEnvelope::from_record(&events[events.len() / 2]).unwrap();
    let by_time = balances_at(&log, AccountId(2), Point::TimeMs(mid.time_ms))
        .await
        .unwrap();
    let last_at_time = events
        .iter()
        .map(|e| EventEnvelope::from_record(e).unwrap())
        .filter(|e| e.time_ms <= mid.time_ms)
        .map(|e| e.seq)
        .max()
        .unwrap();
    assert_eq!(by_time.seq, last_at_time);
    let by_seq = balances_at(&log, AccountId(2), Point::Seq(last_at_time))
        .await
        .unwrap();
    assert_eq!(by_time, by_seq);
}

#[tokio::test]
async fn a_statement_runs_from_its_opening_balances_to_the_closing_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (log, events) = recorded(dir.path()).await;
    let (from, to) = (300u64, events.len() as u64 - 200);
    let account = AccountId(3);
    let (opening, lines) = statement(&log, account, Some(Point::Seq(from)), Some(Point::Seq(to)))
        .await
        .unwrap();
    assert!(lines.len() > 20, "{} lines", lines.len());
    assert_eq!(
        opening,
        balances_at(&log, account, Point::Seq(from - 1))
            .await
            .unwrap()
            .holdings
    );
    let mut running = opening.clone();
    for l in &lines {
        assert!((from..=to).contains(&l.seq));
        let h = running.entry(l.asset.to_string()).or_default();
        h.available += l.available_change;
        h.held += l.held_change;
        assert_eq!(
            (h.available, h.held),
            (l.available, l.held),
            "running balance at seq {}",
            l.seq
        );
    }
    assert_eq!(
        running,
        balances_at(&log, account, Point::Seq(to))
            .await
            .unwrap()
            .holdings
    );
    let kinds: std::collections::BTreeSet<&str> = lines.iter().map(|l| l.kind).collect();
    for k in ["order_hold", "order_release", "trade", "fee"] {
        assert!(kinds.contains(k), "no {k} in {kinds:?}");
    }
}
