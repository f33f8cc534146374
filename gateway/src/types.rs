//! The GraphQL output and input types: thin wrappers over the read models' rows and
//! the wire types. Decimals travel as strings, never as floats.

use async_graphql::{
    Enum, InputObject, InputValueError, InputValueResult, Object, Scalar, ScalarType, SimpleObject,
    Value,
};
use tape_projections::*;
use tape_schemas::*;

/// An exact decimal, as a string: `"30000.5"`. Numbers are refused: a JSON number
/// may have passed through a float.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decimal(pub Dec);

#[Scalar(name = "Decimal")]
impl ScalarType for Decimal {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(s) => s.parse::<Dec>().map(Decimal).map_err(|_| {
                InputValueError::custom(format!(
                    "\"{s}\" is not a decimal: write digits with at most one point, like \"30000.25\""
                ))
            }),
            Value::Number(n) => Err(InputValueError::custom(format!(
                "decimals are strings: send \"{n}\" rather than {n} (a JSON number may be a float)"
            ))),
            other => Err(InputValueError::expected_type(other)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}

fn dm(x: Dec) -> Decimal {
    Decimal(x)
}

/// The snake_case wire name of a unit enum (reject and done reasons).
pub fn wire_name<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "unknown".to_string(),
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "Side")]
pub enum GSide {
    Buy,
    Sell,
}

impl From<Side> for GSide {
    fn from(s: Side) -> Self {
        match s {
            Side::Buy => GSide::Buy,
            Side::Sell => GSide::Sell,
        }
    }
}

