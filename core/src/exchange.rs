//! `Core`: the whole state and `apply`, which stamps time, answers duplicates, runs
//! one command and writes its one outcome. Admin and custody commands live here;
//! trading lives in `orders` and `matching`.

use tape_schemas::*;

use crate::assets::Assets;
use crate::clock::Clock;
use crate::custody::Custody;
use crate::deadman::DeadMen;
use crate::dedupe::Dedupe;
use crate::fees::Fees;
pub use crate::keys::ApiKey;
use crate::keys::Keys;
use crate::ledger::Ledger;
use crate::leverage::Leverage;
use crate::market::Markets;
pub(crate) use crate::orders::index::{Bracket, Orders, Parent};
use crate::perps::Perps;
use crate::restrictions::Restrictions;
use crate::signing::Signing;
use crate::units::{to_minor, UnitError};

pub use crate::config::CoreConfig;

/// How far ahead `apply_batch` prefetches: enough commands to cover a memory miss.
pub const PREFETCH_AHEAD: usize = 16;

/// Work that follows from a command's effects: stops to trigger, bracket exits to
/// place. Drained before `apply` returns, in order.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Pending {
    Stops(u32),
    PlaceExit(u64),
}

/// The deterministic state machine: all markets, books and balances. `Core` only
/// composes its parts and orchestrates them; each part's state is private to its
/// own module and changes through its methods (see the crate's header).
#[derive(Clone, Debug)]
pub struct Core {
    pub(crate) cfg: CoreConfig,
    pub(crate) clock: Clock,
    pub(crate) assets: Assets,
    pub(crate) markets: Markets,
    /// What only perpetual markets have: brackets, index and mark.
    pub(crate) perps: Perps,
    /// Tier caps, accounts' tiers and chosen leverage.
    pub(crate) leverage: Leverage,
    /// Positions on perpetuals and each account's margin.
    pub(crate) positions: crate::positions::Positions,
    /// Which accounts a new mark must check, and the liquidation backlog.
    pub(crate) watch: crate::watch::Watch,
    pub(crate) ledger: Ledger,
    pub(crate) fees: Fees,
    pub(crate) restrictions: Restrictions,
    pub(crate) orders: Orders,
    pub(crate) custody: Custody,
    pub(crate) keys: Keys,
    pub(crate) dead_men: DeadMen,
    /// Scratch space for signing bytes.
    pub(crate) scratch: Vec<u8>,
    pub(crate) dedupe: Dedupe,
    /// Each key's signing streams: what stops a signed record from running twice.
    pub(crate) signing: Signing,
    pub(crate) pending: Vec<Pending>,
    /// The last proof-of-liabilities round on the log.
    pub(crate) liabilities: Option<crate::liabilities::LastRound>,
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
            clock: Clock::default(),
            assets: Assets::default(),
            markets: Markets::new(),
            perps: Perps::default(),
            leverage: Leverage::default(),
            positions: Default::default(),
            watch: Default::default(),
            ledger: Ledger::default(),
            fees: Fees::default(),
            restrictions: Restrictions::default(),
            orders: Orders::new(),
            custody: Custody::new(),
            keys: Keys::new(),
            dead_men: DeadMen::default(),
            scratch: Vec::new(),
            dedupe: Dedupe::default(),
            signing: Signing::default(),
            pending: Vec::new(),
            liabilities: None,
        }
    }

    pub fn config(&self) -> CoreConfig {
        self.cfg
    }

    /// The engine's clock: the largest command time seen.
    pub fn time_ms(&self) -> u64 {
        self.clock.now()
    }

    /// The latest time stamped by the operator's side (admin keys; unsigned commands
    /// while credentials are optional): trader stamps may run at most
    /// `TIME_TOLERANCE_MS` past it. 0 before any.
    pub fn trusted_ms(&self) -> u64 {
        self.clock.trusted()
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
        let signer = envelope.auth.map_or(0, |a| a.key.0);
        let trusted = match self.admit(envelope, record, signer) {
            Ok(trusted) => trusted,
            Err((result, duplicate)) => {
                return push_outcome(out, envelope.id, result, duplicate);
            }
        };
        let time_ms = self.clock.stamp(envelope.time_ms, trusted);
        self.advance_time(time_ms, out);
        if let Some(result) = self.dedupe.get(&envelope.id, signer) {
            return push_outcome(out, envelope.id, result, true);
        }
        let result = self.run(envelope, out);
        self.dedupe.record(
            envelope.id,
            signer,
            self.clock.now(),
            result,
            self.cfg.dedupe_capacity,
            self.cfg.dedupe_window_ms,
        );
    }

    /// Whether a command may run, and whether its time is trusted. Time from the
    /// operator's side (admin keys; unsigned commands while credentials are
    /// optional) is trusted; a trader key's stamp may run at most
    /// `TIME_TOLERANCE_MS` ahead of it, so no market maker can move everyone's clock.
    /// A refusal is the answer to give, and whether it is a copy's.
    fn admit(
        &mut self,
        envelope: &CommandEnvelope,
        record: Option<Record<'_>>,
        signer: u64,
    ) -> Result<bool, (CommandResult, bool)> {
        if envelope.auth.is_none() && !self.keys.required() {
            return match self.clock.check_trusted(&self.cfg, envelope) {
                Ok(()) => Ok(true),
                Err(reason) => Err((CommandResult::Rejected { reason }, false)),
            };
        }
        match self.authorize(envelope, record) {
            Ok(role) => Ok(role == ApiRole::Admin),
            Err(reason) => {
                // A copy of a signed record: answered with the original result while
                // it is remembered, else refused; either way, nothing runs.
                let replayed = reason == RejectReason::ReplayedSeq;
                let original = replayed
                    .then(|| self.dedupe.get(&envelope.id, signer))
                    .flatten();
                let result = original.unwrap_or(CommandResult::Rejected { reason });
                Err((result, replayed))
            }
        }
    }

    /// Runs an admitted command: its `Outcome` first (filled in once known), then its
    /// effects and what they set off. A rejection leaves no effects.
    fn run(&mut self, envelope: &CommandEnvelope, out: &mut Vec<Event>) -> CommandResult {
        let at = out.len();
        push_outcome(out, envelope.id, CommandResult::Accepted { id: 0 }, false);
        let outcome = match &envelope.command {
            _ if envelope.version != SCHEMA_VERSION => Err(RejectReason::UnsupportedVersion),
            Command::Batch { account, items } => self.run_batch(envelope.id, *account, items, out),
            command => self.execute(command, out),
        };
        let result = match outcome {
            Ok(id) => {
                self.drain_pending(out);
                self.settle_margin(out);
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
        result
    }

    /// Runs a `Batch`'s items in order, each answered by its `ItemOutcome` (filled in
    /// once known) with its effects after it; a refused item changes nothing and the
    /// next one runs. The batch's own answer is the number of items accepted.
    fn run_batch(
        &mut self,
        id: CommandId,
        account: AccountId,
        items: &[BatchItem],
        out: &mut Vec<Event>,
    ) -> Outcome {
        let max = self.cfg.batch_items_max.min(usize::from(u16::MAX));
        if items.is_empty() || items.len() > max {
            return Err(RejectReason::BatchSize);
        }
        let mut accepted = 0;
        for (item, command) in (0u16..).zip(items) {
            let at = out.len();
            let pending = CommandResult::Accepted { id: 0 };
            out.push(Event::ItemOutcome {
                command: id,
                item,
                result: pending,
            });
            let result = match self.execute(&command.command(account), out) {
                Ok(id) => {
                    self.drain_pending(out);
                    accepted += 1;
                    CommandResult::Accepted { id }
                }
                Err(reason) => {
                    assert_eq!(
                        out.len(),
                        at + 1,
                        "a rejected item has no effects: {command:?}"
                    );
                    CommandResult::Rejected { reason }
                }
            };
            out[at] = Event::ItemOutcome {
                command: id,
                item,
                result,
            };
        }
        Ok(accepted)
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
        let reason = RejectReason::MalformedCommand;
        push_outcome(
            out,
            CommandId::default(),
            CommandResult::Rejected { reason },
            false,
        );
    }

    fn advance_time(&mut self, time_ms: u64, out: &mut Vec<Event>) {
        self.clock.advance(time_ms);
        while let Some((expires, id)) = self.orders.next_expiry() {
            if expires > self.clock.now() {
                break;
            }
            let (m, slot) = self.orders.locate(id);
            self.remove_order(m, slot, DoneReason::Expired, out);
        }
        self.fire_dead_men(out);
        self.stale_indexes(out);
        self.drain_pending(out);
    }

    /// A clock tick's own effect: quiet markets still shed the signing streams
    /// that have died.
    fn tick(&mut self) -> Outcome {
        self.signing.sweep(self.clock.now());
        Ok(0)
    }

    /// Runs one command's own effects; `Err` means it changed nothing.
    fn execute(&mut self, command: &Command, out: &mut Vec<Event>) -> Outcome {
        match command {
            Command::PlaceOrder(order) => self.place_order(order, out),
            Command::PlaceSliced(sliced) => self.place_sliced(sliced, false, out),
            Command::PlaceSlicedReduceOnly(sliced) => self.place_sliced(sliced, true, out),
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
            Command::CancelAllAfter {
                account,
                timeout_ms,
            } => self.cancel_all_after(*account, *timeout_ms, out),
            // A batch is run item by item (`run_batch`); its items are never batches.
            Command::Batch { .. } => Err(RejectReason::BatchSize),
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
            Command::CreateApiKey {
                role,
                account,
                secret_hash,
                mac_key,
            } => self.create_api_key(*role, *account, *secret_hash, *mac_key, out),
            Command::RevokeApiKey { key } => self.revoke_api_key(*key, out),
            Command::RequireCredentials { required } => self.require_credentials(*required, out),
            Command::ClockTick | Command::AllowClockJump => self.tick(),
            Command::CreateAsset(_)
            | Command::SetAssetEnabled { .. }
            | Command::CreateMarket(_)
            | Command::SetMarketStatus { .. }
            | Command::SetMarketFees { .. }
            | Command::SetPriceBand { .. }
            | Command::SetAccountFees { .. }
            | Command::SetAccountRestrictions { .. }
            | Command::SetWithdrawalLimit { .. }
            | Command::CreatePerpetual(_) => self.administer(command, out),
            Command::SetIndexPrice { .. }
            | Command::SetLeverageTiers(_)
            | Command::SetAccountTier { .. }
            | Command::SetLeverage { .. }
            | Command::FundInsurance { .. }
            | Command::SetNotionalCap { .. } => self.perpetual_command(command, out),
            Command::PlaceReduceOnly(order) => self.place_reduce_only(order, out),
            Command::ClosePosition { account, market } => {
                self.close_position(*account, market, out)
            }
            Command::CommitLiabilities(c) => self.commit_liabilities(c, out),
        }
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
        self.ledger
            .corrupt(account, a, crate::Balance { available, held });
    }

    /// Live signing streams across all keys (what replay protection keeps).
    pub fn signing_streams(&self) -> usize {
        self.signing.streams()
    }

    /// Refuses a command that would open a new account beyond `accounts_max`.
    pub(crate) fn admit_account(&self, account: AccountId) -> Result<(), RejectReason> {
        if !self.ledger.exists(account) && self.ledger.len() >= self.cfg.accounts_max {
            return Err(RejectReason::TooManyAccounts);
        }
        Ok(())
    }

    /// Whether every command must carry credentials.
    pub fn credentials_required(&self) -> bool {
        self.keys.required()
    }

    /// A live API key: its role, its account (traders) and the hash of its secret.
    pub fn api_key(&self, key: ApiKeyId) -> Option<&ApiKey> {
        self.keys.get(key)
    }
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

fn push_outcome(out: &mut Vec<Event>, command: CommandId, result: CommandResult, duplicate: bool) {
    out.push(Event::Outcome {
        command,
        result,
        duplicate,
    });
}
