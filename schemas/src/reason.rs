//! The one vocabulary of refusals and of order endings. Every rejected command names
//! exactly one `RejectReason`; every order that leaves the book names a `DoneReason`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Why a command was rejected. A rejected command changes nothing but the record of
/// used ids and signing sequence numbers.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The bytes on the commands log did not decode as a command.
    MalformedCommand,
    /// The envelope names a schema version this engine does not speak.
    UnsupportedVersion,
    UnknownAsset,
    AssetExists,
    AssetDisabled,
    /// An asset scale above 18 decimal places.
    InvalidAssetScale,
    UnknownMarket,
    MarketExists,
    MarketHalted,
    MarketDisabled,
    /// Tick, lot, notional or fee settings that cannot be traded exactly.
    InvalidMarketSpec,
    /// A fee rate above the maximum (100,000 ppm = 10%).
    InvalidFee,
    UnknownAccount,
    UnknownOrder,
    UnknownWithdrawal,
    /// Zero or negative where a positive price is needed.
    InvalidPrice,
    /// Zero or negative where a positive quantity is needed.
    InvalidQuantity,
    /// Zero or negative where a positive amount is needed.
    InvalidAmount,
    /// More decimal places than the asset's scale allows.
    TooManyDecimals,
    PriceNotOnTick,
    QuantityNotOnLot,
    /// A value too large to represent or to multiply exactly.
    OutOfRange,
    BelowMinQuantity,
    AboveMaxQuantity,
    BelowMinNotional,
    /// The limit price is further from the reference price than the market's band.
    PriceOutsideBand,
    InsufficientFunds,
    TradingRestricted,
    WithdrawalRestricted,
    WithdrawalLimitExceeded,
    /// A deposit whose external reference was already credited; nothing is credited
    /// twice.
    DuplicateDepositReference,
    /// The account already has an open order with this client order id.
    DuplicateClientOrderId,
    PostOnlyWouldTrade,
    FokCannotFill,
    /// A market order met an empty opposite side.
    NoLiquidity,
    /// A GTD expiry at or before the current time.
    ExpiryInPast,
    InvalidSlice,
    InvalidBracket,
    /// Amending a stop, a market order or an iceberg's display is not supported.
    NotAmendable,
    /// An amend that changes nothing.
    NothingToChange,
    /// The account has as many open orders as the engine allows.
    TooManyOpenOrders,
    /// Post-only or iceberg with IOC/FOK: such an order could never rest.
    InvalidTimeInForce,
    /// A combination the engine does not offer (a stop-market sell sized in quote).
    UnsupportedOrderType,
    /// A key that does not exist or was already revoked.
    UnknownApiKey,
    /// A trader key without an account, or an auditor/admin key with one.
    InvalidApiKey,
    /// Credentials are required and the command carries none.
    MissingCredentials,
    /// The MAC does not match the command and the key: forged or altered.
    BadSignature,
    /// The command's `expires_ms` is before the engine's clock.
    CredentialsExpired,
    /// The command expires more than `MAX_VALIDITY_MS` after the engine's clock.
    ExpiryTooFar,
    /// The signing stream already used this `seq`: a copy of a signed record (or a
    /// signer that reused a number). Nothing is executed again.
    ReplayedSeq,
    /// The `seq` is more than `SEQ_WINDOW` below the highest its stream has used,
    /// so it cannot be told apart from a replay. Sign in order, or use another stream.
    SeqTooOld,
    /// The key already has as many live signing streams as the engine keeps
    /// (`CoreConfig::signing_streams_per_key_max`); a stream lives until every
    /// command it signed has expired.
    TooManySigningStreams,
    /// The key may not issue this command: another account's, an admin command by
    /// a trader key, or any command by an auditor key.
    NotPermitted,
    /// A trusted `time_ms` past the horizon (`CoreConfig::time_max_ms`, the year
    /// 2100): a clock in microseconds or nanoseconds, or garbage.
    TimeBeyondHorizon,
    /// A trusted `time_ms` more than `CoreConfig::clock_jump_max_ms` ahead of the
    /// engine's clock; after a real outage the operator sends `AllowClockJump`.
    ClockJumpTooLarge,
    /// As many assets as `CoreConfig::assets_max`.
    TooManyAssets,
    /// As many markets as `CoreConfig::markets_max`.
    TooManyMarkets,
    /// As many accounts as `CoreConfig::accounts_max`; a new account is refused.
    TooManyAccounts,
    /// As many live API keys as `CoreConfig::api_keys_max`.
    TooManyApiKeys,
    /// As many pending withdrawals as `CoreConfig::pending_withdrawals_max`.
    TooManyPendingWithdrawals,
    /// As many deposit references remembered as `CoreConfig::deposit_references_max`.
    TooManyDeposits,
    /// As many live sliced and bracket parents as `CoreConfig::parents_max`.
    TooManyParents,
    /// A dead-man switch timeout beyond `DEAD_MAN_TIMEOUT_MAX_MS` (one day).
    TimeoutTooLong,
    /// A batch with no items, or more than `CoreConfig::batch_items_max`.
    BatchSize,
    /// Perpetual brackets, index rules or funding settings that do not hold together
    /// (docs/margin.md says what must).
    InvalidPerpetualSpec,
    /// The market is a spot market; the command is for perpetuals.
    NotAPerpetual,
    /// An index price further from the last one than the market's `max_move_ppm`.
    IndexMoveTooLarge,
    /// An index price whose source time is not after the last one's.
    IndexSourceTimeNotAfter,
    /// An index price whose source time is after the command's time.
    IndexSourceTimeAhead,
    /// An index price outside the market's `[min_price, max_price]`.
    IndexOutsideLimits,
    /// Retired: no command produces it any more. It named the order types
    /// perpetuals did not take yet (sliced and bracket orders, built since);
    /// it stays so that logs which carry it still decode.
    PerpetualTradingNotBuilt,
    /// A leverage of 0 or above 1,000, or tier caps that fall from beginner to
    /// advanced.
    InvalidLeverage,
    /// Above the lower of the account's tier cap and the market's first bracket's
    /// `max_leverage`.
    LeverageAboveCap,
    /// The account's free collateral (available, less unrealized losses) does not
    /// cover the initial margin, fee and open loss the order needs; or the account
    /// is short of margin and may only reduce.
    InsufficientMargin,
    /// No index price has arrived for the perpetual yet: there is no mark price.
    NoIndexPrice,
    /// The perpetual's index is stale: only reduce-only orders and `ClosePosition`.
    MarketReduceOnly,
    /// A reduce-only order on the side that would grow the position, or larger
    /// than the position.
    WouldIncreasePosition,
    /// No position to close or reduce on that perpetual.
    NoPosition,
    /// The order would take the market's open interest above its cap.
    OpenInterestCap,
    /// The order would take the position's notional above the last leverage
    /// bracket's cap.
    PositionNotionalCap,
    /// The order would take the account's notional on the perpetuals settled in
    /// the collateral above its cap (`SetNotionalCap`).
    AccountNotionalCap,
    /// A liabilities round that is not the next one, or whose checkpoint is not
    /// after the last round's.
    LiabilityRound,
    /// A liabilities commitment whose shape is wrong: an algorithm this build
    /// does not know, a height outside 1 to 32, or totals that are not one per
    /// asset in order.
    LiabilityRecord,
}

/// Why an order left the book (or never rested).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DoneReason {
    Filled,
    /// Cancelled by its owner (cancel, cancel-all, or its parent's cancel).
    Cancelled,
    /// What an IOC or market order could not fill at once.
    Unfilled,
    /// A GTD order whose time passed.
    Expired,
    /// Self-trade prevention removed it.
    SelfTrade,
    /// A market order or triggered stop whose funds ran out before it filled.
    InsufficientFunds,
    /// A market order that reached the edge of the market's price band.
    PriceBand,
    /// The market was disabled.
    MarketDisabled,
    /// The account's dead-man switch fired (`CancelAllAfter` was not refreshed).
    DeadManSwitch,
    /// A reduce-only order whose position is closed (or smaller than the order).
    ReduceOnly,
    /// A perpetual order stopped by the market's open-interest cap, the
    /// position's notional cap or the account's.
    ExposureCap,
    /// A perpetual order the account's margin could not carry further.
    InsufficientMargin,
    /// Cancelled because its account is being liquidated.
    Liquidation,
    /// A perpetual's stop that triggered while the index was stale: the market
    /// only reduces, and the stop was not reduce-only.
    IndexStale,
}
