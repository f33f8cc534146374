//! Reading the views: what the gateway serves. Every list is a range of ids (or
//! `seq`s) read in either direction from a cursor, filtered, and cut to a page.

use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use tape_schemas::*;

use crate::keys::{self, Key};
use crate::views::*;
use crate::ProjectionError;

/// The most rows one page returns.
pub const PAGE_ROWS_MAX: usize = 1_000;

/// Which slice of a list: ids in `[from_id, to_id]`, after `cursor` (exclusive, in the
/// direction of reading), at most `first` rows.
#[derive(Clone, Copy, Debug)]
pub struct Page {
    pub newest_first: bool,
    pub cursor: Option<u64>,
    pub first: usize,
    pub from_id: u64,
    pub to_id: u64,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            newest_first: true,
            cursor: None,
            first: 50,
            from_id: 0,
            to_id: u64::MAX,
        }
    }
}

/// A page of rows, each with its cursor (its id), and whether more follow.
#[derive(Clone, Debug)]
pub struct Rows<T> {
    pub rows: Vec<(u64, T)>,
    pub has_more: bool,
}

#[derive(Clone, Debug, Default)]
pub struct OrderFilter {
    pub market: Option<Symbol>,
    pub side: Option<Side>,
    pub statuses: Vec<OrderStatus>,
    pub open_only: bool,
    pub from_ms: Option<u64>,
    pub to_ms: Option<u64>,
}

#[derive(Clone, Debug, Default)]
pub struct TradeFilter {
    pub market: Option<Symbol>,
    pub from_ms: Option<u64>,
    pub to_ms: Option<u64>,
}

#[derive(Clone, Debug, Default)]
pub struct EntryFilter {
    pub asset: Option<AssetCode>,
    pub kind: Option<EntryKind>,
    pub from_ms: Option<u64>,
    pub to_ms: Option<u64>,
}

/// Gathers a page's rows, noting whether a row beyond the page exists.
struct Collect<T> {
    rows: Vec<(u64, T)>,
    first: usize,
}

impl<T> Collect<T> {
    fn new(page: &Page) -> Collect<T> {
        Collect {
            rows: Vec::new(),
            first: page.first.min(PAGE_ROWS_MAX),
        }
    }

    /// Adds a row; `Err` when the page is already full (so more rows exist).
    fn push(&mut self, id: u64, row: T) -> Result<(), ()> {
        if self.rows.len() == self.first {
            return Err(());
        }
        self.rows.push((id, row));
        Ok(())
    }

    fn done(self, has_more: bool) -> Rows<T> {
        Rows {
            rows: self.rows,
            has_more,
        }
    }
}

/// The id range a page covers after its cursor, or `None` when it is empty.
fn bounds(page: &Page) -> Option<(u64, u64)> {
    let (mut lo, mut hi) = (page.from_id, page.to_id);
    if let Some(c) = page.cursor {
        if page.newest_first {
            hi = hi.min(c.checked_sub(1)?);
        } else {
            lo = lo.max(c.checked_add(1)?);
        }
    }
    (lo <= hi).then_some((lo, hi))
}

fn in_time(t: u64, from_ms: Option<u64>, to_ms: Option<u64>) -> bool {
    from_ms.is_none_or(|f| t >= f) && to_ms.is_none_or(|e| t <= e)
}

/// One stored key and its value.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// A read handle on the views; cheap to clone, safe to share.
#[derive(Clone)]
pub struct Views {
    tree: sled::Tree,
}

impl Views {
    pub fn new(tree: sled::Tree) -> Views {
        Views { tree }
    }

    fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, ProjectionError> {
        match self.tree.get(key)? {
            Some(v) => Ok(Some(codec::from_bincode_large(&v).map_err(|e| {
                ProjectionError::Store(format!("a view does not decode: {e}"))
            })?)),
            None => Ok(None),
        }
    }

    fn scan<T: DeserializeOwned>(&self, prefix: Vec<u8>) -> Result<Vec<T>, ProjectionError> {
        self.tree
            .scan_prefix(prefix)
            .map(|kv| {
                let (_, v) = kv?;
                codec::from_bincode_large(&v)
                    .map_err(|e| ProjectionError::Store(format!("a view does not decode: {e}")))
            })
            .collect()
    }

