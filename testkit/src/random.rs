//! Random command streams for property tests and crash tests: many accounts, two
//! spot markets and a perpetual (index prices that wander, orders, reduce-only
//! orders and closes on margin), every command kind, garbage values included (zero, negative, off-tick,
//! absurd amounts, unknown accounts and markets, repeated command ids).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tape_schemas::*;

use crate::d;

pub const ACCOUNTS: u64 = 6;
/// The setup's time (ms since the UNIX epoch); the steps follow it.
pub const START_MS: u64 = 1_700_000_000_000;
pub const MARKETS: [&str; 2] = ["BTC-USDT", "ETH-USDT"];
/// The perpetual: index prices near 100 that move at most 10% per update.
pub const PERPETUAL: &str = "BTC-PERP";

fn perpetual() -> Command {
    Command::CreatePerpetual(PerpetualSpec {
        market: MarketSpec {
            symbol: PERPETUAL.parse().unwrap(),
            base: "BTC".parse().unwrap(),
            quote: "USDT".parse().unwrap(),
            tick_size: d("0.01"),
            lot_size: d("0.001"),
            min_notional: d("0.5"),
            min_quantity: None,
            max_quantity: Some(d("100")),
            fees: FeeRates {
                maker_ppm: 200,
                taker_ppm: 500,
            },
            price_band_bps: None,
        },
        brackets: vec![
            LeverageBracket {
                notional_cap: d("5000"),
                max_leverage: 20,
                maintenance_ppm: 10_000,
            },
            LeverageBracket {
                notional_cap: d("50000"),
                max_leverage: 10,
                maintenance_ppm: 25_000,
            },
        ],
        index: IndexRules {
            max_move_ppm: 100_000,
            stale_after_ms: 600_000,
            min_price: d("1"),
            max_price: d("1000"),
        },
        mark_basis_max_ppm: 5_000,
        funding_interval_ms: 60_000,
        open_interest_max: d("1000"),
    })
}

pub fn setup() -> Vec<Command> {
    let asset = |c: &str, scale| {
        Command::CreateAsset(AssetSpec {
            code: c.parse().unwrap(),
            scale,
            daily_withdrawal_limit: Some(d("1000")),
        })
    };
    let market = |s: &str, base: &str, lot: &str| {
        Command::CreateMarket(MarketSpec {
            symbol: s.parse().unwrap(),
            base: base.parse().unwrap(),
            quote: "USDT".parse().unwrap(),
            tick_size: d("0.01"),
            lot_size: d(lot),
            min_notional: d("0.5"),
            min_quantity: None,
            max_quantity: Some(d("100")),
            fees: FeeRates {
                maker_ppm: 1_000,
                taker_ppm: 2_500,
            },
            price_band_bps: None,
        })
    };
    let mut v = vec![
        asset("BTC", 8),
        asset("ETH", 8),
        asset("USDT", 6),
        market(MARKETS[0], "BTC", "0.001"),
        market(MARKETS[1], "ETH", "0.01"),
        perpetual(),
    ];
    for a in 1..=ACCOUNTS {
        // The last account trades on a shoestring: its positions get liquidated.
        let usdt = if a == ACCOUNTS { "15" } else { "20000" };
        for (c, amount) in [("BTC", "50"), ("ETH", "500"), ("USDT", usdt)] {
            v.push(Command::Deposit {
                account: AccountId(a),
                asset: c.parse().unwrap(),
                amount: d(amount),
                reference: format!("seed-{a}-{c}").parse().unwrap(),
            });
        }
    }
    // The perpetual's first index, so its orders have a mark from the start.
    v.push(Command::SetIndexPrice {
        market: PERPETUAL.parse().unwrap(),
        price: d("100"),
        source_ms: START_MS,
    });
    // The shoestring account may use 20x.
    v.push(Command::SetAccountTier {
        account: AccountId(ACCOUNTS),
        tier: LeverageTier::Advanced,
    });
    // Keys 1 (admin), 2..=ACCOUNTS+1 (trader of account n-1) and ACCOUNTS+2 (auditor).
    for (key, role, account) in std::iter::once((1, ApiRole::Admin, None))
        .chain((1..=ACCOUNTS).map(|a| (a + 1, ApiRole::Trader, Some(AccountId(a)))))
        .chain(std::iter::once((ACCOUNTS + 2, ApiRole::Auditor, None)))
    {
        v.push(Command::CreateApiKey {
            role,
            account,
            secret_hash: hash_secret(&secret(key)),
            mac_key: mac_key(&secret(key)),
        });
    }
    v
}

