//! `tape bench failover`: trials of the hot standby on Kafka under load (engines
//! checkpoint every 20,000 commands, so a restarted one recovers from a recent snapshot). Two engine
//! processes share a shard; a producer appends the standard mix at a steady rate.
//! Each trial kills the leader (SIGKILL) or pauses it (SIGSTOP, then SIGCONT once the
//! standby leads), and times, from the signal, when the standby's winning claim, its
//! fence and its first answer to a command appear on the logs (as a client reading
//! them sees it). A killed engine is started again as the next standby; a paused one
//! finds the fence and follows again. Takeovers nobody provoked are counted. At the
//! end every command must be answered exactly once and `tape replay verify`'s check
//! must pass.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use tape_log::{KafkaLog, KafkaOptions};
use tape_schemas::{codec, Change, ControlRecord, Event, EventFilter, EventRecord, Leadership};

#[derive(Args)]
pub struct FailoverArgs {
    #[arg(long)]
    kafka: String,
    #[arg(long, default_value_t = 100)]
    trials: u32,
    /// Offered load, commands/s.
    #[arg(long, default_value_t = 2_000)]
    rate: u64,
    #[arg(long, default_value_t = 50)]
    heartbeat_ms: u64,
    #[arg(long, default_value_t = 300)]
    silence_ms: u64,
    /// Seconds of load with no fault before the first trial (false takeovers are
    /// counted over the whole run).
    #[arg(long, default_value_t = 5)]
    calm: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    dir: std::path::PathBuf,
}

/// What the tails have seen, with when.
#[derive(Default)]
struct Seen {
    /// epoch -> (winner, when its claim was read).
    won: BTreeMap<u64, (String, Instant)>,
    /// epoch -> when its fence was read.
    fenced: BTreeMap<u64, Instant>,
    /// epoch -> when its first answer to a command was read.
    answered: BTreeMap<u64, Instant>,
    /// writer -> (matched commands, when reported).
    standbys: BTreeMap<String, (u64, Instant)>,
    leader: Option<(u64, String)>,
    /// Claims after silence made void: the leader heartbeat after what the claimer
    /// had read (without that rule, each would have been a false takeover).
    void: u64,
}

struct Shard {
    args: Vec<String>,
    dir: std::path::PathBuf,
    seen: Arc<Mutex<Seen>>,
}

impl Shard {
    fn spawn(&self, id: &str, heartbeat: u64, silence: u64) -> anyhow::Result<Child> {
        let data = self.dir.join(id);
        std::fs::create_dir_all(&data)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data.join("stderr"))?;
        Ok(Command::new(std::env::current_exe()?)
            .arg("engine")
            .args(&self.args)
            .args([
                "--id",
                id,
                "--open",
                "--checkpoint-every",
                "20000",
                "--heartbeat-ms",
            ])
            .arg(heartbeat.to_string())
            .arg("--silence-ms")
            .arg(silence.to_string())
            .arg("--data")
            .arg(&data)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?)
    }
}

fn signal(child: &Child, sig: &str) {
    let _ = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status();
}

/// Follows the control topic into `seen`.
async fn tail_control(log: KafkaLog, seen: Arc<Mutex<Seen>>) -> anyhow::Result<()> {
    let mut reader = log.reader(0).await?;
    let mut leadership = Leadership::from_start();
    loop {
        for r in reader.next_batch(1_000, Duration::from_millis(50)).await? {
            let now = Instant::now();
            let Ok(record) = codec::from_bincode::<ControlRecord>(&r.bytes) else {
                continue;
            };
            let mut s = seen.lock().expect("not poisoned");
            if let ControlRecord::Standby {
                writer,
                matched_commands,
                ..
            } = &record
            {
                s.standbys.insert(writer.clone(), (*matched_commands, now));
            }
            match leadership.apply(r.offset, &record) {
                Change::Won { epoch, writer } => {
                    s.won.insert(epoch, (writer.clone(), now));
                    s.leader = Some((epoch, writer));
                }
                Change::Void { .. } => s.void += 1,
                Change::Alive { .. } | Change::Nothing => {}
            }
        }
    }
}

