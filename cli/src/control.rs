//! `tape leader` and `tape promote`: reading who leads a Kafka shard, and asking a
//! standby to take over (docs/operations.md, "A leader and its standbys").

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use clap::Args;
use tape_log::{KafkaLog, KafkaOptions};
use tape_schemas::{codec, Change, ControlRecord, Leadership};

#[derive(Args)]
pub struct ControlArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "TAPE_KAFKA")]
    pub kafka: String,
    /// The control topic.
    #[arg(long, env = "TAPE_CONTROL_TOPIC", default_value = "tape.control")]
    pub control_topic: String,
}

#[derive(Args)]
pub struct LeaderArgs {
    #[command(flatten)]
    pub control: ControlArgs,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct PromoteArgs {
    #[command(flatten)]
    pub control: ControlArgs,
    /// The standby to promote (its `--id`).
    pub id: String,
    /// Refuse unless it has derived and matched at least this many commands.
    #[arg(long, default_value_t = 10_000)]
    pub min_matched: u64,
    /// How long to wait for its answer, in seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
}

/// The control topic's tail, read once.
struct Tail {
    leadership: Leadership,
    /// The last heartbeat of the epoch in force: (seq, the writer's clock).
    beat: Option<(u64, u64)>,
    standbys: BTreeMap<String, ControlRecord>,
    end: u64,
}

async fn read_tail(log: &KafkaLog) -> anyhow::Result<Tail> {
    let end = log.end_offset().await?;
    let mut from = end.saturating_sub(4_096);
    loop {
        let mut t = Tail {
            leadership: if from == 0 {
                Leadership::from_start()
            } else {
                Leadership::from_window()
            },
            beat: None,
            standbys: BTreeMap::new(),
            end,
        };
        for r in tape_log::read_exactly(log, from, end - from, Duration::from_secs(30)).await? {
            let Ok(record) = codec::from_bincode::<ControlRecord>(&r.bytes) else {
                continue;
            };
            if let ControlRecord::Standby { writer, .. } = &record {
                t.standbys.insert(writer.clone(), record.clone());
            }
            match t.leadership.apply(r.offset, &record) {
                Change::Alive { seq, .. } => {
                    if let ControlRecord::Heartbeat { at_ms, .. } = record {
                        t.beat = Some((seq, at_ms));
                    }
                }
                Change::Won { .. } => t.beat = None,
                Change::Void { .. } | Change::Nothing => {}
            }
        }
        if t.leadership.anchored() || from == 0 {
            return Ok(t);
        }
        from = 0;
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

async fn open(args: &ControlArgs) -> anyhow::Result<KafkaLog> {
    Ok(KafkaLog::open(KafkaOptions::new(&args.kafka, &args.control_topic)).await?)
}

/// `tape leader`: who leads, how fresh its heartbeat is, and the standbys.
pub async fn leader(args: LeaderArgs) -> anyhow::Result<()> {
    let log = open(&args.control).await?;
    let t = read_tail(&log).await?;
    let age = t.beat.map(|(_, at)| now_ms().saturating_sub(at));
    if args.json {
        let standbys: Vec<serde_json::Value> = t
            .standbys
            .values()
            .filter_map(|s| match s {
                ControlRecord::Standby {
                    writer,
                    shadow,
                    matched_commands,
                    matched_seq,
                    diverged,
                    at_ms,
                } => Some(serde_json::json!({
                    "id": writer, "shadow": shadow, "matched_commands": matched_commands,
                    "matched_seq": matched_seq, "diverged": diverged,
                    "age_ms": now_ms().saturating_sub(*at_ms),
                })),
                _ => None,
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "epoch": t.leadership.epoch,
                "leader": t.leadership.leader,
                "heartbeat_seq": t.beat.map(|b| b.0),
                "heartbeat_age_ms": age,
                "standbys": standbys,
            })
        );
        return Ok(());
    }
    match (&t.leadership.leader, t.beat) {
        (Some(l), Some((seq, _))) => println!(
            "epoch {}: {l} leads (last heartbeat {} ms ago, at seq {seq})",
            t.leadership.epoch,
            age.unwrap_or(0)
        ),
        (Some(l), None) => println!(
            "epoch {}: {l} won its claim and has not heartbeaten yet",
            t.leadership.epoch
        ),
        (None, _) => println!("no engine has led this shard yet"),
    }
    for s in t.standbys.values() {
        if let ControlRecord::Standby {
            writer,
            shadow,
            matched_commands,
            diverged,
            at_ms,
            ..
        } = s
        {
            println!(
                "standby {writer}{}: {matched_commands} commands matched{}, reported {} ms ago",
                if *shadow { " (shadow)" } else { "" },
                diverged
                    .as_ref()
                    .map(|d| format!(", DIVERGED: {d}"))
                    .unwrap_or_default(),
                now_ms().saturating_sub(*at_ms)
            );
        }
    }
    Ok(())
}

/// `tape promote ID`: asks a standby to take over; prints its answer. Exits non-zero
/// when it refuses (or does not answer in time).
pub async fn promote(args: PromoteArgs) -> anyhow::Result<()> {
    let log = open(&args.control).await?;
    let t = read_tail(&log).await?;
    let mut leadership = t.leadership;
    let request = ControlRecord::Promote {
        writer: args.id.clone(),
        min_matched: args.min_matched,
    };
    log.append(vec![codec::to_bincode(&request)?]).await?;
    let mut reader = log.reader(t.end).await?;
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    while Instant::now() < deadline {
        for r in reader.next_batch(256, Duration::from_millis(100)).await? {
            let Ok(record) = codec::from_bincode::<ControlRecord>(&r.bytes) else {
                continue;
            };
            if let ControlRecord::Refused { writer, why } = &record {
                if *writer == args.id {
                    anyhow::bail!("{} refused the promotion: {why}", args.id);
                }
            }
            if let Change::Won { epoch, writer } = leadership.apply(r.offset, &record) {
                anyhow::ensure!(
                    writer == args.id,
                    "{writer} won epoch {epoch} before {} did",
                    args.id
                );
                println!("{} leads epoch {epoch}", args.id);
                return Ok(());
            }
        }
    }
    anyhow::bail!(
        "{} did not answer within {} s (is it running, with this control topic?)",
        args.id,
        args.timeout
    )
}
