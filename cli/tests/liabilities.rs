//! Proof of liabilities end to end, as an operator and a trader use it beside
//! `tape run`: `tape pol build` commits a round; every account's exported proof
//! verifies in the stdlib Python verifier and every tampered copy fails; a trader
//! fetches their proof over GraphQL and the Python script verifies it from the
//! API; `tape replay verify --pol-secret` rebuilds the root; a round that is not
//! the next one is refused.

mod common;

use std::process::Command;

use common::*;
use serde_json::json;

const VERIFIER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../examples/python/verify_liabilities.py"
);

fn tape(args: &[&str]) -> std::process::Output {
    Command::new(TAPE)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("tape runs")
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Each exported proof through the Python verifier, then tampered copies of it:
/// every proof must verify and every tampered copy must fail. Prints the counts.
const TAMPER: &str = r#"
import copy, json, sys
sys.path.insert(0, sys.argv[1])
import verify_liabilities as v
record = json.load(open(sys.argv[2]))
proofs = [json.loads(l) for l in open(sys.argv[3])]
def tampered(p):
    out = []
    for k in range(len(p["balances"])):
        q = copy.deepcopy(p); q["balances"][k] = str(int(q["balances"][k]) + 1); out.append(q)
    q = copy.deepcopy(p); q["salt"] = ("0" if q["salt"][0] != "0" else "1") + q["salt"][1:]; out.append(q)
    q = copy.deepcopy(p); q["account"] = p["account"] + 1; out.append(q)
    q = copy.deepcopy(p); q["index"] = p["index"] ^ 1; out.append(q)
    for level in range(len(p["path"])):
        q = copy.deepcopy(p); q["path"][level]["sums"][0] = str(int(q["path"][level]["sums"][0]) + 1); out.append(q)
        q = copy.deepcopy(p); h = q["path"][level]["hash"]; q["path"][level]["hash"] = h[:-1] + ("0" if h[-1] != "0" else "1"); out.append(q)
    q = copy.deepcopy(p); q["path"][0]["sums"][0] = "-1"; out.append(q)
    q = copy.deepcopy(p); q["path"][1]["sums"][0] = str(2**128 - 1); out.append(q)
    q = copy.deepcopy(p); q["path"] = q["path"][:-1]; out.append(q)
    return out
good = bad_caught = 0
for p in proofs:
    v.verify(p, record); good += 1
    for q in tampered(p):
        try:
            v.verify(q, record)
            sys.exit(f"a tampered proof of account {p['account']} verified")
        except v.NotVerified:
            bad_caught += 1
smaller = dict(record); smaller["totals"] = [str(int(record["totals"][0]) - 1)] + record["totals"][1:]
try:
    v.verify(proofs[0], smaller); sys.exit("a smaller total verified")
except v.NotVerified:
    pass
print(f"{good} verified, {bad_caught} tampered caught")
"#;

/// Waits until the read side has the demo's assets.
async fn demo_seeded(s: &Server) {
    for _ in 0..100 {
        let d = s.ok(ADMIN, "{ assets { code } }", json!({})).await;
        if d["assets"].as_array().is_some_and(|a| a.len() == 3) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the demo's assets never reached the read side");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_is_committed_and_every_accounts_proof_verifies_in_python() {
    let s = Server::start(&["--demo", "--checkpoint-every", "4"]);
    demo_seeded(&s).await;
    let data = s.data.path().display().to_string();
    for (account, amount) in [(3, "1.5"), (4, "0.25"), (5, "7"), (6, "0.00000001")] {
        s.deposit(account, "BTC", amount).await;
        s.deposit(account, "USDT", "1000").await;
    }
    let trader = s.key("TRADER", Some(5)).await;
    // Four more commands: a checkpoint now stands after every deposit.
    for account in 7..11 {
        s.deposit(account, "ETH", "2").await;
    }
    let built = tape(&["pol", "build", "--data", &data, "--height", "10"]);
    assert!(built.status.success(), "{}", text(&built));
    assert!(
        text(&built).contains("committed round 1"),
        "{}",
        text(&built)
    );

    let rounds = s
        .ok(
            &trader,
            "{ liabilityRounds { round height root proofsAvailable totals { asset users fees } } }",
            json!({}),
        )
        .await;
    let round = &rounds["liabilityRounds"][0];
    assert_eq!(round["round"], 1);
    assert_eq!(round["proofsAvailable"], true);
    let btc = round["totals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["asset"] == "BTC")
        .unwrap();
    // The demo's 10 BTC and the four deposits above, in satoshis: the newest
    // checkpoint stands after them.
    assert_eq!(btc["users"], "1875000001");

    // Every account's proof, exported, verifies in Python; every tampered copy fails.
    let out = s.data.path().join("export");
    let exported = tape(&[
        "pol",
        "export",
        "--data",
        &data,
        "--round",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(exported.status.success(), "{}", text(&exported));
    let py = Command::new("python3")
        .args([
            "-c",
            TAMPER,
            &format!("{}/../examples/python", env!("CARGO_MANIFEST_DIR")),
        ])
        .arg(out.join("round-1.json"))
        .arg(out.join("round-1.proofs.jsonl"))
        .output()
        .unwrap();
    let said = text(&py);
    assert!(py.status.success(), "{said}");
    let verified: usize = said.split(' ').next().unwrap().parse().unwrap();
    let lines = std::fs::read_to_string(out.join("round-1.proofs.jsonl")).unwrap();
    assert_eq!(verified, lines.lines().count(), "{said}");
    // The demo's two accounts and the four funded before the trader's key.
    assert!(
        verified >= 6,
        "every account at the checkpoint has a leaf: {said}"
    );

    // The trader checks their own proof from the API with the script.
    let url = format!("http://{}/graphql", s.addr);
    let check = Command::new("python3")
        .args([VERIFIER, "--url", &url, "--token", &trader])
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", text(&check));
    assert!(
        text(&check).contains("verified: account 5 is in round 1")
            && text(&check).contains("7.00000000 BTC"),
        "{}",
        text(&check)
    );
    // Their key reads no other account's proof.
    let (_, refused) = s
        .error(
            &trader,
            "{ myLiabilityProof(account: 3) { round } }",
            json!({}),
        )
        .await;
    assert!(
        refused.to_string().contains("FORBIDDEN") || refused.to_string().contains("own"),
        "{refused}"
    );

    // No new checkpoint since: the same checkpoint cannot make round 2.
    let again = tape(&["pol", "build", "--data", &data, "--height", "10"]);
    assert!(!again.status.success());
    assert!(text(&again).contains("LiabilityRound"), "{}", text(&again));

    // The auditor rebuilds the root from the secret.
    let secret = s.data.path().join("pol-secret");
    let replayed = tape(&[
        "replay",
        "verify",
        "--data",
        &data,
        "--pol-secret",
        secret.to_str().unwrap(),
    ]);
    assert!(replayed.status.success(), "{}", text(&replayed));
    assert!(
        text(&replayed).contains("rebuilt 1 roots"),
        "{}",
        text(&replayed)
    );
}

/// `tape pol build --every-commands` beside `tape run`: a round at the newest
/// checkpoint each time it stands that many commands after the last round's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rounds_follow_the_checkpoints_on_a_schedule() {
    let s = Server::start(&["--demo", "--checkpoint-every", "3"]);
    demo_seeded(&s).await;
    let data = s.data.path().display().to_string();
    let mut every = Command::new(TAPE)
        .args([
            "pol",
            "build",
            "--data",
            &data,
            "--height",
            "8",
            "--every-commands",
            "6",
        ])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let rounds = |v: serde_json::Value| -> Vec<(u64, u64)> {
        v["liabilityRounds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["round"].as_u64().unwrap(),
                    r["checkpoint"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let mut seen = Vec::new();
    for i in 0..300u64 {
        s.deposit(20 + i, "USDT", "1").await;
        seen = rounds(
            s.ok(ADMIN, "{ liabilityRounds { round checkpoint } }", json!({}))
                .await,
        );
        if seen.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = every.kill();
    let _ = every.wait();
    assert!(seen.len() >= 3, "three rounds on the schedule: {seen:?}");
    // Newest first: each round's checkpoint at least 6 commands after the one before.
    for w in seen.windows(2) {
        assert_eq!(w[0].0, w[1].0 + 1, "{seen:?}");
        assert!(w[0].1 >= w[1].1 + 6 && w[0].1 % 3 == 0, "{seen:?}");
    }
}
