//! The wire formats are pinned by golden files: a change to either encoding fails
//! here until the golden file is regenerated on purpose (`UPDATE_GOLDEN=1`). Bad
//! bytes and bad JSON are errors, never panics.

use proptest::prelude::*;
use tape_schemas::codec::*;
use tape_schemas::*;

fn d(s: &str) -> Dec {
    s.parse().unwrap()
}

fn commands() -> Vec<(&'static str, CommandEnvelope)> {
    let id = |n| CommandId::from_u128(0x0199_0000_0000_7000_8000_0000_0000_0000 + n);
    let btc: AssetCode = "BTC".parse().unwrap();
    let mkt: Symbol = "BTC-USDT".parse().unwrap();
    let acct = AccountId(42);
    let order = |order_type| {
        Command::PlaceOrder(NewOrder {
            account: acct,
            market: mkt,
            side: Side::Buy,
            order_type,
            client_order_id: Some("mm-1".parse().unwrap()),
            stp: StpMode::CancelMaker,
        })
    };
    let cmds = vec![
        (
            "create_asset",
            Command::CreateAsset(AssetSpec {
                code: btc,
                scale: 8,
                daily_withdrawal_limit: Some(d("5")),
            }),
        ),
        (
            "set_asset_enabled",
            Command::SetAssetEnabled {
                asset: btc,
                enabled: false,
            },
        ),
        (
            "create_market",
            Command::CreateMarket(MarketSpec {
                symbol: mkt,
                base: btc,
                quote: "USDT".parse().unwrap(),
                tick_size: d("0.01"),
                lot_size: d("0.0001"),
                min_notional: d("5"),
                min_quantity: Some(d("0.001")),
                max_quantity: None,
                fees: FeeRates {
                    maker_ppm: 1_000,
                    taker_ppm: 2_000,
                },
                price_band_bps: Some(500),
            }),
        ),
        (
            "set_market_status",
            Command::SetMarketStatus {
                market: mkt,
                status: MarketStatus::Halted,
            },
        ),
        (
            "set_market_fees",
            Command::SetMarketFees {
                market: mkt,
                fees: FeeRates {
                    maker_ppm: 0,
                    taker_ppm: 700,
                },
            },
        ),
        (
            "set_price_band",
            Command::SetPriceBand {
                market: mkt,
                band_bps: Some(250),
                reference_price: Some(d("30000")),
            },
        ),
        (
            "set_account_fees",
            Command::SetAccountFees {
                account: acct,
                market: mkt,
                fees: None,
            },
        ),
        (
            "set_account_restrictions",
            Command::SetAccountRestrictions {
                account: acct,
                can_trade: false,
                can_withdraw: true,
            },
        ),
        (
            "set_withdrawal_limit",
            Command::SetWithdrawalLimit {
                account: acct,
                asset: btc,
                daily_limit: Some(d("1.5")),
            },
        ),
        (
            "deposit",
            Command::Deposit {
                account: acct,
                asset: btc,
                amount: d("1.25"),
                reference: "0xabc".parse().unwrap(),
            },
        ),
        (
            "request_withdrawal",
            Command::RequestWithdrawal {
                account: acct,
                asset: btc,
                amount: d("0.5"),
            },
        ),
        (
            "complete_withdrawal",
            Command::CompleteWithdrawal {
                withdrawal: WithdrawalId(7),
            },
        ),
        (
            "fail_withdrawal",
            Command::FailWithdrawal {
                withdrawal: WithdrawalId(8),
            },
        ),
        (
            "place_limit_gtd_iceberg",
            order(OrderType::Limit {
                price: d("30000.50"),
                quantity: d("2"),
                time_in_force: TimeInForce::Gtd {
                    expires_at_ms: 1_800_000_000_000,
                },
                post_only: true,
                display_quantity: Some(d("0.5")),
            }),
        ),
        (
            "place_market_quote",
            order(OrderType::Market {
                size: MarketSize::Quote(d("100")),
            }),
        ),
        (
            "place_stop_market",
            order(OrderType::StopMarket {
                trigger_price: d("31000"),
                size: MarketSize::Base(d("1")),
            }),
        ),
        (
            "place_stop_limit",
            order(OrderType::StopLimit {
                trigger_price: d("29000"),
                price: d("28900"),
                quantity: d("1"),
                time_in_force: TimeInForce::Fok,
            }),
        ),
        (
            "place_sliced",
            Command::PlaceSliced(NewSliced {
                account: acct,
                market: mkt,
                side: Side::Sell,
                lower_price: d("30000"),
                upper_price: d("31000"),
                count: 5,
                total_quantity: d("1"),
                post_only: false,
                client_order_id: None,
            }),
        ),
        (
            "place_bracket",
            Command::PlaceBracket(NewBracket {
                account: acct,
                market: mkt,
                side: Side::Buy,
                entry_price: d("30000"),
                quantity: d("0.1"),
                exit_price: d("33000"),
                client_order_id: None,
            }),
        ),
        (
            "cancel_order",
            Command::CancelOrder {
                account: acct,
                order: OrderRef::Client("mm-1".parse().unwrap()),
            },
        ),
        (
            "cancel_all",
            Command::CancelAll {
                account: acct,
                market: Some(mkt),
            },
        ),
        (
            "amend_order",
            Command::AmendOrder {
                account: acct,
                order: OrderRef::Id(OrderId(9)),
                price: None,
                quantity: Some(d("0.3")),
            },
        ),
        ("clock_tick", Command::ClockTick),
        (
            "create_api_key",
            Command::CreateApiKey {
                role: ApiRole::Trader,
                account: Some(acct),
                secret_hash: Hash32([0xab; 32]),
                mac_key: Hash32([0xcd; 32]),
            },
        ),
        ("revoke_api_key", Command::RevokeApiKey { key: ApiKeyId(3) }),
        (
            "require_credentials",
            Command::RequireCredentials { required: true },
        ),
        (
            "cancel_all_after",
            Command::CancelAllAfter {
                account: acct,
                timeout_ms: 60_000,
            },
        ),
        (
            "batch",
            Command::Batch {
                account: acct,
                items: vec![
                    BatchItem::CancelOrder {
                        order: OrderRef::Id(OrderId(41)),
                    },
                    BatchItem::PlaceOrder {
                        market: "BTC-USDT".parse().unwrap(),
                        side: Side::Buy,
                        order_type: OrderType::Limit {
                            price: d("30000.5"),
                            quantity: d("0.25"),
                            time_in_force: TimeInForce::Gtc,
                            post_only: true,
                            display_quantity: None,
                        },
                        client_order_id: None,
                        stp: StpMode::default(),
                    },
                    BatchItem::AmendOrder {
                        order: OrderRef::Id(OrderId(42)),
                        price: None,
                        quantity: Some(d("0.1")),
                    },
                    BatchItem::CancelAll { market: None },
                ],
            },
        ),
    ];
    cmds.into_iter()
        .enumerate()
        .map(|(i, (name, c))| {
            (
                name,
                CommandEnvelope::new(id(i as u128), 1_763_000_000_000 + i as u64, c),
            )
        })
        .collect()
}

