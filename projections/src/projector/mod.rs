//! The projector: folds sealed events, in `seq` order, into the views. It keeps the
//! state it updates often (wallets, open orders, depth, current candles, markets) in
//! memory, loaded from sled when it opens, and writes every change of a batch together
//! with its checkpoint in one atomic sled batch. It never skips or applies twice: an
//! event below the checkpoint is ignored, a gap is an error.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use tape_schemas::*;

use crate::keys::{self, Key};
use crate::read::*;
use crate::views::*;
use crate::ProjectionError;

mod access;
mod custody;
mod markets;
mod orders;
mod outcomes;
use outcomes::flush_outcomes;
mod reports;
mod trades;
mod wallets;

/// Where an event stands: its `seq`, its command's offset and its time.
#[derive(Clone, Copy)]
struct At {
    seq: u64,
    command_offset: u64,
    time_ms: u64,
}

/// What one applied batch changed: the feed for live subscriptions and for the
/// gateway's wait on a command's outcome.
#[derive(Clone, Debug, Default)]
pub struct Changes {
    /// The checkpoint after the batch: the next `seq` to apply.
    pub next_seq: u64,
    /// The command offset of the batch's last event.
    pub last_command_offset: Option<u64>,
    pub outcomes: Vec<OutcomeView>,
    /// Batch items' answers: (command offset, item, result).
    pub items: Vec<(u64, u16, CommandResult)>,
    pub trades: Vec<TradeView>,
    pub orders: Vec<OrderView>,
    pub wallets: Vec<WalletView>,
    /// New ledger entries, in seq order.
    pub entries: Vec<LedgerEntry>,
    /// Markets whose depth changed.
    pub depth: Vec<Symbol>,
    pub candles: Vec<(Symbol, Interval, Candle)>,
    /// Perpetual markets whose prices or staleness changed.
    pub perpetuals: Vec<Symbol>,
    /// Positions as they stand after the batch, each once.
    pub positions: Vec<PositionView>,
}

/// Where the views stand (stored under `keys::CHECKPOINT`; the read side reads it).
#[derive(Serialize, Deserialize, Clone, Copy)]
pub(crate) struct Checkpoint {
    pub(crate) next_seq: u64,
    pub(crate) clock_ms: u64,
    last_command_offset: Option<u64>,
    /// The events log's epoch in force after the last record read: records of
    /// older epochs after it are a deposed engine's, and are ignored.
    epoch: u64,
}

impl Default for Checkpoint {
    /// Before the first event (`seq` starts at 1).
    fn default() -> Self {
        Checkpoint {
            next_seq: 1,
            clock_ms: 0,
            last_command_offset: None,
            epoch: 0,
        }
    }
}

type Ladder = BTreeMap<Decimal, Decimal>;

#[derive(Default)]
struct Book {
    bids: Ladder,
    asks: Ladder,
}

