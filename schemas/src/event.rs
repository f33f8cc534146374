//! Events: everything the engine decided. Each command yields exactly one `Outcome`,
//! with the command's own effects after it; the expiries its time stamp sets off
//! (the clock passing good-till-date orders) come just before it. Every balance change is a `Posting` that moves an amount
//! from one place to another, so debits equal credits per asset by construction and
//! any reader can fold postings into balances.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::command::*;
use crate::ids::*;
use crate::money::Dec;
use crate::reason::{DoneReason, RejectReason};

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// The one answer to one command. `duplicate` is true when the command id was
    /// already seen: the original result is repeated and nothing is executed.
    Outcome {
        command: CommandId,
        result: CommandResult,
        duplicate: bool,
    },

    AssetCreated(AssetSpec),
    AssetUpdated {
        asset: AssetCode,
        enabled: bool,
    },
    MarketCreated(MarketSpec),
    /// The market's full adjustable state after an admin change.
    MarketUpdated {
        market: Symbol,
        status: MarketStatus,
        fees: FeeRates,
        price_band_bps: Option<u32>,
        reference_price: Option<Dec>,
    },
    AccountFeesSet {
        account: AccountId,
        market: Symbol,
        fees: Option<FeeRates>,
    },
    AccountRestrictionsSet {
        account: AccountId,
        can_trade: bool,
        can_withdraw: bool,
    },
    WithdrawalLimitSet {
        account: AccountId,
        asset: AssetCode,
        daily_limit: Option<Dec>,
    },

    Deposited {
        account: AccountId,
        asset: AssetCode,
        amount: Dec,
        reference: ExternalRef,
    },
    WithdrawalRequested {
        withdrawal: WithdrawalId,
        account: AccountId,
        asset: AssetCode,
        amount: Dec,
    },
    WithdrawalCompleted {
        withdrawal: WithdrawalId,
        account: AccountId,
        asset: AssetCode,
        amount: Dec,
    },
    WithdrawalFailed {
        withdrawal: WithdrawalId,
        account: AccountId,
        asset: AssetCode,
        amount: Dec,
    },

    /// A new order, as placed, with the funds it holds (in quote for buys, base for
    /// sells; zero for market orders, which spend from available at once).
    OrderAccepted {
        order: OrderId,
        account: AccountId,
        market: Symbol,
        side: Side,
        order_type: OrderType,
        client_order_id: Option<ClientOrderId>,
        parent: Option<OrderId>,
        held: Dec,
    },
    /// A stop order whose trigger was reached; it now executes.
    OrderTriggered {
        order: OrderId,
        market: Symbol,
        last_price: Dec,
    },
    /// The order joined the book: `visible` is what the book shows, `hidden` the
    /// iceberg reserve.
    OrderRested {
        order: OrderId,
        market: Symbol,
        side: Side,
        price: Dec,
        visible: Dec,
        hidden: Dec,
    },
    /// An amend took effect. `requeued` is false when priority was kept.
    OrderAmended {
        order: OrderId,
        market: Symbol,
        side: Side,
        price: Dec,
        visible: Dec,
        hidden: Dec,
        held: Dec,
        requeued: bool,
    },
    /// An iceberg's visible part was used up and refilled from hidden (it goes to the
    /// back of its price level).
    OrderRefilled {
        order: OrderId,
        market: Symbol,
        visible: Dec,
        hidden: Dec,
    },
    /// The order left the book, or ended without resting. `filled` is its total fill.
    OrderDone {
        order: OrderId,
        market: Symbol,
        reason: DoneReason,
        filled: Dec,
    },

    Trade {
        trade: TradeId,
        market: Symbol,
        price: Dec,
        quantity: Dec,
        /// price × quantity, in quote.
        quote_quantity: Dec,
        taker_side: Side,
        maker_order: OrderId,
        taker_order: OrderId,
        maker_account: AccountId,
        taker_account: AccountId,
        /// Fees are charged in quote, rounded down to the quote's minor unit.
        maker_fee: Dec,
        taker_fee: Dec,
    },

    /// One double-entry movement of `amount` of `asset`.
    Posting {
        asset: AssetCode,
        from: Party,
        to: Party,
        amount: Dec,
        cause: Cause,
    },

    SlicedPlaced {
        parent: OrderId,
        market: Symbol,
        children: Vec<OrderId>,
    },
    BracketExitPlaced {
        entry: OrderId,
        exit: OrderId,
    },
    /// Cumulative realized profit and loss of a bracket, in quote, fees included,
    /// after a fill of its exit.
    BracketPnl {
        entry: OrderId,
        exit: OrderId,
        closed_quantity: Dec,
        realized_pnl: Dec,
    },
    BracketExitRejected {
        entry: OrderId,
        reason: RejectReason,
    },

    /// Written by the engine (not the core) after the command at `command_offset`
    /// when `command_offset + 1` is a multiple of the checkpoint interval: the state
    /// hash there, for auditors to compare.
    Checkpoint {
        commands_applied: u64,
        state_hash: Hash32,
    },

    ApiKeyCreated {
        key: ApiKeyId,
        role: ApiRole,
        account: Option<AccountId>,
        secret_hash: Hash32,
    },
    ApiKeyRevoked {
        key: ApiKeyId,
    },
    /// `RequireCredentials` took effect.
    CredentialsRequired {
        required: bool,
    },
    /// `CancelAllAfter` armed, refreshed (`deadline_ms`) or disarmed (`None`) an
    /// account's dead-man switch.
    DeadManSwitchSet {
        account: AccountId,
        deadline_ms: Option<u64>,
    },
    /// A dead-man switch's deadline passed before it was refreshed: every order of
    /// the account follows, ended with `dead_man_switch`. Like expiries, it comes
    /// before the outcome of the command whose time set it off.
    DeadManSwitchFired {
        account: AccountId,
        deadline_ms: u64,
    },
    /// The answer to item `item` (from 0) of the batch `command`; the item's effects
    /// follow it. A rejected item has none.
    ItemOutcome {
        command: CommandId,
        item: u16,
        result: CommandResult,
    },
    /// A perpetual market was created; `brackets` as the engine derived them.
    PerpetualCreated {
        spec: crate::perp::PerpetualSpec,
        brackets: Vec<crate::perp::BracketTerms>,
    },
    /// A new index price, and the mark price the engine derived from it.
    IndexPriceSet {
        market: Symbol,
        index: Dec,
        mark: Dec,
        source_ms: u64,
    },
    /// The engine's clock passed the index's staleness limit: the market only
    /// reduces positions until a fresh index arrives. Like expiries, it comes
    /// before the outcome of the command whose time set it off.
    IndexStale {
        market: Symbol,
        source_ms: u64,
    },
    LeverageTiersSet(crate::perp::TierCaps),
    AccountTierSet {
        account: AccountId,
        tier: crate::perp::LeverageTier,
    },
    LeverageSet {
        account: AccountId,
        market: Symbol,
        leverage: u32,
    },
    /// An account's position on a perpetual after a fill (`trade`) or a change of
    /// its leverage (`trade` is `None`): the signed size (long above zero), its
    /// cost (the entry notional, signed like the size), the profit or loss this
    /// change realized (before fees), the leverage its margin is held at and the
    /// initial margin it and its open orders now require.
    PositionChanged {
        account: AccountId,
        market: Symbol,
        trade: Option<TradeId>,
        size: Dec,
        cost: Dec,
        realized_pnl: Dec,
        leverage: u32,
        initial_margin: Dec,
    },
    /// An account's equity in a collateral asset (its available balance, its held
    /// margin and its unrealized profit and loss at the marks) fell below the
    /// maintenance margin of its positions settled in it: it is being liquidated.
    LiquidationStarted {
        account: AccountId,
        asset: AssetCode,
        equity: Dec,
        maintenance: Dec,
    },
    /// One step of a liquidation on one perpetual.
    LiquidationStep {
        account: AccountId,
        market: Symbol,
        stage: crate::perp::LiquidationStage,
        quantity: Dec,
        price: Option<Dec>,
    },
    /// The account's equity covers its maintenance margin again (or it has no
    /// position left): the liquidation is over.
    LiquidationEnded {
        account: AccountId,
        asset: AssetCode,
        equity: Dec,
        maintenance: Dec,
    },
    /// Auto-deleveraging: `quantity` of `account`'s position was closed at `price`
    /// (the bankruptcy price of `counterparty`, an account being liquidated whose
    /// position neither the book nor the insurance fund could take), with no fee.
    Deleveraged {
        account: AccountId,
        market: Symbol,
        counterparty: AccountId,
        quantity: Dec,
        price: Dec,
    },
    /// The insurance fund's position on a perpetual after it took one over or
    /// closed part of one: signed size and signed cost, as `PositionChanged`.
    InsurancePosition {
        market: Symbol,
        size: Dec,
        cost: Dec,
    },
    /// A funding round began: longs pay shorts `rate` (a fraction; negative: shorts
    /// pay longs) of their positions' value at `mark`, position by position over
    /// the next commands (`FundingPaid`). `premium` is the mean of the premium
    /// samples the index updates took since the last round.
    FundingRound {
        market: Symbol,
        at_ms: u64,
        rate: Dec,
        premium: Dec,
        mark: Dec,
    },
    /// An account's notional cap in a collateral (`account: None`: the default
    /// for every account), or its removal.
    NotionalCapSet {
        account: Option<AccountId>,
        asset: AssetCode,
        cap: Option<Dec>,
    },
    /// One position's funding for the round at `at_ms`: `amount` is what the
    /// account received (negative: paid), in the collateral.
    FundingPaid {
        account: AccountId,
        market: Symbol,
        at_ms: u64,
        size: Dec,
        amount: Dec,
    },
    /// A proof-of-liabilities round was published (`CommitLiabilities`).
    LiabilitiesCommitted(crate::LiabilityCommitment),
}

