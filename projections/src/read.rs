//! Reading the views: what the gateway serves. Every list is a range of ids (or
//! `seq`s) read in either direction from a cursor, filtered, and cut to a page.
//! This file holds the read handle and the paging every view shares; each view's
//! own queries are in its file under `projector/`, beside the code that folds and
//! flushes it.

use serde::de::DeserializeOwned;
use tape_schemas::*;

use crate::keys;
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
pub(crate) struct Collect<T> {
    rows: Vec<(u64, T)>,
    first: usize,
}

impl<T> Collect<T> {
    pub(crate) fn new(page: &Page) -> Collect<T> {
        Collect {
            rows: Vec::new(),
            first: page.first.min(PAGE_ROWS_MAX),
        }
    }

    /// Adds a row; `Err` when the page is already full (so more rows exist).
    pub(crate) fn push(&mut self, id: u64, row: T) -> Result<(), ()> {
        if self.rows.len() == self.first {
            return Err(());
        }
        self.rows.push((id, row));
        Ok(())
    }

    pub(crate) fn done(self, has_more: bool) -> Rows<T> {
        Rows {
            rows: self.rows,
            has_more,
        }
    }
}

/// The id range a page covers after its cursor, or `None` when it is empty.
pub(crate) fn bounds(page: &Page) -> Option<(u64, u64)> {
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

pub(crate) fn in_time(t: u64, from_ms: Option<u64>, to_ms: Option<u64>) -> bool {
    from_ms.is_none_or(|f| t >= f) && to_ms.is_none_or(|e| t <= e)
}

/// One stored key and its value.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// A read handle on the views; cheap to clone, safe to share.
#[derive(Clone)]
pub struct Views {
    pub(crate) tree: sled::Tree,
}

impl Views {
    pub fn new(tree: sled::Tree) -> Views {
        Views { tree }
    }

    pub(crate) fn get<T: DeserializeOwned>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>, ProjectionError> {
        match self.tree.get(key)? {
            Some(v) => Ok(Some(codec::from_bincode_large(&v).map_err(|e| {
                ProjectionError::Store(format!("a view does not decode: {e}"))
            })?)),
            None => Ok(None),
        }
    }

    pub(crate) fn scan<T: DeserializeOwned>(
        &self,
        prefix: Vec<u8>,
    ) -> Result<Vec<T>, ProjectionError> {
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
    pub(crate) fn page<T>(
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
    pub(crate) fn page_groups<T: DeserializeOwned, R>(
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
        let cp: crate::projector::Checkpoint = self.get(keys::CHECKPOINT)?.unwrap_or_default();
        Ok((cp.next_seq, cp.clock_ms))
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
}
