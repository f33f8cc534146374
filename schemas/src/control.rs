//! The control log (Kafka topic `tape.control`, one partition): how engines of one
//! shard agree who writes the events log. The leader heartbeats; a standby that
//! hears none for a while claims the next epoch, naming the last sign of life it
//! read; the first claim of an epoch in the log's order wins, unless the leader
//! heartbeat between that sign and the claim (see [`Leadership`]). Operators ask a
//! standby to take over with `Promote`, and it answers with its claim or with
//! `Refused`.

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
    /// `writer` asks to lead `epoch` (the current epoch + 1), whatever the leader
    /// is doing: an operator's promotion.
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
    /// `writer` asks to lead `epoch` (the current epoch + 1) because the leader has
    /// been silent since the control record at offset `heard` (the last heartbeat or
    /// win of the epoch in force it read). Void if that epoch shows life later in
    /// the log, before this claim: the claimer's view was stale (its reader lagged,
    /// or the broker was slow), and the leader is alive.
    ClaimSilent {
        epoch: u64,
        writer: String,
        heard: u64,
    },
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
    /// The offset of the epoch in force's last sign of life (its winning claim or
    /// its latest heartbeat) in the records read.
    alive: Option<u64>,
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
    /// `writer`'s claim of `epoch` after silence is void: the leader heartbeat
    /// after the last sign of life the claimer had read.
    Void {
        epoch: u64,
        writer: String,
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

    /// The offset of the epoch in force's last sign of life read, to name in a
    /// claim after silence.
    pub fn last_alive(&self) -> Option<u64> {
        self.alive
    }

    /// Applies the record at `offset` (records are applied in the log's order).
    pub fn apply(&mut self, offset: u64, record: &ControlRecord) -> Change {
        match record {
            ControlRecord::Heartbeat {
                epoch, writer, seq, ..
            } => {
                if *epoch > self.epoch || (!self.anchored && *epoch >= self.epoch) {
                    // Only a winner heartbeats: a higher epoch's heartbeat proves its
                    // claim won, even if the claim was before this reader's window.
                    self.anchored = true;
                    return self.win(offset, *epoch, writer);
                }
                if *epoch == self.epoch && self.leader.as_ref() == Some(writer) {
                    self.alive = Some(offset);
                    return Change::Alive {
                        epoch: *epoch,
                        writer: writer.clone(),
                        seq: *seq,
                    };
                }
                Change::Nothing // a deposed leader's late heartbeat
            }
            ControlRecord::Claim { epoch, writer } if self.anchored && *epoch == self.epoch + 1 => {
                self.win(offset, *epoch, writer)
            }
            ControlRecord::ClaimSilent {
                epoch,
                writer,
                heard,
            } if self.anchored && *epoch == self.epoch + 1 => {
                if self.alive.is_some_and(|alive| alive > *heard) {
                    Change::Void {
                        epoch: *epoch,
                        writer: writer.clone(),
                    }
                } else {
                    self.win(offset, *epoch, writer)
                }
            }
            _ => Change::Nothing,
        }
    }

    /// `writer` leads `epoch` from the record at `offset`.
    fn win(&mut self, offset: u64, epoch: u64, writer: &str) -> Change {
        self.epoch = epoch;
        self.leader = Some(writer.to_string());
        self.alive = Some(offset);
        Change::Won {
            epoch,
            writer: writer.to_string(),
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
    fn silent(epoch: u64, w: &str, heard: u64) -> ControlRecord {
        ControlRecord::ClaimSilent {
            epoch,
            writer: w.into(),
            heard,
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

    /// Applies `log` in order (offsets from 0): what each record changed.
    fn fold(l: &mut Leadership, log: &[ControlRecord]) -> Vec<Change> {
        log.iter()
            .enumerate()
            .map(|(i, r)| l.apply(i as u64, r))
            .collect()
    }

    fn won(epoch: u64, w: &str) -> Change {
        Change::Won {
            epoch,
            writer: w.into(),
        }
    }

    #[test]
    fn the_first_claim_of_the_next_epoch_wins_and_later_rivals_lose() {
        let mut l = Leadership::from_start();
        let changes = fold(
            &mut l,
            &[
                claim(1, "a"),
                claim(1, "b"),
                claim(3, "b"), // skips an epoch: void
                beat(1, "a"),
                claim(2, "b"),
                beat(1, "a"), // the deposed leader's late heartbeat
            ],
        );
        assert_eq!(changes[0], won(1, "a"));
        assert_eq!(changes[1], Change::Nothing);
        assert_eq!(changes[2], Change::Nothing);
        assert!(matches!(changes[3], Change::Alive { epoch: 1, .. }));
        assert_eq!(changes[4], won(2, "b"));
        assert_eq!(changes[5], Change::Nothing);
        assert_eq!((l.epoch, l.leader.as_deref()), (2, Some("b")));
    }

    #[test]
    fn a_window_ignores_claims_until_a_heartbeat_says_who_leads() {
        let mut l = Leadership::from_window();
        // The window starts after "a"'s winning claim of 4: "b"'s rival claim of 4
        // must not win.
        let changes = fold(&mut l, &[claim(4, "b"), beat(4, "a"), claim(5, "b")]);
        assert_eq!(changes, vec![Change::Nothing, won(4, "a"), won(5, "b")]);
        assert_eq!(l.leader.as_deref(), Some("b"));
    }

    #[test]
    fn a_claim_after_silence_is_void_when_the_leader_heartbeat_after_what_it_heard() {
        let mut l = Leadership::from_start();
        let changes = fold(
            &mut l,
            &[
                claim(1, "a"),
                beat(1, "a"),      // 1
                beat(1, "a"),      // 2: "b" never read this one
                silent(2, "b", 1), // stale: void
                silent(2, "c", 2), // heard the latest: wins
                beat(1, "a"),
            ],
        );
        assert_eq!(
            changes[3],
            Change::Void {
                epoch: 2,
                writer: "b".into()
            }
        );
        assert_eq!(changes[4], won(2, "c"));
        assert_eq!(changes[5], Change::Nothing);
        // A claim after silence may name its own epoch's win as the last sign of
        // life (the leader never heartbeat), and the leader's own win counts as life.
        assert_eq!(l.last_alive(), Some(4));
        let more = fold(&mut l, &[]);
        assert!(more.is_empty());
        assert_eq!(l.apply(6, &silent(3, "b", 4)), won(3, "b"));
        assert_eq!(
            l.apply(7, &silent(4, "c", 4)),
            Change::Void {
                epoch: 4,
                writer: "c".into()
            }
        );
    }

    #[test]
    fn an_operators_promotion_wins_whatever_the_leader_is_doing() {
        let mut l = Leadership::from_start();
        let changes = fold(&mut l, &[claim(1, "a"), beat(1, "a"), claim(2, "b")]);
        assert_eq!(changes[2], won(2, "b"));
    }

    /// Claims as engines make them: each reads the log in order and claims the epoch
    /// after the one in force as it has read it, after silence naming the last sign
    /// of life it read.
    #[test]
    fn no_window_crowns_anyone_the_whole_log_does_not() {
        let log = vec![
            claim(1, "a"),
            beat(1, "a"),
            silent(2, "b", 0), // void: a heartbeat came after the win
            beat(1, "a"),
            silent(2, "b", 3),
            silent(2, "c", 3), // c had read up to 3: a rival for a taken epoch
            beat(2, "b"),
            beat(1, "a"),      // the deposed leader's late heartbeat
            silent(2, "c", 3), // c again, still behind
            beat(2, "b"),
            silent(3, "a", 6), // void: b heartbeat at 9
            claim(3, "a"),     // a promotion
            silent(4, "b", 11),
            beat(4, "b"),
        ];
        let whole = fold(&mut Leadership::from_start(), &log);
        assert_eq!(
            whole
                .iter()
                .filter(|c| matches!(c, Change::Void { .. }))
                .count(),
            2
        );
        for start in 1..log.len() {
            let mut l = Leadership::from_window();
            for (i, r) in log.iter().enumerate().skip(start) {
                let change = l.apply(i as u64, r);
                // A window that anchors on a deposed leader's late heartbeat sees
                // an old epoch until the leader's next heartbeat (a claim the whole
                // log ignores may read Void there), but it crowns no one the whole
                // log does not.
                if let Change::Won { epoch, writer } = change {
                    assert!(
                        whole.contains(&won(epoch, &writer)),
                        "window from {start}, record {i}: {writer} won {epoch}"
                    );
                }
            }
            assert_eq!(
                (l.epoch, l.leader.as_deref()),
                (4, Some("b")),
                "window from {start}"
            );
        }
    }
}
