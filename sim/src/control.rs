//! The control log under simulation, and each engine's reading of it: what
//! `tape_engine::failover` does on tokio's timers (heartbeats, silence, claims,
//! standing down when deposed), played here in simulator steps. The real
//! `Leadership` decides who won each epoch, and each engine's writer runs as a real
//! `Duty::Standby`, told through its real `LinkHandle`.
//!
//! What the seed varies: how many control records each engine reads per step (a
//! reader that lags, so a deposed leader may append before it learns it lost),
//! pauses of a whole engine process (SIGSTOP: no heartbeat, no reading, no step),
//! crashes, the broker refusing the control log's appends, and claims that land
//! some steps after they were made (a slow broker: a paused leader may wake and
//! heartbeat first, which makes the claim void).

use std::sync::atomic::Ordering;

use tape_engine::LinkHandle;
use tape_schemas::{Change, ControlRecord, Leadership};

/// Steps between a leader's heartbeats.
const HEARTBEAT_STEPS: u64 = 5;
/// Steps without a heartbeat after which a caught-up standby claims the next epoch
/// (three times as many until it has heard the epoch in force).
const SILENCE_STEPS: u64 = 30;

/// One engine's failover loop: its reading of the control log and its duties.
pub(crate) struct Reading {
    pub(crate) handle: LinkHandle,
    leadership: Leadership,
    /// Control records read.
    next: usize,
    /// The step at which the epoch in force last showed life.
    alive_at: u64,
    /// A heartbeat of the epoch in force has been read since it opened.
    heard: bool,
    claimed: Option<u64>,
    last_beat: Option<u64>,
}

/// What an engine's failover loop wants appended to the control log now.
pub(crate) enum Due {
    Nothing,
    /// A heartbeat: on its own task; lost (with a warning) when the broker refuses it.
    Heartbeat(ControlRecord),
    /// A claim: the loop ends with an error when the broker refuses it.
    Claim(ControlRecord),
}

impl Reading {
    /// Opens as `failover::run` does: everything already on the control log is read
    /// for who leads, without taking anything in it as news.
    pub(crate) fn open(handle: LinkHandle, log: &[ControlRecord], step: u64) -> Reading {
        let mut leadership = Leadership::from_start();
        for (offset, r) in log.iter().enumerate() {
            leadership.apply(offset as u64, r);
        }
        handle.highest.store(leadership.epoch, Ordering::Release);
        Reading {
            handle,
            leadership,
            next: log.len(),
            alive_at: step,
            heard: false,
            claimed: None,
            last_beat: None,
        }
    }

    /// The epoch this engine won.
    pub(crate) fn mine(&self) -> Option<u64> {
        *self.handle.won.borrow()
    }

    /// True when it leads the epoch in force and has fenced the events log.
    pub(crate) fn leads(&self) -> bool {
        self.mine() == Some(self.leadership.epoch) && self.handle.status.borrow().leading.is_some()
    }

    /// Reads up to `n` new control records.
    pub(crate) fn read(&mut self, log: &[ControlRecord], n: usize, step: u64, me: &str) {
        let upto = self.next.saturating_add(n).min(log.len());
        for (offset, record) in log.iter().enumerate().take(upto).skip(self.next) {
            match self.leadership.apply(offset as u64, record) {
                Change::Won { epoch, writer } => {
                    self.handle.highest.store(epoch, Ordering::Release);
                    self.alive_at = step;
                    self.heard = false;
                    self.claimed = None;
                    if writer == me && self.mine().is_none() {
                        let _ = self.handle.won.send(Some(epoch));
                    }
                }
                Change::Alive { .. } => {
                    self.alive_at = step;
                    self.heard = true;
                }
                Change::Void { epoch, writer } => {
                    if writer == me && self.claimed == Some(epoch) {
                        self.claimed = None;
                    }
                }
                Change::Nothing => {}
            }
        }
        self.next = upto;
    }

    /// `(its epoch, the later one)` once a later epoch than its own has won.
    pub(crate) fn deposed(&self) -> Option<(u64, u64)> {
        let mine = self.mine()?;
        (self.leadership.epoch > mine).then_some((mine, self.leadership.epoch))
    }

    /// The leader heartbeats every `HEARTBEAT_STEPS`; a standby that has read the
    /// whole control log and all its leader wrote claims after the silence.
    pub(crate) fn due(&mut self, log_len: usize, step: u64, me: &str) -> Due {
        if let Some(epoch) = self.mine() {
            if self.last_beat.is_some_and(|b| step < b + HEARTBEAT_STEPS) {
                return Due::Nothing;
            }
            self.last_beat = Some(step);
            return Due::Heartbeat(ControlRecord::Heartbeat {
                epoch,
                writer: me.to_string(),
                seq: self.handle.status.borrow().matched_seq,
                at_ms: 0,
            });
        }
        let silence = if self.heard {
            SILENCE_STEPS
        } else {
            3 * SILENCE_STEPS
        };
        let caught_up = self.handle.status.borrow().caught_up;
        if self.claimed.is_some()
            || self.next < log_len
            || !caught_up
            || step < self.alive_at + silence
        {
            return Due::Nothing;
        }
        let epoch = self.leadership.epoch + 1;
        self.claimed = Some(epoch);
        Due::Claim(ControlRecord::ClaimSilent {
            epoch,
            writer: me.to_string(),
            heard: self.leadership.last_alive().unwrap_or(0),
        })
    }
}

/// Who won each epoch, as the whole control log says, and how many claims after
/// silence it made void.
pub(crate) fn decided(log: &[ControlRecord]) -> (std::collections::BTreeMap<u64, String>, u32) {
    let mut leadership = Leadership::from_start();
    let mut winners = std::collections::BTreeMap::new();
    let mut void = 0;
    for (offset, r) in log.iter().enumerate() {
        match leadership.apply(offset as u64, r) {
            Change::Won { epoch, writer } => {
                winners.insert(epoch, writer);
            }
            Change::Void { .. } => void += 1,
            Change::Alive { .. } | Change::Nothing => {}
        }
    }
    (winners, void)
}
