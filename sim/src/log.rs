//! The logs under simulation. One type, `SimLog`, stands for either kind:
//!
//! * `Broker`: an in-memory model of a Kafka partition with `acks=all`. What it
//!   acknowledged is kept; an append may fail before anything is stored, store a
//!   prefix and lose the acknowledgement, or store everything and lose it (the
//!   producer's retry then duplicates the records); the broker may be unavailable
//!   for a while; reads come in short batches (a slow consumer).
//! * `Disk`: the real embedded `FileLog` in a temporary directory. A power loss
//!   writes the appends in flight at that moment, cuts the bytes at a random point
//!   after the last acknowledged record (an fsync that never happened: a torn, partial
//!   write) and scribbles garbage after the cut; then the log is opened again and must
//!   recover.
//!
//! Every operation first yields to the simulator for a few steps (a delay the seed
//! chooses), so each one is a point where an actor can be crashed. Nothing here
//! reads a clock or spawns anything: each disk operation is finished in place.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tape_log::file::FileReader;
use tape_log::{FileLog, FileLogOptions, LogError, Record, Result};

/// The fault rates of one run, chosen from its seed.
#[derive(Clone, Debug)]
pub struct Rates {
    /// Most steps an operation is held back.
    pub delay_max: u32,
    /// An append fails before the broker stores anything.
    pub append_fails: f64,
    /// An append stores a prefix of its records, then fails.
    pub append_partial: f64,
    /// An append stores everything but its acknowledgement is lost.
    pub ack_lost: f64,
    /// A read returns fewer records than are there.
    pub short_read: f64,
}

impl Rates {
    pub fn draw(rng: &mut ChaCha8Rng) -> Rates {
        Rates {
            delay_max: rng.random_range(0..6),
            append_fails: rng.random_range(0.0..0.05),
            append_partial: rng.random_range(0.0..0.03),
            ack_lost: rng.random_range(0.0..0.05),
            short_read: rng.random_range(0.0..0.8),
        }
    }
}

/// What every log of one run shares: the random source for faults, and the state
/// of the world (is the broker up, are faults still being injected).
pub struct Faults {
    rng: ChaCha8Rng,
    rates: Rates,
    /// Faults are injected until this is set; from then on every operation
    /// succeeds after one step (the run must then converge).
    pub quiet: bool,
    /// The broker refuses every request while this is above zero (counts down each
    /// simulator step).
    pub broker_down_for: u32,
}

pub type Shared = Arc<Mutex<Faults>>;

pub fn faults(seed: u64, rates: Rates) -> Shared {
    Arc::new(Mutex::new(Faults {
        rng: ChaCha8Rng::seed_from_u64(seed),
        rates,
        quiet: false,
        broker_down_for: 0,
    }))
}

impl Faults {
    fn chance(&mut self, p: f64) -> bool {
        !self.quiet && p > 0.0 && self.rng.random_bool(p.min(1.0))
    }

    fn delay(&mut self) -> u32 {
        if self.quiet {
            1
        } else {
            1 + self.rng.random_range(0..=self.rates.delay_max)
        }
    }

    fn broker_down(&self) -> bool {
        !self.quiet && self.broker_down_for > 0
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.rng.random_range(0..n.max(1))
    }
}

/// Yields to the simulator `n` times.
pub(crate) struct Pause(pub(crate) u32);

impl Future for Pause {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 == 0 {
            return Poll::Ready(());
        }
        self.0 -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

fn unavailable() -> LogError {
    LogError::Kafka("broker unavailable (simulated)".into())
}

fn ack_lost() -> LogError {
    LogError::Kafka("timed out waiting for the acknowledgement (simulated)".into())
}

/// Runs a disk operation to its end in place. The file log answers from its own
/// writer thread; waiting for it here keeps the simulation's order fixed.
fn finish<T>(f: impl Future<Output = T>) -> T {
    futures::executor::block_on(f)
}

enum Backend {
    Broker(Vec<Vec<u8>>),
    Disk {
        dir: PathBuf,
        log: Option<FileLog>,
        /// Bumped at each reopen: readers of the old log start again.
        generation: u64,
    },
}

struct Inner {
    faults: Shared,
    backend: Mutex<Backend>,
    /// Appends held back in their delay, by id: what a power loss finds in flight.
    inflight: Mutex<Vec<(u64, Vec<Vec<u8>>)>>,
    next_inflight: Mutex<u64>,
}

#[derive(Clone)]
pub struct SimLog {
    inner: Arc<Inner>,
}

/// Small segments, so the simulation crosses segment boundaries often.
fn disk_options() -> FileLogOptions {
    FileLogOptions {
        segment_bytes_max: 64 << 10,
        ..FileLogOptions::default()
    }
}

/// Forgets an in-flight append when its future ends or is dropped (a crash).
struct InflightGuard<'a> {
    log: &'a SimLog,
    id: u64,
}

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        self.log
            .inner
            .inflight
            .lock()
            .expect("inflight lock")
            .retain(|(id, _)| *id != self.id);
    }
}