    /// Reads ids under `prefix` (the id is the key's last 8 bytes) in the page's
    /// direction, keeping those `accept` maps to a row.
    fn page<T>(
        &self,
        prefix: Vec<u8>,
        page: &Page,
        mut accept: impl FnMut(u64) -> Result<Option<T>, ProjectionError>,
    ) -> Result<Rows<T>, ProjectionError> {
        let mut out = Collect::new(page);
        let Some((lo, hi)) = bounds(page) else {
            return Ok(out.done(false));
        };
        let start = [prefix.as_slice(), &lo.to_be_bytes()].concat();
        let end = [prefix.as_slice(), &hi.to_be_bytes()].concat();
        let range = self.tree.range(start..=end);
        let iter: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> =
            if page.newest_first {
                Box::new(range.rev())
            } else {
                Box::new(range)
            };
        for kv in iter {
            let (k, _) = kv?;
            let id = keys::tail_u64(&k);
            if let Some(row) = accept(id)? {
                if out.push(id, row).is_err() {
                    return Ok(out.done(true));
                }
            }
        }
        Ok(out.done(false))
    }

    /// Like [`Views::page`] over groups (see [`keys`]): each value under `prefix` is
    /// a `Vec<T>` in ascending id order, keyed by its first id.
    fn page_groups<T: DeserializeOwned, R>(
        &self,
        prefix: Vec<u8>,
        page: &Page,
        id_of: impl Fn(&T) -> u64,
        mut accept: impl FnMut(T) -> Result<Option<R>, ProjectionError>,
    ) -> Result<Rows<R>, ProjectionError> {
        let mut out = Collect::new(page);
        let Some((lo, hi)) = bounds(page) else {
            return Ok(out.done(false));
        };
        let key = |id: u64| [prefix.as_slice(), &id.to_be_bytes()].concat();
        let groups: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> =
            if page.newest_first {
                Box::new(self.tree.range(key(0)..=key(hi)).rev())
            } else {
                // start at the group that holds `lo`, if one does
                let start = match self.tree.range(key(0)..=key(lo)).next_back() {
                    Some(kv) => kv?.0.to_vec(),
                    None => key(lo),
                };
                Box::new(self.tree.range(start..=key(hi)))
            };
        for kv in groups {
            let (_, v) = kv?;
            let group: Vec<T> = codec::from_bincode_large(&v)
                .map_err(|e| ProjectionError::Store(format!("a view does not decode: {e}")))?;
            let items: Box<dyn Iterator<Item = T>> = if page.newest_first {
                Box::new(group.into_iter().rev())
            } else {
                Box::new(group.into_iter())
            };
            for item in items {
                let id = id_of(&item);
                if (page.newest_first && id > hi) || (!page.newest_first && id < lo) {
                    continue;
                }
                if id < lo || id > hi {
                    return Ok(out.done(false));
                }
                if let Some(row) = accept(item)? {
                    if out.push(id, row).is_err() {
                        return Ok(out.done(true));
                    }
                }
            }
        }
        Ok(out.done(false))
    }

    /// The next `seq` the projector will apply (everything below it is in the views),
    /// and the engine clock of the last applied event.
    pub fn checkpoint(&self) -> Result<(u64, u64), ProjectionError> {
        #[derive(serde::Deserialize)]
        struct Checkpoint {
            next_seq: u64,
            clock_ms: u64,
            _last_command_offset: Option<u64>,
        }
        let cp: Checkpoint = self.get(keys::CHECKPOINT)?.unwrap_or(Checkpoint {
            next_seq: 1,
            clock_ms: 0,
            _last_command_offset: None,
        });
        Ok((cp.next_seq, cp.clock_ms))
    }

    pub fn assets(&self) -> Result<Vec<AssetView>, ProjectionError> {
        self.scan(vec![keys::ASSET])
    }

    pub fn asset(&self, code: &AssetCode) -> Result<Option<AssetView>, ProjectionError> {
        self.get(&Key::new(keys::ASSET).name(code).build())
    }

