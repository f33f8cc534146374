//! The life of an order: placement checks and holds, resting, cancel, cancel-all,
//! amend, stops and their triggers, GTD expiry, sliced parents and brackets. Every
//! check runs before the first change, so a rejected command changes nothing.

use crate::checked::sub;
use tape_schemas::*;

use crate::book::{Order, OrderKind, Slot, StopSize, Tif};
use crate::exchange::{Bracket, Core, Outcome, Parent, Pending};
use crate::matching::{order_max_ppm, Taker};

/// Everything needed to build a new order.
struct Draft {
    account: AccountId,
    side: Side,
    kind: OrderKind,
    price_ticks: u64,
    lots: u64,
    display_lots: u64,
    held_minor: u64,
    fees: FeeRates,
    tif: TimeInForce,
    post_only: bool,
    stp: StpMode,
    trigger_ticks: u64,
    stop_size: Option<StopSize>,
    parent: u64,
    client_order_id: Option<ClientOrderId>,
}

impl Draft {
    /// A plain GTC limit order that the engine places for a parent (a sliced child,
    /// a bracket's entry or exit).
    #[allow(clippy::too_many_arguments)]
    fn child(
        account: AccountId,
        side: Side,
        price_ticks: u64,
        lots: u64,
        held_minor: u64,
        fees: FeeRates,
        post_only: bool,
        parent: u64,
        client_order_id: Option<ClientOrderId>,
    ) -> Draft {
        Draft {
            account,
            side,
            kind: OrderKind::Limit,
            price_ticks,
            lots,
            display_lots: 0,
            held_minor,
            fees,
            tif: TimeInForce::Gtc,
            post_only,
            stp: StpMode::CancelTaker,
            trigger_ticks: 0,
            stop_size: None,
            parent,
            client_order_id,
        }
    }

    fn to_order(&self, id: u64) -> Order {
        let mut o = Order {
            id,
            account: self.account,
            side: self.side,
            kind: self.kind,
            price_ticks: self.price_ticks,
            open_lots: self.lots,
            visible_lots: self.lots,
            display_lots: self.display_lots,
            filled_lots: 0,
            held_minor: self.held_minor,
            maker_ppm: self.fees.maker_ppm,
            taker_ppm: self.fees.taker_ppm,
            tif: Tif::Gtc,
            expires_at_ms: 0,
            post_only: self.post_only,
            stp: self.stp,
            trigger_ticks: self.trigger_ticks,
            stop_quote_minor: match self.stop_size {
                Some(StopSize::QuoteMinor(q)) => q,
                _ => 0,
            },
            parent: self.parent,
            client_order_id: self.client_order_id.map(Box::new),
            prev: crate::book::NIL,
            next: crate::book::NIL,
        };
        o.set_time_in_force(self.tif);
        o
    }
}

impl Core {
    /// Account, market and asset checks shared by everything that trades.
    fn check_can_trade(&self, account: AccountId, m: u32) -> Result<(), RejectReason> {
        let acct = self
            .ledger
            .account(account)
            .ok_or(RejectReason::UnknownAccount)?;
        if !acct.can_trade {
            return Err(RejectReason::TradingRestricted);
        }
        let mk = &self.markets[m as usize];
        match mk.status {
            MarketStatus::Active => {}
            MarketStatus::Halted => return Err(RejectReason::MarketHalted),
            MarketStatus::Disabled => return Err(RejectReason::MarketDisabled),
        }
        if !self.assets.get(mk.base).enabled || !self.assets.get(mk.quote).enabled {
            return Err(RejectReason::AssetDisabled);
        }
        Ok(())
    }

    fn check_new_orders(
        &self,
        account: AccountId,
        count: usize,
        cid: Option<&ClientOrderId>,
    ) -> Result<(), RejectReason> {
        let acct = self
            .ledger
            .account(account)
            .ok_or(RejectReason::UnknownAccount)?;
        if acct.open_orders.len() + count > self.cfg.open_orders_per_account_max
            || self.orders.len() + count > self.cfg.open_orders_max
        {
            return Err(RejectReason::TooManyOpenOrders);
        }
        if let Some(cid) = cid {
            if self.client_ids.contains_key(&(account, *cid)) {
                return Err(RejectReason::DuplicateClientOrderId);
            }
        }
        Ok(())
    }

