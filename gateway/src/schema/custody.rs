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