    pub fn markets(&self) -> Result<Vec<MarketView>, ProjectionError> {
        self.scan(vec![keys::MARKET])
    }

    pub fn market(&self, symbol: &Symbol) -> Result<Option<MarketView>, ProjectionError> {
        self.get(&Key::new(keys::MARKET).name(symbol).build())
    }

    pub fn wallets(&self, account: AccountId) -> Result<Vec<WalletView>, ProjectionError> {
        let prefix = Key::new(keys::WALLET).u64(account.0).build();
        self.tree
            .scan_prefix(&prefix)
            .map(|kv| {
                let (k, v) = kv?;
                let code = std::str::from_utf8(&k[9..])
                    .unwrap_or("")
                    .trim_end_matches('\0');
                let asset = code
                    .parse()
                    .map_err(|e| ProjectionError::Store(format!("wallet key: {e:?}")))?;
                let row: WalletRow = codec::from_bincode_large(&v)
                    .map_err(|e| ProjectionError::Store(format!("a view does not decode: {e}")))?;
                Ok(WalletView {
                    account,
                    asset,
                    available: row.available,
                    held: row.held,
                })
            })
            .collect()
    }

    /// The value of `amount` of `asset` in `quote` at the last trade price of a market
    /// between them (either way round), rounded down to 18 places; `None` when no
    /// such market has traded.
    pub fn value_in(
        &self,
        asset: &AssetCode,
        amount: Dec,
        quote: &AssetCode,
        markets: &[MarketView],
    ) -> Option<Dec> {
        if asset == quote {
            return Some(amount);
        }
        for m in markets {
            let Some(last) = m.last_price else { continue };
            if m.spec.base == *asset && m.spec.quote == *quote {
                return amount.0.checked_mul(last.0).map(Dec);
            }
            if m.spec.base == *quote && m.spec.quote == *asset && !last.0.is_zero() {
                return amount.0.checked_div(last.0).map(|v| {
                    Dec(v.round_dp_with_strategy(18, rust_decimal::RoundingStrategy::ToZero))
                });
            }
        }
        None
    }

    pub fn ledger(
        &self,
        account: AccountId,
        filter: &EntryFilter,
        page: &Page,
    ) -> Result<Rows<LedgerEntry>, ProjectionError> {
        let prefix = Key::new(keys::ENTRY).u64(account.0).build();
        self.page_groups(
            prefix,
            page,
            |e: &LedgerEntry| e.seq,
            |e| {
                Ok(Some(e).filter(|e| {
                    filter.asset.is_none_or(|a| a == e.asset)
                        && filter.kind.is_none_or(|k| k == e.kind)
                        && in_time(e.time_ms, filter.from_ms, filter.to_ms)
                }))
            },
        )
    }

