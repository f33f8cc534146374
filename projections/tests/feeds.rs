//! The JSON feeds' routing. Over the standard mix (a busy book, many accounts): an
//! account's feed alone rebuilds its balances and each market's public feed alone
//! rebuilds its book. Over random command streams (every command kind, bad input,
//! forged and replayed credentials): no record names another account, every outcome
//! reaches the account whose key signed it, a topic has one record a seq.

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;
use tape_core::{Core, CoreConfig};
use tape_projections::feeds::{FeedRecord, FeedRouter};
use tape_schemas::*;
use tape_testkit::random::{envelopes, random_steps};

struct Run {
    core: Core,
    commands: Vec<CommandEnvelope>,
    events: Vec<EventEnvelope>,
    records: Vec<FeedRecord>,
}

fn random(seed: u64, steps: usize) -> Run {
    run(envelopes(&random_steps(seed, steps)))
}

fn mix(seed: u64) -> Run {
    let m = tape_benches::standard_mix(30_000, seed);
    run(m.setup.into_iter().chain(m.commands).collect())
}

fn run(commands: Vec<CommandEnvelope>) -> Run {
    let bytes: Vec<Vec<u8>> = commands
        .iter()
        .map(|c| codec::to_bincode(c).unwrap())
        .collect();
    let mut core = Core::new(CoreConfig::default());
    let mut out = Vec::new();
    for b in &bytes {
        core.apply_bytes(b, &mut out).unwrap();
    }
    let events: Vec<EventEnvelope> =
        tape_engine::derive_records(&bytes, CoreConfig::default(), 1_000)
            .iter()
            .map(|e| EventEnvelope::from_record(e).unwrap())
            .collect();
    let mut router = FeedRouter::new();
    let mut records = Vec::new();
    for env in &events {
        let command = matches!(env.event, Event::Outcome { .. })
            .then(|| &commands[env.command_offset as usize]);
        router.route(env, command, &mut records);
    }
    Run {
        core,
        commands,
        events,
        records,
    }
}

const SEEDS: [u64; 4] = [1, 2, 3, 4];
const STEPS: usize = 4_000;

#[test]
fn an_accounts_feed_alone_rebuilds_its_balances() {
    let scales = [("BENCH", 8), ("USD", 6)];
    for seed in SEEDS {
        let r = mix(seed);
        let mut folded: BTreeMap<(u64, String), (Decimal, Decimal)> = BTreeMap::new();
        let mut balance_records = 0;
        for rec in &r.records {
            if let FeedRecord::Account(a) = rec {
                if let AccountUpdate::Balance {
                    asset,
                    available,
                    held,
                    ..
                } = &a.update
                {
                    balance_records += 1;
                    let e = folded.entry((a.account.0, asset.to_string())).or_default();
                    e.0 += available.0;
                    e.1 += held.0;
                }
            }
        }
        assert!(balance_records > 1_000, "seed {seed}: {balance_records}");
        for account in 1..=tape_benches::ACCOUNTS {
            for (asset, scale) in scales {
                let b = r
                    .core
                    .balance(AccountId(account), &asset.parse().unwrap())
                    .unwrap();
                let want = (
                    Dec::from_minor(b.available.into(), scale).0,
                    Dec::from_minor(b.held.into(), scale).0,
                );
                let got = folded
                    .get(&(account, asset.to_string()))
                    .copied()
                    .unwrap_or_default();
                assert_eq!(got, want, "seed {seed}: account {account} {asset}");
            }
        }
    }
}

