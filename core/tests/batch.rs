//! Batches: one envelope carries up to `batch_items_max` trading commands for one
//! account. They run in order in one step, each answered by its own `ItemOutcome`
//! with its effects after it; a refused item changes nothing and the next runs; the
//! effects and the state are exactly those of the same commands sent one by one.

mod common;

use common::*;
use tape_schemas::*;

fn place(side: Side, price: &str, qty: &str) -> BatchItem {
    BatchItem::PlaceOrder {
        market: BTC_USDT.parse().unwrap(),
        side,
        order_type: OrderType::Limit {
            price: d(price),
            quantity: d(qty),
            time_in_force: TimeInForce::Gtc,
            post_only: false,
            display_quantity: None,
        },
        client_order_id: None,
        stp: StpMode::default(),
    }
}

/// A market maker's re-quote: two quotes, one moved, one withdrawn, one refused
/// (off the tick), one new, and a fill against Bob's resting order.
fn items(first: u64) -> Vec<BatchItem> {
    vec![
        place(Side::Buy, "100", "1"),
        place(Side::Sell, "110", "1"),
        BatchItem::AmendOrder {
            order: OrderRef::Id(OrderId(first)),
            price: Some(d("99")),
            quantity: None,
        },
        BatchItem::CancelOrder {
            order: OrderRef::Id(OrderId(first + 1)),
        },
        place(Side::Buy, "100.001", "1"),
        place(Side::Sell, "90", "0.5"),
    ]
}

/// Events that are not answers.
fn effects(events: &[Event]) -> Vec<Event> {
    events
        .iter()
        .filter(|e| !matches!(e, Event::Outcome { .. } | Event::ItemOutcome { .. }))
        .cloned()
        .collect()
}

#[test]
fn a_batch_is_its_items_one_by_one_with_an_answer_each() {
    // The answer window on, as in production: a repeat is answered, not run.
    let mut batched = H::with_dedupe(Default::default());
    let mut single = H::with_dedupe(Default::default());
    for h in [&mut batched, &mut single] {
        h.limit(BOB, Side::Buy, "101", "0.5");
    }
    let first = 2;
    let envelope = batched.envelope(Command::Batch {
        account: ALICE,
        items: items(first),
    });
    let (accepted, events) = batched.ok_envelope(&envelope);
    assert_eq!(accepted, 5, "five of six items accepted");

    // Answers in item order, each before its own effects; the refused one has none.
    let answers: Vec<(usize, u16, CommandResult)> = events
        .iter()
        .enumerate()
        .filter_map(|(at, e)| match e {
            Event::ItemOutcome {
                command,
                item,
                result,
            } => {
                assert_eq!(*command, envelope.id);
                Some((at, *item, *result))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        answers.iter().map(|a| a.1).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4, 5]
    );
    assert_eq!(answers[0].2, CommandResult::Accepted { id: first });
    assert_eq!(
        answers[4].2,
        CommandResult::Rejected {
            reason: RejectReason::PriceNotOnTick
        }
    );
    assert_eq!(
        answers[5].0,
        answers[4].0 + 1,
        "a refused item has no effects"
    );
    let trade = events
        .iter()
        .position(|e| matches!(e, Event::Trade { .. }))
        .expect("the last item trades");
    assert!(trade > answers[5].0);

    // The same commands one by one: the same effects, the same balances and book.
    let mut one_by_one = Vec::new();
    for item in items(first) {
        one_by_one.extend(single.exec(item.command(ALICE)));
    }
    assert_eq!(effects(&events), effects(&one_by_one));
    for account in [ALICE, BOB] {
        for asset in ["BTC", "USDT"] {
            assert_eq!(
                batched.available(account, asset),
                single.available(account, asset)
            );
            assert_eq!(batched.held(account, asset), single.held(account, asset));
        }
    }
    let market = BTC_USDT.parse().unwrap();
    assert_eq!(batched.core.depth(&market), single.core.depth(&market));

    // A repeat of the envelope runs nothing again.
    let again = batched.apply(&envelope);
    assert_eq!(
        again,
        vec![Event::Outcome {
            command: envelope.id,
            result: CommandResult::Accepted { id: 5 },
            duplicate: true,
        }]
    );
}

#[test]
fn a_batch_acts_for_the_account_of_the_key_that_signs_it() {
    let mut h = H::new();
    let bob = h.key(ApiRole::Trader, Some(BOB), "bob");
    h.ok(Command::RequireCredentials { required: true });
    let expires = h.time_ms + 30_000;
    let for_alice = Command::Batch {
        account: ALICE,
        items: vec![place(Side::Buy, "100", "1")],
    };
    let forged = h.signed(for_alice, bob, "bob", expires);
    assert_eq!(h.rejected_envelope(&forged), RejectReason::NotPermitted);
    let own = Command::Batch {
        account: BOB,
        items: vec![place(Side::Buy, "100", "1"), place(Side::Buy, "101", "1")],
    };
    let signed = h.signed(own, bob, "bob", expires);
    let (accepted, _) = h.ok_envelope(&signed);
    assert_eq!(accepted, 2);
    assert_eq!(h.core.account_orders(BOB).len(), 2);
}