    fn check_new_parent(&self) -> Result<(), RejectReason> {
        if self.parents.len() >= self.cfg.parents_max {
            return Err(RejectReason::TooManyParents);
        }
        Ok(())
    }

    fn fees_for(&self, account: AccountId, m: u32) -> FeeRates {
        self.ledger
            .account(account)
            .and_then(|a| a.fees_for(m))
            .unwrap_or(self.markets[m as usize].fees)
    }

    fn check_tif(&self, tif: TimeInForce) -> Result<(), RejectReason> {
        match tif {
            TimeInForce::Gtd { expires_at_ms } if expires_at_ms <= self.time_ms => {
                Err(RejectReason::ExpiryInPast)
            }
            _ => Ok(()),
        }
    }

    /// Price, size, notional and band checks for a limit price and quantity.
    fn check_limit(&self, m: u32, price: Dec, quantity: Dec) -> Result<(u64, u64), RejectReason> {
        let mk = &self.markets[m as usize];
        let ticks = mk.price_ticks(price)?;
        let lots = mk.quantity_lots(quantity)?;
        mk.check_size(lots)?;
        if mk.notional(ticks, lots)? < mk.min_notional_minor {
            return Err(RejectReason::BelowMinNotional);
        }
        mk.check_band(ticks)?;
        Ok((ticks, lots))
    }

    /// The hold for a limit order: quote (notional + worst fee) for buys, base for
    /// sells; and the asset it is held in.
    fn limit_hold(
        &self,
        m: u32,
        side: Side,
        ticks: u64,
        lots: u64,
        fee_ppm: u32,
    ) -> Result<(u16, u64), RejectReason> {
        let mk = &self.markets[m as usize];
        match side {
            Side::Buy => Ok((mk.quote, mk.buy_hold(ticks, lots, fee_ppm)?)),
            Side::Sell => Ok((mk.base, mk.base_minor(lots)?)),
        }
    }

    fn check_funds(&self, account: AccountId, asset: u16, amount: u64) -> Result<(), RejectReason> {
        if self.ledger.available(account, asset) < amount {
            return Err(RejectReason::InsufficientFunds);
        }
        Ok(())
    }

    fn hold_asset(&self, m: u32, side: Side) -> u16 {
        let mk = &self.markets[m as usize];
        match side {
            Side::Buy => mk.quote,
            Side::Sell => mk.base,
        }
    }

    fn new_order(&mut self, d: Draft) -> Order {
        let o = d.to_order(self.next_order);
        self.next_order += 1;
        o
    }

    /// Announces an accepted order and moves its hold from available to held.
    fn accept(&mut self, m: u32, o: &Order, order_type: OrderType, out: &mut Vec<Event>) {
        let asset = self.hold_asset(m, o.side);
        let mk = &self.markets[m as usize];
        let held = match o.side {
            Side::Buy => mk.quote_dec(o.held_minor),
            Side::Sell => mk.base_dec(o.held_minor),
        };
        out.push(Event::OrderAccepted {
            order: OrderId(o.id),
            account: o.account,
            market: mk.spec.symbol,
            side: o.side,
            order_type,
            client_order_id: o.client_order_id.as_deref().copied(),
            parent: (o.parent != 0).then_some(OrderId(o.parent)),
            held,
        });
        let cause = Cause::Order(OrderId(o.id));
        self.ledger
            .hold(&self.assets, asset, o.account, o.held_minor, cause, out);
    }

