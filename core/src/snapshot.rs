//! Snapshot, restore and the state hash. The snapshot is canonical: it lists the
//! state's logical content in a fixed order (accounts by id, each book best price
//! first and oldest first within a price, stops in trigger order), never a hash map's
//! order or the slab's layout, so two cores that agree on content agree on bytes.

use serde::{Deserialize, Serialize};
use tape_schemas::*;

use crate::assets::{Asset, Assets};
use crate::book::{Order, OrderKind};
use crate::custody::Withdrawal;
use crate::exchange::{ApiKey, Core, CoreConfig, Parent};
use crate::ledger::{Account, SystemTotals};
use crate::market::Market;
use crate::signing::{Signing, Stream};

/// Bumped whenever the snapshot layout changes.
const SNAPSHOT_FORMAT: u16 = 6;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot does not decode: {0}")]
    Decode(#[from] tape_schemas::CodecError),
    #[error("snapshot format {found} is not supported (this build reads {SNAPSHOT_FORMAT})")]
    Format { found: u16 },
    #[error("snapshot is inconsistent: {0}")]
    Inconsistent(String),
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    format: u16,
    cfg: CoreConfig,
    time_ms: u64,
    next_order: u64,
    next_trade: u64,
    next_withdrawal: u64,
    assets: Vec<Asset>,
    markets: Vec<MarketSnapshot>,
    accounts: Vec<Account>,
    system: Vec<SystemTotals>,
    withdrawals: Vec<(u64, Withdrawal)>,
    deposit_refs: Vec<(u16, ExternalRef)>,
    parents: Vec<(u64, Parent)>,
    next_api_key: u64,
    api_keys: Vec<(u64, ApiKey)>,
    dedupe: Vec<(u64, CommandId, u64, CommandResult)>,
    signing: Vec<(u64, Stream)>,
    credentials_required: bool,
    trusted_ms: u64,
    /// Armed dead-man switches: (account, deadline), by account.
    dead_men: Vec<(AccountId, u64)>,
}

#[derive(Serialize, Deserialize)]
struct MarketSnapshot {
    spec: MarketSpec,
    status: MarketStatus,
    fees: FeeRates,
    price_band_bps: Option<u32>,
    reference_ticks: Option<u64>,
    last_ticks: Option<u64>,
    /// Bids best first, then asks best first, each level oldest first.
    resting: Vec<Order>,
    /// Waiting stops in (side, trigger, id) order.
    stops: Vec<Order>,
}

/// The state hash of canonical snapshot bytes (for callers that keep the bytes too).
pub fn state_hash_of(snapshot: &[u8]) -> [u8; 32] {
    *blake3::hash(snapshot).as_bytes()
}

