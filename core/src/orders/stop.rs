//! Stop orders: held at acceptance, waiting in their market until the last trade price crosses the trigger, then run as market or limit orders.

use tape_schemas::*;

use super::*;

impl Core {
    /// A stop-market order: it holds for its size at the trigger price (buys, at the
    /// taker rate) or its whole budget, and runs as a market order once triggered.
    pub(crate) fn place_stop_market(&mut self, p: &Placing, out: &mut Vec<Event>) -> Outcome {
        let OrderType::StopMarket {
            trigger_price,
            size,
        } = p.n.order_type
        else {
            return Err(RejectReason::UnsupportedOrderType);
        };
        let (m, n) = (p.m, p.n);
        let mk = &self.markets[m];
        let trigger = mk.price_ticks(trigger_price)?;
        let (lots, quote_left) = self.market_size(m, size)?;
        let (asset, held, stop_size) = match (n.side, size, quote_left) {
            (Side::Buy, MarketSize::Base(_), _) => (
                mk.quote,
                mk.buy_hold(trigger, lots, p.fees.taker_ppm)?,
                StopSize::BaseLots(lots),
            ),
            (Side::Buy, MarketSize::Quote(_), Some(q)) => (mk.quote, q, StopSize::QuoteMinor(q)),
            (Side::Sell, MarketSize::Base(_), _) => {
                (mk.base, mk.base_minor(lots)?, StopSize::BaseLots(lots))
            }
            _ => return Err(RejectReason::UnsupportedOrderType),
        };
        self.check_new_orders(n.account, 1, n.client_order_id.as_ref())?;
        self.check_funds(n.account, asset, held)?;
        let draft = Draft {
            lots,
            held_minor: held,
            trigger_ticks: trigger,
            stop_size: Some(stop_size),
            ..p.draft(OrderKind::StopMarket)
        };
        self.open_stop(p, draft, out)
    }

    /// A stop-limit order: held like the limit order it becomes once triggered.
    pub(crate) fn place_stop_limit(&mut self, p: &Placing, out: &mut Vec<Event>) -> Outcome {
        let OrderType::StopLimit {
            trigger_price,
            price,
            quantity,
            time_in_force,
        } = p.n.order_type
        else {
            return Err(RejectReason::UnsupportedOrderType);
        };
        let (m, n) = (p.m, p.n);
        let trigger = self.markets[m].price_ticks(trigger_price)?;
        let (ticks, lots) = self.check_limit(m, price, quantity)?;
        self.check_tif(time_in_force)?;
        self.check_new_orders(n.account, 1, n.client_order_id.as_ref())?;
        let hold_ppm = crate::fees::hold_ppm(p.fees);
        let (asset, held) = self.limit_hold(m, n.side, ticks, lots, hold_ppm)?;
        self.check_funds(n.account, asset, held)?;
        let draft = Draft {
            price_ticks: ticks,
            lots,
            held_minor: held,
            tif: time_in_force,
            trigger_ticks: trigger,
            ..p.draft(OrderKind::StopLimit)
        };
        self.open_stop(p, draft, out)
    }

    /// Opens a drafted stop and leaves it waiting for its trigger.
    fn open_stop(&mut self, p: &Placing, draft: Draft, out: &mut Vec<Event>) -> Outcome {
        let o = self.open(p, draft, out);
        let id = o.id;
        self.store_stop(p.m, o);
        Ok(id)
    }

    pub(crate) fn store_stop(&mut self, m: u32, o: Order) {
        let key = (o.side, o.trigger_ticks, o.id);
        let id = o.id;
        self.register(&o);
        let mk = &mut self.markets[m];
        let slot = mk.book.insert(o);
        assert!(mk.add_stop(key), "stop {id} is stored once");
        self.orders.live.insert(id, (m, slot));
        // A stop whose trigger is already reached fires at once.
        self.pending.push(Pending::Stops(m));
    }

    /// Triggers every stop of market `m` whose trigger the last price has reached,
    /// oldest order first.
    pub(crate) fn trigger_stops(&mut self, m: u32, out: &mut Vec<Event>) {
        let mk = &self.markets[m];
        let Some(last) = mk.last_ticks() else { return };
        let mut ids = mk.triggered_stops(last);
        ids.sort_unstable();
        for id in ids {
            let Some(&(mm, slot)) = self.orders.live.get(&id) else {
                continue;
            };
            let mk = &mut self.markets[mm];
            let o = mk.book.get(slot);
            let removed = mk.remove_stop((o.side, o.trigger_ticks, o.id));
            assert!(removed, "a triggered stop is indexed");
            let mut o = mk.book.remove(slot);
            self.orders.live.remove(&id);
            out.push(Event::OrderTriggered {
                order: OrderId(id),
                market: mk.spec.symbol,
                last_price: mk.price_dec(last),
            });
            if self.perps.contains(mm) {
                self.run_perp_stop(mm, o, out);
                continue;
            }
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
}
