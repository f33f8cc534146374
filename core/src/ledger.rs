//! The balance engine: per account and asset, `available` and `held`; the fee
//! account; and the outside world. Every change is one `Posting` from one party to
//! another, so debits equal credits per asset by construction. Callers check funds
//! before they post; a posting that would drive a balance negative is a bug and
//! panics rather than corrupting the ledger.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use tape_schemas::{AccountId, Cause, Dec, Event, FeeRates, Party};

use crate::assets::Assets;

#[derive(Clone, Copy, Default, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Balance {
    pub available: u64,
    pub held: u64,
}

/// Withdrawals counted against one asset's daily limit on one UTC day.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct WithdrawalUsage {
    pub asset: u16,
    pub day: u64,
    pub used_minor: u64,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    /// Indexed by asset index; grows as assets are touched.
    pub balances: Vec<Balance>,
    pub can_trade: bool,
    pub can_withdraw: bool,
    /// Per-market fee tiers, sorted by market index.
    pub fee_overrides: Vec<(u32, FeeRates)>,
    /// Per-asset daily withdrawal limits overriding the asset default; `None` means
    /// unlimited.
    pub withdrawal_limits: Vec<(u16, Option<u64>)>,
    pub withdrawal_usage: Vec<WithdrawalUsage>,
    /// Open orders (resting and waiting stops), by id.
    pub open_orders: BTreeSet<u64>,
}

impl Account {
    pub fn new(id: AccountId) -> Self {
        Account {
            id,
            balances: Vec::new(),
            can_trade: true,
            can_withdraw: true,
            fee_overrides: Vec::new(),
            withdrawal_limits: Vec::new(),
            withdrawal_usage: Vec::new(),
            open_orders: BTreeSet::new(),
        }
    }

    pub fn balance(&self, asset: u16) -> Balance {
        self.balances
            .get(asset as usize)
            .copied()
            .unwrap_or_default()
    }

    pub fn available(&self, asset: u16) -> u64 {
        self.balance(asset).available
    }

    pub(crate) fn balance_mut(&mut self, asset: u16) -> &mut Balance {
        let i = asset as usize;
        if self.balances.len() <= i {
            self.balances.resize(i + 1, Balance::default());
        }
        &mut self.balances[i]
    }

    pub fn fees_for(&self, market: u32) -> Option<FeeRates> {
        self.fee_overrides
            .iter()
            .find(|(m, _)| *m == market)
            .map(|(_, f)| *f)
    }
}

/// Per-asset totals of the system parties.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SystemTotals {
    /// The fee account's balance.
    pub fees: u64,
    pub deposited: u128,
    pub withdrawn: u128,
}

#[derive(Clone, Default, Debug)]
pub struct Ledger {
    pub accounts: rustc_hash::FxHashMap<AccountId, Account>,
    /// Indexed by asset index.
    pub system: Vec<SystemTotals>,
}

impl Ledger {
    pub fn account(&self, id: AccountId) -> Option<&Account> {
        self.accounts.get(&id)
    }

    pub fn account_mut(&mut self, id: AccountId) -> Option<&mut Account> {
        self.accounts.get_mut(&id)
    }

    pub fn open_account(&mut self, id: AccountId) -> &mut Account {
        self.accounts.entry(id).or_insert_with(|| Account::new(id))
    }

    pub fn available(&self, id: AccountId, asset: u16) -> u64 {
        self.accounts.get(&id).map_or(0, |a| a.available(asset))
    }

    fn system_mut(&mut self, asset: u16) -> &mut SystemTotals {
        let i = asset as usize;
        if self.system.len() <= i {
            self.system.resize(i + 1, SystemTotals::default());
        }
        &mut self.system[i]
    }

