//! Commands: everything that may enter the commands log, in the order the engine will
//! apply it. Amounts are `Dec`; the core checks them against asset scales, ticks and
//! lots and rejects, never rounds.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::event::Hash32;
use crate::ids::*;
use crate::money::Dec;

/// One command as it sits on the commands log.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct CommandEnvelope {
    /// Schema version; see [`crate::SCHEMA_VERSION`].
    pub version: u16,
    /// The client's idempotency key.
    pub id: CommandId,
    /// Milliseconds since the UNIX epoch, stamped when the command entered the log.
    /// The engine's clock is the running maximum of these.
    pub time_ms: u64,
    pub command: Command,
    /// The API key's signature, required for every command once the operator has
    /// turned credentials on (`RequireCredentials`); see [`crate::auth`].
    #[serde(default)]
    pub auth: Option<crate::auth::Credentials>,
}

impl CommandEnvelope {
    pub fn new(id: CommandId, time_ms: u64, command: Command) -> Self {
        CommandEnvelope {
            version: crate::SCHEMA_VERSION,
            id,
            time_ms,
            command,
            auth: None,
        }
    }
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    // --- admin: assets and markets
    CreateAsset(AssetSpec),
    SetAssetEnabled {
        asset: AssetCode,
        enabled: bool,
    },
    CreateMarket(MarketSpec),
    SetMarketStatus {
        market: Symbol,
        status: MarketStatus,
    },
    SetMarketFees {
        market: Symbol,
        fees: FeeRates,
    },
    /// Price band in basis points around the reference price (the last trade, or
    /// `reference_price` until the first trade). `None` turns the band off.
    SetPriceBand {
        market: Symbol,
        #[serde(default)]
        band_bps: Option<u32>,
        #[serde(default)]
        reference_price: Option<Dec>,
    },
    // --- admin: accounts
    /// Per-account fee tier for one market; `None` returns to the market's rates.
    SetAccountFees {
        account: AccountId,
        market: Symbol,
        #[serde(default)]
        fees: Option<FeeRates>,
    },
    SetAccountRestrictions {
        account: AccountId,
        can_trade: bool,
        can_withdraw: bool,
    },
    /// Per-account daily withdrawal limit; `None` returns to the asset's default.
    SetWithdrawalLimit {
        account: AccountId,
        asset: AssetCode,
        #[serde(default)]
        daily_limit: Option<Dec>,
    },
    // --- custody
    /// Credit an account; idempotent by `reference` (per asset).
    Deposit {
        account: AccountId,
        asset: AssetCode,
        amount: Dec,
        reference: ExternalRef,
    },
    /// Hold funds for a withdrawal; custody later completes or fails it.
    RequestWithdrawal {
        account: AccountId,
        asset: AssetCode,
        amount: Dec,
    },
    CompleteWithdrawal {
        withdrawal: WithdrawalId,
    },
    FailWithdrawal {
        withdrawal: WithdrawalId,
    },
    // --- trading
    PlaceOrder(NewOrder),
    PlaceSliced(NewSliced),
    PlaceBracket(NewBracket),
    /// Cancel one order; a sliced parent's id cancels all its open children, a
    /// bracket's entry id cancels the entry and its exit.
    CancelOrder {
        account: AccountId,
        order: OrderRef,
    },
    CancelAll {
        account: AccountId,
        #[serde(default)]
        market: Option<Symbol>,
    },
    /// Change a resting limit order. `quantity` is the new *open* quantity. Reducing
    /// it keeps priority; a new price or a larger quantity re-queues the order.
    AmendOrder {
        account: AccountId,
        order: OrderRef,
        #[serde(default)]
        price: Option<Dec>,
        #[serde(default)]
        quantity: Option<Dec>,
    },
    // --- time
    /// Moves time forward when the market is quiet so GTD orders expire.
    ClockTick,
    // --- admin: API keys (the gateway and the market makers' door check them)
    /// Registers a key. Only the hash of its secret travels on the log; the secret is
    /// shown to its owner once by whoever generated it. A trader key acts for exactly
    /// one account; auditor and admin keys name none.
    CreateApiKey {
        role: ApiRole,
        #[serde(default)]
        account: Option<AccountId>,
        secret_hash: Hash32,
        /// The key's MAC key ([`crate::auth::mac_key`] of its secret); it stays on the
        /// commands log and in the engine, never on the events log.
        mac_key: Hash32,
    },
    RevokeApiKey {
        key: ApiKeyId,
    },
    /// With `required`, every later command must carry valid credentials of a key
    /// allowed to issue it (see [`crate::auth`]); without, unsigned commands are the
    /// operator's (an embedded log's writers are the machine's users).
    RequireCredentials {
        required: bool,
    },
    /// The operator's explicit consent to move the clock forward by more than
    /// `CoreConfig::clock_jump_max_ms` (a restart after a long outage): this command's
    /// own `time_ms` becomes the clock, however far ahead, within the horizon.
    AllowClockJump,
    /// The dead-man switch: cancel every order of the account unless this command is
    /// sent again within `timeout_ms` (command time). Each one pushes the deadline
    /// to its own time plus `timeout_ms`; 0 disarms. At most
    /// [`DEAD_MAN_TIMEOUT_MAX_MS`]. Kraken's `CancelAllOrdersAfter`.
    CancelAllAfter {
        account: AccountId,
        timeout_ms: u64,
    },
    /// Up to `CoreConfig::batch_items_max` trading commands for one account, under
    /// one envelope (one signature): applied in order in one step, each answered by
    /// its own `ItemOutcome` (after the batch's `Outcome`) with its effects after it.
    /// One item refused does not stop the others.
    Batch {
        account: AccountId,
        items: Vec<BatchItem>,
    },
    // --- perpetual futures (`crate::perp`; docs/margin.md)
    /// Creates a linear perpetual market.
    CreatePerpetual(crate::perp::PerpetualSpec),
    /// A new index price for a perpetual, from an oracle key (or an admin):
    /// `source_ms` is when its sources priced it. It moves at most the market's
    /// `max_move_ppm`, its source time only increases and is not after the
    /// command's time; the engine derives the mark price from it.
    SetIndexPrice {
        market: Symbol,
        price: Dec,
        source_ms: u64,
    },
    /// The leverage caps of the three tiers (admin): 1 to 1,000, not falling from
    /// beginner to advanced.
    SetLeverageTiers(crate::perp::TierCaps),
    /// An account's leverage tier (admin).
    SetAccountTier {
        account: AccountId,
        tier: crate::perp::LeverageTier,
    },
    /// The leverage an account trades a perpetual at: at most the lower of its
    /// tier's cap and the market's first bracket's `max_leverage`.
    SetLeverage {
        account: AccountId,
        market: Symbol,
        leverage: u32,
    },
    /// An order on a perpetual that may only shrink the account's position: on
    /// the side opposite the position, at most its size, and never flipping it.
    PlaceReduceOnly(NewOrder),
    /// Closes the account's whole position on a perpetual with a reduce-only
    /// market order.
    ClosePosition {
        account: AccountId,
        market: Symbol,
    },
    /// Credit the insurance fund from outside (the operator's capital); idempotent
    /// by `reference` (per asset), as a deposit.
    FundInsurance {
        asset: AssetCode,
        amount: Dec,
        reference: ExternalRef,
    },
    /// The most notional an account's positions and open orders on the
    /// perpetuals settled in `asset` may add up to (the cost of each position
    /// plus what its growing orders would add). `account: None` sets the default
    /// for every account; an account's own cap replaces it, and `cap: None`
    /// removes the cap (the account's own: the default applies again).
    SetNotionalCap {
        account: Option<AccountId>,
        asset: AssetCode,
        cap: Option<Dec>,
    },
    /// Publishes a proof-of-liabilities round (admin; `tape pol` builds it):
    /// the next round number, a checkpoint after the last round's, the tree's
    /// root and one total per asset. Auditors check the root and the totals
    /// against the log (`tape replay`).
    CommitLiabilities(crate::LiabilityCommitment),
    /// A sliced order on a perpetual whose children may only shrink the
    /// account's position: on the side opposite it, and all of them together
    /// at most its size.
    PlaceSlicedReduceOnly(NewSliced),
}

