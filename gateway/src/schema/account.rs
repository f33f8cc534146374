//! The caller and its account: who it is, its portfolio, ledger, equity history and trades.

use super::*;
use crate::types::dm;

#[derive(Default)]
pub struct AccountQuery;

#[Object]
impl AccountQuery {
    /// Who the token belongs to.
    async fn me(&self, ctx: &Context<'_>) -> Me {
        match caller(ctx) {
            Caller::Anonymous => Me {
                role: None,
                key_id: None,
                account: None,
            },
            Caller::Trader { key, account } => Me {
                role: Some(Role::Trader),
                key_id: Some(key.0),
                account: Some(account.0),
            },
            Caller::Auditor { key } => Me {
                role: Some(Role::Auditor),
                key_id: Some(key.0),
                account: None,
            },
            Caller::Admin { key } => Me {
                role: Some(Role::Admin),
                key_id: key.map(|k| k.0),
                account: None,
            },
        }
    }

    /// The account's leverage on a perpetual: its tier, the tier's cap, what it
    /// chose, and what it trades at (the lower of those and the market's first
    /// bracket's max leverage).
    async fn leverage(
        &self,
        ctx: &Context<'_>,
        market: String,
        account: Option<u64>,
    ) -> Result<Leverage> {
        let account = readable(ctx, account)?;
        let s = market_symbol(ctx, &market)?;
        let view = state(ctx).views.leverage(account, &s).map_err(store)?;
        let view = view.ok_or_else(|| {
            coded(
                Code::UnknownMarket,
                format!("\"{market}\" is not a perpetual market"),
            )
        })?;
        Ok(Leverage {
            market,
            account: account.0,
            tier: view.tier.into(),
            cap: view.cap,
            chosen: view.chosen,
            leverage: view.leverage,
        })
    }

    /// The account's positions on perpetuals (closed ones too, with size zero),
    /// valued at each market's mark.
    async fn positions(&self, ctx: &Context<'_>, account: Option<u64>) -> Result<Vec<Position>> {
        let account = readable(ctx, account)?;
        let views = &state(ctx).views;
        let mut out = Vec::new();
        for p in views.positions(account).map_err(store)? {
            let Some(perp) = views.perpetual(&p.market).map_err(store)? else {
                continue;
            };
            let mut row = Position::at(&p, perp.mark);
            if !p.size.0.is_zero() {
                let collateral = perp.spec.market.quote;
                let (margin, list) = account_margin(views, account, &collateral)?;
                if let Some(i) = list.iter().position(|(q, _)| q.market == p.market) {
                    let m = margin.positions[i];
                    row.maintenance_margin = Some(dm(Dec(m.maintenance.0.normalize())));
                    row.liquidation_price = m.liquidation_price.map(dm);
                }
            }
            out.push(row);
        }
        Ok(out)
    }

    /// The account's cross margin in a collateral asset: its wallet (available
    /// plus the margin held for positions), unrealized profit and loss at the
    /// marks, equity, maintenance margin and margin ratio (maintenance over
    /// equity: liquidation at 1).
    async fn margin(
        &self,
        ctx: &Context<'_>,
        collateral: String,
        account: Option<u64>,
    ) -> Result<MarginSummary> {
        let account = readable(ctx, account)?;
        let views = &state(ctx).views;
        let code = collateral.parse().map_err(|_| {
            coded(
                Code::UnknownAsset,
                format!("\"{collateral}\" is not an asset code"),
            )
        })?;
        let (m, list) = account_margin(views, account, &code)?;
        let n = |x: Dec| dm(Dec(x.0.normalize()));
        let notional: rust_decimal::Decimal = list.iter().map(|(p, _)| p.cost.0.abs()).sum();
        let cap = views.notional_cap(account, &code).map_err(store)?;
        Ok(MarginSummary {
            collateral,
            wallet: n(m.wallet),
            margin_held: n(m.margin_held),
            unrealized_pnl: n(m.unrealized_pnl),
            equity: n(m.equity),
            maintenance: n(m.maintenance),
            margin_ratio: m.margin_ratio.map(n),
            notional: n(Dec(notional)),
            notional_cap: cap.map(n),
        })
    }

