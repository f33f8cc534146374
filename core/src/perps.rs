//! Perpetual markets' own state, by market number: leverage brackets in minor units,
//! the index price and its rules, the mark price, and when each index goes stale.
//! A perpetual's book, fees and status are its `Market`'s; this part keeps what
//! only perpetuals have. Prices arrive as commands (`SetIndexPrice`): nothing here
//! reads a clock or a feed, so a replay decides the same way.
//!
//! Each perpetual also keeps its open interest and its clearing party's balance;
//! positions and margin are `positions.rs` and `margin.rs`. It keeps the insurance
//! fund's position too (taken over in liquidations: `liquidation.rs`) and its
//! funding rounds (`funding.rs`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use tape_schemas::{
    BracketTerms, Dec, LeverageBracket, PerpetualSpec, RejectReason, PERP_BRACKETS_MAX,
};

use crate::market::Market;

const PPM: u128 = 1_000_000;
/// The largest leverage a bracket may offer.
pub const LEVERAGE_MAX: u32 = 1_000;
/// The most the book may pull the mark from the index: 10%.
pub const MARK_BASIS_MAX_PPM: u32 = 100_000;
/// The longest an index may stay fresh: one day.
pub const STALE_AFTER_MAX_MS: u64 = 86_400_000;
/// Funding intervals from one minute to one day.
pub const FUNDING_INTERVAL_MS: std::ops::RangeInclusive<u64> = 60_000..=86_400_000;

/// One bracket in minor units of the collateral.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Bracket {
    pub floor_minor: u64,
    pub cap_minor: u64,
    pub max_leverage: u32,
    pub maintenance_ppm: u32,
    /// Maintenance margin = notional × rate − this (rounded down: against the
    /// trader, so the margin is never understated).
    pub cum_minor: u64,
}

/// The insurance fund's position on a perpetual: what it took over from accounts
/// the book could not close.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FundPos {
    pub lots: i64,
    pub cost: u64,
}

impl FundPos {
    pub fn signed_cost(&self) -> i128 {
        crate::positions::signed_cost(self.lots, self.cost)
    }
}

/// A funding round under way: each position that had a size when it began pays
/// or receives `rate_ppb` of its value at `mark_ticks`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Round {
    pub at_ms: u64,
    pub rate_ppb: i64,
    pub mark_ticks: u64,
    /// Where the walk stands: the side (longs first, then shorts) and the last
    /// position visited there, as (rank key, account).
    pub cursor: (bool, Option<(u128, tape_schemas::AccountId)>),
}

/// A perpetual's funding: when the next round is due, the premium samples since
/// the last one, and the round under way.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Funding {
    pub next_ms: u64,
    pub samples: u32,
    /// Σ of the samples, in parts per billion of the index.
    pub premium_sum_ppb: i128,
    /// Rounds begun so far.
    pub rounds: u64,
    pub round: Option<Round>,
    /// What the open round's payers paid less what its receivers got.
    pub pool: i128,
    /// The last round's rate.
    pub last_rate_ppb: i64,
    /// When the last premium sample was taken (command time).
    pub sampled_ms: u64,
}

/// The last index price taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Index {
    pub ticks: u64,
    pub source_ms: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct Perp {
    spec: PerpetualSpec,
    brackets: Vec<Bracket>,
    min_ticks: u64,
    max_ticks: u64,
    index: Option<Index>,
    mark_ticks: Option<u64>,
    /// The index is older than `stale_after_ms`: only reducing orders.
    stale: bool,
    /// The open-interest cap in lots (at most `i64::MAX`).
    oi_cap_lots: u64,
    /// Σ of the long positions' lots.
    open_interest: u64,
    /// The clearing party's balance: minus the Σ of the positions' signed costs
    /// (the insurance fund's included), plus the open funding round's pool.
    clearing: i128,
    /// The insurance fund's position (written through `Perps::set_fund`).
    pub fund: FundPos,
    pub funding: Funding,
}

