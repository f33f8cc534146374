//! Orders: each order's view, an account's open orders and its order list, the book's depth.

use super::*;

impl Projector {
    pub(super) fn orders(&mut self, at: At, event: &Event) -> Result<(), ProjectionError> {
        match event {
            Event::OrderAccepted { .. } => self.order_accepted(at, event),
            Event::OrderTriggered { .. } => self.order_triggered(at, event),
            Event::OrderRested { .. } => self.order_rested(at, event),
            Event::OrderAmended { .. } => self.order_amended(at, event),
            Event::OrderRefilled { .. } => self.order_refilled(at, event),
            Event::OrderDone { .. } => self.order_done(at, event),
            _ => Ok(()), // not this view's
        }
    }

    fn order_accepted(&mut self, at: At, event: &Event) -> Result<(), ProjectionError> {
        let At { seq, time_ms, .. } = at;
        let Event::OrderAccepted {
            order,
            account,
            market,
            side,
            order_type,
            client_order_id,
            parent,
            ..
        } = event
        else {
            return Ok(());
        };
        let status = match order_type {
            OrderType::StopMarket { .. } | OrderType::StopLimit { .. } => OrderStatus::Pending,
            _ => OrderStatus::New,
        };
        let zero = Dec::default();
        self.open.insert(
            *order,
            OrderView {
                order: *order,
                account: *account,
                market: *market,
                side: *side,
                order_type: *order_type,
                client_order_id: *client_order_id,
                parent: *parent,
                status,
                done_reason: None,
                price: None,
                filled: zero,
                filled_quote: zero,
                fees: zero,
                visible: zero,
                hidden: zero,
                created_seq: seq,
                created_ms: time_ms,
                updated_ms: time_ms,
                updated_seq: seq,
            },
        );
        self.batch.orders.insert(*order);
        self.batch
            .account_orders
            .entry(*account)
            .or_default()
            .push(order.0);
        self.open_ids.entry(*account).or_default().insert(order.0);
        self.batch.open_ids.insert(*account);
        if let Some(parent) = parent {
            let key = Key::new(keys::SLICED).u64(parent.0).build();
            if let Some(mut report) = self.get::<SlicedReport>(&key)? {
                if report.account == AccountId(0) {
                    report.account = *account;
                    self.put(key, enc(&report));
                }
            }
        }
        Ok(())
    }

    fn order_triggered(&mut self, at: At, event: &Event) -> Result<(), ProjectionError> {
        let Event::OrderTriggered { order, .. } = event else {
            return Ok(());
        };
        let o = self.order_mut(*order)?;
        o.status = OrderStatus::New;
        touch(o, at);
        Ok(())
    }

    fn order_rested(&mut self, at: At, event: &Event) -> Result<(), ProjectionError> {
        let Event::OrderRested {
            order,
            market,
            side,
            price,
            visible,
            hidden,
        } = event
        else {
            return Ok(());
        };
        let o = self.order_mut(*order)?;
        o.price = Some(*price);
        o.visible = *visible;
        o.hidden = *hidden;
        touch(o, at);
        change(self.book(*market).side(*side), price.0, visible.0);
        Ok(())
    }

    fn order_amended(&mut self, at: At, event: &Event) -> Result<(), ProjectionError> {
        let Event::OrderAmended {
            order,
            market,
            side,
            price,
            visible,
            hidden,
            requeued,
            ..
        } = event
        else {
            return Ok(());
        };
        let o = self.order_mut(*order)?;
        let old = (o.price, o.visible);
        o.price = Some(*price);
        // A requeued order left the book: it comes back with the
        // `OrderRested` that follows (after any trades a crossing amend
        // makes), or ends with `OrderDone`.
        o.visible = if *requeued { Dec::default() } else { *visible };
        o.hidden = *hidden;
        touch(o, at);
        let ladder = self.book(*market).side(*side);
        if let (Some(p), v) = old {
            change(ladder, p.0, -v.0);
        }
        if !requeued {
            change(ladder, price.0, visible.0);
        }
        Ok(())
    }

    fn order_refilled(&mut self, at: At, event: &Event) -> Result<(), ProjectionError> {
        let Event::OrderRefilled {
            order,
            market,
            visible,
            hidden,
        } = event
        else {
            return Ok(());
        };
        let o = self.order_mut(*order)?;
        let added = visible.0 - o.visible.0;
        o.visible = *visible;
        o.hidden = *hidden;
        touch(o, at);
        let (side, price) = (o.side, o.price);
        if let Some(p) = price {
            change(self.book(*market).side(side), p.0, added);
        }
        Ok(())
    }

    fn order_done(&mut self, at: At, event: &Event) -> Result<(), ProjectionError> {
        let At { seq, .. } = at;
        let Event::OrderDone {
            order,
            market,
            reason,
            ..
        } = event
        else {
            return Ok(());
        };
        let o = self.order_mut(*order)?;
        o.status = match reason {
            DoneReason::Filled => OrderStatus::Filled,
            DoneReason::Expired => OrderStatus::Expired,
            _ => OrderStatus::Cancelled,
        };
        o.done_reason = Some(*reason);
        let account = o.account;
        self.put(
            Key::new(keys::CLOSED)
                .u64(account.0)
                .u64(seq)
                .u64(order.0)
                .build(),
            Vec::new(),
        );
        let o = self.order_mut(*order)?;
        touch(o, at);
        let (side, price, visible) = (o.side, o.price, o.visible);
        o.visible = Dec::default();
        o.hidden = Dec::default();
        if let Some(p) = price.filter(|_| !visible.0.is_zero()) {
            change(self.book(*market).side(side), p.0, -visible.0);
        }
        Ok(())
    }

