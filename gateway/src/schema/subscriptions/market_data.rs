//! Market data as it changes: trades, depth (whole, and as checksummed deltas), the ticker and the open candle.

use super::*;

#[derive(Default)]
pub struct MarketDataSubscription;

#[Subscription]
impl MarketDataSubscription {
    /// Every trade of a market, as it is projected. With `fromSeq` (the seq after
    /// the last trade a client saw), the trades since then come first.
    async fn trades(
        &self,
        ctx: &Context<'_>,
        market: String,
        from_seq: Option<u64>,
    ) -> Result<impl Stream<Item = Result<PublicTrade>>> {
        let s = market_symbol(ctx, &market)?;
        let st = state(ctx);
        let live = each_batch(st, move |c| {
            c.trades
                .iter()
                .filter(|t| t.market == s)
                .map(|t| PublicTrade::from(*t))
                .collect()
        });
        let missed = match from_seq {
            None => Vec::new(),
            Some(from) => newest_back_to(
                from,
                |t: &TradeView| t.seq,
                |cursor| {
                    let page = Page {
                        cursor,
                        first: PAGE_ROWS_MAX,
                        ..Page::default()
                    };
                    st.views
                        .market_trades(&s, &TradeFilter::default(), &page)
                        .map_err(store)
                },
            )?,
        };
        let missed = missed.into_iter().map(PublicTrade::from).collect();
        Ok(resumed(missed, live, |t: &PublicTrade| t.seq))
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
                .map(|d| Depth {
                    seq: Some(c.next_seq.saturating_sub(1)),
                    ..Depth::new(&s, d)
                })
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
                .map(|t| Ticker {
                    seq: Some(c.next_seq.saturating_sub(1)),
                    ..Ticker::from(t)
                })
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
                .map(|(m, i, candle)| Candle {
                    seq: Some(c.next_seq.saturating_sub(1)),
                    ..Candle::new(m, *i, *candle)
                })
                .collect()
        }))
    }
}
