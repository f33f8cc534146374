//! Resolvers. Each one parses its arguments, checks the caller may do it, reads a
//! view or submits a command, and maps the result; the rules live in the engine.

use std::sync::Arc;

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Error, ErrorExtensions, Object, OutputType, Result, Subscription};
use futures::{Stream, StreamExt};
use tape_projections::{self as views, *};
use tape_schemas::{self as wire, *};

use crate::auth::{self, Caller};
use crate::error::Code;
use crate::types::*;
// The GraphQL types named like the wire and view types they show win over the
// globs; those are `wire::…` and `views::…` here.
use crate::types::{
    BracketReport, Candle, Depth, EntryKind, EquityPoint, LedgerEntry, MarketStatus, OrderStatus,
    Side, SlicedReport, Ticker, TimeInForce,
};
use crate::AppState;

mod account;
mod admin;
mod commands;
mod custody;
mod liabilities;
mod market_data;
mod orders;
mod subscriptions;
mod trading;

use commands::{parse_command_id, receipt, submit, submit_admin, submit_batch};
pub use subscriptions::Subscription;

pub type TapeSchema = async_graphql::Schema<Query, Mutation, Subscription>;

// Every query, one part per subject (a doc comment would land in the SDL).
#[derive(async_graphql::MergedObject, Default)]
pub struct Query(
    account::AccountQuery,
    market_data::MarketDataQuery,
    orders::OrdersQuery,
    custody::CustodyQuery,
    admin::AdminQuery,
    liabilities::LiabilitiesQuery,
);

// Every mutation, one part per subject.
#[derive(async_graphql::MergedObject, Default)]
pub struct Mutation(
    trading::TradingMutation,
    custody::CustodyMutation,
    admin::AdminMutation,
);

/// A GraphQL error with a machine-readable `extensions.code`.
pub fn coded(code: Code, message: impl Into<String>) -> Error {
    Error::new(message.into()).extend_with(|_, e| e.set("code", code.as_str()))
}

fn store(e: ProjectionError) -> Error {
    coded(Code::Internal, format!("read models: {e}"))
}

fn state<'a>(ctx: &Context<'a>) -> &'a Arc<AppState> {
    ctx.data_unchecked::<Arc<AppState>>()
}

fn caller(ctx: &Context<'_>) -> Caller {
    ctx.data_opt::<Caller>()
        .copied()
        .unwrap_or(Caller::Anonymous)
}

/// The account a read is about: a trader's own (the default), or any one for
/// auditors and admins (who must name it).
fn readable(ctx: &Context<'_>, account: Option<u64>) -> Result<AccountId> {
    match (caller(ctx), account) {
        (Caller::Anonymous, _) => Err(coded(
            Code::Unauthenticated,
            "this needs an API key: send `Authorization: Bearer <token>`",
        )),
        (Caller::Trader { account: own, .. }, None) => Ok(own),
        (Caller::Trader { account: own, .. }, Some(a)) if a == own.0 => Ok(own),
        (Caller::Trader { account: own, .. }, Some(a)) => Err(coded(
            Code::Forbidden,
            format!("this key reads and trades account {own} only, not {a}"),
        )),
        (_, Some(a)) => Ok(AccountId(a)),
        (_, None) => Err(coded(Code::BadInput, "name the `account`")),
    }
}

/// The account a trading command acts for: a trader's own, or any for admins.
fn tradable(ctx: &Context<'_>, account: Option<u64>) -> Result<AccountId> {
    if let Caller::Auditor { .. } = caller(ctx) {
        return Err(coded(Code::Forbidden, "auditor keys are read-only"));
    }
    readable(ctx, account)
}

/// The caller's key must be of a role `allowed` accepts (`who` names them).
fn role(ctx: &Context<'_>, who: &str, allowed: impl Fn(&Caller) -> bool) -> Result<()> {
    match caller(ctx) {
        c if allowed(&c) => Ok(()),
        Caller::Anonymous => Err(coded(
            Code::Unauthenticated,
            format!("this needs {who} API key: send `Authorization: Bearer <token>`"),
        )),
        _ => Err(coded(Code::Forbidden, format!("this needs {who} key"))),
    }
}

fn admin(ctx: &Context<'_>) -> Result<()> {
    role(ctx, "an admin", |c| matches!(c, Caller::Admin { .. }))
}

/// Admin and auditor keys: those that read every account.
fn staff(ctx: &Context<'_>) -> Result<()> {
    role(ctx, "an admin or auditor", |c| {
        matches!(c, Caller::Admin { .. } | Caller::Auditor { .. })
    })
}

