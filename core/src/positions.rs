//! Positions on perpetuals, one per account and market (one-way: a net signed
//! size), and each account's margin per collateral asset: what its positions and
//! resting orders require, and what the ledger holds for them.
//!
//! Only arithmetic and bookkeeping live here; `margin.rs` decides and posts.
//! A position keeps its cost (the entry notional of its size), so a mark tick never
//! changes what is held: the initial margin is taken at the entry price for the
//! position and at the limit price for orders, net of the orders that reduce it.

use std::collections::BTreeSet;

use rustc_hash::FxHashMap;

use serde::{Deserialize, Serialize};
use tape_schemas::{AccountId, Side};

use crate::by_account::in_order;
use crate::sorted;

pub(crate) const PPM: u128 = 1_000_000;

/// One side's resting orders of a position, summed.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub(crate) struct Resting {
    pub lots: u64,
    /// Σ open lots × limit price, in collateral minor units.
    pub notional: u128,
    /// Σ open notional × the order's highest fee rate in ppm.
    pub fee_ppm: u128,
}

impl Resting {
    pub fn add(&mut self, lots: u64, notional: u128, ppm: u32) {
        self.lots += lots;
        self.notional += notional;
        self.fee_ppm += notional * u128::from(ppm);
    }

    pub fn sub(&mut self, lots: u64, notional: u128, ppm: u32) {
        // Only what was added is taken away (`margin.rs` pairs every call).
        self.lots = self
            .lots
            .checked_sub(lots)
            .expect("resting lots were added");
        self.notional = self.notional.checked_sub(notional).expect("notional added");
        let fees = notional * u128::from(ppm);
        self.fee_ppm = self.fee_ppm.checked_sub(fees).expect("fee reserve added");
    }
}

/// One account's position on one perpetual, with its resting orders there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pos {
    /// Signed lots: long above zero. Bounded by the market's open-interest cap,
    /// which `Perp::new` keeps within `i64`.
    pub lots: i64,
    /// The entry notional of `|lots|`, in collateral minor units.
    pub cost: u64,
    /// The leverage its initial margin is held at.
    pub leverage: u32,
    pub buys: Resting,
    pub sells: Resting,
    /// The initial margin it requires now (kept in step by `margin.rs`).
    pub required: u128,
    /// The last funding round of its market it has settled (or that began
    /// before it had a size): a size it had when a later round began owes it.
    pub funded: u64,
}

impl Pos {
    pub fn new(leverage: u32) -> Pos {
        Pos {
            lots: 0,
            cost: 0,
            leverage,
            buys: Resting::default(),
            sells: Resting::default(),
            required: 0,
            funded: 0,
        }
    }

    /// Nothing open and nothing resting: the position can be forgotten.
    pub fn is_empty(&self) -> bool {
        self.lots == 0 && self.buys.lots == 0 && self.sells.lots == 0
    }

    pub fn resting_mut(&mut self, side: Side) -> &mut Resting {
        match side {
            Side::Buy => &mut self.buys,
            Side::Sell => &mut self.sells,
        }
    }

    /// Lots an order on `side` can take off this position without flipping it.
    pub fn reducible(&self, side: Side) -> u64 {
        match side {
            Side::Sell if self.lots > 0 => self.lots.unsigned_abs(),
            Side::Buy if self.lots < 0 => self.lots.unsigned_abs(),
            _ => 0,
        }
    }

    /// The signed cost: the cost with the size's sign.
    pub fn signed_cost(&self) -> i128 {
        signed_cost(self.lots, self.cost)
    }

    /// The notional its margin covers: the position's cost, plus the larger of
    /// what the orders that grow it would add and what the orders that reduce it
    /// would open beyond its size (both sides cannot fill without the position
    /// coming back through zero, and each fill is margined again).
    pub fn exposure(&self) -> u128 {
        let n = self.lots.unsigned_abs();
        let (grow, shrink) = if self.lots >= 0 {
            (&self.buys, &self.sells)
        } else {
            (&self.sells, &self.buys)
        };
        let beyond = if shrink.lots > n {
            (shrink.notional * u128::from(shrink.lots - n)).div_ceil(u128::from(shrink.lots))
        } else {
            0
        };
        u128::from(self.cost) + grow.notional.max(beyond)
    }

