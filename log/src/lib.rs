//! Tape's append-only log: one interface (`Log`, `LogReader`) and two
//! implementations — the embedded file log (the default: segment files, length + CRC
//! framing, group-commit fsync, torn tails truncated on open) and the Kafka log
//! (rdkafka, idempotent producer, `acks=all`, topics created with unlimited
//! retention). An append is acknowledged only once it is durable.
//!
//! This crate moves bytes; it never interprets them.

// No function over 70 lines (clippy.toml): split along the seams, or allow it with
// the reason beside it. `.ci/run` denies warnings, so this is a gate.
#![warn(clippy::too_many_lines)]

pub mod door;
pub mod file;
pub mod kafka;

use std::future::Future;
use std::time::Duration;

pub use door::{DoorClient, DoorError, ToolLog, ToolWriter};
pub use file::{FileLog, FileLogOptions, OpenReport};
pub use kafka::{KafkaLog, KafkaOptions, KafkaPublisher};

/// The largest record a log accepts (a command or event is far smaller).
pub const RECORD_BYTES_MAX: usize = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("io error on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the log in {path} is corrupt at byte {at}: {what}")]
    Corrupt { path: String, at: u64, what: String },
    #[error("record of {size_bytes} bytes is larger than the limit of {RECORD_BYTES_MAX}")]
    RecordTooLarge { size_bytes: usize },
    #[error("the log in {path} is already open for writing by another process")]
    Locked { path: String },
    #[error("{0}")]
    Door(String),
    #[error("kafka: {0}")]
    Kafka(String),
    #[error("the log is closed")]
    Closed,
    #[error("offset {0} is beyond the end of the log")]
    OffsetOutOfRange(u64),
}

pub type Result<T> = std::result::Result<T, LogError>;

/// One record read back: its offset (0-based, gap-free per log) and its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub offset: u64,
    pub bytes: Vec<u8>,
}

/// An append-only log of byte records.
pub trait Log: Send + Sync {
    type Reader: LogReader + Send;

    /// Appends records in order and returns their offsets. It returns only when the
    /// records are durable (fsynced, or acknowledged by all in-sync replicas).
    fn append(&self, records: Vec<Vec<u8>>) -> impl Future<Output = Result<Vec<u64>>> + Send;

    /// The offset the next appended record will get: one past the last durable one.
    fn end_offset(&self) -> impl Future<Output = Result<u64>> + Send;

    /// A reader positioned at `from`.
    fn reader(&self, from: u64) -> impl Future<Output = Result<Self::Reader>> + Send;

    /// An offset at or below the end, found cheaply (Kafka: the broker's high
    /// watermark alone, one round trip; tansu's is the last batch's first record).
    /// For a follower asking "is there more than I have read?" often.
    fn end_at_least(&self) -> impl Future<Output = Result<u64>> + Send {
        self.end_offset()
    }
}

pub trait LogReader {
    /// Up to `max` records from the reader's position, in order; waits up to `wait`
    /// for the first one when none is available (then returns an empty batch).
    fn next_batch(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> impl Future<Output = Result<Vec<Record>>> + Send;

    /// How long a read must wait to be sure that no record is there *now*: zero for
    /// the embedded log (its durable end is exact, and one engine step becomes
    /// durable at once), a fetch's time for Kafka. A reader that reports "caught
    /// up" waits this long, not longer.
    fn settle(&self) -> Duration {
        Duration::ZERO
    }
}

/// The `count` records from offset `from`, in order, waiting up to `within` for them
/// all. Fewer within the time is `OffsetOutOfRange` at the first one missing; a
/// record out of order (a gap or a repeat) is `Corrupt`. For tools and tests that
/// read a known stretch of a log whole.
pub async fn read_exactly<L: Log>(
    log: &L,
    from: u64,
    count: u64,
    within: Duration,
) -> Result<Vec<Record>> {
    let mut reader = log.reader(from).await?;
    let deadline = std::time::Instant::now() + within;
    let mut out: Vec<Record> = Vec::new();
    while (out.len() as u64) < count {
        let next = from + out.len() as u64;
        if std::time::Instant::now() >= deadline {
            return Err(LogError::OffsetOutOfRange(next));
        }
        let want = usize::try_from(count - out.len() as u64).map_or(65_536, |n| n.min(65_536));
        for r in reader.next_batch(want, Duration::from_millis(200)).await? {
            let expected = from + out.len() as u64;
            if r.offset != expected {
                return Err(LogError::Corrupt {
                    path: "reader".into(),
                    at: r.offset,
                    what: format!(
                        "record at offset {} where {expected} was expected",
                        r.offset
                    ),
                });
            }
            out.push(r);
        }
    }
    Ok(out)
}

impl<L: Log> Log for std::sync::Arc<L> {
    type Reader = L::Reader;

