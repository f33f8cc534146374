//! Tape's deterministic simulation, after TigerBeetle's VOPR and FoundationDB's
//! simulator: producers, the engine (and at times a second one), the projector and
//! both kinds of log run under one seed, on one thread, in an order the seed
//! chooses, while the seed injects faults:
//!
//! * a crash of the engine or the projector between any two of its steps (every
//!   log operation is an await point the simulator can stop at);
//! * a power loss on the embedded log: the appends in flight are torn at a random
//!   byte, garbage follows the cut, the durable mark is stale or torn;
//! * on the broker: appends that fail, store a prefix and fail, or store everything
//!   and lose the acknowledgement (the producer's retry duplicates them), the broker
//!   unavailable for a while, short reads (a slow consumer), delays everywhere;
//! * producers interleaved at random; a second engine on the same logs; a damaged
//!   snapshot.
//!
//! Then the faults stop, the run must converge, and it is checked: every command
//! record has exactly one outcome and no command runs twice, nothing a producer sent
//! is missing, the events are byte for byte what a fresh derivation gives, the
//! hash chain and checkpoints verify, the engine's last snapshot holds the derived
//! state, and the read models equal a rebuild from the log.
//!
//! Why our own executor rather than turmoil or madsim: the engine's only contact
//! with the world is the `Log` trait and its snapshot directory, so simulating the
//! `Log` covers both logs' failure modes, while turmoil simulates sockets (the Kafka
//! client is librdkafka's C code, out of its reach) and madsim would rebuild the
//! whole workspace against a replacement tokio. Each actor is a future polled here
//! with a no-op waker; on anything but a multi-threaded runtime the engine and the
//! projector run their stages inline, so a seed replays exactly.

mod log;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tape_core::{Core, CoreConfig};
use tape_engine::{Deriver, Engine, EngineError, EngineOptions, EngineStats, SnapshotStore};
use tape_projections::{Progress, ProjectionError};
use tape_schemas::{codec, CommandResult, Event, EventEnvelope};
use tokio::sync::{broadcast, watch};

pub use crate::log::{Rates, SimLog};

/// The size and length of one run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Commands after the setup.
    pub commands: u64,
    /// Steps during which faults are injected.
    pub fault_steps: u64,
    /// Steps the run may take after the faults stop before it counts as stuck.
    pub converge_steps: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            commands: 300,
            fault_steps: 3_000,
            converge_steps: 200_000,
        }
    }
}

impl Options {
    /// The command that runs this seed again.
    pub fn repro(&self, seed: u64) -> String {
        let d = Options::default();
        let mut s = format!("cargo run --release -p tape-sim -- --seed {seed}");
        if self.commands != d.commands {
            s += &format!(" --commands {}", self.commands);
        }
        if self.fault_steps != d.fault_steps {
            s += &format!(" --fault-steps {}", self.fault_steps);
        }
        s
    }
}

/// What one run did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub seed: u64,
    pub disk: bool,
    pub producers: usize,
    pub steps: u64,
    pub command_records: usize,
    pub duplicate_records: usize,
    pub events: usize,
    pub event_copies: usize,
    pub engine_crashes: u32,
    pub engine_errors: u32,
    pub projector_crashes: u32,
    pub power_losses: u32,
    pub torn_bytes: u64,
    pub outages: u32,
    pub second_engines: u32,
    pub damaged_snapshots: u32,
    /// blake3 of the commands log as the run left it (its order is the schedule's).
    pub commands_digest: [u8; 32],
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {} ({}, {} producers): {} steps, {} command records ({} copies), {} events ({} copies); \
             crashes: engine {} projector {}; engine errors {}; power losses {} ({} torn bytes); \
             outages {}; second engines {}; damaged snapshots {}",
            self.seed,
            if self.disk { "embedded log" } else { "broker" },
            self.producers,
            self.steps,
            self.command_records,
            self.duplicate_records,
            self.events,
            self.event_copies,
            self.engine_crashes,
            self.projector_crashes,
            self.engine_errors,
            self.power_losses,
            self.torn_bytes,
            self.outages,
            self.second_engines,
            self.damaged_snapshots
        )
    }
}

