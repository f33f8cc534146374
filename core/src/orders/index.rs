//! The live orders' index: where each one rests, each account's open orders, client
//! order ids, GTD expiries, the parents of sliced and bracket orders, and the order id
//! counter. The `orders` module owns it: its files change it directly, every other
//! part asks through the methods here.

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashMap;
use tape_schemas::*;

use crate::book::Slot;

/// Bracket bookkeeping, keyed by the entry order's id.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Bracket {
    pub account: AccountId,
    pub market: u32,
    pub side: Side,
    pub exit_ticks: u64,
    pub entry_open: bool,
    pub entry_filled_lots: u64,
    /// Quote paid (buy entry, fees included) or received (sell entry, net of fees).
    pub entry_quote_minor: u64,
    pub exit: Option<u64>,
    pub exit_filled_lots: u64,
    pub exit_quote_minor: u64,
    pub cancelled: bool,
}

#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) enum Parent {
    /// A sliced order's open children.
    Sliced {
        account: AccountId,
        children: BTreeSet<u64>,
        client_order_id: Option<ClientOrderId>,
    },
    Bracket(Bracket),
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Orders {
    /// Live order id -> (market, slot).
    pub(super) live: FxHashMap<u64, (u32, Slot)>,
    /// Each account's open orders (resting and waiting stops), by id.
    pub(super) by_account: FxHashMap<AccountId, BTreeSet<u64>>,
    pub(super) client_ids: FxHashMap<(AccountId, ClientOrderId), u64>,
    /// GTD orders by (expiry, id).
    pub(super) expiries: BTreeSet<(u64, u64)>,
    pub(super) parents: BTreeMap<u64, Parent>,
    pub(super) next_id: u64,
}

/// What the snapshot keeps of the index beyond the orders themselves (which the
/// markets' books list): the parents and the id counter. The rest is rebuilt.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct OrdersSnapshot {
    pub(super) next_id: u64,
    parents: Vec<(u64, Parent)>,
}

impl Orders {
    pub fn new() -> Self {
        Orders {
            next_id: 1,
            ..Orders::default()
        }
    }

    /// A new order id.
    pub fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Where a live order is: its market and slot.
    pub fn find(&self, id: u64) -> Option<(u32, Slot)> {
        self.live.get(&id).copied()
    }

    /// Where an order known to be live is. Callers take `id` from the books, the
    /// expiries or an account's open list, never from a command (a command's order
    /// id is looked up with a lookup that can miss), so a miss is a broken index,
    /// not bad input.
    #[track_caller]
    pub fn locate(&self, id: u64) -> (u32, Slot) {
        match self.live.get(&id) {
            Some(at) => *at,
            None => panic!("order {id} is live"),
        }
    }

    /// Live orders across all markets.
    pub fn count(&self) -> usize {
        self.live.len()
    }

    /// The earliest GTD expiry: (expiry, id).
    pub fn next_expiry(&self) -> Option<(u64, u64)> {
        self.expiries.first().copied()
    }

    /// An account's open orders, ascending.
    pub fn open_of(&self, account: AccountId) -> impl Iterator<Item = u64> + '_ {
        self.by_account.get(&account).into_iter().flatten().copied()
    }

    /// How many orders an account has open.
    pub fn open_count(&self, account: AccountId) -> usize {
        self.by_account.get(&account).map_or(0, BTreeSet::len)
    }

    /// Whether an order is listed as open on its account.
    pub fn is_open_for(&self, account: AccountId, id: u64) -> bool {
        self.by_account
            .get(&account)
            .is_some_and(|ids| ids.contains(&id))
    }

    /// Lists a live order on its account, its client id and its expiry.
    pub(super) fn track(
        &mut self,
        account: AccountId,
        id: u64,
        cid: Option<&ClientOrderId>,
        expiry: Option<u64>,
    ) {
        self.by_account.entry(account).or_default().insert(id);
        if let Some(cid) = cid {
            self.client_ids.insert((account, *cid), id);
        }
        if let Some(e) = expiry {
            self.expiries.insert((e, id));
        }
    }

    /// Forgets an ended order: off its account, its client id, its expiry.
    pub(super) fn forget(
        &mut self,
        account: AccountId,
        id: u64,
        cid: Option<&ClientOrderId>,
        expiry: Option<u64>,
    ) {
        assert!(
            !self.live.contains_key(&id),
            "order {id} ends after it leaves its book"
        );
        if let Some(ids) = self.by_account.get_mut(&account) {
            ids.remove(&id);
            if ids.is_empty() {
                self.by_account.remove(&account);
            }
        }
        if let Some(cid) = cid {
            if self.client_ids.get(&(account, *cid)) == Some(&id) {
                self.client_ids.remove(&(account, *cid));
            }
        }
        if let Some(e) = expiry {
            self.expiries.remove(&(e, id));
        }
    }

    pub fn snapshot(&self) -> OrdersSnapshot {
        OrdersSnapshot {
            next_id: self.next_id,
            parents: self.parents.iter().map(|(k, v)| (*k, v.clone())).collect(),
        }
    }

    /// The index with its parents and counter; orders are added with `restore_order`.
    pub fn restore(s: OrdersSnapshot) -> Self {
        let mut orders = Orders::new();
        orders.next_id = s.next_id;
        for (id, p) in &s.parents {
            if let Parent::Sliced {
                account,
                client_order_id: Some(cid),
                ..
            } = p
            {
                orders.client_ids.insert((*account, *cid), *id);
            }
        }
        orders.parents = s.parents.into_iter().collect();
        orders
    }

    /// Indexes an order the snapshot lists at `slot` of market `m`.
    pub fn restore_order(
        &mut self,
        m: u32,
        slot: Slot,
        o: &crate::book::Order,
    ) -> Result<(), String> {
        if o.id == 0 || o.id >= self.next_id {
            return Err(format!("order {} is beyond the id counter", o.id));
        }
        if self.live.insert(o.id, (m, slot)).is_some() {
            return Err(format!("order {} appears twice", o.id));
        }
        self.track(o.account, o.id, o.client_order_id.as_deref(), o.expiry());
        Ok(())
    }
}
