//! The JSON Schemas of the wire types, generated from the Rust types and committed
//! in `schemas/json/`: what a market maker validates its JSON commands against. A
//! test fails when they drift from the types.

use tape_schemas::{AccountRecord, CommandEnvelope, EventEnvelope, MarketRecord};

fn check(file: &str, schema: schemars::Schema) {
    let path = format!("{}/json/{file}", env!("CARGO_MANIFEST_DIR"));
    let now = serde_json::to_string_pretty(&schema).unwrap() + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &now).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == now,
        "schemas/json/{file} drifted from the Rust types; if the change is deliberate, rerun with UPDATE_GOLDEN=1"
    );
}

#[test]
fn committed_json_schemas_match_the_wire_types() {
    let commands = schemars::schema_for!(CommandEnvelope);
    let text = serde_json::to_string(&commands).unwrap();
    for variant in [
        "place_order",
        "cancel_order",
        "amend_order",
        "deposit",
        "create_api_key",
    ] {
        assert!(text.contains(variant), "{variant} is in the command schema");
    }
    assert!(
        text.contains("\"Decimal\""),
        "amounts are the string Decimal type"
    );
    check("command-envelope.schema.json", commands);
    check(
        "event-envelope.schema.json",
        schemars::schema_for!(EventEnvelope),
    );
    // The JSON feeds of `tape fanout`.
    check(
        "account-record.schema.json",
        schemars::schema_for!(AccountRecord),
    );
    check(
        "market-record.schema.json",
        schemars::schema_for!(MarketRecord),
    );
}