type Task<T> = Pin<Box<dyn Future<Output = T>>>;

/// Polls a task once; `Some` when it has finished.
fn step<T>(task: &mut Task<T>) -> Option<T> {
    match task.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

/// Yields to the simulator `n` times.
struct Pause(u32);

impl Future for Pause {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 == 0 {
            return Poll::Ready(());
        }
        self.0 -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// One producer's outbox: it resends what was not acknowledged, so it delivers at
/// least once (a client that retries, like the gateway).
struct Producer {
    outbox: Rc<RefCell<VecDeque<Vec<u8>>>>,
    task: Option<Task<()>>,
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

struct EngineSlot {
    snapshots: PathBuf,
    task: Option<Task<Result<tape_engine::RunSummary, EngineError>>>,
    stop: Option<watch::Sender<bool>>,
    stats: Arc<EngineStats>,
    /// Restarts at this step when it is down.
    up_at: u64,
}

struct ProjectorSlot {
    dir: PathBuf,
    task: Option<Task<Result<(), ProjectionError>>>,
    stop: Option<watch::Sender<bool>>,
    progress: Option<watch::Receiver<Progress>>,
    up_at: u64,
}

struct World {
    rng: ChaCha8Rng,
    commands: SimLog,
    events: SimLog,
    engine: EngineOptions,
    engines: Vec<EngineSlot>,
    projector: ProjectorSlot,
    producers: Vec<Producer>,
    ready: Rc<Cell<bool>>,
    setup_left: Rc<RefCell<VecDeque<Vec<u8>>>>,
    producer_batch_max: usize,
    report: Report,
    step: u64,
}

/// The directory the logs and stores of a run live in: memory-backed when there is
/// one (fsync is then free; the embedded log's recovery is what is under test).
fn scratch() -> std::io::Result<tempfile::TempDir> {
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
    fn new(seed: u64, options: &Options, dir: &Path) -> Result<World, String> {
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
        if std::env::var_os("TAPE_SIM_TRACE").is_some() {
            eprintln!("step {}: engine {host} starts", self.step);
        }
        slot.stats = engine.stats();
        slot.stop = Some(stop);
        slot.task = Some(Box::pin(async move { engine.run(stopped).await }));
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
        if self.engines[0].task.is_some() && self.chance(0.004) {
            self.engines[0].task = None;
            self.engines[0].up_at = later(self);
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
            let running = self.engines[1].task.is_some();
            if !running && self.chance(0.0015) {
                self.start_engine(1)?;
                self.report.second_engines += 1;
            } else if running && self.chance(0.01) {
                // The deposed engine notices it lost the lease and stops.
                self.engines[1].stop.as_ref().map(|s| s.send(true));
            }
        }
        Ok(())
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
        self.engines[0].task = None;
        self.engines[0].up_at = up;
        self.engines[1].task = None;
        self.engines[1].up_at = u64::MAX;
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
        if self.engines[0].task.is_none() && self.engines[0].up_at <= self.step {
            self.start_engine(0)?;
        }
        if self.projector.task.is_none() && self.projector.up_at <= self.step {
            self.start_projector()?;
        }
        self.start_producers();
        Ok(())
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
        let Some(task) = slot.task.as_mut() else {
            return Ok(());
        };
        let Some(result) = step(task) else {
            return Ok(());
        };
        slot.task = None;
        let stopping = slot.stop.as_ref().is_some_and(|s| *s.borrow());
        if std::env::var_os("TAPE_SIM_TRACE").is_some() {
            eprintln!("step {}: engine {host} ended: {result:?}", self.step);
        }
        match result {
            Ok(_) if stopping => {
                if host == 1 {
                    slot.up_at = u64::MAX;
                }
                Ok(())
            }
            Ok(summary) => Err(format!("the engine stopped by itself: {summary:?}")),
            // Injected: the broker refused or lost an acknowledgement; or another
            // engine's appends landed among ours. A supervisor restarts it.
            Err(EngineError::Log(_)) | Err(EngineError::AnotherWriter { .. }) => {
                self.report.engine_errors += 1;
                // The second engine does not come back: by then it has lost its lease.
                slot.up_at = if host == 1 {
                    u64::MAX
                } else {
                    self.step + 1 + self.rng.random_range(0..30)
                };
                Ok(())
            }
            Err(e) => {
                if std::env::var_os("TAPE_SIM_TRACE").is_some() {
                    let mut runs: Vec<(u64, u64, u64)> = Vec::new();
                    for (o, b) in self.events.records().unwrap_or_default().iter().enumerate() {
                        let seq = EventEnvelope::peek(b).map_or(0, |p| p.0);
                        match runs.last_mut() {
                            Some((_, _, last)) if *last + 1 == seq => *last = seq,
                            _ => runs.push((o as u64, seq, seq)),
                        }
                    }
                    eprintln!("events log (offset: seqs): {runs:?}");
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
        let engine = &self.engines[0];
        let projected = self
            .projector
            .progress
            .as_ref()
            .is_some_and(|p| p.borrow().next_seq == expected + 1);
        producers_done
            && engine.task.is_some()
            && engine.stats.read().durable_seq == expected
            && engine.stats.read().next_command == commands as u64
            && self.projector.task.is_some()
            && projected
    }

    /// Runs the faulty phase, then the quiet one until everything has settled.
    fn run(&mut self, options: &Options) -> Result<(), String> {
        let mut expected: Option<(usize, u64)> = None;
        loop {
            self.step += 1;
            if self.step <= options.fault_steps {
                self.inject()?;
            } else if self.step == options.fault_steps + 1 {
                self.commands.set_quiet();
                if let Some(s) = &self.engines[1].stop {
                    let _ = s.send(true);
                }
            } else if self.step > options.fault_steps + options.converge_steps {
                let s = self.engines[0].stats.read();
                return Err(format!(
                    "did not settle {} steps after the faults stopped (engine at command {}, seq {}; projector at {:?})",
                    options.converge_steps,
                    s.next_command,
                    s.durable_seq,
                    self.projector.progress.as_ref().map(|p| *p.borrow())
                ));
            }
            self.commands.tick();
            self.restart()?;
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
                if self.settled(expected) && self.engines[1].task.is_none() {
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

    fn stop_engine(&mut self) -> Result<(), String> {
        let slot = &mut self.engines[0];
        if let Some(s) = &slot.stop {
            let _ = s.send(true);
        }
        while let Some(task) = slot.task.as_mut() {
            if let Some(r) = step(task) {
                slot.task = None;
                r.map_err(|e| format!("the engine failed while stopping: {e}"))?;
            }
        }
        Ok(())
    }
}

/// A fresh derivation of the command records.
struct Derived {
    events: Vec<Vec<u8>>,
    core: Core,
    /// The engine's clock after each command.
    times: Vec<u64>,
}

fn derive(records: &[Vec<u8>], options: EngineOptions) -> Result<Derived, String> {
    let mut d = Deriver::new(options.core, options.checkpoint_every);
    let mut events = Vec::new();
    let mut times = Vec::with_capacity(records.len());
    for (offset, bytes) in records.iter().enumerate() {
        d.step(offset as u64, bytes, &mut events)
            .map_err(|e| format!("a fresh derivation broke: {e}"))?;
        times.push(d.applier.core.time_ms());
    }
    Ok(Derived {
        events,
        core: d.applier.core,
        times,
    })
}

/// Runs one seed and checks it.
pub fn run(seed: u64, options: &Options) -> Result<Report, String> {
    let dir = scratch().map_err(|e| e.to_string())?;
    let mut world = World::new(seed, options, dir.path())?;
    let sent: BTreeSet<Vec<u8>> = world
        .producers
        .iter()
        .flat_map(|p| p.outbox.borrow().iter().cloned().collect::<Vec<_>>())
        .collect();
    world.run(options)?;
    check(&mut world, &sent)?;
    Ok(world.report)
}

fn check(world: &mut World, sent: &BTreeSet<Vec<u8>>) -> Result<(), String> {
    let commands = world.commands.records().map_err(|e| e.to_string())?;
    let stored = world.events.records().map_err(|e| e.to_string())?;
    let Derived {
        events: expected,
        core,
        times,
    } = derive(&commands, world.engine)?;
    let r = &mut world.report;
    r.command_records = commands.len();
    let mut digest = blake3::Hasher::new();
    for c in &commands {
        digest.update(&(c.len() as u64).to_le_bytes());
        digest.update(c);
    }
    r.commands_digest = *digest.finalize().as_bytes();

    // Nothing a producer sent is missing.
    let on_log: BTreeSet<&Vec<u8>> = commands.iter().collect();
    if let Some(missing) = sent.iter().find(|s| !on_log.contains(s)) {
        return Err(format!(
            "a command sent by a producer is not on the commands log ({} bytes)",
            missing.len()
        ));
    }
    r.duplicate_records = commands.len() - on_log.len();

    // The events, with the copies a deposed engine left set aside, are byte for
    // byte a fresh derivation.
    let mut events: Vec<&Vec<u8>> = Vec::with_capacity(expected.len());
    for (offset, bytes) in stored.iter().enumerate() {
        let (seq, _, _) = EventEnvelope::peek(bytes)
            .map_err(|e| format!("event at offset {offset} does not decode: {e}"))?;
        let next = events.len() as u64 + 1;
        if seq == next {
            events.push(bytes);
        } else if seq < next {
            if expected.get(seq as usize - 1) != Some(bytes) {
                return Err(format!("the copy of seq {seq} at offset {offset} differs"));
            }
            r.event_copies += 1;
        } else {
            return Err(format!(
                "the events log skips from seq {next} to {seq} at offset {offset}"
            ));
        }
    }
    r.events = events.len();
    if events.len() != expected.len() {
        return Err(format!(
            "the events log holds {} events; a fresh derivation gives {}",
            events.len(),
            expected.len()
        ));
    }
    if let Some(i) = (0..expected.len()).find(|&i| *events[i] != expected[i]) {
        return Err(format!(
            "event seq {} differs from a fresh derivation",
            i + 1
        ));
    }

    check_outcomes(&commands, &events, &times, &world.engine.core)?;

    // The hash chain and the checkpoints, as an auditor checks them.
    let verified = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| e.to_string())?
        .block_on(tape_replay::verify(
            &world.commands,
            &world.events,
            world.engine.core,
            |_, _| {},
        ));
    verified.map_err(|e| format!("replay verification failed: {e}"))?;

    // The engine's last snapshot holds the derived state.
    let store = SnapshotStore::open(&world.engines[0].snapshots, 3).map_err(|e| e.to_string())?;
    let saved = store
        .latest()
        .map_err(|e| e.to_string())?
        .ok_or("the engine left no snapshot")?;
    if saved.next_command != commands.len() as u64 {
        let files: Vec<String> = std::fs::read_dir(&world.engines[0].snapshots)
            .map_err(|e| e.to_string())?
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        return Err(format!(
            "the last snapshot is at command {}, not {} (snapshots: {files:?})",
            saved.next_command,
            commands.len()
        ));
    }
    let restored = Core::restore(&saved.core).map_err(|e| e.to_string())?;
    if restored.state_hash() != core.state_hash() {
        return Err("the last snapshot's state differs from a fresh derivation's".into());
    }

    // The read models equal a rebuild from the log.
    let (_, views) = tape_projections::open(&world.projector.dir).map_err(|e| e.to_string())?;
    let rebuilt_dir = world.projector.dir.with_file_name("views-rebuilt");
    let (mut fresh, fresh_views) =
        tape_projections::open(&rebuilt_dir).map_err(|e| e.to_string())?;
    fresh
        .apply_records(stored.iter().map(Vec::as_slice))
        .map_err(|e| e.to_string())?;
    // Outcomes are stored in groups, one per batch the projector took, so the rows
    // depend on how the log was read: they are compared by what they answer.
    for offset in 0..commands.len() as u64 {
        let ours = views.outcome_at(offset).map_err(|e| e.to_string())?;
        let theirs = fresh_views.outcome_at(offset).map_err(|e| e.to_string())?;
        if ours != theirs || ours.is_none() {
            return Err(format!(
                "the read models answer command {offset} with {ours:?}; a rebuild says {theirs:?}"
            ));
        }
    }
    let (ours, theirs) = (rows(&views)?, rows(&fresh_views)?);
    if ours != theirs {
        let differs = ours
            .iter()
            .find(|(k, v)| theirs.get(*k) != Some(v))
            .map(|(k, _)| k.clone())
            .or_else(|| theirs.keys().find(|k| !ours.contains_key(*k)).cloned());
        return Err(format!(
            "the read models differ from a rebuild from the log ({} rows against {}; first at key {:?})",
            ours.len(),
            theirs.len(),
            differs
        ));
    }
    Ok(())
}

/// The read models' rows with the grouped views (ledger entries, trades, an
/// account's orders, outcomes) joined up per owner. The projector writes those in
/// groups of up to 128 rows, one group per batch it took, keyed by owner and first
/// id; a group's value is a bincode list (a one-byte length, then the rows), so the
/// rows end to end, in key order, do not depend on where batches began.
fn rows(views: &tape_projections::Views) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, String> {
    use tape_projections::keys;
    let grouped = [
        keys::ENTRY,
        keys::ACCOUNT_TRADE,
        keys::MARKET_TRADE,
        keys::ACCOUNT_ORDER,
        keys::OUTCOME,
    ];
    let mut out: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for (k, v) in views.dump().map_err(|e| e.to_string())? {
        if k.first().is_some_and(|t| grouped.contains(t)) && k.len() >= 9 && !v.is_empty() {
            out.entry(k[..k.len() - 8].to_vec())
                .or_default()
                .extend_from_slice(&v[1..]);
        } else {
            out.insert(k, v);
        }
    }
    Ok(out)
}

/// Every command record has exactly one outcome, and its events are together (the
/// expiries its time stamp sets off come before the outcome, its own effects after
/// it); of identical copies of a record at most one runs (the others are answered
/// as duplicates with the same result, or refused). The one exception is the
/// documented rule for unsigned commands (trusted operator input): their ids are
/// remembered by the answer window only, so a copy arriving after the window has
/// moved past the first (`dedupe_window_ms` of clock, or `dedupe_capacity` ids)
/// runs again.
fn check_outcomes(
    commands: &[Vec<u8>],
    events: &[&Vec<u8>],
    times: &[u64],
    cfg: &CoreConfig,
) -> Result<(), String> {
    let mut outcomes: Vec<Option<(CommandResult, bool)>> = vec![None; commands.len()];
    let mut last_offset: Option<usize> = None;
    for bytes in events {
        let env: EventEnvelope = codec::from_bincode(bytes).map_err(|e| e.to_string())?;
        let offset = env.command_offset as usize;
        if last_offset.is_some_and(|last| offset < last) {
            return Err(format!(
                "seq {} belongs to command {offset}, after events of command {}",
                env.seq,
                last_offset.unwrap_or(0)
            ));
        }
        if last_offset != Some(offset) {
            if let Some(last) = last_offset {
                if outcomes[last].is_none() {
                    return Err(format!("command {last} has no outcome among its events"));
                }
            }
        }
        last_offset = Some(offset);
        let slot = outcomes.get_mut(offset).ok_or_else(|| {
            format!(
                "seq {} names command offset {offset}, past the log",
                env.seq
            )
        })?;
        if let Event::Outcome {
            result, duplicate, ..
        } = env.event
        {
            if slot.is_some() {
                return Err(format!(
                    "command {offset} has a second outcome (seq {})",
                    env.seq
                ));
            }
            *slot = Some((result, duplicate));
        }
    }
    let mut runs: BTreeMap<&Vec<u8>, (usize, CommandResult)> = BTreeMap::new();
    for (offset, (record, outcome)) in commands.iter().zip(&outcomes).enumerate() {
        let (result, duplicate) =
            outcome.ok_or_else(|| format!("command {offset} has no outcome"))?;
        if duplicate {
            continue;
        }
        if let CommandResult::Accepted { .. } = result {
            if let Some((earlier, first)) = runs.insert(record, (offset, result)) {
                let command = tape_schemas::codec::decode_command(record);
                let unsigned = command.as_ref().is_ok_and(|c| c.auth.is_none());
                let forgotten = times[offset].saturating_sub(times[earlier])
                    >= cfg.dedupe_window_ms
                    || offset - earlier > cfg.dedupe_capacity;
                if unsigned && forgotten {
                    continue;
                }
                let command = command
                    .map(|c| format!("{c:?}"))
                    .unwrap_or_else(|e| format!("undecodable: {e}"));
                return Err(format!(
                    "command {offset} ran again: the identical record at {earlier} was already accepted ({first:?}): {command}"
                ));
            }
        }
    }
    Ok(())
}

/// Faults injected over many seeds.
#[derive(Clone, Debug, Default)]
pub struct Totals {
    pub seeds: u64,
    pub on_disk: u64,
    pub command_records: u64,
    pub duplicate_records: u64,
    pub events: u64,
    pub event_copies: u64,
    pub engine_crashes: u64,
    pub engine_errors: u64,
    pub projector_crashes: u64,
    pub power_losses: u64,
    pub torn_bytes: u64,
    pub outages: u64,
    pub second_engines: u64,
    pub damaged_snapshots: u64,
}

impl Totals {
    pub fn add(&mut self, r: &Report) {
        self.seeds += 1;
        self.on_disk += r.disk as u64;
        self.command_records += r.command_records as u64;
        self.duplicate_records += r.duplicate_records as u64;
        self.events += r.events as u64;
        self.event_copies += r.event_copies as u64;
        self.engine_crashes += u64::from(r.engine_crashes);
        self.engine_errors += u64::from(r.engine_errors);
        self.projector_crashes += u64::from(r.projector_crashes);
        self.power_losses += u64::from(r.power_losses);
        self.torn_bytes += r.torn_bytes;
        self.outages += u64::from(r.outages);
        self.second_engines += u64::from(r.second_engines);
        self.damaged_snapshots += u64::from(r.damaged_snapshots);
    }
}

impl std::fmt::Display for Totals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} seeds ({} on the embedded log, {} on the broker): {} command records ({} copies), \
             {} events ({} copies); engine crashes {}, engine errors {}, projector crashes {}, \
             power losses {} ({} torn bytes), broker outages {}, second engines {}, damaged snapshots {}",
            self.seeds,
            self.on_disk,
            self.seeds - self.on_disk,
            self.command_records,
            self.duplicate_records,
            self.events,
            self.event_copies,
            self.engine_crashes,
            self.engine_errors,
            self.projector_crashes,
            self.power_losses,
            self.torn_bytes,
            self.outages,
            self.second_engines,
            self.damaged_snapshots
        )
    }
}
