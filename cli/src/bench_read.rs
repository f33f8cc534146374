//! `tape bench project` and `tape bench graphql`: the read side on the standard mix.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use tape_core::CoreConfig;
use tape_schemas::*;
use tokio::sync::{broadcast, watch};

use crate::bench::median;

#[derive(Args)]
pub struct ProjectArgs {
    /// Commands of the standard mix whose events are projected.
    #[arg(long, default_value_t = 1_000_000)]
    commands: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Timed runs, each into a fresh directory; the figure is their median.
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Where the views go (a fresh directory under it, removed afterwards).
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    dir: std::path::PathBuf,
}

#[derive(Args)]
pub struct GraphqlArgs {
    /// Commands of the standard mix behind the views the queries read.
    #[arg(long, default_value_t = 200_000)]
    commands: u64,
    /// Concurrent clients (each one request at a time, over keep-alive).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds of load per run (after a one-second warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value_t = 3)]
    runs: u32,
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    dir: std::path::PathBuf,
}

/// The standard mix's command records, with an auditor key registered first (its
/// secret is "bench").
fn mix_records(commands: u64, seed: u64) -> Vec<Vec<u8>> {
    let mix = tape_benches::standard_mix(commands, seed);
    let key = CommandEnvelope::new(
        CommandId::from_u128(u128::MAX),
        1_700_000_000_000,
        Command::CreateApiKey {
            role: ApiRole::Auditor,
            account: None,
            secret_hash: hash_secret("bench"),
            mac_key: mac_key("bench"),
        },
    );
    std::iter::once(&key)
        .chain(&mix.setup)
        .chain(&mix.commands)
        .map(|c| codec::to_bincode(c).expect("encodes"))
        .collect()
}

pub fn project(args: ProjectArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.runs > 0, "--runs must be positive");
    let commands = mix_records(args.commands, args.seed);
    let events = tape_engine::derive_records(&commands, CoreConfig::default(), 1_000_000);
    eprintln!(
        "{} commands -> {} events ({:.1} MB)",
        commands.len(),
        events.len(),
        events.iter().map(|e| e.len()).sum::<usize>() as f64 / 1e6
    );
    let mut rates = Vec::new();
    for run in 0..args.runs {
        let dir = args
            .dir
            .join(format!("tape-bench-project-{}-{run}", std::process::id()));
        let (mut projector, _) = tape_projections::open(&dir)?;
        let started = Instant::now();
        for batch in events.chunks(tape_projections::BATCH_EVENTS_MAX) {
            projector.apply_records(batch.iter().map(|e| e.as_slice()))?;
        }
        let secs = started.elapsed().as_secs_f64();
        drop(projector);
        let _ = std::fs::remove_dir_all(&dir);
        let rate = events.len() as f64 / secs;
        eprintln!("run {run}: {:.0} events/s ({secs:.2} s)", rate);
        rates.push(rate);
    }
    println!(
        "project: {} events, median {:.0} events/s over {} runs",
        events.len(),
        median(rates),
        args.runs
    );
    Ok(())
}

/// The query mix: public market data and an account's private views, in turn.
const QUERIES: [&str; 5] = [
    r#"{ ticker(market: "BENCH-USD") { last high low volume bestBid bestAsk } }"#,
    r#"{ depth(market: "BENCH-USD", levels: 20) { bids { price quantity } asks { price quantity } } }"#,
    r#"{ portfolio(account: 7, valueIn: "USD") { balances { asset available held total value } } }"#,
    r#"{ orders(account: 7, first: 20) { edges { node { id status price filled } } pageInfo { hasNextPage } } }"#,
    r#"{ trades(market: "BENCH-USD", first: 20) { edges { node { id price quantity takerSide } } } }"#,
];

pub async fn graphql(args: GraphqlArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.runs > 0 && args.concurrency > 0,
        "--runs and --concurrency must be positive"
    );
    let commands = mix_records(args.commands, 1);
    let events = tape_engine::derive_records(&commands, CoreConfig::default(), 1_000_000);
    let dir = args
        .dir
        .join(format!("tape-bench-graphql-{}", std::process::id()));
    let (mut projector, views) = tape_projections::open(&dir)?;
    for batch in events.chunks(tape_projections::BATCH_EVENTS_MAX) {
        projector.apply_records(batch.iter().map(|e| e.as_slice()))?;
    }
    eprintln!("views of {} events ready", events.len());
    let (changes, _) = broadcast::channel(16);
    let (_progress_tx, progress) = watch::channel(tape_projections::Progress::default());
    let mut config = tape_gateway::GatewayConfig::new("unused-admin-token");
    config.rate_per_second = 10_000_000;
    config.rate_burst = 10_000_000;
    let submitter =
        tape_gateway::Submitter::start(tape_gateway::CommandsDoor::Embedded(dir.join("commands")));
    let sources = tape_gateway::Sources {
        views,
        submitter,
        progress,
        changes,
    };
    let router = tape_gateway::router(sources, config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/graphql", listener.local_addr()?);
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = tokio::spawn(tape_gateway::serve(listener, router, stop_rx));

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let token = "tape_1_bench";
    // every query must succeed before we time them
    for q in QUERIES {
        let body: serde_json::Value = client
            .post(&url)
            .bearer_auth(token)
            .json(&serde_json::json!({ "query": q }))
            .send()
            .await?
            .json()
            .await?;
        anyhow::ensure!(body.get("errors").is_none(), "{q}: {body}");
    }
    let mut rates = Vec::new();
    let mut p50s = Vec::new();
    let mut p99s = Vec::new();
    for run in 0..args.runs {
        let (rate, p50, p99) = load(&client, &url, token, args.concurrency, args.seconds).await?;
        eprintln!(
            "run {run}: {rate:.0} queries/s, p50 {:.2} ms, p99 {:.2} ms",
            p50 * 1e3,
            p99 * 1e3
        );
        rates.push(rate);
        p50s.push(p50);
        p99s.push(p99);
    }
    let _ = stop_tx.send(true);
    let _ = server.await;
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "graphql: {} clients, query mix of {}: median {:.0} queries/s, p50 {:.2} ms, p99 {:.2} ms over {} runs",
        args.concurrency,
        QUERIES.len(),
        median(rates),
        median(p50s) * 1e3,
        median(p99s) * 1e3,
        args.runs
    );
    Ok(())
}

/// `concurrency` clients, each sending the mix in turn for `seconds`; returns the
/// rate and the p50 and p99 latencies in seconds (after a one-second warm-up).
async fn load(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    concurrency: usize,
    seconds: u64,
) -> anyhow::Result<(f64, f64, f64)> {
    let warm_until = Instant::now() + Duration::from_secs(1);
    let end = warm_until + Duration::from_secs(seconds);
    let failures = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..concurrency {
        let client = client.clone();
        let url = url.to_string();
        let token = token.to_string();
        let failures = failures.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = c;
            loop {
                let started = Instant::now();
                if started >= end {
                    break;
                }
                let q = QUERIES[i % QUERIES.len()];
                i += 1;
                let ok = match client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&serde_json::json!({ "query": q }))
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                    _ => false,
                };
                if !ok {
                    failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                if started >= warm_until {
                    latencies.push(started.elapsed().as_secs_f64());
                }
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await?);
    }
    let failed = failures.load(std::sync::atomic::Ordering::Relaxed);
    anyhow::ensure!(failed == 0, "{failed} requests failed");
    all.sort_by(f64::total_cmp);
    let pick = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    Ok((all.len() as f64 / seconds as f64, pick(0.5), pick(0.99)))
}
