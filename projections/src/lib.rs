//! Tape's read side: the projector folds the events log into views kept in sled
//! (wallets, ledger entries, equity history, orders, trades, candles, tickers, depth,
//! sliced and bracket reports, API keys, command outcomes), each change written in
//! the same atomic batch as the checkpoint (the next `seq`). Deleting the directory
//! rebuilds everything from the log. Nothing here decides anything: views only
//! restate what the engine's events say.

// No function over 70 lines (clippy.toml): split along the seams, or allow it with
// the reason beside it. `.ci/run` denies warnings, so this is a gate.
#![warn(clippy::too_many_lines)]

pub mod feeds;
pub mod keys;
pub mod margin;
mod projector;
mod read;
pub mod views;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use projector::{Changes, Projector, DEPTH_TOP_LEVELS};
pub use read::{EntryFilter, OrderFilter, Page, Rows, TradeFilter, Views, PAGE_ROWS_MAX};
use tape_log::{Log, LogReader};
use tokio::sync::{broadcast, watch};
pub use views::*;

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("read-model store: {0}")]
    Store(String),
    #[error("event at seq {seq} does not decode: {what}")]
    Malformed { seq: u64, what: String },
    #[error("the events log skips from seq {expected} to {found}")]
    Gap { expected: u64, found: u64 },
    #[error("the events contradict the views: {0}")]
    Inconsistent(String),
    #[error("events log: {0}")]
    Log(#[from] tape_log::LogError),
}

impl From<sled::Error> for ProjectionError {
    fn from(e: sled::Error) -> Self {
        ProjectionError::Store(e.to_string())
    }
}

/// The read models' layout; bumped whenever a stored view changes shape (read
/// models of another layout are rebuilt from the log on open).
pub const VIEWS_FORMAT: u32 = 7;

/// Opens (or creates) the read models in `dir`: the projector that writes them and
/// a read handle on them.
pub fn open(dir: &Path) -> Result<(Projector, Views), ProjectionError> {
    // sled lets go of its file lock from a background thread after the last handle
    // drops, so a reopen right after a close (a restart) may find it still held for
    // a moment: wait for it, briefly, rather than fail.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let db = loop {
        match sled::Config::new().path(dir).open() {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => break other?,
        }
    };
    let tree = db.open_tree("views")?;
    if tree.get(keys::FORMAT)?.as_deref() != Some(&VIEWS_FORMAT.to_be_bytes()[..]) {
        if !tree.is_empty() {
            tracing::warn!(dir = %dir.display(), "the read models are of another layout: rebuilding them from the events log");
            tree.clear()?;
        }
        tree.insert(keys::FORMAT, &VIEWS_FORMAT.to_be_bytes())?;
    }
    Ok((Projector::open(tree.clone())?, Views::new(tree)))
}

/// Where the projector is: what the gateway waits on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub next_seq: u64,
    /// The events-log offset after the last record read (copies a deposed engine
    /// left make it run ahead of `next_seq - 1`).
    pub next_offset: u64,
    pub last_command_offset: Option<u64>,
    /// True once a read after the last applied event found nothing more.
    pub idle: bool,
}

/// How long the caught-up projector waits for new events before it looks again
/// (records wake it sooner; this only bounds a wait).
const IDLE_WAIT: Duration = Duration::from_secs(1);

/// Batches of at most this many events are applied on the projector's own task.
const INLINE_EVENTS_MAX: usize = 256;

/// Events read per batch.
pub const BATCH_EVENTS_MAX: usize = 32_768;

/// Follows the events log from the projector's checkpoint until `shutdown` turns
/// true, publishing each batch's changes and the progress.
pub async fn run<L: Log>(
    events: &L,
    projector: Projector,
    changes: broadcast::Sender<Arc<Changes>>,
    progress: watch::Sender<Progress>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ProjectionError> {
    // Log offsets start at 0, `seq` at 1 (copies a deposed engine left only push
    // events later).
    let next_seq = projector.next_seq();
    let mut reader = events.reader(next_seq - 1).await?;
    let mut projector = Some(Box::new(projector));
    progress.send_replace(Progress {
        next_seq,
        next_offset: next_seq - 1,
        last_command_offset: None,
        idle: false,
    });
    // On a multi-threaded runtime the store's writes go to a blocking thread;
    // elsewhere (a single-threaded runtime, the simulation) they run inline.
    let threaded = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    let settle = reader.settle();
    loop {
        // What is there now, then (once caught up, and said so) a wait woken by the
        // next durable records, not by a timer.
        let mut batch = reader.next_batch(BATCH_EVENTS_MAX, settle).await?;
        if batch.is_empty() {
            progress.send_if_modified(|p| !std::mem::replace(&mut p.idle, true));
            batch = tokio::select! {
                // In order, so a run is the same every time (the simulation).
                biased;
                b = reader.next_batch(BATCH_EVENTS_MAX, IDLE_WAIT) => b?,
                _ = shutdown.changed() => return Ok(()),
            };
        }
        if *shutdown.borrow() {
            return Ok(());
        }
        if batch.is_empty() {
            continue;
        }
        let next_offset = batch.last().map_or(0, |r| r.offset + 1);
        let mut p = projector
            .take()
            .expect("the projector is back after each batch");
        // A small batch (an order's events at low load) is applied here: the hop
        // to a blocking thread and back would cost more than the work.
        let (p, applied) = if threaded && batch.len() > INLINE_EVENTS_MAX {
            tokio::task::spawn_blocking(move || {
                let applied = p.apply_records(batch.iter().map(|r| r.bytes.as_slice()));
                (p, applied)
            })
            .await
            .map_err(|e| ProjectionError::Store(format!("projector task failed: {e}")))?
        } else {
            let applied = p.apply_records(batch.iter().map(|r| r.bytes.as_slice()));
            (p, applied)
        };
        projector = Some(p);
        let applied = applied?;
        progress.send_replace(Progress {
            next_seq: applied.next_seq,
            next_offset,
            last_command_offset: applied.last_command_offset,
            idle: false,
        });
        let _ = changes.send(Arc::new(applied));
    }
}
