//! Trading perpetuals on margin (issue 22): positions opened and closed by fills,
//! realized profit and loss through the market's clearing party, initial margin
//! held on the ledger at entry and limit prices net of reducing orders, leverage,
//! reduce-only orders and `ClosePosition`, the exposure caps, a stale index making
//! the market reduce-only, withdrawals limited by unrealized losses, and the
//! insurance fund paying what an account cannot. Every command is checked against
//! every invariant (`H::apply`), and the core restores from its snapshot.

mod common;

use common::*;
use tape_core::Core;
use tape_schemas::*;

const DAVE: AccountId = AccountId(4);
/// One USDT in minor units.
const USDT: u64 = 1_000_000;

fn place(account: AccountId, side: Side, price: &str, qty: &str) -> Command {
    Command::PlaceOrder(perp_order(account, side, gtc(price, qty)))
}

fn reduce_only(account: AccountId, side: Side, price: &str, qty: &str) -> Command {
    Command::PlaceReduceOnly(perp_order(account, side, gtc(price, qty)))
}

fn close(account: AccountId) -> Command {
    Command::ClosePosition {
        account,
        market: sym(PERP),
    }
}

/// BTC-PERP with its index at 50,000.
fn market() -> H {
    let mut h = with_perp();
    h.ok(index("50000", h.time_ms));
    h
}

/// The next index, a second later.
fn next_index(h: &mut H, price: &str) {
    h.time_ms += 1_000;
    h.ok(index(price, h.time_ms));
}

fn position(h: &H, account: AccountId) -> Option<tape_core::PositionInfo> {
    h.core.position(account, &sym(PERP))
}

fn size(h: &H, account: AccountId) -> Dec {
    position(h, account).map_or(Dec::ZERO, |p| p.size)
}

/// The core restores from its snapshot to the same state.
fn assert_restores(h: &H) {
    let bytes = h.core.snapshot();
    let restored = Core::restore(&bytes).expect("the snapshot restores");
    assert_eq!(restored.snapshot(), bytes, "restored to the same state");
}

/// Alice sells 1 BTC-PERP to Bob at 50,000, both at the beginner's 5x.
fn alice_short_bob_long() -> H {
    let mut h = market();
    h.ok(place(ALICE, Side::Sell, "50000", "1"));
    h.ok(place(BOB, Side::Buy, "50000", "1"));
    h
}

#[test]
fn a_fill_opens_two_positions_and_holds_their_initial_margin() {
    let mut h = market();
    let (_, events) = h.ok(place(ALICE, Side::Sell, "50000", "1"));
    // Resting: 50,000 at 5x, plus the worst fee (0.2%).
    assert_eq!(h.held(ALICE, "USDT"), (10_000 + 100) * USDT, "{events:#?}");
    let (_, events) = h.ok(place(BOB, Side::Buy, "50000", "1"));
    assert_eq!(trades(&events).len(), 1);
    // No bitcoin moves on a perpetual.
    assert_eq!(h.available(ALICE, "BTC"), 10 * 100_000_000);
    assert_eq!(h.available(BOB, "BTC"), 10 * 100_000_000);
    // Each holds 10,000 for its position; the maker paid 0.1%, the taker 0.2%.
    for (account, fee) in [(ALICE, 50), (BOB, 100)] {
        assert_eq!(h.held(account, "USDT"), 10_000 * USDT);
        assert_eq!(
            h.available(account, "USDT"),
            (1_000_000 - 10_000 - fee) * USDT
        );
    }
    let alice = position(&h, ALICE).expect("a position");
    assert_eq!(
        (alice.size, alice.cost, alice.leverage),
        (d("-1"), d("-50000"), 5)
    );
    assert_eq!(alice.initial_margin, d("10000"));
    // 0.4% maintenance in the first bracket.
    assert_eq!(alice.maintenance_margin, d("200"));
    assert_eq!(size(&h, BOB), d("1"));
    let (oi, clearing) = h.core.open_interest(&sym(PERP)).unwrap();
    assert_eq!((oi, clearing), (d("1"), d("0")));
    let changed: Vec<(AccountId, Dec)> = events
        .iter()
        .filter_map(|e| match e {
            Event::PositionChanged { account, size, .. } => Some((*account, *size)),
            _ => None,
        })
        .collect();
    assert_eq!(changed, [(ALICE, d("-1")), (BOB, d("1"))]);
    assert_restores(&h);
}

#[test]
fn closing_realizes_profit_and_loss_through_the_clearing_party() {
    let mut h = alice_short_bob_long();
    next_index(&mut h, "52000");
    let bob = position(&h, BOB).unwrap();
    assert_eq!(bob.unrealized_pnl, d("2000"));
    assert_eq!(position(&h, ALICE).unwrap().unrealized_pnl, d("-2000"));
    let before = h.available(BOB, "USDT");
    // Carol bids; Bob closes into her bid.
    h.ok(place(CAROL, Side::Buy, "52000", "1"));
    let (_, events) = h.ok(close(BOB));
    assert_eq!(trades(&events).len(), 1, "{events:#?}");
    assert!(position(&h, BOB).is_none(), "closed and forgotten");
    assert_eq!(h.held(BOB, "USDT"), 0);
    // The margin comes back, the profit arrives, the taker fee (0.2%) goes.
    assert_eq!(
        h.available(BOB, "USDT"),
        before + (10_000 + 2_000 - 104) * USDT
    );
    let realized = events.iter().find_map(|e| match e {
        Event::PositionChanged {
            account,
            realized_pnl,
            ..
        } if *account == BOB => Some(*realized_pnl),
        _ => None,
    });
    assert_eq!(realized, Some(d("2000")));
    // The clearing party paid it: it is owed by Alice's open loss.
    let (oi, clearing) = h.core.open_interest(&sym(PERP)).unwrap();
    assert_eq!((oi, clearing), (d("1"), d("-2000")));
    assert_eq!(size(&h, CAROL), d("1"));
    // Alice buys back from Dave at 52,000: her loss goes to the clearing party,
    // which is square again.
    h.deposit(DAVE, "USDT", "100000");
    h.ok(place(DAVE, Side::Sell, "52000", "1"));
    h.ok(place(CAROL, Side::Sell, "52000", "1"));
    let before = h.available(ALICE, "USDT");
    let (_, events) = h.ok(close(ALICE));
    assert_eq!(trades(&events).len(), 1, "{events:#?}");
    assert_eq!(
        h.available(ALICE, "USDT"),
        before + (10_000 - 2_000 - 104) * USDT
    );
    let (_, clearing) = h.core.open_interest(&sym(PERP)).unwrap();
    assert_eq!(clearing, d("0"));
    assert_restores(&h);
}