    /// The account's liquidation records, oldest first: the last `last` (at most
    /// 500).
    async fn liquidations(
        &self,
        ctx: &Context<'_>,
        account: Option<u64>,
        #[graphql(default = 50)] last: usize,
    ) -> Result<Vec<Liquidation>> {
        let account = readable(ctx, account)?;
        let rows = state(ctx).views.liquidations(account, last.min(500));
        Ok(rows
            .map_err(store)?
            .into_iter()
            .map(Liquidation::from)
            .collect())
    }

    /// Balances per asset, each valued in `valueIn` at the last price.
    async fn portfolio(
        &self,
        ctx: &Context<'_>,
        account: Option<u64>,
        value_in: Option<String>,
    ) -> Result<Portfolio> {
        let account = readable(ctx, account)?;
        let views = &state(ctx).views;
        let quote = value_in
            .as_deref()
            .map(|q| asset_code(ctx, q))
            .transpose()?;
        let markets = views.markets().map_err(store)?;
        let mut total = Some(Dec::default());
        let mut balances = Vec::new();
        for w in views.wallets(account).map_err(store)? {
            let sum = Dec(w.available.0 + w.held.0);
            let value = match &quote {
                Some(q) => value_of(views, &markets, &w.asset, sum, q, None)?,
                None => None,
            };
            total = match (total, value) {
                (Some(t), Some(v)) => Some(Dec(t.0 + v.0)),
                _ => None,
            };
            balances.push(Balance {
                asset: w.asset.to_string(),
                available: Decimal(w.available),
                held: Decimal(w.held),
                total: Decimal(sum),
                value: value.map(Decimal),
            });
        }
        Ok(Portfolio {
            account: account.0,
            value_in: quote.map(|q| q.to_string()),
            balances,
            total_value: quote.and(total).map(Decimal),
        })
    }

    /// The account's transaction history: deposits, withdrawals, fills, fees.
    #[allow(clippy::too_many_arguments)]
    async fn ledger(
        &self,
        ctx: &Context<'_>,
        account: Option<u64>,
        asset: Option<String>,
        kind: Option<EntryKind>,
        from_ms: Option<u64>,
        to_ms: Option<u64>,
        from_seq: Option<u64>,
        to_seq: Option<u64>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(default = true)] newest_first: bool,
    ) -> Result<Connection<String, LedgerEntry>> {
        let account = readable(ctx, account)?;
        let p = id_range(page(first, after, newest_first)?, from_seq, to_seq);
        let filter = EntryFilter {
            asset: asset.as_deref().map(|a| asset_code(ctx, a)).transpose()?,
            kind: kind.map(views::EntryKind::from),
            from_ms,
            to_ms,
        };
        let rows = state(ctx)
            .views
            .ledger(account, &filter, &p)
            .map_err(store)?;
        Ok(connection(rows, p.cursor.is_some(), LedgerEntry::from))
    }

    /// Hourly totals, valued in `valueIn` at each hour's close.
    async fn equity_history(
        &self,
        ctx: &Context<'_>,
        account: Option<u64>,
        value_in: String,
        #[graphql(default)] from_ms: u64,
        to_ms: Option<u64>,
    ) -> Result<Vec<EquityPoint>> {
        let account = readable(ctx, account)?;
        let quote = asset_code(ctx, &value_in)?;
        let views = &state(ctx).views;
        let markets = views.markets().map_err(store)?;
        let points = views
            .equity_history(account, from_ms, to_ms.unwrap_or(u64::MAX))
            .map_err(store)?;
        let mut out = Vec::with_capacity(points.len());
        for p in points {
            let mut value = Some(Dec::default());
            let end_ms = p.time_ms + 3_599_999;
            for (asset, amount) in &p.balances {
                let v = value_of(views, &markets, asset, *amount, &quote, Some(end_ms))?;
                value = match (value, v) {
                    (Some(t), Some(v)) => Some(Dec(t.0 + v.0)),
                    _ => None,
                };
            }
            out.push(EquityPoint {
                time_ms: p.time_ms,
                balances: p
                    .balances
                    .iter()
                    .map(|(a, x)| AssetAmount {
                        asset: a.to_string(),
                        amount: Decimal(*x),
                    })
                    .collect(),
                value: value.map(Decimal),
            });
        }
        Ok(out)
    }

    /// The account's own trades (maker or taker).
    #[allow(clippy::too_many_arguments)]
    async fn my_trades(
        &self,
        ctx: &Context<'_>,
        account: Option<u64>,
        market: Option<String>,
        from_ms: Option<u64>,
        to_ms: Option<u64>,
        from_id: Option<u64>,
        to_id: Option<u64>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(default = true)] newest_first: bool,
    ) -> Result<Connection<String, Trade>> {
        let account = readable(ctx, account)?;
        let p = id_range(page(first, after, newest_first)?, from_id, to_id);
        let filter = TradeFilter {
            market: market_filter(ctx, market.as_deref())?,
            from_ms,
            to_ms,
        };
        let rows = state(ctx)
            .views
            .account_trades(account, &filter, &p)
            .map_err(store)?;
        Ok(connection(rows, p.cursor.is_some(), Trade))
    }
}

