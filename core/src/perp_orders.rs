//! Stop orders on perpetuals, plain or reduce-only (stop-losses and
//! take-profits). A stop waits in its market like a spot stop and triggers on the
//! last trade price, but holds no margin while it waits (as Binance's conditional
//! orders): at its trigger it meets the checks of a new order of its kind — the
//! stale index, reduce-only, the exposure caps and the margin — and an order that
//! fails them ends with the reason, without trading.

use tape_schemas::*;

use crate::book::{Order, OrderKind, Slot, StopSize};
use crate::exchange::{Core, Outcome};
use crate::fees::max_ppm;
use crate::matching::Taker;
use crate::orders::{Draft, Placing};

/// How a triggered stop that fails a check ends.
fn ended_by(reason: RejectReason) -> DoneReason {
    match reason {
        RejectReason::PositionNotionalCap
        | RejectReason::AccountNotionalCap
        | RejectReason::OpenInterestCap => DoneReason::ExposureCap,
        RejectReason::NoPosition | RejectReason::WouldIncreasePosition => DoneReason::ReduceOnly,
        RejectReason::MarketReduceOnly | RejectReason::NoIndexPrice => DoneReason::IndexStale,
        _ => DoneReason::InsufficientMargin,
    }
}

impl Core {
    /// `PlaceOrder` or `PlaceReduceOnly` of a stop-market (sized in the base) or a
    /// stop-limit on a perpetual. A reduce-only stop needs a position it reduces
    /// now; it may be larger than the position (it fills no further than the
    /// position at its trigger).
    pub(crate) fn place_perp_stop(
        &mut self,
        p: &Placing,
        reduce_only: bool,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let (m, n) = (p.m, p.n);
        let (trigger, draft) = match n.order_type {
            OrderType::StopMarket {
                trigger_price,
                size: size @ MarketSize::Base(_),
            } => {
                let (lots, _) = self.market_size(m, size)?;
                let draft = Draft {
                    lots,
                    stop_size: Some(StopSize::BaseLots(lots)),
                    ..p.draft(OrderKind::StopMarket)
                };
                (trigger_price, draft)
            }
            OrderType::StopLimit {
                trigger_price,
                price,
                quantity,
                time_in_force,
            } => {
                let (ticks, lots) = self.check_limit(m, price, quantity)?;
                self.check_tif(time_in_force)?;
                let draft = Draft {
                    price_ticks: ticks,
                    lots,
                    tif: time_in_force,
                    ..p.draft(OrderKind::StopLimit)
                };
                (trigger_price, draft)
            }
            // A stop-market with a quote budget: perpetuals are sized in contracts.
            _ => return Err(RejectReason::UnsupportedOrderType),
        };
        let trigger_ticks = self.markets[m].price_ticks(trigger)?;
        self.check_new_orders(n.account, 1, n.client_order_id.as_ref())?;
        if reduce_only {
            let pos = self.positions.get(n.account, m).filter(|p| p.lots != 0);
            if pos.ok_or(RejectReason::NoPosition)?.reducible(n.side) == 0 {
                return Err(RejectReason::WouldIncreasePosition);
            }
        }
        let draft = Draft {
            trigger_ticks,
            reduce_only,
            ..draft
        };
        let o = self.open(p, draft, out);
        let id = o.id;
        self.store_stop(m, o);
        Ok(id)
    }

    /// A stop on perpetual `m` whose trigger was reached (already out of the
    /// book): checked as a new order now, then run as a limit or market order.
    pub(crate) fn run_perp_stop(&mut self, m: u32, mut o: Order, out: &mut Vec<Event>) {
        let stop_market = o.kind == OrderKind::StopMarket;
        let checked = self.check_triggered(m, &o);
        let leverage = match checked {
            Ok(leverage) => leverage,
            Err(reason) => return self.finish(m, o, ended_by(reason), out),
        };
        if !o.reduce_only {
            self.lower_leverage(m, o.account, leverage, out);
        }
        o.kind = OrderKind::Limit;
        if stop_market {
            let t = Taker {
                order: o,
                market_order: true,
                from_held: false,
                quote_left: None,
            };
            self.run_market(m, t, out);
        } else {
            self.run_limit(m, o, out);
        }
    }

    /// The checks a triggered stop meets: those of a new order of its kind.
    fn check_triggered(&self, m: u32, o: &Order) -> Result<u32, RejectReason> {
        let perp = self.perps.get(m).ok_or(RejectReason::NotAPerpetual)?;
        let mark = perp.mark_ticks().ok_or(RejectReason::NoIndexPrice)?;
        if perp.is_stale() && !o.reduce_only {
            return Err(RejectReason::MarketReduceOnly);
        }
        let pos = self.positions.get(o.account, m);
        if o.reduce_only {
            let pos = pos
                .filter(|p| p.lots != 0)
                .ok_or(RejectReason::NoPosition)?;
            if pos.reducible(o.side) == 0 {
                return Err(RejectReason::WouldIncreasePosition);
            }
            return Ok(pos.leverage);
        }
        if o.kind == OrderKind::StopMarket {
            self.check_not_short(o.account, m)?;
            return Ok(self.effective_leverage(o.account, m));
        }
        let order = (o.side, o.price_ticks, o.open_lots, max_ppm(o));
        self.check_perp_order(m, o.account, order, mark, false)
    }
}

