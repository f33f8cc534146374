//! Liquidation without a scan. An account's slack in a collateral asset is its
//! equity (available, held margin and unrealized profit and loss at the marks)
//! less the maintenance margin of its positions settled in it. The slack is split
//! among the positions in proportion to their value, and each position is indexed
//! by the mark at which its share would be used up (`Watch`): a long by the price
//! below which it may have lost its share, a short by the price above which.
//!
//! A new mark pops only the positions whose trigger it crosses: O(k log n) for k
//! crossed. Each popped account is checked exactly. While no trigger is crossed the
//! sum of the positions' losses of slack is below the sum of their shares, which is
//! the slack, so no account the index does not pop can be below maintenance. The
//! triggers are conservative (a long loses at most its size per tick of slack, a
//! short at most its size × (1 + the highest maintenance rate)), so an exact check
//! may find the account healthy: then its slack is split again.
//!
//! Everything else that can lower an account's slack (fills, fees, withdrawals,
//! spot orders' holds and spot trades) marks it for an exact check at the end of
//! the command. An account below maintenance joins the backlog. Each
//! command then runs at most `LIQUIDATION_STEPS_MAX` liquidation steps, taking the
//! backlog in turn: cancel the account's perpetual orders, then reduce its largest
//! position with an IOC reduce-only order no worse than the bankruptcy price; what
//! the book cannot take there the insurance fund takes over at that price, or,
//! when the fund cannot, auto-deleveraging closes against the opposite positions
//! ranked first. What is left stays in the backlog for the next commands.

use std::collections::{BTreeMap, BTreeSet};

use tape_schemas::*;

use crate::book::OrderKind;
use crate::exchange::Core;
use crate::ledger::Ledger;
use crate::orders::Draft;
use crate::perps::FundPos;
use crate::positions::{Pos, Positions, PPM};
use crate::watch::Trigger;

/// Liquidation steps per command, across the backlog.
pub const LIQUIDATION_STEPS_MAX: usize = 8;
/// Opposite positions one deleveraging step closes at most.
pub const DELEVERAGE_MAX: usize = 16;
/// Positions crossed by a new mark that one command checks at most; the rest
/// wait in the index for the next commands.
pub const CROSSED_CHECKS_MAX: usize = 256;

/// An account's margin in one collateral asset, in minor units.
pub(crate) struct Health {
    pub equity: i128,
    pub maintenance: u128,
}

impl Health {
    pub fn slack(&self) -> i128 {
        self.equity - self.maintenance as i128
    }
}

/// Reads the records of the accounts a sweep is about to check (their balances,
/// positions and margins) in one pass that changes nothing. Each account's
/// records are a few cache misses in maps of a million entries; in a loop where
/// no account's reads wait for another's, the processor overlaps those misses,
/// and the checks that follow find the records in cache. (Measured in `tape
/// bench margin`: a mark crossing 10 accounts took 22 µs without it, 13 µs
/// with it.)
fn warm(ledger: &Ledger, positions: &Positions, accounts: &[AccountId], asset: u16) {
    let mut read = 0u64;
    for &account in accounts {
        read = read.wrapping_add(ledger.available(account, asset));
        if let Some((m, p)) = positions.of(account).next() {
            read = read.wrapping_add(u64::from(m) ^ p.cost);
        }
        read = read.wrapping_add(positions.margin(account, asset).held);
    }
    std::hint::black_box(read);
}

/// An account's fresh positions that are open, as a check sees them.
#[derive(Default)]
struct Look {
    /// (market, lots, value at the mark).
    open: Vec<(u32, i64, u128)>,
    /// Their unrealized profit and loss and maintenance at the marks.
    upnl: i128,
    maintenance: u128,
    /// The sum of their rounding allowances (`Perp::rounding_minor`).
    rounding: i128,
}

impl Core {
    /// What an account's margin counts of its collateral: available plus held
    /// for margin (a spot order's hold or a withdrawal's is not).
    pub(crate) fn wallet(&self, account: AccountId, asset: u16) -> i128 {
        let margin = self.positions.margin(account, asset);
        i128::from(self.ledger.available(account, asset)) + i128::from(margin.held)
    }

