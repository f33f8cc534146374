//! `tape-sim`: runs seeds of the deterministic simulation. A failing seed prints
//! the command that runs it again.

use clap::Parser;

#[derive(Parser)]
#[command(about = "Tape's deterministic simulation with injected faults")]
struct Args {
    /// Run just this seed, and print its report.
    #[arg(long)]
    seed: Option<u64>,
    /// The first seed of a range.
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// How many seeds from `--from`.
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// Threads running seeds side by side.
    #[arg(long, default_value_t = 2)]
    jobs: u64,
    /// Commands after the setup, per seed.
    #[arg(long, default_value_t = tape_sim::Options::default().commands)]
    commands: u64,
    /// Simulator steps with faults, per seed.
    #[arg(long, default_value_t = tape_sim::Options::default().fault_steps)]
    fault_steps: u64,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let options = tape_sim::Options {
        commands: args.commands,
        fault_steps: args.fault_steps,
        ..Default::default()
    };
    if let Some(seed) = args.seed {
        return match tape_sim::run(seed, &options) {
            Ok(report) => {
                println!("{report}");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("seed {seed} FAILED: {e}\n  again: {}", options.repro(seed));
                std::process::ExitCode::FAILURE
            }
        };
    }
    let next = std::sync::atomic::AtomicU64::new(args.from);
    let end = args.from + args.seeds;
    let failures = std::sync::Mutex::new(Vec::new());
    let totals = std::sync::Mutex::new(tape_sim::Totals::default());
    let started = std::time::Instant::now();
    std::thread::scope(|s| {
        for _ in 0..args.jobs.max(1) {
            s.spawn(|| loop {
                let seed = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if seed >= end {
                    return;
                }
                match tape_sim::run(seed, &options) {
                    Ok(r) => totals.lock().unwrap().add(&r),
                    Err(e) => {
                        eprintln!("seed {seed} FAILED: {e}\n  again: {}", options.repro(seed));
                        failures.lock().unwrap().push(seed);
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    let totals = totals.into_inner().unwrap();
    println!(
        "{} seeds ({}..{}) in {:.0} s: {} failed\n{totals}",
        args.seeds,
        args.from,
        end,
        started.elapsed().as_secs_f64(),
        failures.len()
    );
    if failures.is_empty() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
