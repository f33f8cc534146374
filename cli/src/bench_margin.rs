//! `tape bench margin`: the margin engine inside the core, one thread, no IO.
//!
//! * **Index updates.** `--positions` accounts each hold one long position, spread
//!   over `--markets` perpetuals, against one market maker who is short the lot;
//!   each account has its own collateral, so the marks at which the engine must
//!   look at them are spread out. An index update that crosses no account's
//!   trigger is timed one at a time (p50 and p99 of `--updates`); then updates
//!   that cross k accounts, each on a perpetual of its own, for k from 1 up: the
//!   update's command checks at most 256 of them, the rest wait for the next.
//! * **A margin order.** Place and cancel a limit order far from the market on a
//!   perpetual, by an account with 32 positions, against the same on a spot
//!   market by a spot account: the ratio of their costs in one run.
//! * **A storm.** `--storm` accounts with the same collateral and position on one
//!   perpetual, bids below for the liquidations to sell into, and one index move
//!   that takes all of them below maintenance: how many commands and how long
//!   until every crossed account is checked and the backlog is empty.

use std::time::Instant;

use clap::Args;
use tape_core::{Core, CoreConfig};
use tape_schemas::*;

use crate::bench::median;

#[derive(Args)]
pub struct MarginArgs {
    /// Accounts with one open position each.
    #[arg(long, default_value_t = 1_000_000)]
    positions: u64,
    #[arg(long, default_value_t = 100)]
    markets: u32,
    /// Index updates timed one at a time.
    #[arg(long, default_value_t = 20_000)]
    updates: u64,
    /// Accounts liquidated by one move in the storm.
    #[arg(long, default_value_t = 10_000)]
    storm: u64,
    /// Place-and-cancel pairs timed per run, for the margin order's cost.
    #[arg(long, default_value_t = 200_000)]
    orders: u64,
    #[arg(long, default_value_t = 3)]
    runs: u32,
}

fn d(s: &str) -> Dec {
    s.parse().expect("a bench number")
}

fn sym(s: &str) -> Symbol {
    s.parse().expect("a bench symbol")
}

const DAY_MS: u64 = 86_400_000;

/// Builds and applies commands at increasing times.
struct Feed {
    core: Core,
    time_ms: u64,
    next_id: u128,
    out: Vec<Event>,
}

impl Feed {
    fn new() -> Feed {
        let cfg = CoreConfig {
            dedupe_capacity: 0,
            accounts_max: 50_000_000,
            deposit_references_max: 50_000_000,
            markets_max: 10_000,
            open_orders_max: 50_000_000,
            ..CoreConfig::default()
        };
        Feed {
            core: Core::new(cfg),
            // A day boundary: with the perpetuals' one-day funding interval, no
            // round begins before `funding_round` asks for one.
            time_ms: DAY_MS * 19_676,
            next_id: 1,
            out: Vec::new(),
        }
    }

    fn envelope(&mut self, command: Command) -> CommandEnvelope {
        self.next_id += 1;
        self.time_ms += 1;
        CommandEnvelope::new(CommandId::from_u128(self.next_id), self.time_ms, command)
    }

    /// Applies a command that must be accepted.
    fn ok(&mut self, command: Command) {
        let e = self.envelope(command);
        self.apply_ok(&e);
    }

    fn deposit(&mut self, account: u64, amount: Dec) {
        self.ok(Command::Deposit {
            account: AccountId(account),
            asset: "USDT".parse().expect("code"),
            amount,
            reference: format!("b{account}-{}", self.next_id)
                .parse()
                .expect("a reference"),
        });
    }

    fn order(&mut self, account: u64, market: &str, side: Side, order_type: OrderType) {
        self.ok(Command::PlaceOrder(NewOrder {
            account: AccountId(account),
            market: sym(market),
            side,
            order_type,
            client_order_id: None,
            stp: StpMode::CancelTaker,
        }));
    }

    fn index(&mut self, market: &str, price: Dec) {
        let e = self.index_envelope(market, price);
        self.apply_ok(&e);
    }

    /// An index update priced at its own command time.
    fn index_envelope(&mut self, market: &str, price: Dec) -> CommandEnvelope {
        let mut e = self.envelope(Command::ClockTick);
        e.command = Command::SetIndexPrice {
            market: sym(market),
            price,
            source_ms: e.time_ms,
        };
        e
    }