    /// Equity and maintenance margin of an account in a collateral asset.
    pub(crate) fn health(&self, account: AccountId, asset: u16) -> Health {
        let mut equity = self.wallet(account, asset);
        let mut maintenance = 0u128;
        for (m, p) in self.positions.of(account) {
            if self.markets[m].quote != asset || p.lots == 0 {
                continue;
            }
            let (value, upnl) = self.value_at_mark(m, p);
            equity += upnl;
            maintenance += self.perps.get(m).map_or(0, |x| x.maintenance(value));
        }
        Health {
            equity,
            maintenance,
        }
    }

    /// A position's value at its market's mark, and its profit or loss there.
    pub(crate) fn value_at_mark(&self, m: u32, p: &crate::positions::Pos) -> (u128, i128) {
        let mark = self.markets[m].mark().unwrap_or(0);
        let per_lot = self.per_lot(m, mark);
        (
            u128::from(p.lots.unsigned_abs()) * per_lot,
            p.unrealized(per_lot),
        )
    }

    /// A spot trade, a spot order's hold or a withdrawal's may lower the equity
    /// of an account that trades on margin too: it is checked at the end of the
    /// command. (A perpetual order's margin moves from available to held and
    /// leaves the equity as it was; its fills touch the account themselves.)
    pub(crate) fn touch_margin_accounts(&mut self, accounts: &[AccountId]) {
        for &account in accounts {
            if self.positions.has_any(account) {
                self.watch.touch(account);
            }
        }
    }

    /// The collateral assets an account has positions in, into `assets`.
    fn collaterals(&self, account: AccountId, assets: &mut Vec<u16>) {
        assets.clear();
        assets.extend(
            self.positions
                .of(account)
                .map(|(m, _)| self.markets[m].quote),
        );
        assets.sort_unstable();
        assets.dedup();
    }

    /// After a command's own effects: the touched accounts checked exactly, then
    /// at most `LIQUIDATION_STEPS_MAX` steps of the backlog, each followed by
    /// the stops its trades triggered and the accounts it touched.
    pub(crate) fn settle_margin(&mut self, out: &mut Vec<Event>) {
        if self.perps.is_empty() {
            return;
        }
        self.run_funding(out);
        self.check_touched(out);
        self.sweep_crossed(out);
        // Each account in the backlog takes at most one step per command.
        let mut stepped = BTreeSet::new();
        for _ in 0..LIQUIDATION_STEPS_MAX {
            let Some(next) = self.watch.next_in_backlog() else {
                break;
            };
            if !stepped.insert(next) {
                break;
            }
            self.liquidation_step(next.0, next.1, out);
            // A reduction that traded may have reached stops: they run now, in
            // the command whose step moved the price, not before the next one.
            self.drain_pending(out);
            self.check_touched(out);
        }
    }

    /// Checks at most `CROSSED_CHECKS_MAX` positions the marks crossed, the
    /// perpetuals in turn.
    fn sweep_crossed(&mut self, out: &mut Vec<Event>) {
        let mut left = CROSSED_CHECKS_MAX;
        while left > 0 {
            let Some(m) = self.watch.next_sweep() else {
                break;
            };
            let mark = self.markets[m].mark().unwrap_or(0);
            let asset = self.markets[m].quote;
            let (ledger, positions) = (&self.ledger, &self.positions);
            left -= self.watch.sweep(m, mark, left, |accounts| {
                warm(ledger, positions, accounts, asset)
            });
        }
        self.check_touched(out);
    }

    fn check_touched(&mut self, out: &mut Vec<Event>) {
        // Lists reused from account to account: a sweep checks hundreds.
        let (mut fresh, mut assets, mut of_asset) = (Vec::new(), Vec::new(), Vec::new());
        while let Some(account) = self.watch.next_dirty() {
            let markets = &self.markets;
            let mark_of = |m: u32| markets[m].mark().unwrap_or(0);
            self.watch.sweep_account(account, mark_of);
            self.watch.take_fresh(account, &mut fresh);
            // A fresh position may have been indexed again since it changed (a
            // liquidation that ended splits the slack at once): its trigger and
            // floor go, so the check counts it once, at its mark.
            for &m in &fresh {
                self.watch.unset(account, m);
            }
            self.collaterals(account, &mut assets);
            for &asset in &assets {
                if !self.watch.in_backlog(account, asset) {
                    of_asset.clear();
                    let quote = |m: &u32| self.markets[*m].quote == asset;
                    of_asset.extend(fresh.iter().copied().filter(quote));
                    self.check_account(account, asset, &of_asset, out);
                }
            }
            self.watch.tidy(account);
        }
    }

