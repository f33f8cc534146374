//! Every GraphQL answer says which events-log `seq` it reflects (`extensions.seq`),
//! over HTTP against a real `tape run`.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

/// Asks `query` until `ready` holds of its answer (the read models are caught up with
/// what the test did), then returns that answer. Panics after 10 s.
async fn once(s: &Server, token: &str, query: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..200 {
        let (_, body) = s.post(token, query, json!({})).await;
        if ready(&body) {
            return body;
        }
        last = body;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{query} never got ready: {last}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_the_seq_its_read_models_held() {
    let s = Server::start(&["--demo"]);
    let seq = |body: &Value| body["extensions"]["seq"].as_u64().expect("a seq");
    let markets = "{ markets { symbol } }";
    // The demo's setup is projected: assets, markets and deposits are events.
    // The seq is read before the query runs (the read models hold at least up
    // to it), so the markets may show an answer or two before the seq passes
    // the events that made them.
    let before = once(&s, ADMIN, markets, |b| {
        b["data"]["markets"]
            .as_array()
            .is_some_and(|m| !m.is_empty())
            && seq(b) > 5
    })
    .await;
    let trader = s.key("TRADER", Some(1)).await;
    let (_, placed) = s
        .post(
            &trader,
            r#"mutation { placeOrder(input: {market: "BTC-USDT", side: BUY, kind: LIMIT, price: "20000", quantity: "0.1"}) { status } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        placed["data"]["placeOrder"]["status"], "ACCEPTED",
        "{placed}"
    );
    let open = "{ orders(openOnly: true) { edges { node { id } } } }";
    // The key and the order (outcome, acceptance, hold, resting) came after.
    once(&s, &trader, open, |b| {
        b["data"]["orders"]["edges"]
            .as_array()
            .is_some_and(|e| !e.is_empty())
            && seq(b) >= seq(&before) + 6
    })
    .await;
    // Once the projector is idle, the seq is the events log's last one, and stays.
    let head = s.events_on_log();
    let settled = once(&s, ADMIN, markets, |b| seq(b) == head).await;
    let (_, again) = s.post(ADMIN, markets, json!({})).await;
    assert_eq!(seq(&again), seq(&settled), "nothing happened in between");
}
