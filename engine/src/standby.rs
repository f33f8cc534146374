//! What the engine's writer is there to do: write alone (the embedded log, epoch 0),
//! or stand by behind a leader and take over when the control log says so (see
//! `failover`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::watch;

use crate::sequencer::EngineError;

/// A standby's state, as its writer sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FollowStatus {
    /// Waiting for the leader's next event (nothing of it left unread).
    pub caught_up: bool,
    /// Commands whose events it derived and found on the log, byte for byte.
    pub matched_commands: u64,
    /// The last event seq it matched (or appended, once it leads).
    pub matched_seq: u64,
    /// The epoch it leads, once it has fenced.
    pub leading: Option<u64>,
}

/// The writer's side of a standby: what the failover loop tells it and what it
/// reports back.
pub struct Link {
    pub(crate) writer: String,
    /// The epoch this engine won and must fence (set once).
    pub(crate) won: watch::Receiver<Option<u64>>,
    /// The highest epoch won on the control log.
    pub(crate) highest: Arc<AtomicU64>,
    pub(crate) status: watch::Sender<FollowStatus>,
    pub(crate) stop: watch::Receiver<bool>,
    pub(crate) fenced: Arc<AtomicBool>,
}

/// The failover loop's side of a [`Link`].
pub struct LinkHandle {
    pub won: watch::Sender<Option<u64>>,
    pub highest: Arc<AtomicU64>,
    pub status: watch::Receiver<FollowStatus>,
    pub fenced: Arc<AtomicBool>,
}

/// A linked pair for an engine called `writer`; `stop` ends its following.
pub fn link(writer: &str, stop: watch::Receiver<bool>) -> (Link, LinkHandle) {
    let (won_tx, won_rx) = watch::channel(None);
    let (status_tx, status_rx) = watch::channel(FollowStatus::default());
    let highest = Arc::new(AtomicU64::new(0));
    let fenced = Arc::new(AtomicBool::new(false));
    (
        Link {
            writer: writer.to_string(),
            won: won_rx,
            highest: highest.clone(),
            status: status_tx,
            stop,
            fenced: fenced.clone(),
        },
        LinkHandle {
            won: won_tx,
            highest,
            status: status_rx,
            fenced,
        },
    )
}

pub enum Duty {
    /// The only writer: epoch 0, no fences (the embedded log).
    Sole,
    Standby(Link),
}

impl Duty {
    pub(crate) fn report(&self, change: impl FnOnce(&mut FollowStatus)) {
        if let Duty::Standby(l) = self {
            l.status.send_modify(change);
        }
    }

    /// The epoch this standby won and has yet to fence; `StoppedFollowing` when it
    /// is told to stop while it follows.
    pub(crate) fn promoted(&self) -> Result<Option<u64>, EngineError> {
        match self {
            Duty::Sole => Ok(None),
            Duty::Standby(l) => {
                if *l.stop.borrow() {
                    return Err(EngineError::StoppedFollowing);
                }
                Ok(*l.won.borrow())
            }
        }
    }

    /// What it last reported.
    pub(crate) fn caught_up(&self) -> bool {
        match self {
            Duty::Sole => false,
            Duty::Standby(l) => l.status.borrow().caught_up,
        }
    }

    pub(crate) fn writer(&self) -> &str {
        match self {
            Duty::Sole => "sole",
            Duty::Standby(l) => &l.writer,
        }
    }

    pub(crate) fn fenced(&self) {
        if let Duty::Standby(l) = self {
            l.fenced.store(true, Ordering::Release);
        }
    }

    /// True once an epoch above the one this engine leads has won.
    pub(crate) fn deposed(&self) -> bool {
        match self {
            Duty::Sole => false,
            Duty::Standby(l) => {
                let mine = *l.won.borrow();
                mine.is_some_and(|m| l.highest.load(Ordering::Acquire) > m)
            }
        }
    }

    pub(crate) fn highest_epoch(&self) -> u64 {
        match self {
            Duty::Sole => 0,
            Duty::Standby(l) => l.highest.load(Ordering::Acquire),
        }
    }
}
