//! The gateway's door onto the commands log: a task that group-commits what
//! mutations submit, and the wait for a command's outcome in the read models.
//!
//! On the embedded log the task hands its records to the log's owner (`tape run`,
//! `tape engine`) through the owner's door; only when no owner runs does it open
//! the log itself, and then only while it has work.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tape_log::{AnyLog, ToolWriter};
use tape_projections::{OutcomeView, Progress, Views};
use tape_schemas::*;
use tokio::sync::{mpsc, oneshot, watch};

/// Where commands go.
pub enum CommandsDoor {
    /// A log this process keeps open (Kafka; records keyed by account).
    Shared(Arc<AnyLog>),
    /// The embedded log in this directory: through its owner's door, or opened
    /// for writing while there is work when no owner runs.
    Embedded(PathBuf),
}

type Reply = oneshot::Sender<Result<u64, String>>;

/// Why a command could not be queued: it does not encode (bad input), or the log's
/// writer is gone.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the command does not encode: {0}")]
    Encode(CodecError),
    #[error("{0}")]
    Log(String),
}
/// A record and its topic key.
type Keyed = (Option<Vec<u8>>, Vec<u8>);

/// Commands queued for the log, at most.
const QUEUE_COMMANDS_MAX: usize = 16_384;
/// Commands appended together, at most.
const APPEND_COMMANDS_MAX: usize = 4_096;

#[derive(Clone)]
pub struct Submitter {
    tx: mpsc::Sender<(Keyed, Reply)>,
    /// This process's signing stream (a random number per start): every key this
    /// door signs for takes its `seq`s from it.
    stream: Arc<SigningStream>,
    /// Held from taking a `seq` to queueing its record, so records reach the log in
    /// the order of their numbers however many requests sign at once.
    in_order: Arc<tokio::sync::Mutex<()>>,
    /// Where recent commands went, by (signing key, command id), so a retry with the
    /// same id is answered with the original receipt.
    submitted: Arc<std::sync::Mutex<Submitted>>,
}

/// Commands this door remembers having appended, at most.
const SUBMITTED_MAX: usize = 65_536;

/// The offsets of the last `SUBMITTED_MAX` commands appended, by (key, id); 0 is
/// the key of unsigned commands.
#[derive(Default)]
struct Submitted {
    offsets: std::collections::HashMap<(u64, CommandId), u64>,
    order: std::collections::VecDeque<(u64, CommandId)>,
}

impl Submitted {
    fn insert(&mut self, key: (u64, CommandId), offset: u64) {
        if self.offsets.insert(key, offset).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > SUBMITTED_MAX {
            if let Some(old) = self.order.pop_front() {
                self.offsets.remove(&old);
            }
        }
    }
}

impl Submitter {
    pub fn start(door: CommandsDoor) -> Submitter {
        let (tx, rx) = mpsc::channel(QUEUE_COMMANDS_MAX);
        tokio::spawn(writer(door, rx));
        Submitter {
            tx,
            stream: Arc::new(SigningStream::new(rand::random())),
            in_order: Arc::new(tokio::sync::Mutex::new(())),
            submitted: Arc::default(),
        }
    }

    /// The offset of a command this door appended for `key` (0: unsigned) with
    /// `id`, while remembered.
    pub fn submitted(&self, key: u64, id: CommandId) -> Option<u64> {
        let submitted = self.submitted.lock().unwrap_or_else(|e| e.into_inner());
        submitted.offsets.get(&(key, id)).copied()
    }

    /// Remembers where a command for `key` (0: unsigned) with `id` went.
    pub fn remember(&self, key: u64, id: CommandId, offset: u64) {
        let mut submitted = self.submitted.lock().unwrap_or_else(|e| e.into_inner());
        submitted.insert((key, id), offset);
    }

    /// The signing stream of this door.
    pub fn stream(&self) -> Arc<SigningStream> {
        self.stream.clone()
    }

    /// A signer for an API token on this door's stream (`None`: malformed token).
    pub fn signer(&self, token: &str) -> Option<Signer> {
        Signer::from_token(token, self.stream())
    }

    /// Signs `envelope` with `signer` (valid until `expires_ms`; unsigned without a
    /// signer) and queues it, in one step; returns a future of its offset.
    pub async fn queue_signed(
        &self,
        envelope: CommandEnvelope,
        signer: Option<&Signer>,
        expires_ms: u64,
    ) -> Result<impl std::future::Future<Output = Result<u64, String>>, QueueError> {
        let _in_order = self.in_order.lock().await;
        let envelope = match signer {
            Some(s) => s.sign(envelope, expires_ms).map_err(QueueError::Encode)?,
            None => envelope,
        };
        self.queue(&envelope).await.map_err(QueueError::Log)
    }