/// Follows the events topic into `seen`: fences, and each epoch's first answer.
async fn tail_events(log: KafkaLog, seen: Arc<Mutex<Seen>>) -> anyhow::Result<()> {
    let mut reader = log.reader(0).await?;
    let mut filter = EventFilter::new(1, 0);
    loop {
        for r in reader.next_batch(4_096, Duration::from_millis(50)).await? {
            let now = Instant::now();
            if let Ok(EventRecord::Fence(f)) = EventRecord::parse(&r.bytes) {
                seen.lock()
                    .expect("not poisoned")
                    .fenced
                    .entry(f.epoch)
                    .or_insert(now);
            }
            if let Some(e) = filter.take(&r.bytes)? {
                if matches!(e.event, Event::Outcome { .. }) {
                    let epoch = filter.epoch();
                    seen.lock()
                        .expect("not poisoned")
                        .answered
                        .entry(epoch)
                        .or_insert(now);
                }
            }
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn percentiles(name: &str, mut v: Vec<f64>) {
    if v.is_empty() {
        println!("{name:<22} no samples");
        return;
    }
    v.sort_by(f64::total_cmp);
    let p = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{name:<22} p50 {:>7.1} ms   p90 {:>7.1} ms   p99 {:>7.1} ms   max {:>7.1} ms   ({} trials)",
        p(0.5),
        p(0.9),
        p(0.99),
        v[v.len() - 1],
        v.len()
    );
}

/// One trial's times from the signal, and how it ended.
struct Trial {
    claim: Duration,
    fence: Duration,
    answer: Duration,
}

pub async fn run(args: FailoverArgs) -> anyhow::Result<()> {
    let unique = format!(
        "tape-failover-{}-{}",
        std::process::id(),
        tape_client::now_ms()
    );
    let (commands_t, events_t, control_t) = (
        format!("{unique}-commands"),
        format!("{unique}-events"),
        format!("{unique}-control"),
    );
    let open = |t: &str| KafkaLog::open(KafkaOptions::new(&args.kafka, t));
    let (commands, events, control) = (
        open(&commands_t).await?,
        open(&events_t).await?,
        open(&control_t).await?,
    );
    let shard = Shard {
        args: vec![
            "--kafka".into(),
            args.kafka.clone(),
            "--commands-topic".into(),
            commands_t.clone(),
            "--events-topic".into(),
            events_t.clone(),
            "--control-topic".into(),
            control_t.clone(),
        ],
        dir: args.dir.join(&unique),
        seen: Arc::new(Mutex::new(Seen::default())),
    };
    tokio::spawn(tail_control(control, shard.seen.clone()));
    tokio::spawn(tail_events(open(&events_t).await?, shard.seen.clone()));
    let spawn = |id: &str| shard.spawn(id, args.heartbeat_ms, args.silence_ms);
    let mut engines: BTreeMap<String, Child> = BTreeMap::new();
    engines.insert("e0".into(), spawn("e0")?);
    wait_for(Duration::from_secs(60), || {
        shard.seen.lock().unwrap().leader.is_some()
    })
    .await?;
    engines.insert("e1".into(), spawn("e1")?);

    // The load: the standard mix, paced.
    let budget = args.rate * (args.calm + 8 * u64::from(args.trials) + 60);
    let mix = tape_benches::standard_mix(budget, args.seed);
    let all: Vec<Vec<u8>> = mix
        .setup
        .iter()
        .chain(&mix.commands)
        .map(|c| codec::to_bincode(c).unwrap())
        .collect();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let producing = {
        let all = all.clone();
        let per_tick = (args.rate / 50).max(1) as usize;
        tokio::spawn(async move {
            let mut sent = 0usize;
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            while sent < all.len() && !*stop_rx.borrow() {
                tick.tick().await;
                let n = per_tick.min(all.len() - sent);
                commands.append(all[sent..sent + n].to_vec()).await?;
                sent += n;
            }
            Ok::<usize, anyhow::Error>(sent)
        })
    };
    tokio::time::sleep(Duration::from_secs(args.calm)).await;
    let mut trials: Vec<Trial> = Vec::new();
    let mut failed = 0u32;
    for n in 0..args.trials {
        let (epoch, leader) = settle(&shard).await?;
        let standby = if leader == "e0" { "e1" } else { "e0" };
        let pause = n % 2 == 1;
        let t0 = Instant::now();
        signal(&engines[&leader], if pause { "-STOP" } else { "-KILL" });
        match timed(&shard, epoch + 1, t0).await {
            Some(t) => trials.push(t),
            None => {
                failed += 1;
                eprintln!("trial {n}: no takeover within 30 s");
            }
        }
        if pause {
            signal(&engines[&leader], "-CONT");
        } else {
            let mut dead = engines.remove(&leader).expect("running");
            let _ = dead.wait();
            engines.insert(leader.clone(), spawn(&leader)?);
        }
        eprintln!(
            "trial {n}: {} {leader}; {standby} leads epoch {}",
            if pause { "paused" } else { "killed" },
            epoch + 1
        );
    }
    let _ = stop_tx.send(true);
    let sent = producing.await??;
    let check = check(&args.kafka, &commands_t, &events, &all[..sent]).await;
    // Counted before the engines stop (a stopped leader's standby takes over).
    let (epochs, void) = {
        let seen = shard.seen.lock().unwrap();
        (seen.won.len() as u64, seen.void)
    };
    for (_, c) in engines.iter_mut() {
        signal(c, "-CONT");
        signal(c, "-TERM");
        let _ = c.wait();
    }
    let provoked = u64::from(args.trials) + 1;
    println!(
        "{} trials ({} kill -9, {} SIGSTOP) at {} commands/s, heartbeat {} ms, takeover after {} ms of silence; {sent} commands",
        args.trials,
        args.trials.div_ceil(2),
        args.trials / 2,
        args.rate,
        args.heartbeat_ms,
        args.silence_ms
    );
    percentiles("claim won", trials.iter().map(|t| ms(t.claim)).collect());
    percentiles(
        "fence on events log",
        trials.iter().map(|t| ms(t.fence)).collect(),
    );
    percentiles(
        "first new answer",
        trials.iter().map(|t| ms(t.answer)).collect(),
    );
    println!(
        "takeovers nobody provoked: {}; trials without a takeover: {failed}; claims made void (the leader heartbeat after what the claimer had read): {void}",
        epochs.saturating_sub(provoked)
    );
    check?;
    Ok(())
}

async fn wait_for(within: Duration, mut done: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    while !done() {
        anyhow::ensure!(Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Waits until a leader heartbeats and the other engine reports following (two
/// reports, its matched count rising); the leader's epoch and name.
async fn settle(shard: &Shard) -> anyhow::Result<(u64, String)> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut first: Option<(String, u64)> = None;
    loop {
        anyhow::ensure!(
            Instant::now() < deadline,
            "no leader with a following standby"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let s = shard.seen.lock().unwrap();
        let Some((epoch, leader)) = s.leader.clone() else {
            continue;
        };
        let other = s
            .standbys
            .iter()
            .find(|(w, (_, at))| **w != leader && at.elapsed() < Duration::from_millis(1_500));
        let Some((w, (matched, _))) = other else {
            continue;
        };
        match &first {
            Some((fw, m)) if fw == w && matched > m => return Ok((epoch, leader)),
            Some((fw, _)) if fw == w => {}
            _ => first = Some((w.clone(), *matched)),
        }
    }
}

/// The trial's times, once the next epoch has won, fenced and answered.
async fn timed(shard: &Shard, epoch: u64, t0: Instant) -> Option<Trial> {
    let deadline = t0 + Duration::from_secs(30);
    while Instant::now() < deadline {
        {
            let s = shard.seen.lock().unwrap();
            if let (Some((_, claim)), Some(fence), Some(answer)) = (
                s.won.get(&epoch),
                s.fenced.get(&epoch),
                s.answered.get(&epoch),
            ) {
                return Some(Trial {
                    claim: *claim - t0,
                    fence: *fence - t0,
                    answer: *answer - t0,
                });
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

/// Every command answered once, the events a fresh derivation, the auditor agreeing.
async fn check(
    brokers: &str,
    commands_topic: &str,
    events: &KafkaLog,
    sent: &[Vec<u8>],
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    let (outcomes, fenced) = loop {
        let end = events.end_offset().await?;
        let records = tape_log::read_exactly(events, 0, end, Duration::from_secs(120)).await?;
        let mut filter = EventFilter::new(1, 0);
        let mut outcomes: BTreeMap<u64, u32> = BTreeMap::new();
        for r in &records {
            if let Some(e) = filter.take(&r.bytes)? {
                if matches!(e.event, Event::Outcome { .. }) {
                    *outcomes.entry(e.command_offset).or_default() += 1;
                }
            }
        }
        if outcomes.len() >= sent.len() || Instant::now() > deadline {
            break (outcomes, filter.ignored());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let twice = outcomes.values().filter(|n| **n > 1).count();
    println!(
        "commands {}: answered {}, lost {}, answered twice {twice}; records of deposed epochs ignored by readers: {fenced}",
        sent.len(),
        outcomes.len(),
        sent.len().saturating_sub(outcomes.len())
    );
    anyhow::ensure!(
        outcomes.len() == sent.len() && twice == 0,
        "lost or doubled commands"
    );
    let commands = KafkaLog::open(KafkaOptions::new(brokers, commands_topic)).await?;
    let v = tape_replay::verify(
        &commands,
        events,
        tape_core::CoreConfig::default(),
        |_, _| {},
    )
    .await?;
    println!(
        "tape replay verify: {} commands, {} events, {} fences, {} fenced records ignored, state hash {}",
        v.commands, v.events, v.fences, v.fenced, v.state_hash
    );
    Ok(())
}
