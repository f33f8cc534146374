//! The views built from a scripted session equal what we work out by hand; applying
//! the events twice, restarting mid-stream or rebuilding from nothing gives the same
//! stored bytes.

use tape_core::CoreConfig;
use tape_projections::*;
use tape_schemas::*;
use tape_testkit::d;

/// 2026-01-01T00:00:00Z: an hour (and day) boundary, so candles are easy to predict.
const T0: u64 = 1_767_225_600_000;

fn a(code: &str) -> AssetCode {
    code.parse().unwrap()
}

fn btc_usdt() -> Symbol {
    "BTC-USDT".parse().unwrap()
}

fn limit(account: u64, side: Side, price: &str, qty: &str, tif: TimeInForce) -> Command {
    tape_testkit::limit(AccountId(account), side, price, qty, tif)
}

/// The script: (time offset ms, command). Orders get ids 1, 2, … in placement order.
fn script() -> Vec<(u64, Command)> {
    let asset = |code: &str, scale| {
        Command::CreateAsset(AssetSpec {
            code: a(code),
            scale,
            daily_withdrawal_limit: None,
        })
    };
    let deposit = |account, code: &str, amount: &str| Command::Deposit {
        account: AccountId(account),
        asset: a(code),
        amount: d(amount),
        reference: format!("dep-{account}-{code}").parse().unwrap(),
    };
    vec![
        (0, asset("BTC", 8)),
        (0, asset("USDT", 6)),
        (
            0,
            Command::CreateMarket(tape_testkit::btc_usdt(tape_testkit::FEES)),
        ),
        (0, deposit(1, "BTC", "10")),
        (0, deposit(2, "USDT", "100000")),
        // order 1, order 2: account 1 offers 1 BTC at 30,000 and 1 BTC at 30,100
        (1_000, limit(1, Side::Sell, "30000", "1", TimeInForce::Gtc)),
        (2_000, limit(1, Side::Sell, "30100", "1", TimeInForce::Gtc)),
        // order 3: account 2 buys 0.5 at 30,000 -> trade 1
        (3_000, limit(2, Side::Buy, "30000", "0.5", TimeInForce::Gtc)),
        // order 4, a minute later: buys 1 up to 30,100 IOC -> trades 2 (0.5 @ 30,000)
        // and 3 (0.5 @ 30,100)
        (61_000, limit(2, Side::Buy, "30100", "1", TimeInForce::Ioc)),
        // account 1 cancels what is left of order 2
        (
            62_000,
            Command::CancelOrder {
                account: AccountId(1),
                order: OrderRef::Id(OrderId(2)),
            },
        ),
        // parent 5 with children 6, 7, 8: bids of 0.1 at 29,000.00 / 29,000.01 / 29,000.02
        (
            63_000,
            Command::PlaceSliced(NewSliced {
                account: AccountId(2),
                market: btc_usdt(),
                side: Side::Buy,
                lower_price: d("29000"),
                upper_price: d("29000.02"),
                count: 3,
                total_quantity: d("0.3"),
                post_only: false,
                client_order_id: None,
            }),
        ),
        // bracket entry 9: account 1 sells 0.1 at 29,000.02 (fills child 8), exit 10
        // buys 0.1 back at 28,000
        (
            64_000,
            Command::PlaceBracket(NewBracket {
                account: AccountId(1),
                market: btc_usdt(),
                side: Side::Sell,
                entry_price: d("29000.02"),
                quantity: d("0.1"),
                exit_price: d("28000"),
                client_order_id: None,
            }),
        ),
        (
            65_000,
            Command::RequestWithdrawal {
                account: AccountId(2),
                asset: a("BTC"),
                amount: d("0.2"),
            },
        ),
        (
            66_000,
            Command::CreateApiKey {
                role: ApiRole::Trader,
                account: Some(AccountId(2)),
                secret_hash: Hash32([9; 32]),
                mac_key: Hash32([10; 32]),
            },
        ),
    ]
}

