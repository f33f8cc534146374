//! Perpetual markets as far as they are built (issue 22): created with leverage
//! brackets whose maintenance amounts the engine derives (Binance's `cum`), index
//! prices as commands from an oracle key with every bound a reason, staleness that
//! the clock sets off. Trading on them is `margin.rs`.

mod common;

use common::*;
use tape_core::Core;
use tape_schemas::*;

#[test]
fn a_perpetual_is_created_with_the_maintenance_amounts_binance_publishes() {
    let mut h = H::new();
    let (_, events) = h.ok(Command::CreatePerpetual(perp_spec()));
    let Some(Event::PerpetualCreated { brackets, .. }) = events.get(1) else {
        panic!("{events:#?}");
    };
    // cum_n = floor_n × (MMR_n − MMR_{n−1}) + cum_{n−1}: 0, 50 and 1,300 USDT, as
    // on Binance's BTCUSDT bracket table.
    let got: Vec<(Dec, Dec, Dec)> = brackets
        .iter()
        .map(|b| (b.notional_floor, b.notional_cap, b.maintenance_amount))
        .collect();
    assert_eq!(
        got,
        [
            (d("0"), d("50000"), d("0")),
            (d("50000"), d("250000"), d("50")),
            (d("250000"), d("1000000"), d("1300")),
        ]
    );
    // Its symbol is taken, like any market's.
    assert_eq!(
        h.rejected(Command::CreatePerpetual(perp_spec())),
        RejectReason::MarketExists
    );
    assert_eq!(
        h.rejected(Command::CreateMarket(spec(PERP, "BTC", "USDT"))),
        RejectReason::MarketExists
    );
}

/// One way to spoil a spec.
type Change = Box<dyn Fn(&mut PerpetualSpec)>;

#[test]
fn brackets_and_rules_that_do_not_hold_together_are_refused() {
    let mut h = H::new();
    let cases: Vec<(&str, Change)> = vec![
        ("no brackets", Box::new(|s| s.brackets.clear())),
        (
            "positions whose value could overflow",
            Box::new(|s| s.open_interest_max = d("10000000000")),
        ),
        (
            "17 brackets",
            Box::new(|s| {
                s.brackets = (1..=17)
                    .map(|i| bracket(&(i * 1_000).to_string(), 10, 1_000))
                    .collect()
            }),
        ),
        (
            "leverage rising",
            Box::new(|s| s.brackets[1].max_leverage = 150),
        ),
        (
            "zero leverage",
            Box::new(|s| s.brackets[2].max_leverage = 0),
        ),
        (
            "maintenance falling",
            Box::new(|s| s.brackets[1].maintenance_ppm = 3_000),
        ),
        (
            "maintenance at the initial rate",
            Box::new(|s| s.brackets[2].maintenance_ppm = 20_000),
        ),
        (
            "caps not rising",
            Box::new(|s| s.brackets[1].notional_cap = d("50000")),
        ),
        ("a move bound of 0", Box::new(|s| s.index.max_move_ppm = 0)),
        ("never fresh", Box::new(|s| s.index.stale_after_ms = 0)),
        (
            "fresh for over a day",
            Box::new(|s| s.index.stale_after_ms = 86_400_001),
        ),
        (
            "limits crossed",
            Box::new(|s| s.index.min_price = d("20000000")),
        ),
        ("a 20% basis", Box::new(|s| s.mark_basis_max_ppm = 200_000)),
        (
            "funding every second",
            Box::new(|s| s.funding_interval_ms = 1_000),
        ),
        (
            "open interest off the lot",
            Box::new(|s| s.open_interest_max = d("0.00001")),
        ),
    ];
    for (what, change) in cases {
        let mut s = perp_spec();
        change(&mut s);
        assert_eq!(
            h.rejected(Command::CreatePerpetual(s)),
            RejectReason::InvalidPerpetualSpec,
            "{what}"
        );
    }
    // The market's own rules still apply: an underlying that does not exist.
    let mut s = perp_spec();
    s.market.base = code("ETH");
    assert_eq!(
        h.rejected(Command::CreatePerpetual(s)),
        RejectReason::UnknownAsset
    );
}

