//! A hot standby and its takeover, over a control log (Kafka: `tape.control`).
//!
//! Every engine of a shard starts as a standby: it recovers, then follows the
//! commands log and the leader's events, deriving each event itself and comparing
//! it byte for byte with the leader's (its core stays at the leader's seq). The
//! leader appends a heartbeat to the control log every `heartbeat`. A standby that
//! has read everything the leader wrote and hears no heartbeat for `silence` claims
//! the next epoch (three silences while it has not yet heard the epoch in force:
//! it has just started, or a new leader has just won), naming the last heartbeat
//! it read; the first claim of that epoch in the control log wins
//! (`tape_schemas::Leadership`), unless the leader heartbeat after the one it
//! named: then its view was stale (its reader lagged, or the broker was slow), the
//! claim is void, and it follows on. The winner appends its fence to the events log,
//! reads and checks what the old leader wrote before it, and appends from there. A
//! leader that reads a later epoch's win stops; if it appends first, its records
//! land after the fence, where every reader ignores them, and the append's
//! landing place tells it (`EngineError::Deposed`).
//!
//! A shadow standby (`shadow`) never claims on silence: only an operator's
//! `Promote`, and only once it has matched `min_matched` commands with no
//! difference. Any difference refuses the promotion with the first differing seq,
//! the leader's event and its own.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tape_log::{Log, LogReader};
use tape_schemas::{codec, Change, ControlRecord, Leadership};
use tokio::sync::watch;

use crate::sequencer::{Engine, EngineError, RunSummary};
use crate::standby::{link, Duty, LinkHandle};

#[derive(Clone, Debug)]
pub struct FailoverOptions {
    /// This engine's name on the control log.
    pub writer: String,
    /// How often the leader heartbeats.
    pub heartbeat: Duration,
    /// How long a standby hears no heartbeat before it claims.
    pub silence: Duration,
    /// Claim only when an operator promotes it.
    pub shadow: bool,
    /// How often a standby reports its state.
    pub status_every: Duration,
}

impl FailoverOptions {
    pub fn new(writer: &str) -> Self {
        FailoverOptions {
            writer: writer.to_string(),
            heartbeat: Duration::from_millis(50),
            silence: Duration::from_millis(300),
            shadow: false,
            status_every: Duration::from_secs(1),
        }
    }
}

/// Control records read at the start: the tail of the log, back to a heartbeat.
const CONTROL_WINDOW: u64 = 4_096;

/// How one run under the control log ended.
#[derive(Debug)]
pub enum Ended {
    /// Told to stop.
    Stopped(RunSummary),
    /// Another engine won a later epoch: this one stood down (it may follow again).
    Deposed { epoch: u64, by: u64 },
}

/// What the control log says, as this engine has read it.
struct View {
    leadership: Leadership,
    /// When the epoch in force last showed life (a heartbeat or its win).
    alive_at: Instant,
    /// A heartbeat of the epoch in force has been read since this engine opened or
    /// the epoch changed. Until then it waits three silences: a leader that has
    /// just won, or a reader that has just started, is not yet a silent leader.
    heard: bool,
    /// The epoch this engine claimed and has not yet seen decided.
    claimed: Option<u64>,
    /// An operator's request that this engine take over: the commands to match.
    promote: Option<u64>,
    /// The first difference from the leader this engine found.
    diverged: Option<String>,
}

/// Runs `engine` under the control log until `shutdown`, or until it is deposed.
pub async fn run<C: Log, E: Log, K: Log + 'static>(
    engine: &Engine<C, E>,
    control: &std::sync::Arc<K>,
    options: &FailoverOptions,
    shutdown: watch::Receiver<bool>,
) -> Result<Ended, EngineError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let (link, handle) = link(&options.writer, stop_rx.clone());
    let following = engine.run_as(Duty::Standby(link), stop_rx);
    tokio::pin!(following);
    let mut ctl = Control::open(control, options, handle).await?;
    let mut engine_done: Option<Result<RunSummary, EngineError>> = None;
    let mut shutdown = shutdown;
    loop {
        if *shutdown.borrow() {
            let _ = stop_tx.send(true);
        }
        if engine_done.is_none() {
            tokio::select! {
                biased;
                r = &mut following => engine_done = Some(r),
                r = ctl.step() => r?,
                _ = shutdown.changed() => {}
            }
        } else {
            tokio::select! {
                r = ctl.step() => r?,
                _ = shutdown.changed() => {}
            }
        }
        if let Some(deposed) = ctl.deposed() {
            let _ = stop_tx.send(true);
            return Ok(deposed);
        }
        match engine_done.take() {
            None => {}
            Some(Ok(summary)) => return Ok(Ended::Stopped(summary)),
            Some(Err(EngineError::StoppedFollowing)) => {
                return Ok(Ended::Stopped(RunSummary::default()))
            }
            Some(Err(EngineError::Deposed { epoch, by })) => {
                return Ok(Ended::Deposed { epoch, by })
            }
            Some(Err(e @ EngineError::Diverged { .. })) if options.shadow => {
                // A shadow keeps answering: it refuses every promotion with this.
                tracing::error!(error = %e, "shadow standby: the leader's events differ from this build's");
                ctl.view.diverged = Some(e.to_string());
                ctl.status().await?;
                return shadow_refusing(ctl, shutdown).await;
            }
            Some(Err(e)) => return Err(e),
        }
    }
}

