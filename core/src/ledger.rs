//! The balance engine: per account and asset, `available` and `held`; the fee
//! account; and the outside world. Every change is one `Posting` from one party to
//! another, so debits equal credits per asset by construction. Callers check funds
//! before they post; a posting that would drive a balance negative is a bug and
//! panics rather than corrupting the ledger.

use serde::{Deserialize, Serialize};
use tape_schemas::{AccountId, Cause, Dec, Event, Party};

use crate::assets::Assets;
use crate::by_account::in_order;

#[derive(Clone, Copy, Default, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Balance {
    pub available: u64,
    pub held: u64,
}

impl Balance {
    /// What the account owns of the asset, free and held.
    pub fn total(&self) -> u128 {
        u128::from(self.available) + u128::from(self.held)
    }
}

/// One account's balances, indexed by asset index; grows as assets are touched.
/// What an account may do, its fee tier, its withdrawal limits and its open orders
/// belong to other parts (`restrictions`, `fees`, `custody`, `orders`).
#[derive(Clone, Default, PartialEq, Eq, Debug)]
struct Account {
    balances: Vec<Balance>,
}

impl Account {
    fn balance(&self, asset: u16) -> Balance {
        self.balances
            .get(asset as usize)
            .copied()
            .unwrap_or_default()
    }

    fn balance_mut(&mut self, asset: u16) -> &mut Balance {
        let i = asset as usize;
        if self.balances.len() <= i {
            self.balances.resize(i + 1, Balance::default());
        }
        &mut self.balances[i]
    }
}

/// Per-asset totals of the system parties.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SystemTotals {
    /// The fee account's balance.
    pub fees: u64,
    pub deposited: u128,
    pub withdrawn: u128,
    /// The perpetuals' clearing parties together (signed).
    pub clearing: i128,
    /// The insurance fund (signed: below zero is bad debt).
    pub insurance: i128,
}

#[derive(Clone, Default, Debug)]
pub struct Ledger {
    accounts: rustc_hash::FxHashMap<AccountId, Account>,
    /// Indexed by asset index.
    system: Vec<SystemTotals>,
}

/// The ledger as the snapshot lists it: accounts by id, each with its balances.
#[derive(Serialize, Deserialize)]
pub(crate) struct LedgerSnapshot {
    accounts: Vec<(AccountId, Vec<Balance>)>,
    system: Vec<SystemTotals>,
}

impl Ledger {
    /// Whether the account exists (it does once a deposit or a setting opened it).
    pub fn exists(&self, id: AccountId) -> bool {
        self.accounts.contains_key(&id)
    }

    /// How many accounts exist.
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// Opens an account with nothing in it, if it is not open yet.
    pub fn open(&mut self, id: AccountId) {
        self.accounts.entry(id).or_default();
    }

    /// An account's balance in an asset; `None` for an unknown account.
    pub fn balance(&self, id: AccountId, asset: u16) -> Option<Balance> {
        self.accounts.get(&id).map(|a| a.balance(asset))
    }

    pub fn available(&self, id: AccountId, asset: u16) -> u64 {
        self.accounts
            .get(&id)
            .map_or(0, |a| a.balance(asset).available)
    }

    /// The system parties' totals in an asset.
    pub fn system(&self, asset: u16) -> SystemTotals {
        self.system.get(asset as usize).copied().unwrap_or_default()
    }

    /// Every account's balances, in no particular order (for checks that sum).
    pub fn balances(&self) -> impl Iterator<Item = (AccountId, u16, Balance)> + '_ {
        self.accounts
            .iter()
            .flat_map(|(id, acct)| (0u16..).zip(&acct.balances).map(move |(a, b)| (*id, a, *b)))
    }

    /// Test hook: overwrites a balance, as a bug would.
    #[cfg(feature = "test-hooks")]
    pub fn corrupt(&mut self, id: AccountId, asset: u16, balance: Balance) {
        *self.accounts.entry(id).or_default().balance_mut(asset) = balance;
    }

    /// Every account's balances by asset index, by account id.
    pub(crate) fn accounts_by_id(&self) -> Vec<(AccountId, &[Balance])> {
        in_order(&self.accounts)
            .into_iter()
            .map(|(id, a)| (id, a.balances.as_slice()))
            .collect()
    }

    pub(crate) fn snapshot(&self) -> LedgerSnapshot {
        let accounts: Vec<(AccountId, Vec<Balance>)> = self
            .accounts_by_id()
            .into_iter()
            .map(|(id, balances)| (id, balances.to_vec()))
            .collect();
        LedgerSnapshot {
            accounts,
            system: self.system.clone(),
        }
    }

    /// The ledger a snapshot lists; `Err` names what is wrong with it.
    pub(crate) fn restore(s: LedgerSnapshot, assets: usize) -> Result<Ledger, String> {
        if s.system.len() > assets || s.accounts.iter().any(|(_, b)| b.len() > assets) {
            return Err("a balance in an asset that does not exist".into());
        }
        let mut ledger = Ledger {
            accounts: Default::default(),
            system: s.system,
        };
        for (id, balances) in s.accounts {
            if ledger.accounts.insert(id, Account { balances }).is_some() {
                return Err(format!("account {id} appears twice"));
            }
        }
        Ok(ledger)
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
        assert!(from != to, "a posting moves between two parties: {from:?}");
        assert!(assets.contains(asset), "a posting in unknown asset {asset}");
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
            Party::Clearing(_) => self.system_mut(asset).clearing -= i128::from(amount),
            Party::Insurance => self.system_mut(asset).insurance -= i128::from(amount),
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
            Party::Clearing(_) => self.system_mut(asset).clearing += i128::from(amount),
            Party::Insurance => self.system_mut(asset).insurance += i128::from(amount),
        }
    }
}
