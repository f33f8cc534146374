//! Resolvers. Each one parses its arguments, checks the caller may do it, reads a
//! view or submits a command, and maps the result; the rules live in the engine.

use std::sync::Arc;

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Error, ErrorExtensions, Object, OutputType, Result, Subscription};
use futures::{Stream, StreamExt};
use tape_projections::*;
use tape_schemas::*;

use crate::auth::{self, Caller};
use crate::types::*;
use crate::AppState;

pub type TapeSchema = async_graphql::Schema<Query, Mutation, SubscriptionRoot>;

/// A GraphQL error with a machine-readable `extensions.code`.
pub fn coded(code: &'static str, message: impl Into<String>) -> Error {
    Error::new(message.into()).extend_with(|_, e| e.set("code", code))
}

fn store(e: ProjectionError) -> Error {
    coded("INTERNAL", format!("read models: {e}"))
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
            "UNAUTHENTICATED",
            "this needs an API key: send `Authorization: Bearer <token>`",
        )),
        (Caller::Trader { account: own, .. }, None) => Ok(own),
        (Caller::Trader { account: own, .. }, Some(a)) if a == own.0 => Ok(own),
        (Caller::Trader { account: own, .. }, Some(a)) => Err(coded(
            "FORBIDDEN",
            format!("this key reads and trades account {own} only, not {a}"),
        )),
        (_, Some(a)) => Ok(AccountId(a)),
        (_, None) => Err(coded("BAD_INPUT", "name the `account`")),
    }
}

/// The account a trading command acts for: a trader's own, or any for admins.
fn tradable(ctx: &Context<'_>, account: Option<u64>) -> Result<AccountId> {
    if let Caller::Auditor { .. } = caller(ctx) {
        return Err(coded("FORBIDDEN", "auditor keys are read-only"));
    }
    readable(ctx, account)
}

