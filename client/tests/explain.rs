//! Every `RejectReason` has a sentence, and each names its rule's bound and the
//! command's value where there are any. The list of reasons comes from the
//! committed JSON Schema, so a new reason without a case here fails.

use serde_json::json;
use tape_client::{explain, Facts};
use tape_projections::MarketView;
use tape_schemas::*;

/// A small exchange: BTC (8), USD (2), USDT (6); BTC-USDT with tick 0.01, lot
/// 0.0001, orders of 0.001 to 100 BTC and 10 USDT at least, a 5% band, last trade
/// 30000; account 1 has 100 USDT and 0.5 BTC available and order 5 on BTC-USDT.
struct Exchange;

impl Facts for Exchange {
    fn index(&self, market: &Symbol) -> Option<(Dec, u32)> {
        (market.to_string() == "BTC-PERP").then(|| ("50000".parse().unwrap(), 50_000))
    }

    fn asset(&self, code: &AssetCode) -> Option<(u8, bool)> {
        match code.to_string().as_str() {
            "BTC" => Some((8, true)),
            "USD" => Some((2, true)),
            "USDT" => Some((6, true)),
            _ => None,
        }
    }

    fn market(&self, symbol: &Symbol) -> Option<MarketView> {
        (symbol.to_string() == "BTC-USDT").then(|| MarketView {
            spec: serde_json::from_value(json!({
                "symbol": "BTC-USDT", "base": "BTC", "quote": "USDT", "tick_size": "0.01",
                "lot_size": "0.0001", "min_notional": "10", "min_quantity": "0.001",
                "max_quantity": "100", "fees": {"maker_ppm": 1000, "taker_ppm": 2000},
                "price_band_bps": 500
            }))
            .unwrap(),
            status: MarketStatus::Active,
            fees: FeeRates {
                maker_ppm: 1000,
                taker_ppm: 2000,
            },
            price_band_bps: Some(500),
            reference_price: None,
            last_price: Some("30000".parse().unwrap()),
            last_trade_ms: None,
        })
    }

    fn available(&self, account: AccountId, asset: &AssetCode) -> Option<Dec> {
        match (account.0, asset.to_string().as_str()) {
            (1, "USDT") => Some("100".parse().unwrap()),
            (1, "BTC") => Some("0.5".parse().unwrap()),
            (1, _) => Some(Dec::ZERO),
            _ => None,
        }
    }

    fn order_market(&self, account: AccountId, order: &OrderRef) -> Option<Symbol> {
        (account.0 == 1 && *order == OrderRef::Id(OrderId(5))).then(|| "BTC-USDT".parse().unwrap())
    }
}

fn command(v: serde_json::Value) -> Command {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{v}: {e}"))
}

fn limit(side: &str, price: &str, quantity: &str) -> Command {
    command(
        json!({"place_order": {"account": 1, "market": "BTC-USDT", "side": side,
        "order_type": {"limit": {"price": price, "quantity": quantity}}}}),
    )
}

fn signed(command: Command) -> CommandEnvelope {
    let mut e = CommandEnvelope::new(CommandId::from_u128(1), 1_800_000_000_000, command);
    e.auth = Some(Credentials {
        key: ApiKeyId(7),
        stream: 42,
        seq: 9,
        expires_ms: 1_799_999_999_000,
        mac: Hash32::default(),
    });
    e
}

