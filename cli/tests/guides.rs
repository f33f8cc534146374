//! The guides' commands, run as they are written: the operators' "Trying it" and the
//! auditors' replay commands, in a shell beside a real `tape run --demo`. The only
//! changes: `tape` and `cargo run --release --bin tape --` are this build's binary,
//! `localhost:8080` is the test server's address, and `consume --follow` stops at the
//! end of the log.

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
    let code: Vec<&str> = rest[..end]
        .lines()
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
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        .replace("localhost:8080", addr)
        .replace("consume --follow", "consume")
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
    let mut child = Command::new(TAPE)
        .args(["run", "--demo", "--listen", "127.0.0.1:0"])
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