    fn append(&self, records: Vec<Vec<u8>>) -> impl Future<Output = Result<Vec<u64>>> + Send {
        (**self).append(records)
    }

    fn end_offset(&self) -> impl Future<Output = Result<u64>> + Send {
        (**self).end_offset()
    }

    fn reader(&self, from: u64) -> impl Future<Output = Result<Self::Reader>> + Send {
        (**self).reader(from)
    }

    fn end_at_least(&self) -> impl Future<Output = Result<u64>> + Send {
        (**self).end_at_least()
    }
}

/// Either log, chosen at run time (`--data DIR` or `--kafka BROKERS`).
pub enum AnyLog {
    File(FileLog),
    /// An embedded log this process does not own (see [`door`]).
    Tool(ToolLog),
    Kafka(KafkaLog),
}

pub enum AnyReader {
    File(file::FileReader),
    Kafka(kafka::KafkaReader),
}

impl Log for AnyLog {
    type Reader = AnyReader;

    async fn append(&self, records: Vec<Vec<u8>>) -> Result<Vec<u64>> {
        match self {
            AnyLog::File(l) => l.append(records).await,
            AnyLog::Tool(l) => l.append(records).await,
            AnyLog::Kafka(l) => l.append(records).await,
        }
    }

    async fn end_offset(&self) -> Result<u64> {
        match self {
            AnyLog::File(l) => l.end_offset().await,
            AnyLog::Tool(l) => l.end_offset().await,
            AnyLog::Kafka(l) => l.end_offset().await,
        }
    }

    async fn end_at_least(&self) -> Result<u64> {
        match self {
            AnyLog::Kafka(l) => l.end_at_least().await,
            other => other.end_offset().await,
        }
    }

    async fn reader(&self, from: u64) -> Result<AnyReader> {
        Ok(match self {
            AnyLog::File(l) => AnyReader::File(l.reader(from).await?),
            AnyLog::Tool(l) => AnyReader::File(l.reader(from).await?),
            AnyLog::Kafka(l) => AnyReader::Kafka(l.reader(from).await?),
        })
    }
}

impl AnyLog {
    /// Appends records with keys: Kafka keeps them (the commands topic is keyed by
    /// account); the embedded log has no keys and drops them.
    pub async fn append_keyed(&self, records: Vec<(Option<Vec<u8>>, Vec<u8>)>) -> Result<Vec<u64>> {
        match self {
            AnyLog::File(l) => {
                l.append(records.into_iter().map(|(_, r)| r).collect())
                    .await
            }
            AnyLog::Tool(l) => {
                l.append(records.into_iter().map(|(_, r)| r).collect())
                    .await
            }
            AnyLog::Kafka(l) => l.append_keyed(records).await,
        }
    }
}

impl LogReader for AnyReader {
    async fn next_batch(&mut self, max: usize, wait: Duration) -> Result<Vec<Record>> {
        match self {
            AnyReader::File(r) => r.next_batch(max, wait).await,
            AnyReader::Kafka(r) => r.next_batch(max, wait).await,
        }
    }

    fn settle(&self) -> Duration {
        match self {
            AnyReader::File(r) => crate::LogReader::settle(r),
            AnyReader::Kafka(r) => crate::LogReader::settle(r),
        }
    }
}
