//! Custody: deposits (idempotent by reference; they open accounts), withdrawal
//! requests (held at once, within the asset's and the account's daily limits) and
//! their completion or failure (which gives the hold, and the day's usage, back).
//! It owns the pending withdrawals, the deposit references seen, the accounts' own
//! daily limits and what each account withdrew today.

use tape_schemas::*;

use crate::config::DAY_MS;
use std::collections::BTreeMap;

use rustc_hash::FxHashSet;

use crate::exchange::{amount_minor, Core, Outcome};

#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Withdrawal {
    pub account: AccountId,
    pub asset: u16,
    pub amount_minor: u64,
    pub day: u64,
}

/// Withdrawals counted against one asset's daily limit on one UTC day.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Usage {
    pub day: u64,
    pub used_minor: u64,
}

/// What custody remembers.
#[derive(Clone, Debug, Default)]
pub(crate) struct Custody {
    withdrawals: BTreeMap<u64, Withdrawal>,
    deposit_refs: FxHashSet<(u16, ExternalRef)>,
    next_withdrawal: u64,
    /// Accounts' own daily limits by (account, asset), overriding the asset's
    /// default; `None` means unlimited.
    limits: BTreeMap<(AccountId, u16), Option<u64>>,
    /// What each account has withdrawn of an asset on its latest day of withdrawals.
    usage: BTreeMap<(AccountId, u16), Usage>,
}

/// Custody as the snapshot lists it, every collection in key order.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct CustodySnapshot {
    next_withdrawal: u64,
    withdrawals: Vec<(u64, Withdrawal)>,
    deposit_refs: Vec<(u16, ExternalRef)>,
    limits: Vec<((AccountId, u16), Option<u64>)>,
    usage: Vec<((AccountId, u16), Usage)>,
}

impl Custody {
    pub fn new() -> Self {
        Custody {
            next_withdrawal: 1,
            ..Custody::default()
        }
    }

    /// Pending withdrawals, by id.
    pub fn pending(&self) -> impl Iterator<Item = &Withdrawal> + '_ {
        self.withdrawals.values()
    }

    /// What an account has withdrawn of an asset on `day`.
    fn used(&self, account: AccountId, asset: u16, day: u64) -> u64 {
        self.usage
            .get(&(account, asset))
            .filter(|u| u.day == day)
            .map_or(0, |u| u.used_minor)
    }

    /// Adds a withdrawal to the day's usage (an earlier day's is dropped).
    fn count(&mut self, account: AccountId, asset: u16, day: u64, minor: u64) {
        let used = self.used(account, asset, day);
        let used_minor = crate::checked::add(used, minor, "withdrawal usage");
        self.usage
            .insert((account, asset), Usage { day, used_minor });
    }

    /// Gives a failed withdrawal's share of its day back.
    fn give_back(&mut self, w: &Withdrawal) {
        if let Some(u) = self.usage.get_mut(&(w.account, w.asset)) {
            if u.day == w.day {
                u.used_minor =
                    crate::checked::sub(u.used_minor, w.amount_minor, "withdrawal usage");
            }
        }
    }

    pub fn snapshot(&self) -> CustodySnapshot {
        let mut deposit_refs: Vec<(u16, ExternalRef)> = self.deposit_refs.iter().copied().collect();
        deposit_refs.sort_unstable();
        CustodySnapshot {
            next_withdrawal: self.next_withdrawal,
            withdrawals: self.withdrawals.iter().map(|(k, v)| (*k, *v)).collect(),
            deposit_refs,
            limits: self.limits.iter().map(|(k, v)| (*k, *v)).collect(),
            usage: self.usage.iter().map(|(k, v)| (*k, *v)).collect(),
        }
    }

    pub fn restore(s: CustodySnapshot) -> Result<Self, String> {
        if s.withdrawals.iter().any(|(id, _)| *id >= s.next_withdrawal) {
            return Err("a withdrawal beyond the id counter".into());
        }
        Ok(Custody {
            withdrawals: s.withdrawals.into_iter().collect(),
            deposit_refs: s.deposit_refs.into_iter().collect(),
            next_withdrawal: s.next_withdrawal,
            limits: s.limits.into_iter().collect(),
            usage: s.usage.into_iter().collect(),
        })
    }
}

impl Core {
    pub(crate) fn deposit(
        &mut self,
        account: AccountId,
        asset: &AssetCode,
        amount: Dec,
        reference: &ExternalRef,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let (a, minor) = self.custody_amount(asset, amount)?;
        self.check_deposit_reference(a, reference)?;
        self.admit_account(account)?;
        let b = self.ledger.balance(account, a).unwrap_or_default();
        if b.total() + u128::from(minor) > u128::from(u64::MAX) {
            return Err(RejectReason::OutOfRange);
        }
        self.custody.deposit_refs.insert((a, *reference));
        self.ledger.open(account);
        out.push(Event::Deposited {
            account,
            asset: *asset,
            amount,
            reference: *reference,
        });
        self.ledger.post(
            &self.assets,
            a,
            Party::World,
            Party::Available(account),
            minor,
            Cause::Deposit,
            out,
        );
        Ok(0)
    }

