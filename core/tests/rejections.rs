//! Every rejection reason, each produced by a command that changes nothing.

mod common;
use std::collections::BTreeSet;

use common::*;
use tape_core::CoreConfig;
use tape_schemas::*;

/// Every reason on the wire, by its Rust name, read from the committed JSON Schema of
/// events (which a drift test keeps equal to the code): a new variant without a case
/// here fails this test.
fn all_reasons() -> BTreeSet<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../schemas/json/event-envelope.schema.json"
    );
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let reasons = &schema["$defs"]["RejectReason"]["oneOf"];
    let names: BTreeSet<String> = reasons
        .as_array()
        .unwrap()
        .iter()
        // Documented variants stand alone as a `const`, the rest share one `enum`.
        .flat_map(|variant| match variant["enum"].as_array() {
            Some(names) => names.clone(),
            None => vec![variant["const"].clone()],
        })
        .map(|name| {
            let reason: RejectReason = serde_json::from_value(name).unwrap();
            format!("{reason:?}")
        })
        .collect();
    assert!(names.len() > 50, "the schema lists the reasons: {names:?}");
    names
}

/// Alice's sliced buy on BTC-USDT.
fn spot_sliced(lower: &str, upper: &str, count: u32, total: &str) -> Command {
    Command::PlaceSliced(NewSliced {
        market: sym(BTC_USDT),
        ..sliced(ALICE, Side::Buy, lower, upper, count, total)
    })
}