impl SimLog {
    pub fn broker(faults: Shared) -> SimLog {
        SimLog::with(faults, Backend::Broker(Vec::new()))
    }

    pub fn disk(faults: Shared, dir: &Path) -> Result<SimLog> {
        let (log, _) = FileLog::open(dir, disk_options())?;
        Ok(SimLog::with(
            faults,
            Backend::Disk {
                dir: dir.to_path_buf(),
                log: Some(log),
                generation: 0,
            },
        ))
    }

    fn with(faults: Shared, backend: Backend) -> SimLog {
        SimLog {
            inner: Arc::new(Inner {
                faults,
                backend: Mutex::new(backend),
                inflight: Mutex::new(Vec::new()),
                next_inflight: Mutex::new(0),
            }),
        }
    }

    fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.inner.faults.lock().expect("faults lock")
    }

    fn backend(&self) -> std::sync::MutexGuard<'_, Backend> {
        self.inner.backend.lock().expect("backend lock")
    }

    async fn pause(&self) {
        let n = self.faults().delay();
        Pause(n).await
    }

    /// Records on the log now (no fault, no delay: for the simulator's own checks).
    pub fn records_now(&self) -> usize {
        match &*self.backend() {
            Backend::Broker(v) => v.len(),
            Backend::Disk { log, .. } => log
                .as_ref()
                .map_or(0, |l| finish(l.end_offset()).unwrap_or(0) as usize),
        }
    }

    /// The broker refuses everything for the next `steps` steps.
    pub fn set_broker_down(&self, steps: u32) {
        self.faults().broker_down_for = steps;
    }

    /// True while the broker refuses every request (a control-log append fails).
    pub fn broker_is_down(&self) -> bool {
        self.faults().broker_down()
    }

    /// No more faults, for every log of the run.
    pub fn set_quiet(&self) {
        self.faults().quiet = true;
    }

    /// One simulator step has passed.
    pub fn tick(&self) {
        let mut f = self.faults();
        f.broker_down_for = f.broker_down_for.saturating_sub(1);
    }

    /// Every record, in offset order (for the checks after a run).
    pub fn records(&self) -> Result<Vec<Vec<u8>>> {
        match &*self.backend() {
            Backend::Broker(v) => Ok(v.clone()),
            Backend::Disk { log, .. } => {
                let log = log.as_ref().ok_or(LogError::Closed)?;
                let end = finish(log.end_offset())?;
                let mut reader = finish(log.reader(0))?;
                let mut out = Vec::with_capacity(end as usize);
                while (out.len() as u64) < end {
                    let batch = finish(reader.next_batch(1 << 16, Duration::ZERO))?;
                    if batch.is_empty() {
                        return Err(LogError::OffsetOutOfRange(out.len() as u64));
                    }
                    out.extend(batch.into_iter().map(|r| r.bytes));
                }
                Ok(out)
            }
        }
    }

    /// A second writer must be kept out: true when opening the log's directory for
    /// writing is refused as locked (always true for the broker, which has no lock).
    pub fn refuses_second_writer(&self) -> bool {
        match &*self.backend() {
            Backend::Broker(_) => true,
            Backend::Disk { dir, .. } => matches!(
                FileLog::open(dir, disk_options()),
                Err(LogError::Locked { .. })
            ),
        }
    }

    /// A power loss: the appends in flight reach the disk in part, the rest of them
    /// never does, and the log is opened again. Returns the bytes the reopened log
    /// cut off as a torn tail (0 for the broker, whose acknowledged records survive).
    pub fn power_loss(&self) -> Result<u64> {
        let inflight: Vec<Vec<Vec<u8>>> =
            std::mem::take(&mut *self.inner.inflight.lock().expect("inflight lock"))
                .into_iter()
                .map(|(_, r)| r)
                .collect();
        let mut backend = self.backend();
        let Backend::Disk {
            dir,
            log,
            generation,
        } = &mut *backend
        else {
            return Ok(0);
        };
        let writer = log.take().ok_or(LogError::Closed)?;
        let before = last_segment(dir)?;
        // What the writer thread may have written of them before the power went.
        for records in inflight {
            let _ = finish(writer.append(records));
        }
        writer.close();
        drop(writer);
        let after = last_segment(dir)?;
        let mut faults = self.faults();
        if let Some((path, len)) = after {
            // The cut falls after every acknowledged byte: inside what this last
            // segment got since the previous acknowledgement, or anywhere in a
            // segment started since (the writer fsyncs a segment before the next).
            let floor = match before {
                Some((p, l)) if p == path => l,
                _ => 0,
            };
            let cut = floor + faults.below((len - floor + 1) as usize) as u64;
            let garbage = faults.below(64);
            let mut junk = vec![0u8; garbage];
            faults.rng.fill_bytes(&mut junk);
            let io = |e: std::io::Error| LogError::Io {
                path: path.display().to_string(),
                source: e,
            };
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(io)?;
            f.set_len(cut).map_err(io)?;
            use std::os::unix::fs::FileExt;
            f.write_all_at(&junk, cut).map_err(io)?;
        }
        // The durable mark is written but never fsynced: it may be stale or torn.
        match faults.below(4) {
            0 => {
                let _ = std::fs::write(dir.join("DURABLE"), [0xA5; 5]);
            }
            1 => {
                let _ = std::fs::remove_file(dir.join("DURABLE"));
            }
            _ => {}
        }
        drop(faults);
        let (reopened, report) = FileLog::open(&*dir, disk_options())?;
        *log = Some(reopened);
        *generation += 1;
        Ok(report.truncated_bytes)
    }
}

