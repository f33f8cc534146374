//! Property tests over random command streams: many accounts, two spot markets and
//! a perpetual whose index swings (positions win, lose and are liquidated), every
//! command kind, garbage values included. After every command the invariants hold
//! and there is exactly one outcome; postings always add up to the core's balances;
//! and runs are deterministic, across snapshot and restore too.

use std::collections::BTreeMap;

use proptest::prelude::*;
use rust_decimal::Decimal;
use tape_core::Core;
use tape_schemas::*;

use tape_testkit::random::*;

fn steps(max: usize) -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        (
            any::<u8>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            0u16..3_000,
            prop::bool::weighted(0.03),
        ),
        1..max,
    )
}

fn run(core: &mut Core, envelopes: &[CommandEnvelope]) -> Vec<Vec<Event>> {
    envelopes
        .iter()
        .map(|e| {
            let mut out = Vec::new();
            core.apply(e, &mut out);
            out
        })
        .collect()
}

/// Folds postings into balances: the view any projection would build.
fn fold_postings(events: &[Vec<Event>]) -> BTreeMap<(String, String), Decimal> {
    let mut balances = BTreeMap::new();
    for e in events.iter().flatten() {
        if let Event::Posting {
            asset,
            from,
            to,
            amount,
            ..
        } = e
        {
            *balances
                .entry((format!("{from:?}"), asset.to_string()))
                .or_insert(Decimal::ZERO) -= amount.0;
            *balances
                .entry((format!("{to:?}"), asset.to_string()))
                .or_insert(Decimal::ZERO) += amount.0;
        }
    }
    balances
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_after_every_command_and_each_has_one_outcome(steps in steps(400)) {
        let mut core = Core::default();
        for e in envelopes(&steps) {
            let mut out = Vec::new();
            core.apply(&e, &mut out);
            let outcomes = out.iter().filter(|ev| matches!(ev, Event::Outcome { .. })).count();
            prop_assert_eq!(outcomes, 1, "{:?} -> {:?}", e, out);
            if let Err(v) = core.check_invariants() {
                return Err(TestCaseError::fail(format!("{v} after {e:?}: {out:#?}")));
            }
            let outcome_first = out.iter().position(|ev| matches!(ev, Event::Outcome { .. }));
            let effects_before = out.iter().take(outcome_first.unwrap()).any(|ev| !matches!(ev, Event::OrderDone { .. } | Event::Posting { .. } | Event::BracketExitPlaced { .. } | Event::OrderAccepted { .. } | Event::Trade { .. } | Event::OrderRested { .. } | Event::BracketExitRejected { .. } | Event::BracketPnl { .. } | Event::OrderRefilled { .. } | Event::DeadManSwitchFired { .. } | Event::IndexStale { .. }));
            prop_assert!(!effects_before, "only expiries, dead-man switches, stale indexes and what they cause come before the outcome: {:?}", out);
        }
    }

    #[test]
    fn postings_add_up_to_the_balances_the_core_holds(steps in steps(400)) {
        let mut core = Core::default();
        let events = run(&mut core, &envelopes(&steps));
        let folded = fold_postings(&events);
        for a in 1..=ACCOUNTS {
            for asset in ["BTC", "ETH", "USDT"] {
                let b = core.balance(AccountId(a), &asset.parse().unwrap()).unwrap_or_default();
                let scale = if asset == "USDT" { 6 } else { 8 };
                let get = |party: Party| folded.get(&(format!("{party:?}"), asset.to_string())).copied().unwrap_or_default();
                prop_assert_eq!(get(Party::Available(AccountId(a))), Decimal::from_i128_with_scale(b.available.into(), scale));
                prop_assert_eq!(get(Party::Held(AccountId(a))), Decimal::from_i128_with_scale(b.held.into(), scale));
            }
        }
        for asset in ["BTC", "ETH", "USDT"] {
            let fees = core.fees_collected(&asset.parse().unwrap()).unwrap();
            let scale = if asset == "USDT" { 6 } else { 8 };
            let folded_fees = folded.get(&(format!("{:?}", Party::Fees), asset.to_string())).copied().unwrap_or_default();
            prop_assert_eq!(folded_fees, Decimal::from_i128_with_scale(fees.into(), scale));
        }
    }

    #[test]
    fn the_same_stream_gives_byte_identical_events_and_hash(steps in steps(200)) {
        let stream = envelopes(&steps);
        let (mut one, mut two) = (Core::default(), Core::default());
        let (e1, e2) = (run(&mut one, &stream), run(&mut two, &stream));
        let bytes = |events: &Vec<Vec<Event>>| events.iter().flatten().map(|e| tape_schemas::codec::to_bincode(e).unwrap()).collect::<Vec<_>>();
        prop_assert_eq!(bytes(&e1), bytes(&e2));
        prop_assert_eq!(one.state_hash(), two.state_hash());
        prop_assert_eq!(one.snapshot(), two.snapshot());
    }

    #[test]
    fn snapshot_restore_and_continue_equals_the_uninterrupted_run(steps in steps(200), cut in any::<prop::sample::Index>()) {
        let stream = envelopes(&steps);
        let cut = cut.index(stream.len());
        let mut straight = Core::default();
        let all = run(&mut straight, &stream);

        let mut first = Core::default();
        run(&mut first, &stream[..cut]);
        let mut restored = Core::restore(&first.snapshot()).expect("restore");
        prop_assert_eq!(restored.state_hash(), first.state_hash());
        let rest = run(&mut restored, &stream[cut..]);
        prop_assert_eq!(&rest[..], &all[cut..]);
        prop_assert_eq!(restored.state_hash(), straight.state_hash());
    }
}

