//! The engine over embedded logs: it answers every command exactly once, survives
//! restarts at any point (with or without a snapshot, with a torn events tail),
//! turns garbage into rejections, and refuses to continue when the logs disagree.

use std::sync::Arc;
use std::time::Duration;

use tape_engine::{Engine, EngineError, EngineOptions, RunSummary, SnapshotStore};
use tape_log::{FileLog, FileLogOptions, Log};
use tape_schemas::*;
use tokio::sync::watch;

struct Dirs {
    _root: tempfile::TempDir,
    commands: std::path::PathBuf,
    events: std::path::PathBuf,
    snapshots: std::path::PathBuf,
}

fn dirs() -> Dirs {
    let root = tempfile::tempdir().unwrap();
    let p = root.path().to_path_buf();
    Dirs {
        commands: p.join("commands"),
        events: p.join("events"),
        snapshots: p.join("snapshots"),
        _root: root,
    }
}

fn options() -> EngineOptions {
    EngineOptions {
        checkpoint_every: 250,
        batch_max: 97,
        ..EngineOptions::default()
    }
}

fn mix(n: u64) -> Vec<Vec<u8>> {
    let m = tape_benches::standard_mix(n, 3);
    m.setup
        .iter()
        .chain(&m.commands)
        .map(|c| codec::to_bincode(c).unwrap())
        .collect()
}

/// Runs the engine until the events log holds an outcome for command `last`.
async fn run_until(d: &Dirs, commands: Arc<FileLog>, last: u64) -> Result<RunSummary, EngineError> {
    let events = FileLog::open(
        &d.events,
        FileLogOptions {
            segment_bytes_max: 1 << 20,
            ..FileLogOptions::default()
        },
    )
    .unwrap()
    .0;
    let watcher = FileLog::follow(&d.events).unwrap();
    let engine = Engine::new(
        commands,
        events,
        SnapshotStore::open(&d.snapshots, 3).unwrap(),
        options(),
    );
    let (stop, stopped) = watch::channel(false);
    let waiting = async {
        let mut reader = watcher.reader(0).await.unwrap();
        loop {
            for r in reader
                .next_batch(10_000, Duration::from_millis(100))
                .await
                .unwrap()
            {
                let (_, offset, outcome) =
                    EventEnvelope::peek(tape_schemas::EventRecord::envelope_of(&r.bytes).unwrap())
                        .unwrap();
                if outcome && offset == last {
                    stop.send(true).unwrap();
                    return;
                }
            }
        }
    };
    let run = engine.run(stopped);
    tokio::pin!(run);
    tokio::select! {
        result = &mut run => result, // stopped by itself: an error
        () = waiting => tokio::time::timeout(Duration::from_secs(60), run).await.expect("the engine stops on request"),
    }
}

/// The commands log, open for appending.
fn commands_log(d: &Dirs) -> Arc<FileLog> {
    Arc::new(
        FileLog::open(&d.commands, FileLogOptions::default())
            .unwrap()
            .0,
    )
}

/// The events on the log, each `seq` once (later copies of a `seq`, which a deposed
/// engine may leave, must equal the first).
async fn each_seq_once(d: &Dirs) -> Vec<Vec<u8>> {
    let mut once: Vec<Vec<u8>> = Vec::new();
    for b in events_on_log(d).await {
        let (seq, _, _) =
            EventEnvelope::peek(tape_schemas::EventRecord::envelope_of(&b).unwrap()).unwrap();
        if seq <= once.len() as u64 {
            assert_eq!(b, once[seq as usize - 1], "a copy differs at seq {seq}");
            continue;
        }
        assert_eq!(seq, once.len() as u64 + 1, "a gap");
        once.push(b);
    }
    once
}

fn expected_events(commands: &[Vec<u8>], checkpoint_every: u64) -> Vec<Vec<u8>> {
    tape_engine::derive_records(commands, Default::default(), checkpoint_every)
}

