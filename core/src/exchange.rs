//! `Core`: the whole state and `apply`, which stamps time, answers duplicates, runs
//! one command and writes its one outcome. Admin and custody commands live here;
//! trading lives in `orders` and `matching`.

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::{FxHashMap, FxHashSet};
use tape_schemas::*;

use crate::assets::{Asset, Assets, ASSET_SCALE_MAX};
use crate::book::Slot;
use crate::dedupe::Dedupe;
use crate::ledger::Ledger;
use crate::market::{Market, FEE_PPM_MAX};
use crate::signing::Signing;
use crate::units::{to_minor, UnitError};

pub use crate::config::CoreConfig;

/// How far ahead `apply_batch` prefetches: enough commands to cover a memory miss.
pub const PREFETCH_AHEAD: usize = 16;

/// A registered API key as the core keeps it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub struct ApiKey {
    pub role: ApiRole,
    pub account: Option<AccountId>,
    pub secret_hash: Hash32,
    /// Commands signed by this key carry `blake3::keyed_hash(mac_key, …)`.
    pub mac_key: Hash32,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Withdrawal {
    pub account: AccountId,
    pub asset: u16,
    pub amount_minor: u64,
    pub day: u64,
}

/// Bracket bookkeeping, keyed by the entry order's id.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Bracket {
    pub account: AccountId,
    pub market: u32,
    pub side: Side,
    pub exit_ticks: u64,
    pub entry_open: bool,
    pub entry_filled_lots: u64,
    /// Quote paid (buy entry, fees included) or received (sell entry, net of fees).
    pub entry_quote_minor: u64,
    pub exit: Option<u64>,
    pub exit_filled_lots: u64,
    pub exit_quote_minor: u64,
    pub cancelled: bool,
}

#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) enum Parent {
    /// A sliced order's open children.
    Sliced {
        account: AccountId,
        children: BTreeSet<u64>,
        client_order_id: Option<ClientOrderId>,
    },
    Bracket(Bracket),
}

/// Work that follows from a command's effects: stops to trigger, bracket exits to
/// place. Drained before `apply` returns, in order.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Pending {
    Stops(u32),
    PlaceExit(u64),
}

/// The deterministic state machine: all markets, books and balances.
#[derive(Clone, Debug)]
pub struct Core {
    pub(crate) cfg: CoreConfig,
    pub(crate) time_ms: u64,
    pub(crate) next_order: u64,
    pub(crate) next_trade: u64,
    pub(crate) next_withdrawal: u64,
    pub(crate) assets: Assets,
    pub(crate) markets: Vec<Market>,
    pub(crate) market_index: FxHashMap<Symbol, u32>,
    pub(crate) ledger: Ledger,
    /// Live order id -> (market, slot).
    pub(crate) orders: FxHashMap<u64, (u32, Slot)>,
    pub(crate) client_ids: FxHashMap<(AccountId, ClientOrderId), u64>,
    /// GTD orders by (expiry, id).
    pub(crate) expiries: BTreeSet<(u64, u64)>,
    pub(crate) withdrawals: BTreeMap<u64, Withdrawal>,
    pub(crate) deposit_refs: FxHashSet<(u16, ExternalRef)>,
    pub(crate) parents: BTreeMap<u64, Parent>,
    /// Live API keys by id (revoked keys are removed).
    pub(crate) api_keys: BTreeMap<u64, ApiKey>,
    pub(crate) next_api_key: u64,
    /// Whether every command must carry credentials (`RequireCredentials`).
    pub(crate) credentials_required: bool,
    /// The latest time stamped by the operator's side (admin keys, or unsigned
    /// commands while credentials are optional).
    pub(crate) trusted_ms: u64,
    /// Scratch space for signing bytes.
    scratch: Vec<u8>,
    pub(crate) dedupe: Dedupe,
    /// Each key's signing streams: what stops a signed record from running twice.
    pub(crate) signing: Signing,
    pub(crate) pending: Vec<Pending>,
}

impl Default for Core {
    fn default() -> Self {
        Core::new(CoreConfig::default())
    }
}

pub(crate) type Outcome = Result<u64, RejectReason>;

