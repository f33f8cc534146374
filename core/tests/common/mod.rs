//! A small harness for core tests: a BTC-USDT market with fees, funded accounts,
//! and helpers that apply a command, check every invariant after it, and return its
//! events.
#![allow(dead_code)]

use tape_core::{Core, CoreConfig};
use tape_schemas::*;

pub use tape_testkit::{code, d, sign_on, spec, sym};

pub const BTC_USDT: &str = "BTC-USDT";
pub const ALICE: AccountId = AccountId(1);
pub const BOB: AccountId = AccountId(2);
pub const CAROL: AccountId = AccountId(3);

/// The stream `H::signed` signs on.
pub const DEFAULT_STREAM: u64 = 0x5eed;

pub struct H {
    pub core: Core,
    pub time_ms: u64,
    next_id: u128,
    refs: u64,
    /// The next seq of each key's default signing stream.
    seqs: std::collections::BTreeMap<u64, u64>,
}

impl H {
    /// An empty core (dedupe off, so a rejected command leaves the snapshot
    /// byte-identical).
    pub fn empty() -> H {
        H::with_config(CoreConfig::default())
    }

    pub fn with_config(cfg: CoreConfig) -> H {
        let cfg = CoreConfig {
            dedupe_capacity: 0,
            ..cfg
        };
        H {
            core: Core::new(cfg),
            time_ms: 1_700_000_000_000,
            next_id: 1,
            refs: 0,
            seqs: Default::default(),
        }
    }

    /// `new()`'s market and accounts with the dedupe window on (as in production).
    pub fn with_dedupe(cfg: CoreConfig) -> H {
        let mut h = H {
            core: Core::new(cfg),
            time_ms: 1_700_000_000_000,
            next_id: 1,
            refs: 0,
            seqs: Default::default(),
        };
        h.setup();
        h
    }

    /// `new()`'s market and accounts on a core with `cfg`.
    pub fn with_market(cfg: CoreConfig) -> H {
        let mut h = H::with_config(cfg);
        h.setup();
        h
    }

    /// BTC (8 decimals) and USDT (6), market BTC-USDT with tick 0.01, lot 0.0001,
    /// min notional 1 USDT, maker 0.1%, taker 0.2%; Alice, Bob and Carol each hold
    /// 10 BTC and 1,000,000 USDT.
    pub fn new() -> H {
        H::with_market(CoreConfig::default())
    }

    fn setup(&mut self) {
        let h = self;
        h.ok(Command::CreateAsset(AssetSpec {
            code: code("BTC"),
            scale: 8,
            daily_withdrawal_limit: None,
        }));
        h.ok(Command::CreateAsset(AssetSpec {
            code: code("USDT"),
            scale: 6,
            daily_withdrawal_limit: None,
        }));
        h.ok(Command::CreateMarket(spec(BTC_USDT, "BTC", "USDT")));
        for a in [ALICE, BOB, CAROL] {
            h.deposit(a, "BTC", "10");
            h.deposit(a, "USDT", "1000000");
        }
    }

    pub fn next_command_id(&mut self) -> CommandId {
        self.next_id += 1;
        CommandId::from_u128(self.next_id)
    }

    /// Applies a command, checks invariants and one outcome, returns all events.
    pub fn exec(&mut self, command: Command) -> Vec<Event> {
        let id = self.next_command_id();
        self.exec_with_id(id, command)
    }

    pub fn exec_with_id(&mut self, id: CommandId, command: Command) -> Vec<Event> {
        self.apply(&CommandEnvelope::new(id, self.time_ms, command))
    }

    /// Registers an API key whose secret is `secret`.
    pub fn key(&mut self, role: ApiRole, account: Option<AccountId>, secret: &str) -> ApiKeyId {
        let (id, _) = self.ok(Command::CreateApiKey {
            role,
            account,
            secret_hash: hash_secret(secret),
            mac_key: mac_key(secret),
        });
        ApiKeyId(id)
    }

    /// A new envelope at the current time, signed with `key` (whose secret is
    /// `secret`) on its default stream (`DEFAULT_STREAM`) with the next seq,
    /// expiring at `expires_ms`.
    pub fn signed(
        &mut self,
        command: Command,
        key: ApiKeyId,
        secret: &str,
        expires_ms: u64,
    ) -> CommandEnvelope {
        let env = self.envelope(command);
        self.sign(env, key, secret, expires_ms)
    }

