//! What a run, and many runs, did.

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
    pub damaged_snapshots: u32,
    /// Engines stopped (SIGSTOP) for a while.
    pub pauses: u32,
    /// Epochs won on the control log after the first.
    pub takeovers: u32,
    /// Claims after silence the control log made void (the leader heartbeat after
    /// what the claimer had read).
    pub void_claims: u32,
    /// Leaders that stood down on learning a later epoch had won.
    pub depositions: u32,
    /// Fences on the events log.
    pub fences: u32,
    /// Records on the events log that the fencing rule sets aside (a deposed
    /// leader's, after a later fence).
    pub fenced_records: u32,
    /// blake3 of the commands log as the run left it (its order is the schedule's).
    pub commands_digest: [u8; 32],
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {} ({}, {} producers): {} steps, {} command records ({} copies), {} events ({} copies); \
             crashes: engine {} projector {}; engine errors {}; power losses {} ({} torn bytes); \
             outages {}; damaged snapshots {}; pauses {}, takeovers {} ({} void claims), \
             depositions {}, fences {}, fenced records {}",
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
            self.damaged_snapshots,
            self.pauses,
            self.takeovers,
            self.void_claims,
            self.depositions,
            self.fences,
            self.fenced_records
        )
    }
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
    pub damaged_snapshots: u64,
    pub pauses: u64,
    pub takeovers: u64,
    pub void_claims: u64,
    pub depositions: u64,
    pub fences: u64,
    pub fenced_records: u64,
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
        self.damaged_snapshots += u64::from(r.damaged_snapshots);
        self.pauses += u64::from(r.pauses);
        self.takeovers += u64::from(r.takeovers);
        self.void_claims += u64::from(r.void_claims);
        self.depositions += u64::from(r.depositions);
        self.fences += u64::from(r.fences);
        self.fenced_records += u64::from(r.fenced_records);
    }
}

impl std::fmt::Display for Totals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} seeds ({} on the embedded log, {} on the broker): {} command records ({} copies), \
             {} events ({} copies); engine crashes {}, engine errors {}, projector crashes {}, \
             power losses {} ({} torn bytes), broker outages {}, damaged snapshots {}; \
             pauses {}, takeovers {} ({} void claims), depositions {}, fences {}, fenced records {}",
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
            self.damaged_snapshots,
            self.pauses,
            self.takeovers,
            self.void_claims,
            self.depositions,
            self.fences,
            self.fenced_records
        )
    }
}
