//! A bounded run of the deterministic simulation for every test run; the long runs
//! (10,000 seeds and more) are `scripts/sim.sh`. A failing seed names the command
//! that runs it again.

/// Seeds run here: `TAPE_SIM_SEEDS` or 300.
fn seeds() -> u64 {
    std::env::var("TAPE_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300)
}

/// Runs `seeds` and checks each; returns what the faults added up to.
fn run_all(seeds: impl Iterator<Item = u64>) -> tape_sim::Totals {
    let options = tape_sim::Options::default();
    let mut totals = tape_sim::Totals::default();
    let mut failures = Vec::new();
    for seed in seeds {
        match tape_sim::run(seed, &options) {
            Ok(report) => totals.add(&report),
            Err(e) => failures.push(format!(
                "seed {seed}: {e}\n  again: {}",
                options.repro(seed)
            )),
        }
    }
    println!("{totals}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    totals
}

/// The faults were there to be survived.
fn assert_injected(t: &tape_sim::Totals) {
    assert!(t.power_losses > 0 && t.torn_bytes > 0, "{t}");
    assert!(t.engine_crashes > 0 && t.projector_crashes > 0, "{t}");
    assert!(t.duplicate_records > 0 && t.outages > 0, "{t}");
    assert!(t.damaged_snapshots > 0, "{t}");
    // On the broker: leaders paused and killed, standbys taking over, claims made
    // void by a leader that woke before they landed, and deposed leaders whose late
    // records every reader had to set aside.
    assert!(t.pauses > 0 && t.takeovers > 0 && t.depositions > 0, "{t}");
    assert!(t.void_claims > 0, "{t}");
    assert!(t.fences > 0 && t.fenced_records > 0, "{t}");
}

// Two halves, so the test threads run them side by side.
#[test]
fn even_seeds_converge_and_check_out() {
    assert_injected(&run_all((0..seeds()).step_by(2)));
}

#[test]
fn odd_seeds_converge_and_check_out() {
    assert_injected(&run_all((1..seeds()).step_by(2)));
}

#[test]
fn a_seed_runs_the_same_way_every_time() {
    let options = tape_sim::Options::default();
    for seed in [3, 31, 1_000_003] {
        let a = tape_sim::run(seed, &options).unwrap();
        let b = tape_sim::run(seed, &options).unwrap();
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "seed {seed}");
    }
}
