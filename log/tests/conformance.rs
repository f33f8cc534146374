//! One conformance suite, run against both logs: the embedded file log always, and
//! the Kafka log against the broker in `TAPE_KAFKA_BROKERS` (the README's test
//! command starts one). Without a broker the Kafka tests fail and say so: they never
//! skip silently.

use std::sync::Arc;
use std::time::Duration;

use tape_log::*;

fn brokers() -> String {
    std::env::var("TAPE_KAFKA_BROKERS").unwrap_or_else(|_| {
        panic!("TAPE_KAFKA_BROKERS is not set: the Kafka log tests need a broker. Run ./scripts/test.sh, which starts one (tansu) and sets it.")
    })
}

fn unique_topic(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("test-{name}-{nanos}")
}

async fn read_all<L: Log>(log: &L, from: u64, count: usize) -> Vec<Record> {
    tape_log::read_exactly(log, from, count as u64, Duration::from_secs(30))
        .await
        .unwrap()
}

fn record(i: u64) -> Vec<u8> {
    format!("record-{i}-")
        .repeat(1 + (i % 5) as usize)
        .into_bytes()
}

async fn appends_get_contiguous_offsets_and_read_back_exactly<L: Log>(log: L) {
    let start = log.end_offset().await.unwrap();
    let offsets = log.append((0..10).map(record).collect()).await.unwrap();
    assert_eq!(offsets, (start..start + 10).collect::<Vec<_>>());
    let more = log
        .append(vec![Vec::new(), vec![7u8; 1 << 20]])
        .await
        .unwrap();
    assert_eq!(more, vec![start + 10, start + 11]);
    assert_eq!(log.end_offset().await.unwrap(), start + 12);
    let all = read_all(&log, start, 12).await;
    for (i, r) in all.iter().take(10).enumerate() {
        assert_eq!(r.offset, start + i as u64);
        assert_eq!(r.bytes, record(i as u64));
    }
    assert_eq!(all[10].bytes, Vec::<u8>::new());
    assert_eq!(all[11].bytes, vec![7u8; 1 << 20]);
    let middle = read_all(&log, start + 4, 3).await;
    assert_eq!(
        middle.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![start + 4, start + 5, start + 6]
    );
    assert_eq!(middle[0].bytes, record(4));
}

async fn a_reader_at_the_end_sees_records_appended_later<L: Log + 'static>(log: L) {
    let log = Arc::new(log);
    let start = log.end_offset().await.unwrap();
    let mut reader = log.reader(start).await.unwrap();
    assert!(reader
        .next_batch(10, Duration::from_millis(200))
        .await
        .unwrap()
        .is_empty());
    let writer = log.clone();
    let handle = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        writer.append(vec![b"late".to_vec()]).await.unwrap()
    });
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while got.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the live reader never saw the record"
        );
        got = reader.next_batch(10, Duration::from_secs(1)).await.unwrap();
    }
    assert_eq!(
        got,
        vec![Record {
            offset: start,
            bytes: b"late".to_vec()
        }]
    );
    assert_eq!(handle.await.unwrap(), vec![start]);
}

async fn concurrent_appenders_lose_and_double_nothing<L: Log + 'static>(log: L) {
    let log = Arc::new(log);
    let start = log.end_offset().await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut offsets = Vec::new();
            for b in 0..25u64 {
                let batch = (0..4)
                    .map(|i| format!("{t}:{b}:{i}").into_bytes())
                    .collect();
                offsets.extend(log.append(batch).await.unwrap());
            }
            offsets
        }));
    }
    let mut offsets = Vec::new();
    for t in tasks {
        offsets.extend(t.await.unwrap());
    }
    offsets.sort_unstable();
    assert_eq!(offsets, (start..start + 800).collect::<Vec<_>>());
    let mut bodies: Vec<Vec<u8>> = read_all(&*log, start, 800)
        .await
        .into_iter()
        .map(|r| r.bytes)
        .collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), 800);
}

async fn file_log(dir: &tempfile::TempDir) -> FileLog {
    FileLog::open(
        dir.path(),
        FileLogOptions {
            segment_bytes_max: 64 << 10,
            ..FileLogOptions::default()
        },
    )
    .unwrap()
    .0
}