/// A perpetual as the snapshot lists it: its spec and what changes.
#[derive(Serialize, Deserialize)]
pub(crate) struct PerpSnapshot {
    market: u32,
    spec: PerpetualSpec,
    index: Option<Index>,
    mark_ticks: Option<u64>,
    stale: bool,
    clearing: i128,
    fund: FundPos,
    funding: Funding,
}

impl Perp {
    /// Checks a spec against its market and derives the brackets.
    pub fn new(spec: PerpetualSpec, mk: &Market) -> Result<Perp, RejectReason> {
        let bad = RejectReason::InvalidPerpetualSpec;
        let brackets = derive_brackets(&spec.brackets, mk)?;
        let rules = &spec.index;
        if rules.max_move_ppm == 0
            || u128::from(rules.max_move_ppm) > PPM
            || rules.stale_after_ms == 0
            || rules.stale_after_ms > STALE_AFTER_MAX_MS
            || spec.mark_basis_max_ppm > MARK_BASIS_MAX_PPM
            || !FUNDING_INTERVAL_MS.contains(&spec.funding_interval_ms)
        {
            return Err(bad);
        }
        let min_ticks = mk.price_ticks(rules.min_price)?;
        let max_ticks = mk.price_ticks(rules.max_price)?;
        if min_ticks > max_ticks {
            return Err(bad);
        }
        // Within `i64`, so every position's signed size is.
        let oi_cap_lots =
            crate::units::to_units_allow_zero(spec.open_interest_max, spec.market.lot_size)
                .ok()
                .filter(|&l| i64::try_from(l).is_ok())
                .ok_or(bad)?;
        // Every position's value at any mark (at most the highest index plus a 10%
        // basis) fits in half a u64, so no sum of values or costs overflows.
        let value_max = u128::from(oi_cap_lots)
            * (u128::from(max_ticks) * 11 / 10 + 1)
            * u128::from(mk.notional_per_tick_lot);
        if value_max > u128::from(u64::MAX / 2) {
            return Err(bad);
        }
        Ok(Perp {
            oi_cap_lots,
            open_interest: 0,
            clearing: 0,
            spec,
            brackets,
            min_ticks,
            max_ticks,
            index: None,
            mark_ticks: None,
            stale: false,
            fund: FundPos::default(),
            funding: Funding::default(),
        })
    }

    pub fn spec(&self) -> &PerpetualSpec {
        &self.spec
    }

    pub fn index(&self) -> Option<Index> {
        self.index
    }

    pub fn mark_ticks(&self) -> Option<u64> {
        self.mark_ticks
    }

    pub fn is_stale(&self) -> bool {
        self.stale
    }

    pub fn open_interest(&self) -> u64 {
        self.open_interest
    }

    pub fn oi_cap_lots(&self) -> u64 {
        self.oi_cap_lots
    }

    pub fn clearing(&self) -> i128 {
        self.clearing
    }

    /// Records a fill's effect: the longs' change in lots and what it realized.
    pub fn filled(&mut self, longs_delta: i128, realized: i128) {
        let oi = i128::from(self.open_interest) + longs_delta;
        // Callers checked the cap for growth; shrinking stays at or above zero.
        self.open_interest = u64::try_from(oi).expect("open interest within its cap");
        self.clearing -= realized;
    }

    /// A funding payment into the clearing party (out of it when negative).
    pub fn funding_paid(&mut self, amount: i128) {
        self.clearing += amount;
        self.funding.pool += amount;
    }

    /// The funding rate cap: 75% of the first bracket's initial margin rate less
    /// its maintenance rate (Binance's rule), in parts per billion.
    pub fn funding_cap_ppb(&self) -> i64 {
        let b = &self.brackets[0];
        let initial = 1_000_000_000 / i64::from(b.max_leverage.max(1));
        (initial - i64::from(b.maintenance_ppm) * 1_000).max(0) * 3 / 4
    }

    /// The notional the funding premium's impact prices fill: 200 units of the
    /// collateral × the first bracket's leverage (Binance's), in minor units.
    pub fn impact_notional(&self, collateral_scale: u8) -> u128 {
        200 * 10u128.pow(u32::from(collateral_scale)) * u128::from(self.brackets[0].max_leverage)
    }