/// Values `amount` of `asset` in `quote` at `time_ms` (1-hour close) or at the last
/// trade (`None`), rounded down to the quote's scale.
/// An account's margin in `collateral` from the views, with the open positions
/// settled in it (in the order of `MarginView::positions`).
fn account_margin(
    views: &Views,
    account: AccountId,
    collateral: &AssetCode,
) -> Result<(
    tape_projections::margin::MarginView,
    Vec<(
        tape_projections::PositionView,
        tape_projections::PerpetualView,
    )>,
)> {
    let mut list = Vec::new();
    for p in views.positions(account).map_err(store)? {
        if p.size.0.is_zero() {
            continue;
        }
        if let Some(perp) = views.perpetual(&p.market).map_err(store)? {
            if perp.spec.market.quote == *collateral {
                list.push((p, perp));
            }
        }
    }
    let available = views
        .wallets(account)
        .map_err(store)?
        .into_iter()
        .find(|w| w.asset == *collateral)
        .map_or(Dec::ZERO, |w| w.available);
    let scale = views
        .asset(collateral)
        .map_err(store)?
        .map_or(6, |a| u32::from(a.scale));
    let margin = tape_projections::margin::margin_of(available, &list, scale);
    Ok((margin, list))
}

fn value_of(
    views: &Views,
    markets: &[MarketView],
    asset: &AssetCode,
    amount: Dec,
    quote: &AssetCode,
    time_ms: Option<u64>,
) -> Result<Option<Dec>> {
    let scale = views
        .asset(quote)
        .map_err(store)?
        .map_or(18, |a| u32::from(a.scale));
    let round = |v: Option<Dec>| {
        v.map(|v| {
            Dec(v
                .0
                .round_dp_with_strategy(scale, rust_decimal::RoundingStrategy::ToZero))
        })
    };
    let Some(time_ms) = time_ms else {
        return Ok(round(views.value_in(asset, amount, quote, markets)));
    };
    let mut priced = Vec::new();
    for m in markets {
        let pair = (m.spec.base == *asset && m.spec.quote == *quote)
            || (m.spec.base == *quote && m.spec.quote == *asset);
        if pair {
            let mut m = m.clone();
            m.last_price = views.close_at(&m.spec.symbol, time_ms).map_err(store)?;
            priced.push(m);
        }
    }
    Ok(round(views.value_in(asset, amount, quote, &priced)))
}

#[derive(async_graphql::SimpleObject)]
pub struct Me {
    pub role: Option<Role>,
    pub key_id: Option<u64>,
    pub account: Option<u64>,
}
