//! Subscriptions: market data and the caller's own orders and wallet, pushed as the projector applies each batch.

use super::*;

/// Every batch the projector applies, from now on. A subscriber that falls so far
/// behind that batches were dropped for it gets one `RESYNC` error and its stream
/// ends: it is never served a stream with a hole in it.
fn changes(st: &AppState) -> impl Stream<Item = Result<Arc<Changes>>> + use<> {
    let rx = st.changes.subscribe();
    futures::stream::unfold(Some(rx), |rx| async move {
        let mut rx = rx?;
        match rx.recv().await {
            Ok(c) => Some((Ok(c), Some(rx))),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                tracing::info!(skipped = n, "a subscriber fell behind; ended with RESYNC");
                let message = format!(
                    "this subscription fell {n} batches behind and was ended; reload and subscribe again"
                );
                Some((Err(coded(Code::Resync, message)), None))
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
        }
    })
}

/// The items each batch yields, as one stream (ended by `RESYNC` as `changes` is).
fn each_batch<T, F>(st: &AppState, pick: F) -> impl Stream<Item = Result<T>> + use<T, F>
where
    T: Send + 'static,
    F: Fn(&Changes) -> Vec<T> + Send + 'static,
{
    changes(st).flat_map(move |c| {
        let items: Vec<Result<T>> = match c {
            Ok(c) => pick(&c).into_iter().map(Ok).collect(),
            Err(e) => vec![Err(e)],
        };
        futures::stream::iter(items)
    })
}

pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    /// Every trade of a market, as it is projected.
    async fn trades(
        &self,
        ctx: &Context<'_>,
        market: String,
    ) -> Result<impl Stream<Item = Result<PublicTrade>>> {
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
    ) -> Result<impl Stream<Item = Result<Depth>>> {
        let s = market_symbol(ctx, &market)?;
        let views = state(ctx).views.clone();
        Ok(each_batch(state(ctx), move |c| {
            c.depth
                .contains(&s)
                .then(|| views.depth(&s, levels.min(1_000) as usize).ok())
                .flatten()
                .map(|d| Depth::new(&s, d))
                .into_iter()
                .collect()
        }))
    }

    /// The book to `levels` levels a side (at most 50) as a snapshot, then as deltas
    /// chained by `prevSeq` and `seq`, each with the checksum of the book after it.
    async fn depth_updates(
        &self,
        ctx: &Context<'_>,
        market: String,
        #[graphql(default = 10)] levels: u32,
    ) -> Result<impl Stream<Item = Result<DepthUpdate>>> {
        let s = market_symbol(ctx, &market)?;
        let top = tape_projections::DEPTH_TOP_LEVELS;
        if levels == 0 || levels as usize > top {
            return Err(coded(
                Code::BadInput,
                format!("levels must be 1 to {top}, not {levels}"),
            ));
        }
        let levels = levels as usize;
        let st = state(ctx);
        // Subscribe before the snapshot is read, so no change falls between them.
        let changes = changes(st);
        let seq = st.progress.borrow().next_seq.saturating_sub(1);
        let book = st.views.depth(&s, levels).map_err(store)?;
        let snapshot = DepthUpdate::new(&s, DepthUpdateKind::Snapshot, None, seq, &book, &book);
        let views = st.views.clone();
        let deltas = changes
            .scan((book, seq), move |(book, last), c| {
                let item = match c {
                    Err(e) => Some(Err(e)),
                    Ok(c) if !c.depth.contains(&s) => None,
                    Ok(c) => match views.depth(&s, levels) {
                        Err(e) => Some(Err(store(e))),
                        Ok(new) => {
                            let delta = book.delta_to(&new);
                            let seq = c.next_seq.saturating_sub(1).max(*last);
                            let update = (!delta.is_empty()).then(|| {
                                DepthUpdate::new(
                                    &s,
                                    DepthUpdateKind::Delta,
                                    Some(*last),
                                    seq,
                                    &delta,
                                    &new,
                                )
                            });
                            if update.is_some() {
                                *book = new;
                                *last = seq;
                            }
                            update.map(Ok)
                        }
                    },
                };
                futures::future::ready(Some(item))
            })
            .filter_map(futures::future::ready);
        Ok(futures::stream::once(futures::future::ready(Ok(snapshot))).chain(deltas))
    }

    /// The 24-hour ticker after each trade.
    async fn ticker(
        &self,
        ctx: &Context<'_>,
        market: String,
    ) -> Result<impl Stream<Item = Result<Ticker>>> {
        let s = market_symbol(ctx, &market)?;
        let views = state(ctx).views.clone();
        Ok(each_batch(state(ctx), move |c| {
            c.trades
                .iter()
                .any(|t| t.market == s)
                .then(|| views.ticker(&s).ok().flatten())
                .flatten()
                .map(Ticker::from)
                .into_iter()
                .collect()
        }))
    }

    /// The open candle of an interval, after each trade.
    async fn candles(
        &self,
        ctx: &Context<'_>,
        market: String,
        interval: CandleInterval,
    ) -> Result<impl Stream<Item = Result<Candle>>> {
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
    ) -> Result<impl Stream<Item = Result<Order>>> {
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
    ) -> Result<impl Stream<Item = Result<WalletUpdate>>> {
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