    pub fn equity_history(
        &self,
        account: AccountId,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Vec<EquityPoint>, ProjectionError> {
        let page = Page {
            newest_first: false,
            first: PAGE_ROWS_MAX,
            from_id: from_ms,
            to_id: to_ms,
            cursor: None,
        };
        let rows = self.page(Key::new(keys::EQUITY).u64(account.0).build(), &page, |t| {
            self.get(&Key::new(keys::EQUITY).u64(account.0).u64(t).build())
        })?;
        Ok(rows.rows.into_iter().map(|(_, p)| p).collect())
    }

    /// The close of the last 1-hour candle at or before `time_ms` of `market`.
    pub fn close_at(&self, market: &Symbol, time_ms: u64) -> Result<Option<Dec>, ProjectionError> {
        let hour = Interval::H1.key();
        let start = Key::new(keys::CANDLE).name(market).u8(hour).build();
        let end = Key::new(keys::CANDLE)
            .name(market)
            .u8(hour)
            .u64(time_ms)
            .build();
        match self.tree.range(start..=end).next_back() {
            Some(kv) => {
                let (_, v) = kv?;
                let c: Candle = codec::from_bincode_large(&v)
                    .map_err(|e| ProjectionError::Store(e.to_string()))?;
                Ok(Some(c.close))
            }
            None => Ok(None),
        }
    }

    pub fn order(&self, id: OrderId) -> Result<Option<OrderView>, ProjectionError> {
        self.get(&Key::new(keys::ORDER).u64(id.0).build())
    }

    pub fn orders(
        &self,
        account: AccountId,
        filter: &OrderFilter,
        page: &Page,
    ) -> Result<Rows<OrderView>, ProjectionError> {
        let keep = |o: &OrderView| {
            filter.market.is_none_or(|m| m == o.market)
                && filter.side.is_none_or(|s| s == o.side)
                && (filter.statuses.is_empty() || filter.statuses.contains(&o.status))
                && in_time(o.created_ms, filter.from_ms, filter.to_ms)
        };
        if filter.open_only {
            // one row holds the account's open ids: page through it in memory
            let open: std::collections::BTreeSet<u64> = self
                .get(&Key::new(keys::OPEN_ORDER).u64(account.0).build())?
                .unwrap_or_default();
            let mut out = Collect::new(page);
            let Some((lo, hi)) = bounds(page) else {
                return Ok(out.done(false));
            };
            let ids: Box<dyn Iterator<Item = &u64>> = if page.newest_first {
                Box::new(open.range(lo..=hi).rev())
            } else {
                Box::new(open.range(lo..=hi))
            };
            for id in ids {
                if let Some(o) = self.order(OrderId(*id))?.filter(keep) {
                    if out.push(*id, o).is_err() {
                        return Ok(out.done(true));
                    }
                }
            }
            return Ok(out.done(false));
        }
        let prefix = Key::new(keys::ACCOUNT_ORDER).u64(account.0).build();
        self.page_groups(
            prefix,
            page,
            |id: &u64| *id,
            |id| Ok(self.order(OrderId(id))?.filter(keep)),
        )
    }

    /// The account's orders changed at or after `from_seq`, by the seq of their last
    /// change: the open ones that changed, and those that ended since (at most
    /// `max`; `None` when there are more).
    pub fn orders_changed_since(
        &self,
        account: AccountId,
        from_seq: u64,
        max: usize,
    ) -> Result<Option<Vec<OrderView>>, ProjectionError> {
        let open: std::collections::BTreeSet<u64> = self
            .get(&Key::new(keys::OPEN_ORDER).u64(account.0).build())?
            .unwrap_or_default();
        let mut ids: Vec<u64> = open.into_iter().collect();
        let from = Key::new(keys::CLOSED).u64(account.0).u64(from_seq).build();
        let end = Key::new(keys::CLOSED).u64(account.0).u64(u64::MAX).build();
        // Every order ended since `from_seq` changed since then: more than `max` of
        // them is too many, without reading further.
        for (closed, kv) in self.tree.range(from..=end).enumerate() {
            if closed == max {
                return Ok(None);
            }
            let (k, _) = kv?;
            let id = k[k.len() - 8..].try_into().map(u64::from_be_bytes);
            ids.push(id.map_err(|_| ProjectionError::Store("a closed-order key is short".into()))?);
        }
        let mut out = Vec::new();
        for id in ids {
            if let Some(o) = self
                .order(OrderId(id))?
                .filter(|o| o.updated_seq >= from_seq)
            {
                out.push(o);
            }
        }
        if out.len() > max {
            return Ok(None);
        }
        out.sort_by_key(|o| (o.updated_seq, o.order));
        Ok(Some(out))
    }

    /// A trade by id (from its market's tape).
    pub fn trade(&self, id: TradeId) -> Result<Option<TradeView>, ProjectionError> {
        for m in self.markets()? {
            let prefix = Key::new(keys::MARKET_TRADE).name(&m.spec.symbol).build();
            let key = [prefix.as_slice(), &id.0.to_be_bytes()].concat();
            if let Some(kv) = self.tree.range(prefix.clone()..=key).next_back() {
                let (_, v) = kv?;
                let group: Vec<TradeView> = codec::from_bincode_large(&v)
                    .map_err(|e| ProjectionError::Store(format!("a view does not decode: {e}")))?;
                if let Some(t) = group.into_iter().find(|t| t.trade == id) {
                    return Ok(Some(t));
                }
            }
        }
        Ok(None)
    }

    fn trades_under(
        &self,
        prefix: Vec<u8>,
        filter: &TradeFilter,
        page: &Page,
    ) -> Result<Rows<TradeView>, ProjectionError> {
        self.page_groups(
            prefix,
            page,
            |t: &TradeView| t.trade.0,
            |t| {
                Ok(Some(t).filter(|t| {
                    filter.market.is_none_or(|m| m == t.market)
                        && in_time(t.time_ms, filter.from_ms, filter.to_ms)
                }))
            },
        )
    }

    pub fn account_trades(
        &self,
        account: AccountId,
        filter: &TradeFilter,
        page: &Page,
    ) -> Result<Rows<TradeView>, ProjectionError> {
        self.trades_under(
            Key::new(keys::ACCOUNT_TRADE).u64(account.0).build(),
            filter,
            page,
        )
    }

    pub fn market_trades(
        &self,
        market: &Symbol,
        filter: &TradeFilter,
        page: &Page,
    ) -> Result<Rows<TradeView>, ProjectionError> {
        self.trades_under(
            Key::new(keys::MARKET_TRADE).name(market).build(),
            filter,
            page,
        )
    }

    /// Candles of `interval` starting in
    /// `[from_ms, to_ms]`, oldest first, at most `limit`.
    pub fn candles(
        &self,
        market: &Symbol,
        interval: Interval,
        from_ms: u64,
        to_ms: u64,
        limit: usize,
    ) -> Result<Vec<Candle>, ProjectionError> {
        let page = Page {
            newest_first: false,
            first: limit,
            from_id: from_ms,
            to_id: to_ms,
            cursor: None,
        };
        let prefix = Key::new(keys::CANDLE)
            .name(market)
            .u8(interval.key())
            .build();
        let rows = self.page(prefix, &page, |start| {
            self.get(
                &Key::new(keys::CANDLE)
                    .name(market)
                    .u8(interval.key())
                    .u64(start)
                    .build(),
            )
        })?;
        Ok(rows.rows.into_iter().map(|(_, c)| c).collect())
    }

    /// The rolling 24 hours before the projector's clock, from 1-minute candles.
    pub fn ticker(&self, market: &Symbol) -> Result<Option<Ticker>, ProjectionError> {
        let Some(m) = self.market(market)? else {
            return Ok(None);
        };
        let (_, now_ms) = self.checkpoint()?;
        let from_ms = now_ms.saturating_sub(86_400_000 - 60_000);
        let from_ms = from_ms - from_ms % 60_000;
        let candles = self.candles(market, Interval::M1, from_ms, now_ms, 1_440)?;
        let depth = self.depth(market, 1)?;
        let mut t = Ticker {
            market: *market,
            last: m.last_price,
            open: candles.first().map(|c| c.open),
            high: None,
            low: None,
            volume: Dec::default(),
            quote_volume: Dec::default(),
            trades: 0,
            best_bid: depth.bids.first().map(|l| l.0),
            best_ask: depth.asks.first().map(|l| l.0),
        };
        let mut volume = Decimal::ZERO;
        let mut quote_volume = Decimal::ZERO;
        for c in &candles {
            t.high = Some(t.high.map_or(c.high, |h| h.max(c.high)));
            t.low = Some(t.low.map_or(c.low, |l| l.min(c.low)));
            volume += c.volume.0;
            quote_volume += c.quote_volume.0;
            t.trades += c.trades;
        }
        t.volume = Dec(volume);
        t.quote_volume = Dec(quote_volume);
        Ok(Some(t))
    }

    /// The best `levels` price levels of each side.
    pub fn depth(&self, market: &Symbol, levels: usize) -> Result<Depth, ProjectionError> {
        let mut depth: Depth = if levels <= crate::projector::DEPTH_TOP_LEVELS {
            self.get(&Key::new(keys::DEPTH_TOP).name(market).build())?
                .unwrap_or_default()
        } else {
            let stored: Option<(Symbol, Depth)> =
                self.get(&Key::new(keys::DEPTH).name(market).build())?;
            stored.map(|(_, d)| d).unwrap_or_default()
        };
        depth.bids.truncate(levels);
        depth.asks.truncate(levels);
        Ok(depth)
    }

    pub fn sliced(&self, parent: OrderId) -> Result<Option<SlicedReport>, ProjectionError> {
        self.get(&Key::new(keys::SLICED).u64(parent.0).build())
    }

    pub fn bracket(&self, entry: OrderId) -> Result<Option<BracketReport>, ProjectionError> {
        self.get(&Key::new(keys::BRACKET).u64(entry.0).build())
    }

    pub fn api_key(&self, key: ApiKeyId) -> Result<Option<ApiKeyView>, ProjectionError> {
        self.get(&Key::new(keys::API_KEY).u64(key.0).build())
    }

    /// Whether the engine requires credentials on every command.
    pub fn credentials_required(&self) -> Result<bool, ProjectionError> {
        Ok(self
            .get::<bool>(keys::CREDENTIALS_REQUIRED)?
            .unwrap_or(false))
    }

    pub fn api_keys(&self) -> Result<Vec<ApiKeyView>, ProjectionError> {
        self.scan(vec![keys::API_KEY])
    }

    pub fn withdrawal(&self, id: WithdrawalId) -> Result<Option<WithdrawalView>, ProjectionError> {
        self.get(&Key::new(keys::WITHDRAWAL).u64(id.0).build())
    }

    /// Withdrawals by id, paged, keeping those of `account` (all when none) in one
    /// of `statuses` (any when empty). A filter that matches few rows reads many.
    pub fn withdrawals(
        &self,
        account: Option<AccountId>,
        statuses: &[WithdrawalStatus],
        page: &Page,
    ) -> Result<Rows<WithdrawalView>, ProjectionError> {
        self.page(vec![keys::WITHDRAWAL], page, |id| {
            Ok(self.withdrawal(WithdrawalId(id))?.filter(|w| {
                account.is_none_or(|a| w.account == a)
                    && (statuses.is_empty() || statuses.contains(&w.status))
            }))
        })
    }

    /// The engine's last checkpoint, once one has been written.
    pub fn engine_checkpoint(&self) -> Result<Option<EngineCheckpointView>, ProjectionError> {
        self.get(keys::ENGINE_CHECKPOINT)
    }

    /// Every account an operator has set restrictions on (lifted ones included).
    pub fn restricted_accounts(&self) -> Result<Vec<RestrictionsView>, ProjectionError> {
        self.scan(vec![keys::RESTRICTIONS])
    }

    /// Every stored key and value, in key order (to compare two sets of views).
    pub fn dump(&self) -> Result<Vec<KeyValue>, ProjectionError> {
        self.tree
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                Ok((k.to_vec(), v.to_vec()))
            })
            .collect()
    }

    /// The engine's answer to the command at `command_offset` on the commands log.
    /// The answers to the items of the batch at `command_offset`, in item order.
    pub fn item_outcomes(
        &self,
        command_offset: u64,
    ) -> Result<Vec<CommandResult>, ProjectionError> {
        let prefix = Key::new(keys::ITEM_OUTCOME).u64(command_offset).build();
        self.tree
            .scan_prefix(&prefix)
            .map(|kv| {
                let (_, v) = kv?;
                codec::from_bincode_large(&v)
                    .map_err(|e| ProjectionError::Store(format!("a view does not decode: {e}")))
            })
            .collect()
    }

    pub fn outcome_at(&self, command_offset: u64) -> Result<Option<OutcomeView>, ProjectionError> {
        let key = Key::new(keys::OUTCOME).u64(command_offset).build();
        let Some(kv) = self.tree.range(vec![keys::OUTCOME]..=key).next_back() else {
            return Ok(None);
        };
        let (_, v) = kv?;
        let group: Vec<OutcomeView> = codec::from_bincode_large(&v)
            .map_err(|e| ProjectionError::Store(format!("a view does not decode: {e}")))?;
        Ok(group
            .binary_search_by_key(&command_offset, |o| o.command_offset)
            .ok()
            .map(|i| group[i]))
    }
}