    /// Signs `env` with `key` on its default stream with the next seq.
    pub fn sign(
        &mut self,
        env: CommandEnvelope,
        key: ApiKeyId,
        secret: &str,
        expires_ms: u64,
    ) -> CommandEnvelope {
        let next = self.seqs.entry(key.0).or_insert(1);
        let seq = *next;
        *next += 1;
        sign_on(env, key, secret, DEFAULT_STREAM, seq, expires_ms)
    }

    /// A new envelope at the current time.
    pub fn envelope(&mut self, command: Command) -> CommandEnvelope {
        let id = self.next_command_id();
        CommandEnvelope::new(id, self.time_ms, command)
    }

    /// Applies an envelope as it is; checks invariants and one outcome.
    pub fn apply(&mut self, envelope: &CommandEnvelope) -> Vec<Event> {
        let id = envelope.id;
        let mut out = Vec::new();
        self.core.apply(envelope, &mut out);
        self.core
            .check_invariants()
            .unwrap_or_else(|e| panic!("invariant broken: {e}\nevents: {out:#?}"));
        let outcomes = out
            .iter()
            .filter(|e| matches!(e, Event::Outcome { command, .. } if *command == id))
            .count();
        assert_eq!(outcomes, 1, "exactly one outcome: {out:#?}");
        out
    }

    /// Applies a command that must be accepted; returns its id and events.
    pub fn ok(&mut self, command: Command) -> (u64, Vec<Event>) {
        let envelope = self.envelope(command);
        self.ok_envelope(&envelope)
    }

    /// Applies an envelope that must be accepted.
    pub fn ok_envelope(&mut self, envelope: &CommandEnvelope) -> (u64, Vec<Event>) {
        let out = self.apply(envelope);
        match outcome(&out) {
            CommandResult::Accepted { id } => (id, out),
            CommandResult::Rejected { reason } => {
                panic!("{:?} rejected: {reason:?}", envelope.command)
            }
        }
    }

    /// Applies a command that must be rejected, and checks that it changed nothing.
    pub fn rejected(&mut self, command: Command) -> RejectReason {
        let envelope = self.envelope(command);
        self.rejected_envelope(&envelope)
    }

    /// Applies an envelope that must be rejected, and checks that it changed nothing.
    pub fn rejected_envelope(&mut self, envelope: &CommandEnvelope) -> RejectReason {
        let command = &envelope.command;
        let before = self.core.snapshot();
        let out = self.apply(envelope);
        assert_eq!(out.len(), 1, "a rejection has no effects: {out:#?}");
        assert_eq!(
            self.core.snapshot(),
            before,
            "a rejected command changed the state"
        );
        match outcome(&out) {
            CommandResult::Rejected { reason } => reason,
            CommandResult::Accepted { .. } => panic!("{command:?} was accepted"),
        }
    }

    pub fn deposit(&mut self, account: AccountId, asset: &str, amount: &str) {
        self.refs += 1;
        let reference = format!("dep-{}", self.refs);
        self.ok(tape_testkit::deposit(account, asset, amount, &reference));
    }

    /// A market order on BTC-USDT that must be accepted.
    pub fn market(
        &mut self,
        account: AccountId,
        side: Side,
        size: MarketSize,
    ) -> (u64, Vec<Event>) {
        self.ok(order(account, side, OrderType::Market { size }))
    }

    pub fn limit(
        &mut self,
        account: AccountId,
        side: Side,
        price: &str,
        qty: &str,
    ) -> (u64, Vec<Event>) {
        self.ok(limit(account, side, price, qty, TimeInForce::Gtc))
    }

    pub fn available(&self, account: AccountId, asset: &str) -> u64 {
        self.core
            .balance(account, &code(asset))
            .map_or(0, |b| b.available)
    }

    pub fn held(&self, account: AccountId, asset: &str) -> u64 {
        self.core
            .balance(account, &code(asset))
            .map_or(0, |b| b.held)
    }

    pub fn fees(&self, asset: &str) -> u64 {
        self.core.fees_collected(&code(asset)).unwrap()
    }

    pub fn is_open(&self, account: AccountId, order: u64) -> bool {
        self.core.account_orders(account).contains(&OrderId(order))
    }
}

pub fn outcome(events: &[Event]) -> CommandResult {
    events
        .iter()
        .find_map(|e| match e {
            Event::Outcome { result, .. } => Some(*result),
            _ => None,
        })
        .expect("an outcome")
}

