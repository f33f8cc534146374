//! Bracket orders: an entry limit order and, once it has filled, an exit at the exit price; the report's P&L.

use tape_schemas::*;

use super::*;
use crate::checked::add;

impl Core {
    /// `PlaceBracket`. On a perpetual the entry is checked as a new limit order
    /// (the caps and the margin) and the exit, placed once the entry is done,
    /// only reduces the position the entry opened.
    pub(crate) fn place_bracket(&mut self, b: &NewBracket, out: &mut Vec<Event>) -> Outcome {
        let m = self.markets.id(&b.market)?;
        self.check_can_trade(b.account, m)?;
        let (ticks, lots) = self.check_limit(m, b.entry_price, b.quantity)?;
        let exit_ticks = self.markets[m].price_ticks(b.exit_price)?;
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
        let ppm = crate::fees::hold_ppm(fees);
        let held = if self.perps.contains(m) {
            self.keep_unrealized(b.account, self.markets[m].quote);
            let leverage =
                self.check_perp_entry(m, b.account, (b.side, &[(ticks, lots)], ppm), false)?;
            self.lower_leverage(m, b.account, leverage, out);
            0
        } else {
            let (asset, held) = self.limit_hold(m, b.side, ticks, lots, ppm)?;
            self.check_funds(b.account, asset, held)?;
            held
        };
        let id = self.orders.next_id;
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
        self.orders.parents.insert(
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

    /// A bracket's exit: (lots, hold). On a spot market, for what the entry
    /// filled, held as a new limit order; on a perpetual, reduce-only, for what
    /// the entry filled and the position still has, holding nothing.
    fn exit_terms(&self, b: &Bracket, fees: FeeRates) -> Result<(u64, u64), RejectReason> {
        let (m, side) = (b.market, b.side.opposite());
        self.check_can_trade(b.account, m)?;
        if self.perps.contains(m) {
            let pos = self.positions.get(b.account, m);
            return match pos.map_or(0, |p| p.reducible(side)) {
                0 => Err(RejectReason::NoPosition),
                r => Ok((b.entry_filled_lots.min(r), 0)),
            };
        }
        let ppm = crate::fees::hold_ppm(fees);
        let (asset, held) = self.limit_hold(m, side, b.exit_ticks, b.entry_filled_lots, ppm)?;
        self.check_funds(b.account, asset, held)?;
        Ok((b.entry_filled_lots, held))
    }

    /// Places a bracket's exit for what its entry filled.
    pub(crate) fn place_exit(&mut self, entry: u64, out: &mut Vec<Event>) {
        let Some(Parent::Bracket(b)) = self.orders.parents.get(&entry) else {
            return;
        };
        let b = b.clone();
        let side = b.side.opposite();
        let m = b.market;
        let fees = self.fees_for(b.account, m);
        let (lots, held) = match self.exit_terms(&b, fees) {
            Ok(terms) => terms,
            Err(reason) => {
                self.orders.parents.remove(&entry);
                out.push(Event::BracketExitRejected {
                    entry: OrderId(entry),
                    reason,
                });
                return;
            }
        };
        let draft = Draft {
            reduce_only: self.perps.contains(m),
            ..Draft::child(
                b.account,
                side,
                b.exit_ticks,
                lots,
                held,
                fees,
                false,
                entry,
                None,
            )
        };
        let o = self.new_order(draft);
        if let Some(Parent::Bracket(b)) = self.orders.parents.get_mut(&entry) {
            b.exit = Some(o.id);
        }
        out.push(Event::BracketExitPlaced {
            entry: OrderId(entry),
            exit: OrderId(o.id),
        });
        let mk = &self.markets[m];
        let order_type = OrderType::Limit {
            price: mk.price_dec(b.exit_ticks),
            quantity: mk.qty_dec(lots),
            time_in_force: TimeInForce::Gtc,
            post_only: false,
            display_quantity: None,
        };
        self.accept(m, &o, order_type, out);
        self.run_limit(m, o, out);
    }

    /// Bracket bookkeeping for one fill of an entry or an exit.
    pub(crate) fn bracket_fill(
        &mut self,
        m: u32,
        parent: u64,
        order: u64,
        lots: u64,
        quote_flow: u64,
        out: &mut Vec<Event>,
    ) {
        let Some(Parent::Bracket(b)) = self.orders.parents.get_mut(&parent) else {
            return;
        };
        if order == parent {
            b.entry_filled_lots = add(b.entry_filled_lots, lots, "bracket entry lots");
            b.entry_quote_minor = add(b.entry_quote_minor, quote_flow, "bracket entry quote");
            return;
        }
        if b.exit != Some(order) {
            return;
        }
        b.exit_filled_lots = add(b.exit_filled_lots, lots, "bracket exit lots");
        b.exit_quote_minor = add(b.exit_quote_minor, quote_flow, "bracket exit quote");
        // Cost basis of the closed part, pro rata of the entry.
        let basis = i128::from(b.entry_quote_minor) * i128::from(b.exit_filled_lots)
            / i128::from(b.entry_filled_lots);
        let pnl = match b.side {
            Side::Buy => i128::from(b.exit_quote_minor) - basis,
            Side::Sell => basis - i128::from(b.exit_quote_minor),
        };
        let mk = &self.markets[m];
        out.push(Event::BracketPnl {
            entry: OrderId(parent),
            exit: OrderId(order),
            closed_quantity: mk.qty_dec(b.exit_filled_lots),
            realized_pnl: Dec::from_minor(pnl, u32::from(mk.quote_scale)),
        });
    }
}