    /// The largest notional a position may reach: the last bracket's cap.
    pub fn position_cap(&self) -> u64 {
        self.brackets.last().map_or(0, |b| b.cap_minor)
    }

    /// The bracket a notional falls in (the last one above every cap).
    fn bracket(&self, notional: u128) -> &Bracket {
        self.brackets
            .iter()
            .find(|b| notional <= u128::from(b.cap_minor))
            .unwrap_or_else(|| self.brackets.last().expect("a perpetual has brackets"))
    }

    /// The maintenance rate of the bracket a notional falls in.
    pub fn maintenance_ppm_at(&self, notional: u128) -> u32 {
        self.bracket(notional).maintenance_ppm
    }

    /// The highest maintenance rate of any bracket (the last one's).
    pub fn highest_maintenance_ppm(&self) -> u32 {
        self.brackets.last().map_or(0, |b| b.maintenance_ppm)
    }

    /// The most leverage a position of `notional` may have.
    pub fn max_leverage_at(&self, notional: u128) -> u32 {
        self.bracket(notional).max_leverage
    }

    /// The maintenance margin of a position of `notional` (at the mark):
    /// notional × rate − the bracket's amount, never below zero.
    pub fn maintenance(&self, notional: u128) -> u128 {
        let b = self.bracket(notional);
        (notional * u128::from(b.maintenance_ppm))
            .div_ceil(PPM)
            .saturating_sub(u128::from(b.cum_minor))
    }

    /// The highest mark there can be: the highest index with the whole basis.
    pub fn highest_mark(&self) -> u64 {
        let band = u128::from(self.max_ticks) * u128::from(self.spec.mark_basis_max_ppm) / PPM;
        // `Perp::new` keeps the basis within 10%, so the sum fits.
        self.max_ticks
            .saturating_add(u64::try_from(band).unwrap_or(u64::MAX))
    }

    /// How far the rounded maintenance margin can stray from a straight line
    /// through the brackets, in minor units: each bracket's maintenance amount
    /// is rounded down once, and the margin itself up once. So between any two
    /// marks a position's profit less its maintenance moves against the mark's
    /// direction by at most this.
    pub fn rounding_minor(&self) -> i128 {
        // At most `PERP_BRACKETS_MAX` brackets.
        i128::try_from(self.brackets.len()).unwrap_or(i128::MAX)
    }

    /// The most leverage any position here may have (its first bracket's).
    pub fn first_bracket_max(&self) -> u32 {
        // `Perp::new` refuses a spec without brackets, so there is a first.
        self.brackets[0].max_leverage
    }

    /// The brackets as the `PerpetualCreated` event tells them.
    pub fn terms(&self, mk: &Market) -> Vec<BracketTerms> {
        self.brackets
            .iter()
            .map(|b| BracketTerms {
                notional_floor: mk.quote_dec(b.floor_minor),
                notional_cap: mk.quote_dec(b.cap_minor),
                max_leverage: b.max_leverage,
                maintenance_ppm: b.maintenance_ppm,
                maintenance_amount: mk.quote_dec(b.cum_minor),
            })
            .collect()
    }

    /// Checks an index update against the rules: `Ok` with its ticks.
    pub fn check_index(
        &self,
        mk: &Market,
        price: Dec,
        source_ms: u64,
        now_ms: u64,
    ) -> Result<u64, RejectReason> {
        let ticks = mk.price_ticks(price)?;
        if ticks < self.min_ticks || ticks > self.max_ticks {
            return Err(RejectReason::IndexOutsideLimits);
        }
        if source_ms > now_ms {
            return Err(RejectReason::IndexSourceTimeAhead);
        }
        if let Some(last) = self.index {
            if source_ms <= last.source_ms {
                return Err(RejectReason::IndexSourceTimeNotAfter);
            }
            let moved = u128::from(ticks.abs_diff(last.ticks)) * PPM;
            if moved > u128::from(last.ticks) * u128::from(self.spec.index.max_move_ppm) {
                return Err(RejectReason::IndexMoveTooLarge);
            }
        }
        Ok(ticks)
    }