impl From<GSide> for Side {
    fn from(s: GSide) -> Self {
        match s {
            GSide::Buy => Side::Buy,
            GSide::Sell => Side::Sell,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "OrderStatus")]
pub enum GOrderStatus {
    Pending,
    New,
    PartiallyFilled,
    Filled,
    Cancelled,
    Expired,
}

impl From<OrderStatus> for GOrderStatus {
    fn from(s: OrderStatus) -> Self {
        match s {
            OrderStatus::Pending => GOrderStatus::Pending,
            OrderStatus::New => GOrderStatus::New,
            OrderStatus::PartiallyFilled => GOrderStatus::PartiallyFilled,
            OrderStatus::Filled => GOrderStatus::Filled,
            OrderStatus::Cancelled => GOrderStatus::Cancelled,
            OrderStatus::Expired => GOrderStatus::Expired,
        }
    }
}

impl From<GOrderStatus> for OrderStatus {
    fn from(s: GOrderStatus) -> Self {
        match s {
            GOrderStatus::Pending => OrderStatus::Pending,
            GOrderStatus::New => OrderStatus::New,
            GOrderStatus::PartiallyFilled => OrderStatus::PartiallyFilled,
            GOrderStatus::Filled => OrderStatus::Filled,
            GOrderStatus::Cancelled => OrderStatus::Cancelled,
            GOrderStatus::Expired => OrderStatus::Expired,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum OrderKind {
    Limit,
    Market,
    StopMarket,
    StopLimit,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "TimeInForce")]
pub enum GTimeInForce {
    Gtc,
    Ioc,
    Fok,
    /// Good till `expiresAtMs`.
    Gtd,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "SelfTradePrevention")]
pub enum GStp {
    CancelTaker,
    CancelMaker,
    CancelBoth,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "Role")]
pub enum GRole {
    Trader,
    Auditor,
    Admin,
}

impl From<ApiRole> for GRole {
    fn from(r: ApiRole) -> Self {
        match r {
            ApiRole::Trader => GRole::Trader,
            ApiRole::Auditor => GRole::Auditor,
            ApiRole::Admin => GRole::Admin,
        }
    }
}

impl From<GRole> for ApiRole {
    fn from(r: GRole) -> Self {
        match r {
            GRole::Trader => ApiRole::Trader,
            GRole::Auditor => ApiRole::Auditor,
            GRole::Admin => ApiRole::Admin,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "MarketStatus")]
pub enum GMarketStatus {
    Active,
    Halted,
    Disabled,
}

impl From<MarketStatus> for GMarketStatus {
    fn from(s: MarketStatus) -> Self {
        match s {
            MarketStatus::Active => GMarketStatus::Active,
            MarketStatus::Halted => GMarketStatus::Halted,
            MarketStatus::Disabled => GMarketStatus::Disabled,
        }
    }
}

impl From<GMarketStatus> for MarketStatus {
    fn from(s: GMarketStatus) -> Self {
        match s {
            GMarketStatus::Active => MarketStatus::Active,
            GMarketStatus::Halted => MarketStatus::Halted,
            GMarketStatus::Disabled => MarketStatus::Disabled,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "EntryKind")]
pub enum GEntryKind {
    Deposit,
    Withdrawal,
    Trade,
    Fee,
}

impl From<EntryKind> for GEntryKind {
    fn from(k: EntryKind) -> Self {
        match k {
            EntryKind::Deposit => GEntryKind::Deposit,
            EntryKind::Withdrawal => GEntryKind::Withdrawal,
            EntryKind::Trade => GEntryKind::Trade,
            EntryKind::Fee => GEntryKind::Fee,
        }
    }
}

impl From<GEntryKind> for EntryKind {
    fn from(k: GEntryKind) -> Self {
        match k {
            GEntryKind::Deposit => EntryKind::Deposit,
            GEntryKind::Withdrawal => EntryKind::Withdrawal,
            GEntryKind::Trade => EntryKind::Trade,
            GEntryKind::Fee => EntryKind::Fee,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "WithdrawalStatus")]
pub enum GWithdrawalStatus {
    Requested,
    Completed,
    Failed,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum CandleInterval {
    #[graphql(name = "M1")]
    M1,
    #[graphql(name = "M5")]
    M5,
    #[graphql(name = "M15")]
    M15,
    #[graphql(name = "H1")]
    H1,
    #[graphql(name = "H4")]
    H4,
    #[graphql(name = "D1")]
    D1,
}

impl CandleInterval {
    /// Index into [`INTERVALS_MS`].
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn from_name(name: &str) -> Option<CandleInterval> {
        use CandleInterval::*;
        [M1, M5, M15, H1, H4, D1]
            .into_iter()
            .find(|i| INTERVALS_MS[i.index()].0 == name)
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum CommandStatus {
    Accepted,
    Rejected,
    /// Durably on the commands log; the engine has not answered within the wait.
    /// Ask again with `command(offset:, id:)`.
    Pending,
}

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
    async fn status(&self) -> GMarketStatus {
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

#[derive(SimpleObject, Clone)]
pub struct Balance {
    pub asset: String,
    pub available: Decimal,
    pub held: Decimal,
    pub total: Decimal,
    /// `total` in the portfolio's `valueIn` asset at the last price; null when no
    /// market between them has traded.
    pub value: Option<Decimal>,
}

#[derive(SimpleObject, Clone)]
pub struct Portfolio {
    pub account: u64,
    pub value_in: Option<String>,
    pub balances: Vec<Balance>,
    /// The sum of the balances' values (those that have one).
    pub total_value: Option<Decimal>,
}

#[derive(SimpleObject, Clone)]
pub struct WalletUpdate {
    pub account: u64,
    pub asset: String,
    pub available: Decimal,
    pub held: Decimal,
    pub total: Decimal,
}

impl From<WalletView> for WalletUpdate {
    fn from(w: WalletView) -> Self {
        WalletUpdate {
            account: w.account.0,
            asset: w.asset.to_string(),
            available: dm(w.available),
            held: dm(w.held),
            total: Decimal(Dec(w.available.0 + w.held.0)),
        }
    }
}

#[derive(SimpleObject, Clone)]
pub struct LedgerEntryObject {
    pub seq: u64,
    pub time_ms: u64,
    pub asset: String,
    pub kind: GEntryKind,
    /// Signed: positive credits the account.
    pub amount: Decimal,
    /// The account's total of `asset` after this entry.
    pub balance: Decimal,
    /// The trade or withdrawal id.
    pub reference: Option<u64>,
}

impl From<LedgerEntry> for LedgerEntryObject {
    fn from(e: LedgerEntry) -> Self {
        LedgerEntryObject {
            seq: e.seq,
            time_ms: e.time_ms,
            asset: e.asset.to_string(),
            kind: e.kind.into(),
            amount: dm(e.amount),
            balance: dm(e.balance),
            reference: e.reference,
        }
    }
}

#[derive(SimpleObject, Clone)]
pub struct AssetAmount {
    pub asset: String,
    pub amount: Decimal,
}

#[derive(SimpleObject, Clone)]
pub struct EquityPointObject {
    /// The start of the hour this point closes.
    pub time_ms: u64,
    pub balances: Vec<AssetAmount>,
    /// Valued at each asset's last 1-hour close at or before the point; null when
    /// some asset has no price.
    pub value: Option<Decimal>,
}

pub struct Order(pub OrderView);

#[Object]
impl Order {
    async fn id(&self) -> u64 {
        self.0.order.0
    }
    async fn account(&self) -> u64 {
        self.0.account.0
    }
    async fn market(&self) -> String {
        self.0.market.to_string()
    }
    async fn side(&self) -> GSide {
        self.0.side.into()
    }
    async fn kind(&self) -> OrderKind {
        match self.0.order_type {
            OrderType::Limit { .. } => OrderKind::Limit,
            OrderType::Market { .. } => OrderKind::Market,
            OrderType::StopMarket { .. } => OrderKind::StopMarket,
            OrderType::StopLimit { .. } => OrderKind::StopLimit,
        }
    }
    async fn status(&self) -> GOrderStatus {
        self.0.status.into()
    }
    /// Why it left the book: filled, cancelled, unfilled, expired, self_trade, …
    async fn done_reason(&self) -> Option<String> {
        self.0.done_reason.map(|r| wire_name(&r))
    }
    /// The limit price (limit and stop-limit orders).
    async fn price(&self) -> Option<Decimal> {
        match self.0.order_type {
            OrderType::Limit { price, .. } | OrderType::StopLimit { price, .. } => Some(dm(price)),
            _ => None,
        }
    }
    async fn trigger_price(&self) -> Option<Decimal> {
        match self.0.order_type {
            OrderType::StopMarket { trigger_price, .. }
            | OrderType::StopLimit { trigger_price, .. } => Some(dm(trigger_price)),
            _ => None,
        }
    }
    /// The quantity as placed, in base (null for orders sized in quote).
    async fn quantity(&self) -> Option<Decimal> {
        match self.0.order_type {
            OrderType::Limit { quantity, .. } | OrderType::StopLimit { quantity, .. } => {
                Some(dm(quantity))
            }
            OrderType::Market { size } | OrderType::StopMarket { size, .. } => match size {
                MarketSize::Base(q) => Some(dm(q)),
                MarketSize::Quote(_) => None,
            },
        }
    }
    /// The quote amount of a market order sized in quote.
    async fn quote_quantity(&self) -> Option<Decimal> {
        match self.0.order_type {
            OrderType::Market {
                size: MarketSize::Quote(q),
            }
            | OrderType::StopMarket {
                size: MarketSize::Quote(q),
                ..
            } => Some(dm(q)),
            _ => None,
        }
    }
    async fn time_in_force(&self) -> Option<GTimeInForce> {
        match self.0.order_type {
            OrderType::Limit { time_in_force, .. } | OrderType::StopLimit { time_in_force, .. } => {
                Some(match time_in_force {
                    TimeInForce::Gtc => GTimeInForce::Gtc,
                    TimeInForce::Ioc => GTimeInForce::Ioc,
                    TimeInForce::Fok => GTimeInForce::Fok,
                    TimeInForce::Gtd { .. } => GTimeInForce::Gtd,
                })
            }
            _ => None,
        }
    }
    async fn expires_at_ms(&self) -> Option<u64> {
        match self.0.order_type {
            OrderType::Limit {
                time_in_force: TimeInForce::Gtd { expires_at_ms },
                ..
            }
            | OrderType::StopLimit {
                time_in_force: TimeInForce::Gtd { expires_at_ms },
                ..
            } => Some(expires_at_ms),
            _ => None,
        }
    }
    async fn post_only(&self) -> bool {
        matches!(
            self.0.order_type,
            OrderType::Limit {
                post_only: true,
                ..
            }
        )
    }
    async fn client_order_id(&self) -> Option<String> {
        self.0.client_order_id.map(|c| c.to_string())
    }
    /// The sliced parent or bracket entry this order belongs to.
    async fn parent(&self) -> Option<u64> {
        self.0.parent.map(|p| p.0)
    }
    /// The price it rests at on the book.
    async fn resting_price(&self) -> Option<Decimal> {
        self.0.price.filter(|_| self.0.status.is_open()).map(dm)
    }
    async fn filled(&self) -> Decimal {
        dm(self.0.filled)
    }
    async fn filled_quote(&self) -> Decimal {
        dm(self.0.filled_quote)
    }
    /// filledQuote / filled, to 18 places; null before the first fill.
    async fn average_price(&self) -> Option<Decimal> {
        if self.0.filled.0.is_zero() {
            return None;
        }
        self.0
            .filled_quote
            .0
            .checked_div(self.0.filled.0)
            .map(|p| Decimal(Dec(p.round_dp(18).normalize())))
    }
    /// Fees paid, in quote.
    async fn fees(&self) -> Decimal {
        dm(self.0.fees)
    }
    async fn visible(&self) -> Decimal {
        dm(self.0.visible)
    }
    async fn hidden(&self) -> Decimal {
        dm(self.0.hidden)
    }
    async fn created_ms(&self) -> u64 {
        self.0.created_ms
    }
    async fn updated_ms(&self) -> u64 {
        self.0.updated_ms
    }
    /// The events-log `seq` of its acceptance.
    async fn created_seq(&self) -> u64 {
        self.0.created_seq
    }
}

pub struct Trade(pub TradeView);

#[Object]
impl Trade {
    async fn id(&self) -> u64 {
        self.0.trade.0
    }
    async fn seq(&self) -> u64 {
        self.0.seq
    }
    async fn time_ms(&self) -> u64 {
        self.0.time_ms
    }
    async fn market(&self) -> String {
        self.0.market.to_string()
    }
    async fn price(&self) -> Decimal {
        dm(self.0.price)
    }
    async fn quantity(&self) -> Decimal {
        dm(self.0.quantity)
    }
    async fn quote_quantity(&self) -> Decimal {
        dm(self.0.quote_quantity)
    }
    async fn taker_side(&self) -> GSide {
        self.0.taker_side.into()
    }
    async fn maker_order(&self) -> u64 {
        self.0.maker_order.0
    }
    async fn taker_order(&self) -> u64 {
        self.0.taker_order.0
    }
    async fn maker_account(&self) -> u64 {
        self.0.maker_account.0
    }
    async fn taker_account(&self) -> u64 {
        self.0.taker_account.0
    }
    async fn maker_fee(&self) -> Decimal {
        dm(self.0.maker_fee)
    }
    async fn taker_fee(&self) -> Decimal {
        dm(self.0.taker_fee)
    }
}

#[derive(SimpleObject, Clone)]
pub struct PublicTrade {
    pub id: u64,
    pub time_ms: u64,
    pub market: String,
    pub price: Decimal,
    pub quantity: Decimal,
    pub taker_side: GSide,
}

impl From<TradeView> for PublicTrade {
    fn from(t: TradeView) -> Self {
        PublicTrade {
            id: t.trade.0,
            time_ms: t.time_ms,
            market: t.market.to_string(),
            price: dm(t.price),
            quantity: dm(t.quantity),
            taker_side: t.taker_side.into(),
        }
    }
}

#[derive(SimpleObject, Clone)]
pub struct CandleObject {
    pub market: String,
    pub interval: String,
    pub start_ms: u64,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
    pub volume: Decimal,
    pub quote_volume: Decimal,
    pub trades: u64,
}

impl CandleObject {
    pub fn new(market: &Symbol, interval: &str, c: Candle) -> Self {
        CandleObject {
            market: market.to_string(),
            interval: interval.to_string(),
            start_ms: c.start_ms,
            open: dm(c.open),
            high: dm(c.high),
            low: dm(c.low),
            close: dm(c.close),
            volume: dm(c.volume),
            quote_volume: dm(c.quote_volume),
            trades: c.trades,
        }
    }
}

#[derive(SimpleObject, Clone)]
pub struct TickerObject {
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
}

impl From<Ticker> for TickerObject {
    fn from(t: Ticker) -> Self {
        TickerObject {
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
        }
    }
}

#[derive(SimpleObject, Clone)]
pub struct PriceLevel {
    pub price: Decimal,
    pub quantity: Decimal,
}

#[derive(SimpleObject, Clone)]
pub struct DepthObject {
    pub market: String,
    /// Best (highest) first.
    pub bids: Vec<PriceLevel>,
    /// Best (lowest) first.
    pub asks: Vec<PriceLevel>,
    pub best_bid: Option<PriceLevel>,
    pub best_ask: Option<PriceLevel>,
}

impl DepthObject {
    pub fn new(market: &Symbol, d: Depth) -> Self {
        let level = |&(p, q): &(Dec, Dec)| PriceLevel {
            price: dm(p),
            quantity: dm(q),
        };
        DepthObject {
            market: market.to_string(),
            best_bid: d.bids.first().map(level),
            best_ask: d.asks.first().map(level),
            bids: d.bids.iter().map(level).collect(),
            asks: d.asks.iter().map(level).collect(),
        }
    }
}

#[derive(SimpleObject, Clone)]
pub struct ApiKeyObject {
    pub id: u64,
    pub role: GRole,
    pub account: Option<u64>,
}

impl From<ApiKeyView> for ApiKeyObject {
    fn from(k: ApiKeyView) -> Self {
        ApiKeyObject {
            id: k.key.0,
            role: k.role.into(),
            account: k.account.map(|a| a.0),
        }
    }
}

#[derive(SimpleObject, Clone)]
pub struct NewApiKey {
    pub key: ApiKeyObject,
    /// Send as `Authorization: Bearer <token>`. Shown once: only its hash is kept.
    pub token: String,
}

#[derive(SimpleObject, Clone)]
pub struct Withdrawal {
    pub id: u64,
    pub account: u64,
    pub asset: String,
    pub amount: Decimal,
    pub status: GWithdrawalStatus,
    pub requested_ms: u64,
    pub updated_ms: u64,
}

impl From<WithdrawalView> for Withdrawal {
    fn from(w: WithdrawalView) -> Self {
        Withdrawal {
            id: w.withdrawal.0,
            account: w.account.0,
            asset: w.asset.to_string(),
            amount: dm(w.amount),
            status: match w.status {
                WithdrawalStatus::Requested => GWithdrawalStatus::Requested,
                WithdrawalStatus::Completed => GWithdrawalStatus::Completed,
                WithdrawalStatus::Failed => GWithdrawalStatus::Failed,
            },
            requested_ms: w.requested_ms,
            updated_ms: w.updated_ms,
        }
    }
}

/// The engine's answer to a mutation.
#[derive(SimpleObject)]
pub struct CommandReceipt {
    /// The command's idempotency key: resubmitting it is answered, not re-executed.
    pub command_id: String,
    pub status: CommandStatus,
    /// Its offset on the commands log.
    pub offset: u64,
    /// What the command created or acted on (order, parent, withdrawal or key id).
    pub id: Option<u64>,
    /// Why it was rejected (snake_case, as on the events log).
    pub reason: Option<String>,
    /// True when the id was already used: this is the original answer.
    pub duplicate: bool,
    /// The events-log `seq` of the outcome.
    pub seq: Option<u64>,
    /// The order as it stood after the command (order mutations).
    pub order: Option<Order>,
    /// The trades the command made.
    pub trades: Vec<Trade>,
}

#[derive(SimpleObject)]
pub struct SlicedReportObject {
    pub parent: u64,
    pub account: u64,
    pub market: String,
    pub children: Vec<Order>,
    pub filled: Decimal,
    pub filled_quote: Decimal,
    pub fees: Decimal,
    pub open_children: u32,
}

#[derive(SimpleObject)]
pub struct BracketReportObject {
    pub entry: Order,
    pub exit: Option<Order>,
    pub closed_quantity: Decimal,
    /// In quote, fees included.
    pub realized_pnl: Decimal,
    pub exit_rejected: Option<String>,
}

#[derive(InputObject)]
pub struct PlaceOrderInput {
    /// Defaults to the key's own account (traders).
    pub account: Option<u64>,
    pub market: String,
    pub side: GSide,
    pub kind: OrderKind,
    /// Limit and stop-limit orders.
    pub price: Option<Decimal>,
    /// In base. Limit and stop-limit orders; market and stop-market orders give
    /// either this or `quoteQuantity`.
    pub quantity: Option<Decimal>,
    pub quote_quantity: Option<Decimal>,
    pub trigger_price: Option<Decimal>,
    #[graphql(default_with = "GTimeInForce::Gtc")]
    pub time_in_force: GTimeInForce,
    /// With `timeInForce: GTD`.
    pub expires_at_ms: Option<u64>,
    #[graphql(default)]
    pub post_only: bool,
    /// Iceberg: show at most this much.
    pub display_quantity: Option<Decimal>,
    pub client_order_id: Option<String>,
    #[graphql(default_with = "GStp::CancelTaker")]
    pub self_trade_prevention: GStp,
}

#[derive(InputObject)]
pub struct PlaceSlicedInput {
    pub account: Option<u64>,
    pub market: String,
    pub side: GSide,
    pub lower_price: Decimal,
    pub upper_price: Decimal,
    pub count: u32,
    pub total_quantity: Decimal,
    #[graphql(default)]
    pub post_only: bool,
    pub client_order_id: Option<String>,
}

#[derive(InputObject)]
pub struct PlaceBracketInput {
    pub account: Option<u64>,
    pub market: String,
    pub side: GSide,
    pub entry_price: Decimal,
    pub quantity: Decimal,
    pub exit_price: Decimal,
    pub client_order_id: Option<String>,
}

#[derive(InputObject)]
pub struct CreateMarketInput {
    pub symbol: String,
    pub base: String,
    pub quote: String,
    pub tick_size: Decimal,
    pub lot_size: Decimal,
    pub min_notional: Decimal,
    pub min_quantity: Option<Decimal>,
    pub max_quantity: Option<Decimal>,
    pub maker_fee_ppm: u32,
    pub taker_fee_ppm: u32,
    pub price_band_bps: Option<u32>,
}