    /// The initial margin at `leverage` (already capped by the bracket): the
    /// exposure over the leverage, rounded up, plus the worst fee of every
    /// resting order.
    pub fn requirement(&self, leverage: u32) -> u128 {
        let fees = (self.buys.fee_ppm + self.sells.fee_ppm).div_ceil(PPM);
        self.exposure().div_ceil(u128::from(leverage.max(1))) + fees
    }

    /// Profit or loss against a mark of `per_lot` (collateral minor units per lot).
    pub fn unrealized(&self, per_lot: u128) -> i128 {
        let value = u128::from(self.lots.unsigned_abs()) * per_lot;
        // `Perp::new` keeps every position's value at any mark within u64.
        let value = i128::try_from(value).expect("a position's value fits");
        let cost = i128::from(self.cost);
        if self.lots >= 0 {
            value - cost
        } else {
            cost - value
        }
    }
}

/// A cost with the sign of its position's size.
pub(crate) fn signed_cost(lots: i64, cost: u64) -> i128 {
    if lots < 0 {
        -i128::from(cost)
    } else {
        i128::from(cost)
    }
}

/// A position after a fill, and what the fill realized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Filled {
    pub lots: i128,
    pub cost: u128,
    pub realized: i128,
}

/// What a fill of `lots` on `side` at `per_lot` (minor units per lot) does to a
/// position of `lots` signed lots that cost `cost`. The part that closes realizes
/// its share of the cost, rounded against the account (a long's share up, a
/// short's down); what is left of the cost stays exact, so a position closed in
/// several fills realizes exactly its proceeds less its cost.
pub(crate) fn after_fill(pos_lots: i64, cost: u64, side: Side, lots: u64, per_lot: u64) -> Filled {
    let n = u128::from(pos_lots.unsigned_abs());
    let (lots, per_lot, cost) = (u128::from(lots), u128::from(per_lot), u128::from(cost));
    let sign: i128 = if side == Side::Buy { 1 } else { -1 };
    let grows = pos_lots == 0 || (pos_lots > 0) == (side == Side::Buy);
    if grows {
        return Filled {
            lots: i128::from(pos_lots) + sign * lots as i128,
            cost: cost + lots * per_lot,
            realized: 0,
        };
    }
    let close = lots.min(n);
    let share = if pos_lots > 0 {
        (cost * close).div_ceil(n)
    } else {
        cost * close / n
    };
    let proceeds = close * per_lot;
    let realized = if pos_lots > 0 {
        proceeds as i128 - share as i128
    } else {
        share as i128 - proceeds as i128
    };
    let opened = lots - close;
    if opened > 0 {
        Filled {
            lots: sign * opened as i128,
            cost: opened * per_lot,
            realized,
        }
    } else {
        Filled {
            lots: i128::from(pos_lots) + sign * close as i128,
            cost: cost - share,
            realized,
        }
    }
}

/// An account's margin in one collateral asset.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub(crate) struct Margin {
    /// Σ of its positions' `required`.
    pub required: u128,
    /// What the ledger holds for them (part of the account's `held`). Below
    /// `required` only while the account is short of margin.
    pub held: u64,
}

/// Where a position ranks for auto-deleveraging on its market and side: by its
/// entry price (its cost per lot, in millionths of a minor unit), the most
/// profitable first at any mark (a long's lowest entry, a short's highest).
pub(crate) fn rank_key(lots: i64, cost: u64) -> u128 {
    let entry = u128::from(cost) * PPM / u128::from(lots.unsigned_abs().max(1));
    if lots > 0 {
        entry
    } else {
        u128::MAX - entry
    }
}

/// One account's positions (by market number), margins (by collateral asset)
/// and kept unrealized figures, together: a check of the account finds all of
/// them with one lookup, not one descent per map of a million entries.
#[derive(Clone, Debug, Default)]
struct Held {
    positions: Vec<(u32, Pos)>,
    margins: Vec<(u16, Margin)>,
    /// By asset: (`marks_version` when walked, figure); see `marks_version`.
    unrealized: Vec<(u16, (u64, i128))>,
}

impl Held {
    fn is_empty(&self) -> bool {
        self.positions.is_empty() && self.margins.is_empty() && self.unrealized.is_empty()
    }
}