/// The secret of setup key `key`.
pub fn secret(key: u64) -> String {
    format!("random-stream-key-{key}")
}

/// Signs one step's envelope, or not, by `variant`: mostly unsigned; signed by the
/// right key; by a wrong key; forged; expired; expiring too far ahead. `clock` is the
/// engine's clock before the command; `seq` numbers the step on stream 1 (every key
/// sees increasing numbers with gaps, as behind a gateway).
fn credentials(e: CommandEnvelope, variant: u64, clock: u64, seq: u64) -> CommandEnvelope {
    let own = match e.command.account() {
        Some(a) if !e.command.is_admin() && (1..=ACCOUNTS).contains(&a.0) => a.0 + 1,
        _ => 1,
    };
    let sign = |e: CommandEnvelope, key: u64, expires_ms: u64| {
        let auth = Credentials {
            key: ApiKeyId(key),
            stream: 1,
            seq,
            expires_ms,
            mac: Hash32::default(),
        };
        e.sign(&mac_key(&secret(key)), auth)
            .expect("a command encodes")
    };
    let valid = clock + MAX_VALIDITY_MS / 2;
    match variant % 16 {
        0..=9 => e,
        10..=12 => sign(e, own, valid),
        13 => sign(e, 1 + (own % (ACCOUNTS + 2)) + 1, valid),
        14 => {
            let mut e = sign(e, own, valid);
            if let Some(auth) = e.auth.as_mut() {
                auth.mac.0[variant as usize % 32] ^= 1;
            }
            e
        }
        _ if variant & 0x100 == 0 => sign(e, own, clock.saturating_sub(1)),
        _ => sign(e, own, clock + MAX_VALIDITY_MS + 1),
    }
}

/// A price near 100, or garbage: zero, negative, off tick, absurdly large.
pub fn price(x: u64) -> Dec {
    match x % 25 {
        0 => d("0"),
        1 => d("-5"),
        2 => d("100.001"),
        3 => d("79228162514264337593543950"),
        _ => Dec::from_minor(9_900 + i128::from(x % 201), 2),
    }
}

pub fn qty(x: u64) -> Dec {
    match x % 20 {
        0 => d("0"),
        1 => d("0.00001"),
        2 => d("1000"),
        _ => Dec::from_minor(i128::from(x % 300 + 1), 2),
    }
}

pub fn tif(x: u64, now: u64) -> TimeInForce {
    match x % 6 {
        0 => TimeInForce::Ioc,
        1 => TimeInForce::Fok,
        2 => TimeInForce::Gtd {
            expires_at_ms: now + x % 20_000,
        },
        _ => TimeInForce::Gtc,
    }
}

/// Turns random words into one command of any kind.
/// The perpetual's price at `now`: from 85 up to 115 and back every ten minutes,
/// ±0.5 of noise from `b`.
fn swing(now: u64, b: u64) -> Dec {
    let phase = i128::from((now / 1_000) % 600);
    let swing = (phase - 300).abs() * 3_000 / 300;
    Dec::from_minor(8_500 + swing + i128::from(b % 101) - 50, 2)
}

