//! The writing stage: it compares sealed events with those already on the events log
//! (recovery, and a standby following its leader) and appends the rest under its
//! epoch, checking that nothing but deposed writers' records landed among its own.

use std::collections::VecDeque;
use std::time::Duration;

use tape_log::{Log, LogError, LogReader, Record};
use tape_schemas::{codec, fence_record, set_epoch, Admit, EventEnvelope, Fence, Fencing};

use crate::sequencer::EngineError;
use crate::snapshots::{Saved, SnapshotStore};
use crate::standby::{Duty, FollowStatus};
use crate::stats::EngineStats;

/// One batch's sealed records, on their way to the log.
pub(crate) struct Step {
    pub(crate) first_seq: u64,
    /// Each a frame (epoch 0 until the writer sets its own) and an envelope.
    pub(crate) records: Vec<Vec<u8>>,
    pub(crate) snapshot: Option<Saved>,
    /// The commands the batch applied.
    pub(crate) commands: u64,
}

/// The `seq` of an event record's envelope.
pub(crate) fn seq_of(offset: u64, envelope: &[u8]) -> Result<u64, EngineError> {
    EventEnvelope::peek(envelope)
        .map(|(seq, _, _)| seq)
        .map_err(|e| EngineError::BadEvent {
            offset,
            what: e.to_string(),
        })
}

fn bad(offset: u64, e: impl std::fmt::Display) -> EngineError {
    EngineError::BadEvent {
        offset,
        what: e.to_string(),
    }
}

/// The events already on the log, read forward under the fencing rule: each `seq`
/// once, records of deposed epochs and fences set aside.
pub(crate) struct Stored<R> {
    reader: R,
    fencing: Fencing,
    ahead: VecDeque<Record>,
    /// The offset after the last record taken.
    pub(crate) next_offset: u64,
}

/// What the stored log holds at the reader's position.
pub(crate) enum Next {
    /// The envelope of the event with the wanted seq.
    Event(Vec<u8>),
    /// Nothing yet.
    Nothing,
    /// The record at this offset, this engine's own fence: all before it is read.
    OwnFence,
}

impl<R: LogReader> Stored<R> {
    pub(crate) fn new(reader: R, from_offset: u64, epoch: u64) -> Self {
        Stored {
            reader,
            fencing: Fencing::resume(epoch),
            ahead: VecDeque::new(),
            next_offset: from_offset,
        }
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.fencing.epoch()
    }

    /// True when the log holds an event at or above `seq` not yet taken (or a record
    /// that is this engine's own fence), waiting up to `wait` for records. Records
    /// before it that a reader skips (fences, deposed epochs', copies) are taken on
    /// the way, as `next` would.
    pub(crate) async fn has_pending(
        &mut self,
        seq: u64,
        own_fence: Option<u64>,
        wait: Duration,
    ) -> Result<bool, EngineError> {
        loop {
            if self.ahead.is_empty() {
                let batch = self.reader.next_batch(4_096, wait).await?;
                if batch.is_empty() {
                    return Ok(false);
                }
                self.ahead.extend(batch);
            }
            let r = self.ahead.front().expect("not empty");
            if own_fence == Some(r.offset) {
                return Ok(true);
            }
            let mut probe = self.fencing;
            let keep = match probe.admit(&r.bytes).map_err(|e| bad(r.offset, e))? {
                Admit::Event { envelope, .. } => seq_of(r.offset, envelope)? >= seq,
                _ => false,
            };
            if keep {
                return Ok(true);
            }
            let r = self.ahead.pop_front().expect("not empty");
            self.next_offset = r.offset + 1;
            self.fencing.admit(&r.bytes).map_err(|e| bad(r.offset, e))?;
        }
    }

    /// The stored event with `seq` (skipping copies of lower ones and deposed
    /// epochs' records), waiting up to `wait` for records; `OwnFence` when the
    /// record at `own_fence` comes first.
    pub(crate) async fn next(
        &mut self,
        seq: u64,
        wait: Duration,
        own_fence: Option<u64>,
    ) -> Result<Next, EngineError> {
        loop {
            if self.ahead.is_empty() {
                let batch = self.reader.next_batch(4_096, wait).await?;
                if batch.is_empty() {
                    return Ok(Next::Nothing);
                }
                self.ahead.extend(batch);
            }
            let r = self.ahead.pop_front().expect("not empty");
            self.next_offset = r.offset + 1;
            if own_fence == Some(r.offset) {
                return Ok(Next::OwnFence);
            }
            match self.fencing.admit(&r.bytes).map_err(|e| bad(r.offset, e))? {
                Admit::Event { envelope, .. } => {
                    if seq_of(r.offset, envelope)? >= seq {
                        return Ok(Next::Event(envelope.to_vec()));
                    }
                }
                Admit::Fence(f) => {
                    tracing::info!(epoch = f.epoch, writer = %f.writer, "a fence on the events log")
                }
                Admit::Fenced { epoch } => {
                    tracing::debug!(
                        offset = r.offset,
                        epoch,
                        "ignoring a deposed epoch's record"
                    )
                }
            }
        }
    }
}