impl Core {
    pub fn new(cfg: CoreConfig) -> Self {
        Core {
            cfg,
            time_ms: 0,
            next_order: 1,
            next_trade: 1,
            next_withdrawal: 1,
            assets: Assets::default(),
            markets: Vec::new(),
            market_index: FxHashMap::default(),
            ledger: Ledger::default(),
            orders: FxHashMap::default(),
            client_ids: FxHashMap::default(),
            expiries: BTreeSet::new(),
            withdrawals: BTreeMap::new(),
            deposit_refs: FxHashSet::default(),
            parents: BTreeMap::new(),
            api_keys: BTreeMap::new(),
            next_api_key: 1,
            credentials_required: false,
            trusted_ms: 0,
            scratch: Vec::new(),
            dedupe: Dedupe::default(),
            signing: Signing::default(),
            pending: Vec::new(),
        }
    }

    pub fn config(&self) -> CoreConfig {
        self.cfg
    }

    /// The engine's clock: the largest command time seen.
    pub fn time_ms(&self) -> u64 {
        self.time_ms
    }

    /// The latest time stamped by the operator's side (admin keys; unsigned commands
    /// while credentials are optional): trader stamps may run at most
    /// `TIME_TOLERANCE_MS` past it. 0 before any.
    pub fn trusted_ms(&self) -> u64 {
        self.trusted_ms
    }

    /// Applies one command and appends its events to `out`: expiries its time caused,
    /// then exactly one `Outcome`, then the command's effects.
    ///
    /// A command that fails its credentials check is answered with a rejection before
    /// anything else: its time does not move the clock and its id is not remembered,
    /// so a forger can neither expire orders nor take a command id.
    pub fn apply(&mut self, envelope: &CommandEnvelope, out: &mut Vec<Event>) {
        self.apply_record(envelope, None, out)
    }

    /// `apply` for a command that arrived as `record`: its MAC, if any, covers the
    /// record's bytes as written (see `tape_schemas::auth`). Without the record the
    /// core encodes the envelope to find them.
    pub fn apply_record(
        &mut self,
        envelope: &CommandEnvelope,
        record: Option<Record<'_>>,
        out: &mut Vec<Event>,
    ) {
        // Time from the operator's side (admin keys; unsigned commands while
        // credentials are optional) is trusted; a trader key's stamp may run at most
        // `TIME_TOLERANCE_MS` ahead of it, so no market maker can move everyone's
        // clock.
        let signer = envelope.auth.map_or(0, |a| a.key.0);
        let trusted = match (envelope.auth.is_some(), self.credentials_required) {
            (false, false) => match self.check_trusted_time(envelope) {
                Ok(()) => true,
                Err(reason) => {
                    out.push(Event::Outcome {
                        command: envelope.id,
                        result: CommandResult::Rejected { reason },
                        duplicate: false,
                    });
                    return;
                }
            },
            _ => match self.authorize(envelope, record) {
                Ok(role) => role == ApiRole::Admin,
                Err(reason) => {
                    // A copy of a signed record: answered with the original result
                    // while it is remembered, else refused; either way, nothing runs.
                    let replayed = reason == RejectReason::ReplayedSeq;
                    let original = replayed
                        .then(|| self.dedupe.get(&envelope.id, signer))
                        .flatten();
                    out.push(Event::Outcome {
                        command: envelope.id,
                        result: original.unwrap_or(CommandResult::Rejected { reason }),
                        duplicate: replayed,
                    });
                    return;
                }
            },
        };
        let time_ms = if trusted {
            self.trusted_ms = self.trusted_ms.max(envelope.time_ms);
            envelope.time_ms
        } else {
            envelope
                .time_ms
                .min(self.trusted_ms.saturating_add(TIME_TOLERANCE_MS))
        };
        self.advance_time(time_ms, out);
        if let Some(result) = self.dedupe.get(&envelope.id, signer) {
            out.push(Event::Outcome {
                command: envelope.id,
                result,
                duplicate: true,
            });
            return;
        }
        let at = out.len();
        out.push(Event::Outcome {
            command: envelope.id,
            result: CommandResult::Accepted { id: 0 },
            duplicate: false,
        });
        let outcome = if envelope.version != SCHEMA_VERSION {
            Err(RejectReason::UnsupportedVersion)
        } else {
            self.execute(&envelope.command, out)
        };
        let result = match outcome {
            Ok(id) => {
                self.drain_pending(out);
                CommandResult::Accepted { id }
            }
            Err(reason) => {
                assert_eq!(
                    out.len(),
                    at + 1,
                    "a rejected command has no effects: {:?}",
                    envelope.command
                );
                CommandResult::Rejected { reason }
            }
        };
        out[at] = Event::Outcome {
            command: envelope.id,
            result,
            duplicate: false,
        };
        self.dedupe.record(
            envelope.id,
            signer,
            self.time_ms,
            result,
            self.cfg.dedupe_capacity,
            self.cfg.dedupe_window_ms,
        );
    }

