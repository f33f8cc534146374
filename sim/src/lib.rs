//! Tape's deterministic simulation, after TigerBeetle's VOPR and FoundationDB's
//! simulator: producers, the engine (on the broker, two of them: a leader and a
//! standby), the projector and both kinds of log run under one seed, on one thread,
//! in an order the seed chooses, while the seed injects faults:
//!
//! * a crash of the engine or the projector between any two of its steps (every
//!   log operation is an await point the simulator can stop at);
//! * a power loss on the embedded log: the appends in flight are torn at a random
//!   byte, garbage follows the cut, the durable mark is stale or torn;
//! * on the broker: appends that fail, store a prefix and fail, or store everything
//!   and lose the acknowledgement (the producer's retry duplicates them), the broker
//!   unavailable for a while, short reads (a slow consumer), delays everywhere;
//! * on the broker, failover (`control`): engines killed or paused (SIGSTOP) at any
//!   step, control-log readers that lag, claims after silence, fences; a deposed
//!   leader that wakes with appends in flight;
//! * producers interleaved at random; a damaged snapshot.
//!
//! Then the faults stop, the run must converge, and it is checked: every command
//! record has exactly one outcome and no command runs twice, nothing a producer sent
//! is missing, the events are byte for byte what a fresh derivation gives, the
//! hash chain and checkpoints verify, the engine's last snapshot holds the derived
//! state, and the read models equal a rebuild from the log. The fencing rule is
//! checked on its own: every fence is its epoch's winner's on the control log, the
//! checker keeps the rule in its own code and agrees with every reader's record by
//! record, and the read models equal a rebuild from only the events it used.
//!
//! Why our own executor rather than turmoil or madsim: the engine's only contact
//! with the world is the `Log` trait and its snapshot directory, so simulating the
//! `Log` covers both logs' failure modes, while turmoil simulates sockets (the Kafka
//! client is librdkafka's C code, out of its reach) and madsim would rebuild the
//! whole workspace against a replacement tokio. Each actor is a future polled here
//! with a no-op waker; on anything but a multi-threaded runtime the engine and the
//! projector run their stages inline, so a seed replays exactly.

mod check;
mod control;
mod log;
mod report;
mod world;

use std::collections::BTreeSet;

pub use crate::log::{Rates, SimLog};
pub use crate::report::{Report, Totals};
use crate::world::{scratch, World};

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
    check::check(&mut world, &sent)?;
    Ok(world.report)
}
