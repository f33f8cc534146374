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
        CoreConfig {
            dedupe_window_ms: DAY_MS,
            dedupe_capacity: 16_384,
            signing_streams_per_key_max: 16,
            open_orders_per_account_max: 10_000,
            open_orders_max: 10_000_000,
            slices_max: 100,
            parents_max: 1_000_000,
            assets_max: 4_096,
            markets_max: 4_096,
            accounts_max: 10_000_000,
            api_keys_max: 100_000,
            pending_withdrawals_max: 1_000_000,
            deposit_references_max: 100_000_000,
            // 2100-01-01T00:00:00Z.
            time_max_ms: 4_102_444_800_000,
            clock_jump_max_ms: 7 * DAY_MS,
            batch_items_max: 20,
        }
    }
}