/// A 32-byte hash: hex in JSON, raw bytes in bincode.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Hash32(pub [u8; 32]);

impl std::fmt::Display for Hash32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl JsonSchema for Hash32 {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Hash32".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[0-9a-f]{64}$",
            "description": "32 bytes as 64 lowercase hex digits",
        })
    }
}

impl Serialize for Hash32 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Hash32 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            let bad = || serde::de::Error::custom(format_args!("{s:?} is not 64 hex digits"));
            if s.len() != 64 || !s.is_ascii() {
                return Err(bad());
            }
            let mut out = [0u8; 32];
            for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
                let hex = std::str::from_utf8(chunk).map_err(|_| bad())?;
                out[i] = u8::from_str_radix(hex, 16).map_err(|_| bad())?;
            }
            Ok(Hash32(out))
        } else {
            struct V;
            impl serde::de::Visitor<'_> for V {
                type Value = Hash32;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("32 bytes")
                }
                fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Hash32, E> {
                    <[u8; 32]>::try_from(v)
                        .map(Hash32)
                        .map_err(|_| E::invalid_length(v.len(), &self))
                }
            }
            d.deserialize_bytes(V)
        }
    }
}

/// One event as it sits on the events log: `seq` is gap-free from 1;
/// `command_offset` is the commands-log offset of the command that caused it; `hash`
/// chains every envelope to the one before.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
pub struct EventEnvelope {
    pub version: u16,
    pub seq: u64,
    pub command_offset: u64,
    pub time_ms: u64,
    pub prev_hash: Hash32,
    pub hash: Hash32,
    pub event: Event,
}