    pub(crate) fn place_order(&mut self, n: &NewOrder, out: &mut Vec<Event>) -> Outcome {
        let m = self.market_id(&n.market)?;
        self.check_can_trade(n.account, m)?;
        let fees = self.fees_for(n.account, m);
        let hold_ppm = fees.maker_ppm.max(fees.taker_ppm);
        let base_draft = |kind| Draft {
            account: n.account,
            side: n.side,
            kind,
            price_ticks: 0,
            lots: 0,
            display_lots: 0,
            held_minor: 0,
            fees,
            tif: TimeInForce::Gtc,
            post_only: false,
            stp: n.stp,
            trigger_ticks: 0,
            stop_size: None,
            parent: 0,
            client_order_id: n.client_order_id,
        };
        match n.order_type {
            OrderType::Limit {
                price,
                quantity,
                time_in_force,
                post_only,
                display_quantity,
            } => {
                let (ticks, lots) = self.check_limit(m, price, quantity)?;
                self.check_tif(time_in_force)?;
                let rests = matches!(time_in_force, TimeInForce::Gtc | TimeInForce::Gtd { .. });
                if (post_only || display_quantity.is_some()) && !rests {
                    return Err(RejectReason::InvalidTimeInForce);
                }
                let display_lots = match display_quantity {
                    None => 0,
                    Some(d) => {
                        let d = self.markets[m as usize].quantity_lots(d)?;
                        if d >= lots {
                            return Err(RejectReason::InvalidQuantity);
                        }
                        d
                    }
                };
                self.check_new_orders(n.account, 1, n.client_order_id.as_ref())?;
                let (asset, held) = self.limit_hold(m, n.side, ticks, lots, hold_ppm)?;
                self.check_funds(n.account, asset, held)?;
                if post_only && self.would_cross(m, n.side, ticks) {
                    return Err(RejectReason::PostOnlyWouldTrade);
                }
                let draft = Draft {
                    price_ticks: ticks,
                    lots,
                    display_lots,
                    held_minor: held,
                    tif: time_in_force,
                    post_only,
                    ..base_draft(OrderKind::Limit)
                };
                if time_in_force == TimeInForce::Fok
                    && self.fillable_lots(m, &draft.to_order(0), lots) < lots
                {
                    return Err(RejectReason::FokCannotFill);
                }
                let o = self.new_order(draft);
                let id = o.id;
                self.accept(m, &o, n.order_type, out);
                self.run_limit(m, o, out);
                Ok(id)
            }
            OrderType::Market { size } => {
                let mk = &self.markets[m as usize];
                let (lots, quote_left) = self.market_size(m, size)?;
                if mk.book.best(n.side.opposite()).is_none() {
                    return Err(RejectReason::NoLiquidity);
                }
                let (asset, need) = match (n.side, size) {
                    (Side::Buy, MarketSize::Quote(_)) => {
                        (mk.quote, quote_left.expect("quote sized"))
                    }
                    (Side::Buy, MarketSize::Base(_)) => (mk.quote, 1),
                    (Side::Sell, MarketSize::Base(_)) => (mk.base, mk.base_minor(lots)?),
                    (Side::Sell, MarketSize::Quote(_)) => (mk.base, mk.lot_minor),
                };
                self.check_funds(n.account, asset, need)?;
                let draft = Draft {
                    lots,
                    ..base_draft(OrderKind::Limit)
                };
                let o = self.new_order(draft);
                let id = o.id;
                self.accept(m, &o, n.order_type, out);
                let t = Taker {
                    order: o,
                    market_order: true,
                    from_held: false,
                    quote_left,
                };
                self.run_market(m, t, out);
                Ok(id)
            }
            OrderType::StopMarket {
                trigger_price,
                size,
            } => {
                let mk = &self.markets[m as usize];
                let trigger = mk.price_ticks(trigger_price)?;
                let (lots, quote_left) = self.market_size(m, size)?;
                let (asset, held, stop_size) = match (n.side, size) {
                    (Side::Buy, MarketSize::Base(_)) => (
                        mk.quote,
                        mk.buy_hold(trigger, lots, fees.taker_ppm)?,
                        StopSize::BaseLots(lots),
                    ),
                    (Side::Buy, MarketSize::Quote(_)) => {
                        let q = quote_left.expect("quote sized");
                        (mk.quote, q, StopSize::QuoteMinor(q))
                    }
                    (Side::Sell, MarketSize::Base(_)) => {
                        (mk.base, mk.base_minor(lots)?, StopSize::BaseLots(lots))
                    }
                    (Side::Sell, MarketSize::Quote(_)) => {
                        return Err(RejectReason::UnsupportedOrderType)
                    }
                };
                self.check_new_orders(n.account, 1, n.client_order_id.as_ref())?;
                self.check_funds(n.account, asset, held)?;
                let draft = Draft {
                    lots,
                    held_minor: held,
                    trigger_ticks: trigger,
                    stop_size: Some(stop_size),
                    ..base_draft(OrderKind::StopMarket)
                };
                let o = self.new_order(draft);
                let id = o.id;
                self.accept(m, &o, n.order_type, out);
                self.store_stop(m, o);
                Ok(id)
            }
            OrderType::StopLimit {
                trigger_price,
                price,
                quantity,
                time_in_force,
            } => {
                let trigger = self.markets[m as usize].price_ticks(trigger_price)?;
                let (ticks, lots) = self.check_limit(m, price, quantity)?;
                self.check_tif(time_in_force)?;
                self.check_new_orders(n.account, 1, n.client_order_id.as_ref())?;
                let (asset, held) = self.limit_hold(m, n.side, ticks, lots, hold_ppm)?;
                self.check_funds(n.account, asset, held)?;
                let draft = Draft {
                    price_ticks: ticks,
                    lots,
                    held_minor: held,
                    tif: time_in_force,
                    trigger_ticks: trigger,
                    ..base_draft(OrderKind::StopLimit)
                };
                let o = self.new_order(draft);
                let id = o.id;
                self.accept(m, &o, n.order_type, out);
                self.store_stop(m, o);
                Ok(id)
            }
        }
    }

