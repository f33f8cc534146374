//! Trading perpetuals on margin: placing orders (checked at the limit price and at
//! the mark) and keeping each account's initial margin held on the ledger as its
//! positions and resting orders change. Each fill is settled in `perp_fills.rs`.
//!
//! Cross margin: one pool of collateral per account and asset backs every position
//! settled in it. What an account may spend (`spendable`) is its available balance
//! less its unrealized losses at the marks and less any margin it is short of.
//! An account that cannot pay a loss or fee from its collateral is paid for by the
//! insurance fund, whose balance then goes negative: bad debt. Liquidation
//! (`liquidation.rs`) is what keeps that from happening.

use tape_schemas::*;

use crate::book::{Order, OrderKind};
use crate::exchange::{Core, Outcome};
use crate::fees::{hold_ppm, max_ppm};
use crate::orders::{Draft, Placing};
use crate::positions::Pos;

impl Core {
    /// The collateral minor units of one lot at `ticks`.
    pub(crate) fn per_lot(&self, m: u32, ticks: u64) -> u128 {
        u128::from(ticks) * u128::from(self.markets[m].notional_per_tick_lot)
    }

    /// An account's unrealized profit and loss at the marks, over its positions
    /// settled in `asset`.
    pub(crate) fn unrealized(&self, account: AccountId, asset: u16) -> i128 {
        match self.positions.kept_unrealized(account, asset) {
            Some(v) => v,
            None => self.walk_unrealized(account, asset).0,
        }
    }

    /// `unrealized` walked over the account's positions: (figure, positions).
    pub(crate) fn walk_unrealized(&self, account: AccountId, asset: u16) -> (i128, usize) {
        self.positions
            .of(account)
            .filter(|(m, _)| self.markets[*m].quote == asset)
            .fold((0, 0), |(sum, n), (m, p)| {
                (sum + self.unrealized_of(m, p), n + 1)
            })
    }

    /// Keeps the account's unrealized profit and loss in `asset` until a mark
    /// moves or a position changes size, for an account with enough positions
    /// that its orders would otherwise each walk them.
    pub(crate) fn keep_unrealized(&mut self, account: AccountId, asset: u16) {
        if self.positions.kept_unrealized(account, asset).is_some() {
            return;
        }
        let walked = self.walk_unrealized(account, asset);
        self.positions.keep_unrealized(account, asset, walked);
    }

    pub(crate) fn unrealized_of(&self, m: u32, p: &Pos) -> i128 {
        // A position exists only once its market has a mark (orders need one).
        let mark = self.markets[m].mark().unwrap_or(0);
        p.unrealized(self.per_lot(m, mark))
    }

    /// What an account may spend or withdraw of `asset`: its available balance
    /// less its unrealized losses and less any margin it is short of.
    pub(crate) fn spendable(&self, account: AccountId, asset: u16) -> u64 {
        let available = self.ledger.available(account, asset);
        if !self.positions.has_any(account) {
            return available;
        }
        available.saturating_sub(u64::try_from(self.owed(account, asset)).unwrap_or(u64::MAX))
    }

    /// What an account's available balance must cover before it spends: the
    /// margin it is short of and its unrealized losses.
    fn owed(&self, account: AccountId, asset: u16) -> u128 {
        let margin = self.positions.margin(account, asset);
        let short = margin.required.saturating_sub(u128::from(margin.held));
        let loss = u128::try_from(-self.unrealized(account, asset).min(0)).unwrap_or(u128::MAX);
        short.saturating_add(loss)
    }

    /// Whether the account's available balance covers what it owes.
    pub(crate) fn can_carry(&self, account: AccountId, asset: u16) -> bool {
        self.owed(account, asset) <= u128::from(self.ledger.available(account, asset))
    }

    /// `PlaceOrder` on a perpetual, or `PlaceReduceOnly` anywhere.
    pub(crate) fn place_perp(
        &mut self,
        n: &NewOrder,
        reduce_only: bool,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let m = self.markets.id(&n.market)?;
        self.check_can_trade(n.account, m)?;
        let perp = self.perps.get(m).ok_or(RejectReason::NotAPerpetual)?;
        let mark = perp.mark_ticks().ok_or(RejectReason::NoIndexPrice)?;
        if perp.is_stale() && !reduce_only {
            return Err(RejectReason::MarketReduceOnly);
        }
        self.keep_unrealized(n.account, self.markets[m].quote);
        let p = Placing {
            m,
            n,
            fees: self.fees_for(n.account, m),
        };
        match n.order_type {
            OrderType::Limit { .. } => self.place_perp_limit(&p, mark, reduce_only, out),
            OrderType::Market { size } => self.place_perp_market(&p, size, reduce_only, out),
            OrderType::StopMarket { .. } | OrderType::StopLimit { .. } => {
                self.place_perp_stop(&p, reduce_only, out)
            }
        }
    }