fn admin(ctx: &Context<'_>) -> Result<()> {
    match caller(ctx) {
        Caller::Admin { .. } => Ok(()),
        Caller::Anonymous => Err(coded(
            "UNAUTHENTICATED",
            "this needs an admin API key: send `Authorization: Bearer <token>`",
        )),
        _ => Err(coded("FORBIDDEN", "this needs an admin key")),
    }
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
            "UNKNOWN_MARKET",
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

fn asset_code(ctx: &Context<'_>, code: &str) -> Result<AssetCode> {
    let a: AssetCode = code
        .parse()
        .map_err(|_| coded("UNKNOWN_ASSET", format!("unknown asset \"{code}\"")))?;
    match state(ctx).views.asset(&a).map_err(store)? {
        Some(_) => Ok(a),
        None => Err(coded("UNKNOWN_ASSET", format!("unknown asset \"{code}\""))),
    }
}

fn short<const N: usize>(what: &str, s: &str) -> Result<ShortStr<N>> {
    s.parse().map_err(|_| {
        coded(
            "BAD_INPUT",
            format!("{what} must be 1 to {N} printable ASCII characters"),
        )
    })
}

fn page(first: Option<i32>, after: Option<String>, newest_first: bool) -> Result<Page> {
    let first = first.unwrap_or(50);
    if !(0..=PAGE_ROWS_MAX as i32).contains(&first) {
        return Err(coded(
            "BAD_INPUT",
            format!("`first` must be between 0 and {PAGE_ROWS_MAX}"),
        ));
    }
    let cursor = after
        .map(|c| {
            c.parse::<u64>()
                .map_err(|_| coded("BAD_INPUT", format!("`after` is not a cursor: \"{c}\"")))
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

/// Values `amount` of `asset` in `quote` at `time_ms` (1-hour close) or at the last
/// trade (`None`), rounded down to the quote's scale.
fn value_of(
    views: &Views,
    markets: &[MarketView],
    asset: &AssetCode,
    amount: Dec,
    quote: &AssetCode,
    time_ms: Option<u64>,
) -> Result<Option<Dec>> {
    let scale = views
        .asset(quote)
        .map_err(store)?
        .map_or(18, |a| u32::from(a.scale));
    let round = |v: Option<Dec>| {
        v.map(|v| {
            Dec(v
                .0
                .round_dp_with_strategy(scale, rust_decimal::RoundingStrategy::ToZero))
        })
    };
    let Some(time_ms) = time_ms else {
        return Ok(round(views.value_in(asset, amount, quote, markets)));
    };
    let mut priced = Vec::new();
    for m in markets {
        let pair = (m.spec.base == *asset && m.spec.quote == *quote)
            || (m.spec.base == *quote && m.spec.quote == *asset);
        if pair {
            let mut m = m.clone();
            m.last_price = views.close_at(&m.spec.symbol, time_ms).map_err(store)?;
            priced.push(m);
        }
    }
    Ok(round(views.value_in(asset, amount, quote, &priced)))
}

pub struct Query;

#[Object]
impl Query {
    /// Who the token belongs to.
    async fn me(&self, ctx: &Context<'_>) -> Me {
        match caller(ctx) {
            Caller::Anonymous => Me {
                role: None,
                key_id: None,
                account: None,
            },
            Caller::Trader { key, account } => Me {
                role: Some(GRole::Trader),
                key_id: Some(key.0),
                account: Some(account.0),
            },
            Caller::Auditor { key } => Me {
                role: Some(GRole::Auditor),
                key_id: Some(key.0),
                account: None,
            },
            Caller::Admin { key } => Me {
                role: Some(GRole::Admin),
                key_id: key.map(|k| k.0),
                account: None,
            },
        }
    }

    async fn assets(&self, ctx: &Context<'_>) -> Result<Vec<Asset>> {
        Ok(state(ctx)
            .views
            .assets()
            .map_err(store)?
            .into_iter()
            .map(Asset::from)
            .collect())
    }

    async fn markets(&self, ctx: &Context<'_>) -> Result<Vec<Market>> {
        Ok(state(ctx)
            .views
            .markets()
            .map_err(store)?
            .into_iter()
            .map(Market)
            .collect())
    }

    async fn market(&self, ctx: &Context<'_>, symbol: String) -> Result<Market> {
        let s = market_symbol(ctx, &symbol)?;
        let m = state(ctx).views.market(&s).map_err(store)?;
        m.map(Market)
            .ok_or_else(|| coded("UNKNOWN_MARKET", format!("unknown market \"{symbol}\"")))
    }

    /// The last 24 hours of a market.
    async fn ticker(&self, ctx: &Context<'_>, market: String) -> Result<TickerObject> {
        let s = market_symbol(ctx, &market)?;
        let t = state(ctx).views.ticker(&s).map_err(store)?;
        t.map(TickerObject::from)
            .ok_or_else(|| coded("UNKNOWN_MARKET", format!("unknown market \"{market}\"")))
    }

    /// The aggregated book: `levels` best price levels per side (at most 1,000).
    async fn depth(
        &self,
        ctx: &Context<'_>,
        market: String,
        #[graphql(default = 20)] levels: u32,
    ) -> Result<DepthObject> {
        let s = market_symbol(ctx, &market)?;
        let d = state(ctx)
            .views
            .depth(&s, levels.min(1_000) as usize)
            .map_err(store)?;
        Ok(DepthObject::new(&s, d))
    }

    /// Candles starting in `[fromMs, toMs]`, oldest first.
    async fn candles(
        &self,
        ctx: &Context<'_>,
        market: String,
        interval: CandleInterval,
        #[graphql(default)] from_ms: u64,
        to_ms: Option<u64>,
        #[graphql(default = 500)] limit: u32,
    ) -> Result<Vec<CandleObject>> {
        let s = market_symbol(ctx, &market)?;
        let name = INTERVALS_MS[interval.index()].0;
        let rows = state(ctx)
            .views
            .candles(
                &s,
                interval.index(),
                from_ms,
                to_ms.unwrap_or(u64::MAX),
                (limit as usize).min(PAGE_ROWS_MAX),
            )
            .map_err(store)?;
        Ok(rows
            .into_iter()
            .map(|c| CandleObject::new(&s, name, c))
            .collect())
    }

    /// The public tape of a market.
    #[allow(clippy::too_many_arguments)]
    async fn trades(
        &self,
        ctx: &Context<'_>,
        market: String,
        from_ms: Option<u64>,
        to_ms: Option<u64>,
        from_id: Option<u64>,
        to_id: Option<u64>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(default = true)] newest_first: bool,
    ) -> Result<Connection<String, PublicTrade>> {
        let s = market_symbol(ctx, &market)?;
        let p = id_range(page(first, after, newest_first)?, from_id, to_id);
        let filter = TradeFilter {
            market: None,
            from_ms,
            to_ms,
        };
        let rows = state(ctx)
            .views
            .market_trades(&s, &filter, &p)
            .map_err(store)?;
        Ok(connection(rows, p.cursor.is_some(), PublicTrade::from))
    }

    /// Balances per asset, each valued in `valueIn` at the last price.
    async fn portfolio(
        &self,
        ctx: &Context<'_>,
        account: Option<u64>,
        value_in: Option<String>,
    ) -> Result<Portfolio> {
        let account = readable(ctx, account)?;
        let views = &state(ctx).views;
        let quote = value_in
            .as_deref()
            .map(|q| asset_code(ctx, q))
            .transpose()?;
        let markets = views.markets().map_err(store)?;
        let mut total = Some(Dec::default());
        let mut balances = Vec::new();
        for w in views.wallets(account).map_err(store)? {
            let sum = Dec(w.available.0 + w.held.0);
            let value = match &quote {
                Some(q) => value_of(views, &markets, &w.asset, sum, q, None)?,
                None => None,
            };
            total = match (total, value) {
                (Some(t), Some(v)) => Some(Dec(t.0 + v.0)),
                _ => None,
            };
            balances.push(Balance {
                asset: w.asset.to_string(),
                available: Decimal(w.available),
                held: Decimal(w.held),
                total: Decimal(sum),
                value: value.map(Decimal),
            });
        }
        Ok(Portfolio {
            account: account.0,
            value_in: quote.map(|q| q.to_string()),
            balances,
            total_value: quote.and(total).map(Decimal),
        })
    }

    /// The account's transaction history: deposits, withdrawals, fills, fees.
    #[allow(clippy::too_many_arguments)]
    async fn ledger(
        &self,
        ctx: &Context<'_>,
        account: Option<u64>,
        asset: Option<String>,
        kind: Option<GEntryKind>,
        from_ms: Option<u64>,
        to_ms: Option<u64>,
        from_seq: Option<u64>,
        to_seq: Option<u64>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(default = true)] newest_first: bool,
    ) -> Result<Connection<String, LedgerEntryObject>> {
        let account = readable(ctx, account)?;
        let p = id_range(page(first, after, newest_first)?, from_seq, to_seq);
        let filter = EntryFilter {
            asset: asset.as_deref().map(|a| asset_code(ctx, a)).transpose()?,
            kind: kind.map(EntryKind::from),
            from_ms,
            to_ms,
        };
        let rows = state(ctx)
            .views
            .ledger(account, &filter, &p)
            .map_err(store)?;
        Ok(connection(
            rows,
            p.cursor.is_some(),
            LedgerEntryObject::from,
        ))
    }

    /// Hourly totals, valued in `valueIn` at each hour's close.
    async fn equity_history(
        &self,
        ctx: &Context<'_>,
        account: Option<u64>,
        value_in: String,
        #[graphql(default)] from_ms: u64,
        to_ms: Option<u64>,
    ) -> Result<Vec<EquityPointObject>> {
        let account = readable(ctx, account)?;
        let quote = asset_code(ctx, &value_in)?;
        let views = &state(ctx).views;
        let markets = views.markets().map_err(store)?;
        let points = views
            .equity_history(account, from_ms, to_ms.unwrap_or(u64::MAX))
            .map_err(store)?;
        let mut out = Vec::with_capacity(points.len());
        for p in points {
            let mut value = Some(Dec::default());
            let end_ms = p.time_ms + 3_599_999;
            for (asset, amount) in &p.balances {
                let v = value_of(views, &markets, asset, *amount, &quote, Some(end_ms))?;
                value = match (value, v) {
                    (Some(t), Some(v)) => Some(Dec(t.0 + v.0)),
                    _ => None,
                };
            }
            out.push(EquityPointObject {
                time_ms: p.time_ms,
                balances: p
                    .balances
                    .iter()
                    .map(|(a, x)| AssetAmount {
                        asset: a.to_string(),
                        amount: Decimal(*x),
                    })
                    .collect(),
                value: value.map(Decimal),
            });
        }
        Ok(out)
    }

    async fn order(&self, ctx: &Context<'_>, id: u64) -> Result<Option<Order>> {
        let Some(o) = state(ctx).views.order(OrderId(id)).map_err(store)? else {
            return Ok(None);
        };
        readable(ctx, Some(o.account.0))?;
        Ok(Some(Order(o)))
    }

    /// Open orders and order history, filtered, newest (default) or oldest first.
    #[allow(clippy::too_many_arguments)]
    async fn orders(
        &self,
        ctx: &Context<'_>,
        account: Option<u64>,
        market: Option<String>,
        side: Option<GSide>,
        #[graphql(default)] status: Vec<GOrderStatus>,
        #[graphql(default)] open_only: bool,
        from_ms: Option<u64>,
        to_ms: Option<u64>,
        from_id: Option<u64>,
        to_id: Option<u64>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(default = true)] newest_first: bool,
    ) -> Result<Connection<String, Order>> {
        let account = readable(ctx, account)?;
        let p = id_range(page(first, after, newest_first)?, from_id, to_id);
        let filter = OrderFilter {
            market: market
                .as_deref()
                .map(|m| market_symbol(ctx, m))
                .transpose()?,
            side: side.map(Side::from),
            statuses: status.into_iter().map(OrderStatus::from).collect(),
            open_only,
            from_ms,
            to_ms,
        };
        let rows = state(ctx)
            .views
            .orders(account, &filter, &p)
            .map_err(store)?;
        Ok(connection(rows, p.cursor.is_some(), Order))
    }

    /// The account's own trades (maker or taker).
    #[allow(clippy::too_many_arguments)]
    async fn my_trades(
        &self,
        ctx: &Context<'_>,
        account: Option<u64>,
        market: Option<String>,
        from_ms: Option<u64>,
        to_ms: Option<u64>,
        from_id: Option<u64>,
        to_id: Option<u64>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(default = true)] newest_first: bool,
    ) -> Result<Connection<String, Trade>> {
        let account = readable(ctx, account)?;
        let p = id_range(page(first, after, newest_first)?, from_id, to_id);
        let filter = TradeFilter {
            market: market
                .as_deref()
                .map(|m| market_symbol(ctx, m))
                .transpose()?,
            from_ms,
            to_ms,
        };
        let rows = state(ctx)
            .views
            .account_trades(account, &filter, &p)
            .map_err(store)?;
        Ok(connection(rows, p.cursor.is_some(), Trade))
    }

    /// A sliced order: its children and their fills together.
    async fn sliced_order(
        &self,
        ctx: &Context<'_>,
        parent: u64,
    ) -> Result<Option<SlicedReportObject>> {
        let views = &state(ctx).views;
        let Some(r) = views.sliced(OrderId(parent)).map_err(store)? else {
            return Ok(None);
        };
        readable(ctx, Some(r.account.0))?;
        let mut children = Vec::new();
        let (mut filled, mut filled_quote, mut fees, mut open) =
            (Dec::default(), Dec::default(), Dec::default(), 0);
        for c in &r.children {
            if let Some(o) = views.order(*c).map_err(store)? {
                filled.0 += o.filled.0;
                filled_quote.0 += o.filled_quote.0;
                fees.0 += o.fees.0;
                open += u32::from(o.status.is_open());
                children.push(Order(o));
            }
        }
        Ok(Some(SlicedReportObject {
            parent,
            account: r.account.0,
            market: r.market.to_string(),
            children,
            filled: Decimal(filled),
            filled_quote: Decimal(filled_quote),
            fees: Decimal(fees),
            open_children: open,
        }))
    }

    /// A bracket order: entry, exit and realized P&L (after fees).
    async fn bracket_order(
        &self,
        ctx: &Context<'_>,
        entry: u64,
    ) -> Result<Option<BracketReportObject>> {
        let views = &state(ctx).views;
        let Some(entry_order) = views.order(OrderId(entry)).map_err(store)? else {
            return Ok(None);
        };
        readable(ctx, Some(entry_order.account.0))?;
        let report = views.bracket(OrderId(entry)).map_err(store)?;
        let exit = match report.and_then(|r| r.exit) {
            Some(x) => views.order(x).map_err(store)?.map(Order),
            None => None,
        };
        Ok(Some(BracketReportObject {
            entry: Order(entry_order),
            exit,
            closed_quantity: Decimal(report.map(|r| r.closed_quantity).unwrap_or_default()),
            realized_pnl: Decimal(report.map(|r| r.realized_pnl).unwrap_or_default()),
            exit_rejected: report.and_then(|r| r.exit_rejected).map(|r| wire_name(&r)),
        }))
    }

    async fn withdrawal(&self, ctx: &Context<'_>, id: u64) -> Result<Option<Withdrawal>> {
        let Some(w) = state(ctx)
            .views
            .withdrawal(WithdrawalId(id))
            .map_err(store)?
        else {
            return Ok(None);
        };
        readable(ctx, Some(w.account.0))?;
        Ok(Some(w.into()))
    }

    /// The answer to the command at `offset` on the commands log (a receipt that
    /// came back PENDING names both); null while the engine has not answered.
    async fn command(
        &self,
        ctx: &Context<'_>,
        offset: u64,
        id: String,
    ) -> Result<Option<CommandReceipt>> {
        if caller(ctx) == Caller::Anonymous {
            return Err(coded("UNAUTHENTICATED", "this needs an API key"));
        }
        let command = parse_command_id(&id)?;
        let st = state(ctx);
        let Some(o) = st.views.outcome_at(offset).map_err(store)? else {
            return Ok(None);
        };
        if o.command != command {
            return Err(coded(
                "NOT_FOUND",
                format!("command {id} is not the one at offset {offset}"),
            ));
        }
        receipt(ctx, st, command, offset, Some(o)).map(Some)
    }

    /// Every live API key (admin).
    async fn api_keys(&self, ctx: &Context<'_>) -> Result<Vec<ApiKeyObject>> {
        admin(ctx)?;
        Ok(state(ctx)
            .views
            .api_keys()
            .map_err(store)?
            .into_iter()
            .map(ApiKeyObject::from)
            .collect())
    }
}

