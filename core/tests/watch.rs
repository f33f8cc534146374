//! The liquidation watch (issue 22): a fill on one market indexes that position
//! again and leaves the account's other triggers standing, and however an
//! account's positions change, its liquidation starts in the command whose mark
//! takes it below maintenance: not before, not after. Every command is checked
//! against every invariant (`H::apply`), the watch's own among them.

mod common;

use common::*;
use tape_core::Core;
use tape_schemas::*;

/// Minor units of USDT (6 decimals) in a decimal of at most 6 places.
fn usdt(v: Dec) -> i128 {
    v.mantissa() * 10i128.pow(6 - v.scale())
}

/// Dave long 0.1 on each of four perpetuals at 50,000 (5x), Alice short.
fn dave_long_on_four() -> (H, [Symbol; 4]) {
    let mut h = with_perp();
    h.ok(index("50000", h.time_ms));
    let symbols = four_perps(&mut h);
    index_all(&mut h, &symbols, "50000");
    h.deposit(DAVE, "USDT", "5000");
    for s in symbols {
        trade(&mut h, s, "50000", "0.1");
    }
    (h, symbols)
}

/// Alice sells `qty` on `s` at `price` and Dave buys it (a negative `qty`: the
/// other way round, Dave reducing only).
fn trade(h: &mut H, s: Symbol, price: &str, qty: &str) {
    let (maker, taker, qty) = match qty.strip_prefix('-') {
        Some(q) => (Side::Buy, Side::Sell, q),
        None => (Side::Sell, Side::Buy, qty),
    };
    h.ok(Command::PlaceOrder(place_on(ALICE, maker, s, price, qty)));
    let order = place_on(DAVE, taker, s, price, qty);
    h.ok(match taker {
        // Reduce-only: it goes through even while he is short of margin.
        Side::Sell => Command::PlaceReduceOnly(order),
        Side::Buy => Command::PlaceOrder(order),
    });
}

/// Sets `market`'s index at `price`, sourced now: the command's events.
fn set_index(h: &mut H, market: Symbol, price: &str) -> Vec<Event> {
    let time = h.time_ms;
    h.ok(Command::SetIndexPrice {
        market,
        price: d(price),
        source_ms: time,
    })
    .1
}

/// The accounts whose liquidation `events` start.
fn started(events: &[Event]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::LiquidationStarted { account, .. } => Some(account.0),
            _ => None,
        })
        .collect()
}

/// `market` falls 5% a second from 50,000 until a liquidation starts (at 38,690
/// at the latest): that command's events.
fn fall_until_liquidation(h: &mut H, market: Symbol) -> Vec<Event> {
    let mut events = Vec::new();
    for price in ["47500", "45125", "42869", "40726", "38690"] {
        h.time_ms += 1_000;
        events = set_index(h, market, price);
        if !started(&events).is_empty() {
            break;
        }
    }
    events
}