    pub(crate) fn place_reduce_only(&mut self, n: &NewOrder, out: &mut Vec<Event>) -> Outcome {
        self.place_perp(n, true, out)
    }

    /// `ClosePosition`: a reduce-only market order for the whole position.
    pub(crate) fn close_position(
        &mut self,
        account: AccountId,
        market: &Symbol,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let m = self.markets.id(market)?;
        self.check_can_trade(account, m)?;
        if !self.perps.contains(m) {
            return Err(RejectReason::NotAPerpetual);
        }
        let pos = self.positions.get(account, m).filter(|p| p.lots != 0);
        let lots = pos.ok_or(RejectReason::NoPosition)?.lots;
        let side = if lots > 0 { Side::Sell } else { Side::Buy };
        let quantity = self.markets[m].qty_dec(lots.unsigned_abs());
        let n = NewOrder {
            account,
            market: *market,
            side,
            order_type: OrderType::Market {
                size: MarketSize::Base(quantity),
            },
            client_order_id: None,
            stp: StpMode::default(),
        };
        self.place_perp(&n, true, out)
    }

    fn place_perp_limit(
        &mut self,
        p: &Placing,
        mark: u64,
        reduce_only: bool,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let t = self.limit_terms(p)?;
        let (ticks, lots, time_in_force, post_only) =
            (t.ticks, t.lots, t.time_in_force, t.post_only);
        let (m, n) = (p.m, p.n);
        let display_lots = self.display_lots(m, t.display_quantity, lots, t.rests)?;
        self.check_new_orders(n.account, 1, n.client_order_id.as_ref())?;
        let ppm = hold_ppm(p.fees);
        let order = (n.side, ticks, lots, ppm);
        let leverage = self.check_perp_order(m, n.account, order, mark, reduce_only)?;
        if post_only && self.would_cross(m, n.side, ticks) {
            return Err(RejectReason::PostOnlyWouldTrade);
        }
        let draft = Draft {
            price_ticks: ticks,
            lots,
            display_lots,
            tif: time_in_force,
            post_only,
            reduce_only,
            ..p.draft(OrderKind::Limit)
        };
        if time_in_force == TimeInForce::Fok
            && self.fillable_lots(m, &draft.to_order(0), lots) < lots
        {
            return Err(RejectReason::FokCannotFill);
        }
        self.lower_leverage(m, n.account, leverage, out);
        let o = self.open(p, draft, out);
        let id = o.id;
        self.run_limit(m, o, out);
        Ok(id)
    }

    fn place_perp_market(
        &mut self,
        p: &Placing,
        size: MarketSize,
        reduce_only: bool,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let (m, n) = (p.m, p.n);
        let (lots, quote_left) = self.market_size(m, size)?;
        if self.markets[m].book.best(n.side.opposite()).is_none() {
            return Err(RejectReason::NoLiquidity);
        }
        let pos = self.positions.get(n.account, m);
        if reduce_only {
            let pos = pos
                .filter(|p| p.lots != 0)
                .ok_or(RejectReason::NoPosition)?;
            let reducible = pos.reducible(n.side);
            if reducible == 0 || (quote_left.is_none() && lots > reducible) {
                return Err(RejectReason::WouldIncreasePosition);
            }
        } else {
            self.check_not_short(n.account, m)?;
            let effective = self.effective_leverage(n.account, m);
            self.lower_leverage(m, n.account, effective, out);
        }
        let draft = Draft {
            lots,
            reduce_only,
            ..p.draft(OrderKind::Limit)
        };
        self.open_market(p, draft, quote_left, out)
    }

    /// The leverage an account's new position on `m` opens at.
    pub(crate) fn effective_leverage(&self, account: AccountId, m: u32) -> u32 {
        let first = self.perps.get(m).map_or(1, |p| p.first_bracket_max());
        self.leverage.effective(account, m, first)
    }

