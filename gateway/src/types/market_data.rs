//! Market data: assets, markets, public trades, candles, tickers and depth.

use super::*;

#[derive(SimpleObject, Clone)]
pub struct Asset {
    pub code: String,
    pub scale: u8,
    pub enabled: bool,
}

impl From<AssetView> for Asset {
    fn from(a: AssetView) -> Self {
        Asset {
            code: a.code.to_string(),
            scale: a.scale,
            enabled: a.enabled,
        }
    }
}

pub struct Market(pub MarketView);

#[Object]
impl Market {
    async fn symbol(&self) -> String {
        self.0.spec.symbol.to_string()
    }
    async fn base(&self) -> String {
        self.0.spec.base.to_string()
    }
    async fn quote(&self) -> String {
        self.0.spec.quote.to_string()
    }
    async fn tick_size(&self) -> Decimal {
        dm(self.0.spec.tick_size)
    }
    async fn lot_size(&self) -> Decimal {
        dm(self.0.spec.lot_size)
    }
    async fn min_notional(&self) -> Decimal {
        dm(self.0.spec.min_notional)
    }
    async fn status(&self) -> MarketStatus {
        self.0.status.into()
    }
    /// Parts per million of the quote notional.
    async fn maker_fee_ppm(&self) -> u32 {
        self.0.fees.maker_ppm
    }
    async fn taker_fee_ppm(&self) -> u32 {
        self.0.fees.taker_ppm
    }
    async fn price_band_bps(&self) -> Option<u32> {
        self.0.price_band_bps
    }
    async fn last_price(&self) -> Option<Decimal> {
        self.0.last_price.map(dm)
    }
}

/// A perpetual market's rules and prices (its book is the market of the same
/// symbol), and its open interest.
pub struct Perpetual(pub PerpetualView);

#[Object]
impl Perpetual {
    async fn symbol(&self) -> String {
        self.0.spec.market.symbol.to_string()
    }
    /// The asset positions are settled in.
    async fn collateral(&self) -> String {
        self.0.spec.market.quote.to_string()
    }
    /// What the contract tracks; nothing of it moves on the ledger.
    async fn underlying(&self) -> String {
        self.0.spec.market.base.to_string()
    }
    async fn tick_size(&self) -> Decimal {
        dm(self.0.spec.market.tick_size)
    }
    async fn brackets(&self) -> Vec<LeverageBracket> {
        self.0
            .brackets
            .iter()
            .map(|b| LeverageBracket {
                notional_floor: dm(b.notional_floor),
                notional_cap: dm(b.notional_cap),
                max_leverage: b.max_leverage,
                maintenance_ppm: b.maintenance_ppm,
                maintenance_amount: dm(b.maintenance_amount),
            })
            .collect()
    }
    async fn index(&self) -> Option<Decimal> {
        self.0.index.map(dm)
    }
    /// When the index's sources priced it (ms since the UNIX epoch).
    async fn index_source_ms(&self) -> Option<u64> {
        self.0.index_source_ms
    }
    /// When the engine took it (its clock).
    async fn index_at_ms(&self) -> Option<u64> {
        self.0.index_at_ms
    }
    async fn mark(&self) -> Option<Decimal> {
        self.0.mark.map(dm)
    }
    /// The index is older than `staleAfterMs`: the market only reduces positions.
    async fn stale(&self) -> bool {
        self.0.stale
    }
    async fn stale_after_ms(&self) -> u64 {
        self.0.spec.index.stale_after_ms
    }
    /// The largest move of one index update, in ppm.
    async fn max_index_move_ppm(&self) -> u32 {
        self.0.spec.index.max_move_ppm
    }
    async fn index_min_price(&self) -> Decimal {
        dm(self.0.spec.index.min_price)
    }
    async fn index_max_price(&self) -> Decimal {
        dm(self.0.spec.index.max_price)
    }
    /// The most the book may move the mark from the index, in ppm.
    async fn mark_basis_max_ppm(&self) -> u32 {
        self.0.spec.mark_basis_max_ppm
    }
    async fn funding_interval_ms(&self) -> u64 {
        self.0.spec.funding_interval_ms
    }
    /// In the underlying.
    async fn open_interest_max(&self) -> Decimal {
        dm(self.0.spec.open_interest_max)
    }
    /// The long positions' size, in the underlying (the insurance fund's
    /// included).
    async fn open_interest(&self) -> Decimal {
        dm(self.0.open_interest)
    }
    /// The last funding round's rate: longs paid shorts this fraction of their
    /// position's value (shorts paid longs when negative).
    async fn funding_rate(&self) -> Option<Decimal> {
        self.0.funding_rate.map(|r| dm(Dec(r.0.normalize())))
    }
    /// When the last funding round was due (ms of command time).
    async fn funding_at_ms(&self) -> Option<u64> {
        self.0.funding_at_ms
    }
}