fn market_symbol(ctx: &Context<'_>, symbol: &str) -> Result<Symbol> {
    let views = &state(ctx).views;
    let unknown = || {
        let known: Vec<String> = views
            .markets()
            .unwrap_or_default()
            .iter()
            .map(|m| m.spec.symbol.to_string())
            .collect();
        coded(
            Code::UnknownMarket,
            format!(
                "unknown market \"{symbol}\" (markets: {})",
                known.join(", ")
            ),
        )
    };
    let s: Symbol = symbol.parse().map_err(|_| unknown())?;
    match views.market(&s).map_err(store)? {
        Some(_) => Ok(s),
        None => Err(unknown()),
    }
}

/// An optional market filter: `None` for all, else a known market.
fn market_filter(ctx: &Context<'_>, symbol: Option<&str>) -> Result<Option<Symbol>> {
    symbol.map(|m| market_symbol(ctx, m)).transpose()
}

/// An optional client order id, at most 36 bytes.
fn client_order_id(id: Option<&str>) -> Result<Option<ClientOrderId>> {
    id.map(|c| short("clientOrderId", c)).transpose()
}

fn asset_code(ctx: &Context<'_>, code: &str) -> Result<AssetCode> {
    let a: AssetCode = code
        .parse()
        .map_err(|_| coded(Code::UnknownAsset, format!("unknown asset \"{code}\"")))?;
    match state(ctx).views.asset(&a).map_err(store)? {
        Some(_) => Ok(a),
        None => Err(coded(
            Code::UnknownAsset,
            format!("unknown asset \"{code}\""),
        )),
    }
}

fn short<const N: usize>(what: &str, s: &str) -> Result<ShortStr<N>> {
    s.parse().map_err(|_| {
        coded(
            Code::BadInput,
            format!("{what} must be 1 to {N} printable ASCII characters"),
        )
    })
}

fn page(first: Option<i32>, after: Option<String>, newest_first: bool) -> Result<Page> {
    let first = first.unwrap_or(50);
    if !(0..=PAGE_ROWS_MAX as i32).contains(&first) {
        return Err(coded(
            Code::BadInput,
            format!("`first` must be between 0 and {PAGE_ROWS_MAX}"),
        ));
    }
    let cursor = after
        .map(|c| {
            c.parse::<u64>()
                .map_err(|_| coded(Code::BadInput, format!("`after` is not a cursor: \"{c}\"")))
        })
        .transpose()?;
    Ok(Page {
        newest_first,
        cursor,
        first: first as usize,
        ..Page::default()
    })
}

/// Narrows a page to ids (or `seq`s) in `[from, to]`.
fn id_range(mut p: Page, from: Option<u64>, to: Option<u64>) -> Page {
    p.from_id = from.unwrap_or(0);
    p.to_id = to.unwrap_or(u64::MAX);
    p
}

fn connection<V, T: OutputType>(
    rows: Rows<V>,
    had_cursor: bool,
    map: impl Fn(V) -> T,
) -> Connection<String, T> {
    let mut c = Connection::new(had_cursor, rows.has_more);
    c.edges.extend(
        rows.rows
            .into_iter()
            .map(|(id, v)| Edge::new(id.to_string(), map(v))),
    );
    c
}

fn dec_opt(d: Option<Decimal>) -> Option<Dec> {
    d.map(|x| x.0)
}

fn required(what: &str, kind: &str, v: Option<Decimal>) -> Result<Dec> {
    v.map(|x| x.0)
        .ok_or_else(|| coded(Code::BadInput, format!("a {kind} order needs `{what}`")))
}

fn size(kind: &str, quantity: Option<Decimal>, quote: Option<Decimal>) -> Result<MarketSize> {
    match (quantity, quote) {
        (Some(q), None) => Ok(MarketSize::Base(q.0)),
        (None, Some(q)) => Ok(MarketSize::Quote(q.0)),
        _ => Err(coded(
            Code::BadInput,
            format!("a {kind} order needs exactly one of `quantity` and `quoteQuantity`"),
        )),
    }
}

fn time_in_force(tif: TimeInForce, expires_at_ms: Option<u64>) -> Result<wire::TimeInForce> {
    Ok(match (tif, expires_at_ms) {
        (TimeInForce::Gtc, None) => wire::TimeInForce::Gtc,
        (TimeInForce::Ioc, None) => wire::TimeInForce::Ioc,
        (TimeInForce::Fok, None) => wire::TimeInForce::Fok,
        (TimeInForce::Gtd, Some(expires_at_ms)) => wire::TimeInForce::Gtd { expires_at_ms },
        (TimeInForce::Gtd, None) => {
            return Err(coded(Code::BadInput, "timeInForce GTD needs `expiresAtMs`"))
        }
        (_, Some(_)) => {
            return Err(coded(
                Code::BadInput,
                "`expiresAtMs` goes with timeInForce GTD only",
            ))
        }
    })
}
