//! The life of an order: the checks and holds every type shares, resting, ending and
//! GTD expiry. Each order type's own rules are a file here: `limit`, `market`,
//! `stop`, `iceberg`, `amend` (and cancel), `sliced`, `bracket`. Every check runs
//! before the first change, so a rejected command changes nothing.

use crate::checked::sub;
use tape_schemas::*;

mod amend;
mod bracket;
mod iceberg;
pub(crate) use iceberg::shown;
pub(crate) mod index;
mod limit;
mod market;
mod sliced;
mod stop;

use crate::book::{Order, OrderKind, Slot, StopSize, Tif};
use crate::exchange::{Bracket, Core, Outcome, Parent, Pending};
use crate::matching::Taker;

/// A `PlaceOrder` command on its way in: its market and the account's fee rates.
pub(crate) struct Placing<'a> {
    pub m: u32,
    pub n: &'a NewOrder,
    pub fees: FeeRates,
}

impl Placing<'_> {
    /// The draft every order type starts from: the command's account, side, STP
    /// mode and client id, the account's fees, nothing sized yet.
    pub(crate) fn draft(&self, kind: OrderKind) -> Draft {
        Draft {
            account: self.n.account,
            side: self.n.side,
            kind,
            price_ticks: 0,
            lots: 0,
            display_lots: 0,
            held_minor: 0,
            fees: self.fees,
            tif: TimeInForce::Gtc,
            post_only: false,
            stp: self.n.stp,
            trigger_ticks: 0,
            stop_size: None,
            parent: 0,
            reduce_only: false,
            client_order_id: self.n.client_order_id,
        }
    }
}

/// Everything needed to build a new order.
pub(crate) struct Draft {
    pub(crate) account: AccountId,
    pub(crate) side: Side,
    pub(crate) kind: OrderKind,
    pub(crate) price_ticks: u64,
    pub(crate) lots: u64,
    pub(crate) display_lots: u64,
    pub(crate) held_minor: u64,
    pub(crate) fees: FeeRates,
    pub(crate) tif: TimeInForce,
    pub(crate) post_only: bool,
    pub(crate) stp: StpMode,
    pub(crate) trigger_ticks: u64,
    pub(crate) stop_size: Option<StopSize>,
    pub(crate) parent: u64,
    pub(crate) reduce_only: bool,
    pub(crate) client_order_id: Option<ClientOrderId>,
}

