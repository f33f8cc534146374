//! Credentials on commands: what a market maker writing straight to the commands
//! topic relies on. Forged, replayed, expired and wrong-account commands are refused
//! with a reason and change nothing; a refused command cannot move the clock or take
//! a command id.

mod common;

use common::*;
use tape_core::{Core, CoreConfig};
use tape_schemas::*;

const ALICE_SECRET: &str = "alice-secret";

fn required() -> (H, ApiKeyId, ApiKeyId) {
    required_with(CoreConfig::default())
}

fn required_with(cfg: CoreConfig) -> (H, ApiKeyId, ApiKeyId) {
    let mut h = H::with_dedupe(cfg);
    let admin = h.key(ApiRole::Admin, None, "admin-secret");
    let alice = h.key(ApiRole::Trader, Some(ALICE), ALICE_SECRET);
    h.key(ApiRole::Trader, Some(BOB), "bob-secret");
    h.ok(Command::RequireCredentials { required: true });
    (h, admin, alice)
}

/// Bob's trader key, as `required` makes it.
const BOB_KEY: ApiKeyId = ApiKeyId(3);

fn buy(price: &str) -> Command {
    limit(ALICE, Side::Buy, price, "1", TimeInForce::Gtc)
}

#[test]
fn a_signed_command_acts_for_its_own_account_only() {
    let (mut h, admin, alice) = required();
    let t = h.time_ms;
    let env = h.signed(buy("100"), alice, ALICE_SECRET, t + 5_000);
    let (id, _) = h.ok_envelope(&env);
    assert!(h.is_open(ALICE, id));

    // Another account's order, an admin command, and an auditor's anything.
    let bob = limit(BOB, Side::Sell, "100", "1", TimeInForce::Gtc);
    let env = h.signed(bob.clone(), alice, ALICE_SECRET, t + 5_000);
    assert_eq!(h.rejected_envelope(&env), RejectReason::NotPermitted);
    let deposit = deposit(ALICE, "BTC", "1000", "self-credit");
    let env = h.signed(deposit.clone(), alice, ALICE_SECRET, t + 5_000);
    assert_eq!(h.rejected_envelope(&env), RejectReason::NotPermitted);
    let env = h.signed(
        Command::RequireCredentials { required: false },
        alice,
        ALICE_SECRET,
        t + 5_000,
    );
    assert_eq!(h.rejected_envelope(&env), RejectReason::NotPermitted);
    let auditor = {
        // Keys can only be created by an admin now.
        let env = h.signed(
            Command::CreateApiKey {
                role: ApiRole::Auditor,
                account: None,
                secret_hash: Hash32([1; 32]),
                mac_key: mac_key("auditor-secret"),
            },
            admin,
            "admin-secret",
            t + 5_000,
        );
        ApiKeyId(h.ok_envelope(&env).0)
    };
    let env = h.signed(buy("99"), auditor, "auditor-secret", t + 5_000);
    assert_eq!(h.rejected_envelope(&env), RejectReason::NotPermitted);

    // The admin key may do all of it.
    for command in [bob, deposit] {
        let env = h.signed(command, admin, "admin-secret", t + 5_000);
        h.ok_envelope(&env);
    }
}

#[test]
fn forged_and_altered_commands_are_refused_and_change_nothing() {
    let (mut h, _, alice) = required();
    let t = h.time_ms;
    // Unsigned, a wrong secret, an altered price under a good MAC, an unknown key.
    let env = h.envelope(buy("100"));
    assert_eq!(h.rejected_envelope(&env), RejectReason::MissingCredentials);
    let env = h.signed(buy("100"), alice, "guess", t + 5_000);
    assert_eq!(h.rejected_envelope(&env), RejectReason::BadSignature);
    let mut env = h.signed(buy("100"), alice, ALICE_SECRET, t + 5_000);
    env.command = buy("1000");
    assert_eq!(h.rejected_envelope(&env), RejectReason::BadSignature);
    let mut env = h.signed(buy("100"), alice, ALICE_SECRET, t + 5_000);
    env.auth.as_mut().unwrap().expires_ms += 1;
    assert_eq!(h.rejected_envelope(&env), RejectReason::BadSignature);
    let env = h.signed(buy("100"), ApiKeyId(77), ALICE_SECRET, t + 5_000);
    assert_eq!(h.rejected_envelope(&env), RejectReason::UnknownApiKey);
}

