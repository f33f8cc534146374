//! The matcher: every order type, cancel, amend, self-trade prevention and market
//! controls (sliced and bracket orders are in `parents.rs`).

mod common;
use common::*;
use tape_schemas::*;

const USDT: u64 = 1_000_000;
const BTC: u64 = 100_000_000;

#[test]
fn price_time_priority_fills_the_best_price_first_then_the_oldest() {
    let mut h = H::new();
    let (a1, _) = h.limit(ALICE, Side::Sell, "101", "1");
    let (c1, _) = h.limit(CAROL, Side::Sell, "100", "1");
    let (a2, _) = h.limit(ALICE, Side::Sell, "100", "1");
    let (b, events) = h.limit(BOB, Side::Buy, "101", "2.5");
    assert_eq!(
        trades(&events),
        vec![
            (d("100.00"), d("1.00000000"), c1, b),
            (d("100.00"), d("1.00000000"), a2, b),
            (d("101.00"), d("0.50000000"), a1, b)
        ]
    );
    assert_done(&events, b, DoneReason::Filled, "2.50000000");
    assert!(h.is_open(ALICE, a1));
    assert_eq!(
        h.core.best_prices(&sym(BTC_USDT)),
        Some((None, Some(10_100)))
    );
}

#[test]
fn gtc_remainder_rests_and_keeps_only_the_hold_it_needs() {
    let mut h = H::new();
    h.limit(ALICE, Side::Sell, "100", "1");
    let (b, events) = h.limit(BOB, Side::Buy, "100", "3");
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::OrderRested { order, .. } if order.0 == b)));
    // 2 BTC left at 100 + 0.2% worst fee.
    assert_eq!(h.held(BOB, "USDT"), 200_400_000);
    assert_eq!(
        h.core.best_prices(&sym(BTC_USDT)),
        Some((Some(10_000), None))
    );
}

#[test]
fn ioc_fills_what_it_can_and_the_rest_is_unfilled() {
    let mut h = H::new();
    h.limit(ALICE, Side::Sell, "100", "1");
    let (b, events) = h.ok(limit(BOB, Side::Buy, "100", "3", TimeInForce::Ioc));
    assert_eq!(trades(&events).len(), 1);
    assert_done(&events, b, DoneReason::Unfilled, "1.00000000");
    assert_eq!(h.held(BOB, "USDT"), 0);
    assert!(!h.is_open(BOB, b));
}

#[test]
fn fok_that_cannot_fill_entirely_is_rejected() {
    let mut h = H::new();
    h.limit(ALICE, Side::Sell, "100", "1");
    h.limit(CAROL, Side::Sell, "101", "1");
    assert_eq!(
        h.rejected(limit(BOB, Side::Buy, "100", "1.5", TimeInForce::Fok)),
        RejectReason::FokCannotFill
    );
    let (b, events) = h.ok(limit(BOB, Side::Buy, "101", "1.5", TimeInForce::Fok));
    assert_done(&events, b, DoneReason::Filled, "1.50000000");
}

#[test]
fn fok_does_not_count_own_orders_it_would_self_trade_with() {
    let mut h = H::new();
    h.limit(BOB, Side::Sell, "100", "1");
    h.limit(ALICE, Side::Sell, "100", "1");
    assert_eq!(
        h.rejected(limit(BOB, Side::Buy, "100", "1", TimeInForce::Fok)),
        RejectReason::FokCannotFill
    );
}

#[test]
fn post_only_that_would_trade_is_rejected_and_otherwise_rests() {
    let mut h = H::new();
    h.limit(ALICE, Side::Sell, "100", "1");
    let post = |price: &str| {
        order(
            BOB,
            Side::Buy,
            OrderType::Limit {
                price: d(price),
                quantity: d("1"),
                time_in_force: TimeInForce::Gtc,
                post_only: true,
                display_quantity: None,
            },
        )
    };
    assert_eq!(h.rejected(post("100")), RejectReason::PostOnlyWouldTrade);
    let (b, _) = h.ok(post("99.99"));
    assert!(h.is_open(BOB, b));
}

