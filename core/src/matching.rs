//! Matching: one taker against the opposite side, best price first, oldest first
//! within a price. Each fill settles at once (postings, fees, hold recomputation),
//! so funds are never promised twice. Self-trade prevention and iceberg refills
//! happen here; what to do with the taker's remainder is the caller's choice.

use crate::checked::{add, sub};
use tape_schemas::*;

use crate::book::{Order, Slot};
use crate::exchange::{Core, Parent, Pending};
use crate::market::Market;
use crate::units::fee;

/// An order while it takes liquidity.
pub(crate) struct Taker {
    pub order: Order,
    /// A market order (or triggered stop-market): no limit price, and its funds are
    /// checked fill by fill.
    pub market_order: bool,
    /// Debits come from the account's held funds (limit orders, triggered stops)
    /// rather than from available (market orders).
    pub from_held: bool,
    /// Quote-sized market orders: the budget left (buys, fees included) or the
    /// proceeds still wanted (sells, before fees).
    pub quote_left: Option<u64>,
}

/// The most lots whose cost, notional plus fee at `ppm`, fits in `budget`.
fn affordable_lots(budget: u64, per_lot: u64, ppm: u32) -> u64 {
    let per_lot = u128::from(per_lot);
    let cost = |lots: u128| {
        let n = lots * per_lot;
        n + n * u128::from(ppm) / 1_000_000
    };
    let mut lots = u128::from(budget) * 1_000_000 / (per_lot * (1_000_000 + u128::from(ppm)));
    while cost(lots + 1) <= u128::from(budget) {
        lots += 1;
    }
    u64::try_from(lots).unwrap_or(u64::MAX)
}

pub(crate) fn crosses(side: Side, book_price: u64, limit: u64) -> bool {
    match side {
        Side::Buy => book_price <= limit,
        Side::Sell => book_price >= limit,
    }
}

fn max_ppm(o: &Order) -> u32 {
    o.maker_ppm.max(o.taker_ppm)
}

impl Core {
    /// Matches until the taker is done or no longer crosses. `None` means it simply
    /// ran out of crossing liquidity; `Some` says why it had to stop.
    pub(crate) fn match_taker(
        &mut self,
        m: u32,
        t: &mut Taker,
        out: &mut Vec<Event>,
    ) -> Option<DoneReason> {
        let opposite = t.order.side.opposite();
        loop {
            if t.order.open_lots == 0 {
                return Some(DoneReason::Filled);
            }
            let mk = &self.markets[m as usize];
            let (price, slot) = mk.book.best(opposite)?;
            if t.market_order {
                if let Some((lo, hi)) = mk.band() {
                    if price > hi || price < lo {
                        return Some(DoneReason::PriceBand);
                    }
                }
            } else if !crosses(t.order.side, price, t.order.price_ticks) {
                return None;
            }
            let maker = mk.book.get(slot);
            if maker.account == t.order.account {
                match t.order.stp {
                    StpMode::CancelTaker => return Some(DoneReason::SelfTrade),
                    StpMode::CancelMaker => {
                        self.remove_order(m, slot, DoneReason::SelfTrade, out);
                        continue;
                    }
                    StpMode::CancelBoth => {
                        self.remove_order(m, slot, DoneReason::SelfTrade, out);
                        return Some(DoneReason::SelfTrade);
                    }
                }
            }
            let lots = match self.fill_lots(mk, t, price, maker.visible_lots) {
                Ok(lots) => lots,
                Err(reason) => return Some(reason),
            };
            self.trade(m, slot, t, price, lots, out);
        }
    }

    /// How many lots the taker can take from a maker showing `visible` at `price`.
    fn fill_lots(
        &self,
        mk: &Market,
        t: &Taker,
        price: u64,
        visible: u64,
    ) -> Result<u64, DoneReason> {
        let mut lots = t.order.open_lots.min(visible);
        let per_lot = mk
            .notional(price, 1)
            .expect("a resting price's notional fits");
        let mut budget_bound = false;
        let mut funds_bound = false;
        let account = t.order.account;
        match t.order.side {
            Side::Buy => {
                if let Some(q) = t.quote_left {
                    let l = affordable_lots(q, per_lot, t.order.taker_ppm);
                    budget_bound |= l < lots;
                    lots = lots.min(l);
                }
                if t.market_order {
                    let spendable = if t.from_held {
                        t.order.held_minor
                    } else {
                        self.ledger.available(account, mk.quote)
                    };
                    let l = affordable_lots(spendable, per_lot, t.order.taker_ppm);
                    funds_bound |= l < lots;
                    lots = lots.min(l);
                }
            }
            Side::Sell => {
                if let Some(q) = t.quote_left {
                    let l = q / per_lot;
                    budget_bound |= l < lots;
                    lots = lots.min(l);
                }
                if t.market_order {
                    let spendable = if t.from_held {
                        t.order.held_minor
                    } else {
                        self.ledger.available(account, mk.base)
                    };
                    let l = spendable / mk.lot_minor;
                    funds_bound |= l < lots;
                    lots = lots.min(l);
                }
            }
        }
        if lots > 0 {
            return Ok(lots);
        }
        Err(if funds_bound && !budget_bound {
            DoneReason::InsufficientFunds
        } else if t.order.filled_lots > 0 {
            DoneReason::Filled
        } else {
            DoneReason::Unfilled
        })
    }

