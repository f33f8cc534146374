//! The Kafka log: one topic, one partition per log (a shard's total order). The
//! producer is idempotent with `acks=all`, so retries after a lost broker never
//! duplicate or reorder; a full producer queue makes `append` wait, never drop.
//! Topics are created by tape (the broker may not auto-create them) with unlimited
//! retention. Broker loss is retried by librdkafka; every error it reports is
//! logged, and `append` returns an error only when a record's delivery finally fails.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};

use crate::{LogError, Record, Result, RECORD_BYTES_MAX};

const PARTITION: i32 = 0;

#[derive(Clone, Debug)]
pub struct KafkaOptions {
    pub brokers: String,
    pub topic: String,
    /// Replication factor for topics tape creates.
    pub replication: i32,
    /// How long a record may take to be delivered, retries included, before
    /// `append` fails.
    pub delivery_timeout: Duration,
    /// How long a reader waits for missing offsets to appear before it believes
    /// the hole is real. Some brokers (tansu 0.6) briefly serve a later record batch
    /// before an earlier one is visible; Apache Kafka leaves holes only for
    /// transaction markers and aborted records, which never appear.
    pub gap_wait: Duration,
}

impl KafkaOptions {
    pub fn new(brokers: &str, topic: &str) -> Self {
        KafkaOptions {
            brokers: brokers.to_string(),
            topic: topic.to_string(),
            replication: 1,
            delivery_timeout: Duration::from_secs(120),
            gap_wait: Duration::from_secs(10),
        }
    }
}

/// Logs what librdkafka reports (broker down, back up, …) through `tracing`.
#[derive(Clone, Default)]
pub struct LoggingContext;

impl ClientContext for LoggingContext {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(%error, reason, "kafka client error (librdkafka retries)");
    }
}

impl ConsumerContext for LoggingContext {}

fn kafka(e: impl std::fmt::Display) -> LogError {
    LogError::Kafka(e.to_string())
}

pub struct KafkaLog {
    options: KafkaOptions,
    producer: FutureProducer<LoggingContext>,
    /// For watermarks.
    meta: std::sync::Arc<BaseConsumer<LoggingContext>>,
}

fn base_config(brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("broker.address.family", "v4");
    c
}

impl KafkaLog {
    /// Connects, creating the topic (one partition, unlimited retention) if needed.
    pub async fn open(options: KafkaOptions) -> Result<KafkaLog> {
        create_topic(&options).await?;
        let producer: FutureProducer<LoggingContext> = base_config(&options.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "1")
            .set("compression.type", "none")
            .set("message.max.bytes", (RECORD_BYTES_MAX + 4096).to_string())
            .set(
                "delivery.timeout.ms",
                options.delivery_timeout.as_millis().to_string(),
            )
            .create_with_context(LoggingContext)
            .map_err(kafka)?;
        let meta: BaseConsumer<LoggingContext> = base_config(&options.brokers)
            .set("group.id", "tape-meta")
            .set("enable.auto.commit", "false")
            .create_with_context(LoggingContext)
            .map_err(kafka)?;
        Ok(KafkaLog {
            options,
            producer,
            meta: std::sync::Arc::new(meta),
        })
    }

    pub fn topic(&self) -> &str {
        &self.options.topic
    }

    pub async fn append(&self, records: Vec<Vec<u8>>) -> Result<Vec<u64>> {
        self.append_keyed(records.into_iter().map(|r| (None, r)).collect())
            .await
    }

    /// Appends records with optional keys (the commands topic is keyed by account).
    pub async fn append_keyed(&self, records: Vec<(Option<Vec<u8>>, Vec<u8>)>) -> Result<Vec<u64>> {
        if let Some((_, r)) = records.iter().find(|(_, r)| r.len() > RECORD_BYTES_MAX) {
            return Err(LogError::RecordTooLarge {
                size_bytes: r.len(),
            });
        }
        let topic = self.options.topic.as_str();
        let sends = records
            .iter()
            .map(|(k, p)| (topic, k.as_deref(), p.as_slice()));
        let deliveries = send_all(&self.producer, sends).await?;
        let mut offsets = Vec::with_capacity(deliveries.len());
        for d in deliveries {
            match d.await {
                Ok(Ok(delivery)) => offsets.push(delivery.offset as u64),
                Ok(Err((e, _))) => {
                    return Err(kafka(format!(
                        "delivery to {} failed: {e}",
                        self.options.topic
                    )))
                }
                Err(_) => return Err(LogError::Closed),
            }
        }
        Ok(offsets)
    }

