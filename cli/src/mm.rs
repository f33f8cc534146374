//! `tape mm`: an example market maker, written the way one would be against the
//! topic: it follows the events log (the market's tick and lot, its trades, its own
//! orders and the answers to its own commands), quotes a ladder of post-only limit
//! orders around a reference price (the last trade, or `--reference` until there is
//! one), re-quotes when the reference moves or a quote fills, and cancels everything
//! on shutdown. Answers are matched by commands-log offset, not by command id:
//! anyone can write a rejected command carrying someone else's id.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use clap::Args;
use rust_decimal::{Decimal, RoundingStrategy};
use tape_schemas::*;

use crate::door::{Door, Follower};
use crate::logs::LogArgs;

#[derive(Args)]
pub struct MmArgs {
    #[command(flatten)]
    pub logs: LogArgs,
    /// The market to quote.
    #[arg(long, env = "TAPE_MM_MARKET")]
    pub market: Symbol,
    /// The account to quote for.
    #[arg(long, env = "TAPE_MM_ACCOUNT")]
    pub account: u64,
    /// The account's API token; every command is signed with it. Without one the
    /// commands go unsigned (only accepted while the engine does not require
    /// credentials).
    #[arg(long, env = "TAPE_MM_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// The reference price until the market has traded.
    #[arg(long, env = "TAPE_MM_REFERENCE")]
    pub reference: Option<Decimal>,
    /// Price levels on each side.
    #[arg(long, env = "TAPE_MM_LEVELS", default_value_t = 5)]
    pub levels: u32,
    /// Distance between levels, and from the reference to the first, in basis points
    /// (fractions allowed).
    #[arg(long, env = "TAPE_MM_SPACING_BPS", default_value = "10")]
    pub spacing_bps: Decimal,
    /// Quantity per level (rounded down to the lot).
    #[arg(long, env = "TAPE_MM_SIZE")]
    pub size: Decimal,
    /// Re-quote when the reference moves this many basis points from the last quote
    /// (fractions allowed).
    #[arg(long, env = "TAPE_MM_REQUOTE_BPS", default_value = "5")]
    pub requote_bps: Decimal,
    /// At most one re-quote per this many milliseconds.
    #[arg(long, env = "TAPE_MM_MIN_REQUOTE_MS", default_value_t = 200)]
    pub min_requote_ms: u64,
    /// Stop (cancelling everything) after this many seconds; default: until SIGTERM.
    #[arg(long, env = "TAPE_MM_SECONDS")]
    pub seconds: Option<u64>,
}

/// What the bot knows from the events log.
#[derive(Default)]
struct Book {
    tick: Option<Decimal>,
    lot: Option<Decimal>,
    last_trade: Option<Decimal>,
    /// Our orders that are live.
    open: BTreeSet<u64>,
    /// Our orders filled (fully or partly) since the last quote.
    fills: u64,
    /// Our commands not answered yet: offset -> what it was.
    pending: HashMap<u64, &'static str>,
    accepted: u64,
    rejected: BTreeMap<String, u64>,
}

impl Book {
    fn apply(&mut self, market: Symbol, account: AccountId, e: &EventEnvelope) {
        match &e.event {
            Event::MarketCreated(spec) if spec.symbol == market => {
                self.tick = Some(spec.tick_size.0);
                self.lot = Some(spec.lot_size.0);
            }
            Event::OrderAccepted {
                order,
                account: a,
                market: m,
                ..
            } if *a == account && *m == market => {
                self.open.insert(order.0);
            }
            Event::OrderDone { order, .. } => {
                self.open.remove(&order.0);
            }
            Event::Trade {
                market: m,
                price,
                maker_account,
                taker_account,
                ..
            } if *m == market => {
                self.last_trade = Some(price.0);
                if *maker_account == account || *taker_account == account {
                    self.fills += 1;
                }
            }
            Event::Outcome { result, .. } if self.pending.remove(&e.command_offset).is_some() => {
                match result {
                    CommandResult::Accepted { .. } => self.accepted += 1,
                    CommandResult::Rejected { reason } => {
                        tracing::debug!(?reason, offset = e.command_offset, "refused");
                        *self.rejected.entry(format!("{reason:?}")).or_default() += 1;
                    }
                }
            }
            _ => {}
        }
    }
}

/// Sends one command and remembers it until the engine answers.
async fn send(
    door: &Door,
    book: &mut Book,
    command: Command,
    what: &'static str,
) -> anyhow::Result<()> {
    let offset = door.send(&door.envelope(command)?).await?;
    book.pending.insert(offset, what);
    Ok(())
}

/// The ladder around `reference`: (side, price) pairs, best first on each side.
fn ladder(
    reference: Decimal,
    tick: Decimal,
    levels: u32,
    spacing_bps: Decimal,
) -> Vec<(Side, Decimal)> {
    let on_tick = |p: Decimal, strategy| (p / tick).round_dp_with_strategy(0, strategy) * tick;
    let mut out = Vec::new();
    for i in 1..=levels {
        let step = spacing_bps * Decimal::from(i) / Decimal::from(10_000);
        let bid = on_tick(
            reference * (Decimal::ONE - step),
            RoundingStrategy::ToNegativeInfinity,
        );
        let ask = on_tick(
            reference * (Decimal::ONE + step),
            RoundingStrategy::ToPositiveInfinity,
        );
        if bid > Decimal::ZERO {
            out.push((Side::Buy, bid.normalize()));
        }
        out.push((Side::Sell, ask.normalize()));
    }
    out
}