#[test]
fn every_rejection_reason_is_reachable_and_changes_nothing() {
    let mut seen = BTreeSet::new();
    let mut expect = |h: &mut H, command: Command, reason: RejectReason| {
        assert_eq!(h.rejected(command.clone()), reason, "{command:?}");
        seen.insert(format!("{reason:?}"));
    };

    let mut h = H::new();
    let btc = |scale| {
        Command::CreateAsset(AssetSpec {
            code: code("BTC"),
            scale,
            daily_withdrawal_limit: None,
        })
    };
    expect(&mut h, btc(8), RejectReason::AssetExists);
    let eth = Command::CreateAsset(AssetSpec {
        code: code("ETH"),
        scale: 19,
        daily_withdrawal_limit: None,
    });
    expect(&mut h, eth, RejectReason::InvalidAssetScale);
    expect(
        &mut h,
        Command::CreateMarket(spec(BTC_USDT, "BTC", "USDT")),
        RejectReason::MarketExists,
    );
    expect(
        &mut h,
        Command::CreateMarket(spec("X", "BTC", "BTC")),
        RejectReason::InvalidMarketSpec,
    );
    let tiny_tick = MarketSpec {
        tick_size: d("0.0000001"),
        lot_size: d("0.00000001"),
        ..spec("Y", "BTC", "USDT")
    };
    expect(
        &mut h,
        Command::CreateMarket(tiny_tick),
        RejectReason::InvalidMarketSpec,
    );
    let fees = MarketSpec {
        fees: FeeRates {
            maker_ppm: 100_001,
            taker_ppm: 0,
        },
        ..spec("Z", "BTC", "USDT")
    };
    expect(
        &mut h,
        Command::CreateMarket(fees),
        RejectReason::InvalidFee,
    );
    let dep = |amount: &str| Command::Deposit {
        account: ALICE,
        asset: code("USDT"),
        amount: d(amount),
        reference: format!("r{amount}").parse().unwrap(),
    };
    expect(&mut h, dep("0"), RejectReason::InvalidAmount);
    expect(&mut h, dep("-5"), RejectReason::InvalidAmount);
    expect(&mut h, dep("1.0000001"), RejectReason::TooManyDecimals);
    expect(
        &mut h,
        dep("18446744073709.551616"),
        RejectReason::OutOfRange,
    );
    expect(
        &mut h,
        Command::FailWithdrawal {
            withdrawal: WithdrawalId(77),
        },
        RejectReason::UnknownWithdrawal,
    );
    let o = |order_type| order(ALICE, Side::Buy, order_type);
    expect(
        &mut h,
        o(OrderType::StopMarket {
            trigger_price: d("100"),
            size: MarketSize::Base(d("1")),
        })
        .clone_with_side(Side::Sell, MarketSize::Quote(d("5"))),
        RejectReason::UnsupportedOrderType,
    );
    expect(
        &mut h,
        spot_sliced("90", "100", 0, "1"),
        RejectReason::InvalidSlice,
    );
    expect(
        &mut h,
        spot_sliced("100", "90", 2, "1"),
        RejectReason::InvalidSlice,
    );
    let (id, _) = h.ok(o(OrderType::StopLimit {
        trigger_price: d("90"),
        price: d("90"),
        quantity: d("1"),
        time_in_force: TimeInForce::Gtc,
    }));
    let stop_amend = amend(ALICE, id, Some("80"), None);
    expect(&mut h, stop_amend, RejectReason::NotAmendable);
    for (role, account) in [
        (ApiRole::Trader, None),
        (ApiRole::Admin, Some(ALICE)),
        (ApiRole::Auditor, Some(ALICE)),
    ] {
        let create = Command::CreateApiKey {
            role,
            account,
            secret_hash: Hash32([7; 32]),
            mac_key: Hash32([8; 32]),
        };
        expect(&mut h, create, RejectReason::InvalidApiKey);
    }
    let revoke = |key| Command::RevokeApiKey { key: ApiKeyId(key) };
    expect(&mut h, revoke(99), RejectReason::UnknownApiKey);
    let (key, _) = h.ok(Command::CreateApiKey {
        role: ApiRole::Trader,
        account: Some(ALICE),
        secret_hash: Hash32([7; 32]),
        mac_key: Hash32([8; 32]),
    });
    h.ok(revoke(key));
    expect(&mut h, revoke(key), RejectReason::UnknownApiKey);

    let mut capped = H::with_market(CoreConfig {
        open_orders_per_account_max: 1,
        ..CoreConfig::default()
    });
    capped.limit(ALICE, Side::Buy, "1", "1");
    expect(
        &mut capped,
        limit(ALICE, Side::Buy, "1", "1", TimeInForce::Gtc),
        RejectReason::TooManyOpenOrders,
    );

    // Names that do not exist.
    let mut h = H::new();
    let on = |market: &str, account| {
        Command::PlaceOrder(NewOrder {
            market: sym(market),
            ..match limit(account, Side::Buy, "100", "1", TimeInForce::Gtc) {
                Command::PlaceOrder(o) => o,
                _ => unreachable!(),
            }
        })
    };
    expect(&mut h, on("DOGE-USDT", ALICE), RejectReason::UnknownMarket);
    expect(
        &mut h,
        on(BTC_USDT, AccountId(99)),
        RejectReason::UnknownAccount,
    );
    let doge = deposit(ALICE, "DOGE", "1", "r");
    expect(&mut h, doge, RejectReason::UnknownAsset);
    expect(&mut h, cancel(ALICE, 12345), RejectReason::UnknownOrder);
    let too_long = Command::CancelAllAfter {
        account: ALICE,
        timeout_ms: DEAD_MAN_TIMEOUT_MAX_MS + 1,
    };
    expect(&mut h, too_long, RejectReason::TimeoutTooLong);
    let batch = |n| Command::Batch {
        account: ALICE,
        items: vec![BatchItem::CancelAll { market: None }; n],
    };
    expect(&mut h, batch(0), RejectReason::BatchSize);
    expect(&mut h, batch(21), RejectReason::BatchSize);

    // Prices and sizes.
    h.ok(Command::CreateMarket(MarketSpec {
        min_quantity: Some(d("0.01")),
        max_quantity: Some(d("5")),
        ..spec("BTC-X", "BTC", "USDT")
    }));
    let x = |price: &str, qty: &str| {
        Command::PlaceOrder(NewOrder {
            market: sym("BTC-X"),
            ..match limit(ALICE, Side::Buy, price, qty, TimeInForce::Gtc) {
                Command::PlaceOrder(o) => o,
                _ => unreachable!(),
            }
        })
    };
    expect(&mut h, x("0", "1"), RejectReason::InvalidPrice);
    expect(&mut h, x("100", "-1"), RejectReason::InvalidQuantity);
    expect(&mut h, x("100.001", "1"), RejectReason::PriceNotOnTick);
    expect(&mut h, x("100", "1.00001"), RejectReason::QuantityNotOnLot);
    expect(&mut h, x("100", "0.001"), RejectReason::BelowMinQuantity);
    expect(&mut h, x("100", "6"), RejectReason::AboveMaxQuantity);
    expect(&mut h, x("1", "0.5"), RejectReason::BelowMinNotional);
    expect(&mut h, x("999999", "5"), RejectReason::InsufficientFunds);

    // Order behaviour.
    let (resting, _) = h.limit(BOB, Side::Sell, "100", "1");
    let post_only = order(
        ALICE,
        Side::Buy,
        OrderType::Limit {
            price: d("100"),
            quantity: d("1"),
            time_in_force: TimeInForce::Gtc,
            post_only: true,
            display_quantity: None,
        },
    );
    expect(&mut h, post_only, RejectReason::PostOnlyWouldTrade);
    expect(
        &mut h,
        limit(ALICE, Side::Buy, "100", "2", TimeInForce::Fok),
        RejectReason::FokCannotFill,
    );
    let ioc_post = order(
        ALICE,
        Side::Buy,
        OrderType::Limit {
            price: d("90"),
            quantity: d("1"),
            time_in_force: TimeInForce::Ioc,
            post_only: true,
            display_quantity: None,
        },
    );
    expect(&mut h, ioc_post, RejectReason::InvalidTimeInForce);
    expect(
        &mut h,
        limit(
            ALICE,
            Side::Buy,
            "90",
            "1",
            TimeInForce::Gtd { expires_at_ms: 1 },
        ),
        RejectReason::ExpiryInPast,
    );
    expect(
        &mut h,
        order(
            ALICE,
            Side::Sell,
            OrderType::Market {
                size: MarketSize::Base(d("1")),
            },
        ),
        RejectReason::NoLiquidity,
    );
    let amend_same = amend(BOB, resting, Some("100"), None);
    expect(&mut h, amend_same, RejectReason::NothingToChange);
    let bracket = Command::PlaceBracket(NewBracket {
        account: ALICE,
        market: sym(BTC_USDT),
        side: Side::Sell,
        entry_price: d("100"),
        quantity: d("1"),
        exit_price: d("101"),
        client_order_id: None,
    });
    expect(&mut h, bracket, RejectReason::InvalidBracket);
    let cid: ClientOrderId = "c1".parse().unwrap();
    let with_cid = |price: &str| {
        Command::PlaceOrder(NewOrder {
            client_order_id: Some(cid),
            ..match limit(ALICE, Side::Buy, price, "1", TimeInForce::Gtc) {
                Command::PlaceOrder(o) => o,
                _ => unreachable!(),
            }
        })
    };
    h.ok(with_cid("90"));
    expect(&mut h, with_cid("91"), RejectReason::DuplicateClientOrderId);
    h.ok(Command::SetPriceBand {
        market: sym(BTC_USDT),
        band_bps: Some(100),
        reference_price: Some(d("100")),
    });
    expect(
        &mut h,
        limit(ALICE, Side::Buy, "98", "1", TimeInForce::Gtc),
        RejectReason::PriceOutsideBand,
    );

    // Custody.
    let dep = |asset: &str, reference: &str| deposit(ALICE, asset, "1", reference);
    h.ok(dep("BTC", "tx-1"));
    expect(
        &mut h,
        dep("BTC", "tx-1"),
        RejectReason::DuplicateDepositReference,
    );
    h.ok(Command::SetWithdrawalLimit {
        account: ALICE,
        asset: code("BTC"),
        daily_limit: Some(d("1")),
    });
    let withdraw = |amount: &str| Command::RequestWithdrawal {
        account: ALICE,
        asset: code("BTC"),
        amount: d(amount),
    };
    expect(&mut h, withdraw("2"), RejectReason::WithdrawalLimitExceeded);

    // Controls.
    h.ok(Command::SetAccountRestrictions {
        account: ALICE,
        can_trade: false,
        can_withdraw: false,
    });
    expect(
        &mut h,
        limit(ALICE, Side::Buy, "100", "1", TimeInForce::Gtc),
        RejectReason::TradingRestricted,
    );
    expect(&mut h, withdraw("0.1"), RejectReason::WithdrawalRestricted);
    h.ok(Command::SetMarketStatus {
        market: sym("BTC-X"),
        status: MarketStatus::Halted,
    });
    expect(&mut h, on("BTC-X", BOB), RejectReason::MarketHalted);
    h.ok(Command::SetMarketStatus {
        market: sym("BTC-X"),
        status: MarketStatus::Disabled,
    });
    expect(&mut h, on("BTC-X", BOB), RejectReason::MarketDisabled);
    h.ok(Command::SetAssetEnabled {
        asset: code("USDT"),
        enabled: false,
    });
    expect(&mut h, dep("USDT", "tx-2"), RejectReason::AssetDisabled);

    // A command the engine could not decode, and one from a future schema.
    let mut out = Vec::new();
    h.core.reject_malformed(&mut out);
    assert_eq!(
        out,
        vec![Event::Outcome {
            command: CommandId::default(),
            result: CommandResult::Rejected {
                reason: RejectReason::MalformedCommand
            },
            duplicate: false
        }]
    );
    seen.insert("MalformedCommand".into());
    let mut out = Vec::new();
    let future = CommandEnvelope {
        version: SCHEMA_VERSION + 1,
        ..CommandEnvelope::new(CommandId::from_u128(9), h.time_ms, Command::ClockTick)
    };
    h.core.apply(&future, &mut out);
    assert!(matches!(
        outcome(&out),
        CommandResult::Rejected {
            reason: RejectReason::UnsupportedVersion
        }
    ));
    seen.insert("UnsupportedVersion".into());

    // Credentials (the answer window on, as in production).
    let mut h = H::with_dedupe(CoreConfig::default());
    let alice = h.key(ApiRole::Trader, Some(ALICE), "alice-secret");
    h.ok(Command::RequireCredentials { required: true });
    let buy = || limit(ALICE, Side::Buy, "100", "1", TimeInForce::Gtc);
    let env = h.envelope(buy());
    let mut credentials = |h: &mut H, env: CommandEnvelope, reason: RejectReason| {
        assert_eq!(h.rejected_envelope(&env), reason, "{env:?}");
        seen.insert(format!("{reason:?}"));
    };
    credentials(&mut h, env, RejectReason::MissingCredentials);
    let t = h.time_ms;
    let env = h.signed(buy(), alice, "not-alice-secret", t + 1_000);
    credentials(&mut h, env, RejectReason::BadSignature);
    let env = h.signed(buy(), alice, "alice-secret", t - 1);
    credentials(&mut h, env, RejectReason::CredentialsExpired);
    let env = h.signed(buy(), alice, "alice-secret", t + MAX_VALIDITY_MS + 1);
    credentials(&mut h, env, RejectReason::ExpiryTooFar);
    let bob = limit(BOB, Side::Buy, "100", "1", TimeInForce::Gtc);
    let env = h.signed(bob, alice, "alice-secret", t + 1_000);
    credentials(&mut h, env, RejectReason::NotPermitted);
    // Signing streams: a used seq with another command, one below the window, and a
    // stream beyond the key's limit.
    let first = h.signed(buy(), alice, "alice-secret", t + 1_000);
    h.ok_envelope(&first);
    let seq = first.auth.unwrap().seq;
    // A buy signed by alice on her default stream at `seq`.
    let on_stream = |h: &mut H, seq| {
        sign_on(
            h.envelope(buy()),
            alice,
            "alice-secret",
            DEFAULT_STREAM,
            seq,
            t + 1_000,
        )
    };
    let reused = on_stream(&mut h, seq);
    credentials(&mut h, reused, RejectReason::ReplayedSeq);
    let ahead = on_stream(&mut h, seq + SEQ_WINDOW);
    h.ok_envelope(&ahead);
    let old = on_stream(&mut h, seq);
    credentials(&mut h, old, RejectReason::SeqTooOld);
    let mut few = H::with_dedupe(CoreConfig {
        signing_streams_per_key_max: 1,
        ..CoreConfig::default()
    });
    let alice = few.key(ApiRole::Trader, Some(ALICE), "alice-secret");
    let t = few.time_ms;
    let env = few.signed(buy(), alice, "alice-secret", t + 1_000);
    few.ok_envelope(&env);
    let env = sign_on(few.envelope(buy()), alice, "alice-secret", 2, 1, t + 1_000);
    credentials(&mut few, env, RejectReason::TooManySigningStreams);

    // Time from the operator's side (unsigned, credentials optional): past the
    // horizon, and a jump beyond the bound.
    let mut h = H::new();
    let mut tick_at = |h: &mut H, time_ms: u64, reason: RejectReason| {
        let env = CommandEnvelope::new(h.next_command_id(), time_ms, Command::ClockTick);
        assert_eq!(h.rejected_envelope(&env), reason);
        seen.insert(format!("{reason:?}"));
    };
    tick_at(&mut h, u64::MAX, RejectReason::TimeBeyondHorizon);
    let t = h.time_ms;
    tick_at(&mut h, t + 8 * 86_400_000, RejectReason::ClockJumpTooLarge);

    // Every table a command grows has a bound (the harness's setup makes 2 assets,
    // 1 market, 3 accounts and 6 deposits).
    let mut tight = H::with_market(CoreConfig {
        assets_max: 2,
        markets_max: 1,
        accounts_max: 3,
        api_keys_max: 1,
        pending_withdrawals_max: 1,
        deposit_references_max: 6,
        parents_max: 1,
        ..CoreConfig::default()
    });
    let mut bound = |h: &mut H, command: Command, reason: RejectReason| {
        assert_eq!(h.rejected(command.clone()), reason, "{command:?}");
        seen.insert(format!("{reason:?}"));
    };
    let eth = Command::CreateAsset(AssetSpec {
        code: code("ETH"),
        scale: 8,
        daily_withdrawal_limit: None,
    });
    bound(&mut tight, eth, RejectReason::TooManyAssets);
    let market = Command::CreateMarket(spec("USDT-BTC", "USDT", "BTC"));
    bound(&mut tight, market, RejectReason::TooManyMarkets);
    let stranger = Command::SetAccountRestrictions {
        account: AccountId(4),
        can_trade: true,
        can_withdraw: true,
    };
    bound(&mut tight, stranger, RejectReason::TooManyAccounts);
    let deposit = deposit(ALICE, "BTC", "1", "one-more");
    bound(&mut tight, deposit, RejectReason::TooManyDeposits);
    tight.key(ApiRole::Auditor, None, "first");
    let key = Command::CreateApiKey {
        role: ApiRole::Auditor,
        account: None,
        secret_hash: hash_secret("second"),
        mac_key: mac_key("second"),
    };
    bound(&mut tight, key, RejectReason::TooManyApiKeys);
    let withdraw = |amount: &str| Command::RequestWithdrawal {
        account: ALICE,
        asset: code("BTC"),
        amount: d(amount),
    };
    tight.ok(withdraw("1"));
    bound(
        &mut tight,
        withdraw("1"),
        RejectReason::TooManyPendingWithdrawals,
    );
    tight.ok(spot_sliced("90", "95", 2, "2"));
    bound(
        &mut tight,
        spot_sliced("80", "85", 2, "2"),
        RejectReason::TooManyParents,
    );

    // Perpetuals: a spec that does not hold together, then each index bound.
    let mut perp = H::new();
    let perp_spec = |max_move_ppm: u32| PerpetualSpec {
        market: spec("BTC-PERP", "BTC", "USDT"),
        brackets: vec![LeverageBracket {
            notional_cap: d("100000"),
            max_leverage: 20,
            maintenance_ppm: 10_000,
        }],
        index: IndexRules {
            max_move_ppm,
            stale_after_ms: 60_000,
            min_price: d("1"),
            max_price: d("1000000"),
        },
        mark_basis_max_ppm: 5_000,
        funding_interval_ms: 3_600_000,
        open_interest_max: d("100"),
    };
    let bad = Command::CreatePerpetual(perp_spec(0));
    bound(&mut perp, bad, RejectReason::InvalidPerpetualSpec);
    perp.ok(Command::CreatePerpetual(perp_spec(10_000)));
    let now = perp.time_ms;
    let index = |market: &str, price: &str, source_ms: u64| Command::SetIndexPrice {
        market: sym(market),
        price: d(price),
        source_ms,
    };
    bound(
        &mut perp,
        index(BTC_USDT, "100", now),
        RejectReason::NotAPerpetual,
    );
    bound(
        &mut perp,
        index("BTC-PERP", "2000000", now),
        RejectReason::IndexOutsideLimits,
    );
    bound(
        &mut perp,
        index("BTC-PERP", "100", now + 1),
        RejectReason::IndexSourceTimeAhead,
    );
    perp.ok(index("BTC-PERP", "100", now - 10));
    bound(
        &mut perp,
        index("BTC-PERP", "100", now - 10),
        RejectReason::IndexSourceTimeNotAfter,
    );
    bound(
        &mut perp,
        index("BTC-PERP", "101.01", now),
        RejectReason::IndexMoveTooLarge,
    );
    perp_orders(&mut perp, &perp_spec(10_000), &mut bound);

    let leverage = |leverage: u32| Command::SetLeverage {
        account: ALICE,
        market: sym("BTC-PERP"),
        leverage,
    };
    bound(&mut perp, leverage(0), RejectReason::InvalidLeverage);
    bound(&mut perp, leverage(6), RejectReason::LeverageAboveCap);

    let commit = |h: &H, round, algorithm| {
        Command::CommitLiabilities(LiabilityCommitment {
            round,
            checkpoint: 10,
            checkpoint_seq: 1,
            state_hash: Hash32::default(),
            height: 20,
            algorithm,
            root: Hash32::default(),
            totals: h.core.liability_totals(),
        })
    };
    let skips = commit(&perp, 2, tape_core::LIABILITY_ALGORITHM);
    bound(&mut perp, skips, RejectReason::LiabilityRound);
    let unknown = commit(&perp, 1, 9);
    bound(&mut perp, unknown, RejectReason::LiabilityRecord);

    // Reasons no command produces any more, kept so that old logs decode.
    let retired = [RejectReason::PerpetualTradingNotBuilt];
    seen.extend(retired.iter().map(|r| format!("{r:?}")));
    let missing: Vec<_> = all_reasons().difference(&seen).cloned().collect();
    assert!(missing.is_empty(), "no test produces {missing:?}");
}