/// A trading command inside a [`Command::Batch`]: the batch names the account.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchItem {
    PlaceOrder {
        market: Symbol,
        side: Side,
        order_type: OrderType,
        #[serde(default)]
        client_order_id: Option<ClientOrderId>,
        #[serde(default)]
        stp: StpMode,
    },
    CancelOrder {
        order: OrderRef,
    },
    CancelAll {
        #[serde(default)]
        market: Option<Symbol>,
    },
    AmendOrder {
        order: OrderRef,
        #[serde(default)]
        price: Option<Dec>,
        #[serde(default)]
        quantity: Option<Dec>,
    },
}

impl BatchItem {
    /// The command this item is, for `account`.
    pub fn command(&self, account: AccountId) -> Command {
        match self {
            BatchItem::PlaceOrder {
                market,
                side,
                order_type,
                client_order_id,
                stp,
            } => Command::PlaceOrder(NewOrder {
                account,
                market: *market,
                side: *side,
                order_type: *order_type,
                client_order_id: *client_order_id,
                stp: *stp,
            }),
            BatchItem::CancelOrder { order } => Command::CancelOrder {
                account,
                order: *order,
            },
            BatchItem::CancelAll { market } => Command::CancelAll {
                account,
                market: *market,
            },
            BatchItem::AmendOrder {
                order,
                price,
                quantity,
            } => Command::AmendOrder {
                account,
                order: *order,
                price: *price,
                quantity: *quantity,
            },
        }
    }
}