    /// (lots, quote budget) of a market size; quote-sized orders get `u64::MAX` lots.
    fn market_size(&self, m: u32, size: MarketSize) -> Result<(u64, Option<u64>), RejectReason> {
        let mk = &self.markets[m as usize];
        match size {
            MarketSize::Base(q) => {
                let lots = mk.quantity_lots(q)?;
                mk.check_size(lots)?;
                Ok((lots, None))
            }
            MarketSize::Quote(a) => {
                let q = mk.quote_minor(a)?;
                if q < mk.min_notional_minor {
                    return Err(RejectReason::BelowMinNotional);
                }
                Ok((u64::MAX, Some(q)))
            }
        }
    }

    fn store_stop(&mut self, m: u32, o: Order) {
        let key = (o.side, o.trigger_ticks, o.id);
        let id = o.id;
        self.register(&o);
        let mk = &mut self.markets[m as usize];
        let slot = mk.book.insert(o);
        mk.stops.insert(key);
        self.orders.insert(id, (m, slot));
        // A stop whose trigger is already reached fires at once.
        self.pending.push(Pending::Stops(m));
    }

    /// Records a live order against its account and client id.
    fn register(&mut self, o: &Order) {
        let acct = self
            .ledger
            .account_mut(o.account)
            .expect("a live order's account exists");
        acct.open_orders.insert(o.id);
        if let Some(cid) = o.client_order_id.as_deref() {
            self.client_ids.insert((o.account, *cid), o.id);
        }
        if let Some(e) = expiry_of(o) {
            self.expiries.insert((e, o.id));
        }
    }

    /// Runs a limit order as taker, then rests or ends it.
    pub(crate) fn run_limit(&mut self, m: u32, order: Order, out: &mut Vec<Event>) {
        let mut t = Taker {
            order,
            market_order: false,
            from_held: true,
            quote_left: None,
        };
        let stopped = if t.order.tif == Tif::Fok
            && self.fillable_lots(m, &t.order, t.order.open_lots) < t.order.open_lots
        {
            // Only a triggered stop-limit gets here: a new FOK is checked on arrival.
            Some(DoneReason::Unfilled)
        } else {
            self.match_taker(m, &mut t, out)
        };
        let o = t.order;
        if o.open_lots == 0 {
            return self.finish(m, o, DoneReason::Filled, out);
        }
        match stopped {
            None if matches!(o.tif, Tif::Gtc | Tif::Gtd) => self.rest(m, o, out),
            None => self.finish(m, o, DoneReason::Unfilled, out),
            Some(reason) => self.finish(m, o, reason, out),
        }
    }

    fn run_market(&mut self, m: u32, mut t: Taker, out: &mut Vec<Event>) {
        let stopped = self.match_taker(m, &mut t, out);
        let reason = match stopped {
            _ if t.order.open_lots == 0 => DoneReason::Filled,
            Some(r) => r,
            None => DoneReason::Unfilled,
        };
        self.finish(m, t.order, reason, out);
    }