/// An account's position on a perpetual. Money is in the market's collateral.
#[derive(SimpleObject, Clone)]
pub struct Position {
    pub market: String,
    pub account: u64,
    /// Signed: long above zero; zero once closed.
    pub size: Decimal,
    /// The entry notional, signed like the size.
    pub cost: Decimal,
    /// The average entry price; none when flat.
    pub entry_price: Option<Decimal>,
    pub mark: Option<Decimal>,
    /// At the mark.
    pub unrealized_pnl: Option<Decimal>,
    /// Over the position's life, before fees.
    pub realized_pnl: Decimal,
    /// Held for the position and its resting orders.
    pub initial_margin: Decimal,
    pub leverage: u32,
    pub updated_ms: u64,
    /// Funding received over the position's life (negative: paid).
    pub funding: Decimal,
    /// At the mark, from the brackets; none once closed.
    pub maintenance_margin: Option<Decimal>,
    /// The mark at which the account's equity in the collateral would fall to
    /// its maintenance margin, its other positions at their marks (rounded to
    /// the tick toward the position: up for a long, down for a short).
    pub liquidation_price: Option<Decimal>,
}

/// The insurance fund in one collateral asset.
#[derive(SimpleObject, Clone)]
pub struct InsuranceFund {
    pub asset: String,
    /// Below zero: bad debt.
    pub balance: Decimal,
    /// The positions it took over, signed like `Position.size`.
    pub positions: Vec<FundPosition>,
    /// Accounts being liquidated in this collateral now: liquidations started
    /// less those ended.
    pub liquidations_under_way: u64,
}

/// One of the insurance fund's positions.
#[derive(SimpleObject, Clone)]
pub struct FundPosition {
    pub market: String,
    pub size: Decimal,
    /// The entry notional, signed like the size.
    pub cost: Decimal,
}

/// An account's cross margin in one collateral.
#[derive(SimpleObject, Clone)]
pub struct MarginSummary {
    pub collateral: String,
    /// Available plus the margin held for positions.
    pub wallet: Decimal,
    pub margin_held: Decimal,
    pub unrealized_pnl: Decimal,
    /// Wallet plus unrealized profit and loss.
    pub equity: Decimal,
    pub maintenance: Decimal,
    /// Maintenance over equity: the account is liquidated at 1 or above. None
    /// without equity.
    pub margin_ratio: Option<Decimal>,
    /// The positions' cost added up (the engine's cap also counts what growing
    /// orders would add, at their limit prices).
    pub notional: Decimal,
    /// The account's notional cap in this collateral (its own, else the
    /// default); none without one.
    pub notional_cap: Option<Decimal>,
}

/// One liquidation record of an account.
#[derive(SimpleObject, Clone)]
pub struct Liquidation {
    pub seq: u64,
    pub time_ms: u64,
    /// `started`, a step (`cancel`, `reduce`, `no_liquidity`, `take_over`,
    /// `deleverage`), `ended`, or `deleveraged` (this account's position was
    /// closed against a liquidated one's, at `price`).
    pub what: String,
    /// The perpetual of a step.
    pub market: Option<String>,
    /// The collateral of a start or an end.
    pub asset: Option<String>,
    pub quantity: Option<Decimal>,
    /// A step's bankruptcy price.
    pub price: Option<Decimal>,
    /// Available, held margin and unrealized profit and loss (start and end).
    pub equity: Option<Decimal>,
    pub maintenance: Option<Decimal>,
}

