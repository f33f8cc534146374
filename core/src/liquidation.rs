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

use serde::{Deserialize, Serialize};
use tape_schemas::*;

use crate::book::OrderKind;
use crate::exchange::Core;
use crate::orders::Draft;
use crate::positions::PPM;

/// Liquidation steps per command, across the backlog.
pub const LIQUIDATION_STEPS_MAX: usize = 8;
/// Opposite positions one deleveraging step closes at most.
pub const DELEVERAGE_MAX: usize = 16;

#[derive(Clone, Debug, Default)]
pub(crate) struct Watch {
    /// (market, trigger, account) of long positions: a mark at or below the
    /// trigger checks the account.
    longs: BTreeSet<(u32, u64, AccountId)>,
    /// Short positions: a mark at or above the trigger checks the account.
    shorts: BTreeSet<(u32, u64, AccountId)>,
    /// Each watched position's (long, trigger).
    triggers: BTreeMap<(AccountId, u32), (bool, u64)>,
    /// The lowest wallet (available plus held margin) at which an account's
    /// triggers cover it, by (account, collateral asset): minus the sum of its
    /// positions' floors (`Core::floor_at`). While the wallet is no lower and no
    /// trigger is crossed, its slack is not below zero; a change of size or a
    /// crossed trigger drops the entry, so the next check looks again.
    budgets: BTreeMap<(AccountId, u16), i128>,
    /// Accounts below maintenance, by (account, collateral asset).
    backlog: BTreeSet<(AccountId, u16)>,
    /// Where the next liquidation step starts in the backlog.
    cursor: Option<(AccountId, u16)>,
    /// Accounts to check exactly at the end of the command.
    dirty: BTreeSet<AccountId>,
}

/// The watch as the snapshot lists it.
#[derive(Serialize, Deserialize)]
pub(crate) struct WatchSnapshot {
    triggers: Vec<((AccountId, u32), (bool, u64))>,
    budgets: Vec<((AccountId, u16), i128)>,
    backlog: Vec<(AccountId, u16)>,
    cursor: Option<(AccountId, u16)>,
}

impl Watch {
    fn set(&mut self, account: AccountId, m: u32, long: bool, trigger: u64) {
        self.unset(account, m);
        self.triggers.insert((account, m), (long, trigger));
        let side = if long {
            &mut self.longs
        } else {
            &mut self.shorts
        };
        side.insert((m, trigger, account));
    }

    fn unset(&mut self, account: AccountId, m: u32) {
        if let Some((long, trigger)) = self.triggers.remove(&(account, m)) {
            let side = if long {
                &mut self.longs
            } else {
                &mut self.shorts
            };
            side.remove(&(m, trigger, account));
        }
    }

    /// Marks an account for an exact check at the end of the command.
    pub fn touch(&mut self, account: AccountId) {
        self.dirty.insert(account);
    }

    /// A position of the account changed: its slack is split again at the check.
    pub fn position_changed(&mut self, account: AccountId, asset: u16) {
        self.budgets.remove(&(account, asset));
        self.dirty.insert(account);
    }

    /// The watched positions on `m` a mark of `mark` crosses.
    fn crossed_by(&self, m: u32, mark: u64) -> impl Iterator<Item = AccountId> + '_ {
        let lo = AccountId(0);
        let hi = AccountId(u64::MAX);
        let longs = self.longs.range((m, mark, lo)..=(m, u64::MAX, hi));
        let shorts = self.shorts.range((m, 0, lo)..=(m, mark, hi));
        longs.chain(shorts).map(|k| k.2)
    }

    /// The accounts whose positions on `m` a mark of `mark` crosses, marked for a
    /// check that splits their slack again.
    pub fn crossed(&mut self, m: u32, mark: u64) {
        let crossed: Vec<AccountId> = self.crossed_by(m, mark).collect();
        for account in crossed {
            self.forget_budgets(account);
            self.dirty.insert(account);
        }
    }

    fn forget_budgets(&mut self, account: AccountId) {
        let keys: Vec<(AccountId, u16)> = self
            .budgets
            .range((account, 0)..=(account, u16::MAX))
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            self.budgets.remove(&k);
        }
    }

    /// How many positions on `m` a mark of `mark` would cross.
    pub fn crossing(&self, m: u32, mark: u64) -> usize {
        self.crossed_by(m, mark).count()
    }

    pub fn backlog_len(&self) -> usize {
        self.backlog.len()
    }

    pub fn in_backlog(&self, account: AccountId, asset: u16) -> bool {
        self.backlog.contains(&(account, asset))
    }

    /// Every account's budget: (account, collateral asset, lowest wallet).
    pub fn budgets(&self) -> impl Iterator<Item = (AccountId, u16, i128)> + '_ {
        self.budgets.iter().map(|(&(a, asset), &b)| (a, asset, b))
    }

    pub fn trigger(&self, account: AccountId, m: u32) -> Option<(bool, u64)> {
        self.triggers.get(&(account, m)).copied()
    }

    /// The next backlog entry at or after the cursor (wrapping round).
    fn next_in_backlog(&self) -> Option<(AccountId, u16)> {
        let from = self.cursor.unwrap_or((AccountId(0), 0));
        self.backlog
            .range(from..)
            .next()
            .or_else(|| self.backlog.first())
            .copied()
    }

    pub fn snapshot(&self) -> WatchSnapshot {
        WatchSnapshot {
            triggers: self.triggers.iter().map(|(k, v)| (*k, *v)).collect(),
            budgets: self.budgets.iter().map(|(k, v)| (*k, *v)).collect(),
            backlog: self.backlog.iter().copied().collect(),
            cursor: self.cursor,
        }
    }

    pub fn restore(s: WatchSnapshot) -> Watch {
        let mut w = Watch {
            backlog: s.backlog.into_iter().collect(),
            budgets: s.budgets.into_iter().collect(),
            cursor: s.cursor,
            ..Watch::default()
        };
        for ((account, m), (long, trigger)) in s.triggers {
            w.set(account, m, long, trigger);
        }
        w
    }
}

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

