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
