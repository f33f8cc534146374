//! Signed commands as records on the commands log, in both codecs: what a market
//! maker in any language produces to the topic. A JSON record's MAC covers its text;
//! a bincode record's covers the canonical signing bytes.

use tape_core::CoreConfig;
use tape_schemas::*;
use tape_testkit::{d, sign_json_test, sign_test};

const SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const T0: u64 = 1_763_000_000_000;

fn envelope(n: u128, command: Command) -> CommandEnvelope {
    CommandEnvelope::new(CommandId::from_u128(n), T0, command)
}

fn bincode(e: &CommandEnvelope) -> Vec<u8> {
    codec::to_bincode(e).unwrap()
}

/// BTC/USDT, a market, account 1 funded, key 1 (trader for account 1), and
/// credentials required.
fn setup() -> Vec<Vec<u8>> {
    let commands = vec![
        Command::CreateAsset(AssetSpec {
            code: "BTC".parse().unwrap(),
            scale: 8,
            daily_withdrawal_limit: None,
        }),
        Command::CreateAsset(AssetSpec {
            code: "USDT".parse().unwrap(),
            scale: 6,
            daily_withdrawal_limit: None,
        }),
        Command::CreateMarket(tape_testkit::btc_usdt(tape_testkit::NO_FEES)),
        Command::Deposit {
            account: AccountId(1),
            asset: "USDT".parse().unwrap(),
            amount: d("100000"),
            reference: "d1".parse().unwrap(),
        },
        Command::CreateApiKey {
            role: ApiRole::Trader,
            account: Some(AccountId(1)),
            secret_hash: hash_secret(SECRET),
            mac_key: mac_key(SECRET),
        },
        Command::RequireCredentials { required: true },
    ];
    commands
        .into_iter()
        .enumerate()
        .map(|(i, c)| bincode(&envelope(i as u128 + 1, c)))
        .collect()
}

fn buy(price: &str) -> Command {
    Command::PlaceOrder(NewOrder {
        account: AccountId(1),
        market: "BTC-USDT".parse().unwrap(),
        side: Side::Buy,
        order_type: OrderType::Limit {
            price: d(price),
            quantity: d("1"),
            time_in_force: TimeInForce::Gtc,
            post_only: false,
            display_quantity: None,
        },
        client_order_id: None,
        stp: StpMode::CancelTaker,
    })
}

/// The outcome of each record after the setup.
fn outcomes(records: Vec<Vec<u8>>) -> Vec<CommandResult> {
    let setup = setup();
    let first = setup.len() as u64;
    let all: Vec<Vec<u8>> = setup.into_iter().chain(records).collect();
    let events = tape_engine::derive_all(
        all.iter().map(|r| r.as_slice()),
        CoreConfig::default(),
        u64::MAX,
    );
    events
        .iter()
        .map(|b| EventEnvelope::from_record(b).unwrap())
        .filter(|e| e.command_offset >= first)
        .filter_map(|e| match e.event {
            Event::Outcome { result, .. } => Some(result),
            _ => None,
        })
        .collect()
}

fn refused(reason: RejectReason) -> CommandResult {
    CommandResult::Rejected { reason }
}

/// A buy at `price` as command `n`, signed by `key` as a JSON record.
fn signed_json(key: ApiKeyId, n: u128, price: &str) -> String {
    sign_json_test(&envelope(n, buy(price)), key, &mac_key(SECRET), T0 + 10_000)
}

/// The same, as an envelope for the bincode record.
fn signed_bincode(key: ApiKeyId, n: u128, price: &str) -> CommandEnvelope {
    sign_test(envelope(n, buy(price)), key, &mac_key(SECRET), T0 + 10_000)
}

#[test]
fn json_and_bincode_records_signed_by_their_rules_are_accepted() {
    let key = ApiKeyId(1);
    let json = signed_json(key, 100, "100");
    let bin = signed_bincode(key, 101, "101");
    let results = outcomes(vec![json.into_bytes(), bincode(&bin)]);
    assert!(
        results
            .iter()
            .all(|r| matches!(r, CommandResult::Accepted { .. })),
        "{results:?}"
    );
}

#[test]
fn an_altered_or_wrongly_signed_json_record_is_refused() {
    let key = ApiKeyId(1);
    let json = signed_json(key, 100, "100");
    // The price changed after signing.
    let altered = json.replace("\"100\"", "\"1000\"");
    assert_ne!(altered, json);
    // Whitespace is part of what is signed.
    let spaced = json.replacen("{", "{ ", 1);
    // A JSON record carrying the bincode rule's MAC.
    let bincode_mac = signed_bincode(key, 102, "100");
    let mixed = codec::to_json(&bincode_mac).unwrap();
    // Signed with another secret.
    let forged = sign_json_test(
        &envelope(103, buy("100")),
        key,
        &mac_key("guess"),
        T0 + 10_000,
    );
    // Unsigned.
    let unsigned = codec::to_json(&envelope(104, buy("100"))).unwrap();
    let results = outcomes(
        [altered, spaced, mixed, forged, unsigned]
            .map(String::into_bytes)
            .to_vec(),
    );
    assert_eq!(
        results,
        vec![
            refused(RejectReason::BadSignature),
            refused(RejectReason::BadSignature),
            refused(RejectReason::BadSignature),
            refused(RejectReason::BadSignature),
            refused(RejectReason::MissingCredentials),
        ]
    );
}
