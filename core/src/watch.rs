//! The liquidation watch: each open position outside the backlog indexed by the
//! mark at which its share of its account's slack would be used up, and what
//! each account's triggers guarantee. `liquidation.rs` decides what to index and
//! when; this file only keeps the index and its sums consistent.
//!
//! A trigger carries its position's floor: the least the position's profit less
//! its maintenance margin can be at any mark the trigger has not crossed
//! (`Core::floor_at`). An account's cover in a collateral asset is the sum of the
//! floors of its triggers there. While none is crossed and no position changed,
//! a wallet (available plus held margin) of at least minus the cover means the
//! account covers its maintenance: nothing needs to be looked at.
//!
//! A change of a position's size, or a sweep of the positions a mark crossed,
//! takes the trigger out (with its floor) and leaves the position fresh: the
//! next check indexes only the fresh positions, with what the standing ones
//! leave over. A new mark only marks its perpetual for a sweep; each command
//! then sweeps a bounded number of crossed positions, the most at risk first,
//! so a mark that crosses a million accounts does not stall the engine.

use std::collections::BTreeSet;

use rustc_hash::FxHashMap;

use serde::{Deserialize, Serialize};
use tape_schemas::AccountId;

use crate::by_account::in_order;
use crate::sorted;

/// One watched position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Trigger {
    pub long: bool,
    /// A mark at or below this (a long), at or above it (a short) crosses it.
    pub ticks: u64,
    /// The collateral asset of the position's market.
    pub asset: u16,
    /// The least its profit less maintenance can be while it is not crossed.
    pub floor: i128,
}

impl Trigger {
    /// Whether a mark of `mark` crosses it.
    pub fn crossed_by(&self, mark: u64) -> bool {
        if self.long {
            mark <= self.ticks
        } else {
            mark >= self.ticks
        }
    }
}

/// What an account's triggers in one collateral asset guarantee.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Cover {
    /// The sum of their floors.
    pub floors: i128,
    /// How many there are.
    pub triggers: u32,
}

/// One account's triggers (by market number) and covers (by collateral
/// asset), together: one lookup finds them.
#[derive(Clone, Debug, Default)]
struct Watched {
    triggers: Vec<(u32, Trigger)>,
    covers: Vec<(u16, Cover)>,
}

/// The index. Triggers and covers are kept by account in a hash map that is
/// never iterated as it stands: `triggers`, `covers` and the snapshot go in
/// account order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Watch {
    /// (market, trigger, account) of long positions: a mark at or below the
    /// trigger crosses it.
    longs: BTreeSet<(u32, u64, AccountId)>,
    /// Short positions: a mark at or above the trigger crosses it.
    shorts: BTreeSet<(u32, u64, AccountId)>,
    /// Each account's triggers, and their sums by collateral asset.
    accounts: FxHashMap<AccountId, Watched>,
    /// Positions whose trigger was taken out in this command (a change of size,
    /// a crossing): the check indexes them again. Empty between commands.
    fresh: BTreeSet<(AccountId, u32)>,
    /// Accounts below maintenance, by (account, collateral asset).
    backlog: BTreeSet<(AccountId, u16)>,
    /// Where the next liquidation step starts in the backlog.
    cursor: Option<(AccountId, u16)>,
    /// Accounts to check at the end of the command. Empty between commands.
    dirty: BTreeSet<AccountId>,
    /// Perpetuals whose mark crossed triggers not all checked yet: each command
    /// checks at most `CROSSED_CHECKS_MAX` (`Core::sweep_crossed`), the rest wait,
    /// still in the index, for the next commands.
    sweeps: BTreeSet<u32>,
    /// Where the next sweep starts among them.
    sweep_cursor: u32,
}

/// The watch as the snapshot lists it.
#[derive(Serialize, Deserialize)]
pub(crate) struct WatchSnapshot {
    triggers: Vec<((AccountId, u32), Trigger)>,
    backlog: Vec<(AccountId, u16)>,
    cursor: Option<(AccountId, u16)>,
    sweeps: Vec<u32>,
    sweep_cursor: u32,
}

impl Watch {
    /// Indexes a position (taking out the trigger it had).
    pub fn set(&mut self, account: AccountId, m: u32, t: Trigger) {
        self.unset(account, m);
        let w = self.accounts.entry(account).or_default();
        sorted::set(&mut w.triggers, m, t);
        let c = sorted::get_or_insert_with(&mut w.covers, t.asset, Cover::default);
        c.floors += t.floor;
        c.triggers += 1;
        self.side(t.long).insert((m, t.ticks, account));
    }

    fn side(&mut self, long: bool) -> &mut BTreeSet<(u32, u64, AccountId)> {
        if long {
            &mut self.longs
        } else {
            &mut self.shorts
        }
    }

