//! The read side: the projector (events log -> sled views) and the GraphQL gateway.
//! `tape run` starts it beside the engine; `tape gateway` runs it alone (several can
//! follow one engine on Kafka); `tape project` runs the projector alone.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use tape_gateway::{CommandsDoor, GatewayConfig, Submitter};
use tape_log::{Log, LogReader};
use tokio::sync::{broadcast, watch};

use crate::logs::{LogArgs, Role};

#[derive(Args, Clone, Debug)]
pub struct GatewayArgs {
    /// Address the GraphQL gateway listens on (port 0 picks a free one).
    #[arg(long, env = "TAPE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The operator's bootstrap admin token. Without it, one is generated once and
    /// kept in DATA/admin-token.
    #[arg(long, env = "TAPE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Requests per second allowed per API key (or per address without a key).
    #[arg(long, env = "TAPE_RATE_PER_SECOND", default_value_t = 200)]
    pub rate_per_second: u32,
    /// Requests a key may send at once above its rate.
    #[arg(long, env = "TAPE_RATE_BURST", default_value_t = 400)]
    pub rate_burst: u32,
    /// How long a mutation waits for the engine's answer before returning PENDING.
    #[arg(long, env = "TAPE_OUTCOME_WAIT_MS", default_value_t = 5_000)]
    pub outcome_wait_ms: u64,
    #[command(flatten)]
    pub views: ViewsArgs,
    #[command(flatten)]
    pub pol: crate::pol::PolDir,
}

#[derive(Args, Clone, Debug)]
pub struct ViewsArgs {
    /// Directory of the read models (sled). Default: DATA/views.
    #[arg(long, env = "TAPE_VIEWS")]
    pub views: Option<PathBuf>,
}

impl ViewsArgs {
    pub fn dir(&self, logs: &LogArgs) -> PathBuf {
        self.views
            .clone()
            .unwrap_or_else(|| logs.data.join("views"))
    }
}

#[derive(Args)]
pub struct GatewayCmd {
    #[command(flatten)]
    pub logs: LogArgs,
    #[command(flatten)]
    pub gateway: GatewayArgs,
}

#[derive(Args)]
pub struct ProjectCmd {
    #[command(flatten)]
    pub logs: LogArgs,
    #[command(flatten)]
    pub views: ViewsArgs,
    /// Keep following the events log (otherwise stop once caught up).
    #[arg(long)]
    pub follow: bool,
}

fn admin_token(args: &GatewayArgs, logs: &LogArgs) -> anyhow::Result<(String, Option<PathBuf>)> {
    if let Some(t) = args.admin_token.as_ref().filter(|t| !t.trim().is_empty()) {
        return Ok((t.trim().to_string(), None));
    }
    let path = logs.data.join("admin-token");
    if let Ok(t) = std::fs::read_to_string(&path) {
        return Ok((t.trim().to_string(), Some(path)));
    }
    std::fs::create_dir_all(&logs.data)?;
    let (secret, _) = tape_gateway::auth::new_secret();
    let token = format!("tape_admin_{secret}");
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    writeln!(f, "{token}")?;
    Ok((token, Some(path)))
}

