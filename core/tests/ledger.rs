//! The balance engine: deposits, withdrawals, limits, restrictions and fees.

mod common;
use common::*;
use tape_schemas::*;

const USDT: u64 = 1_000_000; // minor units per USDT
const BTC: u64 = 100_000_000;

#[test]
fn deposit_credits_available_through_a_posting_from_the_world() {
    let mut h = H::new();
    let (_, events) = h.ok(deposit(AccountId(9), "USDT", "12.5", "tx-1"));
    assert_eq!(h.available(AccountId(9), "USDT"), 12_500_000);
    assert!(events.contains(&Event::Posting {
        asset: code("USDT"),
        from: Party::World,
        to: Party::Available(AccountId(9)),
        amount: d("12.500000"),
        cause: Cause::Deposit,
    }));
}

#[test]
fn deposit_with_a_known_reference_is_refused_and_credits_nothing() {
    let mut h = H::new();
    let dep = |amount| deposit(ALICE, "BTC", amount, "chain-tx-77");
    h.ok(dep("1"));
    assert_eq!(
        h.rejected(dep("1")),
        RejectReason::DuplicateDepositReference
    );
    assert_eq!(
        h.rejected(dep("2")),
        RejectReason::DuplicateDepositReference
    );
    assert_eq!(h.available(ALICE, "BTC"), 11 * BTC);
}

#[test]
fn withdrawal_holds_funds_then_completion_sends_them_out() {
    let mut h = H::new();
    let (w, _) = h.ok(Command::RequestWithdrawal {
        account: ALICE,
        asset: code("USDT"),
        amount: d("100"),
    });
    assert_eq!(h.available(ALICE, "USDT"), 999_900 * USDT);
    assert_eq!(h.held(ALICE, "USDT"), 100 * USDT);
    let (_, events) = h.ok(Command::CompleteWithdrawal {
        withdrawal: WithdrawalId(w),
    });
    assert_eq!(h.held(ALICE, "USDT"), 0);
    assert_eq!(h.available(ALICE, "USDT"), 999_900 * USDT);
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Posting {
            to: Party::World,
            ..
        }
    )));
    assert_eq!(
        h.rejected(Command::CompleteWithdrawal {
            withdrawal: WithdrawalId(w)
        }),
        RejectReason::UnknownWithdrawal
    );
}

#[test]
fn failed_withdrawal_returns_the_funds_and_the_daily_allowance() {
    let mut h = H::new();
    h.ok(Command::SetWithdrawalLimit {
        account: ALICE,
        asset: code("BTC"),
        daily_limit: Some(d("1")),
    });
    let (w, _) = h.ok(Command::RequestWithdrawal {
        account: ALICE,
        asset: code("BTC"),
        amount: d("1"),
    });
    let more = Command::RequestWithdrawal {
        account: ALICE,
        asset: code("BTC"),
        amount: d("0.5"),
    };
    assert_eq!(
        h.rejected(more.clone()),
        RejectReason::WithdrawalLimitExceeded
    );
    h.ok(Command::FailWithdrawal {
        withdrawal: WithdrawalId(w),
    });
    assert_eq!(h.available(ALICE, "BTC"), 10 * BTC);
    assert_eq!(h.held(ALICE, "BTC"), 0);
    h.ok(more);
}

#[test]
fn daily_withdrawal_limit_counts_per_utc_day_and_asset_default_applies() {
    let mut h = H::empty();
    h.ok(Command::CreateAsset(AssetSpec {
        code: code("BTC"),
        scale: 8,
        daily_withdrawal_limit: Some(d("2")),
    }));
    h.deposit(ALICE, "BTC", "10");
    let w = |amount| Command::RequestWithdrawal {
        account: ALICE,
        asset: code("BTC"),
        amount: d(amount),
    };
    h.ok(w("1.5"));
    assert_eq!(h.rejected(w("0.6")), RejectReason::WithdrawalLimitExceeded);
    h.ok(w("0.5"));
    h.time_ms += 86_400_000;
    h.ok(w("2"));
    // A per-account override beats the asset default.
    h.ok(Command::SetWithdrawalLimit {
        account: ALICE,
        asset: code("BTC"),
        daily_limit: None,
    });
    h.ok(w("3"));
}

#[test]
fn restricted_accounts_cannot_trade_or_withdraw_but_can_cancel() {
    let mut h = H::new();
    let (id, _) = h.limit(ALICE, Side::Buy, "100", "1");
    h.ok(Command::SetAccountRestrictions {
        account: ALICE,
        can_trade: false,
        can_withdraw: false,
    });
    assert_eq!(
        h.rejected(limit(ALICE, Side::Buy, "100", "1", TimeInForce::Gtc)),
        RejectReason::TradingRestricted
    );
    assert_eq!(
        h.rejected(Command::RequestWithdrawal {
            account: ALICE,
            asset: code("USDT"),
            amount: d("1")
        }),
        RejectReason::WithdrawalRestricted
    );
    h.ok(cancel(ALICE, id));
    assert_eq!(h.held(ALICE, "USDT"), 0);
}