#[test]
fn orders_that_reduce_the_position_need_no_more_margin() {
    let mut h = alice_short_bob_long();
    let held = h.held(BOB, "USDT");
    // Selling back what Bob holds adds only its worst fee.
    h.ok(place(BOB, Side::Sell, "55000", "1"));
    assert_eq!(h.held(BOB, "USDT"), held + 110 * USDT);
    // Selling beyond it is margined for the part beyond: 1 of 2 lots' worth.
    let (id, _) = h.ok(place(BOB, Side::Sell, "55000", "1"));
    assert_eq!(h.held(BOB, "USDT"), held + (110 + 110 + 55_000 / 5) * USDT);
    // Cancelling releases it again.
    h.ok(cancel(BOB, id));
    assert_eq!(h.held(BOB, "USDT"), held + 110 * USDT);
    assert_restores(&h);
}

#[test]
fn an_order_the_margin_cannot_carry_is_refused() {
    let mut h = market();
    h.deposit(DAVE, "USDT", "1000");
    // 50,000 at 5x needs 10,000 and a fee.
    assert_eq!(
        h.rejected(place(DAVE, Side::Buy, "50000", "1")),
        RejectReason::InsufficientMargin
    );
    // An advanced account (20x) still needs 2,500.
    h.ok(Command::SetAccountTier {
        account: DAVE,
        tier: LeverageTier::Advanced,
    });
    assert_eq!(
        h.rejected(place(DAVE, Side::Buy, "50000", "1")),
        RejectReason::InsufficientMargin
    );
    // 0.3 BTC: 750 at 20x plus a fee of 30.
    h.ok(place(DAVE, Side::Buy, "50000", "0.3"));
    assert_eq!(h.held(DAVE, "USDT"), 780 * USDT);
    // A buy above the mark also pays for its loss against the mark at once:
    // 0.08 at 51,000 is 204 + 8.16 of margin, plus 80 of loss, beyond the 220 left.
    assert_eq!(
        h.rejected(place(DAVE, Side::Buy, "51000", "0.08")),
        RejectReason::InsufficientMargin
    );
    h.ok(place(DAVE, Side::Buy, "50000", "0.08"));
    assert_restores(&h);
}

#[test]
fn reduce_only_orders_never_grow_or_flip_a_position() {
    let mut h = alice_short_bob_long();
    assert_eq!(
        h.rejected(reduce_only(CAROL, Side::Sell, "50000", "1")),
        RejectReason::NoPosition
    );
    assert_eq!(
        h.rejected(reduce_only(BOB, Side::Buy, "49000", "1")),
        RejectReason::WouldIncreasePosition
    );
    assert_eq!(
        h.rejected(reduce_only(BOB, Side::Sell, "51000", "1.5")),
        RejectReason::WouldIncreasePosition
    );
    assert_eq!(h.rejected(close(CAROL)), RejectReason::NoPosition);
    // Bob rests a reduce-only sell, then closes with a plain order elsewhere:
    // the reduce-only sell has nothing left to reduce and leaves the book when
    // it would fill.
    let (resting, _) = h.ok(reduce_only(BOB, Side::Sell, "51000", "1"));
    h.ok(place(CAROL, Side::Buy, "50500", "1"));
    h.ok(place(BOB, Side::Sell, "50500", "1"));
    assert_eq!(size(&h, BOB), Dec::ZERO);
    assert!(h.is_open(BOB, resting));
    let (_, events) = h.ok(place(CAROL, Side::Buy, "51000", "1"));
    assert_done(&events, resting, DoneReason::ReduceOnly, "0");
    assert_eq!(size(&h, BOB), Dec::ZERO, "never flipped");
    assert_restores(&h);
}

#[test]
fn a_stale_index_leaves_only_reducing_orders() {
    let mut h = alice_short_bob_long();
    h.time_ms += STALE_MS;
    h.ok(Command::ClockTick);
    assert_eq!(
        h.rejected(place(CAROL, Side::Buy, "50000", "1")),
        RejectReason::MarketReduceOnly
    );
    h.ok(reduce_only(ALICE, Side::Buy, "50000", "1"));
    h.ok(reduce_only(BOB, Side::Sell, "50000", "1"));
    assert_eq!((size(&h, ALICE), size(&h, BOB)), (Dec::ZERO, Dec::ZERO));
    // A fresh index opens the market again.
    next_index(&mut h, "50000");
    h.ok(place(CAROL, Side::Buy, "50000", "1"));
    assert_restores(&h);
}

#[test]
fn each_exposure_cap_refuses_with_its_own_reason() {
    // The last bracket ends at 1,000,000: 21 BTC at 50,000 is beyond it.
    let mut h = market();
    h.ok(Command::SetAccountTier {
        account: ALICE,
        tier: LeverageTier::Advanced,
    });
    assert_eq!(
        h.rejected(place(ALICE, Side::Buy, "50000", "21")),
        RejectReason::PositionNotionalCap
    );
    // Open interest capped at 1 BTC.
    let mut h = H::new();
    let mut spec = perp_spec();
    spec.open_interest_max = d("1");
    h.ok(Command::CreatePerpetual(spec));
    h.ok(index("50000", h.time_ms));
    h.ok(place(ALICE, Side::Sell, "50000", "0.5"));
    h.ok(place(BOB, Side::Buy, "50000", "0.5"));
    assert_eq!(
        h.rejected(place(CAROL, Side::Buy, "50000", "0.6")),
        RejectReason::OpenInterestCap
    );
    // A market order is checked fill by fill: Alice sells into two bids; the
    // first takes open interest to 1, the second would go beyond it.
    h.ok(place(CAROL, Side::Buy, "49000", "0.5"));
    h.ok(place(BOB, Side::Buy, "48000", "0.5"));
    let sell = OrderType::Market {
        size: MarketSize::Base(d("1")),
    };
    let (id, events) = h.ok(Command::PlaceOrder(perp_order(ALICE, Side::Sell, sell)));
    assert_done(&events, id, DoneReason::ExposureCap, "0.5");
    assert_eq!(h.core.open_interest(&sym(PERP)).unwrap().0, d("1"));
    assert_restores(&h);
}

