//! Funding on perpetuals, in command time. Each index update samples the premium:
//! how far the book's impact bid and ask (the average price of filling the impact
//! notional) stand from the index. At each interval boundary a round begins with
//! the rate
//!
//! `rate = P + clamp(I − P, −C, +C)`, capped at ±cap,
//!
//! where P is the mean of the samples since the last round, I the interest
//! (0.01% per 8 hours, scaled to the interval), C 0.05% per 8 hours scaled the same
//! way and the cap 75% of the first bracket's initial margin rate less its
//! maintenance rate (Binance's rules). Longs pay shorts `rate` of their position's
//! value at the round's mark (shorts pay longs when it is negative).
//!
//! A round charges position by position, at most `FUNDING_STEPS_MAX` a command,
//! walking the market's positions in their ranked order, so no command scans a
//! market. A position whose size changes before the walk reaches it is charged
//! first, at the size it had when the round began; a position opened after the
//! round began owes nothing for it. Each payment is a posting with the market's
//! clearing party, rounded against the account (a payer's share up, a receiver's
//! down), so the round's pool ends at or above zero; the residue goes to the
//! insurance fund when the round ends. The insurance fund's own position pays or
//! receives as the round begins.

use tape_schemas::*;

use crate::exchange::Core;
use crate::perps::Round;

/// Positions a funding round visits per command (charged or passed over).
pub const FUNDING_STEPS_MAX: usize = 64;
/// The premium is sampled at most once per this much command time (Binance
/// samples every 5 seconds), so index updates in a burst cost no book walk.
const SAMPLE_EVERY_MS: u64 = 5_000;
/// Resting orders the impact price walks on each side at most.
const IMPACT_ORDERS_MAX: usize = 64;
const PPB: i128 = 1_000_000_000;
/// Eight hours: the period the interest and clamp are quoted for.
const EIGHT_HOURS_MS: i128 = 28_800_000;
/// Interest per 8 hours: 0.01%.
const INTEREST_PPB: i128 = 100_000;
/// The clamp on interest less premium per 8 hours: 0.05%.
const CLAMP_PPB: i128 = 500_000;

/// The funding rate of a round from the mean premium (both in parts per billion).
pub(crate) fn funding_rate_ppb(premium_ppb: i64, interval_ms: u64, cap_ppb: i64) -> i64 {
    let scale = |per_8h: i128| per_8h * i128::from(interval_ms) / EIGHT_HOURS_MS;
    let (interest, clamp) = (scale(INTEREST_PPB), scale(CLAMP_PPB));
    let p = i128::from(premium_ppb);
    let rate = p + (interest - p).clamp(-clamp, clamp);
    let cap = i128::from(cap_ppb);
    // Within ±cap, which is below one billion.
    i64::try_from(rate.clamp(-cap, cap)).expect("a capped rate fits")
}

impl Core {
    /// The average value per lot of filling `notional` from the best orders of
    /// `side`, as (notional filled, lots): `None` when the book is thinner.
    fn impact(&self, m: u32, side: Side, notional: u128) -> Option<(u128, u128)> {
        let book = &self.markets[m].book;
        let (mut filled, mut lots, mut seen) = (0u128, 0u128, 0usize);
        for (ticks, level) in book.levels(side) {
            let per_lot = self.per_lot(m, ticks);
            for slot in book.queue(level) {
                seen += 1;
                if seen > IMPACT_ORDERS_MAX {
                    return None;
                }
                let o = book.get(slot);
                let want = (notional - filled).div_ceil(per_lot.max(1));
                let take = u128::from(o.visible_lots).min(want);
                filled += take * per_lot;
                lots += take;
                if filled >= notional {
                    return Some((filled, lots));
                }
            }
        }
        None
    }