#[derive(async_graphql::SimpleObject)]
pub struct Me {
    pub role: Option<GRole>,
    pub key_id: Option<u64>,
    pub account: Option<u64>,
}

fn parse_command_id(id: &str) -> Result<CommandId> {
    uuid::Uuid::parse_str(id)
        .map(CommandId)
        .map_err(|_| coded("BAD_INPUT", format!("\"{id}\" is not a UUID")))
}

/// Builds the receipt of an answered (or still pending) command.
fn receipt(
    ctx: &Context<'_>,
    st: &AppState,
    command: CommandId,
    offset: u64,
    outcome: Option<OutcomeView>,
) -> Result<CommandReceipt> {
    let Some(o) = outcome else {
        return Ok(CommandReceipt {
            command_id: command.0.to_string(),
            status: CommandStatus::Pending,
            offset,
            id: None,
            reason: None,
            duplicate: false,
            seq: None,
            order: None,
            trades: Vec::new(),
        });
    };
    let (status, id, reason) = match o.result {
        CommandResult::Accepted { id } => (CommandStatus::Accepted, Some(id), None),
        CommandResult::Rejected { reason } => {
            (CommandStatus::Rejected, None, Some(wire_name(&reason)))
        }
    };
    let mut order = None;
    let mut trades = Vec::new();
    if let Some(id) = id.filter(|id| *id > 0) {
        if let Some(view) = st.views.order(OrderId(id)).map_err(store)? {
            if readable(ctx, Some(view.account.0)).is_ok() {
                let p = Page {
                    first: PAGE_ROWS_MAX,
                    ..Page::default()
                };
                let rows = st
                    .views
                    .account_trades(view.account, &TradeFilter::default(), &p)
                    .map_err(store)?;
                trades = rows
                    .rows
                    .into_iter()
                    .map(|(_, t)| t)
                    .filter(|t| t.taker_order.0 == id)
                    .rev()
                    .map(Trade)
                    .collect();
                order = Some(Order(view));
            }
        }
    }
    Ok(CommandReceipt {
        command_id: command.0.to_string(),
        status,
        offset,
        id,
        reason,
        duplicate: o.duplicate,
        seq: Some(o.seq),
        order,
        trades,
    })
}

