//! Crash tests: the `tape engine` process is killed with SIGKILL at random moments
//! while commands keep arriving, and restarted each time. Afterwards the events log
//! must be exactly what a fresh run of the core derives from the commands log:
//! one outcome per command, `seq` gap-free from 1 with no duplicate, every hash
//! linked, every checkpoint's state hash right — and the engine's last snapshot
//! restores to the fresh run's state hash; and `tape replay verify` passes. The
//! commands are the standard mix followed by the property tests' random stream. Run
//! against the embedded log and against
//! Kafka (`TAPE_KAFKA_BROKERS`, which the README's test command provides). On Kafka
//! each restarted engine takes over from the killed one through the control topic
//! (it claims the next epoch once the dead leader's heartbeats stop, and fences
//! the events log); the standby tests are in `failover.rs`.

mod common;

use common::log_records;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use tape_log::{AnyLog, FileLog, FileLogOptions, KafkaLog, KafkaOptions, Log, LogReader};
use tape_schemas::{codec, Event, EventEnvelope};

const TAPE: &str = env!("CARGO_BIN_EXE_tape");
const CHECKPOINT_EVERY: u64 = 700;

struct Target {
    data: tempfile::TempDir,
    kafka: Option<(String, String, String)>,
}

impl Target {
    fn args(&self) -> Vec<String> {
        let mut a = vec![
            "engine".into(),
            "--data".into(),
            self.data.path().display().to_string(),
            "--checkpoint-every".into(),
            CHECKPOINT_EVERY.to_string(),
        ];
        if let Some((brokers, commands, events)) = &self.kafka {
            a.extend([
                "--kafka".into(),
                brokers.clone(),
                "--commands-topic".into(),
                commands.clone(),
                "--events-topic".into(),
                events.clone(),
                // Each test its own control topic.
                "--control-topic".into(),
                format!("{events}.control"),
                // The commands are unsigned.
                "--open".into(),
            ]);
        }
        a
    }

    fn spawn(&self) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data.path().join("engine.log"))
            .unwrap();
        Command::new(TAPE)
            .args(self.args())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start tape engine")
    }

    async fn log(&self, which: &str, writer: bool) -> AnyLog {
        match &self.kafka {
            Some((brokers, commands, events)) => {
                let topic = if which == "commands" {
                    commands
                } else {
                    events
                };
                AnyLog::Kafka(
                    KafkaLog::open(KafkaOptions::new(brokers, topic))
                        .await
                        .unwrap(),
                )
            }
            // A tool's writer: through the running engine's door, or the log itself
            // while no engine runs.
            None if writer => {
                AnyLog::Tool(tape_log::ToolLog::open(self.data.path().join(which)).unwrap())
            }
            None => AnyLog::File(FileLog::follow(self.data.path().join(which)).unwrap()),
        }
    }
}