/// Each reason: a command it may answer, and what its sentence must contain.
fn cases() -> Vec<(RejectReason, CommandEnvelope, Vec<&'static str>)> {
    use RejectReason as R;
    let plain = |c: Command| CommandEnvelope::new(CommandId::from_u128(1), 1_800_000_000_000, c);
    let btc_usd = command(
        json!({"create_market": {"symbol": "BTC-USD", "base": "BTC", "quote": "USD",
        "tick_size": "0.01", "lot_size": "0.0001", "min_notional": "1",
        "fees": {"maker_ppm": 1000, "taker_ppm": 2000}}}),
    );
    let asset = |scale: u8| command(json!({"create_asset": {"code": "XYZ", "scale": scale}}));
    let deposit = command(
        json!({"deposit": {"account": 1, "asset": "USD", "amount": "1.005", "reference": "wire-7"}}),
    );
    let withdraw =
        command(json!({"request_withdrawal": {"account": 1, "asset": "USDT", "amount": "250"}}));
    let amend =
        command(json!({"amend_order": {"account": 1, "order": {"id": 5}, "price": "30000.001"}}));
    let mut unsupported = plain(limit("sell", "30000", "1"));
    unsupported.version = 2;
    vec![
        (
            R::MalformedCommand,
            plain(Command::ClockTick),
            vec!["does not decode"],
        ),
        (
            R::UnsupportedVersion,
            unsupported,
            vec!["version 2", "version 3"],
        ),
        (
            R::UnknownAsset,
            plain(command(
                json!({"set_asset_enabled": {"asset": "DOGE", "enabled": true}}),
            )),
            vec!["DOGE"],
        ),
        (
            R::AssetExists,
            plain(asset(2)),
            vec!["XYZ", "already exists"],
        ),
        (
            R::AssetDisabled,
            plain(deposit.clone()),
            vec!["USD", "disabled"],
        ),
        (
            R::InvalidAssetScale,
            plain(asset(19)),
            vec!["at most 18", "19"],
        ),
        (
            R::UnknownMarket,
            plain(command(
                json!({"cancel_all": {"account": 1, "market": "ETH-USDT"}}),
            )),
            vec!["ETH-USDT"],
        ),
        (
            R::MarketExists,
            plain(btc_usd.clone()),
            vec!["BTC-USD", "already exists"],
        ),
        (
            R::MarketHalted,
            plain(limit("sell", "30000", "1")),
            vec!["BTC-USDT", "halted"],
        ),
        (
            R::MarketDisabled,
            plain(limit("sell", "30000", "1")),
            vec!["BTC-USDT", "disabled"],
        ),
        (
            R::InvalidMarketSpec,
            plain(btc_usd),
            vec!["tick × lot = 0.000001 USD", "scale of 2 decimals"],
        ),
        (
            R::InvalidFee,
            plain(command(
                json!({"set_market_fees": {"market": "BTC-USDT", "fees": {"maker_ppm": 200000, "taker_ppm": 0}}}),
            )),
            vec!["100000 ppm", "10%", "200000"],
        ),
        (
            R::UnknownAccount,
            plain(withdraw.clone()),
            vec!["account 1"],
        ),
        (
            R::UnknownOrder,
            plain(command(
                json!({"cancel_order": {"account": 1, "order": {"id": 99}}}),
            )),
            vec!["account 1", "no open order"],
        ),
        (
            R::UnknownWithdrawal,
            plain(command(json!({"complete_withdrawal": {"withdrawal": 3}}))),
            vec!["withdrawal"],
        ),
        (
            R::InvalidPrice,
            plain(limit("sell", "0", "1")),
            vec!["positive", "0 was given"],
        ),
        (
            R::InvalidQuantity,
            plain(limit("sell", "30000", "-1")),
            vec!["positive", "-1 was given"],
        ),
        (
            R::InvalidAmount,
            plain(command(
                json!({"deposit": {"account": 1, "asset": "USD", "amount": "0", "reference": "w"}}),
            )),
            vec!["positive", "0 was given"],
        ),
        (
            R::TooManyDecimals,
            plain(deposit.clone()),
            vec!["1.005 USD has 3 decimal places", "allows 2"],
        ),
        (
            R::PriceNotOnTick,
            plain(amend),
            vec!["ticks of 0.01", "30000.001"],
        ),
        (
            R::QuantityNotOnLot,
            plain(limit("sell", "30000", "0.00015")),
            vec!["lots of 0.0001", "0.00015"],
        ),
        (
            R::OutOfRange,
            plain(limit("sell", "30000", "1")),
            vec!["too large"],
        ),
        (
            R::BelowMinQuantity,
            plain(limit("sell", "30000", "0.0005")),
            vec!["0.001 BTC", "0.0005"],
        ),
        (
            R::AboveMaxQuantity,
            plain(limit("sell", "30000", "150")),
            vec!["100 BTC", "150"],
        ),
        (
            R::BelowMinNotional,
            plain(limit("buy", "30000", "0.0001")),
            vec!["10 USDT", "this one is 3"],
        ),
        (
            R::PriceOutsideBand,
            plain(limit("sell", "40000", "1")),
            vec![
                "500 bps",
                "last trade (30000)",
                "from 28500 to 31500",
                "40000",
            ],
        ),
        (
            R::InsufficientFunds,
            plain(limit("buy", "30000", "0.01")),
            vec![
                "300.6 USDT",
                "price × quantity = 300",
                "0.2%",
                "100 USDT available",
            ],
        ),
        (
            R::TradingRestricted,
            plain(limit("sell", "30000", "1")),
            vec!["account 1", "restricted from trading"],
        ),
        (
            R::WithdrawalRestricted,
            plain(withdraw.clone()),
            vec!["account 1", "restricted from withdrawing"],
        ),
        (
            R::WithdrawalLimitExceeded,
            plain(withdraw),
            vec!["account 1", "250 USDT"],
        ),
        (
            R::DuplicateDepositReference,
            plain(deposit),
            vec!["wire-7", "once"],
        ),
        (
            R::DuplicateClientOrderId,
            plain(command(
                json!({"place_order": {"account": 1, "market": "BTC-USDT", "side": "sell",
            "order_type": {"limit": {"price": "30000", "quantity": "1"}}, "client_order_id": "q-1"}}),
            )),
            vec!["q-1"],
        ),
        (
            R::PostOnlyWouldTrade,
            plain(limit("buy", "31000", "1")),
            vec!["post-only", "31000"],
        ),
        (
            R::FokCannotFill,
            plain(limit("buy", "30000", "2")),
            vec!["fill-or-kill", "all of its 2 BTC"],
        ),
        (
            R::NoLiquidity,
            plain(command(
                json!({"place_order": {"account": 1, "market": "BTC-USDT", "side": "buy",
            "order_type": {"market": {"size": {"base": "1"}}}}}),
            )),
            vec!["market order", "none"],
        ),
        (
            R::ExpiryInPast,
            plain(command(
                json!({"place_order": {"account": 1, "market": "BTC-USDT", "side": "buy",
            "order_type": {"limit": {"price": "30000", "quantity": "1", "time_in_force": {"gtd": {"expires_at_ms": 5}}}}}}),
            )),
            vec!["expires_at_ms 5", "1800000000000"],
        ),
        (
            R::InvalidSlice,
            plain(command(
                json!({"place_sliced": {"account": 1, "market": "BTC-USDT", "side": "buy",
            "lower_price": "31000", "upper_price": "30000", "count": 3, "total_quantity": "1"}}),
            )),
            vec!["1 to 100 children", "3 children from 31000 to 30000"],
        ),
        (
            R::InvalidBracket,
            plain(command(
                json!({"place_bracket": {"account": 1, "market": "BTC-USDT", "side": "buy",
            "entry_price": "30000", "quantity": "1", "exit_price": "29000"}}),
            )),
            vec!["above", "entry 30000 and exit 29000"],
        ),
        (
            R::NotAmendable,
            plain(command(
                json!({"amend_order": {"account": 1, "order": {"id": 5}, "quantity": "1"}}),
            )),
            vec!["resting limit order"],
        ),
        (
            R::NothingToChange,
            plain(command(
                json!({"amend_order": {"account": 1, "order": {"id": 5}}}),
            )),
            vec!["nothing to change"],
        ),
        (
            R::TooManyOpenOrders,
            plain(limit("sell", "30000", "1")),
            vec!["10000 open orders", "account 1"],
        ),
        (
            R::InvalidTimeInForce,
            plain(limit("sell", "30000", "1")),
            vec!["IOC or FOK"],
        ),
        (
            R::UnsupportedOrderType,
            plain(limit("sell", "30000", "1")),
            vec!["not offered"],
        ),
        (
            R::UnknownApiKey,
            signed(limit("sell", "30000", "1")),
            vec!["API key 7"],
        ),
        (
            R::InvalidApiKey,
            plain(command(json!({"create_api_key": {"role": "trader",
            "secret_hash": "00".repeat(32), "mac_key": "00".repeat(32)}}))),
            vec!["exactly one account"],
        ),
        (
            R::MissingCredentials,
            plain(limit("sell", "30000", "1")),
            vec!["unsigned"],
        ),
        (
            R::BadSignature,
            signed(limit("sell", "30000", "1")),
            vec!["MAC"],
        ),
        (
            R::CredentialsExpired,
            signed(limit("sell", "30000", "1")),
            vec!["1799999999000", "1800000000000"],
        ),
        (
            R::ExpiryTooFar,
            signed(limit("sell", "30000", "1")),
            vec!["60 s", "1799999999000"],
        ),
        (
            R::ReplayedSeq,
            signed(limit("sell", "30000", "1")),
            vec!["stream 42", "seq 9"],
        ),
        (
            R::SeqTooOld,
            signed(limit("sell", "30000", "1")),
            vec!["seq 9", "256"],
        ),
        (
            R::TooManySigningStreams,
            signed(limit("sell", "30000", "1")),
            vec!["16 signing streams"],
        ),
        (
            R::NotPermitted,
            signed(limit("sell", "30000", "1")),
            vec!["may not issue"],
        ),
        (
            R::TimeBeyondHorizon,
            plain(Command::ClockTick),
            vec!["4102444800000", "1800000000000"],
        ),
        (
            R::ClockJumpTooLarge,
            plain(Command::ClockTick),
            vec!["7 days", "1800000000000", "AllowClockJump"],
        ),
        (
            R::TooManyAssets,
            plain(asset(2)),
            vec!["4096 assets", "XYZ"],
        ),
        (
            R::TooManyMarkets,
            plain(command(
                json!({"create_market": {"symbol": "ETH-USDT", "base": "ETH", "quote": "USDT",
            "tick_size": "0.01", "lot_size": "0.001", "min_notional": "1", "fees": {"maker_ppm": 0, "taker_ppm": 0}}}),
            )),
            vec!["4096 markets", "ETH-USDT"],
        ),
        (
            R::TooManyAccounts,
            plain(command(
                json!({"deposit": {"account": 9, "asset": "USD", "amount": "1", "reference": "r"}}),
            )),
            vec!["10000000 accounts", "account 9"],
        ),
        (
            R::TooManyApiKeys,
            plain(Command::ClockTick),
            vec!["100000 live API keys"],
        ),
        (
            R::TooManyPendingWithdrawals,
            plain(Command::ClockTick),
            vec!["1000000 pending withdrawals"],
        ),
        (
            R::TooManyDeposits,
            plain(Command::ClockTick),
            vec!["100000000 deposit references"],
        ),
        (
            R::TooManyParents,
            plain(Command::ClockTick),
            vec!["1000000 live sliced and bracket"],
        ),
        (
            R::TimeoutTooLong,
            plain(command(
                json!({"cancel_all_after": {"account": 1, "timeout_ms": 90000000}}),
            )),
            vec!["86400000 ms", "90000000 ms"],
        ),
        (
            R::BatchSize,
            plain(command(json!({"batch": {"account": 1, "items": []}}))),
            vec!["1 to 20 items", "has 0"],
        ),
        (
            R::InvalidPerpetualSpec,
            plain(Command::ClockTick),
            vec!["1 to 16 brackets", "below the initial rate"],
        ),
        (
            R::NotAPerpetual,
            plain(index("BTC-USDT", "50000", 5)),
            vec!["BTC-USDT is a spot market"],
        ),
        (
            R::IndexMoveTooLarge,
            plain(index("BTC-PERP", "90000", 5)),
            vec![
                "BTC-PERP",
                "at most 5% (50000 ppm)",
                "its last, 50000",
                "90000 is 80% away",
            ],
        ),
        (
            R::IndexSourceTimeNotAfter,
            plain(index("BTC-PERP", "50000", 5)),
            vec!["BTC-PERP", "at or after 5"],
        ),
        (
            R::IndexSourceTimeAhead,
            plain(index("BTC-PERP", "50000", 1_800_000_000_001)),
            vec!["1800000000001", "(1800000000000)"],
        ),
        (
            R::IndexOutsideLimits,
            plain(index("BTC-PERP", "0.5", 5)),
            vec!["index 0.5", "BTC-PERP"],
        ),
        (
            R::PerpetualTradingNotBuilt,
            plain(command(
                json!({"place_order": {"account": 1, "market": "BTC-PERP", "side": "buy",
                "order_type": {"limit": {"price": "50000", "quantity": "1"}}}}),
            )),
            vec![
                "BTC-PERP is a perpetual market",
                "engines since take every order type there",
            ],
        ),
        (
            R::InvalidLeverage,
            plain(command(
                json!({"set_leverage": {"account": 1, "market": "BTC-PERP", "leverage": 0}}),
            )),
            vec!["1 to 1,000", "0 was asked"],
        ),
        (
            R::LeverageAboveCap,
            plain(command(
                json!({"set_leverage": {"account": 1, "market": "BTC-PERP", "leverage": 50}}),
            )),
            vec!["50x", "account 1", "BTC-PERP", "tier's cap"],
        ),
        (
            R::InsufficientMargin,
            plain(perp_order(
                json!({"limit": {"price": "50000", "quantity": "1"}}),
            )),
            vec!["cannot carry", "BTC-PERP", "initial margin", "the mark"],
        ),
        (
            R::NoIndexPrice,
            plain(perp_order(
                json!({"limit": {"price": "50000", "quantity": "1"}}),
            )),
            vec!["BTC-PERP has no index price", "tape oracle"],
        ),
        (
            R::MarketReduceOnly,
            plain(perp_order(
                json!({"limit": {"price": "50000", "quantity": "1"}}),
            )),
            vec!["index of BTC-PERP is stale", "reduce-only"],
        ),
        (
            R::WouldIncreasePosition,
            plain(command(
                json!({"place_reduce_only": {"account": 1, "market": "BTC-PERP", "side": "buy",
                "order_type": {"limit": {"price": "50000", "quantity": "1"}}}}),
            )),
            vec!["reduce-only order on BTC-PERP", "opposite the position"],
        ),
        (
            R::NoPosition,
            plain(command(
                json!({"close_position": {"account": 1, "market": "BTC-PERP"}}),
            )),
            vec!["no position on BTC-PERP"],
        ),
        (
            R::OpenInterestCap,
            plain(perp_order(
                json!({"limit": {"price": "50000", "quantity": "1"}}),
            )),
            vec!["open interest of BTC-PERP", "open_interest_max"],
        ),
        (
            R::PositionNotionalCap,
            plain(perp_order(
                json!({"limit": {"price": "50000", "quantity": "1"}}),
            )),
            vec!["position on BTC-PERP", "last leverage bracket"],
        ),
        (
            R::AccountNotionalCap,
            plain(perp_order(
                json!({"limit": {"price": "50000", "quantity": "1"}}),
            )),
            vec!["settled like BTC-PERP", "SetNotionalCap"],
        ),
        (
            R::LiabilityRound,
            plain(liabilities(3, 40, 1, 20)),
            vec![
                "round 3 at checkpoint 40",
                "not the next round",
                "liabilityRounds",
            ],
        ),
        (
            R::LiabilityRecord,
            plain(liabilities(1, 40, 2, 33)),
            vec![
                "algorithm 2 (this build: 1)",
                "height 33 (1 to 32)",
                "one total per asset",
            ],
        ),
    ]
}

