//! What the operator console and the auditor page read, executed in process: the
//! withdrawals waiting for the operator (a trader sees only its own), the account
//! restrictions an operator set, and the engine's last checkpoint with its state
//! hash, exactly as the events log holds it.

mod support;

use support::*;
use tape_schemas::*;
use tape_testkit::{code, d};

fn withdraw(account: AccountId, asset: &str, amount: &str) -> Command {
    Command::RequestWithdrawal {
        account,
        asset: code(asset),
        amount: d(amount),
    }
}

/// The market and two accounts; Bob and Alice each ask for a withdrawal, the first
/// of Bob's is completed; Alice may no longer trade. A checkpoint every 3 commands.
fn console() -> Gateway {
    let mut commands = market_with_two_accounts();
    commands.extend([
        withdraw(BOB, "BTC", "0.5"),
        withdraw(ALICE, "USDT", "10"),
        withdraw(BOB, "BTC", "0.25"),
        Command::CompleteWithdrawal {
            withdrawal: WithdrawalId(1),
        },
        Command::SetAccountRestrictions {
            account: ALICE,
            can_trade: false,
            can_withdraw: true,
        },
    ]);
    gateway_over(commands, 3)
}

const WAITING: &str =
    "{ withdrawals(status: [REQUESTED]) { nodes { id account asset amount status } } }";

#[tokio::test]
async fn the_operator_sees_every_withdrawal_waiting_and_a_trader_only_its_own() {
    let g = console();
    let all = g.allowed(Some(ADMIN), WAITING).await;
    let ids: Vec<u64> = all["withdrawals"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, vec![3, 2], "waiting ones, newest first: {all}");
    assert_eq!(all["withdrawals"]["nodes"][0]["amount"], "0.25");
    let auditor = g.allowed(Some(AUDITOR), WAITING).await;
    assert_eq!(auditor, all);
    let every = g
        .allowed(
            Some(ADMIN),
            "{ withdrawals(newestFirst: false) { nodes { id status } } }",
        )
        .await;
    assert_eq!(every["withdrawals"]["nodes"][0]["status"], "COMPLETED");
    assert_eq!(every["withdrawals"]["nodes"].as_array().unwrap().len(), 3);

    let own = g.allowed(Some(TRADER), WAITING).await;
    let nodes = own["withdrawals"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1, "{own}");
    assert_eq!(nodes[0]["account"], ALICE.0);
    assert_eq!(
        g.refused(Some(TRADER), "{ withdrawals(account: 2) { nodes { id } } }")
            .await,
        "FORBIDDEN"
    );
    assert_eq!(g.refused(None, WAITING).await, "UNAUTHENTICATED");
}

#[tokio::test]
async fn restrictions_are_listed_for_staff_and_set_by_admins_only() {
    let g = console();
    const LIST: &str = "{ accountRestrictions { account canTrade canWithdraw } }";
    let listed = g.allowed(Some(AUDITOR), LIST).await;
    assert_eq!(
        listed["accountRestrictions"],
        serde_json::json!([{ "account": 1, "canTrade": false, "canWithdraw": true }])
    );
    assert_eq!(g.refused(Some(TRADER), LIST).await, "FORBIDDEN");
    const SET: &str =
        "mutation { setAccountRestrictions(account: 2, canTrade: false, canWithdraw: false) { status } }";
    assert_eq!(g.refused(Some(AUDITOR), SET).await, "FORBIDDEN");
    assert_eq!(g.refused(Some(TRADER), SET).await, "FORBIDDEN");
    assert_eq!(g.appended().await, 0);
    let set = g.allowed(Some(ADMIN), SET).await;
    assert_eq!(set["setAccountRestrictions"]["status"], "PENDING");
    assert_eq!(g.appended().await, 1);
}

#[tokio::test]
async fn the_last_checkpoint_is_the_events_logs_last_checkpoint() {
    let g = console();
    let last = g
        .events
        .iter()
        .rev()
        .map(|b| EventEnvelope::from_record(b).unwrap())
        .find_map(|e| match e.event {
            Event::Checkpoint {
                commands_applied,
                state_hash,
            } => Some((e.seq, commands_applied, state_hash)),
            _ => None,
        })
        .expect("the engine wrote checkpoints");
    let (seq, applied, hash) = last;
    assert_eq!(applied, 9, "10 commands, a checkpoint every 3");
    let system = g
        .allowed(
            None,
            "{ system { credentialsRequired lastCheckpoint { seq commandsApplied stateHash } } }",
        )
        .await;
    assert_eq!(
        system["system"],
        serde_json::json!({
            "credentialsRequired": false,
            "lastCheckpoint": { "seq": seq, "commandsApplied": applied, "stateHash": hex::encode(hash.0) }
        })
    );
}
