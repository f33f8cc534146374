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
    let backlog = gauge(
        "tape_liquidation_backlog",
        "Accounts below maintenance waiting for liquidation steps (8 a command)",
    );
    let sweeps = gauge(
        "tape_liquidation_sweeps",
        "Perpetuals whose mark crossed positions not all checked yet (256 a command)",
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
            backlog.set(now.liquidation_backlog as i64);
            sweeps.set(now.liquidation_sweeps as i64);
            last = now;
        }
    });
}

/// Keeps the projector's lag current until `shutdown`.
pub fn projector(
    events: Arc<AnyLog>,
    progress: watch::Receiver<Progress>,
    views: tape_projections::Views,
    mut shutdown: watch::Receiver<bool>,
) {
    let lag = gauge(
        "tape_projector_lag_events",
        "Events on the log the read models have not applied yet",
    );
    let mut margin = MarginMetrics::new();
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
            if let Ok(totals) = views.margin_totals() {
                margin.update(&totals);
            }
        }
    });
}

/// Margin trading as the read models count it: liquidation events by market and
/// stage, liquidations started and ended by collateral, the insurance fund and
/// its bad debt.
struct MarginMetrics {
    steps: prometheus::IntCounterVec,
    liquidations: prometheus::IntCounterVec,
    deleveraged: prometheus::IntCounterVec,
    fund: prometheus::GaugeVec,
    bad_debt: prometheus::GaugeVec,
    /// What the counters were last set to (they only grow).
    seen: std::collections::BTreeMap<(String, String), u64>,
}

impl MarginMetrics {
    fn new() -> MarginMetrics {
        fn counter(name: &str, help: &str, labels: &[&str]) -> prometheus::IntCounterVec {
            let c = prometheus::IntCounterVec::new(prometheus::Opts::new(name, help), labels)
                .expect("a valid metric");
            let _ = prometheus::register(Box::new(c.clone()));
            c
        }
        fn gauge(name: &str, help: &str) -> prometheus::GaugeVec {
            let g = prometheus::GaugeVec::new(prometheus::Opts::new(name, help), &["asset"])
                .expect("a valid metric");
            let _ = prometheus::register(Box::new(g.clone()));
            g
        }
        MarginMetrics {
            steps: counter(
                "tape_liquidation_events_total",
                "Liquidation steps by perpetual and stage (cancel, reduce, take_over, deleverage)",
                &["market", "stage"],
            ),
            liquidations: counter(
                "tape_liquidations_total",
                "Liquidations started and ended, by collateral asset",
                &["asset", "event"],
            ),
            deleveraged: counter(
                "tape_deleveraged_positions_total",
                "Positions closed by auto-deleveraging against a liquidated one, by perpetual",
                &["market"],
            ),
            fund: gauge(
                "tape_insurance_fund",
                "The insurance fund's balance by asset (negative: bad debt)",
            ),
            bad_debt: gauge(
                "tape_bad_debt",
                "What the insurance fund owes by asset: minus its balance when negative",
            ),
            seen: Default::default(),
        }
    }

    fn update(&mut self, t: &tape_projections::MarginTotals) {
        // `seen` is keyed by the label values, each prefixed with its metric.
        let mut add = |counter: &prometheus::IntCounterVec, a: String, b: String, n: u64| {
            let was = self.seen.insert((a.clone(), b.clone()), n).unwrap_or(0);
            let (a, b) = (a.split_once(':').map_or(a.as_str(), |x| x.1), b.as_str());
            counter
                .with_label_values(&[a, b])
                .inc_by(n.saturating_sub(was));
        };
        for ((market, stage), n) in &t.steps {
            add(&self.steps, format!("step:{market}"), stage.clone(), *n);
        }
        for (event, counts) in [("started", &t.started), ("ended", &t.ended)] {
            for (asset, n) in counts {
                add(&self.liquidations, format!("liq:{asset}"), event.into(), *n);
            }
        }
        for (market, n) in &t.deleveraged {
            let key = (format!("adl:{market}"), String::new());
            let was = self.seen.insert(key, *n).unwrap_or(0);
            self.deleveraged
                .with_label_values(&[&market.to_string()])
                .inc_by(n.saturating_sub(was));
        }
        for (asset, balance) in &t.insurance {
            let value: f64 = balance.0.to_string().parse().unwrap_or(0.0);
            let asset = asset.to_string();
            self.fund.with_label_values(&[&asset]).set(value);
            self.bad_debt
                .with_label_values(&[&asset])
                .set((-value).max(0.0));
        }
    }
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
