//! The simulated machine: the actors (producers, engines, the projector), the
//! faults injected between their steps, and the run to a settled state.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tape_core::CoreConfig;
use tape_engine::{Duty, Engine, EngineError, EngineOptions, EngineStats, SnapshotStore};
use tape_projections::{Progress, ProjectionError};
use tape_schemas::{codec, ControlRecord, EventEnvelope};
use tokio::sync::{broadcast, watch};

use crate::check::derive;
use crate::control::{Due, Reading};
use crate::log::{self, Pause, Rates, SimLog};
use crate::{Options, Report};

type Task<T> = Pin<Box<dyn Future<Output = T>>>;

/// Polls a task once; `Some` when it has finished.
fn step<T>(task: &mut Task<T>) -> Option<T> {
    match task.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

/// One producer's outbox: it resends what was not acknowledged, so it delivers at
/// least once (a client that retries, like the gateway).
pub(crate) struct Producer {
    pub(crate) outbox: Rc<RefCell<VecDeque<Vec<u8>>>>,
    pub(crate) task: Option<Task<()>>,
}

fn produce(
    log: SimLog,
    outbox: Rc<RefCell<VecDeque<Vec<u8>>>>,
    ready: Rc<Cell<bool>>,
    batch_max: usize,
) -> Task<()> {
    Box::pin(async move {
        while !ready.get() {
            Pause(1).await;
        }
        let mut n = 0usize;
        loop {
            n = n.wrapping_mul(31).wrapping_add(7);
            let batch: Vec<Vec<u8>> = outbox
                .borrow()
                .iter()
                .take(1 + n % batch_max)
                .cloned()
                .collect();
            if batch.is_empty() {
                return;
            }
            match tape_log::Log::append(&log, batch.clone()).await {
                Ok(_) => {
                    outbox.borrow_mut().drain(..batch.len());
                }
                Err(_) => Pause(3).await,
            }
        }
    })
}

pub(crate) struct EngineSlot {
    pub(crate) snapshots: PathBuf,
    pub(crate) task: Option<Task<Result<tape_engine::RunSummary, EngineError>>>,
    pub(crate) stop: Option<watch::Sender<bool>>,
    pub(crate) stats: Arc<EngineStats>,
    /// Restarts at this step when it is down.
    pub(crate) up_at: u64,
    /// On the broker: its failover loop's reading of the control log.
    pub(crate) reading: Option<Reading>,
    /// Stopped (SIGSTOP) until this step: no engine step, no control record.
    pub(crate) paused_until: u64,
    /// Its failover loop runs again from this step: after a pause, the engine's
    /// appends in flight may land before it has read that another epoch won.
    pub(crate) control_from: u64,
}

/// An engine's name on the control log.
fn host_name(host: usize) -> String {
    format!("host{host}")
}

fn trace(what: impl FnOnce() -> String) {
    if std::env::var_os("TAPE_SIM_TRACE").is_some() {
        eprintln!("{}", what());
    }
}

pub(crate) struct ProjectorSlot {
    pub(crate) dir: PathBuf,
    pub(crate) task: Option<Task<Result<(), ProjectionError>>>,
    pub(crate) stop: Option<watch::Sender<bool>>,
    pub(crate) progress: Option<watch::Receiver<Progress>>,
    pub(crate) up_at: u64,
}

pub(crate) struct World {
    pub(crate) rng: ChaCha8Rng,
    pub(crate) commands: SimLog,
    pub(crate) events: SimLog,
    pub(crate) engine: EngineOptions,
    pub(crate) engines: Vec<EngineSlot>,
    /// On the broker, engines stand by and take over through this control log (the
    /// embedded log has one engine, alone).
    pub(crate) failover: bool,
    pub(crate) control: Vec<ControlRecord>,
    /// Claims the broker has taken and not yet stored: (the step they land, the
    /// claim), in the order sent.
    pub(crate) claims_in_flight: Vec<(u64, ControlRecord)>,
    /// The faults have stopped.
    pub(crate) quiet: bool,
    /// The engine that led when the run stopped: its snapshots are checked.
    pub(crate) final_leader: usize,
    pub(crate) projector: ProjectorSlot,
    pub(crate) producers: Vec<Producer>,
    pub(crate) ready: Rc<Cell<bool>>,
    pub(crate) setup_left: Rc<RefCell<VecDeque<Vec<u8>>>>,
    pub(crate) producer_batch_max: usize,
    pub(crate) report: Report,
    pub(crate) step: u64,
}

/// The directory the logs and stores of a run live in: memory-backed when there is
/// one (fsync is then free; the embedded log's recovery is what is under test).
pub(crate) fn scratch() -> std::io::Result<tempfile::TempDir> {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::Builder::new().prefix("tape-sim").tempdir_in(shm) {
            return Ok(d);
        }
    }
    tempfile::Builder::new().prefix("tape-sim").tempdir()
}