fn events() -> Vec<(&'static str, Event)> {
    let mkt: Symbol = "BTC-USDT".parse().unwrap();
    vec![
        (
            "outcome",
            Event::Outcome {
                command: CommandId::from_u128(1),
                result: CommandResult::Rejected {
                    reason: RejectReason::PriceNotOnTick,
                },
                duplicate: false,
            },
        ),
        (
            "trade",
            Event::Trade {
                trade: TradeId(5),
                market: mkt,
                price: d("30000.00"),
                quantity: d("0.50000000"),
                quote_quantity: d("15000.000000"),
                taker_side: Side::Sell,
                maker_order: OrderId(3),
                taker_order: OrderId(4),
                maker_account: AccountId(1),
                taker_account: AccountId(2),
                maker_fee: d("15.000000"),
                taker_fee: d("30.000000"),
            },
        ),
        (
            "posting",
            Event::Posting {
                asset: "USDT".parse().unwrap(),
                from: Party::Held(AccountId(1)),
                to: Party::Fees,
                amount: d("15.000000"),
                cause: Cause::Trade(TradeId(5)),
            },
        ),
        (
            "order_done",
            Event::OrderDone {
                order: OrderId(4),
                market: mkt,
                reason: DoneReason::SelfTrade,
                filled: d("0.5"),
            },
        ),
        (
            "bracket_pnl",
            Event::BracketPnl {
                entry: OrderId(1),
                exit: OrderId(2),
                closed_quantity: d("1"),
                realized_pnl: d("-3.25"),
            },
        ),
        (
            "api_key_created",
            Event::ApiKeyCreated {
                key: ApiKeyId(3),
                role: ApiRole::Auditor,
                account: None,
                secret_hash: Hash32([0xcd; 32]),
            },
        ),
        (
            "credentials_required",
            Event::CredentialsRequired { required: true },
        ),
        (
            "dead_man_switch_set",
            Event::DeadManSwitchSet {
                account: AccountId(7),
                deadline_ms: Some(1_763_000_060_000),
            },
        ),
        (
            "dead_man_switch_fired",
            Event::DeadManSwitchFired {
                account: AccountId(7),
                deadline_ms: 1_763_000_060_000,
            },
        ),
        (
            "item_outcome",
            Event::ItemOutcome {
                command: CommandId(uuid::Uuid::from_u128(9)),
                item: 1,
                result: CommandResult::Accepted { id: 43 },
            },
        ),
    ]
}

