//! The dead-man switch through real processes: a trader arms it over GraphQL and its
//! order is cancelled once the deadline passes; `tape mm`, killed without a chance to
//! cancel, leaves nothing quoted once its switch runs out.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::json;

const ORDERS: &str =
    "query($a: Int) { orders(account: $a, first: 100) { nodes { id status doneReason } } }";

/// An operator's deposit: trusted time, so the engine's clock moves to now.
async fn operator_command(s: &Server, n: u32) {
    s.admin(&format!(
        "mutation {{ deposit(account: 2, asset: \"USDT\", amount: \"1\", reference: \"tick-{n}\") {{ status }} }}"
    ))
    .await;
}

/// (id, status, doneReason) of every order of `account`.
async fn orders(s: &Server, account: u64) -> Vec<(u64, String, String)> {
    let data = s.ok(ADMIN, ORDERS, json!({ "a": account })).await;
    data["orders"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["id"].as_u64().unwrap(),
                o["status"].as_str().unwrap().to_string(),
                o["doneReason"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_armed_switch_cancels_a_traders_orders_once_its_deadline_passes() {
    let s = Server::start(&["--demo"]);
    let trader = s.key("TRADER", Some(1)).await;
    let placed = s
        .ok(
            &trader,
            r#"mutation { placeOrder(input: {market: "BTC-USDT", side: BUY, kind: LIMIT, price: "20000", quantity: "0.1"}) { status id } }"#,
            json!({}),
        )
        .await;
    let id = placed["placeOrder"]["id"].as_u64().unwrap();
    let armed = s
        .ok(
            &trader,
            "mutation { cancelAllOrdersAfter(timeoutMs: 1500) { status reason } }",
            json!({}),
        )
        .await;
    assert_eq!(
        armed["cancelAllOrdersAfter"]["status"], "ACCEPTED",
        "{armed}"
    );
    let too_long = s
        .ok(
            &trader,
            "mutation { cancelAllOrdersAfter(timeoutMs: 86400001) { status reason } }",
            json!({}),
        )
        .await;
    assert_eq!(
        too_long["cancelAllOrdersAfter"]["reason"], "timeout_too_long",
        "{too_long}"
    );

    // Before the deadline the order stands; after it, the next command ends it.
    operator_command(&s, 1).await;
    assert_eq!(orders(&s, 1).await, vec![(id, "NEW".into(), "".into())]);
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    operator_command(&s, 2).await;
    assert_eq!(
        orders(&s, 1).await,
        vec![(id, "CANCELLED".into(), "dead_man_switch".into())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_market_maker_leaves_nothing_quoted_once_its_switch_runs_out() {
    let s = Server::start(&["--demo"]);
    let data = s.data.path().display().to_string();
    // What the bot says goes to a file, shown if it never quotes.
    let said = s.data.path().join("mm.stderr");
    let mut mm = Proc(
        Command::new(TAPE)
            .args([
                "mm",
                "--data",
                &data,
                "--market",
                "BTC-USDT",
                "--account",
                "1",
                "--reference",
                "30000",
                "--size",
                "0.01",
                "--levels",
                "3",
                "--dead-man-ms",
                "2000",
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&said).unwrap())
            .spawn()
            .unwrap(),
    );
    let open = |o: &Vec<(u64, String, String)>| o.iter().filter(|o| o.1 == "NEW").count();
    let mut quoted = 0;
    for _ in 0..100 {
        quoted = open(&orders(&s, 1).await);
        if quoted == 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        quoted,
        6,
        "tape mm quotes 3 levels a side; it said: {}",
        std::fs::read_to_string(&said).unwrap_or_default()
    );

    // SIGKILL: the bot cannot cancel anything itself.
    mm.0.kill().unwrap();
    mm.0.wait().unwrap();
    operator_command(&s, 1).await;
    assert_eq!(
        open(&orders(&s, 1).await),
        6,
        "quotes stand until the deadline"
    );
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    operator_command(&s, 2).await;
    let after = orders(&s, 1).await;
    assert_eq!(open(&after), 0, "{after:?}");
    assert!(
        after
            .iter()
            .filter(|o| o.1 == "CANCELLED")
            .all(|o| o.2 == "dead_man_switch" || o.2 == "cancelled"),
        "{after:?}"
    );
    assert!(after.iter().any(|o| o.2 == "dead_man_switch"), "{after:?}");
}
