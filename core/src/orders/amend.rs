//! Cancelling (by id, by client order id, all of an account's) and amending: a lower quantity keeps priority, a new price or a higher quantity re-queues.

use tape_schemas::*;

use super::*;

impl Core {
    pub(crate) fn cancel_id(&mut self, id: u64, out: &mut Vec<Event>) {
        if let Some(&(m, slot)) = self.orders.get(&id) {
            self.remove_order(m, slot, DoneReason::Cancelled, out);
        }
    }

    pub(crate) fn cancel_order(
        &mut self,
        account: AccountId,
        r: &OrderRef,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let id = self.resolve(account, r)?;
        match self.parents.get_mut(&id) {
            Some(Parent::Sliced { children, .. }) => {
                let children: Vec<u64> = children.iter().copied().collect();
                for child in children {
                    self.cancel_id(child, out);
                }
            }
            Some(Parent::Bracket(b)) => {
                b.cancelled = true;
                let exit = b.exit;
                self.cancel_id(id, out);
                if let Some(exit) = exit {
                    self.cancel_id(exit, out);
                }
                self.parents.remove(&id);
            }
            None => self.cancel_id(id, out),
        }
        Ok(id)
    }

    pub(crate) fn cancel_all(
        &mut self,
        account: AccountId,
        market: Option<&Symbol>,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let m = market.map(|s| self.market_id(s)).transpose()?;
        let acct = self
            .ledger
            .account(account)
            .ok_or(RejectReason::UnknownAccount)?;
        let ids: Vec<u64> = acct
            .open_orders
            .iter()
            .copied()
            .filter(|id| m.is_none_or(|m| self.orders[id].0 == m))
            .collect();
        for &id in &ids {
            if let Some(Parent::Bracket(b)) = self.parents.get_mut(&id) {
                b.cancelled = true;
            }
            self.cancel_id(id, out);
        }
        Ok(ids.len() as u64)
    }

    pub(crate) fn amend_order(
        &mut self,
        account: AccountId,
        r: &OrderRef,
        price: Option<Dec>,
        quantity: Option<Dec>,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let id = self.resolve(account, r)?;
        let &(m, slot) = self.orders.get(&id).ok_or(RejectReason::NotAmendable)?;
        self.check_can_trade(account, m)?;
        let mk = &self.markets[m as usize];
        let o = mk.book.get(slot);
        if o.kind != OrderKind::Limit {
            return Err(RejectReason::NotAmendable);
        }
        let ticks = price
            .map(|p| mk.price_ticks(p))
            .transpose()?
            .unwrap_or(o.price_ticks);
        let lots = quantity
            .map(|q| mk.quantity_lots(q))
            .transpose()?
            .unwrap_or(o.open_lots);
        if ticks == o.price_ticks && lots == o.open_lots {
            return Err(RejectReason::NothingToChange);
        }
        mk.check_size(lots)?;
        if mk.notional(ticks, lots)? < mk.min_notional_minor {
            return Err(RejectReason::BelowMinNotional);
        }
        if ticks != o.price_ticks {
            mk.check_band(ticks)?;
            if o.post_only && self.would_cross(m, o.side, ticks) {
                return Err(RejectReason::PostOnlyWouldTrade);
            }
        }
        let (asset, held) = self.limit_hold(m, o.side, ticks, lots, order_max_ppm(o))?;
        if held > o.held_minor {
            self.check_funds(account, asset, sub(held, o.held_minor, "amend hold"))?;
        }
        let keeps_priority = ticks == o.price_ticks && lots < o.open_lots;
        // A new price that does not cross just moves to the back of its level; only
        // a crossing amend has to run through the matcher.
        let crosses = ticks != o.price_ticks && self.would_cross(m, o.side, ticks);

        let old_held = o.held_minor;
        let cause = Cause::Order(OrderId(id));
        if held > old_held {
            self.ledger.hold(
                &self.assets,
                asset,
                account,
                sub(held, old_held, "amend hold"),
                cause,
                out,
            );
        } else {
            self.ledger.release(
                &self.assets,
                asset,
                account,
                sub(old_held, held, "amend release"),
                cause,
                out,
            );
        }
        let mk = &mut self.markets[m as usize];
        if !keeps_priority {
            mk.book.unlink(slot);
        }
        let o = mk.book.get_mut(slot);
        o.price_ticks = ticks;
        o.open_lots = lots;
        o.held_minor = held;
        o.visible_lots = if keeps_priority {
            o.visible_lots.min(lots)
        } else if o.is_iceberg() {
            o.display_lots.min(lots)
        } else {
            lots
        };
        let (side, visible) = (o.side, o.visible_lots);
        let (price, visible_dec, hidden_dec) = (
            mk.price_dec(ticks),
            mk.qty_dec(visible),
            mk.qty_dec(lots - visible),
        );
        out.push(Event::OrderAmended {
            order: OrderId(id),
            market: mk.spec.symbol,
            side,
            price,
            visible: visible_dec,
            hidden: hidden_dec,
            held: match side {
                Side::Buy => mk.quote_dec(held),
                Side::Sell => mk.base_dec(held),
            },
            requeued: !keeps_priority,
        });
        if keeps_priority {
            return Ok(id);
        }
        if !crosses {
            mk.book.push_back(slot);
            out.push(Event::OrderRested {
                order: OrderId(id),
                market: mk.spec.symbol,
                side,
                price,
                visible: visible_dec,
                hidden: hidden_dec,
            });
            return Ok(id);
        }
        let o = mk.book.remove(slot);
        self.orders.remove(&id);
        self.run_limit(m, o, out);
        Ok(id)
    }

    /// Resolves an order reference to a live order id or a parent id of `account`.
    pub(crate) fn resolve(&self, account: AccountId, r: &OrderRef) -> Result<u64, RejectReason> {
        let id = match r {
            OrderRef::Id(id) => id.0,
            OrderRef::Client(cid) => *self
                .client_ids
                .get(&(account, *cid))
                .ok_or(RejectReason::UnknownOrder)?,
        };
        let owner = match (self.orders.get(&id), self.parents.get(&id)) {
            (_, Some(Parent::Sliced { account, .. })) => *account,
            (_, Some(Parent::Bracket(b))) => b.account,
            (Some(&(m, slot)), None) => self.markets[m as usize].book.get(slot).account,
            (None, None) => return Err(RejectReason::UnknownOrder),
        };
        // Another account's order is reported as unknown: ids are not a way to probe.
        if owner != account {
            return Err(RejectReason::UnknownOrder);
        }
        Ok(id)
    }
}