impl EventEnvelope {
    /// Builds an envelope and computes its hash from `prev_hash` and its content.
    pub fn seal(
        seq: u64,
        command_offset: u64,
        time_ms: u64,
        prev_hash: Hash32,
        event: Event,
    ) -> EventEnvelope {
        let mut e = EventEnvelope {
            version: crate::SCHEMA_VERSION,
            seq,
            command_offset,
            time_ms,
            prev_hash,
            hash: Hash32::default(),
            event,
        };
        e.hash = e.expected_hash();
        e
    }

    /// Seals an event and encodes it in one pass: returns the hash and the canonical
    /// bytes of the envelope (equal to `to_bincode(&EventEnvelope::seal(..))`), with
    /// the event encoded once for both.
    pub fn seal_encoded(
        seq: u64,
        command_offset: u64,
        time_ms: u64,
        prev_hash: Hash32,
        event: &Event,
    ) -> (Hash32, Vec<u8>) {
        let mut record = Vec::with_capacity(192);
        let hash =
            EventEnvelope::seal_into(seq, command_offset, time_ms, prev_hash, event, &mut record);
        (hash, record)
    }

    /// `seal_encoded`, appending the envelope's bytes to `record` (which may already
    /// hold a frame: see [`crate::record`]); returns the hash.
    pub fn seal_into(
        seq: u64,
        command_offset: u64,
        time_ms: u64,
        prev_hash: Hash32,
        event: &Event,
        record: &mut Vec<u8>,
    ) -> Hash32 {
        let start = record.len();
        crate::codec::write_bincode(
            &(crate::SCHEMA_VERSION, seq, command_offset, time_ms),
            record,
        )
        .expect("headers always encode");
        let head_end = record.len();
        // Room for the two hashes (each a 1-byte length and 32 bytes) between head
        // and event, filled in once the hash is known: no copy of the event.
        record.extend_from_slice(&[0u8; 66]);
        crate::codec::write_bincode(event, record).expect("events always encode");
        let mut h = blake3::Hasher::new();
        h.update(&prev_hash.0);
        h.update(&record[start..head_end]);
        h.update(&record[head_end + 66..]);
        let hash = Hash32(*h.finalize().as_bytes());
        let hashes = &mut record[head_end..head_end + 66];
        hashes[0] = 32;
        hashes[1..33].copy_from_slice(&prev_hash.0);
        hashes[33] = 32;
        hashes[34..].copy_from_slice(&hash.0);
        hash
    }

