//! The sequencer loop and its recovery.

use std::time::{Duration, Instant};

use tape_core::{Core, CoreConfig};
use tape_log::{Log, LogError, LogReader};
use tape_schemas::{codec, EventEnvelope};
use tokio::sync::watch;

use crate::derive::Deriver;
use crate::snapshots::{Saved, SnapshotStore};

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
            checkpoint_every: 100_000,
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
    #[error("event seq {seq} was written at offset {offset}: another writer is appending to the events log")]
    AnotherWriter { seq: u64, offset: u64 },
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
}

fn decode_event(offset: u64, bytes: &[u8]) -> Result<EventEnvelope, EngineError> {
    codec::from_bincode::<EventEnvelope>(bytes).map_err(|e| EngineError::BadEvent {
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
        }
    }

    pub fn commands(&self) -> &C {
        &self.commands
    }

    pub fn events(&self) -> &E {
        &self.events
    }

    /// The seq of the last event on the log (0 when empty).
    async fn last_written_seq(&self) -> Result<u64, EngineError> {
        let end = self.events.end_offset().await?;
        if end == 0 {
            return Ok(0);
        }
        let mut reader = self.events.reader(end - 1).await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let batch = reader.next_batch(1, Duration::from_millis(500)).await?;
            if let Some(r) = batch.first() {
                return Ok(decode_event(r.offset, &r.bytes)?.seq);
            }
            if Instant::now() > deadline {
                return Err(EngineError::Log(LogError::OffsetOutOfRange(end - 1)));
            }
        }
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

    /// Runs until `shutdown` turns true, then snapshots and returns.
    pub async fn run(
        &self,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<RunSummary, EngineError> {
        let mut pos = self.restore()?;
        let written = self.last_written_seq().await?;
        if written + 1 < pos.next_seq {
            return Err(EngineError::EventsBehindSnapshot {
                events_last_seq: written,
                snapshot_seq: pos.next_seq - 1,
            });
        }
        tracing::info!(
            next_command = pos.next_command,
            next_seq = pos.next_seq,
            events_on_log = written,
            "engine starting: {} events to re-derive and compare",
            written + 1 - pos.next_seq
        );
        let mut summary = RunSummary::default();
        let mut stored = if written >= pos.next_seq {
            Some(self.events.reader(pos.next_seq - 1).await?)
        } else {
            None
        };
        let mut commands = self.commands.reader(pos.next_command).await?;
        let mut last_snapshot_at = pos.next_command;

        // Appends run one step behind: while the log fsyncs batch N, batch N+1 is
        // computed. A snapshot is written only after its events are durable.
        let (to_appender, appender_rx) = tokio::sync::mpsc::channel::<Step>(4);
        let appending = async {
            let result = append_steps(&self.events, &self.snapshots, appender_rx).await;
            result
        };
        let computing = async {
            loop {
                if *shutdown.borrow() {
                    break;
                }
                let batch = tokio::select! {
                    b = commands.next_batch(self.options.batch_max, self.options.poll) => b?,
                    _ = shutdown.changed() => continue,
                };
                if batch.is_empty() {
                    continue;
                }
                let mut step = Step {
                    first_seq: pos.next_seq,
                    records: Vec::with_capacity(batch.len() * 4),
                    snapshot: None,
                };
                for record in &batch {
                    if let Some(saved) = pos.step(record.offset, &record.bytes, &mut step.records) {
                        step.snapshot = Some(saved);
                    }
                }
                summary.commands_applied += batch.len() as u64;

                // Recovery: what is already on the log must be what we regenerated.
                if let Some(reader) = stored.as_mut() {
                    let mut matched = 0;
                    while matched < step.records.len()
                        && step.first_seq + (matched as u64) <= written
                    {
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
                    summary.events_matched += matched as u64;
                    step.records.drain(..matched);
                    step.first_seq += matched as u64;
                    if pos.next_seq > written {
                        stored = None;
                        tracing::info!(
                            seq = written,
                            "caught up with the events log; appending from here"
                        );
                    }
                }
                summary.events_appended += step.records.len() as u64;
                last_snapshot_at = step
                    .snapshot
                    .as_ref()
                    .map_or(last_snapshot_at, |s| s.next_command);
                if to_appender.send(step).await.is_err() {
                    break; // the appender failed; its error is returned below
                }
            }
            // Everything up to `pos` is on the log (appended, or found there while
            // re-deriving), so the position is safe to keep.
            if pos.next_command > last_snapshot_at {
                let saved = pos.saved(pos.core.snapshot());
                let _ = to_appender
                    .send(Step {
                        first_seq: pos.next_seq,
                        records: Vec::new(),
                        snapshot: Some(saved),
                    })
                    .await;
            }
            drop(to_appender);
            Ok::<(), EngineError>(())
        };
        let (computed, appended) = tokio::join!(computing, appending);
        appended?;
        computed?;
        summary.next_command = pos.next_command;
        summary.next_seq = pos.next_seq;
        tracing::info!(?summary, "engine stopped");
        Ok(summary)
    }
}

/// One batch's output, on its way to the log.
struct Step {
    first_seq: u64,
    records: Vec<Vec<u8>>,
    snapshot: Option<Saved>,
}

/// Appends steps in order, several at once when they queue up (one fsync for all),
/// checks that each event landed at offset `seq - 1`, then keeps the snapshots.
async fn append_steps<E: Log>(
    events: &E,
    snapshots: &SnapshotStore,
    mut steps: tokio::sync::mpsc::Receiver<Step>,
) -> Result<(), EngineError> {
    while let Some(first) = steps.recv().await {
        let mut group = vec![first];
        while let Ok(more) = steps.try_recv() {
            group.push(more);
        }
        // Steps whose events were all found on the log (recovery) carry none.
        let first_seq = group
            .iter()
            .find(|s| !s.records.is_empty())
            .map_or(0, |s| s.first_seq);
        let mut records = Vec::new();
        let mut snapshot = None;
        for step in group {
            debug_assert!(
                step.records.is_empty() || step.first_seq == first_seq + records.len() as u64
            );
            records.extend(step.records);
            snapshot = step.snapshot.or(snapshot);
        }
        if !records.is_empty() {
            let offsets = events.append(records).await?;
            for (i, offset) in offsets.iter().enumerate() {
                let seq = first_seq + i as u64;
                if offset + 1 != seq {
                    return Err(EngineError::AnotherWriter {
                        seq,
                        offset: *offset,
                    });
                }
            }
        }
        if let Some(s) = snapshot {
            snapshots.write(&s)?;
        }
    }
    Ok(())
}

/// The stored event with `seq`, as bytes, skipping lower seqs (copies a deposed
/// writer may have left).
async fn next_stored<R: LogReader>(reader: &mut R, seq: u64) -> Result<Vec<u8>, EngineError> {
    loop {
        let batch = reader.next_batch(1, Duration::from_secs(5)).await?;
        let Some(r) = batch.into_iter().next() else {
            return Err(EngineError::Log(LogError::OffsetOutOfRange(seq - 1)));
        };
        let (found_seq, _, _) =
            EventEnvelope::peek(&r.bytes).map_err(|e| EngineError::BadEvent {
                offset: r.offset,
                what: e.to_string(),
            })?;
        if found_seq < seq {
            continue;
        }
        return Ok(r.bytes);
    }
}