#[test]
fn gtd_expires_on_the_first_command_past_its_time() {
    let mut h = H::new();
    let expires = h.time_ms + 60_000;
    let (id, _) = h.ok(limit(
        ALICE,
        Side::Buy,
        "100",
        "1",
        TimeInForce::Gtd {
            expires_at_ms: expires,
        },
    ));
    h.time_ms = expires - 1;
    let events = h.exec(Command::ClockTick);
    assert_eq!(done(&events, id), None);
    h.time_ms = expires;
    let events = h.exec(Command::ClockTick);
    assert_eq!(done(&events, id), Some((DoneReason::Expired, Dec::ZERO)));
    assert_eq!(h.held(ALICE, "USDT"), 0);
    let past = limit(
        ALICE,
        Side::Buy,
        "100",
        "1",
        TimeInForce::Gtd {
            expires_at_ms: expires,
        },
    );
    assert_eq!(h.rejected(past), RejectReason::ExpiryInPast);
}

#[test]
fn clock_never_goes_backwards() {
    let mut h = H::new();
    let t = h.time_ms;
    h.time_ms = t - 5_000;
    h.exec(Command::ClockTick);
    assert_eq!(h.core.time_ms(), t);
}

#[test]
fn market_order_by_base_quantity_sweeps_levels() {
    let mut h = H::new();
    h.limit(ALICE, Side::Sell, "100", "1");
    h.limit(ALICE, Side::Sell, "102", "1");
    let (b, events) = h.market(BOB, Side::Buy, MarketSize::Base(d("1.5")));
    assert_eq!(
        trades(&events).iter().map(|t| t.0).collect::<Vec<_>>(),
        vec![d("100.00"), d("102.00")]
    );
    assert_done(&events, b, DoneReason::Filled, "1.50000000");
    // 100 + 51 notional, 0.2% taker fee (0.302).
    assert_eq!(h.available(BOB, "USDT"), 1_000_000 * USDT - 151_302_000);
}

#[test]
fn market_order_by_quote_spends_at_most_its_budget_fees_included() {
    let mut h = H::new();
    h.limit(ALICE, Side::Sell, "100", "5");
    let (b, events) = h.market(BOB, Side::Buy, MarketSize::Quote(d("100")));
    // 0.9980 BTC costs 99.80 + 0.1996 fee = 99.9996; one more lot would exceed 100.
    assert_done(&events, b, DoneReason::Filled, "0.99800000");
    assert_eq!(h.available(BOB, "USDT"), 1_000_000 * USDT - 99_999_600);
}

#[test]
fn market_sell_by_quote_stops_at_the_target_proceeds() {
    let mut h = H::new();
    h.limit(ALICE, Side::Buy, "100", "5");
    let (s, events) = h.market(BOB, Side::Sell, MarketSize::Quote(d("250")));
    assert_done(&events, s, DoneReason::Filled, "2.50000000");
}

#[test]
fn market_buy_that_runs_out_of_funds_ends_with_insufficient_funds() {
    let mut h = H::new();
    h.deposit(AccountId(7), "USDT", "150");
    h.limit(ALICE, Side::Sell, "100", "1");
    h.limit(ALICE, Side::Sell, "101", "1");
    let (b, events) = h.market(AccountId(7), Side::Buy, MarketSize::Base(d("2")));
    let (reason, filled) = done(&events, b).unwrap();
    assert_eq!(reason, DoneReason::InsufficientFunds);
    assert!(filled > d("1") && filled < d("2"), "filled {filled}");
    assert!(h.available(AccountId(7), "USDT") < 102 * USDT / 100);
}

#[test]
fn market_order_on_an_empty_book_is_rejected() {
    let mut h = H::new();
    let m = order(
        BOB,
        Side::Buy,
        OrderType::Market {
            size: MarketSize::Base(d("1")),
        },
    );
    assert_eq!(h.rejected(m), RejectReason::NoLiquidity);
}

