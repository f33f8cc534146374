//! Operations metrics of the engine and the projector, in Prometheus' default
//! registry (the gateway's `/metrics` includes it; `tape engine --metrics-listen`
//! serves it alone). Gauges are refreshed once a second from the engine's atomics
//! and the logs' end offsets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use prometheus::{IntCounter, IntGauge};
use tape_engine::EngineStats;
use tape_log::{AnyLog, Log};
use tape_projections::Progress;
use tokio::sync::watch;

/// Whole seconds since `unix_ms` (-1 for 0: never).
fn age_seconds(unix_ms: u64) -> i64 {
    match unix_ms {
        0 => -1,
        ms => (tape_client::now_ms().saturating_sub(ms) / 1_000) as i64,
    }
}

fn gauge(name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("a valid metric");
    // A second registration (tests run several services in one process) keeps the
    // first; the gauge then simply is not exported twice.
    let _ = prometheus::register(Box::new(g.clone()));
    g
}

/// Keeps the engine's gauges current until `shutdown`.
pub fn engine(stats: Arc<EngineStats>, commands: Arc<AnyLog>, mut shutdown: watch::Receiver<bool>) {
    let applied = IntCounter::new(
        "tape_engine_commands_applied_total",
        "Commands the engine applied (rate() of it is commands/s)",
    )
    .expect("a valid metric");
    let _ = prometheus::register(Box::new(applied.clone()));
    let per_second = gauge(
        "tape_engine_commands_per_second",
        "Commands applied per second over the last second",
    );
    let next_command = gauge(
        "tape_engine_next_command_offset",
        "Commands-log offset of the next command the engine will apply",
    );
    let lag = gauge(
        "tape_engine_commands_lag",
        "Commands on the log the engine has not applied yet",
    );
    let last_seq = gauge(
        "tape_engine_last_seq",
        "Seq of the last event durable on the events log",
    );
    let snapshot_age = gauge(
        "tape_engine_snapshot_age_seconds",
        "Seconds since this process last wrote a snapshot (-1: none yet)",
    );
    let trusted_behind = gauge(
        "tape_engine_trusted_time_behind_seconds",
        "Seconds the operator's time in the engine (admin-stamped, e.g. by tape clock) is behind this machine's clock (-1: none yet); with credentials required, trader commands are refused from about 58",
    );
    let credentials_required = gauge(
        "tape_engine_credentials_required",
        "1 when commands must carry credentials",
    );
    tokio::spawn(async move {
        let mut last = stats.read();
        let mut at = Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => return,
            }
            let now = stats.read();
            let secs = at.elapsed().as_secs_f64().max(1e-3);
            at = Instant::now();
            let delta = now.commands_applied - last.commands_applied;
            applied.inc_by(delta);
            per_second.set((delta as f64 / secs) as i64);
            next_command.set(now.next_command as i64);
            last_seq.set(now.durable_seq as i64);
            if let Ok(end) = commands.end_offset().await {
                lag.set(end.saturating_sub(now.next_command) as i64);
            }
            snapshot_age.set(age_seconds(now.snapshot_unix_ms));
            trusted_behind.set(age_seconds(now.trusted_ms));
            credentials_required.set(i64::from(now.credentials_required));
            last = now;
        }
    });
}

/// Keeps the projector's lag current until `shutdown`.
pub fn projector(
    events: Arc<AnyLog>,
    progress: watch::Receiver<Progress>,
    mut shutdown: watch::Receiver<bool>,
) {
    let lag = gauge(
        "tape_projector_lag_events",
        "Events on the log the read models have not applied yet",
    );
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => return,
            }
            // Records on the log the projector has not read (offsets, so copies a
            // deposed engine left do not count as lag once read past).
            if let Ok(end) = events.end_offset().await {
                let read = progress.borrow().next_offset;
                lag.set(end.saturating_sub(read) as i64);
            }
        }
    });
}

/// Serves `GET /metrics` (the default registry) on `addr` until `shutdown`.
pub async fn serve(addr: SocketAddr, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    async fn metrics() -> ([(axum::http::HeaderName, &'static str); 1], Vec<u8>) {
        let mut out = Vec::new();
        use prometheus::Encoder as _;
        let _ = prometheus::TextEncoder::new().encode(&prometheus::gather(), &mut out);
        (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4",
            )],
            out,
        )
    }
    let app = axum::Router::new().route("/metrics", axum::routing::get(metrics));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    eprintln!(
        "tape: engine metrics on http://{}/metrics",
        listener.local_addr()?
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|s| *s).await;
        })
        .await?;
    Ok(())
}