    /// Appends one command; returns its offset once it is durable.
    pub async fn submit(&self, envelope: &CommandEnvelope) -> Result<u64, String> {
        self.queue(envelope).await?.await
    }

    /// Queues one command behind those queued before it and returns, without
    /// waiting for the append, a future of its offset. Commands queued one after
    /// another reach the log in that order.
    pub async fn queue(
        &self,
        envelope: &CommandEnvelope,
    ) -> Result<impl std::future::Future<Output = Result<u64, String>>, String> {
        let bytes = codec::to_bincode(envelope).map_err(|e| e.to_string())?;
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(((envelope.command.topic_key(), bytes), reply))
            .await
            .map_err(|_| "the commands log writer has stopped".to_string())?;
        Ok(async move {
            answer
                .await
                .map_err(|_| "the commands log writer has stopped".to_string())?
        })
    }
}

/// How long a tool holding the embedded log itself (no owner runs) keeps it after
/// its last append, before it lets another writer in.
const HOLD_IDLE: Duration = Duration::from_millis(200);
/// How often a tool holding the log while idle looks whether an owner waits for it.
const HOLD_CHECK: Duration = Duration::from_millis(20);

async fn writer(door: CommandsDoor, mut rx: mpsc::Receiver<(Keyed, Reply)>) {
    // On the embedded log: through the owner's door while `tape run` or `tape
    // engine` serves it; when nothing does, holding the log itself while there is
    // work, and letting go when idle or when an owner asks for its turn.
    let (shared, mut tool) = match door {
        CommandsDoor::Embedded(dir) => (None, Some(ToolWriter::new(dir))),
        CommandsDoor::Shared(log) => (Some(log), None),
    };
    loop {
        let first = match tool.as_mut() {
            Some(t) if t.holds_log() => {
                let mut idle = Duration::ZERO;
                loop {
                    match tokio::time::timeout(HOLD_CHECK, rx.recv()).await {
                        Ok(m) => break m,
                        Err(_) => {
                            idle += HOLD_CHECK;
                            if idle >= HOLD_IDLE || t.owner_waiting() {
                                t.release();
                                break rx.recv().await;
                            }
                        }
                    }
                }
            }
            _ => rx.recv().await,
        };
        let Some(first) = first else { return };
        let mut batch = vec![first];
        while batch.len() < APPEND_COMMANDS_MAX {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let (records, replies): (Vec<Keyed>, Vec<Reply>) = batch.into_iter().unzip();
        let appended = match (&shared, tool.as_mut()) {
            (_, Some(t)) => {
                t.append(records.into_iter().map(|(_, r)| r).collect())
                    .await
            }
            (Some(log), None) => log.append_keyed(records).await,
            (None, None) => Err(tape_log::LogError::Closed),
        };
        match appended {
            Ok(offsets) => {
                for (r, offset) in replies.into_iter().zip(offsets) {
                    let _ = r.send(Ok(offset));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "appending to the commands log failed");
                for r in replies {
                    let _ = r.send(Err(format!("commands log: {e}")));
                }
            }
        }
    }
}

/// Waits until the read models hold the outcome of the command at `offset` *and*
/// all its effects (an
/// event of a later command was applied, or the projector found the events log
/// exhausted after it). `None` when `wait` ran out first.
pub async fn wait_outcome(
    views: &Views,
    progress: &mut watch::Receiver<Progress>,
    command: CommandId,
    offset: u64,
    wait: Duration,
) -> Result<Option<OutcomeView>, String> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let now = *progress.borrow_and_update();
        let outcome = views.outcome_at(offset).map_err(|e| e.to_string())?;
        if let Some(o) = outcome {
            if o.command != command {
                return Err(format!(
                    "the commands log holds another command at offset {offset}"
                ));
            }
            let later = now
                .last_command_offset
                .is_some_and(|c| c > o.command_offset);
            if later || (now.idle && now.next_seq > o.seq) {
                return Ok(Some(o));
            }
        }
        match tokio::time::timeout_at(deadline, progress.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err("the projector has stopped".to_string()),
            Err(_) => return Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_for_retries_keep_only_the_newest() {
        let mut s = Submitted::default();
        let total = SUBMITTED_MAX as u128 * 3;
        for n in 0..total {
            s.insert((n as u64 % 5, CommandId::from_u128(n)), n as u64);
        }
        assert_eq!(s.offsets.len(), SUBMITTED_MAX);
        assert_eq!(s.order.len(), SUBMITTED_MAX);
        let newest = total - 1;
        assert_eq!(
            s.offsets
                .get(&(newest as u64 % 5, CommandId::from_u128(newest))),
            Some(&(newest as u64))
        );
        assert!(!s.offsets.contains_key(&(0, CommandId::from_u128(0))));
    }
}
