//! Balances at a point and account statements, folded from the events log's
//! postings. Every balance change is a posting, so these are the balances the log
//! proves; run `verify` first to know the log is the one the commands derive.

use std::collections::BTreeMap;
use std::time::Duration;

use rust_decimal::Decimal;
use tape_log::{Log, LogReader};
use tape_schemas::*;

/// Where to stop (inclusive): an event `seq`, or the engine time of the events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    Seq(u64),
    TimeMs(u64),
}

impl Point {
    /// True once `env` is past this point.
    fn is_before(&self, env: &EventEnvelope) -> bool {
        match *self {
            Point::Seq(s) => env.seq > s,
            Point::TimeMs(t) => env.time_ms > t,
        }
    }

    /// True while `env` is before this point (for a statement's start).
    fn is_after(&self, env: &EventEnvelope) -> bool {
        match *self {
            Point::Seq(s) => env.seq < s,
            Point::TimeMs(t) => env.time_ms < t,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StatementError {
    #[error(transparent)]
    Log(#[from] tape_log::LogError),
    #[error("event at offset {offset} does not decode: {what}")]
    Malformed { offset: u64, what: String },
}

/// One account's balance of one asset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Holding {
    pub available: Decimal,
    pub held: Decimal,
}

impl Holding {
    pub fn total(&self) -> Decimal {
        self.available + self.held
    }
}

/// An account's balances at a point of the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BalancesAt {
    /// The last event folded in (0 if none).
    pub seq: u64,
    pub time_ms: u64,
    /// By asset code.
    pub holdings: BTreeMap<String, Holding>,
}

/// One posting as the account sees it, with the balances after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementLine {
    pub seq: u64,
    pub time_ms: u64,
    pub asset: AssetCode,
    /// deposit, withdrawal_hold, withdrawal, withdrawal_release, order_hold,
    /// order_release, trade, fee; on perpetuals realized_pnl, funding,
    /// margin_hold and margin_release.
    pub kind: &'static str,
    /// The order, trade or withdrawal id.
    pub reference: Option<u64>,
    pub available_change: Decimal,
    pub held_change: Decimal,
    pub available: Decimal,
    pub held: Decimal,
}

fn kind(from: Party, to: Party, cause: Cause) -> &'static str {
    match cause {
        Cause::Deposit => "deposit",
        Cause::Withdrawal(_) => match (from, to) {
            (Party::Available(_), Party::Held(_)) => "withdrawal_hold",
            (_, Party::World) => "withdrawal",
            _ => "withdrawal_release",
        },
        Cause::Order(_) => match to {
            Party::Held(_) => "order_hold",
            _ => "order_release",
        },
        Cause::Trade(_) if to == Party::Fees => "fee",
        Cause::Funding(_) => "funding",
        Cause::Trade(_) | Cause::Position(_)
            if matches!(from, Party::Clearing(_)) || matches!(to, Party::Clearing(_)) =>
        {
            "realized_pnl"
        }
        Cause::Trade(_) | Cause::Position(_) if matches!(to, Party::Held(_)) => "margin_hold",
        Cause::Trade(_) | Cause::Position(_)
            if matches!(from, Party::Held(_)) && matches!(to, Party::Available(_)) =>
        {
            "margin_release"
        }
        Cause::Trade(_) | Cause::Position(_) => "trade",
    }
}

fn reference(cause: Cause) -> Option<u64> {
    match cause {
        Cause::Deposit | Cause::Position(_) | Cause::Funding(_) => None,
        Cause::Withdrawal(w) => Some(w.0),
        Cause::Order(o) => Some(o.0),
        Cause::Trade(t) => Some(t.0),
    }
}

/// Walks the events log from the start, calling `each` for every envelope up to
/// `until` (inclusive).
async fn walk<E: Log>(
    events: &E,
    until: Option<Point>,
    mut each: impl FnMut(&EventEnvelope),
) -> Result<(), StatementError> {
    let end = events.end_offset().await?;
    let mut reader = events.reader(0).await?;
    let mut offset = 0;
    // Under the fencing rule; copies of earlier events (left by a deposed engine)
    // count once.
    let mut filter = EventFilter::new(1, 0);
    while offset < end {
        let batch = reader.next_batch(10_000, Duration::from_secs(30)).await?;
        if batch.is_empty() {
            break;
        }
        for r in batch {
            offset = r.offset + 1;
            let Some(env) = filter
                .take(&r.bytes)
                .map_err(|e| StatementError::Malformed {
                    offset: r.offset,
                    what: e.to_string(),
                })?
            else {
                continue;
            };
            if until.is_some_and(|u| u.is_before(&env)) {
                return Ok(());
            }
            each(&env);
        }
    }
    Ok(())
}

/// Applies a posting to `account`'s holdings; returns the changes to (available,
/// held) when the account is a party.
fn apply(
    holdings: &mut BTreeMap<String, Holding>,
    account: AccountId,
    asset: &AssetCode,
    from: Party,
    to: Party,
    amount: Decimal,
) -> Option<(Decimal, Decimal)> {
    let mut change = (Decimal::ZERO, Decimal::ZERO);
    let mut touched = false;
    for (party, sign) in [(from, -Decimal::ONE), (to, Decimal::ONE)] {
        match party {
            Party::Available(a) if a == account => {
                change.0 += sign * amount;
                touched = true;
            }
            Party::Held(a) if a == account => {
                change.1 += sign * amount;
                touched = true;
            }
            _ => {}
        }
    }
    if !touched {
        return None;
    }
    let h = holdings.entry(asset.to_string()).or_default();
    h.available += change.0;
    h.held += change.1;
    Some(change)
}

/// `account`'s balances after the events up to `at`.
pub async fn balances_at<E: Log>(
    events: &E,
    account: AccountId,
    at: Point,
) -> Result<BalancesAt, StatementError> {
    let mut out = BalancesAt::default();
    walk(events, Some(at), |env| {
        out.seq = env.seq;
        out.time_ms = env.time_ms;
        if let Event::Posting {
            asset,
            from,
            to,
            amount,
            ..
        } = &env.event
        {
            apply(&mut out.holdings, account, asset, *from, *to, amount.0);
        }
    })
    .await?;
    Ok(out)
}

/// Every posting of `account` from `from` to `to` (both inclusive), each with the
/// balances after it; the balances before `from` are the opening balances returned
/// with the lines.
pub async fn statement<E: Log>(
    events: &E,
    account: AccountId,
    from: Option<Point>,
    to: Option<Point>,
) -> Result<(BTreeMap<String, Holding>, Vec<StatementLine>), StatementError> {
    let mut holdings = BTreeMap::new();
    let mut opening = None;
    let mut lines = Vec::new();
    walk(events, to, |env| {
        let before_start = from.is_some_and(|f| f.is_after(env));
        if !before_start && opening.is_none() {
            opening = Some(holdings.clone());
        }
        let Event::Posting {
            asset,
            from: src,
            to: dst,
            amount,
            cause,
        } = &env.event
        else {
            return;
        };
        let Some((da, dh)) = apply(&mut holdings, account, asset, *src, *dst, amount.0) else {
            return;
        };
        if before_start {
            return;
        }
        let h = holdings[asset.as_str()];
        lines.push(StatementLine {
            seq: env.seq,
            time_ms: env.time_ms,
            asset: *asset,
            kind: kind(*src, *dst, *cause),
            reference: reference(*cause),
            available_change: da,
            held_change: dh,
            available: h.available,
            held: h.held,
        });
    })
    .await?;
    Ok((opening.unwrap_or(holdings), lines))
}