pub fn command(kind: u8, a: u64, b: u64, c: u64, now: u64, step: u64) -> Command {
    // Sometimes an unknown account; the shoestring account (the last) a quarter of
    // the time more.
    let account = if a % 4 == 3 {
        AccountId(ACCOUNTS)
    } else {
        AccountId(1 + a % (ACCOUNTS + 1))
    };
    let market: Symbol = if b.is_multiple_of(17) {
        "NOPE-USDT".parse().unwrap()
    } else if b.is_multiple_of(5) || (account.0 == ACCOUNTS && !b.is_multiple_of(3)) {
        // The shoestring account trades mostly the perpetual.
        PERPETUAL.parse().unwrap()
    } else {
        MARKETS[(b % 2) as usize].parse().unwrap()
    };
    let side = if a & 0x100 == 0 {
        Side::Buy
    } else {
        Side::Sell
    };
    let asset: AssetCode = ["BTC", "ETH", "USDT", "XRP"][(c % 4) as usize]
        .parse()
        .unwrap();
    let order_ref = if c.is_multiple_of(7) {
        OrderRef::Client(format!("c{}", c % 9).parse().unwrap())
    } else {
        // About one step in three makes an order: aim at recent ids.
        OrderRef::Id(OrderId((step / 3).saturating_sub(c % 12).max(1)))
    };
    let cid = (b.is_multiple_of(5)).then(|| format!("c{}", b % 9).parse().unwrap());
    let stp = [
        StpMode::CancelTaker,
        StpMode::CancelMaker,
        StpMode::CancelBoth,
    ][(c % 3) as usize];
    let place = |order_type| {
        Command::PlaceOrder(NewOrder {
            account,
            market,
            side,
            order_type,
            client_order_id: cid,
            stp,
        })
    };
    let size = if c.is_multiple_of(2) {
        MarketSize::Base(qty(b))
    } else {
        MarketSize::Quote(Dec::from_minor(i128::from(b % 50_000), 2))
    };
    let perpetual = market.as_str() == PERPETUAL;
    match kind % 32 {
        0..=11 => place(OrderType::Limit {
            // Orders on the perpetual mostly near its swing.
            price: if perpetual && !b.is_multiple_of(4) {
                swing(now, b >> 8)
            } else {
                price(b)
            },
            quantity: qty(c),
            time_in_force: tif(a >> 12, now),
            post_only: a.is_multiple_of(9),
            display_quantity: (a.is_multiple_of(11)).then(|| qty(a >> 20)),
        }),
        12 => place(OrderType::Market { size }),
        13 => place(OrderType::StopMarket {
            trigger_price: price(a >> 8),
            size,
        }),
        14 => place(OrderType::StopLimit {
            trigger_price: price(a >> 8),
            price: price(b),
            quantity: qty(c),
            time_in_force: tif(a >> 12, now),
        }),
        15..=18 => Command::AmendOrder {
            account,
            order: order_ref,
            price: (!b.is_multiple_of(3)).then(|| price(b >> 3)),
            quantity: (b % 3 != 1).then(|| qty(c >> 5)),
        },
        19 | 20 => Command::CancelOrder {
            account,
            order: order_ref,
        },
        21 if c.is_multiple_of(3) => Command::CancelAllAfter {
            account,
            // Disarm, short and long timeouts, and one past the longest allowed.
            timeout_ms: [0, 1, 500, 5_000, 60_000, DEAD_MAN_TIMEOUT_MAX_MS + 1][(b % 6) as usize],
        },
        21 => Command::CancelAll {
            account,
            market: (b.is_multiple_of(2)).then_some(market),
        },
        22 => {
            let sliced = NewSliced {
                account,
                market,
                side,
                lower_price: price(b),
                upper_price: price(b.wrapping_add(c % 400)),
                count: (c % 7) as u32,
                total_quantity: qty(a >> 16),
                post_only: a.is_multiple_of(2),
                client_order_id: cid,
            };
            // Now and then reduce-only: scaling out of a position on the
            // perpetual (or refused on a spot market).
            match a % 5 {
                1 => Command::PlaceSlicedReduceOnly(NewSliced {
                    market: PERPETUAL.parse().unwrap(),
                    ..sliced
                }),
                2 => Command::PlaceSlicedReduceOnly(sliced),
                _ => Command::PlaceSliced(sliced),
            }
        }
        23 => Command::PlaceBracket(NewBracket {
            account,
            market,
            side,
            entry_price: price(b),
            quantity: qty(c),
            exit_price: price(a >> 24),
            client_order_id: cid,
        }),
        // Caps in the perpetual's collateral, mostly for the account that
        // trades it; up to 5,000 USDT.
        24 if c % 16 == 1 => Command::SetNotionalCap {
            account: (!b.is_multiple_of(4)).then_some(account),
            asset: if a.is_multiple_of(5) {
                asset
            } else {
                "USDT".parse().unwrap()
            },
            cap: (!b.is_multiple_of(3)).then(|| Dec::from_minor(i128::from(a % 5_000), 0)),
        },
        24 if c.is_multiple_of(16) => Command::FundInsurance {
            asset,
            amount: qty(b),
            reference: format!("i{}", b % 500).parse().unwrap(),
        },
        24 => Command::Deposit {
            account,
            asset,
            amount: qty(b),
            reference: format!("d{}", b % 500).parse().unwrap(),
        },
        25 => Command::RequestWithdrawal {
            account,
            asset,
            amount: qty(b),
        },
        26 => Command::CompleteWithdrawal {
            withdrawal: WithdrawalId(1 + c % 10),
        },
        27 => Command::FailWithdrawal {
            withdrawal: WithdrawalId(1 + c % 10),
        },
        28 => match c % 8 {
            0 => Command::SetMarketStatus {
                market,
                status: if b.is_multiple_of(4) {
                    MarketStatus::Halted
                } else {
                    MarketStatus::Active
                },
            },
            1 => Command::SetPriceBand {
                market,
                band_bps: (b.is_multiple_of(2)).then_some((b % 3000) as u32),
                reference_price: Some(price(a)),
            },
            2 => Command::SetMarketFees {
                market,
                fees: FeeRates {
                    maker_ppm: (b % 3000) as u32,
                    taker_ppm: (a % 200_000) as u32,
                },
            },
            3 => Command::SetAccountFees {
                account,
                market,
                fees: (b.is_multiple_of(2)).then_some(FeeRates {
                    maker_ppm: 0,
                    taker_ppm: 500,
                }),
            },
            4 => Command::SetAccountRestrictions {
                account,
                can_trade: !b.is_multiple_of(5),
                can_withdraw: !b.is_multiple_of(3),
            },
            5 if b.is_multiple_of(4) => Command::RequireCredentials {
                required: b.is_multiple_of(8),
            },
            5 => Command::CreateApiKey {
                role: [ApiRole::Trader, ApiRole::Auditor, ApiRole::Admin][(b % 3) as usize],
                account: (!a.is_multiple_of(4)).then_some(account),
                secret_hash: Hash32([b as u8; 32]),
                mac_key: Hash32([b as u8 ^ 0x5a; 32]),
            },
            6 => Command::RevokeApiKey {
                key: ApiKeyId(1 + b % 6),
            },
            // Liabilities rounds in shapes the engine refuses (round 0, or not one
            // total per asset): an accepted round names a checkpoint, which only
            // `tape pol` can (and replay checks it).
            7 if b.is_multiple_of(5) => Command::CommitLiabilities(LiabilityCommitment {
                round: b % 2,
                checkpoint: a % 10_000,
                checkpoint_seq: c,
                state_hash: Hash32([a as u8; 32]),
                height: (b % 40) as u8,
                algorithm: (c % 3) as u16,
                root: Hash32([b as u8; 32]),
                totals: vec![LiabilityTotal {
                    asset,
                    users: u128::from(a),
                    fees: b,
                    insurance: i128::from(c as i64),
                }],
            }),
            _ => Command::SetWithdrawalLimit {
                account,
                asset,
                daily_limit: (b.is_multiple_of(2)).then(|| qty(a)),
            },
        },
        // Index prices: mostly small moves on the perpetual, at times a spot market,
        // a large move, an old or a future source time.
        29 => Command::SetIndexPrice {
            market: if c.is_multiple_of(11) {
                market
            } else {
                PERPETUAL.parse().unwrap()
            },
            // A swing between 85 and 115 every ten minutes of command time, with
            // noise, so positions win and lose; 80 to 120 gaps at times (taken
            // when within 10% of the last index).
            price: if a.is_multiple_of(7) {
                price(a)
            } else if a.is_multiple_of(5) {
                Dec::from_minor(8_000 + i128::from(b % 4_001), 2)
            } else {
                swing(now, b)
            },
            source_ms: match c % 9 {
                0 => now + 1 + c % 1_000,
                1 => now.saturating_sub(10_000),
                _ => now.saturating_sub(c % 3_000),
            },
        },
        // Leverage: mostly an account's choice (at times above its cap), now and then
        // a tier or the tiers' caps.
        30 => match c % 6 {
            0 => Command::SetAccountTier {
                account,
                tier: [
                    LeverageTier::Beginner,
                    LeverageTier::Intermediate,
                    LeverageTier::Advanced,
                ][(b % 3) as usize],
            },
            1 => Command::SetLeverageTiers(TierCaps {
                beginner: (b % 8) as u32,
                intermediate: 10,
                advanced: 20 + (a % 3) as u32,
            }),
            _ => Command::SetLeverage {
                account,
                market,
                leverage: (b % 25) as u32,
            },
        },
        // Closing and reducing positions on the perpetual.
        31 if c % 3 == 1 => Command::ClosePosition {
            account,
            market: PERPETUAL.parse().unwrap(),
        },
        31 if c % 3 == 2 => Command::PlaceReduceOnly(NewOrder {
            account,
            market: PERPETUAL.parse().unwrap(),
            side,
            order_type: if b.is_multiple_of(2) {
                OrderType::Market { size }
            } else {
                OrderType::Limit {
                    price: price(b),
                    quantity: qty(c),
                    time_in_force: tif(a >> 12, now),
                    post_only: false,
                    display_quantity: None,
                }
            },
            client_order_id: cid,
            stp,
        }),
        _ => Command::ClockTick,
    }
}

