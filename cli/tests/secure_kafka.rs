//! Secure by default on Kafka: a deployment started by `tape init` refuses unsigned
//! commands from its first one; its admin token (printed once) works over GraphQL;
//! an engine will not run a log that started any other way unless told `--open`.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::json;

fn engine(topics: &KafkaTopics, dir: &std::path::Path) -> Proc {
    Proc(
        Command::new(TAPE)
            .arg("engine")
            .args(topics.args())
            .args(["--control-topic", &format!("{}.control", topics.events)])
            .arg("--data")
            .arg(dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

/// Reads the engine's stderr until a line contains `text`.
fn wait_for_line(engine: &mut Proc, text: &str) -> String {
    let stderr = engine.0.stderr.take().expect("stderr piped");
    let (tx, rx) = std::sync::mpsc::channel();
    let text = text.to_string();
    std::thread::spawn(move || {
        let mut seen = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains(&text) {
                let _ = tx.send(Ok(line));
            }
        }
        let _ = tx.send(Err(seen));
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(line)) => line,
        Ok(Err(seen)) => panic!("the engine ended without saying it; it said:\n{seen}"),
        Err(_) => panic!("the engine did not say it within 60 s"),
    }
}

fn init(topics: &KafkaTopics, extra: &[&str]) -> std::process::Output {
    Command::new(TAPE)
        .arg("init")
        .args(topics.args())
        .args(extra)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kafka_deployment_started_by_init_refuses_unsigned_commands_from_the_first() {
    let topics = KafkaTopics::fresh("secure");
    let engine_dir = tempfile::tempdir().unwrap();
    let mut engine = engine(&topics, engine_dir.path());
    let said = wait_for_line(&mut engine, "waiting for `tape init`");
    assert!(said.contains("tape init --open"), "{said}");

    let out = init(&topics, &[]);
    assert!(out.status.success(), "{out:?}");
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("tape_1_"), "{token}");
    // A second init would start a second deployment on the same log: refused.
    let again = init(&topics, &[]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds 2 records"));

    let g = topics.gateway();
    // Once the gateway has read the start of the log, it knows its bootstrap token
    // cannot sign (it is not on the log) and says so before appending anything.
    for _ in 0..200 {
        let (_, body) = g.post(ADMIN, "{ assets { code } }", json!({})).await;
        if body["extensions"]["seq"].as_u64() >= Some(4) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let create = r#"mutation { createAsset(code: "BTC", scale: 8) { status reason } }"#;
    let (_, refused) = g.error(ADMIN, create, json!({})).await;
    assert_eq!(refused["extensions"]["code"], "FORBIDDEN", "{refused}");
    // An unsigned command straight on the topic: refused the same way.
    let mut produce = Command::new(TAPE)
        .arg("produce")
        .args(topics.args())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = uuid::Uuid::new_v4();
    writeln!(
        produce.stdin.take().unwrap(),
        r#"{{"version":3,"id":"{id}","time_ms":0,"command":{{"deposit":{{"account":1,"asset":"BTC","amount":"1","reference":"x"}}}}}}"#
    )
    .unwrap();
    // Appended, answered, and refused: `tape produce` says so and why.
    let out = produce.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("appended 1 command(s)"), "{said}");
    assert!(
        said.contains(
            "rejected missing_credentials: the engine requires credentials on every command"
        ),
        "{said}"
    );
    let receipt = format!(r#"{{ command(offset: 2, id: "{id}") {{ status reason }} }}"#);
    let mut answer = json!(null);
    for _ in 0..200 {
        answer = g.ok(ADMIN, &receipt, json!({})).await["command"].clone();
        if !answer.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        answer,
        json!({"status": "REJECTED", "reason": "missing_credentials"})
    );
    // The init token is an admin key on the log: its commands are signed and run.
    let accepted = g.ok(&token, create, json!({})).await;
    assert_eq!(accepted["createAsset"]["status"], "ACCEPTED", "{accepted}");
    let assets = g.ok(&token, "{ assets { code } }", json!({})).await;
    assert_eq!(assets["assets"], json!([{"code": "BTC"}]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_refuses_a_kafka_log_not_started_by_init_unless_open() {
    let topics = KafkaTopics::fresh("unstarted");
    let engine_dir = tempfile::tempdir().unwrap();
    // Someone's unsigned commands came first.
    let mut produce = Command::new(TAPE)
        // No engine runs yet to answer.
        .args(["produce", "--no-wait"])
        .args(topics.args())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    {
        let mut stdin = produce.stdin.take().unwrap();
        for n in 1..=2 {
            writeln!(
                stdin,
                r#"{{"version":3,"id":"{}","time_ms":0,"command":{{"create_asset":{{"code":"A{n}","scale":2}}}}}}"#,
                uuid::Uuid::new_v4()
            )
            .unwrap();
        }
    }
    assert!(produce.wait().unwrap().success());
    let mut refused = engine(&topics, engine_dir.path());
    let said = wait_for_line(&mut refused, "not started by `tape init`");
    assert!(said.contains("--open"), "{said}");
    let status = refused.0.wait().unwrap();
    assert!(!status.success());
    // Told to, it runs the log as it is.
    let _open = topics.engine(engine_dir.path(), Stdio::null());
    let g = topics.gateway();
    let mut codes = json!(null);
    for _ in 0..200 {
        codes = g.ok(ADMIN, "{ assets { code } }", json!({})).await["assets"].clone();
        if codes.as_array().is_some_and(|a| a.len() == 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(codes, json!([{"code": "A1"}, {"code": "A2"}]));
}
