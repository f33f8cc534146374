//! The engine's clock: the largest command time seen, and the latest time stamped by
//! the operator's side, which bounds how far a trader's stamp may move it.

use tape_schemas::{Command, CommandEnvelope, RejectReason, TIME_TOLERANCE_MS};

use crate::config::CoreConfig;

#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Clock {
    /// The running maximum of the command times applied.
    now_ms: u64,
    /// The latest time stamped by the operator's side (admin keys, or unsigned
    /// commands while credentials are optional).
    trusted_ms: u64,
}

impl Clock {
    /// The engine's time: the largest command time applied.
    pub fn now(&self) -> u64 {
        self.now_ms
    }

    /// The latest trusted stamp.
    pub fn trusted(&self) -> u64 {
        self.trusted_ms
    }

    /// What a trusted clock may say: nothing past the horizon, and no jump forward
    /// beyond `clock_jump_max_ms` unless the command is the operator's
    /// `AllowClockJump` (the first time sets the clock from nothing). Going back is
    /// harmless: the clock is a running maximum.
    pub fn check_trusted(
        &self,
        cfg: &CoreConfig,
        envelope: &CommandEnvelope,
    ) -> Result<(), RejectReason> {
        let t = envelope.time_ms;
        if t > cfg.time_max_ms {
            return Err(RejectReason::TimeBeyondHorizon);
        }
        let jump_ok = self.now_ms == 0
            || matches!(envelope.command, Command::AllowClockJump)
            || t <= self.now_ms.saturating_add(cfg.clock_jump_max_ms);
        if !jump_ok {
            return Err(RejectReason::ClockJumpTooLarge);
        }
        Ok(())
    }

    /// The time a command runs at: a trusted stamp as it is (and it moves the
    /// trusted time), anyone else's at most `TIME_TOLERANCE_MS` past the trusted time.
    pub fn stamp(&mut self, time_ms: u64, trusted: bool) -> u64 {
        if trusted {
            self.trusted_ms = self.trusted_ms.max(time_ms);
            time_ms
        } else {
            time_ms.min(self.trusted_ms.saturating_add(TIME_TOLERANCE_MS))
        }
    }

    /// Moves the clock to `time_ms` if that is later.
    pub fn advance(&mut self, time_ms: u64) {
        self.now_ms = self.now_ms.max(time_ms);
    }
}