    /// Takes a checked index and returns the mark it derives from it with the
    /// book's mid and the last trade.
    fn set_index(&mut self, index: Index, book: (Option<u64>, Option<u64>), now_ms: u64) -> u64 {
        self.index = Some(index);
        self.stale = false;
        let prices = MarkInputs {
            index: index.ticks,
            with_basis: self.funding_basis(index.ticks, now_ms),
            mid: book.0,
            last: book.1,
        };
        let mark = mark_ticks(prices, self.spec.mark_basis_max_ppm);
        self.mark_ticks = Some(mark);
        mark
    }

    /// Binance's Price 1: the index plus the funding basis, the last round's rate
    /// for the part of the interval left until the next round (rounded toward
    /// the index).
    fn funding_basis(&self, index: u64, now_ms: u64) -> u64 {
        let interval = i128::from(self.spec.funding_interval_ms);
        let left = i128::from(self.funding.next_ms.saturating_sub(now_ms)).min(interval);
        let rate = i128::from(self.funding.last_rate_ppb);
        let basis = i128::from(index) * rate * left / (1_000_000_000 * interval);
        u64::try_from(i128::from(index) + basis).unwrap_or(index)
    }

    /// When the index in force goes stale: `None` before the first index and once
    /// it is stale.
    fn stale_at(&self) -> Option<u64> {
        let index = self.index.filter(|_| !self.stale)?;
        Some(
            index
                .source_ms
                .saturating_add(self.spec.index.stale_after_ms),
        )
    }

    fn snapshot(&self, market: u32) -> PerpSnapshot {
        PerpSnapshot {
            market,
            spec: self.spec.clone(),
            index: self.index,
            mark_ticks: self.mark_ticks,
            stale: self.stale,
            clearing: self.clearing,
            fund: self.fund,
            funding: self.funding.clone(),
        }
    }
}

/// What the mark is the median of, in ticks.
pub(crate) struct MarkInputs {
    pub index: u64,
    /// The index with the funding basis (`Perp::funding_basis`).
    pub with_basis: u64,
    pub mid: Option<u64>,
    pub last: Option<u64>,
}

/// The mark price: the median of the index plus the funding basis (the last
/// round's rate over what is left of the interval: Binance's Price 1), the book's
/// mid and the last trade, each held within `basis_ppm` of the index. A missing
/// mid or trade counts as the index. So the book alone can never value a position (docs/margin.md), and
/// the mark moves only when an index arrives: every input is on the log.
pub(crate) fn mark_ticks(p: MarkInputs, basis_ppm: u32) -> u64 {
    let index = p.index;
    let band = u64::try_from(u128::from(index) * u128::from(basis_ppm) / PPM)
        .expect("a basis of at most 10% of a u64 price fits");
    let (lo, hi) = (index.saturating_sub(band), index.saturating_add(band));
    let held = |p: Option<u64>| p.map_or(index, |p| p.clamp(lo, hi));
    let mut v = [held(Some(p.with_basis)), held(p.mid), held(p.last)];
    v.sort_unstable();
    v[1]
}

/// Checks brackets and derives floors and maintenance amounts: caps rising,
/// leverage not rising, maintenance rates not falling and below the initial rate.
fn derive_brackets(given: &[LeverageBracket], mk: &Market) -> Result<Vec<Bracket>, RejectReason> {
    let bad = RejectReason::InvalidPerpetualSpec;
    if given.is_empty() || given.len() > PERP_BRACKETS_MAX {
        return Err(bad);
    }
    let mut out: Vec<Bracket> = Vec::with_capacity(given.len());
    for b in given {
        let cap_minor = mk.quote_minor(b.notional_cap).map_err(|_| bad)?;
        let initial_ppm = PPM / u128::from(b.max_leverage.max(1));
        let (floor_minor, prev_ppm, prev_cum, prev_leverage) = match out.last() {
            Some(p) => (p.cap_minor, p.maintenance_ppm, p.cum_minor, p.max_leverage),
            None => (0, 0, 0, LEVERAGE_MAX),
        };
        if b.max_leverage == 0
            || b.max_leverage > prev_leverage
            || b.maintenance_ppm == 0
            || b.maintenance_ppm < prev_ppm
            || u128::from(b.maintenance_ppm) >= initial_ppm
            || cap_minor <= floor_minor
        {
            return Err(bad);
        }
        let step = u128::from(floor_minor) * u128::from(b.maintenance_ppm - prev_ppm) / PPM;
        let cum_minor = u64::try_from(step)
            .ok()
            .and_then(|s| s.checked_add(prev_cum))
            .ok_or(bad)?;
        out.push(Bracket {
            floor_minor,
            cap_minor,
            max_leverage: b.max_leverage,
            maintenance_ppm: b.maintenance_ppm,
            cum_minor,
        });
    }
    Ok(out)
}

