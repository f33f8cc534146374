//! What a tool knows of the exchange when it explains a refusal without the read
//! models (`tape produce`): assets, markets, their last trades and the balances of
//! the accounts it asks about, folded from the events log up to the answer. Folded
//! only when a refusal needs it; its cost is a read of the events log.

use std::collections::BTreeMap;
use std::time::Duration;

use tape_client::Facts;
use tape_log::{Log, LogReader};
use tape_projections::MarketView;
use tape_schemas::*;

#[derive(Default)]
pub struct LogFacts {
    assets: BTreeMap<AssetCode, (u8, bool)>,
    markets: BTreeMap<Symbol, MarketView>,
    balances: BTreeMap<(AccountId, AssetCode), i128>,
    scales: BTreeMap<AssetCode, u32>,
    orders: BTreeMap<OrderId, (AccountId, Symbol)>,
    /// Perpetuals: the last index and the `max_move_ppm`.
    indexes: BTreeMap<Symbol, (Option<Dec>, u32)>,
}

impl LogFacts {
    /// Folds the events log up to (not including) offset `end`, keeping balances
    /// and orders of `accounts` only.
    pub async fn fold<L: Log>(
        events: &L,
        end: u64,
        accounts: &[AccountId],
    ) -> anyhow::Result<LogFacts> {
        let mut facts = LogFacts::default();
        let mut reader = events.reader(0).await?;
        let mut next = 0;
        let mut filter = EventFilter::new(1, 0);
        while next < end {
            let batch = reader.next_batch(8_192, Duration::from_secs(5)).await?;
            anyhow::ensure!(
                !batch.is_empty(),
                "the events log ended at offset {next} before {end}"
            );
            for r in batch.into_iter().take_while(|r| r.offset < end) {
                next = r.offset + 1;
                if let Some(e) = filter.take(&r.bytes)? {
                    facts.apply(e.event, accounts);
                }
            }
        }
        Ok(facts)
    }

    fn apply(&mut self, event: Event, accounts: &[AccountId]) {
        match event {
            Event::AssetCreated(spec) => {
                self.assets.insert(spec.code, (spec.scale, true));
                self.scales.insert(spec.code, u32::from(spec.scale));
            }
            Event::AssetUpdated { asset, enabled } => {
                if let Some(a) = self.assets.get_mut(&asset) {
                    a.1 = enabled;
                }
            }
            Event::PerpetualCreated { spec, .. } => {
                let max_move = spec.index.max_move_ppm;
                self.indexes.insert(spec.market.symbol, (None, max_move));
                self.apply(Event::MarketCreated(spec.market), accounts);
            }
            Event::IndexPriceSet { market, index, .. } => {
                if let Some(i) = self.indexes.get_mut(&market) {
                    i.0 = Some(index);
                }
            }
            Event::MarketCreated(spec) => {
                self.markets.insert(spec.symbol, MarketView::created(&spec));
            }
            Event::MarketUpdated {
                market,
                status,
                fees,
                price_band_bps,
                reference_price,
            } => {
                if let Some(m) = self.markets.get_mut(&market) {
                    (m.status, m.fees, m.price_band_bps, m.reference_price) =
                        (status, fees, price_band_bps, reference_price);
                }
            }
            Event::Trade { market, price, .. } => {
                if let Some(m) = self.markets.get_mut(&market) {
                    m.last_price = Some(price);
                }
            }
            Event::OrderAccepted {
                order,
                account,
                market,
                ..
            } if accounts.contains(&account) => {
                self.orders.insert(order, (account, market));
            }
            Event::Posting {
                asset,
                from,
                to,
                amount,
                ..
            } => {
                let minor = amount.mantissa();
                let scale = amount.scale();
                let own = self.scales.get(&asset).copied().unwrap_or(scale);
                let minor = minor * 10i128.pow(own.saturating_sub(scale));
                if let Party::Available(a) = from {
                    if accounts.contains(&a) {
                        *self.balances.entry((a, asset)).or_default() -= minor;
                    }
                }
                if let Party::Available(a) = to {
                    if accounts.contains(&a) {
                        *self.balances.entry((a, asset)).or_default() += minor;
                    }
                }
            }
            _ => {}
        }
    }
}

impl Facts for LogFacts {
    fn index(&self, market: &Symbol) -> Option<(Dec, u32)> {
        let (index, ppm) = self.indexes.get(market)?;
        Some(((*index)?, *ppm))
    }

    fn asset(&self, code: &AssetCode) -> Option<(u8, bool)> {
        self.assets.get(code).copied()
    }

    fn market(&self, symbol: &Symbol) -> Option<MarketView> {
        self.markets.get(symbol).cloned()
    }

    fn available(&self, account: AccountId, asset: &AssetCode) -> Option<Dec> {
        let scale = *self.scales.get(asset)?;
        let minor = self.balances.get(&(account, *asset)).copied().unwrap_or(0);
        Some(Dec::from_minor(minor, scale))
    }

    fn order_market(&self, account: AccountId, order: &OrderRef) -> Option<Symbol> {
        match order {
            OrderRef::Id(id) => self
                .orders
                .get(id)
                .filter(|(a, _)| *a == account)
                .map(|(_, m)| *m),
            OrderRef::Client(_) => None,
        }
    }
}