fn events() -> Vec<Vec<u8>> {
    let commands: Vec<Vec<u8>> = script()
        .into_iter()
        .enumerate()
        .map(|(i, (t, c))| {
            codec::to_bincode(&CommandEnvelope::new(
                CommandId::from_u128(i as u128 + 1),
                T0 + t,
                c,
            ))
            .unwrap()
        })
        .collect();
    tape_engine::derive_records(&commands, CoreConfig::default(), 1_000)
}

fn project(dir: &std::path::Path, events: &[Vec<u8>]) -> Views {
    let (mut p, views) = open(dir).unwrap();
    p.apply_records(events.iter().map(|e| e.as_slice()))
        .unwrap();
    views
}

fn wallet(views: &Views, account: u64, asset: &str) -> (Dec, Dec) {
    let w = views
        .wallets(AccountId(account))
        .unwrap()
        .into_iter()
        .find(|w| w.asset == a(asset))
        .unwrap_or_else(|| panic!("account {account} has no {asset}"));
    (w.available, w.held)
}

fn newest(n: usize) -> Page {
    Page {
        first: n,
        ..Page::default()
    }
}

#[test]
fn wallets_are_what_the_trades_and_fees_leave() {
    let dir = tempfile::tempdir().unwrap();
    let v = project(dir.path(), &events());
    // account 1 sold 1 BTC (order 1: 15,000 + 15,000) and 0.5 BTC at 30,100 as maker
    // (fee 0.1%), then 0.1 BTC at 29,000.02 as taker (fee 0.2%); it holds 0.1 BTC
    // worth of USDT for the exit bid at 28,000 (+0.2% fee cover).
    assert_eq!(wallet(&v, 1, "BTC"), (d("8.4"), d("0")));
    // 30,000 - 30 + 15,050 - 15.05 + 2,900.002 - 5.800004 - 2,805.6 (exit hold)
    assert_eq!(wallet(&v, 1, "USDT"), (d("45093.551996"), d("2805.6")));
    // account 2 bought 1.5 BTC (0.2 of it requested for withdrawal) and child 8's 0.1
    assert_eq!(wallet(&v, 2, "BTC"), (d("1.4"), d("0.2")));
    // 100,000 - 15,030 - 15,030 - 15,080.10 - 2,900.002 - 2.900002 (maker fee),
    // holding children 6 and 7: 2,900 + 2,900.001 plus 0.2% fee cover (5.8 + 5.800002)
    let (available, held) = wallet(&v, 2, "USDT");
    assert_eq!(held.0, d("5811.601002").0);
    assert_eq!(available.0 + held.0, d("51956.997998").0);
}

