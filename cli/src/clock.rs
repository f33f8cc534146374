//! `tape clock`: the operator's time source. Once credentials are required, a trader
//! key's `time_ms` may run only `TIME_TOLERANCE_MS` ahead of the latest time an admin
//! key stamped; this appends a `ClockTick` signed by an admin key every interval, so
//! the engine's clock follows the operator's clock however quiet the market.

use std::time::Duration;

use clap::Args;
use tape_schemas::Command;

use crate::door::Door;
use crate::logs::LogArgs;

#[derive(Args)]
pub struct ClockArgs {
    #[command(flatten)]
    pub logs: LogArgs,
    /// An admin API token (`tape_<id>_<secret>`) to sign the ticks with.
    #[arg(long, env = "TAPE_CLOCK_KEY", hide_env_values = true)]
    pub key: String,
    /// Milliseconds between ticks.
    #[arg(long, env = "TAPE_CLOCK_EVERY_MS", default_value_t = 1_000)]
    pub every_ms: u64,
    /// Start with `AllowClockJump`: the operator's consent to move the engine's
    /// clock to now however long it stood still (after an outage longer than
    /// the engine's `clock_jump_max_ms`, 7 days by default).
    #[arg(long)]
    pub allow_jump: bool,
}

pub async fn run(args: ClockArgs) -> anyhow::Result<()> {
    let mut shutdown = crate::service::shutdown_signal()?;
    let door = Door::open(&args.logs, Some(&args.key)).await?;
    let mut every = tokio::time::interval(Duration::from_millis(args.every_ms.max(1)));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    eprintln!("tape clock: a signed clock tick every {} ms", args.every_ms);
    let mut ticks = 0u64;
    if args.allow_jump {
        door.send(&door.envelope(Command::AllowClockJump)?).await?;
        eprintln!("tape clock: sent AllowClockJump");
    }
    loop {
        tokio::select! {
            _ = every.tick() => {
                door.send(&door.envelope(Command::ClockTick)?).await?;
                ticks += 1;
            }
            _ = shutdown.changed() => break,
        }
    }
    eprintln!("tape clock: {ticks} ticks");
    Ok(())
}