    /// Takes a premium sample for perpetual `m` against its index, in parts per
    /// billion: `(max(0, impact bid − index) − max(0, index − impact ask)) / index`;
    /// at most one per `SAMPLE_EVERY_MS` of command time.
    pub(crate) fn sample_premium(&mut self, m: u32) {
        let now = self.clock.now();
        let Some(perp) = self.perps.get(m) else {
            return;
        };
        let f = &perp.funding;
        if f.samples > 0 && now < f.sampled_ms.saturating_add(SAMPLE_EVERY_MS) {
            return;
        }
        let Some(index) = perp.index() else { return };
        let scale = self.assets.get(self.markets[m].quote).scale;
        let notional = perp.impact_notional(scale);
        let per_lot = self.per_lot(m, index.ticks).max(1);
        // Each side's term in ppb of the index value of the lots it filled.
        let term = |side: Side| -> i128 {
            let Some((filled, lots)) = self.impact(m, side, notional) else {
                return 0;
            };
            let at_index = per_lot * lots;
            let gap = match side {
                Side::Buy => filled.saturating_sub(at_index),
                Side::Sell => at_index.saturating_sub(filled),
            };
            i128::try_from(gap * PPB as u128 / at_index.max(1)).unwrap_or(PPB)
        };
        let sample = (term(Side::Buy) - term(Side::Sell)).clamp(-PPB, PPB);
        let perp = self.perps.get_mut(m).expect("just found");
        perp.funding.samples = perp.funding.samples.saturating_add(1);
        perp.funding.premium_sum_ppb += sample;
        perp.funding.sampled_ms = now;
    }

    /// Begins the rounds that are due, then walks the rounds under way for at
    /// most `FUNDING_STEPS_MAX` positions.
    pub(crate) fn run_funding(&mut self, out: &mut Vec<Event>) {
        let now = self.clock.now();
        for m in self.perps.funding_due(now) {
            self.begin_round(m, now, out);
        }
        let mut budget = FUNDING_STEPS_MAX;
        while budget > 0 {
            let Some(m) = self.perps.first_open_round() else {
                break;
            };
            budget = self.walk_round(m, budget, out);
        }
    }

    fn begin_round(&mut self, m: u32, now: u64, out: &mut Vec<Event>) {
        let at_ms = self.perps.schedule_funding(m, now);
        let perp = self.perps.get(m).expect("a perpetual");
        let Some(mark) = perp.mark_ticks() else {
            return; // no index yet, so no position either
        };
        let f = &perp.funding;
        let premium = match f.samples {
            0 => 0,
            n => f.premium_sum_ppb / i128::from(n),
        };
        let premium = i64::try_from(premium).expect("samples within ±1e9");
        let interval = perp.spec().funding_interval_ms;
        let rate_ppb = funding_rate_ppb(premium, interval, perp.funding_cap_ppb());
        let round = Round {
            at_ms,
            rate_ppb,
            mark_ticks: mark,
            cursor: (true, None),
        };
        self.perps.open_round(m, round);
        let mk = &self.markets[m];
        out.push(Event::FundingRound {
            market: mk.spec.symbol,
            at_ms,
            rate: Dec::from_minor(i128::from(rate_ppb), 9),
            premium: Dec::from_minor(i128::from(premium), 9),
            mark: mk.price_dec(mark),
        });
        self.fund_funding(m, &round, out);
    }

    /// What `lots` pay (below zero) or receive in a round: a payer's share rounded
    /// up, a receiver's down.
    fn funding_amount(&self, m: u32, round: &Round, lots: i64) -> i128 {
        let value = u128::from(lots.unsigned_abs()) * self.per_lot(m, round.mark_ticks);
        let exact = value * u128::from(round.rate_ppb.unsigned_abs());
        let pays = (lots > 0) == (round.rate_ppb > 0);
        // A value within half a u64 times a rate below one: within i128.
        if pays {
            -i128::try_from(exact.div_ceil(PPB as u128)).expect("fits")
        } else {
            i128::try_from(exact / PPB as u128).expect("fits")
        }
    }

    /// The insurance fund's position pays or receives as the round begins.
    fn fund_funding(&mut self, m: u32, round: &Round, out: &mut Vec<Event>) {
        let lots = self.perps.get(m).expect("a perpetual").fund.lots;
        if lots == 0 {
            return;
        }
        let amount = self.funding_amount(m, round, lots);
        let mk = &self.markets[m];
        let (asset, symbol) = (mk.quote, mk.spec.symbol);
        let (from, to) = if amount < 0 {
            (Party::Insurance, Party::Clearing(symbol))
        } else {
            (Party::Clearing(symbol), Party::Insurance)
        };
        let minor = u64::try_from(amount.unsigned_abs()).expect("below a position's value");
        let cause = Cause::Funding(symbol);
        self.ledger
            .post(&self.assets, asset, from, to, minor, cause, out);
        let perp = self.perps.get_mut(m).expect("a perpetual");
        perp.funding_paid(-amount);
    }

