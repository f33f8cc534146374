//! Submitting a command: its id, the append to the commands log, the wait for the engine's answer and the receipt.

use super::*;

pub(super) fn parse_command_id(id: &str) -> Result<CommandId> {
    uuid::Uuid::parse_str(id)
        .map(CommandId)
        .map_err(|_| coded(Code::BadInput, format!("\"{id}\" is not a UUID")))
}

/// Builds the receipt of an answered (or still pending) command; `sent` is the
/// command as it was sent (when this gateway has it), for a refusal's sentence.
pub(super) fn receipt(
    ctx: &Context<'_>,
    st: &AppState,
    command: CommandId,
    offset: u64,
    outcome: Option<OutcomeView>,
    sent: Option<(&CommandEnvelope, &Command)>,
) -> Result<CommandReceipt> {
    let Some(o) = outcome else {
        return Ok(CommandReceipt {
            command_id: command.0.to_string(),
            status: CommandStatus::Pending,
            offset,
            id: None,
            reason: None,
            message: None,
            duplicate: false,
            seq: None,
            order: None,
            trades: Vec::new(),
        });
    };
    let (status, id, reason, message) = match o.result {
        CommandResult::Accepted { id } => (CommandStatus::Accepted, Some(id), None, None),
        CommandResult::Rejected { reason } => {
            let message = match sent {
                Some((envelope, command)) => {
                    tape_client::explain_item(reason, envelope, command, &st.views)
                }
                None => tape_client::rule(reason),
            };
            (
                CommandStatus::Rejected,
                None,
                Some(wire_name(&reason)),
                Some(message),
            )
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
        message,
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
            .map_err(|e| coded(Code::Unavailable, e.to_string()))?;
        if required {
            return Err(coded(
                Code::Forbidden,
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
            Code::Unavailable,
            format!("the command was not accepted onto the log: {e}"),
        )
    };
    let pending = st
        .submitter
        .queue_signed(envelope, signer, tape_client::expiry(now))
        .await
        .map_err(|e| match e {
            tape_client::QueueError::Encode(_) => coded(Code::BadInput, e.to_string()),
            tape_client::QueueError::Log(e) => unavailable(e),
        })?;
    let offset = pending.await.map_err(unavailable)?;
    st.submitter
        .remember(signer.map_or(0, |s| s.key().0), id, offset);
    Ok(offset)
}

/// Appends the command (or finds the one this id already named) and waits for its
/// answer.
pub(super) async fn submit(
    ctx: &Context<'_>,
    command: Command,
    command_id: Option<String>,
) -> Result<CommandReceipt> {
    let sent = CommandEnvelope::new(CommandId::from_u128(0), crate::now_ms(), command.clone());
    let (id, offset, outcome) = submit_and_wait(ctx, command, command_id).await?;
    receipt(
        ctx,
        state(ctx),
        id,
        offset,
        outcome,
        Some((&sent, &sent.command)),
    )
}

/// `submit` for a `Batch` of `items` items: the batch's answer and one receipt per
/// item (none while the batch is pending or if it was refused as a whole).
pub(super) async fn submit_batch(
    ctx: &Context<'_>,
    command: Command,
    items: usize,
    command_id: Option<String>,
) -> Result<BatchReceipt> {
    let st = state(ctx);
    let sent = CommandEnvelope::new(CommandId::from_u128(0), crate::now_ms(), command.clone());
    let item_commands: Vec<Command> = match &command {
        Command::Batch { account, items } => items.iter().map(|i| i.command(*account)).collect(),
        _ => Vec::new(),
    };
    let (id, offset, outcome) = submit_and_wait(ctx, command, command_id).await?;
    if let Some(o) = outcome.filter(|o| matches!(o.result, CommandResult::Accepted { .. })) {
        // The items' answers are among the batch's effects, which the outcome's
        // wait already saw projected; should the projector still be short of
        // them, wait for its next batches (woken by them, for a second at most).
        let mut progress = st.progress.clone();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
        let mut results = loop {
            let results = st.views.item_outcomes(offset).map_err(store)?;
            if results.len() >= items {
                break results;
            }
            match tokio::time::timeout_at(deadline, progress.changed()).await {
                Ok(Ok(())) => {}
                _ => break results,
            }
        };
        results.truncate(items);
        let item_receipts = results
            .iter()
            .enumerate()
            .map(|(i, &result)| {
                let item = item_commands.get(i).map(|c| (&sent, c));
                receipt(ctx, st, id, offset, Some(OutcomeView { result, ..o }), item)
            })
            .collect::<Result<Vec<_>>>()?;
        let batch = receipt(ctx, st, id, offset, Some(o), Some((&sent, &sent.command)))?;
        return Ok(BatchReceipt {
            batch,
            items: item_receipts,
        });
    }
    Ok(BatchReceipt {
        batch: receipt(ctx, st, id, offset, outcome, Some((&sent, &sent.command)))?,
        items: Vec::new(),
    })
}

async fn submit_and_wait(
    ctx: &Context<'_>,
    command: Command,
    command_id: Option<String>,
) -> Result<(CommandId, u64, Option<OutcomeView>)> {
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
            .map_err(|e| coded(Code::Unavailable, e))?;
    st.metrics
        .commands
        .with_label_values(&[if outcome.is_some() {
            "answered"
        } else {
            "pending"
        }])
        .inc();
    Ok((id, offset, outcome))
}

/// An admin's mutation: the role is checked before the command is built, so no one
/// else learns anything from how its arguments would have been refused.
pub(super) async fn submit_admin(
    ctx: &Context<'_>,
    command_id: Option<String>,
    build: impl FnOnce() -> Result<Command>,
) -> Result<CommandReceipt> {
    admin(ctx)?;
    submit(ctx, build()?, command_id).await
}
