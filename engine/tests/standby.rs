//! A standby engine under its link, over embedded logs (the protocol does not care
//! which log it is): what it does when the control log's news and the events log
//! disagree about who leads.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tape_engine::{Duty, Engine, EngineError, EngineOptions, SnapshotStore};
use tape_log::{FileLog, FileLogOptions, Log};
use tape_schemas::{codec, fence_record, EventRecord, Fence};
use tokio::sync::watch;

/// It won epoch 1, but before it fenced, epoch 2 won and fenced the events log (it
/// was paused; found by the simulation, seed 219). It must stand down at its own
/// fence, not lead behind the later one: its records would be ignored by every
/// reader, and its snapshots would point readers at a log that skips its events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_that_finds_a_later_fence_before_its_own_stands_down() {
    let root = tempfile::tempdir().unwrap();
    let commands = FileLog::open(root.path().join("commands"), FileLogOptions::default())
        .unwrap()
        .0;
    let m = tape_benches::standard_mix(200, 5);
    let records: Vec<Vec<u8>> = m
        .setup
        .iter()
        .chain(&m.commands)
        .map(|c| codec::to_bincode(c).unwrap())
        .collect();
    commands.append(records).await.unwrap();
    let events = FileLog::open(root.path().join("events"), FileLogOptions::default())
        .unwrap()
        .0;
    let later = Fence {
        epoch: 2,
        writer: "b".into(),
        derived_seq: 0,
    };
    events.append(vec![fence_record(&later)]).await.unwrap();
    let events = Arc::new(events);

    let engine = Engine::new(
        Arc::new(commands),
        events.clone(),
        SnapshotStore::open(root.path().join("snapshots"), 3).unwrap(),
        EngineOptions::default(),
    );
    let (_stop, stopped) = watch::channel(false);
    let (link, handle) = tape_engine::link("a", stopped.clone());
    // Its control reader has heard its own win, not yet the later one.
    handle.highest.store(1, Ordering::Release);
    handle.won.send(Some(1)).unwrap();
    let ended = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        engine.run_as(Duty::Standby(link), stopped),
    )
    .await
    .expect("it ends");
    assert!(
        matches!(ended, Err(EngineError::Deposed { epoch: 1, by: 2 })),
        "{ended:?}"
    );
    // Its fence is there, after the later one; no event of its is.
    let end = events.end_offset().await.unwrap();
    let on_log = tape_log::read_exactly(&*events, 0, end, std::time::Duration::from_secs(5))
        .await
        .unwrap();
    let kinds: Vec<String> = on_log
        .iter()
        .map(|r| match EventRecord::parse(&r.bytes).unwrap() {
            EventRecord::Fence(f) => format!("fence {} by {}", f.epoch, f.writer),
            EventRecord::Event { epoch, .. } => format!("event of epoch {epoch}"),
        })
        .collect();
    assert_eq!(kinds, ["fence 2 by b", "fence 1 by a"]);
}
