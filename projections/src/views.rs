//! The rows the read models store and serve. They are plain data: the projector
//! writes them, the gateway reads them; neither side computes business rules here.

use serde::{Deserialize, Serialize};
use tape_schemas::*;

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct AssetView {
    pub code: AssetCode,
    pub scale: u8,
    pub enabled: bool,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct MarketView {
    pub spec: MarketSpec,
    pub status: MarketStatus,
    pub fees: FeeRates,
    pub price_band_bps: Option<u32>,
    /// The admin's reference price for the band (used until the first trade).
    pub reference_price: Option<Dec>,
    pub last_price: Option<Dec>,
    pub last_trade_ms: Option<u64>,
}

impl MarketView {
    /// A market as its creation leaves it: active, its spec's fees and band, no
    /// trade yet.
    pub fn created(spec: &MarketSpec) -> MarketView {
        MarketView {
            spec: spec.clone(),
            status: MarketStatus::Active,
            fees: spec.fees,
            price_band_bps: spec.price_band_bps,
            reference_price: None,
            last_price: None,
            last_trade_ms: None,
        }
    }
}

/// What a perpetual market has beyond its `MarketView`: its rules as created and
/// its prices as the oracle and the engine set them.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PerpetualView {
    pub spec: PerpetualSpec,
    /// The brackets as the engine derived them (floors, maintenance amounts).
    pub brackets: Vec<BracketTerms>,
    pub index: Option<Dec>,
    /// The index's source time.
    pub index_source_ms: Option<u64>,
    /// When the engine took the index (its clock).
    pub index_at_ms: Option<u64>,
    pub mark: Option<Dec>,
    /// The index is older than the market's staleness limit: it only reduces.
    pub stale: bool,
    /// The long positions' size (the insurance fund's included).
    pub open_interest: Dec,
    /// The last funding round's rate and time.
    pub funding_rate: Option<Dec>,
    pub funding_at_ms: Option<u64>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum LiquidationWhat {
    Started,
    /// One step (`LiquidationStage`).
    Step(LiquidationStage),
    Ended,
    /// The account's position was closed against one being liquidated
    /// (auto-deleveraging): `quantity` at `price`.
    Deleveraged,
}

/// What the operations metrics say of margin trading: liquidation events counted
/// by market and stage, and the insurance fund's balance per asset (negative: bad
/// debt).
#[derive(Clone, Default, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct MarginTotals {
    /// (market, stage) → steps; the stage as the event names it.
    pub steps: std::collections::BTreeMap<(Symbol, String), u64>,
    /// Liquidations started and ended, by collateral asset.
    pub started: std::collections::BTreeMap<AssetCode, u64>,
    pub ended: std::collections::BTreeMap<AssetCode, u64>,
    pub insurance: std::collections::BTreeMap<AssetCode, Dec>,
    /// Accounts' positions closed by auto-deleveraging, by market.
    pub deleveraged: std::collections::BTreeMap<Symbol, u64>,
    /// The insurance fund's positions: market → (signed size, signed cost).
    pub fund_positions: std::collections::BTreeMap<Symbol, (Dec, Dec)>,
}

/// One liquidation event of an account: it started, one step, or it ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LiquidationView {
    pub seq: u64,
    pub time_ms: u64,
    pub account: AccountId,
    pub what: LiquidationWhat,
    /// The perpetual of a step.
    pub market: Option<Symbol>,
    /// The collateral of a start or an end.
    pub asset: Option<AssetCode>,
    pub quantity: Option<Dec>,
    /// A step's bankruptcy price.
    pub price: Option<Dec>,
    pub equity: Option<Dec>,
    pub maintenance: Option<Dec>,
}

/// An account's position on a perpetual as its last `PositionChanged` left it.
/// Money is in the collateral asset; a closed position keeps its row (size zero)
/// for its realized profit and loss.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PositionView {
    pub account: AccountId,
    pub market: Symbol,
    /// Signed: long above zero.
    pub size: Dec,
    /// The entry notional, signed like the size.
    pub cost: Dec,
    /// Realized over the position's life, before fees.
    pub realized_pnl: Dec,
    pub leverage: u32,
    /// What the position and its resting orders hold.
    pub initial_margin: Dec,
    pub updated_ms: u64,
    /// Funding received over the position's life (negative: paid).
    pub funding: Dec,
}

impl PositionView {
    /// The average entry price: cost over size; `None` when flat.
    pub fn entry_price(&self) -> Option<Dec> {
        (!self.size.0.is_zero()).then(|| Dec(self.cost.0 / self.size.0))
    }

    /// Profit or loss at `mark`: the size's value there less its cost.
    pub fn unrealized_pnl(&self, mark: Dec) -> Dec {
        Dec(self.size.0 * mark.0 - self.cost.0)
    }
}