fn render<T: serde::Serialize>(items: &[(&str, T)]) -> String {
    let mut s = String::new();
    for (name, item) in items {
        s.push_str(&format!(
            "{name}\n  bincode {}\n  json    {}\n",
            hex::encode(to_bincode(item).unwrap()),
            to_json(item).unwrap()
        ));
    }
    s
}

fn check_golden(file: &str, rendered: &str) {
    let path = format!("{}/tests/golden/{file}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, rendered).unwrap();
    }
    let golden = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(golden == rendered, "{file} drifted from the golden file; if the change is deliberate, rerun with UPDATE_GOLDEN=1 and bump SCHEMA_VERSION when old logs no longer decode.\n--- golden\n{golden}\n--- now\n{rendered}");
}

#[test]
fn command_encodings_match_the_golden_file() {
    check_golden("commands.txt", &render(&commands()));
}

#[test]
fn event_encodings_match_the_golden_file() {
    check_golden("events.txt", &render(&events()));
}

/// What the control topic says, and the events log's record frames (the epoch before
/// each envelope, and a fence).
fn control_records() -> Vec<(&'static str, ControlRecord)> {
    let w = || "engine-b".to_string();
    vec![
        (
            "Heartbeat",
            ControlRecord::Heartbeat {
                epoch: 3,
                writer: w(),
                seq: 1_234,
                at_ms: 1_767_225_600_000,
            },
        ),
        (
            "Claim",
            ControlRecord::Claim {
                epoch: 4,
                writer: w(),
            },
        ),
        (
            "ClaimSilent",
            ControlRecord::ClaimSilent {
                epoch: 4,
                writer: w(),
                heard: 90_210,
            },
        ),
        (
            "Standby",
            ControlRecord::Standby {
                writer: w(),
                shadow: true,
                matched_commands: 10_000,
                matched_seq: 31_000,
                diverged: Some("seq 5".into()),
                at_ms: 1_767_225_600_000,
            },
        ),
        (
            "Promote",
            ControlRecord::Promote {
                writer: w(),
                min_matched: 10_000,
            },
        ),
        (
            "Refused",
            ControlRecord::Refused {
                writer: w(),
                why: "it differs from the leader".into(),
            },
        ),
    ]
}

