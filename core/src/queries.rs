//! Read-only questions about the core's state, for tests, benchmarks and tools.

use tape_schemas::*;

use crate::exchange::Core;

impl Core {
    /// Balances of an account in an asset, as (available, held) in minor units.
    pub fn balance(&self, account: AccountId, asset: &AssetCode) -> Option<crate::Balance> {
        let a = self.assets.find(asset)?;
        self.ledger.balance(account, a)
    }

    /// The fee account's balance in an asset, in minor units.
    pub fn fees_collected(&self, asset: &AssetCode) -> Option<u64> {
        let a = self.assets.find(asset)?;
        Some(self.ledger.system(a).fees)
    }

    /// Resting orders plus waiting stops, across all markets.
    pub fn open_orders(&self) -> usize {
        self.orders.count()
    }

    /// The best bid and ask of a market, in ticks.
    pub fn best_prices(&self, market: &Symbol) -> Option<(Option<u64>, Option<u64>)> {
        let m = self.markets.id(market).ok()?;
        let book = &self.markets[m].book;
        Some((
            book.best(Side::Buy).map(|b| b.0),
            book.best(Side::Sell).map(|a| a.0),
        ))
    }

    /// A market's book by price level, best first: (price, visible quantity) of each
    /// side, bids then asks.
    pub fn depth(&self, market: &Symbol) -> Option<[Vec<(Dec, Dec)>; 2]> {
        let mk = &self.markets[self.markets.id(market).ok()?];
        Some([Side::Buy, Side::Sell].map(|side| {
            mk.book
                .levels(side)
                .map(|(ticks, level)| {
                    let lots = mk
                        .book
                        .queue(level)
                        .map(|slot| mk.book.get(slot).visible_lots)
                        .sum();
                    (mk.price_dec(ticks), mk.qty_dec(lots))
                })
                .collect()
        }))
    }

    /// Ids of an account's open orders (resting and stops), ascending.
    pub fn account_orders(&self, account: AccountId) -> Vec<OrderId> {
        self.orders.open_of(account).map(OrderId).collect()
    }

    /// A perpetual market's prices: its index, the index's source time, its mark,
    /// and whether the index is stale (the market only reduces); `None` for a spot
    /// or unknown market.
    pub fn perpetual(&self, market: &Symbol) -> Option<PerpetualPrices> {
        let m = self.markets.id(market).ok()?;
        let perp = self.perps.get(m)?;
        let mk = &self.markets[m];
        Some(PerpetualPrices {
            symbol: perp.spec().market.symbol,
            index: perp.index().map(|i| (mk.price_dec(i.ticks), i.source_ms)),
            mark: perp.mark_ticks().map(|t| mk.price_dec(t)),
            stale: perp.is_stale(),
        })
    }
}

/// What [`Core::perpetual`] answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PerpetualPrices {
    pub symbol: Symbol,
    /// The index price and its source time.
    pub index: Option<(Dec, u64)>,
    pub mark: Option<Dec>,
    pub stale: bool,
}

/// An account's position on a perpetual, as [`Core::position`] answers it. Money
/// is in the collateral asset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PositionInfo {
    /// Signed: long above zero.
    pub size: Dec,
    /// The entry notional, signed like the size.
    pub cost: Dec,
    pub mark: Option<Dec>,
    /// At the mark.
    pub unrealized_pnl: Dec,
    /// What the position and its resting orders hold.
    pub initial_margin: Dec,
    /// At the mark, from the brackets.
    pub maintenance_margin: Dec,
    pub leverage: u32,
}

/// A perpetual's funding, as [`Core::funding`] answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FundingInfo {
    /// When the next round is due (ms of command time).
    pub next_ms: u64,
    /// The last round's rate (a fraction: longs pay shorts when positive).
    pub last_rate: Dec,
    /// Rounds begun so far.
    pub rounds: u64,
    /// The time of the round still charging positions, if one is.
    pub under_way: Option<u64>,
    /// Premium samples taken since the last round.
    pub samples: u32,
}

/// An account's cross margin in one collateral asset, as [`Core::margin`] answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarginSummary {
    /// Available plus held.
    pub wallet: Dec,
    /// Held for positions and their orders.
    pub margin_held: Dec,
    /// What positions and orders require; above `margin_held` only while short.
    pub initial_required: Dec,
    pub maintenance: Dec,
    pub unrealized_pnl: Dec,
    /// Wallet plus unrealized.
    pub equity: Dec,
    /// What the account may spend or withdraw.
    pub spendable: Dec,
}

impl Core {
    /// An account's position on a perpetual, with its orders' margin; `None`
    /// when it has neither.
    pub fn position(&self, account: AccountId, market: &Symbol) -> Option<PositionInfo> {
        let m = self.markets.id(market).ok()?;
        let (perp, pos) = (self.perps.get(m)?, self.positions.get(account, m)?);
        let mk = &self.markets[m];
        let scale = u32::from(mk.quote_scale);
        let money = |v: i128| Dec::from_minor(v, scale);
        let (value, unrealized) = self.value_at_mark(m, pos);
        Some(PositionInfo {
            size: mk.size_dec(pos.lots),
            cost: money(pos.signed_cost()),
            mark: perp.mark_ticks().map(|t| mk.price_dec(t)),
            unrealized_pnl: money(unrealized),
            initial_margin: money(pos.required as i128),
            maintenance_margin: money(perp.maintenance(value) as i128),
            leverage: pos.leverage,
        })
    }