    /// An exact check of an account whose `fresh` positions (in `asset`) lost
    /// their triggers: below maintenance it joins the backlog; else the fresh
    /// positions are indexed with what the standing triggers leave over, or,
    /// when that is not enough, the slack is split among all of them again.
    fn check_account(
        &mut self,
        account: AccountId,
        asset: u16,
        fresh: &[u32],
        out: &mut Vec<Event>,
    ) {
        let wallet = self.wallet(account, asset);
        let cover = self.watch.cover(account, asset);
        if fresh.is_empty() && wallet + cover.floors >= 0 {
            return; // the triggers standing cover the account
        }
        let look = self.look(account, fresh);
        let over = wallet + cover.floors + look.upnl - look.maintenance as i128;
        // Enough over to cover the fresh positions' rounding too: the account
        // stays covered (its wallet at least minus its cover). Else the exact
        // check below, which splits all of its slack again.
        if over >= 2 * look.rounding {
            self.index_shares(account, asset, &look.open, over);
            return;
        }
        // With no trigger standing, what is over is the slack itself.
        let health = if cover.triggers == 0 {
            Health {
                equity: wallet + look.upnl,
                maintenance: look.maintenance,
            }
        } else {
            self.health(account, asset)
        };
        if health.slack() >= 0 {
            return self.split_slack(account, asset, health.slack());
        }
        if cover.triggers > 0 {
            self.unwatch(account, asset);
        }
        self.watch.start_liquidation(account, asset);
        let (equity, maintenance) = self.money(asset, &health);
        out.push(Event::LiquidationStarted {
            account,
            asset: self.assets.get(asset).code,
            equity,
            maintenance,
        });
    }

    /// The account's positions in `asset` leave the index.
    fn unwatch(&mut self, account: AccountId, asset: u16) {
        let watched: Vec<u32> = self
            .positions
            .of(account)
            .filter(|(m, _)| self.markets[*m].quote == asset)
            .map(|(m, _)| m)
            .collect();
        for m in watched {
            self.watch.unset(account, m);
        }
    }

    /// The open ones of an account's fresh positions, at the marks.
    fn look(&self, account: AccountId, fresh: &[u32]) -> Look {
        let mut look = Look::default();
        for &m in fresh {
            let Some(p) = self.positions.get(account, m).filter(|p| p.lots != 0) else {
                continue;
            };
            let (value, upnl) = self.value_at_mark(m, p);
            look.upnl += upnl;
            let perp = self.perps.get(m).expect("positions are on perpetuals");
            look.maintenance += perp.maintenance(value);
            look.rounding += perp.rounding_minor();
            look.open.push((m, p.lots, value));
        }
        look
    }

    fn money(&self, asset: u16, h: &Health) -> (Dec, Dec) {
        let scale = u32::from(self.assets.get(asset).scale);
        (
            Dec::from_minor(h.equity, scale),
            Dec::from_minor(h.maintenance as i128, scale),
        )
    }

    /// Indexes each open position settled in `asset` by the mark at which its
    /// share of `slack` (in proportion to its value) would be used up.
    fn split_slack(&mut self, account: AccountId, asset: u16, slack: i128) {
        self.unwatch(account, asset);
        let open: Vec<(u32, i64, u128)> = self
            .positions
            .of(account)
            .filter(|(m, p)| self.markets[*m].quote == asset && p.lots != 0)
            .map(|(m, p)| (m, p.lots, self.value_at_mark(m, p).0))
            .collect();
        self.index_shares(account, asset, &open, slack);
    }

