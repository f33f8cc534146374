//! Matching: one taker against the opposite side, best price first, oldest first
//! within a price, with self-trade prevention. Each fill settles at once
//! (`settlement`), so funds are never promised twice; what to do with the taker's
//! remainder is the caller's choice.

use tape_schemas::*;

use crate::book::{Order, Slot};
use crate::exchange::{Core, Pending};
use crate::fees::{affordable_lots, Fees};
use crate::market::Market;
use crate::perp_fills::PerpFill;
use crate::settlement::Fill;

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

pub(crate) fn crosses(side: Side, book_price: u64, limit: u64) -> bool {
    match side {
        Side::Buy => book_price <= limit,
        Side::Sell => book_price >= limit,
    }
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
            let mk = &self.markets[m];
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
            let lots = if self.perps.contains(m) {
                match self.perp_fill_lots(m, t, price, slot) {
                    PerpFill::Take(lots) => lots,
                    PerpFill::DropMaker => {
                        self.remove_order(m, slot, DoneReason::ReduceOnly, out);
                        continue;
                    }
                    PerpFill::Stop(reason) => return Some(reason),
                }
            } else {
                match self.fill_lots(mk, t, price, maker.visible_lots) {
                    Ok(lots) => lots,
                    Err(reason) => return Some(reason),
                }
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
        // What the quote budget and (market orders) the funds allow, in lots.
        let (side, ppm) = (t.order.side, t.order.taker_ppm);
        let spendable = t.market_order.then(|| match (t.from_held, side) {
            (true, _) => t.order.held_minor,
            (false, Side::Buy) => self.spendable(t.order.account, mk.quote),
            (false, Side::Sell) => self.spendable(t.order.account, mk.base),
        });
        let (budget_lots, funds_lots) = match side {
            Side::Buy => (
                t.quote_left.map(|q| affordable_lots(q, per_lot, ppm)),
                spendable.map(|s| affordable_lots(s, per_lot, ppm)),
            ),
            Side::Sell => (
                t.quote_left.map(|q| q / per_lot),
                spendable.map(|s| s / mk.lot_minor),
            ),
        };
        let budget_bound = budget_lots.is_some_and(|l| l < lots);
        lots = lots.min(budget_lots.unwrap_or(u64::MAX));
        let funds_bound = funds_lots.is_some_and(|l| l < lots);
        lots = lots.min(funds_lots.unwrap_or(u64::MAX));
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

    /// One fill between the maker at `slot` and the taker, settled at once: the
    /// trade, its postings, both holds, then what the fill sets off.
    fn trade(
        &mut self,
        m: u32,
        slot: Slot,
        t: &mut Taker,
        price: u64,
        lots: u64,
        out: &mut Vec<Event>,
    ) {
        let maker = self.markets[m].book.get(slot);
        assert!(
            lots > 0 && lots <= maker.visible_lots && lots <= t.order.open_lots,
            "a fill of {lots} lots fits maker {} and taker {}",
            maker.id,
            t.order.id
        );
        assert!(
            maker.side != t.order.side && maker.price_ticks == price,
            "a fill is against the opposite side at the maker's price"
        );
        assert!(
            t.market_order || crosses(t.order.side, price, t.order.price_ticks),
            "a limit taker fills only at a price that crosses its own"
        );
        let (maker_open, taker_open) = (maker.open_lots, t.order.open_lots);
        let fill = self.record_trade(m, slot, t, price, lots, out);
        if self.perps.contains(m) {
            self.settle_perp_fill(m, slot, &fill, t, out);
        } else {
            self.post_fill(&fill, t, out);
            self.settle_maker(m, slot, &fill, out);
            self.settle_taker(m, &fill, t, out);
        }
        assert_eq!(
            self.markets[m].book.get(slot).open_lots + lots,
            maker_open,
            "the maker's open lots fell by the fill"
        );
        assert_eq!(
            t.order.open_lots + lots,
            taker_open,
            "the taker's open lots fell by the fill"
        );

        let mk = &mut self.markets[m];
        mk.traded_at(price);
        if mk.has_stops()
            && !self
                .pending
                .iter()
                .any(|p| matches!(p, Pending::Stops(x) if *x == m))
        {
            self.pending.push(Pending::Stops(m));
        }
        let (maker_flow, taker_flow) = fill.quote_flows(t.order.side);
        if fill.maker_parent != 0 {
            self.bracket_fill(m, fill.maker_parent, fill.maker_id, lots, maker_flow, out);
        }
        if t.order.parent != 0 {
            self.bracket_fill(m, t.order.parent, t.order.id, lots, taker_flow, out);
        }

        if self.markets[m].book.get(slot).open_lots == 0 {
            self.remove_order(m, slot, DoneReason::Filled, out);
        } else {
            self.refill_if_shown_out(m, slot, out);
        }
    }

    /// Announces a fill as a `Trade` event and returns its amounts.
    fn record_trade(
        &mut self,
        m: u32,
        slot: Slot,
        t: &Taker,
        price: u64,
        lots: u64,
        out: &mut Vec<Event>,
    ) -> Fill {
        let trade_id = self.markets.take_trade_id();
        let mk = &self.markets[m];
        let notional = mk.notional(price, lots).expect("a fill's notional fits");
        let maker = mk.book.get(slot);
        let (maker_fee, taker_fee) = Fees::of_fill(notional, maker.maker_ppm, t.order.taker_ppm);
        let fill = Fill {
            trade: trade_id,
            lots,
            notional,
            base: lots * mk.lot_minor,
            base_asset: mk.base,
            quote_asset: mk.quote,
            maker_id: maker.id,
            maker_account: maker.account,
            maker_parent: maker.parent,
            maker_fee,
            taker_fee,
        };
        out.push(Event::Trade {
            trade: TradeId(trade_id),
            market: mk.spec.symbol,
            price: mk.price_dec(price),
            quantity: mk.qty_dec(lots),
            quote_quantity: mk.quote_dec(notional),
            taker_side: t.order.side,
            maker_order: OrderId(fill.maker_id),
            taker_order: OrderId(t.order.id),
            maker_account: fill.maker_account,
            taker_account: t.order.account,
            maker_fee: mk.quote_dec(fill.maker_fee),
            taker_fee: mk.quote_dec(fill.taker_fee),
        });
        fill
    }

    /// Lots the opposite side could give a taker at `limit` before self-trade
    /// prevention would stop it (for FOK).
    pub(crate) fn fillable_lots(&self, m: u32, taker: &Order, want: u64) -> u64 {
        let book = &self.markets[m].book;
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
        self.markets[m]
            .book
            .best(side.opposite())
            .is_some_and(|(p, _)| crosses(side, p, ticks))
    }
}
