//! The Kafka log across a broker restart: appends made while the broker is down wait
//! and go through when it is back; nothing acknowledged is lost. Runs its own tansu
//! broker with persistent (sqlite) storage, so it needs `tansu` on the PATH (the
//! README's test command installs it).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tape_log::{KafkaLog, KafkaOptions};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_broker(port: u16, db: &std::path::Path) -> Child {
    let url = format!("tcp://127.0.0.1:{port}");
    let child = Command::new("tansu")
        // tansu reads the sqlite path relative to its working directory.
        .current_dir(db.parent().unwrap())
        .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url, "--storage-engine", &format!("sqlite://{}", db.file_name().unwrap().to_str().unwrap())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `tansu` ({e}): the broker-loss test needs it on the PATH; ./scripts/test.sh installs it"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "tansu did not start listening on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_wait_out_a_broker_restart_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tansu.db");
    let port = free_port();
    let mut broker = start_broker(port, &db);
    let brokers = format!("127.0.0.1:{port}");
    let log = KafkaLog::open(KafkaOptions::new(&brokers, "broker-loss"))
        .await
        .unwrap();
    let first = log
        .append((0..50u32).map(|i| i.to_le_bytes().to_vec()).collect())
        .await
        .unwrap();
    assert_eq!(first, (0..50).collect::<Vec<u64>>());

    broker.kill().unwrap();
    broker.wait().unwrap();
    let pending = tokio::spawn(async move {
        let offsets = log
            .append((50..100u32).map(|i| i.to_le_bytes().to_vec()).collect())
            .await;
        (log, offsets)
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !pending.is_finished(),
        "an append cannot be acknowledged while the broker is down"
    );
    let mut broker = start_broker(port, &db);
    let (log, offsets) = tokio::time::timeout(Duration::from_secs(120), pending)
        .await
        .expect("append resumes")
        .unwrap();
    assert_eq!(offsets.unwrap(), (50..100).collect::<Vec<u64>>());

    let mut reader = log.reader(0).await.unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < 100 {
        assert!(Instant::now() < deadline, "read back {} of 100", got.len());
        got.extend(
            reader
                .next_batch(100, Duration::from_millis(500))
                .await
                .unwrap(),
        );
    }
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.offset, i as u64);
        assert_eq!(r.bytes, (i as u32).to_le_bytes().to_vec());
    }
    broker.kill().unwrap();
    let _ = broker.wait();
}