/// Every perpetual, by market number, and when each index goes stale.
#[derive(Clone, Debug, Default)]
pub(crate) struct Perps {
    by_market: BTreeMap<u32, Perp>,
    /// (deadline, market) for each fresh index.
    deadlines: BTreeSet<(u64, u32)>,
    /// (next funding time, market) for each perpetual.
    dues: BTreeSet<(u64, u32)>,
    /// The perpetuals with a funding round under way.
    open: BTreeSet<u32>,
    /// The perpetuals where the insurance fund holds a position: its equity is
    /// summed over these, not over every perpetual, at each take-over.
    fund_holds: BTreeSet<u32>,
}

impl Perps {
    pub fn get(&self, m: u32) -> Option<&Perp> {
        self.by_market.get(&m)
    }

    pub fn is_empty(&self) -> bool {
        self.by_market.is_empty()
    }

    pub fn get_mut(&mut self, m: u32) -> Option<&mut Perp> {
        self.by_market.get_mut(&m)
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, &Perp)> + '_ {
        self.by_market.iter().map(|(m, p)| (*m, p))
    }

    /// Sets each perpetual's open interest from the positions (after a restore).
    pub fn set_open_interest(&mut self, m: u32, lots: u64) {
        if let Some(p) = self.by_market.get_mut(&m) {
            p.open_interest = lots;
        }
    }

    pub fn contains(&self, m: u32) -> bool {
        self.by_market.contains_key(&m)
    }

    pub fn insert(&mut self, m: u32, perp: Perp) {
        // `m` is a market just pushed (`create_perpetual`) or a snapshot's number
        // checked unique (`restore`).
        if perp.fund.lots != 0 {
            self.fund_holds.insert(m);
        }
        let old = self.by_market.insert(m, perp);
        assert!(old.is_none(), "market {m} is a perpetual once");
    }

    /// Gives the insurance fund's position on `m` a new size and cost.
    pub fn set_fund(&mut self, m: u32, fund: FundPos) {
        let Some(perp) = self.by_market.get_mut(&m) else {
            return;
        };
        perp.fund = fund;
        if fund.lots != 0 {
            self.fund_holds.insert(m);
        } else {
            self.fund_holds.remove(&m);
        }
    }

    /// The perpetuals where the insurance fund holds a position.
    pub fn held_by_fund(&self) -> impl Iterator<Item = (u32, &Perp)> + '_ {
        // Listed only by `insert` and `set_fund`, for a perpetual there is.
        self.fund_holds
            .iter()
            .filter_map(|m| Some((*m, self.by_market.get(m)?)))
    }

    /// Whether `m` is listed as one where the fund holds a position.
    pub fn fund_holds(&self, m: u32) -> bool {
        self.fund_holds.contains(&m)
    }

    /// The perpetuals whose funding is due at `now_ms` and that have no round
    /// under way (a round waits for the one before it to end).
    pub fn funding_due(&self, now_ms: u64) -> Vec<u32> {
        self.dues
            .range(..=(now_ms, u32::MAX))
            .map(|&(_, m)| m)
            .filter(|m| self.by_market[m].funding.round.is_none())
            .collect()
    }

    /// Moves a perpetual's next funding time to the first interval boundary after
    /// `now_ms`; the time it was due.
    pub fn schedule_funding(&mut self, m: u32, now_ms: u64) -> u64 {
        let perp = self.by_market.get_mut(&m).expect("a perpetual");
        let due = perp.funding.next_ms;
        self.dues.remove(&(due, m));
        let interval = perp.spec.funding_interval_ms;
        perp.funding.next_ms = (now_ms / interval)
            .saturating_add(1)
            .saturating_mul(interval);
        self.dues.insert((perp.funding.next_ms, m));
        due
    }

    /// The first perpetual with a funding round under way.
    pub fn first_open_round(&self) -> Option<u32> {
        self.open.first().copied()
    }

    /// Opens a funding round (none is under way: `funding_due`).
    pub fn open_round(&mut self, m: u32, round: Round) {
        let perp = self.by_market.get_mut(&m).expect("a perpetual");
        perp.funding.rounds += 1;
        perp.funding.round = Some(round);
        perp.funding.last_rate_ppb = round.rate_ppb;
        perp.funding.samples = 0;
        perp.funding.premium_sum_ppb = 0;
        self.open.insert(m);
    }

    /// Ends a round: what is left in its pool (the payers' rounding up), which
    /// the clearing party pays out to the insurance fund.
    pub fn close_round(&mut self, m: u32) -> i128 {
        let perp = self.by_market.get_mut(&m).expect("a perpetual");
        perp.funding.round = None;
        self.open.remove(&m);
        let residue = std::mem::take(&mut perp.funding.pool);
        perp.clearing -= residue;
        residue
    }

    /// Takes a checked index for market `m`: the mark, and `true` when the index
    /// is already stale at `now_ms` (then no deadline waits for it).
    pub fn set_index(
        &mut self,
        m: u32,
        index: Index,
        book: (Option<u64>, Option<u64>),
        now_ms: u64,
    ) -> (u64, bool) {
        // Callers found `m` among the perpetuals (`get`) in the same command.
        let perp = self.by_market.get_mut(&m).expect("a perpetual");
        if let Some(at) = perp.stale_at() {
            self.deadlines.remove(&(at, m));
        }
        let mark = perp.set_index(index, book, now_ms);
        match perp.stale_at() {
            Some(at) if at > now_ms => {
                self.deadlines.insert((at, m));
                (mark, false)
            }
            _ => {
                perp.stale = true;
                (mark, true)
            }
        }
    }

    /// The next market whose index is stale at `now_ms`, marked stale.
    pub fn next_stale(&mut self, now_ms: u64) -> Option<(u32, Index)> {
        let &(deadline, m) = self.deadlines.first()?;
        if deadline > now_ms {
            return None;
        }
        self.deadlines.pop_first();
        // A deadline is only ever set for a perpetual's index (`set_index`, `restore`).
        let perp = self.by_market.get_mut(&m).expect("a perpetual");
        perp.stale = true;
        Some((m, perp.index.expect("a stale index was set")))
    }

    pub(crate) fn snapshot(&self) -> Vec<PerpSnapshot> {
        self.by_market.iter().map(|(m, p)| p.snapshot(*m)).collect()
    }

    /// The perpetuals a snapshot lists, over the markets already restored.
    pub(crate) fn restore(
        list: Vec<PerpSnapshot>,
        markets: &crate::market::Markets,
    ) -> Result<Perps, String> {
        let mut perps = Perps::default();
        for s in list {
            if s.market as usize >= markets.len() || perps.contains(s.market) {
                return Err(format!("perpetual of market {} listed wrongly", s.market));
            }
            let mk = &markets[s.market];
            if mk.spec != s.spec.market {
                return Err(format!(
                    "perpetual {} differs from its market",
                    mk.spec.symbol
                ));
            }
            let mut perp = Perp::new(s.spec, mk)
                .map_err(|r| format!("perpetual {}: {r:?}", mk.spec.symbol))?;
            perp.index = s.index;
            perp.mark_ticks = s.mark_ticks;
            perp.stale = s.stale;
            perp.clearing = s.clearing;
            perp.fund = s.fund;
            perp.funding = s.funding;
            if let Some(at) = perp.stale_at() {
                perps.deadlines.insert((at, s.market));
            }
            perps.dues.insert((perp.funding.next_ms, s.market));
            if perp.funding.round.is_some() {
                perps.open.insert(s.market);
            }
            perps.insert(s.market, perp);
        }
        Ok(perps)
    }
}