impl Book {
    fn side(&mut self, side: Side) -> &mut Ladder {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    fn to_depth(&self) -> Depth {
        let row = |(p, q): (&Decimal, &Decimal)| (Dec(*p), Dec(*q));
        Depth {
            bids: self.bids.iter().rev().map(row).collect(),
            asks: self.asks.iter().map(row).collect(),
        }
    }
}

fn change(ladder: &mut Ladder, price: Decimal, delta: Decimal) {
    let q = ladder.entry(price).or_default();
    *q += delta;
    if q.is_zero() {
        ladder.remove(&price);
    } else {
        assert!(q.is_sign_positive(), "depth below zero at {price}");
    }
}

pub struct Projector {
    tree: sled::Tree,
    cp: Checkpoint,
    wallets: FxHashMap<(AccountId, AssetCode), WalletRow>,
    account_assets: FxHashMap<AccountId, Vec<AssetCode>>,
    /// Orders not yet done.
    open: FxHashMap<OrderId, OrderView>,
    /// Each account's open order ids (stored as one row per account).
    open_ids: FxHashMap<AccountId, BTreeSet<u64>>,
    books: FxHashMap<Symbol, Book>,
    markets: FxHashMap<Symbol, MarketView>,
    perpetuals: FxHashMap<Symbol, PerpetualView>,
    candles: FxHashMap<(Symbol, Interval), Candle>,
    batch: Pending,
}

/// What the batch being applied has touched.
#[derive(Default)]
struct Pending {
    writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    orders: FxHashSet<OrderId>,
    wallets: FxHashSet<(AccountId, AssetCode)>,
    books: FxHashSet<Symbol>,
    candles: FxHashSet<(Symbol, Interval)>,
    markets: FxHashSet<Symbol>,
    perpetuals: FxHashSet<Symbol>,
    equity: FxHashSet<AccountId>,
    open_ids: FxHashSet<AccountId>,
    /// Append-only rows, written as one group per account (or market) per batch.
    entries: FxHashMap<AccountId, Vec<LedgerEntry>>,
    account_trades: FxHashMap<AccountId, Vec<TradeView>>,
    market_trades: FxHashMap<Symbol, Vec<TradeView>>,
    account_orders: FxHashMap<AccountId, Vec<u64>>,
    changes: Changes,
}

/// Rows per stored group: a reader decodes a whole group to serve a page.
const GROUP_ROWS_MAX: usize = 128;

/// Writes append-only rows as groups of at most `GROUP_ROWS_MAX`, each keyed by
/// `key` of its first row.
fn put_groups<T: Serialize>(batch: &mut sled::Batch, rows: &[T], key: impl Fn(&T) -> Vec<u8>) {
    for g in rows.chunks(GROUP_ROWS_MAX) {
        batch.insert(key(&g[0]), enc(&g));
    }
}
/// Levels per side in the depth row that shallow depth reads use.
pub const DEPTH_TOP_LEVELS: usize = 50;

fn enc<T: Serialize>(v: &T) -> Vec<u8> {
    codec::to_bincode_large(v).expect("views always encode")
}

fn dec<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ProjectionError> {
    codec::from_bincode_large(bytes)
        .map_err(|e| ProjectionError::Store(format!("a view does not decode: {e}")))
}

fn d(x: Decimal) -> Dec {
    Dec(x)
}

impl Projector {
    /// Opens the views in `tree` and loads the in-memory state from them.
    pub fn open(tree: sled::Tree) -> Result<Projector, ProjectionError> {
        let cp = match tree.get(keys::CHECKPOINT)? {
            Some(v) => dec(&v)?,
            None => Checkpoint::default(),
        };
        let mut p = Projector {
            tree,
            cp,
            wallets: FxHashMap::default(),
            account_assets: FxHashMap::default(),
            open: FxHashMap::default(),
            open_ids: FxHashMap::default(),
            books: FxHashMap::default(),
            markets: FxHashMap::default(),
            perpetuals: FxHashMap::default(),
            candles: FxHashMap::default(),
            batch: Pending::default(),
        };
        for kv in p.tree.scan_prefix([keys::WALLET]) {
            let (k, v) = kv?;
            let account = AccountId(u64::from_be_bytes(k[1..9].try_into().expect("8 bytes")));
            let code = std::str::from_utf8(&k[9..])
                .map_err(|e| ProjectionError::Store(e.to_string()))?
                .trim_end_matches('\0');
            let asset: AssetCode = code
                .parse()
                .map_err(|e| ProjectionError::Store(format!("{e:?}")))?;
            p.wallets.insert((account, asset), dec(&v)?);
            p.account_assets.entry(account).or_default().push(asset);
        }
        for kv in p.tree.scan_prefix([keys::OPEN_ORDER]) {
            let (k, v) = kv?;
            let account = AccountId(keys::tail_u64(&k));
            let ids: BTreeSet<u64> = dec(&v)?;
            for id in &ids {
                let row = p.tree.get(Key::new(keys::ORDER).u64(*id).build())?;
                let row = row
                    .ok_or_else(|| ProjectionError::Store(format!("open order {id} has no row")))?;
                p.open.insert(OrderId(*id), dec(&row)?);
            }
            p.open_ids.insert(account, ids);
        }
        for kv in p.tree.scan_prefix([keys::MARKET]) {
            let (_, v) = kv?;
            let m: MarketView = dec(&v)?;
            p.markets.insert(m.spec.symbol, m);
        }
        for kv in p.tree.scan_prefix([keys::PERPETUAL]) {
            let (_, v) = kv?;
            let view: PerpetualView = dec(&v)?;
            p.perpetuals.insert(view.spec.market.symbol, view);
        }
        for kv in p.tree.scan_prefix([keys::DEPTH]) {
            let (_, v) = kv?;
            let (symbol, depth): (Symbol, Depth) = dec(&v)?;
            let book = p.books.entry(symbol).or_default();
            book.bids = depth.bids.iter().map(|(p, q)| (p.0, q.0)).collect();
            book.asks = depth.asks.iter().map(|(p, q)| (p.0, q.0)).collect();
        }
        Ok(p)
    }