/// Signs (with the caller's key, when it can sign) and appends a command; returns
/// its offset once durable.
async fn append(
    st: &AppState,
    signer: Option<&Signer>,
    id: CommandId,
    command: Command,
) -> Result<u64> {
    if signer.is_none() {
        let required = st
            .views
            .credentials_required()
            .map_err(|e| coded("UNAVAILABLE", e.to_string()))?;
        if required {
            return Err(coded(
                "FORBIDDEN",
                "the engine requires credentials on every command and this token \
                 cannot sign (the operator's bootstrap token is not on the log): \
                 use an admin API key",
            ));
        }
    }
    let now = crate::now_ms();
    let envelope = CommandEnvelope::new(id, now, command);
    let unavailable = |e: String| {
        coded(
            "UNAVAILABLE",
            format!("the command was not accepted onto the log: {e}"),
        )
    };
    let pending = st
        .submitter
        .queue_signed(envelope, signer, tape_client::expiry(now))
        .await
        .map_err(|e| match e {
            tape_client::QueueError::Encode(_) => coded("BAD_INPUT", e.to_string()),
            tape_client::QueueError::Log(e) => unavailable(e),
        })?;
    let offset = pending.await.map_err(unavailable)?;
    st.submitter
        .remember(signer.map_or(0, |s| s.key().0), id, offset);
    Ok(offset)
}