/// Every open position and every account's margin.
///
/// Kept by account in a hash map, which is never iterated as it stands: every
/// walk over all accounts (`all`, `margins`, `kept`, the snapshot) goes in
/// account order, so nothing that reaches an event or a snapshot depends on
/// the map's layout.
#[derive(Clone, Debug, Default)]
pub(crate) struct Positions {
    accounts: FxHashMap<AccountId, Held>,
    /// Each position with a size, as (market, long, `rank_key`, account): the
    /// deleveraging order, and the funding rounds' walk over a market.
    ranked: BTreeSet<(u32, bool, u128, AccountId)>,
    /// Moves with every new mark: a kept unrealized figure (each account's
    /// unrealized profit and loss in a collateral asset as last walked, with
    /// the version then; `Core::unrealized`) is up to date only while the
    /// version is the same. A change of size drops the account's figures.
    /// Kept only for accounts with `UNREALIZED_KEPT_FROM` positions or more in
    /// the asset (fewer are cheaper to walk), and not in the snapshot: it only
    /// spares walks, and never holds a figure the walk would not give.
    marks_version: u64,
}

/// Positions from which an account's unrealized profit and loss is kept.
const UNREALIZED_KEPT_FROM: usize = 4;

/// A position as the snapshot lists it: what its resting orders do not rebuild.
#[derive(Serialize, Deserialize)]
pub(crate) struct PosSnapshot {
    pub account: AccountId,
    pub market: u32,
    pub lots: i64,
    pub cost: u64,
    pub leverage: u32,
    pub funded: u64,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct PositionsSnapshot {
    pub positions: Vec<PosSnapshot>,
    /// (account, collateral asset, held for margin).
    pub held: Vec<(AccountId, u16, u64)>,
}

impl Positions {
    pub fn get(&self, account: AccountId, m: u32) -> Option<&Pos> {
        sorted::get(&self.accounts.get(&account)?.positions, m)
    }

    pub fn get_mut(&mut self, account: AccountId, m: u32) -> Option<&mut Pos> {
        sorted::get_mut(&mut self.accounts.get_mut(&account)?.positions, m)
    }

    /// The position, opened at `leverage` and settled up to funding round
    /// `funded` if there was none.
    pub fn entry(&mut self, account: AccountId, m: u32, leverage: u32, funded: u64) -> &mut Pos {
        let held = self.accounts.entry(account).or_default();
        sorted::get_or_insert_with(&mut held.positions, m, || {
            let mut p = Pos::new(leverage);
            p.funded = funded;
            p
        })
    }

    /// Gives a position a new size and cost, keeping the ranking in step (every
    /// change of size goes through here).
    pub fn resize(&mut self, account: AccountId, m: u32, lots: i64, cost: u64) {
        let Some(held) = self.accounts.get_mut(&account) else {
            return;
        };
        let Some(pos) = sorted::get_mut(&mut held.positions, m) else {
            return;
        };
        if pos.lots != 0 {
            let key = rank_key(pos.lots, pos.cost);
            self.ranked.remove(&(m, pos.lots > 0, key, account));
        }
        pos.lots = lots;
        pos.cost = cost;
        held.unrealized.clear();
        if lots != 0 {
            self.ranked
                .insert((m, lots > 0, rank_key(lots, cost), account));
        }
    }

    /// A mark moved: every kept unrealized figure is out of date.
    pub fn marks_moved(&mut self) {
        self.marks_version = self.marks_version.wrapping_add(1);
    }

    /// The account's unrealized profit and loss in `asset`, if it is kept and
    /// no mark has moved since.
    pub fn kept_unrealized(&self, account: AccountId, asset: u16) -> Option<i128> {
        let &(version, v) = sorted::get(&self.accounts.get(&account)?.unrealized, asset)?;
        (version == self.marks_version).then_some(v)
    }

    /// Keeps the account's unrealized profit and loss in `asset`, just walked
    /// over its `positions` there, if they are enough to be worth keeping.
    pub fn keep_unrealized(
        &mut self,
        account: AccountId,
        asset: u16,
        (v, positions): (i128, usize),
    ) {
        if positions < UNREALIZED_KEPT_FROM {
            return;
        }
        let version = self.marks_version;
        let Some(held) = self.accounts.get_mut(&account) else {
            return; // no positions: nothing was walked
        };
        sorted::set(&mut held.unrealized, asset, (version, v));
    }