/// The longest dead-man switch timeout: one day.
pub const DEAD_MAN_TIMEOUT_MAX_MS: u64 = 86_400_000;

impl Command {
    /// The account a command acts for (or, for admin commands about an account, the
    /// account it is about); `None` for commands about assets, markets or keys.
    /// The commands topic is keyed by it.
    pub fn account(&self) -> Option<AccountId> {
        match self {
            Command::SetAccountFees { account, .. }
            | Command::SetAccountRestrictions { account, .. }
            | Command::SetWithdrawalLimit { account, .. }
            | Command::Deposit { account, .. }
            | Command::RequestWithdrawal { account, .. }
            | Command::CancelOrder { account, .. }
            | Command::CancelAll { account, .. }
            | Command::CancelAllAfter { account, .. }
            | Command::Batch { account, .. }
            | Command::AmendOrder { account, .. }
            | Command::SetAccountTier { account, .. }
            | Command::SetLeverage { account, .. }
            | Command::ClosePosition { account, .. } => Some(*account),
            Command::PlaceOrder(o) | Command::PlaceReduceOnly(o) => Some(o.account),
            Command::PlaceSliced(o) | Command::PlaceSlicedReduceOnly(o) => Some(o.account),
            Command::PlaceBracket(o) => Some(o.account),
            Command::CreateApiKey { account, .. } => *account,
            Command::CreateAsset(_)
            | Command::SetAssetEnabled { .. }
            | Command::CreateMarket(_)
            | Command::SetMarketStatus { .. }
            | Command::SetMarketFees { .. }
            | Command::SetPriceBand { .. }
            | Command::CompleteWithdrawal { .. }
            | Command::FailWithdrawal { .. }
            | Command::ClockTick
            | Command::RevokeApiKey { .. }
            | Command::RequireCredentials { .. }
            | Command::AllowClockJump
            | Command::CreatePerpetual(_)
            | Command::SetIndexPrice { .. }
            | Command::SetLeverageTiers(_)
            | Command::FundInsurance { .. }
            | Command::CommitLiabilities(_) => None,
            Command::SetNotionalCap { account, .. } => *account,
        }
    }

    /// Whether only an admin key may issue this command: everything except trading,
    /// withdrawal requests and index prices (a deposit credits from outside, so it is
    /// custody's, not the account's; a clock tick moves everyone's time). An index
    /// price is an oracle key's (or an admin's).
    pub fn is_admin(&self) -> bool {
        !matches!(
            self,
            Command::SetIndexPrice { .. }
                | Command::SetLeverage { .. }
                | Command::PlaceOrder(_)
                | Command::PlaceReduceOnly(_)
                | Command::ClosePosition { .. }
                | Command::PlaceSliced(_)
                | Command::PlaceSlicedReduceOnly(_)
                | Command::PlaceBracket(_)
                | Command::CancelOrder { .. }
                | Command::CancelAll { .. }
                | Command::CancelAllAfter { .. }
                | Command::AmendOrder { .. }
                | Command::Batch { .. }
                | Command::RequestWithdrawal { .. }
        )
    }