/// Appends the command (or finds the one this id already named) and waits for its
/// answer.
async fn submit(
    ctx: &Context<'_>,
    command: Command,
    command_id: Option<String>,
) -> Result<CommandReceipt> {
    let st = state(ctx);
    let id = match command_id {
        Some(s) => parse_command_id(&s)?,
        None => CommandId(uuid::Uuid::new_v4()),
    };
    let signer = ctx.data_opt::<Signer>();
    let key = signer.map_or(0, |s| s.key().0);
    // A retry of a command this gateway appended: the original's receipt. (A retry
    // through another gateway is signed again; the engine answers its id with the
    // original outcome.)
    let offset = match st.submitter.submitted(key, id) {
        Some(offset) => offset,
        None => append(st, signer, id, command).await?,
    };
    let mut progress = st.progress.clone();
    let outcome =
        tape_client::wait_outcome(&st.views, &mut progress, id, offset, st.config.outcome_wait)
            .await
            .map_err(|e| coded("UNAVAILABLE", e))?;
    st.metrics
        .commands
        .with_label_values(&[if outcome.is_some() {
            "answered"
        } else {
            "pending"
        }])
        .inc();
    receipt(ctx, st, id, offset, outcome)
}

fn dec_opt(d: Option<Decimal>) -> Option<Dec> {
    d.map(|x| x.0)
}

fn required(what: &str, kind: &str, v: Option<Decimal>) -> Result<Dec> {
    v.map(|x| x.0)
        .ok_or_else(|| coded("BAD_INPUT", format!("a {kind} order needs `{what}`")))
}

fn size(kind: &str, quantity: Option<Decimal>, quote: Option<Decimal>) -> Result<MarketSize> {
    match (quantity, quote) {
        (Some(q), None) => Ok(MarketSize::Base(q.0)),
        (None, Some(q)) => Ok(MarketSize::Quote(q.0)),
        _ => Err(coded(
            "BAD_INPUT",
            format!("a {kind} order needs exactly one of `quantity` and `quoteQuantity`"),
        )),
    }
}

fn time_in_force(tif: GTimeInForce, expires_at_ms: Option<u64>) -> Result<TimeInForce> {
    Ok(match (tif, expires_at_ms) {
        (GTimeInForce::Gtc, None) => TimeInForce::Gtc,
        (GTimeInForce::Ioc, None) => TimeInForce::Ioc,
        (GTimeInForce::Fok, None) => TimeInForce::Fok,
        (GTimeInForce::Gtd, Some(expires_at_ms)) => TimeInForce::Gtd { expires_at_ms },
        (GTimeInForce::Gtd, None) => {
            return Err(coded("BAD_INPUT", "timeInForce GTD needs `expiresAtMs`"))
        }
        (_, Some(_)) => {
            return Err(coded(
                "BAD_INPUT",
                "`expiresAtMs` goes with timeInForce GTD only",
            ))
        }
    })
}

pub struct Mutation;

#[Object]
impl Mutation {
    /// Places an order of any kind. Returns the engine's answer (accepted with its
    /// fills, or rejected with the reason), or PENDING if it takes longer than the
    /// gateway waits.
    async fn place_order(
        &self,
        ctx: &Context<'_>,
        input: PlaceOrderInput,
        command_id: Option<String>,
    ) -> Result<CommandReceipt> {
        let account = tradable(ctx, input.account)?;
        let market = market_symbol(ctx, &input.market)?;
        let order_type = match input.kind {
            OrderKind::Limit => OrderType::Limit {
                price: required("price", "limit", input.price)?,
                quantity: required("quantity", "limit", input.quantity)?,
                time_in_force: time_in_force(input.time_in_force, input.expires_at_ms)?,
                post_only: input.post_only,
                display_quantity: dec_opt(input.display_quantity),
            },
            OrderKind::Market => OrderType::Market {
                size: size("market", input.quantity, input.quote_quantity)?,
            },
            OrderKind::StopMarket => OrderType::StopMarket {
                trigger_price: required("triggerPrice", "stop-market", input.trigger_price)?,
                size: size("stop-market", input.quantity, input.quote_quantity)?,
            },
            OrderKind::StopLimit => OrderType::StopLimit {
                trigger_price: required("triggerPrice", "stop-limit", input.trigger_price)?,
                price: required("price", "stop-limit", input.price)?,
                quantity: required("quantity", "stop-limit", input.quantity)?,
                time_in_force: time_in_force(input.time_in_force, input.expires_at_ms)?,
            },
        };
        let command = Command::PlaceOrder(NewOrder {
            account,
            market,
            side: input.side.into(),
            order_type,
            client_order_id: input
                .client_order_id
                .as_deref()
                .map(|c| short("clientOrderId", c))
                .transpose()?,
            stp: match input.self_trade_prevention {
                GStp::CancelTaker => StpMode::CancelTaker,
                GStp::CancelMaker => StpMode::CancelMaker,
                GStp::CancelBoth => StpMode::CancelBoth,
            },
        });
        submit(ctx, command, command_id).await
    }

