//! The tree and its verifier: every account's proof verifies, and each way an
//! exchange could shrink its total or hand out a made-up proof is caught.

use tape_pol::*;

const SECRET: &[u8] = b"an operator's secret of 32 bytes";

fn balances(n: u64, assets: usize) -> Balances {
    let accounts: Vec<u64> = (0..n).map(|i| 1000 + i * 7).collect();
    let sums = accounts
        .iter()
        .flat_map(|a| (0..assets as u128).map(move |k| (*a as u128 * 31 + k * 1_000_003) % 97_001))
        .collect();
    Balances {
        assets,
        accounts,
        sums,
    }
}

fn tree(n: u64, height: u8) -> (Tree, Balances) {
    let b = balances(n, 3);
    (Tree::build(SECRET, 4, 1_000, height, &b).unwrap(), b)
}

#[test]
fn every_accounts_proof_verifies_and_its_leaf_holds_its_balances() {
    let (t, b) = tree(300, 10);
    assert_eq!(t.accounts(), 300);
    let mut totals = vec![0u128; 3];
    for (i, account) in b.accounts.iter().enumerate() {
        let p = t.proof(*account).unwrap();
        assert_eq!(p.balances, b.sums[i * 3..i * 3 + 3]);
        verify(&p, &t.published).unwrap();
        for (t, s) in totals.iter_mut().zip(&p.balances) {
            *t += s;
        }
    }
    assert_eq!(
        totals, t.published.totals,
        "the root's sums are the accounts' total"
    );
    assert!(
        t.proof(999).is_none(),
        "an account without a leaf has no proof"
    );
    assert_eq!(t.proofs().count(), 300);
}

#[test]
fn the_same_secret_rebuilds_the_same_root_and_another_round_moves_every_leaf() {
    let b = balances(50, 2);
    let a = Tree::build(SECRET, 1, 10, 8, &b).unwrap();
    let again = Tree::build(SECRET, 1, 10, 8, &b).unwrap();
    assert_eq!(a.published, again.published);
    let other_secret = Tree::build(b"another secret", 1, 10, 8, &b).unwrap();
    assert_ne!(a.published.root, other_secret.published.root);
    let next = Tree::build(SECRET, 2, 20, 8, &b).unwrap();
    let (p1, p2) = (a.proof(1000).unwrap(), next.proof(1000).unwrap());
    assert_ne!(p1.salt, p2.salt, "salts change every round");
    assert_eq!(a.published.totals, next.published.totals);
}

#[test]
fn the_tree_is_padded_to_its_height_whatever_the_number_of_accounts() {
    for n in [1, 5, 200] {
        let (t, _) = tree(n, 9);
        let p = t.proof(1000).unwrap();
        assert_eq!(p.path.len(), 9);
        assert!(p.index < 512);
    }
    let err = Tree::build(SECRET, 1, 1, 3, &balances(9, 1)).err().unwrap();
    assert_eq!(
        err,
        BuildError::TooMany {
            accounts: 9,
            height: 3
        }
    );
    assert_eq!(height_for(1_000_000, 20), 20);
    assert_eq!(height_for(1_048_577, 20), 21);
}

#[test]
fn changing_any_balance_salt_sum_sibling_or_index_fails() {
    let (t, _) = tree(100, 8);
    let good = t.proof(1000 + 7 * 42).unwrap();
    let published = &t.published;
    let mut cases: Vec<(&str, Proof)> = Vec::new();
    for k in 0..3 {
        let mut p = good.clone();
        p.balances[k] += 1;
        cases.push(("a balance", p));
    }
    let mut p = good.clone();
    p.salt[5] ^= 1;
    cases.push(("the salt", p));
    let mut p = good.clone();
    p.account += 1;
    cases.push(("the account", p));
    let mut p = good.clone();
    p.index ^= 1;
    cases.push(("the index", p));
    for level in 0..8 {
        let mut p = good.clone();
        p.path[level].sums[level % 3] += 1;
        cases.push(("a sibling's sum", p));
        let mut p = good.clone();
        p.path[level].hash[31] ^= 0x80;
        cases.push(("a sibling's hash", p));
    }
    let mut p = good.clone();
    p.path.pop();
    cases.push(("a short path", p));
    for (what, p) in cases {
        assert!(verify(&p, published).is_err(), "changing {what} must fail");
    }
    let mut smaller = published.clone();
    smaller.totals[0] -= 1;
    assert_eq!(verify(&good, &smaller), Err(VerifyError::Totals));
    let mut other = published.clone();
    other.root[0] ^= 1;
    assert_eq!(verify(&good, &other), Err(VerifyError::Root));
}

