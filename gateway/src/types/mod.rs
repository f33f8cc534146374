//! The GraphQL output and input types: thin wrappers over the read models' rows and
//! the wire types. Decimals travel as strings, never as floats.

mod account;
mod market_data;
mod orders;

pub use account::*;
use async_graphql::{
    Enum, InputObject, InputValueError, InputValueResult, Object, Scalar, ScalarType, SimpleObject,
    Value,
};
pub use market_data::*;
pub use orders::*;
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

// The GraphQL face of `tape_projections::Interval`: the same variants, converted
// both ways by async-graphql's `remote` (a doc comment here would enter the SDL).
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "tape_projections::Interval")]
pub enum CandleInterval {
    M1,
    M5,
    M15,
    H1,
    H4,
    D1,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum CommandStatus {
    Accepted,
    Rejected,
    /// Durably on the commands log; the engine has not answered within the wait.
    /// Ask again with `command(offset:, id:)`.
    Pending,
}