    /// `count` limit orders evenly spaced from `lowerPrice` to `upperPrice`.
    async fn place_sliced_order(
        &self,
        ctx: &Context<'_>,
        input: PlaceSlicedInput,
        command_id: Option<String>,
    ) -> Result<CommandReceipt> {
        let command = Command::PlaceSliced(NewSliced {
            account: tradable(ctx, input.account)?,
            market: market_symbol(ctx, &input.market)?,
            side: input.side.into(),
            lower_price: input.lower_price.0,
            upper_price: input.upper_price.0,
            count: input.count,
            total_quantity: input.total_quantity.0,
            post_only: input.post_only,
            client_order_id: input
                .client_order_id
                .as_deref()
                .map(|c| short("clientOrderId", c))
                .transpose()?,
        });
        submit(ctx, command, command_id).await
    }

    /// An entry limit order and, once it has filled, an exit at `exitPrice`.
    async fn place_bracket_order(
        &self,
        ctx: &Context<'_>,
        input: PlaceBracketInput,
        command_id: Option<String>,
    ) -> Result<CommandReceipt> {
        let command = Command::PlaceBracket(NewBracket {
            account: tradable(ctx, input.account)?,
            market: market_symbol(ctx, &input.market)?,
            side: input.side.into(),
            entry_price: input.entry_price.0,
            quantity: input.quantity.0,
            exit_price: input.exit_price.0,
            client_order_id: input
                .client_order_id
                .as_deref()
                .map(|c| short("clientOrderId", c))
                .transpose()?,
        });
        submit(ctx, command, command_id).await
    }

    /// Cancels by `orderId` or by `clientOrderId`.
    async fn cancel_order(
        &self,
        ctx: &Context<'_>,
        account: Option<u64>,
        order_id: Option<u64>,
        client_order_id: Option<String>,
        command_id: Option<String>,
    ) -> Result<CommandReceipt> {
        let account = tradable(ctx, account)?;
        let order = order_ref(order_id, client_order_id)?;
        submit(ctx, Command::CancelOrder { account, order }, command_id).await
    }

    async fn cancel_all_orders(
        &self,
        ctx: &Context<'_>,
        account: Option<u64>,
        market: Option<String>,
        command_id: Option<String>,
    ) -> Result<CommandReceipt> {
        let account = tradable(ctx, account)?;
        let market = market
            .as_deref()
            .map(|m| market_symbol(ctx, m))
            .transpose()?;
        submit(ctx, Command::CancelAll { account, market }, command_id).await
    }

    /// `quantity` is the new open quantity; lowering it keeps priority.
    #[allow(clippy::too_many_arguments)]
    async fn amend_order(
        &self,
        ctx: &Context<'_>,
        account: Option<u64>,
        order_id: Option<u64>,
        client_order_id: Option<String>,
        price: Option<Decimal>,
        quantity: Option<Decimal>,
        command_id: Option<String>,
    ) -> Result<CommandReceipt> {
        let account = tradable(ctx, account)?;
        let order = order_ref(order_id, client_order_id)?;
        let command = Command::AmendOrder {
            account,
            order,
            price: dec_opt(price),
            quantity: dec_opt(quantity),
        };
        submit(ctx, command, command_id).await
    }

    async fn request_withdrawal(
        &self,
        ctx: &Context<'_>,
        account: Option<u64>,
        asset: String,
        amount: Decimal,
        command_id: Option<String>,
    ) -> Result<CommandReceipt> {
        let account = tradable(ctx, account)?;
        let asset = asset_code(ctx, &asset)?;
        let command = Command::RequestWithdrawal {
            account,
            asset,
            amount: amount.0,
        };
        submit(ctx, command, command_id).await
    }

    // --- admin

    async fn create_asset(
        &self,
        ctx: &Context<'_>,
        code: String,
        scale: u8,
        daily_withdrawal_limit: Option<Decimal>,
        command_id: Option<String>,
    ) -> Result<CommandReceipt> {
        admin(ctx)?;
        let command = Command::CreateAsset(AssetSpec {
            code: short("code", &code)?,
            scale,
            daily_withdrawal_limit: dec_opt(daily_withdrawal_limit),
        });
        submit(ctx, command, command_id).await
    }

