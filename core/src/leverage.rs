//! Leverage: the three tiers' caps, each account's tier (only those that are not
//! beginners are kept) and the leverage each account chose per perpetual. An
//! account trades a perpetual at the lower of its choice (or, without one, its
//! cap), its tier's cap and the market's first bracket's `max_leverage`: lowering
//! a tier's cap lowers every leverage above it at once, with no event per account.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tape_schemas::*;

use crate::exchange::{Core, Outcome};
use crate::perps::LEVERAGE_MAX;

#[derive(Clone, Debug, Default)]
pub(crate) struct Leverage {
    caps: TierCaps,
    /// Accounts above the beginner tier.
    tiers: BTreeMap<AccountId, LeverageTier>,
    /// (account, market number) -> the leverage it chose.
    chosen: BTreeMap<(AccountId, u32), u32>,
    /// Collateral asset -> the default notional cap, in its minor units.
    notional_default: BTreeMap<u16, u64>,
    /// (account, collateral asset) -> the account's own notional cap.
    notional: BTreeMap<(AccountId, u16), u64>,
}

/// The leverage part as the snapshot lists it.
#[derive(Serialize, Deserialize)]
pub(crate) struct LeverageSnapshot {
    caps: TierCaps,
    tiers: Vec<(AccountId, LeverageTier)>,
    chosen: Vec<((AccountId, u32), u32)>,
    notional_default: Vec<(u16, u64)>,
    notional: Vec<((AccountId, u16), u64)>,
}

/// Caps from 1 to `LEVERAGE_MAX`, not falling from beginner to advanced.
fn caps_hold(c: &TierCaps) -> bool {
    1 <= c.beginner
        && c.beginner <= c.intermediate
        && c.intermediate <= c.advanced
        && c.advanced <= LEVERAGE_MAX
}

impl Leverage {
    pub fn tier(&self, account: AccountId) -> LeverageTier {
        self.tiers.get(&account).copied().unwrap_or_default()
    }

    pub fn cap(&self, account: AccountId) -> u32 {
        self.caps.cap(self.tier(account))
    }

    /// What the account trades market `m` at, under `bracket_max`.
    pub fn effective(&self, account: AccountId, m: u32, bracket_max: u32) -> u32 {
        let cap = self.cap(account).min(bracket_max);
        self.chosen.get(&(account, m)).map_or(cap, |&l| l.min(cap))
    }

    /// The account's notional cap in a collateral asset: its own, else the
    /// default; `None` without either.
    pub fn notional_cap(&self, account: AccountId, asset: u16) -> Option<u64> {
        self.notional
            .get(&(account, asset))
            .or_else(|| self.notional_default.get(&asset))
            .copied()
    }

    pub fn snapshot(&self) -> LeverageSnapshot {
        LeverageSnapshot {
            caps: self.caps,
            tiers: self.tiers.iter().map(|(a, t)| (*a, *t)).collect(),
            chosen: self.chosen.iter().map(|(k, l)| (*k, *l)).collect(),
            notional_default: self
                .notional_default
                .iter()
                .map(|(k, v)| (*k, *v))
                .collect(),
            notional: self.notional.iter().map(|(k, v)| (*k, *v)).collect(),
        }
    }

    /// The part a snapshot lists; `account` says whether an account exists and
    /// `perpetual` whether a market number is a perpetual's.
    pub fn restore(
        s: LeverageSnapshot,
        account: impl Fn(AccountId) -> bool,
        perpetual: impl Fn(u32) -> bool,
    ) -> Result<Leverage, String> {
        if !caps_hold(&s.caps) {
            return Err("leverage tier caps that do not hold".into());
        }
        let (n_tiers, n_chosen) = (s.tiers.len(), s.chosen.len());
        let tiers: BTreeMap<_, _> = s.tiers.into_iter().collect();
        let chosen: BTreeMap<_, _> = s.chosen.into_iter().collect();
        let n_notional = (s.notional_default.len(), s.notional.len());
        let notional_default: BTreeMap<_, _> = s.notional_default.into_iter().collect();
        let notional: BTreeMap<_, _> = s.notional.into_iter().collect();
        if n_notional != (notional_default.len(), notional.len())
            || notional.keys().any(|(a, _)| !account(*a))
        {
            return Err("notional caps listed wrongly".into());
        }
        let tier_wrong =
            |(a, t): (&AccountId, &LeverageTier)| *t == LeverageTier::Beginner || !account(*a);
        let chosen_wrong = |((a, m), l): (&(AccountId, u32), &u32)| {
            !account(*a) || !perpetual(*m) || *l == 0 || *l > LEVERAGE_MAX
        };
        if tiers.len() != n_tiers
            || chosen.len() != n_chosen
            || tiers.iter().any(tier_wrong)
            || chosen.iter().any(chosen_wrong)
        {
            return Err("leverage settings listed wrongly".into());
        }
        Ok(Leverage {
            caps: s.caps,
            tiers,
            chosen,
            notional_default,
            notional,
        })
    }
}

