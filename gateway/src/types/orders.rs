//! Orders and trades, the receipt of a command, sliced and bracket reports, and the inputs that place orders and create markets.

use super::*;

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
    async fn side(&self) -> Side {
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
    async fn status(&self) -> OrderStatus {
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
    async fn time_in_force(&self) -> Option<TimeInForce> {
        match self.0.order_type {
            OrderType::Limit { time_in_force, .. } | OrderType::StopLimit { time_in_force, .. } => {
                Some(match time_in_force {
                    wire::TimeInForce::Gtc => TimeInForce::Gtc,
                    wire::TimeInForce::Ioc => TimeInForce::Ioc,
                    wire::TimeInForce::Fok => TimeInForce::Fok,
                    wire::TimeInForce::Gtd { .. } => TimeInForce::Gtd,
                })
            }
            _ => None,
        }
    }
    async fn expires_at_ms(&self) -> Option<u64> {
        match self.0.order_type {
            OrderType::Limit {
                time_in_force: wire::TimeInForce::Gtd { expires_at_ms },
                ..
            }
            | OrderType::StopLimit {
                time_in_force: wire::TimeInForce::Gtd { expires_at_ms },
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

    /// The events-log seq of the order's last change (resume `myOrders` from it + 1).
    async fn updated_seq(&self) -> u64 {
        self.0.updated_seq
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
    async fn taker_side(&self) -> Side {
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
    /// Why it was rejected, in a sentence: the rule, the bound and the value.
    pub message: Option<String>,
    /// True when the id was already used: this is the original answer.
    pub duplicate: bool,
    /// The events-log `seq` of the outcome.
    pub seq: Option<u64>,
    /// The order as it stood after the command (order mutations).
    pub order: Option<Order>,
    /// The trades the command made.
    pub trades: Vec<Trade>,
}

/// The engine's answer to a batch (`placeOrders`, `cancelOrders`): the batch's own
/// receipt (its `id` is the number of items accepted) and one receipt per item, in
/// order (none while the batch is pending or if it was refused as a whole).
#[derive(SimpleObject)]
pub struct BatchReceipt {
    pub batch: CommandReceipt,
    pub items: Vec<CommandReceipt>,
}

#[derive(SimpleObject)]
pub struct SlicedReport {
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
pub struct BracketReport {
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
    pub side: Side,
    pub kind: OrderKind,
    /// Limit and stop-limit orders.
    pub price: Option<Decimal>,
    /// In base. Limit and stop-limit orders; market and stop-market orders give
    /// either this or `quoteQuantity`.
    pub quantity: Option<Decimal>,
    pub quote_quantity: Option<Decimal>,
    pub trigger_price: Option<Decimal>,
    #[graphql(default_with = "TimeInForce::Gtc")]
    pub time_in_force: TimeInForce,
    /// With `timeInForce: GTD`.
    pub expires_at_ms: Option<u64>,
    #[graphql(default)]
    pub post_only: bool,
    /// Iceberg: show at most this much.
    pub display_quantity: Option<Decimal>,
    pub client_order_id: Option<String>,
    #[graphql(default_with = "SelfTradePrevention::CancelTaker")]
    pub self_trade_prevention: SelfTradePrevention,
    /// Perpetuals: the order may only shrink the account's position there (on
    /// the side opposite it, at most its size); it never flips it.
    #[graphql(default)]
    pub reduce_only: bool,
}

#[derive(InputObject)]
pub struct PlaceSlicedInput {
    pub account: Option<u64>,
    pub market: String,
    pub side: Side,
    pub lower_price: Decimal,
    pub upper_price: Decimal,
    pub count: u32,
    pub total_quantity: Decimal,
    #[graphql(default)]
    pub post_only: bool,
    pub client_order_id: Option<String>,
    /// Perpetuals: every child may only shrink the account's position (on the
    /// side opposite it; the children together at most its size).
    #[graphql(default)]
    pub reduce_only: bool,
}

#[derive(InputObject)]
pub struct PlaceBracketInput {
    pub account: Option<u64>,
    pub market: String,
    pub side: Side,
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