async fn events_on_log(d: &Dirs) -> Vec<Vec<u8>> {
    let log = FileLog::follow(&d.events).unwrap();
    let end = log.end_offset().await.unwrap();
    let mut reader = log.reader(0).await.unwrap();
    let mut out = Vec::new();
    while (out.len() as u64) < end {
        out.extend(
            reader
                .next_batch(100_000, Duration::from_millis(100))
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.bytes),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_with_and_without_snapshots_and_a_torn_tail_append_exactly_the_missing_events() {
    let d = dirs();
    let all = mix(3_000);
    let commands = commands_log(&d);
    commands.append(all[..1_500].to_vec()).await.unwrap();
    let first = run_until(&d, commands.clone(), 1_499).await.unwrap();
    assert_eq!(first.events_matched, 0);

    // Crash leftovers: the newest snapshot is gone and the events log lost its last
    // record halfway through writing.
    let mut snaps: Vec<_> = std::fs::read_dir(&d.snapshots)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    snaps.sort();
    std::fs::remove_file(snaps.last().unwrap()).unwrap();
    let mut segs: Vec<_> = std::fs::read_dir(&d.events)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segs.sort();
    let last = segs.last().unwrap();
    let len = std::fs::metadata(last).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(last)
        .unwrap()
        .set_len(len - 7)
        .unwrap();

    commands.append(all[1_500..].to_vec()).await.unwrap();
    let second = run_until(&d, commands.clone(), all.len() as u64 - 1)
        .await
        .unwrap();
    assert!(second.events_matched > 0, "{second:?}");

    assert_eq!(
        events_on_log(&d).await,
        expected_events(&all, 250),
        "the log holds exactly what a fresh run derives"
    );

    // And once more from nothing: no snapshot at all, everything re-derived and matched.
    std::fs::remove_dir_all(&d.snapshots).unwrap();
    let third = run_until(&d, commands.clone(), all.len() as u64 - 1)
        .await
        .unwrap();
    assert_eq!(third.events_appended, 0, "{third:?}");
    assert_eq!(events_on_log(&d).await, expected_events(&all, 250));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_commands_log_becomes_rejections_and_the_engine_goes_on() {
    let d = dirs();
    let commands = commands_log(&d);
    let mut garbage: Vec<Vec<u8>> = vec![
        vec![0xff, 0x00, 0x13, 0x37, 0x42],
        Vec::new(),
        br#"{"version":3,"id":"00000000-0000-0000-0000-000000000001","time_ms":1,"command":{"no_such_command":{}}}"#.to_vec(),
        br#"{"hello": "world"}"#.to_vec(),
        br#"{"version":3,"id":"00000000-0000-0000-0000-000000000002","time_ms":1,"command":{"deposit":{"account":1,"asset":"BTC","amount":1.5,"reference":"x"}}}"#.to_vec(),
        vec![b'{'; 2 << 20],
    ];
    let good = CommandEnvelope::new(
        CommandId::from_u128(7),
        5,
        Command::CreateAsset(AssetSpec {
            code: "BTC".parse().unwrap(),
            scale: 8,
            daily_withdrawal_limit: None,
        }),
    );
    garbage.push(codec::to_json(&good).unwrap().into_bytes());
    commands.append(garbage.clone()).await.unwrap();
    run_until(&d, commands, garbage.len() as u64 - 1)
        .await
        .unwrap();
    let events: Vec<EventEnvelope> = events_on_log(&d)
        .await
        .iter()
        .map(|b| EventEnvelope::from_record(b).unwrap())
        .collect();
    let outcomes: Vec<(u64, CommandResult)> = events
        .iter()
        .filter_map(|e| match e.event {
            Event::Outcome { result, .. } => Some((e.command_offset, result)),
            _ => None,
        })
        .collect();
    let malformed = CommandResult::Rejected {
        reason: RejectReason::MalformedCommand,
    };
    assert_eq!(outcomes.len(), garbage.len(), "one outcome per record");
    for (offset, result) in &outcomes[..garbage.len() - 1] {
        assert_eq!(*result, malformed, "record {offset}");
    }
    assert_eq!(
        outcomes.last().unwrap().1,
        CommandResult::Accepted { id: 0 }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_events_log_that_disagrees_with_the_commands_stops_the_engine() {
    let d = dirs();
    let all = mix(500);
    let commands = commands_log(&d);
    commands.append(all.clone()).await.unwrap();
    run_until(&d, commands.clone(), all.len() as u64 - 1)
        .await
        .unwrap();
    // Rewrite the events log with one event changed (hash chain recomputed, so only
    // re-execution can tell).
    let mut events: Vec<EventEnvelope> = events_on_log(&d)
        .await
        .iter()
        .map(|b| EventEnvelope::from_record(b).unwrap())
        .collect();
    let i = events
        .iter()
        .position(|e| matches!(e.event, Event::Trade { .. }))
        .expect("a trade");
    if let Event::Trade { quantity, .. } = &mut events[i].event {
        *quantity = Dec::from_minor(quantity.mantissa() + 1, quantity.scale());
    }
    let mut prev = events[i].prev_hash;
    for e in &mut events[i..] {
        e.prev_hash = prev;
        e.hash = e.expected_hash();
        prev = e.hash;
    }
    std::fs::remove_dir_all(&d.events).unwrap();
    std::fs::remove_dir_all(&d.snapshots).unwrap();
    {
        let log = FileLog::open(&d.events, FileLogOptions::default())
            .unwrap()
            .0;
        log.append(
            events
                .iter()
                .map(|e| tape_schemas::frame_event(0, &codec::to_bincode(e).unwrap()))
                .collect(),
        )
        .await
        .unwrap();
    }
    let engine = Engine::new(
        commands,
        FileLog::open(&d.events, FileLogOptions::default())
            .unwrap()
            .0,
        SnapshotStore::open(&d.snapshots, 3).unwrap(),
        options(),
    );
    let (_stop, stopped) = watch::channel(false);
    let err = tokio::time::timeout(Duration::from_secs(60), engine.run(stopped))
        .await
        .expect("the engine must stop by itself")
        .unwrap_err();
    assert!(
        matches!(err, EngineError::Diverged { seq, .. } if seq == events[i].seq),
        "{err}"
    );
}

/// A standby took over while the deposed engine was still appending: the new engine
/// wrote 50 events, then the deposed one's in-flight appends landed after them
/// (copies of its last 100 events and 120 it had derived further). The next engine
/// neither stops nor repeats anything: the log, each `seq` taken once, is exactly
/// what the commands produce.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_left_by_a_deposed_engine_do_not_stop_or_confuse_the_next_one() {
    let d = dirs();
    let all = mix(3_000);
    let commands = commands_log(&d);
    commands.append(all[..1_500].to_vec()).await.unwrap();
    run_until(&d, commands.clone(), 1_499).await.unwrap();
    let expected = expected_events(&all, options().checkpoint_every);
    let l = events_on_log(&d).await.len();
    {
        let log = FileLog::open(&d.events, FileLogOptions::default())
            .unwrap()
            .0;
        log.append(expected[l..l + 50].to_vec()).await.unwrap();
        log.append(expected[l - 100..l + 120].to_vec())
            .await
            .unwrap();
    }
    commands.append(all[1_500..].to_vec()).await.unwrap();
    let second = run_until(&d, commands.clone(), all.len() as u64 - 1)
        .await
        .unwrap();
    assert!(second.events_matched >= 120, "{second:?}");

    assert_eq!(events_on_log(&d).await.len(), expected.len() + 150);
    assert_eq!(each_seq_once(&d).await, expected);
}

/// Found by the simulation (seed 31): the engine stopped with a snapshot at the
/// very end of the events log, then a deposed engine's copies of older events
/// landed after it. The restart must find its snapshot's last event (just before
/// the copies) rather than take the log for short and refuse to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_right_after_the_snapshots_last_event_do_not_look_like_lost_data() {
    let d = dirs();
    let all = mix(1_000);
    let commands = commands_log(&d);
    commands.append(all[..600].to_vec()).await.unwrap();
    // Stopping writes a snapshot at the end of what it applied.
    run_until(&d, commands.clone(), 599).await.unwrap();
    let expected = expected_events(&all, options().checkpoint_every);
    let l = events_on_log(&d).await.len();
    {
        let log = FileLog::open(&d.events, FileLogOptions::default())
            .unwrap()
            .0;
        log.append(expected[l - 40..l - 10].to_vec()).await.unwrap();
    }
    commands.append(all[600..].to_vec()).await.unwrap();
    run_until(&d, commands.clone(), all.len() as u64 - 1)
        .await
        .unwrap();
    assert_eq!(each_seq_once(&d).await, expected);
}

/// The other order: a deposed engine's copy lands while this engine runs. Its next
/// append lands past where it expected, so it stops (`AnotherWriter`) rather than
/// write on beside another writer; a restart carries on over the copy, and the
/// log, each `seq` once, is exactly what the commands produce.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_by_someone_else_stops_the_engine_and_a_restart_carries_on() {
    let d = dirs();
    let all = mix(2_000);
    let expected = expected_events(&all, options().checkpoint_every);
    let commands = commands_log(&d);
    commands.append(all[..1_000].to_vec()).await.unwrap();
    let engine = Engine::new(
        commands.clone(),
        FileLog::open(&d.events, FileLogOptions::default())
            .unwrap()
            .0,
        SnapshotStore::open(&d.snapshots, 3).unwrap(),
        options(),
    );
    let watcher = FileLog::follow(&d.events).unwrap();
    let (_stop, stopped) = watch::channel(false);
    let interfere = async {
        // Once command 999 is answered, a copy of an earlier event lands, then more
        // commands come.
        let mut reader = watcher.reader(0).await.unwrap();
        let mut seen = 0;
        'wait: loop {
            for r in reader
                .next_batch(10_000, Duration::from_millis(100))
                .await
                .unwrap()
            {
                seen += 1;
                let (_, offset, outcome) =
                    EventEnvelope::peek(tape_schemas::EventRecord::envelope_of(&r.bytes).unwrap())
                        .unwrap();
                if outcome && offset == 999 {
                    break 'wait;
                }
            }
        }
        engine
            .events()
            .append(vec![expected[seen / 2].clone()])
            .await
            .unwrap();
        commands.append(all[1_000..].to_vec()).await.unwrap();
        std::future::pending::<()>().await;
    };
    let err = tokio::select! {
        r = tokio::time::timeout(Duration::from_secs(60), engine.run(stopped)) => r.expect("the engine stops by itself").unwrap_err(),
        () = interfere => unreachable!(),
    };
    assert!(matches!(err, EngineError::AnotherWriter { .. }), "{err}");
    drop(engine);

    run_until(&d, commands.clone(), all.len() as u64 - 1)
        .await
        .unwrap();
    assert_eq!(each_seq_once(&d).await, expected);
}

/// A signed record appended again after the engine restarted (from a snapshot taken
/// after the original ran) runs nothing: the stream's window is in the snapshot. A
/// fresh derivation — what `tape replay verify` does — gives the same answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_record_appended_again_after_a_restart_runs_nothing() {
    let d = dirs();
    let mut all = mix(600);
    let last: CommandEnvelope = codec::command_from_bincode(all.last().unwrap()).unwrap();
    let t = last.time_ms;
    let secret = "restart-secret";
    let unsigned = |n: u128, command| {
        codec::to_bincode(&CommandEnvelope::new(CommandId::from_u128(n), t, command)).unwrap()
    };
    all.push(unsigned(
        1 << 100,
        Command::CreateApiKey {
            role: ApiRole::Trader,
            account: Some(AccountId(7)),
            secret_hash: hash_secret(secret),
            mac_key: mac_key(secret),
        },
    ));
    let order = Command::CancelAll {
        account: AccountId(7),
        market: None,
    };
    let auth = Credentials {
        key: ApiKeyId(1),
        stream: 99,
        seq: 1,
        expires_ms: t + 30_000,
        mac: Hash32::default(),
    };
    let signed = CommandEnvelope::new(CommandId::from_u128((1 << 100) + 1), t, order)
        .sign(&mac_key(secret), auth)
        .unwrap();
    let record = codec::to_bincode(&signed).unwrap();
    all.push(record.clone());
    let commands = commands_log(&d);
    commands.append(all.clone()).await.unwrap();
    run_until(&d, commands.clone(), all.len() as u64 - 1)
        .await
        .unwrap();

    // Past a checkpoint (so the restart restores a snapshot holding the stream),
    // then the copy.
    let filler: Vec<_> = (0..300)
        .map(|i| unsigned((1 << 101) + i, Command::ClockTick))
        .collect();
    all.extend(filler.clone());
    commands.append(filler).await.unwrap();
    run_until(&d, commands.clone(), all.len() as u64 - 1)
        .await
        .unwrap();
    all.push(record.clone());
    commands.append(vec![record]).await.unwrap();
    let third = run_until(&d, commands.clone(), all.len() as u64 - 1)
        .await
        .unwrap();
    // It restored a snapshot taken after the original ran (inside the filler).
    assert!(third.commands_applied < 300, "{third:?}");
    let events = events_on_log(&d).await;
    assert_eq!(
        events,
        expected_events(&all, 250),
        "a fresh derivation agrees"
    );
    let answers: Vec<(bool, CommandResult)> = events
        .iter()
        .map(|b| EventEnvelope::from_record(b).unwrap())
        .filter_map(|e| match e.event {
            Event::Outcome {
                command,
                result,
                duplicate,
            } if command == signed.id => Some((duplicate, result)),
            _ => None,
        })
        .collect();
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert!(!answers[0].0 && answers[1].0, "{answers:?}");
    assert_eq!(
        answers[0].1, answers[1].1,
        "the copy got the original answer"
    );
}

