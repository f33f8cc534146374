//! The JSON feeds any Kafka client can read (written by `tape fanout`): each
//! account's private feed (`<prefix>.account.<id>`: the outcomes of the commands it
//! signed, its orders, its fills and its balance changes, never another account's id)
//! and each market's public feed (`<prefix>.market.<symbol>`: the book's orders one
//! by one, without accounts, and the trades). Every record carries the `seq` of the
//! event it comes from; a topic holds at most one record per `seq`, so a consumer
//! that skips a `seq` it has seen reads each exactly once.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::command::*;
use crate::event::*;
use crate::ids::*;
use crate::money::Dec;

/// One record of an account's private feed.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct AccountRecord {
    /// The events-log `seq` this record comes from.
    pub seq: u64,
    /// The commands-log offset of the command that caused it.
    pub command_offset: u64,
    /// The engine's time (ms since the UNIX epoch).
    pub time_ms: u64,
    pub account: AccountId,
    pub update: AccountUpdate,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountUpdate {
    /// The answer to a command signed by one of this account's keys (or, while
    /// credentials are optional, an unsigned trading command for it).
    Outcome {
        command: CommandId,
        result: CommandResult,
        duplicate: bool,
    },
    /// An event about this account alone: its orders (accepted, triggered, rested,
    /// amended, refilled, done), sliced and bracket reports, deposits, withdrawals,
    /// settings and dead-man switch, and the answers to the items of its batches
    /// (`item_outcome`, after the batch's `outcome`).
    Event(Event),
    /// A trade one of its orders took part in; the other side is not named.
    Fill {
        trade: TradeId,
        market: Symbol,
        price: Dec,
        quantity: Dec,
        quote_quantity: Dec,
        taker_side: Side,
        /// Its resting order that was hit, when it was the maker.
        maker: Option<FillSide>,
        /// Its incoming order, when it was the taker.
        taker: Option<FillSide>,
    },
    /// A change of one of its balances (signed amounts).
    Balance {
        asset: AssetCode,
        available: Dec,
        held: Dec,
        cause: Cause,
    },
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct FillSide {
    pub order: OrderId,
    /// The fee it paid, in quote.
    pub fee: Dec,
}

/// One record of a market's public feed.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct MarketRecord {
    pub seq: u64,
    pub time_ms: u64,
    pub market: Symbol,
    pub update: MarketUpdate,
}

/// The book order by order (L3), without accounts. A trade reduces its maker
/// order's visible quantity by its quantity; an order whose visible part is used up
/// is either `order_changed` (an iceberg's refill) or `order_removed`. An amend that
/// keeps priority is `order_changed`; one that loses it is `order_removed`, then
/// `order_added` at the back of its level (unless it trades at once).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MarketUpdate {
    /// An order joined the book with `visible` shown (an iceberg's reserve is not).
    OrderAdded {
        order: OrderId,
        side: Side,
        price: Dec,
        visible: Dec,
    },
    /// An order on the book changed in place: amended keeping its priority, or an
    /// iceberg refilled (`requeued`: it went to the back of its price level).
    OrderChanged {
        order: OrderId,
        side: Side,
        price: Dec,
        visible: Dec,
        requeued: bool,
    },
    /// An order left the book.
    OrderRemoved { order: OrderId },
    Trade {
        trade: TradeId,
        price: Dec,
        quantity: Dec,
        taker_side: Side,
        maker_order: OrderId,
        taker_order: OrderId,
    },
    /// A perpetual's new index price and the mark the engine derived from it.
    Prices {
        index: Dec,
        mark: Dec,
        /// When the index's sources priced it.
        source_ms: u64,
    },
    /// A perpetual's index went stale: the market only reduces positions until the
    /// next `prices`.
    IndexStale { source_ms: u64 },
    /// A perpetual's funding round began at `at_ms`: longs pay shorts `rate` of
    /// their position's value at `mark` (shorts pay longs when it is negative).
    Funding {
        at_ms: u64,
        rate: Dec,
        premium: Dec,
        mark: Dec,
    },
}