    async fn create_market(
        &self,
        ctx: &Context<'_>,
        input: CreateMarketInput,
        command_id: Option<String>,
    ) -> Result<CommandReceipt> {
        admin(ctx)?;
        let command = Command::CreateMarket(MarketSpec {
            symbol: short("symbol", &input.symbol)?,
            base: asset_code(ctx, &input.base)?,
            quote: asset_code(ctx, &input.quote)?,
            tick_size: input.tick_size.0,
            lot_size: input.lot_size.0,
            min_notional: input.min_notional.0,
            min_quantity: dec_opt(input.min_quantity),
            max_quantity: dec_opt(input.max_quantity),
            fees: FeeRates {
                maker_ppm: input.maker_fee_ppm,
                taker_ppm: input.taker_fee_ppm,
            },
            price_band_bps: input.price_band_bps,
        });
        submit(ctx, command, command_id).await
    }

    /// Halt (no new orders; cancels work), resume, or disable (cancels everything).
    async fn set_market_status(
        &self,
        ctx: &Context<'_>,
        market: String,
        status: GMarketStatus,
        command_id: Option<String>,
    ) -> Result<CommandReceipt> {
        admin(ctx)?;
        let market = market_symbol(ctx, &market)?;
        let command = Command::SetMarketStatus {
            market,
            status: status.into(),
        };
        submit(ctx, command, command_id).await
    }

    async fn set_market_fees(
        &self,
        ctx: &Context<'_>,
        market: String,
        maker_fee_ppm: u32,
        taker_fee_ppm: u32,
        command_id: Option<String>,
    ) -> Result<CommandReceipt> {
        admin(ctx)?;
        let command = Command::SetMarketFees {
            market: market_symbol(ctx, &market)?,
            fees: FeeRates {
                maker_ppm: maker_fee_ppm,
                taker_ppm: taker_fee_ppm,
            },
        };
        submit(ctx, command, command_id).await
    }

    /// A per-account fee tier for one market; omit the rates to return to the
    /// market's.
    async fn set_account_fees(
        &self,
        ctx: &Context<'_>,
        account: u64,
        market: String,
        maker_fee_ppm: Option<u32>,
        taker_fee_ppm: Option<u32>,
        command_id: Option<String>,
    ) -> Result<CommandReceipt> {
        admin(ctx)?;
        let fees = match (maker_fee_ppm, taker_fee_ppm) {
            (Some(maker_ppm), Some(taker_ppm)) => Some(FeeRates {
                maker_ppm,
                taker_ppm,
            }),
            (None, None) => None,
            _ => {
                return Err(coded(
                    "BAD_INPUT",
                    "give both makerFeePpm and takerFeePpm, or neither",
                ))
            }
        };
        let command = Command::SetAccountFees {
            account: AccountId(account),
            market: market_symbol(ctx, &market)?,
            fees,
        };
        submit(ctx, command, command_id).await
    }

    /// Credits an account (custody). Idempotent by `reference`.
    async fn deposit(
        &self,
        ctx: &Context<'_>,
        account: u64,
        asset: String,
        amount: Decimal,
        reference: String,
        command_id: Option<String>,
    ) -> Result<CommandReceipt> {
        admin(ctx)?;
        let command = Command::Deposit {
            account: AccountId(account),
            asset: asset_code(ctx, &asset)?,
            amount: amount.0,
            reference: short("reference", &reference)?,
        };
        submit(ctx, command, command_id).await
    }

    async fn complete_withdrawal(
        &self,
        ctx: &Context<'_>,
        id: u64,
        command_id: Option<String>,
    ) -> Result<CommandReceipt> {
        admin(ctx)?;
        let command = Command::CompleteWithdrawal {
            withdrawal: WithdrawalId(id),
        };
        submit(ctx, command, command_id).await
    }

    async fn fail_withdrawal(
        &self,
        ctx: &Context<'_>,
        id: u64,
        command_id: Option<String>,
    ) -> Result<CommandReceipt> {
        admin(ctx)?;
        let command = Command::FailWithdrawal {
            withdrawal: WithdrawalId(id),
        };
        submit(ctx, command, command_id).await
    }

    /// Creates an API key; the token in the answer is shown once.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        role: GRole,
        account: Option<u64>,
    ) -> Result<NewApiKey> {
        admin(ctx)?;
        if (role == GRole::Trader) != account.is_some() {
            return Err(coded(
                "BAD_INPUT",
                "a trader key names its `account`; auditor and admin keys name none",
            ));
        }
        let (secret, secret_hash) = auth::new_secret();
        let command = Command::CreateApiKey {
            role: role.into(),
            account: account.map(AccountId),
            secret_hash,
            mac_key: mac_key(&secret),
        };
        let r = submit(ctx, command, None).await?;
        match (r.status, r.id) {
            (CommandStatus::Accepted, Some(id)) => Ok(NewApiKey {
                key: ApiKeyObject { id, role, account },
                token: auth::token(ApiKeyId(id), &secret),
            }),
            (CommandStatus::Pending, _) => Err(coded(
                "UNAVAILABLE",
                format!(
                    "the engine has not answered yet; the key was not issued (command {})",
                    r.command_id
                ),
            )),
            _ => Err(coded(
                "REJECTED",
                format!(
                    "the engine refused the key: {}",
                    r.reason.unwrap_or_default()
                ),
            )),
        }
    }

    async fn revoke_api_key(
        &self,
        ctx: &Context<'_>,
        id: u64,
        command_id: Option<String>,
    ) -> Result<CommandReceipt> {
        admin(ctx)?;
        submit(ctx, Command::RevokeApiKey { key: ApiKeyId(id) }, command_id).await
    }

    /// With `required`, the engine refuses every command that does not carry valid
    /// credentials of a key allowed to issue it (the market makers' door on the
    /// commands topic needs this). The gateway signs each caller's commands with the
    /// caller's own key; the operator's bootstrap token cannot sign, so create an
    /// admin key first.
    async fn require_credentials(
        &self,
        ctx: &Context<'_>,
        required: bool,
        command_id: Option<String>,
    ) -> Result<CommandReceipt> {
        admin(ctx)?;
        submit(ctx, Command::RequireCredentials { required }, command_id).await
    }

    /// Moves the engine's clock to now however long it stood still: the operator's
    /// explicit consent after an outage longer than the engine's clock-jump bound
    /// (7 days by default), when every command is refused as CLOCK_JUMP_TOO_LARGE.
    async fn allow_clock_jump(
        &self,
        ctx: &Context<'_>,
        command_id: Option<String>,
    ) -> Result<CommandReceipt> {
        admin(ctx)?;
        submit(ctx, Command::AllowClockJump, command_id).await
    }
}

