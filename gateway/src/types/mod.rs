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
// These share their names with the view types they show; named here, they win over
// the globs (the views are `views::…`).
pub use account::{EquityPoint, LedgerEntry};
pub use market_data::{Candle, Depth, Ticker};
pub use orders::{BracketReport, SlicedReport};
use tape_projections::{self as views, *};
use tape_schemas::{self as wire, *};

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

pub(crate) fn dm(x: Dec) -> Decimal {
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
#[graphql(remote = "tape_schemas::Side")]
pub enum Side {
    Buy,
    Sell,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "tape_projections::OrderStatus")]
pub enum OrderStatus {
    Pending,
    New,
    PartiallyFilled,
    Filled,
    Cancelled,
    Expired,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum OrderKind {
    Limit,
    Market,
    StopMarket,
    StopLimit,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum TimeInForce {
    Gtc,
    Ioc,
    Fok,
    /// Good till `expiresAtMs`.
    Gtd,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "tape_schemas::StpMode")]
pub enum SelfTradePrevention {
    CancelTaker,
    CancelMaker,
    CancelBoth,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "tape_schemas::ApiRole")]
pub enum Role {
    Trader,
    Auditor,
    Admin,
    /// Posts index prices for perpetual markets, and nothing else.
    Oracle,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "tape_schemas::MarketStatus")]
pub enum MarketStatus {
    Active,
    Halted,
    Disabled,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "tape_projections::EntryKind")]
pub enum EntryKind {
    Deposit,
    Withdrawal,
    Trade,
    Fee,
    RealizedPnl,
    Funding,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "tape_projections::WithdrawalStatus")]
pub enum WithdrawalStatus {
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
