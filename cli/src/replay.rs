//! `tape replay …`: the auditors' tools. `verify` re-executes the commands log with
//! its own core and proves the events log event by event.

use std::io::Write;

use clap::{Args, Subcommand};
use tape_core::CoreConfig;

use crate::logs::{LogArgs, Role};

#[derive(Subcommand)]
pub enum Replay {
    /// Re-executes every command and checks every event: bytes, seq continuity, the
    /// hash chain, checkpoint state hashes and invariants. Exits 0 only when all hold.
    Verify(VerifyArgs),
}

#[derive(Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub logs: LogArgs,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(r: Replay) -> anyhow::Result<()> {
    match r {
        Replay::Verify(args) => verify(args).await,
    }
}

async fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let commands = args.logs.open("commands", Role::Follower).await?;
    let events = args.logs.open("events", Role::Follower).await?;
    let started = std::time::Instant::now();
    let progress = |done: u64, total: u64| {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\rverifying: {done}/{total} commands");
        if done == total {
            let _ = writeln!(err);
        }
    };
    match tape_replay::verify(&commands, &events, CoreConfig::default(), progress).await {
        Ok(v) => {
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "{} checkpoints checked; {:.0} events/s",
                v.checkpoints,
                v.events as f64 / secs.max(1e-9)
            );
            if args.json {
                println!(
                    r#"{{"verified":true,"commands":{},"events":{},"checkpoints":{},"state_hash":"{}"}}"#,
                    v.commands, v.events, v.checkpoints, v.state_hash
                );
            } else {
                println!(
                    "verified {} commands, {} events, state hash {}",
                    v.commands, v.events, v.state_hash
                );
            }
            Ok(())
        }
        Err(tape_replay::VerifyError::Disagrees(d)) => {
            if args.json {
                println!(
                    "{{\"verified\":false,\"seq\":{},\"command_offset\":{},\"what\":{:?},\"expected\":{:?},\"found\":{:?}}}",
                    d.seq, d.command_offset, d.what, d.expected, d.found
                );
            } else {
                println!("NOT VERIFIED: {d}");
            }
            std::process::exit(1);
        }
        Err(e) => Err(e.into()),
    }
}
