//! Custody: deposits (idempotent by reference; they open accounts), withdrawal
//! requests (held at once, within the asset's and the account's daily limits) and
//! their completion or failure (which gives the hold, and the day's usage, back).

use tape_schemas::*;

use crate::config::DAY_MS;
use std::collections::BTreeMap;

use rustc_hash::FxHashSet;

use crate::exchange::{amount_minor, Core, Outcome};
use crate::ledger::WithdrawalUsage;

#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Withdrawal {
    pub account: AccountId,
    pub asset: u16,
    pub amount_minor: u64,
    pub day: u64,
}

/// What custody remembers: the pending withdrawals and every deposit reference seen.
#[derive(Clone, Debug, Default)]
pub(crate) struct Custody {
    pub withdrawals: BTreeMap<u64, Withdrawal>,
    pub deposit_refs: FxHashSet<(u16, ExternalRef)>,
    pub next_withdrawal: u64,
}

impl Custody {
    pub fn new() -> Self {
        Custody {
            next_withdrawal: 1,
            ..Custody::default()
        }
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
        if self.custody.deposit_refs.contains(&(a, *reference)) {
            return Err(RejectReason::DuplicateDepositReference);
        }
        if self.custody.deposit_refs.len() >= self.cfg.deposit_references_max {
            return Err(RejectReason::TooManyDeposits);
        }
        self.admit_account(account)?;
        let current = self.ledger.available(account, a);
        let total = self.ledger.account(account).map_or(0, |acct| {
            let b = acct.balance(a);
            b.available.saturating_add(b.held)
        });
        if current.checked_add(minor).is_none() || total.checked_add(minor).is_none() {
            return Err(RejectReason::OutOfRange);
        }
        self.custody.deposit_refs.insert((a, *reference));
        self.ledger.open_account(account);
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
        let acct = self.ledger.account(account);
        match acct.and_then(|a| a.withdrawal_limits.iter().find(|(aa, _)| *aa == asset)) {
            Some((_, limit)) => *limit,
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
        let acct = self
            .ledger
            .account(account)
            .ok_or(RejectReason::UnknownAccount)?;
        if !acct.can_withdraw {
            return Err(RejectReason::WithdrawalRestricted);
        }
        let day = self.clock.now_ms / DAY_MS;
        let used = acct
            .withdrawal_usage
            .iter()
            .find(|u| u.asset == a && u.day == day)
            .map_or(0, |u| u.used_minor);
        if let Some(limit) = self.withdrawal_limit(account, a) {
            if used.checked_add(minor).is_none_or(|total| total > limit) {
                return Err(RejectReason::WithdrawalLimitExceeded);
            }
        }
        if acct.available(a) < minor {
            return Err(RejectReason::InsufficientFunds);
        }
        if self.custody.withdrawals.len() >= self.cfg.pending_withdrawals_max {
            return Err(RejectReason::TooManyPendingWithdrawals);
        }
        let id = self.custody.next_withdrawal;
        self.custody.next_withdrawal += 1;
        let acct = self.ledger.account_mut(account).expect("checked above");
        count_usage(&mut acct.withdrawal_usage, a, day, minor);
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
            // A failed withdrawal gives its share of today's limit back.
            let acct = self
                .ledger
                .account_mut(account)
                .expect("a withdrawal's account exists");
            if let Some(u) = acct
                .withdrawal_usage
                .iter_mut()
                .find(|u| u.asset == w.asset && u.day == w.day)
            {
                u.used_minor =
                    crate::checked::sub(u.used_minor, w.amount_minor, "withdrawal usage");
            }
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
        let acct = self.ledger.open_account(account);
        acct.withdrawal_limits.retain(|(aa, _)| *aa != a);
        acct.withdrawal_limits.push((a, limit));
        acct.withdrawal_limits.sort_by_key(|(aa, _)| *aa);
        out.push(Event::WithdrawalLimitSet {
            account,
            asset: *asset,
            daily_limit,
        });
        Ok(0)
    }
}

/// Adds a withdrawal to the day's usage (earlier days are dropped).
fn count_usage(usage: &mut Vec<WithdrawalUsage>, asset: u16, day: u64, minor: u64) {
    usage.retain(|u| u.day == day);
    match usage.iter_mut().find(|u| u.asset == asset) {
        Some(u) => u.used_minor = crate::checked::add(u.used_minor, minor, "withdrawal usage"),
        None => {
            usage.push(WithdrawalUsage {
                asset,
                day,
                used_minor: minor,
            });
            usage.sort_by_key(|u| u.asset);
        }
    }
}