    /// Applies an envelope that must be accepted.
    fn apply_ok(&mut self, e: &CommandEnvelope) {
        self.out.clear();
        self.core.apply(e, &mut self.out);
        match self.out.iter().find_map(|ev| match ev {
            Event::Outcome { result, .. } => Some(*result),
            _ => None,
        }) {
            Some(CommandResult::Accepted { .. }) => {}
            other => panic!("bench {:?} answered {other:?}", e.command),
        }
    }
}

fn gtc(price: Dec, quantity: Dec) -> OrderType {
    OrderType::Limit {
        price,
        quantity,
        time_in_force: TimeInForce::Gtc,
        post_only: false,
        display_quantity: None,
    }
}

fn market_buy(quantity: Dec) -> OrderType {
    OrderType::Market {
        size: MarketSize::Base(quantity),
    }
}

fn perp_symbol(m: u32) -> String {
    format!("P{m}-PERP")
}

/// Assets, `markets` perpetuals at an index of 100 (tick 0.01, lot 0.001, one
/// bracket of 20x at 0.5%, no fees) and a spot market, and the market maker
/// (account 1) with plenty of collateral.
fn exchange(markets: u32) -> Feed {
    let mut f = Feed::new();
    for (code, scale) in [("BTC", 8), ("USDT", 6)] {
        f.ok(Command::CreateAsset(AssetSpec {
            code: code.parse().expect("code"),
            scale,
            daily_withdrawal_limit: None,
        }));
    }
    let spec = |symbol: &str| MarketSpec {
        symbol: sym(symbol),
        base: "BTC".parse().expect("code"),
        quote: "USDT".parse().expect("code"),
        tick_size: d("0.01"),
        lot_size: d("0.001"),
        min_notional: d("0.01"),
        min_quantity: None,
        max_quantity: None,
        fees: FeeRates {
            maker_ppm: 0,
            taker_ppm: 0,
        },
        price_band_bps: None,
    };
    f.ok(Command::CreateMarket(spec("BTC-USDT")));
    for m in 0..markets {
        f.ok(Command::CreatePerpetual(PerpetualSpec {
            market: spec(&perp_symbol(m)),
            brackets: vec![LeverageBracket {
                notional_cap: d("1000000000000"),
                max_leverage: 20,
                maintenance_ppm: 5_000,
            }],
            index: IndexRules {
                max_move_ppm: 200_000,
                stale_after_ms: 86_400_000,
                min_price: d("0.01"),
                max_price: d("1000000"),
            },
            mark_basis_max_ppm: 0,
            funding_interval_ms: DAY_MS,
            open_interest_max: d("1000000"),
        }));
        f.index(&perp_symbol(m), d("100"));
    }
    f.deposit(1, d("1000000000000"));
    f.ok(Command::SetAccountTier {
        account: AccountId(1),
        tier: LeverageTier::Advanced,
    });
    f
}

/// `users` accounts from 2 on, each buying 0.1 from the market maker on one of
/// `markets` perpetuals at 5x with 2.00 to 11.99 of collateral: their triggers
/// spread from about 80 down.
fn positions(f: &mut Feed, users: u64, markets: u32, collateral: impl Fn(u64) -> Dec) {
    let per_market = users.div_ceil(u64::from(markets));
    for m in 0..markets {
        let qty = Dec::from_minor(i128::from(per_market) * 100, 3);
        f.order(1, &perp_symbol(m), Side::Sell, gtc(d("100"), qty));
    }
    for u in 0..users {
        let account = 2 + u;
        f.deposit(account, collateral(u));
        let m = (u % u64::from(markets)) as u32;
        f.order(account, &perp_symbol(m), Side::Buy, market_buy(d("0.1")));
    }
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p) as usize]
}

pub fn run(args: MarginArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.positions > 0 && args.markets > 0 && args.runs > 0 && args.updates > 1,
        "--positions, --markets, --runs and --updates must be positive"
    );
    index_updates(&args);
    margin_order(&args);
    storm(&args);
    Ok(())
}