#[test]
fn stop_market_triggers_when_the_last_price_reaches_it() {
    let mut h = H::new();
    let (stop, events) = h.ok(order(
        BOB,
        Side::Buy,
        OrderType::StopMarket {
            trigger_price: d("105"),
            size: MarketSize::Base(d("1")),
        },
    ));
    // Held at the trigger price plus the taker fee.
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::OrderAccepted { held, .. } if *held == d("105.210000"))));
    h.limit(CAROL, Side::Sell, "104", "2");
    h.limit(ALICE, Side::Buy, "104", "1"); // last = 104: not yet
    assert!(h.is_open(BOB, stop));
    let events = h.limit(ALICE, Side::Buy, "105", "0.5").1; // Carol's 104 ask trades at 104 again
    assert!(h.is_open(BOB, stop), "{events:#?}");
    h.limit(CAROL, Side::Sell, "105", "2");
    let events = h.limit(ALICE, Side::Buy, "105", "0.5").1; // trades at 104 (0.5 left)
    assert!(h.is_open(BOB, stop), "{events:#?}");
    let (_, events) = h.limit(ALICE, Side::Buy, "105", "0.5"); // trades at 105
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::OrderTriggered { order, .. } if order.0 == stop)));
    assert_done(&events, stop, DoneReason::Filled, "1.00000000");
    assert_eq!(h.held(BOB, "USDT"), 0);
}

#[test]
fn stop_limit_triggers_into_a_resting_limit_order() {
    let mut h = H::new();
    let (stop, _) = h.ok(order(
        ALICE,
        Side::Sell,
        OrderType::StopLimit {
            trigger_price: d("95"),
            price: d("94"),
            quantity: d("1"),
            time_in_force: TimeInForce::Gtc,
        },
    ));
    assert_eq!(h.held(ALICE, "BTC"), BTC);
    h.limit(BOB, Side::Buy, "95", "0.1");
    let (_, events) = h.limit(CAROL, Side::Sell, "95", "0.1");
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::OrderTriggered { order, .. } if order.0 == stop)));
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::OrderRested { order, .. } if order.0 == stop)));
    assert_eq!(
        h.core.best_prices(&sym(BTC_USDT)),
        Some((None, Some(9_400)))
    );
}

#[test]
fn iceberg_shows_its_display_and_refills_at_the_back_of_the_level() {
    let mut h = H::new();
    let (ice, events) = h.ok(order(
        ALICE,
        Side::Sell,
        OrderType::Limit {
            price: d("100"),
            quantity: d("3"),
            time_in_force: TimeInForce::Gtc,
            post_only: false,
            display_quantity: Some(d("1")),
        },
    ));
    assert!(events.iter().any(|e| matches!(e, Event::OrderRested { visible, hidden, .. } if *visible == d("1.00000000") && *hidden == d("2.00000000"))));
    let (carol, _) = h.limit(CAROL, Side::Sell, "100", "1");
    let (b, events) = h.limit(BOB, Side::Buy, "100", "1.5");
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::OrderRefilled { order, .. } if order.0 == ice)));
    // The iceberg's first slice, then Carol (who is now ahead of the refill).
    assert_eq!(
        trades(&events),
        vec![
            (d("100.00"), d("1.00000000"), ice, b),
            (d("100.00"), d("0.50000000"), carol, b)
        ]
    );
}

#[test]
fn iceberg_with_ioc_is_refused() {
    let mut h = H::new();
    let o = order(
        ALICE,
        Side::Sell,
        OrderType::Limit {
            price: d("100"),
            quantity: d("3"),
            time_in_force: TimeInForce::Ioc,
            post_only: false,
            display_quantity: Some(d("1")),
        },
    );
    assert_eq!(h.rejected(o), RejectReason::InvalidTimeInForce);
}

