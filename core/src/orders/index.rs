//! The live orders' index: where each one rests, client order ids, GTD expiries, the
//! parents of sliced and bracket orders, and the order id counter.

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
    pub live: FxHashMap<u64, (u32, Slot)>,
    pub client_ids: FxHashMap<(AccountId, ClientOrderId), u64>,
    /// GTD orders by (expiry, id).
    pub expiries: BTreeSet<(u64, u64)>,
    pub parents: BTreeMap<u64, Parent>,
    pub next_id: u64,
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
}
