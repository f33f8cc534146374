//! Sliced orders: one parent, up to `slices_max` limit children evenly spaced over a price range.

use tape_schemas::*;

use super::*;
use crate::fees::hold_ppm;

impl Core {
    /// `PlaceSliced`, or `PlaceSlicedReduceOnly` (perpetuals only).
    pub(crate) fn place_sliced(
        &mut self,
        s: &NewSliced,
        reduce_only: bool,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let m = self.markets.id(&s.market)?;
        self.check_can_trade(s.account, m)?;
        let fees = self.fees_for(s.account, m);
        let perp = self.perps.contains(m);
        if reduce_only && !perp {
            return Err(RejectReason::NotAPerpetual);
        }
        let children = self.slice_terms(m, s)?;
        self.check_new_orders(s.account, children.len(), s.client_order_id.as_ref())?;
        self.check_new_parent()?;
        let holds = if perp {
            self.keep_unrealized(s.account, self.markets[m].quote);
            let order = (s.side, children.as_slice(), hold_ppm(fees));
            let leverage = self.check_perp_entry(m, s.account, order, reduce_only)?;
            self.lower_leverage(m, s.account, leverage, out);
            // A perpetual order holds nothing of its own: its margin is its
            // position's.
            vec![0; children.len()]
        } else {
            self.slice_holds(m, s, &children, hold_ppm(fees))?
        };
        let count = children.len() as u64;
        let parent = self.orders.take_id();
        let first_child = self.orders.next_id;
        let ids: Vec<OrderId> = (first_child..first_child + count).map(OrderId).collect();
        self.orders.parents.insert(
            parent,
            Parent::Sliced {
                account: s.account,
                children: ids.iter().map(|i| i.0).collect(),
                client_order_id: s.client_order_id,
            },
        );
        if let Some(cid) = s.client_order_id {
            self.orders.client_ids.insert((s.account, cid), parent);
        }
        out.push(Event::SlicedPlaced {
            parent: OrderId(parent),
            market: s.market,
            children: ids,
        });
        for ((ticks, lots), held) in children.into_iter().zip(holds) {
            let mk = &self.markets[m];
            let order_type = OrderType::Limit {
                price: mk.price_dec(ticks),
                quantity: mk.qty_dec(lots),
                time_in_force: TimeInForce::Gtc,
                post_only: s.post_only,
                display_quantity: None,
            };
            let (account, side, post_only) = (s.account, s.side, s.post_only);
            let draft = Draft {
                reduce_only,
                ..Draft::child(
                    account, side, ticks, lots, held, fees, post_only, parent, None,
                )
            };
            let o = self.new_order(draft);
            self.accept(m, &o, order_type, out);
            self.run_limit(m, o, out);
        }
        Ok(parent)
    }

    /// The children of a sliced order as (ticks, lots), every one checked on its
    /// own: size, notional, band and post-only.
    fn slice_terms(&self, m: u32, s: &NewSliced) -> Result<Vec<(u64, u64)>, RejectReason> {
        if s.count == 0 || s.count > self.cfg.slices_max {
            return Err(RejectReason::InvalidSlice);
        }
        let mk = &self.markets[m];
        let lo = mk.price_ticks(s.lower_price)?;
        let hi = mk.price_ticks(s.upper_price)?;
        let total = mk.quantity_lots(s.total_quantity)?;
        let count = u64::from(s.count);
        if lo > hi || total < count || (count > 1 && lo == hi) {
            return Err(RejectReason::InvalidSlice);
        }
        let mut children = Vec::with_capacity(s.count as usize);
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
            children.push((ticks, lots));
        }
        Ok(children)
    }

    /// On a spot market, each child's hold, and the account's funds for all of
    /// them.
    fn slice_holds(
        &self,
        m: u32,
        s: &NewSliced,
        children: &[(u64, u64)],
        hold_ppm: u32,
    ) -> Result<Vec<u64>, RejectReason> {
        let mut holds = Vec::with_capacity(children.len());
        let mut hold_total = 0u64;
        for &(ticks, lots) in children {
            let (_, held) = self.limit_hold(m, s.side, ticks, lots, hold_ppm)?;
            hold_total = hold_total
                .checked_add(held)
                .ok_or(RejectReason::OutOfRange)?;
            holds.push(held);
        }
        self.check_funds(s.account, self.hold_asset(m, s.side), hold_total)?;
        Ok(holds)
    }

    /// A parent's child ended. A bracket's entry that ended with some fill
    /// places its exit, unless the bracket was cancelled or the account is
    /// being liquidated (which ends its orders to reduce the position itself).
    pub(crate) fn child_done(&mut self, parent: u64, child: u64, reason: DoneReason) {
        match self.orders.parents.get_mut(&parent) {
            Some(Parent::Sliced {
                account,
                children,
                client_order_id,
            }) => {
                children.remove(&child);
                if children.is_empty() {
                    if let Some(cid) = client_order_id {
                        self.orders.client_ids.remove(&(*account, *cid));
                    }
                    self.orders.parents.remove(&parent);
                }
            }
            Some(Parent::Bracket(b)) => {
                if child == parent {
                    b.entry_open = false;
                    let ended = b.cancelled || reason == DoneReason::Liquidation;
                    if ended || b.entry_filled_lots == 0 {
                        self.orders.parents.remove(&parent);
                    } else {
                        self.pending.push(Pending::PlaceExit(parent));
                    }
                } else if b.exit == Some(child) {
                    self.orders.parents.remove(&parent);
                }
            }
            None => {}
        }
    }
}
