//! The embedded log's door: while an owner holds the log, tools append through it
//! (in order, never on the lock) and followers are woken by it; without an owner a
//! tool opens the log itself; an owner that starts while a tool holds the log gets
//! it as soon as the tool lets go.

use std::time::{Duration, Instant};

use tape_log::door::{DOOR_RECORDS_MAX, DOOR_SOCKET, TURN_FILE};
use tape_log::*;

fn record(i: u64) -> Vec<u8> {
    format!("door-record-{i}").into_bytes()
}

async fn owner(dir: &std::path::Path, appends: bool) -> FileLog {
    let (log, _) = FileLog::open_owner(dir, FileLogOptions::default(), Duration::from_secs(10))
        .await
        .unwrap();
    log.serve_door(appends).unwrap();
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_append_through_the_owners_door_in_order_and_never_on_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let log = owner(dir.path(), true).await;
    assert!(dir.path().join(DOOR_SOCKET).exists());
    log.append(vec![record(0)]).await.unwrap();
    // Three tools at once, each with its own writer, beside the owner's appends.
    let mut tools = Vec::new();
    for t in 0..3u64 {
        let path = dir.path().to_path_buf();
        tools.push(tokio::spawn(async move {
            let mut writer = ToolWriter::new(path);
            let mut got = Vec::new();
            for i in 0..50u64 {
                let offsets = writer
                    .append(vec![
                        record(1_000 * (t + 1) + 2 * i),
                        record(1_000 * (t + 1) + 2 * i + 1),
                    ])
                    .await
                    .unwrap();
                assert!(
                    !writer.holds_log(),
                    "a tool took the log while its owner runs"
                );
                assert_eq!(
                    offsets[1],
                    offsets[0] + 1,
                    "one append's records are together"
                );
                got.extend(offsets);
            }
            got
        }));
    }
    for i in 1..=20 {
        log.append(vec![record(i)]).await.unwrap();
    }
    let mut offsets = Vec::new();
    for t in tools {
        let got = t.await.unwrap();
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "a tool's appends land in its order"
        );
        offsets.extend(got);
    }
    offsets.sort_unstable();
    offsets.dedup();
    assert_eq!(offsets.len(), 300, "every record has its own offset");
    let all = tape_log::read_exactly(&log, 0, 321, Duration::from_secs(10))
        .await
        .unwrap();
    let mut bodies: Vec<Vec<u8>> = all.into_iter().map(|r| r.bytes).collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), 321, "nothing lost or doubled");
    assert_eq!(log.end_offset().await.unwrap(), 321);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_in_another_process_is_woken_by_the_door() {
    let dir = tempfile::tempdir().unwrap();
    let log = owner(dir.path(), false).await;
    let follower = FileLog::follow(dir.path()).unwrap();
    let mut reader = follower.reader(0).await.unwrap();
    // The follower finds the door (it looks every 100 ms while it has none).
    let deadline = Instant::now() + Duration::from_secs(5);
    while !follower.is_woken_by_door() {
        assert!(
            Instant::now() < deadline,
            "the follower never found the door"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for i in 0..20 {
        log.append(vec![record(i)]).await.unwrap();
        let got = reader.next_batch(10, Duration::from_secs(5)).await.unwrap();
        assert_eq!(got.len(), 1, "the follower saw record {i}");
        assert_eq!(got[0].bytes, record(i));
    }
    // The owner goes: the follower notices and falls back to looking itself.
    log.close();
    drop(log);
    let deadline = Instant::now() + Duration::from_secs(5);
    while follower.is_woken_by_door() {
        assert!(
            Instant::now() < deadline,
            "the follower still thinks a door wakes it"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_events_door_refuses_appends_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = owner(dir.path(), false).await;
    log.append(vec![record(0)]).await.unwrap();
    let mut client = DoorClient::connect(dir.path()).await.unwrap();
    let err = client.append(&[record(1)]).await.unwrap_err();
    assert!(matches!(err, DoorError::Refused(_)), "{err}");
    assert!(err.to_string().contains("owner alone"), "{err}");
    assert_eq!(log.end_offset().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_beyond_the_doors_bound_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = owner(dir.path(), true).await;
    let mut client = DoorClient::connect(dir.path()).await.unwrap();
    let too_many = vec![Vec::new(); DOOR_RECORDS_MAX as usize + 1];
    let err = client.append(&too_many).await.unwrap_err();
    assert!(matches!(err, DoorError::Refused(_)), "{err}");
    // A raw request that claims too many records: answered with an error, closed.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut raw = tokio::net::UnixStream::connect(dir.path().join(DOOR_SOCKET))
            .await
            .unwrap();
        let mut frame = vec![b'A'];
        frame.extend_from_slice(&u32::MAX.to_le_bytes());
        raw.write_all(&frame).await.unwrap();
        assert_eq!(raw.read_u8().await.unwrap(), b'E');
        let len = raw.read_u32_le().await.unwrap();
        let mut text = vec![0; len as usize];
        raw.read_exact(&mut text).await.unwrap();
        assert!(String::from_utf8(text).unwrap().contains("at most"));
    }
    assert_eq!(log.end_offset().await.unwrap(), 0);
    // The door still serves others.
    let mut client = DoorClient::connect(dir.path()).await.unwrap();
    assert_eq!(client.append(&[record(7)]).await.unwrap(), vec![0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_owner_a_tool_opens_the_log_itself_and_an_owner_gets_it_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let mut tool = ToolWriter::new(dir.path());
    assert_eq!(tool.append(vec![record(0)]).await.unwrap(), vec![0]);
    assert!(tool.holds_log(), "no owner runs: the tool holds the log");
    assert!(!dir.path().join(DOOR_SOCKET).exists());
    // An owner starts: it asks for its turn and waits; the tool sees the request.
    let path = dir.path().to_path_buf();
    let starting = tokio::spawn(async move { owner(&path, true).await });
    let deadline = Instant::now() + Duration::from_secs(5);
    while !tool.owner_waiting() {
        assert!(
            Instant::now() < deadline,
            "the owner never asked for its turn"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tool.release();
    let log = starting.await.unwrap();
    assert!(
        !dir.path().join(TURN_FILE).exists(),
        "the owner withdrew its request"
    );
    // From now on the tool goes through the owner's door.
    assert_eq!(tool.append(vec![record(1)]).await.unwrap(), vec![1]);
    assert!(!tool.holds_log());
    assert_eq!(
        tape_log::read_exactly(&log, 0, 2, Duration::from_secs(10))
            .await
            .unwrap()[1]
            .bytes,
        record(1)
    );
    // The owner closes: its door goes, and the tool opens the log itself again.
    log.close();
    drop(log);
    assert!(
        !dir.path().join(DOOR_SOCKET).exists(),
        "a closed owner's door is removed"
    );
    assert_eq!(tool.append(vec![record(2)]).await.unwrap(), vec![2]);
    assert!(tool.holds_log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_owners_socket_is_not_taken_for_an_owner() {
    let dir = tempfile::tempdir().unwrap();
    // A socket file nobody listens on (an owner killed with -9 leaves one).
    drop(std::os::unix::net::UnixListener::bind(dir.path().join(DOOR_SOCKET)).unwrap());
    assert!(DoorClient::connect(dir.path()).await.is_none());
    let mut tool = ToolWriter::new(dir.path());
    assert_eq!(tool.append(vec![record(0)]).await.unwrap(), vec![0]);
    assert!(tool.holds_log());
    tool.release();
    // The next owner replaces the stale socket with its own.
    let log = owner(dir.path(), true).await;
    let mut client = DoorClient::connect(dir.path()).await.unwrap();
    assert_eq!(client.append(&[record(1)]).await.unwrap(), vec![1]);
    assert_eq!(log.end_offset().await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_owner_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let _first = owner(dir.path(), true).await;
    let started = Instant::now();
    let second = FileLog::open_owner(
        dir.path(),
        FileLogOptions::default(),
        Duration::from_secs(30),
    )
    .await;
    assert!(matches!(second, Err(LogError::Locked { .. })));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "it waited for an owner that never lets go"
    );
    assert!(!dir.path().join(TURN_FILE).exists());
}
