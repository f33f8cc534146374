//! Fees: the accounts' own tiers (this part's state), the rates an account pays in a
//! market, what a fill is charged, and how much of a hold is there to cover the
//! worst fee. A market's own rates are one of its controls (`market`).
//!
//! A fee is charged in quote on every fill, at the maker or the taker rate, rounded
//! down. An order holds for the higher of its two rates, so a resting order that later
//! takes (after an amend) is still covered.

use std::collections::BTreeMap;

use tape_schemas::*;

use crate::book::Order;
use crate::exchange::{Core, Outcome};
use crate::market::Market;

pub use tape_schemas::limits::FEE_PPM_MAX;

/// Fee on a notional at `ppm` parts per million, rounded down to the minor unit, so
/// that per-fill fees never add up to more than the fee held for the whole order.
pub fn fee(notional: u64, ppm: u32) -> u64 {
    ((u128::from(notional) * u128::from(ppm)) / 1_000_000) as u64
}

/// The accounts' own fee tiers, by (account, market).
#[derive(Clone, Debug, Default)]
pub(crate) struct Fees {
    tiers: BTreeMap<(AccountId, u32), FeeRates>,
}

impl Fees {
    /// An account's own tier in a market, if it has one.
    pub fn tier(&self, account: AccountId, m: u32) -> Option<FeeRates> {
        self.tiers.get(&(account, m)).copied()
    }

    /// Sets (or with `None` clears) an account's tier in a market.
    fn set_tier(&mut self, account: AccountId, m: u32, rates: Option<FeeRates>) {
        match rates {
            Some(r) => {
                assert!(check_fees(&r).is_ok(), "a tier within the fee limit");
                self.tiers.insert((account, m), r);
            }
            None => {
                self.tiers.remove(&(account, m));
            }
        }
    }

    /// What a fill of `notional` charges the maker and the taker at their rates.
    pub fn of_fill(notional: u64, maker_ppm: u32, taker_ppm: u32) -> (u64, u64) {
        let (maker, taker) = (fee(notional, maker_ppm), fee(notional, taker_ppm));
        assert!(
            maker <= notional && taker <= notional,
            "a fee is at most the notional it is charged on"
        );
        (maker, taker)
    }

    /// The tiers in (account, market) order, for the snapshot.
    pub fn snapshot(&self) -> Vec<(AccountId, u32, FeeRates)> {
        self.tiers.iter().map(|((a, m), r)| (*a, *m, *r)).collect()
    }

    pub fn restore(entries: Vec<(AccountId, u32, FeeRates)>, markets: u32) -> Result<Self, String> {
        let mut fees = Fees::default();
        for (account, m, rates) in entries {
            if m >= markets || check_fees(&rates).is_err() {
                return Err(format!("fee tier of account {account} is not valid"));
            }
            fees.tiers.insert((account, m), rates);
        }
        Ok(fees)
    }
}

/// The rate an order's hold covers: the higher of maker and taker.
pub fn hold_ppm(rates: FeeRates) -> u32 {
    rates.maker_ppm.max(rates.taker_ppm)
}

/// The rate a live order's hold covers.
pub(crate) fn max_ppm(o: &Order) -> u32 {
    o.maker_ppm.max(o.taker_ppm)
}

pub(crate) fn check_fees(f: &FeeRates) -> Result<(), RejectReason> {
    if f.maker_ppm > FEE_PPM_MAX || f.taker_ppm > FEE_PPM_MAX {
        return Err(RejectReason::InvalidFee);
    }
    Ok(())
}

/// The most lots whose cost, notional plus fee at `ppm`, fits in `budget`.
pub(crate) fn affordable_lots(budget: u64, per_lot: u64, ppm: u32) -> u64 {
    let per_lot = u128::from(per_lot);
    let cost = |lots: u128| {
        let n = lots * per_lot;
        n + n * u128::from(ppm) / 1_000_000
    };
    let mut lots = u128::from(budget) * 1_000_000 / (per_lot * (1_000_000 + u128::from(ppm)));
    while cost(lots + 1) <= u128::from(budget) {
        lots += 1;
    }
    u64::try_from(lots).unwrap_or(u64::MAX)
}

impl Market {
    /// Funds a buy must hold for `lots` at `ticks`: notional plus the largest fee it
    /// can be charged at `fee_ppm`.
    pub fn buy_hold(&self, ticks: u64, lots: u64, fee_ppm: u32) -> Result<u64, RejectReason> {
        let n = self.notional(ticks, lots)?;
        n.checked_add(fee(n, fee_ppm))
            .ok_or(RejectReason::OutOfRange)
    }
}

impl Core {
    /// The rates an account pays in a market: its own tier, else the market's.
    pub(crate) fn fees_for(&self, account: AccountId, m: u32) -> FeeRates {
        self.fees.tier(account, m).unwrap_or(self.markets[m].fees())
    }

    pub(crate) fn set_market_fees(
        &mut self,
        market: &Symbol,
        fees: &FeeRates,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let m = self.markets.id(market)?;
        check_fees(fees)?;
        self.markets[m].set_fees(*fees);
        self.push_market_updated(m, out);
        Ok(0)
    }

    /// Sets (or with `None` clears) an account's tier in one market.
    pub(crate) fn set_account_fees(
        &mut self,
        account: AccountId,
        market: &Symbol,
        fees: Option<&FeeRates>,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let m = self.markets.id(market)?;
        if let Some(f) = fees {
            check_fees(f)?;
        }
        self.admit_account(account)?;
        self.ledger.open(account);
        self.fees.set_tier(account, m, fees.copied());
        out.push(Event::AccountFeesSet {
            account,
            market: *market,
            fees: fees.copied(),
        });
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::{affordable_lots, fee};

    #[test]
    fn fees_round_down() {
        assert_eq!(fee(999, 1000), 0);
        assert_eq!(fee(1000, 1000), 1);
        assert_eq!(fee(1_000_000, 2_500), 2_500);
    }

    #[test]
    fn affordable_lots_is_the_largest_that_fits() {
        // 10 per lot, 1% fee: 5 lots cost 50 + 0 (fee 0.5 rounds down) = 50.
        assert_eq!(affordable_lots(50, 10, 10_000), 5);
        assert_eq!(affordable_lots(49, 10, 10_000), 4);
        // 100 per lot, 1%: one lot costs 101.
        assert_eq!(affordable_lots(100, 100, 10_000), 0);
        assert_eq!(affordable_lots(101, 100, 10_000), 1);
    }
}