#[test]
fn a_revoked_key_signs_nothing() {
    let (mut h, admin, alice) = required();
    let t = h.time_ms;
    let env = h.signed(
        Command::RevokeApiKey { key: alice },
        admin,
        "admin-secret",
        t + 5_000,
    );
    h.ok_envelope(&env);
    let env = h.signed(buy("100"), alice, ALICE_SECRET, t + 5_000);
    assert_eq!(h.rejected_envelope(&env), RejectReason::UnknownApiKey);
}

#[test]
fn a_replayed_record_executes_nothing() {
    let (mut h, admin, alice) = required();
    let t = h.time_ms;
    let env = h.signed(buy("100"), alice, ALICE_SECRET, t + 10_000);
    let first = outcome(&h.apply(&env));
    assert!(matches!(first, CommandResult::Accepted { .. }));
    // Within its validity the same bytes are answered as a duplicate of the first.
    h.time_ms += 5_000;
    let before = h.core.snapshot();
    let again = h.apply(&env);
    assert_eq!(
        again,
        vec![Event::Outcome {
            command: env.id,
            result: first,
            duplicate: true
        }]
    );
    assert_eq!(h.core.snapshot(), before, "a replay changed the state");
    // After it, expired, whatever the engine still holds.
    h.time_ms += 6_000;
    // Unsigned: refused, and the clock does not move.
    assert_eq!(
        h.rejected(Command::ClockTick),
        RejectReason::MissingCredentials
    );
    let tick = h.signed(Command::ClockTick, admin, "admin-secret", h.time_ms + 1_000);
    h.ok_envelope(&tick);
    assert_eq!(h.rejected_envelope(&env), RejectReason::CredentialsExpired);
}

#[test]
fn no_fresh_signed_command_is_refused_for_what_the_engine_forgot() {
    // An answer window of 8 ids, 20,000 signed commands inside one validity span:
    // the old global window refused these as `replay_window_exceeded`.
    let (mut h, _, alice) = required_with(CoreConfig {
        dedupe_capacity: 8,
        ..CoreConfig::default()
    });
    let t = h.time_ms;
    let mut sent = Vec::new();
    for i in 0..20_000u64 {
        let side = if i % 2 == 0 { Side::Buy } else { Side::Sell };
        let price = if i % 2 == 0 { "100" } else { "101" };
        let env = h.signed(
            limit(ALICE, side, price, "0.1", TimeInForce::Ioc),
            alice,
            ALICE_SECRET,
            t + 30_000,
        );
        assert!(
            matches!(outcome(&h.apply(&env)), CommandResult::Accepted { .. }),
            "command {i} refused"
        );
        sent.push(env);
    }
    // The bound is reached for answers (8 ids), not for protection: every copy, old
    // or recent, is refused and runs nothing.
    for env in sent.iter().step_by(997).chain(sent.iter().rev().take(3)) {
        let before = h.core.snapshot();
        let out = h.apply(env);
        assert_eq!(out.len(), 1, "{out:?}");
        let refused = matches!(
            outcome(&out),
            CommandResult::Rejected {
                reason: RejectReason::ReplayedSeq | RejectReason::SeqTooOld
            }
        );
        let answered = matches!(
            out[0],
            Event::Outcome {
                duplicate: true,
                ..
            }
        );
        assert!(refused || answered, "a copy ran: {out:?}");
        assert_eq!(h.core.snapshot(), before, "a copy changed the state");
    }
}

#[test]
fn a_copy_is_refused_after_a_snapshot_restore_as_before_it() {
    let (mut h, _, alice) = required();
    let t = h.time_ms;
    let env = h.signed(buy("100"), alice, ALICE_SECRET, t + 10_000);
    h.ok_envelope(&env);
    let live = h.apply(&env);
    h.core = Core::restore(&h.core.snapshot()).unwrap();
    let restored = h.apply(&env);
    assert_eq!(live, restored);
    assert!(matches!(
        live[0],
        Event::Outcome {
            duplicate: true,
            ..
        }
    ));
    // With the answer forgotten too (a core that keeps no ids), still refused.
    let (mut h, _, alice) = required_with(CoreConfig {
        dedupe_capacity: 0,
        ..CoreConfig::default()
    });
    let env = h.signed(buy("100"), alice, ALICE_SECRET, t + 10_000);
    h.ok_envelope(&env);
    h.core = Core::restore(&h.core.snapshot()).unwrap();
    assert_eq!(h.rejected_envelope(&env), RejectReason::ReplayedSeq);
}

