//! What must hold after every command. Tests and auditors call `check_invariants`;
//! the engine may call it at checkpoints. It reads, never changes.

use std::collections::{BTreeMap, BTreeSet};

use tape_schemas::*;

use crate::book::{Order, OrderKind};
use crate::exchange::Core;
use crate::market::Market;
use crate::watch::Cover;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvariantViolation {
    #[error("asset {asset}: accounts {accounts} + fees {fees} + clearing {clearing} + insurance {insurance} != deposited {deposited} - withdrawn {withdrawn}")]
    Conservation {
        asset: String,
        accounts: u128,
        fees: u128,
        clearing: i128,
        insurance: i128,
        deposited: u128,
        withdrawn: u128,
    },
    #[error("account {account} asset {asset}: held {held} but open orders and withdrawals need {needed}")]
    Held {
        account: AccountId,
        asset: String,
        held: u64,
        needed: u128,
    },
    #[error("order {order}: holds {held}, its open quantity needs {needed}")]
    OrderHold { order: u64, held: u64, needed: u64 },
    #[error("market {market}: best bid {bid} >= best ask {ask}")]
    Crossed { market: String, bid: u64, ask: u64 },
    #[error("order {order}: {what}")]
    Order { order: u64, what: &'static str },
    #[error("perpetual {market}: {what}")]
    Perpetual { market: String, what: String },
    #[error("account {account} asset {asset}: margin {what}")]
    Margin {
        account: AccountId,
        asset: String,
        what: String,
    },
    #[error("liquidation watch: {what}")]
    Watch { what: String },
}

impl Core {
    /// Checks conservation per asset, held funds against open orders and pending
    /// withdrawals, each order's hold, and that no book is crossed.
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        self.check_conservation()?;
        let mut needed: BTreeMap<(AccountId, u16), u128> = BTreeMap::new();
        let mut live = 0usize;
        for (m, mk) in self.markets.iter().enumerate() {
            check_not_crossed(mk)?;
            for o in mk.book.orders() {
                live += 1;
                self.check_order(m as u32, mk, o)?;
                if self.perps.contains(m as u32) {
                    continue;
                }
                let asset = match o.side {
                    Side::Buy => mk.quote,
                    Side::Sell => mk.base,
                };
                *needed.entry((o.account, asset)).or_default() += u128::from(o.held_minor);
            }
        }
        if live != self.orders.count() {
            return Err(InvariantViolation::Order {
                order: 0,
                what: "order index and books disagree",
            });
        }
        for w in self.custody.pending() {
            *needed.entry((w.account, w.asset)).or_default() += u128::from(w.amount_minor);
        }
        self.check_perpetuals()?;
        for (account, asset, margin) in self.positions.margins() {
            *needed.entry((account, asset)).or_default() += u128::from(margin.held);
        }
        self.check_held(&needed)
    }

    /// Per asset: what accounts have plus fees plus withdrawals is what came in.
    fn check_conservation(&self) -> Result<(), InvariantViolation> {
        let mut per_asset = vec![0u128; self.assets.len()];
        for (_, a, b) in self.ledger.balances() {
            per_asset[usize::from(a)] += b.total();
        }
        for (a, (total, spec)) in (0u16..).zip(per_asset.iter().zip(self.assets.iter())) {
            let sys = self.ledger.system(a);
            let inside = (total + u128::from(sys.fees) + sys.withdrawn) as i128;
            if inside + sys.clearing + sys.insurance != sys.deposited as i128 {
                return Err(InvariantViolation::Conservation {
                    asset: spec.code.to_string(),
                    accounts: *total,
                    fees: u128::from(sys.fees),
                    clearing: sys.clearing,
                    insurance: sys.insurance,
                    deposited: sys.deposited,
                    withdrawn: sys.withdrawn,
                });
            }
        }
        Ok(())
    }

    /// A live order is indexed, listed on its account, and (resting) shows something
    /// and holds exactly what its open part needs.
    fn check_order(&self, m: u32, mk: &Market, o: &Order) -> Result<(), InvariantViolation> {
        let bad = |what| InvariantViolation::Order { order: o.id, what };
        match self.orders.find(o.id) {
            Some((mm, _)) if mm == m => {}
            _ => return Err(bad("not indexed")),
        }
        if !self.orders.is_open_for(o.account, o.id) {
            return Err(bad("not listed on its account"));
        }
        if o.kind != OrderKind::Limit {
            return Ok(());
        }
        if o.open_lots == 0 || o.visible_lots == 0 || o.visible_lots > o.open_lots {
            return Err(bad("resting with nothing to show"));
        }
        let need = match o.side {
            // A perpetual order's margin is its position's (`check_perpetuals`).
            _ if self.perps.contains(m) => 0,
            Side::Buy => mk
                .buy_hold(o.price_ticks, o.open_lots, crate::fees::max_ppm(o))
                .unwrap_or(u64::MAX),
            Side::Sell => o.open_lots * mk.lot_minor,
        };
        if o.held_minor != need {
            return Err(InvariantViolation::OrderHold {
                order: o.id,
                held: o.held_minor,
                needed: need,
            });
        }
        Ok(())
    }

    /// Every account's held balance is exactly what its orders and withdrawals need.
    fn check_held(
        &self,
        needed: &BTreeMap<(AccountId, u16), u128>,
    ) -> Result<(), InvariantViolation> {
        for (account, a, b) in self.ledger.balances() {
            let need = needed.get(&(account, a)).copied().unwrap_or(0);
            if u128::from(b.held) != need {
                return Err(InvariantViolation::Held {
                    account,
                    asset: self.assets.get(a).code.to_string(),
                    held: b.held,
                    needed: need,
                });
            }
        }
        for (&(account, asset), &need) in needed {
            let held = self.ledger.balance(account, asset).unwrap_or_default().held;
            if u128::from(held) != need {
                return Err(InvariantViolation::Held {
                    account,
                    asset: self.assets.get(asset).code.to_string(),
                    held,
                    needed: need,
                });
            }
        }
        Ok(())
    }
}

