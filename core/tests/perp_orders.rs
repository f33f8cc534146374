//! Every order type on a perpetual (issue 22): sliced and bracket orders, stops
//! (reduce-only stop-losses, stops a liquidation's trades reach, stop-limits that
//! rest with margin once triggered), icebergs, and amends that move the margin
//! with the order's terms. Every command is checked against every invariant
//! (`H::apply`).

mod common;

use common::*;
use tape_schemas::*;

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
