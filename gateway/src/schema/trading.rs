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
        let command = if input.reduce_only {
            Command::PlaceReduceOnly(new_order(ctx, input)?)
        } else {
            Command::PlaceOrder(new_order(ctx, input)?)
        };
        submit(ctx, command, command_id).await
    }

    /// Closes the account's whole position on a perpetual with a reduce-only
    /// market order.
    async fn close_position(
        &self,
        ctx: &Context<'_>,
        account: Option<u64>,
        market: String,
        command_id: Option<String>,
    ) -> Result<CommandReceipt> {
        let account = tradable(ctx, account)?;
        let market = market_symbol(ctx, &market)?;
        let command = Command::ClosePosition { account, market };
        submit(ctx, command, command_id).await
    }

    /// Places up to 20 orders (the engine's `batch_items_max`) for one account in one
    /// command: applied in order in one step, each with its own receipt.
    async fn place_orders(
        &self,
        ctx: &Context<'_>,
        inputs: Vec<PlaceOrderInput>,
        command_id: Option<String>,
    ) -> Result<BatchReceipt> {
        if inputs.iter().any(|i| i.reduce_only) {
            return Err(coded(
                Code::BadInput,
                "reduce-only orders go one at a time (`placeOrder`), not in a batch",
            ));
        }
        let orders = inputs
            .into_iter()
            .map(|i| new_order(ctx, i))
            .collect::<Result<Vec<_>>>()?;
        let account = one_account(ctx, orders.iter().map(|o| o.account))?;
        let items: Vec<BatchItem> = orders
            .into_iter()
            .map(|o| BatchItem::PlaceOrder {
                market: o.market,
                side: o.side,
                order_type: o.order_type,
                client_order_id: o.client_order_id,
                stp: o.stp,
            })
            .collect();
        let n = items.len();
        submit_batch(ctx, Command::Batch { account, items }, n, command_id).await
    }

    /// Cancels up to 20 orders of one account by id in one command.
    async fn cancel_orders(
        &self,
        ctx: &Context<'_>,
        account: Option<u64>,
        order_ids: Vec<u64>,
        command_id: Option<String>,
    ) -> Result<BatchReceipt> {
        let account = tradable(ctx, account)?;
        let items: Vec<BatchItem> = order_ids
            .into_iter()
            .map(|id| BatchItem::CancelOrder {
                order: OrderRef::Id(OrderId(id)),
            })
            .collect();
        let n = items.len();
        submit_batch(ctx, Command::Batch { account, items }, n, command_id).await
    }

    /// `count` limit orders evenly spaced from `lowerPrice` to `upperPrice`
    /// (reduce-only on a perpetual with `reduceOnly`).
    async fn place_sliced_order(
        &self,
        ctx: &Context<'_>,
        input: PlaceSlicedInput,
        command_id: Option<String>,
    ) -> Result<CommandReceipt> {
        let sliced = NewSliced {
            account: tradable(ctx, input.account)?,
            market: market_symbol(ctx, &input.market)?,
            side: input.side.into(),
            lower_price: input.lower_price.0,
            upper_price: input.upper_price.0,
            count: input.count,
            total_quantity: input.total_quantity.0,
            post_only: input.post_only,
            client_order_id: client_order_id(input.client_order_id.as_deref())?,
        };
        let command = match input.reduce_only {
            true => Command::PlaceSlicedReduceOnly(sliced),
            false => Command::PlaceSliced(sliced),
        };
        submit(ctx, command, command_id).await
    }

    /// An entry limit order and, once it has filled, an exit at `exitPrice`. On
    /// a perpetual the exit only reduces the position the entry opened.
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

    /// The leverage to trade a perpetual at: at most the lower of the account's
    /// tier cap and the market's first bracket's max leverage (`leverage` shows both).
    async fn set_leverage(
        &self,
        ctx: &Context<'_>,
        account: Option<u64>,
        market: String,
        leverage: u32,
        command_id: Option<String>,
    ) -> Result<CommandReceipt> {
        let account = tradable(ctx, account)?;
        let market = market_symbol(ctx, &market)?;
        let command = Command::SetLeverage {
            account,
            market,
            leverage,
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

/// The order an input describes, for the account the caller may trade.
fn new_order(ctx: &Context<'_>, input: PlaceOrderInput) -> Result<NewOrder> {
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
    Ok(NewOrder {
        account,
        market,
        side: input.side.into(),
        order_type,
        client_order_id: client_order_id(input.client_order_id.as_deref())?,
        stp: input.self_trade_prevention.into(),
    })
}

/// The one account every item of a batch is for.
fn one_account(
    ctx: &Context<'_>,
    mut accounts: impl Iterator<Item = AccountId>,
) -> Result<AccountId> {
    let Some(first) = accounts.next() else {
        return tradable(ctx, None);
    };
    if accounts.any(|a| a != first) {
        return Err(coded(
            Code::BadInput,
            "every order of a batch must be for the same account",
        ));
    }
    Ok(first)
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