    /// An account's notional in a collateral asset: the exposure (cost plus
    /// what growing orders would add) of each of its positions settled in it.
    pub(crate) fn account_notional(&self, account: AccountId, asset: u16) -> u128 {
        self.positions
            .of(account)
            .filter(|(m, _)| self.markets[*m].quote == asset)
            .map(|(_, p)| p.exposure())
            .sum()
    }

    /// Whether the account stays within its notional cap with its position on
    /// `m` at `exposure` (its other positions as they are). What does not grow
    /// the exposure always fits: an account above a cap lowered under it may
    /// still reduce.
    pub(crate) fn account_notional_fits(&self, account: AccountId, m: u32, exposure: u128) -> bool {
        let asset = self.markets[m].quote;
        let Some(cap) = self.leverage.notional_cap(account, asset) else {
            return true;
        };
        let now = self.positions.get(account, m).map_or(0, Pos::exposure);
        exposure <= now || self.account_notional(account, asset) - now + exposure <= u128::from(cap)
    }

    /// Refuses an account short of margin in `m`'s collateral: it may only reduce.
    pub(crate) fn check_not_short(&self, account: AccountId, m: u32) -> Result<(), RejectReason> {
        let margin = self.positions.margin(account, self.markets[m].quote);
        if u128::from(margin.held) < margin.required {
            return Err(RejectReason::InsufficientMargin);
        }
        Ok(())
    }

    /// The checks of a new limit order on a perpetual, as if it rested whole:
    /// reduce-only rules, or the caps and the margin (at its limit price, with its
    /// loss against the mark). `Ok` with the leverage its position will be held at.
    pub(crate) fn check_perp_order(
        &self,
        m: u32,
        account: AccountId,
        (side, ticks, lots, ppm): (Side, u64, u64, u32),
        mark: u64,
        reduce_only: bool,
    ) -> Result<u32, RejectReason> {
        self.check_perp_orders(m, account, (side, &[(ticks, lots)], ppm), mark, reduce_only)
    }

    /// The checks of new limit orders on one side of a perpetual (a sliced
    /// order's children, a bracket's entry), with the market's index fresh
    /// unless they only reduce.
    pub(crate) fn check_perp_entry(
        &self,
        m: u32,
        account: AccountId,
        orders: (Side, &[(u64, u64)], u32),
        reduce_only: bool,
    ) -> Result<u32, RejectReason> {
        let perp = self.perps.get(m).ok_or(RejectReason::NotAPerpetual)?;
        let mark = perp.mark_ticks().ok_or(RejectReason::NoIndexPrice)?;
        if perp.is_stale() && !reduce_only {
            return Err(RejectReason::MarketReduceOnly);
        }
        self.check_perp_orders(m, account, orders, mark, reduce_only)
    }

    /// `check_perp_order` for orders at (ticks, lots) on one side, all resting
    /// together.
    fn check_perp_orders(
        &self,
        m: u32,
        account: AccountId,
        (side, orders, ppm): (Side, &[(u64, u64)], u32),
        mark: u64,
        reduce_only: bool,
    ) -> Result<u32, RejectReason> {
        let current = self.positions.get(account, m);
        let mut pos = current
            .cloned()
            .unwrap_or_else(|| Pos::new(self.effective_leverage(account, m)));
        // Each order's lots and notional fit u64 (`check_limit`); a slice has
        // at most `slices_max` of them.
        let lots: u64 = orders.iter().map(|o| o.1).sum();
        if reduce_only {
            if pos.lots == 0 {
                return Err(RejectReason::NoPosition);
            }
            if lots > pos.reducible(side) {
                return Err(RejectReason::WouldIncreasePosition);
            }
            return Ok(pos.leverage);
        }
        self.check_not_short(account, m)?;
        let perp = self.perps.get(m).ok_or(RejectReason::NotAPerpetual)?;
        pos.leverage = pos.leverage.min(self.effective_leverage(account, m));
        let notional: u128 = orders
            .iter()
            .map(|&(ticks, l)| u128::from(l) * self.per_lot(m, ticks))
            .sum();
        pos.resting_mut(side).add(lots, notional, ppm);
        let exposure = pos.exposure();
        if exposure > u128::from(perp.position_cap()) {
            return Err(RejectReason::PositionNotionalCap);
        }
        if !self.account_notional_fits(account, m, exposure) {
            return Err(RejectReason::AccountNotionalCap);
        }
        let grows = lots - lots.min(current.map_or(0, |p| p.reducible(side)));
        if grows > 0 && perp.open_interest().saturating_add(grows) > perp.oi_cap_lots() {
            return Err(RejectReason::OpenInterestCap);
        }
        let required = pos.requirement(pos.leverage.min(perp.max_leverage_at(exposure)));
        let asset = self.markets[m].quote;
        let margin = self.positions.margin(account, asset);
        let total = margin.required - current.map_or(0, |p| p.required) + required;
        let open_loss: u128 = orders
            .iter()
            .map(|&(ticks, l)| {
                let loss = match side {
                    Side::Buy => ticks.saturating_sub(mark),
                    Side::Sell => mark.saturating_sub(ticks),
                };
                u128::from(l) * self.per_lot(m, loss)
            })
            .sum();
        let need = total.saturating_sub(u128::from(margin.held)) + open_loss;
        if need > u128::from(self.spendable(account, asset)) {
            return Err(RejectReason::InsufficientMargin);
        }
        Ok(pos.leverage)
    }