/// An account's leverage on a perpetual, as the core computes it: the lower of
/// its choice (or its cap), its tier's cap and the market's first bracket's
/// `max_leverage`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LeverageView {
    pub tier: LeverageTier,
    /// The tier's cap.
    pub cap: u32,
    pub chosen: Option<u32>,
    pub leverage: u32,
}

/// One account's balance of one asset. `total = available + held`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct WalletRow {
    pub available: Dec,
    pub held: Dec,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct WalletView {
    pub account: AccountId,
    pub asset: AssetCode,
    pub available: Dec,
    pub held: Dec,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum EntryKind {
    Deposit,
    Withdrawal,
    /// Settlement of a trade (what was bought or sold).
    Trade,
    /// A trading fee.
    Fee,
    /// Profit or loss realized on a perpetual, paid by or to its clearing party.
    RealizedPnl,
    /// A funding payment on a perpetual, paid to or received from its clearing
    /// party.
    Funding,
}

/// One change of an account's total balance of one asset (holds and releases move
/// money between available and held and are not entries).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub seq: u64,
    pub time_ms: u64,
    pub account: AccountId,
    pub asset: AssetCode,
    pub kind: EntryKind,
    /// Signed: positive credits the account.
    pub amount: Dec,
    /// The account's total of `asset` after this entry.
    pub balance: Dec,
    /// The trade or withdrawal id, when there is one.
    pub reference: Option<u64>,
}

/// The account's totals per asset at the end of an hour (the latest state within the
/// current hour).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct EquityPoint {
    pub time_ms: u64,
    pub balances: Vec<(AssetCode, Dec)>,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum OrderStatus {
    /// A stop waiting for its trigger.
    Pending,
    New,
    PartiallyFilled,
    Filled,
    /// Cancelled by its owner, unfilled (IOC/market), self-trade prevention, funds,
    /// price band or a disabled market: `done_reason` says which.
    Cancelled,
    Expired,
}

impl OrderStatus {
    pub fn is_open(self) -> bool {
        matches!(
            self,
            OrderStatus::Pending | OrderStatus::New | OrderStatus::PartiallyFilled
        )
    }
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct OrderView {
    pub order: OrderId,
    pub account: AccountId,
    pub market: Symbol,
    pub side: Side,
    pub order_type: OrderType,
    pub client_order_id: Option<ClientOrderId>,
    pub parent: Option<OrderId>,
    pub status: OrderStatus,
    pub done_reason: Option<DoneReason>,
    /// The price it rests at (limit orders on the book).
    pub price: Option<Dec>,
    /// Base filled so far, and its quote value.
    pub filled: Dec,
    pub filled_quote: Dec,
    /// Fees paid, in quote.
    pub fees: Dec,
    /// On the book: shown and iceberg reserve.
    pub visible: Dec,
    pub hidden: Dec,
    pub created_seq: u64,
    pub created_ms: u64,
    pub updated_ms: u64,
    /// The seq of the order's last change.
    pub updated_seq: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct TradeView {
    pub trade: TradeId,
    pub seq: u64,
    pub time_ms: u64,
    pub market: Symbol,
    pub price: Dec,
    pub quantity: Dec,
    pub quote_quantity: Dec,
    pub taker_side: Side,
    pub maker_order: OrderId,
    pub taker_order: OrderId,
    pub maker_account: AccountId,
    pub taker_account: AccountId,
    pub maker_fee: Dec,
    pub taker_fee: Dec,
}

/// A candle interval: the one type from the projector to the GraphQL API (the
/// gateway's `CandleInterval` mirrors it).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub enum Interval {
    M1,
    M5,
    M15,
    H1,
    H4,
    D1,
}

impl Interval {
    /// Every interval, shortest first; each trade updates a candle of each.
    pub const ALL: [Interval; 6] = [
        Interval::M1,
        Interval::M5,
        Interval::M15,
        Interval::H1,
        Interval::H4,
        Interval::D1,
    ];

    pub fn ms(self) -> u64 {
        match self {
            Interval::M1 => 60_000,
            Interval::M5 => 300_000,
            Interval::M15 => 900_000,
            Interval::H1 => 3_600_000,
            Interval::H4 => 14_400_000,
            Interval::D1 => 86_400_000,
        }
    }

    /// How the API writes it in a candle: `1m`, `5m`, `15m`, `1h`, `4h`, `1d`.
    pub fn name(self) -> &'static str {
        match self {
            Interval::M1 => "1m",
            Interval::M5 => "5m",
            Interval::M15 => "15m",
            Interval::H1 => "1h",
            Interval::H4 => "4h",
            Interval::D1 => "1d",
        }
    }

    pub fn from_name(name: &str) -> Option<Interval> {
        Interval::ALL.into_iter().find(|i| i.name() == name)
    }