    /// Takes a position's trigger out, with its floor. The account's record
    /// stays, even empty, for the check under way to fill again without
    /// allocating it anew: whoever takes triggers out calls `tidy` after.
    pub fn unset(&mut self, account: AccountId, m: u32) {
        let Some(w) = self.accounts.get_mut(&account) else {
            return;
        };
        let Some(t) = sorted::remove(&mut w.triggers, m) else {
            return;
        };
        if let Some(c) = sorted::get_mut(&mut w.covers, t.asset) {
            c.floors -= t.floor;
            c.triggers -= 1;
            if c.triggers == 0 {
                sorted::remove(&mut w.covers, t.asset);
            }
        }
        self.side(t.long).remove(&(m, t.ticks, account));
    }

    /// Forgets the account's record if it holds no trigger (the invariants
    /// require that none is left empty between commands).
    pub fn tidy(&mut self, account: AccountId) {
        if self
            .accounts
            .get(&account)
            .is_some_and(|w| w.triggers.is_empty())
        {
            self.accounts.remove(&account);
        }
    }

    /// Marks an account for a check at the end of the command.
    pub fn touch(&mut self, account: AccountId) {
        self.dirty.insert(account);
    }

    /// A position changed size: its trigger no longer says anything, and the
    /// check indexes it again.
    pub fn position_changed(&mut self, account: AccountId, m: u32) {
        self.take_out(account, m);
        self.dirty.insert(account);
    }

    /// The position's trigger comes out and the next check of its account
    /// indexes it again.
    fn take_out(&mut self, account: AccountId, m: u32) {
        self.unset(account, m);
        self.fresh.insert((account, m));
    }

