//! Orders with children: sliced orders (children spread over a price range, cancelled
//! as one) and bracket orders (an exit placed once the entry fills, and its P&L).

mod common;
use common::*;
use tape_schemas::*;

#[test]
fn sliced_order_spreads_children_evenly_and_cancels_as_one() {
    let mut h = H::new();
    let (parent, events) = h.ok(Command::PlaceSliced(NewSliced {
        account: ALICE,
        market: sym(BTC_USDT),
        side: Side::Buy,
        lower_price: d("90"),
        upper_price: d("100"),
        count: 3,
        total_quantity: d("1"),
        post_only: false,
        client_order_id: Some("ladder".parse().unwrap()),
    }));
    let rested: Vec<(Dec, Dec)> = events
        .iter()
        .filter_map(|e| match e {
            Event::OrderRested { price, visible, .. } => Some((*price, *visible)),
            _ => None,
        })
        .collect();
    assert_eq!(
        rested,
        vec![
            (d("90.00"), d("0.33340000")),
            (d("95.00"), d("0.33330000")),
            (d("100.00"), d("0.33330000"))
        ]
    );
    let children = match events
        .iter()
        .find(|e| matches!(e, Event::SlicedPlaced { .. }))
    {
        Some(Event::SlicedPlaced { children, .. }) => children.clone(),
        _ => panic!("no SlicedPlaced"),
    };
    assert_eq!(
        children,
        vec![
            OrderId(parent + 1),
            OrderId(parent + 2),
            OrderId(parent + 3)
        ]
    );
    let (acted, events) = h.ok(Command::CancelOrder {
        account: ALICE,
        order: OrderRef::Client("ladder".parse().unwrap()),
    });
    assert_eq!(acted, parent);
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::OrderDone { .. }))
            .count(),
        3
    );
    assert_eq!(h.held(ALICE, "USDT"), 0);
    assert_eq!(
        h.rejected(cancel(ALICE, parent)),
        RejectReason::UnknownOrder
    );
}

#[test]
fn bracket_places_its_exit_when_the_entry_fills_and_reports_pnl_with_fees() {
    let mut h = H::new();
    let (entry, _) = h.ok(Command::PlaceBracket(NewBracket {
        account: ALICE,
        market: sym(BTC_USDT),
        side: Side::Buy,
        entry_price: d("100"),
        quantity: d("1"),
        exit_price: d("110"),
        client_order_id: None,
    }));
    let (_, events) = h.limit(BOB, Side::Sell, "100", "1");
    let exit = bracket_exit(&events, entry).expect("exit placed");
    assert!(h.is_open(ALICE, exit));
    let (_, events) = h.limit(CAROL, Side::Buy, "110", "1");
    // Entry: paid 100 + 0.1 maker fee; exit: got 110 - 0.11 maker fee.
    let pnl = events.iter().find_map(|e| match e {
        Event::BracketPnl {
            realized_pnl,
            closed_quantity,
            ..
        } => Some((*closed_quantity, *realized_pnl)),
        _ => None,
    });
    assert_eq!(pnl, Some((d("1.00000000"), d("9.790000"))));
}

#[test]
fn bracket_exit_must_be_on_the_profit_side() {
    let mut h = H::new();
    let b = Command::PlaceBracket(NewBracket {
        account: ALICE,
        market: sym(BTC_USDT),
        side: Side::Buy,
        entry_price: d("100"),
        quantity: d("1"),
        exit_price: d("99"),
        client_order_id: None,
    });
    assert_eq!(h.rejected(b), RejectReason::InvalidBracket);
}