#[test]
fn the_account_notional_cap_refuses_growth_and_lets_reductions_through() {
    let mut h = alice_short_bob_long();
    let cap = |account, cap: Option<&str>| Command::SetNotionalCap {
        account,
        asset: code("USDT"),
        cap: cap.map(d),
    };
    // A default of 60,000 for every account; Bob's own 40,000 replaces it.
    h.ok(cap(None, Some("60000")));
    h.ok(cap(Some(BOB), Some("40000")));
    assert_eq!(
        h.core.notional(BOB, &code("USDT")),
        Some((d("50000"), Some(d("40000"))))
    );
    // Bob, at 50,000 of notional, may not grow at all; Alice may add 10,000
    // (a resting order counts at its limit price).
    assert_eq!(
        h.rejected(place(BOB, Side::Buy, "50000", "0.1")),
        RejectReason::AccountNotionalCap
    );
    assert_eq!(
        h.rejected(place(ALICE, Side::Sell, "51000", "0.2")),
        RejectReason::AccountNotionalCap
    );
    h.ok(place(ALICE, Side::Sell, "51000", "0.19"));
    // Reducing is never capped: Bob sells half into Carol's bid.
    h.ok(place(CAROL, Side::Buy, "50000", "0.5"));
    h.ok(place(BOB, Side::Sell, "50000", "0.5"));
    assert_eq!(size(&h, BOB), d("0.5"));
    // A taker is stopped fill by fill: Carol, long 0.5 (25,000) under the
    // 60,000 default, buys into Dave's two asks: all of the first (15,000),
    // then what 20,000 buys at 50,100.
    h.deposit(DAVE, "USDT", "100000");
    h.ok(place(DAVE, Side::Sell, "50000", "0.3"));
    h.ok(place(DAVE, Side::Sell, "50100", "0.5"));
    let buy = OrderType::Market {
        size: MarketSize::Base(d("1")),
    };
    let (id, events) = h.ok(Command::PlaceOrder(perp_order(CAROL, Side::Buy, buy)));
    assert_done(&events, id, DoneReason::ExposureCap, "0.6992");
    let (notional, _) = h.core.notional(CAROL, &code("USDT")).unwrap();
    assert!(notional.0 <= d("60000").0, "{notional:?}");
    // Removing Bob's own cap puts him under the default.
    h.ok(cap(Some(BOB), None));
    assert_eq!(
        h.core.notional(BOB, &code("USDT")).unwrap().1,
        Some(d("60000"))
    );
    assert_eq!(
        h.rejected(cap(Some(AccountId(99)), Some("1"))),
        RejectReason::UnknownAccount
    );
    assert_restores(&h);
}

#[test]
fn withdrawals_leave_what_unrealized_losses_need() {
    let mut h = alice_short_bob_long();
    next_index(&mut h, "52000");
    let available = h.available(ALICE, "USDT");
    let withdraw = |amount: u64| Command::RequestWithdrawal {
        account: ALICE,
        asset: code("USDT"),
        amount: Dec::from_minor(i128::from(amount), 6),
    };
    // Alice is 2,000 behind at the mark.
    assert_eq!(
        h.rejected(withdraw(available - 1_999 * USDT)),
        RejectReason::InsufficientFunds
    );
    h.ok(withdraw(available - 2_000 * USDT));
    assert_restores(&h);
}

#[test]
fn leverage_changes_move_the_held_margin() {
    let mut h = alice_short_bob_long();
    h.ok(Command::SetAccountTier {
        account: BOB,
        tier: LeverageTier::Advanced,
    });
    let set = |leverage| Command::SetLeverage {
        account: BOB,
        market: sym(PERP),
        leverage,
    };
    let available = h.available(BOB, "USDT");
    h.ok(set(20));
    assert_eq!(h.held(BOB, "USDT"), 2_500 * USDT);
    assert_eq!(h.available(BOB, "USDT"), available + 7_500 * USDT);
    h.ok(set(2));
    assert_eq!(h.held(BOB, "USDT"), 25_000 * USDT);
    // Dave, short 0.5 with 20,000, cannot hold it at 1x (25,000) but can at 2x.
    h.deposit(DAVE, "USDT", "20000");
    h.ok(place(DAVE, Side::Sell, "50000", "0.5"));
    h.ok(place(CAROL, Side::Buy, "50000", "0.5"));
    let dave = |leverage| Command::SetLeverage {
        account: DAVE,
        market: sym(PERP),
        leverage,
    };
    assert_eq!(h.rejected(dave(1)), RejectReason::InsufficientMargin);
    h.ok(dave(2));
    assert_eq!(h.held(DAVE, "USDT"), 12_500 * USDT);
    assert_restores(&h);
}

#[test]
fn the_mark_is_the_median_of_index_book_and_last_trade_held_near_the_index() {
    let mut h = alice_short_bob_long();
    // The book at 50,100 / 50,300 (mid 50,200); the last trade 50,000; the basis
    // is held within 0.5% (250) of the index.
    h.ok(place(CAROL, Side::Buy, "50100", "0.1"));
    h.ok(place(ALICE, Side::Sell, "50300", "0.2"));
    next_index(&mut h, "50000");
    let mark = |h: &H| h.core.perpetual(&sym(PERP)).unwrap().mark.unwrap();
    // median(50,000, 50,200, 50,000)
    assert_eq!(mark(&h), d("50000"));
    // A trade at 50,300 (held to 50,250): median(50,000, 50,200, 50,250).
    h.ok(place(BOB, Side::Buy, "50300", "0.1"));
    next_index(&mut h, "50000");
    assert_eq!(mark(&h), d("50200"));
}

fn sliced(
    account: AccountId,
    side: Side,
    lower: &str,
    upper: &str,
    count: u32,
    total: &str,
) -> NewSliced {
    NewSliced {
        account,
        market: sym(PERP),
        side,
        lower_price: d(lower),
        upper_price: d(upper),
        count,
        total_quantity: d(total),
        post_only: false,
        client_order_id: None,
    }
}

fn bracket_order(account: AccountId, side: Side, entry: &str, qty: &str, exit: &str) -> Command {
    Command::PlaceBracket(NewBracket {
        account,
        market: sym(PERP),
        side,
        entry_price: d(entry),
        quantity: d(qty),
        exit_price: d(exit),
        client_order_id: None,
    })
}

#[test]
fn a_sliced_order_on_a_perpetual_holds_margin_for_every_child() {
    let mut h = market();
    // 0.1 at each of 50,000, 50,500 and 51,000: 15,150 at 5x plus the worst fee
    // (0.2%), held as the position's margin; the children hold nothing of their own.
    let (parent, events) = h.ok(Command::PlaceSliced(sliced(
        ALICE,
        Side::Sell,
        "50000",
        "51000",
        3,
        "0.3",
    )));
    let children: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            Event::OrderAccepted {
                order,
                parent: Some(p),
                held,
                ..
            } if p.0 == parent => {
                assert_eq!(*held, Dec::ZERO);
                Some(order.0)
            }
            _ => None,
        })
        .collect();
    assert_eq!(children.len(), 3, "{events:#?}");
    assert_eq!(h.held(ALICE, "USDT"), 3_060_300_000);
    // Bob takes the first child and half the second.
    let (_, events) = h.ok(place(BOB, Side::Buy, "50500", "0.15"));
    assert_eq!(trades(&events).len(), 2);
    assert_eq!(size(&h, ALICE), d("-0.15"));
    assert_done(&events, children[0], DoneReason::Filled, "0.1");
    // Cancelling the parent cancels what is left, and releases its margin down
    // to the position's: 0.15 × 50,333.33 at 5x.
    h.ok(cancel(ALICE, parent));
    assert!(children.iter().all(|&c| !h.is_open(ALICE, c)));
    let alice = position(&h, ALICE).expect("a position");
    let held = Dec::from_minor(i128::from(h.held(ALICE, "USDT")), 6);
    assert_eq!(held, alice.initial_margin);
    // The margin is checked for the children together: Dave's 1,000 carries 0.1
    // at 49,000 (980 at 5x and a 9.80 fee), not another 0.1 at 49,500 beside it.
    h.deposit(DAVE, "USDT", "1000");
    let two = sliced(DAVE, Side::Buy, "49000", "49500", 2, "0.2");
    assert_eq!(
        h.rejected(Command::PlaceSliced(two)),
        RejectReason::InsufficientMargin
    );
    h.ok(Command::PlaceSliced(sliced(
        DAVE,
        Side::Buy,
        "49000",
        "49000",
        1,
        "0.1",
    )));
    // A stale index leaves only reduce-only slices.
    h.time_ms += STALE_MS;
    h.ok(Command::ClockTick);
    let more = sliced(ALICE, Side::Sell, "50000", "51000", 2, "0.2");
    assert_eq!(
        h.rejected(Command::PlaceSliced(more)),
        RejectReason::MarketReduceOnly
    );
    assert_restores(&h);
}

