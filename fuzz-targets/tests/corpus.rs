//! The fuzz targets in the test suite: every input of the committed corpus
//! (`fuzz/corpus/<target>/`, what libFuzzer kept from the long runs) and a bounded
//! seeded run of random inputs go through each target's checks. The long
//! coverage-guided runs are `scripts/fuzz.sh`.

use rand::{Rng, SeedableRng};

/// Random inputs per target, per run of the test suite.
const SEEDED_INPUTS: usize = 3_000;

#[test]
fn every_target_passes_its_corpus_and_a_seeded_run() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    for (name, target) in tape_fuzz::TARGETS {
        let dir = root.join(name);
        let mut replayed = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let run = std::panic::catch_unwind(|| target(&bytes));
            assert!(run.is_ok(), "{name}: {} fails", path.display());
            replayed += 1;
        }
        assert!(replayed > 0, "{name}: the committed corpus is empty");
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x7a9e);
        for i in 0..SEEDED_INPUTS {
            let len = rng.random_range(0..2_048);
            let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            let run = std::panic::catch_unwind(|| target(&bytes));
            assert!(run.is_ok(), "{name}: seeded input {i} fails: {bytes:?}");
        }
    }
}