    /// Indexes each of `open` (market, lots, value) by the mark at which its
    /// share of `slack` (in proportion to its value) would be used up. Twice
    /// each position's rounding allowance is kept back: once for the margin
    /// straying between the mark and the trigger's edge, once for the floor's
    /// own allowance. So a slack at least that large leaves the account covered
    /// (its wallet no lower than minus the floors); a smaller one leaves the
    /// triggers at the mark, where any move against the account crosses them.
    fn index_shares(
        &mut self,
        account: AccountId,
        asset: u16,
        open: &[(u32, i64, u128)],
        slack: i128,
    ) {
        let rounding: i128 = open
            .iter()
            .map(|o| self.perps.get(o.0).map_or(0, |p| p.rounding_minor()))
            .sum();
        let slack = (slack - 2 * rounding).max(0).unsigned_abs();
        let total: u128 = open.iter().map(|o| o.2).sum::<u128>().max(1);
        for &(m, lots, value) in open {
            let perp = self.perps.get(m).expect("positions are on perpetuals");
            let mark = perp.mark_ticks().unwrap_or(0);
            let share = slack * value / total;
            // Slack lost per tick: at most the size's value of a tick for a long,
            // that × (1 + the highest maintenance rate) for a short.
            let per_tick = u128::from(lots.unsigned_abs()) * self.per_lot(m, 1);
            // At least a tick away, so the mark it is set at does not cross it
            // (its floor is taken at its edge, so any trigger is sound).
            let ticks = if lots > 0 {
                let ticks = u64::try_from(share / per_tick.max(1)).unwrap_or(u64::MAX);
                mark.saturating_sub(ticks.max(1))
            } else {
                let per_tick = per_tick * (PPM + u128::from(perp.highest_maintenance_ppm()));
                let ticks = u64::try_from(share * PPM / per_tick.max(1)).unwrap_or(u64::MAX);
                mark.saturating_add(ticks.max(1))
            };
            let pos = self.positions.get(account, m).expect("an open position");
            let floor = self.floor_at(m, pos, ticks);
            let long = lots > 0;
            let trigger = Trigger {
                long,
                ticks,
                asset,
                floor,
            };
            self.watch.set(account, m, trigger);
        }
    }

    /// Whether a trigger restored from a snapshot watches an open position on
    /// its side, on a perpetual settled in its asset (the invariants then check
    /// its floor and whether the mark crossed it).
    pub(crate) fn trigger_stands(&self, account: AccountId, m: u32, t: &Trigger) -> bool {
        self.perps.contains(m)
            && self.markets[m].quote == t.asset
            && self
                .positions
                .get(account, m)
                .is_some_and(|p| p.lots != 0 && (p.lots > 0) == t.long)
    }

    /// The least a position's profit less its maintenance margin can be at any
    /// mark a trigger at `trigger` ticks has not crossed: at the trigger's edge
    /// (above it for a long, below it for a short, within the marks there can
    /// be), less what rounding may stray. A long's profit grows with the mark
    /// faster than its maintenance, and a short's shrinks, so the edge is the
    /// worst.
    pub(crate) fn floor_at(&self, m: u32, p: &Pos, trigger: u64) -> i128 {
        let perp = self.perps.get(m).expect("positions are on perpetuals");
        let edge = if p.lots > 0 {
            trigger.saturating_add(1)
        } else {
            trigger.saturating_sub(1)
        };
        self.margin_at(m, p, edge.min(perp.highest_mark())) - perp.rounding_minor()
    }

    /// A position's profit less its maintenance margin at a mark of `ticks`.
    fn margin_at(&self, m: u32, p: &Pos, ticks: u64) -> i128 {
        let per_lot = self.per_lot(m, ticks);
        let value = u128::from(p.lots.unsigned_abs()) * per_lot;
        let maintenance = self.perps.get(m).map_or(0, |x| x.maintenance(value));
        // A value within half a u64 (`Perp::new`), its maintenance below it.
        p.unrealized(per_lot) - i128::try_from(maintenance).expect("below the value")
    }

    /// One step for an account in the backlog: over if its slack is back; else
    /// its perpetual orders are cancelled and its largest position reduced.
    fn liquidation_step(&mut self, account: AccountId, asset: u16, out: &mut Vec<Event>) {
        let health = self.health(account, asset);
        let open = self.largest_position(account, asset);
        if health.slack() >= 0 || open.is_none() {
            return self.end_liquidation(account, asset, &health, out);
        }
        self.cancel_perp_orders(account, asset, out);
        let Some(m) = open else { return };
        // The next step goes to the next account in the backlog (round the
        // backlog); this one is checked again when its turn comes.
        self.watch.set_cursor((account, asset.saturating_add(1)));
        let (lots, ticks) = self.reduce_at_bankruptcy(account, m, &health, out);
        if lots == 0 {
            // Nothing in the book within the bankruptcy price: the insurance fund
            // takes the position over there, or the opposite positions ranked
            // first are closed against it. Below one tick, at one tick.
            let ticks = ticks.unwrap_or(1);
            if !self.take_over(account, m, ticks, &health, out) {
                self.deleverage(account, m, ticks, out);
            }
        }
        let after = self.health(account, asset);
        if after.slack() >= 0 || self.largest_position(account, asset).is_none() {
            self.end_liquidation(account, asset, &after, out);
        }
    }

