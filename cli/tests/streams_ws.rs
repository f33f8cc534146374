//! Sequenced streams over the real websocket of a `tape run`: a local book kept
//! from `depthUpdates` (snapshot, deltas chained by seq, each checked against its
//! CRC32) equals the server's depth; `trades` resumed with `fromSeq` after a
//! disconnect delivers exactly the trades made while the client was away.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use futures::{SinkExt, StreamExt};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

async fn subscribe(ws: &mut Ws, id: &str, query: &str) {
    let m = json!({ "id": id, "type": "subscribe", "payload": { "query": query } });
    ws.send(Message::Text(m.to_string().into())).await.unwrap();
}

/// The next `next` payload's data, or None after `wait`.
async fn next(ws: &mut Ws, wait: Duration) -> Option<Value> {
    loop {
        let msg = tokio::time::timeout(wait, ws.next()).await.ok()??.unwrap();
        let Ok(text) = msg.to_text() else { continue };
        let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        assert_ne!(v["type"], "error", "{v}");
        if v["type"] == "next" {
            assert!(v["payload"]["errors"].is_null(), "{v}");
            return Some(v["payload"]["data"].clone());
        }
    }
}

fn order(side: &str, price: &str, qty: &str) -> String {
    format!(
        r#"mutation {{ placeOrder(input: {{market: "BTC-USDT", side: {side}, kind: LIMIT, price: "{price}", quantity: "{qty}"}}) {{ status }} }}"#
    )
}

#[derive(Default)]
struct Book {
    sides: [BTreeMap<Decimal, (Decimal, String, String)>; 2],
}

impl Book {
    fn apply(&mut self, u: &Value) {
        for (i, side) in ["bids", "asks"].iter().enumerate() {
            for l in u[side].as_array().unwrap() {
                let (p, q) = (
                    l["price"].as_str().unwrap(),
                    l["quantity"].as_str().unwrap(),
                );
                let (pd, qd): (Decimal, Decimal) = (p.parse().unwrap(), q.parse().unwrap());
                if qd.is_zero() {
                    self.sides[i].remove(&pd);
                } else {
                    self.sides[i].insert(pd, (qd, p.to_string(), q.to_string()));
                }
            }
        }
    }

    /// Asks lowest first, then bids highest first: price and quantity as sent,
    /// without '.' and leading zeros.
    fn checksum(&self) -> u32 {
        let digits = |s: &str| s.replace('.', "").trim_start_matches('0').to_string();
        let asks = self.sides[1].values().take(10);
        let bids = self.sides[0].values().rev().take(10);
        let text: String = asks
            .chain(bids)
            .map(|(_, p, q)| digits(p) + &digits(q))
            .collect();
        crc32fast::hash(text.as_bytes())
    }

    fn levels(&self, i: usize) -> Vec<(Decimal, Decimal)> {
        let v: Vec<_> = self.sides[i]
            .iter()
            .map(|(p, (q, _, _))| (*p, *q))
            .collect();
        if i == 0 {
            v.into_iter().rev().collect()
        } else {
            v
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_book_from_depth_updates_over_the_websocket_is_the_servers() {
    let s = Server::start(&["--demo"]);
    let (seller, buyer) = (
        s.key("TRADER", Some(1)).await,
        s.key("TRADER", Some(2)).await,
    );
    let mut ws = s.websocket(&buyer).await;
    subscribe(
        &mut ws,
        "d",
        r#"subscription { depthUpdates(market: "BTC-USDT", levels: 10) { kind prevSeq seq checksum bids { price quantity } asks { price quantity } } }"#,
    )
    .await;
    let mut book = Book::default();
    let snapshot = next(&mut ws, Duration::from_secs(10)).await.unwrap()["depthUpdates"].clone();
    assert_eq!(snapshot["kind"], "SNAPSHOT");
    book.apply(&snapshot);
    let mut last = snapshot["seq"].as_u64();
    for (who, side, price, qty) in [
        (&seller, "SELL", "30000", "0.5"),
        (&seller, "SELL", "30010.5", "0.25"),
        (&buyer, "BUY", "29990", "0.3"),
        (&buyer, "BUY", "30000", "0.2"),
        (&seller, "SELL", "29990", "0.1"),
    ] {
        s.ok(who, &order(side, price, qty), json!({})).await;
    }
    let mut deltas = 0;
    while let Some(u) = next(&mut ws, Duration::from_millis(1_500)).await {
        let u = &u["depthUpdates"];
        assert_eq!(u["kind"], "DELTA");
        assert_eq!(u["prevSeq"].as_u64(), last, "deltas chain by seq");
        book.apply(u);
        assert_eq!(
            book.checksum(),
            u["checksum"].as_u64().unwrap() as u32,
            "{u}"
        );
        last = u["seq"].as_u64();
        deltas += 1;
    }
    assert!(deltas >= 3, "{deltas} deltas");
    let depth = s
        .ok(&buyer, r#"{ depth(market: "BTC-USDT", levels: 10) { bids { price quantity } asks { price quantity } } }"#, json!({}))
        .await;
    let server = |side: &str| -> Vec<(Decimal, Decimal)> {
        depth["depth"][side]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| (dec(&l["price"]), dec(&l["quantity"])))
            .collect()
    };
    assert_eq!(book.levels(0), server("bids"));
    assert_eq!(book.levels(1), server("asks"));
}

fn dec(v: &Value) -> Decimal {
    v.as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trades_resume_from_seq_after_a_disconnect() {
    let s = Server::start(&["--demo"]);
    let (seller, buyer) = (
        s.key("TRADER", Some(1)).await,
        s.key("TRADER", Some(2)).await,
    );
    let trades = |from: Option<u64>| {
        let from = from.map(|f| format!(", fromSeq: {f}")).unwrap_or_default();
        format!(r#"subscription {{ trades(market: "BTC-USDT"{from}) {{ id seq price }} }}"#)
    };
    let mut ws = s.websocket(&buyer).await;
    subscribe(&mut ws, "t", &trades(None)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let trade = |price: &'static str| {
        let (seller, buyer, s) = (&seller, &buyer, &s);
        async move {
            s.ok(seller, &order("SELL", price, "0.1"), json!({})).await;
            s.ok(buyer, &order("BUY", price, "0.1"), json!({})).await;
        }
    };
    trade("30000").await;
    let first = next(&mut ws, Duration::from_secs(10)).await.unwrap()["trades"].clone();
    drop(ws);
    // Away: two trades.
    trade("30100").await;
    trade("30200").await;
    let mut ws = s.websocket(&buyer).await;
    subscribe(
        &mut ws,
        "t",
        &trades(Some(first["seq"].as_u64().unwrap() + 1)),
    )
    .await;
    let mut prices = Vec::new();
    while prices.len() < 2 {
        let t = next(&mut ws, Duration::from_secs(10))
            .await
            .expect("the missed trades")["trades"]
            .clone();
        prices.push(t["price"].as_str().unwrap().to_string());
    }
    // And live ones after them.
    trade("30300").await;
    let t = next(&mut ws, Duration::from_secs(10)).await.unwrap()["trades"].clone();
    prices.push(t["price"].as_str().unwrap().to_string());
    assert_eq!(prices, ["30100.00", "30200.00", "30300.00"]);
    assert!(
        next(&mut ws, Duration::from_millis(500)).await.is_none(),
        "each once"
    );
}
