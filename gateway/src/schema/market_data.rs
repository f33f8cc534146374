//! Market data, public to all: assets, markets, tickers, depth, candles and trades.

use super::*;

#[derive(Default)]
pub struct MarketDataQuery;

#[Object]
impl MarketDataQuery {
    async fn assets(&self, ctx: &Context<'_>) -> Result<Vec<Asset>> {
        Ok(state(ctx)
            .views
            .assets()
            .map_err(store)?
            .into_iter()
            .map(Asset::from)
            .collect())
    }

    async fn markets(&self, ctx: &Context<'_>) -> Result<Vec<Market>> {
        Ok(state(ctx)
            .views
            .markets()
            .map_err(store)?
            .into_iter()
            .map(Market)
            .collect())
    }

    async fn market(&self, ctx: &Context<'_>, symbol: String) -> Result<Market> {
        let s = market_symbol(ctx, &symbol)?;
        let m = state(ctx).views.market(&s).map_err(store)?;
        m.map(Market)
            .ok_or_else(|| coded(Code::UnknownMarket, format!("unknown market \"{symbol}\"")))
    }

    /// The insurance fund in each collateral asset: its balance (below zero:
    /// bad debt) and the positions it took over in liquidations.
    async fn insurance_fund(&self, ctx: &Context<'_>) -> Result<Vec<InsuranceFund>> {
        let t = state(ctx).views.margin_totals().map_err(store)?;
        let views = &state(ctx).views;
        let mut assets: std::collections::BTreeMap<String, InsuranceFund> = t
            .insurance
            .iter()
            .map(|(a, b)| {
                let fund = InsuranceFund {
                    asset: a.to_string(),
                    balance: crate::types::dm(Dec(b.0.normalize())),
                    positions: Vec::new(),
                    liquidations_under_way: 0,
                };
                (a.to_string(), fund)
            })
            .collect();
        for (market, (size, cost)) in &t.fund_positions {
            let Some(perp) = views.perpetual(market).map_err(store)? else {
                continue;
            };
            let asset = perp.spec.market.quote.to_string();
            let fund = assets
                .entry(asset.clone())
                .or_insert_with(|| InsuranceFund {
                    asset,
                    balance: crate::types::dm(Dec::ZERO),
                    positions: Vec::new(),
                    liquidations_under_way: 0,
                });
            fund.positions.push(FundPosition {
                market: market.to_string(),
                size: crate::types::dm(Dec(size.0.normalize())),
                cost: crate::types::dm(Dec(cost.0.normalize())),
            });
        }
        for (asset, started) in &t.started {
            let ended = t.ended.get(asset).copied().unwrap_or(0);
            let fund = assets
                .entry(asset.to_string())
                .or_insert_with(|| InsuranceFund {
                    asset: asset.to_string(),
                    balance: crate::types::dm(Dec::ZERO),
                    positions: Vec::new(),
                    liquidations_under_way: 0,
                });
            fund.liquidations_under_way = started.saturating_sub(ended);
        }
        Ok(assets.into_values().collect())
    }

    /// The perpetual markets: rules, index and mark.
    async fn perpetuals(&self, ctx: &Context<'_>) -> Result<Vec<Perpetual>> {
        Ok(state(ctx)
            .views
            .perpetuals()
            .map_err(store)?
            .into_iter()
            .map(Perpetual)
            .collect())
    }

    async fn perpetual(&self, ctx: &Context<'_>, symbol: String) -> Result<Perpetual> {
        let s = market_symbol(ctx, &symbol)?;
        let p = state(ctx).views.perpetual(&s).map_err(store)?;
        p.map(Perpetual).ok_or_else(|| {
            coded(
                Code::UnknownMarket,
                format!("\"{symbol}\" is not a perpetual market"),
            )
        })
    }

    /// The last 24 hours of a market.
    async fn ticker(&self, ctx: &Context<'_>, market: String) -> Result<Ticker> {
        let s = market_symbol(ctx, &market)?;
        let t = state(ctx).views.ticker(&s).map_err(store)?;
        t.map(Ticker::from)
            .ok_or_else(|| coded(Code::UnknownMarket, format!("unknown market \"{market}\"")))
    }

    /// The aggregated book: `levels` best price levels per side (at most 1,000).
    async fn depth(
        &self,
        ctx: &Context<'_>,
        market: String,
        #[graphql(default = 20)] levels: u32,
    ) -> Result<Depth> {
        let s = market_symbol(ctx, &market)?;
        let d = state(ctx)
            .views
            .depth(&s, levels.min(1_000) as usize)
            .map_err(store)?;
        Ok(Depth::new(&s, d))
    }

    /// Candles starting in `[fromMs, toMs]`, oldest first.
    async fn candles(
        &self,
        ctx: &Context<'_>,
        market: String,
        interval: CandleInterval,
        #[graphql(default)] from_ms: u64,
        to_ms: Option<u64>,
        #[graphql(default = 500)] limit: u32,
    ) -> Result<Vec<Candle>> {
        let s = market_symbol(ctx, &market)?;
        let interval = Interval::from(interval);
        let rows = state(ctx)
            .views
            .candles(
                &s,
                interval,
                from_ms,
                to_ms.unwrap_or(u64::MAX),
                (limit as usize).min(PAGE_ROWS_MAX),
            )
            .map_err(store)?;
        Ok(rows
            .into_iter()
            .map(|c| Candle::new(&s, interval, c))
            .collect())
    }

    /// The public tape of a market.
    #[allow(clippy::too_many_arguments)]
    async fn trades(
        &self,
        ctx: &Context<'_>,
        market: String,
        from_ms: Option<u64>,
        to_ms: Option<u64>,
        from_id: Option<u64>,
        to_id: Option<u64>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(default = true)] newest_first: bool,
    ) -> Result<Connection<String, PublicTrade>> {
        let s = market_symbol(ctx, &market)?;
        let p = id_range(page(first, after, newest_first)?, from_id, to_id);
        let filter = TradeFilter {
            market: None,
            from_ms,
            to_ms,
        };
        let rows = state(ctx)
            .views
            .market_trades(&s, &filter, &p)
            .map_err(store)?;
        Ok(connection(rows, p.cursor.is_some(), PublicTrade::from))
    }
}