/// A shadow standby that found a difference: it answers the control log (refusing
/// every promotion) until shutdown.
async fn shadow_refusing<K: Log + 'static>(
    mut ctl: Control<'_, K>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<Ended, EngineError> {
    while !*shutdown.borrow() {
        tokio::select! {
            r = ctl.step() => r?,
            _ = shutdown.changed() => {}
        }
    }
    Ok(Ended::Stopped(RunSummary::default()))
}

/// Stops the heartbeat task when dropped.
struct Beating(watch::Sender<bool>);

impl Drop for Beating {
    fn drop(&mut self) {
        let _ = self.0.send(true);
    }
}

/// The control log's side of a run.
struct Control<'a, K: Log> {
    log: &'a std::sync::Arc<K>,
    reader: K::Reader,
    /// The leader's heartbeats, on a task of their own: a busy engine on the same
    /// task must not silence them.
    beating: Option<Beating>,
    options: &'a FailoverOptions,
    handle: LinkHandle,
    view: View,
    /// Records below this offset were read when it opened.
    skip_below: u64,
    /// The last read filled its batch: more may be waiting.
    backlog: bool,
    /// The reader has delivered a record since it opened (or the log was empty):
    /// until then, silence is the reader's, not the leader's.
    live: bool,
    last_status: Instant,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl<'a, K: Log + 'static> Control<'a, K> {
    /// Reads the control log's tail (back to a heartbeat) before anything else.
    async fn open(
        log: &'a std::sync::Arc<K>,
        options: &'a FailoverOptions,
        handle: LinkHandle,
    ) -> Result<Control<'a, K>, EngineError> {
        let end = log.end_offset().await?;
        let mut from = end.saturating_sub(CONTROL_WINDOW);
        loop {
            let mut leadership = if from == 0 {
                Leadership::from_start()
            } else {
                Leadership::from_window()
            };
            let records =
                tape_log::read_exactly(log, from, end - from, Duration::from_secs(30)).await?;
            for r in &records {
                if let Ok(record) = codec::from_bincode::<ControlRecord>(&r.bytes) {
                    leadership.apply(r.offset, &record);
                }
            }
            if !leadership.anchored() {
                from = 0; // no heartbeat in the window: read it all
                continue;
            }
            handle.highest.store(leadership.epoch, Ordering::Release);
            tracing::info!(
                epoch = leadership.epoch,
                leader = leadership.leader.as_deref().unwrap_or("none"),
                "control log read; following"
            );
            let now = Instant::now();
            // From the last record read, not past it: a reader that has seen a
            // record is sure of its position, and the next heartbeat comes at once
            // (a Kafka reader placed past the end first waits to be sure).
            return Ok(Control {
                log,
                reader: log.reader(end.saturating_sub(1)).await?,
                beating: None,
                skip_below: end,
                backlog: false,
                live: end == 0,
                options,
                handle,
                view: View {
                    leadership,
                    alive_at: now,
                    heard: false,
                    claimed: None,
                    promote: None,
                    diverged: None,
                },
                last_status: now - options.status_every,
            });
        }
    }

    /// The epoch this engine leads, once won.
    fn mine(&self) -> Option<u64> {
        *self.handle.won.borrow()
    }

    /// `Some` once a later epoch than the one this engine leads has won.
    fn deposed(&self) -> Option<Ended> {
        let mine = self.mine()?;
        (self.view.leadership.epoch > mine).then_some(Ended::Deposed {
            epoch: mine,
            by: self.view.leadership.epoch,
        })
    }

    async fn append(&self, record: &ControlRecord) -> Result<(), EngineError> {
        let bytes = codec::to_bincode(record).map_err(|e| EngineError::BadEvent {
            offset: 0,
            what: e.to_string(),
        })?;
        self.log.append(vec![bytes]).await?;
        Ok(())
    }

    /// Reads what is new on the control log (waiting a little), then does what is due.
    async fn step(&mut self) -> Result<(), EngineError> {
        let wait = self.options.heartbeat / 5;
        let batch = self.reader.next_batch(256, wait).await?;
        self.backlog = batch.len() == 256;
        if !self.live && !batch.is_empty() {
            // Silence counts from when the reader is known to deliver.
            self.live = true;
            self.view.alive_at = Instant::now();
        }
        let skip = self.skip_below;
        for r in batch.into_iter().filter(|r| r.offset >= skip) {
            match codec::from_bincode::<ControlRecord>(&r.bytes) {
                Ok(record) => self.read(r.offset, record),
                Err(e) => {
                    tracing::warn!(offset = r.offset, error = %e, "an undecodable control record; ignored")
                }
            }
        }
        if self.mine().is_some() {
            self.beat();
            Ok(())
        } else {
            self.stand_by().await
        }
    }

    fn read(&mut self, offset: u64, record: ControlRecord) {
        if let ControlRecord::Promote {
            writer,
            min_matched,
        } = &record
        {
            if *writer == self.options.writer {
                self.view.promote = Some(*min_matched);
            }
        }
        match self.view.leadership.apply(offset, &record) {
            Change::Won { epoch, writer } => {
                self.handle.highest.store(epoch, Ordering::Release);
                self.view.alive_at = Instant::now();
                self.view.heard = false;
                self.view.claimed = None;
                if writer == self.options.writer && self.mine().is_none() {
                    tracing::info!(epoch, "won the claim: taking over");
                    let _ = self.handle.won.send(Some(epoch));
                } else {
                    tracing::info!(epoch, leader = %writer, "a new leader");
                }
            }
            Change::Alive { .. } => {
                self.view.alive_at = Instant::now();
                self.view.heard = true;
            }
            Change::Void { epoch, writer } => {
                if writer == self.options.writer && self.view.claimed == Some(epoch) {
                    // What it had read was stale: the leader heartbeat after it.
                    tracing::info!(
                        epoch,
                        "my claim after silence is void: the leader heartbeat after what I had read; following again"
                    );
                    self.view.claimed = None;
                }
            }
            Change::Nothing => {}
        }
    }

    /// The leader's duty: a heartbeat every `heartbeat`, from a task of its own,
    /// started once it has won (it stops when this run ends).
    fn beat(&mut self) {
        if self.beating.is_some() {
            return;
        }
        let epoch = self.mine().expect("leading");
        let (stop, stopped) = watch::channel(false);
        let log = self.log.clone();
        let status = self.handle.status.clone();
        let (writer, every) = (self.options.writer.clone(), self.options.heartbeat);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            while !*stopped.borrow() {
                tick.tick().await;
                let beat = ControlRecord::Heartbeat {
                    epoch,
                    writer: writer.clone(),
                    seq: status.borrow().matched_seq,
                    at_ms: now_ms(),
                };
                let Ok(bytes) = codec::to_bincode(&beat) else {
                    break;
                };
                if let Err(e) = log.append(vec![bytes]).await {
                    tracing::warn!(error = %e, "a heartbeat failed; the next one will try again");
                }
            }
        });
        self.beating = Some(Beating(stop));
    }

    /// A standby's duties: claim after silence (or when promoted), report its state.
    async fn stand_by(&mut self) -> Result<(), EngineError> {
        if self.last_status.elapsed() >= self.options.status_every {
            self.status().await?;
        }
        if self.view.claimed.is_some() {
            return Ok(());
        }
        if let Some(min) = self.view.promote.take() {
            return self.promoted(min).await;
        }
        let status = self.handle.status.borrow().clone();
        // Silence is only silence once everything on the control log is read.
        let silence = if self.view.heard {
            self.options.silence
        } else {
            self.options.silence * 3
        };
        let silent = self.live && !self.backlog && self.view.alive_at.elapsed() >= silence;
        if self.options.shadow || !silent || !status.caught_up || self.view.diverged.is_some() {
            return Ok(());
        }
        let heard = self.view.leadership.last_alive().unwrap_or(0);
        tracing::warn!(
            epoch = self.view.leadership.epoch,
            silent_ms = self.view.alive_at.elapsed().as_millis() as u64,
            heard,
            "no heartbeat from the leader: claiming the next epoch"
        );
        self.claim(Some(heard)).await
    }

    /// Claims the next epoch and waits to see it decided: after silence, naming the
    /// last sign of life it read (`heard`); unconditionally when promoted (`None`).
    async fn claim(&mut self, heard: Option<u64>) -> Result<(), EngineError> {
        let epoch = self.view.leadership.epoch + 1;
        let writer = self.options.writer.clone();
        self.view.claimed = Some(epoch);
        self.append(&match heard {
            Some(heard) => ControlRecord::ClaimSilent {
                epoch,
                writer,
                heard,
            },
            None => ControlRecord::Claim { epoch, writer },
        })
        .await
    }

    /// An operator asked this engine to take over.
    async fn promoted(&mut self, min_matched: u64) -> Result<(), EngineError> {
        let matched = self.handle.status.borrow().matched_commands;
        let why = match &self.view.diverged {
            Some(d) => Some(format!("it differs from the leader: {d}")),
            None if matched < min_matched => Some(format!(
                "it has matched {matched} commands, fewer than the {min_matched} asked for"
            )),
            None => None,
        };
        match why {
            Some(why) => {
                tracing::warn!(%why, "refusing the promotion");
                self.append(&ControlRecord::Refused {
                    writer: self.options.writer.clone(),
                    why,
                })
                .await
            }
            None => {
                tracing::info!(matched, "promoted by an operator: claiming the next epoch");
                self.claim(None).await
            }
        }
    }

    async fn status(&mut self) -> Result<(), EngineError> {
        self.last_status = Instant::now();
        let s = self.handle.status.borrow().clone();
        self.append(&ControlRecord::Standby {
            writer: self.options.writer.clone(),
            shadow: self.options.shadow,
            matched_commands: s.matched_commands,
            matched_seq: s.matched_seq,
            diverged: self.view.diverged.clone(),
            at_ms: now_ms(),
        })
        .await
    }
}
