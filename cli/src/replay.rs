//! `tape replay …`: the auditors' tools. `verify` re-executes the commands log with
//! its own core and proves the events log event by event; `balances` and `export`
//! fold the events log's postings; `stream` re-publishes a log at its recorded pace.

use std::time::{Duration, Instant, UNIX_EPOCH};

use tape_log::Log;

use clap::{Args, Subcommand};
use tape_core::CoreConfig;

use crate::logs::{LogArgs, Role};

#[derive(Subcommand)]
pub enum Replay {
    /// Re-executes every command and checks every event: bytes, seq continuity, the
    /// hash chain, checkpoint state hashes and invariants. Exits 0 only when all hold.
    Verify(VerifyArgs),
    /// An account's balances (available, held, total per asset) at a point of the
    /// events log.
    Balances(BalancesArgs),
    /// An account's statement as CSV: every posting, with the running balances.
    Export(ExportArgs),
    /// Re-publishes a recorded log to another log at its original pace (or faster),
    /// so that a staging frontend can be fed real history.
    Stream(StreamArgs),
}

/// A point of the events log: a `seq` (`4812`), engine time in epoch milliseconds
/// (`1767225600000ms`) or an RFC 3339 time (`2026-01-01T00:00:00Z`).
fn parse_point(s: &str) -> Result<tape_replay::statement::Point, String> {
    use tape_replay::statement::Point;
    if let Ok(seq) = s.parse::<u64>() {
        return Ok(Point::Seq(seq));
    }
    if let Some(ms) = s.strip_suffix("ms").and_then(|m| m.parse::<u64>().ok()) {
        return Ok(Point::TimeMs(ms));
    }
    let t = humantime::parse_rfc3339_weak(s).map_err(|e| {
        format!("\"{s}\" is not a seq, epoch milliseconds (\"…ms\") or an RFC 3339 time: {e}")
    })?;
    let ms = t
        .duration_since(UNIX_EPOCH)
        .map_err(|_| format!("{s} is before 1970"))?
        .as_millis() as u64;
    Ok(Point::TimeMs(ms))
}

fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

#[derive(Args)]
pub struct BalancesArgs {
    #[command(flatten)]
    pub logs: LogArgs,
    #[arg(long)]
    pub account: u64,
    /// seq, epoch ms ("…ms") or RFC 3339 time; default: the end of the log.
    #[arg(long, value_parser = parse_point)]
    pub at: Option<tape_replay::statement::Point>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub logs: LogArgs,
    #[arg(long)]
    pub account: u64,
    /// First point included (seq, epoch ms "…ms" or RFC 3339); default: the start.
    #[arg(long, value_parser = parse_point)]
    pub from: Option<tape_replay::statement::Point>,
    /// Last point included; default: the end.
    #[arg(long, value_parser = parse_point)]
    pub to: Option<tape_replay::statement::Point>,
    /// Write the CSV here instead of stdout.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
}

#[derive(Args)]
pub struct StreamArgs {
    /// Where the recording is.
    #[command(flatten)]
    pub logs: LogArgs,
    /// Which log to re-publish.
    #[arg(long, value_parser = ["events", "commands"], default_value = "events")]
    pub log: String,
    /// Pace relative to the recording: 1 is the original pace, 10 ten times faster,
    /// 0 as fast as the target takes it.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Target: an embedded data directory (the log goes to DIR/events or
    /// DIR/commands).
    #[arg(long, conflicts_with = "to_kafka")]
    pub to_data: Option<std::path::PathBuf>,
    /// Target: Kafka bootstrap servers (with --to-topic).
    #[arg(long, requires = "to_topic")]
    pub to_kafka: Option<String>,
    #[arg(long)]
    pub to_topic: Option<String>,
}

#[derive(Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub logs: LogArgs,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// The proof-of-liabilities round secret (its file): rebuild every round's
    /// tree at its checkpoint and check its root, byte for byte. Without it, a
    /// round's checkpoint, state hash and totals are still checked.
    #[arg(long)]
    pub pol_secret: Option<std::path::PathBuf>,
}

pub async fn run(r: Replay) -> anyhow::Result<()> {
    match r {
        Replay::Verify(args) => verify(args).await,
        Replay::Balances(args) => balances(args).await,
        Replay::Export(args) => export(args).await,
        Replay::Stream(args) => stream(args).await,
    }
}

async fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let commands = args.logs.open("commands", Role::Follower).await?;
    let events = args.logs.open("events", Role::Follower).await?;
    let started = Instant::now();
    let bar = indicatif::ProgressBar::new(commands.end_offset().await?);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "verifying {bar:40} {pos}/{len} commands, {per_sec}, eta {eta}",
        )
        .expect("a valid template"),
    );
    let progress = |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let secret = match &args.pol_secret {
        Some(path) => Some(crate::pol::parse_secret(&std::fs::read_to_string(path)?)?),
        None => None,
    };
    let verified =
        tape_replay::verify_with(&commands, &events, CoreConfig::default(), secret, progress);
    match verified.await {
        Ok(v) => {
            bar.finish_and_clear();
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "re-executed {} commands, compared {} events byte for byte, checked {} checkpoints (state hash and invariants) in {secs:.1} s ({:.0} events/s)",
                v.commands,
                v.events,
                v.checkpoints,
                v.events as f64 / secs.max(1e-9)
            );
            if v.copies > 0 {
                eprintln!(
                    "skipped {} identical copies of earlier events (re-sent records)",
                    v.copies
                );
            }
            if v.fences > 0 {
                eprintln!(
                    "read {} fences (failovers); ignored {} records of deposed epochs written after them",
                    v.fences, v.fenced
                );
            }
            if v.liability_rounds > 0 {
                eprintln!(
                    "checked {} liabilities rounds against their checkpoints and totals; rebuilt {} roots from the round secret",
                    v.liability_rounds, v.roots_rebuilt
                );
            }
            if args.json {
                println!(
                    r#"{{"verified":true,"commands":{},"events":{},"checkpoints":{},"state_hash":"{}","copies":{},"fences":{},"fenced":{},"liability_rounds":{},"roots_rebuilt":{}}}"#,
                    v.commands,
                    v.events,
                    v.checkpoints,
                    v.state_hash,
                    v.copies,
                    v.fences,
                    v.fenced,
                    v.liability_rounds,
                    v.roots_rebuilt
                );
            } else {
                println!(
                    "verified {} commands, {} events, state hash {}",
                    v.commands, v.events, v.state_hash
                );
            }
            Ok(())
        }
        Err(tape_replay::VerifyError::Disagrees(d)) => {
            bar.abandon();
            if args.json {
                println!(
                    "{{\"verified\":false,\"seq\":{},\"command_offset\":{},\"what\":{:?},\"expected\":{:?},\"found\":{:?}}}",
                    d.seq, d.command_offset, d.what, d.expected, d.found
                );
            } else {
                println!("NOT VERIFIED: {d}");
            }
            std::process::exit(1);
        }
        Err(e) => Err(e.into()),
    }
}

async fn balances(args: BalancesArgs) -> anyhow::Result<()> {
    use tape_replay::statement::{balances_at, Point};
    let events = args.logs.open("events", Role::Follower).await?;
    let at = args.at.unwrap_or(Point::Seq(u64::MAX));
    let b = balances_at(&events, tape_schemas::AccountId(args.account), at).await?;
    if args.json {
        let holdings: serde_json::Map<String, serde_json::Value> = b
            .holdings
            .iter()
            .map(|(asset, h)| {
                let v = serde_json::json!({
                    "available": h.available.to_string(),
                    "held": h.held.to_string(),
                    "total": h.total().to_string(),
                });
                (asset.clone(), v)
            })
            .collect();
        let out = serde_json::json!({
            "account": args.account, "seq": b.seq, "time_ms": b.time_ms, "balances": holdings,
        });
        println!("{out}");
        return Ok(());
    }
    println!(
        "account {} at seq {} ({})",
        args.account,
        b.seq,
        rfc3339(b.time_ms)
    );
    println!(
        "{:<12} {:>28} {:>28} {:>28}",
        "asset", "available", "held", "total"
    );
    for (asset, h) in &b.holdings {
        println!(
            "{asset:<12} {:>28} {:>28} {:>28}",
            h.available.to_string(),
            h.held.to_string(),
            h.total().to_string()
        );
    }
    Ok(())
}