    /// The envelope's seq, command offset and whether it is an `Outcome`, read from
    /// its canonical bytes without decoding the event.
    pub fn peek(bytes: &[u8]) -> Result<(u64, u64, bool), crate::CodecError> {
        // The envelope's fields up to and including the event's variant index.
        type Head = (u16, u64, u64, u64, Hash32, Hash32, u32);
        let ((_, seq, command_offset, _, _, _, tag), _): (Head, usize) =
            bincode::serde::decode_from_slice(bytes, bincode::config::standard())?;
        Ok((seq, command_offset, tag == 0))
    }

    /// The envelope's canonical bytes taken apart without decoding the event: the
    /// header fields, the two hashes, and the slices the hash covers (`head`: version,
    /// seq, command offset, time; `event`: the event). For verifiers that check the
    /// chain on stored bytes and compare content by slices.
    pub fn parts(bytes: &[u8]) -> Result<EnvelopeParts<'_>, crate::CodecError> {
        let ((version, seq, command_offset, time_ms), head_len): ((u16, u64, u64, u64), usize) =
            bincode::serde::decode_from_slice(bytes, bincode::config::standard())?;
        let rest = &bytes[head_len..];
        if rest.len() < 67 || rest[0] != 32 || rest[33] != 32 {
            return Err(crate::CodecError::Decode(
                bincode::error::DecodeError::Other("the envelope's hashes are not 32 bytes each"),
            ));
        }
        let event = &rest[66..];
        let (event_tag, _): (u32, usize) =
            bincode::serde::decode_from_slice(event, bincode::config::standard())?;
        Ok(EnvelopeParts {
            version,
            seq,
            command_offset,
            time_ms,
            prev_hash: Hash32(rest[1..33].try_into().expect("32 bytes")),
            hash: Hash32(rest[34..66].try_into().expect("32 bytes")),
            head: &bytes[..head_len],
            event,
            event_tag,
        })
    }

    /// blake3(prev_hash ‖ canonical bytes of (version, seq, command_offset, time_ms, event)).
    pub fn expected_hash(&self) -> Hash32 {
        let body = crate::codec::to_bincode(&(
            self.version,
            self.seq,
            self.command_offset,
            self.time_ms,
            &self.event,
        ))
        .expect("events always encode");
        let mut h = blake3::Hasher::new();
        h.update(&self.prev_hash.0);
        h.update(&body);
        Hash32(*h.finalize().as_bytes())
    }
}

/// An envelope's canonical bytes, taken apart (see [`EventEnvelope::parts`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct EnvelopeParts<'a> {
    pub version: u16,
    pub seq: u64,
    pub command_offset: u64,
    pub time_ms: u64,
    pub prev_hash: Hash32,
    pub hash: Hash32,
    pub head: &'a [u8],
    pub event: &'a [u8],
    /// The event's variant index.
    pub event_tag: u32,
}

impl EnvelopeParts<'_> {
    /// What `hash` must be: blake3(prev_hash ‖ head ‖ event).
    pub fn chain_hash(&self) -> Hash32 {
        let mut h = blake3::Hasher::new();
        h.update(&self.prev_hash.0);
        h.update(self.head);
        h.update(self.event);
        Hash32(*h.finalize().as_bytes())
    }
}

impl Event {
    /// The bincode variant index of `Checkpoint`.
    pub fn checkpoint_tag() -> u32 {
        static TAG: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
        *TAG.get_or_init(|| {
            let e = Event::Checkpoint {
                commands_applied: 0,
                state_hash: Hash32::default(),
            };
            let bytes = crate::codec::to_bincode(&e).expect("events always encode");
            bincode::serde::decode_from_slice::<u32, _>(&bytes, bincode::config::standard())
                .expect("a variant index")
                .0
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CommandResult {
    /// `id` is what the command created or acted on: an order (or parent) id, a
    /// withdrawal id, or 0.
    Accepted {
        id: u64,
    },
    Rejected {
        reason: RejectReason,
    },
}

/// Where money sits: an account's available or held balance, the fee account, or
/// the world outside the exchange (deposits come from it, withdrawals go to it).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    Available(AccountId),
    Held(AccountId),
    Fees,
    World,
    /// A perpetual's clearing party: it takes realized losses and pays realized
    /// profits, so its balance (which may be negative) is minus the sum of the
    /// positions' signed costs.
    Clearing(Symbol),
    /// The insurance fund: it pays what an account's collateral cannot (a loss or
    /// fee beyond it). Its balance may go negative: that is bad debt.
    Insurance,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    Deposit,
    Withdrawal(WithdrawalId),
    /// A hold placed or released for an order.
    Order(OrderId),
    /// Settlement or fee of a trade.
    Trade(TradeId),
    /// Margin held or released for a position on a perpetual when its leverage
    /// changed.
    Position(Symbol),
    /// A funding payment on a perpetual, or its round's rounding booked to the
    /// insurance fund.
    Funding(Symbol),
}