    fn end_liquidation(
        &mut self,
        account: AccountId,
        asset: u16,
        health: &Health,
        out: &mut Vec<Event>,
    ) {
        self.watch.end_liquidation(account, asset);
        let (equity, maintenance) = self.money(asset, health);
        out.push(Event::LiquidationEnded {
            account,
            asset: self.assets.get(asset).code,
            equity,
            maintenance,
        });
        self.split_slack(account, asset, health.slack());
    }

    /// The open position settled in `asset` with the largest value (ties: the
    /// lowest market number).
    fn largest_position(&self, account: AccountId, asset: u16) -> Option<u32> {
        self.positions
            .of(account)
            .filter(|(m, p)| self.markets[*m].quote == asset && p.lots != 0)
            .map(|(m, p)| (self.value_at_mark(m, p).0, std::cmp::Reverse(m)))
            .max()
            .map(|(_, m)| m.0)
    }

    /// Cancels the account's resting orders on the perpetuals settled in `asset`.
    fn cancel_perp_orders(&mut self, account: AccountId, asset: u16, out: &mut Vec<Event>) {
        let ids: Vec<u64> = self.orders.open_of(account).collect();
        let mut by_market: BTreeMap<u32, u64> = BTreeMap::new();
        for id in ids {
            let (m, slot) = self.orders.locate(id);
            if self.perps.contains(m) && self.markets[m].quote == asset {
                self.remove_order(m, slot, DoneReason::Liquidation, out);
                *by_market.entry(m).or_default() += 1;
            }
        }
        for (m, n) in by_market {
            out.push(Event::LiquidationStep {
                account,
                market: self.markets[m].spec.symbol,
                stage: LiquidationStage::Cancel,
                quantity: Dec::from_minor(i128::from(n), 0),
                price: None,
            });
        }
    }

    /// How much of its position on `m` an account in the backlog sells (or buys
    /// back), and at most how far: twice what closing at the mark would need to
    /// restore the maintenance margin, each lot freeing its maintenance rate less
    /// the taker fee (all of it when the fee is not below the rate); and the
    /// bankruptcy price, where the account's whole equity is gone with its other
    /// positions at their marks. Rounded toward the insurance fund: a long sells
    /// no lower than it rounded up, a short buys no higher than it rounded down.
    /// `None` when that price is below one tick.
    fn liquidation_terms(&self, account: AccountId, m: u32, health: &Health) -> (u64, Option<u64>) {
        let pos = self
            .positions
            .get(account, m)
            .expect("the largest position");
        let (lots, n) = (pos.lots, pos.lots.unsigned_abs());
        let (value, _) = self.value_at_mark(m, pos);
        let perp = self.perps.get(m).expect("a perpetual");
        let mark = perp.mark_ticks().unwrap_or(0);
        let freed_ppm = perp
            .maintenance_ppm_at(value)
            .saturating_sub(self.fees_for(account, m).taker_ppm);
        let deficit = (-health.slack()).max(1).unsigned_abs();
        let per_lot_freed = self.per_lot(m, mark) * u128::from(freed_ppm);
        let close = match per_lot_freed {
            0 => u128::from(n),
            per_lot => 2 * (deficit * PPM).div_ceil(per_lot),
        };
        let close = u64::try_from(close).unwrap_or(u64::MAX).min(n);
        // Below i64::MAX lots × a u64 tick value: within i128.
        let den = i128::try_from(u128::from(n) * self.per_lot(m, 1)).expect("a value fits");
        let num = i128::from(mark) * den;
        let bankruptcy = if lots > 0 {
            let num = num - health.equity;
            num.div_euclid(den) + i128::from(num.rem_euclid(den) != 0)
        } else {
            (num + health.equity).div_euclid(den)
        };
        (close, u64::try_from(bankruptcy).ok().filter(|&t| t > 0))
    }

