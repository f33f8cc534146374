//! A broken invariant is a bug, never input: the engine stops where it happened —
//! naming the command's offset and seq — before it writes the checkpoint or any
//! event of that command, and keeps its last good snapshot.

use tape_engine::Deriver;
use tape_schemas::*;

fn mix(n: u64) -> Vec<Vec<u8>> {
    let m = tape_benches::standard_mix(n, 5);
    m.setup
        .iter()
        .chain(&m.commands)
        .map(|c| codec::to_bincode(c).unwrap())
        .collect()
}

#[test]
fn a_broken_balance_stops_the_engine_at_the_next_checkpoint_naming_where() {
    let commands = mix(200);
    let every = 100;
    let mut d = Deriver::new(Default::default(), every);
    let mut out = Vec::new();
    let mut snapshots = 0;
    for (offset, bytes) in commands.iter().enumerate().take(250) {
        if offset == 150 {
            // A bug credits account 1 out of nowhere.
            let usdt = "USD".parse().unwrap();
            let b = d.applier.core.balance(AccountId(1), &usdt).unwrap();
            d.applier
                .core
                .corrupt_balance(AccountId(1), &usdt, b.available + 1, b.held);
        }
        match d.step(offset as u64, bytes, &mut out) {
            Ok(saved) => snapshots += u64::from(saved.is_some()),
            Err(broken) => {
                assert_eq!(broken.offset, 199, "{broken}");
                assert_eq!(broken.seq, d.sealer.next_seq, "{broken}");
                assert!(broken.what.contains("USD"), "{broken}");
                assert_eq!(snapshots, 1, "only the good snapshot (at 100) was taken");
                let sealed_up_to = out.len() as u64;
                assert_eq!(sealed_up_to + 1, broken.seq, "nothing of 199 was sealed");
                return;
            }
        }
    }
    panic!("the broken balance went unnoticed");
}

#[test]
fn an_arithmetic_invariant_broken_mid_command_stops_it_before_its_events() {
    let commands = mix(2_000);
    let mut d = Deriver::new(Default::default(), u64::MAX);
    let mut out = Vec::new();
    // Empty every account's held quote: the next fill against a resting buy posts
    // from a hold the ledger no longer has.
    let setup = tape_benches::standard_mix(2_000, 5).setup.len();
    for (offset, bytes) in commands.iter().enumerate() {
        if offset == setup {
            let usdt = "USD".parse().unwrap();
            for a in 1..=1_000 {
                if let Some(b) = d.applier.core.balance(AccountId(a), &usdt) {
                    d.applier
                        .core
                        .corrupt_balance(AccountId(a), &usdt, b.available, 0);
                }
            }
        }
        let before = out.len();
        if let Err(broken) = d.step(offset as u64, bytes, &mut out) {
            assert_eq!(broken.offset, offset as u64);
            assert_eq!(
                out.len(),
                before,
                "events of the broken command were sealed"
            );
            assert!(
                broken.what.contains("negative") || broken.what.contains("invariant"),
                "{broken}"
            );
            return;
        }
    }
    panic!("no command hit the broken balances");
}