/// The embedded log's end as a new owner finds it: opened (its torn tail cut, what
/// a killed writer left made durable), or, while an engine owns it, as it says.
async fn commands_end(dir: &Path) -> u64 {
    loop {
        match FileLog::open(dir, FileLogOptions::default()) {
            Ok((log, _)) => return log.end_offset().await.unwrap(),
            Err(tape_log::LogError::Locked { .. }) => {
                // The owner opened it (and recorded the end it found) before it
                // served its door; wait for the door so its end is the one it found.
                if tape_log::DoorClient::connect(dir).await.is_some() {
                    return FileLog::follow(dir).unwrap().end_offset().await.unwrap();
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// Kills the engine if the test fails half way, so no engine outlives its test.
struct Reaper(Option<Child>);

impl Reaper {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("a running engine")
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -TERM failed");
}

/// Waits until the events log holds the outcome of command `last`.
async fn wait_for_outcome(events: &AnyLog, last: u64, engine: &mut Child, data: &Path) {
    let mut reader = events.reader(0).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        assert!(
            Instant::now() < deadline,
            "the engine never answered command {last}; its log:\n{}",
            std::fs::read_to_string(data.join("engine.log")).unwrap_or_default()
        );
        if let Ok(Some(status)) = engine.try_wait() {
            panic!(
                "the engine exited on its own: {status}; its log:\n{}",
                std::fs::read_to_string(data.join("engine.log")).unwrap_or_default()
            );
        }
        for r in reader
            .next_batch(100_000, Duration::from_millis(200))
            .await
            .unwrap()
        {
            // A fence (a restarted engine's, on Kafka) is not an event.
            let Some(envelope) = tape_schemas::EventRecord::envelope_of(&r.bytes) else {
                continue;
            };
            let (_, offset, outcome) = EventEnvelope::peek(envelope).unwrap();
            if outcome && offset == last {
                return;
            }
        }
    }
}

async fn kill_nine_under_load(target: Target, seed: u64) {
    // The standard mix, then the property tests' random stream (every command kind,
    // garbage values, repeated ids), its ids moved clear of the mix's.
    let mix = tape_benches::standard_mix(10_000, seed);
    let random = tape_testkit::random::envelopes(&tape_testkit::random::random_steps(seed, 10_000));
    let commands: Vec<Vec<u8>> = mix
        .setup
        .iter()
        .chain(&mix.commands)
        .cloned()
        .chain(random.into_iter().map(|mut c| {
            c.id = tape_schemas::CommandId(uuid::Uuid::from_u128((1 << 64) + c.id.0.as_u128()));
            c
        }))
        .map(|c| codec::to_bincode(&c).unwrap())
        .collect();
    let commands_log = std::sync::Arc::new(target.log("commands", true).await);
    let events_log = target.log("events", false).await;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);

    // Commands keep arriving, in uneven batches, for the whole test.
    // A Kafka engine restart waits out the dead leader's silence and recovers over
    // the broker, so commands arrive more slowly there to keep several kills
    // inside the stream.
    let pause_ms = if target.kafka.is_some() {
        100..400
    } else {
        5..40
    };
    let producer_log = commands_log.clone();
    let all = commands.clone();
    let data = target.data.path().to_path_buf();
    let embedded = target.kafka.is_none();
    let producer = tokio::spawn(async move {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed + 1);
        let mut sent = 0usize;
        while sent < all.len() {
            let n = rng.random_range(20..200).min(all.len() - sent);
            match producer_log.append(all[sent..sent + n].to_vec()).await {
                Ok(_) => sent += n,
                // The engine, whose door this append went through, was killed before
                // it answered: the batch is on the log in part, whole or not at all.
                // Only this producer appends, so the log holds a prefix of `all`:
                // carry on from its end.
                Err(e) if embedded => {
                    sent = commands_end(&data.join("commands")).await as usize;
                    eprintln!("append unconfirmed ({e}); the log holds {sent} commands");
                }
                Err(e) => panic!("{e}"),
            }
            tokio::time::sleep(Duration::from_millis(rng.random_range(pause_ms.clone()))).await;
        }
    });

    // Kill the engine while it is working: each time, only once it has appended
    // something since it started.
    const KILLS: u32 = 5;
    let mut kills = 0;
    while kills < KILLS && !producer.is_finished() {
        let before = events_log.end_offset().await.unwrap();
        let mut reaper = Reaper(Some(target.spawn()));
        let engine = reaper.child();
        let deadline = Instant::now() + Duration::from_secs(60);
        while events_log.end_offset().await.unwrap() == before && !producer.is_finished() {
            assert!(
                Instant::now() < deadline,
                "a restarted engine never appended; its log:\n{}",
                std::fs::read_to_string(target.data.path().join("engine.log")).unwrap_or_default()
            );
            if let Ok(Some(status)) = engine.try_wait() {
                panic!(
                    "the engine exited on its own: {status}; its log:\n{}",
                    std::fs::read_to_string(target.data.path().join("engine.log"))
                        .unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..250))).await;
        engine.kill().unwrap(); // SIGKILL
        engine.wait().unwrap();
        kills += 1;
    }
    assert!(
        kills >= 2,
        "only {kills} kills landed while commands were arriving"
    );
    producer.await.unwrap();
    // What the commands log holds: the stream, in order. After an append the dead
    // engine never confirmed, the producer carries on from the end it finds; a
    // stretch it then sends again is on the log twice, and its second copies are
    // answered as repeats. The engine is held to what the log holds.
    let (commands, repeats) = {
        let stream = commands;
        let on_log = log_records(&*commands_log, None).await;
        // Walk the log against the stream: a record that is not the stream's next
        // must begin a stretch the stream already passed, sent again whole.
        let (mut i, mut j, mut repeats) = (0usize, 0usize, 0usize);
        while j < on_log.len() {
            if i < stream.len() && on_log[j] == stream[i] {
                (i, j) = (i + 1, j + 1);
                continue;
            }
            let k = (0..i)
                .rev()
                .find(|&k| stream[k] == on_log[j])
                .unwrap_or_else(|| panic!("command {j} on the log is not from the stream"));
            assert!(
                on_log.len() >= j + (i - k) && on_log[j..j + (i - k)] == stream[k..i],
                "the stretch from command {j} on the log is the stream's {k}..{i} again"
            );
            (j, repeats) = (j + (i - k), repeats + (i - k));
        }
        assert_eq!(i, stream.len(), "every command of the stream is on the log");
        (on_log, repeats)
    };
    if repeats > 0 {
        eprintln!("{repeats} commands were sent again after an unconfirmed append");
    }
    let last = commands.len() as u64 - 1;
    let mut reaper = Reaper(Some(target.spawn()));
    let engine = reaper.child();
    wait_for_outcome(&events_log, last, engine, target.data.path()).await;
    sigterm(engine);
    let status = engine.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");

    let expected = tape_engine::derive_records(&commands, Default::default(), CHECKPOINT_EVERY);
    let on_log = log_records(&events_log, None).await;
    if embedded {
        // One writer, epoch 0, no fences: the log is the derivation, frames and all.
        assert!(
            on_log == expected,
            "the events log is byte for byte what a fresh run derives"
        );
    }
    // On Kafka each restarted engine fenced the log: read it as every reader does.
    let mut filter = tape_schemas::EventFilter::new(1, 0);
    let used: Vec<Vec<u8>> = on_log
        .iter()
        .filter_map(|r| filter.take_bytes(r).unwrap().map(|(_, e)| e.to_vec()))
        .collect();
    assert_eq!(
        used.len(),
        expected.len(),
        "nothing beyond what the commands derive"
    );
    let decoded: Vec<EventEnvelope> = used
        .iter()
        .map(|b| codec::from_bincode(b).unwrap())
        .collect();
    for (i, e) in decoded.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1, "seq is gap-free with no duplicate");
        assert_eq!(e.hash, e.expected_hash(), "seq {} hash", e.seq);
        if i > 0 {
            assert_eq!(e.prev_hash, decoded[i - 1].hash, "seq {} chain", e.seq);
        }
    }
    let mut outcomes = vec![0u32; commands.len()];
    for e in &decoded {
        if matches!(e.event, Event::Outcome { .. }) {
            outcomes[e.command_offset as usize] += 1;
        }
    }
    assert!(
        outcomes.iter().all(|n| *n == 1),
        "every command has exactly one outcome"
    );
    assert!(
        used.iter()
            .zip(&expected)
            .all(|(u, e)| u[..] == e[tape_schemas::FRAME_BYTES..]),
        "the events are byte for byte what a fresh run derives"
    );

    // The snapshot the engine kept on shutdown is the fresh run's state at that point.
    let saved = tape_engine::SnapshotStore::open(target.data.path().join("snapshots"), 3)
        .unwrap()
        .latest()
        .unwrap()
        .unwrap();
    let mut fresh = tape_core::Core::default();
    let mut out = Vec::new();
    for c in &commands[..saved.next_command as usize] {
        fresh.apply(&tape_schemas::codec::decode_command(c).unwrap(), &mut out);
    }
    assert!(saved.next_command > 0);
    assert_eq!(
        tape_core::Core::restore(&saved.core).unwrap().state_hash(),
        fresh.state_hash()
    );

    // And the auditors' verifier, which trusts nothing the engine kept, agrees.
    let mut args = target.args();
    args[0] = "replay".into();
    args.insert(1, "verify".into());
    if let Some(at) = args.iter().position(|a| a == "--control-topic") {
        args.drain(at..at + 2);
    }
    args.retain(|a| a != "--open");
    let checkpoint = args.iter().position(|a| a == "--checkpoint-every").unwrap();
    args.drain(checkpoint..checkpoint + 2);
    let out = Command::new(TAPE).args(&args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && stdout.starts_with(&format!("verified {} commands", commands.len())),
        "tape replay verify: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_engine_killed_at_random_moments_loses_and_doubles_nothing() {
    kill_nine_under_load(
        Target {
            data: tempfile::tempdir().unwrap(),
            kafka: None,
        },
        11,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_engine_killed_at_random_moments_loses_and_doubles_nothing() {
    let topics = common::KafkaTopics::fresh("crash");
    kill_nine_under_load(
        Target {
            data: tempfile::tempdir().unwrap(),
            kafka: Some((topics.brokers, topics.commands, topics.events)),
        },
        12,
    )
    .await;
}

/// Three tools append through the owner's door (as `tape load`, `tape clock` and
/// `tape mm` do) while the owner, `tape engine`, is killed with SIGKILL and later
/// started again. Every record a tool was told is appended is on the log once, at
/// the offset it was told; every record a tool was told failed is there once or not
/// at all; no record is there twice or unaccounted for; and the tools keep
/// appending throughout: through the door, on their own while no owner runs, and
/// through the new owner's door.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_appending_through_a_killed_owner_lose_and_double_nothing() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use tape_schemas::{Command, CommandEnvelope, CommandId};

    let target = Target {
        data: tempfile::tempdir().unwrap(),
        kafka: None,
    };
    let commands_dir = target.data.path().join("commands");
    let wait_for_door = || async {
        let deadline = Instant::now() + Duration::from_secs(30);
        while tape_log::DoorClient::connect(&commands_dir).await.is_none() {
            assert!(
                Instant::now() < deadline,
                "the engine never opened its door"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let mut reaper = Reaper(Some(target.spawn()));
    wait_for_door().await;

    // 0: the owner runs; 1: it was killed; 2: it runs again.
    let phase = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tools = Vec::new();
    for tool in 0..3u128 {
        let (phase, stop, dir) = (phase.clone(), stop.clone(), commands_dir.clone());
        tools.push(tokio::spawn(async move {
            let submitter = tape_client::Submitter::start(tape_client::CommandsDoor::Embedded(dir));
            let (mut told, mut failed, mut per_phase) = (Vec::new(), Vec::new(), [0u32; 3]);
            let mut i = 0u128;
            while !stop.load(Ordering::Relaxed) {
                let id = CommandId::from_u128((tool + 1) << 64 | i);
                i += 1;
                let envelope = CommandEnvelope::new(id, tape_client::now_ms(), Command::ClockTick);
                let at = phase.load(Ordering::Relaxed);
                match submitter.submit(&envelope).await {
                    Ok(offset) => {
                        told.push((id, offset));
                        per_phase[at.min(phase.load(Ordering::Relaxed))] += 1;
                    }
                    Err(e) => {
                        assert!(e.contains("commands log"), "{e}");
                        failed.push(id);
                    }
                }
            }
            (told, failed, per_phase)
        }));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let engine = reaper.child();
    engine.kill().unwrap(); // SIGKILL, with appends in flight
    engine.wait().unwrap();
    phase.store(1, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut reaper = Reaper(Some(target.spawn()));
    wait_for_door().await;
    phase.store(2, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(400)).await;
    stop.store(true, Ordering::Relaxed);
    let mut results = Vec::new();
    for t in tools {
        results.push(t.await.unwrap());
    }
    sigterm(reaper.child());
    assert!(reaper.child().wait().unwrap().success());

    let log = FileLog::follow(&commands_dir).unwrap();
    let end = log.end_offset().await.unwrap();
    let records = log_records(&AnyLog::File(log), Some(end)).await;
    let mut on_log: std::collections::HashMap<CommandId, Vec<u64>> = Default::default();
    for (offset, bytes) in records.iter().enumerate() {
        let c = tape_schemas::codec::decode_command(bytes).unwrap();
        on_log.entry(c.id).or_default().push(offset as u64);
    }
    let mut accounted = 0;
    // With no owner the tools take turns on the log's lock (a busy one may keep it
    // until it is idle or an owner asks), so only their sum must move then.
    let dead: u32 = results.iter().map(|(_, _, p)| p[1]).sum();
    assert!(dead > 0, "no tool appended while no owner ran");
    for (tool, (told, failed, per_phase)) in results.iter().enumerate() {
        for phase in [0, 2] {
            assert!(
                per_phase[phase] > 0,
                "tool {tool} appended nothing in phase {phase}: {per_phase:?}"
            );
        }
        for (id, offset) in told {
            assert_eq!(
                on_log.get(id),
                Some(&vec![*offset]),
                "a told record is on the log once, where told"
            );
        }
        for id in failed {
            assert!(
                on_log.get(id).is_none_or(|o| o.len() == 1),
                "a failed record is there once or not at all"
            );
        }
        eprintln!(
            "tool {tool}: told {}, failed {}, per phase {per_phase:?}",
            told.len(),
            failed.len()
        );
        accounted += told.len() + failed.iter().filter(|id| on_log.contains_key(id)).count();
    }
    assert!(
        on_log.values().all(|o| o.len() == 1),
        "no record is on the log twice"
    );
    assert_eq!(
        accounted,
        records.len(),
        "every record on the log was told or reported failed"
    );
}