    /// Applies a batch of commands in order, exactly as `apply` one by one would;
    /// `ends[i]` is `out.len()` after command `i`. Batching lets the core fetch the
    /// dedupe window's memory for later commands while it works on earlier ones.
    pub fn apply_batch(
        &mut self,
        batch: &[CommandEnvelope],
        out: &mut Vec<Event>,
        ends: &mut Vec<usize>,
    ) {
        for (i, envelope) in batch.iter().enumerate() {
            if let Some(later) = batch.get(i + PREFETCH_AHEAD) {
                self.prefetch(later);
            }
            self.apply(envelope, out);
            ends.push(out.len());
        }
    }

    /// A hint that `later` will be applied `PREFETCH_AHEAD` commands from now: the
    /// core starts fetching the memory it will need. Changes no state.
    pub fn prefetch(&self, later: &CommandEnvelope) {
        self.dedupe.prefetch(&later.id, PREFETCH_AHEAD);
    }

    /// Applies one command record as it sits on the commands log (either codec); a
    /// malformed record is answered with its rejection and the decoding error is
    /// returned. The engine and the auditors' replay both apply records this way.
    pub fn apply_bytes(
        &mut self,
        bytes: &[u8],
        out: &mut Vec<Event>,
    ) -> Result<(), tape_schemas::CodecError> {
        match tape_schemas::codec::decode_record(bytes) {
            Ok((command, record)) => {
                self.apply_record(&command, Some(record), out);
                Ok(())
            }
            Err(e) => {
                self.reject_malformed(out);
                Err(e)
            }
        }
    }

    /// Answers bytes on the commands log that are not a command at all: one
    /// `MalformedCommand` rejection with the nil command id. Time does not move.
    pub fn reject_malformed(&mut self, out: &mut Vec<Event>) {
        out.push(Event::Outcome {
            command: CommandId::default(),
            result: CommandResult::Rejected {
                reason: RejectReason::MalformedCommand,
            },
            duplicate: false,
        });
    }

    fn advance_time(&mut self, time_ms: u64, out: &mut Vec<Event>) {
        self.time_ms = self.time_ms.max(time_ms);
        while let Some(&(expires, id)) = self.expiries.first() {
            if expires > self.time_ms {
                break;
            }
            let (m, slot) = self.orders[&id];
            self.remove_order(m, slot, DoneReason::Expired, out);
        }
        self.drain_pending(out);
    }