pub async fn run(args: MmArgs) -> anyhow::Result<()> {
    let mut shutdown = crate::service::shutdown_signal()?;
    let account = AccountId(args.account);
    let market = args.market;
    let door = Door::open(&args.logs, args.key.as_deref()).await?;
    let mut events = Follower::open(&args.logs, 1).await?;
    let mut book = Book::default();
    // Catch up first: what the market is, where it trades, what we still have open.
    let end = events.last_seq().await?;
    while events.next_seq() <= end {
        for e in events.next(Duration::from_millis(500)).await? {
            book.apply(market, account, &e);
        }
    }
    let (Some(tick), Some(lot)) = (book.tick, book.lot) else {
        anyhow::bail!("market {market} does not exist on this log");
    };
    let size = (args.size / lot).floor() * lot;
    anyhow::ensure!(
        size > Decimal::ZERO,
        "--size {} is below the lot {lot}",
        args.size
    );
    eprintln!(
        "tape mm: quoting {market} for account {account}: {} levels a side, {} bp apart, {size} each{}",
        args.levels,
        args.spacing_bps,
        if args.key.is_some() { ", signed" } else { ", unsigned" }
    );
    let cancel_all = || Command::CancelAll {
        account,
        market: Some(market),
    };
    if !book.open.is_empty() {
        send(&door, &mut book, cancel_all(), "cancel").await?;
    }
    let deadline = args
        .seconds
        .map(|s| Instant::now() + Duration::from_secs(s));
    let mut quoted: Option<Decimal> = None;
    let mut last_quote = Instant::now() - Duration::from_secs(3_600);
    let mut quotes = 0u64;
    loop {
        if *shutdown.borrow() || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let reference = book.last_trade.or(args.reference);
        let moved = match (reference, quoted) {
            (Some(r), Some(q)) => ((r - q).abs() / q) * Decimal::from(10_000) >= args.requote_bps,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let due = last_quote.elapsed() >= Duration::from_millis(args.min_requote_ms);
        if let (Some(reference), true) = (reference, (moved || book.fills > 0) && due) {
            // Cancel-all first (it is appended, so applied, before the new quotes).
            send(&door, &mut book, cancel_all(), "cancel").await?;
            let mut placing = Vec::new();
            for (side, price) in ladder(reference, tick, args.levels, args.spacing_bps) {
                let command = Command::PlaceOrder(NewOrder {
                    account,
                    market,
                    side,
                    order_type: OrderType::Limit {
                        price: Dec(price),
                        quantity: Dec(size),
                        time_in_force: TimeInForce::Gtc,
                        post_only: true,
                        display_quantity: None,
                    },
                    client_order_id: None,
                    stp: StpMode::CancelMaker,
                });
                let envelope = door.envelope(command)?;
                let door = door.clone();
                placing.push(async move { door.send(&envelope).await });
            }
            // Sent together: the door group-commits them into one append.
            for offset in futures::future::try_join_all(placing).await? {
                book.pending.insert(offset, "quote");
            }
            quotes += 1;
            quoted = Some(reference);
            book.fills = 0;
            last_quote = Instant::now();
            tracing::info!(%reference, "quoted");
        }
        tokio::select! {
            batch = events.next(Duration::from_millis(50)) => {
                for e in batch? {
                    book.apply(market, account, &e);
                }
            }
            _ = shutdown.changed() => {}
        }
    }
    // Leave nothing behind, and wait (a while) for the engine to say so.
    send(&door, &mut book, cancel_all(), "cancel").await?;
    let until = Instant::now() + Duration::from_secs(10);
    while !book.pending.is_empty() && Instant::now() < until {
        for e in events.next(Duration::from_millis(100)).await? {
            book.apply(market, account, &e);
        }
    }
    eprintln!(
        "tape mm: {quotes} quotes; {} commands accepted, refused: {:?}; {} unanswered; open orders left: {}",
        book.accepted,
        book.rejected,
        book.pending.len(),
        book.open.len()
    );
    anyhow::ensure!(
        book.pending.is_empty(),
        "the engine did not answer {} command(s) before shutdown",
        book.pending.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn the_ladder_is_on_tick_and_never_crosses_the_reference() {
        let l = ladder(d("10000.00"), d("0.01"), 3, d("10"));
        assert_eq!(
            l,
            vec![
                (Side::Buy, d("9990")),
                (Side::Sell, d("10010")),
                (Side::Buy, d("9980")),
                (Side::Sell, d("10020")),
                (Side::Buy, d("9970")),
                (Side::Sell, d("10030")),
            ]
        );
        // Rounding goes away from the reference on both sides.
        let l = ladder(d("100.005"), d("0.01"), 1, d("1"));
        assert_eq!(l, vec![(Side::Buy, d("99.99")), (Side::Sell, d("100.02"))]);
    }
}
