//! `tape bench batch`: what batching gains a market maker. Every round moves a
//! ladder of `levels` quotes a side (2 × levels amends), signed, through the core:
//! once as one command a change, once as one `Batch` a round (one envelope, one
//! MAC, one answer-window entry). The records are signed before the clock starts,
//! so the figures are the engine's side; the client saves the same MACs.

use std::time::Instant;

use clap::Args;
use tape_core::{Core, CoreConfig};
use tape_schemas::*;

#[derive(Args)]
pub struct BatchArgs {
    /// Re-quotes of the whole ladder.
    #[arg(long, default_value_t = 50_000)]
    rounds: u64,
    /// Quotes a side (a batch carries 2 × levels changes: at most 20 by default).
    #[arg(long, default_value_t = 10)]
    levels: u64,
    /// Timed runs of each; the figures are their medians.
    #[arg(long, default_value_t = 3)]
    runs: u32,
}

const T0: u64 = 1_767_225_600_000;
const SECRET: &str = "bench-batch";
const ACCOUNT: AccountId = AccountId(1);

fn dec(s: &str) -> Dec {
    s.parse().expect("a literal decimal")
}

fn envelope(n: &mut u128, command: Command) -> CommandEnvelope {
    *n += 1;
    CommandEnvelope::new(CommandId::from_u128(*n), T0, command)
}

/// A core with a market, a funded account, its trader key, credentials required and
/// the ladder resting (order ids 1..=2 × levels).
fn prepared(levels: u64, n: &mut u128) -> (Core, ApiKeyId) {
    let mut core = Core::new(CoreConfig::default());
    let mut out = Vec::new();
    let asset = |code: &str, scale| {
        Command::CreateAsset(AssetSpec {
            code: code.parse().expect("code"),
            scale,
            daily_withdrawal_limit: None,
        })
    };
    let mut setup = vec![
        asset("BTC", 8),
        asset("USDT", 6),
        crate::demo::usdt_market("BTC-USDT", "BTC", "0.01", "0.0001", "1"),
    ];
    for (asset, amount) in [("BTC", "1000000"), ("USDT", "1000000000")] {
        setup.push(Command::Deposit {
            account: ACCOUNT,
            asset: asset.parse().expect("code"),
            amount: dec(amount),
            reference: format!("bench-{asset}").parse().expect("reference"),
        });
    }
    setup.push(Command::CreateApiKey {
        role: ApiRole::Trader,
        account: Some(ACCOUNT),
        secret_hash: hash_secret(SECRET),
        mac_key: mac_key(SECRET),
    });
    setup.push(Command::RequireCredentials { required: true });
    for c in setup {
        core.apply(&envelope(n, c), &mut out);
    }
    let key = ApiKeyId(1);
    let signer = Signer::new(
        key,
        mac_key(SECRET),
        std::sync::Arc::new(SigningStream::new(1)),
    );
    for i in 0..levels {
        for (side, price) in [(Side::Buy, 1_000 + i), (Side::Sell, 2_000 + i)] {
            let place = Command::PlaceOrder(NewOrder {
                account: ACCOUNT,
                market: "BTC-USDT".parse().expect("symbol"),
                side,
                order_type: OrderType::Limit {
                    price: Dec::from_minor(price.into(), 0),
                    quantity: dec("1"),
                    time_in_force: TimeInForce::Gtc,
                    post_only: true,
                    display_quantity: None,
                },
                client_order_id: None,
                stp: StpMode::default(),
            });
            let signed = signer
                .sign(envelope(n, place), T0 + 30_000)
                .expect("encodes");
            core.apply(&signed, &mut out);
        }
    }
    (core, key)
}

/// The signed records of `rounds` re-quotes, batched or not.
fn records(levels: u64, rounds: u64, batched: bool, n: &mut u128, key: ApiKeyId) -> Vec<Vec<u8>> {
    let signer = Signer::new(
        key,
        mac_key(SECRET),
        std::sync::Arc::new(SigningStream::new(2)),
    );
    let mut out = Vec::new();
    for round in 0..rounds {
        // Alternate between the ladder and the ladder half a unit up.
        let shift = if round % 2 == 0 { 50 } else { 0 };
        let changes: Vec<BatchItem> = (0..2 * levels)
            .map(|i| {
                let base = if i % 2 == 0 { 1_000 } else { 2_000 } + i / 2;
                BatchItem::AmendOrder {
                    order: OrderRef::Id(OrderId(i + 1)),
                    price: Some(Dec::from_minor(i128::from(base * 100 + shift), 2)),
                    quantity: None,
                }
            })
            .collect();
        let commands = if batched {
            vec![Command::Batch {
                account: ACCOUNT,
                items: changes,
            }]
        } else {
            changes.iter().map(|c| c.command(ACCOUNT)).collect()
        };
        for c in commands {
            let signed = signer.sign(envelope(n, c), T0 + 30_000).expect("encodes");
            out.push(codec::to_bincode(&signed).expect("encodes"));
        }
    }
    out
}

/// Changes per second through the core, and the log bytes a change.
fn timed(args: &BatchArgs, batched: bool) -> (f64, f64) {
    let mut n = 0;
    let (mut core, key) = prepared(args.levels, &mut n);
    let records = records(args.levels, args.rounds, batched, &mut n, key);
    let bytes: usize = records.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(1 << 16);
    let start = Instant::now();
    let mut accepted = 0u64;
    for r in &records {
        out.clear();
        let _ = core.apply_bytes(r, &mut out);
        accepted += out
            .iter()
            .filter(|e| match e {
                Event::ItemOutcome { result, .. } => {
                    matches!(result, CommandResult::Accepted { .. })
                }
                Event::Outcome {
                    result: CommandResult::Accepted { .. },
                    ..
                } => !batched,
                _ => false,
            })
            .count() as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    let changes = (args.rounds * 2 * args.levels) as f64;
    assert_eq!(accepted as f64, changes, "every change is accepted");
    (changes / secs, bytes as f64 / changes)
}

pub fn run(args: BatchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        2 * args.levels as usize <= CoreConfig::default().batch_items_max,
        "--levels {}: a batch of {} changes is over the engine's 20",
        args.levels,
        2 * args.levels
    );
    let (mut single, mut batched) = (Vec::new(), Vec::new());
    let mut bytes = (0.0, 0.0);
    for _ in 0..args.runs {
        let (s, b1) = timed(&args, false);
        let (b, b2) = timed(&args, true);
        single.push(s);
        batched.push(b);
        bytes = (b1, b2);
    }
    let (s, b) = (crate::bench::median(single), crate::bench::median(batched));
    println!(
        "batch: {} rounds × {} changes, signed: one command a change {:.0} changes/s ({:.0} log bytes a change); one batch a round {:.0} changes/s ({:.0} bytes); {:.2}×",
        args.rounds,
        2 * args.levels,
        s,
        bytes.0,
        b,
        bytes.1,
        b / s
    );
    Ok(())
}