#[test]
fn disabled_asset_refuses_deposits_withdrawals_and_trading() {
    let mut h = H::new();
    h.ok(Command::SetAssetEnabled {
        asset: code("BTC"),
        enabled: false,
    });
    let dep = deposit(ALICE, "BTC", "1", "x");
    assert_eq!(h.rejected(dep), RejectReason::AssetDisabled);
    let w = Command::RequestWithdrawal {
        account: ALICE,
        asset: code("BTC"),
        amount: d("1"),
    };
    assert_eq!(h.rejected(w), RejectReason::AssetDisabled);
    assert_eq!(
        h.rejected(limit(ALICE, Side::Sell, "100", "1", TimeInForce::Gtc)),
        RejectReason::AssetDisabled
    );
}

#[test]
fn a_fill_moves_base_and_quote_and_charges_maker_and_taker_fees() {
    let mut h = H::new();
    let (sell, _) = h.limit(ALICE, Side::Sell, "30000", "1");
    assert_eq!(h.held(ALICE, "BTC"), BTC);
    let (buy, events) = h.limit(BOB, Side::Buy, "30010", "1");
    assert_eq!(
        trades(&events),
        vec![(d("30000.00"), d("1.00000000"), sell, buy)]
    );
    // Bob held 30010 + 0.2% and paid 30000 + 60 taker fee; the rest came back.
    assert_eq!(h.available(BOB, "USDT"), (1_000_000 - 30_060) * USDT);
    assert_eq!(h.held(BOB, "USDT"), 0);
    assert_eq!(h.available(BOB, "BTC"), 11 * BTC);
    // Alice received 30000 less the 0.1% maker fee.
    assert_eq!(h.available(ALICE, "USDT"), (1_000_000 + 30_000 - 30) * USDT);
    assert_eq!(h.available(ALICE, "BTC"), 9 * BTC);
    assert_eq!(h.held(ALICE, "BTC"), 0);
    assert_eq!(h.fees("USDT"), 90 * USDT);
    let fees: Vec<(Dec, Dec)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Trade {
                maker_fee,
                taker_fee,
                ..
            } => Some((*maker_fee, *taker_fee)),
            _ => None,
        })
        .collect();
    assert_eq!(fees, vec![(d("30"), d("60"))]);
}

#[test]
fn account_fee_tier_overrides_the_market_rates() {
    let mut h = H::new();
    let tier = FeeRates {
        maker_ppm: 0,
        taker_ppm: 500,
    };
    h.ok(Command::SetAccountFees {
        account: BOB,
        market: sym(BTC_USDT),
        fees: Some(tier),
    });
    h.limit(ALICE, Side::Sell, "100", "1");
    h.limit(BOB, Side::Buy, "100", "1");
    // Bob pays 0.05% taker (0.05 USDT); Alice pays the market's 0.1% maker (0.1).
    assert_eq!(h.fees("USDT"), 150_000);
    h.ok(Command::SetAccountFees {
        account: BOB,
        market: sym(BTC_USDT),
        fees: None,
    });
    h.limit(ALICE, Side::Sell, "100", "1");
    h.limit(BOB, Side::Buy, "100", "1");
    assert_eq!(h.fees("USDT"), 150_000 + 300_000);
}

#[test]
fn fees_round_down_to_the_minor_unit() {
    let mut h = H::new();
    // 0.0001 BTC at 0.01 is 0.000001 USDT notional: below the minimum; use 1 USDT.
    h.ok(Command::CreateMarket(MarketSpec {
        min_notional: d("0"),
        ..spec("ETH-USDT", "BTC", "USDT")
    }));
    let o = |account, side| {
        Command::PlaceOrder(NewOrder {
            account,
            market: sym("ETH-USDT"),
            side,
            order_type: OrderType::Limit {
                price: d("0.01"),
                quantity: d("0.0499"),
                time_in_force: TimeInForce::Gtc,
                post_only: false,
                display_quantity: None,
            },
            client_order_id: None,
            stp: StpMode::CancelTaker,
        })
    };
    h.ok(o(ALICE, Side::Sell));
    h.ok(o(BOB, Side::Buy));
    // Notional 499 minor units: 0.1% is 0.499 and 0.2% is 0.998 minor: both round to 0.
    assert_eq!(h.fees("USDT"), 0);
}
