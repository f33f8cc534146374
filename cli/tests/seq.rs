//! Every GraphQL answer says which events-log `seq` it reflects (`extensions.seq`),
//! over HTTP against a real `tape run`.

mod common;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_the_seq_its_read_models_held() {
    let s = Server::start(&["--demo"]);
    let seq = |body: &serde_json::Value| body["extensions"]["seq"].as_u64().expect("a seq");
    let (_, before) = s.post(ADMIN, "{ markets { symbol } }", json!({})).await;
    // The demo's setup is projected: assets, markets and deposits are events.
    assert!(seq(&before) > 5, "{before}");
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
    let (_, after) = s.post(ADMIN, "{ markets { symbol } }", json!({})).await;
    // The key and the order (outcome, acceptance, hold, resting) came after.
    assert!(seq(&after) >= seq(&before) + 6, "{before} then {after}");
    let (_, again) = s.post(ADMIN, "{ markets { symbol } }", json!({})).await;
    assert_eq!(seq(&again), seq(&after), "nothing happened in between");
}