impl Draft {
    /// A plain GTC limit order that the engine places for a parent (a sliced child,
    /// a bracket's entry or exit).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn child(
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
            reduce_only: false,
            client_order_id,
        }
    }

    pub(crate) fn to_order(&self, id: u64) -> Order {
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
            reduce_only: self.reduce_only,
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
    pub(crate) fn check_can_trade(&self, account: AccountId, m: u32) -> Result<(), RejectReason> {
        if !self.ledger.exists(account) {
            return Err(RejectReason::UnknownAccount);
        }
        if !self.restrictions.can_trade(account) {
            return Err(RejectReason::TradingRestricted);
        }
        let mk = &self.markets[m];
        match mk.status() {
            MarketStatus::Active => {}
            MarketStatus::Halted => return Err(RejectReason::MarketHalted),
            MarketStatus::Disabled => return Err(RejectReason::MarketDisabled),
        }
        if !self.assets.get(mk.base).enabled || !self.assets.get(mk.quote).enabled {
            return Err(RejectReason::AssetDisabled);
        }
        Ok(())
    }

    /// Room for `count` more open orders, and a client id not in use. Callers have
    /// checked the account with `check_can_trade` first.
    pub(crate) fn check_new_orders(
        &self,
        account: AccountId,
        count: usize,
        cid: Option<&ClientOrderId>,
    ) -> Result<(), RejectReason> {
        if self.orders.open_count(account) + count > self.cfg.open_orders_per_account_max
            || self.orders.live.len() + count > self.cfg.open_orders_max
        {
            return Err(RejectReason::TooManyOpenOrders);
        }
        if let Some(cid) = cid {
            if self.orders.client_ids.contains_key(&(account, *cid)) {
                return Err(RejectReason::DuplicateClientOrderId);
            }
        }
        Ok(())
    }

    pub(crate) fn check_new_parent(&self) -> Result<(), RejectReason> {
        if self.orders.parents.len() >= self.cfg.parents_max {
            return Err(RejectReason::TooManyParents);
        }
        Ok(())
    }

    pub(crate) fn check_tif(&self, tif: TimeInForce) -> Result<(), RejectReason> {
        match tif {
            TimeInForce::Gtd { expires_at_ms } if expires_at_ms <= self.clock.now() => {
                Err(RejectReason::ExpiryInPast)
            }
            _ => Ok(()),
        }
    }

    /// Price, size, notional and band checks for a limit price and quantity.
    pub(crate) fn check_limit(
        &self,
        m: u32,
        price: Dec,
        quantity: Dec,
    ) -> Result<(u64, u64), RejectReason> {
        let mk = &self.markets[m];
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
    pub(crate) fn limit_hold(
        &self,
        m: u32,
        side: Side,
        ticks: u64,
        lots: u64,
        fee_ppm: u32,
    ) -> Result<(u16, u64), RejectReason> {
        let mk = &self.markets[m];
        match side {
            Side::Buy => Ok((mk.quote, mk.buy_hold(ticks, lots, fee_ppm)?)),
            Side::Sell => Ok((mk.base, mk.base_minor(lots)?)),
        }
    }

    pub(crate) fn check_funds(
        &self,
        account: AccountId,
        asset: u16,
        amount: u64,
    ) -> Result<(), RejectReason> {
        if self.spendable(account, asset) < amount {
            return Err(RejectReason::InsufficientFunds);
        }
        Ok(())
    }

    pub(crate) fn hold_asset(&self, m: u32, side: Side) -> u16 {
        let mk = &self.markets[m];
        match side {
            Side::Buy => mk.quote,
            Side::Sell => mk.base,
        }
    }

    pub(crate) fn new_order(&mut self, d: Draft) -> Order {
        d.to_order(self.orders.take_id())
    }

    /// Announces an accepted order and moves its hold from available to held.
    pub(crate) fn accept(
        &mut self,
        m: u32,
        o: &Order,
        order_type: OrderType,
        out: &mut Vec<Event>,
    ) {
        let asset = self.hold_asset(m, o.side);
        let mk = &self.markets[m];
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
        if o.held_minor > 0 {
            self.touch_margin_accounts(&[o.account]);
        }
    }

    /// Places an order of any type: the checks every type shares, then its own
    /// rules (`limit`, `market`, `stop`).
    pub(crate) fn place_order(&mut self, n: &NewOrder, out: &mut Vec<Event>) -> Outcome {
        let m = self.markets.id(&n.market)?;
        if self.perps.contains(m) {
            return self.place_perp(n, false, out);
        }
        self.check_can_trade(n.account, m)?;
        let p = Placing {
            m,
            n,
            fees: self.fees_for(n.account, m),
        };
        match n.order_type {
            OrderType::Limit { .. } => self.place_limit(&p, out),
            OrderType::Market { .. } => self.place_market(&p, out),
            OrderType::StopMarket { .. } => self.place_stop_market(&p, out),
            OrderType::StopLimit { .. } => self.place_stop_limit(&p, out),
        }
    }

    /// Builds a drafted order, announces it and takes its hold; returns the order.
    pub(crate) fn open(&mut self, p: &Placing, draft: Draft, out: &mut Vec<Event>) -> Order {
        let o = self.new_order(draft);
        self.accept(p.m, &o, p.n.order_type, out);
        o
    }

    /// (lots, quote budget) of a market size; quote-sized orders get `u64::MAX` lots.
    pub(crate) fn market_size(
        &self,
        m: u32,
        size: MarketSize,
    ) -> Result<(u64, Option<u64>), RejectReason> {
        let mk = &self.markets[m];
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

    /// Records a live order against its account and client id.
    pub(crate) fn register(&mut self, o: &Order) {
        assert!(
            self.ledger.exists(o.account),
            "a live order's account exists"
        );
        let cid = o.client_order_id.as_deref();
        self.orders.track(o.account, o.id, cid, expiry_of(o));
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
            None if matches!(o.tif, Tif::Gtc | Tif::Gtd) => {
                if self.perps.contains(m) && !self.margin_to_rest(m, &o, out) {
                    return self.finish(m, o, DoneReason::InsufficientMargin, out);
                }
                self.rest(m, o, out)
            }
            None => self.finish(m, o, DoneReason::Unfilled, out),
            Some(reason) => self.finish(m, o, reason, out),
        }
    }

    pub(crate) fn run_market(&mut self, m: u32, mut t: Taker, out: &mut Vec<Event>) {
        let stopped = self.match_taker(m, &mut t, out);
        let reason = match stopped {
            _ if t.order.open_lots == 0 => DoneReason::Filled,
            Some(r) => r,
            None => DoneReason::Unfilled,
        };
        self.finish(m, t.order, reason, out);
    }

    pub(crate) fn rest(&mut self, m: u32, mut o: Order, out: &mut Vec<Event>) {
        o.visible_lots = iceberg::shown(&o, o.open_lots);
        self.register(&o);
        let id = o.id;
        let mk = &mut self.markets[m];
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
        self.orders.live.insert(id, (m, slot));
        out.push(event);
    }

    /// Takes an order already unlinked from its level out of the book and the
    /// live index, to go on (through the matcher, after an amend).
    pub(crate) fn lift(&mut self, m: u32, slot: Slot) -> Order {
        let o = self.markets[m].book.remove(slot);
        self.orders.live.remove(&o.id);
        o
    }

    /// Takes a live order out of its market and ends it.
    pub(crate) fn remove_order(
        &mut self,
        m: u32,
        slot: Slot,
        reason: DoneReason,
        out: &mut Vec<Event>,
    ) {
        let mk = &mut self.markets[m];
        let o = mk.book.get(slot);
        match o.kind {
            OrderKind::Limit => mk.book.unlink(slot),
            OrderKind::StopMarket | OrderKind::StopLimit => {
                let removed = mk.remove_stop((o.side, o.trigger_ticks, o.id));
                assert!(removed, "a waiting stop is indexed");
            }
        }
        let o = mk.book.remove(slot);
        self.orders.live.remove(&o.id);
        if self.perps.contains(m) {
            self.perp_order_gone(m, &o, out);
        }
        self.finish(m, o, reason, out);
    }

    /// Ends an order that is no longer in the book: releases what it still holds,
    /// forgets it, reports it, and tells its parent.
    pub(crate) fn finish(&mut self, m: u32, o: Order, reason: DoneReason, out: &mut Vec<Event>) {
        let asset = self.hold_asset(m, o.side);
        let cause = Cause::Order(OrderId(o.id));
        self.ledger
            .release(&self.assets, asset, o.account, o.held_minor, cause, out);
        let cid = o.client_order_id.as_deref();
        self.orders.forget(o.account, o.id, cid, expiry_of(&o));
        let mk = &self.markets[m];
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
            self.child_done(o.parent, o.id, reason);
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
