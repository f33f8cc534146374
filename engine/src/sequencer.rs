//! The sequencer loop and its recovery.

use std::time::{Duration, Instant};

use tape_core::{Core, CoreConfig};
use tape_log::{Log, LogError, LogReader};
use tape_schemas::{codec, Event, EventEnvelope};
use tokio::sync::watch;

use crate::derive::{Applied, Applier, Deriver, Sealer};
use crate::snapshots::{Saved, SnapshotStore};
use crate::stats::EngineStats;

#[derive(Clone, Copy, Debug)]
pub struct EngineOptions {
    pub core: CoreConfig,
    /// Commands taken from the log per step.
    pub batch_max: usize,
    /// A `Checkpoint` event and a snapshot every this many commands.
    pub checkpoint_every: u64,
    /// How long a read waits for new commands before the loop checks for shutdown.
    pub poll: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            core: CoreConfig::default(),
            batch_max: 4_096,
            checkpoint_every: 1_000_000,
            poll: Duration::from_millis(20),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("snapshot store: {0}")]
    Snapshot(#[from] std::io::Error),
    #[error("snapshot does not restore: {0}")]
    Restore(#[from] tape_core::SnapshotError),
    #[error(transparent)]
    Broken(#[from] crate::derive::Broken),
    #[error("the events log ends at seq {events_last_seq} but the snapshot expects at least {snapshot_seq}: the events log lost data")]
    EventsBehindSnapshot {
        events_last_seq: u64,
        snapshot_seq: u64,
    },
    #[error("event seq {seq} on the log differs from the one the commands produce (log {found}, regenerated {expected}): the logs disagree; refusing to continue")]
    Diverged {
        seq: u64,
        expected: String,
        found: String,
    },
    #[error("event seq {seq} was written at offset {offset}, not {expected_offset}: another writer is appending to the events log")]
    AnotherWriter {
        seq: u64,
        offset: u64,
        expected_offset: u64,
    },
    #[error("the events log holds undecodable bytes at offset {offset}: {what}")]
    BadEvent { offset: u64, what: String },
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunSummary {
    pub commands_applied: u64,
    /// Regenerated events found already on the log (recovery).
    pub events_matched: u64,
    pub events_appended: u64,
    pub next_command: u64,
    pub next_seq: u64,
}

pub struct Engine<C: Log, E: Log> {
    commands: C,
    events: E,
    snapshots: SnapshotStore,
    options: EngineOptions,
    stats: std::sync::Arc<EngineStats>,
}

/// The `seq` of the event record at `offset`, read from its header.
fn seq_of(offset: u64, bytes: &[u8]) -> Result<u64, EngineError> {
    EventEnvelope::peek(bytes)
        .map(|(seq, _, _)| seq)
        .map_err(|e| EngineError::BadEvent {
            offset,
            what: e.to_string(),
        })
}

impl<C: Log, E: Log> Engine<C, E> {
    pub fn new(commands: C, events: E, snapshots: SnapshotStore, options: EngineOptions) -> Self {
        Engine {
            commands,
            events,
            snapshots,
            options,
            stats: Default::default(),
        }
    }

    /// What the engine has done, updated as it runs.
    pub fn stats(&self) -> std::sync::Arc<EngineStats> {
        self.stats.clone()
    }

    pub fn commands(&self) -> &C {
        &self.commands
    }

    pub fn events(&self) -> &E {
        &self.events
    }

    /// The events log's end offset and the highest `seq` on it (0 when empty).
    ///
    /// One writer appends in `seq` order, but an engine deposed while appending (a
    /// lost lease) may leave copies of earlier events after later ones, so the
    /// highest `seq` need not be the last record's. Copies only ever push events to
    /// later offsets, so every event from `from_seq - 1` on (the last one the
    /// snapshot counts, then what recovery re-derives) sits at or after offset
    /// `from_seq - 2`: the tail from there is read. (From `from_seq - 1`, copies
    /// after an events log that ends exactly at the snapshot would hide its last
    /// event, and the engine would refuse to start, taking the log for short.)
    async fn events_tail(&self, from_seq: u64) -> Result<(u64, u64), EngineError> {
        let end = self.events.end_offset().await?;
        if end == 0 {
            return Ok((0, 0));
        }
        let start = from_seq.saturating_sub(2).min(end - 1);
        let mut reader = self.events.reader(start).await?;
        let (mut next, mut last_seq) = (start, 0);
        let mut deadline = Instant::now() + Duration::from_secs(30);
        while next < end {
            let batch = reader
                .next_batch(10_000, Duration::from_millis(500))
                .await?;
            if batch.is_empty() && Instant::now() > deadline {
                return Err(EngineError::Log(LogError::OffsetOutOfRange(next)));
            }
            for r in batch.iter().filter(|r| r.offset < end) {
                last_seq = last_seq.max(seq_of(r.offset, &r.bytes)?);
                next = r.offset + 1;
                deadline = Instant::now() + Duration::from_secs(30);
            }
        }
        Ok((end, last_seq))
    }

    fn restore(&self) -> Result<Deriver, EngineError> {
        let every = self.options.checkpoint_every;
        Ok(match self.snapshots.latest()? {
            Some(saved) => Deriver::resume(
                Core::restore(&saved.core)?,
                saved.next_command,
                saved.next_seq,
                saved.last_hash,
                every,
            ),
            None => Deriver::new(self.options.core, every),
        })
    }

    /// Restores the latest snapshot and finds where the events log ends: what the
    /// run re-derives and compares before it appends.
    async fn recover(&self) -> Result<Recovered<E::Reader>, EngineError> {
        let Deriver {
            applier, sealer, ..
        } = self.restore()?;
        let (events_end, written) = self.events_tail(sealer.next_seq).await?;
        if written + 1 < sealer.next_seq {
            return Err(EngineError::EventsBehindSnapshot {
                events_last_seq: written,
                snapshot_seq: sealer.next_seq - 1,
            });
        }
        tracing::info!(
            next_command = applier.next_command,
            next_seq = sealer.next_seq,
            events_on_log = written,
            "engine starting: {} events to re-derive and compare",
            written + 1 - sealer.next_seq
        );
        let stored = if written >= sealer.next_seq {
            Some(self.events.reader(sealer.next_seq - 1).await?)
        } else {
            None
        };
        self.stats.applied(0, applier.next_command);
        self.stats.durable(written);
        self.stats.clock(
            applier.core.trusted_ms(),
            applier.core.credentials_required(),
        );
        Ok(Recovered {
            applier,
            sealer,
            stored,
            written,
            events_end,
        })
    }

    /// The applying stage: reads command batches, applies them and hands the events
    /// to the sealer, until `shutdown` or the writer stops. Returns how many commands
    /// it applied.
    async fn apply_commands(
        &self,
        applier: &mut Applier,
        sealing: &mut Sealing,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<u64, EngineError> {
        let mut commands = self.commands.reader(applier.next_command).await?;
        let mut applied_count = 0u64;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let records = tokio::select! {
                // In order, so a run is the same every time (the simulation).
                biased;
                b = commands.next_batch(self.options.batch_max, self.options.poll) => b?,
                // A dropped sender can never say "stop": take it as the signal
                // rather than spin on it.
                changed = shutdown.changed() => match changed {
                    Ok(()) => continue,
                    Err(_) => break,
                },
            };
            if records.is_empty() {
                continue;
            }
            let mut batch = Batch {
                events: Vec::with_capacity(records.len() * 4),
                applied: Vec::with_capacity(records.len()),
            };
            for record in &records {
                let applied = applier.apply(record.offset, &record.bytes, &mut batch.events)?;
                batch.applied.push(applied);
            }
            applied_count += records.len() as u64;
            self.stats
                .applied(records.len() as u64, applier.next_command);
            self.stats.clock(
                applier.core.trusted_ms(),
                applier.core.credentials_required(),
            );
            if !sealing.send(batch).await {
                break; // the writer stopped; its result says why
            }
        }
        Ok(applied_count)
    }

    /// Runs until `shutdown` turns true, then snapshots and returns.
    ///
    /// Three stages: this task reads commands and applies the core; a blocking
    /// thread seals the events (encoding and the hash chain); the writer compares
    /// what is already on the events log (recovery) and appends the rest, keeping a
    /// snapshot only once its events are durable.
    pub async fn run(&self, shutdown: watch::Receiver<bool>) -> Result<RunSummary, EngineError> {
        let Recovered {
            mut applier,
            sealer,
            stored,
            written,
            events_end,
        } = self.recover().await?;
        let last_snapshot_at = applier.next_command;
        let (to_writer, writer_rx) = tokio::sync::mpsc::channel::<Step>(4);
        let mut sealing = if on_threads() {
            let (to_sealer, sealer_rx) = std::sync::mpsc::sync_channel::<Batch>(4);
            let handle =
                tokio::task::spawn_blocking(move || seal_batches(sealer, sealer_rx, to_writer));
            Sealing::Thread { to_sealer, handle }
        } else {
            Sealing::Inline { sealer, to_writer }
        };
        let writing = write_steps(
            &self.events,
            &self.snapshots,
            &self.stats,
            writer_rx,
            stored,
            written,
            events_end,
        );
        let applier_ref = &mut applier;
        let applying = async move {
            let count = self
                .apply_commands(applier_ref, &mut sealing, shutdown)
                .await?;
            // Closing the channel lets the writer finish what is queued.
            Ok::<(Sealed, u64), EngineError>((sealing.close(), count))
        };
        // The writer stops first when it finds a problem (a divergence, another
        // writer); then the applier, which may be waiting for commands, is dropped.
        let (applied, written_result) = {
            tokio::pin!(applying);
            tokio::pin!(writing);
            tokio::select! {
                biased;
                w = &mut writing => match w {
                    Err(e) => return Err(e),
                    Ok(counts) => (applying.await, Ok(counts)),
                },
                a = &mut applying => (a, writing.await),
            }
        };
        let (matched, appended) = written_result?;
        let (sealed, commands_applied) = applied?;
        let sealer = sealed.sealer().await?;
        // Everything up to here is on the log (appended, or found there while
        // re-deriving), so the position is safe to keep.
        if applier.next_command > last_snapshot_at {
            self.snapshots
                .write(&sealer.saved(applier.next_command, applier.core.snapshot()))?;
            self.stats.snapshot();
        }
        let summary = RunSummary {
            commands_applied,
            events_matched: matched,
            events_appended: appended,
            next_command: applier.next_command,
            next_seq: sealer.next_seq,
        };
        tracing::info!(?summary, "engine stopped");
        Ok(summary)
    }
}

/// Where a run starts: the restored state, and what is already on the events log.
struct Recovered<R> {
    applier: Applier,
    sealer: Sealer,
    /// A reader of the events already on the log, while there are some to compare.
    stored: Option<R>,
    /// The highest seq on the events log.
    written: u64,
    /// The events log's end offset.
    events_end: u64,
}

/// One batch of applied commands on its way to the sealer.
struct Batch {
    events: Vec<Event>,
    applied: Vec<Applied>,
}

/// One batch's sealed envelopes, on their way to the log.
struct Step {
    first_seq: u64,
    records: Vec<Vec<u8>>,
    snapshot: Option<Saved>,
}

/// True on a multi-threaded runtime. Elsewhere (a single-threaded runtime, or the
/// simulation's own executor) the stages run inline, one after the other, in an
/// order that is the same every run.
fn on_threads() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}

/// Where applied batches go to be sealed: a thread of their own, or inline.
enum Sealing {
    Thread {
        to_sealer: std::sync::mpsc::SyncSender<Batch>,
        handle: tokio::task::JoinHandle<Sealer>,
    },
    Inline {
        sealer: Sealer,
        to_writer: tokio::sync::mpsc::Sender<Step>,
    },
}

/// The sealing stage once the applier is done with it.
enum Sealed {
    Thread(tokio::task::JoinHandle<Sealer>),
    Inline(Sealer),
}

impl Sealing {
    /// Hands a batch on; false once the writer has stopped.
    async fn send(&mut self, batch: Batch) -> bool {
        match self {
            Sealing::Thread { to_sealer, .. } => {
                // The sealer thread runs beside this task; wait for room without
                // blocking the runtime.
                let mut pending = batch;
                loop {
                    match to_sealer.try_send(pending) {
                        Ok(()) => return true,
                        Err(std::sync::mpsc::TrySendError::Full(b)) => {
                            pending = b;
                            tokio::time::sleep(Duration::from_micros(200)).await;
                        }
                        Err(std::sync::mpsc::TrySendError::Disconnected(_)) => return false,
                    }
                }
            }
            Sealing::Inline { sealer, to_writer } => {
                to_writer.send(seal_batch(sealer, batch)).await.is_ok()
            }
        }
    }

    /// Hangs up on the next stage, so it ends once it has done what is queued.
    fn close(self) -> Sealed {
        match self {
            Sealing::Thread { handle, .. } => Sealed::Thread(handle),
            Sealing::Inline { sealer, .. } => Sealed::Inline(sealer),
        }
    }
}

impl Sealed {
    async fn sealer(self) -> Result<Sealer, EngineError> {
        match self {
            Sealed::Thread(handle) => handle
                .await
                .map_err(|e| EngineError::Snapshot(std::io::Error::other(e))),
            Sealed::Inline(sealer) => Ok(sealer),
        }
    }
}

/// Seals one batch into the step the writer appends.
fn seal_batch(sealer: &mut Sealer, batch: Batch) -> Step {
    let mut step = Step {
        first_seq: sealer.next_seq,
        records: Vec::with_capacity(batch.events.len()),
        snapshot: None,
    };
    let mut start = 0;
    for applied in batch.applied {
        sealer.seal(
            applied.offset,
            applied.time_ms,
            &batch.events[start..applied.end],
            &mut step.records,
        );
        start = applied.end;
        if let Some(core) = applied.snapshot {
            step.snapshot = Some(sealer.saved(applied.offset + 1, core));
        }
    }
    assert_eq!(
        step.first_seq + step.records.len() as u64,
        sealer.next_seq,
        "one sealed record per event, each seq the last + 1"
    );
    step
}

/// The sealer thread: seals batches in order until the applier hangs up.
fn seal_batches(
    mut sealer: Sealer,
    batches: std::sync::mpsc::Receiver<Batch>,
    steps: tokio::sync::mpsc::Sender<Step>,
) -> Sealer {
    while let Ok(batch) = batches.recv() {
        if steps.blocking_send(seal_batch(&mut sealer, batch)).is_err() {
            break; // the writer failed; its error is returned
        }
    }
    sealer
}

/// The writer: checks sealed events against the log while re-deriving, appends the
/// rest (several steps at once when they queue up: one fsync for all), checks that
/// each event landed at offset `seq - 1`, then keeps the snapshots.
async fn write_steps<E: Log>(
    events: &E,
    snapshots: &SnapshotStore,
    stats: &EngineStats,
    mut steps: tokio::sync::mpsc::Receiver<Step>,
    mut stored: Option<E::Reader>,
    written: u64,
    // Where the next append must land: nobody else appends while this engine runs.
    mut next_offset: u64,
) -> Result<(u64, u64), EngineError> {
    let (mut matched_total, mut appended_total) = (0u64, 0u64);
    let mut next_seq: Option<u64> = None;
    while let Some(first) = steps.recv().await {
        let mut group = vec![first];
        while let Ok(more) = steps.try_recv() {
            group.push(more);
        }
        let mut snapshot = None;
        let mut first_seq = None;
        let mut records = Vec::new();
        for mut step in group {
            // Recovery: what is already on the log must be what we regenerated.
            if let Some(reader) = stored.as_mut() {
                let matched = compare_stored(reader, &step, written).await?;
                matched_total += matched as u64;
                step.records.drain(..matched);
                step.first_seq += matched as u64;
                if step.first_seq > written {
                    stored = None;
                    tracing::info!(
                        seq = written,
                        "caught up with the events log; appending from here"
                    );
                }
            }
            if !step.records.is_empty() {
                // Each event appended is the last one's seq + 1, across groups too.
                assert!(
                    next_seq.is_none_or(|n| n == step.first_seq),
                    "sealed seq {} follows {next_seq:?}",
                    step.first_seq
                );
                first_seq.get_or_insert(step.first_seq);
                next_seq = Some(step.first_seq + step.records.len() as u64);
                records.extend(step.records);
            }
            snapshot = step.snapshot.or(snapshot);
        }
        if let Some(first_seq) = first_seq {
            appended_total += records.len() as u64;
            let offsets = events.append(records).await?;
            for (i, offset) in offsets.iter().enumerate() {
                if *offset != next_offset {
                    return Err(EngineError::AnotherWriter {
                        seq: first_seq + i as u64,
                        offset: *offset,
                        expected_offset: next_offset,
                    });
                }
                next_offset += 1;
            }
            stats.durable(first_seq + offsets.len() as u64 - 1);
        }
        if let Some(s) = snapshot {
            // Large and fsynced: keep it off the async workers.
            if on_threads() {
                tokio::task::block_in_place(|| snapshots.write(&s))?;
            } else {
                snapshots.write(&s)?;
            }
            stats.snapshot();
        }
    }
    Ok((matched_total, appended_total))
}

/// Compares a step's sealed events with those already on the log (up to seq
/// `written`); returns how many matched, all of them the step's first.
async fn compare_stored<R: LogReader>(
    reader: &mut R,
    step: &Step,
    written: u64,
) -> Result<usize, EngineError> {
    let mut matched = 0;
    while matched < step.records.len() && step.first_seq + (matched as u64) <= written {
        let seq = step.first_seq + matched as u64;
        let found = next_stored(reader, seq).await?;
        if found != step.records[matched] {
            let show = |b: &[u8]| match codec::from_bincode::<EventEnvelope>(b) {
                Ok(e) => format!("{:?}", e.event),
                Err(e) => format!("undecodable ({e})"),
            };
            return Err(EngineError::Diverged {
                seq,
                expected: show(&step.records[matched]),
                found: show(&found),
            });
        }
        matched += 1;
    }
    Ok(matched)
}

/// The stored event with `seq`, as bytes, skipping lower seqs (copies a deposed
/// writer may have left).
async fn next_stored<R: LogReader>(reader: &mut R, seq: u64) -> Result<Vec<u8>, EngineError> {
    loop {
        let batch = reader.next_batch(1, Duration::from_secs(5)).await?;
        let Some(r) = batch.into_iter().next() else {
            return Err(EngineError::Log(LogError::OffsetOutOfRange(seq - 1)));
        };
        if seq_of(r.offset, &r.bytes)? < seq {
            continue;
        }
        return Ok(r.bytes);
    }
}
