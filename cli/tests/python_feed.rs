//! The Kafka door for any language: a market maker in Python (confluent-kafka)
//! produces a signed JSON order to the commands topic, reads its outcome and its fill
//! from its own account's JSON feed (written by `tape fanout`) and finds nothing of
//! another account there; the market's public feed shows the order and the trade
//! without any account. Real processes on a real broker (tansu).

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tape_log::{KafkaLog, KafkaOptions};

const MM: u64 = 5000;
const OTHER: u64 = 6001;

/// Whether `v` holds the integer `n` anywhere (amounts are strings, ids integers).
fn names(v: &Value, n: u64) -> bool {
    match v {
        Value::Number(x) => x.as_u64() == Some(n),
        Value::Array(a) => a.iter().any(|v| names(v, n)),
        Value::Object(m) => m.values().any(|v| names(v, n)),
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_market_maker_reads_its_outcome_and_fills_from_its_own_feed() {
    let topics = KafkaTopics::fresh("feed");
    let prefix = topics.commands.replace("-commands-", "-feeds-");
    let engine_dir = tempfile::tempdir().unwrap();
    let _engine = topics.engine(engine_dir.path(), Stdio::null());
    let fanout_dir = tempfile::tempdir().unwrap();
    let _fanout = Proc(
        Command::new(TAPE)
            .arg("fanout")
            .args(topics.args())
            .args(["--prefix", &prefix, "--data"])
            .arg(fanout_dir.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let g = topics.gateway();
    g.market(("BTC", 8), ("USDT", 6), "0.0001", "1").await;
    g.deposit(MM, "BTC", "10").await;
    g.deposit(OTHER, "USDT", "100000").await;
    let mm = g.key("TRADER", Some(MM)).await;
    let other = g.key("TRADER", Some(OTHER)).await;

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/python/tape_feed.py");
    let mut python = Proc(
        Command::new("python3")
            .arg(&script)
            .args(["--brokers", &topics.brokers, "--token", &mm])
            .args(["--account", &MM.to_string()])
            .args([
                "--commands-topic",
                &topics.commands,
                "--feed-prefix",
                &prefix,
            ])
            .args(["trade", "30000", "0.5"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3"),
    );
    let mut lines = BufReader::new(python.0.stdout.take().unwrap()).lines();
    let mut line = || -> Value {
        let l = lines
            .next()
            .expect("the python market maker stopped early")
            .unwrap();
        serde_json::from_str(&l).unwrap()
    };
    let outcome = line()["outcome"].clone();
    let order = outcome["update"]["outcome"]["result"]["accepted"]["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("{outcome}"));
    assert_eq!(outcome["account"], MM);

    // Another account takes part of it through GraphQL.
    let buy = g
        .ok(
            &other,
            r#"mutation { placeOrder(input: {market: "BTC-USDT", side: BUY, kind: LIMIT, price: "30000", quantity: "0.2"}) { status order { status } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(buy["placeOrder"]["order"]["status"], "FILLED", "{buy}");

    let fill = line()["fill"].clone();
    let f = &fill["update"]["fill"];
    assert_eq!(f["maker"]["order"], order, "{fill}");
    assert_eq!(
        (f["quantity"].as_str(), f["price"].as_str()),
        (Some("0.20000000"), Some("30000.00"))
    );
    assert!(
        f["taker"].is_null(),
        "the other side's order is not shown: {fill}"
    );

    let feed = line()["feed"].clone();
    let records = feed.as_array().unwrap();
    for r in records {
        assert_eq!(r["account"], MM, "{r}");
        assert!(!names(r, OTHER), "another account's id in the feed: {r}");
    }
    let kinds: Vec<String> = records
        .iter()
        .map(|r| {
            let u = r["update"].as_object().unwrap();
            let (kind, body) = u.iter().next().unwrap();
            match kind.as_str() {
                "event" => body.as_object().unwrap().keys().next().unwrap().clone(),
                _ => kind.clone(),
            }
        })
        .collect();
    for want in [
        "deposited",
        "outcome",
        "order_accepted",
        "order_rested",
        "fill",
        "balance",
    ] {
        assert!(kinds.iter().any(|k| k == want), "no {want} in {kinds:?}");
    }
    let seqs: Vec<u64> = records.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(python.0.wait().unwrap().success());

    // The market's public feed: the order and the trade, no account.
    let market = KafkaLog::open(KafkaOptions::new(
        &topics.brokers,
        &format!("{prefix}.market.BTC-USDT"),
    ))
    .await
    .unwrap();
    let mut reader = market.reader(0).await.unwrap();
    let mut public: Vec<Value> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !public.iter().any(|r| r["update"]["trade"].is_object()) {
        assert!(tokio::time::Instant::now() < deadline, "{public:?}");
        for r in reader
            .next_batch(100, Duration::from_millis(200))
            .await
            .unwrap()
        {
            public.push(serde_json::from_slice(&r.bytes).unwrap());
        }
    }
    assert_eq!(
        public[0]["update"]["order_added"]["order"], order,
        "{public:?}"
    );
    for r in &public {
        assert!(
            !names(r, MM) && !names(r, OTHER),
            "an account in the public feed: {r}"
        );
    }
}
