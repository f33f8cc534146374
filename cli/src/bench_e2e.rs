//! `tape bench e2e`: the standard mix appended to the commands log while the engine
//! runs; measured until every command's outcome is durable on the events log. With
//! `--kafka`, the same through Kafka, and in the same run the broker's own
//! produce+consume rate for messages of the same sizes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use tape_engine::{Engine, EngineOptions, SnapshotStore};
use tape_log::{AnyLog, FileLog, FileLogOptions, KafkaLog, KafkaOptions, Log, LogReader};
use tape_schemas::{codec, EventEnvelope, EventRecord};

#[derive(Args)]
pub struct E2eArgs {
    /// Timed commands.
    #[arg(long, default_value_t = 1_000_000)]
    commands: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Commands per append by the producer.
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    /// Run through Kafka at these brokers instead of the embedded log.
    #[arg(long)]
    kafka: Option<String>,
    /// Offered load in commands/s (paced producer); unlimited when absent, which
    /// measures throughput (and then p99 is mostly queueing).
    #[arg(long)]
    rate: Option<f64>,
    /// On Kafka: run the engine as a leader under the control topic (heartbeats
    /// every 50 ms, its events framed with its epoch after its fence), as a
    /// deployment with standbys does; without it, the engine writes alone (epoch 0).
    #[arg(long)]
    failover: bool,
    /// Where the embedded logs go (a fresh directory under it).
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    dir: std::path::PathBuf,
}

struct Outcome {
    rate: f64,
    p99_us: f64,
}

async fn open_pair(
    args: &E2eArgs,
    tag: &str,
) -> anyhow::Result<(Arc<AnyLog>, AnyLog, std::path::PathBuf)> {
    let unique = format!(
        "tape-bench-{}-{}-{tag}",
        std::process::id(),
        tape_client::now_ms()
    );
    let dir = args.dir.join(&unique);
    Ok(match &args.kafka {
        Some(b) => (
            Arc::new(AnyLog::Kafka(
                KafkaLog::open(KafkaOptions::new(b, &format!("{unique}-commands"))).await?,
            )),
            AnyLog::Kafka(KafkaLog::open(KafkaOptions::new(b, &format!("{unique}-events"))).await?),
            dir,
        ),
        None => (
            Arc::new(AnyLog::File(
                FileLog::open(dir.join("commands"), FileLogOptions::default())?.0,
            )),
            AnyLog::File(FileLog::open(dir.join("events"), FileLogOptions::default())?.0),
            dir,
        ),
    })
}

