//! The fenced hot standby on Kafka (`TAPE_KAFKA_BROKERS`, which the README's test
//! command provides), under load: a producer appends the standard mix to the
//! commands topic the whole time while a leader and a standby run.
//!
//! * the leader is killed with SIGKILL: the standby claims the next epoch, fences
//!   the events log and carries on;
//! * the leader is paused with SIGSTOP: the standby takes over; woken with SIGCONT,
//!   the old leader finds the fence and stands down, and whatever it appended after
//!   the fence is ignored by every reader;
//! * a shadow standby whose derivation differs (started with a lower per-account
//!   order limit, as a new build with a changed rule would be) refuses `tape
//!   promote`, naming the first differing seq, the leader's event and its own.
//!
//! Every trial ends with: every command answered exactly once, the events (read
//! under the fencing rule) byte for byte a fresh derivation, `tape consume` and
//! `tape replay verify` agreeing. Takeover times are measured by `tape bench
//! failover`, not here (BENCHMARKS.md, "Failover on Kafka").

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{log_records, KafkaTopics, TAPE};
use tape_log::{KafkaLog, KafkaOptions};
use tape_schemas::{codec, Change, ControlRecord, Event, EventFilter, EventRecord, Leadership};

/// Commands in a trial (setup included), and the producer's pace.
const COMMANDS: u64 = 12_000;
const PER_BATCH: usize = 40;
const BATCH_PAUSE: Duration = Duration::from_millis(20);

struct Shard {
    topics: KafkaTopics,
    control: String,
    dirs: tempfile::TempDir,
}

impl Shard {
    fn new(name: &str) -> Shard {
        let topics = KafkaTopics::fresh(name);
        let control = format!("{}.control", topics.events);
        Shard {
            topics,
            control,
            dirs: tempfile::tempdir().unwrap(),
        }
    }

