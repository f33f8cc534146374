//! `tape demo`: a scripted session in an in-memory core, printed as JSON lines.

use tape_core::Core;
use tape_schemas::*;

fn d(s: &str) -> Dec {
    s.parse().expect("a literal decimal")
}

pub fn run() -> anyhow::Result<()> {
    let market: Symbol = "BTC-USDT".parse()?;
    let alice = AccountId(1);
    let bob = AccountId(2);
    let limit = |account, side, price: &str, quantity: &str| {
        Command::PlaceOrder(NewOrder {
            account,
            market,
            side,
            order_type: OrderType::Limit {
                price: d(price),
                quantity: d(quantity),
                time_in_force: TimeInForce::Gtc,
                post_only: false,
                display_quantity: None,
            },
            client_order_id: None,
            stp: StpMode::CancelTaker,
        })
    };
    let script = vec![
        Command::CreateAsset(AssetSpec {
            code: "BTC".parse()?,
            scale: 8,
            daily_withdrawal_limit: None,
        }),
        Command::CreateAsset(AssetSpec {
            code: "USDT".parse()?,
            scale: 6,
            daily_withdrawal_limit: None,
        }),
        usdt_market("BTC-USDT", "BTC", "0.01", "0.0001", "5"),
        Command::Deposit {
            account: alice,
            asset: "BTC".parse()?,
            amount: d("2"),
            reference: "btc-tx-1".parse()?,
        },
        Command::Deposit {
            account: bob,
            asset: "USDT".parse()?,
            amount: d("100000"),
            reference: "usdt-tx-1".parse()?,
        },
        limit(alice, Side::Sell, "30000", "1"),
        limit(alice, Side::Sell, "30100", "0.5"),
        limit(bob, Side::Buy, "30050", "1.2"),
        limit(bob, Side::Buy, "29000.005", "1"),
        Command::CancelAll {
            account: bob,
            market: Some(market),
        },
        Command::RequestWithdrawal {
            account: alice,
            asset: "USDT".parse()?,
            amount: d("1000"),
        },
    ];
    let mut core = Core::default();
    let mut out = Vec::new();
    let mut time_ms = 1_763_700_000_000;
    for (i, command) in script.into_iter().enumerate() {
        time_ms += 1_000;
        let envelope = CommandEnvelope::new(CommandId::from_u128(i as u128 + 1), time_ms, command);
        println!("> {}", codec::to_json(&envelope)?);
        out.clear();
        core.apply(&envelope, &mut out);
        for e in &out {
            println!("  {}", codec::to_json(e)?);
        }
    }
    core.check_invariants()?;
    for (name, account) in [("alice", alice), ("bob", bob)] {
        for asset in ["BTC", "USDT"] {
            if let Some(b) = core.balance(account, &asset.parse()?) {
                println!(
                    "{name} {asset}: available {} held {} (minor units)",
                    b.available, b.held
                );
            }
        }
    }
    println!(
        "fees USDT: {} (minor units)",
        core.fees_collected(&"USDT".parse()?).unwrap_or(0)
    );
    println!("state hash {}", hex::encode(core.state_hash()));
    Ok(())
}

/// A market quoted in USDT as the demos set them up: 0.1% maker, 0.2% taker fees and
/// a 10% price band.
pub fn usdt_market(symbol: &str, base: &str, tick: &str, lot: &str, min_notional: &str) -> Command {
    Command::CreateMarket(MarketSpec {
        symbol: symbol.parse().expect("a demo symbol"),
        base: base.parse().expect("a demo asset"),
        quote: "USDT".parse().expect("a demo asset"),
        tick_size: d(tick),
        lot_size: d(lot),
        min_notional: d(min_notional),
        min_quantity: None,
        max_quantity: None,
        fees: FeeRates {
            maker_ppm: 1_000,
            taker_ppm: 2_000,
        },
        price_band_bps: Some(1_000),
    })
}
