//! Who may read and trade what, executed in process against the schema (no HTTP, no
//! tokens: each request carries its caller). Market data is public; a trader reads
//! and trades its own account only; an auditor reads any account and trades none;
//! only an admin runs admin commands. A refused mutation appends nothing.

mod support;

use std::time::Duration;

use support::*;

fn gateway() -> Gateway {
    gateway_over(market_with_two_accounts(), 1_000)
}

const PORTFOLIO: &str = "{ portfolio { account balances { asset total } } }";
const BOBS_PORTFOLIO: &str = "{ portfolio(account: 2) { account balances { asset total } } }";
const BOBS_LEDGER: &str = "{ ledger(account: 2) { edges { node { asset } } } }";
const BUY_FOR_BOB: &str = r#"mutation { placeOrder(input: { account: 2, market: "BTC-USDT", side: BUY, kind: LIMIT, price: "100", quantity: "1" }) { status } }"#;
const BUY: &str = r#"mutation { placeOrder(input: { market: "BTC-USDT", side: BUY, kind: LIMIT, price: "100", quantity: "1" }) { status } }"#;
const CREATE_ASSET: &str = r#"mutation { createAsset(code: "ETH", scale: 8) { status } }"#;

#[tokio::test]
async fn market_data_is_public_and_accounts_need_a_key() {
    let g = gateway();
    let markets = g.allowed(None, "{ markets { symbol } }").await;
    assert_eq!(markets["markets"][0]["symbol"], "BTC-USDT");
    assert_eq!(g.refused(None, PORTFOLIO).await, "UNAUTHENTICATED");
    assert_eq!(g.refused(None, BUY).await, "UNAUTHENTICATED");
    assert_eq!(g.refused(None, CREATE_ASSET).await, "UNAUTHENTICATED");
    assert_eq!(g.appended().await, 0);
}

#[tokio::test]
async fn a_trader_reads_and_trades_its_own_account_only() {
    let g = gateway();
    let own = g.allowed(Some(TRADER), PORTFOLIO).await;
    assert_eq!(own["portfolio"]["account"], 1);
    assert_eq!(own["portfolio"]["balances"][0]["asset"], "USDT");
    assert_eq!(g.refused(Some(TRADER), BOBS_PORTFOLIO).await, "FORBIDDEN");
    assert_eq!(g.refused(Some(TRADER), BOBS_LEDGER).await, "FORBIDDEN");
    assert_eq!(g.refused(Some(TRADER), BUY_FOR_BOB).await, "FORBIDDEN");
    assert_eq!(g.refused(Some(TRADER), CREATE_ASSET).await, "FORBIDDEN");
    assert_eq!(g.appended().await, 0);
    // Its own order goes to the log (no engine answers here, so it is pending).
    let placed = g.allowed(Some(TRADER), BUY).await;
    assert_eq!(placed["placeOrder"]["status"], "PENDING");
    assert_eq!(g.appended().await, 1);
}

#[tokio::test]
async fn an_auditor_reads_every_account_and_trades_none() {
    let g = gateway();
    let bob = g.allowed(Some(AUDITOR), BOBS_PORTFOLIO).await;
    assert_eq!(bob["portfolio"]["balances"][0]["asset"], "BTC");
    g.allowed(Some(AUDITOR), BOBS_LEDGER).await;
    assert_eq!(g.refused(Some(AUDITOR), BUY_FOR_BOB).await, "FORBIDDEN");
    assert_eq!(g.refused(Some(AUDITOR), CREATE_ASSET).await, "FORBIDDEN");
    assert_eq!(g.appended().await, 0);
}

#[tokio::test]
async fn an_admin_reads_any_account_and_runs_admin_commands() {
    let g = gateway();
    g.allowed(Some(ADMIN), BOBS_PORTFOLIO).await;
    let created = g.allowed(Some(ADMIN), CREATE_ASSET).await;
    assert_eq!(created["createAsset"]["status"], "PENDING");
    assert_eq!(g.appended().await, 1);
}

/// The frontend guide lists every error code the gateway can answer with.
#[test]
fn the_frontend_guide_lists_every_error_code() {
    let guide =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/frontend.md"))
            .unwrap();
    for code in tape_gateway::Code::ALL {
        assert!(
            guide.contains(&format!("`{code}`")),
            "docs/frontend.md does not list {code}"
        );
    }
}

#[tokio::test]
async fn a_subscriber_that_falls_behind_is_ended_with_resync_never_skipped() {
    use futures::StreamExt;
    let g = gateway();
    let mut stream = g
        .schema
        .execute_stream(r#"subscription { trades(market: "BTC-USDT") { price } }"#);
    // The first poll runs the resolver, which subscribes; nothing has come yet.
    let nothing = tokio::time::timeout(Duration::from_millis(50), stream.next()).await;
    assert!(nothing.is_err(), "no trade yet");
    // The projector applies more batches than the feed holds for a slow reader.
    for next_seq in 1..=10 {
        let batch = tape_projections::Changes {
            next_seq,
            ..Default::default()
        };
        g.changes.send(std::sync::Arc::new(batch)).unwrap();
    }
    let r = stream.next().await.expect("the subscriber is told");
    let code = r.errors[0]
        .extensions
        .as_ref()
        .and_then(|x| x.get("code"))
        .cloned();
    assert_eq!(code, Some(async_graphql::Value::from("RESYNC")), "{r:?}");
    assert!(stream.next().await.is_none(), "and its stream ends");
}