    /// Every kept figure that is up to date: (account, asset, figure), in order.
    pub fn kept(&self) -> impl Iterator<Item = (AccountId, u16, i128)> + '_ {
        in_order(&self.accounts)
            .into_iter()
            .flat_map(move |(a, held)| {
                held.unrealized
                    .iter()
                    .filter(move |(_, (version, _))| *version == self.marks_version)
                    .map(move |&(asset, (_, v))| (a, asset, v))
            })
    }

    /// The positions of one market and side with a size, from `after` (exclusive)
    /// in the deleveraging order.
    pub fn ranked_after(
        &self,
        m: u32,
        long: bool,
        after: Option<(u128, AccountId)>,
    ) -> impl Iterator<Item = (u128, AccountId)> + '_ {
        use std::ops::Bound::{Excluded, Included};
        let from = match after {
            Some((k, a)) => Excluded((m, long, k, a)),
            None => Included((m, long, 0, AccountId(0))),
        };
        let to = Included((m, long, u128::MAX, AccountId(u64::MAX)));
        self.ranked.range((from, to)).map(|k| (k.2, k.3))
    }

    /// How many positions the ranking lists (the invariants compare).
    pub fn ranked_len(&self) -> usize {
        self.ranked.len()
    }

    pub fn is_ranked(&self, account: AccountId, m: u32, p: &Pos) -> bool {
        self.ranked
            .contains(&(m, p.lots > 0, rank_key(p.lots, p.cost), account))
    }

    /// Forgets a position with nothing open or resting.
    pub fn forget_if_empty(&mut self, account: AccountId, m: u32) {
        let Some(held) = self.accounts.get_mut(&account) else {
            return;
        };
        if sorted::get(&held.positions, m).is_some_and(Pos::is_empty) {
            sorted::remove(&mut held.positions, m);
        }
        self.forget_account_if_empty(account);
    }

    fn forget_account_if_empty(&mut self, account: AccountId) {
        if self.accounts.get(&account).is_some_and(Held::is_empty) {
            self.accounts.remove(&account);
        }
    }

    /// An account's positions, by market number.
    pub fn of(&self, account: AccountId) -> impl Iterator<Item = (u32, &Pos)> + '_ {
        self.accounts
            .get(&account)
            .into_iter()
            .flat_map(|h| h.positions.iter().map(|(m, p)| (*m, p)))
    }

    /// Every position, by account and market.
    pub fn all(&self) -> impl Iterator<Item = (AccountId, u32, &Pos)> + '_ {
        in_order(&self.accounts)
            .into_iter()
            .flat_map(|(a, held)| held.positions.iter().map(move |(m, p)| (a, *m, p)))
    }

    pub fn margin(&self, account: AccountId, asset: u16) -> Margin {
        self.accounts
            .get(&account)
            .and_then(|h| sorted::get(&h.margins, asset).copied())
            .unwrap_or_default()
    }

    /// Every account's margins, by account and asset.
    pub fn margins(&self) -> impl Iterator<Item = (AccountId, u16, Margin)> + '_ {
        in_order(&self.accounts)
            .into_iter()
            .flat_map(|(a, held)| held.margins.iter().map(move |&(s, m)| (a, s, m)))
    }

    /// Sets an account's margin; an empty one is forgotten.
    pub fn set_margin(&mut self, account: AccountId, asset: u16, margin: Margin) {
        if margin == Margin::default() {
            if let Some(held) = self.accounts.get_mut(&account) {
                sorted::remove(&mut held.margins, asset);
            }
            return self.forget_account_if_empty(account);
        }
        sorted::set(
            &mut self.accounts.entry(account).or_default().margins,
            asset,
            margin,
        );
    }

    /// Whether the account has any position or resting order in a perpetual.
    pub fn has_any(&self, account: AccountId) -> bool {
        self.accounts
            .get(&account)
            .is_some_and(|h| !h.positions.is_empty())
    }

    pub fn snapshot(&self) -> PositionsSnapshot {
        PositionsSnapshot {
            positions: self
                .all()
                .map(|(a, m, p)| PosSnapshot {
                    account: a,
                    market: m,
                    lots: p.lots,
                    cost: p.cost,
                    leverage: p.leverage,
                    funded: p.funded,
                })
                .collect(),
            held: self.margins().map(|(a, s, m)| (a, s, m.held)).collect(),
        }
    }

    /// Puts a restored position or margin back; `false` if it was listed twice.
    pub fn restore_position(&mut self, s: &PosSnapshot) -> bool {
        if self.get(s.account, s.market).is_some() {
            return false;
        }
        self.entry(s.account, s.market, s.leverage, s.funded);
        self.resize(s.account, s.market, s.lots, s.cost);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_walk_over_all_accounts_goes_in_account_order() {
        // Opened in an order unlike the accounts' (the hash map's is neither).
        let mut ps = Positions::default();
        let opened = [(907u64, 3u32), (5, 9), (61, 1), (5, 2), (907, 0), (12, 4)];
        for (i, &(a, m)) in opened.iter().enumerate() {
            ps.entry(AccountId(a), m, 10, 0);
            ps.resize(AccountId(a), m, 1 + i as i64, 100);
            let margin = Margin {
                required: 1,
                held: 1,
            };
            ps.set_margin(AccountId(a), (m % 2) as u16, margin);
        }
        let mut sorted: Vec<(AccountId, u32)> =
            opened.iter().map(|&(a, m)| (AccountId(a), m)).collect();
        sorted.sort();
        let all: Vec<(AccountId, u32)> = ps.all().map(|(a, m, _)| (a, m)).collect();
        assert_eq!(all, sorted);
        let snap: Vec<(AccountId, u32)> = ps
            .snapshot()
            .positions
            .iter()
            .map(|p| (p.account, p.market))
            .collect();
        assert_eq!(snap, sorted);
        let margins: Vec<(AccountId, u16)> = ps.margins().map(|(a, s, _)| (a, s)).collect();
        let mut want = margins.clone();
        want.sort();
        want.dedup();
        assert_eq!(margins, want, "by account, then asset, once each");
        assert_eq!(margins.len(), 6);
        // A position closed with nothing resting is forgotten; its account's
        // record goes with its last position and margin.
        ps.resize(AccountId(61), 1, 0, 0);
        ps.forget_if_empty(AccountId(61), 1);
        ps.set_margin(AccountId(61), 1, Margin::default());
        assert!(!ps.has_any(AccountId(61)));
        assert!(ps.margins().all(|(a, _, _)| a != AccountId(61)));
    }

    #[test]
    fn closing_in_parts_realizes_exactly_proceeds_less_cost() {
        // Long 3 lots for 1000; sold one lot at a time for 400 each.
        let mut lots = 3i64;
        let mut cost = 1000u64;
        let mut realized = 0i128;
        for _ in 0..3 {
            let f = after_fill(lots, cost, Side::Sell, 1, 400);
            realized += f.realized;
            lots = f.lots as i64;
            cost = f.cost as u64;
        }
        assert_eq!((lots, cost), (0, 0));
        assert_eq!(realized, 1200 - 1000);
    }

    #[test]
    fn each_partial_close_rounds_against_the_account() {
        // A long's share of cost rounds up: 1000 × 1/3 = 333.3 → 334.
        let f = after_fill(3, 1000, Side::Sell, 1, 400);
        assert_eq!((f.realized, f.cost), (66, 666));
        // A short's rounds down: 333, so it realizes 333 − 300 = 33.
        let f = after_fill(-3, 1000, Side::Buy, 1, 300);
        assert_eq!((f.realized, f.cost), (33, 667));
    }

    #[test]
    fn a_fill_through_zero_closes_then_opens_at_the_fill_price() {
        let f = after_fill(2, 200, Side::Sell, 5, 150);
        assert_eq!(
            f,
            Filled {
                lots: -3,
                cost: 450,
                realized: 100
            }
        );
    }

    #[test]
    fn the_margin_nets_reducing_orders_against_the_position() {
        let mut p = Pos::new(10);
        p.lots = 4;
        p.cost = 4000;
        // Sells that only close: no more margin.
        p.sells.add(4, 4400, 0);
        assert_eq!(p.exposure(), 4000);
        // Two more lots beyond the position: their share of the sells' notional.
        p.sells.add(2, 2400, 0);
        assert_eq!(p.exposure(), 4000 + (6800 * 2u128).div_ceil(6));
        // Buys that grow it weigh against that; the larger counts.
        p.buys.add(5, 5000, 1_000);
        assert_eq!(p.exposure(), 9000);
        assert_eq!(p.requirement(10), 900 + 5);
    }
}