#[test]
fn a_markets_feed_alone_rebuilds_its_book() {
    for seed in SEEDS {
        let r = mix(seed);
        {
            let market = tape_benches::MARKET;
            let symbol: Symbol = market.parse().unwrap();
            // order -> (side, price, visible)
            let mut book: HashMap<OrderId, (Side, Decimal, Decimal)> = HashMap::new();
            let mut trades = 0;
            for rec in &r.records {
                let FeedRecord::Market(m) = rec else { continue };
                if m.market != symbol {
                    continue;
                }
                match &m.update {
                    MarketUpdate::OrderAdded {
                        order,
                        side,
                        price,
                        visible,
                    } => {
                        assert!(book.insert(*order, (*side, price.0, visible.0)).is_none());
                    }
                    MarketUpdate::OrderChanged {
                        order,
                        side,
                        price,
                        visible,
                        ..
                    } => {
                        let o = book
                            .get_mut(order)
                            .expect("a change of an order on the book");
                        *o = (*side, price.0, visible.0);
                    }
                    MarketUpdate::OrderRemoved { order } => {
                        book.remove(order)
                            .expect("a removal of an order on the book");
                    }
                    MarketUpdate::Trade {
                        maker_order,
                        quantity,
                        ..
                    } => {
                        trades += 1;
                        let o = book
                            .get_mut(maker_order)
                            .expect("a trade with an order on the book");
                        o.2 -= quantity.0;
                        assert!(!o.2.is_sign_negative(), "seed {seed}: {maker_order:?}");
                    }
                    // Perpetual prices: no book change (these streams have none).
                    MarketUpdate::Prices { .. }
                    | MarketUpdate::IndexStale { .. }
                    | MarketUpdate::Funding { .. } => {}
                }
            }
            assert!(trades > 1_000, "seed {seed} {market}: {trades} trades");
            let mut levels: [BTreeMap<Decimal, Decimal>; 2] = Default::default();
            for (side, price, visible) in book.values() {
                if !visible.is_zero() {
                    *levels[(*side == Side::Sell) as usize]
                        .entry(*price)
                        .or_default() += visible;
                }
            }
            let [bids, asks] = r.core.depth(&symbol).unwrap();
            let want = |v: Vec<(Dec, Dec)>| -> BTreeMap<Decimal, Decimal> {
                v.into_iter()
                    .map(|(p, q)| (p.0.normalize(), q.0.normalize()))
                    .collect()
            };
            let got = |m: &BTreeMap<Decimal, Decimal>| -> BTreeMap<Decimal, Decimal> {
                m.iter()
                    .map(|(p, q)| (p.normalize(), q.normalize()))
                    .collect()
            };
            assert_eq!(got(&levels[0]), want(bids), "seed {seed} {market} bids");
            assert_eq!(got(&levels[1]), want(asks), "seed {seed} {market} asks");
        }
    }
}

/// The account ids an event names.
fn accounts_named(event: &Event) -> Vec<AccountId> {
    let json = serde_json::to_value(event).unwrap();
    let mut found = Vec::new();
    fn walk(v: &serde_json::Value, found: &mut Vec<AccountId>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    if k.contains("account") || k == "available" || k == "held" {
                        if let Some(n) = v.as_u64() {
                            found.push(AccountId(n));
                        }
                    }
                    walk(v, found);
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, found)),
            _ => {}
        }
    }
    walk(&json, &mut found);
    found
}

#[test]
fn no_record_names_another_account_and_outcomes_reach_their_signer() {
    for seed in SEEDS {
        let r = random(seed, STEPS);
        let traders: HashMap<u64, AccountId> = r
            .events
            .iter()
            .filter_map(|e| match e.event {
                Event::ApiKeyCreated {
                    key,
                    role: ApiRole::Trader,
                    account,
                    ..
                } => Some((key.0, account.unwrap())),
                _ => None,
            })
            .collect();
        let mut outcomes = 0;
        let mut last_seq: HashMap<String, u64> = HashMap::new();
        for rec in &r.records {
            let topic = match rec {
                FeedRecord::Account(a) => format!("account.{}", a.account),
                FeedRecord::Market(m) => format!("market.{}", m.market),
            };
            let seq = rec.seq();
            let last = last_seq.insert(topic.clone(), seq).unwrap_or(0);
            assert!(
                seq > last,
                "seed {seed}: {topic} has seq {seq} after {last}"
            );
            let FeedRecord::Account(a) = rec else {
                continue;
            };
            match &a.update {
                AccountUpdate::Event(e) => {
                    for named in accounts_named(e) {
                        assert_eq!(named, a.account, "seed {seed}: {e:?} on {topic}");
                    }
                }
                AccountUpdate::Outcome { command, .. } => {
                    outcomes += 1;
                    let c = &r.commands[a.command_offset as usize];
                    assert_eq!(c.id, *command);
                    match c.auth {
                        Some(auth) => assert_eq!(traders[&auth.key.0], a.account, "seed {seed}"),
                        None => {
                            assert!(!c.command.is_admin());
                            assert_eq!(c.command.account(), Some(a.account));
                        }
                    }
                }
                AccountUpdate::Fill { .. } | AccountUpdate::Balance { .. } => {}
            }
        }
        assert!(outcomes > 100, "seed {seed}: {outcomes} outcomes routed");
    }
}
