//! Deriving events from commands: one command in, its sealed event envelopes out,
//! with checkpoints at fixed command counts. The engine runs this; so can anyone who
//! wants to check an events log against its commands log from scratch.

use tape_core::{Core, CoreConfig};
use tape_schemas::{Event, EventEnvelope, Hash32};

use crate::decode::decode_command;
use crate::snapshots::Saved;

pub struct Deriver {
    pub core: Core,
    pub next_command: u64,
    pub next_seq: u64,
    pub last_hash: Hash32,
    pub checkpoint_every: u64,
    produced: Vec<Event>,
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
            core,
            next_command,
            next_seq,
            last_hash,
            checkpoint_every: checkpoint_every.max(1),
            produced: Vec::with_capacity(64),
        }
    }

    /// Applies the command record at `offset` (which must be `next_command`), appends
    /// the canonical bytes of its event envelopes to `out`, and returns a snapshot
    /// when this command ends a checkpoint interval.
    pub fn step(&mut self, offset: u64, bytes: &[u8], out: &mut Vec<Vec<u8>>) -> Option<Saved> {
        debug_assert_eq!(offset, self.next_command, "commands are applied in order");
        self.produced.clear();
        match decode_command(bytes) {
            Ok(command) => self.core.apply(&command, &mut self.produced),
            Err(e) => {
                tracing::warn!(offset, error = %e, "malformed command; answering with a rejection");
                self.core.reject_malformed(&mut self.produced);
            }
        }
        self.next_command = offset + 1;
        let snapshot = self
            .next_command
            .is_multiple_of(self.checkpoint_every)
            .then(|| self.core.snapshot());
        if let Some(bytes) = &snapshot {
            let state_hash = Hash32(*blake3::hash(bytes).as_bytes());
            self.produced.push(Event::Checkpoint {
                commands_applied: self.next_command,
                state_hash,
            });
        }
        let time_ms = self.core.time_ms();
        for event in &self.produced {
            let (hash, record) =
                EventEnvelope::seal_encoded(self.next_seq, offset, time_ms, self.last_hash, event);
            self.next_seq += 1;
            self.last_hash = hash;
            out.push(record);
        }
        snapshot.map(|core| self.saved(core))
    }

    pub fn saved(&self, core: Vec<u8>) -> Saved {
        Saved {
            next_command: self.next_command,
            next_seq: self.next_seq,
            last_hash: self.last_hash,
            core,
        }
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