async fn kafka_log(name: &str) -> KafkaLog {
    KafkaLog::open(KafkaOptions::new(&brokers(), &unique_topic(name)))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_appends_get_contiguous_offsets_and_read_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    appends_get_contiguous_offsets_and_read_back_exactly(file_log(&dir).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_a_reader_at_the_end_sees_records_appended_later() {
    let dir = tempfile::tempdir().unwrap();
    a_reader_at_the_end_sees_records_appended_later(file_log(&dir).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_concurrent_appenders_lose_and_double_nothing() {
    let dir = tempfile::tempdir().unwrap();
    concurrent_appenders_lose_and_double_nothing(file_log(&dir).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_appends_get_contiguous_offsets_and_read_back_exactly() {
    appends_get_contiguous_offsets_and_read_back_exactly(kafka_log("basic").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_a_reader_at_the_end_sees_records_appended_later() {
    a_reader_at_the_end_sees_records_appended_later(kafka_log("tail").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_concurrent_appenders_lose_and_double_nothing() {
    concurrent_appenders_lose_and_double_nothing(kafka_log("concurrent").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_a_new_client_sees_what_an_earlier_one_wrote() {
    let topic = unique_topic("reopen");
    let first = KafkaLog::open(KafkaOptions::new(&brokers(), &topic))
        .await
        .unwrap();
    first.append((0..5).map(record).collect()).await.unwrap();
    drop(first);
    let second = KafkaLog::open(KafkaOptions::new(&brokers(), &topic))
        .await
        .unwrap();
    assert_eq!(second.end_offset().await.unwrap(), 5);
    let all = read_all(&second, 0, 5).await;
    assert_eq!(all[4].bytes, record(4));
}

// ---- file log only: durability, torn tails, locking, segments

/// Appends `batches` batches of 20 records to a file log with small segments, then
/// closes it.
async fn fill_segments(dir: &std::path::Path, segment_bytes_max: u64, batches: u64) {
    let log = FileLog::open(
        dir,
        FileLogOptions {
            segment_bytes_max,
            ..FileLogOptions::default()
        },
    )
    .unwrap()
    .0;
    for b in 0..batches {
        log.append((0..20).map(|i| record(b * 20 + i)).collect())
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_reopen_sees_every_acknowledged_record_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    {
        fill_segments(dir.path(), 8 << 10, 50u64).await;
    }
    let (log, report) = FileLog::open(
        dir.path(),
        FileLogOptions {
            segment_bytes_max: 8 << 10,
            ..FileLogOptions::default()
        },
    )
    .unwrap();
    assert_eq!(report.records, 1000);
    assert!(report.segments > 3, "{report:?}");
    assert_eq!(report.truncated_bytes, 0);
    let all = read_all(&log, 0, 1000).await;
    for (i, r) in all.iter().enumerate() {
        assert_eq!(r.bytes, record(i as u64), "offset {i}");
    }
    assert_eq!(
        log.append(vec![b"next".to_vec()]).await.unwrap(),
        vec![1000]
    );
}

fn last_segment(dir: &std::path::Path) -> std::path::PathBuf {
    let mut segs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segs.sort();
    segs.pop().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_last_record_is_cut_off_and_reported_and_nothing_acknowledged_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = file_log(&dir).await;
        log.append((0..10).map(record).collect()).await.unwrap();
    }
    // Simulate a crash in the middle of writing an eleventh record.
    let seg = last_segment(dir.path());
    let len = std::fs::metadata(&seg).unwrap().len();
    {
        let log = file_log(&dir).await;
        log.append(vec![vec![9u8; 1000]]).await.unwrap();
    }
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len + 8 + 500).unwrap();
    drop(f);
    let (log, report) = FileLog::open(dir.path(), FileLogOptions::default()).unwrap();
    assert_eq!(report.records, 10);
    assert_eq!(report.truncated_bytes, 508);
    assert_eq!(read_all(&log, 0, 10).await.last().unwrap().bytes, record(9));
    assert_eq!(log.append(vec![b"after".to_vec()]).await.unwrap(), vec![10]);
    assert_eq!(read_all(&log, 10, 1).await[0].bytes, b"after".to_vec());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_tail_record_fails_its_checksum_and_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = file_log(&dir).await;
        log.append((0..3).map(record).collect()).await.unwrap();
    }
    let seg = last_segment(dir.path());
    let mut bytes = std::fs::read(&seg).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&seg, &bytes).unwrap();
    let (_, report) = FileLog::open(dir.path(), FileLogOptions::default()).unwrap();
    assert_eq!(report.records, 2);
    assert!(report.truncated_bytes > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_before_the_last_segment_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        fill_segments(dir.path(), 4 << 10, 20u64).await;
    }
    let mut segs: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segs.sort();
    let mut bytes = std::fs::read(&segs[0]).unwrap();
    bytes[20] ^= 0xff;
    std::fs::write(&segs[0], &bytes).unwrap();
    let err = FileLog::open(dir.path(), FileLogOptions::default())
        .err()
        .expect("must refuse");
    assert!(matches!(err, LogError::Corrupt { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_writer_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = file_log(&dir).await;
    let err = FileLog::open(dir.path(), FileLogOptions::default())
        .err()
        .expect("must refuse");
    assert!(matches!(err, LogError::Locked { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_records_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = file_log(&dir).await;
    let err = log
        .append(vec![b"ok".to_vec(), vec![0u8; RECORD_BYTES_MAX + 1]])
        .await
        .unwrap_err();
    assert!(matches!(err, LogError::RecordTooLarge { .. }));
    assert_eq!(log.end_offset().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_reads_what_another_writer_appends_live() {
    let dir = tempfile::tempdir().unwrap();
    let writer = FileLog::open(
        dir.path(),
        FileLogOptions {
            segment_bytes_max: 4 << 10,
            ..FileLogOptions::default()
        },
    )
    .unwrap()
    .0;
    writer.append((0..10).map(record).collect()).await.unwrap();
    let follower = FileLog::follow(dir.path()).unwrap();
    assert_eq!(follower.end_offset().await.unwrap(), 10);
    let mut reader = follower.reader(5).await.unwrap();
    for b in 1..20u64 {
        writer
            .append((0..20).map(|i| record(b * 20 + i)).collect())
            .await
            .unwrap();
    }
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while got.len() < 5 + 19 * 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "follower stalled at {}",
            got.len()
        );
        got.extend(
            reader
                .next_batch(1000, Duration::from_millis(100))
                .await
                .unwrap(),
        );
    }
    assert_eq!(
        got[0],
        Record {
            offset: 5,
            bytes: record(5)
        }
    );
    assert_eq!(got.last().unwrap().bytes, record(19 * 20 + 19));
    assert!(matches!(
        follower.append(vec![b"x".to_vec()]).await,
        Err(LogError::Closed)
    ));
}

/// The commands topic is keyed by account: keys given to `append_keyed` are what a
/// plain Kafka consumer sees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_keyed_appends_keep_their_keys() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::Message;
    let topic = unique_topic("keyed");
    let log = AnyLog::Kafka(
        KafkaLog::open(KafkaOptions::new(&brokers(), &topic))
            .await
            .unwrap(),
    );
    let records = vec![
        (Some(b"7".to_vec()), record(0)),
        (None, record(1)),
        (Some(b"12".to_vec()), record(2)),
    ];
    assert_eq!(log.append_keyed(records).await.unwrap(), vec![0, 1, 2]);
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", format!("keys-{topic}"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = rdkafka::TopicPartitionList::new();
    assignment
        .add_partition_offset(&topic, 0, rdkafka::Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let mut keys = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while keys.len() < 3 && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            keys.push(m.key().map(|k| k.to_vec()));
        }
    }
    assert_eq!(keys, vec![Some(b"7".to_vec()), None, Some(b"12".to_vec())]);
}

/// Several producer clients (as separate processes would be) append concurrently
/// while a reader tails the log live: the reader gets every offset once, in order,
/// with the bytes a later full read finds there. (A skipped offset would make the
/// engine skip a command that replay later applies.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_a_live_reader_misses_nothing_while_several_clients_append() {
    let topic = unique_topic("live-many");
    let reader_log = KafkaLog::open(KafkaOptions::new(&brokers(), &topic))
        .await
        .unwrap();
    let mut reader = reader_log.reader(0).await.unwrap();
    const CLIENTS: u64 = 8;
    const BATCHES: u64 = 3000;
    const LANES: u64 = 8;
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let topic = topic.clone();
        tasks.push(tokio::spawn(async move {
            let log = Arc::new(
                KafkaLog::open(KafkaOptions::new(&brokers(), &topic))
                    .await
                    .unwrap(),
            );
            let mut inner = Vec::new();
            for lane in 0..LANES {
                let log = log.clone();
                inner.push(tokio::spawn(async move {
                    for b in (lane..BATCHES).step_by(LANES as usize) {
                        let batch = (0..1 + (b + c) % 7)
                            .map(|i| format!("{c}:{b}:{i}").into_bytes())
                            .collect();
                        log.append(batch).await.unwrap();
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }));
            }
            for t in inner {
                t.await.unwrap();
            }
        }));
    }
    let total: u64 = (0..CLIENTS)
        .flat_map(|c| (0..BATCHES).map(move |b| 1 + (b + c) % 7))
        .sum();
    let mut live = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while (live.len() as u64) < total {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} of {total} records came back live",
            live.len()
        );
        let batch = reader
            .next_batch(1000, Duration::from_millis(100))
            .await
            .unwrap();
        for r in batch {
            assert_eq!(
                r.offset,
                live.len() as u64,
                "the live reader skipped or repeated an offset"
            );
            live.push(r);
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let again = read_all(&reader_log, 0, total as usize).await;
    assert_eq!(
        again, live,
        "a later read found other records than the live one"
    );
}

/// A follower in another process reads only what the writer has made durable: a
/// record written but not yet fsynced (here: one a writer wrote before it died) stays
/// out of sight until a writer has fsynced it, so the engine never applies a command
/// that a power loss could take back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_reads_only_what_the_writer_has_made_durable() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let (writer, _) = FileLog::open(dir.path(), FileLogOptions::default()).unwrap();
    writer.append((0..3).map(record).collect()).await.unwrap();
    writer.close();
    drop(writer);
    // A whole, valid record the (dead) writer wrote but never fsynced.
    let body = record(3);
    let mut frame = (body.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    frame.extend_from_slice(&body);
    std::fs::OpenOptions::new()
        .append(true)
        .open(last_segment(dir.path()))
        .unwrap()
        .write_all(&frame)
        .unwrap();

    let follower = FileLog::follow(dir.path()).unwrap();
    let mut reader = follower.reader(0).await.unwrap();
    let seen = reader
        .next_batch(10, Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(seen.len(), 3, "the follower read past the durable end");
    assert_eq!(follower.end_offset().await.unwrap(), 3);

    // A writer opening the log keeps the record and fsyncs it: now it may be read.
    let (writer, report) = FileLog::open(dir.path(), FileLogOptions::default()).unwrap();
    assert_eq!(report.records, 4);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let late = loop {
        let batch = reader
            .next_batch(10, Duration::from_millis(100))
            .await
            .unwrap();
        if !batch.is_empty() {
            break batch;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the follower never saw the fsynced record"
        );
    };
    assert_eq!(
        late,
        vec![Record {
            offset: 3,
            bytes: record(3)
        }]
    );
    writer.append(vec![record(4)]).await.unwrap();
    assert_eq!(read_all(&follower, 4, 1).await[0].bytes, record(4));
}

/// The embedded writer's queue is bounded in bytes: a flood of concurrent appends
/// waits for room instead of piling up in memory, and every record still lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_appends_waits_for_room_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let room = 1u32 << 20;
    let (log, _) = FileLog::open(
        dir.path(),
        FileLogOptions {
            queue_bytes_max: room,
            ..FileLogOptions::default()
        },
    )
    .unwrap();
    let log = std::sync::Arc::new(log);
    let appends: Vec<_> = (0..64u8)
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move { log.append(vec![vec![i; 16 << 10]; 16]).await.unwrap() })
        })
        .collect();
    let mut most = 0;
    while !appends.iter().all(|a| a.is_finished()) {
        most = most.max(log.queued_bytes());
        tokio::time::sleep(std::time::Duration::from_micros(50)).await;
    }
    assert!(most <= room as usize, "{most} bytes queued");
    let mut offsets = Vec::new();
    for a in appends {
        offsets.extend(a.await.unwrap());
    }
    offsets.sort_unstable();
    assert_eq!(offsets, (0..64 * 16).collect::<Vec<u64>>());
    assert_eq!(log.end_offset().await.unwrap(), 64 * 16);
}
