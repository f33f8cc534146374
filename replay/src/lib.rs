//! The auditors' verifier. It trusts nothing the engine wrote: it re-executes the
//! commands log with its own core, and walks the events log beside it, checking for
//! every event that `seq` continues without gap or duplicate, that the hash chain
//! links, and that the bytes are exactly what re-execution produces; at every
//! checkpoint it checks the state hash and the invariants (conservation per asset,
//! no negative balance, holds equal to what open orders and pending withdrawals need,
//! no crossed book). It stops at the first event that disagrees and says what was
//! expected and what was found.
//!
//! It reads the events log under the fencing rule (`tape_schemas::Fencing`): after
//! a fence, records of older epochs are a deposed engine's and are set aside and
//! counted, never checked or used. One exception to "no duplicate" remains: a copy
//! whose hash is the one already verified for its `seq` is the same event, byte for
//! byte (a re-sent record); it is skipped and counted. Any other out-of-order `seq`
//! fails.
//!
//! Two stages run side by side: one walks the stored events and checks `seq` and the
//! hash chain on their bytes; the other re-executes the commands and compares what
//! each event's hash covers (header and event bytes) with what it derives. A chain
//! that links from the zero hash over bytes equal to the derived ones is the chain
//! the engine's sealer makes, so nothing is hashed twice.

// No function over 70 lines (clippy.toml): split along the seams, or allow it with
// the reason beside it. `.ci/run` denies warnings, so this is a gate.
#![warn(clippy::too_many_lines)]

pub mod liabilities;
pub mod statement;

use std::time::Duration;

use tape_core::{Core, CoreConfig};
use tape_log::{Log, LogReader, Record};
use tape_schemas::{codec, Event, EventEnvelope, Hash32, SCHEMA_VERSION};
use tokio::sync::mpsc;

/// What a clean log proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub commands: u64,
    pub events: u64,
    pub checkpoints: u64,
    pub state_hash: Hash32,
    /// Identical copies of earlier events, skipped.
    pub copies: u64,
    /// Fences on the events log (one per failover).
    pub fences: u64,
    /// Records of deposed epochs after a fence, ignored.
    pub fenced: u64,
    /// Proof-of-liabilities rounds whose checkpoint, state hash and totals were
    /// checked, and of those, the ones whose root was rebuilt from the secret.
    pub liability_rounds: u64,
    pub roots_rebuilt: u64,
}

/// How far back (in `seq`) a copy of an earlier event can be checked.
const COPY_WINDOW: usize = 1 << 20;

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

/// Records read per batch from either log.
pub(crate) const READ_BATCH_RECORDS: usize = 16_384;

/// A stored event whose `seq` and chain link have been checked: where its bytes sit
/// in its batch's buffer.
#[derive(Clone, Copy)]
struct Checked {
    start: usize,
    /// `[start, head_end)` is the header the hash covers, `[event_start, end)` the event.
    head_end: usize,
    event_start: usize,
    end: usize,
    command_offset: u64,
    prev_hash: Hash32,
    event_tag: u32,
}

/// Checked events of one read, their bytes side by side in one buffer (so the stage
/// that compares frees nothing per event; buffers go back for reuse).
#[derive(Default)]
struct CheckedBatch {
    bytes: Vec<u8>,
    events: Vec<Checked>,
    /// Identical copies of earlier events skipped in this read.
    copies: u64,
    /// Fences, and deposed epochs' records, set aside in this read.
    fences: u64,
    fenced: u64,
}

impl CheckedBatch {
    fn head(&self, c: &Checked) -> &[u8] {
        &self.bytes[c.start..c.head_end]
    }
    fn event(&self, c: &Checked) -> &[u8] {
        &self.bytes[c.event_start..c.end]
    }
    fn record(&self, c: &Checked) -> &[u8] {
        &self.bytes[c.start..c.end]
    }
}

/// What the chain stage sends: checked events, or the first one that is not.
enum Chained {
    Events(CheckedBatch),
    Bad(Disagreement),
    Failed(tape_log::LogError),
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

/// Where the chain stands: the next seq expected, the last hash and command offset,
/// and the hashes of the last `COPY_WINDOW` events (the newest last), which tell a
/// deposed writer's copy from a break.
struct ChainState {
    next_seq: u64,
    last_hash: Hash32,
    last_offset: u64,
    recent: std::collections::VecDeque<Hash32>,
    fencing: tape_schemas::Fencing,
}

impl ChainState {
    fn new() -> Self {
        ChainState {
            next_seq: 1,
            last_hash: Hash32::default(),
            last_offset: 0,
            recent: Default::default(),
            fencing: tape_schemas::Fencing::new(),
        }
    }

