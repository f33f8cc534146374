//! What a program on the market makers' side of the log needs: a door onto the
//! commands log (every command stamped, signed with the API key when one is given,
//! and keyed by account) and a follower of the events log. `tape mm` and `tape load`
//! use both, exactly as an outside client would.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tape_client::{CommandsDoor, Submitter};
use tape_log::{AnyLog, AnyReader, Log, LogReader};
use tape_schemas::*;

use crate::logs::{LogArgs, Role};

/// The signer of an API token (`tape_<id>_<secret>`), when one is given, on a new
/// random stream of its own.
pub fn signer(token: Option<&str>) -> anyhow::Result<Option<Signer>> {
    let stream = uuid::Uuid::new_v4().as_u64_pair().0;
    signer_on(token, Arc::new(SigningStream::new(stream)))
}

fn signer_on(token: Option<&str>, stream: Arc<SigningStream>) -> anyhow::Result<Option<Signer>> {
    token
        .map(|t| {
            Signer::from_token(t, stream)
                .context("the API token is malformed: expected tape_<key id>_<secret>")
        })
        .transpose()
}

/// Signs `envelope` when there is a signer, valid for half the longest validity the
/// engine allows.
pub fn seal(signer: Option<&Signer>, envelope: CommandEnvelope) -> anyhow::Result<CommandEnvelope> {
    Ok(match signer {
        Some(s) => {
            let expires_ms = tape_client::expiry(envelope.time_ms);
            s.sign(envelope, expires_ms)?
        }
        None => envelope,
    })
}

/// The commands log, as a client writes to it.
#[derive(Clone)]
pub struct Door {
    submitter: Submitter,
    signer: Option<Signer>,
}

impl Door {
    /// `token` is an API token (`tape_<id>_<secret>`); without one, commands go
    /// unsigned (accepted only while the engine does not require credentials).
    pub async fn open(logs: &LogArgs, token: Option<&str>) -> anyhow::Result<Door> {
        let door = match &logs.kafka {
            Some(_) => CommandsDoor::Shared(Arc::new(logs.open("commands", Role::Writer).await?)),
            // The submitter opens the embedded log only while it has work, so other
            // writers (a gateway, `tape produce`) take turns with it.
            None => CommandsDoor::Embedded(logs.data.join("commands")),
        };
        let submitter = Submitter::start(door);
        let signer = signer_on(token, submitter.stream())?;
        Ok(Door { submitter, signer })
    }

    /// A new envelope for `command`: a random id, the time now, signed when the
    /// door has a key.
    pub fn envelope(&self, command: Command) -> anyhow::Result<CommandEnvelope> {
        let id = CommandId(uuid::Uuid::new_v4());
        seal(
            self.signer.as_ref(),
            CommandEnvelope::new(id, tape_client::now_ms(), command),
        )
    }

    /// Queues an envelope behind those queued before it; the future gives its offset
    /// once it is durable.
    pub async fn queue(
        &self,
        envelope: &CommandEnvelope,
    ) -> anyhow::Result<impl std::future::Future<Output = anyhow::Result<u64>>> {
        let pending = self
            .submitter
            .queue(envelope)
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
        Ok(async move { pending.await.map_err(|e| anyhow::anyhow!(e)) })
    }

    /// Appends an envelope; returns its offset on the commands log once durable.
    pub async fn send(&self, envelope: &CommandEnvelope) -> anyhow::Result<u64> {
        self.submitter
            .submit(envelope)
            .await
            .map_err(|e| anyhow::anyhow!(e))
    }
}

/// The epoch in force just before `offset` on the events log, for a reader that
/// starts there: from the records before it (`tape_schemas::epoch_before`).
pub async fn epoch_at(log: &AnyLog, offset: u64) -> anyhow::Result<u64> {
    if offset == 0 || matches!(log, AnyLog::File(_) | AnyLog::Tool(_)) {
        // The embedded log has one writer and no fences: epoch 0 throughout.
        return Ok(0);
    }
    let window = (2 * APPEND_RECORDS_MAX as u64).min(offset);
    let records =
        tape_log::read_exactly(log, offset - window, window, Duration::from_secs(30)).await?;
    Ok(epoch_before(records.iter().map(|r| r.bytes.as_slice())))
}

/// Follows the events log in `seq` order under the fencing rule, skipping copies of
/// events already seen (a re-sent Kafka record, or a deposed engine's late appends).
pub struct Follower {
    log: AnyLog,
    reader: AnyReader,
    /// Events below its `seq` are copies (0: take the first one that comes).
    filter: EventFilter,
    next_offset: u64,
}

impl Follower {
    pub async fn open(logs: &LogArgs, from_seq: u64) -> anyhow::Result<Follower> {
        let log = logs.open("events", Role::Follower).await?;
        let from_seq = from_seq.max(1);
        // Copies and fences only push events later: `from_seq` is at this offset or
        // after.
        let epoch = epoch_at(&log, from_seq - 1).await?;
        let reader = log.reader(from_seq - 1).await?;
        Ok(Follower {
            log,
            reader,
            filter: EventFilter::new(from_seq, epoch),
            next_offset: from_seq - 1,
        })
    }

    /// From the events written after now.
    pub async fn from_end(logs: &LogArgs) -> anyhow::Result<Follower> {
        let log = logs.open("events", Role::Follower).await?;
        let end = log.end_offset().await?;
        let epoch = epoch_at(&log, end).await?;
        let reader = log.reader(end).await?;
        Ok(Follower {
            log,
            reader,
            filter: EventFilter::new(0, epoch),
            next_offset: end,
        })
    }

    /// Where the events log ends now (an offset).
    pub async fn end_offset(&self) -> anyhow::Result<u64> {
        Ok(self.log.end_offset().await?)
    }

    /// The offset after the last record read.
    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }

    /// The next events (none if `wait` passes first).
    pub async fn next(&mut self, wait: Duration) -> anyhow::Result<Vec<EventEnvelope>> {
        let batch = self.reader.next_batch(4_096, wait).await?;
        let mut out = Vec::with_capacity(batch.len());
        for r in batch {
            self.next_offset = r.offset + 1;
            if let Some(e) = self
                .filter
                .take(&r.bytes)
                .with_context(|| format!("undecodable event at offset {}", r.offset))?
            {
                out.push(e);
            }
        }
        Ok(out)
    }
}
