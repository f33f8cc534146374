//! Deriving events from commands, in two stages the engine runs on two threads:
//! the `Applier` turns a command record into events (and, at each checkpoint, the
//! core's snapshot and a `Checkpoint` event); the `Sealer` wraps events in envelopes
//! with `seq` and the hash chain. `Deriver` runs both in one place: it is the
//! reference for what an events log must hold.

use tape_core::{Core, CoreConfig};
use tape_schemas::{Event, EventEnvelope, Hash32};

use crate::decode::apply_record;
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
    pub checkpoint_every: u64,
}

impl Applier {
    /// Applies the command record at `offset` (`next_command`, or later where the
    /// log has a permanent hole: Kafka transaction markers) and appends its events
    /// to `events`.
    pub fn apply(&mut self, offset: u64, bytes: &[u8], events: &mut Vec<Event>) -> Applied {
        debug_assert!(offset >= self.next_command, "commands are applied in order");
        if let Err(e) = apply_record(&mut self.core, bytes, events) {
            tracing::warn!(offset, error = %e, "malformed command; answering with a rejection");
        }
        self.next_command = offset + 1;
        let snapshot = self
            .next_command
            .is_multiple_of(self.checkpoint_every)
            .then(|| self.core.snapshot());
        if let Some(bytes) = &snapshot {
            let state_hash = Hash32(tape_core::state_hash_of(bytes));
            events.push(Event::Checkpoint {
                commands_applied: self.next_command,
                state_hash,
            });
        }
        Applied {
            offset,
            time_ms: self.core.time_ms(),
            end: events.len(),
            snapshot,
        }
    }
}

pub struct Sealer {
    pub next_seq: u64,
    pub last_hash: Hash32,
}

impl Sealer {
    /// Seals `events` (all from the command at `offset`), appending their canonical
    /// envelope bytes to `out`.
    pub fn seal(&mut self, offset: u64, time_ms: u64, events: &[Event], out: &mut Vec<Vec<u8>>) {
        for event in events {
            let (hash, record) =
                EventEnvelope::seal_encoded(self.next_seq, offset, time_ms, self.last_hash, event);
            self.next_seq += 1;
            self.last_hash = hash;
            out.push(record);
        }
    }

    pub fn saved(&self, next_command: u64, core: Vec<u8>) -> Saved {
        Saved {
            next_command,
            next_seq: self.next_seq,
            last_hash: self.last_hash,
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
    pub fn step(&mut self, offset: u64, bytes: &[u8], out: &mut Vec<Vec<u8>>) -> Option<Saved> {
        self.events.clear();
        let applied = self.applier.apply(offset, bytes, &mut self.events);
        self.sealer.seal(offset, applied.time_ms, &self.events, out);
        applied
            .snapshot
            .map(|core| self.sealer.saved(offset + 1, core))
    }
}

/// Every event envelope (canonical bytes) that a fresh engine derives from these
/// command records.
pub fn derive_all<'a>(
    commands: impl IntoIterator<Item = &'a [u8]>,
    core: CoreConfig,
    checkpoint_every: u64,
) -> Vec<Vec<u8>> {
    let mut d = Deriver::new(core, checkpoint_every);
    let mut out = Vec::new();
    for (offset, bytes) in commands.into_iter().enumerate() {
        d.step(offset as u64, bytes, &mut out);
    }
    out
}