impl Core {
    /// `SetLeverageTiers`.
    pub(crate) fn set_leverage_tiers(&mut self, caps: TierCaps, out: &mut Vec<Event>) -> Outcome {
        if !caps_hold(&caps) {
            return Err(RejectReason::InvalidLeverage);
        }
        self.leverage.caps = caps;
        out.push(Event::LeverageTiersSet(caps));
        Ok(0)
    }

    /// `SetNotionalCap`.
    pub(crate) fn set_notional_cap(
        &mut self,
        account: Option<AccountId>,
        asset: &AssetCode,
        cap: Option<Dec>,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let a = self.assets.find(asset).ok_or(RejectReason::UnknownAsset)?;
        let scale = self.assets.get(a).scale;
        let minor = match cap {
            Some(c) => Some(crate::exchange::amount_minor(c, scale, true)?),
            None => None,
        };
        if account.is_some_and(|acc| !self.ledger.exists(acc)) {
            return Err(RejectReason::UnknownAccount);
        }
        let l = &mut self.leverage;
        match (account, minor) {
            (None, Some(c)) => drop(l.notional_default.insert(a, c)),
            (None, None) => drop(l.notional_default.remove(&a)),
            (Some(acc), Some(c)) => drop(l.notional.insert((acc, a), c)),
            (Some(acc), None) => drop(l.notional.remove(&(acc, a))),
        }
        out.push(Event::NotionalCapSet {
            account,
            asset: *asset,
            cap,
        });
        Ok(0)
    }

    /// `SetAccountTier`.
    pub(crate) fn set_account_tier(
        &mut self,
        account: AccountId,
        tier: LeverageTier,
        out: &mut Vec<Event>,
    ) -> Outcome {
        if !self.ledger.exists(account) {
            return Err(RejectReason::UnknownAccount);
        }
        if tier == LeverageTier::Beginner {
            self.leverage.tiers.remove(&account);
        } else {
            self.leverage.tiers.insert(account, tier);
        }
        out.push(Event::AccountTierSet { account, tier });
        Ok(0)
    }

    /// `SetLeverage`: at most the lower of the tier's cap and the first bracket's.
    pub(crate) fn set_leverage(
        &mut self,
        account: AccountId,
        market: &Symbol,
        leverage: u32,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let m = self.markets.id(market)?;
        let perp = self.perps.get(m).ok_or(RejectReason::NotAPerpetual)?;
        if !self.ledger.exists(account) {
            return Err(RejectReason::UnknownAccount);
        }
        if leverage == 0 || leverage > LEVERAGE_MAX {
            return Err(RejectReason::InvalidLeverage);
        }
        if leverage > self.leverage.cap(account).min(perp.first_bracket_max()) {
            return Err(RejectReason::LeverageAboveCap);
        }
        self.check_position_leverage(account, m, leverage)?;
        self.leverage.chosen.insert((account, m), leverage);
        out.push(Event::LeverageSet {
            account,
            market: *market,
            leverage,
        });
        self.set_position_leverage(account, m, leverage, out);
        Ok(0)
    }

    /// An account's tier, its cap and the leverage it trades `market` at; `None`
    /// for an unknown account or a market that is not a perpetual.
    pub fn leverage(
        &self,
        account: AccountId,
        market: &Symbol,
    ) -> Option<(LeverageTier, u32, u32)> {
        let m = self.markets.id(market).ok()?;
        let perp = self.perps.get(m)?;
        if !self.ledger.exists(account) {
            return None;
        }
        let l = &self.leverage;
        Some((
            l.tier(account),
            l.cap(account),
            l.effective(account, m, perp.first_bracket_max()),
        ))
    }
}