#[test]
fn control_records_and_event_frames_match_the_golden_file() {
    let mut rendered = render(&control_records());
    let fence = Fence {
        epoch: 4,
        writer: "engine-b".into(),
        derived_seq: 31_000,
    };
    rendered.push_str(&format!(
        "fence record\n  bytes   {}\nevent frame, epoch 4\n  bytes   {}\n",
        hex::encode(fence_record(&fence)),
        hex::encode(frame_event(4, b"envelope"))
    ));
    check_golden("control.txt", &rendered);
    for (_, r) in control_records() {
        assert_eq!(
            from_bincode::<ControlRecord>(&to_bincode(&r).unwrap()).unwrap(),
            r
        );
    }
    assert_eq!(
        EventRecord::parse(&fence_record(&fence)).unwrap(),
        EventRecord::Fence(fence)
    );
}

#[test]
fn every_command_round_trips_through_both_codecs() {
    for (name, c) in commands() {
        assert_eq!(
            command_from_bincode(&to_bincode(&c).unwrap()).unwrap(),
            c,
            "{name} bincode"
        );
        assert_eq!(
            command_from_json(&to_json(&c).unwrap()).unwrap(),
            c,
            "{name} json"
        );
    }
    for (name, e) in events() {
        assert_eq!(
            from_bincode::<Event>(&to_bincode(&e).unwrap()).unwrap(),
            e,
            "{name} bincode"
        );
        assert_eq!(
            from_json::<Event>(&to_json(&e).unwrap()).unwrap(),
            e,
            "{name} json"
        );
    }
}

