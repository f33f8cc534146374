//! `tape bench …`: throughput, latency and memory of the core on the standard mix.

use std::time::Instant;

use clap::{Args, Subcommand};
#[cfg(feature = "count-alloc")]
use tape_benches::{alloc::CountingAlloc, prepared_core_with, resting_book_commands};
use tape_benches::{prepared_core, run_commands, standard_mix_with};
use tape_core::{CoreConfig, PREFETCH_AHEAD};
use tape_schemas::*;

#[derive(Subcommand)]
pub enum Bench {
    /// The core alone, one thread, on the standard mix (see benches/README.md).
    Core(CoreArgs),
    /// End to end: commands appended to the commands log -> durable events.
    E2e(crate::bench_e2e::E2eArgs),
    /// The auditor: `replay verify` over embedded logs holding the standard mix.
    Replay(ReplayArgs),
    /// The projector: the standard mix's events folded into fresh read models.
    Project(crate::bench_read::ProjectArgs),
    /// The GraphQL gateway under a query mix from concurrent keep-alive clients.
    Graphql(crate::bench_read::GraphqlArgs),
    /// An order's round trip at low load against a running Tape: one client, one
    /// order at a time, over GraphQL or through the commands log.
    Order(crate::bench_order::OrderArgs),
    /// What batching gains a market maker: ladder re-quotes one command a change
    /// against one batch a re-quote, signed, through the core.
    Batch(crate::bench_batch::BatchArgs),
    /// The hot standby on Kafka: trials of killing or pausing the leader under load,
    /// timing the takeover (claim, fence, first new answer).
    Failover(crate::bench_failover::FailoverArgs),
    /// The margin engine in the core: index updates over many positions, a margin
    /// order against a spot one, and a liquidation storm.
    Margin(crate::bench_margin::MarginArgs),
    /// Proof of liabilities: the tree and every proof over a million accounts,
    /// the tree file, a proof's size and the Python verifier's time.
    Pol(crate::bench_pol::PolArgs),
}

#[derive(Args)]
pub struct ReplayArgs {
    #[arg(long, default_value_t = 1_000_000)]
    commands: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where the logs go (a fresh directory under it, removed afterwards).
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    dir: std::path::PathBuf,
}

#[derive(Args)]
pub struct CoreArgs {
    /// Timed commands.
    #[arg(long, default_value_t = 5_000_000)]
    commands: u64,
    /// Seed of the mix.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Timed runs; the figures are their medians.
    #[arg(long, default_value_t = 5)]
    runs: u32,
    /// Resting orders in the memory measurement.
    #[arg(long, default_value_t = 1_000_000)]
    memory_orders: u64,
    /// Command ids the dedupe window remembers (the core's default unless given);
    /// 0 turns deduplication off, to see what it costs.
    #[arg(long)]
    dedupe_capacity: Option<usize>,
    /// Require credentials and sign every timed command with an admin key, to see
    /// what checking a MAC on each command costs.
    #[arg(long)]
    signed: bool,
}

