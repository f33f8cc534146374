//! `tape oracle`: posts index prices for a perpetual market onto the commands log
//! (`SetIndexPrice`), from a file, stdin or a recorded series, at a chosen pace, so
//! a demo works offline. Each line is `PRICE` (its source time is now) or
//! `SOURCE_MS PRICE`. `--demo` first creates the demo perpetual, BTC-USDT-PERP.
//! Refused prices are printed with the engine's reason; the run fails if any was.

use std::io::BufRead;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tape_schemas::{
    Command, CommandEnvelope, CommandResult, Dec, Event, FeeRates, IndexRules, LeverageBracket,
    MarketSpec, PerpetualSpec, RejectReason, Symbol,
};

use crate::door::{Door, Follower};
use crate::logs::LogArgs;

#[derive(Args)]
pub struct OracleArgs {
    #[command(flatten)]
    pub logs: LogArgs,
    /// An oracle (or admin) API token to sign with; without one the prices go
    /// unsigned (accepted while credentials are not required).
    #[arg(long, env = "TAPE_ORACLE_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// The perpetual market.
    #[arg(long, default_value = DEMO_SYMBOL)]
    pub market: Symbol,
    /// Where the prices come from: a file of lines, or `-` for stdin.
    #[arg(long, default_value = "-")]
    pub from: String,
    /// Milliseconds between two prices.
    #[arg(long, default_value_t = 1_000)]
    pub every_ms: u64,
    /// Create the demo perpetual BTC-USDT-PERP first (an admin command: unsigned, or
    /// with an admin key). Its rules are in docs/margin.md.
    #[arg(long)]
    pub demo: bool,
    /// How long to wait for the engine's answers at the end (milliseconds).
    #[arg(long, default_value_t = 10_000)]
    pub wait_ms: u64,
}

pub const DEMO_SYMBOL: &str = "BTC-USDT-PERP";

fn d(s: &str) -> Dec {
    s.parse().expect("a demo number")
}

/// The demo perpetual: BTC settled in USDT, Binance's first four BTCUSDT brackets,
/// an index that moves at most 5% per update and is stale after a minute.
pub fn demo_perpetual() -> PerpetualSpec {
    let bracket = |cap: &str, max_leverage, maintenance_ppm| LeverageBracket {
        notional_cap: d(cap),
        max_leverage,
        maintenance_ppm,
    };
    PerpetualSpec {
        market: MarketSpec {
            symbol: DEMO_SYMBOL.parse().expect("a demo symbol"),
            base: "BTC".parse().expect("a demo asset"),
            quote: "USDT".parse().expect("a demo asset"),
            tick_size: d("0.1"),
            lot_size: d("0.001"),
            min_notional: d("5"),
            min_quantity: None,
            max_quantity: None,
            fees: FeeRates {
                maker_ppm: 200,
                taker_ppm: 500,
            },
            // Orders within 5% of the mark: no market order walks a thin book.
            price_band_bps: Some(500),
        },
        brackets: vec![
            bracket("50000", 125, 4_000),
            bracket("250000", 100, 5_000),
            bracket("1000000", 50, 10_000),
            bracket("10000000", 20, 25_000),
        ],
        index: IndexRules {
            max_move_ppm: 50_000,
            stale_after_ms: 60_000,
            min_price: d("0.1"),
            max_price: d("10000000"),
        },
        mark_basis_max_ppm: 5_000,
        funding_interval_ms: 8 * 3_600_000,
        open_interest_max: d("1000"),
    }
}

/// One line: `PRICE` or `SOURCE_MS PRICE`.
fn parse_line(line: &str) -> anyhow::Result<(Option<u64>, Dec)> {
    let mut parts = line.split_whitespace();
    let (first, second) = (parts.next(), parts.next());
    anyhow::ensure!(parts.next().is_none(), "more than two fields");
    Ok(match (first, second) {
        (Some(price), None) => (None, price.parse().context("not a price")?),
        (Some(ms), Some(price)) => (
            Some(ms.parse().context("not a source time in ms")?),
            price.parse().context("not a price")?,
        ),
        _ => anyhow::bail!("an empty line"),
    })
}

fn read_lines(from: &str) -> anyhow::Result<Vec<(Option<u64>, Dec)>> {
    let reader: Box<dyn BufRead> = match from {
        "-" => Box::new(std::io::stdin().lock()),
        path => Box::new(std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("opening {path}"))?,
        )),
    };
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        out.push(parse_line(&line).with_context(|| format!("{from}: line {}", i + 1))?);
    }
    Ok(out)
}

pub async fn run(args: OracleArgs) -> anyhow::Result<()> {
    let prices = read_lines(&args.from)?;
    let door = Door::open(&args.logs, args.key.as_deref()).await?;
    // Followed from before the first append, so no answer is missed.
    let mut answers = Follower::from_end(&args.logs).await?;
    let mut sent: Vec<(u64, CommandEnvelope)> = Vec::new();
    if args.demo {
        let envelope = door.envelope(Command::CreatePerpetual(demo_perpetual()))?;
        sent.push((door.send(&envelope).await?, envelope));
        eprintln!("tape oracle: --demo: creating {DEMO_SYMBOL}");
    }
    let mut pace = tokio::time::interval(Duration::from_millis(args.every_ms.max(1)));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for (source_ms, price) in &prices {
        pace.tick().await;
        let source_ms = source_ms.unwrap_or_else(tape_client::now_ms);
        let envelope = door.envelope(Command::SetIndexPrice {
            market: args.market,
            price: *price,
            source_ms,
        })?;
        sent.push((door.send(&envelope).await?, envelope));
    }
    eprintln!(
        "tape oracle: posted {} index price(s) for {}",
        prices.len(),
        args.market
    );
    let refusals = report(&mut answers, &sent, Duration::from_millis(args.wait_ms)).await?;
    if refusals.is_empty() {
        eprintln!("tape oracle: all {} accepted", sent.len());
        return Ok(());
    }
    // What the sentences need (the last index, the bound), from the events log as
    // far as the answers were read.
    let events = args
        .logs
        .open("events", crate::logs::Role::Follower)
        .await?;
    let facts = crate::facts::LogFacts::fold(&events, answers.next_offset(), &[]).await?;
    for (offset, reason, envelope) in &refusals {
        eprintln!(
            "tape oracle: offset {offset}: refused: {}",
            tape_client::explain(*reason, envelope, &facts)
        );
    }
    anyhow::bail!("{} of {} refused", refusals.len(), sent.len())
}

/// Waits for the engine's answer to each command sent; returns the refusals.
async fn report(
    answers: &mut Follower,
    sent: &[(u64, CommandEnvelope)],
    wait: Duration,
) -> anyhow::Result<Vec<(u64, RejectReason, CommandEnvelope)>> {
    let mut results = std::collections::BTreeMap::new();
    let deadline = std::time::Instant::now() + wait;
    while results.len() < sent.len() && std::time::Instant::now() < deadline {
        for e in answers.next(Duration::from_millis(100)).await? {
            if let Event::Outcome { result, .. } = e.event {
                if sent.iter().any(|(o, _)| *o == e.command_offset) {
                    results.insert(e.command_offset, result);
                }
            }
        }
    }
    let mut refused = Vec::new();
    for (offset, envelope) in sent {
        match results.get(offset) {
            Some(CommandResult::Accepted { .. }) => {}
            Some(CommandResult::Rejected { reason }) => {
                refused.push((*offset, *reason, envelope.clone()))
            }
            None => anyhow::bail!(
                "no answer to offset {offset} within {} ms (is the engine running?)",
                wait.as_millis()
            ),
        }
    }
    Ok(refused)
}