/// Positions and margins on perpetuals.
impl Core {
    /// Each perpetual's positions sum to zero, its open interest is the sum of
    /// the longs and its clearing balance is minus the sum of the signed costs;
    /// each position's resting sums match its orders and its margin is what they
    /// and it require; each account's margin is the sum of its positions', held
    /// in full unless the account is short of it.
    fn check_perpetuals(&self) -> Result<(), InvariantViolation> {
        use crate::positions::Resting;
        let mut resting: BTreeMap<(AccountId, u32), [Resting; 2]> = BTreeMap::new();
        for (m, _) in self.perps.iter() {
            let mk = &self.markets[m];
            for o in mk.book.orders().filter(|o| o.kind == OrderKind::Limit) {
                let notional = u128::from(o.open_lots) * self.per_lot(m, o.price_ticks);
                let sums = resting.entry((o.account, m)).or_default();
                sums[o.side as usize].add(o.open_lots, notional, crate::fees::max_ppm(o));
            }
        }
        let mut per_market: BTreeMap<u32, (i128, u64, i128)> = BTreeMap::new();
        let mut per_account: BTreeMap<(AccountId, u16), u128> = BTreeMap::new();
        for (account, m, pos) in self.positions.all() {
            let bad = |what: String| InvariantViolation::Perpetual {
                market: self.markets[m].spec.symbol.to_string(),
                what: format!("account {account}: {what}"),
            };
            let sums = resting.remove(&(account, m)).unwrap_or_default();
            if [pos.buys, pos.sells] != sums || pos.is_empty() {
                return Err(bad(format!("resting sums {:?} {:?}", pos.buys, pos.sells)));
            }
            let perp = self
                .perps
                .get(m)
                .ok_or_else(|| bad("not a perpetual".into()))?;
            let leverage = pos.leverage.min(perp.max_leverage_at(pos.exposure()));
            if pos.required != pos.requirement(leverage) {
                return Err(bad(format!(
                    "requires {} held as {}",
                    pos.requirement(leverage),
                    pos.required
                )));
            }
            if pos.lots != 0 && !self.positions.is_ranked(account, m, pos) {
                return Err(bad("not ranked for deleveraging".into()));
            }
            if pos.funded > perp.funding.rounds {
                return Err(bad(format!("settled funding round {}", pos.funded)));
            }
            let e = per_market.entry(m).or_default();
            e.0 += i128::from(pos.lots);
            e.1 += pos.lots.max(0).unsigned_abs();
            e.2 += pos.signed_cost();
            *per_account
                .entry((account, self.markets[m].quote))
                .or_default() += pos.required;
        }
        if let Some(((account, m), _)) = resting.into_iter().next() {
            return Err(InvariantViolation::Perpetual {
                market: self.markets[m].spec.symbol.to_string(),
                what: format!("orders of {account} without a position"),
            });
        }
        let sized = self.positions.all().filter(|p| p.2.lots != 0).count();
        if self.positions.ranked_len() != sized {
            return Err(InvariantViolation::Perpetual {
                market: String::new(),
                what: format!(
                    "{} ranked of {sized} positions",
                    self.positions.ranked_len()
                ),
            });
        }
        self.check_markets_sum(&per_market)?;
        self.check_margins(&per_account)?;
        self.check_watched()
    }