#[test]
fn a_reduce_only_sliced_order_scales_out_of_a_position() {
    let mut h = alice_short_bob_long();
    let held = h.held(BOB, "USDT");
    let out = |account, side, total| {
        Command::PlaceSlicedReduceOnly(sliced(account, side, "51000", "52000", 2, total))
    };
    // All the children together may not outgrow the position, nor grow it.
    assert_eq!(
        h.rejected(out(BOB, Side::Sell, "1.5")),
        RejectReason::WouldIncreasePosition
    );
    assert_eq!(
        h.rejected(out(BOB, Side::Buy, "1")),
        RejectReason::WouldIncreasePosition
    );
    assert_eq!(
        h.rejected(out(CAROL, Side::Sell, "1")),
        RejectReason::NoPosition
    );
    let spot = NewSliced {
        market: sym(BTC_USDT),
        ..sliced(BOB, Side::Sell, "51000", "52000", 2, "1")
    };
    assert_eq!(
        h.rejected(Command::PlaceSlicedReduceOnly(spot)),
        RejectReason::NotAPerpetual
    );
    // A stale index still lets a position be scaled out of.
    h.time_ms += STALE_MS;
    h.ok(Command::ClockTick);
    let (parent, events) = h.ok(out(BOB, Side::Sell, "1"));
    // 0.5 at 51,000 and 0.5 at 52,000 add only their worst fee (0.2% of 51,500).
    assert_eq!(h.held(BOB, "USDT"), held + 103 * USDT, "{events:#?}");
    // Alice's reduce-only buy takes both; Bob is flat and the parent is done.
    let (_, events) = h.ok(reduce_only(ALICE, Side::Buy, "52000", "1"));
    assert_eq!(trades(&events).len(), 2);
    assert_eq!((size(&h, ALICE), size(&h, BOB)), (Dec::ZERO, Dec::ZERO));
    assert_eq!(h.rejected(cancel(BOB, parent)), RejectReason::UnknownOrder);
    assert_restores(&h);
}

#[test]
fn a_bracket_on_a_perpetual_exits_with_a_reduce_only_order() {
    let mut h = market();
    h.ok(place(ALICE, Side::Sell, "50000", "1"));
    // Bob's entry takes Alice's 1 at once; his exit rests reduce-only for it at
    // 52,000, adding only its worst fee (0.2%) to his position's 10,000.
    let (entry, events) = h.ok(bracket_order(BOB, Side::Buy, "50000", "1", "52000"));
    let exit = bracket_exit(&events, entry).expect("the exit is placed");
    assert_eq!(size(&h, BOB), d("1"));
    assert_eq!(h.held(BOB, "USDT"), (10_000 + 104) * USDT);
    assert_restores(&h);
    // Carol lifts the exit: Bob is flat, and the report's P&L is 51,948 (the exit
    // less the maker's 0.1%) less 50,100 (the entry and the taker's 0.2%).
    let (_, events) = h.ok(place(CAROL, Side::Buy, "52000", "1"));
    assert_done(&events, exit, DoneReason::Filled, "1");
    assert_eq!(size(&h, BOB), Dec::ZERO);
    let pnl = events.iter().find_map(|e| match e {
        Event::BracketPnl { realized_pnl, .. } => Some(*realized_pnl),
        _ => None,
    });
    assert_eq!(pnl, Some(d("1848")));
    // The entry is checked as a new order: margin, and a profitable exit.
    h.deposit(DAVE, "USDT", "1000");
    let big = bracket_order(DAVE, Side::Buy, "50000", "1", "52000");
    assert_eq!(h.rejected(big), RejectReason::InsufficientMargin);
    let wrong_way = bracket_order(DAVE, Side::Buy, "50000", "0.01", "49000");
    assert_eq!(h.rejected(wrong_way), RejectReason::InvalidBracket);
    assert_restores(&h);
}

#[test]
fn a_bracket_exit_covers_no_more_than_the_position_left() {
    let mut h = market();
    h.ok(place(ALICE, Side::Sell, "50000", "0.4"));
    // Bob's entry for 1 takes 0.4 and rests for the rest.
    let (entry, _) = h.ok(bracket_order(BOB, Side::Buy, "50000", "1", "52000"));
    // He sells 0.3 of it to Carol's bid above his entry, then the entry ends
    // by its fill.
    h.ok(place(CAROL, Side::Buy, "50100", "0.3"));
    h.ok(reduce_only(BOB, Side::Sell, "50100", "0.3"));
    assert_eq!(size(&h, BOB), d("0.1"));
    let (_, events) = h.ok(place(ALICE, Side::Sell, "50000", "0.6"));
    assert_done(&events, entry, DoneReason::Filled, "1");
    // The exit reduces what is there (0.7), not the whole entry fill (1).
    let exit = events.iter().find_map(|e| match e {
        Event::OrderAccepted {
            order,
            parent: Some(p),
            order_type: OrderType::Limit { quantity, .. },
            ..
        } if p.0 == entry && order.0 != entry => Some(*quantity),
        _ => None,
    });
    assert_eq!(exit, Some(d("0.7")), "{events:#?}");
    assert_restores(&h);
}