#[allow(unused_imports)]
pub use tape_testkit::{deposit, limit};

pub fn order(account: AccountId, side: Side, order_type: OrderType) -> Command {
    Command::PlaceOrder(NewOrder {
        account,
        market: sym(BTC_USDT),
        side,
        order_type,
        client_order_id: None,
        stp: StpMode::CancelTaker,
    })
}

pub fn trades(events: &[Event]) -> Vec<(Dec, Dec, u64, u64)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Trade {
                price,
                quantity,
                maker_order,
                taker_order,
                ..
            } => Some((*price, *quantity, maker_order.0, taker_order.0)),
            _ => None,
        })
        .collect()
}

pub fn done(events: &[Event], order: u64) -> Option<(DoneReason, Dec)> {
    events.iter().find_map(|e| match e {
        Event::OrderDone {
            order: o,
            reason,
            filled,
            ..
        } if o.0 == order => Some((*reason, *filled)),
        _ => None,
    })
}

/// Asserts that `order` ended in `events` for `reason` with `filled` filled.
#[track_caller]
/// The exit a bracket's entry placed in these events, if any.
pub fn bracket_exit(events: &[Event], entry: u64) -> Option<u64> {
    events.iter().find_map(|e| match e {
        Event::BracketExitPlaced { entry: en, exit } if en.0 == entry => Some(exit.0),
        _ => None,
    })
}

pub fn assert_done(events: &[Event], order: u64, reason: DoneReason, filled: &str) {
    assert_eq!(
        done(events, order),
        Some((reason, d(filled))),
        "order {order}"
    );
}

/// An amend of order `id`: a new price, a new quantity, or both.
pub fn amend(account: AccountId, id: u64, price: Option<&str>, quantity: Option<&str>) -> Command {
    Command::AmendOrder {
        account,
        order: OrderRef::Id(OrderId(id)),
        price: price.map(d),
        quantity: quantity.map(d),
    }
}

pub fn cancel(account: AccountId, id: u64) -> Command {
    Command::CancelOrder {
        account,
        order: OrderRef::Id(OrderId(id)),
    }
}

// A perpetual beside BTC-USDT.

pub const PERP: &str = "BTC-PERP";
pub const STALE_MS: u64 = 10_000;

pub fn bracket(cap: &str, max_leverage: u32, maintenance_ppm: u32) -> LeverageBracket {
    LeverageBracket {
        notional_cap: d(cap),
        max_leverage,
        maintenance_ppm,
    }
}

/// BTC-PERP settled in USDT: Binance's first three BTCUSDT brackets, index moves of
/// at most 5%, stale after 10 s, index limits 1 to 10,000,000.
pub fn perp_spec() -> PerpetualSpec {
    PerpetualSpec {
        market: spec(PERP, "BTC", "USDT"),
        brackets: vec![
            bracket("50000", 125, 4_000),
            bracket("250000", 100, 5_000),
            bracket("1000000", 50, 10_000),
        ],
        index: IndexRules {
            max_move_ppm: 50_000,
            stale_after_ms: STALE_MS,
            min_price: d("1"),
            max_price: d("10000000"),
        },
        mark_basis_max_ppm: 5_000,
        funding_interval_ms: 8 * 3_600_000,
        open_interest_max: d("1000"),
    }
}

pub fn index(price: &str, source_ms: u64) -> Command {
    Command::SetIndexPrice {
        market: sym(PERP),
        price: d(price),
        source_ms,
    }
}

pub fn with_perp() -> H {
    let mut h = H::new();
    h.ok(Command::CreatePerpetual(perp_spec()));
    h
}

/// An order on BTC-PERP.
pub fn perp_order(account: AccountId, side: Side, order_type: OrderType) -> NewOrder {
    NewOrder {
        account,
        market: sym(PERP),
        side,
        order_type,
        client_order_id: None,
        stp: StpMode::CancelTaker,
    }
}

pub fn gtc(price: &str, qty: &str) -> OrderType {
    OrderType::Limit {
        price: d(price),
        quantity: d(qty),
        time_in_force: TimeInForce::Gtc,
        post_only: false,
        display_quantity: None,
    }
}