    fn rest(&mut self, m: u32, mut o: Order, out: &mut Vec<Event>) {
        o.visible_lots = if o.is_iceberg() {
            o.display_lots.min(o.open_lots)
        } else {
            o.open_lots
        };
        self.register(&o);
        let id = o.id;
        let mk = &mut self.markets[m as usize];
        let event = Event::OrderRested {
            order: OrderId(id),
            market: mk.spec.symbol,
            side: o.side,
            price: mk.price_dec(o.price_ticks),
            visible: mk.qty_dec(o.visible_lots),
            hidden: mk.qty_dec(o.open_lots - o.visible_lots),
        };
        let slot = mk.book.insert(o);
        mk.book.push_back(slot);
        self.orders.insert(id, (m, slot));
        out.push(event);
    }

    /// Takes a live order out of its market and ends it.
    pub(crate) fn remove_order(
        &mut self,
        m: u32,
        slot: Slot,
        reason: DoneReason,
        out: &mut Vec<Event>,
    ) {
        let mk = &mut self.markets[m as usize];
        let o = mk.book.get(slot);
        match o.kind {
            OrderKind::Limit => mk.book.unlink(slot),
            OrderKind::StopMarket | OrderKind::StopLimit => {
                let removed = mk.stops.remove(&(o.side, o.trigger_ticks, o.id));
                debug_assert!(removed, "a waiting stop is indexed");
            }
        }
        let o = mk.book.remove(slot);
        self.orders.remove(&o.id);
        self.finish(m, o, reason, out);
    }

    /// Ends an order that is no longer in the book: releases what it still holds,
    /// forgets it, reports it, and tells its parent.
    fn finish(&mut self, m: u32, o: Order, reason: DoneReason, out: &mut Vec<Event>) {
        let asset = self.hold_asset(m, o.side);
        let cause = Cause::Order(OrderId(o.id));
        self.ledger
            .release(&self.assets, asset, o.account, o.held_minor, cause, out);
        if let Some(acct) = self.ledger.account_mut(o.account) {
            acct.open_orders.remove(&o.id);
        }
        if let Some(cid) = o.client_order_id.as_deref() {
            if self.client_ids.get(&(o.account, *cid)) == Some(&o.id) {
                self.client_ids.remove(&(o.account, *cid));
            }
        }
        if let Some(e) = expiry_of(&o) {
            self.expiries.remove(&(e, o.id));
        }
        let mk = &self.markets[m as usize];
        let filled = if o.filled_lots == 0 {
            Dec::ZERO
        } else {
            mk.qty_dec(o.filled_lots)
        };
        out.push(Event::OrderDone {
            order: OrderId(o.id),
            market: mk.spec.symbol,
            reason,
            filled,
        });
        if o.parent != 0 {
            self.child_done(o.parent, o.id);
        }
    }

    fn child_done(&mut self, parent: u64, child: u64) {
        match self.parents.get_mut(&parent) {
            Some(Parent::Sliced {
                account,
                children,
                client_order_id,
            }) => {
                children.remove(&child);
                if children.is_empty() {
                    if let Some(cid) = client_order_id {
                        self.client_ids.remove(&(*account, *cid));
                    }
                    self.parents.remove(&parent);
                }
            }
            Some(Parent::Bracket(b)) => {
                if child == parent {
                    b.entry_open = false;
                    if b.cancelled || b.entry_filled_lots == 0 {
                        self.parents.remove(&parent);
                    } else {
                        self.pending.push(Pending::PlaceExit(parent));
                    }
                } else if b.exit == Some(child) {
                    self.parents.remove(&parent);
                }
            }
            None => {}
        }
    }