    /// The watched positions on `m` a mark of `mark` crosses, the most at risk
    /// first: a long's highest trigger, a short's lowest.
    fn crossed_by(&self, m: u32, mark: u64) -> impl Iterator<Item = AccountId> + '_ {
        let lo = AccountId(0);
        let hi = AccountId(u64::MAX);
        let longs = self.longs.range((m, mark, lo)..=(m, u64::MAX, hi)).rev();
        let shorts = self.shorts.range((m, 0, lo)..=(m, mark, hi));
        longs.chain(shorts).map(|k| k.2)
    }

    /// A new mark on `m`: the positions it crosses are swept, from the end of
    /// this command on.
    pub fn crossed(&mut self, m: u32, mark: u64) {
        // The long with the lowest trigger at or above the mark, the short with
        // the highest at or below it: one descent each.
        let long = self.longs.range((m, mark, AccountId(0))..).next();
        let short = self
            .shorts
            .range(..=(m, mark, AccountId(u64::MAX)))
            .next_back();
        if long.is_some_and(|k| k.0 == m) || short.is_some_and(|k| k.0 == m) {
            self.sweeps.insert(m);
        }
    }

    /// The next perpetual to sweep, from the cursor on (wrapping round).
    pub fn next_sweep(&self) -> Option<u32> {
        self.sweeps
            .range(self.sweep_cursor..)
            .next()
            .or_else(|| self.sweeps.first())
            .copied()
    }

    /// Takes the triggers out of at most `max` positions on `m` that a mark of
    /// `mark` crosses, the most at risk first, and leaves them fresh: how many.
    /// Fewer than `max`: the sweep of `m` is over.
    ///
    /// `warm` is given the accounts before anything is taken out (see
    /// `Core::warm`), and their records here are read in one pass too.
    pub fn sweep(
        &mut self,
        m: u32,
        mark: u64,
        max: usize,
        warm: impl FnOnce(&[AccountId]),
    ) -> usize {
        let taken: Vec<AccountId> = self.crossed_by(m, mark).take(max).collect();
        warm(&taken);
        let mut read = 0usize;
        for account in &taken {
            if let Some(w) = self.accounts.get(account) {
                read = read.wrapping_add(w.triggers.first().map_or(0, |t| t.0 as usize));
                read = read.wrapping_add(w.covers.first().map_or(0, |c| c.1.triggers as usize));
            }
        }
        std::hint::black_box(read);
        for &account in &taken {
            self.position_changed(account, m);
        }
        if taken.len() < max {
            self.sweeps.remove(&m);
        } else {
            self.sweep_cursor = m.saturating_add(1);
        }
        taken.len()
    }

    /// While sweeps are under way, an account being checked for another reason
    /// takes its crossed positions into the check too (their floors no longer
    /// hold).
    pub fn sweep_account(&mut self, account: AccountId, mark_of: impl Fn(u32) -> u64) {
        if self.sweeps.is_empty() {
            return;
        }
        let Some(w) = self.accounts.get(&account) else {
            return;
        };
        let crossed: Vec<u32> = w
            .triggers
            .iter()
            .filter(|(m, t)| self.sweeps.contains(m) && t.crossed_by(mark_of(*m)))
            .map(|(m, _)| *m)
            .collect();
        for m in crossed {
            self.take_out(account, m);
        }
    }

    /// Whether positions on `m` crossed by its mark wait for a check.
    pub fn sweeping(&self, m: u32) -> bool {
        self.sweeps.contains(&m)
    }

    /// How many perpetuals have crossed positions waiting for a check.
    pub fn sweeps_len(&self) -> usize {
        self.sweeps.len()
    }

    /// How many positions crossed by their marks wait for a check, on the
    /// perpetuals `mark_of` gives marks for.
    pub fn waiting(&self, mark_of: impl Fn(u32) -> u64) -> usize {
        self.sweeps
            .iter()
            .map(|&m| self.crossed_by(m, mark_of(m)).count())
            .sum()
    }

    /// How many positions on `m` a mark of `mark` would cross.
    pub fn crossing(&self, m: u32, mark: u64) -> usize {
        self.crossed_by(m, mark).count()
    }

    /// The next account to check, taken off the list.
    pub fn next_dirty(&mut self) -> Option<AccountId> {
        self.dirty.pop_first()
    }

    /// The account's fresh positions, taken off the list, into `taken`.
    pub fn take_fresh(&mut self, account: AccountId, taken: &mut Vec<u32>) {
        taken.clear();
        while let Some(&(a, m)) = self.fresh.range((account, 0)..).next() {
            if a != account {
                break;
            }
            self.fresh.remove(&(a, m));
            taken.push(m);
        }
    }

    pub fn cover(&self, account: AccountId, asset: u16) -> Cover {
        self.accounts
            .get(&account)
            .and_then(|w| sorted::get(&w.covers, asset).copied())
            .unwrap_or_default()
    }

    pub fn start_liquidation(&mut self, account: AccountId, asset: u16) {
        self.backlog.insert((account, asset));
    }

    pub fn end_liquidation(&mut self, account: AccountId, asset: u16) {
        self.backlog.remove(&(account, asset));
    }

    pub fn backlog_len(&self) -> usize {
        self.backlog.len()
    }

    pub fn in_backlog(&self, account: AccountId, asset: u16) -> bool {
        self.backlog.contains(&(account, asset))
    }

    /// The next backlog entry at or after the cursor (wrapping round).
    pub fn next_in_backlog(&self) -> Option<(AccountId, u16)> {
        let from = self.cursor.unwrap_or((AccountId(0), 0));
        self.backlog
            .range(from..)
            .next()
            .or_else(|| self.backlog.first())
            .copied()
    }

    pub fn set_cursor(&mut self, at: (AccountId, u16)) {
        self.cursor = Some(at);
    }

    pub fn trigger(&self, account: AccountId, m: u32) -> Option<Trigger> {
        sorted::get(&self.accounts.get(&account)?.triggers, m).copied()
    }

    /// Every trigger, by account and market.
    pub fn triggers(&self) -> impl Iterator<Item = (AccountId, u32, Trigger)> + '_ {
        in_order(&self.accounts)
            .into_iter()
            .flat_map(|(a, w)| w.triggers.iter().map(move |&(m, t)| (a, m, t)))
    }

    /// Every cover, by account and asset.
    pub fn covers(&self) -> impl Iterator<Item = (AccountId, u16, Cover)> + '_ {
        in_order(&self.accounts)
            .into_iter()
            .flat_map(|(a, w)| w.covers.iter().map(move |&(s, c)| (a, s, c)))
    }

    /// Whether nothing is left over from a command (the invariants ask).
    /// (No record is left without a trigger either; the answer does not depend
    /// on the map's order.)
    pub fn settled(&self) -> bool {
        self.fresh.is_empty()
            && self.dirty.is_empty()
            && self.accounts.values().all(|w| !w.triggers.is_empty())
    }

    pub fn snapshot(&self) -> WatchSnapshot {
        WatchSnapshot {
            triggers: self.triggers().map(|(a, m, t)| ((a, m), t)).collect(),
            backlog: self.backlog.iter().copied().collect(),
            cursor: self.cursor,
            sweeps: self.sweeps.iter().copied().collect(),
            sweep_cursor: self.sweep_cursor,
        }
    }

    /// Rebuilds the watch from the snapshot's lists, refusing a trigger that
    /// `stands` says has no open position on its side to watch (or a floor no
    /// position could have), and a sweep of a market that is not a perpetual.
    pub fn restore(
        s: WatchSnapshot,
        stands: impl Fn(AccountId, u32, &Trigger) -> bool,
        is_perpetual: impl Fn(u32) -> bool,
    ) -> Result<Watch, String> {
        if let Some(m) = s.sweeps.iter().find(|&&m| !is_perpetual(m)) {
            return Err(format!("a sweep of market {m}, not a perpetual"));
        }
        let mut w = Watch {
            backlog: s.backlog.into_iter().collect(),
            cursor: s.cursor,
            sweeps: s.sweeps.into_iter().collect(),
            sweep_cursor: s.sweep_cursor,
            ..Watch::default()
        };
        for ((account, m), t) in s.triggers {
            // A floor is within a position's value, which `Perp::new` keeps
            // within half a u64: sums of them cannot overflow.
            if !stands(account, m, &t) || t.floor.unsigned_abs() > u128::from(u64::MAX) {
                return Err(format!(
                    "a trigger of account {account} on market {m} stands for nothing"
                ));
            }
            w.set(account, m, t);
        }
        Ok(w)
    }
}
