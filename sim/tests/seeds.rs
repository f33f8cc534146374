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

#[test]
fn every_seed_converges_and_checks_out() {
    let options = tape_sim::Options::default();
    let mut totals = tape_sim::Totals::default();
    let mut failures = Vec::new();
    for seed in 0..seeds() {
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
    // The faults were there to be survived.
    assert!(totals.power_losses > 0 && totals.torn_bytes > 0, "{totals}");
    assert!(
        totals.engine_crashes > 0 && totals.projector_crashes > 0,
        "{totals}"
    );
    assert!(
        totals.duplicate_records > 0 && totals.outages > 0,
        "{totals}"
    );
    assert!(
        totals.second_engines > 0 && totals.damaged_snapshots > 0,
        "{totals}"
    );
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