#[test]
fn a_bracket_whose_position_is_gone_when_its_entry_ends_gets_no_exit() {
    let mut h = market();
    h.deposit(DAVE, "USDT", "100000");
    // Dave's entry sells 0.2 at 50,000; Carol takes 0.1 of it.
    let (entry, _) = h.ok(bracket_order(DAVE, Side::Sell, "50000", "0.2", "48000"));
    h.ok(place(CAROL, Side::Buy, "50000", "0.1"));
    assert_eq!(size(&h, DAVE), d("-0.1"));
    // He buys it back from Alice at 49,000, then sends a buy that cancels his own
    // entry (self-trade prevention, cancelling the maker): the entry ends with a
    // fill while Dave has no position for its exit to reduce.
    h.ok(place(ALICE, Side::Sell, "49000", "0.1"));
    h.ok(reduce_only(DAVE, Side::Buy, "49000", "0.1"));
    let buy = NewOrder {
        stp: StpMode::CancelMaker,
        ..perp_order(DAVE, Side::Buy, gtc("50000", "0.1"))
    };
    let (_, events) = h.ok(Command::PlaceOrder(buy));
    let rejected = events.iter().find_map(|e| match e {
        Event::BracketExitRejected { entry: e, reason } if e.0 == entry => Some(*reason),
        _ => None,
    });
    assert_eq!(rejected, Some(RejectReason::NoPosition), "{events:#?}");
    assert_restores(&h);
}

/// BTC-PERP and three more perpetuals like it, each indexed at `price` now.
#[test]
fn an_account_with_many_positions_is_margined_at_the_marks_of_now() {
    let mut h = market();
    let symbols = four_perps(&mut h);
    index_all(&mut h, &symbols, "50000");
    h.deposit(DAVE, "USDT", "5000");
    // Dave is long 0.1 on each: 4 × 1,000 held at 5x, 4 × 10 of fees; 960 left.
    for s in symbols {
        let on = |account, side| NewOrder {
            market: s,
            ..perp_order(account, side, gtc("50000", "0.1"))
        };
        h.ok(Command::PlaceOrder(on(ALICE, Side::Sell)));
        h.ok(Command::PlaceOrder(on(DAVE, Side::Buy)));
    }
    assert_eq!(h.available(DAVE, "USDT"), 960 * USDT);
    // At 49,000 he has lost 400: 560 to spend. 0.05 at 49,000 needs 494.90.
    index_all(&mut h, &symbols, "49000");
    let buy = |qty| place(DAVE, Side::Buy, "49000", qty);
    let (id, _) = h.ok(buy("0.05"));
    h.ok(cancel(DAVE, id));
    // 0.06 needs 593.88: refused, however often it is asked (his figure is kept
    // between orders while no mark moves).
    assert_eq!(h.rejected(buy("0.06")), RejectReason::InsufficientMargin);
    assert_eq!(h.rejected(buy("0.06")), RejectReason::InsufficientMargin);
    // One market back at 50,000 gives back 100: 660 to spend, and it fits.
    h.time_ms += 1_000;
    let time = h.time_ms;
    h.ok(Command::SetIndexPrice {
        market: symbols[3],
        price: d("50000"),
        source_ms: time,
    });
    h.ok(buy("0.06"));
    // A fill changes his positions: what he may spend follows at once.
    h.ok(place(ALICE, Side::Buy, "49000", "0.1"));
    h.ok(reduce_only(DAVE, Side::Sell, "49000", "0.1"));
    assert_restores(&h);
}

#[test]
fn perpetual_orders_need_an_index_and_reduce_only_needs_a_perpetual() {
    // Before any index there is no mark to margin against.
    let mut h = with_perp();
    assert_eq!(
        h.rejected(place(ALICE, Side::Buy, "49000", "1")),
        RejectReason::NoIndexPrice
    );
    // A reduce-only order on a spot market.
    let spot = NewOrder {
        market: sym(BTC_USDT),
        ..perp_order(ALICE, Side::Buy, gtc("100", "1"))
    };
    assert_eq!(
        h.rejected(Command::PlaceReduceOnly(spot)),
        RejectReason::NotAPerpetual
    );
}

/// Dave (advanced, 20x, no fees on BTC-PERP) holds 2,500 and buys 1 BTC-PERP from
/// Carol at 50,000: all of it is held as margin; his maintenance is 0.4%.
fn dave_long_at_20x() -> H {
    let mut h = market();
    h.deposit(DAVE, "USDT", "2500");
    h.ok(Command::SetAccountTier {
        account: DAVE,
        tier: LeverageTier::Advanced,
    });
    h.ok(Command::SetAccountFees {
        account: DAVE,
        market: sym(PERP),
        fees: Some(FeeRates {
            maker_ppm: 0,
            taker_ppm: 0,
        }),
    });
    h.ok(place(CAROL, Side::Sell, "50000", "1"));
    h.ok(place(DAVE, Side::Buy, "50000", "1"));
    assert_eq!(
        (h.held(DAVE, "USDT"), h.available(DAVE, "USDT")),
        (2_500 * USDT, 0)
    );
    h
}

fn liquidation_events(events: &[Event]) -> Vec<Event> {
    events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::LiquidationStarted { .. }
                    | Event::LiquidationStep { .. }
                    | Event::LiquidationEnded { .. }
            )
        })
        .cloned()
        .collect()
}

#[test]
fn a_partial_liquidation_restores_the_margin() {
    let mut h = dave_long_at_20x();
    // Bob bids 0.5 at 47,600; Carol 1 at 47,000.
    h.ok(place(BOB, Side::Buy, "47600", "0.5"));
    h.ok(place(CAROL, Side::Buy, "47000", "1"));
    // At 47,650 Dave has 2,500 − 2,350 = 150 against a maintenance of 190.6.
    h.time_ms += 1_000;
    let (_, events) = h.ok(index("47650", h.time_ms));
    // His bankruptcy price is 47,650 − 150 / 1 = 47,500: Bob's bid is above it.
    // Each lot closed frees 0.4% of its value (no fee): 40.6 needs 0.2131, and
    // twice that is sold; Carol's bid, below the bankruptcy price, is not touched.
    let steps = liquidation_events(&events);
    assert_eq!(
        steps,
        [
            Event::LiquidationStarted {
                account: DAVE,
                asset: code("USDT"),
                equity: d("150"),
                maintenance: d("190.6"),
            },
            Event::LiquidationStep {
                account: DAVE,
                market: sym(PERP),
                stage: LiquidationStage::Reduce,
                quantity: d("0.4262"),
                price: Some(d("47500")),
            },
            steps[2].clone(),
        ],
    );
    assert!(
        matches!(steps[2], Event::LiquidationEnded { account, .. } if account == DAVE),
        "{steps:#?}"
    );
    assert_eq!(size(&h, DAVE), d("0.5738"));
    assert_eq!(size(&h, CAROL), d("-1"));
    let margin = h.core.margin(DAVE, &code("USDT")).unwrap();
    assert!(margin.equity.0 >= margin.maintenance.0, "{margin:?}");
    assert_eq!(h.core.insurance_positions(&code("USDT")), []);
    assert_restores(&h);
}

