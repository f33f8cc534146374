//! An account's cross margin in one collateral, from the read models: what
//! GraphQL shows beside its positions. The engine decides liquidations from its
//! own state; these figures follow the same formulas (docs/margin.md) from the
//! views, taking the margin held as what the positions require (it is, unless
//! the account is short of margin).

use rust_decimal::prelude::*;
use tape_schemas::Dec;

use crate::views::{PerpetualView, PositionView};

/// One position's maintenance margin and liquidation price.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PositionMargin {
    pub maintenance: Dec,
    /// The mark at which the account's equity would equal its maintenance
    /// margin, its other positions at their marks and this one's bracket as now:
    /// rounded up to the tick for a long, down for a short; `None` below a tick.
    pub liquidation_price: Option<Dec>,
}

/// An account's margin in one collateral.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarginView {
    /// Available plus the margin held for positions.
    pub wallet: Dec,
    pub margin_held: Dec,
    pub unrealized_pnl: Dec,
    /// Wallet plus unrealized.
    pub equity: Dec,
    pub maintenance: Dec,
    /// Maintenance over equity (liquidation at 1 or above); `None` without
    /// equity.
    pub margin_ratio: Option<Dec>,
    /// By the order of `positions` given to `margin_of`.
    pub positions: Vec<PositionMargin>,
}

/// The maintenance margin of a position worth `value`: the bracket's rate of it,
/// rounded up to the collateral's minor unit, less the bracket's amount.
pub fn maintenance(
    perp: &PerpetualView,
    value: Decimal,
    scale: u32,
) -> (Decimal, Decimal, Decimal) {
    let b = perp
        .brackets
        .iter()
        .find(|b| value <= b.notional_cap.0)
        .or(perp.brackets.last());
    let Some(b) = b else {
        return (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
    };
    let rate = Decimal::from(b.maintenance_ppm) / Decimal::from(1_000_000);
    let cum = b.maintenance_amount.0;
    let mm =
        (value * rate).round_dp_with_strategy(scale, RoundingStrategy::ToPositiveInfinity) - cum;
    (mm.max(Decimal::ZERO), rate, cum)
}

/// The margin of an account holding `available` of the collateral (of `scale`
/// decimals) and `positions` settled in it, each with its perpetual.
pub fn margin_of(
    available: Dec,
    positions: &[(PositionView, PerpetualView)],
    scale: u32,
) -> MarginView {
    let mut held = Decimal::ZERO;
    let mut upnl = Decimal::ZERO;
    let mut mm = Decimal::ZERO;
    let mut each = Vec::new();
    for (p, perp) in positions {
        held += p.initial_margin.0;
        let mark = perp.mark.map_or(Decimal::ZERO, |m| m.0);
        upnl += p.unrealized_pnl(Dec(mark)).0;
        let (m, rate, cum) = maintenance(perp, p.size.0.abs() * mark, scale);
        mm += m;
        each.push((m, rate, cum, mark));
    }
    let wallet = available.0 + held;
    let equity = wallet + upnl;
    let positions = positions
        .iter()
        .zip(each)
        .map(|((p, perp), (m, rate, cum, mark))| {
            let others = mm - m;
            let n = p.size.0.abs();
            let price = if n.is_zero() {
                None
            } else if p.size.0.is_sign_positive() {
                (n * mark + others - cum - equity).checked_div(n * (Decimal::ONE - rate))
            } else {
                (equity + n * mark + cum - others).checked_div(n * (Decimal::ONE + rate))
            };
            let tick = perp.spec.market.tick_size.0;
            let on_tick = |x: Decimal| {
                let ticks = (x / tick).round_dp_with_strategy(
                    0,
                    if p.size.0.is_sign_positive() {
                        RoundingStrategy::ToPositiveInfinity
                    } else {
                        RoundingStrategy::ToNegativeInfinity
                    },
                );
                Dec((ticks * tick).normalize())
            };
            PositionMargin {
                maintenance: Dec(m),
                liquidation_price: price.map(on_tick).filter(|x| x.0 > Decimal::ZERO),
            }
        })
        .collect();
    MarginView {
        wallet: Dec(wallet),
        margin_held: Dec(held),
        unrealized_pnl: Dec(upnl),
        equity: Dec(equity),
        maintenance: Dec(mm),
        margin_ratio: (equity > Decimal::ZERO).then(|| Dec((mm / equity).round_dp(6))),
        positions,
    }
}
