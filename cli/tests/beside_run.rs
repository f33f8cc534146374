//! The tools beside a running `tape run` on the embedded log: `tape produce`, `tape
//! load`, `tape clock` and `tape mm` all work at once while it serves, and none fails
//! on the log's lock (each opens the commands log only while it has something to
//! append, so they take turns with the gateway inside `tape run`).

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

fn tape(data: &str, args: &[&str]) -> Command {
    let mut c = Command::new(TAPE);
    c.args(args)
        .args(["--data", data])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn finished(name: &str, child: std::process::Child) -> String {
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{name} failed: {err}");
    assert!(!err.contains("already open"), "{name} hit the lock: {err}");
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_load_clock_and_mm_run_beside_tape_run_at_once() {
    let s = Server::start(&["--demo"]);
    let data = s.data.path().display().to_string();
    let ops = s.key("ADMIN", None).await;
    let before = s.commands_on_log();

    let mm = tape(&data, &["mm", "--market", "BTC-USDT", "--account", "1"])
        .args(["--reference", "30000", "--size", "0.01", "--seconds", "4"])
        .spawn()
        .unwrap();
    let clock = tape(&data, &["clock", "--key", &ops, "--every-ms", "200"])
        .spawn()
        .unwrap();
    let load = tape(&data, &["load", "--commands", "3000", "--rate", "2000"])
        .spawn()
        .unwrap();
    let mut produce = tape(&data, &["produce"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let line = r#"{"command":{"place_order":{"account":2,"market":"ETH-USDT","side":"sell","order_type":{"limit":{"price":"3000","quantity":"1"}}}}}"#;
        let mut stdin = produce.stdin.take().unwrap();
        writeln!(stdin, "{line}").unwrap();
    }
    let produced = finished("tape produce", produce);
    assert!(produced.contains("appended 1 command(s)"), "{produced}");
    let loaded = finished("tape load", load);
    assert!(
        loaded.contains("answered on the events log: 3000 commands"),
        "{loaded}"
    );
    let quoted = finished("tape mm", mm);
    assert!(quoted.contains("quotes"), "{quoted}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = Command::new("kill")
        .args(["-TERM", &clock.id().to_string()])
        .status();
    let ticked = finished("tape clock", clock);
    assert!(ticked.contains("ticks"), "{ticked}");

    // And the gateway inside `tape run` still answers and still appends.
    let trader = s.key("TRADER", Some(1)).await;
    assert!(!trader.is_empty());
    assert!(
        s.commands_on_log() > before + 3_000,
        "everyone's commands are on the log"
    );
}