/// Runs the projector and the gateway until `shutdown`; over the engine's own logs
/// when it runs in this process (`engine`), else over logs it opens.
pub async fn serve(
    logs: &LogArgs,
    args: &GatewayArgs,
    shutdown: watch::Receiver<bool>,
    engine: Option<crate::service::EngineLogs>,
) -> anyhow::Result<()> {
    let dir = args.views.dir(logs);
    let (projector, views) = tape_projections::open(&dir)
        .with_context(|| format!("opening the read models in {}", dir.display()))?;
    let (events, door) = match (engine, &logs.kafka) {
        (Some(engine), _) => (engine.events, CommandsDoor::Shared(engine.commands)),
        (None, Some(_)) => (
            Arc::new(logs.open("events", Role::Follower).await?),
            CommandsDoor::Shared(Arc::new(logs.open("commands", Role::Writer).await?)),
        ),
        (None, None) => (
            Arc::new(logs.open("events", Role::Follower).await?),
            CommandsDoor::Embedded(logs.data.join("commands")),
        ),
    };
    // Ready once the read models reach what is on the events log now.
    let events_end = events.end_offset().await?;
    let (changes_tx, _) = broadcast::channel(1_024);
    let (progress_tx, progress_rx) = watch::channel(tape_projections::Progress::default());
    crate::metrics::projector(
        events.clone(),
        progress_rx.clone(),
        views.clone(),
        shutdown.clone(),
    );
    let projector_shutdown = shutdown.clone();
    let changes = changes_tx.clone();
    let projector_task = tokio::spawn(async move {
        tape_projections::run(&events, projector, changes, progress_tx, projector_shutdown).await
    });
    let (token, token_file) = admin_token(args, logs)?;
    let mut config = GatewayConfig::new(&token);
    config.rate_per_second = args.rate_per_second;
    config.rate_burst = args.rate_burst;
    config.outcome_wait = Duration::from_millis(args.outcome_wait_ms);
    config.ready_at_offset = events_end;
    config.pol_dir = Some(args.pol.dir(logs));
    let sources = tape_gateway::Sources {
        views,
        submitter: Submitter::start(door),
        progress: progress_rx,
        changes: changes_tx,
    };
    let router = tape_gateway::router(sources, config);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    eprintln!("tape: GraphQL on http://{addr}/graphql (subscriptions on ws://{addr}/graphql/ws)");
    match token_file {
        Some(path) => eprintln!("tape: the admin token is in {}", path.display()),
        None => eprintln!("tape: admin token from --admin-token / TAPE_ADMIN_TOKEN"),
    }
    let stopping = shutdown.clone();
    let server = tape_gateway::serve(listener, router, shutdown);
    tokio::pin!(server);
    tokio::select! {
        r = &mut server => r?,
        r = projector_task => {
            r??;
            // On SIGTERM the projector stops at its next batch; let the server drain
            // (for a while: a client may hold a connection open).
            anyhow::ensure!(*stopping.borrow(), "the projector stopped");
            match tokio::time::timeout(Duration::from_secs(10), server).await {
                Ok(r) => r?,
                Err(_) => tracing::warn!("connections still open 10 s after shutdown; closing"),
            }
        }
    }
    Ok(())
}

pub async fn gateway(cmd: GatewayCmd) -> anyhow::Result<()> {
    let shutdown = crate::service::shutdown_signal()?;
    serve(&cmd.logs, &cmd.gateway, shutdown, None).await
}

/// Brings the read models up to date with the events log (and keeps them so with
/// `--follow`).
pub async fn project(cmd: ProjectCmd) -> anyhow::Result<()> {
    let dir = cmd.views.dir(&cmd.logs);
    let (mut projector, _) = tape_projections::open(&dir)
        .with_context(|| format!("opening the read models in {}", dir.display()))?;
    let events = cmd.logs.open("events", Role::Follower).await?;
    if cmd.follow {
        let shutdown = crate::service::shutdown_signal()?;
        let (tx, _) = broadcast::channel(16);
        let (progress, _) = watch::channel(tape_projections::Progress::default());
        tape_projections::run(&events, projector, tx, progress, shutdown).await?;
        return Ok(());
    }
    let started = std::time::Instant::now();
    let from = projector.next_seq();
    let mut reader = events.reader(from - 1).await?;
    loop {
        let batch = reader
            .next_batch(
                tape_projections::BATCH_EVENTS_MAX,
                Duration::from_millis(200),
            )
            .await?;
        if batch.is_empty() {
            break;
        }
        projector.apply_records(batch.iter().map(|r| r.bytes.as_slice()))?;
    }
    let applied = projector.next_seq() - from;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "tape: projected {applied} events in {secs:.2} s ({:.0} events/s); views in {} at seq {}",
        applied as f64 / secs.max(1e-9),
        dir.display(),
        projector.next_seq() - 1
    );
    Ok(())
}
