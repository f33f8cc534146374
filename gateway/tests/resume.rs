//! Subscriptions that resume: a client follows `trades` and `ledger`, disconnects
//! while the projector goes on, and subscribes again with `fromSeq`; the missed items
//! come from the read models, then live ones follow, and in the end it has every
//! item exactly once, in order — the same as a query of the whole history.

mod support;

use std::sync::Arc;
use std::time::Duration;

use async_graphql::Request;
use futures::{Stream, StreamExt};
use tape_gateway::TapeSchema;
use tape_projections::{Changes, Progress, Projector};
use tape_schemas::*;
use tokio::sync::{broadcast, watch};

struct Feed {
    projector: Projector,
    progress: watch::Sender<Progress>,
    changes: broadcast::Sender<Arc<Changes>>,
}

impl Feed {
    /// Applies `events` in batches of 50 and tells the subscribers, each batch.
    async fn apply(&mut self, events: &[Vec<u8>]) {
        for batch in events.chunks(50) {
            let applied = self
                .projector
                .apply_records(batch.iter().map(Vec::as_slice))
                .unwrap();
            self.progress.send_replace(Progress {
                next_seq: applied.next_seq,
                ..Progress::default()
            });
            while self.changes.len() > 4 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let _ = self.changes.send(Arc::new(applied));
        }
        // Until the subscribers have taken everything.
        while !self.changes.is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Items of `stream` until none comes for 300 ms.
async fn drain(
    stream: &mut (impl Stream<Item = async_graphql::Response> + Unpin),
    field: &str,
    key: &str,
) -> Vec<u64> {
    let mut out = Vec::new();
    while let Ok(Some(r)) = tokio::time::timeout(Duration::from_millis(300), stream.next()).await {
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        out.push(r.data.into_json().unwrap()[field][key].as_u64().unwrap());
    }
    out
}

/// What the client has seen: trade seqs, ledger seqs and order payloads.
#[derive(Default)]
struct Seen {
    t: Vec<u64>,
    l: Vec<u64>,
    o: Vec<serde_json::Value>,
}

/// The streams' items until none gives one for 300 ms.
async fn drain_all(
    t: &mut (impl Stream<Item = async_graphql::Response> + Unpin),
    l: &mut (impl Stream<Item = async_graphql::Response> + Unpin),
    o: &mut (impl Stream<Item = async_graphql::Response> + Unpin),
    seen: &mut Seen,
) {
    let seq = |r: async_graphql::Response, field: &str| {
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        r.data.into_json().unwrap()[field]["seq"].as_u64().unwrap()
    };
    loop {
        tokio::select! {
            Some(r) = t.next() => seen.t.push(seq(r, "trades")),
            Some(r) = l.next() => seen.l.push(seq(r, "ledger")),
            Some(r) = o.next() => {
                assert!(r.errors.is_empty(), "{:?}", r.errors);
                seen.o.push(r.data.into_json().unwrap()["myOrders"].clone());
            }
            _ = tokio::time::sleep(Duration::from_millis(300)) => return,
        }
    }
}

fn setup() -> (TapeSchema, Feed, Vec<Vec<u8>>, tempfile::TempDir) {
    let live = support::live_over_mix(20_000, 3, 16);
    let feed = Feed {
        projector: live.projector,
        progress: live.progress,
        changes: live.changes,
    };
    (live.schema, feed, live.events, live.dir)
}

/// Every item's seq as a query of the whole history gives them, oldest first.
async fn history(
    schema: &TapeSchema,
    caller: Option<tape_gateway::auth::Caller>,
    query: &str,
    path: &str,
) -> Vec<u64> {
    let mut seqs = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let q = query.replace(
            "AFTER",
            &after
                .as_ref()
                .map(|a| format!(", after: \"{a}\""))
                .unwrap_or_default(),
        );
        let mut request = Request::new(q);
        if let Some(c) = caller {
            request = request.data(c);
        }
        let r = schema.execute(request).await;
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let data = r.data.into_json().unwrap();
        let conn = &data[path];
        for e in conn["edges"].as_array().unwrap() {
            seqs.push(e["node"]["seq"].as_u64().unwrap());
        }
        if conn["pageInfo"]["hasNextPage"] != true {
            return seqs;
        }
        after = conn["pageInfo"]["endCursor"].as_str().map(String::from);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trades_ledger_and_orders_resume_from_seq_with_nothing_lost_or_doubled() {
    let (schema, mut feed, events, _dir) = setup();
    let third = events.len() / 3;
    // The account busiest both before and while the client is away.
    let placed = |range: std::ops::Range<usize>| {
        let mut n: std::collections::HashMap<AccountId, usize> = Default::default();
        for e in &events[range] {
            if let Event::OrderAccepted { account, .. } =
                EventEnvelope::from_record(e).unwrap().event
            {
                *n.entry(account).or_default() += 1;
            }
        }
        n
    };
    let (before, away) = (placed(0..third), placed(third..2 * third));
    let account = *before
        .iter()
        .max_by_key(|(a, n)| ((**n).min(away.get(a).copied().unwrap_or(0)), a.0))
        .unwrap()
        .0;
    let caller = tape_gateway::auth::Caller::Trader {
        key: ApiKeyId(1),
        account,
    };
    let subscribe = |query: String| {
        let schema = schema.clone();
        schema.execute_stream(Request::new(query).data(caller))
    };
    let trades = |from: Option<u64>| {
        let from = from.map(|f| format!(", fromSeq: {f}")).unwrap_or_default();
        subscribe(format!(
            r#"subscription {{ trades(market: "BENCH-USD"{from}) {{ seq }} }}"#
        ))
    };
    let ledger = |from: Option<u64>| {
        let from = from.map(|f| format!("(fromSeq: {f})")).unwrap_or_default();
        subscribe(format!("subscription {{ ledger{from} {{ seq }} }}"))
    };
    let orders = |from: Option<u64>| {
        let from = from.map(|f| format!("(fromSeq: {f})")).unwrap_or_default();
        subscribe(format!(
            "subscription {{ myOrders{from} {{ id updatedSeq status filled }} }}"
        ))
    };

    // The market exists (a subscription to an unknown one is refused).
    feed.apply(&events[..10]).await;
    // Connected for the first third.
    let (mut t, mut l, mut o) = (trades(None), ledger(None), orders(None));
    // The first poll runs the resolver, which subscribes.
    assert!(drain(&mut t, "trades", "seq").await.is_empty());
    assert!(drain(&mut l, "ledger", "seq").await.is_empty());
    assert!(drain(&mut o, "myOrders", "id").await.is_empty());
    let first = events[10..third].to_vec();
    let applying = tokio::spawn(async move {
        feed.apply(&first).await;
        feed
    });
    let mut seen = Seen::default();
    while !applying.is_finished() {
        drain_all(&mut t, &mut l, &mut o, &mut seen).await;
    }
    let mut feed = applying.await.unwrap();
    drain_all(&mut t, &mut l, &mut o, &mut seen).await;
    assert!(
        seen.t.len() > 100 && !seen.l.is_empty(),
        "{} {}",
        seen.t.len(),
        seen.l.len()
    );
    let last_o = seen
        .o
        .iter()
        .map(|o| o["updatedSeq"].as_u64().unwrap())
        .max();
    assert!(last_o.is_some(), "the account's orders changed");
    drop((t, l, o));

    // Away for the second third.
    feed.apply(&events[third..2 * third]).await;

    // Back, from the seq after the last item seen; the rest goes on live.
    let (mut t, mut l, mut o) = (
        trades(seen.t.last().map(|s| s + 1)),
        ledger(seen.l.last().map(|s| s + 1)),
        orders(last_o.map(|s| s + 1)),
    );
    let resumed_at = seen.o.len();
    // The first poll runs the resolvers: what was missed comes at once.
    drain_all(&mut t, &mut l, &mut o, &mut seen).await;
    assert!(seen.o.len() > resumed_at, "orders changed while away");
    let rest = tokio::spawn(async move { feed.apply(&events[2 * third..]).await });
    while !rest.is_finished() {
        drain_all(&mut t, &mut l, &mut o, &mut seen).await;
    }
    rest.await.unwrap();
    drain_all(&mut t, &mut l, &mut o, &mut seen).await;

    let all_t = history(
        &schema,
        None,
        r#"{ trades(market: "BENCH-USD", newestFirst: false, first: 1000AFTER) { edges { node { seq } } pageInfo { hasNextPage endCursor } } }"#,
        "trades",
    )
    .await;
    let all_l = history(
        &schema,
        Some(caller),
        r#"{ ledger(newestFirst: false, first: 1000AFTER) { edges { node { seq } } pageInfo { hasNextPage endCursor } } }"#,
        "ledger",
    )
    .await;
    assert!(all_t.len() > 1_000, "{} trades", all_t.len());
    assert_eq!(seen.t, all_t, "every trade once, in order");
    assert_eq!(seen.l, all_l, "every ledger entry once, in order");

    // Orders are state: the last payload of each order is the order as it stands,
    // every order of the account was seen, and updates came in seq order.
    let seqs: Vec<u64> = seen
        .o
        .iter()
        .map(|o| o["updatedSeq"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] <= w[1]), "{seqs:?}");
    let mut last: std::collections::BTreeMap<u64, serde_json::Value> = Default::default();
    for o in &seen.o {
        last.insert(o["id"].as_u64().unwrap(), o.clone());
    }
    let r = schema
        .execute(
            Request::new(
                "{ orders(first: 1000) { edges { node { id updatedSeq status filled } } } }",
            )
            .data(caller),
        )
        .await;
    let data = r.data.into_json().unwrap();
    let now: std::collections::BTreeMap<u64, serde_json::Value> = data["orders"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["node"]["id"].as_u64().unwrap(), e["node"].clone()))
        .collect();
    assert!(now.len() > 5, "{} orders", now.len());
    assert_eq!(
        last, now,
        "each order's last update is the order as it stands"
    );
}