async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let events = args.logs.open("events", Role::Follower).await?;
    let account = tape_schemas::AccountId(args.account);
    let (opening, lines) =
        tape_replay::statement::statement(&events, account, args.from, args.to).await?;
    let sink: Box<dyn std::io::Write> = match &args.out {
        Some(path) => Box::new(std::fs::File::create(path)?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut w = csv::Writer::from_writer(sink);
    w.write_record([
        "seq",
        "time",
        "asset",
        "kind",
        "reference",
        "available_change",
        "held_change",
        "available",
        "held",
        "total",
    ])?;
    for (asset, h) in &opening {
        let zero = "0".to_string();
        w.write_record([
            "",
            "",
            asset,
            "opening",
            "",
            &zero,
            &zero,
            &h.available.to_string(),
            &h.held.to_string(),
            &h.total().to_string(),
        ])?;
    }
    for l in &lines {
        w.write_record([
            l.seq.to_string(),
            rfc3339(l.time_ms),
            l.asset.to_string(),
            l.kind.to_string(),
            l.reference.map(|r| r.to_string()).unwrap_or_default(),
            l.available_change.to_string(),
            l.held_change.to_string(),
            l.available.to_string(),
            l.held.to_string(),
            (l.available + l.held).to_string(),
        ])?;
    }
    w.flush()?;
    eprintln!("{} postings of account {}", lines.len(), args.account);
    Ok(())
}

/// The recorded time of a record (events: the engine's; commands: the envelope's).
fn record_time_ms(log: &str, bytes: &[u8]) -> Option<u64> {
    if log == "events" {
        tape_schemas::EventEnvelope::from_record(bytes)
            .ok()
            .map(|e| e.time_ms)
    } else {
        tape_schemas::codec::decode_command(bytes)
            .ok()
            .map(|c| c.time_ms)
    }
}

async fn stream(args: StreamArgs) -> anyhow::Result<()> {
    use tape_log::{AnyLog, FileLog, FileLogOptions, KafkaLog, KafkaOptions, LogReader};
    anyhow::ensure!(
        args.speed >= 0.0 && args.speed.is_finite(),
        "--speed must be 0 (unpaced) or a positive factor"
    );
    let source = args.logs.open(&args.log, Role::Follower).await?;
    let target = match (&args.to_data, &args.to_kafka) {
        (Some(dir), None) => {
            AnyLog::File(FileLog::open(dir.join(&args.log), FileLogOptions::default())?.0)
        }
        (None, Some(brokers)) => {
            let topic = args.to_topic.as_deref().expect("clap requires --to-topic");
            AnyLog::Kafka(KafkaLog::open(KafkaOptions::new(brokers, topic)).await?)
        }
        _ => anyhow::bail!("name a target: --to-data DIR or --to-kafka BROKERS --to-topic TOPIC"),
    };
    let end = source.end_offset().await?;
    // A target that already holds a prefix (an earlier, interrupted stream) continues.
    let start = target.end_offset().await?;
    anyhow::ensure!(
        start <= end,
        "the target holds more records ({start}) than the source ({end})"
    );
    let mut reader = source.reader(start).await?;
    let bar = indicatif::ProgressBar::new(end);
    bar.set_position(start);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "streaming {bar:40} {pos}/{len} records, {per_sec}",
        )
        .expect("a valid template"),
    );
    let started = Instant::now();
    let mut first_ms: Option<u64> = None;
    let mut last_ms = 0;
    let mut offset = start;
    while offset < end {
        let batch = reader.next_batch(1_000, Duration::from_secs(5)).await?;
        if batch.is_empty() {
            break;
        }
        let mut pending: Vec<Vec<u8>> = Vec::new();
        for r in batch {
            offset = r.offset + 1;
            last_ms = record_time_ms(&args.log, &r.bytes).unwrap_or(last_ms);
            let t0 = *first_ms.get_or_insert(last_ms);
            if args.speed > 0.0 {
                let due =
                    Duration::from_secs_f64(last_ms.saturating_sub(t0) as f64 / 1e3 / args.speed);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    if !pending.is_empty() {
                        target.append(std::mem::take(&mut pending)).await?;
                    }
                    tokio::time::sleep(wait).await;
                }
            }
            pending.push(r.bytes);
        }
        let n = pending.len() as u64;
        if n > 0 {
            target.append(pending).await?;
        }
        bar.set_position(offset);
    }
    bar.finish_and_clear();
    eprintln!(
        "streamed {} records ({} to {}) in {:.1} s",
        offset - start,
        rfc3339(first_ms.unwrap_or(0)),
        rfc3339(last_ms),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