    /// `tape engine --id ID`, its snapshots and stderr under its own directory.
    ///
    /// Takeover after 1 s of silence, not the default 300 ms: CI runs these three
    /// trials side by side on two cores beside one broker, and a leader starved of
    /// CPU for a second is deposed (correctly, and harmlessly) before the trial
    /// starts. What a takeover costs at the defaults is measured by `tape bench
    /// failover` (BENCHMARKS.md), not here.
    fn engine(&self, id: &str, extra: &[&str]) -> Child {
        let dir = self.dirs.path().join(id);
        std::fs::create_dir_all(&dir).unwrap();
        let log = std::fs::File::create(dir.join("stderr")).unwrap();
        Command::new(TAPE)
            .arg("engine")
            .args(self.topics.args())
            .args(["--control-topic", &self.control, "--id", id, "--open"])
            .args(["--silence-ms", "1000"])
            .arg("--data")
            .arg(&dir)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    fn stderr(&self, id: &str) -> String {
        std::fs::read_to_string(self.dirs.path().join(id).join("stderr")).unwrap_or_default()
    }

    async fn log(&self, topic: &str) -> KafkaLog {
        KafkaLog::open(KafkaOptions::new(&self.topics.brokers, topic))
            .await
            .unwrap()
    }

    /// Reads the control topic from its start until `found` returns a value for a
    /// record (a failed wait shows `id`'s log).
    async fn watch_control<T>(
        &self,
        id: &str,
        within: Duration,
        mut found: impl FnMut(u64, &ControlRecord) -> Option<T>,
    ) -> T {
        let control = self.log(&self.control).await;
        let deadline = Instant::now() + within;
        let mut reader = control.reader(0).await.unwrap();
        loop {
            assert!(
                Instant::now() < deadline,
                "waited for {id} in vain; its log:\n{}",
                self.stderr(id)
            );
            for r in reader
                .next_batch(1_000, Duration::from_millis(100))
                .await
                .unwrap()
            {
                let record: ControlRecord = codec::from_bincode(&r.bytes).unwrap();
                if let Some(t) = found(r.offset, &record) {
                    return t;
                }
            }
        }
    }

    /// Waits until `id` leads (has heartbeaten in the epoch it won); its epoch.
    async fn wait_leader(&self, id: &str, within: Duration) -> u64 {
        let mut leadership = Leadership::from_start();
        self.watch_control(id, within, |offset, record| {
            match leadership.apply(offset, record) {
                Change::Alive { epoch, writer, .. } if writer == id => Some(epoch),
                _ => None,
            }
        })
        .await
    }

    /// Waits until standby `id` has reported matching some commands.
    async fn wait_following(&self, id: &str) {
        self.watch_control(id, Duration::from_secs(60), |_, record| match record {
            ControlRecord::Standby {
                writer,
                matched_commands,
                ..
            } if writer == id && *matched_commands > 0 => Some(()),
            _ => None,
        })
        .await
    }

    /// The standard mix, appended in small batches at a steady pace.
    fn produce(&self) -> (Vec<Vec<u8>>, tokio::task::JoinHandle<()>) {
        let mix = tape_benches::standard_mix(COMMANDS, 11);
        let all: Vec<Vec<u8>> = mix
            .setup
            .iter()
            .chain(&mix.commands)
            .map(|c| codec::to_bincode(c).unwrap())
            .collect();
        let (brokers, topic) = (self.topics.brokers.clone(), self.topics.commands.clone());
        let sending = all.clone();
        let producer = tokio::spawn(async move {
            let log = KafkaLog::open(KafkaOptions::new(&brokers, &topic))
                .await
                .unwrap();
            for batch in sending.chunks(PER_BATCH) {
                log.append(batch.to_vec()).await.unwrap();
                tokio::time::sleep(BATCH_PAUSE).await;
            }
        });
        (all, producer)
    }

    /// What every trial must end with.
    async fn check(&self, sent: &[Vec<u8>]) -> Checked {
        let commands = self.log(&self.topics.commands).await;
        let events = self.log(&self.topics.events).await;
        // Every command answered: wait for the last one's outcome.
        let deadline = Instant::now() + Duration::from_secs(120);
        let on_log = loop {
            let records = log_records(&events, None).await;
            let mut filter = EventFilter::new(1, 0);
            let answered = records
                .iter()
                .filter_map(|r| filter.take(r).unwrap())
                .filter(|e| matches!(e.event, Event::Outcome { .. }))
                .count();
            if answered as u64 >= sent.len() as u64 {
                break records;
            }
            assert!(
                Instant::now() < deadline,
                "only {answered} of {} commands answered",
                sent.len()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        let command_records = log_records(&commands, None).await;
        assert_eq!(
            command_records, sent,
            "the commands log holds what was sent, once"
        );
        // Under the fencing rule, each seq once: byte for byte a fresh derivation.
        let mut filter = EventFilter::new(1, 0);
        let mut used = Vec::new();
        let (mut fences, mut stale_after_fence) = (0, 0);
        for r in &on_log {
            match EventRecord::parse(r).unwrap() {
                EventRecord::Fence(_) => fences += 1,
                EventRecord::Event { epoch, .. } if epoch < filter.epoch() => {
                    stale_after_fence += 1
                }
                EventRecord::Event { .. } => {}
            }
            if let Some((_, envelope)) = filter.take_bytes(r).unwrap() {
                used.push(envelope.to_vec());
            }
        }
        let derived =
            tape_engine::derive_records(sent, tape_core::CoreConfig::default(), 1_000_000);
        assert_eq!(
            used.len(),
            derived.len(),
            "events used vs a fresh derivation"
        );
        for (i, (u, d)) in used.iter().zip(&derived).enumerate() {
            assert!(
                u.as_slice() == &d[tape_schemas::FRAME_BYTES..],
                "event seq {} differs from a fresh derivation",
                i + 1
            );
        }
        // One outcome per command.
        let mut outcomes: BTreeMap<u64, u32> = BTreeMap::new();
        for u in &used {
            let e: tape_schemas::EventEnvelope = codec::from_bincode(u).unwrap();
            if matches!(e.event, Event::Outcome { .. }) {
                *outcomes.entry(e.command_offset).or_default() += 1;
            }
        }
        assert_eq!(outcomes.len(), sent.len(), "every command answered");
        assert!(
            outcomes.values().all(|n| *n == 1),
            "no command answered twice"
        );
        // The tools read the same: `tape consume` prints each used event once, and
        // `tape replay verify` re-derives and agrees.
        let consumed = Command::new(TAPE)
            .arg("consume")
            .args(self.topics.args())
            .output()
            .unwrap();
        let lines = String::from_utf8_lossy(&consumed.stdout).lines().count();
        assert_eq!(
            lines,
            used.len(),
            "tape consume: {}",
            String::from_utf8_lossy(&consumed.stderr)
        );
        let verify = Command::new(TAPE)
            .args(["replay", "verify", "--json"])
            .args(self.topics.args())
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&verify.stdout);
        assert!(
            verify.status.success() && out.contains("\"verified\":true"),
            "tape replay verify: {out}{}",
            String::from_utf8_lossy(&verify.stderr)
        );
        let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(report["fences"], fences);
        assert_eq!(report["fenced"], stale_after_fence);
        Checked {
            fences,
            stale_after_fence,
        }
    }
}

struct Checked {
    fences: u64,
    stale_after_fence: u64,
}

fn signal(child: &Child, sig: &str) {
    Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
}

/// Kills children left running when a test fails.
struct Reap(Vec<Child>);

impl Drop for Reap {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits until the file at `path` holds `text`.
fn wait_for_text(path: &Path, text: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if std::fs::read_to_string(path).is_ok_and(|s| s.contains(text)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_standby_takes_over_from_a_killed_leader_and_nothing_is_lost_or_doubled() {
    let shard = Shard::new("failover-kill");
    let mut procs = Reap(vec![shard.engine("a", &[])]);
    let epoch = shard.wait_leader("a", Duration::from_secs(60)).await;
    procs.0.push(shard.engine("b", &[]));
    let (sent, producer) = shard.produce();
    shard.wait_following("b").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    signal(&procs.0[0], "-KILL");
    let _ = procs.0[0].wait();
    let taken = shard.wait_leader("b", Duration::from_secs(30)).await;
    assert_eq!(taken, epoch + 1, "the standby leads the next epoch");
    producer.await.unwrap();
    let checked = shard.check(&sent).await;
    assert_eq!(checked.fences, 2, "a's fence, then b's");
    assert!(shard.stderr("b").contains("fenced the events log"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_paused_leader_wakes_to_a_fence_and_nothing_it_writes_is_used() {
    let shard = Shard::new("failover-pause");
    let mut procs = Reap(vec![shard.engine("a", &[])]);
    let epoch = shard.wait_leader("a", Duration::from_secs(60)).await;
    procs.0.push(shard.engine("b", &[]));
    let (sent, producer) = shard.produce();
    shard.wait_following("b").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    signal(&procs.0[0], "-STOP");
    assert_eq!(
        shard.wait_leader("b", Duration::from_secs(30)).await,
        epoch + 1
    );
    // Let b append under its epoch, then wake a: it must find the fence and stand
    // down (it follows again, as a standby).
    tokio::time::sleep(Duration::from_secs(1)).await;
    signal(&procs.0[0], "-CONT");
    let a_log = shard.dirs.path().join("a").join("stderr");
    assert!(
        wait_for_text(&a_log, "deposed", Duration::from_secs(30)),
        "the old leader did not stand down:\n{}",
        shard.stderr("a")
    );
    producer.await.unwrap();
    let checked = shard.check(&sent).await;
    assert_eq!(checked.fences, 2);
    eprintln!(
        "records the woken leader appended after the fence (ignored by every reader): {}",
        checked.stale_after_fence
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_shadow_standby_that_derives_differently_refuses_promotion() {
    let shard = Shard::new("failover-shadow");
    let mut procs = Reap(vec![shard.engine("a", &[])]);
    shard.wait_leader("a", Duration::from_secs(60)).await;
    // The shadow's rule differs from the leader's: at most 3 open orders an account.
    procs.0.push(shard.engine(
        "shadow",
        &["--shadow", "--open-orders-per-account-max", "3"],
    ));
    let (sent, producer) = shard.produce();
    let shadow_log = shard.dirs.path().join("shadow").join("stderr");
    assert!(
        wait_for_text(
            &shadow_log,
            "differ from this build",
            Duration::from_secs(60)
        ),
        "the shadow never found the difference:\n{}",
        shard.stderr("shadow")
    );
    let promote = Command::new(TAPE)
        .args(["promote", "shadow", "--min-matched", "1"])
        .args([
            "--kafka",
            &shard.topics.brokers,
            "--control-topic",
            &shard.control,
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&promote.stderr);
    assert!(
        !promote.status.success(),
        "the promotion was not refused: {said}"
    );
    assert!(said.contains("refused the promotion"), "{said}");
    assert!(
        said.contains("seq "),
        "names the first differing seq: {said}"
    );
    assert!(
        said.contains("TooManyOpenOrders"),
        "names its own event: {said}"
    );
    // The leader was never disturbed.
    producer.await.unwrap();
    let checked = shard.check(&sent).await;
    assert_eq!(checked.fences, 1);
    let leader = Command::new(TAPE)
        .args([
            "leader",
            "--kafka",
            &shard.topics.brokers,
            "--control-topic",
            &shard.control,
        ])
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&leader.stdout);
    assert!(status.contains("a leads"), "{status}");
    assert!(status.contains("DIVERGED"), "{status}");
}
