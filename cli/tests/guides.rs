//! The guides' commands, run as they are written: the operators' "Trying it" and the
//! auditors' replay commands, in a shell beside a real `tape run --demo`, and the
//! market makers' worked example, which starts its own, and the margin guide's.
//! The only changes: `tape` (at a line's start or after a pipe) and `cargo run
//! --release --bin tape --` are this build's binary, `localhost:8080`
//! is the test server's address, and `consume --follow` stops at the end of the log.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const TAPE: &str = env!("CARGO_BIN_EXE_tape");

/// The indented code lines of `doc` between the line containing `from` and the next
/// containing `to`, as one script.
fn code_between(doc: &str, from: &str, to: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs")
        .join(doc);
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text
        .find(from)
        .unwrap_or_else(|| panic!("{doc}: no {from:?}"));
    let rest = &text[start..];
    let end = rest.find(to).unwrap_or_else(|| panic!("{doc}: no {to:?}"));
    // Indented lines outside fenced blocks (those hold other languages' code).
    let mut fenced = false;
    let code: Vec<&str> = rest[..end]
        .lines()
        .filter(|l| {
            if l.trim_start().starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .filter_map(|l| l.strip_prefix("    "))
        .collect();
    assert!(
        !code.is_empty(),
        "{doc}: no commands between {from:?} and {to:?}"
    );
    code.join("\n")
}

/// The script as this test runs it (see the module doc).
fn runnable(script: &str, addr: &str) -> String {
    script
        .replace("cargo run --release --bin tape --", TAPE)
        .lines()
        .map(|l| match l.strip_prefix("tape ") {
            Some(rest) => format!("{TAPE} {rest}"),
            None => l.replace("| tape ", &format!("| {TAPE} ")),
        })
        .collect::<Vec<_>>()
        .join("\n")
        .replace("localhost:8080", addr)
        .replace("consume --follow", "consume")
        .replace(
            "python3 examples/",
            concat!("python3 ", env!("CARGO_MANIFEST_DIR"), "/../examples/"),
        )
}

struct Run(Child);

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `tape run --demo` with its data in `dir/data` (the guides' `./data`); its address.
fn tape_run(dir: &Path) -> (Run, String) {
    tape_run_with(dir, &["run", "--demo"])
}

/// `tape <args>` (a `tape run` as a guide writes it) on a free port; its address.
fn tape_run_with(dir: &Path, args: &[&str]) -> (Run, String) {
    let mut child = Command::new(TAPE)
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("tape run exited").unwrap();
        if let Some(rest) = line.strip_prefix("tape: GraphQL on http://") {
            break rest.split('/').next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (Run(child), addr)
}

fn bash(dir: &Path, script: &str) -> String {
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the guide's commands failed:\n{script}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    stdout + &stderr
}

#[test]
fn the_operators_and_auditors_guides_run_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let (_run, addr) = tape_run(dir.path());

    let trying = code_between("operators.md", "## Trying it", "Build the binary alone");
    let out = bash(dir.path(), &runnable(&trying, &addr));
    // The trader's GraphQL order rests, the produced one is appended, and the events
    // log shows both resting.
    assert!(
        out.contains(r#""placeOrder":{"status":"ACCEPTED""#),
        "the GraphQL order: {out}"
    );
    assert!(out.contains("appended 1 command(s)"), "tape produce: {out}");
    assert_eq!(
        out.matches(r#""order_rested""#).count(),
        2,
        "tape consume shows both orders resting: {out}"
    );

    let auditing = code_between("auditors.md", "# Auditing Tape", "`balances` folds");
    let out = bash(dir.path(), &runnable(&auditing, &addr));
    assert!(out.contains("verified "), "tape replay verify: {out}");
    assert!(
        out.contains("USDT") && out.contains("BTC"),
        "the balances of account 1: {out}"
    );
    let statement = std::fs::read_to_string(dir.path().join("statement.csv")).unwrap();
    assert!(
        statement.starts_with("seq,time,asset,kind,reference,"),
        "the statement is CSV: {statement}"
    );
    assert!(
        dir.path().join("staging/events").exists(),
        "tape replay stream wrote the staging copy"
    );
}

#[test]
fn the_margin_guides_worked_example_runs_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let (_run, addr) = tape_run(dir.path());
    let trying = code_between("margin.md", "## Trying it", "`tape oracle` reads lines");
    let out = bash(dir.path(), &runnable(&trying, &addr));
    assert!(out.contains("all 4 accepted"), "tape oracle: {out}");
    // The events log has the three index prices and their marks, in order.
    let prices: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("index_price_set"))
        .collect();
    assert_eq!(prices.len(), 3, "tape consume: {out}");
    for (line, price) in prices.iter().zip(["50000", "50100", "49900"]) {
        assert!(
            line.contains(&format!(r#""index":"{price}"#)) && line.contains(r#""mark":"#),
            "{line}"
        );
    }
    // Two positions, both at the beginner's 5x: 0.5 × 49,900 ÷ 5 = 4,990 held.
    let positions: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("position_changed"))
        .collect();
    assert_eq!(positions.len(), 2, "tape consume: {out}");
    for (line, size) in positions.iter().zip(["-0.5", "0.5"]) {
        assert!(
            line.contains(&format!(r#""size":"{size}"#))
                && line.contains(r#""leverage":5"#)
                && line.contains(r#""initial_margin":"4990"#),
            "{line}"
        );
    }
    // The stdlib-only example computes account 1's liquidation price and finds
    // the API's.
    assert!(
        out.contains("BTC-USDT-PERP size 0.5: liquidation price") && out.contains("same"),
        "liquidation_price.py: {out}"
    );
    assert!(!out.contains("DIFFERENT"), "liquidation_price.py: {out}");
    // GraphQL serves the perpetual with Binance's maintenance amounts.
    assert!(
        out.contains(r#""maxLeverage":125"#) && out.contains(r#""maintenanceAmount":"1300"#),
        "the perpetual over GraphQL: {out}"
    );
}

#[test]
fn the_auditors_proof_of_liabilities_example_runs_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let section = code_between(
        "auditors.md",
        "## Proof of liabilities",
        "`tape pol build` prints",
    );
    // The guide's `tape run` line is what runs beside the commands.
    let (run_line, script): (Vec<&str>, Vec<&str>) = section
        .lines()
        .partition(|l| l.contains("--bin tape -- run "));
    let run_args: Vec<&str> = run_line[0]
        .split("--bin tape -- ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    let (_run, addr) = tape_run_with(dir.path(), &run_args);
    // The demo's nine commands are applied: the checkpoint after them is on disk.
    let snapshot = dir.path().join("data/snapshots/00000000000000000009.snap");
    for _ in 0..200 {
        if snapshot.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = bash(dir.path(), &runnable(&script.join("\n"), &addr));
    assert!(
        out.contains("committed round 1 at seq"),
        "tape pol build: {out}"
    );
    assert!(
        out.contains("round 1 at checkpoint 9"),
        "the demo's last checkpoint: {out}"
    );
    // The exported proof, then the trader's from GraphQL, verify in Python.
    assert_eq!(
        out.matches("verified: account 1 is in round 1").count(),
        2,
        "verify_liabilities.py: {out}"
    );
    assert!(
        out.contains("with 10.00000000 BTC, 0.00000000 ETH, 100000.000000 USDT"),
        "the trader's balances from the API: {out}"
    );
    assert!(
        out.contains("checked 1 liabilities rounds") && out.contains("rebuilt 1 roots"),
        "tape replay verify --pol-secret: {out}"
    );
}

/// A free port on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The market makers' worked example, start to end: `tape run --demo` in the
/// background, an operator key and a market maker's key, credentials required, the
/// operator's clock, two signed orders through `tape produce --key`, `tape consume`,
/// then `tape mm` quoting while `tape load` runs beside it. Every tool goes through
/// the running Tape's door: none may wait on or fail at the log's lock.
#[test]
fn the_market_makers_worked_example_runs_as_written() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let example = code_between(
        "market-makers.md",
        "**A worked example**",
        "**Following results on `tape.events`**",
    );
    assert!(example.contains("run --demo &"), "{example}");
    let script =
        runnable(&example, &addr).replace("run --demo &", &format!("run --demo --listen {addr} &"));
    let out_path = dir.path().join("out.txt");
    let out = std::fs::File::create(&out_path).unwrap();
    let mut shell = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        // Its own process group: the background `tape run` and `tape clock` end
        // with it.
        .process_group(0)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let status = loop {
        if let Some(status) = shell.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let _ = Command::new("kill")
        .args(["-TERM", "--", &format!("-{}", shell.id())])
        .status();
    let _ = shell.wait();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = std::fs::read_to_string(&out_path).unwrap();
    let status = status.unwrap_or_else(|| {
        panic!("the example did not finish in 2 minutes:\n{script}\n---\n{out}")
    });
    assert!(
        status.success(),
        "the example failed:\n{script}\n--- output\n{out}"
    );
    assert!(
        !out.contains("already open"),
        "a tool hit the log's lock:\n{out}"
    );
    // Whole lines: `tape clock`, beside it, writes to the same output, and each
    // tool writes a line in one write, so none is cut by another's.
    assert_eq!(
        out.matches("tape produce: appended 1 command(s)").count(),
        2,
        "both orders appended:\n{out}"
    );
    assert_eq!(
        out.matches(": accepted (id ").count(),
        2,
        "both orders answered and accepted:\n{out}"
    );
    assert_eq!(
        out.matches(r#""order_rested""#).count(),
        2,
        "tape consume shows both orders resting:\n{out}"
    );
    assert!(
        out.contains("answered on the events log: 3000 commands"),
        "tape load: every command answered:\n{out}"
    );
    assert!(out.contains("quotes"), "tape mm quoted:\n{out}");
}