#[test]
fn an_index_price_sets_the_mark_and_every_bound_is_a_reason() {
    let mut h = with_perp();
    let t = h.time_ms;
    let (_, events) = h.ok(index("50000", t - 500));
    assert_eq!(
        events[1],
        Event::IndexPriceSet {
            market: sym(PERP),
            index: d("50000"),
            mark: d("50000"),
            source_ms: t - 500,
        }
    );
    let prices = h.core.perpetual(&sym(PERP)).unwrap();
    assert_eq!(prices.index, Some((d("50000"), t - 500)));
    assert!(!prices.stale);

    let refusals = [
        // 5% is the most one update moves it.
        (index("52500.01", t), RejectReason::IndexMoveTooLarge),
        (index("47499.99", t), RejectReason::IndexMoveTooLarge),
        // Source times only increase, and are never after the command's time.
        (
            index("50001", t - 500),
            RejectReason::IndexSourceTimeNotAfter,
        ),
        (index("50001", t + 1), RejectReason::IndexSourceTimeAhead),
        (index("50000.001", t), RejectReason::PriceNotOnTick),
        (index("0", t), RejectReason::InvalidPrice),
        (
            Command::SetIndexPrice {
                market: sym(BTC_USDT),
                price: d("50000"),
                source_ms: t,
            },
            RejectReason::NotAPerpetual,
        ),
        (
            Command::SetIndexPrice {
                market: sym("ETH-PERP"),
                price: d("50000"),
                source_ms: t,
            },
            RejectReason::UnknownMarket,
        ),
    ];
    for (command, reason) in refusals {
        assert_eq!(h.rejected(command.clone()), reason, "{command:?}");
    }
    // At the bound exactly, it moves.
    h.ok(index("52500", t));
    assert_eq!(h.core.perpetual(&sym(PERP)).unwrap().mark, Some(d("52500")));
}

#[test]
fn the_first_index_is_held_within_the_market_limits() {
    let mut h = with_perp();
    let t = h.time_ms;
    assert_eq!(
        h.rejected(index("10000000.01", t)),
        RejectReason::IndexOutsideLimits
    );
    assert_eq!(
        h.rejected(index("0.99", t)),
        RejectReason::IndexOutsideLimits
    );
    h.ok(index("10000000", t));
}

#[test]
fn an_index_goes_stale_before_the_outcome_of_the_first_command_past_its_limit() {
    let mut h = with_perp();
    let t = h.time_ms;
    h.ok(index("50000", t));
    h.time_ms = t + STALE_MS - 1;
    let (_, events) = h.ok(Command::ClockTick);
    assert_eq!(events.len(), 1, "still fresh: {events:#?}");

    h.time_ms = t + STALE_MS;
    let (_, events) = h.ok(Command::ClockTick);
    let stale = Event::IndexStale {
        market: sym(PERP),
        source_ms: t,
    };
    assert_eq!(events[0], stale, "{events:#?}");
    assert!(matches!(events[1], Event::Outcome { .. }));
    assert!(h.core.perpetual(&sym(PERP)).unwrap().stale);
    // Announced once.
    h.time_ms += 1_000;
    assert_eq!(h.ok(Command::ClockTick).1.len(), 1);

    // A fresh index ends it and starts a new deadline.
    let (_, events) = h.ok(index("50100", h.time_ms));
    assert!(matches!(events[1], Event::IndexPriceSet { .. }));
    assert!(!h.core.perpetual(&sym(PERP)).unwrap().stale);
    let fresh_at = h.time_ms;
    h.time_ms = fresh_at + STALE_MS;
    let (_, events) = h.ok(Command::ClockTick);
    assert_eq!(
        events[0],
        Event::IndexStale {
            market: sym(PERP),
            source_ms: fresh_at,
        }
    );
}

#[test]
fn an_index_already_old_on_arrival_is_taken_and_is_stale_at_once() {
    let mut h = with_perp();
    let t = h.time_ms;
    let (_, events) = h.ok(index("50000", t - STALE_MS));
    assert!(matches!(events[1], Event::IndexPriceSet { .. }));
    assert_eq!(
        events[2],
        Event::IndexStale {
            market: sym(PERP),
            source_ms: t - STALE_MS,
        }
    );
    assert!(h.core.perpetual(&sym(PERP)).unwrap().stale);
    // No deadline is left behind to fire again.
    h.time_ms = t + 2 * STALE_MS;
    assert_eq!(h.ok(Command::ClockTick).1.len(), 1);
}

#[test]
fn only_an_oracle_or_an_admin_key_posts_index_prices() {
    let mut h = with_perp();
    let oracle = h.key(ApiRole::Oracle, None, "oracle-secret");
    let trader = h.key(ApiRole::Trader, Some(ALICE), "alice-secret");
    h.ok(Command::RequireCredentials { required: true });
    let expires = h.time_ms + 60_000;
    let t = h.time_ms;

    let env = h.signed(index("50000", t), oracle, "oracle-secret", expires);
    h.ok_envelope(&env);
    // An oracle key does nothing else.
    let env = h.signed(
        tape_testkit::deposit(ALICE, "USDT", "1", "oracle-deposit"),
        oracle,
        "oracle-secret",
        expires,
    );
    assert_eq!(h.rejected_envelope(&env), RejectReason::NotPermitted);
    // A trader key posts no index.
    let env = h.signed(index("50001", t), trader, "alice-secret", expires);
    assert_eq!(h.rejected_envelope(&env), RejectReason::NotPermitted);
}

