//! The market makers' door on a real Kafka-protocol broker: `tape mm` quoting and
//! `tape load` sending the standard mix straight to the commands topic, a trader
//! over GraphQL, and forged, replayed, expired and wrong-account commands written to
//! the topic meanwhile — with credentials required. Nothing forged gets through,
//! the book never crosses, and `tape replay verify` passes afterwards.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tape_log::{KafkaLog, KafkaOptions};
use tape_schemas::*;
use tape_testkit::{sign_json_test, sign_test};

const MARKET: &str = "BENCH-USD";

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn place(account: u64, side: Side, price: &str) -> tape_schemas::Command {
    tape_schemas::Command::PlaceOrder(NewOrder {
        account: AccountId(account),
        market: MARKET.parse().unwrap(),
        side,
        order_type: OrderType::Limit {
            price: price.parse().unwrap(),
            quantity: "1".parse().unwrap(),
            time_in_force: TimeInForce::Gtc,
            post_only: false,
            display_quantity: None,
        },
        client_order_id: None,
        stp: StpMode::CancelTaker,
    })
}

/// A fresh envelope now.
fn envelope(command: tape_schemas::Command) -> CommandEnvelope {
    CommandEnvelope::new(CommandId(uuid::Uuid::new_v4()), now_ms(), command)
}

/// (key id, secret) of a token `tape_<id>_<secret>`.
fn key_of(token: &str) -> (ApiKeyId, String) {
    let (id, secret) = token
        .strip_prefix("tape_")
        .unwrap()
        .split_once('_')
        .unwrap();
    (ApiKeyId(id.parse().unwrap()), secret.to_string())
}

