//! Custody: withdrawals asked for by traders, deposits and withdrawal settlement by the operator.

use super::*;

#[derive(Default)]
pub struct CustodyQuery;

#[Object]
impl CustodyQuery {
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

    /// Withdrawals by id, newest first by default: a trader's own, or (admin and
    /// auditor keys) every account's when `account` is omitted. `status` filters
    /// (`[REQUESTED]`: the ones waiting for the operator).
    async fn withdrawals(
        &self,
        ctx: &Context<'_>,
        account: Option<u64>,
        #[graphql(default)] status: Vec<crate::types::WithdrawalStatus>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(default = true)] newest_first: bool,
    ) -> Result<Connection<String, Withdrawal>> {
        let account = match (caller(ctx), account) {
            (Caller::Admin { .. } | Caller::Auditor { .. }, None) => None,
            (_, account) => Some(readable(ctx, account)?),
        };
        let p = page(first, after, newest_first)?;
        let statuses: Vec<views::WithdrawalStatus> = status.into_iter().map(Into::into).collect();
        let rows = state(ctx)
            .views
            .withdrawals(account, &statuses, &p)
            .map_err(store)?;
        Ok(connection(rows, p.cursor.is_some(), Withdrawal::from))
    }
}

#[derive(Default)]
pub struct CustodyMutation;

#[Object]
impl CustodyMutation {
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
        submit_admin(ctx, command_id, || {
            Ok(Command::Deposit {
                account: AccountId(account),
                asset: asset_code(ctx, &asset)?,
                amount: amount.0,
                reference: short("reference", &reference)?,
            })
        })
        .await
    }

    async fn complete_withdrawal(
        &self,
        ctx: &Context<'_>,
        id: u64,
        command_id: Option<String>,
    ) -> Result<CommandReceipt> {
        submit_admin(ctx, command_id, || {
            Ok(Command::CompleteWithdrawal {
                withdrawal: WithdrawalId(id),
            })
        })
        .await
    }

    async fn fail_withdrawal(
        &self,
        ctx: &Context<'_>,
        id: u64,
        command_id: Option<String>,
    ) -> Result<CommandReceipt> {
        submit_admin(ctx, command_id, || {
            Ok(Command::FailWithdrawal {
                withdrawal: WithdrawalId(id),
            })
        })
        .await
    }
}
