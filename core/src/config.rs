//! The core's configuration: every bound it enforces.

/// A UTC day, for daily withdrawal limits and the answer window's age.
pub(crate) const DAY_MS: u64 = 86_400_000;

/// Bounds the engine enforces. They are part of the state machine's definition:
/// every replica of a log must run with the same values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CoreConfig {
    /// How long a command id is remembered to answer a repeat (command time).
    pub dedupe_window_ms: u64,
    /// How many command ids are remembered at most to answer repeats (0: none).
    /// Replays of signed records are stopped by their stream and `seq`, not by this.
    pub dedupe_capacity: usize,
    /// Live signing streams an API key may have at once; a stream lives until every
    /// command it signed has expired (at most `MAX_VALIDITY_MS` after its last).
    pub signing_streams_per_key_max: usize,
    pub open_orders_per_account_max: usize,
    /// Resting orders and waiting stops across all accounts.
    pub open_orders_max: usize,
    pub slices_max: u32,
    /// Live sliced and bracket parents across all accounts.
    pub parents_max: usize,
    pub assets_max: u16,
    pub markets_max: u32,
    pub accounts_max: usize,
    /// Live API keys (revoked ones do not count).
    pub api_keys_max: usize,
    pub pending_withdrawals_max: usize,
    /// Deposit references remembered (each deposit's, forever: it is what makes
    /// deposits idempotent).
    pub deposit_references_max: usize,
    /// The latest time a trusted clock may say (ms since the UNIX epoch).
    pub time_max_ms: u64,
    /// The furthest a trusted clock may move forward in one command, unless the
    /// command is the operator's `AllowClockJump`.
    pub clock_jump_max_ms: u64,
    /// Items a `Batch` may carry (at most 65,535).
    pub batch_items_max: usize,
}

impl Default for CoreConfig {
    fn default() -> Self {
        let l = tape_schemas::limits::LIMITS;
        let n = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        CoreConfig {
            dedupe_window_ms: l.dedupe_window_ms,
            dedupe_capacity: n(l.dedupe_capacity),
            signing_streams_per_key_max: n(l.signing_streams_per_key_max),
            open_orders_per_account_max: n(l.open_orders_per_account_max),
            open_orders_max: n(l.open_orders_max),
            slices_max: l.slices_max,
            parents_max: n(l.parents_max),
            assets_max: l.assets_max,
            markets_max: l.markets_max,
            accounts_max: n(l.accounts_max),
            api_keys_max: n(l.api_keys_max),
            pending_withdrawals_max: n(l.pending_withdrawals_max),
            deposit_references_max: n(l.deposit_references_max),
            time_max_ms: l.time_max_ms,
            clock_jump_max_ms: l.clock_jump_max_ms,
            batch_items_max: n(l.batch_items_max),
        }
    }
}