    /// Checks one stored event and adds it to `out` (a copy is counted and set
    /// aside); `Err` is the disagreement to report.
    fn check(&mut self, record: &[u8], out: &mut CheckedBatch) -> Result<(), Chained> {
        let next_seq = self.next_seq;
        let bytes = match self.fencing.admit(record) {
            Ok(tape_schemas::Admit::Event { envelope, .. }) => envelope,
            Ok(tape_schemas::Admit::Fence(_)) => {
                out.fences += 1;
                return Ok(());
            }
            Ok(tape_schemas::Admit::Fenced { .. }) => {
                out.fenced += 1;
                return Ok(());
            }
            Err(e) => {
                return Err(Chained::Bad(disagreement(
                    next_seq,
                    self.last_offset,
                    "undecodable record",
                    format!("seq {next_seq}"),
                    e.to_string(),
                )))
            }
        };
        let bad = |what: &str, expected: String, offset: u64| {
            Chained::Bad(disagreement(
                next_seq,
                offset,
                what,
                expected,
                describe(bytes),
            ))
        };
        let p = EventEnvelope::parts(bytes).map_err(|e| {
            let expected = format!("seq {next_seq} ({e})");
            bad("undecodable event", expected, self.last_offset)
        })?;
        let back = next_seq.saturating_sub(p.seq) as usize;
        if p.seq < next_seq
            && back <= self.recent.len()
            && self.recent[self.recent.len() - back] == p.hash
            && p.chain_hash() == p.hash
        {
            out.copies += 1;
            return Ok(());
        }
        if p.seq != next_seq {
            let what = "seq out of order (a gap, a duplicate or a swap)";
            return Err(bad(what, format!("seq {next_seq}"), p.command_offset));
        }
        if p.prev_hash != self.last_hash || p.chain_hash() != p.hash {
            let expected = format!("seq {next_seq} linked to {}", self.last_hash);
            return Err(bad("hash chain broken", expected, p.command_offset));
        }
        let start = out.bytes.len();
        out.events.push(Checked {
            start,
            head_end: start + p.head.len(),
            event_start: start + bytes.len() - p.event.len(),
            end: start + bytes.len(),
            command_offset: p.command_offset,
            prev_hash: p.prev_hash,
            event_tag: p.event_tag,
        });
        self.last_hash = p.hash;
        if self.recent.len() == COPY_WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(p.hash);
        self.last_offset = p.command_offset;
        self.next_seq += 1;
        out.bytes.extend_from_slice(bytes);
        Ok(())
    }
}

/// Checks `seq` continuity from 1 and the hash chain from the zero hash over stored
/// bytes, and hands the events on in batches (taking emptied buffers back from
/// `reuse`).
async fn chain<R: LogReader>(
    mut reader: R,
    total: u64,
    tx: mpsc::Sender<Chained>,
    mut reuse: mpsc::Receiver<CheckedBatch>,
) {
    let mut state = ChainState::new();
    let mut read = 0u64;
    while read < total {
        let want = (total - read).min(READ_BATCH_RECORDS as u64) as usize;
        let batch = match reader.next_batch(want, Duration::from_secs(30)).await {
            Ok(b) if b.is_empty() => {
                let _ = tx
                    .send(Chained::Failed(tape_log::LogError::OffsetOutOfRange(read)))
                    .await;
                return;
            }
            Ok(b) => b,
            Err(e) => {
                let _ = tx.send(Chained::Failed(e)).await;
                return;
            }
        };
        read += batch.len() as u64;
        let mut out = reuse.try_recv().unwrap_or_default();
        out.bytes.clear();
        out.events.clear();
        out.copies = 0;
        out.fences = 0;
        out.fenced = 0;
        for Record { bytes, .. } in batch {
            if let Err(bad) = state.check(&bytes, &mut out) {
                let _ = tx.send(Chained::Events(out)).await;
                let _ = tx.send(bad).await;
                return;
            }
        }
        if tx.send(Chained::Events(out)).await.is_err() {
            return;
        }
    }
}

/// The stored events in order, as the chain stage passes them.
struct Stored {
    rx: mpsc::Receiver<Chained>,
    reuse: mpsc::Sender<CheckedBatch>,
    batch: CheckedBatch,
    pos: usize,
    bad: Option<Disagreement>,
    copies: u64,
    fences: u64,
    fenced: u64,
}

impl Stored {
    async fn fill(&mut self) -> Result<(), VerifyError> {
        while self.pos == self.batch.events.len() && self.bad.is_none() {
            match self.rx.recv().await {
                Some(Chained::Events(b)) => {
                    self.copies += b.copies;
                    self.fences += b.fences;
                    self.fenced += b.fenced;
                    let done = std::mem::replace(&mut self.batch, b);
                    // A full return channel: the buffer is simply dropped.
                    let _ = self.reuse.try_send(done);
                    self.pos = 0;
                }
                Some(Chained::Bad(d)) => self.bad = Some(d),
                Some(Chained::Failed(e)) => return Err(e.into()),
                None => break,
            }
        }
        Ok(())
    }

