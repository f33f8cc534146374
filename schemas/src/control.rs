//! The control log (Kafka topic `tape.control`, one partition): how engines of one
//! shard agree who writes the events log. The leader heartbeats; a standby that
//! hears none for a while claims the next epoch; the first claim of an epoch in the
//! log's order wins (see [`Leadership`]). Operators ask a standby to take over with
//! `Promote`, and it answers with its claim or with `Refused`.

/// One record of the control log.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ControlRecord {
    /// The leader of `epoch` is alive; `seq` is its last durable event.
    Heartbeat {
        epoch: u64,
        writer: String,
        seq: u64,
        /// The writer's wall clock (ms since the UNIX epoch), for people reading it.
        at_ms: u64,
    },
    /// `writer` asks to lead `epoch` (the current epoch + 1).
    Claim { epoch: u64, writer: String },
    /// A standby's state, every second or so.
    Standby {
        writer: String,
        /// Only an operator's `Promote` makes it claim.
        shadow: bool,
        /// Commands whose events it derived and found identical to the leader's.
        matched_commands: u64,
        matched_seq: u64,
        /// The first difference it found, if any: it will refuse to lead.
        diverged: Option<String>,
        at_ms: u64,
    },
    /// An operator asks `writer` to take over once it has matched at least
    /// `min_matched` commands.
    Promote { writer: String, min_matched: u64 },
    /// `writer` will not take over, and why.
    Refused { writer: String, why: String },
}

/// Who leads, as the control log says, read in order.
///
/// The log is read from a window before its end when it is long: claims before the
/// first heartbeat in the window are ignored (the heartbeat says who won them), so a
/// window that starts between two rival claims cannot crown the second.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Leadership {
    pub epoch: u64,
    pub leader: Option<String>,
    anchored: bool,
}

/// What one record changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// `writer` now leads `epoch`.
    Won {
        epoch: u64,
        writer: String,
    },
    /// A heartbeat of the epoch in force.
    Alive {
        epoch: u64,
        writer: String,
        seq: u64,
    },
    Nothing,
}

impl Leadership {
    /// Reading from the log's first record: every claim counts.
    pub fn from_start() -> Leadership {
        Leadership {
            anchored: true,
            ..Default::default()
        }
    }

    /// Reading from a window that may start after the first record.
    pub fn from_window() -> Leadership {
        Leadership::default()
    }

    /// True once a heartbeat (or the log's start) has fixed the epoch.
    pub fn anchored(&self) -> bool {
        self.anchored
    }

    pub fn apply(&mut self, record: &ControlRecord) -> Change {
        match record {
            ControlRecord::Heartbeat {
                epoch, writer, seq, ..
            } => {
                if *epoch > self.epoch || (!self.anchored && *epoch >= self.epoch) {
                    // Only a winner heartbeats: a higher epoch's heartbeat proves its
                    // claim won, even if the claim was before this reader's window.
                    self.anchored = true;
                    self.epoch = *epoch;
                    self.leader = Some(writer.clone());
                    return Change::Won {
                        epoch: *epoch,
                        writer: writer.clone(),
                    };
                }
                if *epoch == self.epoch && self.leader.as_ref() == Some(writer) {
                    return Change::Alive {
                        epoch: *epoch,
                        writer: writer.clone(),
                        seq: *seq,
                    };
                }
                Change::Nothing // a deposed leader's late heartbeat
            }
            ControlRecord::Claim { epoch, writer } if self.anchored && *epoch == self.epoch + 1 => {
                self.epoch = *epoch;
                self.leader = Some(writer.clone());
                Change::Won {
                    epoch: *epoch,
                    writer: writer.clone(),
                }
            }
            _ => Change::Nothing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(epoch: u64, w: &str) -> ControlRecord {
        ControlRecord::Claim {
            epoch,
            writer: w.into(),
        }
    }
    fn beat(epoch: u64, w: &str) -> ControlRecord {
        ControlRecord::Heartbeat {
            epoch,
            writer: w.into(),
            seq: 0,
            at_ms: 0,
        }
    }

    #[test]
    fn the_first_claim_of_the_next_epoch_wins_and_later_rivals_lose() {
        let mut l = Leadership::from_start();
        assert!(matches!(
            l.apply(&claim(1, "a")),
            Change::Won { epoch: 1, .. }
        ));
        assert_eq!(l.apply(&claim(1, "b")), Change::Nothing);
        // A claim that skips an epoch is void.
        assert_eq!(l.apply(&claim(3, "b")), Change::Nothing);
        assert!(matches!(l.apply(&beat(1, "a")), Change::Alive { .. }));
        assert!(matches!(
            l.apply(&claim(2, "b")),
            Change::Won { epoch: 2, .. }
        ));
        // The deposed leader's late heartbeat changes nothing.
        assert_eq!(l.apply(&beat(1, "a")), Change::Nothing);
        assert_eq!((l.epoch, l.leader.as_deref()), (2, Some("b")));
    }

    #[test]
    fn a_window_ignores_claims_until_a_heartbeat_says_who_leads() {
        let mut l = Leadership::from_window();
        // The window starts after "a"'s winning claim of 4: "b"'s rival claim of 4
        // must not win.
        assert_eq!(l.apply(&claim(4, "b")), Change::Nothing);
        assert!(matches!(
            l.apply(&beat(4, "a")),
            Change::Won { epoch: 4, .. }
        ));
        assert!(matches!(
            l.apply(&claim(5, "b")),
            Change::Won { epoch: 5, .. }
        ));
        assert_eq!(l.leader.as_deref(), Some("b"));
    }
}