    /// Its byte in the read model's candle keys (its place in `ALL`).
    pub(crate) fn key(self) -> u8 {
        self as u8
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Candle {
    pub start_ms: u64,
    pub open: Dec,
    pub high: Dec,
    pub low: Dec,
    pub close: Dec,
    /// Base traded.
    pub volume: Dec,
    pub quote_volume: Dec,
    pub trades: u64,
}

/// The last 24 hours of one market, from its 1-minute candles.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Ticker {
    pub market: Symbol,
    pub last: Option<Dec>,
    pub open: Option<Dec>,
    pub high: Option<Dec>,
    pub low: Option<Dec>,
    pub volume: Dec,
    pub quote_volume: Dec,
    pub trades: u64,
    pub best_bid: Option<Dec>,
    pub best_ask: Option<Dec>,
}

/// Aggregated visible quantity per price; bids best (highest) first, asks best
/// (lowest) first.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Depth {
    pub bids: Vec<(Dec, Dec)>,
    pub asks: Vec<(Dec, Dec)>,
}

/// Levels a depth checksum covers on each side.
pub const CHECKSUM_LEVELS: usize = 10;

impl Depth {
    /// The CRC32 a client checks its local book against (Kraken's scheme): over the
    /// best 10 asks (lowest first) then the best 10 bids (highest first), each
    /// level's price then quantity as sent, without the decimal point and leading
    /// zeros, concatenated.
    pub fn checksum(&self) -> u32 {
        let mut text = String::new();
        let digits = |d: &Dec, text: &mut String| {
            let s: String = d.to_string().chars().filter(|c| *c != '.').collect();
            text.push_str(s.trim_start_matches('0'));
        };
        for (price, qty) in self
            .asks
            .iter()
            .take(CHECKSUM_LEVELS)
            .chain(self.bids.iter().take(CHECKSUM_LEVELS))
        {
            digits(price, &mut text);
            digits(qty, &mut text);
        }
        crc32fast::hash(text.as_bytes())
    }

    /// What changed from `self` to `new`, level by level: each level that is new or
    /// whose quantity changed, and each level that went with quantity zero. Best
    /// first on each side.
    pub fn delta_to(&self, new: &Depth) -> Depth {
        fn side(old: &[(Dec, Dec)], new: &[(Dec, Dec)], bids: bool) -> Vec<(Dec, Dec)> {
            let old_map: std::collections::BTreeMap<Dec, Dec> = old.iter().copied().collect();
            let new_map: std::collections::BTreeMap<Dec, Dec> = new.iter().copied().collect();
            let mut changed: Vec<(Dec, Dec)> = new
                .iter()
                .filter(|(p, q)| old_map.get(p) != Some(q))
                .copied()
                .chain(
                    old.iter()
                        .filter(|(p, _)| !new_map.contains_key(p))
                        .map(|(p, _)| (*p, Dec::ZERO)),
                )
                .collect();
            changed.sort_by(|a, b| if bids { b.0.cmp(&a.0) } else { a.0.cmp(&b.0) });
            changed
        }
        Depth {
            bids: side(&self.bids, &new.bids, true),
            asks: side(&self.asks, &new.asks, false),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.bids.is_empty() && self.asks.is_empty()
    }
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SlicedReport {
    pub parent: OrderId,
    pub account: AccountId,
    pub market: Symbol,
    pub children: Vec<OrderId>,
    pub created_ms: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct BracketReport {
    pub entry: OrderId,
    pub account: AccountId,
    pub market: Symbol,
    pub exit: Option<OrderId>,
    pub closed_quantity: Dec,
    /// In quote, fees included.
    pub realized_pnl: Dec,
    pub exit_rejected: Option<RejectReason>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ApiKeyView {
    pub key: ApiKeyId,
    pub role: ApiRole,
    pub account: Option<AccountId>,
    pub secret_hash: Hash32,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum WithdrawalStatus {
    Requested,
    Completed,
    Failed,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct WithdrawalView {
    pub withdrawal: WithdrawalId,
    pub account: AccountId,
    pub asset: AssetCode,
    pub amount: Dec,
    pub status: WithdrawalStatus,
    pub requested_ms: u64,
    pub updated_ms: u64,
}

/// The engine's last checkpoint: the state hash an auditor's replay must reach.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct EngineCheckpointView {
    /// The events-log seq of the `Checkpoint` event.
    pub seq: u64,
    pub time_ms: u64,
    /// The commands-log offset of the command it follows.
    pub command_offset: u64,
    pub commands_applied: u64,
    pub state_hash: Hash32,
}

/// A proof-of-liabilities round as the log published it, and where.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LiabilityRoundView {
    pub commitment: LiabilityCommitment,
    /// The events-log seq of the `LiabilitiesCommitted` event and its time.
    pub seq: u64,
    pub time_ms: u64,
}

/// What an account may do, once an operator has set it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct RestrictionsView {
    pub account: AccountId,
    pub can_trade: bool,
    pub can_withdraw: bool,
    pub updated_ms: u64,
}

/// The engine's answer to one command, by command id.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct OutcomeView {
    pub command: CommandId,
    pub seq: u64,
    pub command_offset: u64,
    pub result: CommandResult,
    pub duplicate: bool,
}