    /// An account's cross margin in a collateral asset; `None` for an unknown
    /// account or asset.
    pub fn margin(&self, account: AccountId, asset: &AssetCode) -> Option<MarginSummary> {
        let a = self.assets.find(asset)?;
        let balance = self.ledger.balance(account, a)?;
        let scale = u32::from(self.assets.get(a).scale);
        let money = |v: i128| Dec::from_minor(v, scale);
        let margin = self.positions.margin(account, a);
        let unrealized = self.unrealized(account, a);
        let maintenance = self.health(account, a).maintenance;
        let wallet = balance.total() as i128;
        Some(MarginSummary {
            wallet: money(wallet),
            margin_held: money(i128::from(margin.held)),
            initial_required: money(margin.required as i128),
            maintenance: money(maintenance as i128),
            unrealized_pnl: money(unrealized),
            equity: money(wallet + unrealized),
            spendable: money(i128::from(self.spendable(account, a))),
        })
    }

    /// A perpetual's open interest (the longs' size) and its clearing party's
    /// balance.
    pub fn open_interest(&self, market: &Symbol) -> Option<(Dec, Dec)> {
        let m = self.markets.id(market).ok()?;
        let perp = self.perps.get(m)?;
        let mk = &self.markets[m];
        let clearing = Dec::from_minor(perp.clearing(), u32::from(mk.quote_scale));
        Some((mk.qty_dec(perp.open_interest()), clearing))
    }

    /// An account's notional on the perpetuals settled in `asset` (each
    /// position's cost plus what its growing orders would add) and its cap.
    pub fn notional(&self, account: AccountId, asset: &AssetCode) -> Option<(Dec, Option<Dec>)> {
        let a = self.assets.find(asset)?;
        let scale = u32::from(self.assets.get(a).scale);
        let n = i128::try_from(self.account_notional(account, a)).unwrap_or(i128::MAX);
        let cap = self.leverage.notional_cap(account, a);
        Some((
            Dec::from_minor(n, scale),
            cap.map(|c| Dec::from_minor(i128::from(c), scale)),
        ))
    }

    /// The insurance fund's positions settled in `asset`: (market, signed size,
    /// signed cost).
    pub fn insurance_positions(&self, asset: &AssetCode) -> Vec<(Symbol, Dec, Dec)> {
        let Some(a) = self.assets.find(asset) else {
            return Vec::new();
        };
        self.perps
            .iter()
            .filter(|(m, p)| self.markets[*m].quote == a && p.fund.lots != 0)
            .map(|(m, p)| {
                let mk = &self.markets[m];
                let cost = Dec::from_minor(p.fund.signed_cost(), u32::from(mk.quote_scale));
                (mk.spec.symbol, mk.size_dec(p.fund.lots), cost)
            })
            .collect()
    }

    /// A perpetual's funding: when the next round is due, the last round's rate
    /// and the round under way, if any.
    pub fn funding(&self, market: &Symbol) -> Option<FundingInfo> {
        let m = self.markets.id(market).ok()?;
        let f = &self.perps.get(m)?.funding;
        Some(FundingInfo {
            next_ms: f.next_ms,
            last_rate: Dec::from_minor(i128::from(f.last_rate_ppb), 9),
            rounds: f.rounds,
            under_way: f.round.map(|r| r.at_ms),
            samples: f.samples,
        })
    }

    /// The insurance fund's balance in an asset, in minor units (negative: bad
    /// debt).
    pub fn insurance_fund(&self, asset: &AssetCode) -> Option<i128> {
        let a = self.assets.find(asset)?;
        Some(self.ledger.system(a).insurance)
    }
}

impl Core {
    /// How many watched positions on `market` a mark of `ticks` would cross (the
    /// accounts it would check exactly), for benchmarks and tools.
    pub fn accounts_a_mark_crosses(&self, market: &Symbol, ticks: u64) -> Option<usize> {
        let m = self.markets.id(market).ok()?;
        self.perps.get(m)?;
        Some(self.watch.crossing(m, ticks))
    }

    /// Accounts waiting in the liquidation backlog.
    pub fn liquidation_backlog(&self) -> usize {
        self.watch.backlog_len()
    }

    /// Perpetuals whose mark crossed positions that wait for a check (each
    /// command checks at most `CROSSED_CHECKS_MAX`).
    pub fn liquidation_sweeps(&self) -> usize {
        self.watch.sweeps_len()
    }

    /// Positions crossed by their marks that wait for a check: a walk over
    /// them, for benchmarks and tools.
    pub fn crossed_positions_waiting(&self) -> usize {
        self.watch.waiting(|m| self.markets[m].mark().unwrap_or(0))
    }
}
