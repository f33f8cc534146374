//! An account: balances, the portfolio, wallet updates, ledger entries, equity, API keys and withdrawals.

use super::*;

#[derive(SimpleObject, Clone)]
pub struct Balance {
    pub asset: String,
    pub available: Decimal,
    pub held: Decimal,
    pub total: Decimal,
    /// `total` in the portfolio's `valueIn` asset at the last price; null when no
    /// market between them has traded.
    pub value: Option<Decimal>,
}

#[derive(SimpleObject, Clone)]
pub struct Portfolio {
    pub account: u64,
    pub value_in: Option<String>,
    pub balances: Vec<Balance>,
    /// The sum of the balances' values (those that have one).
    pub total_value: Option<Decimal>,
}

#[derive(SimpleObject, Clone)]
pub struct WalletUpdate {
    pub account: u64,
    pub asset: String,
    pub available: Decimal,
    pub held: Decimal,
    pub total: Decimal,
    /// The balance as it stood once the read models held every event up to this seq.
    pub seq: u64,
}

impl WalletUpdate {
    pub fn new(w: WalletView, seq: u64) -> Self {
        WalletUpdate {
            seq,
            account: w.account.0,
            asset: w.asset.to_string(),
            available: dm(w.available),
            held: dm(w.held),
            total: Decimal(Dec(w.available.0 + w.held.0)),
        }
    }
}

#[derive(SimpleObject, Clone)]
pub struct LedgerEntry {
    pub seq: u64,
    pub time_ms: u64,
    pub asset: String,
    pub kind: EntryKind,
    /// Signed: positive credits the account.
    pub amount: Decimal,
    /// The account's total of `asset` after this entry.
    pub balance: Decimal,
    /// The trade or withdrawal id.
    pub reference: Option<u64>,
}

impl From<views::LedgerEntry> for LedgerEntry {
    fn from(e: views::LedgerEntry) -> Self {
        LedgerEntry {
            seq: e.seq,
            time_ms: e.time_ms,
            asset: e.asset.to_string(),
            kind: e.kind.into(),
            amount: dm(e.amount),
            balance: dm(e.balance),
            reference: e.reference,
        }
    }
}

#[derive(SimpleObject, Clone)]
pub struct AssetAmount {
    pub asset: String,
    pub amount: Decimal,
}

#[derive(SimpleObject, Clone)]
pub struct EquityPoint {
    /// The start of the hour this point closes.
    pub time_ms: u64,
    pub balances: Vec<AssetAmount>,
    /// Valued at each asset's last 1-hour close at or before the point; null when
    /// some asset has no price.
    pub value: Option<Decimal>,
}

#[derive(SimpleObject, Clone)]
pub struct ApiKey {
    pub id: u64,
    pub role: Role,
    pub account: Option<u64>,
}

impl From<ApiKeyView> for ApiKey {
    fn from(k: ApiKeyView) -> Self {
        ApiKey {
            id: k.key.0,
            role: k.role.into(),
            account: k.account.map(|a| a.0),
        }
    }
}

#[derive(SimpleObject, Clone)]
pub struct NewApiKey {
    pub key: ApiKey,
    /// Send as `Authorization: Bearer <token>`. Shown once: only its hash is kept.
    pub token: String,
}

#[derive(SimpleObject, Clone)]
pub struct Withdrawal {
    pub id: u64,
    pub account: u64,
    pub asset: String,
    pub amount: Decimal,
    pub status: WithdrawalStatus,
    pub requested_ms: u64,
    pub updated_ms: u64,
}

/// What an operator has allowed an account.
#[derive(SimpleObject, Clone)]
pub struct AccountRestrictions {
    pub account: u64,
    pub can_trade: bool,
    pub can_withdraw: bool,
    pub updated_ms: u64,
}

impl From<RestrictionsView> for AccountRestrictions {
    fn from(r: RestrictionsView) -> Self {
        AccountRestrictions {
            account: r.account.0,
            can_trade: r.can_trade,
            can_withdraw: r.can_withdraw,
            updated_ms: r.updated_ms,
        }
    }
}

/// The engine's last checkpoint: `tape replay verify` must reach this state hash
/// after `commandsApplied` commands.
#[derive(SimpleObject, Clone)]
pub struct EngineCheckpoint {
    /// The events-log seq of the checkpoint.
    pub seq: u64,
    pub time_ms: u64,
    /// The commands-log offset of the last command it covers.
    pub command_offset: u64,
    pub commands_applied: u64,
    /// blake3 of the engine's state, in hex.
    pub state_hash: String,
}

impl From<EngineCheckpointView> for EngineCheckpoint {
    fn from(c: EngineCheckpointView) -> Self {
        EngineCheckpoint {
            seq: c.seq,
            time_ms: c.time_ms,
            command_offset: c.command_offset,
            commands_applied: c.commands_applied,
            state_hash: hex::encode(c.state_hash.0),
        }
    }
}

/// How the exchange runs: what any caller may know.
#[derive(SimpleObject, Clone)]
pub struct SystemStatus {
    /// Whether the engine refuses commands without valid credentials.
    pub credentials_required: bool,
    /// The next events-log seq the read models will apply.
    pub projected_seq: u64,
    pub last_checkpoint: Option<EngineCheckpoint>,
}

impl From<WithdrawalView> for Withdrawal {
    fn from(w: WithdrawalView) -> Self {
        Withdrawal {
            id: w.withdrawal.0,
            account: w.account.0,
            asset: w.asset.to_string(),
            amount: dm(w.amount),
            status: w.status.into(),
            requested_ms: w.requested_ms,
            updated_ms: w.updated_ms,
        }
    }
}
