//! A standby engine under its link, over embedded logs (the protocol does not care
//! which log it is): what it does when the control log's news and the events log
//! disagree about who leads, and when its claim after silence comes too late.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tape_engine::{Duty, Engine, EngineError, EngineOptions, FailoverOptions, SnapshotStore};
use tape_log::{FileLog, FileLogOptions, Log};
use tape_schemas::{codec, fence_record, Change, ControlRecord, EventRecord, Fence, Leadership};
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

/// A control log on which the leader's heartbeat is stored just before the first
/// claim after silence: the claimer read the log, heard nothing, and claimed, while
/// the leader (slow, or its heartbeat slow to be stored) was alive after all.
struct LateBeat {
    log: FileLog,
    armed: AtomicBool,
}

impl Log for LateBeat {
    type Reader = <FileLog as Log>::Reader;

    async fn append(&self, records: Vec<Vec<u8>>) -> tape_log::Result<Vec<u64>> {
        let claims = records.iter().any(|r| {
            matches!(
                codec::from_bincode::<ControlRecord>(r),
                Ok(ControlRecord::ClaimSilent { .. })
            )
        });
        if claims && self.armed.swap(false, Ordering::AcqRel) {
            self.log.append(vec![beat(1, "a")]).await?;
        }
        self.log.append(records).await
    }

    async fn end_offset(&self) -> tape_log::Result<u64> {
        self.log.end_offset().await
    }

    async fn reader(&self, from: u64) -> tape_log::Result<Self::Reader> {
        self.log.reader(from).await
    }
}

fn beat(epoch: u64, writer: &str) -> Vec<u8> {
    codec::to_bincode(&ControlRecord::Heartbeat {
        epoch,
        writer: writer.into(),
        seq: 0,
        at_ms: 0,
    })
    .unwrap()
}

/// The standby's first claim is void (the leader heartbeat after the last
/// heartbeat the claim names); it must follow on and claim again when the leader
/// really falls silent, and that claim wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_whose_claim_came_too_late_follows_on_and_claims_again() {
    let root = tempfile::tempdir().unwrap();
    let open = |name: &str| {
        FileLog::open(root.path().join(name), FileLogOptions::default())
            .unwrap()
            .0
    };
    let events = open("events");
    let a = Fence {
        epoch: 1,
        writer: "a".into(),
        derived_seq: 0,
    };
    events.append(vec![fence_record(&a)]).await.unwrap();
    let control = open("control");
    let won = ControlRecord::Claim {
        epoch: 1,
        writer: "a".into(),
    };
    control
        .append(vec![codec::to_bincode(&won).unwrap(), beat(1, "a")])
        .await
        .unwrap();
    let control = Arc::new(LateBeat {
        log: control,
        armed: AtomicBool::new(true),
    });
    let engine = Engine::new(
        Arc::new(open("commands")),
        Arc::new(events),
        SnapshotStore::open(root.path().join("snapshots"), 3).unwrap(),
        EngineOptions::default(),
    );
    let mut options = FailoverOptions::new("b");
    options.silence = Duration::from_millis(100);
    let (stop, stopped) = watch::channel(false);
    let running = tokio::spawn({
        let control = control.clone();
        async move { tape_engine::failover::run(&engine, &control, &options, stopped).await }
    });

    // Read the control log until b heartbeats as the leader of epoch 2.
    let mut leadership = Leadership::from_start();
    let mut changes = Vec::new();
    let mut reader = control.reader(0).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    'reading: while std::time::Instant::now() < deadline {
        for r in reader
            .next_batch(64, Duration::from_millis(50))
            .await
            .unwrap()
        {
            let record: ControlRecord = codec::from_bincode(&r.bytes).unwrap();
            let change = leadership.apply(r.offset, &record);
            let leads = matches!(&change, Change::Alive { epoch: 2, writer, .. } if writer == "b");
            changes.push((r.offset, record, change));
            if leads {
                break 'reading;
            }
        }
    }
    stop.send(true).unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("it stops")
        .unwrap();
    assert!(ended.is_ok(), "{ended:?}");
    // The heartbeats of epoch 1: the one b read when it opened, and the late one.
    let beats: Vec<u64> = changes
        .iter()
        .filter(|(_, _, change)| matches!(change, Change::Alive { epoch: 1, .. }))
        .map(|(offset, _, _)| *offset)
        .collect();
    assert_eq!(beats.len(), 2, "{changes:#?}");
    let claims: Vec<(u64, &Change)> = changes
        .iter()
        .filter_map(|(_, record, change)| match record {
            ControlRecord::ClaimSilent { heard, .. } => Some((*heard, change)),
            _ => None,
        })
        .collect();
    let void = Change::Void {
        epoch: 2,
        writer: "b".into(),
    };
    let win = Change::Won {
        epoch: 2,
        writer: "b".into(),
    };
    // The first claim named the heartbeat b had read, and the late one came after
    // it: void. The second names the late one and wins.
    assert_eq!(
        claims,
        [(beats[0], &void), (beats[1], &win)],
        "{changes:#?}"
    );
    assert_eq!(leadership.leader.as_deref(), Some("b"));
}
