//! The auditors' verifier. It trusts nothing the engine wrote: it re-executes the
//! commands log with its own core, and walks the events log beside it, checking for
//! every event that `seq` continues without gap or duplicate, that the hash chain
//! links, and that the bytes are exactly what re-execution produces; at every
//! checkpoint it checks the state hash and the invariants (conservation per asset,
//! no negative balance, holds equal to what open orders and pending withdrawals need,
//! no crossed book). It stops at the first event that disagrees and says what was
//! expected and what was found.

pub mod statement;

use std::time::Duration;

use tape_core::{Core, CoreConfig};
use tape_engine::Sealer;
use tape_log::{Log, LogReader, Record};
use tape_schemas::{codec, Event, EventEnvelope, Hash32};

/// What a clean log proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub commands: u64,
    pub events: u64,
    pub checkpoints: u64,
    pub state_hash: Hash32,
}

/// The first thing that disagrees.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("first bad event: seq {seq} (command offset {command_offset}): {what}; expected {expected}; found {found}")]
pub struct Disagreement {
    pub seq: u64,
    pub command_offset: u64,
    pub what: String,
    pub expected: String,
    pub found: String,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Disagrees(#[from] Disagreement),
    #[error(transparent)]
    Log(#[from] tape_log::LogError),
}

/// Reads a log sequentially, one record at a time, with lookahead.
struct Cursor<R> {
    reader: R,
    buffered: std::collections::VecDeque<Record>,
    remaining: u64,
}

impl<R: LogReader> Cursor<R> {
    async fn peek(&mut self) -> Result<Option<&Record>, tape_log::LogError> {
        if self.buffered.is_empty() && self.remaining > 0 {
            let want = self.remaining.min(10_000) as usize;
            let batch = self
                .reader
                .next_batch(want, Duration::from_secs(30))
                .await?;
            if batch.is_empty() {
                return Err(tape_log::LogError::OffsetOutOfRange(0));
            }
            self.remaining -= batch.len() as u64;
            self.buffered.extend(batch);
        }
        Ok(self.buffered.front())
    }

    async fn next(&mut self) -> Result<Option<Record>, tape_log::LogError> {
        self.peek().await?;
        Ok(self.buffered.pop_front())
    }
}

fn describe(bytes: &[u8]) -> String {
    match codec::from_bincode::<EventEnvelope>(bytes) {
        Ok(e) => format!("seq {} (offset {}) {:?}", e.seq, e.command_offset, e.event),
        Err(e) => format!("undecodable bytes ({e})"),
    }
}

fn disagreement(
    seq: u64,
    command_offset: u64,
    what: &str,
    expected: String,
    found: String,
) -> Disagreement {
    Disagreement {
        seq,
        command_offset,
        what: what.to_string(),
        expected,
        found,
    }
}

/// Checks one stored event against the envelope re-execution sealed; on a mismatch
/// says whether `seq`, the hash chain or the content is what differs.
fn compare(
    expected: &[u8],
    found: Option<&Record>,
    command_offset: u64,
    content_differs: &str,
) -> Result<(), Disagreement> {
    if found.is_some_and(|f| f.bytes == expected) {
        return Ok(());
    }
    // Only a disagreement pays for decoding.
    let e = codec::from_bincode::<EventEnvelope>(expected).expect("sealed envelopes decode");
    let Some(found) = found else {
        return Err(disagreement(
            e.seq,
            command_offset,
            "the events log ends early",
            describe(expected),
            "nothing".into(),
        ));
    };
    let what = match codec::from_bincode::<EventEnvelope>(&found.bytes) {
        Err(_) => "undecodable event",
        Ok(f) if f.seq != e.seq => "seq out of order (a gap, a duplicate or a swap)",
        Ok(f) if f.prev_hash != e.prev_hash || f.hash != f.expected_hash() => "hash chain broken",
        Ok(_) => content_differs,
    };
    Err(disagreement(
        e.seq,
        command_offset,
        what,
        describe(expected),
        describe(&found.bytes),
    ))
}

/// Verifies an events log against its commands log from the start. `progress` is
/// called now and then with the number of commands done.
pub async fn verify<C: Log, E: Log>(
    commands: &C,
    events: &E,
    core: CoreConfig,
    mut progress: impl FnMut(u64, u64),
) -> Result<Verified, VerifyError> {
    let commands_total = commands.end_offset().await?;
    let events_total = events.end_offset().await?;
    let mut cmds = Cursor {
        reader: commands.reader(0).await?,
        buffered: Default::default(),
        remaining: commands_total,
    };
    let mut evs = Cursor {
        reader: events.reader(0).await?,
        buffered: Default::default(),
        remaining: events_total,
    };
    let mut core_state = Core::new(core);
    let mut sealer = Sealer {
        next_seq: 1,
        last_hash: Hash32::default(),
    };
    let mut checkpoints = 0u64;
    let mut produced = Vec::with_capacity(64);
    let mut expected: Vec<Vec<u8>> = Vec::with_capacity(64);
    while let Some(command) = cmds.next().await? {
        let offset = command.offset;
        produced.clear();
        match tape_engine::decode_command(&command.bytes) {
            Ok(c) => core_state.apply(&c, &mut produced),
            Err(_) => core_state.reject_malformed(&mut produced),
        }
        let time_ms = core_state.time_ms();
        expected.clear();
        sealer.seal(offset, time_ms, &produced, &mut expected);
        for record in &expected {
            let found = evs.next().await?;
            compare(
                record,
                found.as_ref(),
                offset,
                "re-execution produces a different event",
            )?;
        }
        // Only a checkpoint may follow a command's own events with the same command
        // offset; the cheap header peek rules most commands out.
        let checkpoint_follows = match evs.peek().await? {
            Some(r) if EventEnvelope::peek(&r.bytes).is_ok_and(|(_, o, _)| o == offset) => {
                matches!(
                    codec::from_bincode::<EventEnvelope>(&r.bytes),
                    Ok(EventEnvelope {
                        event: Event::Checkpoint { .. },
                        ..
                    })
                )
            }
            _ => false,
        };
        if checkpoint_follows {
            let state_hash = Hash32(core_state.state_hash());
            let event = Event::Checkpoint {
                commands_applied: offset + 1,
                state_hash,
            };
            expected.clear();
            sealer.seal(offset, time_ms, std::slice::from_ref(&event), &mut expected);
            let found = evs.next().await?;
            compare(
                &expected[0],
                found.as_ref(),
                offset,
                "checkpoint state hash or envelope differs",
            )?;
            if let Err(v) = core_state.check_invariants() {
                return Err(disagreement(
                    sealer.next_seq - 1,
                    offset,
                    "invariant broken at checkpoint",
                    "all invariants hold".into(),
                    v.to_string(),
                )
                .into());
            }
            checkpoints += 1;
        }
        if offset.is_multiple_of(10_000) {
            progress(offset + 1, commands_total);
        }
    }
    if let Some(extra) = evs.next().await? {
        return Err(disagreement(
            sealer.next_seq,
            commands_total,
            "an event no command produced",
            "the end of the log".into(),
            describe(&extra.bytes),
        )
        .into());
    }
    if let Err(v) = core_state.check_invariants() {
        return Err(disagreement(
            sealer.next_seq,
            commands_total,
            "invariant broken at the end",
            "all invariants hold".into(),
            v.to_string(),
        )
        .into());
    }
    progress(commands_total, commands_total);
    Ok(Verified {
        commands: commands_total,
        events: sealer.next_seq - 1,
        checkpoints,
        state_hash: Hash32(core_state.state_hash()),
    })
}