    fn execute(&mut self, command: &Command, out: &mut Vec<Event>) -> Outcome {
        match command {
            Command::CreateAsset(spec) => self.create_asset(spec, out),
            Command::SetAssetEnabled { asset, enabled } => {
                let a = self.assets.find(asset).ok_or(RejectReason::UnknownAsset)?;
                self.assets.get_mut(a).enabled = *enabled;
                out.push(Event::AssetUpdated {
                    asset: *asset,
                    enabled: *enabled,
                });
                Ok(0)
            }
            Command::CreateMarket(spec) => self.create_market(spec, out),
            Command::SetMarketStatus { market, status } => {
                self.set_market_status(market, *status, out)
            }
            Command::SetMarketFees { market, fees } => {
                let m = self.market_id(market)?;
                check_fees(fees)?;
                self.markets[m as usize].fees = *fees;
                self.push_market_updated(m, out);
                Ok(0)
            }
            Command::SetPriceBand {
                market,
                band_bps,
                reference_price,
            } => {
                let m = self.market_id(market)?;
                let mk = &self.markets[m as usize];
                if band_bps.is_some_and(|b| b > 10_000) {
                    return Err(RejectReason::InvalidMarketSpec);
                }
                let reference = reference_price.map(|p| mk.price_ticks(p)).transpose()?;
                let mk = &mut self.markets[m as usize];
                mk.price_band_bps = *band_bps;
                mk.reference_ticks = reference;
                self.push_market_updated(m, out);
                Ok(0)
            }
            Command::SetAccountFees {
                account,
                market,
                fees,
            } => {
                let m = self.market_id(market)?;
                if let Some(f) = fees {
                    check_fees(f)?;
                }
                self.admit_account(*account)?;
                let acct = self.ledger.open_account(*account);
                acct.fee_overrides.retain(|(mm, _)| *mm != m);
                if let Some(f) = fees {
                    acct.fee_overrides.push((m, *f));
                    acct.fee_overrides.sort_by_key(|(mm, _)| *mm);
                }
                out.push(Event::AccountFeesSet {
                    account: *account,
                    market: *market,
                    fees: *fees,
                });
                Ok(0)
            }
            Command::SetAccountRestrictions {
                account,
                can_trade,
                can_withdraw,
            } => {
                self.admit_account(*account)?;
                let acct = self.ledger.open_account(*account);
                acct.can_trade = *can_trade;
                acct.can_withdraw = *can_withdraw;
                out.push(Event::AccountRestrictionsSet {
                    account: *account,
                    can_trade: *can_trade,
                    can_withdraw: *can_withdraw,
                });
                Ok(0)
            }
            Command::SetWithdrawalLimit {
                account,
                asset,
                daily_limit,
            } => {
                let a = self.assets.find(asset).ok_or(RejectReason::UnknownAsset)?;
                let limit = daily_limit
                    .map(|l| amount_minor(l, self.assets.get(a).scale, true))
                    .transpose()?;
                self.admit_account(*account)?;
                let acct = self.ledger.open_account(*account);
                acct.withdrawal_limits.retain(|(aa, _)| *aa != a);
                acct.withdrawal_limits.push((a, limit));
                acct.withdrawal_limits.sort_by_key(|(aa, _)| *aa);
                out.push(Event::WithdrawalLimitSet {
                    account: *account,
                    asset: *asset,
                    daily_limit: *daily_limit,
                });
                Ok(0)
            }
            Command::Deposit {
                account,
                asset,
                amount,
                reference,
            } => self.deposit(*account, asset, *amount, reference, out),
            Command::RequestWithdrawal {
                account,
                asset,
                amount,
            } => self.request_withdrawal(*account, asset, *amount, out),
            Command::CompleteWithdrawal { withdrawal } => {
                self.finish_withdrawal(*withdrawal, true, out)
            }
            Command::FailWithdrawal { withdrawal } => {
                self.finish_withdrawal(*withdrawal, false, out)
            }
            Command::PlaceOrder(order) => self.place_order(order, out),
            Command::PlaceSliced(sliced) => self.place_sliced(sliced, out),
            Command::PlaceBracket(bracket) => self.place_bracket(bracket, out),
            Command::CancelOrder { account, order } => self.cancel_order(*account, order, out),
            Command::CancelAll { account, market } => {
                self.cancel_all(*account, market.as_ref(), out)
            }
            Command::AmendOrder {
                account,
                order,
                price,
                quantity,
            } => self.amend_order(*account, order, *price, *quantity, out),
            Command::ClockTick | Command::AllowClockJump => {
                // Quiet markets still shed the signing streams that have died.
                self.signing.sweep(self.time_ms);
                Ok(0)
            }
            Command::CreateApiKey {
                role,
                account,
                secret_hash,
                mac_key,
            } => {
                if (*role == ApiRole::Trader) != account.is_some() {
                    return Err(RejectReason::InvalidApiKey);
                }
                if self.api_keys.len() >= self.cfg.api_keys_max {
                    return Err(RejectReason::TooManyApiKeys);
                }
                let key = self.next_api_key;
                self.next_api_key += 1;
                let record = ApiKey {
                    role: *role,
                    account: *account,
                    secret_hash: *secret_hash,
                    mac_key: *mac_key,
                };
                self.api_keys.insert(key, record);
                out.push(Event::ApiKeyCreated {
                    key: ApiKeyId(key),
                    role: *role,
                    account: *account,
                    secret_hash: *secret_hash,
                });
                Ok(key)
            }
            Command::RevokeApiKey { key } => {
                self.api_keys
                    .remove(&key.0)
                    .ok_or(RejectReason::UnknownApiKey)?;
                self.signing.forget_key(key.0);
                out.push(Event::ApiKeyRevoked { key: *key });
                Ok(key.0)
            }
            Command::RequireCredentials { required } => {
                self.credentials_required = *required;
                out.push(Event::CredentialsRequired {
                    required: *required,
                });
                Ok(0)
            }
        }
    }