#[test]
fn the_insurance_fund_takes_over_what_the_book_cannot_take() {
    let mut h = dave_long_at_20x();
    // Only Carol's bid at 47,000, below Dave's bankruptcy price.
    h.ok(place(CAROL, Side::Buy, "47000", "1"));
    h.time_ms += 1_000;
    let (_, events) = h.ok(index("47650", h.time_ms));
    let steps = liquidation_events(&events);
    assert_eq!(
        steps[1],
        Event::LiquidationStep {
            account: DAVE,
            market: sym(PERP),
            stage: LiquidationStage::TakeOver,
            quantity: d("1"),
            price: Some(d("47500")),
        },
        "{steps:#?}"
    );
    assert!(matches!(steps[2], Event::LiquidationEnded { account, .. } if account == DAVE));
    assert!(events.contains(&Event::InsurancePosition {
        market: sym(PERP),
        size: d("1"),
        cost: d("47500"),
    }));
    // Dave's 2,500 went with the 2,500 he lost at 47,500; the fund holds his
    // long, worth 150 more at the mark than it paid.
    assert!(position(&h, DAVE).is_none());
    assert_eq!((h.available(DAVE, "USDT"), h.held(DAVE, "USDT")), (0, 0));
    assert_eq!(
        h.core.insurance_positions(&code("USDT")),
        [(sym(PERP), d("1"), d("47500"))]
    );
    assert_eq!(h.core.insurance_fund(&code("USDT")), Some(0));
    // Carol's short is now against the fund: open interest is still 1.
    assert_eq!(h.core.open_interest(&sym(PERP)).unwrap().0, d("1"));
    assert_eq!(size(&h, CAROL), d("-1"));
    assert_restores(&h);
}

/// Dave (advanced, 20x) buys 0.5: 0.2 from Bob at 50,000 and 0.3 from Carol at
/// 50,100, with 2,000 of collateral.
fn dave_long_from_bob_and_carol() -> H {
    let mut h = market();
    h.deposit(DAVE, "USDT", "2000");
    h.ok(Command::SetAccountTier {
        account: DAVE,
        tier: LeverageTier::Advanced,
    });
    h.ok(place(BOB, Side::Sell, "50000", "0.2"));
    h.ok(place(CAROL, Side::Sell, "50100", "0.3"));
    h.ok(place(DAVE, Side::Buy, "50100", "0.5"));
    assert_eq!(size(&h, DAVE), d("0.5"));
    h
}

#[test]
fn auto_deleveraging_closes_the_most_profitable_opposite_positions_first() {
    let mut h = dave_long_from_bob_and_carol();
    // Two 5% falls, to 45,125, with no bids: Dave's equity is below zero and the
    // fund, empty, cannot take him over.
    next_index(&mut h, "47500");
    h.time_ms += 1_000;
    let (_, events) = h.ok(index("45125", h.time_ms));
    let steps = liquidation_events(&events);
    let Event::LiquidationStarted { equity, .. } = steps[0] else {
        panic!("{steps:#?}");
    };
    assert!(equity.0.is_sign_negative(), "{steps:#?}");
    let Event::LiquidationStep {
        stage: LiquidationStage::Deleverage,
        quantity,
        price: Some(price),
        ..
    } = steps[1]
    else {
        panic!("{steps:#?}");
    };
    assert_eq!(quantity, d("0.5"));
    // Carol's short from 50,100 gains most per lot: she goes first, then Bob.
    let deleveraged: Vec<(AccountId, Dec, Dec, AccountId)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Deleveraged {
                account,
                quantity,
                price,
                counterparty,
                ..
            } => Some((*account, *quantity, *price, *counterparty)),
            _ => None,
        })
        .collect();
    assert_eq!(
        deleveraged,
        [(CAROL, d("0.3"), price, DAVE), (BOB, d("0.2"), price, DAVE)]
    );
    // The bankruptcy price is above the mark: the loss Dave cannot pay is taken
    // by the counterparties' price, not by the fund.
    assert!(price.0 > d("45125").0, "{price:?}");
    for account in [BOB, CAROL, DAVE] {
        assert!(position(&h, account).is_none());
    }
    assert_eq!(h.core.insurance_fund(&code("USDT")), Some(0));
    assert_eq!(h.core.open_interest(&sym(PERP)).unwrap().0, d("0"));
    assert_restores(&h);
}

#[test]
fn a_funded_insurance_fund_takes_over_an_account_below_zero() {
    let mut h = dave_long_from_bob_and_carol();
    h.ok(Command::FundInsurance {
        asset: code("USDT"),
        amount: d("10000"),
        reference: "seed-fund".parse().unwrap(),
    });
    next_index(&mut h, "47500");
    h.time_ms += 1_000;
    let (_, events) = h.ok(index("45125", h.time_ms));
    let steps = liquidation_events(&events);
    assert!(
        matches!(
            steps[1],
            Event::LiquidationStep {
                stage: LiquidationStage::TakeOver,
                ..
            }
        ),
        "{steps:#?}"
    );
    // Dave's equity was below zero: he closed at his bankruptcy price, above
    // the mark, so the fund holds his long at a loss it carries.
    let Event::LiquidationStep {
        price: Some(price), ..
    } = steps[1]
    else {
        panic!("{steps:#?}");
    };
    assert!(price.0 > d("45125").0, "{price:?}");
    assert_eq!((h.available(DAVE, "USDT"), h.held(DAVE, "USDT")), (0, 0));
    assert_eq!(
        h.core.insurance_fund(&code("USDT")),
        Some(10_000 * i128::from(USDT))
    );
    let (_, fund_size, fund_cost) = h.core.insurance_positions(&code("USDT"))[0];
    assert_eq!(
        (fund_size, fund_cost),
        (d("0.5"), Dec(price.0 * d("0.5").0))
    );
    assert_eq!(size(&h, BOB), d("-0.2"));
    assert_restores(&h);
}

#[test]
fn funding_moves_between_longs_and_shorts_at_each_interval() {
    let mut h = alice_short_bob_long();
    let funding = h.core.funding(&sym(PERP)).unwrap();
    // The first boundary of 8 hours after the perpetual was created.
    let interval = 8 * 3_600_000;
    assert_eq!(funding.next_ms % interval, 0);
    assert!(funding.next_ms > h.time_ms);
    // Carol bids 0.5 at 50,500: the impact bid (25,000 USDT at 125x) stands 1%
    // above the index. The next index samples it (samples are at least 5 s of
    // command time apart).
    let (carol_bid, _) = h.ok(place(CAROL, Side::Buy, "50500", "0.5"));
    h.time_ms += 5_000;
    next_index(&mut h, "50000");
    assert_eq!(h.core.funding(&sym(PERP)).unwrap().samples, 2);
    let (alice, bob) = (h.available(ALICE, "USDT"), h.available(BOB, "USDT"));
    h.time_ms = funding.next_ms;
    let (_, events) = h.ok(index("50000", h.time_ms));
    // Premium: the mean of 0 (an empty book), 1% and 1%. The rate would be that
    // less the 0.05% clamp, but the cap is 75% × (0.8% − 0.4%) = 0.3%.
    assert!(events.contains(&Event::FundingRound {
        market: sym(PERP),
        at_ms: funding.next_ms,
        rate: d("0.003"),
        premium: d("0.006666666"),
        mark: d("50000"),
    }));
    // Bob's long pays 0.3% of 50,000 to Alice's short.
    let paid: Vec<(AccountId, Dec)> = events
        .iter()
        .filter_map(|e| match e {
            Event::FundingPaid {
                account, amount, ..
            } => Some((*account, *amount)),
            _ => None,
        })
        .collect();
    assert_eq!(paid, [(BOB, d("-150")), (ALICE, d("150"))]);
    assert_eq!(h.available(BOB, "USDT"), bob - 150 * USDT);
    assert_eq!(h.available(ALICE, "USDT"), alice + 150 * USDT);
    let after = h.core.funding(&sym(PERP)).unwrap();
    assert_eq!(
        (
            after.next_ms,
            after.last_rate,
            after.under_way,
            after.rounds
        ),
        (funding.next_ms + interval, d("0.003"), None, 1)
    );
    // With the bid gone, the next round's only sample is 0: it pays the
    // interest, 0.01%.
    h.ok(cancel(CAROL, carol_bid));
    h.time_ms = after.next_ms;
    let (_, events) = h.ok(index("50000", h.time_ms));
    assert!(events.iter().any(|e| matches!(
        e,
        Event::FundingPaid { account, amount, .. } if *account == BOB && *amount == d("-5")
    )));
    assert_eq!(h.core.insurance_fund(&code("USDT")), Some(0));
    assert_restores(&h);
}