/// The command records of a run: the standard trading mix or the hostile random
/// stream (every kind of command, bad signatures, expired ones, repeated ids).
fn workload(seed: u64, commands: u64, rng: &mut ChaCha8Rng) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let encode =
        |e: &tape_schemas::CommandEnvelope| codec::to_bincode(e).expect("a command encodes");
    if rng.random_bool(0.5) {
        let m = tape_benches::standard_mix(commands, seed);
        (
            m.setup.iter().map(encode).collect(),
            m.commands.iter().map(encode).collect(),
        )
    } else {
        let steps = tape_testkit::random::random_steps(seed, commands as usize);
        let all = tape_testkit::random::envelopes(&steps);
        let setup = tape_testkit::random::setup().len();
        let (a, b) = all.split_at(setup);
        (
            a.iter().map(encode).collect(),
            b.iter().map(encode).collect(),
        )
    }
}

impl World {
    pub(crate) fn new(seed: u64, options: &Options, dir: &Path) -> Result<World, String> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let disk = rng.random_bool(0.5);
        let rates = Rates::draw(&mut rng);
        let faults = log::faults(rng.random(), rates);
        let (commands, events) = if disk {
            (
                SimLog::disk(faults.clone(), &dir.join("commands")).map_err(|e| e.to_string())?,
                SimLog::disk(faults.clone(), &dir.join("events")).map_err(|e| e.to_string())?,
            )
        } else {
            (SimLog::broker(faults.clone()), SimLog::broker(faults))
        };
        let (setup, rest) = workload(seed, options.commands, &mut rng);
        let producers_n = rng.random_range(1..=4usize);
        let mut outboxes: Vec<VecDeque<Vec<u8>>> = vec![VecDeque::new(); producers_n];
        for (i, r) in rest.into_iter().enumerate() {
            outboxes[i % producers_n].push_back(r);
        }
        let engine = EngineOptions {
            core: CoreConfig::default(),
            batch_max: rng.random_range(1..=64),
            checkpoint_every: rng.random_range(10..=150),
            poll: Duration::ZERO,
        };
        let engines = (0..2)
            .map(|host| EngineSlot {
                snapshots: dir.join(format!("snapshots-{host}")),
                task: None,
                stop: None,
                stats: Default::default(),
                up_at: if host == 0 { 0 } else { u64::MAX },
                reading: None,
                paused_until: 0,
                control_from: 0,
            })
            .collect();
        let ready = Rc::new(Cell::new(false));
        let setup_left = Rc::new(RefCell::new(VecDeque::from(setup)));
        let producer_batch_max = rng.random_range(1..=16);
        let mut world = World {
            rng,
            commands,
            events,
            engine,
            engines,
            failover: !disk,
            control: Vec::new(),
            claims_in_flight: Vec::new(),
            quiet: false,
            final_leader: 0,
            projector: ProjectorSlot {
                dir: dir.join("views"),
                task: None,
                stop: None,
                progress: None,
                up_at: 0,
            },
            producers: Vec::new(),
            ready: ready.clone(),
            setup_left: setup_left.clone(),
            producer_batch_max,
            report: Report {
                seed,
                disk,
                producers: producers_n,
                ..Report::default()
            },
            step: 0,
        };
        if world.failover {
            // The second engine starts a little later, as a standby.
            world.engines[1].up_at = world.rng.random_range(0..400);
        }
        // The setup goes first, from its own producer; the others wait for it.
        world.producers.push(Producer {
            outbox: setup_left,
            task: None,
        });
        for outbox in outboxes {
            world.producers.push(Producer {
                outbox: Rc::new(RefCell::new(outbox)),
                task: None,
            });
        }
        Ok(world)
    }

    fn start_producers(&mut self) {
        for (i, p) in self.producers.iter_mut().enumerate() {
            if p.task.is_none() && !p.outbox.borrow().is_empty() {
                let ready = if i == 0 {
                    Rc::new(Cell::new(true))
                } else {
                    self.ready.clone()
                };
                p.task = Some(produce(
                    self.commands.clone(),
                    p.outbox.clone(),
                    ready,
                    self.producer_batch_max,
                ));
            }
        }
    }

    fn start_engine(&mut self, host: usize) -> Result<(), String> {
        let slot = &mut self.engines[host];
        let store = SnapshotStore::open(&slot.snapshots, 3).map_err(|e| e.to_string())?;
        let engine = Engine::new(
            self.commands.clone(),
            self.events.clone(),
            store,
            self.engine,
        );
        let (stop, stopped) = watch::channel(false);
        let step = self.step;
        trace(|| format!("step {step}: engine {host} starts"));
        slot.stats = engine.stats();
        slot.stop = Some(stop);
        slot.paused_until = 0;
        if self.failover {
            let (link, handle) = tape_engine::link(&host_name(host), stopped.clone());
            slot.reading = Some(Reading::open(handle, &self.control, step));
            slot.task = Some(Box::pin(async move {
                engine.run_as(Duty::Standby(link), stopped).await
            }));
        } else {
            slot.task = Some(Box::pin(async move { engine.run(stopped).await }));
        }
        Ok(())
    }

    fn start_projector(&mut self) -> Result<(), String> {
        let (projector, _) =
            tape_projections::open(&self.projector.dir).map_err(|e| e.to_string())?;
        let (stop, stopped) = watch::channel(false);
        let (progress_tx, progress) = watch::channel(Progress::default());
        let events = self.events.clone();
        self.projector.stop = Some(stop);
        self.projector.progress = Some(progress);
        self.projector.task = Some(Box::pin(async move {
            let (changes, _) = broadcast::channel(4);
            tape_projections::run(&events, projector, changes, progress_tx, stopped).await
        }));
        Ok(())
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    /// One fault, perhaps, at this step.
    fn inject(&mut self) -> Result<(), String> {
        let later = |w: &mut World| w.step + w.rng.random_range(1..60);
        // kill -9 of an engine (on the broker, of either).
        let host = if self.failover {
            self.rng.random_range(0..2)
        } else {
            0
        };
        if self.engines[host].task.is_some() && self.chance(0.004) {
            let up = later(self);
            self.down(host, up);
            self.report.engine_crashes += 1;
        }
        if self.projector.task.is_some() && self.chance(0.003) {
            self.projector.task = None;
            self.projector.up_at = later(self);
            self.report.projector_crashes += 1;
        }
        if self.engines[0].task.is_none() && self.chance(0.02) {
            self.damage_snapshot()?;
        }
        if self.report.disk {
            if self.chance(0.0015) {
                self.power_loss()?;
            }
            if self.chance(0.002) && !self.events.refuses_second_writer() {
                return Err("a second writer could open the embedded events log".into());
            }
        } else {
            if self.chance(0.002) {
                let steps = self.rng.random_range(5..150);
                self.commands.set_broker_down(steps);
                self.report.outages += 1;
            }
            // SIGSTOP of an engine for a while: a leader goes silent, and may wake
            // up deposed, with appends in flight.
            let host = self.rng.random_range(0..2);
            let slot = &self.engines[host];
            if slot.task.is_some() && slot.paused_until <= self.step && self.chance(0.004) {
                let steps = self.rng.random_range(5..200);
                let lag = self.rng.random_range(0..20);
                self.engines[host].paused_until = self.step + steps;
                self.engines[host].control_from = self.step + steps + lag;
                self.report.pauses += 1;
                let step = self.step;
                trace(|| format!("step {step}: engine {host} paused for {steps} steps"));
            }
        }
        Ok(())
    }

    /// An engine is down (crashed, or its failover loop ended) until `up_at`.
    fn down(&mut self, host: usize, up_at: u64) {
        let slot = &mut self.engines[host];
        slot.task = None;
        slot.reading = None;
        slot.paused_until = 0;
        slot.control_from = 0;
        slot.up_at = up_at;
    }

    /// Flips a byte in the newest snapshot of the first engine's host.
    fn damage_snapshot(&mut self) -> Result<(), String> {
        let dir = &self.engines[0].snapshots;
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(());
        };
        let mut snaps: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "snap"))
            .collect();
        snaps.sort();
        let Some(newest) = snaps.pop() else {
            return Ok(());
        };
        let mut bytes = std::fs::read(&newest).map_err(|e| e.to_string())?;
        if bytes.is_empty() {
            return Ok(());
        }
        let at = self.rng.random_range(0..bytes.len());
        bytes[at] ^= 1 << self.rng.random_range(0..8);
        std::fs::write(&newest, bytes).map_err(|e| e.to_string())?;
        self.report.damaged_snapshots += 1;
        Ok(())
    }

    /// Every process on the machine stops at once; the logs lose what was not
    /// fsynced; everything starts again a little later.
    fn power_loss(&mut self) -> Result<(), String> {
        for log in [&self.commands, &self.events] {
            self.report.torn_bytes += log.power_loss().map_err(|e| e.to_string())?;
        }
        let up = self.step + self.rng.random_range(1..60);
        self.down(0, up);
        self.projector.task = None;
        self.projector.up_at = up;
        for p in &mut self.producers {
            p.task = None;
        }
        self.report.power_losses += 1;
        Ok(())
    }

    /// Starts what is due to start again.
    fn restart(&mut self) -> Result<(), String> {
        for host in 0..self.engines.len() {
            if self.engines[host].task.is_none() && self.engines[host].up_at <= self.step {
                self.start_engine(host)?;
            }
        }
        if self.projector.task.is_none() && self.projector.up_at <= self.step {
            self.start_projector()?;
        }
        self.start_producers();
        Ok(())
    }

    /// Each running engine's failover loop, in an order the seed chooses: it reads
    /// some of the control log (all of it once the faults stop), stands down when
    /// deposed, heartbeats when it leads, claims after silence when it stands by.
    fn control_step(&mut self) {
        let step = self.step;
        let landed = self
            .claims_in_flight
            .iter()
            .take_while(|(at, _)| *at <= step)
            .count();
        self.control.extend(
            self.claims_in_flight
                .drain(..landed)
                .map(|(_, claim)| claim),
        );
        let first = self.rng.random_range(0..2);
        for host in [first, 1 - first] {
            let step = self.step;
            let n = if self.quiet {
                usize::MAX
            } else {
                self.rng.random_range(0..=3)
            };
            let slot = &mut self.engines[host];
            if slot.task.is_none() || slot.paused_until > step || slot.control_from > step {
                continue;
            }
            let Some(reading) = slot.reading.as_mut() else {
                continue;
            };
            let name = host_name(host);
            reading.read(&self.control, n, step, &name);
            if let Some((epoch, by)) = reading.deposed() {
                trace(|| {
                    format!("step {step}: engine {host} (epoch {epoch}) deposed by epoch {by}")
                });
                self.report.depositions += 1;
                let up = step + 1 + self.rng.random_range(0..30);
                self.down(host, up);
                continue;
            }
            match reading.due(self.control.len(), step, &name) {
                Due::Nothing => {}
                Due::Heartbeat(record) => {
                    if !self.commands.broker_is_down() {
                        self.control.push(record);
                    }
                }
                Due::Claim(record) => {
                    if self.commands.broker_is_down() {
                        // The claim's append fails and the failover loop ends with
                        // it; a supervisor starts the engine again.
                        self.report.engine_errors += 1;
                        let up = step + 1 + self.rng.random_range(0..30);
                        self.down(host, up);
                    } else {
                        // A slow broker stores some claims a while after they were
                        // sent (in order): a leader that wakes in between heartbeats
                        // first, and the claim is void.
                        let delay = if self.quiet || !self.chance(0.3) {
                            0
                        } else {
                            self.rng.random_range(1..40)
                        };
                        trace(|| {
                            format!("step {step}: engine {host} appends {record:?}, landing in {delay} steps")
                        });
                        let at = self
                            .claims_in_flight
                            .last()
                            .map_or(step, |(at, _)| *at)
                            .max(step + delay);
                        self.claims_in_flight.push((at, record));
                        if delay == 0 && self.claims_in_flight.len() == 1 {
                            self.control
                                .extend(self.claims_in_flight.drain(..).map(|(_, c)| c));
                        }
                    }
                }
            }
        }
    }

    /// The engine that leads the epoch in force and has fenced (on the embedded
    /// log: the one engine, when it runs).
    fn leader(&self) -> Option<usize> {
        if !self.failover {
            return self.engines[0].task.is_some().then_some(0);
        }
        (0..self.engines.len()).find(|&h| {
            let slot = &self.engines[h];
            slot.task.is_some() && slot.reading.as_ref().is_some_and(Reading::leads)
        })
    }

    /// Polls every live actor once, in an order the seed chooses.
    fn poll_all(&mut self) -> Result<(), String> {
        let mut order: Vec<usize> = (0..self.producers.len() + 3).collect();
        for i in (1..order.len()).rev() {
            let j = self.rng.random_range(0..=i);
            order.swap(i, j);
        }
        for who in order {
            match who {
                0 | 1 => self.poll_engine(who)?,
                2 => self.poll_projector()?,
                p => {
                    let producer = &mut self.producers[p - 3];
                    if let Some(task) = producer.task.as_mut() {
                        if step(task).is_some() {
                            producer.task = None;
                        }
                    }
                }
            }
        }
        if self.setup_left.borrow().is_empty() {
            self.ready.set(true);
        }
        Ok(())
    }

    fn poll_engine(&mut self, host: usize) -> Result<(), String> {
        let slot = &mut self.engines[host];
        if slot.paused_until > self.step {
            return Ok(());
        }
        let Some(task) = slot.task.as_mut() else {
            return Ok(());
        };
        let Some(result) = step(task) else {
            return Ok(());
        };
        let stopping = slot.stop.as_ref().is_some_and(|s| *s.borrow());
        let at = self.step;
        trace(|| format!("step {at}: engine {host} ended: {result:?}"));
        let up = self.step + 1 + self.rng.random_range(0..30);
        self.down(host, up);
        match result {
            Ok(_) | Err(EngineError::StoppedFollowing) if stopping => Ok(()),
            Ok(summary) => Err(format!("the engine stopped by itself: {summary:?}")),
            // Injected: the broker refused or lost an acknowledgement. A supervisor
            // restarts it.
            Err(EngineError::Log(_)) => {
                self.report.engine_errors += 1;
                Ok(())
            }
            // It appended after a later epoch's fence, or saw the fence first: it
            // stands down and follows again.
            Err(EngineError::Deposed { .. }) if self.failover => {
                self.report.depositions += 1;
                Ok(())
            }
            Err(e) => {
                if std::env::var_os("TAPE_SIM_TRACE").is_some() {
                    // Runs of (first offset, epoch, first seq, last seq); a fence
                    // shows as (offset, epoch, 0, 0).
                    let mut runs: Vec<(u64, u64, u64, u64)> = Vec::new();
                    for (o, b) in self.events.records().unwrap_or_default().iter().enumerate() {
                        let (epoch, seq) = match tape_schemas::EventRecord::parse(b) {
                            Ok(tape_schemas::EventRecord::Event { epoch, envelope }) => {
                                (epoch, EventEnvelope::peek(envelope).map_or(0, |p| p.0))
                            }
                            Ok(tape_schemas::EventRecord::Fence(f)) => (f.epoch, 0),
                            Err(_) => (u64::MAX, 0),
                        };
                        match runs.last_mut() {
                            Some((_, e, _, last)) if *last + 1 == seq && *e == epoch => *last = seq,
                            _ => runs.push((o as u64, epoch, seq, seq)),
                        }
                    }
                    eprintln!("events log (offset, epoch, seqs): {runs:?}");
                    if let Ok(Some(saved)) = SnapshotStore::open(&self.engines[host].snapshots, 3)
                        .and_then(|s| s.latest())
                    {
                        eprintln!(
                            "its latest snapshot: next seq {}, events at {}, epoch {}",
                            saved.next_seq, saved.events_at, saved.epoch
                        );
                    }
                }
                Err(format!("engine on host {host} failed: {e}"))
            }
        }
    }

    fn poll_projector(&mut self) -> Result<(), String> {
        let Some(task) = self.projector.task.as_mut() else {
            return Ok(());
        };
        let Some(result) = step(task) else {
            return Ok(());
        };
        self.projector.task = None;
        match result {
            Ok(()) => Ok(()),
            Err(ProjectionError::Log(_)) => {
                self.projector.up_at = self.step + 1 + self.rng.random_range(0..30);
                Ok(())
            }
            Err(e) => Err(format!("the projector failed: {e}")),
        }
    }

    /// True when everything sent is on the log, applied, and projected.
    fn settled(&self, expected: Option<(usize, u64)>) -> bool {
        let Some((commands, expected)) = expected else {
            return false;
        };
        let producers_done = self.producers.iter().all(|p| p.outbox.borrow().is_empty());
        let Some(leader) = self.leader() else {
            return false;
        };
        let engine = &self.engines[leader];
        let stats = engine.stats.read();
        let projected = self
            .projector
            .progress
            .as_ref()
            .is_some_and(|p| p.borrow().next_seq == expected + 1);
        producers_done
            && engine.task.is_some()
            && stats.durable_seq == expected
            && stats.next_command == commands as u64
            && self.projector.task.is_some()
            && projected
    }

    /// Runs the faulty phase, then the quiet one until everything has settled.
    pub(crate) fn run(&mut self, options: &Options) -> Result<(), String> {
        let mut expected: Option<(usize, u64)> = None;
        loop {
            self.step += 1;
            if self.step <= options.fault_steps {
                self.inject()?;
            } else if self.step == options.fault_steps + 1 {
                self.commands.set_quiet();
                self.quiet = true;
                for slot in &mut self.engines {
                    slot.paused_until = 0;
                    slot.control_from = 0;
                }
            } else if self.step > options.fault_steps + options.converge_steps {
                let s = self.engines[self.leader().unwrap_or(0)].stats.read();
                return Err(format!(
                    "did not settle {} steps after the faults stopped (leader {:?} at command {}, seq {}; projector at {:?})",
                    options.converge_steps,
                    self.leader(),
                    s.next_command,
                    s.durable_seq,
                    self.projector.progress.as_ref().map(|p| *p.borrow())
                ));
            }
            self.commands.tick();
            self.restart()?;
            if self.failover {
                self.control_step();
            }
            self.poll_all()?;
            if self.step > options.fault_steps
                && self.producers.iter().all(|p| p.outbox.borrow().is_empty())
            {
                let n = self.commands.records_now();
                if expected.is_none_or(|(m, _)| m != n) {
                    let records = self.commands.records().map_err(|e| e.to_string())?;
                    let events = derive(&records, self.engine)?.events.len() as u64;
                    expected = Some((n, events));
                }
                if self.settled(expected) {
                    break;
                }
            }
        }
        // Stop in order: the engine (it snapshots), then the projector.
        self.stop_engine()?;
        if let Some(s) = &self.projector.stop {
            let _ = s.send(true);
        }
        while let Some(task) = self.projector.task.as_mut() {
            if let Some(r) = step(task) {
                self.projector.task = None;
                r.map_err(|e| format!("the projector failed while stopping: {e}"))?;
            }
        }
        self.report.steps = self.step;
        Ok(())
    }

    /// Stops the standby, then the leader (it snapshots).
    fn stop_engine(&mut self) -> Result<(), String> {
        let leader = self.leader().ok_or("no engine leads at the end")?;
        self.final_leader = leader;
        for host in (0..self.engines.len())
            .filter(|&h| h != leader)
            .chain([leader])
        {
            let slot = &mut self.engines[host];
            if let Some(s) = &slot.stop {
                let _ = s.send(true);
            }
            while let Some(task) = slot.task.as_mut() {
                if let Some(r) = step(task) {
                    slot.task = None;
                    match r {
                        Ok(_) => {}
                        Err(EngineError::StoppedFollowing) if host != leader => {}
                        Err(e) => return Err(format!("engine {host} failed while stopping: {e}")),
                    }
                }
            }
        }
        Ok(())
    }
}
