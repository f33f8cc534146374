//! Events: everything the engine decided. Each command yields exactly one `Outcome`
//! first, then the effects. Every balance change is a `Posting` that moves an amount
//! from one place to another, so debits equal credits per asset by construction and
//! any reader can fold postings into balances.

use serde::{Deserialize, Serialize};

use crate::command::*;
use crate::ids::*;
use crate::money::Dec;
use crate::reason::{DoneReason, RejectReason};

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// The one answer to one command. `duplicate` is true when the command id was
    /// already seen: the original result is repeated and nothing is executed.
    Outcome {
        command: CommandId,
        result: CommandResult,
        duplicate: bool,
    },

    AssetCreated(AssetSpec),
    AssetUpdated {
        asset: AssetCode,
        enabled: bool,
    },
    MarketCreated(MarketSpec),
    /// The market's full adjustable state after an admin change.
    MarketUpdated {
        market: Symbol,
        status: MarketStatus,
        fees: FeeRates,
        price_band_bps: Option<u32>,
        reference_price: Option<Dec>,
    },
    AccountFeesSet {
        account: AccountId,
        market: Symbol,
        fees: Option<FeeRates>,
    },
    AccountRestrictionsSet {
        account: AccountId,
        can_trade: bool,
        can_withdraw: bool,
    },
    WithdrawalLimitSet {
        account: AccountId,
        asset: AssetCode,
        daily_limit: Option<Dec>,
    },

    Deposited {
        account: AccountId,
        asset: AssetCode,
        amount: Dec,
        reference: ExternalRef,
    },
    WithdrawalRequested {
        withdrawal: WithdrawalId,
        account: AccountId,
        asset: AssetCode,
        amount: Dec,
    },
    WithdrawalCompleted {
        withdrawal: WithdrawalId,
        account: AccountId,
        asset: AssetCode,
        amount: Dec,
    },
    WithdrawalFailed {
        withdrawal: WithdrawalId,
        account: AccountId,
        asset: AssetCode,
        amount: Dec,
    },

    /// A new order, as placed, with the funds it holds (in quote for buys, base for
    /// sells; zero for market orders, which spend from available at once).
    OrderAccepted {
        order: OrderId,
        account: AccountId,
        market: Symbol,
        side: Side,
        order_type: OrderType,
        client_order_id: Option<ClientOrderId>,
        parent: Option<OrderId>,
        held: Dec,
    },
    /// A stop order whose trigger was reached; it now executes.
    OrderTriggered {
        order: OrderId,
        market: Symbol,
        last_price: Dec,
    },
    /// The order joined the book: `visible` is what the book shows, `hidden` the
    /// iceberg reserve.
    OrderRested {
        order: OrderId,
        market: Symbol,
        side: Side,
        price: Dec,
        visible: Dec,
        hidden: Dec,
    },
    /// An amend took effect. `requeued` is false when priority was kept.
    OrderAmended {
        order: OrderId,
        market: Symbol,
        side: Side,
        price: Dec,
        visible: Dec,
        hidden: Dec,
        held: Dec,
        requeued: bool,
    },
    /// An iceberg's visible part was used up and refilled from hidden (it goes to the
    /// back of its price level).
    OrderRefilled {
        order: OrderId,
        market: Symbol,
        visible: Dec,
        hidden: Dec,
    },
    /// The order left the book, or ended without resting. `filled` is its total fill.
    OrderDone {
        order: OrderId,
        market: Symbol,
        reason: DoneReason,
        filled: Dec,
    },

    Trade {
        trade: TradeId,
        market: Symbol,
        price: Dec,
        quantity: Dec,
        /// price × quantity, in quote.
        quote_quantity: Dec,
        taker_side: Side,
        maker_order: OrderId,
        taker_order: OrderId,
        maker_account: AccountId,
        taker_account: AccountId,
        /// Fees are charged in quote, rounded down to the quote's minor unit.
        maker_fee: Dec,
        taker_fee: Dec,
    },

    /// One double-entry movement of `amount` of `asset`.
    Posting {
        asset: AssetCode,
        from: Party,
        to: Party,
        amount: Dec,
        cause: Cause,
    },

    SlicedPlaced {
        parent: OrderId,
        market: Symbol,
        children: Vec<OrderId>,
    },
    BracketExitPlaced {
        entry: OrderId,
        exit: OrderId,
    },
    /// Cumulative realized profit and loss of a bracket, in quote, fees included,
    /// after a fill of its exit.
    BracketPnl {
        entry: OrderId,
        exit: OrderId,
        closed_quantity: Dec,
        realized_pnl: Dec,
    },
    BracketExitRejected {
        entry: OrderId,
        reason: RejectReason,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandResult {
    /// `id` is what the command created or acted on: an order (or parent) id, a
    /// withdrawal id, or 0.
    Accepted {
        id: u64,
    },
    Rejected {
        reason: RejectReason,
    },
}

/// Where money sits: an account's available or held balance, the fee account, or
/// the world outside the exchange (deposits come from it, withdrawals go to it).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    Available(AccountId),
    Held(AccountId),
    Fees,
    World,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    Deposit,
    Withdrawal(WithdrawalId),
    /// A hold placed or released for an order.
    Order(OrderId),
    /// Settlement or fee of a trade.
    Trade(TradeId),
}
