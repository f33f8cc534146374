//! Retries and copies through the real doors: a GraphQL mutation retried with the
//! same `commandId`, a `tape produce` line sent twice, and one API key signing
//! through two gateways at once. None of them runs a command twice, and none is
//! refused for what the engine remembers.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const PLACE: &str = "mutation($input: PlaceOrderInput!, $id: String) {
    placeOrder(input: $input, commandId: $id) { status id offset duplicate reason } }";

fn buy(price: &str, id: &str) -> Value {
    json!({ "input": { "market": "BTC-USDT", "side": "BUY", "kind": "LIMIT", "price": price, "quantity": "0.01" }, "id": id })
}

/// A market, account 1 funded, a trader key for it, and credentials required
/// (turned on with a new admin key, as an operator would).
async fn secured(s: &Server) -> String {
    s.market(("BTC", 8), ("USDT", 6), "0.0001", "1").await;
    s.deposit(1, "USDT", "1000000").await;
    let trader = s.key("TRADER", Some(1)).await;
    let ops = s.key("ADMIN", None).await;
    let v = s
        .ok(
            &ops,
            "mutation { requireCredentials(required: true) { status reason } }",
            json!({}),
        )
        .await;
    assert_eq!(v["requireCredentials"]["status"], "ACCEPTED", "{v}");
    trader
}

async fn open_orders(s: &Server, token: &str) -> usize {
    let q = "{ orders(first: 200, openOnly: true) { edges { node { id } } } }";
    let v = s.ok(token, q, json!({})).await;
    v["orders"]["edges"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graphql_mutation_retried_with_its_command_id_gets_the_original_receipt() {
    let s = Server::start(&[]);
    let trader = secured(&s).await;
    let id = "5f0c1d2e-0000-4000-8000-000000000001";
    let first = s.ok(&trader, PLACE, buy("100", id)).await["placeOrder"].clone();
    assert_eq!(first["status"], "ACCEPTED", "{first}");
    let on_log = s.commands_on_log();
    for _ in 0..3 {
        let again = s.ok(&trader, PLACE, buy("100", id)).await["placeOrder"].clone();
        assert_eq!(again["id"], first["id"], "{again}");
        assert_eq!(again["offset"], first["offset"], "{again}");
        assert_eq!(again["status"], "ACCEPTED");
    }
    assert_eq!(s.commands_on_log(), on_log, "a retry was appended again");
    assert_eq!(open_orders(&s, &trader).await, 1);
    // A new id is a new order.
    let other = s
        .ok(
            &trader,
            PLACE,
            buy("100", "5f0c1d2e-0000-4000-8000-000000000002"),
        )
        .await;
    assert_eq!(other["placeOrder"]["status"], "ACCEPTED");
    assert_eq!(open_orders(&s, &trader).await, 2);
}

/// Runs `tape produce` with `lines` on stdin (plus `extra` arguments).
fn produce(s: &Server, lines: &str, extra: &[&str]) {
    let data = s.data.path().display().to_string();
    let mut args = vec!["produce", "--data", &data];
    args.extend(extra);
    let out = tape_with_stdin(&args, lines);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every `Outcome` on the events log for command `id`, as (result, duplicate).
fn outcomes_of(s: &Server, id: &str) -> Vec<(Value, bool)> {
    let out = Command::new(TAPE)
        .args(["consume", "--data"])
        .arg(s.data.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|e| {
            let o = e["event"]["outcome"].clone();
            (o["command"] == id).then(|| (o["result"].clone(), o["duplicate"] == true))
        })
        .collect()
}

async fn answered(s: &Server, id: &str, n: usize) -> Vec<(Value, bool)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let o = outcomes_of(s, id);
        if o.len() >= n || tokio::time::Instant::now() > deadline {
            return o;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tape_produce_line_sent_twice_is_answered_not_run_again() {
    let s = Server::start(&[]);
    let trader = secured(&s).await;
    let order = |id: &str, price: &str| {
        format!(
            "{{\"id\":\"{id}\",\"command\":{{\"place_order\":{{\"account\":1,\"market\":\"BTC-USDT\",\"side\":\"buy\",\"order_type\":{{\"limit\":{{\"price\":\"{price}\",\"quantity\":\"0.01\"}}}}}}}}}}\n"
        )
    };
    // A plain line signed by `tape produce --key`, twice (two runs, two signatures).
    let a = "6a000000-0000-4000-8000-00000000000a";
    produce(&s, &order(a, "101"), &["--key", &trader]);
    produce(&s, &order(a, "101"), &["--key", &trader]);
    let o = answered(&s, a, 2).await;
    assert_eq!(o.len(), 2, "{o:?}");
    assert!(o[0].0.get("accepted").is_some() && !o[0].1, "{o:?}");
    assert_eq!(
        o[1],
        (o[0].0.clone(), true),
        "the second run was not a duplicate"
    );
    // A record signed by its writer, appended twice as written: a copy.
    let b = "6b000000-0000-4000-8000-00000000000b";
    let signed = {
        let out = tape_with_stdin(&["produce", "--print", "--key", &trader], &order(b, "102"));
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    produce(&s, &format!("{signed}{signed}"), &[]);
    let o = answered(&s, b, 2).await;
    assert_eq!(o.len(), 2, "{o:?}");
    assert_eq!(o[1], (o[0].0.clone(), true), "{o:?}");
    assert_eq!(open_orders(&s, &trader).await, 2);
}

/// On Kafka: one engine, two gateways, one trader key signing through both at
/// once (each gateway on its own stream), credentials required. Every order is
/// accepted once; a retry through the other gateway is answered, not run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_signs_through_two_gateways_at_once() {
    let topics = KafkaTopics::fresh("idem");
    let engine_dir = tempfile::tempdir().unwrap();
    let _engine = topics.engine(engine_dir.path(), Stdio::null());
    let (a, b) = (topics.gateway(), topics.gateway());
    let trader = secured(&a).await;
    // b learns the key from the log.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while b.post(&trader, "{ me { role } }", json!({})).await.0 != 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gateway b never saw the key"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut sends = Vec::new();
    for i in 0..40 {
        let (s, trader) = (if i % 2 == 0 { &a } else { &b }, trader.clone());
        let id = format!("7c000000-0000-4000-8000-{i:012}");
        sends.push(async move {
            let v = s.ok(&trader, PLACE, buy("100", &id)).await;
            v["placeOrder"].clone()
        });
    }
    let receipts = futures::future::join_all(sends).await;
    for r in &receipts {
        assert_eq!(r["status"], "ACCEPTED", "{r}");
    }
    // The first command, retried through the other gateway.
    let again = b
        .ok(
            &trader,
            PLACE,
            buy("100", "7c000000-0000-4000-8000-000000000000"),
        )
        .await["placeOrder"]
        .clone();
    assert_eq!(again["status"], "ACCEPTED", "{again}");
    assert_eq!(again["id"], receipts[0]["id"], "{again}");
    assert_eq!(again["duplicate"], true, "{again}");
    assert_eq!(open_orders(&a, &trader).await, 40);
}