#[test]
fn cancel_releases_the_hold_and_cancel_by_client_id_works() {
    let mut h = H::new();
    let (id, _) = h.limit(ALICE, Side::Buy, "100", "1");
    let (_, events) = h.ok(cancel(ALICE, id));
    assert_eq!(done(&events, id), Some((DoneReason::Cancelled, Dec::ZERO)));
    assert_eq!(h.held(ALICE, "USDT"), 0);
    let cid: ClientOrderId = "my-order-1".parse().unwrap();
    let (id2, _) = h.ok(Command::PlaceOrder(NewOrder {
        client_order_id: Some(cid),
        ..match limit(ALICE, Side::Buy, "100", "1", TimeInForce::Gtc) {
            Command::PlaceOrder(o) => o,
            _ => unreachable!(),
        }
    }));
    let dup = Command::PlaceOrder(NewOrder {
        client_order_id: Some(cid),
        ..match limit(ALICE, Side::Buy, "99", "1", TimeInForce::Gtc) {
            Command::PlaceOrder(o) => o,
            _ => unreachable!(),
        }
    });
    assert_eq!(h.rejected(dup), RejectReason::DuplicateClientOrderId);
    let (acted, _) = h.ok(Command::CancelOrder {
        account: ALICE,
        order: OrderRef::Client(cid),
    });
    assert_eq!(acted, id2);
    assert_eq!(h.rejected(cancel(ALICE, id2)), RejectReason::UnknownOrder);
}

#[test]
fn another_accounts_order_cannot_be_cancelled_or_amended() {
    let mut h = H::new();
    let (id, _) = h.limit(ALICE, Side::Buy, "100", "1");
    assert_eq!(h.rejected(cancel(BOB, id)), RejectReason::UnknownOrder);
    let amend = amend(BOB, id, Some("99"), None);
    assert_eq!(h.rejected(amend), RejectReason::UnknownOrder);
    assert!(h.is_open(ALICE, id));
}

#[test]
fn cancel_all_can_be_limited_to_one_market() {
    let mut h = H::new();
    h.ok(Command::CreateMarket(spec("BTC-USDC", "USDT", "BTC")));
    let (a, _) = h.limit(ALICE, Side::Buy, "100", "1");
    let (b, _) = h.limit(ALICE, Side::Sell, "200", "1");
    let other = Command::PlaceOrder(NewOrder {
        account: ALICE,
        market: sym("BTC-USDC"),
        side: Side::Buy,
        order_type: OrderType::Limit {
            price: d("0.01"),
            quantity: d("100"),
            time_in_force: TimeInForce::Gtc,
            post_only: false,
            display_quantity: None,
        },
        client_order_id: None,
        stp: StpMode::CancelTaker,
    });
    let (c, _) = h.ok(other);
    let (n, _) = h.ok(Command::CancelAll {
        account: ALICE,
        market: Some(sym(BTC_USDT)),
    });
    assert_eq!(n, 2);
    assert!(!h.is_open(ALICE, a) && !h.is_open(ALICE, b) && h.is_open(ALICE, c));
    h.ok(Command::CancelAll {
        account: ALICE,
        market: None,
    });
    assert!(h.core.account_orders(ALICE).is_empty());
}

#[test]
fn amend_that_reduces_quantity_keeps_priority() {
    let mut h = H::new();
    let (a, _) = h.limit(ALICE, Side::Sell, "100", "2");
    let (c, _) = h.limit(CAROL, Side::Sell, "100", "1");
    let (_, events) = h.ok(amend(ALICE, a, None, Some("1")));
    assert!(events.iter().any(|e| matches!(
        e,
        Event::OrderAmended {
            requeued: false,
            ..
        }
    )));
    assert_eq!(h.held(ALICE, "BTC"), BTC);
    let (b, events) = h.limit(BOB, Side::Buy, "100", "1");
    assert_eq!(trades(&events), vec![(d("100.00"), d("1.00000000"), a, b)]);
    assert!(h.is_open(CAROL, c));
}

#[test]
fn amend_that_changes_price_requeues_and_may_trade() {
    let mut h = H::new();
    let (a, _) = h.limit(ALICE, Side::Sell, "100", "1");
    let (c, _) = h.limit(CAROL, Side::Sell, "100", "1");
    let move_to = |price: &str| amend(ALICE, a, Some(price), None);
    h.ok(move_to("101"));
    h.ok(move_to("100"));
    let (b, events) = h.limit(BOB, Side::Buy, "100", "1");
    assert_eq!(
        trades(&events),
        vec![(d("100.00"), d("1.00000000"), c, b)],
        "Alice lost her place"
    );
    h.limit(BOB, Side::Buy, "99", "1");
    let (_, events) = h.ok(move_to("99"));
    assert_eq!(trades(&events).len(), 1, "a move across the spread trades");
    assert_done(&events, a, DoneReason::Filled, "1.00000000");
}