impl crate::exchange::Core {
    /// `CreatePerpetual`: a market for its book, and its perpetual rules.
    pub(crate) fn create_perpetual(
        &mut self,
        spec: &PerpetualSpec,
        out: &mut Vec<tape_schemas::Event>,
    ) -> crate::exchange::Outcome {
        if self.markets.contains(&spec.market.symbol) {
            return Err(RejectReason::MarketExists);
        }
        if self.markets.len() >= self.cfg.markets_max as usize {
            return Err(RejectReason::TooManyMarkets);
        }
        let market = Market::new(spec.market.clone(), &self.assets)?;
        let perp = Perp::new(spec.clone(), &market)?;
        let brackets = perp.terms(&market);
        let m = self.markets.push(market);
        self.perps.insert(m, perp);
        self.perps.schedule_funding(m, self.clock.now());
        out.push(tape_schemas::Event::PerpetualCreated {
            spec: spec.clone(),
            brackets,
        });
        Ok(u64::from(m))
    }

    /// Runs a perpetuals command other than `CreatePerpetual` (`execute` sends only
    /// those here).
    pub(crate) fn perpetual_command(
        &mut self,
        command: &tape_schemas::Command,
        out: &mut Vec<tape_schemas::Event>,
    ) -> crate::exchange::Outcome {
        use tape_schemas::Command;
        match command {
            Command::SetIndexPrice {
                market,
                price,
                source_ms,
            } => self.set_index_price(market, *price, *source_ms, out),
            Command::SetLeverageTiers(caps) => self.set_leverage_tiers(*caps, out),
            Command::SetAccountTier { account, tier } => {
                self.set_account_tier(*account, *tier, out)
            }
            Command::SetLeverage {
                account,
                market,
                leverage,
            } => self.set_leverage(*account, market, *leverage, out),
            Command::FundInsurance {
                asset,
                amount,
                reference,
            } => self.fund_insurance(asset, *amount, reference, out),
            Command::SetNotionalCap {
                account,
                asset,
                cap,
            } => self.set_notional_cap(*account, asset, *cap, out),
            // `execute` matches every command exhaustively and sends only the
            // commands above here, so no command a stranger writes reaches this arm.
            other => unreachable!("execute runs {other:?} itself"),
        }
    }