#[test]
fn several_processes_sign_with_one_key_each_on_its_own_stream() {
    let (mut h, _, alice) = required();
    let t = h.time_ms;
    // Three quoting processes, interleaved, one of them out of order.
    let mut envs = Vec::new();
    for seq in 1..=20u64 {
        for stream in [11u64, 22, 33] {
            let seq = if stream == 33 { 21 - seq } else { seq };
            let env = h.envelope(buy("100"));
            envs.push(sign_on(env, alice, ALICE_SECRET, stream, seq, t + 5_000));
        }
    }
    for env in &envs {
        h.ok_envelope(env);
    }
    assert_eq!(h.core.signing_streams(), 3);
    for env in &envs {
        assert!(matches!(
            h.apply(env)[0],
            Event::Outcome {
                duplicate: true,
                ..
            }
        ));
    }
}

#[test]
fn a_retry_under_a_new_signature_with_the_same_id_is_answered_not_run() {
    let (mut h, _, alice) = required();
    let t = h.time_ms;
    let first = h.signed(buy("100"), alice, ALICE_SECRET, t + 5_000);
    let (order, _) = h.ok_envelope(&first);
    // A gateway or `tape produce` signs the retry again: new seq, same command id.
    let retry = h.sign(
        CommandEnvelope::new(first.id, t, buy("100")),
        alice,
        ALICE_SECRET,
        t + 5_000,
    );
    assert_ne!(retry.auth, first.auth);
    let out = h.apply(&retry);
    assert_eq!(
        out,
        vec![Event::Outcome {
            command: first.id,
            result: CommandResult::Accepted { id: order },
            duplicate: true
        }]
    );
    assert_eq!(h.core.account_orders(ALICE).len(), 1);
    // Bob using Alice's id is not answered with Alice's outcome: his runs.
    let bob = h.sign(
        CommandEnvelope::new(first.id, t, buy_for(BOB, "90")),
        BOB_KEY,
        "bob-secret",
        t + 5_000,
    );
    h.ok_envelope(&bob);
}

#[test]
fn what_replay_protection_keeps_is_bounded_per_key_and_shrinks_as_streams_expire() {
    let (mut h, admin, alice) = required_with(CoreConfig {
        signing_streams_per_key_max: 4,
        ..CoreConfig::default()
    });
    let t = h.time_ms;
    for stream in 0..4 {
        let env = sign_on(
            h.envelope(buy("100")),
            alice,
            ALICE_SECRET,
            stream,
            1,
            t + 1_000,
        );
        h.ok_envelope(&env);
    }
    // A fifth process is refused clearly while the four could still be replayed.
    let fifth = sign_on(h.envelope(buy("100")), alice, ALICE_SECRET, 4, 1, t + 1_000);
    assert_eq!(
        h.rejected_envelope(&fifth),
        RejectReason::TooManySigningStreams
    );
    // Once their commands have expired, the operator's clock tick sheds them.
    h.time_ms = t + 2_000;
    let tick = h.signed(Command::ClockTick, admin, "admin-secret", h.time_ms + 1_000);
    h.ok_envelope(&tick);
    assert_eq!(
        h.core.signing_streams(),
        1,
        "only the admin's stream is left"
    );
    let fifth = sign_on(h.envelope(buy("100")), alice, ALICE_SECRET, 4, 1, t + 5_000);
    h.ok_envelope(&fifth);
}

