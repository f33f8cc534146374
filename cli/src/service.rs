//! `tape run` and `tape engine`: the engine over the chosen logs, until SIGTERM or
//! Ctrl-C (then it finishes its batch, snapshots and exits 0).

use clap::Args;
use std::time::Duration;
use tape_engine::{Engine, EngineOptions, SnapshotStore};

use std::sync::Arc;
use tape_log::{AnyLog, Log, LogReader};
use tape_schemas::*;
use tokio::sync::watch;

use crate::logs::{LogArgs, Role};
use crate::read_side::GatewayArgs;

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Create two markets and funded accounts (on an empty log) and print how to use them.
    #[arg(long)]
    pub demo: bool,
    #[command(flatten)]
    pub gateway: GatewayArgs,
}

#[derive(Args)]
pub struct EngineArgs {
    #[command(flatten)]
    pub logs: LogArgs,
    #[command(flatten)]
    pub failover: FailoverArgs,
    /// Commands between checkpoints (state hash events and snapshots). A standby
    /// must use its leader's: checkpoints are events.
    #[arg(long, env = "TAPE_CHECKPOINT_EVERY", default_value_t = 1_000_000)]
    pub checkpoint_every: u64,
    /// Open orders an account may have at once (the build's default when not set).
    /// A limit is part of what the engine derives: leader and standbys must agree,
    /// and a shadow standby started with another value shows what the change does.
    #[arg(long, env = "TAPE_OPEN_ORDERS_PER_ACCOUNT_MAX")]
    pub open_orders_per_account_max: Option<usize>,
    /// Serve the engine's Prometheus metrics on this address at /metrics (`tape run`
    /// also includes them in the gateway's /metrics).
    #[arg(long, env = "TAPE_METRICS_LISTEN")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// On Kafka, run a commands log that `tape init` did not start (credentials
    /// optional from its first command). Without it the engine waits for `tape init`
    /// on an empty log and refuses any other.
    #[arg(long, env = "TAPE_OPEN")]
    pub open: bool,
}

/// On Kafka: how this engine shares the shard with others (a leader and hot
/// standbys, over the control topic; see docs/operations.md, "A leader and its
/// standbys").
#[derive(Args, Clone)]
pub struct FailoverArgs {
    /// The control topic: heartbeats, claims, promotions.
    #[arg(long, env = "TAPE_CONTROL_TOPIC", default_value = "tape.control")]
    pub control_topic: String,
    /// This engine's name on the control topic (default: host name and process id).
    #[arg(long, env = "TAPE_ENGINE_ID")]
    pub id: Option<String>,
    /// How often the leader heartbeats, in ms.
    #[arg(long, env = "TAPE_HEARTBEAT_MS", default_value_t = 50)]
    pub heartbeat_ms: u64,
    /// How long a standby hears no heartbeat before it claims the next epoch, in ms.
    #[arg(long, env = "TAPE_SILENCE_MS", default_value_t = 300)]
    pub silence_ms: u64,
    /// A shadow standby: it compares the leader's events with its own derivation and
    /// takes over only when an operator promotes it (`tape promote`).
    #[arg(long, env = "TAPE_SHADOW")]
    pub shadow: bool,
}

impl FailoverArgs {
    pub fn writer(&self) -> String {
        self.id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "engine".into());
            format!("{host}:{}", std::process::id())
        })
    }

    fn options(&self) -> tape_engine::FailoverOptions {
        let mut o = tape_engine::FailoverOptions::new(&self.writer());
        o.heartbeat = Duration::from_millis(self.heartbeat_ms.max(1));
        o.silence = Duration::from_millis(self.silence_ms.max(1));
        o.shadow = self.shadow;
        o
    }
}

/// Turns true on SIGTERM or Ctrl-C. The handlers are installed before this returns,
/// so a signal that arrives while the engine is still starting is not lost.
pub fn shutdown_signal() -> anyhow::Result<watch::Receiver<bool>> {
    let (tx, rx) = watch::channel(false);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        // Signal first: logging may fail (a closed stderr) and must not stop it.
        let _ = tx.send(true);
        tracing::info!("shutting down: finishing the current batch");
    });
    Ok(rx)
}