pub async fn run(b: Bench) -> anyhow::Result<()> {
    match b {
        Bench::Core(args) => core(args),
        Bench::E2e(args) => crate::bench_e2e::run(args).await,
        Bench::Replay(args) => replay(args).await,
        Bench::Project(args) => crate::bench_read::project(args),
        Bench::Graphql(args) => crate::bench_read::graphql(args).await,
        Bench::Batch(args) => crate::bench_batch::run(args),
        Bench::Order(args) => crate::bench_order::order(args).await,
        Bench::Failover(args) => crate::bench_failover::run(args).await,
        Bench::Margin(args) => crate::bench_margin::run(args),
        Bench::Pol(args) => crate::bench_pol::run(args),
    }
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn core(args: CoreArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.commands > 0 && args.runs > 0,
        "--commands and --runs must be positive"
    );
    let mut cfg = CoreConfig::default();
    if let Some(c) = args.dedupe_capacity {
        cfg.dedupe_capacity = c;
    }
    let started = Instant::now();
    let mix = standard_mix_with(args.commands, args.seed, cfg);
    eprintln!(
        "generated {} commands in {:.1?}",
        args.commands,
        started.elapsed()
    );
    println!("{}", mix.stats.summary());

    // Signed: an admin key and `RequireCredentials` after the setup, and every timed
    // command signed (before timing) as a market maker's would be.
    const SECRET: &str = "bench-admin";
    let signed_commands: Vec<CommandEnvelope>;
    let mut signed_records: Vec<Vec<u8>> = Vec::new();
    let (timed, expected_events) = if args.signed {
        let mut core = prepared_core(&mix);
        let unsigned_events = run_commands(&mut core, &mix.commands);
        // One market maker's process: one stream, numbered in order.
        let signer = Signer::new(
            ApiKeyId(1),
            mac_key(SECRET),
            std::sync::Arc::new(SigningStream::new(0x6d6d)),
        );
        signed_commands = mix
            .commands
            .iter()
            .map(|e| signer.sign(e.clone(), e.time_ms + 30_000))
            .collect::<Result<_, _>>()?;
        // The records as they sit on the log: their MACs cover these bytes.
        signed_records = signed_commands
            .iter()
            .map(codec::to_bincode)
            .collect::<Result<_, _>>()?;
        (&signed_commands[..], Some(unsigned_events))
    } else {
        (&mix.commands[..], None)
    };
    let apply_all = |core: &mut tape_core::Core| match args.signed {
        true => tape_benches::run_records(core, timed, &signed_records),
        false => run_commands(core, timed),
    };
    let prepare = || {
        let mut core = prepared_core(&mix);
        if args.signed {
            let t = mix.setup.last().map_or(0, |e| e.time_ms);
            let mut out = Vec::new();
            for (n, command) in [
                Command::CreateApiKey {
                    role: ApiRole::Admin,
                    account: None,
                    secret_hash: hash_secret(SECRET),
                    mac_key: mac_key(SECRET),
                },
                Command::RequireCredentials { required: true },
            ]
            .into_iter()
            .enumerate()
            {
                let id = CommandId::from_u128(u128::MAX - n as u128);
                core.apply(&CommandEnvelope::new(id, t, command), &mut out);
            }
        }
        core
    };

    // Throughput: the whole stream, no per-command timing.
    let mut rates = Vec::new();
    let mut snapshot_bytes = 0;
    let mut snapshot_ms = 0.0;
    for run in 0..args.runs {
        let mut core = prepare();
        let t = Instant::now();
        let events = apply_all(&mut core);
        let secs = t.elapsed().as_secs_f64();
        match expected_events {
            // Signed, the state also holds the key, so the hash differs; every
            // command must still do exactly what it did unsigned.
            Some(expected) => anyhow::ensure!(
                events == expected && core.credentials_required(),
                "run {run}: {events} events signed, {expected} unsigned"
            ),
            None => anyhow::ensure!(
                core.state_hash() == mix.state_hash,
                "run {run} diverged from the generating run"
            ),
        }
        let rate = args.commands as f64 / secs;
        let t = Instant::now();
        snapshot_bytes = core.snapshot().len();
        snapshot_ms = t.elapsed().as_secs_f64() * 1e3;
        eprintln!("run {run}: {rate:.0} commands/s, {events} events");
        rates.push(rate);
    }

    // Latency: each command timed on its own, in a separate pass.
    let mut p50s = Vec::new();
    let mut p99s = Vec::new();
    for _ in 0..args.runs {
        let mut core = prepare();
        let mut out = Vec::with_capacity(64);
        let mut ns: Vec<u32> = Vec::with_capacity(timed.len());
        // As `apply_batch` does, with a clock around each command.
        for (i, e) in timed.iter().enumerate() {
            out.clear();
            let t = Instant::now();
            if let Some(later) = timed.get(i + PREFETCH_AHEAD) {
                core.prefetch(later);
            }
            match signed_records.get(i) {
                Some(r) => core.apply_record(e, Some(Record::Bincode(r)), &mut out),
                None => core.apply(e, &mut out),
            }
            ns.push(t.elapsed().as_nanos().min(u128::from(u32::MAX)) as u32);
        }
        ns.sort_unstable();
        p50s.push(f64::from(ns[ns.len() / 2]));
        p99s.push(f64::from(ns[ns.len() * 99 / 100]));
    }

    let bytes_per_order = memory_per_order(&mix, cfg, &args);
    eprintln!("dedupe window: {} command ids", cfg.dedupe_capacity);
    println!(
        "core: {} commands, {:.0} commands/s, p50 {:.0} ns, p99 {:.0} ns, {} bytes/resting order, snapshot {} bytes in {:.1} ms, state hash {}",
        args.commands,
        median(rates),
        median(p50s),
        median(p99s),
        bytes_per_order,
        snapshot_bytes,
        snapshot_ms,
        hex::encode(mix.state_hash)
    );
    Ok(())
}

/// Live heap growth per resting order on a large book (dedupe off: the window's cost
/// is per command, not per order), in a build with the counting allocator.
#[cfg(feature = "count-alloc")]
fn memory_per_order(mix: &tape_benches::Mix, cfg: CoreConfig, args: &CoreArgs) -> String {
    let mut core = prepared_core_with(
        &mix,
        CoreConfig {
            dedupe_capacity: 0,
            ..cfg
        },
    );
    let book = resting_book_commands(args.memory_orders, args.seed);
    let before_orders = core.open_orders();
    let before = CountingAlloc::live_bytes();
    let mut out = Vec::with_capacity(64);
    for e in &book {
        out.clear();
        core.apply(e, &mut out);
    }
    drop(out);
    let resting = core.open_orders() - before_orders;
    let bytes_per_order = (CountingAlloc::live_bytes() - before) as f64 / resting as f64;
    format!("{bytes_per_order:.0}")
}

#[cfg(not(feature = "count-alloc"))]
fn memory_per_order(_: &tape_benches::Mix, _: CoreConfig, _: &CoreArgs) -> String {
    "n/a (build with --features count-alloc)".to_string()
}

/// Writes the mix and the events a fresh engine derives from it to embedded logs,
/// then times the verifier over them.
async fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    use tape_log::{FileLog, FileLogOptions};
    let mix = tape_benches::standard_mix(args.commands, args.seed);
    let commands: Vec<Vec<u8>> = mix
        .setup
        .iter()
        .chain(&mix.commands)
        .map(|c| tape_schemas::codec::to_bincode(c).expect("encodes"))
        .collect();
    let events = tape_engine::derive_records(&commands, CoreConfig::default(), 1_000_000);
    let dir = args
        .dir
        .join(format!("tape-bench-replay-{}", std::process::id()));
    let (c, _) = FileLog::open(dir.join("commands"), FileLogOptions::default())?;
    let (e, _) = FileLog::open(dir.join("events"), FileLogOptions::default())?;
    for chunk in commands.chunks(100_000) {
        c.append(chunk.to_vec()).await?;
    }
    for chunk in events.chunks(100_000) {
        e.append(chunk.to_vec()).await?;
    }
    let started = Instant::now();
    let v = tape_replay::verify(&c, &e, CoreConfig::default(), |_, _| {}).await?;
    let secs = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "replay: {} commands, {} events, {:.0} events/s, {:.0} commands/s, state hash {}",
        v.commands,
        v.events,
        v.events as f64 / secs,
        v.commands as f64 / secs,
        v.state_hash
    );
    Ok(())
}