/// Orders on the perpetual `BTC-PERP` (index 100, 5x, positions capped at
/// 100,000, open interest at 100): each of their bounds.
fn perp_orders(
    perp: &mut H,
    spec: &PerpetualSpec,
    bound: &mut impl FnMut(&mut H, Command, RejectReason),
) {
    let on = |market: &str, account, side, order_type| NewOrder {
        account,
        market: sym(market),
        side,
        order_type,
        client_order_id: None,
        stp: StpMode::CancelTaker,
    };
    let gtc = |price: &str, qty: &str| OrderType::Limit {
        price: d(price),
        quantity: d(qty),
        time_in_force: TimeInForce::Gtc,
        post_only: false,
        display_quantity: None,
    };
    let place = |account, side, price, qty| {
        Command::PlaceOrder(on("BTC-PERP", account, side, gtc(price, qty)))
    };
    let scale_out = Command::PlaceSlicedReduceOnly(NewSliced {
        market: sym("BTC-PERP"),
        ..sliced(ALICE, Side::Buy, "99", "100", 2, "1")
    });
    bound(perp, scale_out, RejectReason::NoPosition);
    let dave = AccountId(4);
    perp.deposit(dave, "USDT", "10");
    let r = RejectReason::InsufficientMargin;
    bound(perp, place(dave, Side::Buy, "100", "1"), r);
    let reduce =
        |account, side| Command::PlaceReduceOnly(on("BTC-PERP", account, side, gtc("100", "1")));
    bound(perp, reduce(ALICE, Side::Buy), RejectReason::NoPosition);
    perp.ok(place(ALICE, Side::Sell, "100", "1"));
    perp.ok(place(BOB, Side::Buy, "100", "1"));
    let r = RejectReason::WouldIncreasePosition;
    bound(perp, reduce(BOB, Side::Buy), r);
    let r = RejectReason::OpenInterestCap;
    bound(perp, place(CAROL, Side::Buy, "100", "100"), r);
    let r = RejectReason::PositionNotionalCap;
    bound(perp, place(CAROL, Side::Buy, "1100", "99"), r);
    perp.ok(Command::SetNotionalCap {
        account: Some(CAROL),
        asset: code("USDT"),
        cap: Some(d("50")),
    });
    let r = RejectReason::AccountNotionalCap;
    bound(perp, place(CAROL, Side::Buy, "100", "1"), r);
    perp.ok(Command::SetNotionalCap {
        account: Some(CAROL),
        asset: code("USDT"),
        cap: None,
    });
    let mut other = spec.clone();
    other.market.symbol = sym("BTC-PERP2");
    perp.ok(Command::CreatePerpetual(other));
    let order = Command::PlaceOrder(on("BTC-PERP2", CAROL, Side::Buy, gtc("100", "1")));
    bound(perp, order, RejectReason::NoIndexPrice);
    perp.time_ms += spec.index.stale_after_ms;
    perp.ok(Command::ClockTick);
    let r = RejectReason::MarketReduceOnly;
    bound(perp, place(CAROL, Side::Buy, "100", "1"), r);
}

trait WithSide {
    fn clone_with_side(&self, side: Side, size: MarketSize) -> Command;
}

impl WithSide for Command {
    fn clone_with_side(&self, side: Side, size: MarketSize) -> Command {
        match self {
            Command::PlaceOrder(o) => Command::PlaceOrder(NewOrder {
                side,
                order_type: OrderType::StopMarket {
                    trigger_price: d("100"),
                    size,
                },
                ..*o
            }),
            other => other.clone(),
        }
    }
}
