//! `tape bench order`: an order's round trip at low load against a running Tape —
//! one client, one command at a time, each answered before the next is sent. A
//! limit order far from the market is placed and then cancelled, so the book does
//! not change; both answers count.
//!
//! `--via graphql` (the default) posts `placeOrder` / `cancelOrder` over one
//! keep-alive connection and times each until its receipt (the engine's durable
//! outcome, as the read models hold it). `--via log` does what `tape produce` and
//! `tape consume --follow` do: it appends the signed command to the commands log
//! (through the owner's door on the embedded log) and times it until its `Outcome`
//! is read back from the events log.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use tape_schemas::*;

use crate::bench::median;
use crate::door::{Door, Follower};
use crate::logs::LogArgs;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Via {
    Graphql,
    Log,
}

#[derive(Args)]
pub struct OrderArgs {
    #[command(flatten)]
    logs: LogArgs,
    /// The path the commands take.
    #[arg(long, value_enum, default_value_t = Via::Graphql)]
    via: Via,
    /// The GraphQL endpoint (`--via graphql`).
    #[arg(long, default_value = "http://127.0.0.1:8080/graphql")]
    url: String,
    /// A trader key's token for `--account`.
    #[arg(long, env = "TAPE_KEY", hide_env_values = true)]
    key: String,
    #[arg(long, default_value_t = 1)]
    account: u64,
    #[arg(long, default_value = "BTC-USDT")]
    market: String,
    /// A sell at this price must rest without trading.
    #[arg(long, default_value = "90000")]
    price: String,
    #[arg(long, default_value = "0.001")]
    quantity: String,
    /// Orders per run (each placed and cancelled: two round trips).
    #[arg(long, default_value_t = 300)]
    orders: u32,
    #[arg(long, default_value_t = 3)]
    runs: u32,
}

pub async fn order(args: OrderArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.runs > 0 && args.orders > 0,
        "--runs and --orders must be positive"
    );
    let mut client = match args.via {
        Via::Graphql => Client::Graphql(
            reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()?,
        ),
        Via::Log => Client::Log {
            door: Door::open(&args.logs, Some(&args.key)).await?,
            events: Box::new(Follower::from_end(&args.logs).await?),
        },
    };
    // One untimed round trip first: connections made, the order accepted.
    client.round_trip(&args).await?;
    let (mut p50s, mut p99s) = (Vec::new(), Vec::new());
    for run in 0..args.runs {
        let mut latencies = Vec::with_capacity(2 * args.orders as usize);
        for _ in 0..args.orders {
            let (place, cancel) = client.round_trip(&args).await?;
            latencies.extend([place.as_secs_f64(), cancel.as_secs_f64()]);
        }
        latencies.sort_by(f64::total_cmp);
        let pick =
            |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
        let (p50, p99, max) = (pick(0.5), pick(0.99), latencies[latencies.len() - 1]);
        eprintln!(
            "run {run}: {} round trips, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            latencies.len(),
            p50 * 1e3,
            p99 * 1e3,
            max * 1e3
        );
        p50s.push(p50);
        p99s.push(p99);
    }
    println!(
        "order round trip via {:?}, one at a time: median p50 {:.2} ms, p99 {:.2} ms over {} runs of {} orders (place + cancel)",
        args.via,
        median(p50s) * 1e3,
        median(p99s) * 1e3,
        args.runs,
        args.orders
    );
    Ok(())
}

enum Client {
    Graphql(reqwest::Client),
    Log { door: Door, events: Box<Follower> },
}

impl Client {
    /// Places the order and cancels it; the two latencies.
    async fn round_trip(&mut self, args: &OrderArgs) -> anyhow::Result<(Duration, Duration)> {
        match self {
            Client::Graphql(http) => {
                let place = format!(
                    r#"mutation {{ placeOrder(input: {{account: {}, market: "{}", side: SELL, kind: LIMIT, price: "{}", quantity: "{}"}}) {{ status id reason }} }}"#,
                    args.account, args.market, args.price, args.quantity
                );
                let started = Instant::now();
                let placed = graphql(http, args, &place).await?;
                let place_took = started.elapsed();
                let receipt = &placed["data"]["placeOrder"];
                anyhow::ensure!(receipt["status"] == "ACCEPTED", "placeOrder: {placed}");
                let id = receipt["id"]
                    .as_u64()
                    .context("placeOrder gave no order id")?;
                let cancel = format!(
                    r#"mutation {{ cancelOrder(account: {}, orderId: {id}) {{ status reason }} }}"#,
                    args.account
                );
                let started = Instant::now();
                let cancelled = graphql(http, args, &cancel).await?;
                let cancel_took = started.elapsed();
                anyhow::ensure!(
                    cancelled["data"]["cancelOrder"]["status"] == "ACCEPTED",
                    "cancelOrder: {cancelled}"
                );
                Ok((place_took, cancel_took))
            }
            Client::Log { door, events } => {
                // The command as a market maker's JSON line has it.
                let place: Command = serde_json::from_value(serde_json::json!({
                    "place_order": {
                        "account": args.account,
                        "market": args.market,
                        "side": "sell",
                        "order_type": {"limit": {"price": args.price, "quantity": args.quantity}},
                    }
                }))?;
                let started = Instant::now();
                let id = match answer(door, events, place).await? {
                    CommandResult::Accepted { id } => id,
                    other => anyhow::bail!("the order was not accepted: {other:?}"),
                };
                let place_took = started.elapsed();
                let cancel: Command = serde_json::from_value(serde_json::json!({
                    "cancel_order": {"account": args.account, "order": {"id": id}}
                }))?;
                let started = Instant::now();
                let result = answer(door, events, cancel).await?;
                anyhow::ensure!(
                    matches!(result, CommandResult::Accepted { .. }),
                    "the cancel was not accepted: {result:?}"
                );
                Ok((place_took, started.elapsed()))
            }
        }
    }
}

/// Posts `query`; a request refused by the key's rate limit is sent again after the
/// wait the gateway names (run the bench with `--rate-per-second` high enough to
/// avoid it, as BENCHMARKS.md does: a refused try is timed as part of the order).
async fn graphql(
    http: &reqwest::Client,
    args: &OrderArgs,
    query: &str,
) -> anyhow::Result<serde_json::Value> {
    loop {
        let answer: serde_json::Value = http
            .post(&args.url)
            .bearer_auth(&args.key)
            .json(&serde_json::json!({ "query": query }))
            .send()
            .await?
            .json()
            .await?;
        let limited = &answer["errors"][0]["extensions"];
        if limited["code"] != "RATE_LIMITED" {
            return Ok(answer);
        }
        let wait_ms = limited["retryAfterMs"].as_u64().unwrap_or(5).max(1);
        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
    }
}

/// Appends `command` and waits for its `Outcome` on the events log.
async fn answer(
    door: &Door,
    events: &mut Follower,
    command: Command,
) -> anyhow::Result<CommandResult> {
    let offset = door.send(&door.envelope(command)?).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        anyhow::ensure!(
            Instant::now() < deadline,
            "no outcome within 10 s for offset {offset}"
        );
        for e in events.next(Duration::from_millis(500)).await? {
            if let (true, Event::Outcome { result, .. }) = (e.command_offset == offset, e.event) {
                return Ok(result);
            }
        }
    }
}
