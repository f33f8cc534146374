//! The `tape` binary.

/// std's `eprintln!`, but each line in one write. Tools run side by side on one
/// terminal or file (`tape clock &` beside `tape produce`), and std's unbuffered
/// stderr writes a line in pieces, one per argument, which interleave with
/// another process's. Declared before the modules, so it is theirs too.
macro_rules! eprintln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let line = format!("{}\n", format_args!($($arg)*));
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }};
}

mod bench;
mod bench_batch;
mod bench_e2e;
mod bench_failover;
mod bench_margin;
mod bench_order;
mod bench_pol;
mod bench_read;
mod clock;
mod config;
mod control;
mod demo;
mod door;
mod facts;
mod fanout;
mod init;
mod io;
mod load;
mod logs;
mod metrics;
mod mm;
mod oracle;
mod pol;
mod read_side;
mod replay;
mod service;

use clap::{Parser, Subcommand};

/// mimalloc, not the system's allocator: after a burst of frees (a drain of a
/// thousand liquidations), glibc's `malloc` sorts the freed blocks at the next
/// allocation that misses its cache, and that command paid for it (a crossing
/// of 10 accounts: 93 µs instead of 12). With mimalloc it costs nothing extra;
/// the figures are in BENCHMARKS.md ("the allocator, again").
#[cfg(not(feature = "count-alloc"))]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The memory benchmark's counting allocator, only in builds made for it
/// (`--features count-alloc`): it does an atomic add on every allocation.
#[cfg(feature = "count-alloc")]
#[global_allocator]
static ALLOC: tape_benches::alloc::CountingAlloc = tape_benches::alloc::CountingAlloc;

#[derive(Parser)]
#[command(
    name = "tape",
    version,
    about = "Tape: an event-sourced exchange back end"
)]
struct Cli {
    /// A TOML file of settings: `key = value` for any option that has an
    /// environment variable (`data` is TAPE_DATA, `[mm] market` is TAPE_MM_MARKET).
    /// Flags, then the environment, then the file, then the defaults.
    #[arg(long, global = true, env = "TAPE_CONFIG")]
    config: Option<std::path::PathBuf>,
    /// Log lines on stderr as text or as JSON objects (one per line). Levels come
    /// from RUST_LOG (default: info).
    #[arg(long, global = true, env = "TAPE_LOG_FORMAT", value_parser = ["text", "json"], default_value = "text")]
    log_format: String,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs Tape: the engine over the embedded log in ./data (or Kafka with --kafka),
    /// the read models and the GraphQL gateway.
    Run(service::RunArgs),
    /// Starts a deployment's commands log: the first admin key (its token printed
    /// once) and credentials required from the first command (unless --open).
    Init(init::InitArgs),
    /// The engine alone (for a Kafka deployment, or over an embedded log).
    Engine(service::EngineArgs),
    /// The read side alone: projector and GraphQL gateway following the events log.
    Gateway(read_side::GatewayCmd),
    /// The projector alone: brings the read models up to date (or follows).
    Project(read_side::ProjectCmd),
    /// Appends commands given as JSON lines to the commands log.
    Produce(io::ProduceArgs),
    /// Prints events from the events log as JSON lines.
    Consume(io::ConsumeArgs),
    /// The Kafka door for any language: JSON feeds per account (private) and per
    /// market (public L3 and trades), from the events log.
    Fanout(fanout::FanoutArgs),
    /// An example market maker: quotes a ladder around the last trade straight on
    /// the commands log, re-quotes as the market moves, cancels on shutdown.
    Mm(mm::MmArgs),
    /// The operator's time source: a clock tick signed by an admin key every
    /// interval (needed once credentials are required).
    Clock(clock::ClockArgs),
    /// Posts index prices for a perpetual market (from a file, stdin or a recorded
    /// series, at a chosen pace); --demo creates BTC-USDT-PERP first.
    Oracle(oracle::OracleArgs),
    /// Live load: the standard mix through the commands topic or GraphQL, with the
    /// rates and latencies seen.
    Load(load::LoadArgs),
    /// Who leads this Kafka shard (the control topic), and its standbys.
    Leader(control::LeaderArgs),
    /// Asks a standby to take over once it has matched enough commands (it refuses,
    /// naming the first difference, if its events ever differed from the leader's).
    Promote(control::PromoteArgs),
    /// The auditors' tools.
    #[command(subcommand)]
    Replay(replay::Replay),
    /// Proof of liabilities: build and commit a round, export its proofs, check one.
    #[command(subcommand)]
    Pol(pol::Pol),
    /// Runs a short scripted session in an in-memory core and prints every event as
    /// a JSON line, then the balances and the state hash.
    Demo,
    /// Benchmarks.
    #[command(subcommand)]
    Bench(bench::Bench),
}

fn main() -> anyhow::Result<()> {
    // The configuration file sets environment variables, so it is read before the
    // command line is parsed for real (clap takes each variable's value when it
    // builds the command).
    use clap::CommandFactory;
    let command = Cli::command();
    let early = command.clone().ignore_errors(true).get_matches();
    let config = early
        .get_one::<std::path::PathBuf>("config")
        .cloned()
        .or_else(|| std::env::var_os("TAPE_CONFIG").map(Into::into));
    if let Some(path) = config {
        config::apply(&path, &command)?;
    }
    let cli = Cli::parse();
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    // A closed stderr must not panic a task (tracing's own error report would).
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .log_internal_errors(false)
        .with_writer(std::io::stderr);
    if cli.log_format == "json" {
        logs.json().init();
    } else {
        logs.init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Cmd::Run(args) => service::run(args).await,
            Cmd::Init(args) => init::init(args).await,
            Cmd::Fanout(args) => fanout::fanout(args).await,
            Cmd::Engine(args) => service::engine(args).await,
            Cmd::Gateway(args) => read_side::gateway(args).await,
            Cmd::Project(args) => read_side::project(args).await,
            Cmd::Produce(args) => io::produce(args).await,
            Cmd::Consume(args) => io::consume(args).await,
            Cmd::Mm(args) => mm::run(args).await,
            Cmd::Load(args) => load::run(args).await,
            Cmd::Clock(args) => clock::run(args).await,
            Cmd::Oracle(args) => oracle::run(args).await,
            Cmd::Replay(r) => replay::run(r).await,
            Cmd::Pol(p) => pol::run(p).await,
            Cmd::Leader(args) => control::leader(args).await,
            Cmd::Promote(args) => control::promote(args).await,
            Cmd::Demo => demo::run(),
            Cmd::Bench(b) => bench::run(b).await,
        }
    })
}