/// What a writer did, once its sealer hung up.
pub(crate) struct Written {
    pub(crate) matched: u64,
    pub(crate) appended: u64,
    /// It appended under an epoch (it was the only writer, or it took over).
    pub(crate) led: bool,
    /// The offset of the last event it matched or appended, and the epoch in force
    /// there: where a reader resumes for a snapshot taken now.
    pub(crate) last_event_at: (u64, u64),
}

/// The writer's state.
pub(crate) struct Writer<'a, E: Log> {
    pub(crate) events: &'a E,
    pub(crate) snapshots: &'a SnapshotStore,
    pub(crate) stats: &'a EngineStats,
    pub(crate) duty: Duty,
    /// The epoch it appends under: `None` while it follows a leader.
    pub(crate) epoch: Option<u64>,
    /// What is on the log, while there is some to compare.
    pub(crate) stored: Option<Stored<E::Reader>>,
    /// Compare up to this seq (recovery: the last on the log at the start; a
    /// standby: all, until it leads).
    pub(crate) compare_until: u64,
    /// Where the next append must land.
    pub(crate) next_offset: u64,
    /// The offset of this engine's own fence, once appended.
    own_fence: Option<u64>,
    next_seq: Option<u64>,
    /// The seq of the next event it will derive (what it compares next).
    expect_seq: u64,
    /// The offset after the last event it matched or appended, and the epoch in
    /// force there: where a reader resumes for what it has done.
    position: (u64, u64),
    pub(crate) matched: u64,
    pub(crate) appended: u64,
    matched_commands: u64,
}

/// How long a standby's wait for the leader's next event lasts before it looks at
/// its duties again.
const FOLLOW_POLL: Duration = Duration::from_millis(10);

impl<'a, E: Log> Writer<'a, E> {
    #[allow(clippy::too_many_arguments)] // the run's parts, named once
    pub(crate) fn new(
        events: &'a E,
        snapshots: &'a SnapshotStore,
        stats: &'a EngineStats,
        duty: Duty,
        epoch: Option<u64>,
        stored: Option<Stored<E::Reader>>,
        compare_until: u64,
        next_offset: u64,
        expect_seq: u64,
        position: (u64, u64),
    ) -> Self {
        Writer {
            events,
            snapshots,
            stats,
            duty,
            epoch,
            stored,
            compare_until,
            next_offset,
            own_fence: None,
            next_seq: None,
            expect_seq,
            position,
            matched: 0,
            appended: 0,
            matched_commands: 0,
        }
    }

    /// Writes steps until the sealer hangs up: compares, appends, keeps snapshots.
    pub(crate) async fn run(
        mut self,
        mut steps: tokio::sync::mpsc::Receiver<Step>,
    ) -> Result<Written, EngineError> {
        loop {
            // A standby with nothing to compare still looks at the log and its
            // duties: it is caught up (or not), and it may have won an epoch.
            // (It waits on the log, not on a timer: the simulation has no clock.)
            let first = if self.epoch.is_none() {
                match steps.try_recv() {
                    Ok(step) => Some(step),
                    // The leader has written more than it has derived: its next
                    // step is coming.
                    Err(tokio::sync::mpsc::error::TryRecvError::Empty)
                        if self.idle(FOLLOW_POLL).await? =>
                    {
                        steps.recv().await
                    }
                    Err(tokio::sync::mpsc::error::TryRecvError::Empty) => continue,
                    Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => None,
                }
            } else {
                steps.recv().await
            };
            let Some(first) = first else { break };
            // A snapshot in this group resumes from where the group began: at or
            // before its last event, with the epoch in force there.
            let resume = self.position;
            let mut group = vec![first];
            while let Ok(more) = steps.try_recv() {
                group.push(more);
            }
            let mut snapshot = None;
            let mut first_seq = None;
            let mut records = Vec::new();
            for mut step in group {
                self.expect_seq = step.first_seq + step.records.len() as u64;
                self.compare(&mut step).await?;
                if !step.records.is_empty() {
                    // Each event appended is the last one's seq + 1, across groups.
                    assert!(
                        self.next_seq.is_none_or(|n| n == step.first_seq),
                        "sealed seq {} follows {:?}",
                        step.first_seq,
                        self.next_seq
                    );
                    first_seq.get_or_insert(step.first_seq);
                    self.next_seq = Some(step.first_seq + step.records.len() as u64);
                    records.extend(step.records);
                }
                snapshot = step.snapshot.or(snapshot);
            }
            if let Some(first_seq) = first_seq {
                self.append(first_seq, records).await?;
            }
            if let Some(s) = snapshot {
                self.keep(s, resume)?;
            }
        }
        Ok(Written {
            matched: self.matched,
            appended: self.appended,
            led: self.epoch.is_some(),
            last_event_at: (self.position.0.saturating_sub(1), self.position.1),
        })
    }