    async fn peek(&mut self) -> Result<Option<Checked>, VerifyError> {
        self.fill().await?;
        Ok(self.batch.events.get(self.pos).copied())
    }

    /// The next event; `Ok(None)` at the end of the log; the chain stage's finding
    /// when it is this event that broke the chain.
    async fn next(&mut self) -> Result<Option<Checked>, VerifyError> {
        self.fill().await?;
        match self.batch.events.get(self.pos).copied() {
            Some(c) => {
                self.pos += 1;
                Ok(Some(c))
            }
            None => match self.bad.take() {
                Some(d) => Err(d.into()),
                None => Ok(None),
            },
        }
    }
}

/// Encodes what the hash of a derived event covers (header and event) into `buf`
/// and compares it with the stored event's bytes.
#[allow(clippy::too_many_arguments)]
fn check(
    buf: &mut Vec<u8>,
    seq: u64,
    command_offset: u64,
    time_ms: u64,
    event: &Event,
    stored: &CheckedBatch,
    found: Option<Checked>,
    content_differs: &str,
) -> Result<(), Disagreement> {
    buf.clear();
    codec::write_bincode(&(SCHEMA_VERSION, seq, command_offset, time_ms), buf)
        .expect("headers always encode");
    let head_len = buf.len();
    codec::write_bincode(event, buf).expect("events always encode");
    let expected = |prev: Hash32| {
        let e = EventEnvelope::seal(seq, command_offset, time_ms, prev, event.clone());
        format!("seq {} (offset {}) {:?}", e.seq, e.command_offset, e.event)
    };
    let Some(found) = found else {
        return Err(disagreement(
            seq,
            command_offset,
            "the events log ends early",
            expected(Hash32::default()),
            "nothing".into(),
        ));
    };
    if stored.head(&found) == &buf[..head_len] && stored.event(&found) == &buf[head_len..] {
        return Ok(());
    }
    Err(disagreement(
        seq,
        command_offset,
        content_differs,
        expected(found.prev_hash),
        describe(stored.record(&found)),
    ))
}

/// Verifies an events log against its commands log from the start. `progress` is
/// called now and then with the number of commands done and the total.
pub async fn verify<C: Log, E: Log>(
    commands: &C,
    events: &E,
    core: CoreConfig,
    progress: impl FnMut(u64, u64),
) -> Result<Verified, VerifyError>
where
    E::Reader: 'static,
{
    verify_with(commands, events, core, None, progress).await
}

/// `verify`, and with the operator's proof-of-liabilities secret, every round's
/// tree rebuilt at its checkpoint: its root must be the one on the log.
pub async fn verify_with<C: Log, E: Log>(
    commands: &C,
    events: &E,
    core: CoreConfig,
    pol_secret: Option<Vec<u8>>,
    mut progress: impl FnMut(u64, u64),
) -> Result<Verified, VerifyError>
where
    E::Reader: 'static,
{
    let mut checks = liabilities::Checks::default();
    if let Some(secret) = pol_secret {
        let rounds = liabilities::rounds_on_log(events)
            .await?
            .into_iter()
            .map(|c| (c.checkpoint, (c.round, c.height)))
            .collect();
        checks.rebuild = Some(liabilities::Rebuild { secret, rounds });
    }
    let commands_total = commands.end_offset().await?;
    let events_total = events.end_offset().await?;
    let (tx, rx) = mpsc::channel(4);
    // Buffers on their way back: no more than are in flight on `tx`.
    let (reuse_tx, reuse_rx) = mpsc::channel(8);
    let checker = tokio::spawn(chain(events.reader(0).await?, events_total, tx, reuse_rx));
    let mut stored = Stored {
        rx,
        reuse: reuse_tx,
        batch: CheckedBatch::default(),
        pos: 0,
        bad: None,
        copies: 0,
        fences: 0,
        fenced: 0,
    };
    let result = reexecute(
        commands,
        commands_total,
        &mut stored,
        core,
        checks,
        &mut progress,
    )
    .await;
    drop(stored);
    let _ = checker.await;
    result
}

/// The re-execution stage's state: the core, the next seq it expects to produce,
/// the checkpoints matched, and a scratch buffer for encoding.
struct Reexec {
    core: Core,
    next_seq: u64,
    checkpoints: u64,
    produced: Vec<Event>,
    buf: Vec<u8>,
    liabilities: liabilities::Checks,
}

impl Reexec {
    /// Re-executes one command and compares its events (and a checkpoint after it,
    /// if the log has one) with the stored ones.
    async fn command(&mut self, stored: &mut Stored, command: Record) -> Result<(), VerifyError> {
        let offset = command.offset;
        self.produced.clear();
        // A malformed record's rejection is what the engine wrote too.
        let _ = self.core.apply_bytes(&command.bytes, &mut self.produced);
        let time_ms = self.core.time_ms();
        let produced = std::mem::take(&mut self.produced);
        for event in &produced {
            let what = "re-execution produces a different event";
            let seq = self.next_seq;
            self.expect(stored, offset, time_ms, event, what).await?;
            if let Event::LiabilitiesCommitted(c) = event {
                self.liabilities.commitment(c, seq, offset)?;
            }
        }
        self.produced = produced;
        // Only a checkpoint may follow a command's own events with the same
        // command offset.
        let checkpoint_tag = Event::checkpoint_tag();
        let checkpoint_follows = stored
            .peek()
            .await?
            .is_some_and(|c| c.command_offset == offset && c.event_tag == checkpoint_tag);
        if checkpoint_follows {
            self.checkpoint(stored, offset, time_ms).await?;
        }
        Ok(())
    }

