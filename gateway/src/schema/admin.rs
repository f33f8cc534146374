//! The operator's side: assets, markets, fees, API keys, credentials and the clock.

use super::*;

#[derive(Default)]
pub struct AdminQuery;

#[Object]
impl AdminQuery {
    /// Every live API key (admin).
    async fn api_keys(&self, ctx: &Context<'_>) -> Result<Vec<ApiKey>> {
        admin(ctx)?;
        Ok(state(ctx)
            .views
            .api_keys()
            .map_err(store)?
            .into_iter()
            .map(ApiKey::from)
            .collect())
    }

    /// Every account an operator has set restrictions on (admin, auditor).
    async fn account_restrictions(&self, ctx: &Context<'_>) -> Result<Vec<AccountRestrictions>> {
        staff(ctx)?;
        Ok(state(ctx)
            .views
            .restricted_accounts()
            .map_err(store)?
            .into_iter()
            .map(AccountRestrictions::from)
            .collect())
    }

    /// The credentials mode, the read models' position and the engine's last
    /// checkpoint (any caller).
    async fn system(&self, ctx: &Context<'_>) -> Result<SystemStatus> {
        let st = state(ctx);
        Ok(SystemStatus {
            credentials_required: st.views.credentials_required().map_err(store)?,
            projected_seq: st.progress.borrow().next_seq,
            last_checkpoint: st
                .views
                .engine_checkpoint()
                .map_err(store)?
                .map(EngineCheckpoint::from),
        })
    }
}

#[derive(Default)]
pub struct AdminMutation;

#[Object]
impl AdminMutation {
    async fn create_asset(
        &self,
        ctx: &Context<'_>,
        code: String,
        scale: u8,
        daily_withdrawal_limit: Option<Decimal>,
        command_id: Option<String>,
    ) -> Result<CommandReceipt> {
        submit_admin(ctx, command_id, || {
            Ok(Command::CreateAsset(AssetSpec {
                code: short("code", &code)?,
                scale,
                daily_withdrawal_limit: dec_opt(daily_withdrawal_limit),
            }))
        })
        .await
    }

    async fn create_market(
        &self,
        ctx: &Context<'_>,
        input: CreateMarketInput,
        command_id: Option<String>,
    ) -> Result<CommandReceipt> {
        submit_admin(ctx, command_id, || {
            Ok(Command::CreateMarket(MarketSpec {
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
            }))
        })
        .await
    }

    /// Halt (no new orders; cancels work), resume, or disable (cancels everything).
    async fn set_market_status(
        &self,
        ctx: &Context<'_>,
        market: String,
        status: MarketStatus,
        command_id: Option<String>,
    ) -> Result<CommandReceipt> {
        submit_admin(ctx, command_id, || {
            let market = market_symbol(ctx, &market)?;
            Ok(Command::SetMarketStatus {
                market,
                status: status.into(),
            })
        })
        .await
    }

    async fn set_market_fees(
        &self,
        ctx: &Context<'_>,
        market: String,
        maker_fee_ppm: u32,
        taker_fee_ppm: u32,
        command_id: Option<String>,
    ) -> Result<CommandReceipt> {
        submit_admin(ctx, command_id, || {
            Ok(Command::SetMarketFees {
                market: market_symbol(ctx, &market)?,
                fees: FeeRates {
                    maker_ppm: maker_fee_ppm,
                    taker_ppm: taker_fee_ppm,
                },
            })
        })
        .await
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
        submit_admin(ctx, command_id, || {
            let fees = match (maker_fee_ppm, taker_fee_ppm) {
                (Some(maker_ppm), Some(taker_ppm)) => Some(FeeRates {
                    maker_ppm,
                    taker_ppm,
                }),
                (None, None) => None,
                _ => {
                    return Err(coded(
                        Code::BadInput,
                        "give both makerFeePpm and takerFeePpm, or neither",
                    ))
                }
            };
            Ok(Command::SetAccountFees {
                account: AccountId(account),
                market: market_symbol(ctx, &market)?,
                fees,
            })
        })
        .await
    }

    /// What an account may do: trade (place and amend orders; cancels always
    /// work) and withdraw.
    async fn set_account_restrictions(
        &self,
        ctx: &Context<'_>,
        account: u64,
        can_trade: bool,
        can_withdraw: bool,
        command_id: Option<String>,
    ) -> Result<CommandReceipt> {
        submit_admin(ctx, command_id, || {
            Ok(Command::SetAccountRestrictions {
                account: AccountId(account),
                can_trade,
                can_withdraw,
            })
        })
        .await
    }

    /// An account's leverage tier: its cap on every perpetual.
    async fn set_account_tier(
        &self,
        ctx: &Context<'_>,
        account: u64,
        tier: Tier,
        command_id: Option<String>,
    ) -> Result<CommandReceipt> {
        submit_admin(ctx, command_id, || {
            Ok(Command::SetAccountTier {
                account: AccountId(account),
                tier: tier.into(),
            })
        })
        .await
    }

    /// The most notional an account's positions and open orders on the
    /// perpetuals settled in `asset` may add up to; without `account`, the
    /// default for every account; without `cap`, no cap (an account's own
    /// removed: the default applies again).
    async fn set_notional_cap(
        &self,
        ctx: &Context<'_>,
        account: Option<u64>,
        asset: String,
        cap: Option<Decimal>,
        command_id: Option<String>,
    ) -> Result<CommandReceipt> {
        let asset = asset_code(ctx, &asset)?;
        submit_admin(ctx, command_id, || {
            Ok(Command::SetNotionalCap {
                account: account.map(AccountId),
                asset,
                cap: dec_opt(cap),
            })
        })
        .await
    }

    /// The three tiers' leverage caps (defaults 5, 10 and 20).
    async fn set_leverage_tiers(
        &self,
        ctx: &Context<'_>,
        beginner: u32,
        intermediate: u32,
        advanced: u32,
        command_id: Option<String>,
    ) -> Result<CommandReceipt> {
        submit_admin(ctx, command_id, || {
            Ok(Command::SetLeverageTiers(tape_schemas::TierCaps {
                beginner,
                intermediate,
                advanced,
            }))
        })
        .await
    }

    /// Creates an API key; the token in the answer is shown once.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        role: Role,
        account: Option<u64>,
    ) -> Result<NewApiKey> {
        admin(ctx)?;
        if (role == Role::Trader) != account.is_some() {
            return Err(coded(
                Code::BadInput,
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
                key: ApiKey { id, role, account },
                token: auth::token(ApiKeyId(id), &secret),
            }),
            (CommandStatus::Pending, _) => Err(coded(
                Code::Unavailable,
                format!(
                    "the engine has not answered yet; the key was not issued (command {})",
                    r.command_id
                ),
            )),
            _ => Err(coded(
                Code::Rejected,
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
        submit_admin(ctx, command_id, || {
            Ok(Command::RevokeApiKey { key: ApiKeyId(id) })
        })
        .await
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
        submit_admin(ctx, command_id, || {
            Ok(Command::RequireCredentials { required })
        })
        .await
    }

    /// Moves the engine's clock to now however long it stood still: the operator's
    /// explicit consent after an outage longer than the engine's clock-jump bound
    /// (7 days by default), when every command is refused as CLOCK_JUMP_TOO_LARGE.
    async fn allow_clock_jump(
        &self,
        ctx: &Context<'_>,
        command_id: Option<String>,
    ) -> Result<CommandReceipt> {
        submit_admin(ctx, command_id, || Ok(Command::AllowClockJump)).await
    }
}
