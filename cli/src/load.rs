//! `tape load`: the standard mix (see `tape-benches`) as live load, through the
//! commands topic (as market makers send) or through GraphQL (as frontends do),
//! reporting the rates and latencies it saw.
//!
//! The mix names orders by the ids a fresh engine would give them; on a live
//! exchange other traffic takes ids too, so every order is placed with a client
//! order id (`<run>-<id>`, `run` random per invocation) and cancels and moves name
//! that instead. Command ids are fresh UUIDs and times are now, so runs can repeat.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use futures::stream::{FuturesUnordered, StreamExt};
use serde_json::{json, Value};
use tape_schemas::*;

use crate::door::{Door, Follower};
use crate::logs::LogArgs;

#[derive(Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub logs: LogArgs,
    /// Timed commands of the standard mix to send.
    #[arg(long, env = "TAPE_LOAD_COMMANDS", default_value_t = 100_000)]
    pub commands: u64,
    #[arg(long, env = "TAPE_LOAD_SEED", default_value_t = 42)]
    pub seed: u64,
    /// Commands per second to offer (0: as fast as they are taken).
    #[arg(long, env = "TAPE_LOAD_RATE", default_value_t = 0)]
    pub rate: u64,
    /// An admin API token to sign every command with (the mix acts for 1,000
    /// accounts). Without one the commands go unsigned.
    #[arg(long, env = "TAPE_LOAD_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// Skip the mix's setup (assets, market, deposits, the initial book).
    #[arg(long, env = "TAPE_LOAD_NO_SETUP")]
    pub no_setup: bool,
    /// Send through this GraphQL endpoint (http://HOST:PORT/graphql) instead of the
    /// commands topic, with `--key` as the bearer token (an admin key; the gateway's
    /// per-key rate limit applies).
    #[arg(long, env = "TAPE_LOAD_GRAPHQL")]
    pub graphql: Option<String>,
    /// Concurrent GraphQL clients (each owns a share of the accounts, in order).
    #[arg(long, env = "TAPE_LOAD_CLIENTS", default_value_t = 16)]
    pub clients: usize,
}

/// The mix with client order ids, ready to send.
fn prepared(args: &LoadArgs) -> (Vec<Command>, Vec<Command>, String) {
    let mix = tape_benches::standard_mix(args.commands, args.seed);
    eprintln!("tape load: {}", mix.stats.summary());
    let run = format!("{:08x}", uuid::Uuid::new_v4().as_u128() as u32);
    // The ids a fresh engine gives the mix's orders, from a run of it.
    let mut core = tape_core::Core::new(mix.cfg);
    let mut out = Vec::new();
    let mut placed: HashSet<u64> = HashSet::new();
    let mut rewrite = |e: &CommandEnvelope| -> Command {
        out.clear();
        core.apply(e, &mut out);
        let name = |id: &str| -> ClientOrderId {
            format!("{run}-{id}")
                .parse()
                .expect("a short client order id")
        };
        let cid = |id: u64| match placed.contains(&id) {
            true => name(&id.to_string()),
            false => name("none"),
        };
        match e.command.clone() {
            Command::PlaceOrder(mut o) => {
                if let Some(Event::Outcome {
                    result: CommandResult::Accepted { id },
                    ..
                }) = out.iter().find(|ev| matches!(ev, Event::Outcome { .. }))
                {
                    o.client_order_id = Some(name(&id.to_string()));
                    placed.insert(*id);
                }
                Command::PlaceOrder(o)
            }
            Command::CancelOrder {
                account,
                order: OrderRef::Id(id),
            } => Command::CancelOrder {
                account,
                order: OrderRef::Client(cid(id.0)),
            },
            Command::AmendOrder {
                account,
                order: OrderRef::Id(id),
                price,
                quantity,
            } => Command::AmendOrder {
                account,
                order: OrderRef::Client(cid(id.0)),
                price,
                quantity,
            },
            other => other,
        }
    };
    let setup = mix.setup.iter().map(&mut rewrite).collect();
    let timed = mix.commands.iter().map(&mut rewrite).collect();
    (setup, timed, run)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

fn report(
    what: &str,
    sent: usize,
    took: Duration,
    mut latencies: Vec<Duration>,
    results: &BTreeMap<String, u64>,
) {
    latencies.sort_unstable();
    eprintln!(
        "tape load: {what}: {sent} commands in {:.2} s ({:.0} commands/s); latency ms p50 {:.2}, p99 {:.2}, p99.9 {:.2}, max {:.2}; {:?}",
        took.as_secs_f64(),
        sent as f64 / took.as_secs_f64().max(1e-9),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 0.999),
        percentile(&latencies, 1.0),
        results
    );
}

pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    let (setup, timed, run) = prepared(&args);
    eprintln!("tape load: client order ids {run}-<n>");
    match args.graphql.clone() {
        Some(url) => graphql(&args, url, setup, timed).await,
        None => topic(&args, setup, timed).await,
    }
}

/// Waits until command `i` of a stream paced at `rate` a second from `started` is
/// due (0: unpaced).
async fn pace(started: Instant, i: usize, rate: f64) {
    if rate > 0.0 {
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        if due > Instant::now() {
            tokio::time::sleep_until(due.into()).await;
        }
    }
}

/// Sends `commands` through the door in order, paced at `rate` (0: unpaced), with
/// at most `WINDOW` appends unconfirmed; returns each command's offset and the time
/// it was handed to the door.
async fn send_all(
    door: &Door,
    commands: Vec<Command>,
    rate: u64,
) -> anyhow::Result<Vec<(u64, Instant)>> {
    const WINDOW: usize = 16_384;
    let started = Instant::now();
    let mut inflight = FuturesUnordered::new();
    let mut sent = Vec::with_capacity(commands.len());
    for (i, command) in commands.into_iter().enumerate() {
        pace(started, i, rate as f64).await;
        while inflight.len() >= WINDOW {
            sent.push(inflight.next().await.expect("not empty")?);
        }
        let envelope = door.envelope(command)?;
        let at = Instant::now();
        let offset = door.queue(&envelope).await?;
        inflight.push(async move { anyhow::Ok((offset.await?, at)) });
    }
    while let Some(r) = inflight.next().await {
        sent.push(r?);
    }
    Ok(sent)
}