    /// Visits up to `budget` positions of the round on `m`; what is left of the
    /// budget. The round ends once both sides are walked.
    fn walk_round(&mut self, m: u32, mut budget: usize, out: &mut Vec<Event>) -> usize {
        let perp = self.perps.get(m).expect("a perpetual");
        let round = perp.funding.round.expect("an open round");
        let rounds = perp.funding.rounds;
        let (mut long, mut after) = round.cursor;
        while budget > 0 {
            let Some((key, account)) = self.positions.ranked_after(m, long, after).next() else {
                if long {
                    (long, after) = (false, None);
                    continue;
                }
                self.end_round(m, out);
                return budget;
            };
            budget -= 1;
            after = Some((key, account));
            if self
                .positions
                .get(account, m)
                .is_some_and(|p| p.funded < rounds)
            {
                self.charge_funding(account, m, out);
            }
        }
        let perp = self.perps.get_mut(m).expect("a perpetual");
        if let Some(r) = perp.funding.round.as_mut() {
            r.cursor = (long, after);
        }
        budget
    }

    /// Ends the round on `m`: its pool's residue goes to the insurance fund.
    fn end_round(&mut self, m: u32, out: &mut Vec<Event>) {
        let residue = self.perps.close_round(m);
        let mk = &self.markets[m];
        let (asset, symbol) = (mk.quote, mk.spec.symbol);
        // Each payer rounded up and each receiver down over sizes that sum to
        // zero: the residue is not negative.
        let minor = u64::try_from(residue).expect("a round's residue is below its payments");
        let cause = Cause::Funding(symbol);
        let (a, l) = (&self.assets, &mut self.ledger);
        l.post(
            a,
            asset,
            Party::Clearing(symbol),
            Party::Insurance,
            minor,
            cause,
            out,
        );
    }

    /// Charges one position the open round on `m`, at the size it has (which it
    /// had when the round began: a change of size settles first).
    pub(crate) fn charge_funding(&mut self, account: AccountId, m: u32, out: &mut Vec<Event>) {
        let perp = self.perps.get(m).expect("a perpetual");
        let rounds = perp.funding.rounds;
        let round = perp.funding.round.expect("an open round");
        let pos = self.positions.get_mut(account, m).expect("a position");
        pos.funded = rounds;
        let lots = pos.lots;
        if lots == 0 {
            return;
        }
        let amount = self.funding_amount(m, &round, lots);
        let mk = &self.markets[m];
        let (asset, symbol) = (mk.quote, mk.spec.symbol);
        let size = mk.size_dec(lots);
        let minor = u64::try_from(amount.unsigned_abs()).expect("below a position's value");
        let cause = Cause::Funding(symbol);
        if amount < 0 {
            self.pay_from(account, asset, minor, Party::Clearing(symbol), cause, out);
        } else {
            let to = Party::Available(account);
            let (a, l) = (&self.assets, &mut self.ledger);
            l.post(a, asset, Party::Clearing(symbol), to, minor, cause, out);
        }
        self.perps
            .get_mut(m)
            .expect("a perpetual")
            .funding_paid(-amount);
        out.push(Event::FundingPaid {
            account,
            market: symbol,
            at_ms: round.at_ms,
            size,
            amount: Dec::from_minor(amount, u32::from(self.markets[m].quote_scale)),
        });
        self.watch.touch(account);
    }

    /// Before a position's size changes: the open round is charged on the size it
    /// had, or marked as settled if it had none.
    pub(crate) fn settle_funding(&mut self, account: AccountId, m: u32, out: &mut Vec<Event>) {
        let Some(perp) = self.perps.get(m) else {
            return;
        };
        if perp.funding.round.is_none() {
            return;
        }
        let rounds = perp.funding.rounds;
        if self
            .positions
            .get(account, m)
            .is_some_and(|p| p.funded < rounds)
        {
            self.charge_funding(account, m, out);
        }
    }
}