    /// The checkpoint after the command at `offset`: its state hash and envelope,
    /// and the invariants at that point.
    async fn checkpoint(
        &mut self,
        stored: &mut Stored,
        offset: u64,
        time_ms: u64,
    ) -> Result<(), VerifyError> {
        let state_hash = Hash32(self.core.state_hash());
        let event = Event::Checkpoint {
            commands_applied: offset + 1,
            state_hash,
        };
        let what = "checkpoint state hash or envelope differs";
        let seq = self.next_seq;
        self.expect(stored, offset, time_ms, &event, what).await?;
        self.invariants(seq, offset, "invariant broken at checkpoint")?;
        self.liabilities
            .checkpoint(&self.core, offset + 1, seq, state_hash);
        self.checkpoints += 1;
        Ok(())
    }

    /// The next stored event must be `event` (its bytes and envelope); moves on.
    async fn expect(
        &mut self,
        stored: &mut Stored,
        offset: u64,
        time_ms: u64,
        event: &Event,
        what: &str,
    ) -> Result<(), VerifyError> {
        let found = stored.next().await?;
        let (seq, batch) = (self.next_seq, &stored.batch);
        check(
            &mut self.buf,
            seq,
            offset,
            time_ms,
            event,
            batch,
            found,
            what,
        )?;
        self.next_seq += 1;
        Ok(())
    }

    fn invariants(&self, seq: u64, offset: u64, what: &str) -> Result<(), VerifyError> {
        self.core.check_invariants().map_err(|v| {
            let expected = "all invariants hold".into();
            disagreement(seq, offset, what, expected, v.to_string()).into()
        })
    }
}

async fn reexecute<C: Log>(
    commands: &C,
    commands_total: u64,
    stored: &mut Stored,
    core: CoreConfig,
    liabilities: liabilities::Checks,
    progress: &mut impl FnMut(u64, u64),
) -> Result<Verified, VerifyError> {
    let mut reader = commands.reader(0).await?;
    let mut state = Reexec {
        core: Core::new(core),
        next_seq: 1,
        checkpoints: 0,
        produced: Vec::with_capacity(64),
        buf: Vec::with_capacity(512),
        liabilities,
    };
    let mut done = 0u64;
    while done < commands_total {
        let want = (commands_total - done).min(READ_BATCH_RECORDS as u64) as usize;
        let batch = reader.next_batch(want, Duration::from_secs(30)).await?;
        if batch.is_empty() {
            return Err(tape_log::LogError::OffsetOutOfRange(done).into());
        }
        done += batch.len() as u64;
        for command in batch {
            state.command(stored, command).await?;
        }
        progress(done, commands_total);
    }
    if let Some(extra) = stored.next().await? {
        return Err(disagreement(
            state.next_seq,
            commands_total,
            "an event no command produced",
            "the end of the log".into(),
            describe(stored.batch.record(&extra)),
        )
        .into());
    }
    state.invariants(
        state.next_seq,
        commands_total,
        "invariant broken at the end",
    )?;
    progress(commands_total, commands_total);
    Ok(Verified {
        commands: commands_total,
        events: state.next_seq - 1,
        checkpoints: state.checkpoints,
        state_hash: Hash32(state.core.state_hash()),
        copies: stored.copies,
        fences: stored.fences,
        fenced: stored.fenced,
        liability_rounds: state.liabilities.rounds,
        roots_rebuilt: state.liabilities.rebuilt,
    })
}
