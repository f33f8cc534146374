//! `tape mm`: an example market maker, written the way one would be against the
//! topic: it follows the events log (the market's tick and lot, its trades, its own
//! orders and the answers to its own commands), quotes a ladder of post-only limit
//! orders around a reference price (the last trade, or `--reference` until there is
//! one), re-quotes when the reference moves or a quote fills, and cancels everything
//! on shutdown. A re-quote changes only what has to change: a quote already at a
//! wanted price stays (keeping its place in the queue), one at a price no longer
//! wanted is amended to a wanted price on its side, and only what is left over is
//! placed or cancelled, in batches of up to 20 changes a command (`--batch`). It
//! re-quotes only once every earlier command is answered, so
//! it never acts on a stale view of its own orders. Answers are matched by
//! commands-log offset, not by command id: anyone can write a rejected command
//! carrying someone else's id.

use std::collections::{BTreeMap, HashMap};
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
    /// The dead-man switch: the engine cancels every order of the account unless
    /// the bot refreshes it within this many milliseconds (it does so three times per
    /// period), so a bot that dies or loses the log leaves nothing quoted. 0: off.
    #[arg(long, env = "TAPE_MM_DEAD_MAN_MS", default_value_t = 10_000)]
    pub dead_man_ms: u64,
    /// Changes of a re-quote sent in one batch command (one envelope, one
    /// signature; at most the engine's batch_items_max, 20). 1: one command each.
    #[arg(long, env = "TAPE_MM_BATCH", default_value_t = 20)]
    pub batch: usize,
}

