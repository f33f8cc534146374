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

/// Items a resumed subscription replays at most: a client further behind reloads.
const RESUME_MAX: usize = 10_000;

fn too_far_behind() -> Error {
    coded(
        Code::Resync,
        format!("more than {RESUME_MAX} items were missed since fromSeq: reload with queries and subscribe again"),
    )
}

/// A resumed stream: `missed` (from the read models, oldest first), then `live`
/// without what `missed` already held (items at or below its last seq).
fn resumed<T, S>(missed: Vec<T>, live: S, seq: fn(&T) -> u64) -> impl Stream<Item = Result<T>>
where
    T: Send + 'static,
    S: Stream<Item = Result<T>> + Send + 'static,
{
    let after = missed.last().map_or(0, seq);
    futures::stream::iter(missed.into_iter().map(Ok)).chain(live.filter(move |item| {
        futures::future::ready(match item {
            Ok(item) => seq(item) > after,
            Err(_) => true,
        })
    }))
}

/// Up to `RESUME_MAX` rows oldest first, from pages the read models give newest
/// first, back to the first row whose seq is below `from_seq`.
fn newest_back_to<T>(
    from_seq: u64,
    seq: impl Fn(&T) -> u64,
    mut page: impl FnMut(Option<u64>) -> Result<views::Rows<T>>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let rows = page(cursor)?;
        let more = rows.has_more;
        for (at, row) in rows.rows {
            if seq(&row) < from_seq {
                out.reverse();
                return Ok(out);
            }
            if out.len() == RESUME_MAX {
                return Err(too_far_behind());
            }
            cursor = Some(at);
            out.push(row);
        }
        if !more {
            out.reverse();
            return Ok(out);
        }
    }
}

pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
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

    /// The account's ledger entries as they are made. With `fromSeq`, the entries
    /// since then come first.
    async fn ledger(
        &self,
        ctx: &Context<'_>,
        account: Option<u64>,
        from_seq: Option<u64>,
    ) -> Result<impl Stream<Item = Result<LedgerEntry>>> {
        let account = readable(ctx, account)?;
        let st = state(ctx);
        let live = each_batch(st, move |c| {
            c.entries
                .iter()
                .filter(|e| e.account == account)
                .map(|e| LedgerEntry::from(*e))
                .collect()
        });
        let mut missed = Vec::new();
        if let Some(from) = from_seq {
            let mut cursor = None;
            loop {
                let page = Page {
                    newest_first: false,
                    cursor,
                    first: PAGE_ROWS_MAX,
                    from_id: from,
                    ..Page::default()
                };
                let rows = st
                    .views
                    .ledger(account, &EntryFilter::default(), &page)
                    .map_err(store)?;
                cursor = rows.rows.last().map(|r| r.0);
                missed.extend(rows.rows.into_iter().map(|(_, e)| LedgerEntry::from(e)));
                if missed.len() > RESUME_MAX {
                    return Err(too_far_behind());
                }
                if !rows.has_more {
                    break;
                }
            }
        }
        Ok(resumed(missed, live, |e: &LedgerEntry| e.seq))
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

    /// The account's orders as they change. With `fromSeq`, every order changed
    /// since then comes first (as it stands now), by the seq of its last change.
    async fn my_orders(
        &self,
        ctx: &Context<'_>,
        account: Option<u64>,
        from_seq: Option<u64>,
    ) -> Result<impl Stream<Item = Result<Order>>> {
        let account = readable(ctx, account)?;
        let st = state(ctx);
        let live = each_batch(st, move |c| {
            c.orders
                .iter()
                .filter(|o| o.account == account)
                .map(|o| Order(o.clone()))
                .collect()
        });
        let missed = match from_seq {
            None => Vec::new(),
            Some(from) => st
                .views
                .orders_changed_since(account, from, RESUME_MAX)
                .map_err(store)?
                .ok_or_else(too_far_behind)?
                .into_iter()
                .map(Order)
                .collect(),
        };
        Ok(resumed(missed, live, |o: &Order| o.0.updated_seq))
    }

    /// The account's balances as they change. With `fromSeq`, every balance as it
    /// stands comes first (a balance is state: the latest value is all that was
    /// missed).
    async fn my_wallet(
        &self,
        ctx: &Context<'_>,
        account: Option<u64>,
        from_seq: Option<u64>,
    ) -> Result<impl Stream<Item = Result<WalletUpdate>>> {
        let account = readable(ctx, account)?;
        let st = state(ctx);
        let live = each_batch(st, move |c| {
            let seq = c.next_seq.saturating_sub(1);
            c.wallets
                .iter()
                .filter(|w| w.account == account)
                .map(|w| WalletUpdate::new(*w, seq))
                .collect()
        });
        // A balance is state: what was missed is the balance now.
        let missed = match from_seq {
            None => Vec::new(),
            Some(_) => {
                let seq = st.progress.borrow().next_seq.saturating_sub(1);
                let wallets = st.views.wallets(account).map_err(store)?;
                wallets
                    .into_iter()
                    .map(|w| WalletUpdate::new(w, seq))
                    .collect()
            }
        };
        // Every balance in `missed` has the same seq: the read models' position.
        Ok(resumed(missed, live, |w: &WalletUpdate| w.seq))
    }
}