    /// An IOC reduce-only order on `m` on `liquidation_terms`: the lots it closed
    /// and the bankruptcy price in ticks.
    fn reduce_at_bankruptcy(
        &mut self,
        account: AccountId,
        m: u32,
        health: &Health,
        out: &mut Vec<Event>,
    ) -> (u64, Option<u64>) {
        let (close, ticks) = self.liquidation_terms(account, m, health);
        let Some(ticks) = ticks else {
            return (0, None);
        };
        let before = self.positions.get(account, m).map_or(0, |p| p.lots);
        let side = if before > 0 { Side::Sell } else { Side::Buy };
        if self.markets[m].book.best(side.opposite()).is_none() || close == 0 {
            return (0, Some(ticks));
        }
        let draft = Draft {
            account,
            side,
            kind: OrderKind::Limit,
            price_ticks: ticks,
            lots: close,
            display_lots: 0,
            held_minor: 0,
            fees: self.fees_for(account, m),
            tif: TimeInForce::Ioc,
            post_only: false,
            stp: StpMode::CancelTaker,
            trigger_ticks: 0,
            stop_size: None,
            parent: 0,
            reduce_only: true,
            client_order_id: None,
        };
        let o = self.new_order(draft);
        let mk = &self.markets[m];
        let order_type = OrderType::Limit {
            price: mk.price_dec(ticks),
            quantity: mk.qty_dec(close),
            time_in_force: TimeInForce::Ioc,
            post_only: false,
            display_quantity: None,
        };
        self.accept(m, &o, order_type, out);
        self.run_limit(m, o, out);
        let after = self.positions.get(account, m).map_or(0, |p| p.lots);
        let closed = before.abs_diff(after);
        if closed > 0 {
            let mk = &self.markets[m];
            out.push(Event::LiquidationStep {
                account,
                market: mk.spec.symbol,
                stage: LiquidationStage::Reduce,
                quantity: mk.qty_dec(closed),
                price: Some(mk.price_dec(ticks)),
            });
        }
        (closed, Some(ticks))
    }

    /// The insurance fund's equity in a collateral asset: its balance and its
    /// positions' profit and loss at the marks.
    pub(crate) fn fund_equity(&self, asset: u16) -> i128 {
        let mut equity = self.ledger.system(asset).insurance;
        for (m, perp) in self.perps.held_by_fund() {
            if self.markets[m].quote != asset {
                continue;
            }
            let mut p = crate::positions::Pos::new(1);
            (p.lots, p.cost) = (perp.fund.lots, perp.fund.cost);
            equity += self.value_at_mark(m, &p).1;
        }
        equity
    }

    /// Stage 3: the insurance fund takes the account's position on `m` over at
    /// `ticks` (its bankruptcy price), if the fund's equity covers what the
    /// account's equity lacks. The account's remaining equity goes to the fund
    /// through the price.
    fn take_over(
        &mut self,
        account: AccountId,
        m: u32,
        ticks: u64,
        health: &Health,
        out: &mut Vec<Event>,
    ) -> bool {
        let asset = self.markets[m].quote;
        if self.fund_equity(asset) + health.equity.min(0) < 0 {
            return false;
        }
        let lots = self.positions.get(account, m).map_or(0, |p| p.lots);
        self.fund_takes(account, m, lots, ticks, out);
        true
    }

    /// The fund takes `lots` (signed, the account's) of the account's position.
    fn fund_takes(
        &mut self,
        account: AccountId,
        m: u32,
        lots: i64,
        ticks: u64,
        out: &mut Vec<Event>,
    ) {
        let side = if lots > 0 { Side::Sell } else { Side::Buy };
        let n = lots.unsigned_abs();
        let per_lot = self.off_book_per_lot(m, ticks);
        self.position_fill(m, (account, side), (n, per_lot, 0), None, out);
        self.fund_fill(m, side.opposite(), n, per_lot, out);
        let mk = &self.markets[m];
        out.push(Event::LiquidationStep {
            account,
            market: mk.spec.symbol,
            stage: LiquidationStage::TakeOver,
            quantity: mk.qty_dec(n),
            price: Some(mk.price_dec(ticks)),
        });
    }

