//! The liquidation ladder on perpetuals (issue 22), one golden scenario a stage: a
//! partial liquidation that restores the margin, a full one, the insurance fund
//! taking over (empty and funded), auto-deleveraging; funding between longs and
//! shorts; a mark that crosses no trigger checking no account; stops a
//! liquidation's trades reach, run in the same command. Every command is
//! checked against every invariant (`H::apply`).

mod common;

use common::*;
use tape_schemas::*;

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