    /// `SetIndexPrice`: checked against the market's rules, then the mark.
    pub(crate) fn set_index_price(
        &mut self,
        market: &tape_schemas::Symbol,
        price: Dec,
        source_ms: u64,
        out: &mut Vec<tape_schemas::Event>,
    ) -> crate::exchange::Outcome {
        let m = self.markets.id(market)?;
        let perp = self.perps.get(m).ok_or(RejectReason::NotAPerpetual)?;
        let mk = &self.markets[m];
        let now = self.clock.now();
        let ticks = perp.check_index(mk, price, source_ms, now)?;
        let index = Index { ticks, source_ms };
        let book = (mk.book.mid(), mk.last_ticks());
        let (mark, stale) = self.perps.set_index(m, index, book, now);
        self.markets[m].set_mark(mark);
        self.positions.marks_moved();
        self.watch.crossed(m, mark);
        self.sample_premium(m);
        let mk = &self.markets[m];
        out.push(tape_schemas::Event::IndexPriceSet {
            market: *market,
            index: mk.price_dec(ticks),
            mark: mk.price_dec(mark),
            source_ms,
        });
        if stale {
            out.push(tape_schemas::Event::IndexStale {
                market: *market,
                source_ms,
            });
        }
        Ok(0)
    }

    /// The indexes the clock has made stale, each announced once.
    pub(crate) fn stale_indexes(&mut self, out: &mut Vec<tape_schemas::Event>) {
        while let Some((m, index)) = self.perps.next_stale(self.clock.now()) {
            out.push(tape_schemas::Event::IndexStale {
                market: self.markets[m].spec.symbol,
                source_ms: index.source_ms,
            });
        }
    }
}
