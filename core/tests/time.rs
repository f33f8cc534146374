//! What a trusted clock may do: move forward by at most `clock_jump_max_ms` per
//! command, never past the horizon, unless the operator's `AllowClockJump` says so.
//! A refused time changes nothing, and time keeps moving afterwards.

mod common;

use common::*;
use tape_core::CoreConfig;
use tape_schemas::*;

const DAY_MS: u64 = 86_400_000;

fn tick(h: &mut H, time_ms: u64) -> CommandEnvelope {
    CommandEnvelope::new(h.next_command_id(), time_ms, Command::ClockTick)
}

fn tick_now(h: &mut H) -> CommandEnvelope {
    let t = h.time_ms;
    tick(h, t)
}

fn gtd(h: &H, expires_in_ms: u64) -> Command {
    limit(
        ALICE,
        Side::Buy,
        "100",
        "1",
        TimeInForce::Gtd {
            expires_at_ms: h.time_ms + expires_in_ms,
        },
    )
}

#[test]
fn a_tick_at_u64_max_or_in_microseconds_is_refused_and_time_keeps_moving() {
    let mut h = H::new();
    let t = h.time_ms;
    for bad in [u64::MAX, t * 1_000, t * 1_000_000] {
        let env = tick(&mut h, bad);
        assert_eq!(h.rejected_envelope(&env), RejectReason::TimeBeyondHorizon);
        assert_eq!(h.core.time_ms(), t);
    }
    // A GTD order an hour out is still accepted (the clock did not freeze at the
    // end of time), and the clock moves on with good ticks.
    let (order, _) = h.ok(gtd(&h, 3_600_000));
    h.time_ms = t + 1_000;
    let env = tick_now(&mut h);
    h.ok_envelope(&env);
    assert_eq!(h.core.time_ms(), t + 1_000);
    assert!(h.is_open(ALICE, order));
    h.time_ms = t + 3_600_001;
    let env = tick_now(&mut h);
    h.ok_envelope(&env);
    assert!(!h.is_open(ALICE, order), "the GTD order outlived its time");
}

#[test]
fn after_a_long_outage_the_clock_moves_only_with_the_operators_consent() {
    let mut h = H::new();
    let t = h.time_ms;
    let (order, _) = h.ok(gtd(&h, DAY_MS));
    // Ten days later: the first command's time is refused; nothing moves, the GTD
    // order is still there.
    h.time_ms = t + 10 * DAY_MS;
    let env = tick_now(&mut h);
    assert_eq!(h.rejected_envelope(&env), RejectReason::ClockJumpTooLarge);
    assert_eq!(h.core.time_ms(), t);
    assert!(h.is_open(ALICE, order));
    // The operator allows it: the clock jumps, expiries fire, commands flow.
    let (_, events) = h.ok(Command::AllowClockJump);
    assert_eq!(h.core.time_ms(), t + 10 * DAY_MS);
    assert!(done(&events, order).is_some_and(|(r, _)| r == DoneReason::Expired));
    h.ok(gtd(&h, 60_000));
    // Within the bound no consent is needed.
    h.time_ms += 6 * DAY_MS;
    let env = tick_now(&mut h);
    h.ok_envelope(&env);
    assert_eq!(h.core.time_ms(), h.time_ms);
}

#[test]
fn a_signed_admin_tick_with_a_bad_time_uses_up_nothing() {
    let mut h = H::with_dedupe(CoreConfig::default());
    let admin = h.key(ApiRole::Admin, None, "admin-secret");
    h.ok(Command::RequireCredentials { required: true });
    let t = h.time_ms;
    let bad = sign_on(
        tick(&mut h, u64::MAX),
        admin,
        "admin-secret",
        1,
        1,
        t + 5_000,
    );
    assert_eq!(h.rejected_envelope(&bad), RejectReason::TimeBeyondHorizon);
    // The same stream and seq with a good time: the refusal took nothing.
    let good = sign_on(
        tick(&mut h, t + 500),
        admin,
        "admin-secret",
        1,
        1,
        t + 5_000,
    );
    h.ok_envelope(&good);
    assert_eq!(h.core.time_ms(), t + 500);
}

#[test]
fn a_flood_of_assets_is_refused_at_the_bound_and_the_engine_goes_on() {
    // The old engine panicked at the 65,536th asset, and again on every restart.
    let mut h = H::with_config(CoreConfig::default());
    let max = CoreConfig::default().assets_max as usize;
    let mut refused = 0;
    for i in 0..max + 10 {
        let command = Command::CreateAsset(AssetSpec {
            code: format!("A{i}").parse().unwrap(),
            scale: 2,
            daily_withdrawal_limit: None,
        });
        let out = h.exec(command);
        if outcome(&out)
            == (CommandResult::Rejected {
                reason: RejectReason::TooManyAssets,
            })
        {
            refused += 1;
        }
    }
    assert_eq!(refused, 10);
    h.ok(Command::ClockTick);
}