async fn topic(args: &LoadArgs, setup: Vec<Command>, timed: Vec<Command>) -> anyhow::Result<()> {
    let door = Door::open(&args.logs, args.key.as_deref()).await?;
    let mut events = Follower::from_end(&args.logs).await?;
    // Outcomes as they are seen: command offset -> (when, result).
    let seen: Arc<Mutex<HashMap<u64, (Instant, CommandResult)>>> = Default::default();
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let watcher = {
        let seen = seen.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    batch = events.next(Duration::from_millis(50)) => {
                        let now = Instant::now();
                        let mut seen = seen.lock().expect("not poisoned");
                        for e in batch? {
                            if let Event::Outcome { result, .. } = e.event {
                                seen.insert(e.command_offset, (now, result));
                            }
                        }
                    }
                    _ = stop_rx.changed() => return anyhow::Ok(()),
                }
            }
        })
    };
    let mut all = Vec::new();
    if !args.no_setup {
        let sent = send_all(&door, setup, 0).await?;
        eprintln!("tape load: setup: {} commands sent", sent.len());
        all.extend(sent);
    }
    let started = Instant::now();
    let sent = send_all(&door, timed, args.rate).await?;
    let sending = started.elapsed();
    // Wait for the engine's answers (a minute at most).
    let deadline = Instant::now() + Duration::from_secs(60);
    let answered = loop {
        let n = {
            let seen = seen.lock().expect("not poisoned");
            sent.iter()
                .chain(&all)
                .filter(|(o, _)| seen.contains_key(o))
                .count()
        };
        if n == sent.len() + all.len() || Instant::now() > deadline {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let _ = stop_tx.send(true);
    watcher.await??;
    let seen = seen.lock().expect("not poisoned");
    let mut results: BTreeMap<String, u64> = BTreeMap::new();
    let mut latencies = Vec::with_capacity(sent.len());
    let mut last = started;
    for (offset, at) in &sent {
        if let Some((when, result)) = seen.get(offset) {
            latencies.push(when.saturating_duration_since(*at));
            last = last.max(*when);
            let key = match result {
                CommandResult::Accepted { .. } => "accepted".to_string(),
                CommandResult::Rejected { reason } => format!("{reason:?}"),
            };
            *results.entry(key).or_default() += 1;
        }
    }
    eprintln!(
        "tape load: sent {} timed commands in {:.2} s ({:.0} commands/s offered)",
        sent.len(),
        sending.as_secs_f64(),
        sent.len() as f64 / sending.as_secs_f64().max(1e-9)
    );
    report(
        "answered on the events log",
        latencies.len(),
        last.duration_since(started),
        latencies,
        &results,
    );
    anyhow::ensure!(
        answered == sent.len() + all.len(),
        "the engine answered {answered} of {} commands within a minute",
        sent.len() + all.len()
    );
    Ok(())
}

/// The GraphQL mutation (and its variables) for one mix command.
fn mutation(command: &Command) -> Option<(&'static str, Value)> {
    let oref = |order: &OrderRef| match order {
        OrderRef::Client(c) => json!({ "clientOrderId": c.as_str() }),
        OrderRef::Id(id) => json!({ "orderId": id.0 }),
    };
    Some(match command {
        Command::PlaceOrder(o) => {
            let OrderType::Limit {
                price,
                quantity,
                time_in_force,
                ..
            } = &o.order_type
            else {
                return None;
            };
            let tif = match time_in_force {
                TimeInForce::Ioc => "IOC",
                TimeInForce::Fok => "FOK",
                _ => "GTC",
            };
            (
                "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { status reason } }",
                json!({ "input": {
                    "account": o.account.0, "market": o.market.as_str(),
                    "side": if o.side == Side::Buy { "BUY" } else { "SELL" },
                    "kind": "LIMIT", "price": price.to_string(), "quantity": quantity.to_string(),
                    "timeInForce": tif,
                    "clientOrderId": o.client_order_id.map(|c| c.as_str().to_string()),
                }}),
            )
        }
        Command::CancelOrder { account, order } => {
            let mut v = oref(order);
            v["account"] = json!(account.0);
            (
                "mutation($account: Int, $orderId: Int, $clientOrderId: String) { r: cancelOrder(account: $account, orderId: $orderId, clientOrderId: $clientOrderId) { status reason } }",
                v,
            )
        }
        Command::AmendOrder {
            account,
            order,
            price,
            quantity,
        } => {
            let mut v = oref(order);
            v["account"] = json!(account.0);
            v["price"] = json!(price.map(|p| p.to_string()));
            v["quantity"] = json!(quantity.map(|q| q.to_string()));
            (
                "mutation($account: Int, $orderId: Int, $clientOrderId: String, $price: Decimal, $quantity: Decimal) { r: amendOrder(account: $account, orderId: $orderId, clientOrderId: $clientOrderId, price: $price, quantity: $quantity) { status reason } }",
                v,
            )
        }
        _ => return None,
    })
}

async fn graphql(
    args: &LoadArgs,
    url: String,
    setup: Vec<Command>,
    timed: Vec<Command>,
) -> anyhow::Result<()> {
    let token = args
        .key
        .clone()
        .context("--graphql needs --key (an admin token) to act for the mix's accounts")?;
    if !args.no_setup {
        // The setup goes through the commands topic (assets, markets and deposits
        // are admin commands a load test should not need the gateway for).
        let door = Door::open(&args.logs, Some(&token)).await?;
        let sent = send_all(&door, setup, 0).await?;
        eprintln!(
            "tape load: setup: {} commands sent on the commands log",
            sent.len()
        );
    }
    let http = reqwest::Client::new();
    let clients = args.clients.max(1);
    let mut shares: Vec<Vec<Command>> = vec![Vec::new(); clients];
    for c in timed {
        let account = c.account().map_or(0, |a| a.0);
        shares[(account % clients as u64) as usize].push(c);
    }
    let per_client_rate = args.rate as f64 / clients as f64;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for share in shares {
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(share.len());
            let mut results: BTreeMap<String, u64> = BTreeMap::new();
            for (i, command) in share.iter().enumerate() {
                pace(started, i, per_client_rate).await;
                let Some((query, variables)) = mutation(command) else {
                    continue;
                };
                let at = Instant::now();
                let body: Value = http
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({ "query": query, "variables": variables }))
                    .send()
                    .await?
                    .json()
                    .await?;
                latencies.push(at.elapsed());
                let answer = body["data"]
                    .as_object()
                    .and_then(|d| d.values().next())
                    .cloned()
                    .unwrap_or(Value::Null);
                let key = match (answer["status"].as_str(), answer["reason"].as_str()) {
                    (Some("REJECTED"), Some(r)) => r.to_string(),
                    (Some(s), _) => s.to_lowercase(),
                    (None, _) => format!(
                        "error: {}",
                        body["errors"][0]["message"].as_str().unwrap_or("?")
                    ),
                };
                *results.entry(key).or_default() += 1;
            }
            anyhow::Ok((latencies, results))
        }));
    }
    let mut latencies = Vec::new();
    let mut results: BTreeMap<String, u64> = BTreeMap::new();
    for t in tasks {
        let (l, r) = t.await??;
        latencies.extend(l);
        for (k, v) in r {
            *results.entry(k).or_default() += v;
        }
    }
    let n = latencies.len();
    report(
        "answered over GraphQL",
        n,
        started.elapsed(),
        latencies,
        &results,
    );
    Ok(())
}