    /// One lot's value at a price a liquidation closes at off the book.
    fn off_book_per_lot(&self, m: u32, ticks: u64) -> u64 {
        // A bankruptcy price is below twice the mark (the account's equity is
        // below its maintenance, so below its positions' value), and every
        // position's value at any mark fits in half a u64 (`Perp::new`).
        u64::try_from(self.per_lot(m, ticks)).expect("a lot's value fits")
    }

    /// The insurance fund's position on `m` fills `lots` on `side` at `per_lot`:
    /// what it realizes passes between the clearing party and the fund.
    fn fund_fill(&mut self, m: u32, side: Side, lots: u64, per_lot: u64, out: &mut Vec<Event>) {
        // `m` holds the position a liquidation closes: a perpetual (the two
        // `expect`s here, as every caller's `positions.get(account, m)` shows).
        let before = self.perps.get(m).expect("a perpetual").fund;
        let f = crate::positions::after_fill(before.lots, before.cost, side, lots, per_lot);
        // The fund's size is at most the open interest, its cost at most that at
        // twice the highest mark: within i64 and u64 (`Perp::new`).
        let fund = FundPos {
            lots: i64::try_from(f.lots).expect("within the open-interest cap"),
            cost: u64::try_from(f.cost).expect("within a u64"),
        };
        self.perps.set_fund(m, fund);
        let longs = i128::from(fund.lots.max(0)) - i128::from(before.lots.max(0));
        let perp = self.perps.get_mut(m).expect("a perpetual");
        perp.filled(longs, f.realized);
        let mk = &self.markets[m];
        let (asset, symbol) = (mk.quote, mk.spec.symbol);
        let amount = u64::try_from(f.realized.unsigned_abs()).expect("within a fill's notional");
        let (from, to) = if f.realized > 0 {
            (Party::Clearing(symbol), Party::Insurance)
        } else {
            (Party::Insurance, Party::Clearing(symbol))
        };
        let cause = Cause::Position(symbol);
        self.ledger
            .post(&self.assets, asset, from, to, amount, cause, out);
        out.push(Event::InsurancePosition {
            market: symbol,
            size: mk.size_dec(fund.lots),
            cost: Dec::from_minor(fund.signed_cost(), u32::from(mk.quote_scale)),
        });
    }

    /// Stage 4: closes the account's position on `m` at `ticks` against the
    /// opposite positions ranked first (the lowest entry of the longs, the
    /// highest of the shorts: the most profit per lot at any mark; ties by the
    /// lowest account id), at most `DELEVERAGE_MAX` of them a step, with no fee.
    /// When no account holds the other side, the fund does: it takes the rest.
    fn deleverage(&mut self, account: AccountId, m: u32, ticks: u64, out: &mut Vec<Event>) {
        let lots = self.positions.get(account, m).map_or(0, |p| p.lots);
        let (long, n) = (lots > 0, lots.unsigned_abs());
        let mut left = n;
        let mut plan = Vec::new();
        for (_, c) in self.positions.ranked_after(m, !long, None) {
            if left == 0 || plan.len() == DELEVERAGE_MAX {
                break;
            }
            let size = self
                .positions
                .get(c, m)
                .map_or(0, |p| p.lots.unsigned_abs());
            let q = size.min(left);
            plan.push((c, q));
            left -= q;
        }
        if plan.is_empty() {
            return self.fund_takes(account, m, lots, ticks, out);
        }
        let per_lot = self.off_book_per_lot(m, ticks);
        let side = if long { Side::Sell } else { Side::Buy };
        let mk = &self.markets[m];
        let (symbol, price) = (mk.spec.symbol, mk.price_dec(ticks));
        for &(c, q) in &plan {
            self.position_fill(m, (c, side.opposite()), (q, per_lot, 0), None, out);
            self.position_fill(m, (account, side), (q, per_lot, 0), None, out);
            out.push(Event::Deleveraged {
                account: c,
                market: symbol,
                counterparty: account,
                quantity: self.markets[m].qty_dec(q),
                price,
            });
        }
        out.push(Event::LiquidationStep {
            account,
            market: symbol,
            stage: LiquidationStage::Deleverage,
            quantity: self.markets[m].qty_dec(n - left),
            price: Some(price),
        });
    }
}
