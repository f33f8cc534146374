//! The pages in a real browser: `web/tests/face.mjs` drives Debian's chromium with
//! playwright-core (pinned by `web/tests/package-lock.json`; `scripts/test.sh`
//! installs both) against this `tape run --demo`. It walks the seven steps —
//! trade, fill, see it everywhere, cancel, a bad decimal, an operator's market and
//! withdrawal, an auditor's statement — and fails on any console error, failed
//! request or request to another host. Screenshots go to `target/browser-artifacts/`.
//! Without node, the npm packages or chromium this fails (it never skips).
//! `web/tests/perp.mjs` liquidates a position opened at 10x on the trading page.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::json;

/// One browser test at a time: two servers and two chromiums on this 2-core
/// machine starve each other's waits.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_trade_operate_and_audit_in_chromium() {
    let _one = ONE_BROWSER.lock().await;
    // A checkpoint every 10 commands, so the auditor page has one to show.
    let s = Server::start(&["--demo", "--checkpoint-every", "10"]);
    // The pages list the markets once on load: wait for the demo's to be projected.
    for _ in 0..100 {
        let d = s.ok(ADMIN, "{ markets { symbol } }", json!({})).await;
        if d["markets"].as_array().is_some_and(|m| m.len() == 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stdout = run_node("face.mjs", s, &[]).await;
    assert!(stdout.contains("every page clean"), "{stdout}");
}

/// The browser test for margin trading: a position opened at 10x on the
/// trading page, the index moved with `tape oracle`, and the liquidation seen in
/// the positions panel, the ledger and the insurance fund (`web/tests/perp.mjs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_at_10x_is_liquidated_on_the_trading_page_in_chromium() {
    let _one = ONE_BROWSER.lock().await;
    let s = Server::start(&["--demo"]);
    for _ in 0..100 {
        let d = s.ok(ADMIN, "{ markets { symbol } }", json!({})).await;
        if d["markets"].as_array().is_some_and(|m| m.len() == 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let data = s.data.path().display().to_string();
    let stdout = run_node(
        "perp.mjs",
        s,
        &[("TAPE_BIN", TAPE.into()), ("TAPE_DATA", data)],
    )
    .await;
    assert!(stdout.contains("perp page clean"), "{stdout}");
}

/// The browser test for proof of liabilities: a trader verifies their
/// balance in round 1 with one click on the auditor page (`web/tests/pol.mjs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trader_verifies_their_liabilities_proof_on_the_auditor_page_in_chromium() {
    let _one = ONE_BROWSER.lock().await;
    let s = Server::start(&["--demo", "--checkpoint-every", "2"]);
    let data = s.data.path().display().to_string();
    let stdout = run_node(
        "pol.mjs",
        s,
        &[("TAPE_BIN", TAPE.into()), ("TAPE_DATA", data)],
    )
    .await;
    assert!(stdout.contains("pol page clean"), "{stdout}");
}

/// Runs `web/tests/<script>` with node against `s`; its stdout. Fails (never
/// skips) without node, the npm packages or chromium.
async fn run_node(script: &str, s: Server, env: &[(&str, String)]) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let tests = root.join("web/tests");
    assert!(
        tests.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed in web/tests: run ./scripts/test.sh (it runs `npm ci` there)"
    );
    let chromium = std::env::var("TAPE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "no chromium at {chromium}: run ./scripts/test.sh (it installs Debian's chromium)"
    );
    let artifacts = root.join("target/browser-artifacts");
    let script = script.to_string();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(&script)
            .current_dir(&tests)
            .env("TAPE_URL", format!("http://{}", s.addr))
            .env("TAPE_ADMIN_TOKEN", ADMIN)
            .env("TAPE_ARTIFACTS", &artifacts)
            .env("TAPE_CHROMIUM", &chromium)
            .envs(env)
            .output()
            .map(|o| (o, s))
    })
    .await
    .unwrap()
    .expect("node runs (./scripts/test.sh installs it)");
    let (out, _server) = out;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the browser test failed:\n{stdout}\n{stderr}"
    );
    stdout
}
