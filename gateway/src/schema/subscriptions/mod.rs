//! Subscriptions, pushed as the projector applies each batch: one part per subject
//! (`market_data`: trades, depth, tickers, candles; `account`: the caller's ledger,
//! orders and wallet), merged into `Subscription`. The helpers here turn the
//! projector's batches into streams and resume a stream from a seq.

use super::*;

mod account;
mod market_data;

// Every subscription, one part per subject (a doc comment would land in the SDL).
#[derive(async_graphql::MergedSubscription, Default)]
pub struct Subscription(
    market_data::MarketDataSubscription,
    account::AccountSubscription,
);

/// Every batch the projector applies, from now on. A subscriber that falls so far
/// behind that batches were dropped for it gets one `RESYNC` error and its stream
/// ends: it is never served a stream with a hole in it.
fn changes(st: &AppState) -> impl Stream<Item = Result<Arc<Changes>>> + use<> {
    let rx = st.changes.subscribe();
    futures::stream::unfold(Some(rx), |rx| async move {
        let mut rx = rx?;
        match rx.recv().await {
            Ok(c) => Some((Ok(c), Some(rx))),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                tracing::info!(skipped = n, "a subscriber fell behind; ended with RESYNC");
                let message = format!(
                    "this subscription fell {n} batches behind and was ended; reload and subscribe again"
                );
                Some((Err(coded(Code::Resync, message)), None))
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
        }
    })
}

/// The items each batch yields, as one stream (ended by `RESYNC` as `changes` is).
fn each_batch<T, F>(st: &AppState, pick: F) -> impl Stream<Item = Result<T>> + use<T, F>
where
    T: Send + 'static,
    F: Fn(&Changes) -> Vec<T> + Send + 'static,
{
    changes(st).flat_map(move |c| {
        let items: Vec<Result<T>> = match c {
            Ok(c) => pick(&c).into_iter().map(Ok).collect(),
            Err(e) => vec![Err(e)],
        };
        futures::stream::iter(items)
    })
}

/// Items a resumed subscription replays at most: a client further behind reloads.
const RESUME_MAX: usize = 10_000;

fn too_far_behind() -> Error {
    coded(
        Code::Resync,
        format!("more than {RESUME_MAX} items were missed since fromSeq: reload with queries and subscribe again"),
    )
}

/// A resumed stream: `missed` (from the read models, oldest first), then `live`
/// without what `missed` already held (items at or below its last seq).
fn resumed<T, S>(missed: Vec<T>, live: S, seq: fn(&T) -> u64) -> impl Stream<Item = Result<T>>
where
    T: Send + 'static,
    S: Stream<Item = Result<T>> + Send + 'static,
{
    let after = missed.last().map_or(0, seq);
    futures::stream::iter(missed.into_iter().map(Ok)).chain(live.filter(move |item| {
        futures::future::ready(match item {
            Ok(item) => seq(item) > after,
            Err(_) => true,
        })
    }))
}

/// Up to `RESUME_MAX` rows oldest first, from pages the read models give newest
/// first, back to the first row whose seq is below `from_seq`.
fn newest_back_to<T>(
    from_seq: u64,
    seq: impl Fn(&T) -> u64,
    mut page: impl FnMut(Option<u64>) -> Result<views::Rows<T>>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let rows = page(cursor)?;
        let more = rows.has_more;
        for (at, row) in rows.rows {
            if seq(&row) < from_seq {
                out.reverse();
                return Ok(out);
            }
            if out.len() == RESUME_MAX {
                return Err(too_far_behind());
            }
            cursor = Some(at);
            out.push(row);
        }
        if !more {
            out.reverse();
            return Ok(out);
        }
    }
}