    /// The commands topic's record key: the account id in decimal, when there is one.
    pub fn topic_key(&self) -> Option<Vec<u8>> {
        self.account().map(|a| a.0.to_string().into_bytes())
    }
}

/// What an API key may do: a trader reads and trades its own account, an auditor
/// reads everything, an admin does everything.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApiRole {
    Trader,
    Auditor,
    Admin,
    /// Posts index prices (`SetIndexPrice`) and nothing else.
    Oracle,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct AssetSpec {
    pub code: AssetCode,
    /// Decimal places of the minor unit (8 for BTC, 6 for USDT). At most 18.
    pub scale: u8,
    /// Default per-account daily withdrawal limit; `None` is unlimited.
    #[serde(default)]
    pub daily_withdrawal_limit: Option<Dec>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct FeeRates {
    /// Parts per million of the quote notional: 1,000 ppm = 0.1%.
    pub maker_ppm: u32,
    pub taker_ppm: u32,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct MarketSpec {
    pub symbol: Symbol,
    pub base: AssetCode,
    pub quote: AssetCode,
    /// Price step, in quote per one base unit.
    pub tick_size: Dec,
    /// Quantity step, in base.
    pub lot_size: Dec,
    /// Smallest price × quantity, in quote.
    pub min_notional: Dec,
    #[serde(default)]
    pub min_quantity: Option<Dec>,
    #[serde(default)]
    pub max_quantity: Option<Dec>,
    pub fees: FeeRates,
    #[serde(default)]
    pub price_band_bps: Option<u32>,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MarketStatus {
    Active,
    /// No new orders or amends; cancels still work; the book is kept.
    Halted,
    /// Every open order is cancelled and nothing more is accepted.
    Disabled,
}

#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimeInForce {
    #[default]
    Gtc,
    Ioc,
    Fok,
    /// Good till the engine's clock reaches `expires_at_ms`.
    Gtd {
        expires_at_ms: u64,
    },
}

/// What happens when an order would trade with another order of the same account.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StpMode {
    #[default]
    CancelTaker,
    CancelMaker,
    CancelBoth,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MarketSize {
    /// Buy or sell this base quantity.
    Base(Dec),
    /// Spend (buy, fees included) or receive (sell, before fees) this quote amount.
    Quote(Dec),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderType {
    Limit {
        price: Dec,
        quantity: Dec,
        #[serde(default)]
        time_in_force: TimeInForce,
        #[serde(default)]
        post_only: bool,
        /// Iceberg: show at most this much; the rest refills from hidden.
        #[serde(default)]
        display_quantity: Option<Dec>,
    },
    Market {
        size: MarketSize,
    },
    /// Becomes a market order when the last trade price reaches `trigger_price`
    /// (buy: at or above; sell: at or below).
    StopMarket {
        trigger_price: Dec,
        size: MarketSize,
    },
    /// Becomes a limit order when the last trade price reaches `trigger_price`.
    StopLimit {
        trigger_price: Dec,
        price: Dec,
        quantity: Dec,
        #[serde(default)]
        time_in_force: TimeInForce,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct NewOrder {
    pub account: AccountId,
    pub market: Symbol,
    pub side: Side,
    pub order_type: OrderType,
    #[serde(default)]
    pub client_order_id: Option<ClientOrderId>,
    #[serde(default)]
    pub stp: StpMode,
}

/// N GTC limit children evenly spaced from `lower_price` to `upper_price` (both
/// included, each rounded down to the tick), the total split evenly in lots (the
/// first children take the remainder), tracked as one parent.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct NewSliced {
    pub account: AccountId,
    pub market: Symbol,
    pub side: Side,
    pub lower_price: Dec,
    pub upper_price: Dec,
    pub count: u32,
    pub total_quantity: Dec,
    #[serde(default)]
    pub post_only: bool,
    #[serde(default)]
    pub client_order_id: Option<ClientOrderId>,
}

/// An entry limit order (GTC) and, once the entry is done with some fill, an exit at
/// `exit_price` on the other side for the filled quantity.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct NewBracket {
    pub account: AccountId,
    pub market: Symbol,
    pub side: Side,
    pub entry_price: Dec,
    pub quantity: Dec,
    pub exit_price: Dec,
    #[serde(default)]
    pub client_order_id: Option<ClientOrderId>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderRef {
    Id(OrderId),
    Client(ClientOrderId),
}