fn index_updates(args: &MarginArgs) {
    let started = Instant::now();
    let mut f = exchange(args.markets);
    // Within each market the collateral runs from 2.00 to 11.99 in steps of 0.01.
    let markets = u64::from(args.markets);
    positions(&mut f, args.positions, args.markets, |u| {
        Dec::from_minor(200 + i128::from((u / markets) % 1_000), 2)
    });
    eprintln!(
        "{} positions on {} perpetuals set up in {:.1?}",
        args.positions,
        args.markets,
        started.elapsed()
    );
    // Updates that cross nothing: each market's index steps between 100 and 100.01.
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    for _ in 0..args.runs {
        let mut times = Vec::with_capacity(args.updates as usize);
        for i in 0..args.updates {
            let m = (i % u64::from(args.markets)) as u32;
            let price = if (i / u64::from(args.markets)) % 2 == 0 {
                d("100.01")
            } else {
                d("100")
            };
            let e = f.index_envelope(&perp_symbol(m), price);
            f.out.clear();
            let t = Instant::now();
            f.core.apply(&e, &mut f.out);
            times.push(t.elapsed().as_nanos() as f64);
            assert!(
                matches!(
                    f.out.first(),
                    Some(Event::Outcome {
                        result: CommandResult::Accepted { .. },
                        ..
                    })
                ),
                "{:?}",
                f.out.first()
            );
        }
        p50.push(percentile(times.clone(), 0.5));
        p99.push(percentile(times, 0.99));
    }
    println!(
        "index update crossing no account, {} positions over {} markets: p50 {:.0} ns, p99 {:.0} ns (medians of {} runs of {})",
        args.positions,
        args.markets,
        median(p50),
        median(p99),
        args.runs,
        args.updates
    );
    crossing(args, &mut f);
    funding_rounds(args, &mut f);
}

/// The next day boundary: every perpetual's funding round begins with its first
/// command, then each command charges at most 64 positions until all are done.
fn funding_rounds(args: &MarginArgs, f: &mut Feed) {
    f.time_ms = (f.time_ms / DAY_MS + 1) * DAY_MS - 1;
    let t = Instant::now();
    let mut commands = 0u64;
    let mut paid = 0u64;
    loop {
        let tick = f.envelope(Command::ClockTick);
        f.out.clear();
        f.core.apply(&tick, &mut f.out);
        commands += 1;
        let now = f
            .out
            .iter()
            .filter(|e| matches!(e, Event::FundingPaid { .. }))
            .count() as u64;
        paid += now;
        // While positions are being charged a round is under way.
        let open = now > 0
            || (0..args.markets).any(|m| {
                f.core
                    .funding(&sym(&perp_symbol(m)))
                    .is_some_and(|x| x.under_way.is_some())
            });
        if !open || commands >= 10_000_000 {
            break;
        }
    }
    let elapsed = t.elapsed();
    println!(
        "funding rounds on {} perpetuals: {paid} positions charged over {commands} commands (at most 64 each) in {elapsed:.1?}, {:.1} µs a command",
        args.markets,
        elapsed.as_secs_f64() * 1e6 / commands as f64
    );
}

/// Updates that cross k accounts: each on a market of its own whose index was
/// brought to 82 first (crossing no one), timed one at a time. The update's
/// command checks at most 256 of them (`CROSSED_CHECKS_MAX`); the rest wait for
/// the next commands, and are reported.
fn crossing(args: &MarginArgs, f: &mut Feed) {
    let targets = [1usize, 10, 100, 256, 1_000];
    let mut times = vec![Vec::new(); targets.len()];
    let mut crossed = vec![Vec::new(); targets.len()];
    let mut waiting = vec![Vec::new(); targets.len()];
    let mut next_market = 1u32;
    for _ in 0..args.runs {
        for (i, &target) in targets.iter().enumerate() {
            if next_market >= args.markets {
                break;
            }
            let market = perp_symbol(next_market);
            next_market += 1;
            f.index(&market, d("90"));
            f.index(&market, d("82"));
            // The highest price (in ticks) below 82 whose move crosses `target`.
            let crosses = |f: &Feed, t: u64| {
                let s = sym(&market);
                f.core.accounts_a_mark_crosses(&s, t).unwrap_or(0)
            };
            let mut ticks = 8_199u64;
            while ticks > 7_000 && crosses(f, ticks) < target {
                ticks -= 1;
            }
            crossed[i].push(crosses(f, ticks) as f64);
            let e = f.index_envelope(&market, Dec::from_minor(i128::from(ticks), 2));
            f.out.clear();
            let t = Instant::now();
            f.core.apply(&e, &mut f.out);
            times[i].push(t.elapsed().as_nanos() as f64);
            waiting[i].push(f.core.crossed_positions_waiting() as f64);
            // The rest are checked, and the backlog liquidated, before the
            // next update is timed.
            while f.core.liquidation_sweeps() > 0 || f.core.liquidation_backlog() > 0 {
                let tick = f.envelope(Command::ClockTick);
                f.apply_ok(&tick);
            }
        }
    }
    for ((t, k), w) in times.into_iter().zip(crossed).zip(waiting) {
        if t.is_empty() {
            continue;
        }
        let (t, k, w) = (median(t) / 1_000.0, median(k), median(w));
        let checked = k - w;
        println!(
            "index update crossing {k} accounts, {checked} checked in its command ({w} wait): {t:.1} µs ({:.2} µs per account checked; median of {})",
            t / checked.max(1.0),
            args.runs
        );
    }
}

