//! Test support shared by every crate's tests: literals, the reference market spec,
//! signing, and the random command stream (`random`). It builds only `tape-schemas`
//! values, so the core's own tests can use it with no dependency cycle (the
//! standard trading mix, which runs a core to generate, stays in `tape-benches`).

pub mod random;

use tape_schemas::*;

/// A decimal literal.
pub fn d(s: &str) -> Dec {
    s.parse().expect("a decimal literal")
}

/// A market symbol literal.
pub fn sym(s: &str) -> Symbol {
    s.parse().expect("a symbol literal")
}

/// An asset code literal.
pub fn code(s: &str) -> AssetCode {
    s.parse().expect("an asset code literal")
}

/// The fees of the reference market: maker 0.1%, taker 0.2%.
pub const FEES: FeeRates = FeeRates {
    maker_ppm: 1_000,
    taker_ppm: 2_000,
};

/// The reference market's rules for `base`/`quote`: tick 0.01, lot 0.0001, minimum
/// notional 1, `FEES`, no quantity limits, no price band.
pub fn spec(symbol: &str, base: &str, quote: &str) -> MarketSpec {
    MarketSpec {
        symbol: sym(symbol),
        base: code(base),
        quote: code(quote),
        tick_size: d("0.01"),
        lot_size: d("0.0001"),
        min_notional: d("1"),
        min_quantity: None,
        max_quantity: None,
        fees: FEES,
        price_band_bps: None,
    }
}

/// The reference market, BTC-USDT, with these fees.
pub fn btc_usdt(fees: FeeRates) -> MarketSpec {
    MarketSpec {
        fees,
        ..spec("BTC-USDT", "BTC", "USDT")
    }
}

/// No fees.
/// A deposit of `amount` of `asset` into `account`, idempotent by `reference`.
pub fn deposit(account: AccountId, asset: &str, amount: &str, reference: &str) -> Command {
    Command::Deposit {
        account,
        asset: code(asset),
        amount: d(amount),
        reference: reference.parse().expect("a test reference"),
    }
}

/// A plain limit order on BTC-USDT (the reference market of `btc_usdt`).
pub fn limit(account: AccountId, side: Side, price: &str, qty: &str, tif: TimeInForce) -> Command {
    Command::PlaceOrder(NewOrder {
        account,
        market: sym("BTC-USDT"),
        side,
        order_type: OrderType::Limit {
            price: d(price),
            quantity: d(qty),
            time_in_force: tif,
            post_only: false,
            display_quantity: None,
        },
        client_order_id: None,
        stp: StpMode::CancelTaker,
    })
}

pub const NO_FEES: FeeRates = FeeRates {
    maker_ppm: 0,
    taker_ppm: 0,
};

/// `env` signed with `key` (whose secret is `secret`) as `seq` of `stream`.
pub fn sign_on(
    env: CommandEnvelope,
    key: ApiKeyId,
    secret: &str,
    stream: u64,
    seq: u64,
    expires_ms: u64,
) -> CommandEnvelope {
    let auth = Credentials {
        key,
        stream,
        seq,
        expires_ms,
        mac: Hash32::default(),
    };
    env.sign(&mac_key(secret), auth)
        .expect("a test command encodes")
}

/// Signs as one test process would: one stream, its numbers in order.
pub fn sign_test(
    envelope: CommandEnvelope,
    key: ApiKeyId,
    mac_key: &Hash32,
    expires_ms: u64,
) -> CommandEnvelope {
    envelope
        .sign(mac_key, test_credentials(key, expires_ms))
        .unwrap()
}

/// `sign_test` as a JSON record.
pub fn sign_json_test(
    envelope: &CommandEnvelope,
    key: ApiKeyId,
    mac_key: &Hash32,
    expires_ms: u64,
) -> String {
    sign_json(envelope, mac_key, test_credentials(key, expires_ms)).unwrap()
}

fn test_credentials(key: ApiKeyId, expires_ms: u64) -> Credentials {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    Credentials {
        key,
        stream: 0x7e57,
        seq: SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        expires_ms,
        mac: Hash32::default(),
    }
}