#[test]
fn amend_up_needs_funds_and_an_amend_that_changes_nothing_is_refused() {
    let mut h = H::new();
    h.deposit(AccountId(7), "USDT", "101");
    let (a, _) = h.ok(limit(AccountId(7), Side::Buy, "100", "1", TimeInForce::Gtc));
    let amend = |q: &str| amend(AccountId(7), a, None, Some(q));
    assert_eq!(h.rejected(amend("2")), RejectReason::InsufficientFunds);
    assert_eq!(h.rejected(amend("1")), RejectReason::NothingToChange);
}

fn stp_order(account: AccountId, side: Side, price: &str, stp: StpMode) -> Command {
    Command::PlaceOrder(NewOrder {
        stp,
        ..match limit(account, side, price, "1", TimeInForce::Gtc) {
            Command::PlaceOrder(o) => o,
            _ => unreachable!(),
        }
    })
}

#[test]
fn self_trade_prevention_cancel_taker() {
    let mut h = H::new();
    let (m, _) = h.limit(ALICE, Side::Sell, "100", "1");
    let (t, events) = h.ok(stp_order(ALICE, Side::Buy, "100", StpMode::CancelTaker));
    assert!(trades(&events).is_empty());
    assert_eq!(done(&events, t), Some((DoneReason::SelfTrade, Dec::ZERO)));
    assert!(h.is_open(ALICE, m));
}

#[test]
fn self_trade_prevention_cancel_maker_then_keeps_matching() {
    let mut h = H::new();
    let (m, _) = h.limit(ALICE, Side::Sell, "100", "1");
    let (other, _) = h.limit(BOB, Side::Sell, "100", "1");
    let (t, events) = h.ok(stp_order(ALICE, Side::Buy, "100", StpMode::CancelMaker));
    assert_eq!(done(&events, m), Some((DoneReason::SelfTrade, Dec::ZERO)));
    assert_eq!(
        trades(&events),
        vec![(d("100.00"), d("1.00000000"), other, t)]
    );
}

#[test]
fn self_trade_prevention_cancel_both() {
    let mut h = H::new();
    let (m, _) = h.limit(ALICE, Side::Sell, "100", "1");
    let (t, events) = h.ok(stp_order(ALICE, Side::Buy, "100", StpMode::CancelBoth));
    assert_eq!(done(&events, m), Some((DoneReason::SelfTrade, Dec::ZERO)));
    assert_eq!(done(&events, t), Some((DoneReason::SelfTrade, Dec::ZERO)));
    assert!(h.core.account_orders(ALICE).is_empty());
}

#[test]
fn halted_market_refuses_orders_but_allows_cancels_and_disable_cancels_everything() {
    let mut h = H::new();
    let (a, _) = h.limit(ALICE, Side::Buy, "100", "1");
    let (b, _) = h.limit(BOB, Side::Sell, "200", "1");
    h.ok(Command::SetMarketStatus {
        market: sym(BTC_USDT),
        status: MarketStatus::Halted,
    });
    assert_eq!(
        h.rejected(limit(CAROL, Side::Buy, "100", "1", TimeInForce::Gtc)),
        RejectReason::MarketHalted
    );
    h.ok(cancel(ALICE, a));
    let (_, events) = h.ok(Command::SetMarketStatus {
        market: sym(BTC_USDT),
        status: MarketStatus::Disabled,
    });
    assert_eq!(
        done(&events, b),
        Some((DoneReason::MarketDisabled, Dec::ZERO))
    );
    assert_eq!(h.held(BOB, "BTC"), 0);
    assert_eq!(
        h.rejected(limit(CAROL, Side::Buy, "100", "1", TimeInForce::Gtc)),
        RejectReason::MarketDisabled
    );
}

