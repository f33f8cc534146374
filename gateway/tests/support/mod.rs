//! An in-process gateway over read models derived from a list of commands (no
//! HTTP, no tokens: each request carries its caller), for the tests that execute
//! the schema directly.
#![allow(dead_code)]

use std::time::Duration;

use async_graphql::{Request, Response};
use tape_gateway::auth::Caller;
use tape_gateway::{CommandsDoor, GatewayConfig, Submitter, TapeSchema};
use tape_schemas::*;
use tape_testkit::code;
use tokio::sync::{broadcast, watch};

pub const ALICE: AccountId = AccountId(1);
pub const BOB: AccountId = AccountId(2);
pub const TRADER: Caller = Caller::Trader {
    key: ApiKeyId(7),
    account: ALICE,
};
pub const AUDITOR: Caller = Caller::Auditor { key: ApiKeyId(8) };
pub const ADMIN: Caller = Caller::Admin {
    key: Some(ApiKeyId(9)),
};

pub struct Gateway {
    pub schema: TapeSchema,
    pub dir: tempfile::TempDir,
    /// The projector's side of the subscriptions' feed.
    pub changes: broadcast::Sender<std::sync::Arc<tape_projections::Changes>>,
    /// The events the read models hold (bincode envelopes).
    pub events: Vec<Vec<u8>>,
    setup: u64,
}

/// A deposit referenced by account and asset (one per pair in these tests).
pub fn deposit(account: AccountId, asset: &str, amount: &str) -> Command {
    tape_testkit::deposit(account, asset, amount, &format!("{account}-{asset}"))
}

/// BTC, USDT, the BTC-USDT market, 1,000 USDT for Alice and 2 BTC for Bob.
pub fn market_with_two_accounts() -> Vec<Command> {
    let asset = |c: &str, scale| {
        Command::CreateAsset(AssetSpec {
            code: code(c),
            scale,
            daily_withdrawal_limit: None,
        })
    };
    vec![
        asset("BTC", 8),
        asset("USDT", 6),
        Command::CreateMarket(tape_testkit::btc_usdt(tape_testkit::FEES)),
        deposit(ALICE, "USDT", "1000"),
        deposit(BOB, "BTC", "2"),
    ]
}

/// Read models of `commands` (the engine writing a checkpoint every
/// `checkpoint_every` commands), and a gateway over them.
pub fn gateway_over(commands: Vec<Command>, checkpoint_every: u64) -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    let commands: Vec<Vec<u8>> = commands
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let e = CommandEnvelope::new(CommandId::from_u128(i as u128 + 1), 1_767_225_600_000, c);
            codec::to_bincode(&e).unwrap()
        })
        .collect();
    let events = tape_engine::derive_all(
        commands.iter().map(Vec::as_slice),
        Default::default(),
        checkpoint_every,
    );
    let (mut projector, views) = tape_projections::open(&dir.path().join("views")).unwrap();
    projector
        .apply_records(events.iter().map(Vec::as_slice))
        .unwrap();
    // The commands the read models came from are on the commands log, as they
    // would be: the gateway appends after them.
    let setup = commands.len() as u64;
    {
        let (log, _) =
            tape_log::FileLog::open(dir.path().join("commands"), Default::default()).unwrap();
        futures::executor::block_on(log.append(commands)).unwrap();
        log.close();
    }
    let (sources, progress_tx, changes) = sources(dir.path(), views, 4);
    std::mem::forget(progress_tx);
    let mut config = GatewayConfig::new("unused");
    config.outcome_wait = Duration::from_millis(100);
    Gateway {
        schema: tape_gateway::schema(sources, config),
        dir,
        changes,
        events,
        setup,
    }
}

impl Gateway {
    pub async fn run(&self, caller: Option<Caller>, query: &str) -> Response {
        let mut request = Request::new(query);
        if let Some(c) = caller {
            request = request.data(c);
        }
        self.schema.execute(request).await
    }

    /// The error code of a refused request (panics if it was not refused).
    pub async fn refused(&self, caller: Option<Caller>, query: &str) -> String {
        let r = self.run(caller, query).await;
        let e = r
            .errors
            .first()
            .unwrap_or_else(|| panic!("{query} was allowed: {:?}", r.data));
        let code = e.extensions.as_ref().and_then(|x| x.get("code")).cloned();
        match code {
            Some(async_graphql::Value::String(c)) => c,
            other => panic!("{query}: an error without a code: {e:?} {other:?}"),
        }
    }

    pub async fn allowed(&self, caller: Option<Caller>, query: &str) -> serde_json::Value {
        let r = self.run(caller, query).await;
        assert!(r.errors.is_empty(), "{query}: {:?}", r.errors);
        r.data.into_json().unwrap()
    }

    /// Records the gateway appended to the commands log: refusals must leave none.
    pub async fn appended(&self) -> u64 {
        let log = tape_log::FileLog::follow(self.dir.path().join("commands")).unwrap();
        tape_log::Log::end_offset(&log).await.unwrap() - self.setup
    }
}

/// A gateway whose read models the test feeds itself: the events the engine derives
/// from the standard mix, the projector (at nothing yet), and the senders of the
/// projector's progress and changes, for the tests of live subscriptions.
pub struct Live {
    pub schema: TapeSchema,
    pub views: tape_projections::Views,
    pub projector: tape_projections::Projector,
    pub progress: watch::Sender<tape_projections::Progress>,
    pub changes: broadcast::Sender<std::sync::Arc<tape_projections::Changes>>,
    pub events: Vec<Vec<u8>>,
    pub dir: tempfile::TempDir,
}

/// `Live` over the standard mix of `commands` commands from `seed`; the changes
/// channel keeps `capacity` batches for a slow subscriber.
pub fn live_over_mix(commands: u64, seed: u64, capacity: usize) -> Live {
    let dir = tempfile::tempdir().unwrap();
    let mix = tape_benches::standard_mix(commands, seed);
    let records: Vec<Vec<u8>> = mix
        .setup
        .iter()
        .chain(&mix.commands)
        .map(|c| codec::to_bincode(c).unwrap())
        .collect();
    let events = tape_engine::derive_records(&records, Default::default(), 1_000_000);
    let (projector, views) = tape_projections::open(&dir.path().join("views")).unwrap();
    let (sources, progress, changes) = sources(dir.path(), views.clone(), capacity);
    let schema = tape_gateway::schema(sources, GatewayConfig::new("unused"));
    Live {
        schema,
        views,
        projector,
        progress,
        changes,
        events,
        dir,
    }
}

/// What a gateway reads and writes through: `views`, a submitter appending to
/// `dir/commands`, and the projector's progress and changes (their senders are
/// returned; the changes keep `capacity` batches for a slow subscriber).
pub fn sources(
    dir: &std::path::Path,
    views: tape_projections::Views,
    capacity: usize,
) -> (
    tape_gateway::Sources,
    watch::Sender<tape_projections::Progress>,
    broadcast::Sender<std::sync::Arc<tape_projections::Changes>>,
) {
    let (progress, progress_rx) = watch::channel(Default::default());
    let (changes, _) = broadcast::channel(capacity);
    let sources = tape_gateway::Sources {
        views,
        submitter: Submitter::start(CommandsDoor::Embedded(dir.join("commands"))),
        progress: progress_rx,
        changes: changes.clone(),
    };
    (sources, progress, changes)
}
