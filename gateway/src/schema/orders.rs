//! Orders and what became of commands: one order, an account's orders, sliced and bracket reports, a command's outcome.

use super::*;

#[derive(Default)]
pub struct OrdersQuery;

#[Object]
impl OrdersQuery {
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
        side: Option<Side>,
        #[graphql(default)] status: Vec<OrderStatus>,
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
            market: market_filter(ctx, market.as_deref())?,
            side: side.map(wire::Side::from),
            statuses: status.into_iter().map(views::OrderStatus::from).collect(),
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

    /// A sliced order: its children and their fills together.
    async fn sliced_order(&self, ctx: &Context<'_>, parent: u64) -> Result<Option<SlicedReport>> {
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
        Ok(Some(SlicedReport {
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
    async fn bracket_order(&self, ctx: &Context<'_>, entry: u64) -> Result<Option<BracketReport>> {
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
        Ok(Some(BracketReport {
            entry: Order(entry_order),
            exit,
            closed_quantity: Decimal(report.map(|r| r.closed_quantity).unwrap_or_default()),
            realized_pnl: Decimal(report.map(|r| r.realized_pnl).unwrap_or_default()),
            exit_rejected: report.and_then(|r| r.exit_rejected).map(|r| wire_name(&r)),
        }))
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
            return Err(coded(Code::Unauthenticated, "this needs an API key"));
        }
        let command = parse_command_id(&id)?;
        let st = state(ctx);
        let Some(o) = st.views.outcome_at(offset).map_err(store)? else {
            return Ok(None);
        };
        if o.command != command {
            return Err(coded(
                Code::NotFound,
                format!("command {id} is not the one at offset {offset}"),
            ));
        }
        receipt(ctx, st, command, offset, Some(o), None).map(Some)
    }
}