#[test]
fn json_amounts_are_strings_and_floats_are_refused_with_a_hint() {
    let ok = r#"{"version":3,"id":"00000000-0000-0000-0000-000000000001","time_ms":5,"command":{"deposit":{"account":1,"asset":"BTC","amount":"0.1","reference":"x"}}}"#;
    let c = command_from_json(ok).unwrap();
    assert!(matches!(c.command, Command::Deposit { amount, .. } if amount == d("0.1")));
    let float = ok.replace(r#""0.1""#, "0.1");
    let err = command_from_json(&float).unwrap_err().to_string();
    assert!(err.contains("write decimals as strings"), "{err}");
    let garbage = ok.replace(r#""0.1""#, r#""0.1x""#);
    assert!(command_from_json(&garbage)
        .unwrap_err()
        .to_string()
        .contains("not an exact decimal"));
    let long_symbol = ok.replace(r#""BTC""#, r#""ABCDEFGHIJKLMNOPQ""#);
    assert!(command_from_json(&long_symbol)
        .unwrap_err()
        .to_string()
        .contains("at most 12"));
}

#[test]
fn a_future_schema_version_is_refused_in_both_codecs() {
    let mut c = commands()[0].1.clone();
    c.version = SCHEMA_VERSION + 1;
    assert!(
        matches!(command_from_bincode(&to_bincode(&c).unwrap()), Err(CodecError::Version { found }) if found == SCHEMA_VERSION + 1)
    );
    assert!(matches!(
        command_from_json(&to_json(&c).unwrap()),
        Err(CodecError::Version { .. })
    ));
}

#[test]
fn trailing_and_oversized_input_is_refused() {
    let mut bytes = to_bincode(&commands()[1].1).unwrap();
    bytes.push(0);
    assert!(matches!(
        command_from_bincode(&bytes),
        Err(CodecError::Trailing { trailing: 1 })
    ));
    let huge = vec![0u8; MAX_MESSAGE_BYTES + 1];
    assert!(matches!(
        command_from_bincode(&huge),
        Err(CodecError::TooLarge { .. })
    ));
}

proptest! {
    #[test]
    fn random_bytes_never_panic_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = command_from_bincode(&bytes);
        let _ = from_bincode::<Event>(&bytes);
        let _ = command_from_json(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn mutated_commands_never_panic_the_decoder(i in 0usize..23, pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = to_bincode(&commands()[i].1).unwrap();
        let at = pos.index(bytes.len());
        bytes[at] = byte;
        let _ = command_from_bincode(&bytes);
    }
}

#[test]
fn sealing_in_one_pass_gives_the_canonical_envelope_bytes() {
    for (name, event) in events() {
        let prev = Hash32([7u8; 32]);
        let sealed = EventEnvelope::seal(42, 9, 1_763_000_000_000, prev, event.clone());
        let (hash, bytes) = EventEnvelope::seal_encoded(42, 9, 1_763_000_000_000, prev, &event);
        assert_eq!(hash, sealed.hash, "{name}");
        assert_eq!(bytes, to_bincode(&sealed).unwrap(), "{name}");
        assert_eq!(sealed.expected_hash(), sealed.hash);
        let (seq, offset, is_outcome) = EventEnvelope::peek(&bytes).unwrap();
        assert_eq!(
            (seq, offset, is_outcome),
            (42, 9, matches!(event, Event::Outcome { .. })),
            "{name}"
        );
    }
}

#[test]
fn an_envelope_golden_file_pins_the_hash_chain_format() {
    let mut prev = Hash32::default();
    let mut items = Vec::new();
    for (i, (name, event)) in events().into_iter().enumerate() {
        let e = EventEnvelope::seal(i as u64 + 1, 3, 1_763_000_000_000, prev, event);
        prev = e.hash;
        items.push((name, e));
    }
    check_golden("envelopes.txt", &render(&items));
}

#[test]
fn envelope_parts_cover_exactly_what_the_hash_covers() {
    let prev = Hash32([5; 32]);
    for (name, event) in events() {
        let env = EventEnvelope::seal(42, 9, 1_763_000_000_000, prev, event.clone());
        let bytes = to_bincode(&env).unwrap();
        let p = EventEnvelope::parts(&bytes).unwrap();
        assert_eq!(
            (p.seq, p.command_offset, p.time_ms),
            (42, 9, 1_763_000_000_000),
            "{name}"
        );
        assert_eq!((p.prev_hash, p.hash), (prev, env.hash), "{name}");
        assert_eq!(p.chain_hash(), env.hash, "{name}");
        assert_eq!(p.event, to_bincode(&event).unwrap().as_slice(), "{name}");
        let is_checkpoint = matches!(event, Event::Checkpoint { .. });
        assert_eq!(
            p.event_tag == Event::checkpoint_tag(),
            is_checkpoint,
            "{name}"
        );
    }
    let checkpoint = Event::Checkpoint {
        commands_applied: 7,
        state_hash: Hash32([1; 32]),
    };
    let bytes = to_bincode(&EventEnvelope::seal(1, 0, 0, prev, checkpoint)).unwrap();
    assert_eq!(
        EventEnvelope::parts(&bytes).unwrap().event_tag,
        Event::checkpoint_tag()
    );
    assert!(EventEnvelope::parts(&bytes[..40]).is_err());
    assert!(EventEnvelope::parts(b"").is_err());
}

#[test]
fn the_topic_key_is_the_account_a_command_names() {
    for (name, envelope) in commands() {
        let json = to_json(&envelope.command).unwrap();
        let names_account = json.contains("\"account\":") && !json.contains("\"account\":null");
        assert_eq!(
            envelope.command.account().is_some(),
            names_account,
            "{name}: {json}"
        );
        if let Some(a) = envelope.command.account() {
            assert!(json.contains(&format!("\"account\":{a}")), "{name}");
            assert_eq!(
                envelope.command.topic_key(),
                Some(a.0.to_string().into_bytes())
            );
        }
    }
}

/// A test vector for clients in other languages: the secret, its MAC key, the signing
/// bytes and the signed envelope in both codecs.
fn signed_vector() -> (String, CommandEnvelope) {
    let secret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let command = commands()
        .into_iter()
        .find(|(name, _)| *name == "place_limit_gtd_iceberg")
        .unwrap()
        .1;
    let auth = Credentials {
        key: ApiKeyId(7),
        stream: 4_503_599_627_370_497,
        seq: 42,
        expires_ms: command.time_ms + 30_000,
        mac: Hash32::default(),
    };
    let signed = command.sign(&mac_key(secret), auth).unwrap();
    let mut bytes = Vec::new();
    signed.write_signing_bytes(&auth, &mut bytes).unwrap();
    let unsigned = CommandEnvelope {
        auth: None,
        ..signed.clone()
    };
    let json = sign_json(&unsigned, &mac_key(secret), auth).unwrap();
    let placeholder = json.replacen(
        &json_mac(&json),
        tape_schemas::auth::JSON_MAC_PLACEHOLDER,
        1,
    );
    let text = format!(
        "secret          {secret}\nmac key         {}\n\nbincode record: the MAC covers the signing bytes\nsigning bytes   {}\nmac             {}\nrecord          {}\n\nJSON record: the MAC covers the text with the MAC as 64 zeros\nsigned text     {placeholder}\nmac             {}\nrecord          {json}\n",
        hex::encode(mac_key(secret).0),
        hex::encode(&bytes),
        hex::encode(signed.auth.unwrap().mac.0),
        hex::encode(to_bincode(&signed).unwrap()),
        json_mac(&json),
    );
    (text, signed)
}

/// The MAC of a signed JSON record, from its text.
fn json_mac(json: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    v["auth"]["mac"].as_str().unwrap().to_string()
}

#[test]
fn a_signed_command_matches_the_golden_test_vector() {
    check_golden("signed-command.golden", &signed_vector().0);
}

#[test]
fn the_mac_covers_the_command_whatever_codec_carries_it() {
    let (_, signed) = signed_vector();
    let auth = signed.auth.unwrap();
    let secret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let from_json = codec::command_from_json(&to_json(&signed).unwrap()).unwrap();
    let from_bincode = codec::command_from_bincode(&to_bincode(&signed).unwrap()).unwrap();
    for decoded in [from_json, from_bincode] {
        let mac = decoded
            .mac(&auth, &mac_key(secret), &mut Vec::new())
            .unwrap();
        assert_eq!(mac, auth.mac);
    }
    // Any change to what is signed changes the MAC.
    let mut other = signed.clone();
    other.time_ms += 1;
    let mac = other.mac(&auth, &mac_key(secret), &mut Vec::new()).unwrap();
    assert_ne!(mac, auth.mac);
    for changed in [
        Credentials {
            expires_ms: auth.expires_ms + 1,
            ..auth
        },
        Credentials {
            stream: auth.stream + 1,
            ..auth
        },
        Credentials {
            seq: auth.seq + 1,
            ..auth
        },
    ] {
        let mac = signed
            .mac(&changed, &mac_key(secret), &mut Vec::new())
            .unwrap();
        assert_ne!(mac, auth.mac, "{changed:?}");
    }
}

/// The Python signing example (`examples/python/tape_sign.py`, the one the README
/// shows) re-signs the golden vector's JSON record byte for byte: a client in
/// another language signs exactly as the engine checks.
#[test]
fn the_python_signing_example_matches_the_golden_test_vector() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::process::Command::new("python3")
        .arg(root.join("examples/python/tape_sign.py"))
        .arg("--check")
        .arg(root.join("schemas/tests/golden/signed-command.golden"))
        .output()
        .expect("python3 runs (scripts/test.sh installs its blake3 package)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
