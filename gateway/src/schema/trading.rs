//! Trading: placing, cancelling and amending orders of every kind.

use super::*;

#[derive(Default)]
pub struct TradingMutation;

#[Object]
impl TradingMutation {
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
            client_order_id: client_order_id(input.client_order_id.as_deref())?,
            stp: input.self_trade_prevention.into(),
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
            client_order_id: client_order_id(input.client_order_id.as_deref())?,
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
            client_order_id: client_order_id(input.client_order_id.as_deref())?,
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
        let market = market_filter(ctx, market.as_deref())?;
        submit(ctx, Command::CancelAll { account, market }, command_id).await
    }

    /// The dead-man switch: every order of the account is cancelled unless this is
    /// called again within `timeoutMs` (at most a day); 0 disarms it. Call it every
    /// few seconds with a timeout of a minute, say, so a client that dies or loses its
    /// connection leaves nothing in the book.
    async fn cancel_all_orders_after(
        &self,
        ctx: &Context<'_>,
        account: Option<u64>,
        timeout_ms: u64,
        command_id: Option<String>,
    ) -> Result<CommandReceipt> {
        let account = tradable(ctx, account)?;
        let command = Command::CancelAllAfter {
            account,
            timeout_ms,
        };
        submit(ctx, command, command_id).await
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
}

fn order_ref(order_id: Option<u64>, client_order_id: Option<String>) -> Result<OrderRef> {
    match (order_id, client_order_id) {
        (Some(id), None) => Ok(OrderRef::Id(OrderId(id))),
        (None, Some(c)) => Ok(OrderRef::Client(short("clientOrderId", &c)?)),
        _ => Err(coded(
            Code::BadInput,
            "name the order by exactly one of `orderId` and `clientOrderId`",
        )),
    }
}