    /// `FundInsurance`: the operator's capital into the insurance fund.
    pub(crate) fn fund_insurance(
        &mut self,
        asset: &AssetCode,
        amount: Dec,
        reference: &ExternalRef,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let (a, minor) = self.custody_amount(asset, amount)?;
        self.check_deposit_reference(a, reference)?;
        let fund = self.ledger.system(a).insurance;
        if fund + i128::from(minor) > i128::from(u64::MAX) {
            return Err(RejectReason::OutOfRange);
        }
        self.custody.deposit_refs.insert((a, *reference));
        let (assets, l) = (&self.assets, &mut self.ledger);
        l.post(
            assets,
            a,
            Party::World,
            Party::Insurance,
            minor,
            Cause::Deposit,
            out,
        );
        Ok(0)
    }

    /// A deposit's (or the fund's) reference: new for its asset, and room for it.
    fn check_deposit_reference(&self, a: u16, reference: &ExternalRef) -> Result<(), RejectReason> {
        if self.custody.deposit_refs.contains(&(a, *reference)) {
            return Err(RejectReason::DuplicateDepositReference);
        }
        if self.custody.deposit_refs.len() >= self.cfg.deposit_references_max {
            return Err(RejectReason::TooManyDeposits);
        }
        Ok(())
    }

    /// An enabled asset and an amount of it in minor units.
    fn custody_amount(&self, asset: &AssetCode, amount: Dec) -> Result<(u16, u64), RejectReason> {
        let a = self.assets.find(asset).ok_or(RejectReason::UnknownAsset)?;
        let spec = self.assets.get(a);
        if !spec.enabled {
            return Err(RejectReason::AssetDisabled);
        }
        Ok((a, amount_minor(amount, spec.scale, false)?))
    }

    pub(crate) fn withdrawal_limit(&self, account: AccountId, asset: u16) -> Option<u64> {
        match self.custody.limits.get(&(account, asset)) {
            Some(limit) => *limit,
            None => self.assets.get(asset).daily_withdrawal_limit_minor,
        }
    }

    pub(crate) fn request_withdrawal(
        &mut self,
        account: AccountId,
        asset: &AssetCode,
        amount: Dec,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let (a, minor) = self.custody_amount(asset, amount)?;
        let balance = self
            .ledger
            .balance(account, a)
            .ok_or(RejectReason::UnknownAccount)?;
        if !self.restrictions.can_withdraw(account) {
            return Err(RejectReason::WithdrawalRestricted);
        }
        let day = self.clock.now() / DAY_MS;
        let used = self.custody.used(account, a, day);
        if let Some(limit) = self.withdrawal_limit(account, a) {
            if used.checked_add(minor).is_none_or(|total| total > limit) {
                return Err(RejectReason::WithdrawalLimitExceeded);
            }
        }
        if balance.available < minor || self.spendable(account, a) < minor {
            return Err(RejectReason::InsufficientFunds);
        }
        if self.custody.withdrawals.len() >= self.cfg.pending_withdrawals_max {
            return Err(RejectReason::TooManyPendingWithdrawals);
        }
        let id = self.custody.next_withdrawal;
        self.custody.next_withdrawal += 1;
        self.custody.count(account, a, day, minor);
        self.custody.withdrawals.insert(
            id,
            Withdrawal {
                account,
                asset: a,
                amount_minor: minor,
                day,
            },
        );
        out.push(Event::WithdrawalRequested {
            withdrawal: WithdrawalId(id),
            account,
            asset: *asset,
            amount,
        });
        let cause = Cause::Withdrawal(WithdrawalId(id));
        self.ledger
            .hold(&self.assets, a, account, minor, cause, out);
        self.touch_margin_accounts(&[account]);
        Ok(id)
    }

    pub(crate) fn finish_withdrawal(
        &mut self,
        id: WithdrawalId,
        completed: bool,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let w = self
            .custody
            .withdrawals
            .remove(&id.0)
            .ok_or(RejectReason::UnknownWithdrawal)?;
        let spec = self.assets.get(w.asset);
        let amount = Dec::from_minor(i128::from(w.amount_minor), u32::from(spec.scale));
        let (asset, account) = (spec.code, w.account);
        let cause = Cause::Withdrawal(id);
        if completed {
            out.push(Event::WithdrawalCompleted {
                withdrawal: id,
                account,
                asset,
                amount,
            });
            self.ledger.post(
                &self.assets,
                w.asset,
                Party::Held(account),
                Party::World,
                w.amount_minor,
                cause,
                out,
            );
        } else {
            out.push(Event::WithdrawalFailed {
                withdrawal: id,
                account,
                asset,
                amount,
            });
            self.ledger
                .release(&self.assets, w.asset, account, w.amount_minor, cause, out);
            // A failed withdrawal gives its share of its day's limit back.
            self.custody.give_back(&w);
        }
        Ok(id.0)
    }

    /// Sets an account's own daily limit for an asset (`None`: no limit at all).
    pub(crate) fn set_withdrawal_limit(
        &mut self,
        account: AccountId,
        asset: &AssetCode,
        daily_limit: Option<Dec>,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let a = self.assets.find(asset).ok_or(RejectReason::UnknownAsset)?;
        let limit = daily_limit
            .map(|l| amount_minor(l, self.assets.get(a).scale, true))
            .transpose()?;
        self.admit_account(account)?;
        self.ledger.open(account);
        self.custody.limits.insert((account, a), limit);
        out.push(Event::WithdrawalLimitSet {
            account,
            asset: *asset,
            daily_limit,
        });
        Ok(0)
    }
}