/// `tape run`: the engine and the read side (projector + GraphQL) in one process.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let shutdown = shutdown_signal()?;
    let logs = args.engine.logs.clone();
    let owned = EngineLogs::open(&logs).await?;
    if args.demo {
        anyhow::ensure!(
            logs.kafka.is_none() || args.engine.open,
            "--demo's setup is unsigned: on Kafka it needs --open (or start with `tape init` and set up over GraphQL with its admin token)"
        );
        seed_demo(&owned.commands).await?;
    }
    let gateway = args.gateway.clone();
    let read_shutdown = shutdown.clone();
    // On the embedded log the read side uses the engine's own logs: its appends
    // reach the engine's reader and the engine's appends wake the projector
    // in-process, with no file polling between them.
    let shared = logs.kafka.is_none().then(|| owned.clone());
    let read_side = tokio::spawn(async move {
        crate::read_side::serve(&logs, &gateway, read_shutdown, shared).await
    });
    let stopping = shutdown.clone();
    let mut engine = tokio::spawn(run_engine(args.engine, owned, shutdown));
    tokio::select! {
        r = read_side => {
            r??;
            // On SIGTERM the read side drains and stops too; then the engine's
            // shutdown (batch, snapshot) decides the exit.
            anyhow::ensure!(*stopping.borrow(), "the read side stopped");
            (&mut engine).await?
        }
        r = &mut engine => r?,
    }
}

/// `tape engine`: the engine alone.
pub async fn engine(args: EngineArgs) -> anyhow::Result<()> {
    let shutdown = shutdown_signal()?;
    let owned = EngineLogs::open(&args.logs).await?;
    run_engine(args, owned, shutdown).await
}

/// The engine's two logs. On the embedded log the engine's process owns both: it
/// holds them and serves their doors (other tools append commands through it;
/// followers are woken by it).
#[derive(Clone)]
pub struct EngineLogs {
    pub commands: Arc<AnyLog>,
    pub events: Arc<AnyLog>,
}

impl EngineLogs {
    pub async fn open(logs: &LogArgs) -> anyhow::Result<EngineLogs> {
        Ok(EngineLogs {
            commands: Arc::new(logs.open("commands", Role::Owner).await?),
            events: Arc::new(logs.open("events", Role::Owner).await?),
        })
    }
}

async fn run_engine(
    args: EngineArgs,
    logs: EngineLogs,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let EngineLogs { commands, events } = logs;
    let snapshots = SnapshotStore::open(args.logs.snapshots_dir(), 3)?;
    let mut options = EngineOptions {
        checkpoint_every: args.checkpoint_every.max(1),
        ..EngineOptions::default()
    };
    if let Some(max) = args.open_orders_per_account_max {
        options.core.open_orders_per_account_max = max;
    }
    let where_ = match &args.logs.kafka {
        Some(b) => format!(
            "Kafka at {b} (topics {}, {})",
            args.logs.commands_topic, args.logs.events_topic
        ),
        None => format!("the embedded log in {}", args.logs.data.display()),
    };
    eprintln!("tape: engine running on {where_}");
    if args.logs.kafka.is_some() && !args.open {
        match crate::init::check_started(&commands, shutdown.clone()).await? {
            Some(required) => eprintln!(
                "tape: started by tape init: {}",
                crate::init::mode(required)
            ),
            None => return Ok(()),
        }
    } else {
        let first = commands
            .reader(0)
            .await?
            .next_batch(2, Duration::ZERO)
            .await?;
        let start = match &first[..] {
            [a, b] => crate::init::start_of(&a.bytes, &b.bytes),
            _ => crate::init::Start::Other,
        };
        match start {
            crate::init::Start::Init { required } => eprintln!("tape: started by tape init: {}", crate::init::mode(required)),
            crate::init::Start::Other => eprintln!("tape: not started by tape init: credentials are optional until an operator requires them (requireCredentials)"),
        }
    }
    eprintln!("tape: send commands with `tape produce` or GraphQL, watch events with `tape consume --follow` (same --data/--kafka)");
    let engine = Engine::new(commands.clone(), events, snapshots, options);
    crate::metrics::engine(engine.stats(), commands, shutdown.clone());
    if let Some(addr) = args.metrics_listen {
        let stop = shutdown.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::metrics::serve(addr, stop).await {
                tracing::error!(error = %e, "the metrics endpoint stopped");
            }
        });
    }
    let Some(brokers) = args.logs.kafka.clone() else {
        // Embedded: the events log's lock keeps a second engine out.
        let summary = engine.run(shutdown).await?;
        report(&summary);
        return Ok(());
    };
    // Kafka: a standby that follows the leader and takes over when it falls silent.
    let control = Arc::new(
        tape_log::KafkaLog::open(tape_log::KafkaOptions::new(
            &brokers,
            &args.failover.control_topic,
        ))
        .await?,
    );
    let options = args.failover.options();
    eprintln!(
        "tape: engine {} follows the leader on control topic {} (heartbeat {} ms, takeover after {} ms of silence{})",
        options.writer,
        args.failover.control_topic,
        options.heartbeat.as_millis(),
        options.silence.as_millis(),
        if options.shadow { "; shadow: only `tape promote` makes it lead" } else { "" }
    );
    loop {
        match tape_engine::failover::run(&engine, &control, &options, shutdown.clone()).await? {
            tape_engine::Ended::Stopped(summary) => {
                report(&summary);
                return Ok(());
            }
            tape_engine::Ended::Deposed { epoch, by } => {
                eprintln!("tape: deposed: this engine led epoch {epoch}; epoch {by} has taken over. Following again.");
                if *shutdown.borrow() {
                    return Ok(());
                }
            }
        }
    }
}