    /// The broker's high watermark: at or below the end (see `Log::end_at_least`).
    pub async fn end_at_least(&self) -> Result<u64> {
        let (meta, topic) = (self.meta.clone(), self.options.topic.clone());
        let (_, high) = tokio::task::spawn_blocking(move || {
            meta.fetch_watermarks(&topic, PARTITION, Duration::from_secs(30))
        })
        .await
        .map_err(kafka)?
        .map_err(kafka)?;
        Ok(u64::try_from(high).unwrap_or(0))
    }

    /// One past the last record. Some Kafka-protocol brokers (tansu 0.6) report the
    /// high watermark as one past the *first* offset of the last record batch, so
    /// this reads the tail from there and takes the last offset it finds; on Apache
    /// Kafka that read returns the single last record.
    pub async fn end_offset(&self) -> Result<u64> {
        let high = self.end_at_least().await?;
        if high == 0 {
            return Ok(0);
        }
        // Tansu 0.6's high watermark points at its last batch's first record: read
        // that batch to find its end. One read: records keep arriving on a busy log
        // (a leader's heartbeats every 50 ms), and reading until a quiet moment
        // would never end there. Any end seen at some moment is an end.
        let mut reader = self.reader(high - 1).await?;
        let batch = reader
            .next_batch(10_000, Duration::from_millis(300))
            .await?;
        Ok(batch.last().map_or(high, |r| high.max(r.offset + 1)))
    }

    pub async fn reader(&self, from: u64) -> Result<KafkaReader> {
        let consumer: StreamConsumer<LoggingContext> = base_config(&self.options.brokers)
            .set("group.id", format!("tape-reader-{}", self.options.topic))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .set("fetch.wait.max.ms", "10")
            .set("fetch.max.bytes", "52428800")
            .create_with_context(LoggingContext)
            .map_err(kafka)?;
        let mut reader = KafkaReader {
            consumer,
            topic: self.options.topic.clone(),
            position: Position::new(from, self.options.gap_wait),
        };
        reader.assign(from)?;
        Ok(reader)
    }

    /// Waits until everything appended so far is delivered.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        self.producer.flush(timeout).map_err(kafka)
    }
}

async fn create_topic(options: &KafkaOptions) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> =
        base_config(&options.brokers).create().map_err(kafka)?;
    create_topic_with(&admin, &options.topic, options.replication).await
}

