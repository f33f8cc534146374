//! Deriving events from commands, in two stages the engine runs on two threads:
//! the `Applier` turns a command record into events (and, at each checkpoint, the
//! core's snapshot and a `Checkpoint` event); the `Sealer` wraps events in envelopes
//! with `seq` and the hash chain. `Deriver` runs both in one place: it is the
//! reference for what an events log must hold.

use tape_core::{Core, CoreConfig};
use tape_schemas::{event_frame, Event, EventEnvelope, Hash32};

use crate::snapshots::Saved;

/// The events of one command, as the applier made them.
pub struct Applied {
    pub offset: u64,
    pub time_ms: u64,
    /// `events[start..end]` of the batch they belong to.
    pub end: usize,
    /// The core's snapshot when this command ends a checkpoint interval.
    pub snapshot: Option<Vec<u8>>,
}

pub struct Applier {
    pub core: Core,
    pub next_command: u64,
    /// The seq the next event produced will get (the sealer gives it).
    pub next_seq: u64,
    pub checkpoint_every: u64,
}

/// The core broke an invariant: a bug, not bad input. The engine stops before any
/// event of the command (or the checkpoint) is written and keeps its last good
/// snapshot; a restart stops at the same place until the bug is fixed.
#[derive(Debug, thiserror::Error)]
#[error("the core broke an invariant at command offset {offset} (its events would start at seq {seq}): {what}")]
pub struct Broken {
    pub offset: u64,
    pub seq: u64,
    pub what: String,
}

impl Applier {
    /// Applies the command record at `offset` (`next_command`, or later where the
    /// log has a permanent hole: Kafka transaction markers) and appends its events
    /// to `events`. At the end of a checkpoint interval it checks the core's
    /// invariants before it takes the snapshot.
    pub fn apply(
        &mut self,
        offset: u64,
        bytes: &[u8],
        events: &mut Vec<Event>,
    ) -> Result<Applied, Broken> {
        assert!(offset >= self.next_command, "commands are applied in order");
        let start = events.len();
        let broken = |what: String| Broken {
            offset,
            seq: self.next_seq,
            what,
        };
        // Checked arithmetic in the core panics on a broken invariant; it is caught
        // here so the engine can say where, and the core is not used again.
        let core = &mut self.core;
        let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            core.apply_bytes(bytes, events)
        }));
        match applied {
            Ok(Err(e)) => {
                tracing::warn!(offset, error = %e, "malformed command; answering with a rejection")
            }
            Ok(Ok(())) => {}
            Err(panic) => return Err(broken(panic_text(&panic))),
        }
        self.next_command = offset + 1;
        let checkpoint = self.next_command.is_multiple_of(self.checkpoint_every);
        if checkpoint {
            if let Err(v) = self.core.check_invariants() {
                return Err(broken(v.to_string()));
            }
        }
        let snapshot = checkpoint.then(|| self.core.snapshot());
        if let Some(bytes) = &snapshot {
            let state_hash = Hash32(tape_core::state_hash_of(bytes));
            events.push(Event::Checkpoint {
                commands_applied: self.next_command,
                state_hash,
            });
        }
        self.next_seq += (events.len() - start) as u64;
        Ok(Applied {
            offset,
            time_ms: self.core.time_ms(),
            end: events.len(),
            snapshot,
        })
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".to_string())
}

pub struct Sealer {
    pub next_seq: u64,
    pub last_hash: Hash32,
}

impl Sealer {
    /// Seals `events` (all from the command at `offset`), appending their records to
    /// `out`: each the frame of epoch 0 (the writer sets its own epoch when it
    /// appends) and the envelope's canonical bytes.
    pub fn seal(&mut self, offset: u64, time_ms: u64, events: &[Event], out: &mut Vec<Vec<u8>>) {
        for event in events {
            let mut record = Vec::with_capacity(200);
            record.extend_from_slice(&event_frame(0));
            let hash = EventEnvelope::seal_into(
                self.next_seq,
                offset,
                time_ms,
                self.last_hash,
                event,
                &mut record,
            );
            self.next_seq += 1;
            self.last_hash = hash;
            out.push(record);
        }
    }

    /// A snapshot at this point (the writer sets where on the events log it stands
    /// when it keeps it).
    pub fn saved(&self, next_command: u64, core: Vec<u8>) -> Saved {
        Saved {
            next_command,
            next_seq: self.next_seq,
            last_hash: self.last_hash,
            events_at: 0,
            epoch: 0,
            core,
        }
    }
}

/// Both stages in one place.
pub struct Deriver {
    pub applier: Applier,
    pub sealer: Sealer,
    events: Vec<Event>,
}

impl Deriver {
    /// From the beginning of the logs.
    pub fn new(core: CoreConfig, checkpoint_every: u64) -> Deriver {
        Deriver::resume(Core::new(core), 0, 1, Hash32::default(), checkpoint_every)
    }

    pub fn resume(
        core: Core,
        next_command: u64,
        next_seq: u64,
        last_hash: Hash32,
        checkpoint_every: u64,
    ) -> Deriver {
        Deriver {
            applier: Applier {
                core,
                next_command,
                next_seq,
                checkpoint_every: checkpoint_every.max(1),
            },
            sealer: Sealer {
                next_seq,
                last_hash,
            },
            events: Vec::with_capacity(64),
        }
    }

    /// Applies one command record and appends its sealed envelopes to `out`; returns
    /// a snapshot when the command ends a checkpoint interval.
    pub fn step(
        &mut self,
        offset: u64,
        bytes: &[u8],
        out: &mut Vec<Vec<u8>>,
    ) -> Result<Option<Saved>, Broken> {
        self.events.clear();
        let applied = self.applier.apply(offset, bytes, &mut self.events)?;
        self.sealer.seal(offset, applied.time_ms, &self.events, out);
        Ok(applied
            .snapshot
            .map(|core| self.sealer.saved(offset + 1, core)))
    }
}

/// Every event record (the frame of epoch 0 and the envelope's canonical bytes: what
/// the embedded log holds) that a fresh engine derives from these
/// command records. For tests and benchmarks: a broken invariant (a bug in the core,
/// never input) panics with where it happened; the engine itself stops with
/// `EngineError::Broken` instead.
pub fn derive_records(
    commands: &[Vec<u8>],
    core: CoreConfig,
    checkpoint_every: u64,
) -> Vec<Vec<u8>> {
    derive_all(commands.iter().map(Vec::as_slice), core, checkpoint_every)
}

/// `derive_records` over command records given as an iterator of byte slices.
pub fn derive_all<'a>(
    commands: impl IntoIterator<Item = &'a [u8]>,
    core: CoreConfig,
    checkpoint_every: u64,
) -> Vec<Vec<u8>> {
    let mut d = Deriver::new(core, checkpoint_every);
    let mut out = Vec::new();
    for (offset, bytes) in commands.into_iter().enumerate() {
        if let Err(broken) = d.step(offset as u64, bytes, &mut out) {
            panic!("{broken}");
        }
    }
    out
}
