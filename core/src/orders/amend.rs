//! Cancelling (by id, by client order id, all of an account's) and amending: a lower quantity keeps priority, a new price or a higher quantity re-queues.

use tape_schemas::*;

use super::*;

impl Core {
    pub(crate) fn cancel_id(&mut self, id: u64, out: &mut Vec<Event>) {
        self.end_id(id, DoneReason::Cancelled, out);
    }

    fn end_id(&mut self, id: u64, reason: DoneReason, out: &mut Vec<Event>) {
        if let Some(&(m, slot)) = self.orders.live.get(&id) {
            self.remove_order(m, slot, reason, out);
        }
    }

    pub(crate) fn cancel_order(
        &mut self,
        account: AccountId,
        r: &OrderRef,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let id = self.resolve(account, r)?;
        match self.orders.parents.get_mut(&id) {
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
                self.orders.parents.remove(&id);
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
        let m = market.map(|s| self.markets.id(s)).transpose()?;
        if !self.ledger.exists(account) {
            return Err(RejectReason::UnknownAccount);
        }
        Ok(self.end_open_orders(account, m, DoneReason::Cancelled, out))
    }

    /// Ends every open order of `account` (in market `m` only, when given) for
    /// `reason`, brackets' pending exits included; returns how many.
    pub(crate) fn end_open_orders(
        &mut self,
        account: AccountId,
        m: Option<u32>,
        reason: DoneReason,
        out: &mut Vec<Event>,
    ) -> u64 {
        let ids: Vec<u64> = self
            .orders
            .open_of(account)
            .filter(|id| m.is_none_or(|m| self.orders.locate(*id).0 == m))
            .collect();
        for &id in &ids {
            if let Some(Parent::Bracket(b)) = self.orders.parents.get_mut(&id) {
                b.cancelled = true;
            }
            self.end_id(id, reason, out);
        }
        ids.len() as u64
    }

    /// Changes a resting limit order's price or size. Shrinking at the same price
    /// keeps its place; anything else requeues it, and a new price that crosses runs
    /// through the matcher. The hold follows the new terms.
    pub(crate) fn amend_order(
        &mut self,
        account: AccountId,
        r: &OrderRef,
        price: Option<Dec>,
        quantity: Option<Dec>,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let id = self.resolve(account, r)?;
        let &(m, slot) = self
            .orders
            .live
            .get(&id)
            .ok_or(RejectReason::NotAmendable)?;
        if self.perps.contains(m) {
            return self.amend_perp(account, (m, slot), price, quantity, out);
        }
        let a = self.check_amend(account, (id, m, slot), price, quantity)?;
        let cause = Cause::Order(OrderId(a.id));
        if a.held > a.old_held {
            let more = sub(a.held, a.old_held, "amend hold");
            self.ledger
                .hold(&self.assets, a.asset, account, more, cause, out);
            self.touch_margin_accounts(&[account]);
        } else {
            let less = sub(a.old_held, a.held, "amend release");
            self.ledger
                .release(&self.assets, a.asset, account, less, cause, out);
        }
        let (m, slot, id) = (a.m, a.slot, a.id);
        let mk = &mut self.markets[m];
        if !a.keeps_priority {
            mk.book.unlink(slot);
        }
        let o = mk.book.get_mut(slot);
        o.price_ticks = a.ticks;
        o.open_lots = a.lots;
        o.held_minor = a.held;
        o.visible_lots = if a.keeps_priority {
            o.visible_lots.min(a.lots)
        } else {
            iceberg::shown(o, a.lots)
        };
        let (side, visible) = (o.side, o.visible_lots);
        let price = mk.price_dec(a.ticks);
        let (visible, hidden) = (mk.qty_dec(visible), mk.qty_dec(a.lots - visible));
        out.push(Event::OrderAmended {
            order: OrderId(id),
            market: mk.spec.symbol,
            side,
            price,
            visible,
            hidden,
            held: match side {
                Side::Buy => mk.quote_dec(a.held),
                Side::Sell => mk.base_dec(a.held),
            },
            requeued: !a.keeps_priority,
        });
        if a.keeps_priority {
            return Ok(id);
        }
        if !a.crosses {
            mk.book.push_back(slot);
            out.push(Event::OrderRested {
                order: OrderId(id),
                market: mk.spec.symbol,
                side,
                price,
                visible,
                hidden,
            });
            return Ok(id);
        }
        let o = mk.book.remove(slot);
        self.orders.live.remove(&id);
        self.run_limit(m, o, out);
        Ok(id)
    }

    /// Every check an amend must pass, before anything changes.
    fn check_amend(
        &self,
        account: AccountId,
        (id, m, slot): (u64, u32, Slot),
        price: Option<Dec>,
        quantity: Option<Dec>,
    ) -> Result<Amend, RejectReason> {
        // Perpetuals' orders are amended by `amend_perp`.
        self.check_can_trade(account, m)?;
        let mk = &self.markets[m];
        let o = mk.book.get(slot);
        let (ticks, lots) = self.amend_terms(m, o, price, quantity)?;
        let (asset, held) = self.limit_hold(m, o.side, ticks, lots, crate::fees::max_ppm(o))?;
        if held > o.held_minor {
            self.check_funds(account, asset, sub(held, o.held_minor, "amend hold"))?;
        }
        Ok(Amend {
            id,
            m,
            slot,
            ticks,
            lots,
            asset,
            held,
            old_held: o.held_minor,
            keeps_priority: ticks == o.price_ticks && lots < o.open_lots,
            // A new price that does not cross just moves to the back of its level;
            // only a crossing amend has to run through the matcher.
            crosses: ticks != o.price_ticks && self.would_cross(m, o.side, ticks),
        })
    }

    /// The new price and size of an amend to a resting limit order, checked as
    /// every market checks them: something changes, the size, the notional, the
    /// band and post-only.
    pub(crate) fn amend_terms(
        &self,
        m: u32,
        o: &Order,
        price: Option<Dec>,
        quantity: Option<Dec>,
    ) -> Result<(u64, u64), RejectReason> {
        let mk = &self.markets[m];
        if o.kind != OrderKind::Limit {
            return Err(RejectReason::NotAmendable);
        }
        let ticks = price.map(|p| mk.price_ticks(p)).transpose()?;
        let ticks = ticks.unwrap_or(o.price_ticks);
        let lots = quantity.map(|q| mk.quantity_lots(q)).transpose()?;
        let lots = lots.unwrap_or(o.open_lots);
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
        Ok((ticks, lots))
    }

    /// Resolves an order reference to a live order id or a parent id of `account`.
    pub(crate) fn resolve(&self, account: AccountId, r: &OrderRef) -> Result<u64, RejectReason> {
        let id = match r {
            OrderRef::Id(id) => id.0,
            OrderRef::Client(cid) => *self
                .orders
                .client_ids
                .get(&(account, *cid))
                .ok_or(RejectReason::UnknownOrder)?,
        };
        let owner = match (self.orders.live.get(&id), self.orders.parents.get(&id)) {
            (_, Some(Parent::Sliced { account, .. })) => *account,
            (_, Some(Parent::Bracket(b))) => b.account,
            (Some(&(m, slot)), None) => self.markets[m].book.get(slot).account,
            (None, None) => return Err(RejectReason::UnknownOrder),
        };
        // Another account's order is reported as unknown: ids are not a way to probe.
        if owner != account {
            return Err(RejectReason::UnknownOrder);
        }
        Ok(id)
    }
}

/// An amend that passed its checks: the order, its new terms and hold.
struct Amend {
    id: u64,
    m: u32,
    slot: Slot,
    ticks: u64,
    lots: u64,
    asset: u16,
    held: u64,
    old_held: u64,
    keeps_priority: bool,
    crosses: bool,
}