fn report(summary: &tape_engine::RunSummary) {
    eprintln!(
        "tape: stopped after {} commands; next command offset {}, next event seq {}",
        summary.commands_applied, summary.next_command, summary.next_seq
    );
}

fn d(s: &str) -> Dec {
    s.parse().expect("a literal decimal")
}

/// The demo's setup: assets, two markets, two funded accounts — appended only to an
/// empty commands log, so a restart does not repeat it.
async fn seed_demo(log: &AnyLog) -> anyhow::Result<()> {
    if log.end_offset().await? > 0 {
        eprintln!("tape: --demo: the commands log is not empty; leaving it as it is");
        return Ok(());
    }
    let asset = |code: &str, scale| {
        Command::CreateAsset(AssetSpec {
            code: code.parse().expect("code"),
            scale,
            daily_withdrawal_limit: None,
        })
    };
    let mut commands = vec![
        asset("BTC", 8),
        asset("ETH", 8),
        asset("USDT", 6),
        crate::demo::usdt_market("BTC-USDT", "BTC", "0.01", "0.0001", "1"),
        crate::demo::usdt_market("ETH-USDT", "ETH", "0.01", "0.001", "1"),
    ];
    for (account, asset, amount) in [
        (1, "BTC", "10"),
        (1, "USDT", "100000"),
        (2, "ETH", "100"),
        (2, "USDT", "100000"),
    ] {
        commands.push(Command::Deposit {
            account: AccountId(account),
            asset: asset.parse().expect("code"),
            amount: d(amount),
            reference: format!("demo-{account}-{asset}")
                .parse()
                .expect("reference"),
        });
    }
    let now = tape_client::now_ms();
    let records = commands
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            codec::to_bincode(&CommandEnvelope::new(
                CommandId(uuid::Uuid::from_u128(0xde30_0000 + i as u128)),
                now,
                c,
            ))
        })
        .collect::<Result<Vec<_>, _>>()?;
    log.append(records).await?;
    eprintln!("tape: demo: markets BTC-USDT and ETH-USDT; account 1 holds 10 BTC + 100,000 USDT, account 2 holds 100 ETH + 100,000 USDT");
    eprintln!(
        r#"tape: try: echo '{{"version":3,"id":"{}","time_ms":0,"command":{{"place_order":{{"account":1,"market":"BTC-USDT","side":"sell","order_type":{{"limit":{{"price":"30000","quantity":"0.5"}}}}}}}}}}' | tape produce"#,
        uuid::Uuid::from_u128(1)
    );
    Ok(())
}
