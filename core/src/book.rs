//! One market's order book: a slab of orders, and per side a `BTreeMap` of price
//! levels, each a FIFO list threaded through the slab. The book only stores and
//! orders; it never decides who trades (that is `matching`) and never moves money.

use serde::{Deserialize, Serialize};

use crate::ladder::Ladder;
use tape_schemas::{AccountId, ClientOrderId, Side, StpMode, TimeInForce};

/// Slab index. `NIL` ends a list.
pub type Slot = u32;
pub const NIL: Slot = u32::MAX;

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum OrderKind {
    /// A limit order (resting, or a triggered stop-limit).
    Limit,
    /// A stop-market order waiting for its trigger.
    StopMarket,
    /// A stop-limit order waiting for its trigger.
    StopLimit,
}

/// How a stop-market order is sized once triggered.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum StopSize {
    BaseLots(u64),
    QuoteMinor(u64),
}

/// Time in force as stored on an order (the expiry lives beside it, so an order
/// stays small).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Tif {
    Gtc,
    Ioc,
    Fok,
    Gtd,
}

/// A live order: resting in the book, or a stop waiting for its trigger.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Order {
    pub id: u64,
    pub account: AccountId,
    pub side: Side,
    pub kind: OrderKind,
    /// Limit price in ticks (0 for stop-market).
    pub price_ticks: u64,
    /// Unfilled quantity, visible and hidden.
    pub open_lots: u64,
    /// What the book shows; `open_lots` unless an iceberg.
    pub visible_lots: u64,
    /// Iceberg display size; 0 when not an iceberg.
    pub display_lots: u64,
    pub filled_lots: u64,
    /// Funds held for this order: quote minor units for buys, base for sells.
    pub held_minor: u64,
    /// Fee rates fixed when the order was accepted.
    pub maker_ppm: u32,
    pub taker_ppm: u32,
    pub tif: Tif,
    /// GTD expiry; 0 unless `tif` is `Gtd`.
    pub expires_at_ms: u64,
    pub post_only: bool,
    pub stp: StpMode,
    pub trigger_ticks: u64,
    /// A stop-market order sized in quote: its budget. 0 when sized in base lots
    /// (`open_lots`).
    pub stop_quote_minor: u64,
    /// Sliced parent or bracket entry; 0 when none.
    pub parent: u64,
    /// A perpetual order that may only shrink its position.
    pub reduce_only: bool,
    pub client_order_id: Option<Box<ClientOrderId>>,
    #[serde(skip, default = "nil")]
    pub prev: Slot,
    #[serde(skip, default = "nil")]
    pub next: Slot,
}

impl Order {
    pub fn is_iceberg(&self) -> bool {
        self.display_lots != 0
    }

    pub fn set_time_in_force(&mut self, tif: TimeInForce) {
        (self.tif, self.expires_at_ms) = match tif {
            TimeInForce::Gtc => (Tif::Gtc, 0),
            TimeInForce::Ioc => (Tif::Ioc, 0),
            TimeInForce::Fok => (Tif::Fok, 0),
            TimeInForce::Gtd { expires_at_ms } => (Tif::Gtd, expires_at_ms),
        };
    }

    /// The GTD expiry, if any.
    pub fn expiry(&self) -> Option<u64> {
        (self.tif == Tif::Gtd).then_some(self.expires_at_ms)
    }
}