    /// Every open position of an account outside the liquidation backlog is
    /// watched on its side, and every such account covers its maintenance margin
    /// unless a mark crossed one of its triggers and the sweep has not reached
    /// it yet; every unrealized figure kept up to date is what a walk gives.
    fn check_watched(&self) -> Result<(), InvariantViolation> {
        let mut accounts = BTreeSet::new();
        let mut waiting = BTreeSet::new();
        for (account, m, pos) in self.positions.all() {
            let asset = self.markets[m].quote;
            if pos.lots == 0 || self.watch.in_backlog(account, asset) {
                continue;
            }
            accounts.insert((account, asset));
            let trigger = self.watch.trigger(account, m);
            if trigger.map(|t| t.long) != Some(pos.lots > 0) {
                return Err(InvariantViolation::Margin {
                    account,
                    asset: self.assets.get(asset).code.to_string(),
                    what: format!("its position on market {m} is not watched"),
                });
            }
            if trigger.is_some_and(|t| t.crossed_by(self.markets[m].mark().unwrap_or(0))) {
                waiting.insert((account, asset));
            }
        }
        accounts.retain(|a| !waiting.contains(a));
        self.check_triggers(&waiting)?;
        for (account, asset, kept) in self.positions.kept() {
            let walked = self.walk_unrealized(account, asset).0;
            if kept != walked {
                return Err(InvariantViolation::Margin {
                    account,
                    asset: self.assets.get(asset).code.to_string(),
                    what: format!("unrealized {kept} kept, {walked} walked"),
                });
            }
        }
        for (account, asset) in accounts {
            let health = self.health(account, asset);
            if health.slack() < 0 {
                return Err(InvariantViolation::Margin {
                    account,
                    asset: self.assets.get(asset).code.to_string(),
                    what: format!(
                        "equity {} below maintenance {} outside a liquidation",
                        health.equity, health.maintenance
                    ),
                });
            }
        }
        Ok(())
    }

    /// Every trigger stands for an open position outside the backlog, on its
    /// side, not crossed by its market's mark unless that market waits for a
    /// sweep, with the floor its position has there; each account's cover is the sum of its triggers; nothing is left
    /// over from the command. So a wallet of at least minus the cover means the
    /// account covers its maintenance at every mark its triggers allow.
    fn check_triggers(
        &self,
        waiting: &BTreeSet<(AccountId, u16)>,
    ) -> Result<(), InvariantViolation> {
        let fail = |account: AccountId, asset: u16, what: String| InvariantViolation::Margin {
            account,
            asset: self.assets.get(asset).code.to_string(),
            what,
        };
        let mut covers: BTreeMap<(AccountId, u16), Cover> = BTreeMap::new();
        for (account, m, t) in self.watch.triggers() {
            let mk = &self.markets[m];
            let standing = self.positions.get(account, m).filter(|p| {
                p.lots != 0
                    && (p.lots > 0) == t.long
                    && mk.quote == t.asset
                    && !self.watch.in_backlog(account, t.asset)
                    && (!t.crossed_by(mk.mark().unwrap_or(0)) || self.watch.sweeping(m))
            });
            let Some(p) = standing else {
                return Err(fail(
                    account,
                    t.asset,
                    format!("its trigger on market {m} does not stand"),
                ));
            };
            let floor = self.floor_at(m, p, t.ticks);
            if floor != t.floor {
                return Err(fail(
                    account,
                    t.asset,
                    format!(
                        "its trigger on market {m} keeps a floor of {}, not {floor}",
                        t.floor
                    ),
                ));
            }
            let c = covers.entry((account, t.asset)).or_default();
            c.floors += floor;
            c.triggers += 1;
        }
        let kept: BTreeMap<(AccountId, u16), Cover> =
            self.watch.covers().map(|(a, s, c)| ((a, s), c)).collect();
        if kept != covers {
            return Err(InvariantViolation::Watch {
                what: "the covers are not the sums of the triggers".into(),
            });
        }
        self.check_covered(&kept, waiting)?;
        if !self.watch.settled() {
            return Err(InvariantViolation::Watch {
                what: "accounts or positions were left unchecked".into(),
            });
        }
        Ok(())
    }