    /// The next `seq` this projector will apply.
    pub fn next_seq(&self) -> u64 {
        self.cp.next_seq
    }

    /// Applies events-log records in order under the fencing rule
    /// (`tape_schemas::Fencing`) and commits them with the checkpoint. Records below
    /// the checkpoint, fences and deposed epochs' records are skipped.
    pub fn apply_records<'a>(
        &mut self,
        records: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Changes, ProjectionError> {
        let mut fencing = Fencing::resume(self.cp.epoch);
        for record in records {
            let malformed = |what: String| ProjectionError::Malformed {
                seq: self.cp.next_seq,
                what,
            };
            let bytes = match fencing
                .admit(record)
                .map_err(|e| malformed(e.to_string()))?
            {
                Admit::Event { envelope, .. } => envelope,
                Admit::Fence(_) | Admit::Fenced { .. } => continue,
            };
            self.cp.epoch = fencing.epoch();
            let (seq, _, _) = EventEnvelope::peek(bytes).map_err(|e| malformed(e.to_string()))?;
            if seq < self.cp.next_seq {
                continue;
            }
            let env: EventEnvelope =
                codec::from_bincode(bytes).map_err(|e| ProjectionError::Malformed {
                    seq,
                    what: e.to_string(),
                })?;
            self.apply_one(&env)?;
        }
        self.cp.epoch = fencing.epoch();
        self.commit()
    }

    /// Applies decoded envelopes and commits them (what tests and replays use).
    pub fn apply(&mut self, envelopes: &[EventEnvelope]) -> Result<Changes, ProjectionError> {
        for env in envelopes {
            if env.seq < self.cp.next_seq {
                continue;
            }
            self.apply_one(env)?;
        }
        self.commit()
    }

    fn apply_one(&mut self, env: &EventEnvelope) -> Result<(), ProjectionError> {
        if env.seq != self.cp.next_seq {
            return Err(ProjectionError::Gap {
                expected: self.cp.next_seq,
                found: env.seq,
            });
        }
        self.cp.next_seq += 1;
        self.cp.clock_ms = self.cp.clock_ms.max(env.time_ms);
        self.cp.last_command_offset = Some(env.command_offset);
        self.event(env.seq, env.command_offset, env.time_ms, &env.event)
    }

    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.batch.writes.push((key, Some(value)));
    }

    fn del(&mut self, key: Vec<u8>) {
        self.batch.writes.push((key, None));
    }

    /// A stored row, seeing this batch's own writes first.
    fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, ProjectionError> {
        if let Some((_, v)) = self.batch.writes.iter().rev().find(|(k, _)| k == key) {
            return v.as_deref().map(dec).transpose();
        }
        self.tree.get(key)?.map(|v| dec(&v)).transpose()
    }

    fn order_view(&self, id: OrderId) -> Result<Option<OrderView>, ProjectionError> {
        if let Some(o) = self.open.get(&id) {
            return Ok(Some(o.clone()));
        }
        self.get(&Key::new(keys::ORDER).u64(id.0).build())
    }

    fn order_mut(&mut self, id: OrderId) -> Result<&mut OrderView, ProjectionError> {
        self.batch.orders.insert(id);
        self.open
            .get_mut(&id)
            .ok_or(ProjectionError::Inconsistent(format!(
                "order {id} is not open"
            )))
    }

