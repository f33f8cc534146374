//! The bounds the engine enforces by default, in one place: the core builds
//! `CoreConfig::default()` from them, and the read side quotes them when it says why
//! a command was refused. `docs/limits.md` lists them for people.

/// The highest fee rate a market or an account's tier may charge: 10%.
pub const FEE_PPM_MAX: u32 = 100_000;

/// The largest asset scale: 10^18 minor units still leave room in a `u64` for
/// eighteen whole units; most assets use 2 to 8.
pub const ASSET_SCALE_MAX: u8 = 18;

/// The longest price band: 100% either side of the reference.
pub const PRICE_BAND_BPS_MAX: u32 = 10_000;

/// The default bounds (see `CoreConfig` in `tape-core` for what each one means).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub dedupe_window_ms: u64,
    pub dedupe_capacity: u64,
    pub signing_streams_per_key_max: u64,
    pub open_orders_per_account_max: u64,
    pub open_orders_max: u64,
    pub slices_max: u32,
    pub parents_max: u64,
    pub assets_max: u16,
    pub markets_max: u32,
    pub accounts_max: u64,
    pub api_keys_max: u64,
    pub pending_withdrawals_max: u64,
    pub deposit_references_max: u64,
    pub time_max_ms: u64,
    pub clock_jump_max_ms: u64,
    pub batch_items_max: u64,
}

const DAY_MS: u64 = 86_400_000;

/// The bounds `tape run` and `tape engine` run with.
pub const LIMITS: Limits = Limits {
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
};