    /// Resolves an order reference to a live order id or a parent id of `account`.
    fn resolve(&self, account: AccountId, r: &OrderRef) -> Result<u64, RejectReason> {
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

    fn cancel_id(&mut self, id: u64, out: &mut Vec<Event>) {
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

    pub(crate) fn place_sliced(&mut self, s: &NewSliced, out: &mut Vec<Event>) -> Outcome {
        let m = self.market_id(&s.market)?;
        self.check_can_trade(s.account, m)?;
        if s.count == 0 || s.count > self.cfg.slices_max {
            return Err(RejectReason::InvalidSlice);
        }
        let mk = &self.markets[m as usize];
        let lo = mk.price_ticks(s.lower_price)?;
        let hi = mk.price_ticks(s.upper_price)?;
        let total = mk.quantity_lots(s.total_quantity)?;
        let count = u64::from(s.count);
        if lo > hi || total < count || (count > 1 && lo == hi) {
            return Err(RejectReason::InvalidSlice);
        }
        let fees = self.fees_for(s.account, m);
        let hold_ppm = fees.maker_ppm.max(fees.taker_ppm);
        let mut children = Vec::with_capacity(s.count as usize);
        let mut hold_total = 0u64;
        for i in 0..count {
            let ticks = if count == 1 {
                lo
            } else {
                lo + (hi - lo) * i / (count - 1)
            };
            let lots = total / count + u64::from(i < total % count);
            mk.check_size(lots)?;
            if mk.notional(ticks, lots)? < mk.min_notional_minor {
                return Err(RejectReason::BelowMinNotional);
            }
            mk.check_band(ticks)?;
            if s.post_only && self.would_cross(m, s.side, ticks) {
                return Err(RejectReason::PostOnlyWouldTrade);
            }
            let (_, held) = self.limit_hold(m, s.side, ticks, lots, hold_ppm)?;
            hold_total = hold_total
                .checked_add(held)
                .ok_or(RejectReason::OutOfRange)?;
            children.push((ticks, lots, held));
        }
        self.check_new_orders(s.account, s.count as usize, s.client_order_id.as_ref())?;
        self.check_new_parent()?;
        self.check_funds(s.account, self.hold_asset(m, s.side), hold_total)?;

        let parent = self.next_order;
        self.next_order += 1;
        let first_child = self.next_order;
        let ids: Vec<OrderId> = (first_child..first_child + count).map(OrderId).collect();
        self.parents.insert(
            parent,
            Parent::Sliced {
                account: s.account,
                children: ids.iter().map(|i| i.0).collect(),
                client_order_id: s.client_order_id,
            },
        );
        if let Some(cid) = s.client_order_id {
            self.client_ids.insert((s.account, cid), parent);
        }
        out.push(Event::SlicedPlaced {
            parent: OrderId(parent),
            market: s.market,
            children: ids,
        });
        let mk = &self.markets[m as usize];
        let drafts: Vec<(Draft, OrderType)> = children
            .iter()
            .map(|&(ticks, lots, held)| {
                let order_type = OrderType::Limit {
                    price: mk.price_dec(ticks),
                    quantity: mk.qty_dec(lots),
                    time_in_force: TimeInForce::Gtc,
                    post_only: s.post_only,
                    display_quantity: None,
                };
                let draft = Draft::child(
                    s.account,
                    s.side,
                    ticks,
                    lots,
                    held,
                    fees,
                    s.post_only,
                    parent,
                    None,
                );
                (draft, order_type)
            })
            .collect();
        for (draft, order_type) in drafts {
            let o = self.new_order(draft);
            self.accept(m, &o, order_type, out);
            self.run_limit(m, o, out);
        }
        Ok(parent)
    }

    pub(crate) fn place_bracket(&mut self, b: &NewBracket, out: &mut Vec<Event>) -> Outcome {
        let m = self.market_id(&b.market)?;
        self.check_can_trade(b.account, m)?;
        let (ticks, lots) = self.check_limit(m, b.entry_price, b.quantity)?;
        let exit_ticks = self.markets[m as usize].price_ticks(b.exit_price)?;
        let profitable = match b.side {
            Side::Buy => exit_ticks > ticks,
            Side::Sell => exit_ticks < ticks,
        };
        if !profitable {
            return Err(RejectReason::InvalidBracket);
        }
        self.check_new_orders(b.account, 1, b.client_order_id.as_ref())?;
        self.check_new_parent()?;
        let fees = self.fees_for(b.account, m);
        let (asset, held) =
            self.limit_hold(m, b.side, ticks, lots, fees.maker_ppm.max(fees.taker_ppm))?;
        self.check_funds(b.account, asset, held)?;
        let id = self.next_order;
        let draft = Draft::child(
            b.account,
            b.side,
            ticks,
            lots,
            held,
            fees,
            false,
            id,
            b.client_order_id,
        );
        let o = self.new_order(draft);
        self.parents.insert(
            id,
            Parent::Bracket(Bracket {
                account: b.account,
                market: m,
                side: b.side,
                exit_ticks,
                entry_open: true,
                entry_filled_lots: 0,
                entry_quote_minor: 0,
                exit: None,
                exit_filled_lots: 0,
                exit_quote_minor: 0,
                cancelled: false,
            }),
        );
        let order_type = OrderType::Limit {
            price: b.entry_price,
            quantity: b.quantity,
            time_in_force: TimeInForce::Gtc,
            post_only: false,
            display_quantity: None,
        };
        self.accept(m, &o, order_type, out);
        self.run_limit(m, o, out);
        Ok(id)
    }

    /// Places a bracket's exit for what its entry filled.
    fn place_exit(&mut self, entry: u64, out: &mut Vec<Event>) {
        let Some(Parent::Bracket(b)) = self.parents.get(&entry) else {
            return;
        };
        let b = b.clone();
        let side = b.side.opposite();
        let m = b.market;
        let fees = self.fees_for(b.account, m);
        let checked = self.check_can_trade(b.account, m).and_then(|()| {
            let (asset, held) = self.limit_hold(
                m,
                side,
                b.exit_ticks,
                b.entry_filled_lots,
                fees.maker_ppm.max(fees.taker_ppm),
            )?;
            self.check_funds(b.account, asset, held)?;
            Ok(held)
        });
        let held = match checked {
            Ok(held) => held,
            Err(reason) => {
                self.parents.remove(&entry);
                out.push(Event::BracketExitRejected {
                    entry: OrderId(entry),
                    reason,
                });
                return;
            }
        };
        let draft = Draft::child(
            b.account,
            side,
            b.exit_ticks,
            b.entry_filled_lots,
            held,
            fees,
            false,
            entry,
            None,
        );
        let o = self.new_order(draft);
        if let Some(Parent::Bracket(b)) = self.parents.get_mut(&entry) {
            b.exit = Some(o.id);
        }
        out.push(Event::BracketExitPlaced {
            entry: OrderId(entry),
            exit: OrderId(o.id),
        });
        let mk = &self.markets[m as usize];
        let order_type = OrderType::Limit {
            price: mk.price_dec(b.exit_ticks),
            quantity: mk.qty_dec(b.entry_filled_lots),
            time_in_force: TimeInForce::Gtc,
            post_only: false,
            display_quantity: None,
        };
        self.accept(m, &o, order_type, out);
        self.run_limit(m, o, out);
    }

    /// Triggers every stop of market `m` whose trigger the last price has reached,
    /// oldest order first.
    fn trigger_stops(&mut self, m: u32, out: &mut Vec<Event>) {
        let mk = &self.markets[m as usize];
        let Some(last) = mk.last_ticks else { return };
        let mut ids: Vec<u64> = mk
            .stops
            .range((Side::Buy, 0, 0)..=(Side::Buy, last, u64::MAX))
            .chain(
                mk.stops
                    .range((Side::Sell, last, 0)..=(Side::Sell, u64::MAX, u64::MAX)),
            )
            .map(|k| k.2)
            .collect();
        ids.sort_unstable();
        for id in ids {
            let Some(&(mm, slot)) = self.orders.get(&id) else {
                continue;
            };
            let mk = &mut self.markets[mm as usize];
            let o = mk.book.get(slot);
            mk.stops.remove(&(o.side, o.trigger_ticks, o.id));
            let mut o = mk.book.remove(slot);
            self.orders.remove(&id);
            out.push(Event::OrderTriggered {
                order: OrderId(id),
                market: mk.spec.symbol,
                last_price: mk.price_dec(last),
            });
            match o.kind {
                OrderKind::StopLimit => {
                    o.kind = OrderKind::Limit;
                    self.run_limit(mm, o, out);
                }
                OrderKind::StopMarket => {
                    let quote_left = (o.stop_quote_minor != 0).then_some(o.stop_quote_minor);
                    o.kind = OrderKind::Limit;
                    let t = Taker {
                        order: o,
                        market_order: true,
                        from_held: true,
                        quote_left,
                    };
                    self.run_market(mm, t, out);
                }
                OrderKind::Limit => unreachable!("only stops wait for triggers"),
            }
        }
    }

    pub(crate) fn drain_pending(&mut self, out: &mut Vec<Event>) {
        let mut i = 0;
        while i < self.pending.len() {
            match self.pending[i] {
                Pending::Stops(m) => self.trigger_stops(m, out),
                Pending::PlaceExit(entry) => self.place_exit(entry, out),
            }
            i += 1;
        }
        self.pending.clear();
    }
}

fn expiry_of(o: &Order) -> Option<u64> {
    o.expiry()
}