fn nil() -> Slot {
    NIL
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Level {
    pub head: Slot,
    pub tail: Slot,
}

#[derive(Clone, Default, Debug)]
pub struct Book {
    bids: Ladder,
    asks: Ladder,
    slab: Vec<Order>,
    free: Vec<Slot>,
}

impl Book {
    pub fn insert(&mut self, mut order: Order) -> Slot {
        assert!(order.id != 0, "a live order has an id");
        order.prev = NIL;
        order.next = NIL;
        match self.free.pop() {
            Some(slot) => {
                self.slab[slot as usize] = order;
                slot
            }
            None => {
                self.slab.push(order);
                u32::try_from(self.slab.len() - 1).expect("fewer than 2^32 orders per market")
            }
        }
    }

    /// Frees a slot that is not linked into any level.
    pub fn remove(&mut self, slot: Slot) -> Order {
        let o = self.get(slot);
        assert!(o.id != 0, "removing a vacant slot {slot}");
        assert!(
            o.prev == NIL && o.next == NIL && !self.heads(o.side, o.price_ticks, slot),
            "order {} is removed while still in its level",
            o.id
        );
        let order = std::mem::replace(&mut self.slab[slot as usize], VACANT.clone());
        self.free.push(slot);
        order
    }

    pub fn get(&self, slot: Slot) -> &Order {
        &self.slab[slot as usize]
    }

    pub fn get_mut(&mut self, slot: Slot) -> &mut Order {
        &mut self.slab[slot as usize]
    }

    fn side_mut(&mut self, side: Side) -> &mut Ladder {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// Appends an order to the back of its price level.
    pub fn push_back(&mut self, slot: Slot) {
        let (side, price) = {
            let o = self.get(slot);
            assert!(
                o.id != 0 && o.open_lots > 0,
                "queueing a live order with lots"
            );
            assert!(
                o.prev == NIL && o.next == NIL,
                "order {} is queued twice",
                o.id
            );
            (o.side, o.price_ticks)
        };
        let level = self.side_mut(side).entry(price);
        let old_tail = level.tail;
        level.tail = slot;
        if old_tail == NIL {
            level.head = slot;
        }
        if old_tail != NIL {
            self.slab[old_tail as usize].next = slot;
        }
        let o = &mut self.slab[slot as usize];
        o.prev = old_tail;
        o.next = NIL;
        assert!(
            self.heads(side, price, slot) || old_tail != NIL,
            "queued at its level"
        );
    }

    /// Whether `slot` is the head of the level at `price` on `side`.
    fn heads(&self, side: Side, price: u64, slot: Slot) -> bool {
        let levels = match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        };
        levels.get(price).is_some_and(|l| l.head == slot)
    }

    /// Every live order (resting and waiting stops), in slab order.
    pub fn orders(&self) -> impl Iterator<Item = &Order> + '_ {
        self.slab.iter().filter(|o| o.id != 0)
    }

    /// Takes an order out of its level (dropping the level when it empties).
    pub fn unlink(&mut self, slot: Slot) {
        let (side, price, prev, next) = {
            let o = self.get(slot);
            assert!(o.id != 0, "unlinking a vacant slot {slot}");
            (o.side, o.price_ticks, o.prev, o.next)
        };
        if prev != NIL {
            self.slab[prev as usize].next = next;
        }
        if next != NIL {
            self.slab[next as usize].prev = prev;
        }
        let levels = self.side_mut(side);
        let level = levels
            .get_mut(price)
            .expect("a linked order's level exists");
        if level.head == slot {
            level.head = next;
        }
        if level.tail == slot {
            level.tail = prev;
        }
        if level.head == NIL {
            levels.remove(price);
        }
        let o = &mut self.slab[slot as usize];
        o.prev = NIL;
        o.next = NIL;
        assert!(
            !self.heads(side, price, slot),
            "an unlinked order heads no level"
        );
    }

    /// The best level on `side`: highest bid or lowest ask, with its first order.
    pub fn best(&self, side: Side) -> Option<(u64, Slot)> {
        match side {
            Side::Buy => self.bids.max().map(|(p, l)| (p, l.head)),
            Side::Sell => self.asks.min().map(|(p, l)| (p, l.head)),
        }
    }

    /// The midpoint of the best bid and ask, rounded down; `None` unless both
    /// sides have orders.
    pub fn mid(&self) -> Option<u64> {
        let (bid, _) = self.best(Side::Buy)?;
        let (ask, _) = self.best(Side::Sell)?;
        Some(bid / 2 + ask / 2 + (bid % 2 + ask % 2) / 2)
    }

    /// Levels of `side` from best to worst.
    pub fn levels(&self, side: Side) -> Box<dyn Iterator<Item = (u64, Level)> + '_> {
        match side {
            Side::Buy => Box::new(self.bids.iter_asc().rev()),
            Side::Sell => Box::new(self.asks.iter_asc()),
        }
    }

    /// Slots of one level, front to back.
    pub fn queue(&self, level: Level) -> impl Iterator<Item = Slot> + '_ {
        let mut at = level.head;
        std::iter::from_fn(move || {
            if at == NIL {
                return None;
            }
            let slot = at;
            at = self.slab[slot as usize].next;
            Some(slot)
        })
    }

    /// Orders in the slab: resting ones and waiting stops.
    #[cfg(test)]
    pub fn live_orders(&self) -> usize {
        self.slab.len() - self.free.len()
    }
}

static VACANT: Order = Order {
    id: 0,
    account: AccountId(0),
    side: Side::Buy,
    kind: OrderKind::Limit,
    price_ticks: 0,
    open_lots: 0,
    visible_lots: 0,
    display_lots: 0,
    filled_lots: 0,
    held_minor: 0,
    maker_ppm: 0,
    taker_ppm: 0,
    tif: Tif::Gtc,
    expires_at_ms: 0,
    post_only: false,
    stp: StpMode::CancelTaker,
    trigger_ticks: 0,
    stop_quote_minor: 0,
    parent: 0,
    reduce_only: false,
    client_order_id: None,
    prev: NIL,
    next: NIL,
};

#[cfg(test)]
mod tests {
    use super::*;

    fn order(id: u64, side: Side, price: u64) -> Order {
        Order {
            id,
            side,
            price_ticks: price,
            open_lots: 1,
            visible_lots: 1,
            ..VACANT.clone()
        }
    }

    fn ids(book: &Book, side: Side) -> Vec<(u64, Vec<u64>)> {
        book.levels(side)
            .map(|(p, l)| (p, book.queue(l).map(|s| book.get(s).id).collect()))
            .collect()
    }

    #[test]
    fn levels_keep_price_then_time_order_and_vanish_when_empty() {
        let mut book = Book::default();
        let a = book.insert(order(1, Side::Buy, 100));
        let b = book.insert(order(2, Side::Buy, 101));
        let c = book.insert(order(3, Side::Buy, 100));
        for s in [a, b, c] {
            book.push_back(s);
        }
        assert_eq!(
            ids(&book, Side::Buy),
            vec![(101, vec![2]), (100, vec![1, 3])]
        );
        assert_eq!(book.best(Side::Buy), Some((101, b)));
        book.unlink(b);
        book.remove(b);
        book.unlink(a);
        book.push_back(a);
        assert_eq!(ids(&book, Side::Buy), vec![(100, vec![3, 1])]);
        let d = book.insert(order(4, Side::Sell, 105));
        assert_eq!(d, b, "a freed slot is reused");
        book.push_back(d);
        assert_eq!(book.best(Side::Sell), Some((105, d)));
        assert_eq!(book.live_orders(), 3);
    }
}