    /// Whether the account can carry its position on `m` (if any) at `leverage`.
    pub(crate) fn check_position_leverage(
        &self,
        account: AccountId,
        m: u32,
        leverage: u32,
    ) -> Result<(), RejectReason> {
        let Some(current) = self.positions.get(account, m) else {
            return Ok(());
        };
        let perp = self.perps.get(m).ok_or(RejectReason::NotAPerpetual)?;
        let exposure = current.exposure();
        let required = current.requirement(leverage.min(perp.max_leverage_at(exposure)));
        let asset = self.markets[m].quote;
        let margin = self.positions.margin(account, asset);
        let total = margin.required - current.required + required;
        let extra = total.saturating_sub(u128::from(margin.held));
        if extra > 0 && extra > u128::from(self.spendable(account, asset)) {
            return Err(RejectReason::InsufficientMargin);
        }
        Ok(())
    }

    /// Holds a position's margin at a leverage its account chose (checked by
    /// `check_position_leverage`), releasing or holding the difference.
    pub(crate) fn set_position_leverage(
        &mut self,
        account: AccountId,
        m: u32,
        leverage: u32,
        out: &mut Vec<Event>,
    ) {
        let Some(pos) = self.positions.get_mut(account, m) else {
            return;
        };
        pos.leverage = leverage;
        self.refresh_required(account, m);
        let mk = &self.markets[m];
        let (asset, cause) = (mk.quote, Cause::Position(mk.spec.symbol));
        self.top_up(account, asset, cause, out);
        self.position_changed(m, account, None, 0, out);
    }

    /// Holds an existing position's margin at `leverage` if that is lower than
    /// what it is held at (a tier cap lowered since): the checks counted it.
    pub(crate) fn lower_leverage(
        &mut self,
        m: u32,
        account: AccountId,
        leverage: u32,
        out: &mut Vec<Event>,
    ) {
        let cause = Cause::Position(self.markets[m].spec.symbol);
        let Some(pos) = self.positions.get_mut(account, m) else {
            return;
        };
        if leverage >= pos.leverage {
            return;
        }
        pos.leverage = leverage;
        self.refresh_required(account, m);
        let asset = self.markets[m].quote;
        self.top_up(account, asset, cause, out);
        self.position_changed(m, account, None, 0, out);
    }

    /// Recomputes a position's initial margin and its account's total.
    pub(crate) fn refresh_required(&mut self, account: AccountId, m: u32) {
        let perp = self.perps.get(m).expect("positions are on perpetuals");
        let asset = self.markets[m].quote;
        let Some(pos) = self.positions.get_mut(account, m) else {
            return;
        };
        let exposure = pos.exposure();
        let leverage = pos.leverage.min(perp.max_leverage_at(exposure));
        let new = pos.requirement(leverage);
        let old = std::mem::replace(&mut pos.required, new);
        let mut margin = self.positions.margin(account, asset);
        margin.required = margin.required - old + new;
        self.positions.set_margin(account, asset, margin);
    }

    /// Releases held margin above what the account requires.
    pub(crate) fn release_excess(
        &mut self,
        account: AccountId,
        asset: u16,
        cause: Cause,
        out: &mut Vec<Event>,
    ) {
        let mut margin = self.positions.margin(account, asset);
        let required = u64::try_from(margin.required).unwrap_or(u64::MAX);
        let excess = margin.held.saturating_sub(required);
        if excess > 0 {
            margin.held -= excess;
            self.positions.set_margin(account, asset, margin);
            self.ledger
                .release(&self.assets, asset, account, excess, cause, out);
        }
    }