fn best(depth: &Value, side: &str) -> Option<rust_decimal::Decimal> {
    depth["depth"][side][0]["price"]
        .as_str()
        .map(|p| p.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn market_makers_load_and_a_graphql_trader_share_the_exchange_and_nothing_forged_gets_through(
) {
    let topics = KafkaTopics::fresh("mm");
    let kafka = topics.args();
    let engine_dir = tempfile::tempdir().unwrap();
    let mut engine = topics.engine(engine_dir.path(), Stdio::inherit());
    let gateway = {
        let data = tempfile::tempdir().unwrap();
        let mut args = vec![
            "gateway".to_string(),
            "--data".into(),
            data.path().display().to_string(),
            "--rate-per-second".into(),
            "5000".into(),
        ];
        args.extend(kafka.iter().cloned());
        Server::spawn(args, data)
    };
    let g = &gateway;

    // The operator's setup with the bootstrap token: the mix's assets and market,
    // funds for the market maker (5000) and the GraphQL trader (6000), keys.
    g.market(("BENCH", 8), ("USD", 6), "0.001", "0").await;
    for account in [5000, 6000] {
        g.deposit(account, "BENCH", "100000").await;
        g.deposit(account, "USD", "1000000000").await;
    }
    let admin = g.key("ADMIN", None).await;
    let mm = g.key("TRADER", Some(5000)).await;
    let trader = g.key("TRADER", Some(6000)).await;
    let r = g
        .ok(
            &admin,
            "mutation { requireCredentials(required: true) { status } }",
            json!({}),
        )
        .await;
    assert_eq!(r["requireCredentials"]["status"], "ACCEPTED");
    // From here the bootstrap token cannot act: it cannot sign.
    let (_, e) = g
        .error(ADMIN, "mutation { deposit(account: 6000, asset: \"USD\", amount: \"1\", reference: \"late\") { status } }", json!({}))
        .await;
    assert_eq!(e["extensions"]["code"], "FORBIDDEN", "{e}");

    // The operator's clock, the market maker and the load generator, straight on
    // the topic.
    let clock = Proc(
        Command::new(TAPE)
            .arg("clock")
            .args(&kafka)
            .args(["--key", &admin, "--every-ms", "500"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mm_proc = Command::new(TAPE)
        .arg("mm")
        .args(&kafka)
        .args(["--market", MARKET, "--account", "5000", "--key", &mm])
        .args([
            "--reference",
            "10000",
            "--size",
            "1",
            "--levels",
            "5",
            "--seconds",
            "14",
        ])
        .args([
            "--spacing-bps",
            "0.5",
            "--requote-bps",
            "0.2",
            "--min-requote-ms",
            "300",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let load_proc = Command::new(TAPE)
        .arg("load")
        .args(&kafka)
        .args(["--key", &admin, "--commands", "20000", "--rate", "2000"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Forgeries, written to the topic the way anyone with write access could.
    let commands = KafkaLog::open(KafkaOptions::new(&topics.brokers, &topics.commands))
        .await
        .unwrap();
    let (mm_key, mm_secret) = key_of(&mm);
    let mm_mac = mac_key(&mm_secret);
    let mut forged: Vec<(Vec<u8>, RejectReason)> = vec![
        (
            codec::to_bincode(&envelope(place(5000, Side::Sell, "9000"))).unwrap(),
            RejectReason::MissingCredentials,
        ),
        (
            codec::to_bincode(&sign_test(
                envelope(place(6000, Side::Sell, "9000")),
                mm_key,
                &mm_mac,
                now_ms() + 20_000,
            ))
            .unwrap(),
            RejectReason::NotPermitted,
        ),
        (
            codec::to_bincode(&sign_test(
                envelope(place(5000, Side::Sell, "9000")),
                mm_key,
                &mac_key("not-the-secret"),
                now_ms() + 20_000,
            ))
            .unwrap(),
            RejectReason::BadSignature,
        ),
        (
            sign_json_test(
                &envelope(place(5000, Side::Sell, "9000")),
                mm_key,
                &mac_key("nope"),
                now_ms() + 20_000,
            )
            .into_bytes(),
            RejectReason::BadSignature,
        ),
        (
            codec::to_bincode(&sign_test(
                envelope(place(5000, Side::Sell, "9000")),
                mm_key,
                &mm_mac,
                now_ms() - 60_000,
            ))
            .unwrap(),
            RejectReason::CredentialsExpired,
        ),
        (
            codec::to_bincode(&sign_test(
                envelope(place(5000, Side::Sell, "9000")),
                mm_key,
                &mm_mac,
                now_ms() + 3_600_000,
            ))
            .unwrap(),
            RejectReason::ExpiryTooFar,
        ),
        (
            // The admin key signs; an altered command under it.
            {
                let (admin_key, admin_secret) = key_of(&admin);
                let mut e = sign_test(
                    envelope(place(5000, Side::Buy, "10")),
                    admin_key,
                    &mac_key(&admin_secret),
                    now_ms() + 20_000,
                );
                e.command = tape_schemas::Command::Deposit {
                    account: AccountId(5000),
                    asset: "USD".parse().unwrap(),
                    amount: "1000000".parse().unwrap(),
                    reference: "free-money".parse().unwrap(),
                };
                codec::to_bincode(&e).unwrap()
            },
            RejectReason::BadSignature,
        ),
    ];
    // A legitimate JSON record signed by the trader's key in the middle of it all.
    let (trader_key, trader_secret) = key_of(&trader);
    let json_order = sign_json_test(
        &envelope(place(6000, Side::Buy, "5000")),
        trader_key,
        &mac_key(&trader_secret),
        now_ms() + 20_000,
    );
    let mut forged_offsets = Vec::new();
    let mut json_offset = None;

    // The GraphQL trader sweeps the book both ways (through the mix's orders into
    // the market maker's quotes, which makes it re-quote), while the book is
    // watched for a crossing.
    let place_q =
        "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { status id reason } }";
    const DEPTH: &str = "query($m: String!) { depth(market: $m, levels: 5) { bids { price quantity } asks { price quantity } } }";
    // The bots' Kafka clients can take seconds to connect to tansu: the trading
    // starts once their orders are on the book (only they sell).
    let ready = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let depth = g.ok("", DEPTH, json!({ "m": MARKET })).await;
        if best(&depth, "asks").is_some() {
            break;
        }
        assert!(
            std::time::Instant::now() < ready,
            "the bots never quoted: {depth}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let started = std::time::Instant::now();
    let mut placed = 0;
    let mut depth_checks = 0;
    let mut last_depth = Value::Null;
    let mut i = 0u64;
    while started.elapsed() < Duration::from_secs(12) {
        i += 1;
        if let Some((bytes, _)) = i
            .is_multiple_of(3)
            .then(|| forged.first().cloned())
            .flatten()
        {
            let offsets = commands
                .append_keyed(vec![(Some(b"5000".to_vec()), bytes)])
                .await
                .unwrap();
            forged_offsets.push((offsets[0], forged.remove(0).1));
        }
        if i == 10 {
            let offsets = commands
                .append_keyed(vec![(
                    Some(b"6000".to_vec()),
                    json_order.clone().into_bytes(),
                )])
                .await
                .unwrap();
            json_offset = Some(offsets[0]);
        }
        let side = if i.is_multiple_of(2) { "BUY" } else { "SELL" };
        let price = if i.is_multiple_of(2) { "9990" } else { "10010" };
        let r = g
            .ok(&trader, place_q, json!({ "input": { "market": MARKET, "side": side, "kind": "LIMIT", "price": price, "quantity": "5", "timeInForce": "IOC" } }))
            .await;
        // An IOC may find one side empty for a moment (NO_LIQUIDITY); it must
        // never be refused for its credentials.
        let status = r["placeOrder"]["status"].as_str().unwrap().to_string();
        let reason = r["placeOrder"]["reason"].as_str().unwrap_or_default();
        assert!(
            status != "REJECTED" || reason.contains("LIQUIDITY") || reason.contains("liquidity"),
            "{r}"
        );
        placed += u32::from(status == "ACCEPTED");
        let depth = g.ok("", DEPTH, json!({ "m": MARKET })).await;
        last_depth = depth.clone();
        if let (Some(bid), Some(ask)) = (best(&depth, "bids"), best(&depth, "asks")) {
            assert!(bid < ask, "the book crossed: {depth}");
            depth_checks += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(forged.is_empty(), "not every forgery was sent");

    // A replay: one of the market maker's own signed records, sent again verbatim.
    let all = log_records(&commands, None).await;
    let (replayed_from, replayed) = all
        .iter()
        .enumerate()
        .rev()
        .filter(|(i, _)| !forged_offsets.iter().any(|(o, _)| *o == *i as u64))
        .find_map(|(i, r)| {
            let e = tape_schemas::codec::decode_command(r).ok()?;
            (e.auth.map(|a| a.key) == Some(mm_key)).then(|| (i as u64, r.clone()))
        })
        .expect("the market maker signed commands");
    // A validly signed order stamped a day ahead: accepted, but it may not move the
    // engine's clock past the operator's by more than the tolerance.
    let mut future = envelope(place(5000, Side::Buy, "1"));
    future.time_ms += 86_400_000;
    let future = sign_test(future, mm_key, &mm_mac, now_ms() + 20_000);
    commands
        .append_keyed(vec![(
            Some(b"5000".to_vec()),
            codec::to_bincode(&future).unwrap(),
        )])
        .await
        .unwrap();
    let replay_offset = commands
        .append_keyed(vec![(Some(b"5000".to_vec()), replayed)])
        .await
        .unwrap()[0];

    // The bots finish on their own and report what they saw.
    for (name, child) in [("tape mm", mm_proc), ("tape load", load_proc)] {
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name} failed: {err}");
        eprintln!("{err}");
        if name == "tape mm" {
            // It re-quoted as the market moved, and left nothing open.
            let quotes: u64 = err
                .split("tape mm: ")
                .nth(2)
                .and_then(|l| l.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no summary: {err}"));
            assert!(quotes > 1, "{err}");
            // Re-quotes moved its quotes in place rather than cancelling them.
            assert!(err.contains("\"amended\": "), "{err}");
            assert!(err.contains("open orders left: 0"), "{err}");
        }
    }
    // (Checked once the bots have reported: if they failed, that says why.)
    assert!(
        placed > 20 && depth_checks > 10,
        "{placed} orders, {depth_checks} depth checks; the last depth: {last_depth}"
    );
    drop(clock);
    // Let the engine answer everything, then stop it the way an operator would.
    let end = commands.end_offset().await.unwrap();
    let events = KafkaLog::open(KafkaOptions::new(&topics.brokers, &topics.events))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let outcomes: BTreeMap<u64, (CommandResult, bool)> = loop {
        let mut outcomes = BTreeMap::new();
        for e in used_events(&events).await {
            if let Event::Outcome {
                result, duplicate, ..
            } = e.event
            {
                outcomes.insert(e.command_offset, (result, duplicate));
            }
        }
        if outcomes.len() as u64 == end {
            break outcomes;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {end} commands answered",
            outcomes.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let _ = Command::new("kill")
        .args(["-TERM", &engine.0.id().to_string()])
        .status();
    assert!(
        engine.0.wait().unwrap().success(),
        "the engine did not stop cleanly"
    );

    // Each forgery was refused with its reason; the JSON order went through; the
    // replay was answered as the duplicate it is.
    for (offset, reason) in &forged_offsets {
        assert_eq!(
            outcomes[offset].0,
            CommandResult::Rejected { reason: *reason },
            "offset {offset}"
        );
    }
    assert!(matches!(
        outcomes[&json_offset.unwrap()].0,
        CommandResult::Accepted { .. }
    ));
    // The copy ran nothing. It gets the original's answer while the engine's answer
    // window still holds it (the last `dedupe_capacity` commands), else `replayed_seq`;
    // how many commands `tape load` slipped in between depends on the machine's speed.
    let between = (replay_offset - replayed_from) as usize;
    let capacity = tape_core::CoreConfig::default().dedupe_capacity;
    eprintln!("the copy came {between} commands after the original");
    let (answer, duplicate) = outcomes[&replay_offset];
    assert!(duplicate, "the copy is answered as a duplicate");
    let refused = CommandResult::Rejected {
        reason: RejectReason::ReplayedSeq,
    };
    if between < capacity / 2 {
        assert_eq!(
            answer, outcomes[&replayed_from].0,
            "{between} commands apart"
        );
    } else if between > capacity {
        assert_eq!(answer, refused, "{between} commands apart");
    } else {
        assert!(
            answer == outcomes[&replayed_from].0 || answer == refused,
            "{answer:?}"
        );
    }

    // Nothing got through without the right key: after credentials were required,
    // every accepted command carries the credentials of an admin key or of the
    // account's own trader key.
    let records = log_records(&commands, None).await;
    let mut keys: BTreeMap<ApiKeyId, Option<AccountId>> = BTreeMap::new();
    let mut required_from = None;
    for e in used_events(&events).await {
        match e.event {
            Event::ApiKeyCreated {
                key, role, account, ..
            } => {
                keys.insert(
                    key,
                    if role == ApiRole::Admin {
                        None
                    } else {
                        account
                    },
                );
            }
            Event::CredentialsRequired { required: true } => required_from = Some(e.command_offset),
            _ => {}
        }
    }
    let required_from = required_from.expect("credentials were required");
    let mut accepted = 0;
    for (offset, (result, duplicate)) in outcomes.range(required_from + 1..) {
        if !matches!(result, CommandResult::Accepted { .. }) || *duplicate {
            continue;
        }
        let (command, _) = tape_schemas::codec::decode_record(&records[*offset as usize]).unwrap();
        let auth = command
            .auth
            .unwrap_or_else(|| panic!("unsigned command accepted at {offset}"));
        match keys[&auth.key] {
            None => {} // an admin key
            Some(account) => {
                assert_eq!(command.command.account(), Some(account), "offset {offset}")
            }
        }
        accepted += 1;
    }
    assert!(accepted > 20_000, "only {accepted} accepted commands");
    // The operator's clock ticked throughout, signed by the admin key.
    let latest = used_events(&events)
        .await
        .iter()
        .map(|e| e.time_ms)
        .max()
        .unwrap();
    assert!(
        latest < now_ms() + 60_000,
        "a trader's stamp moved the engine clock to {latest}"
    );
    let (admin_key, _) = key_of(&admin);
    let ticks = outcomes
        .iter()
        .filter(|(_, (r, _))| matches!(r, CommandResult::Accepted { .. }))
        .filter_map(|(o, _)| tape_schemas::codec::decode_command(&records[*o as usize]).ok())
        .filter(|e| {
            e.command == tape_schemas::Command::ClockTick
                && e.auth.map(|a| a.key) == Some(admin_key)
        })
        .count();
    assert!(ticks >= 10, "{ticks} clock ticks");

    // The auditors' verifier agrees with every byte the engine wrote.
    let mut args = vec!["replay".to_string(), "verify".into()];
    args.extend(kafka.iter().cloned());
    let out = Command::new(TAPE).args(&args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with(&format!("verified {end} commands")),
        "tape replay verify: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The events on the log as every reader takes them: under the fencing rule (the
/// engine fenced the log when it took the lead), each seq once.
async fn used_events(events: &KafkaLog) -> Vec<EventEnvelope> {
    let mut filter = tape_schemas::EventFilter::new(1, 0);
    log_records(events, None)
        .await
        .iter()
        .filter_map(|r| filter.take(r).unwrap())
        .collect()
}
