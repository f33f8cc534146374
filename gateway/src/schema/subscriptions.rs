//! Subscriptions: market data and the caller's own orders and wallet, pushed as the projector applies each batch.

use super::*;

/// Every batch the projector applies, from now on.
fn changes(st: &AppState) -> impl Stream<Item = Arc<Changes>> + use<> {
    let rx = st.changes.subscribe();
    futures::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(c) => return Some((c, rx)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(skipped = n, "a subscriber fell behind; batches skipped");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

/// The items each batch yields, as one stream.
fn each_batch<T, F>(st: &AppState, pick: F) -> impl Stream<Item = T> + use<T, F>
where
    T: Send + 'static,
    F: Fn(&Changes) -> Vec<T> + Send + 'static,
{
    changes(st).flat_map(move |c| futures::stream::iter(pick(&c)))
}

pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    /// Every trade of a market, as it is projected.
    async fn trades(
        &self,
        ctx: &Context<'_>,
        market: String,
    ) -> Result<impl Stream<Item = PublicTrade>> {
        let s = market_symbol(ctx, &market)?;
        Ok(each_batch(state(ctx), move |c| {
            c.trades
                .iter()
                .filter(|t| t.market == s)
                .map(|t| PublicTrade::from(*t))
                .collect()
        }))
    }

    /// The book after each change.
    async fn depth(
        &self,
        ctx: &Context<'_>,
        market: String,
        #[graphql(default = 20)] levels: u32,
    ) -> Result<impl Stream<Item = Depth>> {
        let s = market_symbol(ctx, &market)?;
        let views = state(ctx).views.clone();
        Ok(changes(state(ctx)).filter_map(move |c| {
            let d = c
                .depth
                .contains(&s)
                .then(|| views.depth(&s, levels.min(1_000) as usize).ok())
                .flatten()
                .map(|d| Depth::new(&s, d));
            async move { d }
        }))
    }

    /// The 24-hour ticker after each trade.
    async fn ticker(
        &self,
        ctx: &Context<'_>,
        market: String,
    ) -> Result<impl Stream<Item = Ticker>> {
        let s = market_symbol(ctx, &market)?;
        let views = state(ctx).views.clone();
        Ok(changes(state(ctx)).filter_map(move |c| {
            let t = c
                .trades
                .iter()
                .any(|t| t.market == s)
                .then(|| views.ticker(&s).ok().flatten())
                .flatten()
                .map(Ticker::from);
            async move { t }
        }))
    }

    /// The open candle of an interval, after each trade.
    async fn candles(
        &self,
        ctx: &Context<'_>,
        market: String,
        interval: CandleInterval,
    ) -> Result<impl Stream<Item = Candle>> {
        let s = market_symbol(ctx, &market)?;
        let interval = Interval::from(interval);
        Ok(each_batch(state(ctx), move |c| {
            c.candles
                .iter()
                .filter(|(m, i, _)| *m == s && *i == interval)
                .map(|(m, i, candle)| Candle::new(m, *i, *candle))
                .collect()
        }))
    }

    /// The account's orders as they change.
    async fn my_orders(
        &self,
        ctx: &Context<'_>,
        account: Option<u64>,
    ) -> Result<impl Stream<Item = Order>> {
        let account = readable(ctx, account)?;
        Ok(each_batch(state(ctx), move |c| {
            c.orders
                .iter()
                .filter(|o| o.account == account)
                .map(|o| Order(o.clone()))
                .collect()
        }))
    }

    /// The account's balances as they change.
    async fn my_wallet(
        &self,
        ctx: &Context<'_>,
        account: Option<u64>,
    ) -> Result<impl Stream<Item = WalletUpdate>> {
        let account = readable(ctx, account)?;
        Ok(each_batch(state(ctx), move |c| {
            c.wallets
                .iter()
                .filter(|w| w.account == account)
                .map(|w| WalletUpdate::from(*w))
                .collect()
        }))
    }
}