    /// Flushes the touched orders, the accounts' open-order rows and order lists;
    /// returns the orders that ended, to forget once the batch is written.
    pub(super) fn flush_orders(
        &mut self,
        pending: &mut Pending,
        batch: &mut sled::Batch,
        changes: &mut Changes,
    ) -> Vec<OrderId> {
        let mut done = Vec::new();
        for id in &pending.orders {
            let Some(o) = self.open.get(id) else { continue };
            batch.insert(Key::new(keys::ORDER).u64(id.0).build(), enc(o));
            if !o.status.is_open() {
                if let Some(ids) = self.open_ids.get_mut(&o.account) {
                    ids.remove(&id.0);
                }
                pending.open_ids.insert(o.account);
                done.push(*id);
            }
            changes.orders.push(o.clone());
        }
        for account in &pending.open_ids {
            let key = Key::new(keys::OPEN_ORDER).u64(account.0).build();
            match self.open_ids.get(account).filter(|ids| !ids.is_empty()) {
                Some(ids) => batch.insert(key, enc(ids)),
                None => batch.remove(key),
            }
        }
        for (account, ids) in &pending.account_orders {
            put_groups(batch, ids, |id| {
                Key::new(keys::ACCOUNT_ORDER)
                    .u64(account.0)
                    .u64(*id)
                    .build()
            });
        }
        done
    }
}

/// The queries this view answers.
impl Views {
    pub fn order(&self, id: OrderId) -> Result<Option<OrderView>, ProjectionError> {
        self.get(&Key::new(keys::ORDER).u64(id.0).build())
    }

    pub fn orders(
        &self,
        account: AccountId,
        filter: &OrderFilter,
        page: &Page,
    ) -> Result<Rows<OrderView>, ProjectionError> {
        let keep = |o: &OrderView| {
            filter.market.is_none_or(|m| m == o.market)
                && filter.side.is_none_or(|s| s == o.side)
                && (filter.statuses.is_empty() || filter.statuses.contains(&o.status))
                && in_time(o.created_ms, filter.from_ms, filter.to_ms)
        };
        if filter.open_only {
            // one row holds the account's open ids: page through it in memory
            let open: std::collections::BTreeSet<u64> = self
                .get(&Key::new(keys::OPEN_ORDER).u64(account.0).build())?
                .unwrap_or_default();
            let mut out = Collect::new(page);
            let Some((lo, hi)) = bounds(page) else {
                return Ok(out.done(false));
            };
            let ids: Box<dyn Iterator<Item = &u64>> = if page.newest_first {
                Box::new(open.range(lo..=hi).rev())
            } else {
                Box::new(open.range(lo..=hi))
            };
            for id in ids {
                if let Some(o) = self.order(OrderId(*id))?.filter(keep) {
                    if out.push(*id, o).is_err() {
                        return Ok(out.done(true));
                    }
                }
            }
            return Ok(out.done(false));
        }
        let prefix = Key::new(keys::ACCOUNT_ORDER).u64(account.0).build();
        self.page_groups(
            prefix,
            page,
            |id: &u64| *id,
            |id| Ok(self.order(OrderId(id))?.filter(keep)),
        )
    }

    /// The account's orders changed at or after `from_seq`, by the seq of their last
    /// change: the open ones that changed, and those that ended since (at most
    /// `max`; `None` when there are more).
    pub fn orders_changed_since(
        &self,
        account: AccountId,
        from_seq: u64,
        max: usize,
    ) -> Result<Option<Vec<OrderView>>, ProjectionError> {
        let open: std::collections::BTreeSet<u64> = self
            .get(&Key::new(keys::OPEN_ORDER).u64(account.0).build())?
            .unwrap_or_default();
        let mut ids: Vec<u64> = open.into_iter().collect();
        let from = Key::new(keys::CLOSED).u64(account.0).u64(from_seq).build();
        let end = Key::new(keys::CLOSED).u64(account.0).u64(u64::MAX).build();
        // Every order ended since `from_seq` changed since then: more than `max` of
        // them is too many, without reading further.
        for (closed, kv) in self.tree.range(from..=end).enumerate() {
            if closed == max {
                return Ok(None);
            }
            let (k, _) = kv?;
            let id = k[k.len() - 8..].try_into().map(u64::from_be_bytes);
            ids.push(id.map_err(|_| ProjectionError::Store("a closed-order key is short".into()))?);
        }
        let mut out = Vec::new();
        for id in ids {
            if let Some(o) = self
                .order(OrderId(id))?
                .filter(|o| o.updated_seq >= from_seq)
            {
                out.push(o);
            }
        }
        if out.len() > max {
            return Ok(None);
        }
        out.sort_by_key(|o| (o.updated_seq, o.order));
        Ok(Some(out))
    }
}

/// Marks an order changed by the event at `at`.
fn touch(o: &mut OrderView, at: At) {
    o.updated_ms = at.time_ms;
    o.updated_seq = at.seq;
}