    /// Checks a command's credentials against the clock as it stands (before the
    /// command's own time): the key is live, the MAC matches, the expiry is neither
    /// past nor too far ahead, the key's role allows the command, and — last, so only
    /// a command that passed everything else uses it up — its stream has not used its
    /// `seq`. Returns the signing key's role.
    fn authorize(
        &mut self,
        envelope: &CommandEnvelope,
        record: Option<Record<'_>>,
    ) -> Result<ApiRole, RejectReason> {
        let auth = envelope.auth.ok_or(RejectReason::MissingCredentials)?;
        let key = *self
            .api_keys
            .get(&auth.key.0)
            .ok_or(RejectReason::UnknownApiKey)?;
        let mac = match record {
            Some(Record::Json(text)) => {
                let signed =
                    json_signing_text(text, &auth.mac).ok_or(RejectReason::BadSignature)?;
                mac_of(&key.mac_key, signed.as_bytes())
            }
            Some(Record::Bincode(bytes)) => {
                let signed =
                    bincode_signed_bytes(bytes, &auth.mac).ok_or(RejectReason::BadSignature)?;
                mac_of(&key.mac_key, signed)
            }
            None => envelope
                .mac(&auth, &key.mac_key, &mut self.scratch)
                .map_err(|_| RejectReason::BadSignature)?,
        };
        // blake3::Hash compares in constant time.
        if blake3::Hash::from_bytes(mac.0) != blake3::Hash::from_bytes(auth.mac.0) {
            return Err(RejectReason::BadSignature);
        }
        if auth.expires_ms < self.time_ms {
            return Err(RejectReason::CredentialsExpired);
        }
        if auth.expires_ms > self.time_ms.saturating_add(MAX_VALIDITY_MS) {
            return Err(RejectReason::ExpiryTooFar);
        }
        let allowed = match key.role {
            ApiRole::Admin => true,
            ApiRole::Auditor => false,
            ApiRole::Trader => {
                !envelope.command.is_admin() && envelope.command.account() == key.account
            }
        };
        if !allowed {
            return Err(RejectReason::NotPermitted);
        }
        if key.role == ApiRole::Admin {
            self.check_trusted_time(envelope)?;
        }
        self.signing.admit(
            auth.key.0,
            auth.stream,
            auth.seq,
            auth.expires_ms,
            self.time_ms,
            self.cfg.signing_streams_per_key_max,
        )?;
        Ok(key.role)
    }

    /// Test hook: sets an account's balance (available, held), as a bug in the
    /// core would, so tests can show what the engine does when an invariant breaks.
    #[cfg(feature = "test-hooks")]
    pub fn corrupt_balance(
        &mut self,
        account: AccountId,
        asset: &AssetCode,
        available: u64,
        held: u64,
    ) {
        let a = self.assets.find(asset).expect("a known asset");
        let b = self.ledger.open_account(account).balance_mut(a);
        b.available = available;
        b.held = held;
    }

    /// Live signing streams across all keys (what replay protection keeps).
    pub fn signing_streams(&self) -> usize {
        self.signing.streams()
    }

    /// What a trusted clock may say: nothing past the horizon, and no jump forward
    /// beyond `clock_jump_max_ms` unless the command is the operator's
    /// `AllowClockJump` (the first time sets the clock from nothing). Going back is
    /// harmless: the clock is a running maximum.
    fn check_trusted_time(&self, envelope: &CommandEnvelope) -> Result<(), RejectReason> {
        let t = envelope.time_ms;
        if t > self.cfg.time_max_ms {
            return Err(RejectReason::TimeBeyondHorizon);
        }
        let jump_ok = self.time_ms == 0
            || matches!(envelope.command, Command::AllowClockJump)
            || t <= self.time_ms.saturating_add(self.cfg.clock_jump_max_ms);
        if !jump_ok {
            return Err(RejectReason::ClockJumpTooLarge);
        }
        Ok(())
    }