/// A liabilities round's commitment with one total (BTC).
fn liabilities(round: u64, checkpoint: u64, algorithm: u16, height: u8) -> Command {
    let zero = "0".repeat(64);
    command(
        json!({"commit_liabilities": {"round": round, "checkpoint": checkpoint,
        "checkpoint_seq": 7, "state_hash": zero, "height": height, "algorithm": algorithm,
        "root": zero, "totals": [{"asset": "BTC", "users": 5, "fees": 0, "insurance": 0}]}}),
    )
}

/// Account 1's buy on BTC-PERP of `order_type`.
fn perp_order(order_type: serde_json::Value) -> Command {
    command(
        json!({"place_order": {"account": 1, "market": "BTC-PERP", "side": "buy",
        "order_type": order_type}}),
    )
}

fn index(market: &str, price: &str, source_ms: u64) -> Command {
    command(json!({"set_index_price": {"market": market, "price": price, "source_ms": source_ms}}))
}

/// Every reason the wire knows, from the committed JSON Schema.
fn every_reason() -> Vec<RejectReason> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../schemas/json/event-envelope.schema.json"
    );
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut names = Vec::new();
    for variant in schema["$defs"]["RejectReason"]["oneOf"].as_array().unwrap() {
        match (&variant["enum"], &variant["const"]) {
            (serde_json::Value::Array(all), _) => names.extend(all.iter().cloned()),
            (_, c @ serde_json::Value::String(_)) => names.push(c.clone()),
            other => panic!("an unexpected schema shape: {other:?}"),
        }
    }
    names
        .into_iter()
        .map(|n| serde_json::from_value(n).unwrap())
        .collect()
}

