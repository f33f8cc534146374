//! Orders: each order's view, an account's open orders and its order list, the book's depth.

use super::*;

impl Projector {
    pub(super) fn orders(&mut self, at: At, event: &Event) -> Result<(), ProjectionError> {
        let At { seq, time_ms, .. } = at;
        match event {
            Event::OrderAccepted {
                order,
                account,
                market,
                side,
                order_type,
                client_order_id,
                parent,
                ..
            } => {
                let status = match order_type {
                    OrderType::StopMarket { .. } | OrderType::StopLimit { .. } => {
                        OrderStatus::Pending
                    }
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
            }
            Event::OrderTriggered { order, .. } => {
                let o = self.order_mut(*order)?;
                o.status = OrderStatus::New;
                o.updated_ms = time_ms;
                o.updated_seq = seq;
            }
            Event::OrderRested {
                order,
                market,
                side,
                price,
                visible,
                hidden,
            } => {
                let o = self.order_mut(*order)?;
                o.price = Some(*price);
                o.visible = *visible;
                o.hidden = *hidden;
                o.updated_ms = time_ms;
                o.updated_seq = seq;
                change(self.book(*market).side(*side), price.0, visible.0);
            }
            Event::OrderAmended {
                order,
                market,
                side,
                price,
                visible,
                hidden,
                requeued,
                ..
            } => {
                let o = self.order_mut(*order)?;
                let old = (o.price, o.visible);
                o.price = Some(*price);
                // A requeued order left the book: it comes back with the
                // `OrderRested` that follows (after any trades a crossing amend
                // makes), or ends with `OrderDone`.
                o.visible = if *requeued { Dec::default() } else { *visible };
                o.hidden = *hidden;
                o.updated_ms = time_ms;
                o.updated_seq = seq;
                let ladder = self.book(*market).side(*side);
                if let (Some(p), v) = old {
                    change(ladder, p.0, -v.0);
                }
                if !requeued {
                    change(ladder, price.0, visible.0);
                }
            }
            Event::OrderRefilled {
                order,
                market,
                visible,
                hidden,
            } => {
                let o = self.order_mut(*order)?;
                let added = visible.0 - o.visible.0;
                o.visible = *visible;
                o.hidden = *hidden;
                o.updated_ms = time_ms;
                o.updated_seq = seq;
                let (side, price) = (o.side, o.price);
                if let Some(p) = price {
                    change(self.book(*market).side(side), p.0, added);
                }
            }
            Event::OrderDone {
                order,
                market,
                reason,
                ..
            } => {
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
                o.updated_ms = time_ms;
                o.updated_seq = seq;
                let (side, price, visible) = (o.side, o.price, o.visible);
                o.visible = Dec::default();
                o.hidden = Dec::default();
                if let Some(p) = price.filter(|_| !visible.0.is_zero()) {
                    change(self.book(*market).side(side), p.0, -visible.0);
                }
            }
            _ => {} // not this view's
        }
        Ok(())
    }
}
