//! `tape bench pol`: a proof-of-liabilities round at scale. Builds the tree over
//! N accounts × A assets (random balances, a fixed seed), makes every account's
//! proof (its compact bytes, in one pass), writes the tree file `tape pol build`
//! keeps, and times the stdlib Python verifier on one proof.

use std::time::Instant;

use clap::Args;

#[derive(Args)]
pub struct PolArgs {
    #[arg(long, default_value_t = 1_000_000)]
    accounts: u64,
    #[arg(long, default_value_t = 4)]
    assets: usize,
    #[arg(long, default_value_t = 20)]
    height: u8,
    /// Rounds built; medians are reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Where the tree file and the Python check's files go (removed afterwards).
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    dir: std::path::PathBuf,
}

/// Balances up to ~10^12 minor units, a quarter of them zero, from a seed.
fn balances(accounts: u64, assets: usize) -> tape_pol::Balances {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let ids: Vec<u64> = (1..=accounts).collect();
    let sums = (0..accounts as usize * assets)
        .map(|_| match next() % 4 {
            0 => 0,
            _ => u128::from(next() % 1_000_000_000_000),
        })
        .collect();
    tape_pol::Balances {
        assets,
        accounts: ids,
        sums,
    }
}

pub fn run(args: PolArgs) -> anyhow::Result<()> {
    let b = balances(args.accounts, args.assets);
    let secret = [7u8; 32];
    let height = tape_pol::height_for(b.accounts.len(), args.height);
    let dir = args
        .dir
        .join(format!("tape-bench-pol-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (mut build, mut proofs, mut write) = (vec![], vec![], vec![]);
    let mut last = None;
    for run in 0..args.runs.max(1) {
        let t = Instant::now();
        let tree = tape_pol::Tree::build(&secret, 1 + run as u64, 1_000, height, &b)?;
        build.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let total = every_proof(&tree);
        proofs.push(t.elapsed().as_secs_f64());
        std::hint::black_box(total);
        let t = Instant::now();
        let codes: Vec<String> = (0..args.assets).map(|i| format!("A{i}")).collect();
        tree.write(&dir.join("round.tree"), &codes)?;
        write.push(t.elapsed().as_secs_f64());
        last = Some(tree);
    }
    let tree = last.expect("one run");
    let proof = tree.proof(1).expect("account 1 has a leaf");
    let (bytes, json) = (proof.to_bytes().len(), serde_json::to_string(&proof)?.len());
    let med = |v: &Vec<f64>| crate::bench::median(v.clone());
    println!(
        "pol: {} accounts x {} assets, height {height} ({} leaves), {} runs (medians)",
        args.accounts,
        args.assets,
        1u64 << height,
        args.runs
    );
    println!("  build the tree: {:.3} s", med(&build));
    println!("  every account's proof (bytes): {:.3} s", med(&proofs));
    println!("  build + every proof: {:.3} s", med(&build) + med(&proofs));
    println!(
        "  write the tree file: {:.3} s ({} MB)",
        med(&write),
        std::fs::metadata(dir.join("round.tree"))?.len() >> 20
    );
    println!("  one proof: {bytes} bytes compact, {json} bytes as JSON");
    python(&dir, &proof, &tree.published)?;
    std::fs::remove_dir_all(&dir)?;
    from_core(&args)
}

/// What `tape pol build` does before the tree: a core with the accounts funded
/// (every account a deposit in each asset), its snapshot restored as at a
/// checkpoint, and the leaves and totals read out of it.
fn from_core(args: &PolArgs) -> anyhow::Result<()> {
    use tape_schemas::{AssetSpec, Command, CommandEnvelope, CommandId, Dec};
    let mut core = tape_core::Core::default();
    let mut out = Vec::new();
    let mut time = 1_000u64;
    let mut apply = |core: &mut tape_core::Core, command: Command| {
        time += 1;
        out.clear();
        // A new id each: the answer window would take a repeated one for a retry.
        let id = CommandId(uuid::Uuid::from_u128(u128::from(time)));
        core.apply(&CommandEnvelope::new(id, time, command), &mut out);
    };
    let codes: Vec<tape_schemas::AssetCode> = (0..args.assets)
        .map(|i| format!("A{i}").parse().expect("a code"))
        .collect();
    for code in &codes {
        let spec = AssetSpec {
            code: *code,
            scale: 6,
            daily_withdrawal_limit: None,
        };
        apply(&mut core, Command::CreateAsset(spec));
    }
    let t = Instant::now();
    for account in 1..=args.accounts {
        for code in &codes {
            apply(
                &mut core,
                Command::Deposit {
                    account: tape_schemas::AccountId(account),
                    asset: *code,
                    amount: Dec::from_minor(i128::from(account % 1_000_000 + 1), 6),
                    reference: format!("{account}").parse().expect("a reference"),
                },
            );
        }
    }
    let funded = t.elapsed().as_secs_f64();
    let snapshot = core.snapshot();
    drop(core);
    let (mut restore, mut leaves) = (vec![], vec![]);
    for _ in 0..args.runs.max(1) {
        let t = Instant::now();
        let core = tape_core::Core::restore(&snapshot)?;
        restore.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let l = core.liability_leaves();
        let totals = core.liability_totals();
        leaves.push(t.elapsed().as_secs_f64());
        std::hint::black_box((l.sums.len(), totals.len()));
    }
    let med = |v: &Vec<f64>| crate::bench::median(v.clone());
    println!(
        "  from a core of {} funded accounts ({funded:.1} s of deposits; a {} MB snapshot):",
        args.accounts,
        snapshot.len() >> 20
    );
    println!(
        "    restore the checkpoint's snapshot: {:.3} s",
        med(&restore)
    );
    println!(
        "    read the leaves and totals out of the core: {:.3} s",
        med(&leaves)
    );
    Ok(())
}

/// Every account's proof as compact bytes, on every core: the bytes' total.
fn every_proof(tree: &tape_pol::Tree) -> usize {
    let n = tree.accounts();
    let threads = std::thread::available_parallelism().map_or(1, |p| p.get());
    let chunk = n.div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let parts: Vec<_> = (0..n)
            .step_by(chunk)
            .map(|start| {
                s.spawn(move || {
                    let mut out = Vec::with_capacity(4096);
                    let mut total = 0usize;
                    for k in start..(start + chunk).min(n) {
                        out.clear();
                        tree.proof_bytes(k, &mut out);
                        total += out.len();
                    }
                    total
                })
            })
            .collect();
        parts
            .into_iter()
            .map(|h| h.join().expect("a proof thread"))
            .sum()
    })
}

