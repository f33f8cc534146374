//! Batches over GraphQL against a real `tape run`: `placeOrders` places several
//! orders of one account in one command, each with its own receipt (a bad one
//! refused, the others placed); `cancelOrders` cancels several; a batch over the
//! engine's bound is refused whole.

mod common;

use common::*;
use serde_json::{json, Value};

const PLACE: &str = "mutation($inputs: [PlaceOrderInput!]!) { placeOrders(inputs: $inputs) {
    batch { status id reason } items { status id reason order { status price } } } }";
const CANCEL: &str = "mutation($ids: [Int!]!) { cancelOrders(orderIds: $ids) {
    batch { status id } items { status id reason order { status } } } }";

fn sell(price: &str) -> Value {
    json!({ "market": "BTC-USDT", "side": "SELL", "kind": "LIMIT", "price": price, "quantity": "0.1" })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn place_and_cancel_orders_in_batches() {
    let s = Server::start(&["--demo"]);
    let trader = s.key("TRADER", Some(1)).await;
    let inputs = json!([
        sell("30000"),
        sell("30000.001"),
        sell("30100"),
        sell("30200")
    ]);
    let placed = s.ok(&trader, PLACE, json!({ "inputs": inputs })).await;
    let r = &placed["placeOrders"];
    assert_eq!(r["batch"]["status"], "ACCEPTED", "{r}");
    assert_eq!(r["batch"]["id"], 3, "three of four placed");
    let items = r["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    assert_eq!(items[1]["status"], "REJECTED");
    assert_eq!(items[1]["reason"], "price_not_on_tick");
    let ids: Vec<u64> = [0, 2, 3]
        .iter()
        .map(|&i| {
            assert_eq!(items[i]["status"], "ACCEPTED", "{}", items[i]);
            assert_eq!(items[i]["order"]["status"], "NEW");
            items[i]["id"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(items[2]["order"]["price"], "30100");
    let book = s
        .ok(
            &trader,
            r#"{ depth(market: "BTC-USDT") { asks { price quantity } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(book["depth"]["asks"].as_array().unwrap().len(), 3, "{book}");

    let cancelled = s
        .ok(&trader, CANCEL, json!({ "ids": [ids[0], ids[2]] }))
        .await;
    let c = &cancelled["cancelOrders"];
    assert_eq!(c["batch"]["id"], 2, "{c}");
    for item in c["items"].as_array().unwrap() {
        assert_eq!(item["status"], "ACCEPTED", "{item}");
    }
    let open = s
        .ok(
            &trader,
            "{ orders(openOnly: true) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    let open: Vec<u64> = open["orders"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_u64().unwrap())
        .collect();
    assert_eq!(open, vec![ids[1]]);

    // Over the engine's bound (20 items): refused whole, nothing placed.
    let many: Vec<Value> = (0..21).map(|i| sell(&format!("{}", 31000 + i))).collect();
    let refused = s.ok(&trader, PLACE, json!({ "inputs": many })).await;
    let r = &refused["placeOrders"];
    assert_eq!(r["batch"]["status"], "REJECTED", "{r}");
    assert_eq!(r["batch"]["reason"], "batch_size");
    assert_eq!(r["items"], json!([]));
}