    /// Every account outside the backlog whose triggers all stand (none is
    /// `waiting` for a sweep) is covered by them (its wallet at least minus its
    /// cover), unless its slack is within twice its rounding allowance of zero:
    /// then its triggers sit a tick from the marks instead.
    fn check_covered(
        &self,
        covers: &BTreeMap<(AccountId, u16), Cover>,
        waiting: &BTreeSet<(AccountId, u16)>,
    ) -> Result<(), InvariantViolation> {
        for (&(account, asset), cover) in covers {
            let wallet = self.wallet(account, asset);
            if wallet + cover.floors >= 0
                || self.watch.in_backlog(account, asset)
                || waiting.contains(&(account, asset))
            {
                continue;
            }
            let rounding: i128 = self
                .positions
                .of(account)
                .filter(|(m, p)| self.markets[*m].quote == asset && p.lots != 0)
                .map(|(m, _)| self.perps.get(m).map_or(0, |x| x.rounding_minor()))
                .sum();
            let slack = self.health(account, asset).slack();
            if slack >= 2 * rounding {
                return Err(InvariantViolation::Margin {
                    account,
                    asset: self.assets.get(asset).code.to_string(),
                    what: format!(
                        "not covered by its triggers: wallet {wallet}, cover {}, slack {slack}",
                        cover.floors
                    ),
                });
            }
        }
        Ok(())
    }

    fn check_markets_sum(
        &self,
        per_market: &BTreeMap<u32, (i128, u64, i128)>,
    ) -> Result<(), InvariantViolation> {
        let mut clearing = vec![0i128; self.assets.len()];
        for (m, perp) in self.perps.iter() {
            let (lots, longs, cost) = per_market.get(&m).copied().unwrap_or_default();
            // The insurance fund's position counts as one more.
            let fund = perp.fund;
            let lots = lots + i128::from(fund.lots);
            let longs = longs + fund.lots.max(0).unsigned_abs();
            let cost = cost + fund.signed_cost();
            let pool = perp.funding.pool;
            let what = if lots != 0 {
                Some(format!("positions sum to {lots} lots"))
            } else if longs != perp.open_interest() {
                Some(format!(
                    "open interest {} but longs {longs}",
                    perp.open_interest()
                ))
            } else if perp.clearing() + cost != pool {
                Some(format!("clearing {} but costs {cost}", perp.clearing()))
            } else if pool != 0 && perp.funding.round.is_none() {
                Some(format!("funding pool {pool} without a round"))
            } else if (fund.lots == 0) != (fund.cost == 0) {
                Some(format!("the insurance fund's position {fund:?}"))
            } else if self.perps.fund_holds(m) != (fund.lots != 0) {
                Some(format!(
                    "the insurance fund's position {fund:?} listed wrongly"
                ))
            } else {
                None
            };
            if let Some(what) = what {
                let market = self.markets[m].spec.symbol.to_string();
                return Err(InvariantViolation::Perpetual { market, what });
            }
            clearing[usize::from(self.markets[m].quote)] += perp.clearing();
        }
        for (a, total) in (0u16..).zip(clearing) {
            if self.ledger.system(a).clearing != total {
                return Err(InvariantViolation::Perpetual {
                    market: String::new(),
                    what: format!("the ledger's clearing in asset {a} differs from the markets'"),
                });
            }
        }
        Ok(())
    }

    fn check_margins(
        &self,
        per_account: &BTreeMap<(AccountId, u16), u128>,
    ) -> Result<(), InvariantViolation> {
        let mut seen = 0;
        for (account, asset, margin) in self.positions.margins() {
            let need = per_account.get(&(account, asset)).copied().unwrap_or(0);
            seen += usize::from(need > 0);
            if margin.required != need || u128::from(margin.held) > need {
                return Err(InvariantViolation::Margin {
                    account,
                    asset: self.assets.get(asset).code.to_string(),
                    what: format!("requires {need}, kept {margin:?}"),
                });
            }
        }
        if seen != per_account.values().filter(|n| **n > 0).count() {
            return Err(InvariantViolation::Margin {
                account: AccountId(0),
                asset: String::new(),
                what: "an account's margin is missing".into(),
            });
        }
        Ok(())
    }
}

fn check_not_crossed(mk: &Market) -> Result<(), InvariantViolation> {
    let bid = mk.book.best(Side::Buy).map(|b| b.0);
    let ask = mk.book.best(Side::Sell).map(|a| a.0);
    if let (Some(bid), Some(ask)) = (bid, ask) {
        if bid >= ask {
            return Err(InvariantViolation::Crossed {
                market: mk.spec.symbol.to_string(),
                bid,
                ask,
            });
        }
    }
    Ok(())
}