    /// One fill between the maker at `slot` and the taker, settled at once.
    fn trade(
        &mut self,
        m: u32,
        slot: Slot,
        t: &mut Taker,
        price: u64,
        lots: u64,
        out: &mut Vec<Event>,
    ) {
        let trade_id = self.next_trade;
        self.next_trade += 1;
        let mk = &self.markets[m as usize];
        let notional = mk.notional(price, lots).expect("a fill's notional fits");
        let base = lots * mk.lot_minor;
        let (base_asset, quote_asset) = (mk.base, mk.quote);
        let maker = mk.book.get(slot);
        let (maker_id, maker_account, maker_parent) = (maker.id, maker.account, maker.parent);
        let maker_fee = fee(notional, maker.maker_ppm);
        let taker_fee = fee(notional, t.order.taker_ppm);
        out.push(Event::Trade {
            trade: TradeId(trade_id),
            market: mk.spec.symbol,
            price: mk.price_dec(price),
            quantity: mk.qty_dec(lots),
            quote_quantity: mk.quote_dec(notional),
            taker_side: t.order.side,
            maker_order: OrderId(maker_id),
            taker_order: OrderId(t.order.id),
            maker_account,
            taker_account: t.order.account,
            maker_fee: mk.quote_dec(maker_fee),
            taker_fee: mk.quote_dec(taker_fee),
        });
        let taker_src = if t.from_held {
            Party::Held(t.order.account)
        } else {
            Party::Available(t.order.account)
        };
        let maker_src = Party::Held(maker_account);
        let (buyer, seller, buyer_src, seller_src, buyer_fee, seller_fee) = match t.order.side {
            Side::Buy => (
                t.order.account,
                maker_account,
                taker_src,
                maker_src,
                taker_fee,
                maker_fee,
            ),
            Side::Sell => (
                maker_account,
                t.order.account,
                maker_src,
                taker_src,
                maker_fee,
                taker_fee,
            ),
        };
        let cause = Cause::Trade(TradeId(trade_id));
        let a = &self.assets;
        let l = &mut self.ledger;
        l.post(
            a,
            base_asset,
            seller_src,
            Party::Available(buyer),
            base,
            cause,
            out,
        );
        l.post(
            a,
            quote_asset,
            buyer_src,
            Party::Available(seller),
            notional,
            cause,
            out,
        );
        l.post(
            a,
            quote_asset,
            buyer_src,
            Party::Fees,
            buyer_fee,
            cause,
            out,
        );
        l.post(
            a,
            quote_asset,
            Party::Available(seller),
            Party::Fees,
            seller_fee,
            cause,
            out,
        );

        // The maker: what is left of its order and of its hold.
        let mk = &mut self.markets[m as usize];
        let maker = mk.book.get_mut(slot);
        maker.open_lots = sub(maker.open_lots, lots, "maker open lots");
        maker.visible_lots = sub(maker.visible_lots, lots, "maker visible lots");
        maker.filled_lots = add(maker.filled_lots, lots, "maker filled lots");
        let maker_release = match maker.side {
            Side::Buy => {
                let keep = mk_buy_hold(&self.markets[m as usize], slot);
                let maker = self.markets[m as usize].book.get_mut(slot);
                let spent = add(notional, maker_fee, "maker buy cost");
                let release = sub(
                    sub(maker.held_minor, spent, "maker buy hold"),
                    keep,
                    "maker buy hold kept",
                );
                maker.held_minor = keep;
                release
            }
            Side::Sell => {
                maker.held_minor = sub(maker.held_minor, base, "maker sell hold");
                0
            }
        };
        self.ledger.release(
            &self.assets,
            quote_asset,
            maker_account,
            maker_release,
            Cause::Order(OrderId(maker_id)),
            out,
        );

        // The taker.
        t.order.open_lots = sub(t.order.open_lots, lots, "taker open lots");
        t.order.filled_lots = add(t.order.filled_lots, lots, "taker filled lots");
        let mk = &self.markets[m as usize];
        match t.order.side {
            Side::Buy => {
                let cost = add(notional, taker_fee, "taker buy cost");
                if let Some(q) = t.quote_left.as_mut() {
                    *q = sub(*q, cost, "taker quote budget");
                }
                if !t.market_order {
                    let keep = mk
                        .buy_hold(t.order.price_ticks, t.order.open_lots, max_ppm(&t.order))
                        .expect("a smaller hold fits");
                    let release = sub(
                        sub(t.order.held_minor, cost, "taker buy hold"),
                        keep,
                        "taker buy hold kept",
                    );
                    t.order.held_minor = keep;
                    let account = t.order.account;
                    let cause = Cause::Order(OrderId(t.order.id));
                    self.ledger
                        .release(&self.assets, quote_asset, account, release, cause, out);
                } else if t.from_held {
                    t.order.held_minor = sub(t.order.held_minor, cost, "taker market hold");
                }
            }
            Side::Sell => {
                if let Some(q) = t.quote_left.as_mut() {
                    *q = sub(*q, notional, "taker quote budget");
                }
                if t.from_held {
                    t.order.held_minor = sub(t.order.held_minor, base, "taker sell hold");
                }
            }
        }

        let mk = &mut self.markets[m as usize];
        mk.last_ticks = Some(price);
        if !mk.stops.is_empty()
            && !self
                .pending
                .iter()
                .any(|p| matches!(p, Pending::Stops(x) if *x == m))
        {
            self.pending.push(Pending::Stops(m));
        }
        let (buyer_flow, seller_flow) = (
            add(notional, buyer_fee, "buyer flow"),
            sub(notional, seller_fee, "seller flow"),
        );
        let (maker_flow, taker_flow) = match t.order.side {
            Side::Buy => (seller_flow, buyer_flow),
            Side::Sell => (buyer_flow, seller_flow),
        };
        if maker_parent != 0 {
            self.bracket_fill(m, maker_parent, maker_id, lots, maker_flow, out);
        }
        if t.order.parent != 0 {
            self.bracket_fill(m, t.order.parent, t.order.id, lots, taker_flow, out);
        }

        let maker = self.markets[m as usize].book.get(slot);
        if maker.open_lots == 0 {
            self.remove_order(m, slot, DoneReason::Filled, out);
        } else if maker.visible_lots == 0 {
            // Iceberg: show the next slice at the back of the level.
            let mk = &mut self.markets[m as usize];
            let maker = mk.book.get_mut(slot);
            maker.visible_lots = maker.display_lots.min(maker.open_lots);
            let hidden = sub(maker.open_lots, maker.visible_lots, "iceberg hidden lots");
            let visible = maker.visible_lots;
            mk.book.unlink(slot);
            mk.book.push_back(slot);
            out.push(Event::OrderRefilled {
                order: OrderId(maker_id),
                market: mk.spec.symbol,
                visible: mk.qty_dec(visible),
                hidden: mk.qty_dec(hidden),
            });
        }
    }