    /// A following standby with no step to compare: is there more of the leader's
    /// to read (returned), and has it won an epoch?
    async fn idle(&mut self, wait: Duration) -> Result<bool, EngineError> {
        let Some(stored) = self.stored.as_mut() else {
            return Ok(false);
        };
        let pending = stored
            .has_pending(self.expect_seq, self.own_fence, wait)
            .await?;
        let pending = if pending {
            self.duty.report(|s| s.caught_up = false);
            true
        } else {
            !self.read_all().await?
        };
        if !pending {
            if let Some(epoch) = self.duty.promoted()? {
                self.fence(epoch, self.expect_seq - 1).await?;
            }
        }
        Ok(pending)
    }

    /// Nothing came from the leader within a wait; has this standby read all it
    /// wrote? On Kafka a quiet wait is no proof, so before it says it is caught up
    /// (and may claim), it checks the log's end against what it has read. Reported.
    async fn read_all(&mut self) -> Result<bool, EngineError> {
        let caught_up = self.duty.caught_up() || {
            let end = self.events.end_at_least().await?;
            self.stored.as_ref().is_none_or(|s| s.next_offset >= end)
        };
        self.duty.report(|s| s.caught_up = caught_up);
        Ok(caught_up)
    }

    fn keep(&self, mut s: Saved, (events_at, epoch): (u64, u64)) -> Result<(), EngineError> {
        s.events_at = events_at;
        s.epoch = epoch;
        // Large and fsynced: keep it off the async workers.
        if crate::sequencer::on_threads() {
            tokio::task::block_in_place(|| self.snapshots.write(&s))?;
        } else {
            self.snapshots.write(&s)?;
        }
        self.stats.snapshot();
        Ok(())
    }

    /// Recovery and following: drops the step's events already on the log, each
    /// checked byte for byte; leaves those to append.
    async fn compare(&mut self, step: &mut Step) -> Result<(), EngineError> {
        let mut matched = 0;
        while matched < step.records.len() {
            let seq = step.first_seq + matched as u64;
            if self.stored.is_none() || seq > self.compare_until {
                break;
            }
            let Some(found) = self.stored_event(seq).await? else {
                // It leads now: what remains is its to append.
                break;
            };
            let derived = &step.records[matched][tape_schemas::FRAME_BYTES..];
            if found != derived {
                let show = |b: &[u8]| match codec::from_bincode::<EventEnvelope>(b) {
                    Ok(e) => format!("{:?}", e.event),
                    Err(e) => format!("undecodable ({e})"),
                };
                return Err(EngineError::Diverged {
                    seq,
                    expected: show(derived),
                    found: show(&found),
                });
            }
            matched += 1;
            if let Some(st) = &self.stored {
                self.position = (st.next_offset, st.epoch());
            }
            self.stats.durable(seq);
        }
        self.matched += matched as u64;
        step.records.drain(..matched);
        step.first_seq += matched as u64;
        if step.records.is_empty() {
            self.matched_commands += step.commands;
            self.duty.report(|s: &mut FollowStatus| {
                s.matched_commands = self.matched_commands;
                s.matched_seq = step.first_seq - 1;
            });
        }
        if self.stored.is_some() && step.first_seq > self.compare_until {
            self.stored = None;
            tracing::info!(
                seq = self.compare_until,
                "caught up with the events log; appending from here"
            );
        }
        Ok(())
    }