    /// Holds what the account requires beyond what is held, as far as its
    /// available balance goes; an account left short may only reduce.
    pub(crate) fn top_up(
        &mut self,
        account: AccountId,
        asset: u16,
        cause: Cause,
        out: &mut Vec<Event>,
    ) {
        self.release_excess(account, asset, cause, out);
        let mut margin = self.positions.margin(account, asset);
        let missing = margin.required.saturating_sub(u128::from(margin.held));
        let available = self.ledger.available(account, asset);
        let take = u64::try_from(missing).unwrap_or(u64::MAX).min(available);
        if take > 0 {
            margin.held += take;
            self.positions.set_margin(account, asset, margin);
            self.ledger
                .hold(&self.assets, asset, account, take, cause, out);
        }
    }

    /// Pays `amount` from an account to `to`: from its available balance, then
    /// from its held margin, and what is still missing from the insurance fund.
    pub(crate) fn pay_from(
        &mut self,
        account: AccountId,
        asset: u16,
        amount: u64,
        to: Party,
        cause: Cause,
        out: &mut Vec<Event>,
    ) {
        let from_available = amount.min(self.ledger.available(account, asset));
        let (a, l) = (&self.assets, &mut self.ledger);
        l.post(
            a,
            asset,
            Party::Available(account),
            to,
            from_available,
            cause,
            out,
        );
        let mut margin = self.positions.margin(account, asset);
        let from_held = (amount - from_available).min(margin.held);
        margin.held -= from_held;
        self.positions.set_margin(account, asset, margin);
        l.post(a, asset, Party::Held(account), to, from_held, cause, out);
        let missing = amount - from_available - from_held;
        l.post(a, asset, Party::Insurance, to, missing, cause, out);
    }
}

/// Restoring positions and margins from a snapshot.
impl Core {
    /// Puts back the positions a snapshot lists, rebuilds what their resting
    /// orders add (the markets are restored first) and each account's margin.
    pub(crate) fn restore_positions(
        &mut self,
        s: crate::positions::PositionsSnapshot,
    ) -> Result<(), String> {
        for p in &s.positions {
            let m = p.market;
            let known = self.ledger.exists(p.account) && self.perps.contains(m);
            let sane = (1..=crate::perps::LEVERAGE_MAX).contains(&p.leverage)
                && (p.lots == 0) == (p.cost == 0);
            if !known || !sane || !self.positions.restore_position(p) {
                return Err(format!("position of {} on {m} listed wrongly", p.account));
            }
        }
        let perps: Vec<u32> = self.perps.iter().map(|(m, _)| m).collect();
        for &m in &perps {
            if let Some(mark) = self.perps.get(m).and_then(|p| p.mark_ticks()) {
                self.markets[m].set_mark(mark);
            }
            let mk = &self.markets[m];
            // Stops wait outside the position's sums: they hold no margin.
            let resting: Vec<Order> = mk
                .book
                .orders()
                .filter(|o| o.kind == OrderKind::Limit)
                .cloned()
                .collect();
            for o in resting {
                let notional = u128::from(o.open_lots) * self.per_lot(m, o.price_ticks);
                let pos = self.positions.get_mut(o.account, m);
                let pos = pos.ok_or_else(|| format!("order {} without its position", o.id))?;
                pos.resting_mut(o.side)
                    .add(o.open_lots, notional, max_ppm(&o));
            }
        }
        let keys: Vec<(AccountId, u32)> = self.positions.all().map(|(a, m, _)| (a, m)).collect();
        let mut longs = std::collections::BTreeMap::<u32, u64>::new();
        for (a, m) in keys {
            let pos = self.positions.get(a, m).expect("just listed");
            if pos.is_empty() {
                return Err(format!("empty position of {a} on {m}"));
            }
            *longs.entry(m).or_default() += pos.lots.max(0).unsigned_abs();
            self.refresh_required(a, m);
        }
        for m in perps {
            let fund = self
                .perps
                .get(m)
                .map_or(0, |p| p.fund.lots.max(0).unsigned_abs());
            let oi = longs.get(&m).copied().unwrap_or(0) + fund;
            self.perps.set_open_interest(m, oi);
        }
        for (account, asset, held) in s.held {
            let mut margin = self.positions.margin(account, asset);
            if margin.held != 0 {
                return Err(format!("margin of {account} listed wrongly"));
            }
            margin.held = held;
            self.positions.set_margin(account, asset, margin);
        }
        Ok(())
    }
}