#[test]
fn orders_history_and_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let v = project(dir.path(), &events());
    let o = |id| v.order(OrderId(id)).unwrap().unwrap();
    assert_eq!(o(1).status, OrderStatus::Filled);
    assert_eq!(o(1).filled, d("1"));
    assert_eq!(o(1).filled_quote.0, d("30000").0);
    assert_eq!(o(1).fees.0, d("30").0);
    assert_eq!(o(2).status, OrderStatus::Cancelled);
    assert_eq!(o(2).done_reason, Some(DoneReason::Cancelled));
    assert_eq!(o(2).filled.0, d("0.5").0);
    assert_eq!(o(3).status, OrderStatus::Filled);
    assert_eq!(o(4).status, OrderStatus::Filled);
    assert_eq!(o(4).filled.0, d("1").0);
    assert_eq!(o(8).parent, Some(OrderId(5)));
    assert_eq!(o(10).status, OrderStatus::New);
    assert_eq!(o(10).price, Some(d("28000")));

    let all = v
        .orders(AccountId(2), &OrderFilter::default(), &newest(50))
        .unwrap();
    let ids: Vec<u64> = all.rows.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, vec![8, 7, 6, 4, 3]);
    let open = OrderFilter {
        open_only: true,
        ..OrderFilter::default()
    };
    let ids: Vec<u64> = v
        .orders(AccountId(2), &open, &newest(50))
        .unwrap()
        .rows
        .iter()
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(ids, vec![7, 6]);
    // paging oldest first, two at a time, by cursor
    let mut page = Page {
        newest_first: false,
        first: 2,
        ..Page::default()
    };
    let first = v
        .orders(AccountId(2), &OrderFilter::default(), &page)
        .unwrap();
    assert_eq!(
        first.rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![3, 4]
    );
    assert!(first.has_more);
    page.cursor = Some(4);
    let second = v
        .orders(AccountId(2), &OrderFilter::default(), &page)
        .unwrap();
    assert_eq!(
        second.rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![6, 7]
    );
    // filters: status and time range
    let filled = OrderFilter {
        statuses: vec![OrderStatus::Filled],
        from_ms: Some(T0 + 60_000),
        ..OrderFilter::default()
    };
    let rows = v.orders(AccountId(2), &filled, &newest(50)).unwrap();
    assert_eq!(
        rows.rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![8, 4]
    );
    // an id range
    let range = Page {
        from_id: 4,
        to_id: 7,
        ..newest(50)
    };
    let rows = v
        .orders(AccountId(2), &OrderFilter::default(), &range)
        .unwrap();
    assert_eq!(
        rows.rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![7, 6, 4]
    );
    let seq_range = Page {
        from_id: 1,
        to_id: 12,
        ..newest(50)
    };
    let entries = v
        .ledger(AccountId(2), &EntryFilter::default(), &seq_range)
        .unwrap();
    assert!(entries.rows.iter().all(|(seq, _)| (1..=12).contains(seq)));
    assert_eq!(
        entries.rows.len(),
        1,
        "only the deposit is within seq 1..=12"
    );
}

#[test]
fn trades_candles_ticker_and_depth() {
    let dir = tempfile::tempdir().unwrap();
    let v = project(dir.path(), &events());
    let tape = v
        .market_trades(&btc_usdt(), &TradeFilter::default(), &newest(10))
        .unwrap();
    let prices: Vec<String> = tape
        .rows
        .iter()
        .map(|(_, t)| t.price.0.normalize().to_string())
        .collect();
    assert_eq!(prices, vec!["29000.02", "30100", "30000", "30000"]);
    let mine = v
        .account_trades(AccountId(1), &TradeFilter::default(), &newest(10))
        .unwrap();
    assert_eq!(mine.rows.len(), 4);
    let t2 = v.trade(TradeId(2)).unwrap().unwrap();
    assert_eq!((t2.maker_order, t2.taker_order), (OrderId(1), OrderId(4)));
    assert_eq!(t2.taker_fee.0, d("30").0);

    let minute = v
        .candles(&btc_usdt(), Interval::M1, T0, T0 + 3_600_000, 10)
        .unwrap();
    assert_eq!(minute.len(), 2);
    let c0 = minute[0];
    assert_eq!(
        (c0.start_ms, c0.open, c0.close, c0.trades),
        (T0, d("30000"), d("30000"), 1)
    );
    assert_eq!(c0.volume.0, d("0.5").0);
    let c1 = minute[1];
    assert_eq!(c1.start_ms, T0 + 60_000);
    assert_eq!(
        (c1.open.0, c1.high.0, c1.low.0, c1.close.0),
        (d("30000").0, d("30100").0, d("29000.02").0, d("29000.02").0)
    );
    assert_eq!(c1.volume.0, d("1.1").0);
    assert_eq!(c1.trades, 3);
    let hour = v.candles(&btc_usdt(), Interval::H1, T0, T0, 10).unwrap();
    assert_eq!(hour.len(), 1);
    assert_eq!(hour[0].volume.0, d("1.6").0);
    assert_eq!(hour[0].quote_volume.0, d("47950.002").0);

    let t = v.ticker(&btc_usdt()).unwrap().unwrap();
    assert_eq!(t.last, Some(d("29000.02")));
    assert_eq!(t.open, Some(d("30000")));
    assert_eq!(t.high.map(|x| x.0), Some(d("30100").0));
    assert_eq!(t.trades, 4);
    assert_eq!(t.best_bid.map(|x| x.0), Some(d("29000.01").0));
    assert_eq!(t.best_ask, None);

    let depth = v.depth(&btc_usdt(), 10).unwrap();
    let bids: Vec<(String, String)> = depth
        .bids
        .iter()
        .map(|(p, q)| (p.0.normalize().to_string(), q.0.normalize().to_string()))
        .collect();
    let want = [("29000.01", "0.1"), ("29000", "0.1"), ("28000", "0.1")];
    assert_eq!(bids, want.map(|(p, q)| (p.to_string(), q.to_string())));
    assert!(depth.asks.is_empty());
}