async fn create_topic_with(
    admin: &AdminClient<DefaultClientContext>,
    name: &str,
    replication: i32,
) -> Result<()> {
    let topic = NewTopic::new(name, 1, TopicReplication::Fixed(replication))
        .set("retention.ms", "-1")
        .set("retention.bytes", "-1");
    let results = admin
        .create_topics(
            [&topic],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .map_err(kafka)?;
    for r in results {
        match r {
            Ok(_) => {
                tracing::info!(topic = %name, "created topic with unlimited retention")
            }
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => return Err(kafka(format!("creating topic {t}: {code}"))),
        }
    }
    Ok(())
}

/// Hands records (topic, key, payload) to the producer in order, waiting while its
/// local queue is full (backpressure, never a drop); the futures say when each is
/// delivered.
async fn send_all<'a>(
    producer: &FutureProducer<LoggingContext>,
    records: impl Iterator<Item = (&'a str, Option<&'a [u8]>, &'a [u8])>,
) -> Result<Vec<rdkafka::producer::DeliveryFuture>> {
    let mut deliveries = Vec::new();
    for (topic, key, payload) in records {
        loop {
            let mut record = FutureRecord::<[u8], [u8]>::to(topic)
                .payload(payload)
                .partition(PARTITION);
            if let Some(k) = key {
                record = record.key(k);
            }
            match producer.send_result(record) {
                Ok(delivery) => {
                    deliveries.push(delivery);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err((e, _)) => return Err(kafka(e)),
            }
        }
    }
    Ok(deliveries)
}

/// Writes records to many topics (the JSON feeds of `tape fanout`), each created on
/// first use (one partition, unlimited retention). Idempotent, `acks=all`.
pub struct KafkaPublisher {
    producer: FutureProducer<LoggingContext>,
    admin: AdminClient<DefaultClientContext>,
    replication: i32,
    /// Topics known to exist (at most one per feed the publisher has written).
    created: std::collections::HashSet<String>,
}

impl KafkaPublisher {
    pub fn new(brokers: &str, replication: i32) -> Result<KafkaPublisher> {
        let producer = base_config(brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "1")
            .set("message.max.bytes", (RECORD_BYTES_MAX + 4096).to_string())
            .create_with_context(LoggingContext)
            .map_err(kafka)?;
        Ok(KafkaPublisher {
            producer,
            admin: base_config(brokers).create().map_err(kafka)?,
            replication,
            created: Default::default(),
        })
    }

    /// Sends `(topic, payload)` records in order and waits until every one is
    /// delivered; an error means some may not have been (send them all again: the
    /// feeds' readers dedupe by `seq`).
    pub async fn publish(&mut self, records: &[(String, Vec<u8>)]) -> Result<()> {
        for (topic, _) in records {
            if !self.created.contains(topic) {
                create_topic_with(&self.admin, topic, self.replication).await?;
                self.created.insert(topic.clone());
            }
        }
        let sends = records
            .iter()
            .map(|(t, p)| (t.as_str(), None, p.as_slice()));
        let deliveries = send_all(&self.producer, sends).await?;
        for d in deliveries {
            match d.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => {
                    return Err(kafka(format!("a feed record's delivery failed: {e}")))
                }
                Err(_) => return Err(LogError::Closed),
            }
        }
        Ok(())
    }
}

impl crate::Log for KafkaLog {
    type Reader = KafkaReader;

    async fn append(&self, records: Vec<Vec<u8>>) -> Result<Vec<u64>> {
        KafkaLog::append(self, records).await
    }

    async fn end_offset(&self) -> Result<u64> {
        KafkaLog::end_offset(self).await
    }

    async fn end_at_least(&self) -> Result<u64> {
        KafkaLog::end_at_least(self).await
    }

    async fn reader(&self, from: u64) -> Result<KafkaReader> {
        KafkaLog::reader(self, from).await
    }
}

pub struct KafkaReader {
    consumer: StreamConsumer<LoggingContext>,
    topic: String,
    position: Position,
}

/// Where a reader is, and what to make of each offset the broker answers with.
/// Kept apart from the consumer so the rules can be tested on their own.
#[derive(Debug)]
struct Position {
    next: u64,
    /// How far before `next` the last re-assignment started.
    rewind: u64,
    /// Whether a record at or before `next` has been seen since the last assignment.
    started: bool,
    gap_wait: Duration,
    /// Since when the broker has been answering with records past `next`.
    gap_since: Option<std::time::Instant>,
}

#[derive(Debug, PartialEq)]
enum Step {
    /// Already read: skip it.
    Behind,
    /// The record at `next` (or past a hole that lasted `gap_wait`): take it.
    Take,
    /// The broker answered from inside a record batch with the next batch: read
    /// again from this earlier offset.
    Rewind(u64),
    /// `next` is not visible yet though later records are: read from `next` again.
    Hole,
}

impl Position {
    fn new(next: u64, gap_wait: Duration) -> Position {
        Position {
            next,
            rewind: 0,
            started: false,
            gap_wait,
            gap_since: None,
        }
    }

    /// Whether silence may mean the position is inside the broker's last record
    /// batch (nothing at or below `next` seen since the last assignment).
    fn unsure(&self) -> bool {
        !self.started && self.next > 0
    }

    /// Starts reading again from further back (twice as far as last time).
    fn rewind(&mut self) -> u64 {
        self.rewind = (self.rewind * 2).clamp(1, self.next);
        self.started = false;
        self.next - self.rewind
    }

    fn on_record(&mut self, offset: u64, now: std::time::Instant) -> Step {
        if offset < self.next {
            self.started = true;
            return Step::Behind;
        }
        if offset > self.next && self.unsure() {
            // Tansu 0.6 answers a fetch from inside a record batch with the next
            // batch, so start earlier and skip up to `next`.
            return Step::Rewind(self.rewind());
        }
        if offset > self.next {
            // A hole. Tansu 0.6 advances its high watermark before it stores the
            // batch, so a fetch can miss a batch that is about to appear; skipping it
            // would skip a command that a later replay applies. Only a hole that
            // lasts `gap_wait` is real (Apache Kafka's transaction markers and
            // aborted records). `next` follows the end of a record batch, so reading
            // from it needs no rewind.
            let since = *self.gap_since.get_or_insert(now);
            if now.duration_since(since) < self.gap_wait {
                self.started = true;
                return Step::Hole;
            }
        }
        self.started = true;
        self.rewind = 0;
        self.gap_since = None;
        self.next = offset + 1;
        Step::Take
    }
}

impl KafkaReader {
    fn assign(&mut self, at: u64) -> Result<()> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.topic, PARTITION, Offset::Offset(at as i64))
            .map_err(kafka)?;
        self.consumer.assign(&tpl).map_err(kafka)
    }

    pub async fn next_batch(&mut self, max: usize, wait: Duration) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        while out.len() < max {
            // After the first record, take only what is already there. Before any
            // record at or below `next` has been seen, wait only briefly: silence may
            // mean the position is inside the broker's last record batch.
            let limit = if !out.is_empty() {
                tokio::time::Instant::now()
            } else if self.position.unsure() {
                deadline.min(tokio::time::Instant::now() + Duration::from_millis(250))
            } else {
                deadline
            };
            let message = match tokio::time::timeout_at(limit, self.consumer.recv()).await {
                Err(_) if out.is_empty() && self.position.unsure() && limit < deadline => {
                    let at = self.position.rewind();
                    self.assign(at)?;
                    continue;
                }
                Err(_) => break,
                Ok(Err(KafkaError::MessageConsumption(code)))
                    if code
                        == RDKafkaErrorCode::from(
                            RDKafkaRespErr::RD_KAFKA_RESP_ERR__PARTITION_EOF,
                        ) =>
                {
                    break
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "kafka read error (retrying)");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    if out.is_empty() && tokio::time::Instant::now() < deadline {
                        continue;
                    }
                    break;
                }
                Ok(Ok(m)) => m,
            };
            let offset = message.offset() as u64;
            let wanted = self.position.next;
            match self.position.on_record(offset, std::time::Instant::now()) {
                Step::Behind => {}
                Step::Rewind(at) => {
                    tracing::debug!(topic = %self.topic, wanted, got = offset, "re-reading from an earlier offset");
                    self.assign(at)?;
                }
                Step::Hole => {
                    tracing::debug!(topic = %self.topic, wanted, got = offset, "offsets not visible yet; reading them again");
                    self.assign(wanted)?;
                    if !out.is_empty() || tokio::time::Instant::now() >= deadline {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Step::Take => {
                    if offset > wanted {
                        tracing::warn!(
                            topic = %self.topic,
                            from = wanted,
                            to = offset,
                            "offsets skip a range that never appeared (transaction markers or aborted records); reading on"
                        );
                    }
                    out.push(Record {
                        offset,
                        bytes: message.payload().unwrap_or_default().to_vec(),
                    });
                }
            }
        }
        Ok(out)
    }
}