#[test]
fn a_full_liquidation_closes_the_whole_position() {
    let mut h = dave_long_at_20x();
    h.ok(place(BOB, Side::Buy, "47550", "1"));
    // At 47,550: equity 50 against 190.2; all of the position goes.
    h.time_ms += 1_000;
    let (_, events) = h.ok(index("47550", h.time_ms));
    let steps = liquidation_events(&events);
    assert_eq!(
        steps[1],
        Event::LiquidationStep {
            account: DAVE,
            market: sym(PERP),
            stage: LiquidationStage::Reduce,
            quantity: d("1"),
            price: Some(d("47500")),
        },
        "{steps:#?}"
    );
    assert!(matches!(steps.last(), Some(Event::LiquidationEnded { .. })));
    assert!(position(&h, DAVE).is_none());
    assert_eq!(h.available(DAVE, "USDT"), 50 * USDT);
    assert_eq!(h.core.insurance_fund(&code("USDT")), Some(0));
    assert_restores(&h);
}

#[test]
fn a_mark_that_crosses_no_trigger_checks_no_account() {
    let mut h = dave_long_at_20x();
    // 48,000 leaves Dave 500 against 192: healthy, nothing happens.
    h.time_ms += 1_000;
    let (_, events) = h.ok(index("48000", h.time_ms));
    assert!(liquidation_events(&events).is_empty(), "{events:#?}");
    // Carol, short 1 from 50,000, is far from hers.
    assert!(position(&h, CAROL).is_some());
    assert_restores(&h);
}

fn stop_market(trigger: &str, qty: &str) -> OrderType {
    OrderType::StopMarket {
        trigger_price: d(trigger),
        size: MarketSize::Base(d(qty)),
    }
}

fn stop_limit(trigger: &str, price: &str, qty: &str) -> OrderType {
    OrderType::StopLimit {
        trigger_price: d(trigger),
        price: d(price),
        quantity: d(qty),
        time_in_force: TimeInForce::Gtc,
    }
}

fn done_reason(events: &[Event], order: u64) -> Option<DoneReason> {
    done(events, order).map(|(r, _)| r)
}

#[test]
fn a_reduce_only_stop_loss_closes_the_long_when_the_last_price_falls() {
    let mut h = alice_short_bob_long();
    let held = h.held(BOB, "USDT");
    let stop = Command::PlaceReduceOnly(perp_order(BOB, Side::Sell, stop_market("49000", "1")));
    let (id, _) = h.ok(stop);
    assert_eq!(h.held(BOB, "USDT"), held, "a waiting stop holds no margin");
    assert_restores(&h);
    // Carol bids 49,000 and 48,900; Alice sells into the first: the last price
    // reaches the trigger and Bob's stop sells into the second.
    h.ok(place(CAROL, Side::Buy, "49000", "1"));
    h.ok(place(CAROL, Side::Buy, "48900", "1"));
    let (_, events) = h.ok(place(ALICE, Side::Sell, "49000", "1"));
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::OrderTriggered { order, .. } if order.0 == id)));
    assert_eq!(done_reason(&events, id), Some(DoneReason::Filled));
    assert_eq!(size(&h, BOB), Dec::ZERO, "the stop-loss closed the long");
    assert_eq!(size(&h, CAROL), d("2"));
    assert_restores(&h);
}

#[test]
fn stops_a_liquidation_trade_reaches_trigger_in_the_same_command() {
    let mut h = dave_long_at_20x();
    h.ok(place(BOB, Side::Buy, "47600", "0.5"));
    // Alice's sell stop waits for a last price at or below 47,700.
    let stop = Command::PlaceOrder(perp_order(
        ALICE,
        Side::Sell,
        stop_limit("47700", "48000", "0.1"),
    ));
    let (id, _) = h.ok(stop);
    // The index at 47,650 liquidates part of Dave's long into Bob's bid at
    // 47,600: that trade triggers her stop in the index's own command.
    h.time_ms += 1_000;
    let (_, events) = h.ok(index("47650", h.time_ms));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::OrderTriggered { order, .. } if order.0 == id)),
        "{events:#?}"
    );
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::OrderRested { order, .. } if order.0 == id)));
    assert_restores(&h);
}

#[test]
fn a_reduce_only_stop_needs_a_position_it_reduces() {
    let mut h = alice_short_bob_long();
    let buy = |who| Command::PlaceReduceOnly(perp_order(who, Side::Buy, stop_market("51000", "1")));
    assert_eq!(h.rejected(buy(CAROL)), RejectReason::NoPosition);
    assert_eq!(h.rejected(buy(BOB)), RejectReason::WouldIncreasePosition);
    h.ok(buy(ALICE));
    // Perpetuals are sized in contracts: no stop with a quote budget.
    let budget = OrderType::StopMarket {
        trigger_price: d("51000"),
        size: MarketSize::Quote(d("1000")),
    };
    let quote = Command::PlaceOrder(perp_order(CAROL, Side::Buy, budget));
    assert_eq!(h.rejected(quote), RejectReason::UnsupportedOrderType);
}