    /// Refuses a command that would open a new account beyond `accounts_max`.
    pub(crate) fn admit_account(&self, account: AccountId) -> Result<(), RejectReason> {
        if self.ledger.account(account).is_none()
            && self.ledger.accounts.len() >= self.cfg.accounts_max
        {
            return Err(RejectReason::TooManyAccounts);
        }
        Ok(())
    }

    /// Whether every command must carry credentials.
    pub fn credentials_required(&self) -> bool {
        self.credentials_required
    }

    /// A live API key: its role, its account (traders) and the hash of its secret.
    pub fn api_key(&self, key: ApiKeyId) -> Option<&ApiKey> {
        self.api_keys.get(&key.0)
    }

    pub(crate) fn market_id(&self, symbol: &Symbol) -> Result<u32, RejectReason> {
        self.market_index
            .get(symbol)
            .copied()
            .ok_or(RejectReason::UnknownMarket)
    }

    fn create_asset(&mut self, spec: &AssetSpec, out: &mut Vec<Event>) -> Outcome {
        if self.assets.find(&spec.code).is_some() {
            return Err(RejectReason::AssetExists);
        }
        if self.assets.list.len() >= usize::from(self.cfg.assets_max) {
            return Err(RejectReason::TooManyAssets);
        }
        if spec.scale > ASSET_SCALE_MAX {
            return Err(RejectReason::InvalidAssetScale);
        }
        let limit = spec
            .daily_withdrawal_limit
            .map(|l| amount_minor(l, spec.scale, true))
            .transpose()?;
        self.assets.add(Asset {
            code: spec.code,
            scale: spec.scale,
            enabled: true,
            daily_withdrawal_limit_minor: limit,
        });
        out.push(Event::AssetCreated(spec.clone()));
        Ok(0)
    }

    fn create_market(&mut self, spec: &MarketSpec, out: &mut Vec<Event>) -> Outcome {
        if self.market_index.contains_key(&spec.symbol) {
            return Err(RejectReason::MarketExists);
        }
        let m = u32::try_from(self.markets.len()).map_err(|_| RejectReason::TooManyMarkets)?;
        if m >= self.cfg.markets_max {
            return Err(RejectReason::TooManyMarkets);
        }
        let market = Market::new(spec.clone(), &self.assets)?;
        self.markets.push(market);
        self.market_index.insert(spec.symbol, m);
        out.push(Event::MarketCreated(spec.clone()));
        Ok(u64::from(m))
    }

    fn set_market_status(
        &mut self,
        symbol: &Symbol,
        status: MarketStatus,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let m = self.market_id(symbol)?;
        self.markets[m as usize].status = status;
        self.push_market_updated(m, out);
        if status == MarketStatus::Disabled {
            let ids: BTreeSet<u64> = self.markets[m as usize]
                .book
                .slab
                .iter()
                .filter(|o| o.id != 0)
                .map(|o| o.id)
                .collect();
            for id in ids {
                let (mm, slot) = self.orders[&id];
                self.remove_order(mm, slot, DoneReason::MarketDisabled, out);
            }
        }
        Ok(0)
    }

    fn push_market_updated(&self, m: u32, out: &mut Vec<Event>) {
        let mk = &self.markets[m as usize];
        out.push(Event::MarketUpdated {
            market: mk.spec.symbol,
            status: mk.status,
            fees: mk.fees,
            price_band_bps: mk.price_band_bps,
            reference_price: mk.reference_ticks.map(|t| mk.price_dec(t)),
        });
    }
}

fn check_fees(f: &FeeRates) -> Result<(), RejectReason> {
    if f.maker_ppm > FEE_PPM_MAX || f.taker_ppm > FEE_PPM_MAX {
        return Err(RejectReason::InvalidFee);
    }
    Ok(())
}

/// An asset amount in minor units; `allow_zero` for limits.
pub(crate) fn amount_minor(amount: Dec, scale: u8, allow_zero: bool) -> Result<u64, RejectReason> {
    let r = if allow_zero {
        crate::units::to_units_allow_zero(amount, crate::units::minor_unit(scale))
    } else {
        to_minor(amount, scale)
    };
    r.map_err(|e| match e {
        UnitError::NotPositive => RejectReason::InvalidAmount,
        UnitError::NotMultiple => RejectReason::TooManyDecimals,
        UnitError::OutOfRange => RejectReason::OutOfRange,
    })
}