/// How long a Kafka read waits before it takes silence for "nothing more now".
const KAFKA_SETTLE: Duration = Duration::from_millis(20);

impl crate::LogReader for KafkaReader {
    fn settle(&self) -> Duration {
        KAFKA_SETTLE
    }

    async fn next_batch(&mut self, max: usize, wait: Duration) -> Result<Vec<Record>> {
        KafkaReader::next_batch(self, max, wait).await
    }
}

#[cfg(test)]
mod tests {
    use super::{Position, Step};
    use std::time::{Duration, Instant};

    const WAIT: Duration = Duration::from_secs(10);

    fn reading_from(next: u64) -> Position {
        let mut p = Position::new(next - 1, WAIT);
        assert_eq!(p.on_record(next - 1, Instant::now()), Step::Take);
        p
    }

    #[test]
    fn a_hole_is_read_again_until_the_missing_records_appear() {
        let mut p = reading_from(10);
        let t0 = Instant::now();
        assert_eq!(p.on_record(13, t0), Step::Hole);
        assert_eq!(p.on_record(13, t0 + WAIT / 2), Step::Hole);
        assert_eq!(p.next, 10, "nothing past the hole is taken");
        for offset in 10..14 {
            assert_eq!(p.on_record(offset, t0 + WAIT / 2), Step::Take);
        }
        assert_eq!(p.next, 14);
        // The wait starts again at the next hole.
        assert_eq!(p.on_record(20, t0 + WAIT), Step::Hole);
    }

    #[test]
    fn a_hole_that_lasts_the_wait_is_stepped_over() {
        let mut p = reading_from(10);
        let t0 = Instant::now();
        assert_eq!(p.on_record(13, t0), Step::Hole);
        assert_eq!(
            p.on_record(13, t0 + WAIT - Duration::from_millis(1)),
            Step::Hole
        );
        assert_eq!(p.on_record(13, t0 + WAIT), Step::Take);
        assert_eq!(p.next, 14);
    }

    #[test]
    fn an_answer_from_past_a_fresh_position_rewinds_instead_of_waiting() {
        let mut p = Position::new(10, WAIT);
        let now = Instant::now();
        assert!(p.unsure());
        assert_eq!(p.on_record(15, now), Step::Rewind(9));
        assert_eq!(p.on_record(15, now), Step::Rewind(8));
        assert_eq!(p.on_record(8, now), Step::Behind);
        assert!(!p.unsure());
        assert_eq!(p.on_record(9, now), Step::Behind);
        assert_eq!(p.on_record(10, now), Step::Take);
        // A reader from the start has nothing to rewind to: a hole there is waited on.
        let mut p = Position::new(0, WAIT);
        assert_eq!(p.on_record(3, now), Step::Hole);
    }
}