fn order_ref(order_id: Option<u64>, client_order_id: Option<String>) -> Result<OrderRef> {
    match (order_id, client_order_id) {
        (Some(id), None) => Ok(OrderRef::Id(OrderId(id))),
        (None, Some(c)) => Ok(OrderRef::Client(short("clientOrderId", &c)?)),
        _ => Err(coded(
            "BAD_INPUT",
            "name the order by exactly one of `orderId` and `clientOrderId`",
        )),
    }
}

/// Every batch the projector applies, from now on.
fn changes(st: &AppState) -> impl Stream<Item = Arc<Changes>> + use<> {
    let rx = st.changes.subscribe();
    futures::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(c) => return Some((c, rx)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(skipped = n, "a subscriber fell behind; batches skipped");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    /// Every trade of a market, as it is projected.
    async fn trades(
        &self,
        ctx: &Context<'_>,
        market: String,
    ) -> Result<impl Stream<Item = PublicTrade>> {
        let s = market_symbol(ctx, &market)?;
        Ok(changes(state(ctx)).flat_map(move |c| {
            let items: Vec<PublicTrade> = c
                .trades
                .iter()
                .filter(|t| t.market == s)
                .map(|t| PublicTrade::from(*t))
                .collect();
            futures::stream::iter(items)
        }))
    }

    /// The book after each change.
    async fn depth(
        &self,
        ctx: &Context<'_>,
        market: String,
        #[graphql(default = 20)] levels: u32,
    ) -> Result<impl Stream<Item = DepthObject>> {
        let s = market_symbol(ctx, &market)?;
        let views = state(ctx).views.clone();
        Ok(changes(state(ctx)).filter_map(move |c| {
            let d = c
                .depth
                .contains(&s)
                .then(|| views.depth(&s, levels.min(1_000) as usize).ok())
                .flatten()
                .map(|d| DepthObject::new(&s, d));
            async move { d }
        }))
    }

    /// The 24-hour ticker after each trade.
    async fn ticker(
        &self,
        ctx: &Context<'_>,
        market: String,
    ) -> Result<impl Stream<Item = TickerObject>> {
        let s = market_symbol(ctx, &market)?;
        let views = state(ctx).views.clone();
        Ok(changes(state(ctx)).filter_map(move |c| {
            let t = c
                .trades
                .iter()
                .any(|t| t.market == s)
                .then(|| views.ticker(&s).ok().flatten())
                .flatten()
                .map(TickerObject::from);
            async move { t }
        }))
    }

    /// The open candle of an interval, after each trade.
    async fn candles(
        &self,
        ctx: &Context<'_>,
        market: String,
        interval: CandleInterval,
    ) -> Result<impl Stream<Item = CandleObject>> {
        let s = market_symbol(ctx, &market)?;
        let name = INTERVALS_MS[interval.index()].0;
        Ok(changes(state(ctx)).flat_map(move |c| {
            let items: Vec<CandleObject> = c
                .candles
                .iter()
                .filter(|(m, i, _)| *m == s && *i == name)
                .map(|(m, i, candle)| CandleObject::new(m, i, *candle))
                .collect();
            futures::stream::iter(items)
        }))
    }

    /// The account's orders as they change.
    async fn my_orders(
        &self,
        ctx: &Context<'_>,
        account: Option<u64>,
    ) -> Result<impl Stream<Item = Order>> {
        let account = readable(ctx, account)?;
        Ok(changes(state(ctx)).flat_map(move |c| {
            let items: Vec<Order> = c
                .orders
                .iter()
                .filter(|o| o.account == account)
                .map(|o| Order(o.clone()))
                .collect();
            futures::stream::iter(items)
        }))
    }

    /// The account's balances as they change.
    async fn my_wallet(
        &self,
        ctx: &Context<'_>,
        account: Option<u64>,
    ) -> Result<impl Stream<Item = WalletUpdate>> {
        let account = readable(ctx, account)?;
        Ok(changes(state(ctx)).flat_map(move |c| {
            let items: Vec<WalletUpdate> = c
                .wallets
                .iter()
                .filter(|w| w.account == account)
                .map(|w| WalletUpdate::from(*w))
                .collect();
            futures::stream::iter(items)
        }))
    }
}