/// The stdlib Python verifier on one proof: the median of 5 timings of 1,000 checks.
fn python(
    dir: &std::path::Path,
    proof: &tape_pol::Proof,
    published: &tape_pol::Published,
) -> anyhow::Result<()> {
    let (p, r) = (dir.join("proof.json"), dir.join("record.json"));
    std::fs::write(&p, serde_json::to_vec(proof)?)?;
    std::fs::write(&r, serde_json::to_vec(published)?)?;
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/python");
    let script = format!(
        "import json, sys, timeit\nsys.path.insert(0, {ex:?})\nimport verify_liabilities as v\np = json.load(open({p:?}))\nr = json.load(open({r:?}))\nv.verify(p, r)\nt = sorted(timeit.repeat(lambda: v.verify(p, r), number=1000, repeat=5))\nprint(f'{{t[2] * 1000:.1f}}')",
        ex = examples.display().to_string(),
        p = p.display().to_string(),
        r = r.display().to_string(),
    );
    match std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
    {
        Ok(o) if o.status.success() => println!(
            "  verify one proof in Python (stdlib): {} µs",
            String::from_utf8_lossy(&o.stdout).trim()
        ),
        Ok(o) => anyhow::bail!(
            "the Python verifier failed: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => println!("  (no python3 to time the verifier: {e})"),
    }
    Ok(())
}