#[test]
fn a_snapshot_keeps_the_index_and_when_it_goes_stale() {
    let mut h = with_perp();
    let t = h.time_ms;
    h.ok(index("50000", t));
    let mut restored = H::new();
    restored.core = Core::restore(&h.core.snapshot()).expect("it restores");
    restored.time_ms = h.time_ms;
    assert_eq!(restored.core.state_hash(), h.core.state_hash());
    assert_eq!(
        restored.core.perpetual(&sym(PERP)),
        h.core.perpetual(&sym(PERP))
    );
    // The deadline came back with it: both go stale at the same command.
    for core in [&mut h, &mut restored] {
        core.time_ms = t + STALE_MS;
        let (_, events) = core.ok(Command::ClockTick);
        assert!(matches!(events[0], Event::IndexStale { .. }), "{events:#?}");
    }
    assert_eq!(restored.core.state_hash(), h.core.state_hash());
}

fn set_leverage(account: AccountId, leverage: u32) -> Command {
    Command::SetLeverage {
        account,
        market: sym(PERP),
        leverage,
    }
}

#[test]
fn leverage_is_capped_by_the_tier_and_the_first_bracket() {
    let mut h = with_perp();
    let perp = sym(PERP);
    // A new account is a beginner: 5x, and trades at its cap until it chooses.
    assert_eq!(
        h.core.leverage(ALICE, &perp),
        Some((LeverageTier::Beginner, 5, 5))
    );
    h.ok(set_leverage(ALICE, 3));
    assert_eq!(
        h.core.leverage(ALICE, &perp),
        Some((LeverageTier::Beginner, 5, 3))
    );
    assert_eq!(
        h.rejected(set_leverage(ALICE, 6)),
        RejectReason::LeverageAboveCap
    );
    assert_eq!(
        h.rejected(set_leverage(ALICE, 0)),
        RejectReason::InvalidLeverage
    );
    // Advanced: 20x.
    h.ok(Command::SetAccountTier {
        account: ALICE,
        tier: LeverageTier::Advanced,
    });
    h.ok(set_leverage(ALICE, 20));
    assert_eq!(
        h.rejected(set_leverage(ALICE, 21)),
        RejectReason::LeverageAboveCap
    );
    // The admin raises the caps; the first bracket (125x) still bounds.
    h.ok(Command::SetLeverageTiers(TierCaps {
        beginner: 10,
        intermediate: 50,
        advanced: 200,
    }));
    h.ok(set_leverage(ALICE, 125));
    assert_eq!(
        h.rejected(set_leverage(ALICE, 126)),
        RejectReason::LeverageAboveCap
    );
    // Lowering a cap lowers every leverage above it at once.
    h.ok(Command::SetLeverageTiers(TierCaps::default()));
    assert_eq!(
        h.core.leverage(ALICE, &perp),
        Some((LeverageTier::Advanced, 20, 20))
    );
    // Back to beginner: 5x.
    h.ok(Command::SetAccountTier {
        account: ALICE,
        tier: LeverageTier::Beginner,
    });
    assert_eq!(
        h.core.leverage(ALICE, &perp),
        Some((LeverageTier::Beginner, 5, 5))
    );
    // A snapshot keeps it all.
    let restored = Core::restore(&h.core.snapshot()).expect("it restores");
    assert_eq!(
        restored.leverage(ALICE, &perp),
        h.core.leverage(ALICE, &perp)
    );
    assert_eq!(restored.state_hash(), h.core.state_hash());
}

#[test]
fn leverage_settings_that_cannot_hold_are_refused() {
    let mut h = with_perp();
    for caps in [(0, 10, 20), (5, 4, 20), (5, 10, 9), (5, 10, 1_001)] {
        let caps = TierCaps {
            beginner: caps.0,
            intermediate: caps.1,
            advanced: caps.2,
        };
        assert_eq!(
            h.rejected(Command::SetLeverageTiers(caps)),
            RejectReason::InvalidLeverage,
            "{caps:?}"
        );
    }
    let stranger = AccountId(99);
    assert_eq!(
        h.rejected(set_leverage(stranger, 2)),
        RejectReason::UnknownAccount
    );
    assert_eq!(
        h.rejected(Command::SetAccountTier {
            account: stranger,
            tier: LeverageTier::Advanced,
        }),
        RejectReason::UnknownAccount
    );
    let spot = Command::SetLeverage {
        account: ALICE,
        market: sym(BTC_USDT),
        leverage: 2,
    };
    assert_eq!(h.rejected(spot), RejectReason::NotAPerpetual);
    // Only an admin sets tiers; a trader sets its own leverage.
    let trader = h.key(ApiRole::Trader, Some(ALICE), "alice-secret");
    h.ok(Command::RequireCredentials { required: true });
    let expires = h.time_ms + 60_000;
    let tier = Command::SetAccountTier {
        account: ALICE,
        tier: LeverageTier::Advanced,
    };
    let env = h.signed(tier, trader, "alice-secret", expires);
    assert_eq!(h.rejected_envelope(&env), RejectReason::NotPermitted);
    let env = h.signed(set_leverage(ALICE, 2), trader, "alice-secret", expires);
    h.ok_envelope(&env);
    let env = h.signed(set_leverage(BOB, 2), trader, "alice-secret", expires);
    assert_eq!(h.rejected_envelope(&env), RejectReason::NotPermitted);
}
