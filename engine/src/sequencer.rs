//! The sequencer loop and its recovery.

use std::time::{Duration, Instant};

use tape_core::{Core, CoreConfig};
use tape_log::{Log, LogError, LogReader};
use tape_schemas::Event;
use tokio::sync::watch;

use crate::derive::{Applied, Applier, Deriver, Sealer};
use crate::snapshots::SnapshotStore;
use crate::standby::Duty;
use crate::stats::EngineStats;
use crate::writer::{seq_of, Step, Stored, Writer};

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
    #[error("deposed: this engine led epoch {epoch}, and epoch {by} has taken over")]
    Deposed { epoch: u64, by: u64 },
    #[error("the events log is led by epoch {epoch} (a failover on Kafka); an engine without the control log would write epoch 0, which every reader ignores: run it with the control log")]
    Epoch { epoch: u64 },
    #[error("told to stop while following")]
    StoppedFollowing,
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

    /// The events log's end offset, the highest `seq` on it (0 when empty) and the
    /// epoch in force at its end, read under the fencing rule from `start` (the
    /// snapshot's resume point, at or before the last event it counts) and the
    /// epoch in force there.
    ///
    /// One writer of an epoch appends in `seq` order, but a deposed engine may leave
    /// copies of earlier events after later ones, so the highest `seq` need not be
    /// the last record's; and records of deposed epochs after a fence do not count.
    async fn events_tail(&self, start: u64, epoch: u64) -> Result<Tail, EngineError> {
        let end = self.events.end_offset().await?;
        if end <= start {
            return Ok(Tail {
                end: 0,
                last_seq: 0,
                epoch,
            });
        }
        let mut reader = self.events.reader(start).await?;
        let mut fencing = tape_schemas::Fencing::resume(epoch);
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
                let admitted = fencing.admit(&r.bytes).map_err(|e| EngineError::BadEvent {
                    offset: r.offset,
                    what: e.to_string(),
                })?;
                if let tape_schemas::Admit::Event { envelope, .. } = admitted {
                    last_seq = last_seq.max(seq_of(r.offset, envelope)?);
                }
                next = r.offset + 1;
                deadline = Instant::now() + Duration::from_secs(30);
            }
        }
        Ok(Tail {
            end,
            last_seq,
            epoch: fencing.epoch(),
        })
    }

    /// The latest snapshot's state (or a fresh one), and where a reader of the
    /// events log resumes for it: an offset and the epoch in force there.
    fn restore(&self) -> Result<(Deriver, u64, u64), EngineError> {
        let every = self.options.checkpoint_every;
        let saved = self.snapshots.latest()?;
        let core = match &saved {
            Some(saved) => match Core::restore(&saved.core) {
                Ok(core) => Some(core),
                // Another build's layout (an upgrade): the log is what counts, so
                // everything is derived again from its start and compared.
                Err(tape_core::SnapshotError::Format { found }) => {
                    tracing::warn!(
                        found,
                        "the latest snapshot is another build's core format: deriving everything again from the start of the logs"
                    );
                    None
                }
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        Ok(match (saved, core) {
            (Some(saved), Some(core)) => (
                Deriver::resume(
                    core,
                    saved.next_command,
                    saved.next_seq,
                    saved.last_hash,
                    every,
                ),
                saved.events_at,
                saved.epoch,
            ),
            _ => (Deriver::new(self.options.core, every), 0, 0),
        })
    }

    /// Restores the latest snapshot and finds where the events log ends: what the
    /// run re-derives and compares before it appends.
    async fn recover(&self) -> Result<Recovered<E::Reader>, EngineError> {
        let (
            Deriver {
                applier, sealer, ..
            },
            events_at,
            resume_epoch,
        ) = self.restore()?;
        let Tail {
            end: events_end,
            last_seq: written,
            epoch,
        } = self.events_tail(events_at, resume_epoch).await?;
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
        let stored = Stored::new(
            self.events.reader(events_at).await?,
            events_at,
            resume_epoch,
        );
        self.stats.applied(0, applier.next_command);
        self.stats.durable(written);
        self.stats.clock(
            applier.core.trusted_ms(),
            applier.core.credentials_required(),
        );
        self.stats.liquidations(&applier.core);
        Ok(Recovered {
            applier,
            sealer,
            stored,
            written,
            events_end,
            epoch,
            resume: (events_at, resume_epoch),
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
            self.stats.liquidations(&applier.core);
            if !sealing.send(batch).await {
                break; // the writer stopped; its result says why
            }
        }
        Ok(applied_count)
    }

    /// Runs as the only writer (epoch 0) until `shutdown` turns true, then
    /// snapshots and returns.
    pub async fn run(&self, shutdown: watch::Receiver<bool>) -> Result<RunSummary, EngineError> {
        self.run_as(Duty::Sole, shutdown).await
    }

    /// Runs as `duty` says: alone, or as a standby that follows the leader's events
    /// and takes over when its link says it won an epoch.
    ///
    /// Three stages: this task reads commands and applies the core; a blocking
    /// thread seals the events (encoding and the hash chain); the writer compares
    /// what is already on the events log (recovery, following) and appends the
    /// rest, keeping a snapshot only once its events are durable.
    pub async fn run_as(
        &self,
        duty: Duty,
        shutdown: watch::Receiver<bool>,
    ) -> Result<RunSummary, EngineError> {
        let Recovered {
            mut applier,
            sealer,
            stored,
            written,
            events_end,
            epoch,
            resume,
        } = self.recover().await?;
        let following = matches!(duty, Duty::Standby(_));
        if !following && epoch > 0 {
            return Err(EngineError::Epoch { epoch });
        }
        let last_snapshot_at = applier.next_command;
        let (to_writer, writer_rx) = tokio::sync::mpsc::channel::<Step>(4);
        let mut sealing = Sealing::start(sealer, to_writer);
        let writer = Writer::new(
            &self.events,
            &self.snapshots,
            &self.stats,
            duty,
            (!following).then_some(0),
            Some(stored),
            if following { u64::MAX } else { written },
            events_end,
            applier.next_seq,
            resume,
        );
        let writing = writer.run(writer_rx);
        let applier_ref = &mut applier;
        let applying = async move {
            let count = self
                .apply_commands(applier_ref, &mut sealing, shutdown)
                .await?;
            // Closing the channel lets the writer finish what is queued.
            Ok::<(Sealed, u64), EngineError>((sealing.close(), count))
        };
        // The writer stops first when it finds a problem (a divergence, another
        // writer, a fence); then the applier, which may be waiting, is dropped.
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
        let written = written_result?;
        let (sealed, commands_applied) = applied?;
        let sealer = sealed.sealer().await?;
        // Everything up to here is on the log (appended, or found there while
        // re-deriving), so the position is safe to keep. A standby that never led
        // keeps only the snapshots its writer took as it matched.
        if written.led && applier.next_command > last_snapshot_at {
            let mut saved = sealer.saved(applier.next_command, applier.core.snapshot());
            (saved.events_at, saved.epoch) = written.last_event_at;
            self.snapshots.write(&saved)?;
            self.stats.snapshot();
        }
        let summary = RunSummary {
            commands_applied,
            events_matched: written.matched,
            events_appended: written.appended,
            next_command: applier.next_command,
            next_seq: sealer.next_seq,
        };
        tracing::info!(?summary, "engine stopped");
        Ok(summary)
    }
}

/// Where the events log ends, read under the fencing rule.
struct Tail {
    end: u64,
    last_seq: u64,
    epoch: u64,
}

/// Where a run starts: the restored state, and what is already on the events log.
struct Recovered<R> {
    applier: Applier,
    sealer: Sealer,
    /// The events already on the log, to compare.
    stored: Stored<R>,
    /// The highest seq on the events log.
    written: u64,
    /// The events log's end offset.
    events_end: u64,
    /// The epoch in force at its end.
    epoch: u64,
    /// Where a reader resumed: offset and epoch.
    resume: (u64, u64),
}

/// One batch of applied commands on its way to the sealer.
struct Batch {
    events: Vec<Event>,
    applied: Vec<Applied>,
}

/// True on a multi-threaded runtime. Elsewhere (a single-threaded runtime, or the
/// simulation's own executor) the stages run inline, one after the other, in an
/// order that is the same every run.
pub(crate) fn on_threads() -> bool {
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
    /// The sealing stage: on a thread of its own on a multi-threaded runtime.
    fn start(sealer: Sealer, to_writer: tokio::sync::mpsc::Sender<Step>) -> Sealing {
        if on_threads() {
            let (to_sealer, sealer_rx) = std::sync::mpsc::sync_channel::<Batch>(4);
            let handle =
                tokio::task::spawn_blocking(move || seal_batches(sealer, sealer_rx, to_writer));
            Sealing::Thread { to_sealer, handle }
        } else {
            Sealing::Inline { sealer, to_writer }
        }
    }

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
        commands: batch.applied.len() as u64,
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