#[test]
fn every_reject_reason_has_a_sentence_with_its_bound_and_value() {
    let cases = cases();
    let every = every_reason();
    assert!(every.len() > 60, "the schema lists {} reasons", every.len());
    for reason in &every {
        let n = cases.iter().filter(|(r, _, _)| r == reason).count();
        assert_eq!(n, 1, "{reason:?} has {n} cases here");
    }
    for (reason, envelope, wanted) in &cases {
        let sentence = explain(*reason, envelope, &Exchange);
        let code = serde_json::to_value(reason).unwrap();
        assert!(sentence.len() > 20, "{reason:?}: {sentence:?}");
        assert_ne!(
            Some(sentence.as_str()),
            code.as_str(),
            "{reason:?} only repeats its code"
        );
        for w in wanted {
            assert!(sentence.contains(w), "{reason:?}: {sentence:?} lacks {w:?}");
        }
    }
}

#[test]
fn without_facts_a_sentence_still_has_the_rule_and_the_commands_value() {
    let e = CommandEnvelope::new(CommandId::from_u128(1), 0, limit("sell", "30000.001", "1"));
    let s = explain(RejectReason::PriceNotOnTick, &e, &tape_client::NoFacts);
    assert_eq!(
        s,
        "the price 30000.001 is not a multiple of BTC-USDT's tick size"
    );
    for reason in every_reason() {
        assert!(tape_client::rule(reason).len() > 20, "{reason:?}");
    }
}