/// An upgrade: the newest snapshot is another build's core format. The engine does
/// not refuse to start; it derives everything again from the logs, matches what is
/// there, and appends only what is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_of_another_core_format_is_set_aside_and_the_log_derived_again() {
    let d = dirs();
    let all = mix(1_000);
    let commands = commands_log(&d);
    commands.append(all[..600].to_vec()).await.unwrap();
    run_until(&d, commands.clone(), 599).await.unwrap();

    let store = SnapshotStore::open(&d.snapshots, 3).unwrap();
    let mut saved = store.latest().unwrap().expect("a snapshot");
    assert!(saved.next_command > 0);
    saved.core[0] = 7; // the format comes first: an older build's
    assert!(matches!(
        tape_core::Core::restore(&saved.core),
        Err(tape_core::SnapshotError::Format { found: 7 })
    ));
    store.write(&saved).unwrap();

    commands.append(all[600..].to_vec()).await.unwrap();
    let second = run_until(&d, commands.clone(), all.len() as u64 - 1)
        .await
        .unwrap();
    // Everything up to the old run's end was derived again and found on the log.
    assert!(second.events_matched >= expected_events(&all[..600], 250).len() as u64 - 1);
    assert_eq!(events_on_log(&d).await, expected_events(&all, 250));
}