#[test]
fn price_band_refuses_far_limits_and_stops_market_orders_at_its_edge() {
    let mut h = H::new();
    h.ok(Command::SetPriceBand {
        market: sym(BTC_USDT),
        band_bps: Some(500),
        reference_price: Some(d("100")),
    });
    assert_eq!(
        h.rejected(limit(ALICE, Side::Sell, "105.01", "1", TimeInForce::Gtc)),
        RejectReason::PriceOutsideBand
    );
    h.limit(ALICE, Side::Sell, "105", "1");
    h.limit(ALICE, Side::Sell, "95", "1");
    h.limit(CAROL, Side::Buy, "95", "0.5"); // last = 95; band is now 90.25..99.75
    let (m, events) = h.market(BOB, Side::Buy, MarketSize::Base(d("2")));
    assert_done(&events, m, DoneReason::PriceBand, "0.50000000");
}

#[test]
fn size_tick_lot_and_notional_rules_are_enforced() {
    let mut h = H::new();
    h.ok(Command::CreateMarket(MarketSpec {
        min_quantity: Some(d("0.01")),
        max_quantity: Some(d("5")),
        ..spec("BTC-X", "BTC", "USDT")
    }));
    let o = |price: &str, qty: &str| {
        Command::PlaceOrder(NewOrder {
            market: sym("BTC-X"),
            ..match limit(ALICE, Side::Buy, price, qty, TimeInForce::Gtc) {
                Command::PlaceOrder(o) => o,
                _ => unreachable!(),
            }
        })
    };
    assert_eq!(h.rejected(o("100.001", "1")), RejectReason::PriceNotOnTick);
    assert_eq!(
        h.rejected(o("100", "1.00001")),
        RejectReason::QuantityNotOnLot
    );
    assert_eq!(
        h.rejected(o("100", "0.001")),
        RejectReason::BelowMinQuantity
    );
    assert_eq!(h.rejected(o("100", "6")), RejectReason::AboveMaxQuantity);
    assert_eq!(h.rejected(o("1", "0.5")), RejectReason::BelowMinNotional);
    assert_eq!(h.rejected(o("0", "1")), RejectReason::InvalidPrice);
    assert_eq!(h.rejected(o("-1", "1")), RejectReason::InvalidPrice);
    assert_eq!(h.rejected(o("100", "0")), RejectReason::InvalidQuantity);
    h.ok(o("100", "1"));
}

#[test]
fn a_repeated_command_id_gets_the_original_outcome_and_runs_once() {
    let mut h = H::new();
    // This harness turns the dedupe window off; use a core with the default window.
    let mut core = tape_core::Core::default();
    let mut out = Vec::new();
    let id = CommandId::from_u128(42);
    let asset = Command::CreateAsset(AssetSpec {
        code: code("BTC"),
        scale: 8,
        daily_withdrawal_limit: None,
    });
    core.apply(
        &CommandEnvelope::new(CommandId::from_u128(1), 1, asset),
        &mut out,
    );
    let dep = deposit(ALICE, "BTC", "1", "r1");
    out.clear();
    core.apply(&CommandEnvelope::new(id, 2, dep.clone()), &mut out);
    let first = outcome(&out);
    out.clear();
    core.apply(&CommandEnvelope::new(id, 3, dep), &mut out);
    assert_eq!(
        out,
        vec![Event::Outcome {
            command: id,
            result: first,
            duplicate: true
        }]
    );
    assert_eq!(core.balance(ALICE, &code("BTC")).unwrap().available, BTC);
    let _ = &mut h;
}

#[test]
fn unknown_names_are_refused() {
    let mut h = H::new();
    let o = Command::PlaceOrder(NewOrder {
        market: sym("DOGE-USDT"),
        ..match limit(ALICE, Side::Buy, "1", "1", TimeInForce::Gtc) {
            Command::PlaceOrder(o) => o,
            _ => unreachable!(),
        }
    });
    assert_eq!(h.rejected(o), RejectReason::UnknownMarket);
    assert_eq!(
        h.rejected(limit(
            AccountId(99),
            Side::Buy,
            "100",
            "1",
            TimeInForce::Gtc
        )),
        RejectReason::UnknownAccount
    );
    let dep = deposit(ALICE, "DOGE", "1", "r");
    assert_eq!(h.rejected(dep), RejectReason::UnknownAsset);
    let _ = USDT;
}
