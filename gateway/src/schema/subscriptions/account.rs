//! The caller's own account as it changes: ledger entries, orders and balances.

use super::*;

#[derive(Default)]
pub struct AccountSubscription;

#[Subscription]
impl AccountSubscription {
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

    /// The account's positions on perpetuals as they change (a fill, a
    /// liquidation, a funding payment), each valued at its market's mark when
    /// it changed. With `fromSeq`, every position as it stands comes first.
    async fn my_positions(
        &self,
        ctx: &Context<'_>,
        account: Option<u64>,
        from_seq: Option<u64>,
    ) -> Result<impl Stream<Item = Result<Position>>> {
        let account = readable(ctx, account)?;
        let st = state(ctx);
        let views = st.views.clone();
        let mark = move |p: &tape_projections::PositionView| {
            views
                .perpetual(&p.market)
                .ok()
                .flatten()
                .and_then(|v| v.mark)
        };
        let live_mark = mark.clone();
        let live = each_batch(st, move |c| {
            c.positions
                .iter()
                .filter(|p| p.account == account)
                .map(|p| Position::at(p, live_mark(p)))
                .collect()
        });
        let missed = match from_seq {
            None => Vec::new(),
            Some(_) => st
                .views
                .positions(account)
                .map_err(store)?
                .iter()
                .map(|p| Position::at(p, mark(p)))
                .collect(),
        };
        Ok(futures::stream::iter(missed.into_iter().map(Ok)).chain(live))
    }
}
