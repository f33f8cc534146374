//! Bracket orders: an entry limit order and, once it has filled, an exit at the exit price; the report's P&L.

use tape_schemas::*;

use super::*;

impl Core {
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
    pub(crate) fn place_exit(&mut self, entry: u64, out: &mut Vec<Event>) {
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
}
