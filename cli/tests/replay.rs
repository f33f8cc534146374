//! `tape replay balances | export | stream` as an auditor (or a staging operator)
//! runs them, over an embedded data directory.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::log_records;
use tape_log::{FileLog, FileLogOptions};
use tape_schemas::*;

const TAPE: &str = env!("CARGO_BIN_EXE_tape");

/// A data directory holding the random stream's commands and derived events; the
/// commands are spread over `span_ms` of recorded time.
async fn recording(span_ms: u64) -> (tempfile::TempDir, Vec<Vec<u8>>) {
    let dir = tempfile::tempdir().unwrap();
    let mut envelopes =
        tape_testkit::random::envelopes(&tape_testkit::random::random_steps(11, 400));
    let t0 = envelopes[0].time_ms;
    let n = envelopes.len() as u64;
    for (i, e) in envelopes.iter_mut().enumerate() {
        e.time_ms = t0 + span_ms * i as u64 / n;
    }
    let commands: Vec<Vec<u8>> = envelopes
        .iter()
        .map(|c| codec::to_bincode(c).unwrap())
        .collect();
    let events = tape_engine::derive_records(&commands, Default::default(), 100);
    let (c, _) = FileLog::open(dir.path().join("commands"), FileLogOptions::default()).unwrap();
    c.append(commands).await.unwrap();
    let (e, _) = FileLog::open(dir.path().join("events"), FileLogOptions::default()).unwrap();
    e.append(events.clone()).await.unwrap();
    (dir, events)
}

fn tape(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(TAPE).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn stream_republishes_byte_for_byte_at_the_recorded_pace_and_resumes() {
    let (src, events) = recording(2_000).await;
    let src_dir = src.path().display().to_string();
    let dst = tempfile::tempdir().unwrap();
    // a target that already holds a prefix continues after it
    let (prefix, _) = FileLog::open(dst.path().join("events"), FileLogOptions::default()).unwrap();
    prefix.append(events[..10].to_vec()).await.unwrap();
    drop(prefix);
    let dst_dir = dst.path().display().to_string();
    let started = Instant::now();
    let (ok, _, err) = tape(&[
        "replay",
        "stream",
        "--data",
        &src_dir,
        "--speed",
        "4",
        "--to-data",
        &dst_dir,
    ]);
    assert!(ok, "{err}");
    // 2 s of recording at 4x is at least half a second (the prefix is not replayed)
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    assert!(
        log_records(&FileLog::follow(dst.path().join("events")).unwrap(), None).await == events
    );

    // the commands log too, unpaced; the copy verifies like the original
    let (ok, _, err) = tape(&[
        "replay",
        "stream",
        "--data",
        &src_dir,
        "--log",
        "commands",
        "--speed",
        "0",
        "--to-data",
        &dst_dir,
    ]);
    assert!(ok, "{err}");
    let (ok, out, err) = tape(&["replay", "verify", "--data", &dst_dir]);
    assert!(ok && out.starts_with("verified "), "{out}{err}");
}

#[tokio::test]
async fn balances_and_export_agree_with_each_other() {
    let (src, events) = recording(60_000).await;
    let data = src.path().display().to_string();
    let at = (events.len() / 2).to_string();
    let balances = |at: &str, json: &[&str]| {
        let args = [
            "replay",
            "balances",
            "--data",
            &data,
            "--account",
            "2",
            "--at",
            at,
        ];
        tape(&[&args[..], json].concat())
    };
    let (ok, out, err) = balances(&at, &["--json"]);
    assert!(ok, "{err}");
    let b: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(b["seq"].to_string(), at);
    let (ok, csv_text, err) = tape(&[
        "replay",
        "export",
        "--data",
        &data,
        "--account",
        "2",
        "--to",
        &at,
    ]);
    assert!(ok, "{err}");
    let mut last: std::collections::BTreeMap<String, String> = Default::default();
    let mut rows = 0;
    for line in csv_text.lines().skip(1) {
        let cols: Vec<&str> = line.split(',').collect();
        assert_eq!(cols.len(), 10, "{line}");
        last.insert(cols[2].to_string(), cols[9].to_string());
        rows += 1;
    }
    assert!(rows > 10, "{rows} rows");
    for (asset, total) in &last {
        let want = &b["balances"][asset]["total"];
        assert_eq!(want.as_str(), Some(total.as_str()), "{asset}");
    }
    let (ok, _, err) = balances("yesterday", &[]);
    assert!(!ok && err.contains("is not a seq"), "{err}");
}