    /// The stored event `seq`; a standby waits for its leader to write it, and
    /// takes over when its duty says so (then `None` once all before its fence is
    /// read).
    async fn stored_event(&mut self, seq: u64) -> Result<Option<Vec<u8>>, EngineError> {
        let following = self.epoch.is_none();
        let wait = if following {
            FOLLOW_POLL
        } else {
            Duration::from_secs(5)
        };
        loop {
            let stored = self.stored.as_mut().expect("comparing");
            match stored.next(seq, wait, self.own_fence).await? {
                Next::Event(bytes) => {
                    self.duty.report(|s| s.caught_up = false);
                    return Ok(Some(bytes));
                }
                Next::OwnFence => {
                    // A later epoch's fence before this engine's own: it won its
                    // epoch, then another won and fenced first (it was paused, or
                    // slow). Its own fence is a deposed epoch's; it must not lead.
                    // `OwnFence` needs `own_fence`, which `fence` sets with the epoch.
                    let epoch = self.epoch.expect("fenced");
                    let in_force = stored.epoch();
                    if in_force > epoch {
                        return Err(EngineError::Deposed {
                            epoch,
                            by: in_force,
                        });
                    }
                    self.compare_until = seq - 1;
                    self.stored = None;
                    tracing::info!(seq, "read all the old leader wrote; leading from here");
                    return Ok(None);
                }
                Next::Nothing if self.own_fence.is_some() => {} // the fence is on its way
                Next::Nothing if following => {
                    if self.read_all().await? {
                        if let Some(epoch) = self.duty.promoted()? {
                            self.fence(epoch, seq - 1).await?;
                        }
                    }
                }
                Next::Nothing => return Err(EngineError::Log(LogError::OffsetOutOfRange(seq - 1))),
            }
        }
    }

    /// Takes over: appends this epoch's fence. Everything before it on the log is
    /// the old leader's, read and compared next; everything after it of an older
    /// epoch is ignored by every reader.
    async fn fence(&mut self, epoch: u64, derived_seq: u64) -> Result<(), EngineError> {
        let fence = Fence {
            epoch,
            writer: self.duty.writer().to_string(),
            derived_seq,
        };
        let offsets = self.events.append(vec![fence_record(&fence)]).await?;
        let at = offsets[0];
        tracing::info!(epoch, offset = at, "fenced the events log");
        self.own_fence = Some(at);
        self.epoch = Some(epoch);
        self.next_offset = at + 1;
        self.duty.report(|s| s.leading = Some(epoch));
        self.duty.fenced();
        Ok(())
    }

    /// Appends records under this engine's epoch and checks where they landed. Under
    /// an epoch above 0, at most `APPEND_RECORDS_MAX` at a time: a deposed engine
    /// then writes at most that many after the fence before it notices.
    async fn append(
        &mut self,
        first_seq: u64,
        mut records: Vec<Vec<u8>>,
    ) -> Result<(), EngineError> {
        let epoch = self.epoch.expect("only a leader appends");
        for r in &mut records {
            set_epoch(r, epoch);
        }
        let chunk = if epoch == 0 {
            records.len().max(1)
        } else {
            tape_schemas::APPEND_RECORDS_MAX
        };
        let mut seq = first_seq;
        let mut rest = records.into_iter().peekable();
        while rest.peek().is_some() {
            let part: Vec<Vec<u8>> = rest.by_ref().take(chunk).collect();
            if self.duty.deposed() {
                return Err(EngineError::Deposed {
                    epoch,
                    by: self.duty.highest_epoch(),
                });
            }
            self.appended += part.len() as u64;
            let offsets = self.events.append(part).await?;
            for (i, offset) in offsets.iter().enumerate() {
                if *offset != self.next_offset {
                    self.check_gap(epoch, seq + i as u64, *offset).await?;
                }
                self.next_offset = offset + 1;
            }
            self.position = (self.next_offset, epoch);
            seq += offsets.len() as u64;
            self.stats.durable(seq - 1);
            self.duty.report(|s| s.matched_seq = seq - 1);
        }
        Ok(())
    }

    /// Records landed between where this engine expected its append and where it
    /// went. Those of deposed epochs are harmless (every reader ignores them); a
    /// fence of a later epoch means this engine is deposed; anything else is another
    /// writer of its own epoch, which must never happen.
    async fn check_gap(&mut self, epoch: u64, seq: u64, offset: u64) -> Result<(), EngineError> {
        let another = EngineError::AnotherWriter {
            seq,
            offset,
            expected_offset: self.next_offset,
        };
        if offset < self.next_offset || epoch == 0 {
            return Err(another);
        }
        let gap = tape_log::read_exactly(
            self.events,
            self.next_offset,
            offset - self.next_offset,
            Duration::from_secs(10),
        )
        .await?;
        for r in gap {
            match tape_schemas::EventRecord::parse(&r.bytes).map_err(|e| bad(r.offset, e))? {
                tape_schemas::EventRecord::Fence(f) if f.epoch > epoch => {
                    return Err(EngineError::Deposed { epoch, by: f.epoch })
                }
                tape_schemas::EventRecord::Fence(f) if f.epoch < epoch => {}
                tape_schemas::EventRecord::Event { epoch: e, .. } if e < epoch => {}
                _ => return Err(another),
            }
        }
        tracing::warn!(
            from = self.next_offset,
            to = offset,
            "a deposed engine's records landed among ours; every reader ignores them"
        );
        Ok(())
    }
}