async fn end_to_end(
    args: &E2eArgs,
    setup: &[Vec<u8>],
    timed: &[Vec<u8>],
) -> anyhow::Result<Outcome> {
    let (commands, events, dir) = open_pair(args, "e2e").await?;
    let snapshots = SnapshotStore::open(dir.join("snapshots"), 2)?;
    commands.append(setup.to_vec()).await?;
    let first_timed = setup.len() as u64;
    let last = first_timed + timed.len() as u64 - 1;
    let events = Arc::new(events);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let engine_commands = commands.clone();
    let engine_events = events.clone();
    let control = match (&args.kafka, args.failover) {
        (Some(b), true) => Some(Arc::new(
            KafkaLog::open(KafkaOptions::new(
                b,
                &format!(
                    "{}-control",
                    dir.file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or("tape-bench")
                ),
            ))
            .await?,
        )),
        _ => None,
    };
    let engine = tokio::spawn(async move {
        let engine = Engine::new(
            engine_commands,
            engine_events,
            snapshots,
            EngineOptions::default(),
        );
        match control {
            Some(control) => {
                let options = tape_engine::FailoverOptions::new("bench");
                tape_engine::failover::run(&engine, &control, &options, stop_rx)
                    .await
                    .map(|_| ())
            }
            None => engine.run(stop_rx).await.map(|_| ()),
        }
    });
    if args.failover {
        // It leads once its fence is on the events log.
        while events.end_offset().await? == 0 {
            anyhow::ensure!(!engine.is_finished(), "the engine stopped early");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    let started = Instant::now();
    let producer_log = commands.clone();
    let chunks: Vec<Vec<Vec<u8>>> = timed.chunks(args.batch).map(|c| c.to_vec()).collect();
    let pace = args
        .rate
        .map(|r| Duration::from_secs_f64(args.batch as f64 / r));
    let producer = tokio::spawn(async move {
        let mut submitted = Vec::with_capacity(chunks.len());
        for (i, chunk) in chunks.into_iter().enumerate() {
            if let Some(p) = pace {
                tokio::time::sleep_until((started + p * i as u32).into()).await;
            }
            let at = started.elapsed();
            let offsets = producer_log.append(chunk).await?;
            submitted.push((offsets[0], at));
        }
        anyhow::Ok(submitted)
    });

    // Progress: the last durable event tells which command (and every one before
    // it) has its outcome durable. The embedded log's end is known in-process, so
    // it is sampled every 2 ms and one record read; on Kafka a consumer follows the
    // topic and looks at the last event of each batch. Decoding every event would
    // cost the 2-core machine more than the engine's own work.
    let mut done_at: Vec<(u64, Duration)> = Vec::new();
    let mut follower = match &*events {
        AnyLog::Kafka(_) => Some(events.reader(0).await?),
        AnyLog::File(_) | AnyLog::Tool(_) => None,
    };
    let mut seen_end = 0;
    loop {
        anyhow::ensure!(!engine.is_finished(), "the engine stopped early");
        let last_record = match follower.as_mut() {
            Some(reader) => reader
                .next_batch(100_000, Duration::from_millis(100))
                .await?
                .pop(),
            None => {
                tokio::time::sleep(Duration::from_millis(2)).await;
                let end = events.end_offset().await?;
                if end == seen_end {
                    continue;
                }
                seen_end = end;
                events
                    .reader(end - 1)
                    .await?
                    .next_batch(1, Duration::from_secs(5))
                    .await?
                    .pop()
            }
        };
        let Some(record) = last_record else { continue };
        let now = started.elapsed();
        let Some(envelope) = EventRecord::envelope_of(&record.bytes) else {
            continue;
        };
        let (_, command_offset, _) = EventEnvelope::peek(envelope)?;
        if command_offset >= first_timed {
            done_at.push((command_offset, now));
        }
        if command_offset >= last {
            break;
        }
    }
    let elapsed = started.elapsed();
    let submitted = producer.await??;
    stop_tx.send(true)?;
    engine.await??;
    let mut latencies: Vec<f64> = done_at
        .iter()
        .map(|(offset, at)| {
            let i = submitted.partition_point(|(first, _)| first <= offset) - 1;
            (*at - submitted[i].1).as_secs_f64() * 1e6
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Outcome {
        rate: timed.len() as f64 / elapsed.as_secs_f64(),
        p99_us: latencies[latencies.len() * 99 / 100],
    })
}

/// The broker alone: produce the same messages to a fresh topic and read them back.
async fn broker_rate(args: &E2eArgs, timed: &[Vec<u8>]) -> anyhow::Result<f64> {
    let (log, _, _) = open_pair(args, "raw").await?;
    let mut reader = log.reader(0).await?;
    let started = Instant::now();
    let writer = log.clone();
    let chunks: Vec<Vec<Vec<u8>>> = timed.chunks(args.batch).map(|c| c.to_vec()).collect();
    let producer = tokio::spawn(async move {
        for chunk in chunks {
            writer.append(chunk).await?;
        }
        anyhow::Ok(())
    });
    let mut seen = 0usize;
    while seen < timed.len() {
        let batch = reader.next_batch(10_000, Duration::from_secs(30)).await?;
        anyhow::ensure!(!batch.is_empty(), "the broker stopped returning messages");
        seen += batch.len();
    }
    producer.await??;
    Ok(timed.len() as f64 / started.elapsed().as_secs_f64())
}

pub async fn run(args: E2eArgs) -> anyhow::Result<()> {
    let mix = tape_benches::standard_mix(args.commands, args.seed);
    println!("{}", mix.stats.summary());
    let encode = |v: &[tape_schemas::CommandEnvelope]| {
        v.iter()
            .map(|c| codec::to_bincode(c).expect("encodes"))
            .collect::<Vec<_>>()
    };
    let (setup, timed) = (encode(&mix.setup), encode(&mix.commands));
    let e2e = end_to_end(&args, &setup, &timed).await?;
    match &args.kafka {
        None => println!(
            "e2e: {} commands, {:.0} commands/s, p99 {:.0} us",
            args.commands, e2e.rate, e2e.p99_us
        ),
        Some(_) => {
            let broker = broker_rate(&args, &timed).await?;
            eprintln!("e2e-kafka: p99 {:.0} us", e2e.p99_us);
            println!(
                "e2e-kafka: {:.0} commands/s, broker {:.0} msgs/s, ratio {:.2}",
                e2e.rate,
                broker,
                e2e.rate / broker
            );
        }
    }
    Ok(())
}
