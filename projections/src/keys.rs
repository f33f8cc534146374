//! The key layout of the one sled tree that holds every view. One tree, so that a
//! batch of view changes and the checkpoint land in one atomic `apply_batch`.
//! Numbers are big-endian so that keys sort by them.
//!
//! Append-only rows (ledger entries, trades, an account's order ids, outcomes) are
//! stored as one group per account (or market) per applied batch, keyed by the
//! group's first id: sled pays about as much for a new key as for kilobytes of
//! value, so this is what keeps the projector fast. Readers expand the groups.

use tape_schemas::*;

pub const CHECKPOINT: &[u8] = b"\x00checkpoint";
/// The layout of the read models (`VIEWS_FORMAT`): another one is rebuilt.
pub const FORMAT: &[u8] = b"\x00format";
/// Account + seq + order: the account's orders by the seq that ended them.
pub const CLOSED: u8 = b'z';
/// -> bool: whether every command must carry credentials.
pub const CREDENTIALS_REQUIRED: &[u8] = b"\x00credentials-required";
/// -> `EngineCheckpointView`: the engine's last `Checkpoint` event.
pub const ENGINE_CHECKPOINT: &[u8] = b"\x00engine-checkpoint";
/// Account -> `RestrictionsView` (only accounts that were ever restricted).
pub const RESTRICTIONS: u8 = b'r';
pub const ASSET: u8 = b'a';
pub const MARKET: u8 = b'm';
pub const WALLET: u8 = b'w';
/// Groups: account + first seq -> `Vec<LedgerEntry>`.
pub const ENTRY: u8 = b'l';
pub const EQUITY: u8 = b'e';
pub const ORDER: u8 = b'o';
/// Groups: account + first order id -> `Vec<u64>` (the account's new order ids).
pub const ACCOUNT_ORDER: u8 = b'O';
/// One row per account -> `BTreeSet<u64>` (its open order ids).
pub const OPEN_ORDER: u8 = b'p';
/// Groups: account + first trade id -> `Vec<TradeView>`.
pub const ACCOUNT_TRADE: u8 = b'T';
/// Groups: market + first trade id -> `Vec<TradeView>`.
pub const MARKET_TRADE: u8 = b'M';
pub const CANDLE: u8 = b'c';
/// market -> (market, the whole `Depth`).
pub const DEPTH: u8 = b'd';
/// market -> the best `DEPTH_TOP_LEVELS` of each side.
pub const DEPTH_TOP: u8 = b'D';
pub const SLICED: u8 = b's';
pub const BRACKET: u8 = b'b';
pub const API_KEY: u8 = b'k';
pub const WITHDRAWAL: u8 = b'x';
/// Groups: first command offset -> `Vec<OutcomeView>` (every outcome of a batch).
pub const OUTCOME: u8 = b'C';
/// Command offset + item -> the `CommandResult` of a batch's item.
pub const ITEM_OUTCOME: u8 = b'I';
/// market -> `PerpetualView` (perpetual markets only; their `MarketView` is there too).
pub const PERPETUAL: u8 = b'P';
/// -> `TierCaps`: the leverage tiers' caps (absent: the defaults).
pub const LEVERAGE_TIERS: &[u8] = b"\x00leverage-tiers";
/// Account -> `LeverageTier` (absent: beginner).
pub const TIER: u8 = b'Q';
/// Account + market -> the leverage it chose (`u32`).
pub const LEVERAGE: u8 = b'L';
/// Account id, market symbol → `PositionView`.
pub const POSITION: u8 = b'V';
/// Account id, seq → `LiquidationView`.
pub const LIQUIDATION: u8 = b'Y';
/// Account id (`u64::MAX`: the default), collateral → its notional cap (`Dec`).
pub const NOTIONAL_CAP: u8 = b'N';
/// Round -> `LiabilityRoundView`: the proof-of-liabilities rounds on the log.
pub const LIABILITY_ROUND: u8 = b'R';
/// The liquidation counts and the insurance fund (`MarginTotals`).
pub const MARGIN_TOTALS: &[u8] = b"\x00margin-totals";

/// A key: a tag byte, then fixed-width parts.
pub struct Key(Vec<u8>);

impl Key {
    pub fn new(tag: u8) -> Key {
        let mut v = Vec::with_capacity(40);
        v.push(tag);
        Key(v)
    }
    pub fn u64(mut self, n: u64) -> Key {
        self.0.extend_from_slice(&n.to_be_bytes());
        self
    }
    pub fn u8(mut self, n: u8) -> Key {
        self.0.push(n);
        self
    }
    /// A short name padded to a fixed width so that later parts line up.
    pub fn name<const N: usize>(mut self, s: &ShortStr<N>) -> Key {
        let b = s.as_str().as_bytes();
        self.0.extend_from_slice(b);
        self.0.extend(std::iter::repeat_n(0u8, N - b.len()));
        self
    }
    pub fn bytes(mut self, b: &[u8]) -> Key {
        self.0.extend_from_slice(b);
        self
    }
    pub fn build(self) -> Vec<u8> {
        self.0
    }
}

/// The last 8 bytes of a key as a number (the id in index keys).
pub fn tail_u64(key: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&key[key.len() - 8..]);
    u64::from_be_bytes(b)
}

pub fn side_byte(side: Side) -> u8 {
    match side {
        Side::Buy => 0,
        Side::Sell => 1,
    }
}