#[test]
fn a_snapshot_that_is_not_one_is_refused() {
    assert!(Core::restore(b"not a snapshot").is_err());
    assert!(Core::restore(&[]).is_err());
    let mut bytes = Core::default().snapshot();
    bytes[0] ^= 0xff;
    assert!(Core::restore(&bytes).is_err());
}

/// The generator is only as good as what it reaches: check that random streams
/// exercise every kind of effect the properties are meant to cover.
#[test]
fn random_streams_reach_every_kind_of_effect() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..2048 {
        let s = steps(400).new_tree(&mut runner).unwrap().current();
        let mut core = Core::default();
        for ev in run(&mut core, &envelopes(&s)).iter().flatten() {
            let name = match ev {
                Event::Outcome {
                    duplicate: true, ..
                } => "duplicate".to_string(),
                Event::OrderDone { reason, .. } => format!("done {reason:?}"),
                Event::LiquidationStep { stage, .. } => format!("step {stage:?}"),
                Event::Outcome {
                    result: CommandResult::Rejected { reason },
                    ..
                } => format!("rejected {reason:?}"),
                other => format!("{other:?}")
                    .split([' ', '(', '{'])
                    .next()
                    .unwrap()
                    .to_string(),
            };
            // Stops, icebergs and amends on the perpetual, besides spot's.
            let perp: Symbol = tape_testkit::random::PERPETUAL.parse().unwrap();
            match ev {
                Event::OrderTriggered { market, .. }
                | Event::OrderRefilled { market, .. }
                | Event::OrderAmended { market, .. }
                    if *market == perp =>
                {
                    seen.insert(format!("perp {name}"));
                }
                _ => {}
            }
            seen.insert(name);
        }
    }
    for wanted in [
        "perp OrderTriggered",
        "perp OrderRefilled",
        "perp OrderAmended",
        "rejected LiabilityRound",
        "rejected LiabilityRecord",
        "duplicate",
        "Trade",
        "OrderTriggered",
        "OrderRefilled",
        "OrderAmended",
        "SlicedPlaced",
        "BracketExitPlaced",
        "BracketPnl",
        "WithdrawalCompleted",
        "WithdrawalFailed",
        "done Expired",
        "done SelfTrade",
        "done Filled",
        "done Cancelled",
        "done Unfilled",
        "done InsufficientFunds",
        "PositionChanged",
        "LiquidationStarted",
        "step Cancel",
        "step Reduce",
        "step TakeOver",
        "step Deleverage",
        "LiquidationEnded",
        "InsurancePosition",
        "Deleveraged",
        "FundingRound",
        "FundingPaid",
        "NotionalCapSet",
        "rejected AccountNotionalCap",
        "CredentialsRequired",
        "rejected MissingCredentials",
        "rejected BadSignature",
        "rejected NotPermitted",
        "rejected CredentialsExpired",
        "rejected ExpiryTooFar",
        "rejected UnknownApiKey",
    ] {
        assert!(
            seen.contains(wanted),
            "random streams never produce {wanted}; seen {seen:?}"
        );
    }
}