    /// Bracket bookkeeping for one fill of an entry or an exit.
    fn bracket_fill(
        &mut self,
        m: u32,
        parent: u64,
        order: u64,
        lots: u64,
        quote_flow: u64,
        out: &mut Vec<Event>,
    ) {
        let Some(Parent::Bracket(b)) = self.parents.get_mut(&parent) else {
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
        let mk = &self.markets[m as usize];
        out.push(Event::BracketPnl {
            entry: OrderId(parent),
            exit: OrderId(order),
            closed_quantity: mk.qty_dec(b.exit_filled_lots),
            realized_pnl: Dec::from_minor(pnl, u32::from(mk.quote_scale)),
        });
    }

    /// Lots the opposite side could give a taker at `limit` before self-trade
    /// prevention would stop it (for FOK).
    pub(crate) fn fillable_lots(&self, m: u32, taker: &Order, want: u64) -> u64 {
        let book = &self.markets[m as usize].book;
        let mut total = 0u64;
        for (price, level) in book.levels(taker.side.opposite()) {
            if !crosses(taker.side, price, taker.price_ticks) {
                break;
            }
            for slot in book.queue(level) {
                let o = book.get(slot);
                if o.account == taker.account {
                    match taker.stp {
                        StpMode::CancelMaker => continue,
                        StpMode::CancelTaker | StpMode::CancelBoth => return total,
                    }
                }
                total = total.saturating_add(o.open_lots);
                if total >= want {
                    return total;
                }
            }
        }
        total
    }

    /// Would a limit order at `ticks` trade on arrival?
    pub(crate) fn would_cross(&self, m: u32, side: Side, ticks: u64) -> bool {
        self.markets[m as usize]
            .book
            .best(side.opposite())
            .is_some_and(|(p, _)| crosses(side, p, ticks))
    }
}

/// The hold a resting buy at `slot` needs for what is still open.
fn mk_buy_hold(mk: &Market, slot: Slot) -> u64 {
    let o = mk.book.get(slot);
    mk.buy_hold(o.price_ticks, o.open_lots, max_ppm(o))
        .expect("a smaller hold fits")
}

pub(crate) fn order_max_ppm(o: &Order) -> u32 {
    max_ppm(o)
}

#[cfg(test)]
mod tests {
    use super::affordable_lots;

    #[test]
    fn affordable_lots_is_the_largest_that_fits() {
        // 10 per lot, 1% fee: 5 lots cost 50 + 0 (fee 0.5 rounds down) = 50.
        assert_eq!(affordable_lots(50, 10, 10_000), 5);
        assert_eq!(affordable_lots(49, 10, 10_000), 4);
        // 100 per lot, 1%: one lot costs 101.
        assert_eq!(affordable_lots(100, 100, 10_000), 0);
        assert_eq!(affordable_lots(101, 100, 10_000), 1);
    }
}
