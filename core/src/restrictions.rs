//! Restrictions: which accounts an operator has barred from trading or from
//! withdrawing. Only barred accounts are kept; every other account may do both.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tape_schemas::*;

use crate::exchange::{Core, Outcome};

/// What an account may do.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub(crate) struct Allowed {
    pub trade: bool,
    pub withdraw: bool,
}

const ALL: Allowed = Allowed {
    trade: true,
    withdraw: true,
};

/// The barred accounts, by id.
#[derive(Clone, Debug, Default)]
pub(crate) struct Restrictions {
    barred: BTreeMap<AccountId, Allowed>,
}

impl Restrictions {
    pub fn can_trade(&self, account: AccountId) -> bool {
        self.allowed(account).trade
    }

    pub fn can_withdraw(&self, account: AccountId) -> bool {
        self.allowed(account).withdraw
    }

    fn allowed(&self, account: AccountId) -> Allowed {
        self.barred.get(&account).copied().unwrap_or(ALL)
    }

    fn set(&mut self, account: AccountId, allowed: Allowed) {
        if allowed == ALL {
            self.barred.remove(&account);
        } else {
            self.barred.insert(account, allowed);
        }
        assert_eq!(self.allowed(account), allowed, "a restriction reads back");
    }

    /// The barred accounts in id order, for the snapshot.
    pub fn snapshot(&self) -> Vec<(AccountId, Allowed)> {
        self.barred.iter().map(|(a, r)| (*a, *r)).collect()
    }

    pub fn restore(entries: Vec<(AccountId, Allowed)>) -> Result<Self, String> {
        let mut r = Restrictions::default();
        for (account, allowed) in entries {
            if allowed == ALL || r.barred.insert(account, allowed).is_some() {
                return Err(format!("restrictions of account {account} listed wrongly"));
            }
        }
        Ok(r)
    }
}

impl Core {
    pub(crate) fn set_account_restrictions(
        &mut self,
        account: AccountId,
        can_trade: bool,
        can_withdraw: bool,
        out: &mut Vec<Event>,
    ) -> Outcome {
        self.admit_account(account)?;
        self.ledger.open(account);
        let allowed = Allowed {
            trade: can_trade,
            withdraw: can_withdraw,
        };
        self.restrictions.set(account, allowed);
        out.push(Event::AccountRestrictionsSet {
            account,
            can_trade,
            can_withdraw,
        });
        Ok(0)
    }
}