impl Core {
    /// The canonical snapshot bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        let markets = self
            .markets
            .iter()
            .map(|mk| {
                let mut resting = Vec::new();
                for side in [Side::Buy, Side::Sell] {
                    for (_, level) in mk.book.levels(side) {
                        resting.extend(mk.book.queue(level).map(|s| mk.book.get(s).clone()));
                    }
                }
                let stops = mk
                    .stops
                    .iter()
                    .map(|(_, _, id)| mk.book.get(self.orders.live[id].1).clone())
                    .collect();
                MarketSnapshot {
                    spec: mk.spec.clone(),
                    status: mk.status,
                    fees: mk.fees,
                    price_band_bps: mk.price_band_bps,
                    reference_ticks: mk.reference_ticks,
                    last_ticks: mk.last_ticks,
                    resting,
                    stops,
                }
            })
            .collect();
        let mut accounts: Vec<Account> = self.ledger.accounts.values().cloned().collect();
        accounts.sort_by_key(|a| a.id);
        let mut deposit_refs: Vec<(u16, ExternalRef)> =
            self.custody.deposit_refs.iter().copied().collect();
        deposit_refs.sort();
        let snapshot = Snapshot {
            format: SNAPSHOT_FORMAT,
            cfg: self.cfg,
            time_ms: self.clock.now_ms,
            next_order: self.orders.next_id,
            next_trade: self.markets.next_trade,
            next_withdrawal: self.custody.next_withdrawal,
            assets: self.assets.list.clone(),
            markets,
            accounts,
            system: self.ledger.system.clone(),
            withdrawals: self
                .custody
                .withdrawals
                .iter()
                .map(|(k, v)| (*k, *v))
                .collect(),
            deposit_refs,
            parents: self
                .orders
                .parents
                .iter()
                .map(|(k, v)| (*k, v.clone()))
                .collect(),
            next_api_key: self.keys.next_id,
            api_keys: self.keys.live.iter().map(|(k, v)| (*k, *v)).collect(),
            dedupe: self.dedupe.entries().collect(),
            signing: self.signing.entries().collect(),
            credentials_required: self.keys.required,
            trusted_ms: self.clock.trusted_ms,
            dead_men: self.dead_men.entries().collect(),
        };
        tape_schemas::codec::to_bincode_large(&snapshot).expect("a snapshot always encodes")
    }

    /// blake3 of the canonical snapshot bytes.
    pub fn state_hash(&self) -> [u8; 32] {
        state_hash_of(&self.snapshot())
    }

    /// Rebuilds a core from snapshot bytes.
    pub fn restore(bytes: &[u8]) -> Result<Core, SnapshotError> {
        let s: Snapshot = tape_schemas::codec::from_bincode_large(bytes)?;
        if s.format != SNAPSHOT_FORMAT {
            return Err(SnapshotError::Format { found: s.format });
        }
        let bad = |what: &str| SnapshotError::Inconsistent(what.to_string());
        let mut core = Core::new(s.cfg);
        core.clock.now_ms = s.time_ms;
        core.orders.next_id = s.next_order;
        core.markets.next_trade = s.next_trade;
        core.custody.next_withdrawal = s.next_withdrawal;
        core.assets = Assets::from_list(s.assets);
        for account in s.accounts {
            core.ledger.accounts.insert(account.id, account);
        }
        core.ledger.system = s.system;
        for (i, ms) in s.markets.into_iter().enumerate() {
            let m = i as u32;
            let mut mk = Market::new(ms.spec, &core.assets)
                .map_err(|r| bad(&format!("market {i}: {r:?}")))?;
            mk.status = ms.status;
            mk.fees = ms.fees;
            mk.price_band_bps = ms.price_band_bps;
            mk.reference_ticks = ms.reference_ticks;
            mk.last_ticks = ms.last_ticks;
            core.markets.push(mk);
            for o in ms.resting.into_iter().chain(ms.stops) {
                core.restore_order(m, o).map_err(|e| bad(&e))?;
            }
        }
        core.custody.withdrawals = s.withdrawals.into_iter().collect();
        core.custody.deposit_refs = s.deposit_refs.into_iter().collect();
        for (id, p) in &s.parents {
            if let Parent::Sliced {
                account,
                client_order_id: Some(cid),
                ..
            } = p
            {
                core.orders.client_ids.insert((*account, *cid), *id);
            }
        }
        core.orders.parents = s.parents.into_iter().collect();
        core.keys.next_id = s.next_api_key;
        core.keys.live = s.api_keys.into_iter().collect();
        for (t, id, signer, result) in s.dedupe {
            core.dedupe.record(
                id,
                signer,
                t,
                result,
                s.cfg.dedupe_capacity,
                s.cfg.dedupe_window_ms,
            );
        }
        core.signing =
            Signing::from_entries(s.signing).ok_or_else(|| bad("signing streams out of order"))?;
        core.keys.required = s.credentials_required;
        core.clock.trusted_ms = s.trusted_ms;
        for (account, deadline) in s.dead_men {
            core.dead_men.set(account, Some(deadline));
        }
        Ok(core)
    }

    fn restore_order(&mut self, m: u32, o: Order) -> Result<(), String> {
        if !self.ledger.accounts.contains_key(&o.account) {
            return Err(format!("order {} of unknown account {}", o.id, o.account));
        }
        let id = o.id;
        if let Some(cid) = o.client_order_id.as_deref() {
            self.orders.client_ids.insert((o.account, *cid), id);
        }
        if let Some(expires_at_ms) = o.expiry() {
            self.orders.expiries.insert((expires_at_ms, id));
        }
        let mk = &mut self.markets[m];
        let key = (o.side, o.trigger_ticks, id);
        let kind = o.kind;
        let slot = mk.book.insert(o);
        match kind {
            OrderKind::Limit => mk.book.push_back(slot),
            OrderKind::StopMarket | OrderKind::StopLimit => {
                mk.stops.insert(key);
            }
        }
        if self.orders.live.insert(id, (m, slot)).is_some() {
            return Err(format!("order {id} appears twice"));
        }
        Ok(())
    }
}
