//! End to end through the real doors: a `tape run` process (engine, projector and
//! gateway over an embedded log), driven over HTTP and a websocket the way a
//! frontend would: place, fill, cancel; wallets and history; a live subscription;
//! another account's orders; bad input, over-deep queries and floods.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const PLACE: &str = "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) {
    status id reason
    order { id status filled averagePrice fees restingPrice visible }
    trades { price quantity takerFee makerFee } } }";

fn limit(side: &str, price: &str, qty: &str) -> Value {
    json!({ "input": { "market": "BTC-USDT", "side": side, "kind": "LIMIT", "price": price, "quantity": qty } })
}

/// Assets, a market, two funded accounts, and a key for each plus an auditor key.
async fn setup(s: &Server) -> (String, String, String) {
    s.market(("BTC", 8), ("USDT", 6), "0.0001", "1").await;
    s.deposit(1, "BTC", "10").await;
    s.deposit(2, "USDT", "100000").await;
    (
        s.key("TRADER", Some(1)).await,
        s.key("TRADER", Some(2)).await,
        s.key("AUDITOR", None).await,
    )
}

fn dec(v: &Value) -> rust_decimal::Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("not a decimal string: {v}"))
        .parse()
        .unwrap()
}

fn balance(portfolio: &Value, asset: &str) -> (rust_decimal::Decimal, rust_decimal::Decimal) {
    let b = portfolio["portfolio"]["balances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["asset"] == asset)
        .unwrap_or_else(|| panic!("no {asset} in {portfolio}"))
        .clone();
    (dec(&b["available"]), dec(&b["held"]))
}

const PORTFOLIO: &str =
    "{ portfolio(valueIn: \"USDT\") { balances { asset available held total value } totalValue } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn place_fill_cancel_and_see_wallets_and_history_change() {
    let s = Server::start(&[]);
    let (t1, t2, auditor) = setup(&s).await;

    let sell = s.ok(&t1, PLACE, limit("SELL", "30000", "1")).await;
    let sell = &sell["placeOrder"];
    assert_eq!(sell["status"], "ACCEPTED");
    assert_eq!(sell["order"]["status"], "NEW");
    assert_eq!(
        dec(&sell["order"]["restingPrice"]),
        "30000".parse().unwrap()
    );
    let sell_id = sell["id"].as_u64().unwrap();
    let p1 = s.ok(&t1, PORTFOLIO, json!({})).await;
    assert_eq!(
        balance(&p1, "BTC"),
        ("9".parse().unwrap(), "1".parse().unwrap())
    );

    // account 2 buys 0.4: one fill at 30,000, taker fee 0.2% = 24 USDT
    let buy = s.ok(&t2, PLACE, limit("BUY", "30000", "0.4")).await;
    let buy = &buy["placeOrder"];
    assert_eq!(buy["status"], "ACCEPTED");
    assert_eq!(buy["order"]["status"], "FILLED");
    assert_eq!(buy["trades"].as_array().unwrap().len(), 1);
    assert_eq!(dec(&buy["trades"][0]["quantity"]), "0.4".parse().unwrap());
    assert_eq!(dec(&buy["trades"][0]["takerFee"]), "24".parse().unwrap());
    assert_eq!(dec(&buy["order"]["averagePrice"]), "30000".parse().unwrap());

    let p2 = s.ok(&t2, PORTFOLIO, json!({})).await;
    assert_eq!(
        balance(&p2, "BTC"),
        ("0.4".parse().unwrap(), "0".parse().unwrap())
    );
    assert_eq!(balance(&p2, "USDT").0, "87976".parse().unwrap());
    let total = dec(&p2["portfolio"]["totalValue"]);
    assert_eq!(
        total,
        "99976".parse().unwrap(),
        "0.4 BTC at 30,000 + 87,976 USDT"
    );
    let p1 = s.ok(&t1, PORTFOLIO, json!({})).await;
    assert_eq!(
        balance(&p1, "BTC"),
        ("9".parse().unwrap(), "0.6".parse().unwrap())
    );
    assert_eq!(
        balance(&p1, "USDT"),
        ("11988".parse().unwrap(), "0".parse().unwrap())
    );

    // history: the resting sell is partially filled; the ledger has the fill and fee
    let orders = s
        .ok(
            &t1,
            "{ orders(openOnly: true) { edges { cursor node { id status filled } } } }",
            json!({}),
        )
        .await;
    let edges = orders["orders"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 1);
    assert_eq!(edges[0]["node"]["status"], "PARTIALLY_FILLED");
    let ledger = s
        .ok(
            &t1,
            "{ ledger(asset: \"USDT\") { edges { node { kind amount balance } } } }",
            json!({}),
        )
        .await;
    let kinds: Vec<(String, String)> = ledger["ledger"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["node"]["kind"].as_str().unwrap().to_string(),
                dec(&e["node"]["amount"]).normalize().to_string(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("FEE".to_string(), "-12".to_string()),
            ("TRADE".to_string(), "12000".to_string())
        ]
    );
    let trades = s
        .ok(
            &t2,
            "{ myTrades { edges { node { price quantity makerAccount takerAccount } } } }",
            json!({}),
        )
        .await;
    assert_eq!(trades["myTrades"]["edges"][0]["node"]["makerAccount"], 1);

    // cancel the rest: the order ends CANCELLED and the hold is released
    let cancel = format!(
        "mutation {{ cancelOrder(orderId: {sell_id}) {{ status order {{ status filled }} }} }}"
    );
    let c = s.ok(&t1, &cancel, json!({})).await;
    assert_eq!(c["cancelOrder"]["status"], "ACCEPTED");
    assert_eq!(c["cancelOrder"]["order"]["status"], "CANCELLED");
    let p1 = s.ok(&t1, PORTFOLIO, json!({})).await;
    assert_eq!(
        balance(&p1, "BTC"),
        ("9.6".parse().unwrap(), "0".parse().unwrap())
    );
    let depth = s
        .ok(&t1, "{ depth(market: \"BTC-USDT\") { bids { price } asks { price } } ticker(market: \"BTC-USDT\") { last trades } }", json!({}))
        .await;
    assert!(depth["depth"]["asks"].as_array().unwrap().is_empty());
    assert_eq!(depth["ticker"]["trades"], 1);

    // an auditor reads any account, but cannot trade
    let q = "{ portfolio(account: 1) { balances { asset total } } }";
    s.ok(&auditor, q, json!({})).await;
    let (_, e) = s.error(&auditor, PLACE, limit("SELL", "30000", "1")).await;
    assert_eq!(e["extensions"]["code"], "FORBIDDEN");

    // SIGTERM: the read side drains, the engine snapshots, and `tape run` exits 0.
    let mut s = s;
    assert!(s.stop().success(), "tape run did not stop cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_receives_a_trade() {
    let s = Server::start(&[]);
    let (t1, t2, _) = setup(&s).await;
    let mut ws = s.websocket(&t2).await;
    let send = |v: Value| Message::Text(v.to_string().into());
    ws.send(send(json!({ "id": "t", "type": "subscribe", "payload": {
        "query": "subscription { trades(market: \"BTC-USDT\") { price quantity takerSide } }" } })))
        .await
        .unwrap();
    ws.send(send(json!({ "id": "w", "type": "subscribe", "payload": {
        "query": "subscription { myWallet { asset available held } }" } })))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    s.ok(&t1, PLACE, limit("SELL", "30000", "0.5")).await;
    s.ok(&t2, PLACE, limit("BUY", "30000", "0.5")).await;

    let (mut trade, mut wallet) = (None, false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while trade.is_none() || !wallet {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("no trade arrived on the subscription")
            .unwrap()
            .unwrap();
        let Ok(text) = msg.to_text() else { continue };
        let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        assert_ne!(v["type"], "error", "{v}");
        if v["type"] == "next" && v["id"] == "t" {
            trade = Some(v["payload"]["data"]["trades"].clone());
        }
        if v["type"] == "next" && v["id"] == "w" {
            wallet = true;
            assert!(v["payload"]["data"]["myWallet"]["asset"].is_string(), "{v}");
        }
    }
    let trade = trade.unwrap();
    assert_eq!(dec(&trade["price"]), "30000".parse().unwrap());
    assert_eq!(dec(&trade["quantity"]), "0.5".parse().unwrap());
    assert_eq!(trade["takerSide"], "BUY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trader_cannot_read_or_cancel_another_accounts_orders() {
    let s = Server::start(&[]);
    let (t1, t2, _) = setup(&s).await;
    let sell = s.ok(&t1, PLACE, limit("SELL", "31000", "1")).await;
    let id = sell["placeOrder"]["id"].as_u64().unwrap();

    let (_, e) = s
        .error(
            &t2,
            &format!("{{ order(id: {id}) {{ status }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(e["extensions"]["code"], "FORBIDDEN", "{e}");
    let (_, e) = s
        .error(
            &t2,
            "{ orders(account: 1) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(e["extensions"]["code"], "FORBIDDEN", "{e}");
    let before = s.commands_on_log();
    let cancel_for_1 =
        format!("mutation {{ cancelOrder(account: 1, orderId: {id}) {{ status }} }}");
    let (_, e) = s.error(&t2, &cancel_for_1, json!({})).await;
    assert_eq!(e["extensions"]["code"], "FORBIDDEN", "{e}");
    assert_eq!(
        s.commands_on_log(),
        before,
        "a refused mutation appends nothing"
    );
    // naming only the order id acts for the key's own account: the engine finds no
    // such order there
    let cancel = format!("mutation {{ cancelOrder(orderId: {id}) {{ status reason }} }}");
    let r = s.ok(&t2, &cancel, json!({})).await;
    assert_eq!(r["cancelOrder"]["status"], "REJECTED");
    assert_eq!(r["cancelOrder"]["reason"], "unknown_order");
    let (_, e) = s
        .error(
            &t2,
            "mutation { cancelAllOrders(account: 1) { status } }",
            json!({}),
        )
        .await;
    assert_eq!(e["extensions"]["code"], "FORBIDDEN");
    let still = s
        .ok(
            &t1,
            &format!("{{ order(id: {id}) {{ status }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(still["order"]["status"], "NEW");
    // no key at all: private data is refused, public data is served
    let (_, e) = s.error("", PORTFOLIO, json!({})).await;
    assert_eq!(e["extensions"]["code"], "UNAUTHENTICATED");
    s.ok(
        "",
        "{ depth(market: \"BTC-USDT\") { asks { price quantity } } }",
        json!({}),
    )
    .await;
    let (status, e) = s.error("tape_99_00", PORTFOLIO, json!({})).await;
    assert_eq!(
        (status, e["extensions"]["code"].as_str()),
        (401, Some("UNAUTHENTICATED"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let s = Server::start(&[]);
    let (t1, _, _) = setup(&s).await;
    let before = s.commands_on_log();
    let portfolio = s.ok(&t1, PORTFOLIO, json!({})).await;

    let (_, e) = s.error(&t1, PLACE, limit("SELL", "30,000.5", "1")).await;
    let m = e["message"].as_str().unwrap();
    assert!(m.contains("\"30,000.5\" is not a decimal"), "{m}");
    let float = json!({ "input": { "market": "BTC-USDT", "side": "SELL", "kind": "LIMIT", "price": 30000.5, "quantity": "1" } });
    let (_, e) = s.error(&t1, PLACE, float).await;
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("decimals are strings"),
        "{e}"
    );
    let unknown = json!({ "input": { "market": "DOGE-USDT", "side": "SELL", "kind": "LIMIT", "price": "1", "quantity": "1" } });
    let (_, e) = s.error(&t1, PLACE, unknown).await;
    assert_eq!(e["extensions"]["code"], "UNKNOWN_MARKET");
    assert!(
        e["message"].as_str().unwrap().contains("markets: BTC-USDT"),
        "{e}"
    );
    let no_price = json!({ "input": { "market": "BTC-USDT", "side": "SELL", "kind": "LIMIT", "quantity": "1" } });
    let (_, e) = s.error(&t1, PLACE, no_price).await;
    assert_eq!(e["message"], "a limit order needs `price`");
    let deep = "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } } } }";
    let (_, e) = s.error(&t1, deep, json!({})).await;
    assert!(
        e["message"].as_str().unwrap().contains("nested too deep"),
        "{e}"
    );
    assert_eq!(
        s.commands_on_log(),
        before,
        "nothing reached the commands log"
    );
    assert_eq!(s.ok(&t1, PORTFOLIO, json!({})).await, portfolio);

    // an order the engine refuses changes nothing but is answered with the reason
    let r = s.ok(&t1, PLACE, limit("SELL", "30000.001", "1")).await;
    assert_eq!(r["placeOrder"]["status"], "REJECTED");
    assert_eq!(r["placeOrder"]["reason"], "price_not_on_tick");
    assert_eq!(s.ok(&t1, PORTFOLIO, json!({})).await, portfolio);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_over_the_rate_limit_is_refused_and_changes_nothing() {
    let s = Server::start(&["--rate-per-second", "5", "--rate-burst", "5"]);
    // the setup uses the admin's bucket; the flood uses trader 1's
    let (t1, _, _) = setup(&s).await;
    let before = s.commands_on_log();
    let mut limited = Vec::new();
    for _ in 0..20 {
        let (status, body) = s.post(&t1, PLACE, limit("SELL", "30000", "0.01")).await;
        if status == 429 {
            limited.push(body);
        }
    }
    assert!(
        limited.len() >= 10,
        "only {} of 20 were limited",
        limited.len()
    );
    let e = &limited[0]["errors"][0];
    assert_eq!(e["extensions"]["code"], "RATE_LIMITED");
    assert!(
        e["message"].as_str().unwrap().contains("5 requests/s"),
        "{e}"
    );
    let accepted = 20 - limited.len() as u64;
    assert_eq!(
        s.commands_on_log() - before,
        accepted,
        "only the admitted requests reached the log"
    );
    // another key is not affected
    let (status, _) = s.post(ADMIN, "{ markets { symbol } }", json!({})).await;
    assert_eq!(status, 200);
}

/// On Kafka: one engine, two read sides (`tape gateway`) with their own views. What
/// is placed through one gateway is answered and visible through the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_serve_one_engine_on_kafka() {
    let topics = KafkaTopics::fresh("gql");
    let engine_dir = tempfile::tempdir().unwrap();
    let _engine = topics.engine(engine_dir.path(), Stdio::null());
    let (a, b) = (topics.gateway(), topics.gateway());
    let (t1, t2, _) = setup(&a).await;
    let sell = a.ok(&t1, PLACE, limit("SELL", "30000", "1")).await;
    let id = sell["placeOrder"]["id"].as_u64().unwrap();
    assert_eq!(sell["placeOrder"]["order"]["status"], "NEW");
    let buy = b.ok(&t2, PLACE, limit("BUY", "30000", "0.25")).await;
    assert_eq!(buy["placeOrder"]["status"], "ACCEPTED", "{buy}");
    assert_eq!(buy["placeOrder"]["order"]["status"], "FILLED");
    // each gateway shows what went through the other, once its projector is there
    let seen = |v: &Value| v["order"]["status"] == "PARTIALLY_FILLED";
    let q = format!("{{ order(id: {id}) {{ status filled }} }}");
    for s in [&a, &b] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let v = s.ok(&t1, &q, json!({})).await;
            if seen(&v) {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{v}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_and_graphiql_are_served() {
    let s = Server::start(&[]);
    setup(&s).await;
    let get = |path: &str| {
        let url = format!("http://{}{path}", s.addr);
        let http = s.http.clone();
        async move {
            let r = http.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (status, body) = get("/health").await;
    assert_eq!(status, 200);
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "ok");
    assert!(health["projected_seq"].as_u64().unwrap() > 0, "{health}");
    let (status, body) = get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("tape_gateway_requests_total{result=\"ok\"}"),
        "{body}"
    );
    assert!(
        body.contains("tape_gateway_commands_total{answer=\"answered\"}"),
        "{body}"
    );
    assert!(body.contains("tape_projector_next_seq"), "{body}");
    // The engine's and projector's gauges (refreshed each second) catch up with the
    // setup: every command applied, none waiting, the read models at the last seq.
    let commands = s.commands_on_log() as i64;
    let value = |body: &str, name: &str| -> Option<i64> {
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = get("/metrics").await;
        let applied = value(&body, "tape_engine_commands_applied_total");
        let next = value(&body, "tape_engine_next_command_offset");
        let lag = value(&body, "tape_engine_commands_lag");
        let last_seq = value(&body, "tape_engine_last_seq");
        let projector_lag = value(&body, "tape_projector_lag_events");
        if applied == Some(commands)
            && next == Some(commands)
            && lag == Some(0)
            && last_seq.is_some_and(|s| s > commands)
            && projector_lag == Some(0)
        {
            assert!(value(&body, "tape_engine_snapshot_age_seconds").is_some());
            // The setup's admin commands were stamped moments ago.
            let behind = value(&body, "tape_engine_trusted_time_behind_seconds");
            assert!(behind.is_some_and(|b| (0..60).contains(&b)), "{body}");
            assert_eq!(value(&body, "tape_engine_credentials_required"), Some(0));
            // No perpetual here: nothing waits for liquidation.
            assert_eq!(value(&body, "tape_liquidation_backlog"), Some(0));
            assert_eq!(value(&body, "tape_liquidation_sweeps"), Some(0));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "engine metrics never caught up with {commands} commands: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, body) = get("/graphql").await;
    assert_eq!(status, 200);
    assert!(body.to_lowercase().contains("graphiql"), "GraphiQL page");
}

/// With no engine running, a mutation comes back PENDING with its log offset (never
/// a guess); once an engine runs, `command(offset:, id:)` gives the real answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_the_engine_has_not_answered_is_pending_until_it_does() {
    let data = tempfile::tempdir().unwrap();
    let data_arg = data.path().display().to_string();
    // create the logs, then stop the engine
    let mut engine = Proc(
        Command::new(TAPE)
            .args(["engine", "--data", &data_arg])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !data.path().join("events").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the engine never created its logs"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(engine);
    let args = vec![
        "gateway".to_string(),
        "--data".into(),
        data_arg.clone(),
        "--outcome-wait-ms".into(),
        "300".into(),
    ];
    let keep = tempfile::tempdir().unwrap(); // the gateway's own TempDir is unused here
    let s = Server::spawn(args, keep);
    let q = "mutation { createAsset(code: \"BTC\", scale: 8) { status commandId offset id } }";
    let r = s.ok(ADMIN, q, json!({})).await;
    let receipt = &r["createAsset"];
    assert_eq!(receipt["status"], "PENDING", "{r}");
    let (id, offset) = (
        receipt["commandId"].as_str().unwrap().to_string(),
        receipt["offset"].as_u64().unwrap(),
    );
    let ask = format!("{{ command(offset: {offset}, id: \"{id}\") {{ status id reason }} }}");
    assert_eq!(s.ok(ADMIN, &ask, json!({})).await["command"], Value::Null);

    engine = Proc(
        Command::new(TAPE)
            .args(["engine", "--data", &data_arg])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let v = s.ok(ADMIN, &ask, json!({})).await;
        if v["command"]["status"] == "ACCEPTED" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(engine);
}

/// A refusal says why: the reason code, and a sentence with the rule, the bound and
/// the value (derived by the gateway from the command and the read models).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_names_the_rule_the_bound_and_the_value() {
    let s = Server::start(&[]);
    let (alice, _bob, _) = setup(&s).await;
    // The issue's own example: USD at scale 2 cannot settle 0.01 × 0.0001.
    s.admin("mutation { createAsset(code: \"USD\", scale: 2) { status } }")
        .await;
    let create = "mutation { createMarket(input: { symbol: \"BTC-USD\", base: \"BTC\", quote: \"USD\",
        tickSize: \"0.01\", lotSize: \"0.0001\", minNotional: \"1\", makerFeePpm: 1000, takerFeePpm: 2000 }) { status reason message } }";
    let r = s.ok(ADMIN, create, json!({})).await["createMarket"].clone();
    assert_eq!(r["status"], "REJECTED", "{r}");
    assert_eq!(r["reason"], "invalid_market_spec");
    assert_eq!(
        r["message"],
        "tick × lot = 0.000001 USD is finer than USD's scale of 2 decimals: every trade's value must be a whole number of USD's minor units"
    );

    // Alice holds 10 BTC: selling 11 says what she has and what the order needs.
    let r = s.ok(&alice, PLACE, limit("SELL", "30000", "11")).await["placeOrder"].clone();
    assert_eq!(r["reason"], "insufficient_funds", "{r}");
    let message = s
        .ok(
            &alice,
            "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { message } }",
            limit("SELL", "30000", "11"),
        )
        .await["placeOrder"]["message"]
        .clone();
    assert_eq!(
        message,
        "the order must hold 11 BTC; account 1 has 10.00000000 BTC available"
    );

    // Off the tick: the tick and the price.
    let r = s
        .ok(
            &alice,
            "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { reason message } }",
            limit("SELL", "30000.005", "1"),
        )
        .await["placeOrder"]
        .clone();
    assert_eq!(r["reason"], "price_not_on_tick", "{r}");
    assert_eq!(
        r["message"],
        "BTC-USDT's prices move in ticks of 0.01; 30000.005 is not a multiple of it"
    );

    // A band of 5% around the last trade: its bounds and the price.
    s.admin("mutation { createAsset(code: \"USDX\", scale: 6) { status } }")
        .await;
    s.admin("mutation { createMarket(input: { symbol: \"BTC-USDX\", base: \"BTC\", quote: \"USDX\",
        tickSize: \"0.01\", lotSize: \"0.0001\", minNotional: \"1\", makerFeePpm: 0, takerFeePpm: 0, priceBandBps: 500 }) { status } }").await;
    s.deposit(2, "USDX", "10000").await;
    let on_usdx = |side: &str, price: &str, qty: &str| json!({ "input": { "market": "BTC-USDX", "side": side, "kind": "LIMIT", "price": price, "quantity": qty } });
    let r = s.ok(&alice, PLACE, on_usdx("SELL", "30000", "0.1")).await["placeOrder"].clone();
    assert_eq!(r["status"], "ACCEPTED", "{r}");
    let r = s.ok(&_bob, PLACE, on_usdx("BUY", "30000", "0.1")).await["placeOrder"].clone();
    assert_eq!(r["trades"][0]["price"], "30000.00", "{r}");
    let r = s
        .ok(
            &alice,
            "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { reason message } }",
            on_usdx("SELL", "40000", "1"),
        )
        .await["placeOrder"]
        .clone();
    assert_eq!(r["reason"], "price_outside_band", "{r}");
    assert_eq!(
        r["message"],
        "BTC-USDX takes prices within 500 bps of the last trade (30000): from 28500 to 31500; 40000 is outside"
    );
}

/// A perpetual from `tape oracle --demo` beside the running Tape, an oracle key's
/// signed prices, and leverage over GraphQL: the tier's cap, a choice, a refusal
/// with its sentence, and an admin's tier change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leverage_and_a_perpetuals_prices_over_graphql() {
    let s = Server::start(&[]);
    s.market(("BTC", 8), ("USDT", 6), "0.0001", "1").await;
    s.deposit(1, "USDT", "1000").await;
    let alice = s.key("TRADER", Some(1)).await;
    let oracle_key = s.key("ORACLE", None).await;
    let data = s.data.path().display().to_string();
    let oracle = |prices: &str, key: Option<&str>| {
        let mut args = vec!["oracle", "--every-ms", "10", "--data", &data];
        match key {
            Some(k) => args.extend(["--key", k]),
            None => args.push("--demo"),
        }
        let out = tape_with_stdin(&args, prices);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    for (prices, key) in [("50000\n", None), ("50100\n", Some(oracle_key.as_str()))] {
        let (ok, err) = oracle(prices, key);
        assert!(ok, "tape oracle: {err}");
    }
    // A jump past the bound is refused, with the last index and the bound.
    let (ok, err) = oracle("60000\n", Some(&oracle_key));
    assert!(!ok, "{err}");
    assert!(
        err.contains("at most 5% (50000 ppm) from its last, 50100.0; 60000 is 19.76% away"),
        "{err}"
    );
    let p = s
        .ok(
            ADMIN,
            "{ perpetual(symbol: \"BTC-USDT-PERP\") { index mark stale collateral } }",
            json!({}),
        )
        .await;
    assert_eq!(p["perpetual"]["collateral"], "USDT", "{p}");
    assert!(p["perpetual"]["index"].is_string(), "{p}");

    // An oracle key signs prices; it does not log in here.
    let (_, e) = s.error(&oracle_key, "{ me { role } }", json!({})).await;
    assert!(e["message"].is_string(), "{e}");

    const LEVERAGE: &str = "{ leverage(market: \"BTC-USDT-PERP\") { tier cap chosen leverage } }";
    let l = s.ok(&alice, LEVERAGE, json!({})).await;
    assert_eq!(
        l["leverage"],
        json!({"tier": "BEGINNER", "cap": 5, "chosen": null, "leverage": 5})
    );
    const SET: &str = "mutation($l: Int!) { setLeverage(market: \"BTC-USDT-PERP\", leverage: $l) { status reason message } }";
    let r = s.ok(&alice, SET, json!({"l": 3})).await;
    assert_eq!(r["setLeverage"]["status"], "ACCEPTED", "{r}");
    let r = s.ok(&alice, SET, json!({"l": 6})).await;
    assert_eq!(r["setLeverage"]["reason"], "leverage_above_cap", "{r}");
    assert!(
        r["setLeverage"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("6x") && m.contains("account 1")),
        "{r}"
    );
    s.admin("mutation { setAccountTier(account: 1, tier: ADVANCED) { status } }")
        .await;
    let l = s.ok(&alice, LEVERAGE, json!({})).await;
    assert_eq!(
        l["leverage"],
        json!({"tier": "ADVANCED", "cap": 20, "chosen": 3, "leverage": 3})
    );
}

/// Trading the demo perpetual over GraphQL: a position at 20x, its margin and
/// entry price in `positions`, then `tape oracle` moves the index until the
/// position is below maintenance; the engine sells part of it into a bid and
/// `liquidations` tells the story.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_and_its_liquidation_over_graphql() {
    let s = Server::start(&[]);
    s.market(("BTC", 8), ("USDT", 6), "0.0001", "1").await;
    s.deposit(1, "USDT", "1000").await;
    s.deposit(2, "USDT", "100000").await;
    let alice = s.key("TRADER", Some(1)).await;
    let bob = s.key("TRADER", Some(2)).await;
    let data = s.data.path().display().to_string();
    let oracle = |prices: &str, demo: bool| {
        let mut args = vec!["oracle", "--every-ms", "10", "--data", &data];
        if demo {
            args.push("--demo");
        }
        let out = tape_with_stdin(&args, prices);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    oracle("50000\n", true);
    s.admin("mutation { setAccountTier(account: 1, tier: ADVANCED) { status } }")
        .await;
    let perp = |side: &str, price: &str, qty: &str| json!({ "input": { "market": "BTC-USDT-PERP", "side": side, "kind": "LIMIT", "price": price, "quantity": qty } });
    // Alice follows her positions as they change.
    let mut ws = s.websocket(&alice).await;
    let sub = json!({ "id": "p", "type": "subscribe", "payload": {
        "query": "subscription { myPositions { market size leverage } }" } });
    ws.send(Message::Text(sub.to_string().into()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = s.ok(&bob, PLACE, perp("SELL", "50000", "0.2")).await;
    assert_eq!(r["placeOrder"]["status"], "ACCEPTED", "{r}");
    let r = s.ok(&alice, PLACE, perp("BUY", "50000", "0.2")).await;
    assert_eq!(r["placeOrder"]["trades"][0]["price"], "50000.0", "{r}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let pushed = loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("no position arrived on myPositions")
            .unwrap()
            .unwrap();
        let Ok(text) = msg.to_text() else { continue };
        let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        assert_ne!(v["type"], "error", "{v}");
        if v["type"] == "next" && v["id"] == "p" {
            break v["payload"]["data"]["myPositions"].clone();
        }
    };
    assert_eq!(
        pushed,
        json!({"market": "BTC-USDT-PERP", "size": "0.2", "leverage": 20})
    );
    const POSITIONS: &str =
        "{ positions { market size entryPrice mark unrealizedPnl initialMargin leverage } }";
    let p = s.ok(&alice, POSITIONS, json!({})).await;
    // 0.2 × 50,000 at 20x holds 500.
    assert_eq!(
        p["positions"][0],
        json!({"market": "BTC-USDT-PERP", "size": "0.2", "entryPrice": "50000",
            "mark": "50000", "unrealizedPnl": "0", "initialMargin": "500", "leverage": 20}),
        "{p}"
    );
    // Her margin: 995 of equity (1,000 less the 5 fee) against 40 of maintenance
    // (0.4%); she is liquidated where 0.2 × p − 9,005 = 0.4% × 0.2 × p, at
    // 45,205.82…, rounded up to the tick.
    let m = s
        .ok(
            &alice,
            "{ margin(collateral: \"USDT\") { equity maintenance marginRatio } positions { maintenanceMargin liquidationPrice } }",
            json!({}),
        )
        .await;
    assert_eq!(
        m["margin"],
        json!({"equity": "995", "maintenance": "40", "marginRatio": "0.040201"}),
        "{m}"
    );
    assert_eq!(m["positions"][0]["maintenanceMargin"], "40", "{m}");
    let liq: f64 = m["positions"][0]["liquidationPrice"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((45_205.82..45_207.0).contains(&liq), "{m}");
    // The index falls to 47,500; Bob bids at 45,200 (within 5% of the mark, the
    // demo's band) and the index follows. Alice then has 995 − 960 = 35 against a
    // maintenance of 36.16: part of her position is sold into Bob's bid.
    oracle("47500\n", false);
    let r = s.ok(&bob, PLACE, perp("BUY", "45200", "0.2")).await;
    assert_eq!(r["placeOrder"]["status"], "ACCEPTED", "{r}");
    oracle("45200\n", false);
    const LIQUIDATIONS: &str = "{ liquidations { what market quantity price equity maintenance } }";
    let mut l = json!(null);
    for _ in 0..100 {
        l = s.ok(&alice, LIQUIDATIONS, json!({})).await;
        if l["liquidations"].as_array().is_some_and(|a| a.len() >= 3) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let whats: Vec<&str> = l["liquidations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["what"].as_str().unwrap())
        .collect();
    assert_eq!(whats, ["started", "reduce", "ended"], "{l}");
    assert_eq!(l["liquidations"][0]["equity"], "35", "{l}");
    assert_eq!(l["liquidations"][0]["maintenance"], "36.16", "{l}");
    // Her bankruptcy price: 45,200 − 35 / 0.2 = 45,025. Each 0.001 sold frees
    // 0.4% less the 0.05% taker fee of 45.2: twice the 1.16 missing is 0.016.
    assert_eq!(l["liquidations"][1]["price"], "45025", "{l}");
    assert_eq!(l["liquidations"][1]["quantity"], "0.016", "{l}");
    let p = s.ok(&alice, POSITIONS, json!({})).await;
    let size: f64 = p["positions"][0]["size"].as_str().unwrap().parse().unwrap();
    assert!(size > 0.0 && size < 0.2, "{p}");
    // Prometheus counts the liquidation (the metrics refresh each second); the
    // insurance fund paid nothing.
    let wanted = [
        r#"tape_liquidation_events_total{market="BTC-USDT-PERP",stage="reduce"} 1"#,
        r#"tape_liquidations_total{asset="USDT",event="started"} 1"#,
        r#"tape_liquidations_total{asset="USDT",event="ended"} 1"#,
    ];
    let url = format!("http://{}/metrics", s.addr);
    let mut body = String::new();
    for _ in 0..100 {
        body = s.http.get(&url).send().await.unwrap().text().await.unwrap();
        if wanted.iter().all(|w| body.contains(w)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for w in wanted {
        assert!(body.contains(w), "{w} in {body}");
    }
}
