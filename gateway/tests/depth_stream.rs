//! A client keeps a local book from `depthUpdates` alone — a snapshot, then deltas
//! chained by `prevSeq`/`seq`, each checked against its CRC32 — across 100,000
//! commands of the standard mix and a forced lag (the subscription is ended with
//! RESYNC; the client subscribes again), and ends equal to the server's book.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::Request;
use futures::StreamExt;
use rust_decimal::Decimal;
use tape_projections::Progress;
use tokio::sync::watch;

const LEVELS: usize = 10;

/// The local book: price -> quantity, per side.
#[derive(Default, PartialEq, Debug)]
struct Book {
    bids: BTreeMap<Decimal, Decimal>,
    asks: BTreeMap<Decimal, Decimal>,
}

impl Book {
    /// The client's own CRC32 (docs/frontend.md): best 10 asks then best 10 bids,
    /// price then quantity as sent, without '.' and leading zeros.
    fn checksum(&self, sent: &BTreeMap<Decimal, String>) -> u32 {
        let mut text = String::new();
        let put = |d: &Decimal, text: &mut String| {
            let s: String = sent[d].chars().filter(|c| *c != '.').collect();
            text.push_str(s.trim_start_matches('0'));
        };
        for (p, q) in self
            .asks
            .iter()
            .take(10)
            .chain(self.bids.iter().rev().take(10))
        {
            put(p, &mut text);
            put(q, &mut text);
        }
        crc32fast::hash(text.as_bytes())
    }
}

fn levels(v: &serde_json::Value, sent: &mut BTreeMap<Decimal, String>) -> Vec<(Decimal, Decimal)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let (p, q) = (
                l["price"].as_str().unwrap(),
                l["quantity"].as_str().unwrap(),
            );
            let (pd, qd): (Decimal, Decimal) = (p.parse().unwrap(), q.parse().unwrap());
            sent.insert(pd, p.to_string());
            sent.insert(qd, q.to_string());
            (pd, qd)
        })
        .collect()
}

const SUBSCRIBE: &str = r#"subscription { depthUpdates(market: "BENCH-USD", levels: 10) {
    kind prevSeq seq checksum bids { price quantity } asks { price quantity } } }"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_book_from_deltas_stays_equal_to_the_servers_through_a_forced_lag() {
    let support::Live {
        schema,
        views,
        mut projector,
        progress: progress_tx,
        changes,
        events,
        dir: _dir,
    } = support::live_over_mix(100_000, 7, 8);

    // The market exists before the client subscribes (a subscription to an unknown
    // market is refused).
    let chunks: Vec<&[Vec<u8>]> = events.chunks(40).collect();
    let applied = projector
        .apply_records(chunks[0].iter().map(Vec::as_slice))
        .unwrap();
    progress_tx.send_replace(Progress {
        next_seq: applied.next_seq,
        ..Progress::default()
    });

    // The client: applies every update, checks the chain and the checksum, and
    // subscribes again when told RESYNC. Ends when told `done`.
    let (done_tx, mut done) = watch::channel(false);
    let client = tokio::spawn(async move {
        let (mut book, mut sent) = (Book::default(), BTreeMap::new());
        let (mut updates, mut resyncs, mut last) = (0u64, 0u64, None::<u64>);
        'subscribe: loop {
            let mut stream = schema.execute_stream(Request::new(SUBSCRIBE));
            loop {
                let r = tokio::select! {
                    r = stream.next() => r.expect("the stream ends only after RESYNC"),
                    _ = done.changed() => return (book, updates, resyncs),
                };
                if let Some(e) = r.errors.first() {
                    let code = e.extensions.as_ref().and_then(|x| x.get("code")).cloned();
                    assert_eq!(code, Some(async_graphql::Value::from("RESYNC")), "{e:?}");
                    resyncs += 1;
                    assert!(stream.next().await.is_none(), "a RESYNC ends the stream");
                    continue 'subscribe;
                }
                let u = r.data.into_json().unwrap()["depthUpdates"].clone();
                let (bids, asks) = (levels(&u["bids"], &mut sent), levels(&u["asks"], &mut sent));
                match u["kind"].as_str().unwrap() {
                    "SNAPSHOT" => {
                        assert!(u["prevSeq"].is_null());
                        book = Book::default();
                    }
                    "DELTA" => {
                        assert_eq!(u["prevSeq"].as_u64(), last, "deltas chain by seq");
                    }
                    other => panic!("{other}"),
                }
                for (side, levels) in [(&mut book.bids, bids), (&mut book.asks, asks)] {
                    for (p, q) in levels {
                        if q.is_zero() {
                            assert!(side.remove(&p).is_some(), "a removal of a level it holds");
                        } else {
                            side.insert(p, q);
                        }
                    }
                }
                assert!(book.bids.len() <= LEVELS && book.asks.len() <= LEVELS);
                assert_eq!(
                    book.checksum(&sent),
                    u["checksum"].as_u64().unwrap() as u32,
                    "the local book proves itself after update {updates}"
                );
                last = u["seq"].as_u64();
                updates += 1;
            }
        }
    });

    // The projector: batches of 40 events; the client keeps up (the feed holds 8
    // batches), except once: the projector runs 200 batches ahead, then tells them
    // all at once.
    let mut sent_batches = 0;
    let mut held = Vec::new();
    for (i, batch) in chunks.iter().enumerate().skip(1) {
        let applied = projector
            .apply_records(batch.iter().map(Vec::as_slice))
            .unwrap();
        progress_tx.send_replace(Progress {
            next_seq: applied.next_seq,
            ..Progress::default()
        });
        if (1_000..1_200).contains(&i) {
            held.push(Arc::new(applied));
            continue;
        }
        for lagged in held.drain(..) {
            let _ = changes.send(lagged);
            sent_batches += 1;
        }
        while changes.len() > 2 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let _ = changes.send(Arc::new(applied));
        sent_batches += 1;
    }
    // Until the client has taken everything.
    while !changes.is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    done_tx.send(true).unwrap();
    let (book, updates, resyncs) = client.await.unwrap();
    assert!(sent_batches > 9_000, "{sent_batches} batches");
    assert!(updates > 5_000, "{updates} updates applied");
    assert!(resyncs >= 1, "the forced lag ended a subscription");
    let server = views
        .depth(&tape_benches::MARKET.parse().unwrap(), LEVELS)
        .unwrap();
    let server = Book {
        bids: server.bids.iter().map(|(p, q)| (p.0, q.0)).collect(),
        asks: server.asks.iter().map(|(p, q)| (p.0, q.0)).collect(),
    };
    assert_eq!(book, server, "the local book is the server's");
}