#[test]
fn ledger_entries_reports_keys_and_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let v = project(dir.path(), &events());
    let all = EntryFilter::default();
    let page = Page {
        newest_first: false,
        first: 100,
        ..Page::default()
    };
    let usdt = EntryFilter {
        asset: Some(a("USDT")),
        ..all.clone()
    };
    let entries = v.ledger(AccountId(2), &usdt, &page).unwrap();
    let kinds: Vec<(EntryKind, String)> = entries
        .rows
        .iter()
        .map(|(_, e)| (e.kind, e.amount.0.normalize().to_string()))
        .collect();
    let want = [
        (EntryKind::Deposit, "100000"),
        (EntryKind::Trade, "-15000"),
        (EntryKind::Fee, "-30"),
        (EntryKind::Trade, "-15000"),
        (EntryKind::Fee, "-30"),
        (EntryKind::Trade, "-15050"),
        (EntryKind::Fee, "-30.1"),
        (EntryKind::Trade, "-2900.002"),
        (EntryKind::Fee, "-2.900002"),
    ];
    assert_eq!(kinds, want.map(|(k, a)| (k, a.to_string())));
    // each entry carries the running total
    let last = entries.rows.last().unwrap().1;
    let (available, held) = wallet(&v, 2, "USDT");
    assert_eq!(last.balance.0, available.0 + held.0);
    let withdrawals = EntryFilter {
        kind: Some(EntryKind::Withdrawal),
        ..all
    };
    assert!(
        v.ledger(AccountId(2), &withdrawals, &page)
            .unwrap()
            .rows
            .is_empty(),
        "a requested withdrawal only holds"
    );
    let w = v.withdrawal(WithdrawalId(1)).unwrap().unwrap();
    assert_eq!(w.status, WithdrawalStatus::Requested);

    let sliced = v.sliced(OrderId(5)).unwrap().unwrap();
    assert_eq!(sliced.children, vec![OrderId(6), OrderId(7), OrderId(8)]);
    assert_eq!(sliced.account, AccountId(2));
    let bracket = v.bracket(OrderId(9)).unwrap().unwrap();
    assert_eq!(bracket.exit, Some(OrderId(10)));
    assert_eq!(bracket.account, AccountId(1));

    let key = v.api_key(ApiKeyId(1)).unwrap().unwrap();
    assert_eq!(
        (key.role, key.account),
        (ApiRole::Trader, Some(AccountId(2)))
    );
    let outcome = v.outcome_at(7).unwrap().unwrap();
    assert_eq!(outcome.command, CommandId::from_u128(8));
    assert_eq!(outcome.result, CommandResult::Accepted { id: 3 });
    assert!(v.outcome_at(script().len() as u64).unwrap().is_none());

    let equity = v.equity_history(AccountId(2), 0, u64::MAX).unwrap();
    assert_eq!(equity.len(), 1, "one point per hour");
    assert_eq!(equity[0].time_ms, T0);
    assert_eq!(v.checkpoint().unwrap().0, events().len() as u64 + 1);
}

