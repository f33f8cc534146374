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
