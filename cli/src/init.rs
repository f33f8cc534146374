//! `tape init`: the start of a deployment's commands log. Its first two records,
//! written in one append, create the first admin key and turn credentials on, so a
//! Kafka deployment refuses unsigned commands from its very first one. The admin
//! token is printed once; nothing else holds its secret.
//!
//! The engine on Kafka checks that its commands log starts this way before it
//! applies anything (`check_started`), unless the operator runs it `--open`.

use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use tape_log::{AnyLog, Log, LogReader};
use tape_schemas::*;
use tokio::sync::watch;

use crate::logs::{LogArgs, Role};

#[derive(Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub logs: LogArgs,
    /// Start with credentials optional: any producer on the commands log may then act
    /// for any account until an operator requires them (`requireCredentials`).
    #[arg(long)]
    pub open: bool,
}

/// The ids of the two records `tape init` writes (fixed, so a repeated init on a log
/// that already has them is plain to see).
const KEY_ID: u128 = 0x7a9e_1417_0000_0000_0000_0000_0000_0001;
const MODE_ID: u128 = 0x7a9e_1417_0000_0000_0000_0000_0000_0002;

pub async fn init(args: InitArgs) -> anyhow::Result<()> {
    let log = args.logs.open("commands", Role::Writer).await?;
    let end = log.end_offset().await?;
    anyhow::ensure!(
        end == 0,
        "the commands log already holds {end} records: tape init only starts a new deployment"
    );
    let (secret, secret_hash) = tape_gateway::auth::new_secret();
    let now = tape_client::now_ms();
    let envelope = |id: u128, command| {
        codec::to_bincode(&CommandEnvelope::new(
            CommandId(uuid::Uuid::from_u128(id)),
            now,
            command,
        ))
    };
    let records = vec![
        envelope(
            KEY_ID,
            Command::CreateApiKey {
                role: ApiRole::Admin,
                account: None,
                secret_hash,
                mac_key: mac_key(&secret),
            },
        )?,
        envelope(
            MODE_ID,
            Command::RequireCredentials {
                required: !args.open,
            },
        )?,
    ];
    // One append: on Kafka one produce batch, so no other producer's record lands
    // between the two.
    log.append(records).await?;
    // The first key the engine creates is key 1.
    println!("{}", tape_gateway::auth::token(ApiKeyId(1), &secret));
    eprintln!("tape: init: the line above is the first admin key's token; it is shown once, keep it secret (GraphQL: Authorization: Bearer <token>; tape produce/mm/clock/load: --key)");
    eprintln!("tape: init: {}", mode(!args.open));
    Ok(())
}

pub fn mode(required: bool) -> &'static str {
    if required {
        "credentials required: every command must be signed by an API key"
    } else {
        "credentials optional: unsigned commands are accepted and may act for any account, until an operator requires credentials"
    }
}

/// What the first two records of a commands log say about how it was started.
#[derive(Debug, PartialEq, Eq)]
pub enum Start {
    /// `tape init`: credentials required, or not (`--open`).
    Init { required: bool },
    /// Anything else came first.
    Other,
}

/// The start of a commands log, from its first two records.
pub fn start_of(first: &[u8], second: &[u8]) -> Start {
    let decode = |bytes| codec::decode_record(bytes).ok().map(|(c, _)| c);
    match (decode(first), decode(second)) {
        (Some(key), Some(mode))
            if key.auth.is_none()
                && mode.auth.is_none()
                && matches!(
                    key.command,
                    Command::CreateApiKey {
                        role: ApiRole::Admin,
                        account: None,
                        ..
                    }
                ) =>
        {
            match mode.command {
                Command::RequireCredentials { required } => Start::Init { required },
                _ => Start::Other,
            }
        }
        _ => Start::Other,
    }
}

/// Waits for the commands log to hold its first two records, then checks they are
/// `tape init`'s. `Ok(None)`: shut down while waiting.
pub async fn check_started(
    commands: &AnyLog,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Option<bool>> {
    let mut reader = commands.reader(0).await?;
    let mut first = Vec::new();
    let mut told = false;
    while first.len() < 2 {
        if *shutdown.borrow() {
            return Ok(None);
        }
        let batch = tokio::select! {
            b = reader.next_batch(2 - first.len(), Duration::from_millis(500)) => b?,
            _ = shutdown.changed() => continue,
        };
        if batch.is_empty() && !told {
            eprintln!("tape: the commands log is empty: waiting for `tape init` (prints the first admin token; `tape init --open` starts with credentials optional)");
            told = true;
        }
        first.extend(batch.into_iter().map(|r| r.bytes));
    }
    match start_of(&first[0], &first[1]) {
        Start::Init { required } => Ok(Some(required)),
        Start::Other => Err(anyhow::anyhow!(
            "this commands log was not started by `tape init`, so it ran with credentials optional from its first command; \
             refusing to run it on Kafka unless told to: pass --open (TAPE_OPEN=true) to run it as it is, \
             then require credentials (GraphQL requireCredentials) once an admin key exists"
        ))
        .context("the commands log's first records"),
    }
}