/// Amending a resting order on a perpetual.
impl Core {
    /// `AmendOrder` on a perpetual: the new terms are checked as a new order
    /// would be (with the order's own rest out of its position's sums): a stale
    /// index allows only reduce-only orders, a reduce-only order may not outgrow
    /// the position, and any other meets the caps and the margin at its new price
    /// and size. Shrinking at the same price keeps its place; anything else
    /// requeues it, and a new price that crosses runs through the matcher.
    pub(crate) fn amend_perp(
        &mut self,
        account: AccountId,
        (m, slot): (u32, Slot),
        price: Option<Dec>,
        quantity: Option<Dec>,
        out: &mut Vec<Event>,
    ) -> Outcome {
        self.check_can_trade(account, m)?;
        self.keep_unrealized(account, self.markets[m].quote);
        let perp = self.perps.get(m).ok_or(RejectReason::NotAPerpetual)?;
        let mark = perp.mark_ticks().ok_or(RejectReason::NoIndexPrice)?;
        let stale = perp.is_stale();
        let o = self.markets[m].book.get(slot).clone();
        let (ticks, lots) = self.amend_terms(m, &o, price, quantity)?;
        if stale && !o.reduce_only {
            return Err(RejectReason::MarketReduceOnly);
        }
        self.unrest(m, &o);
        let checked = match o.reduce_only {
            true => {
                let pos = self.positions.get(account, m).filter(|p| p.lots != 0);
                match pos.map_or(0, |p| p.reducible(o.side)) {
                    0 => Err(RejectReason::NoPosition),
                    r if lots > r => Err(RejectReason::WouldIncreasePosition),
                    _ => Ok(()),
                }
            }
            false => {
                let order = (o.side, ticks, lots, max_ppm(&o));
                self.check_perp_order(m, account, order, mark, false)
                    .map(|_| ())
            }
        };
        if let Err(reason) = checked {
            self.rerest(m, &o, o.open_lots, o.price_ticks);
            return Err(reason);
        }
        let keeps_priority = ticks == o.price_ticks && lots < o.open_lots;
        let crosses = ticks != o.price_ticks && self.would_cross(m, o.side, ticks);
        if !keeps_priority {
            self.markets[m].book.unlink(slot);
        }
        self.amended(m, slot, ticks, lots, keeps_priority, out);
        let cause = Cause::Order(OrderId(o.id));
        let asset = self.markets[m].quote;
        if crosses {
            let moved = self.lift(m, slot);
            self.top_up(account, asset, cause, out);
            self.run_limit(m, moved, out);
            // Its rest left the sums above: an order that ends without resting
            // or trading leaves no empty entry behind.
            self.positions.forget_if_empty(account, m);
            return Ok(o.id);
        }
        self.rerest(m, &o, lots, ticks);
        self.top_up(account, asset, cause, out);
        if !keeps_priority {
            let mk = &mut self.markets[m];
            mk.book.push_back(slot);
            let moved = mk.book.get(slot);
            out.push(Event::OrderRested {
                order: OrderId(moved.id),
                market: mk.spec.symbol,
                side: moved.side,
                price: mk.price_dec(moved.price_ticks),
                visible: mk.qty_dec(moved.visible_lots),
                hidden: mk.qty_dec(moved.open_lots - moved.visible_lots),
            });
        }
        Ok(o.id)
    }

    /// Takes a resting order's rest out of its position's sums. A resting
    /// perpetual order always has its position entry (`margin_to_rest` made it,
    /// and `forget_if_empty` keeps an entry while anything rests), so no command
    /// reaches the `expect`s here and in `rerest`.
    fn unrest(&mut self, m: u32, o: &Order) {
        let notional = u128::from(o.open_lots) * self.per_lot(m, o.price_ticks);
        let pos = self.positions.get_mut(o.account, m);
        let pos = pos.expect("a resting perpetual order has its position");
        pos.resting_mut(o.side)
            .sub(o.open_lots, notional, max_ppm(o));
        self.refresh_required(o.account, m);
    }

    /// Puts a resting order's rest (`lots` at `ticks`) into its position's sums.
    fn rerest(&mut self, m: u32, o: &Order, lots: u64, ticks: u64) {
        let notional = u128::from(lots) * self.per_lot(m, ticks);
        let pos = self.positions.get_mut(o.account, m);
        let pos = pos.expect("a resting perpetual order has its position");
        pos.resting_mut(o.side).add(lots, notional, max_ppm(o));
        self.refresh_required(o.account, m);
    }

    /// The order in the book takes its new terms, and says so.
    fn amended(
        &mut self,
        m: u32,
        slot: Slot,
        ticks: u64,
        lots: u64,
        keeps_priority: bool,
        out: &mut Vec<Event>,
    ) {
        let mk = &mut self.markets[m];
        let o = mk.book.get_mut(slot);
        o.price_ticks = ticks;
        o.open_lots = lots;
        o.visible_lots = match keeps_priority {
            true => o.visible_lots.min(lots),
            false => crate::orders::shown(o, lots),
        };
        let (id, side, visible) = (o.id, o.side, o.visible_lots);
        out.push(Event::OrderAmended {
            order: OrderId(id),
            market: mk.spec.symbol,
            side,
            price: mk.price_dec(ticks),
            visible: mk.qty_dec(visible),
            hidden: mk.qty_dec(lots - visible),
            // A perpetual order holds nothing of its own: its margin is its
            // position's.
            held: Dec::ZERO,
            requeued: !keeps_priority,
        });
    }
}