/// Everything the views answer, as text: batches may group rows differently, so two
/// projections are compared by what they answer, not by their bytes.
fn answers(v: &Views) -> String {
    let all = |newest_first| Page {
        newest_first,
        first: PAGE_ROWS_MAX,
        ..Page::default()
    };
    let mut out = String::new();
    let mut say = |x: &dyn std::fmt::Debug| out.push_str(&format!("{x:?}\n"));
    say(&v.checkpoint().unwrap());
    say(&v.assets().unwrap());
    say(&v.markets().unwrap());
    for account in [1, 2] {
        let a = AccountId(account);
        say(&v.wallets(a).unwrap());
        for newest_first in [true, false] {
            say(&v
                .ledger(a, &EntryFilter::default(), &all(newest_first))
                .unwrap()
                .rows);
            say(&v
                .orders(a, &OrderFilter::default(), &all(newest_first))
                .unwrap()
                .rows);
            let open = OrderFilter {
                open_only: true,
                ..OrderFilter::default()
            };
            say(&v.orders(a, &open, &all(newest_first)).unwrap().rows);
            say(&v
                .account_trades(a, &TradeFilter::default(), &all(newest_first))
                .unwrap()
                .rows);
        }
        say(&v.equity_history(a, 0, u64::MAX).unwrap());
    }
    say(&v
        .market_trades(&btc_usdt(), &TradeFilter::default(), &all(false))
        .unwrap()
        .rows);
    for i in Interval::ALL {
        say(&v
            .candles(&btc_usdt(), i, 0, u64::MAX, PAGE_ROWS_MAX)
            .unwrap());
    }
    say(&v.depth(&btc_usdt(), 100).unwrap());
    say(&v.ticker(&btc_usdt()).unwrap());
    for id in 1..=12 {
        say(&v.order(OrderId(id)).unwrap());
        say(&v.trade(TradeId(id)).unwrap());
        say(&v.sliced(OrderId(id)).unwrap());
        say(&v.bracket(OrderId(id)).unwrap());
    }
    say(&v.api_keys().unwrap());
    say(&v.withdrawal(WithdrawalId(1)).unwrap());
    for offset in 0..=script().len() as u64 {
        say(&v.outcome_at(offset).unwrap());
    }
    out
}

#[test]
fn applying_twice_restarting_midway_and_rebuilding_give_the_same_views() {
    let events = events();
    let once = tempfile::tempdir().unwrap();
    let reference = answers(&project(once.path(), &events));

    // everything twice: the second pass is below the checkpoint and stores nothing
    let twice = tempfile::tempdir().unwrap();
    let first = project(twice.path(), &events).dump().unwrap();
    let again = project(twice.path(), &events).dump().unwrap();
    assert!(
        again == first,
        "applying the events again changed the views"
    );

    // one event at a time, and stopping at several points, reopening and continuing
    // with an overlap
    let dir = tempfile::tempdir().unwrap();
    for e in &events {
        project(dir.path(), std::slice::from_ref(e));
    }
    assert_eq!(answers(&project(dir.path(), &[])), reference);
    for split in [1, 7, events.len() / 2, events.len() - 1] {
        let dir = tempfile::tempdir().unwrap();
        project(dir.path(), &events[..split]);
        let resumed = project(dir.path(), &events[split.saturating_sub(3)..]);
        assert_eq!(answers(&resumed), reference, "restart after {split} events");
    }

    // deleting the directory rebuilds the same views
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), &events);
    std::fs::remove_dir_all(dir.path()).unwrap();
    let rebuilt = project(dir.path(), &events).dump().unwrap();
    let fresh = tempfile::tempdir().unwrap();
    assert!(rebuilt == project(fresh.path(), &events).dump().unwrap());
    assert_eq!(answers(&project(dir.path(), &[])), reference);
}