/// An account's open positions in one collateral asset, as a check sees them
/// (`Core::look`).
#[derive(Default)]
struct Look {
    /// The sum of the floors of the positions whose triggers stand.
    standing: i128,
    any_standing: bool,
    /// The others: (market, lots, value at the mark).
    fresh: Vec<(u32, i64, u128)>,
    /// The others' unrealized profit and loss and maintenance at the marks.
    upnl: i128,
    maintenance: u128,
}

impl Core {
    /// What an account's margin counts of its collateral: available plus held
    /// for margin (a spot order's hold or a withdrawal's is not).
    fn wallet(&self, account: AccountId, asset: u16) -> i128 {
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

    /// The collateral assets an account has positions in.
    fn collaterals(&self, account: AccountId) -> BTreeSet<u16> {
        self.positions
            .of(account)
            .map(|(m, _)| self.markets[m].quote)
            .collect()
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

    fn check_touched(&mut self, out: &mut Vec<Event>) {
        while let Some(account) = self.watch.dirty.pop_first() {
            for asset in self.collaterals(account) {
                if !self.watch.in_backlog(account, asset) {
                    self.check_account(account, asset, out);
                }
            }
            // Positions that are gone leave the index.
            self.unwatch_closed(account);
        }
    }

    /// Triggers of positions the account no longer holds are dropped.
    fn unwatch_closed(&mut self, account: AccountId) {
        let watched: Vec<u32> = self
            .watch
            .triggers
            .range((account, 0)..=(account, u32::MAX))
            .map(|((_, m), _)| *m)
            .collect();
        for m in watched {
            if self.positions.get(account, m).is_none_or(|p| p.lots == 0) {
                self.watch.unset(account, m);
            }
        }
        let watched = &self.watch.triggers;
        if watched
            .range((account, 0)..=(account, u32::MAX))
            .next()
            .is_none()
        {
            self.watch.forget_budgets(account);
        }
    }

    /// An exact check: below maintenance joins the backlog; else the positions
    /// without a standing trigger are indexed with what the others leave over,
    /// or, when that is not enough, the slack is split among all of them again.
    fn check_account(&mut self, account: AccountId, asset: u16, out: &mut Vec<Event>) {
        let wallet = self.wallet(account, asset);
        let budget = self.watch.budgets.get(&(account, asset)).copied();
        if budget.is_some_and(|b| wallet >= b) {
            return; // nothing but the marks took from the slack since the split
        }
        let look = self.look(account, asset);
        let over = wallet + look.standing + look.upnl - look.maintenance as i128;
        if over >= 0 {
            let floors = look.standing + self.index_shares(account, &look.fresh, over);
            self.watch.budgets.insert((account, asset), -floors);
            return;
        }
        // With no trigger standing, what is over is the slack itself.
        let health = if look.any_standing {
            self.health(account, asset)
        } else {
            Health {
                equity: wallet + look.upnl,
                maintenance: look.maintenance,
            }
        };
        if health.slack() < 0 {
            self.watch.forget_budgets(account);
            self.watch.backlog.insert((account, asset));
            let positions: Vec<u32> = self.positions.of(account).map(|(m, _)| m).collect();
            for m in positions {
                self.watch.unset(account, m);
            }
            let (equity, maintenance) = self.money(asset, &health);
            out.push(Event::LiquidationStarted {
                account,
                asset: self.assets.get(asset).code,
                equity,
                maintenance,
            });
        } else {
            self.split_slack(account, asset, health.slack());
        }
    }

    /// The account's open positions in `asset` as a check sees them: the floors
    /// of those whose trigger still stands (on their side, not crossed by the
    /// mark), and the others (new, flipped or crossed) at the marks.
    fn look(&self, account: AccountId, asset: u16) -> Look {
        let watched: Vec<(u32, (bool, u64))> = self
            .watch
            .triggers
            .range((account, 0)..=(account, u32::MAX))
            .map(|(&(_, m), &t)| (m, t))
            .collect();
        let mut look = Look::default();
        for (m, p) in self.positions.of(account) {
            if self.markets[m].quote != asset || p.lots == 0 {
                continue;
            }
            let mark = self.markets[m].mark().unwrap_or(0);
            let standing = watched
                .binary_search_by_key(&m, |w| w.0)
                .ok()
                .map(|i| watched[i].1)
                .filter(|&(long, t)| {
                    long == (p.lots > 0) && if long { mark > t } else { mark < t }
                });
            if let Some((_, t)) = standing {
                look.any_standing = true;
                look.standing += self.floor_at(m, p, t);
            } else {
                let (value, upnl) = self.value_at_mark(m, p);
                look.upnl += upnl;
                look.maintenance += self.perps.get(m).map_or(0, |x| x.maintenance(value));
                look.fresh.push((m, p.lots, value));
            }
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
        let open: Vec<(u32, i64, u128)> = self
            .positions
            .of(account)
            .filter(|(m, p)| self.markets[*m].quote == asset && p.lots != 0)
            .map(|(m, p)| (m, p.lots, self.value_at_mark(m, p).0))
            .collect();
        let floors = self.index_shares(account, &open, slack);
        self.watch.budgets.insert((account, asset), -floors);
    }

    /// Indexes each of `open` (market, lots, value) by the mark at which its
    /// share of `slack` (in proportion to its value, less what rounding may
    /// take) would be used up; the sum of their floors.
    fn index_shares(&mut self, account: AccountId, open: &[(u32, i64, u128)], slack: i128) -> i128 {
        let rounding: i128 = open
            .iter()
            .map(|o| self.perps.get(o.0).map_or(0, |p| p.rounding_minor()))
            .sum();
        let slack = (slack - rounding).max(0).unsigned_abs();
        let total: u128 = open.iter().map(|o| o.2).sum::<u128>().max(1);
        let mut floors = 0;
        for &(m, lots, value) in open {
            let perp = self.perps.get(m).expect("positions are on perpetuals");
            let mark = perp.mark_ticks().unwrap_or(0);
            let share = slack * value / total;
            // Slack lost per tick: at most the size's value of a tick for a long,
            // that × (1 + the highest maintenance rate) for a short.
            let per_tick = u128::from(lots.unsigned_abs()) * self.per_lot(m, 1);
            let trigger = if lots > 0 {
                let ticks = u64::try_from(share / per_tick.max(1)).unwrap_or(u64::MAX);
                mark.saturating_sub(ticks)
            } else {
                let per_tick = per_tick * (PPM + u128::from(perp.highest_maintenance_ppm()));
                let ticks = u64::try_from(share * PPM / per_tick.max(1)).unwrap_or(u64::MAX);
                mark.saturating_add(ticks)
            };
            self.watch.set(account, m, lots > 0, trigger);
            let pos = self.positions.get(account, m).expect("an open position");
            floors += self.floor_at(m, pos, trigger);
        }
        floors
    }

    /// The least a position's profit less its maintenance margin can be at any
    /// mark its trigger has not crossed: at the trigger's edge (above it for a
    /// long, below it for a short, within the marks there can be), less what
    /// rounding may stray. A long's profit grows with the mark faster than its
    /// maintenance, and a short's shrinks, so the edge is the worst.
    pub(crate) fn floor_at(&self, m: u32, p: &crate::positions::Pos, trigger: u64) -> i128 {
        let perp = self.perps.get(m).expect("positions are on perpetuals");
        let edge = if p.lots > 0 {
            trigger.saturating_add(1)
        } else {
            trigger.saturating_sub(1)
        };
        self.margin_at(m, p, edge.min(perp.highest_mark())) - perp.rounding_minor()
    }

    /// A position's profit less its maintenance margin at a mark of `ticks`.
    fn margin_at(&self, m: u32, p: &crate::positions::Pos, ticks: u64) -> i128 {
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
        self.watch.cursor = Some((account, asset.saturating_add(1)));
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
        self.watch.backlog.remove(&(account, asset));
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
        for (m, perp) in self.perps.iter() {
            if self.markets[m].quote != asset || perp.fund.lots == 0 {
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
        let perp = self.perps.get_mut(m).expect("a perpetual");
        let before = perp.fund;
        let f = crate::positions::after_fill(before.lots, before.cost, side, lots, per_lot);
        // The fund's size is at most the open interest, its cost at most that at
        // twice the highest mark: within i64 and u64 (`Perp::new`).
        perp.fund.lots = i64::try_from(f.lots).expect("within the open-interest cap");
        perp.fund.cost = u64::try_from(f.cost).expect("within a u64");
        let longs = i128::from(perp.fund.lots.max(0)) - i128::from(before.lots.max(0));
        perp.filled(longs, f.realized);
        let fund = perp.fund;
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
