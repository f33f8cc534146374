//! Snapshot, restore and the state hash. This file only joins the parts: each part
//! lists its own state (`snapshot`) and rebuilds itself from that list (`restore`).
//!
//! The snapshot is canonical: every part lists its logical content in a fixed order
//! (accounts by id, each book best price first and oldest first within a price,
//! stops in trigger order), never a hash map's order or the slab's layout, so two
//! cores that agree on content agree on bytes.

use serde::{Deserialize, Serialize};
use tape_schemas::*;

use crate::assets::{Asset, Assets};
use crate::clock::Clock;
use crate::custody::{Custody, CustodySnapshot};
use crate::deadman::DeadMen;
use crate::exchange::{Core, CoreConfig};
use crate::fees::Fees;
use crate::keys::{Keys, KeysSnapshot};
use crate::ledger::{Ledger, LedgerSnapshot};
use crate::leverage::{Leverage, LeverageSnapshot};
use crate::market::{Market, MarketSnapshot, Markets};
use crate::orders::index::{Orders, OrdersSnapshot};
use crate::perps::{PerpSnapshot, Perps};
use crate::restrictions::{Allowed, Restrictions};
use crate::signing::{Signing, Stream};

/// Bumped whenever the snapshot layout changes.
const SNAPSHOT_FORMAT: u16 = 12;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot does not decode: {0}")]
    Decode(#[from] tape_schemas::CodecError),
    #[error("snapshot format {found} is not supported (this build reads {SNAPSHOT_FORMAT})")]
    Format { found: u16 },
    #[error("snapshot is inconsistent: {0}")]
    Inconsistent(String),
}

/// Each part's own list, in the order `Core` declares them.
#[derive(Serialize, Deserialize)]
struct Snapshot {
    format: u16,
    cfg: CoreConfig,
    clock: Clock,
    assets: Vec<Asset>,
    next_trade: u64,
    markets: Vec<MarketSnapshot>,
    /// Perpetuals by market number.
    perps: Vec<PerpSnapshot>,
    leverage: LeverageSnapshot,
    positions: crate::positions::PositionsSnapshot,
    watch: crate::watch::WatchSnapshot,
    ledger: LedgerSnapshot,
    fees: Vec<(AccountId, u32, FeeRates)>,
    restrictions: Vec<(AccountId, Allowed)>,
    orders: OrdersSnapshot,
    custody: CustodySnapshot,
    keys: KeysSnapshot,
    /// The answer window: (time, command id, signer, result), oldest first.
    dedupe: Vec<(u64, CommandId, u64, CommandResult)>,
    signing: Vec<(u64, Stream)>,
    /// Armed dead-man switches: (account, deadline), by account.
    dead_men: Vec<(AccountId, u64)>,
    /// The last proof-of-liabilities round.
    liabilities: Option<crate::liabilities::LastRound>,
}

/// The state hash of canonical snapshot bytes (for callers that keep the bytes too).
pub fn state_hash_of(snapshot: &[u8]) -> [u8; 32] {
    *blake3::hash(snapshot).as_bytes()
}

impl Core {
    /// The canonical snapshot bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        let snapshot = Snapshot {
            format: SNAPSHOT_FORMAT,
            cfg: self.cfg,
            clock: self.clock,
            assets: self.assets.list().to_vec(),
            next_trade: self.markets.next_trade(),
            markets: self.markets.iter().map(Market::snapshot).collect(),
            perps: self.perps.snapshot(),
            leverage: self.leverage.snapshot(),
            positions: self.positions.snapshot(),
            watch: self.watch.snapshot(),
            ledger: self.ledger.snapshot(),
            fees: self.fees.snapshot(),
            restrictions: self.restrictions.snapshot(),
            orders: self.orders.snapshot(),
            custody: self.custody.snapshot(),
            keys: self.keys.snapshot(),
            dedupe: self.dedupe.entries().collect(),
            signing: self.signing.entries().collect(),
            dead_men: self.dead_men.entries().collect(),
            liabilities: self.liabilities,
        };
        tape_schemas::codec::to_bincode_large(&snapshot).expect("a snapshot always encodes")
    }

    /// blake3 of the canonical snapshot bytes.
    pub fn state_hash(&self) -> [u8; 32] {
        state_hash_of(&self.snapshot())
    }

    /// Rebuilds a core from snapshot bytes. The invariants that hold before a
    /// snapshot must hold after the restore, or the snapshot is refused.
    pub fn restore(bytes: &[u8]) -> Result<Core, SnapshotError> {
        // The format first: another build's layout may not even decode.
        let format: u16 = tape_schemas::codec::from_bincode_prefix(bytes)?;
        if format != SNAPSHOT_FORMAT {
            return Err(SnapshotError::Format { found: format });
        }
        let s: Snapshot = tape_schemas::codec::from_bincode_large(bytes)?;
        let core = Core::join(s).map_err(SnapshotError::Inconsistent)?;
        core.check_invariants()
            .map_err(|v| SnapshotError::Inconsistent(v.to_string()))?;
        Ok(core)
    }

    /// Each part restored from its own list, then the orders indexed.
    fn join(s: Snapshot) -> Result<Core, String> {
        let mut core = Core::new(s.cfg);
        core.clock = s.clock;
        core.assets = Assets::from_list(s.assets);
        core.ledger = Ledger::restore(s.ledger, core.assets.len())?;
        core.orders = Orders::restore(s.orders);
        core.markets = Markets::restored(s.next_trade);
        for (m, ms) in (0u32..).zip(s.markets) {
            let (market, placed) = Market::restore(ms, &core.assets)?;
            core.markets.push(market);
            for (slot, o) in placed {
                if !core.ledger.exists(o.account) {
                    return Err(format!("order {} of unknown account {}", o.id, o.account));
                }
                core.orders.restore_order(m, slot, &o)?;
            }
        }
        core.perps = Perps::restore(s.perps, &core.markets)?;
        let (ledger, perps) = (&core.ledger, &core.perps);
        core.leverage = Leverage::restore(s.leverage, |a| ledger.exists(a), |m| perps.contains(m))?;
        core.restore_positions(s.positions)?;
        let stands = |a, m, t: &crate::watch::Trigger| core.trigger_stands(a, m, t);
        let is_perpetual = |m| core.perps.contains(m);
        core.watch = crate::watch::Watch::restore(s.watch, stands, is_perpetual)?;
        let markets = u32::try_from(core.markets.len()).unwrap_or(u32::MAX);
        core.fees = Fees::restore(s.fees, markets)?;
        core.restrictions = Restrictions::restore(s.restrictions)?;
        core.custody = Custody::restore(s.custody)?;
        core.keys = Keys::restore(s.keys)?;
        for (t, id, signer, result) in s.dedupe {
            let (capacity, window) = (s.cfg.dedupe_capacity, s.cfg.dedupe_window_ms);
            core.dedupe.record(id, signer, t, result, capacity, window);
        }
        core.signing = Signing::from_entries(s.signing).ok_or("signing streams out of order")?;
        core.dead_men = DeadMen::restore(s.dead_men);
        core.liabilities = s.liabilities;
        Ok(core)
    }
}
