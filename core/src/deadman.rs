//! The dead-man switch (`CancelAllAfter`): an account's orders are all cancelled
//! unless the switch is refreshed before its deadline. The deadline is command
//! time, so it fires deterministically: on the first command or clock tick at or
//! past it, after that time's GTD expiries and before that command's own outcome.

use std::collections::{BTreeMap, BTreeSet};

use tape_schemas::*;

use crate::exchange::{Core, Outcome};

/// Armed switches: each account's deadline, and the deadlines in firing order.
#[derive(Clone, Debug, Default)]
pub(crate) struct DeadMen {
    by_account: BTreeMap<AccountId, u64>,
    by_deadline: BTreeSet<(u64, AccountId)>,
}

impl DeadMen {
    /// Arms (or re-arms) `account` for `deadline`, or disarms it with `None`.
    pub fn set(&mut self, account: AccountId, deadline: Option<u64>) {
        if let Some(old) = self.by_account.remove(&account) {
            self.by_deadline.remove(&(old, account));
        }
        if let Some(d) = deadline {
            self.by_account.insert(account, d);
            self.by_deadline.insert((d, account));
        }
    }

    /// Disarms and returns the earliest switch due at `now_ms`, if any.
    pub fn take_due(&mut self, now_ms: u64) -> Option<(u64, AccountId)> {
        let &(deadline, account) = self.by_deadline.first()?;
        if deadline > now_ms {
            return None;
        }
        self.set(account, None);
        Some((deadline, account))
    }

    /// The switches `entries` listed.
    pub fn restore(entries: Vec<(AccountId, u64)>) -> Self {
        let mut d = DeadMen::default();
        for (account, deadline) in entries {
            d.set(account, Some(deadline));
        }
        d
    }

    /// (account, deadline) in account order, for the snapshot.
    pub fn entries(&self) -> impl Iterator<Item = (AccountId, u64)> + '_ {
        self.by_account.iter().map(|(a, d)| (*a, *d))
    }
}

impl Core {
    pub(crate) fn cancel_all_after(
        &mut self,
        account: AccountId,
        timeout_ms: u64,
        out: &mut Vec<Event>,
    ) -> Outcome {
        if timeout_ms > DEAD_MAN_TIMEOUT_MAX_MS {
            return Err(RejectReason::TimeoutTooLong);
        }
        if !self.ledger.exists(account) {
            return Err(RejectReason::UnknownAccount);
        }
        let deadline_ms = (timeout_ms > 0).then(|| self.clock.now().saturating_add(timeout_ms));
        self.dead_men.set(account, deadline_ms);
        out.push(Event::DeadManSwitchSet {
            account,
            deadline_ms,
        });
        Ok(0)
    }

    /// Fires every switch whose deadline the clock has reached, earliest first.
    pub(crate) fn fire_dead_men(&mut self, out: &mut Vec<Event>) {
        while let Some((deadline_ms, account)) = self.dead_men.take_due(self.clock.now()) {
            out.push(Event::DeadManSwitchFired {
                account,
                deadline_ms,
            });
            self.end_open_orders(account, None, DoneReason::DeadManSwitch, out);
        }
    }
}
