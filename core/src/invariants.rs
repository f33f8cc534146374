//! What must hold after every command. Tests and auditors call `check_invariants`;
//! the engine may call it at checkpoints. It reads, never changes.

use std::collections::BTreeMap;

use tape_schemas::*;

use crate::book::{Order, OrderKind};
use crate::exchange::Core;
use crate::market::Market;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvariantViolation {
    #[error("asset {asset}: accounts {accounts} + fees {fees} != deposited {deposited} - withdrawn {withdrawn}")]
    Conservation {
        asset: String,
        accounts: u128,
        fees: u128,
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
            if total + u128::from(sys.fees) + sys.withdrawn != sys.deposited {
                return Err(InvariantViolation::Conservation {
                    asset: spec.code.to_string(),
                    accounts: *total,
                    fees: u128::from(sys.fees),
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
