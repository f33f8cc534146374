//! What the engine has done, for metrics: plain atomics the engine's stages update
//! and anything may read (the CLI turns them into Prometheus gauges).

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct EngineStats {
    commands_applied: AtomicU64,
    next_command: AtomicU64,
    durable_seq: AtomicU64,
    snapshot_unix_ms: AtomicU64,
    trusted_ms: AtomicU64,
    credentials_required: std::sync::atomic::AtomicBool,
    liquidation_backlog: AtomicU64,
    liquidation_sweeps: AtomicU64,
}

/// A consistent-enough reading of [`EngineStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsReading {
    /// Commands applied since this process started.
    pub commands_applied: u64,
    /// The commands-log offset of the next command to apply.
    pub next_command: u64,
    /// The `seq` of the last event known durable on the events log (0: none yet).
    pub durable_seq: u64,
    /// When the last snapshot was written (ms since the UNIX epoch; 0: none by this
    /// process).
    pub snapshot_unix_ms: u64,
    /// The core's trusted time (`Core::trusted_ms`; 0: none yet).
    pub trusted_ms: u64,
    pub credentials_required: bool,
    /// Accounts below maintenance waiting for liquidation steps.
    pub liquidation_backlog: u64,
    /// Perpetuals whose mark crossed positions not all checked yet.
    pub liquidation_sweeps: u64,
}

impl EngineStats {
    pub(crate) fn applied(&self, commands: u64, next_command: u64) {
        self.commands_applied.fetch_add(commands, Ordering::Relaxed);
        self.next_command.store(next_command, Ordering::Relaxed);
    }

    /// The core's time source after a batch.
    pub(crate) fn clock(&self, trusted_ms: u64, credentials_required: bool) {
        self.trusted_ms.store(trusted_ms, Ordering::Relaxed);
        self.credentials_required
            .store(credentials_required, Ordering::Relaxed);
    }

    /// The core's liquidation work carried over after a batch.
    pub(crate) fn liquidations(&self, core: &tape_core::Core) {
        let (backlog, sweeps) = (core.liquidation_backlog(), core.liquidation_sweeps());
        self.liquidation_backlog
            .store(backlog as u64, Ordering::Relaxed);
        self.liquidation_sweeps
            .store(sweeps as u64, Ordering::Relaxed);
    }

    pub(crate) fn durable(&self, seq: u64) {
        self.durable_seq.fetch_max(seq, Ordering::Relaxed);
    }

    /// A snapshot was written just now.
    pub(crate) fn snapshot(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.snapshot_unix_ms.store(now, Ordering::Relaxed);
    }

    pub fn read(&self) -> StatsReading {
        StatsReading {
            commands_applied: self.commands_applied.load(Ordering::Relaxed),
            next_command: self.next_command.load(Ordering::Relaxed),
            durable_seq: self.durable_seq.load(Ordering::Relaxed),
            snapshot_unix_ms: self.snapshot_unix_ms.load(Ordering::Relaxed),
            trusted_ms: self.trusted_ms.load(Ordering::Relaxed),
            credentials_required: self.credentials_required.load(Ordering::Relaxed),
            liquidation_backlog: self.liquidation_backlog.load(Ordering::Relaxed),
            liquidation_sweeps: self.liquidation_sweeps.load(Ordering::Relaxed),
        }
    }
}