#[test]
fn a_gap_in_seq_is_refused_and_changes_nothing() {
    let events = events();
    let dir = tempfile::tempdir().unwrap();
    let (mut p, views) = open(dir.path()).unwrap();
    p.apply_records(events[..5].iter().map(|e| e.as_slice()))
        .unwrap();
    let before = views.dump().unwrap();
    let err = p
        .apply_records(events[6..].iter().map(|e| e.as_slice()))
        .unwrap_err();
    assert!(
        matches!(
            err,
            ProjectionError::Gap {
                expected: 6,
                found: 7
            }
        ),
        "{err}"
    );
    assert!(views.dump().unwrap() == before);
    let err = p.apply_records([b"garbage".as_slice()]).unwrap_err();
    assert!(matches!(err, ProjectionError::Malformed { .. }), "{err}");
    assert!(views.dump().unwrap() == before);
}

/// The projected depth is the engine's book, level by level, checked every 250
/// commands of the standard mix (mostly moves, some crossing) and of the random
/// stream (every order kind).
#[test]
fn depth_is_the_engines_book_after_the_mix_and_a_random_stream() {
    let mix = tape_benches::standard_mix(10_000, 7);
    let random = tape_testkit::random::envelopes(&tape_testkit::random::random_steps(3, 5_000));
    for (name, envelopes, markets) in [
        (
            "mix",
            mix.setup
                .iter()
                .chain(&mix.commands)
                .cloned()
                .collect::<Vec<_>>(),
            vec![tape_benches::MARKET],
        ),
        ("random", random, tape_testkit::random::MARKETS.to_vec()),
    ] {
        let records: Vec<Vec<u8>> = envelopes
            .iter()
            .map(|e| codec::to_bincode(e).unwrap())
            .collect();
        let events = tape_engine::derive_all(
            records.iter().map(|r| r.as_slice()),
            CoreConfig::default(),
            u64::MAX,
        );
        let dir = tempfile::tempdir().unwrap();
        let (mut projector, views) = open(dir.path()).unwrap();
        let mut core = tape_core::Core::new(CoreConfig::default());
        let (mut out, mut next_event, mut compared) = (Vec::new(), 0, 0);
        for (i, e) in envelopes.iter().enumerate() {
            core.apply(e, &mut out);
            if (i + 1) % 250 != 0 && i + 1 != envelopes.len() {
                continue;
            }
            let upto = events[next_event..]
                .iter()
                .position(|b| {
                    EventEnvelope::parts(tape_schemas::EventRecord::envelope_of(b).unwrap())
                        .unwrap()
                        .command_offset
                        > i as u64
                })
                .map_or(events.len(), |n| next_event + n);
            projector
                .apply_records(events[next_event..upto].iter().map(|b| b.as_slice()))
                .unwrap();
            next_event = upto;
            for market in &markets {
                let symbol: Symbol = market.parse().unwrap();
                let [bids, asks] = core.depth(&symbol).unwrap();
                let depth = views.depth(&symbol, usize::MAX).unwrap();
                let norm = |v: &[(Dec, Dec)]| -> Vec<(String, String)> {
                    v.iter()
                        .map(|(p, q)| (p.0.normalize().to_string(), q.0.normalize().to_string()))
                        .collect()
                };
                compared += bids.len() + asks.len();
                for (side, projected, engine) in
                    [("bids", &depth.bids, &bids), ("asks", &depth.asks, &asks)]
                {
                    let (projected, engine) = (norm(projected), norm(engine));
                    let first = projected.iter().zip(&engine).position(|(a, b)| a != b);
                    assert!(
                        first.is_none() && projected.len() == engine.len(),
                        "{name} {market} {side} after {} commands: level {first:?} differs: projected {:?}, engine {:?} ({} vs {} levels)",
                        i + 1,
                        first.map(|i| &projected[i]),
                        first.map(|i| &engine[i]),
                        projected.len(),
                        engine.len()
                    );
                }
            }
        }
        assert!(compared > 50, "{name}: only {compared} levels compared");
    }
}