/// Hu, Zhang and Guo's attack on Maxwell's tree: a node's sum is set to the max
/// of its children's instead of their total, and each child's user gets a
/// sibling whose value is tailored to add up. Here the exchange publishes a root
/// built that way (one child's sum "forgotten" at a node) and tries, for the
/// user below the other child, both ways to hand out a path: the real sibling
/// (its sums are then too large for the published totals) and a tailored one
/// (its hash no longer leads to the root).
#[test]
fn the_max_node_attack_fails() {
    let (t, _) = tree(64, 6);
    let victim = t.proof(1000).unwrap();
    // At level 3 the victim's subtree is joined with its sibling's; the attacker
    // counts only the larger of the two.
    let level = 3;
    let mut hash = leaf_hash(&leaf_id(&victim.salt, victim.account), &victim.balances);
    let mut sums = victim.balances.clone();
    for (l, sib) in victim.path.iter().enumerate().take(level) {
        hash = match (victim.index >> l) & 1 {
            0 => node_hash(&hash, &sums, &sib.hash, &sib.sums),
            _ => node_hash(&sib.hash, &sib.sums, &hash, &sums),
        };
        sums.iter_mut().zip(&sib.sums).for_each(|(s, t)| *s += t);
    }
    let sibling = &victim.path[level];
    let max: Vec<u128> = sums
        .iter()
        .zip(&sibling.sums)
        .map(|(a, b)| *a.max(b))
        .collect();
    let real_total: Vec<u128> = sums.iter().zip(&sibling.sums).map(|(a, b)| a + b).collect();
    let shrink: Vec<u128> = real_total.iter().zip(&max).map(|(r, m)| r - m).collect();
    assert!(
        shrink.iter().any(|s| *s > 0),
        "the attack shrinks the total"
    );
    let mut forged = t.published.clone();
    for (t, s) in forged.totals.iter_mut().zip(&shrink) {
        *t -= s;
    }
    // The real sibling: the path adds up to the real total, not the forged one.
    assert!(verify(&victim, &forged).is_err());
    // A tailored sibling (max - own) adds up, but its hash is not the one above.
    let mut tailored = victim.clone();
    tailored.path[level].sums = max.iter().zip(&sums).map(|(m, s)| m - s).collect();
    assert!(verify(&tailored, &forged).is_err());
    assert!(verify(&tailored, &t.published).is_err());
}

#[test]
fn a_negative_or_overflowing_sum_fails() {
    let (t, _) = tree(20, 5);
    let good = t.proof(1000).unwrap();
    let json = serde_json::to_value(&good).unwrap();
    let mut negative = json.clone();
    negative["path"][2]["sums"][0] = "-5".into();
    let err = serde_json::from_value::<Proof>(negative).unwrap_err();
    assert!(err.to_string().contains("not an unsigned integer"), "{err}");
    let mut too_big = json.clone();
    too_big["balances"][1] = u128::MAX.to_string().replace('5', "9").into();
    assert!(serde_json::from_value::<Proof>(too_big).is_err());
    // Sums that each fit but add past 2^128 - 1.
    let mut p = good.clone();
    p.path[0].sums[0] = u128::MAX;
    assert_eq!(verify(&p, &t.published), Err(VerifyError::Overflow(0)));
    // The builder refuses balances whose total overflows.
    let b = Balances {
        assets: 1,
        accounts: vec![1, 2],
        sums: vec![u128::MAX, 1],
    };
    assert_eq!(
        Tree::build(SECRET, 1, 1, 2, &b).err(),
        Some(BuildError::Overflow)
    );
}

#[test]
fn two_accounts_never_share_a_leaf() {
    let (t, _) = tree(30, 6);
    // One account's leaf handed to another: the id hashes the account.
    let mut shared = t.proof(1000).unwrap();
    shared.account = 1007;
    assert_eq!(verify(&shared, &t.published), Err(VerifyError::Root));
    let (a, b) = (t.proof(1000).unwrap(), t.proof(1007).unwrap());
    assert_ne!(a.index, b.index);
    // The builder refuses an account listed twice.
    let dup = Balances {
        assets: 1,
        accounts: vec![5, 5],
        sums: vec![10, 10],
    };
    let err = Tree::build(SECRET, 1, 1, 4, &dup).err();
    assert_eq!(err, Some(BuildError::Duplicate(5)));
}

#[test]
fn a_proof_is_read_back_from_the_tree_file_and_its_json_round_trips() {
    let (t, b) = tree(200, 9);
    let dir = tempfile_dir();
    let path = dir.join("round.tree");
    let assets = vec!["BTC".to_string(), "ETH".into(), "USD".into()];
    t.write(&path, &assets).unwrap();
    let f = TreeFile::open(&path).unwrap();
    assert_eq!(f.header.published, t.published);
    assert_eq!(f.header.assets, assets);
    for account in b.accounts.iter().step_by(17) {
        let p = f.proof(*account).unwrap().unwrap();
        assert_eq!(p, t.proof(*account).unwrap());
        let json = serde_json::to_string(&p).unwrap();
        let back: Proof = serde_json::from_str(&json).unwrap();
        verify(&back, &t.published).unwrap();
    }
    assert!(f.proof(1).unwrap().is_none());
    std::fs::write(&path, b"TAPEPOL1 not really").unwrap();
    assert!(matches!(
        TreeFile::open(&path),
        Err(TreeFileError::NotATree(_))
    ));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_proof_of_four_assets_in_a_tree_of_a_million_leaves_is_at_most_2_kb() {
    // Height 20 holds 1,048,576 leaves; the proof's size depends on height and
    // assets only, so a small tree of that height is built.
    let b = Balances {
        assets: 4,
        accounts: vec![7],
        sums: vec![1, 2, 3, 4],
    };
    let t = Tree::build(SECRET, 1, 1, 20, &b).unwrap();
    let p = t.proof(7).unwrap();
    verify(&p, &t.published).unwrap();
    assert!(p.to_bytes().len() <= 2048, "{} bytes", p.to_bytes().len());
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("tape-pol-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