/// Place-and-cancel on a perpetual by an account with 32 positions, against the
/// same on the spot market.
fn margin_order(args: &MarginArgs) {
    let mut f = exchange(32);
    let trader = 2u64;
    f.deposit(trader, d("1000000"));
    let spot_btc = Command::Deposit {
        account: AccountId(trader),
        asset: "BTC".parse().expect("code"),
        amount: d("100"),
        reference: "bench-btc".parse().expect("a reference"),
    };
    f.ok(spot_btc);
    for m in 0..32 {
        f.order(1, &perp_symbol(m), Side::Sell, gtc(d("100"), d("1")));
        f.order(trader, &perp_symbol(m), Side::Buy, market_buy(d("1")));
    }
    let spot_trader = 3u64;
    f.deposit(spot_trader, d("1000000"));
    f.ok(Command::Deposit {
        account: AccountId(spot_trader),
        asset: "BTC".parse().expect("code"),
        amount: d("100"),
        reference: "bench-btc-3".parse().expect("a reference"),
    });
    let time = |f: &mut Feed, market: &str, trader: u64| {
        let mut commands = Vec::with_capacity(args.orders as usize * 2);
        for _ in 0..args.orders {
            let place = f.envelope(Command::PlaceOrder(NewOrder {
                account: AccountId(trader),
                market: sym(market),
                side: Side::Sell,
                order_type: gtc(d("150"), d("0.5")),
                client_order_id: Some("bench".parse().expect("an id")),
                stp: StpMode::CancelTaker,
            }));
            let cancel = f.envelope(Command::CancelOrder {
                account: AccountId(trader),
                order: OrderRef::Client("bench".parse().expect("an id")),
            });
            commands.push(place);
            commands.push(cancel);
        }
        let mut core = f.core.clone();
        let mut out = Vec::new();
        let t = Instant::now();
        for e in &commands {
            out.clear();
            core.apply(e, &mut out);
        }
        t.elapsed().as_nanos() as f64 / commands.len() as f64
    };
    let (mut spot, mut perp, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.runs {
        let s = time(&mut f, "BTC-USDT", spot_trader);
        let p = time(&mut f, &perp_symbol(0), trader);
        spot.push(s);
        perp.push(p);
        ratio.push(p / s);
    }
    println!(
        "limit order placed and cancelled: spot {:.0} ns, perpetual by a cross account with 32 positions {:.0} ns per command; ratio {:.2} (medians of {} runs of {} pairs)",
        median(spot),
        median(perp),
        median(ratio),
        args.runs,
        args.orders
    );
}

/// `--storm` accounts with the same position and collateral on one perpetual;
/// bids below for liquidations to sell into; one move takes them all under.
fn storm(args: &MarginArgs) {
    let mut f = exchange(1);
    let market = perp_symbol(0);
    positions(&mut f, args.storm, 1, |_| d("2"));
    // At 80.02 each has 0.002 left against a maintenance of 0.04; its bankruptcy
    // price is 80.00, where the market maker bids twice what they all hold.
    let bids = Dec::from_minor(i128::from(args.storm) * 200, 3);
    f.order(1, &market, Side::Buy, gtc(d("80"), bids));
    f.index(&market, d("88"));
    let before = f.core.liquidation_backlog();
    let e = f.index_envelope(&market, d("80.02"));
    let t = Instant::now();
    f.apply_ok(&e);
    let count = |out: &[Event]| {
        out.iter()
            .filter(|e| matches!(e, Event::LiquidationStarted { .. }))
            .count()
    };
    let first = count(&f.out);
    let mut started = first;
    let mut commands = 1u64;
    let busy = |f: &Feed| f.core.liquidation_backlog() > 0 || f.core.liquidation_sweeps() > 0;
    while busy(&f) && commands < 10_000_000 {
        let tick = f.envelope(Command::ClockTick);
        f.out.clear();
        f.core.apply(&tick, &mut f.out);
        started += count(&f.out);
        commands += 1;
    }
    println!(
        "storm: one move took {started} accounts below maintenance ({first} found by its own command, backlog before {before}); {commands} commands (8 liquidation steps each) and {:.1?} until none is left",
        t.elapsed()
    );
}
