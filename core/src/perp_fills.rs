//! Matching and settlement on perpetuals: how much a taker may take from each
//! maker (reduce-only orders never flip a position; the part that grows one must
//! fit the caps and the margin), and each fill settled as positions: realized
//! profit and loss through the market's clearing party, fees to the fee account,
//! the margin held again.

use tape_schemas::*;

use crate::book::{Order, OrderKind, Slot};
use crate::exchange::Core;
use crate::fees::max_ppm;
use crate::matching::Taker;
use crate::positions::{after_fill, Pos};
use crate::settlement::Fill;

/// What a perpetual taker does with the maker in front of it.
pub(crate) enum PerpFill {
    Take(u64),
    /// A reduce-only maker whose position is gone: it leaves the book.
    DropMaker,
    Stop(DoneReason),
}

impl Core {
    /// How many lots a perpetual taker takes from the maker at `slot` and `price`:
    /// reduce-only orders never flip their position; the part that grows the
    /// taker's position must keep its market under the open-interest cap, its
    /// position under the last bracket's cap and its account's margin whole.
    pub(crate) fn perp_fill_lots(&self, m: u32, t: &Taker, price: u64, slot: Slot) -> PerpFill {
        let maker = self.markets[m].book.get(slot);
        let mut lots = t.order.open_lots.min(maker.visible_lots);
        let per_lot = u64::try_from(self.per_lot(m, price)).expect("a resting price's lot fits");
        if let Some(q) = t.quote_left {
            let budget = match t.order.side {
                Side::Buy => crate::fees::affordable_lots(q, per_lot, t.order.taker_ppm),
                Side::Sell => q / per_lot,
            };
            lots = lots.min(budget);
        }
        let reducing = |o: &Order| {
            self.positions
                .get(o.account, m)
                .map_or(0, |p| p.reducible(o.side))
        };
        if maker.reduce_only {
            match reducing(maker) {
                0 => return PerpFill::DropMaker,
                r => lots = lots.min(r),
            }
        }
        let free = reducing(&t.order);
        if t.order.reduce_only {
            lots = lots.min(free);
        }
        if lots == 0 {
            // The quote budget is spent, or a reduce-only order's position is.
            let budget_spent = t.quote_left.is_some() && !t.order.reduce_only;
            return PerpFill::Stop(if budget_spent {
                DoneReason::Filled
            } else {
                DoneReason::ReduceOnly
            });
        }
        if lots <= free {
            return PerpFill::Take(lots);
        }
        let check = |l| self.perp_taker_fits(m, t, maker, per_lot, l);
        if let Err(reason) = check(lots) {
            // Each lot beyond `free` grows the position: the largest that fits.
            let (mut lo, mut hi) = (free, lots);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if check(mid).is_ok() {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            if lo == 0 {
                return PerpFill::Stop(reason);
            }
            return PerpFill::Take(lo);
        }
        PerpFill::Take(lots)
    }

    /// Whether the taker may take `lots` at `per_lot` from `maker`: caps, then
    /// its margin after the fill against its spendable collateral.
    fn perp_taker_fits(
        &self,
        m: u32,
        t: &Taker,
        maker: &Order,
        per_lot: u64,
        lots: u64,
    ) -> Result<(), DoneReason> {
        let perp = self.perps.get(m).expect("a perpetual");
        let account = t.order.account;
        let side = t.order.side;
        let mut pos = self
            .positions
            .get(account, m)
            .cloned()
            .unwrap_or_else(|| Pos::new(self.effective_leverage(account, m)));
        let before = pos.clone();
        let f = after_fill(pos.lots, pos.cost, side, lots, per_lot);
        pos.lots = i64::try_from(f.lots).map_err(|_| DoneReason::ExposureCap)?;
        pos.cost = u64::try_from(f.cost).map_err(|_| DoneReason::ExposureCap)?;
        let exposure = pos.exposure();
        if exposure > u128::from(perp.position_cap())
            || !self.account_notional_fits(account, m, exposure)
        {
            return Err(DoneReason::ExposureCap);
        }
        let maker_pos = self.positions.get(maker.account, m);
        let maker_lots = maker_pos.map_or(0, |p| p.lots);
        let mf = after_fill(maker_lots, 0, maker.side, lots, 0);
        let longs = |l: i128| l.max(0);
        let delta = longs(f.lots) - longs(i128::from(before.lots)) + longs(mf.lots)
            - longs(i128::from(maker_lots));
        if delta > 0 && i128::from(perp.open_interest()) + delta > i128::from(perp.oi_cap_lots()) {
            return Err(DoneReason::ExposureCap);
        }
        let required = pos.requirement(pos.leverage.min(perp.max_leverage_at(exposure)));
        let asset = self.markets[m].quote;
        let margin = self.positions.margin(account, asset);
        let total = margin.required - before.required + required;
        let notional = u128::from(lots) * u128::from(per_lot);
        // At most the maker's resting notional, which fit when it was placed.
        let notional = u64::try_from(notional).expect("a resting order's notional fits");
        let fee = u128::from(crate::fees::fee(notional, t.order.taker_ppm));
        let unrealized = self.unrealized(account, asset) - self.unrealized_of(m, &before)
            + self.unrealized_of(m, &pos);
        let wallet = i128::from(self.ledger.available(account, asset))
            + i128::from(margin.held)
            + f.realized
            - fee as i128;
        if wallet + unrealized.min(0) < total as i128 {
            return Err(DoneReason::InsufficientMargin);
        }
        Ok(())
    }

    /// Settles one perpetual fill: both orders shrink, then each side's position,
    /// profit or loss, fee and margin.
    pub(crate) fn settle_perp_fill(
        &mut self,
        m: u32,
        slot: Slot,
        f: &Fill,
        t: &mut Taker,
        out: &mut Vec<Event>,
    ) {
        let maker = self.markets[m].book.get_mut(slot);
        maker.open_lots -= f.lots;
        maker.visible_lots -= f.lots;
        maker.filled_lots += f.lots;
        let (maker_side, ppm) = (maker.side, max_ppm(maker));
        let pos = self.positions.get_mut(f.maker_account, m);
        let pos = pos.expect("a resting perpetual order has its position");
        pos.resting_mut(maker_side)
            .sub(f.lots, u128::from(f.notional), ppm);
        t.order.open_lots -= f.lots;
        t.order.filled_lots += f.lots;
        if let Some(q) = t.quote_left.as_mut() {
            *q -= match t.order.side {
                Side::Buy => f.notional + f.taker_fee,
                Side::Sell => f.notional,
            };
        }
        let per_lot = f.notional / f.lots;
        let (maker, taker) = (
            (f.maker_account, maker_side, f.maker_fee),
            (t.order.account, t.order.side, f.taker_fee),
        );
        for (account, side, fee) in [maker, taker] {
            let trade = Some(f.trade);
            self.position_fill(m, (account, side), (f.lots, per_lot, fee), trade, out);
        }
    }

    /// One side of a perpetual fill (of a trade, or off the book in a
    /// liquidation when `trade` is `None`): the position moves, the realized
    /// profit is paid by the clearing party (or the loss paid to it), the fee
    /// charged and the margin held again.
    pub(crate) fn position_fill(
        &mut self,
        m: u32,
        (account, side): (AccountId, Side),
        (lots, per_lot, fee): (u64, u64, u64),
        trade: Option<u64>,
        out: &mut Vec<Event>,
    ) {
        self.settle_funding(account, m, out);
        let pos = self.position_entry(account, m);
        let (lots_before, cost_before) = (pos.lots, pos.cost);
        let f = after_fill(lots_before, cost_before, side, lots, per_lot);
        // The taker's fit and the maker's placement kept both within the caps (a
        // liquidation only reduces).
        let new_lots = i64::try_from(f.lots).expect("a position within the open-interest cap");
        let new_cost = u64::try_from(f.cost).expect("a position within its notional cap");
        self.positions.resize(account, m, new_lots, new_cost);
        let longs_delta = i128::from(new_lots.max(0)) - i128::from(lots_before.max(0));
        let perp = self.perps.get_mut(m).expect("a perpetual");
        perp.filled(longs_delta, f.realized);
        self.refresh_required(account, m);
        let mk = &self.markets[m];
        let (asset, clearing) = (mk.quote, Party::Clearing(mk.spec.symbol));
        let cause = trade.map_or(Cause::Position(mk.spec.symbol), |t| {
            Cause::Trade(TradeId(t))
        });
        // A gain or loss is at most the fill's notional or the position's cost.
        let amount = u64::try_from(f.realized.unsigned_abs()).expect("within a fill's notional");
        if f.realized > 0 {
            let to = Party::Available(account);
            self.ledger
                .post(&self.assets, asset, clearing, to, amount, cause, out);
        }
        self.release_excess(account, asset, cause, out);
        self.pay_from(account, asset, fee, Party::Fees, cause, out);
        if f.realized < 0 {
            self.pay_from(account, asset, amount, clearing, cause, out);
        }
        self.top_up(account, asset, cause, out);
        self.position_changed(m, account, trade, f.realized, out);
        self.positions.forget_if_empty(account, m);
        self.watch.position_changed(account, m);
    }

    /// An account's position on `m`, opened (at its leverage, owing no funding
    /// round under way) if it had none.
    fn position_entry(&mut self, account: AccountId, m: u32) -> &mut Pos {
        let leverage = self.effective_leverage(account, m);
        let rounds = self.perps.get(m).map_or(0, |p| p.funding.rounds);
        self.positions.entry(account, m, leverage, rounds)
    }

    /// Takes a perpetual order's rest into its position's margin before it rests:
    /// `false` (and nothing changed) when the account cannot carry it.
    pub(crate) fn margin_to_rest(&mut self, m: u32, o: &Order, out: &mut Vec<Event>) -> bool {
        let (account, asset) = (o.account, self.markets[m].quote);
        let notional = u128::from(o.open_lots) * self.per_lot(m, o.price_ticks);
        let resting = (o.open_lots, notional, max_ppm(o));
        let pos = self.position_entry(account, m);
        pos.resting_mut(o.side).add(resting.0, resting.1, resting.2);
        self.refresh_required(account, m);
        // An order that did not trade rests as its placement check counted it.
        let checked = o.filled_lots == 0;
        if !o.reduce_only && !checked && !self.can_carry(account, asset) {
            let pos = self.positions.get_mut(account, m).expect("just entered");
            pos.resting_mut(o.side).sub(resting.0, resting.1, resting.2);
            self.refresh_required(account, m);
            self.positions.forget_if_empty(account, m);
            return false;
        }
        self.top_up(account, asset, Cause::Order(OrderId(o.id)), out);
        true
    }

    /// A resting perpetual order left the book: its margin is released.
    pub(crate) fn perp_order_gone(&mut self, m: u32, o: &Order, out: &mut Vec<Event>) {
        if o.kind != OrderKind::Limit {
            return;
        }
        let notional = u128::from(o.open_lots) * self.per_lot(m, o.price_ticks);
        let Some(pos) = self.positions.get_mut(o.account, m) else {
            // Filled to its end by a fill that also closed the position: nothing
            // of it was left in the sums.
            assert_eq!(o.open_lots, 0, "a resting perpetual order has its position");
            return;
        };
        pos.resting_mut(o.side)
            .sub(o.open_lots, notional, max_ppm(o));
        self.refresh_required(o.account, m);
        let asset = self.markets[m].quote;
        self.release_excess(o.account, asset, Cause::Order(OrderId(o.id)), out);
        self.positions.forget_if_empty(o.account, m);
    }

    /// Announces a position as it now is.
    pub(crate) fn position_changed(
        &mut self,
        m: u32,
        account: AccountId,
        trade: Option<u64>,
        realized: i128,
        out: &mut Vec<Event>,
    ) {
        let mk = &self.markets[m];
        let scale = u32::from(mk.quote_scale);
        let pos = self
            .positions
            .get(account, m)
            .cloned()
            .unwrap_or(Pos::new(0));
        out.push(Event::PositionChanged {
            account,
            market: mk.spec.symbol,
            trade: trade.map(TradeId),
            size: mk.size_dec(pos.lots),
            cost: Dec::from_minor(pos.signed_cost(), scale),
            realized_pnl: Dec::from_minor(realized, scale),
            leverage: pos.leverage,
            initial_margin: Dec::from_minor(pos.required as i128, scale),
        });
    }
}