#[test]
fn a_stop_limit_waits_without_margin_and_rests_with_it_once_triggered() {
    let mut h = alice_short_bob_long();
    let before = h.held(CAROL, "USDT");
    let (id, _) = h.ok(Command::PlaceOrder(perp_order(
        CAROL,
        Side::Buy,
        stop_limit("50500", "50400", "2"),
    )));
    assert_eq!(h.held(CAROL, "USDT"), before);
    assert_restores(&h);
    // Alice buys from Bob's offer at 50,500: Carol's stop triggers, finds no
    // offer at 50,400 or below, and rests with its margin held.
    h.ok(reduce_only(BOB, Side::Sell, "50500", "1"));
    let (_, events) = h.ok(reduce_only(ALICE, Side::Buy, "50500", "1"));
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::OrderTriggered { order, .. } if order.0 == id)));
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::OrderRested { order, .. } if order.0 == id)));
    // 2 × 50,400 at 5x plus the worst fee (0.2%): 20,160 + 201.6.
    let margin = 20_160 * USDT + 201_600_000;
    assert_eq!(h.held(CAROL, "USDT") - before, margin);
    assert_restores(&h);
    // Cancelled, it releases that margin.
    h.ok(Command::CancelOrder {
        account: CAROL,
        order: OrderRef::Id(OrderId(id)),
    });
    assert_eq!(h.held(CAROL, "USDT"), before);
}

#[test]
fn a_stop_the_margin_cannot_carry_at_its_trigger_ends_with_what_it_could_take() {
    let mut h = alice_short_bob_long();
    let poor = AccountId(9);
    h.deposit(poor, "USDT", "100");
    // A stop-limit is checked whole at its trigger, as a new limit order: it
    // ends without trading. A stop-market runs as a market order: it takes what
    // the margin carries, fill by fill, and ends there.
    let buy = |t| Command::PlaceOrder(perp_order(poor, Side::Buy, t));
    let (limit, _) = h.ok(buy(stop_limit("50500", "50700", "1")));
    let (market, _) = h.ok(buy(stop_market("50500", "1")));
    h.ok(reduce_only(BOB, Side::Sell, "50500", "0.5"));
    h.ok(place(CAROL, Side::Sell, "50600", "1"));
    let (_, events) = h.ok(reduce_only(ALICE, Side::Buy, "50500", "0.5"));
    assert_eq!(
        done(&events, limit),
        Some((DoneReason::InsufficientMargin, Dec::ZERO))
    );
    let (reason, filled) = done(&events, market).unwrap();
    assert_eq!(reason, DoneReason::InsufficientMargin);
    assert!(filled > Dec::ZERO && filled < d("0.01"), "{filled}");
    assert_eq!(size(&h, poor), filled);
    assert_restores(&h);
}

#[test]
fn a_stop_triggered_on_a_stale_index_ends_unless_it_reduces() {
    let mut h = alice_short_bob_long();
    let (id, _) = h.ok(Command::PlaceOrder(perp_order(
        CAROL,
        Side::Buy,
        stop_market("50100", "1"),
    )));
    h.time_ms += STALE_MS;
    h.ok(Command::ClockTick);
    h.ok(reduce_only(BOB, Side::Sell, "50100", "0.5"));
    let (_, events) = h.ok(reduce_only(ALICE, Side::Buy, "50100", "0.5"));
    assert_eq!(done(&events, id), Some((DoneReason::IndexStale, Dec::ZERO)));
    assert!(position(&h, CAROL).is_none());
}

#[test]
fn an_iceberg_on_a_perpetual_shows_a_slice_and_holds_margin_for_all_of_it() {
    let mut h = market();
    let iceberg = OrderType::Limit {
        price: d("50000"),
        quantity: d("2"),
        time_in_force: TimeInForce::Gtc,
        post_only: false,
        display_quantity: Some(d("0.5")),
    };
    let (id, events) = h.ok(Command::PlaceOrder(perp_order(ALICE, Side::Sell, iceberg)));
    assert!(events.iter().any(|e| matches!(e, Event::OrderRested { visible, hidden, .. } if *visible == d("0.5") && *hidden == d("1.5"))));
    // The whole 2 at 5x with the worst fee.
    assert_eq!(h.held(ALICE, "USDT"), (20_000 + 200) * USDT);
    let (_, events) = h.ok(place(BOB, Side::Buy, "50000", "0.5"));
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::OrderRefilled { order, .. } if order.0 == id)));
    assert_eq!(size(&h, ALICE), d("-0.5"));
    assert_restores(&h);
}

fn amend_to(account: AccountId, id: u64, price: Option<&str>, qty: Option<&str>) -> Command {
    Command::AmendOrder {
        account,
        order: OrderRef::Id(OrderId(id)),
        price: price.map(d),
        quantity: qty.map(d),
    }
}

#[test]
fn amending_a_perpetual_order_moves_its_margin_with_its_terms() {
    let mut h = market();
    let before = h.held(CAROL, "USDT");
    let (id, _) = h.ok(place(CAROL, Side::Buy, "49000", "1"));
    // 49,000 at 5x plus the worst fee (0.2%).
    assert_eq!(h.held(CAROL, "USDT") - before, (9_800 + 98) * USDT);
    let (_, events) = h.ok(amend_to(CAROL, id, Some("48000"), Some("2")));
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::OrderAmended { requeued: true, .. })));
    assert_eq!(h.held(CAROL, "USDT") - before, (19_200 + 192) * USDT);
    // Smaller at the same price keeps its place and releases the difference.
    let (_, events) = h.ok(amend_to(CAROL, id, None, Some("0.5")));
    assert!(events.iter().any(|e| matches!(
        e,
        Event::OrderAmended {
            requeued: false,
            ..
        }
    )));
    assert_eq!(h.held(CAROL, "USDT") - before, (4_800 + 48) * USDT);
    assert_restores(&h);
    // A new price that crosses trades: Alice's offer at 48,500 fills it.
    h.ok(place(ALICE, Side::Sell, "48500", "0.5"));
    let (_, events) = h.ok(amend_to(CAROL, id, Some("48500"), None));
    assert_eq!(trades(&events).len(), 1);
    assert_eq!(size(&h, CAROL), d("0.5"));
    assert_restores(&h);
}

#[test]
fn an_amend_the_margin_cannot_carry_is_refused_and_changes_nothing() {
    let mut h = market();
    let poor = AccountId(9);
    h.deposit(poor, "USDT", "2000");
    let (id, _) = h.ok(place(poor, Side::Buy, "49000", "0.1"));
    let held = h.held(poor, "USDT");
    let snapshot = h.core.snapshot();
    assert_eq!(
        h.rejected(amend_to(poor, id, None, Some("1"))),
        RejectReason::InsufficientMargin
    );
    assert_eq!(h.held(poor, "USDT"), held);
    assert_eq!(
        h.core.snapshot(),
        snapshot,
        "a refused amend changes nothing"
    );
    // A reduce-only order may not outgrow its position.
    let mut h = alice_short_bob_long();
    let (id, _) = h.ok(reduce_only(BOB, Side::Sell, "51000", "0.5"));
    assert_eq!(
        h.rejected(amend_to(BOB, id, None, Some("2"))),
        RejectReason::WouldIncreasePosition
    );
    h.ok(amend_to(BOB, id, Some("50900"), Some("1")));
}