/// The newest segment file and its length.
fn last_segment(dir: &Path) -> Result<Option<(PathBuf, u64)>> {
    let io = |e: std::io::Error| LogError::Io {
        path: dir.display().to_string(),
        source: e,
    };
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segments.sort();
    match segments.pop() {
        None => Ok(None),
        Some(p) => {
            let len = std::fs::metadata(&p).map_err(io)?.len();
            Ok(Some((p, len)))
        }
    }
}

impl tape_log::Log for SimLog {
    type Reader = SimReader;

    async fn append(&self, records: Vec<Vec<u8>>) -> Result<Vec<u64>> {
        let id = {
            let mut next = self.inner.next_inflight.lock().expect("inflight lock");
            *next += 1;
            *next
        };
        self.inner
            .inflight
            .lock()
            .expect("inflight lock")
            .push((id, records.clone()));
        let _guard = InflightGuard { log: self, id };
        self.pause().await;
        let (fails, partial, lost, down) = {
            let mut f = self.faults();
            let r = f.rates.clone();
            (
                f.chance(r.append_fails),
                f.chance(r.append_partial),
                f.chance(r.ack_lost),
                f.broker_down(),
            )
        };
        let mut backend = self.backend();
        match &mut *backend {
            Backend::Broker(stored) => {
                if down || fails {
                    return Err(unavailable());
                }
                if partial && records.len() > 1 {
                    let keep = 1 + self.faults().below(records.len() - 1);
                    stored.extend(records.into_iter().take(keep));
                    return Err(ack_lost());
                }
                let first = stored.len() as u64;
                let n = records.len() as u64;
                stored.extend(records);
                if lost {
                    return Err(ack_lost());
                }
                Ok((first..first + n).collect())
            }
            Backend::Disk { log, .. } => {
                let log = log.as_ref().ok_or(LogError::Closed)?;
                finish(log.append(records))
            }
        }
    }

    async fn end_offset(&self) -> Result<u64> {
        self.pause().await;
        if self.faults().broker_down() {
            return Err(unavailable());
        }
        match &*self.backend() {
            Backend::Broker(stored) => Ok(stored.len() as u64),
            Backend::Disk { log, .. } => finish(log.as_ref().ok_or(LogError::Closed)?.end_offset()),
        }
    }

    async fn reader(&self, from: u64) -> Result<SimReader> {
        self.pause().await;
        if self.faults().broker_down() {
            return Err(unavailable());
        }
        Ok(SimReader {
            log: self.clone(),
            next: from,
            file: None,
        })
    }
}

pub struct SimReader {
    log: SimLog,
    next: u64,
    /// The file log's own reader, and the log generation it belongs to.
    file: Option<(u64, FileReader)>,
}

impl tape_log::LogReader for SimReader {
    async fn next_batch(&mut self, max: usize, _wait: Duration) -> Result<Vec<Record>> {
        self.log.pause().await;
        let (down, short) = {
            let mut f = self.log.faults();
            let p = f.rates.short_read;
            (f.broker_down(), f.chance(p))
        };
        if down {
            return Err(unavailable());
        }
        let end = match &*self.log.backend() {
            Backend::Broker(stored) => stored.len() as u64,
            Backend::Disk { log, .. } => {
                finish(log.as_ref().ok_or(LogError::Closed)?.end_offset())?
            }
        };
        if self.next >= end {
            // Nothing yet: a reader waits, then comes back empty.
            self.log.pause().await;
            return Ok(Vec::new());
        }
        let available = (end - self.next).min(max as u64) as usize;
        let take = if short {
            1 + self.log.faults().below(available)
        } else {
            available
        };
        let mut backend = self.log.backend();
        let out: Vec<Record> = match &mut *backend {
            Backend::Broker(stored) => (self.next..self.next + take as u64)
                .map(|offset| Record {
                    offset,
                    bytes: stored[offset as usize].clone(),
                })
                .collect(),
            Backend::Disk {
                log, generation, ..
            } => {
                let log = log.as_ref().ok_or(LogError::Closed)?;
                if self.file.as_ref().is_none_or(|(g, _)| g != generation) {
                    self.file = Some((*generation, finish(log.reader(self.next))?));
                }
                let (_, reader) = self.file.as_mut().expect("just set");
                finish(reader.next_batch(take, Duration::ZERO))?
            }
        };
        if let Some(last) = out.last() {
            self.next = last.offset + 1;
        }
        Ok(out)
    }
}