/// Dave's trigger on `s`: the highest price below the mark (in ticks of 0.01)
/// at which the watch would look at his long there.
fn trigger(h: &H, s: Symbol) -> Option<u64> {
    let mark = h.core.position(DAVE, &s)?.mark?;
    let crosses = |t: u64| h.core.accounts_a_mark_crosses(&s, t).unwrap_or(0) > 0;
    // Below the mark only longs are crossed, and more of them the lower it goes.
    let (mut lo, mut hi) = (0u64, u64::try_from(usdt(mark) / 10_000).ok()?);
    if !crosses(lo) {
        return None;
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if crosses(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(lo)
}

#[test]
fn a_fill_on_one_market_leaves_the_triggers_on_the_others_standing() {
    let (mut h, s) = dave_long_on_four();
    let before: Vec<Option<u64>> = s.iter().map(|&m| trigger(&h, m)).collect();
    assert!(before.iter().all(Option::is_some), "{before:?}");
    // Dave closes his first position at no loss: only it leaves the index.
    trade(&mut h, s[0], "50000", "-0.1");
    assert_eq!(trigger(&h, s[0]), None);
    for i in 1..4 {
        assert_eq!(trigger(&h, s[i]), before[i], "market {i}");
    }
    // He adds to the second: it is indexed again, the others stand.
    trade(&mut h, s[1], "50000", "0.1");
    let after = trigger(&h, s[1]).expect("watched");
    assert!(
        after > before[1].expect("watched"),
        "twice the size: closer"
    );
    for i in 2..4 {
        assert_eq!(trigger(&h, s[i]), before[i], "market {i}");
    }
}

/// What Dave's equity and maintenance would be with `s`'s mark at `mark`: his
/// wallet, each position's value less its cost, each position's maintenance at
/// 0.4% (its first bracket) rounded up.
fn predict(core: &Core, symbols: &[Symbol], s: Symbol, mark: Dec) -> (i128, i128) {
    let m = core.margin(DAVE, &code("USDT")).expect("an account");
    let (mut equity, mut maintenance) = (usdt(m.wallet), 0i128);
    for &x in symbols {
        let Some(p) = core.position(DAVE, &x).filter(|p| p.size.mantissa() != 0) else {
            continue;
        };
        let at = if x == s {
            mark
        } else {
            p.mark.expect("a mark")
        };
        // Lots of 0.0001 at ticks of 0.01: a value in whole minor units.
        let value = p.size.mantissa() * at.mantissa() * 10i128.pow(6)
            / 10i128.pow(p.size.scale() + at.scale());
        equity += value - usdt(p.cost);
        maintenance += (value * 4_000 + 999_999) / 1_000_000;
    }
    (equity, maintenance)
}

#[test]
fn a_liquidation_starts_in_the_command_whose_mark_takes_the_account_below_maintenance() {
    let (mut h, s) = dave_long_on_four();
    // His positions change between the moves: one closed at a loss, one grown,
    // one shrunk; the fourth is left alone. Every market falls 4% a round.
    let mut price = 50_000u64;
    let mut liquidated = false;
    for round in 0..12 {
        // At the marks of the last round.
        match round {
            0 => trade(&mut h, s[1], &price.to_string(), "0.05"),
            2 => trade(&mut h, s[0], &price.to_string(), "-0.1"),
            4 => trade(&mut h, s[2], &price.to_string(), "-0.04"),
            _ => {}
        }
        price = price * 96 / 100;
        for &x in &s {
            h.time_ms += 1_000;
            let before = h.core.clone();
            let events = set_index(&mut h, x, &price.to_string());
            let mark = events
                .iter()
                .find_map(|e| match e {
                    Event::IndexPriceSet { mark, .. } => Some(*mark),
                    _ => None,
                })
                .expect("the index is set");
            let started = started(&events).contains(&DAVE.0);
            if !liquidated {
                let (equity, maintenance) = predict(&before, &s, x, mark);
                assert_eq!(
                    started,
                    equity < maintenance,
                    "round {round} on {x}: equity {equity}, maintenance {maintenance}"
                );
            }
            liquidated |= started;
        }
    }
    assert!(liquidated, "the moves take him below maintenance");
}

#[test]
fn a_mark_that_crosses_more_accounts_than_a_command_checks_leaves_the_rest_for_the_next() {
    let mut h = with_perp();
    h.ok(index("50000", h.time_ms));
    // 300 accounts, each long 0.05 at 50,000 with the same collateral: one move
    // crosses them all.
    let accounts: Vec<AccountId> = (100..400).map(AccountId).collect();
    h.ok(Command::PlaceOrder(perp_order(
        ALICE,
        Side::Sell,
        gtc("50000", "15"),
    )));
    for &a in &accounts {
        h.deposit(a, "USDT", "550");
        h.ok(Command::PlaceOrder(perp_order(
            a,
            Side::Buy,
            gtc("50000", "0.05"),
        )));
    }
    // Down 5% at a time: at 38,690 each has lost more than he holds.
    let crossing = fall_until_liquidation(&mut h, sym(PERP));
    // The command checks at most 256 of them; the others wait, visibly.
    assert_eq!(started(&crossing).len(), 256);
    assert_eq!(h.core.crossed_positions_waiting(), 44);
    assert_eq!(h.core.liquidation_sweeps(), 1);
    // The next command, a clock tick, checks the rest.
    h.time_ms += 1_000;
    let (_, tick) = h.ok(Command::ClockTick);
    assert_eq!(started(&tick).len(), 44);
    assert_eq!(h.core.crossed_positions_waiting(), 0);
    assert_eq!(h.core.liquidation_sweeps(), 0);
    // All 300 are below maintenance: each is in the backlog, or was taken over
    // by one of the two commands' eight liquidation steps.
    assert_eq!(h.core.liquidation_backlog() + 16, 300);
}

#[test]
fn a_liquidation_that_ends_by_selling_a_winner_leaves_the_account_covered() {
    // Dave (advanced, 20x) is long 1 on X at 50,000 and short 0.2 on Y at
    // 50,000, with 3,200: 3,000 held, the rest paid in fees.
    let mut h = with_perp();
    h.ok(index("50000", h.time_ms));
    let s = four_perps(&mut h);
    let (x, y) = (s[0], s[1]);
    index_all(&mut h, &s[..2], "50000");
    h.deposit(DAVE, "USDT", "3200");
    h.ok(Command::SetAccountTier {
        account: DAVE,
        tier: LeverageTier::Advanced,
    });
    trade(&mut h, x, "50000", "1");
    h.ok(Command::PlaceOrder(place_on(
        ALICE,
        Side::Buy,
        y,
        "50000",
        "0.2",
    )));
    h.ok(Command::PlaceOrder(place_on(
        DAVE,
        Side::Sell,
        y,
        "50000",
        "0.2",
    )));
    // X rises to 52,000 (2,000 up) and stays; Y rises 1% a second until the
    // short's loss takes Dave below maintenance. Alice bids for X at 51,990.
    h.time_ms += 1_000;
    set_index(&mut h, x, "52000");
    h.ok(Command::PlaceOrder(place_on(
        ALICE,
        Side::Buy,
        x,
        "51990",
        "1",
    )));
    let mut price = 50_000u64;
    let mut liquidated = Vec::new();
    while liquidated.is_empty() && price < 100_000 {
        price = price * 101 / 100;
        h.time_ms += 1_000;
        set_index(&mut h, x, "52000");
        liquidated = liquidation_events(&set_index(&mut h, y, &price.to_string()));
    }
    // His largest position is the winner, X: part of it is sold into Alice's bid,
    // which restores his margin in the same step (he has no orders to cancel).
    // What is left of X is indexed again (once, at its mark), and the account
    // stays covered by its triggers (`H::apply` checks that after every command).
    assert!(
        matches!(
            liquidated.as_slice(),
            [
                Event::LiquidationStarted { .. },
                Event::LiquidationStep { stage: LiquidationStage::Reduce, market, .. },
                Event::LiquidationEnded { .. },
            ] if *market == x
        ),
        "{liquidated:#?}"
    );
    let left = h.core.position(DAVE, &x).expect("part of X is left");
    assert!(left.size.mantissa() > 0);
    assert!(trigger(&h, x).is_some(), "what is left of X is watched");
}

#[test]
fn an_account_waiting_for_the_sweep_is_checked_whole_when_it_trades_elsewhere() {
    let mut h = with_perp();
    h.ok(index("50000", h.time_ms));
    let s = four_perps(&mut h);
    let (x, y) = (s[0], s[1]);
    index_all(&mut h, &s[..2], "50000");
    // 600 accounts long 0.02 on X with the same collateral; account 100, the
    // last the sweep reaches among equals (the lowest id), is also long 0.002
    // on Y, with a little less to spare.
    h.ok(Command::PlaceOrder(place_on(
        ALICE,
        Side::Sell,
        x,
        "50000",
        "12",
    )));
    for a in (100..700).map(AccountId) {
        h.deposit(a, "USDT", if a.0 == 100 { "230" } else { "220" });
        h.ok(Command::PlaceOrder(place_on(
            a,
            Side::Buy,
            x,
            "50000",
            "0.02",
        )));
    }
    h.ok(Command::PlaceOrder(place_on(
        ALICE,
        Side::Sell,
        y,
        "50000",
        "0.002",
    )));
    h.ok(Command::PlaceOrder(place_on(
        AccountId(100),
        Side::Buy,
        y,
        "50000",
        "0.002",
    )));
    h.ok(Command::PlaceOrder(place_on(
        ALICE,
        Side::Buy,
        y,
        "50000",
        "0.002",
    )));
    let crossing = fall_until_liquidation(&mut h, x);
    // 256 checked; 344 wait, account 100 among them, below maintenance.
    assert_eq!(started(&crossing).len(), 256);
    assert!(!started(&crossing).contains(&100));
    assert_eq!(h.core.crossed_positions_waiting(), 344);
    // He sells some of Y into Alice's bid. His check counts X at its mark (its
    // trigger is crossed, so its floor no longer holds): he is below, and his
    // liquidation starts in this command, though the sweep would reach him only
    // two commands on.
    let sell = place_on(AccountId(100), Side::Sell, y, "50000", "0.001");
    let (_, traded) = h.ok(Command::PlaceReduceOnly(sell));
    let now = started(&traded);
    assert!(now.contains(&100), "{now:?}");
    assert_eq!(now.len(), 257, "him and the sweep's 256");
}
