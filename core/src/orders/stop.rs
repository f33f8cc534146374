//! Stop orders: held at acceptance, waiting in their market until the last trade price crosses the trigger, then run as market or limit orders.

use tape_schemas::*;

use super::*;

impl Core {
    pub(crate) fn store_stop(&mut self, m: u32, o: Order) {
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

    /// Triggers every stop of market `m` whose trigger the last price has reached,
    /// oldest order first.
    pub(crate) fn trigger_stops(&mut self, m: u32, out: &mut Vec<Event>) {
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
}