#[test]
fn a_refused_command_neither_moves_the_clock_nor_takes_an_id() {
    let (mut h, _, alice) = required();
    let t = h.time_ms;
    let gtd = limit(
        ALICE,
        Side::Buy,
        "100",
        "1",
        TimeInForce::Gtd {
            expires_at_ms: t + 60_000,
        },
    );
    let env = h.signed(gtd, alice, ALICE_SECRET, t + 5_000);
    let CommandResult::Accepted { id: order } = outcome(&h.apply(&env)) else {
        panic!("GTD order refused");
    };
    // A forger stamps a time a day ahead (which would expire the order) and uses the
    // id Alice's next command will carry.
    let victim = h.signed(buy("99"), alice, ALICE_SECRET, t + 5_000);
    let mut forged = victim.clone();
    forged.time_ms = t + 86_400_000;
    forged.command = limit(ALICE, Side::Sell, "1", "1", TimeInForce::Ioc);
    assert_eq!(h.rejected_envelope(&forged), RejectReason::BadSignature);
    assert_eq!(h.core.time_ms(), t);
    assert!(h.is_open(ALICE, order), "the forged time expired an order");
    let out = h.apply(&victim);
    assert!(
        matches!(
            out.as_slice(),
            [
                Event::Outcome {
                    result: CommandResult::Accepted { .. },
                    duplicate: false,
                    ..
                },
                ..
            ]
        ),
        "Alice's command was taken for a duplicate: {out:?}"
    );
}

#[test]
fn credentials_and_keys_survive_a_snapshot() {
    let (mut h, _, alice) = required();
    let restored = Core::restore(&h.core.snapshot()).unwrap();
    assert!(restored.credentials_required());
    assert_eq!(restored.snapshot(), h.core.snapshot());
    h.core = restored;
    let env = h.envelope(buy("100"));
    assert_eq!(h.rejected_envelope(&env), RejectReason::MissingCredentials);
    let t = h.time_ms;
    let env = h.signed(buy("100"), alice, ALICE_SECRET, t + 1_000);
    h.ok_envelope(&env);
}

#[test]
fn signed_commands_work_while_credentials_are_optional_and_are_still_checked() {
    let mut h = H::with_dedupe(CoreConfig::default());
    let alice = h.key(ApiRole::Trader, Some(ALICE), ALICE_SECRET);
    h.ok(buy("100"));
    let t = h.time_ms;
    let env = h.signed(buy("100"), alice, ALICE_SECRET, t + 1_000);
    h.ok_envelope(&env);
    let env = h.signed(buy("100"), alice, "wrong", t + 1_000);
    assert_eq!(h.rejected_envelope(&env), RejectReason::BadSignature);
}

#[test]
fn a_trader_key_cannot_move_everyones_clock() {
    let (mut h, admin, alice) = required();
    let bob = BOB_KEY;
    let t = h.time_ms;
    let gtd = limit(
        BOB,
        Side::Buy,
        "90",
        "1",
        TimeInForce::Gtd {
            expires_at_ms: t + 60_000,
        },
    );
    let env = h.signed(gtd, bob, "bob-secret", t + 5_000);
    let CommandResult::Accepted { id: order } = outcome(&h.apply(&env)) else {
        panic!("GTD order refused");
    };
    // Alice stamps a day ahead, validly signed: her clock runs at most
    // TIME_TOLERANCE_MS past the operator's time.
    let mut env = h.envelope(buy("100"));
    env.time_ms = t + 86_400_000;
    let env = h.sign(env, alice, ALICE_SECRET, t + 5_000);
    h.ok_envelope(&env);
    assert_eq!(h.core.time_ms(), t + TIME_TOLERANCE_MS);
    assert!(
        h.is_open(BOB, order),
        "a trader's stamp expired another's order"
    );
    // Bob's next command, stamped now and valid for 5 s, is still good.
    let env = h.signed(buy_for(BOB, "91"), bob, "bob-secret", t + 5_000);
    h.ok_envelope(&env);
    // The operator's clock (an admin key's tick) moves time for real.
    h.time_ms = t + 61_000;
    let tick = h.signed(Command::ClockTick, admin, "admin-secret", h.time_ms + 1_000);
    h.apply(&tick);
    assert_eq!(h.core.time_ms(), t + 61_000);
    assert!(!h.is_open(BOB, order), "the GTD order outlived its time");
}

fn buy_for(account: AccountId, price: &str) -> Command {
    limit(account, Side::Buy, price, "1", TimeInForce::Gtc)
}
