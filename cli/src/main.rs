//! The `tape` binary.

mod bench;
mod demo;

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOC: tape_benches::alloc::CountingAlloc = tape_benches::alloc::CountingAlloc;

#[derive(Parser)]
#[command(
    name = "tape",
    version,
    about = "Tape: an event-sourced exchange back end"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs a short scripted session in an in-memory engine and prints every event as
    /// a JSON line, then the balances and the state hash.
    Demo,
    /// Benchmarks.
    #[command(subcommand)]
    Bench(bench::Bench),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Demo => demo::run(),
        Cmd::Bench(b) => bench::run(b),
    }
}
