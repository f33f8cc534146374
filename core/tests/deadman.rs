//! The dead-man switch (`CancelAllAfter`): an account's orders are cancelled when it
//! is not refreshed in time, on the first command or tick at or past the deadline,
//! before that command's own outcome; refreshing moves the deadline, 0 disarms, and
//! a snapshot keeps the switch.

mod common;

use common::*;
use tape_core::Core;
use tape_schemas::*;

fn after(account: AccountId, timeout_ms: u64) -> Command {
    Command::CancelAllAfter {
        account,
        timeout_ms,
    }
}

/// A clock tick at `time_ms`; its events.
fn tick_at(h: &mut H, time_ms: u64) -> Vec<Event> {
    h.time_ms = time_ms;
    h.ok(Command::ClockTick).1
}

/// Orders ended by the dead-man switch, in the order they ended.
fn ended_by_switch(events: &[Event]) -> Vec<OrderId> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::OrderDone {
                order,
                reason: DoneReason::DeadManSwitch,
                ..
            } => Some(*order),
            _ => None,
        })
        .collect()
}

#[test]
fn an_unrefreshed_switch_cancels_every_order_before_the_next_commands_outcome() {
    let mut h = H::new();
    let t0 = h.time_ms;
    let (a1, _) = h.limit(ALICE, Side::Buy, "100", "1");
    let (a2, _) = h.limit(ALICE, Side::Sell, "200", "1");
    let (b1, _) = h.limit(BOB, Side::Buy, "99", "1");
    let (_, events) = h.ok(after(ALICE, 10_000));
    assert!(events.contains(&Event::DeadManSwitchSet {
        account: ALICE,
        deadline_ms: Some(t0 + 10_000),
    }));

    // Just before the deadline nothing happens.
    assert!(ended_by_switch(&tick_at(&mut h, t0 + 9_999)).is_empty());
    assert!(h.is_open(ALICE, a1) && h.is_open(ALICE, a2));

    // Bob's order at the deadline: Alice's orders end first, then Bob's outcome.
    h.time_ms = t0 + 10_000;
    let (_, events) = h.ok(limit(BOB, Side::Sell, "300", "1", TimeInForce::Gtc));
    let fired = events
        .iter()
        .position(|e| {
            *e == Event::DeadManSwitchFired {
                account: ALICE,
                deadline_ms: t0 + 10_000,
            }
        })
        .expect("the switch fired");
    let outcome = events
        .iter()
        .position(|e| matches!(e, Event::Outcome { .. }))
        .unwrap();
    assert!(fired < outcome, "{events:#?}");
    assert_eq!(ended_by_switch(&events), vec![OrderId(a1), OrderId(a2)]);
    assert!(!h.is_open(ALICE, a1) && !h.is_open(ALICE, a2));
    assert!(h.is_open(BOB, b1), "only Alice's orders go");
    assert_eq!(h.held(ALICE, "USDT"), 0);
    assert_eq!(h.held(ALICE, "BTC"), 0);

    // It fired once: the switch is disarmed, new orders stay.
    let (a3, _) = h.limit(ALICE, Side::Buy, "100", "1");
    assert!(ended_by_switch(&tick_at(&mut h, t0 + 100_000)).is_empty());
    assert!(h.is_open(ALICE, a3));
}

#[test]
fn refreshing_moves_the_deadline_and_zero_disarms() {
    let mut h = H::new();
    let t0 = h.time_ms;
    let (a1, _) = h.limit(ALICE, Side::Buy, "100", "1");
    h.ok(after(ALICE, 10_000));
    h.time_ms = t0 + 8_000;
    h.ok(after(ALICE, 10_000));
    // The first deadline passes: refreshed, nothing happens.
    assert!(ended_by_switch(&tick_at(&mut h, t0 + 12_000)).is_empty());
    assert!(h.is_open(ALICE, a1));
    // The second one fires, on a clock tick.
    assert_eq!(
        ended_by_switch(&tick_at(&mut h, t0 + 18_000)),
        vec![OrderId(a1)]
    );

    let (a2, _) = h.limit(ALICE, Side::Buy, "100", "1");
    h.ok(after(ALICE, 1_000));
    let (_, events) = h.ok(after(ALICE, 0));
    assert!(events.contains(&Event::DeadManSwitchSet {
        account: ALICE,
        deadline_ms: None,
    }));
    assert!(ended_by_switch(&tick_at(&mut h, t0 + 100_000)).is_empty());
    assert!(h.is_open(ALICE, a2), "a disarmed switch never fires");
}

#[test]
fn a_timeout_beyond_a_day_or_an_unknown_account_is_refused() {
    let mut h = H::new();
    assert_eq!(
        h.rejected(after(ALICE, DEAD_MAN_TIMEOUT_MAX_MS + 1)),
        RejectReason::TimeoutTooLong
    );
    assert_eq!(
        h.rejected(after(AccountId(99), 1_000)),
        RejectReason::UnknownAccount
    );
    h.ok(after(ALICE, DEAD_MAN_TIMEOUT_MAX_MS));
}

#[test]
fn a_snapshot_keeps_an_armed_switch() {
    let mut h = H::new();
    let t0 = h.time_ms;
    let (a1, _) = h.limit(ALICE, Side::Buy, "100", "1");
    h.ok(after(ALICE, 5_000));
    let restored = Core::restore(&h.core.snapshot()).unwrap();
    assert_eq!(restored.state_hash(), h.core.state_hash());
    h.core = restored;
    assert_eq!(
        ended_by_switch(&tick_at(&mut h, t0 + 5_000)),
        vec![OrderId(a1)]
    );
}
