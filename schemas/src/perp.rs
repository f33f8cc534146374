//! Perpetual futures: the spec of a linear perpetual market and its price rules.
//! Prices that move margin are commands (`SetIndexPrice`), never read from a clock or
//! a feed inside the engine; see `docs/margin.md`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::command::MarketSpec;
use crate::money::Dec;

/// A linear perpetual: its book is a market's (`market`: tick, lot, fees, band and
/// sizes in the underlying `market.base`), settled in `market.quote`, the
/// collateral. The underlying must exist as an asset (for its scale), but nothing
/// of it moves on the ledger.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct PerpetualSpec {
    pub market: MarketSpec,
    /// Leverage brackets by position notional (in collateral), smallest first, as
    /// Binance's: at most `PERP_BRACKETS_MAX`.
    pub brackets: Vec<LeverageBracket>,
    pub index: IndexRules,
    /// The most the book may move the mark away from the index, in ppm of the index.
    pub mark_basis_max_ppm: u32,
    /// Funding is paid every this many ms of command time.
    pub funding_interval_ms: u64,
    /// The most open interest (the longs' total size), in the underlying.
    pub open_interest_max: Dec,
}

/// Brackets a perpetual may have.
pub const PERP_BRACKETS_MAX: usize = 16;

/// One leverage bracket: position notional above the previous bracket's cap, up to
/// `notional_cap`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct LeverageBracket {
    /// In collateral.
    pub notional_cap: Dec,
    /// At least 1; not above the previous bracket's.
    pub max_leverage: u32,
    /// Maintenance margin rate in ppm (5,000 = 0.5%); not below the previous
    /// bracket's, and below the initial rate `1,000,000 / max_leverage`.
    pub maintenance_ppm: u32,
}

/// A bracket as the engine derived it: its floor and its maintenance amount, which
/// keeps maintenance margin continuous across bracket edges.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct BracketTerms {
    pub notional_floor: Dec,
    pub notional_cap: Dec,
    pub max_leverage: u32,
    pub maintenance_ppm: u32,
    /// `cum`: maintenance margin = notional × rate − this amount (in collateral).
    pub maintenance_amount: Dec,
}

/// What an index price update may do.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct IndexRules {
    /// The largest move one update may make, in ppm of the index before it.
    pub max_move_ppm: u32,
    /// An index whose source time is older than this (against the engine's clock)
    /// makes the market reduce-only until a fresh one arrives.
    pub stale_after_ms: u64,
    /// The index must lie in `[min_price, max_price]` (on the market's tick).
    pub min_price: Dec,
    pub max_price: Dec,
}

/// An account's leverage tier: its cap on every perpetual, whatever the brackets
/// allow (the source risk system's beginner 5x, intermediate 10x, advanced 20x, as
/// defaults an admin may change). A new account is a beginner.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LeverageTier {
    #[default]
    Beginner,
    Intermediate,
    Advanced,
}

/// What one step of a liquidation did.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LiquidationStage {
    /// The account's resting orders on the perpetuals settled in the asset were
    /// cancelled (`quantity` is how many).
    Cancel,
    /// An IOC reduce-only order at most as far as the bankruptcy price (`price`)
    /// closed `quantity` of the position.
    Reduce,
    /// Nothing in the book within the bankruptcy price: the account stays in the
    /// backlog and is tried again on the next commands.
    NoLiquidity,
    /// Nothing in the book within the bankruptcy price: the insurance fund took
    /// `quantity` of the position over at that price (`price`).
    TakeOver,
    /// The insurance fund could not take the position over: `quantity` of it was
    /// closed at the bankruptcy price against the opposite positions ranked first
    /// (each gets a `Deleveraged` event).
    Deleverage,
}

impl LiquidationStage {
    /// The stage as the JSON events name it.
    pub fn name(self) -> &'static str {
        match self {
            LiquidationStage::Cancel => "cancel",
            LiquidationStage::Reduce => "reduce",
            LiquidationStage::NoLiquidity => "no_liquidity",
            LiquidationStage::TakeOver => "take_over",
            LiquidationStage::Deleverage => "deleverage",
        }
    }
}

/// The leverage caps of the three tiers.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct TierCaps {
    pub beginner: u32,
    pub intermediate: u32,
    pub advanced: u32,
}

impl Default for TierCaps {
    fn default() -> Self {
        TierCaps {
            beginner: 5,
            intermediate: 10,
            advanced: 20,
        }
    }
}

impl TierCaps {
    pub fn cap(&self, tier: LeverageTier) -> u32 {
        match tier {
            LeverageTier::Beginner => self.beginner,
            LeverageTier::Intermediate => self.intermediate,
            LeverageTier::Advanced => self.advanced,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_is_named_as_json_names_it() {
        use LiquidationStage as S;
        for stage in [
            S::Cancel,
            S::Reduce,
            S::NoLiquidity,
            S::TakeOver,
            S::Deleverage,
        ] {
            assert_eq!(serde_json::to_value(stage).unwrap(), stage.name());
        }
    }
}