impl From<tape_projections::LiquidationView> for Liquidation {
    fn from(v: tape_projections::LiquidationView) -> Liquidation {
        use tape_projections::LiquidationWhat as W;
        let what = match v.what {
            W::Started => "started".to_string(),
            W::Ended => "ended".to_string(),
            W::Step(stage) => stage.name().to_string(),
            W::Deleveraged => "deleveraged".to_string(),
        };
        let n = |x: Dec| dm(Dec(x.0.normalize()));
        Liquidation {
            seq: v.seq,
            time_ms: v.time_ms,
            what,
            market: v.market.map(|m| m.to_string()),
            asset: v.asset.map(|a| a.to_string()),
            quantity: v.quantity.map(n),
            price: v.price.map(n),
            equity: v.equity.map(n),
            maintenance: v.maintenance.map(n),
        }
    }
}

impl Position {
    /// A position's row valued at `mark`, each number without trailing zeros.
    pub fn at(p: &tape_projections::PositionView, mark: Option<Dec>) -> Position {
        let n = |x: Dec| dm(Dec(x.0.normalize()));
        Position {
            market: p.market.to_string(),
            account: p.account.0,
            size: n(p.size),
            cost: n(p.cost),
            entry_price: p.entry_price().map(n),
            mark: mark.map(n),
            unrealized_pnl: mark.map(|m| n(p.unrealized_pnl(m))),
            realized_pnl: n(p.realized_pnl),
            initial_margin: n(p.initial_margin),
            leverage: p.leverage,
            updated_ms: p.updated_ms,
            funding: n(p.funding),
            maintenance_margin: None,
            liquidation_price: None,
        }
    }
}

/// An account's leverage on a perpetual.
#[derive(SimpleObject, Clone)]
pub struct Leverage {
    pub market: String,
    pub account: u64,
    pub tier: Tier,
    /// The tier's cap.
    pub cap: u32,
    /// What the account chose (`None`: it trades at the most it may).
    pub chosen: Option<u32>,
    /// What it trades at.
    pub leverage: u32,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "tape_schemas::LeverageTier", name = "LeverageTier")]
pub enum Tier {
    Beginner,
    Intermediate,
    Advanced,
}

/// One leverage bracket: position notional from `notionalFloor` to `notionalCap`
/// (in collateral). Maintenance margin = notional × rate − `maintenanceAmount`.
#[derive(SimpleObject, Clone)]
pub struct LeverageBracket {
    pub notional_floor: Decimal,
    pub notional_cap: Decimal,
    pub max_leverage: u32,
    /// Maintenance margin rate in ppm.
    pub maintenance_ppm: u32,
    pub maintenance_amount: Decimal,
}

#[derive(SimpleObject, Clone)]
pub struct PublicTrade {
    pub id: u64,
    /// The events-log seq of the trade.
    pub seq: u64,
    pub time_ms: u64,
    pub market: String,
    pub price: Decimal,
    pub quantity: Decimal,
    pub taker_side: Side,
}

impl From<TradeView> for PublicTrade {
    fn from(t: TradeView) -> Self {
        PublicTrade {
            id: t.trade.0,
            seq: t.seq,
            time_ms: t.time_ms,
            market: t.market.to_string(),
            price: dm(t.price),
            quantity: dm(t.quantity),
            taker_side: t.taker_side.into(),
        }
    }
}

#[derive(SimpleObject, Clone)]
pub struct Candle {
    pub market: String,
    pub interval: super::CandleInterval,
    pub start_ms: u64,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
    pub volume: Decimal,
    pub quote_volume: Decimal,
    pub trades: u64,
    /// On a subscription's payload: the read models held every event up to this
    /// seq when it was taken (in a query: null; see `extensions.seq`).
    pub seq: Option<u64>,
}