    /// Moves `amount` of `asset` from `from` to `to` and records the posting.
    /// Zero amounts are not recorded.
    // One posting's fields, plus where to look up the asset and where to write: a
    // struct for them would only be built to be taken apart here.
    #[allow(clippy::too_many_arguments)]
    pub fn post(
        &mut self,
        assets: &Assets,
        asset: u16,
        from: Party,
        to: Party,
        amount: u64,
        cause: Cause,
        out: &mut Vec<Event>,
    ) {
        if amount == 0 {
            return;
        }
        match (from, to) {
            // Holds and releases stay inside one account: one lookup.
            (Party::Available(a), Party::Held(b)) | (Party::Held(a), Party::Available(b))
                if a == b =>
            {
                let bal = self
                    .accounts
                    .get_mut(&a)
                    .unwrap_or_else(|| panic!("posting for unknown account {a}"))
                    .balance_mut(asset);
                let (src, dst) = if matches!(from, Party::Available(_)) {
                    (&mut bal.available, &mut bal.held)
                } else {
                    (&mut bal.held, &mut bal.available)
                };
                *src = src.checked_sub(amount).unwrap_or_else(|| {
                    panic!("posting would make {from:?} negative in asset {asset}")
                });
                *dst = dst
                    .checked_add(amount)
                    .expect("balances fit in u64 minor units");
            }
            _ => {
                self.debit(asset, from, amount);
                self.credit(asset, to, amount);
            }
        }
        let spec = assets.get(asset);
        out.push(Event::Posting {
            asset: spec.code,
            from,
            to,
            amount: Dec::from_minor(i128::from(amount), u32::from(spec.scale)),
            cause,
        });
    }

    /// Moves `amount` of an account's `asset` from available to held.
    pub fn hold(
        &mut self,
        assets: &Assets,
        asset: u16,
        account: AccountId,
        amount: u64,
        cause: Cause,
        out: &mut Vec<Event>,
    ) {
        self.post(
            assets,
            asset,
            Party::Available(account),
            Party::Held(account),
            amount,
            cause,
            out,
        );
    }

    /// Moves `amount` of an account's `asset` from held back to available.
    pub fn release(
        &mut self,
        assets: &Assets,
        asset: u16,
        account: AccountId,
        amount: u64,
        cause: Cause,
        out: &mut Vec<Event>,
    ) {
        self.post(
            assets,
            asset,
            Party::Held(account),
            Party::Available(account),
            amount,
            cause,
            out,
        );
    }

    fn debit(&mut self, asset: u16, party: Party, amount: u64) {
        match party {
            Party::Available(id) | Party::Held(id) => {
                let b = self
                    .accounts
                    .get_mut(&id)
                    .unwrap_or_else(|| panic!("debit of unknown account {id}"))
                    .balance_mut(asset);
                let slot = if matches!(party, Party::Available(_)) {
                    &mut b.available
                } else {
                    &mut b.held
                };
                *slot = slot.checked_sub(amount).unwrap_or_else(|| {
                    panic!("posting would make {party:?} negative in asset {asset}")
                });
            }
            Party::Fees => {
                let s = self.system_mut(asset);
                s.fees = s
                    .fees
                    .checked_sub(amount)
                    .expect("fee account never goes negative");
            }
            Party::World => self.system_mut(asset).deposited += u128::from(amount),
        }
    }

    fn credit(&mut self, asset: u16, party: Party, amount: u64) {
        match party {
            Party::Available(id) | Party::Held(id) => {
                let b = self
                    .accounts
                    .get_mut(&id)
                    .unwrap_or_else(|| panic!("credit of unknown account {id}"))
                    .balance_mut(asset);
                let slot = if matches!(party, Party::Available(_)) {
                    &mut b.available
                } else {
                    &mut b.held
                };
                *slot = slot
                    .checked_add(amount)
                    .expect("balances fit in u64 minor units");
            }
            Party::Fees => {
                let s = self.system_mut(asset);
                s.fees = s
                    .fees
                    .checked_add(amount)
                    .expect("fees fit in u64 minor units");
            }
            Party::World => self.system_mut(asset).withdrawn += u128::from(amount),
        }
    }
}