/// BTC-PERP and three more like it.
pub fn four_perps(h: &mut H) -> [Symbol; 4] {
    let symbols = [PERP, "BTC-PERP-2", "BTC-PERP-3", "BTC-PERP-4"].map(sym);
    for s in &symbols[1..] {
        let spec = PerpetualSpec {
            market: spec(s.as_str(), "BTC", "USDT"),
            ..perp_spec()
        };
        h.ok(Command::CreatePerpetual(spec));
    }
    symbols
}

/// Every market's index at `price`, a second on.
pub fn index_all(h: &mut H, symbols: &[Symbol], price: &str) {
    h.time_ms += 1_000;
    for s in symbols {
        let time = h.time_ms;
        h.ok(Command::SetIndexPrice {
            market: *s,
            price: d(price),
            source_ms: time,
        });
    }
}

// Trading on BTC-PERP: Dave and helpers the perpetual tests share.

pub const DAVE: AccountId = AccountId(4);
/// One USDT in minor units.
pub const USDT: u64 = 1_000_000;

/// A limit order on BTC-PERP.
pub fn place(account: AccountId, side: Side, price: &str, qty: &str) -> Command {
    Command::PlaceOrder(perp_order(account, side, gtc(price, qty)))
}

/// A reduce-only limit order on BTC-PERP.
pub fn reduce_only(account: AccountId, side: Side, price: &str, qty: &str) -> Command {
    Command::PlaceReduceOnly(perp_order(account, side, gtc(price, qty)))
}

/// Closes the account's BTC-PERP position.
pub fn close(account: AccountId) -> Command {
    Command::ClosePosition {
        account,
        market: sym(PERP),
    }
}

/// BTC-PERP with its index at 50,000.
pub fn market() -> H {
    let mut h = with_perp();
    h.ok(index("50000", h.time_ms));
    h
}

/// The next index, a second later.
pub fn next_index(h: &mut H, price: &str) {
    h.time_ms += 1_000;
    h.ok(index(price, h.time_ms));
}

pub fn position(h: &H, account: AccountId) -> Option<tape_core::PositionInfo> {
    h.core.position(account, &sym(PERP))
}

/// The account's size on BTC-PERP (zero without a position).
pub fn size(h: &H, account: AccountId) -> Dec {
    position(h, account).map_or(Dec::ZERO, |p| p.size)
}

/// The core restores from its snapshot to the same state.
pub fn assert_restores(h: &H) {
    let bytes = h.core.snapshot();
    let restored = tape_core::Core::restore(&bytes).expect("the snapshot restores");
    assert_eq!(restored.snapshot(), bytes, "restored to the same state");
}

/// Alice sells 1 BTC-PERP to Bob at 50,000, both at the beginner's 5x.
pub fn alice_short_bob_long() -> H {
    let mut h = market();
    h.ok(place(ALICE, Side::Sell, "50000", "1"));
    h.ok(place(BOB, Side::Buy, "50000", "1"));
    h
}

/// A limit order on the perpetual `market` (not only BTC-PERP).
pub fn place_on(
    account: AccountId,
    side: Side,
    market: Symbol,
    price: &str,
    qty: &str,
) -> NewOrder {
    NewOrder {
        market,
        ..perp_order(account, side, gtc(price, qty))
    }
}

/// A sliced order on BTC-PERP, its children between `lower` and `upper`.
pub fn sliced(
    account: AccountId,
    side: Side,
    lower: &str,
    upper: &str,
    count: u32,
    total: &str,
) -> NewSliced {
    NewSliced {
        account,
        market: sym(PERP),
        side,
        lower_price: d(lower),
        upper_price: d(upper),
        count,
        total_quantity: d(total),
        post_only: false,
        client_order_id: None,
    }
}

/// A stop-market order's terms.
pub fn stop_market(trigger: &str, qty: &str) -> OrderType {
    OrderType::StopMarket {
        trigger_price: d(trigger),
        size: MarketSize::Base(d(qty)),
    }
}

/// A stop-limit order's terms.
pub fn stop_limit(trigger: &str, price: &str, qty: &str) -> OrderType {
    OrderType::StopLimit {
        trigger_price: d(trigger),
        price: d(price),
        quantity: d(qty),
        time_in_force: TimeInForce::Gtc,
    }
}

/// The liquidation events among `events` (started, steps, ended).
pub fn liquidation_events(events: &[Event]) -> Vec<Event> {
    events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::LiquidationStarted { .. }
                    | Event::LiquidationStep { .. }
                    | Event::LiquidationEnded { .. }
            )
        })
        .cloned()
        .collect()
}