/// What the bot knows from the events log.
#[derive(Default)]
struct Book {
    tick: Option<Decimal>,
    lot: Option<Decimal>,
    last_trade: Option<Decimal>,
    /// Our orders that are live: id -> (side, limit price; none for other types).
    open: BTreeMap<u64, (Side, Option<Decimal>)>,
    /// Our orders filled (fully or partly) since the last quote.
    fills: u64,
    /// Our commands not answered yet: offset -> what it was.
    pending: HashMap<u64, &'static str>,
    /// The offset of our batch whose items are being answered.
    answering: Option<u64>,
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
                side,
                order_type,
                ..
            } if *a == account && *m == market => {
                let price = match order_type {
                    OrderType::Limit { price, .. } => Some(price.0),
                    _ => None,
                };
                self.open.insert(order.0, (*side, price));
            }
            Event::OrderAmended { order, price, .. } => {
                if let Some((_, p)) = self.open.get_mut(&order.0) {
                    *p = Some(price.0);
                }
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
            Event::ItemOutcome { result, .. } if self.answering == Some(e.command_offset) => {
                match result {
                    CommandResult::Accepted { .. } => self.accepted += 1,
                    CommandResult::Rejected { reason } => {
                        *self.rejected.entry(format!("{reason:?}")).or_default() += 1;
                    }
                }
            }
            Event::Outcome {
                result: CommandResult::Accepted { .. },
                ..
            } if self.pending.get(&e.command_offset) == Some(&"batch") => {
                // Its items' answers follow.
                self.pending.remove(&e.command_offset);
                self.answering = Some(e.command_offset);
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

/// One change to the quotes.
#[derive(Debug, PartialEq)]
enum Change {
    Keep(u64),
    Amend(u64, Decimal),
    Place(Side, Decimal),
    Cancel(u64),
}

/// What turns the live orders into the `wanted` ladder: an order at a wanted price
/// stays; orders at prices no longer wanted move to the wanted prices left on their
/// side (amends, best price first); what is still missing is placed and what is
/// still left over cancelled.
fn requote(
    live: &BTreeMap<u64, (Side, Option<Decimal>)>,
    wanted: &[(Side, Decimal)],
) -> Vec<Change> {
    let mut out = Vec::new();
    for side in [Side::Buy, Side::Sell] {
        let mut missing: Vec<Decimal> = wanted
            .iter()
            .filter(|(s, _)| *s == side)
            .map(|(_, p)| *p)
            .collect();
        let mut surplus = Vec::new();
        for (&order, &(_, price)) in live.iter().filter(|(_, (s, _))| *s == side) {
            // Only limit orders are quotes; anything else on the account is not ours
            // to move.
            let Some(price) = price else { continue };
            match missing.iter().position(|p| *p == price) {
                Some(i) => {
                    missing.remove(i);
                    out.push(Change::Keep(order));
                }
                None => surplus.push(order),
            }
        }
        let mut surplus = surplus.into_iter();
        for price in missing {
            out.push(match surplus.next() {
                Some(order) => Change::Amend(order, price),
                None => Change::Place(side, price),
            });
        }
        out.extend(surplus.map(Change::Cancel));
    }
    out
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

/// Catches up with the events log (what the market is, where it trades, what the
/// account still has open), then waits for the market if the engine has not created
/// it yet (a bot started beside `tape run --demo` may be up first). Its tick and lot.
async fn catch_up(
    events: &mut Follower,
    book: &mut Book,
    market: Symbol,
    account: AccountId,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<(Decimal, Decimal)> {
    // Catch up first: what the market is, where it trades, what we still have open.
    let end = events.end_offset().await?;
    while events.next_offset() < end {
        for e in events.next(Duration::from_millis(500)).await? {
            book.apply(market, account, &e);
        }
    }
    // A bot started with the exchange (say beside `tape run --demo`) may be up before
    // the engine has created its market: it waits for it rather than fail.
    let mut waiting = false;
    loop {
        if let (Some(tick), Some(lot)) = (book.tick, book.lot) {
            return Ok((tick, lot));
        }
        if !std::mem::replace(&mut waiting, true) {
            eprintln!("tape mm: market {market} does not exist yet; waiting for it");
        }
        tokio::select! {
            batch = events.next(Duration::from_millis(500)) => {
                for e in batch? {
                    book.apply(market, account, &e);
                }
            }
            _ = shutdown.changed() => anyhow::bail!("stopped before market {market} existed"),
        }
    }
}

/// The batch item that makes one change of a re-quote, and what it does; `None`
/// for a level kept as it is.
fn batch_item(change: Change, market: Symbol, size: Decimal) -> Option<(BatchItem, &'static str)> {
    Some(match change {
        Change::Keep(_) => return None,
        Change::Amend(order, price) => (
            BatchItem::AmendOrder {
                order: OrderRef::Id(OrderId(order)),
                price: Some(Dec(price)),
                quantity: None,
            },
            "amended",
        ),
        Change::Place(side, price) => (
            BatchItem::PlaceOrder {
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
            },
            "placed",
        ),
        Change::Cancel(order) => (
            BatchItem::CancelOrder {
                order: OrderRef::Id(OrderId(order)),
            },
            "cancelled",
        ),
    })
}

/// Sends a re-quote's changes: one command a batch of `batch` changes (or each on
/// its own), all sent together, so the door group-commits them into one append.
async fn send_quote(
    door: &Door,
    book: &mut Book,
    items: Vec<(BatchItem, &'static str)>,
    account: AccountId,
    batch: usize,
) -> anyhow::Result<()> {
    let mut sending = Vec::new();
    for chunk in items.chunks(batch.max(1)) {
        let (command, what) = match chunk {
            [(item, what)] => (item.command(account), *what),
            _ => {
                let items = chunk.iter().map(|(i, _)| i.clone()).collect();
                (Command::Batch { account, items }, "batch")
            }
        };
        let envelope = door.envelope(command)?;
        let door = door.clone();
        sending.push(async move { door.send(&envelope).await.map(|o| (o, what)) });
    }
    for (offset, what) in futures::future::try_join_all(sending).await? {
        book.pending.insert(offset, what);
    }
    Ok(())
}

pub async fn run(args: MmArgs) -> anyhow::Result<()> {
    let mut shutdown = crate::service::shutdown_signal()?;
    let account = AccountId(args.account);
    let market = args.market;
    let door = Door::open(&args.logs, args.key.as_deref()).await?;
    let mut events = Follower::open(&args.logs, 1).await?;
    let mut book = Book::default();
    let (tick, lot) = catch_up(&mut events, &mut book, market, account, &mut shutdown).await?;
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
    let mut changes: BTreeMap<&'static str, u64> = BTreeMap::new();
    let deadline = args
        .seconds
        .map(|s| Instant::now() + Duration::from_secs(s));
    let mut quoted: Option<Decimal> = None;
    let mut last_quote = Instant::now() - Duration::from_secs(3_600);
    let mut quotes = 0u64;
    let dead_man = |timeout_ms| Command::CancelAllAfter {
        account,
        timeout_ms,
    };
    let heartbeat = Duration::from_millis(args.dead_man_ms / 3);
    let mut last_heartbeat: Option<Instant> = None;
    loop {
        if *shutdown.borrow() || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if args.dead_man_ms > 0 && last_heartbeat.is_none_or(|t| t.elapsed() >= heartbeat) {
            send(&door, &mut book, dead_man(args.dead_man_ms), "dead man").await?;
            last_heartbeat = Some(Instant::now());
        }
        let reference = book.last_trade.or(args.reference);
        let moved = match (reference, quoted) {
            (Some(r), Some(q)) => ((r - q).abs() / q) * Decimal::from(10_000) >= args.requote_bps,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let due = last_quote.elapsed() >= Duration::from_millis(args.min_requote_ms)
            && book.pending.is_empty();
        if let (Some(reference), true) = (reference, (moved || book.fills > 0) && due) {
            let wanted = ladder(reference, tick, args.levels, args.spacing_bps);
            let mut items = Vec::new();
            for change in requote(&book.open, &wanted) {
                match batch_item(change, market, size) {
                    Some((item, what)) => {
                        *changes.entry(what).or_default() += 1;
                        items.push((item, what));
                    }
                    None => *changes.entry("kept").or_default() += 1,
                }
            }
            send_quote(&door, &mut book, items, account, args.batch).await?;
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
    if args.dead_man_ms > 0 {
        send(&door, &mut book, dead_man(0), "dead man").await?;
    }
    let until = Instant::now() + Duration::from_secs(10);
    while !book.pending.is_empty() && Instant::now() < until {
        for e in events.next(Duration::from_millis(100)).await? {
            book.apply(market, account, &e);
        }
    }
    eprintln!(
        "tape mm: {quotes} quotes; levels {changes:?}; {} commands accepted, refused: {:?}; {} unanswered; open orders left: {}",
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
    fn a_requote_keeps_what_is_wanted_moves_the_rest_and_places_or_cancels_the_difference() {
        let live: BTreeMap<u64, (Side, Option<Decimal>)> = [
            (1, (Side::Buy, Some(d("99")))),
            (2, (Side::Buy, Some(d("98")))),
            (3, (Side::Sell, Some(d("101")))),
            (4, (Side::Sell, Some(d("102")))),
            (5, (Side::Sell, Some(d("103")))),
            (6, (Side::Buy, None)),
        ]
        .into();
        // The market moved up a level, and the bid side wants one more level.
        let wanted = vec![
            (Side::Buy, d("100")),
            (Side::Sell, d("102")),
            (Side::Buy, d("99")),
            (Side::Sell, d("103")),
            (Side::Buy, d("98")),
            (Side::Buy, d("97")),
        ];
        assert_eq!(
            requote(&live, &wanted),
            vec![
                Change::Keep(1),
                Change::Keep(2),
                Change::Place(Side::Buy, d("100")),
                Change::Place(Side::Buy, d("97")),
                Change::Keep(4),
                Change::Keep(5),
                Change::Cancel(3),
            ]
        );
        // A jump past the whole ladder moves every quote; nothing is cancelled.
        let wanted = vec![
            (Side::Buy, d("90")),
            (Side::Buy, d("89")),
            (Side::Sell, d("91")),
        ];
        assert_eq!(
            requote(&live, &wanted),
            vec![
                Change::Amend(1, d("90")),
                Change::Amend(2, d("89")),
                Change::Amend(3, d("91")),
                Change::Cancel(4),
                Change::Cancel(5),
            ]
        );
        // Two orders at one wanted price: one stays, the other is surplus.
        let live: BTreeMap<u64, (Side, Option<Decimal>)> = [
            (7, (Side::Sell, Some(d("5")))),
            (8, (Side::Sell, Some(d("5")))),
        ]
        .into();
        assert_eq!(
            requote(&live, &[(Side::Sell, d("5"))]),
            vec![Change::Keep(7), Change::Cancel(8)]
        );
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