pub type Step = (u8, u64, u64, u64, u16, bool);

/// The command stream for random steps: setup, then one command per step; a step may
/// repeat the previous command id instead of taking a new one.
pub fn envelopes(steps: &[Step]) -> Vec<CommandEnvelope> {
    let mut now = START_MS;
    let mut v: Vec<CommandEnvelope> = setup()
        .into_iter()
        .enumerate()
        .map(|(i, c)| CommandEnvelope::new(CommandId::from_u128(i as u128 + 1), now, c))
        .collect();
    for (i, &(kind, a, b, c, dt, repeat)) in steps.iter().enumerate() {
        now += u64::from(dt);
        let id = if repeat {
            v.last().unwrap().id
        } else {
            CommandId::from_u128(1_000 + i as u128)
        };
        let clock = v.last().map_or(0, |e| e.time_ms);
        let e = CommandEnvelope::new(id, now, command(kind, a, b, c, now, i as u64));
        v.push(credentials(e, c >> 40, clock, i as u64 + 1));
    }
    v
}

/// `steps` random steps from `seed`, with the same shape proptest draws: any command
/// kind and words, 0–3 s between commands, 3% repeating the previous command id.
pub fn random_steps(seed: u64, steps: usize) -> Vec<Step> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..steps)
        .map(|_| {
            (
                rng.random(),
                rng.random(),
                rng.random(),
                rng.random(),
                rng.random_range(0..3_000),
                rng.random_bool(0.03),
            )
        })
        .collect()
}