    /// One event, handed to the views it changes (one file each).
    fn event(
        &mut self,
        seq: u64,
        command_offset: u64,
        time_ms: u64,
        event: &Event,
    ) -> Result<(), ProjectionError> {
        let at = At {
            seq,
            command_offset,
            time_ms,
        };
        match event {
            Event::Outcome { .. } | Event::ItemOutcome { .. } => self.outcomes(at, event),
            Event::AssetCreated(_)
            | Event::AssetUpdated { .. }
            | Event::MarketCreated(_)
            | Event::MarketUpdated { .. } => self.markets(at, event),
            Event::PerpetualCreated { .. }
            | Event::IndexPriceSet { .. }
            | Event::IndexStale { .. }
            | Event::LeverageTiersSet(_)
            | Event::AccountTierSet { .. }
            | Event::LeverageSet { .. }
            | Event::PositionChanged { .. }
            | Event::LiquidationStarted { .. }
            | Event::LiquidationStep { .. }
            | Event::LiquidationEnded { .. }
            | Event::Deleveraged { .. }
            | Event::InsurancePosition { .. }
            | Event::FundingRound { .. }
            | Event::FundingPaid { .. }
            | Event::NotionalCapSet { .. } => self.perpetuals(at, event),
            Event::WithdrawalRequested { .. }
            | Event::WithdrawalCompleted { .. }
            | Event::WithdrawalFailed { .. } => self.custody(at, event),
            Event::OrderAccepted { .. }
            | Event::OrderTriggered { .. }
            | Event::OrderRested { .. }
            | Event::OrderAmended { .. }
            | Event::OrderRefilled { .. }
            | Event::OrderDone { .. } => self.orders(at, event),
            Event::Trade { .. } => self.trades(at, event),
            Event::Posting { .. } => self.wallets(at, event),
            Event::SlicedPlaced { .. }
            | Event::BracketExitPlaced { .. }
            | Event::BracketPnl { .. }
            | Event::BracketExitRejected { .. } => self.reports(at, event),
            Event::ApiKeyCreated { .. }
            | Event::ApiKeyRevoked { .. }
            | Event::CredentialsRequired { .. }
            | Event::AccountRestrictionsSet { .. }
            | Event::Checkpoint { .. }
            | Event::LiabilitiesCommitted(_) => self.access(at, event),
            // Shown by other events (a deposit by its posting) or by no view at all.
            Event::AccountFeesSet { .. }
            | Event::WithdrawalLimitSet { .. }
            | Event::Deposited { .. }
            | Event::DeadManSwitchSet { .. }
            | Event::DeadManSwitchFired { .. } => Ok(()),
        }
    }

    fn book(&mut self, market: Symbol) -> &mut Book {
        self.batch.books.insert(market);
        self.books.entry(market).or_default()
    }

    /// Writes the batch and its checkpoint in one atomic sled batch: each view
    /// flushes what it touched (its own file's `flush_*`).
    fn commit(&mut self) -> Result<Changes, ProjectionError> {
        let mut pending = std::mem::take(&mut self.batch);
        let mut batch = sled::Batch::default();
        for (k, v) in pending.writes.drain(..) {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        let mut changes = std::mem::take(&mut pending.changes);
        let done = self.flush_orders(&mut pending, &mut batch, &mut changes);
        self.flush_wallets(&pending, &mut batch, &mut changes);
        self.flush_markets(&pending, &mut batch, &mut changes);
        self.flush_trades(&pending, &mut batch, &mut changes);
        flush_outcomes(&mut batch, &changes);
        batch.insert(keys::CHECKPOINT, enc(&self.cp));
        self.tree.apply_batch(batch)?;
        for id in done {
            self.open.remove(&id);
        }
        changes.orders.sort_by_key(|o| o.order);
        // The last state of each position the batch changed.
        let mut seen = std::collections::BTreeSet::new();
        let mut positions: Vec<PositionView> = std::mem::take(&mut changes.positions)
            .into_iter()
            .rev()
            .filter(|p| seen.insert((p.account, p.market)))
            .collect();
        positions.reverse();
        changes.positions = positions;
        changes
            .wallets
            .sort_by_key(|w| (w.account, w.asset.as_str().to_string()));
        changes.next_seq = self.cp.next_seq;
        changes.last_command_offset = self.cp.last_command_offset;
        Ok(changes)
    }
}