impl Candle {
    pub fn new(market: &Symbol, interval: Interval, c: views::Candle) -> Self {
        Candle {
            market: market.to_string(),
            interval: interval.into(),
            start_ms: c.start_ms,
            open: dm(c.open),
            high: dm(c.high),
            low: dm(c.low),
            close: dm(c.close),
            volume: dm(c.volume),
            quote_volume: dm(c.quote_volume),
            trades: c.trades,
            seq: None,
        }
    }
}

#[derive(SimpleObject, Clone)]
pub struct Ticker {
    pub market: String,
    pub last: Option<Decimal>,
    pub open: Option<Decimal>,
    pub high: Option<Decimal>,
    pub low: Option<Decimal>,
    pub volume: Decimal,
    pub quote_volume: Decimal,
    pub trades: u64,
    pub best_bid: Option<Decimal>,
    pub best_ask: Option<Decimal>,
    /// On a subscription's payload: the read models held every event up to this
    /// seq when it was taken (in a query: null; see `extensions.seq`).
    pub seq: Option<u64>,
}

impl From<views::Ticker> for Ticker {
    fn from(t: views::Ticker) -> Self {
        Ticker {
            market: t.market.to_string(),
            last: t.last.map(dm),
            open: t.open.map(dm),
            high: t.high.map(dm),
            low: t.low.map(dm),
            volume: dm(t.volume),
            quote_volume: dm(t.quote_volume),
            trades: t.trades,
            best_bid: t.best_bid.map(dm),
            best_ask: t.best_ask.map(dm),
            seq: None,
        }
    }
}

#[derive(SimpleObject, Clone)]
pub struct PriceLevel {
    pub price: Decimal,
    pub quantity: Decimal,
}

#[derive(SimpleObject, Clone)]
pub struct Depth {
    pub market: String,
    /// Best (highest) first.
    pub bids: Vec<PriceLevel>,
    /// Best (lowest) first.
    pub asks: Vec<PriceLevel>,
    pub best_bid: Option<PriceLevel>,
    pub best_ask: Option<PriceLevel>,
    /// On a subscription's payload: the read models held every event up to this
    /// seq when it was taken (in a query: null; see `extensions.seq`).
    pub seq: Option<u64>,
}

impl Depth {
    pub fn new(market: &Symbol, d: views::Depth) -> Self {
        let level = |&(p, q): &(Dec, Dec)| PriceLevel {
            price: dm(p),
            quantity: dm(q),
        };
        Depth {
            market: market.to_string(),
            best_bid: d.bids.first().map(level),
            best_ask: d.asks.first().map(level),
            bids: d.bids.iter().map(level).collect(),
            asks: d.asks.iter().map(level).collect(),
            seq: None,
        }
    }
}

#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq)]
pub enum DepthUpdateKind {
    // The whole book to the subscription's depth: replace the local one.
    Snapshot,
    // The levels that changed since the last update (quantity 0: the level went).
    Delta,
}

// One message of `depthUpdates`: a snapshot first, then deltas. Apply a delta only if
// its `prevSeq` is the `seq` of the last update applied; then the local book's
// `checksum` must match (CRC32, docs/frontend.md), else resubscribe.
#[derive(SimpleObject, Clone)]
pub struct DepthUpdate {
    pub market: String,
    pub kind: DepthUpdateKind,
    // The seq of the update before this one (none on a snapshot).
    pub prev_seq: Option<u64>,
    // The read models held every event up to this seq when this update was taken.
    pub seq: u64,
    pub bids: Vec<PriceLevel>,
    pub asks: Vec<PriceLevel>,
    // CRC32 of the best 10 levels a side after this update.
    pub checksum: u32,
}

impl DepthUpdate {
    pub fn new(
        market: &Symbol,
        kind: DepthUpdateKind,
        prev_seq: Option<u64>,
        seq: u64,
        levels: &views::Depth,
        book: &views::Depth,
    ) -> Self {
        let level = |&(p, q): &(Dec, Dec)| PriceLevel {
            price: dm(p),
            quantity: dm(q),
        };
        DepthUpdate {
            market: market.to_string(),
            kind,
            prev_seq,
            seq,
            bids: levels.bids.iter().map(level).collect(),
            asks: levels.asks.iter().map(level).collect(),
            checksum: book.checksum(),
        }
    }
}
