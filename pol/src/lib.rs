//! Proof of liabilities: a Maxwell+ Merkle-sum tree over every account's balances
//! at one checkpoint, every account's inclusion proof, and a verifier.
//!
//! The construction (algorithm 1), so that any language can check it with SHA-256
//! alone (docs/auditors.md spells it out byte by byte):
//!
//! * `round_key = HMAC-SHA256(secret, "tape-pol/1/round" ‖ round ‖ checkpoint)`,
//!   `salt = HMAC-SHA256(round_key, "account" ‖ account)`: per account and per
//!   round, from a secret only the operator holds; nothing random, so the same
//!   secret rebuilds the same tree byte for byte.
//! * `id = SHA-256("tape-pol/1/id" ‖ salt ‖ account)`; a leaf's hash is
//!   `SHA-256(0x00 ‖ id ‖ sums)`. Padding leaves take
//!   `id = HMAC-SHA256(round_key, "padding" ‖ i)` and zero sums, and every leaf,
//!   real or padding, is placed in the order of its `id`: the tree always has
//!   `2^height` leaves and a position says nothing about the account.
//! * A node is `SHA-256(0x01 ‖ left hash ‖ left sums ‖ right hash ‖ right sums)`
//!   with sums `left + right` per asset. Each child's sums are committed on their
//!   own (Maxwell+), which defeats the max()-node attack: a sibling's sums cannot
//!   be tailored without changing the hash above it.
//! * Integers are big-endian: `u64` for round, checkpoint, account and `i`, `u128`
//!   for each asset's sum. Sums are unsigned and added with overflow checked.

#![warn(clippy::too_many_lines)]

mod file;
mod json;

use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

pub use file::{tree_file_name, TreeFile, TreeFileError};

/// The construction's version, committed on the log beside each root.
pub const ALGORITHM: u16 = 1;
/// The most assets one tree carries (a node is 32 + 16 × assets bytes).
pub const MAX_ASSETS: usize = 16;
/// Heights a tree may have: at most 2^32 leaves.
pub const MIN_HEIGHT: u8 = 1;
pub const MAX_HEIGHT: u8 = 32;

pub type Digest = [u8; 32];

type HmacSha256 = hmac::Hmac<Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> Digest {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// The key of one round: every salt of the round derives from it.
pub fn round_key(secret: &[u8], round: u64, checkpoint: u64) -> Digest {
    hmac(
        secret,
        &[
            b"tape-pol/1/round",
            &round.to_be_bytes(),
            &checkpoint.to_be_bytes(),
        ],
    )
}

/// An account's salt in a round.
pub fn account_salt(round_key: &Digest, account: u64) -> Digest {
    hmac(round_key, &[b"account", &account.to_be_bytes()])
}

fn padding_id(round_key: &Digest, i: u64) -> Digest {
    hmac(round_key, &[b"padding", &i.to_be_bytes()])
}

/// The id an account's leaf is ordered by and hashes.
pub fn leaf_id(salt: &Digest, account: u64) -> Digest {
    let mut h = Sha256::new();
    h.update(b"tape-pol/1/id");
    h.update(salt);
    h.update(account.to_be_bytes());
    h.finalize().into()
}

fn put_sums(h: &mut Sha256, sums: &[u128]) {
    for s in sums {
        h.update(s.to_be_bytes());
    }
}

pub fn leaf_hash(id: &Digest, sums: &[u128]) -> Digest {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(id);
    put_sums(&mut h, sums);
    h.finalize().into()
}

pub fn node_hash(left: &Digest, left_sums: &[u128], right: &Digest, right_sums: &[u128]) -> Digest {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    put_sums(&mut h, left_sums);
    h.update(right);
    put_sums(&mut h, right_sums);
    h.finalize().into()
}

/// What is published on the log for a round: enough to check any proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub round: u64,
    /// The checkpoint the balances were taken at (commands applied).
    pub checkpoint: u64,
    pub height: u8,
    pub algorithm: u16,
    #[serde(with = "json::hex32")]
    pub root: Digest,
    /// The tree's total per asset, in the order of the leaves' sums.
    #[serde(with = "json::u128s")]
    pub totals: Vec<u128>,
}

/// One account's liabilities: what goes in its leaf.
pub struct Balances {
    pub assets: usize,
    /// Account ids, each at most once.
    pub accounts: Vec<u64>,
    /// `accounts.len() × assets` sums, account by account.
    pub sums: Vec<u128>,
}

/// One level of the tree: each node's hash and its sums.
struct Level {
    hashes: Vec<Digest>,
    sums: Vec<u128>,
}

/// A built tree: every level, and where each account's leaf is.
pub struct Tree {
    pub published: Published,
    assets: usize,
    /// Leaves first, the root last.
    levels: Vec<Level>,
    /// (account, leaf index, salt), by account.
    index: Vec<(u64, u64, Digest)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("{0} assets: a tree carries 1 to {MAX_ASSETS}")]
    Assets(usize),
    #[error("height {0}: a tree is {MIN_HEIGHT} to {MAX_HEIGHT} levels high")]
    Height(u8),
    #[error("{accounts} accounts do not fit in a tree of height {height}")]
    TooMany { accounts: usize, height: u8 },
    #[error("account {0} appears twice: two accounts may never share a leaf")]
    Duplicate(u64),
    #[error("the balances are {0} sums, not accounts × assets")]
    Shape(usize),
    #[error("a sum overflows 128 bits")]
    Overflow,
}

/// The smallest height whose tree holds `accounts` leaves, and never below `min`.
pub fn height_for(accounts: usize, min: u8) -> u8 {
    let mut h = min.max(MIN_HEIGHT);
    while h < MAX_HEIGHT && (1u64 << h) < accounts as u64 {
        h += 1;
    }
    h
}

fn check_shape(b: &Balances, height: u8) -> Result<(), BuildError> {
    if b.assets == 0 || b.assets > MAX_ASSETS {
        return Err(BuildError::Assets(b.assets));
    }
    if !(MIN_HEIGHT..=MAX_HEIGHT).contains(&height) {
        return Err(BuildError::Height(height));
    }
    if b.accounts.len() as u64 > 1u64 << height {
        let accounts = b.accounts.len();
        return Err(BuildError::TooMany { accounts, height });
    }
    if b.sums.len() != b.accounts.len() * b.assets {
        return Err(BuildError::Shape(b.sums.len()));
    }
    Ok(())
}

/// Runs `f` over `n` items split into one chunk per core (at least `min` items a
/// chunk), each chunk writing its own part of `out` (`width` slots per item).
fn parallel<T: Send>(n: usize, width: usize, out: &mut [T], f: impl Fn(usize, &mut [T]) + Sync) {
    let threads = std::thread::available_parallelism().map_or(1, |p| p.get());
    let chunk = n.div_ceil(threads).max(4096);
    if chunk >= n {
        f(0, out);
        return;
    }
    std::thread::scope(|s| {
        for (i, part) in out.chunks_mut(chunk * width).enumerate() {
            let f = &f;
            s.spawn(move || f(i * chunk, part));
        }
    });
}

impl Tree {
    /// Builds round `round`'s tree of height `height` from the balances at
    /// `checkpoint`, salted from `secret`.
    pub fn build(
        secret: &[u8],
        round: u64,
        checkpoint: u64,
        height: u8,
        balances: &Balances,
    ) -> Result<Tree, BuildError> {
        check_shape(balances, height)?;
        let key = round_key(secret, round, checkpoint);
        let (order, index) = Self::order(&key, height, balances)?;
        let leaves = Self::leaves(&order, balances);
        let mut levels = vec![leaves];
        for _ in 0..height {
            let next = Self::parent_level(levels.last().expect("a level"), balances.assets)?;
            levels.push(next);
        }
        let top = levels.last().expect("the root");
        let published = Published {
            round,
            checkpoint,
            height,
            algorithm: ALGORITHM,
            root: top.hashes[0],
            totals: top.sums.clone(),
        };
        Ok(Tree {
            published,
            assets: balances.assets,
            levels,
            index,
        })
    }

    /// Every leaf's id and which account it is (`None` for padding), in id
    /// order; and each account's place and salt, by account.
    #[allow(clippy::type_complexity)]
    fn order(
        key: &Digest,
        height: u8,
        b: &Balances,
    ) -> Result<(Vec<(Digest, Option<u32>)>, Vec<(u64, u64, Digest)>), BuildError> {
        let size = 1usize << height;
        let n = b.accounts.len();
        let mut order: Vec<(Digest, Option<u32>)> = vec![([0; 32], None); size];
        let mut salts = vec![[0u8; 32]; n];
        parallel(n, 1, &mut salts, |start, part| {
            for (i, s) in part.iter_mut().enumerate() {
                *s = account_salt(key, b.accounts[start + i]);
            }
        });
        parallel(size, 1, &mut order, |start, part| {
            for (i, slot) in part.iter_mut().enumerate() {
                let j = start + i;
                *slot = match j < n {
                    true => (leaf_id(&salts[j], b.accounts[j]), Some(j as u32)),
                    false => (padding_id(key, (j - n) as u64), None),
                };
            }
        });
        order.sort_unstable_by_key(|e| e.0);
        let mut index = Vec::with_capacity(n);
        for (place, (_, who)) in order.iter().enumerate() {
            if let Some(j) = who {
                let j = *j as usize;
                index.push((b.accounts[j], place as u64, salts[j]));
            }
        }
        index.sort_unstable_by_key(|e| e.0);
        if let Some(w) = index.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(BuildError::Duplicate(w[0].0));
        }
        Ok((order, index))
    }

    fn leaves(order: &[(Digest, Option<u32>)], b: &Balances) -> Level {
        let a = b.assets;
        let mut sums = vec![0u128; order.len() * a];
        for (place, (_, who)) in order.iter().enumerate() {
            if let Some(j) = who {
                let j = *j as usize;
                sums[place * a..(place + 1) * a].copy_from_slice(&b.sums[j * a..(j + 1) * a]);
            }
        }
        let mut hashes = vec![[0u8; 32]; order.len()];
        parallel(order.len(), 1, &mut hashes, |start, part| {
            for (i, h) in part.iter_mut().enumerate() {
                let p = start + i;
                *h = leaf_hash(&order[p].0, &sums[p * a..(p + 1) * a]);
            }
        });
        Level { hashes, sums }
    }

    fn parent_level(below: &Level, a: usize) -> Result<Level, BuildError> {
        let n = below.hashes.len() / 2;
        let mut sums = vec![0u128; n * a];
        let mut overflow = false;
        for (i, s) in sums.iter_mut().enumerate() {
            let (node, asset) = (i / a, i % a);
            let l = below.sums[2 * node * a + asset];
            let r = below.sums[(2 * node + 1) * a + asset];
            *s = l.checked_add(r).unwrap_or_else(|| {
                overflow = true;
                0
            });
        }
        if overflow {
            return Err(BuildError::Overflow);
        }
        let mut hashes = vec![[0u8; 32]; n];
        parallel(n, 1, &mut hashes, |start, part| {
            for (k, h) in part.iter_mut().enumerate() {
                let i = start + k;
                let (l, r) = (2 * i, 2 * i + 1);
                *h = node_hash(
                    &below.hashes[l],
                    &below.sums[l * a..(l + 1) * a],
                    &below.hashes[r],
                    &below.sums[r * a..(r + 1) * a],
                );
            }
        });
        Ok(Level { hashes, sums })
    }

    pub fn assets(&self) -> usize {
        self.assets
    }

    /// How many accounts have a leaf.
    pub fn accounts(&self) -> usize {
        self.index.len()
    }

    /// An account's proof, `None` when it has no leaf this round.
    pub fn proof(&self, account: u64) -> Option<Proof> {
        let at = self.index.binary_search_by_key(&account, |e| e.0).ok()?;
        let (_, place, salt) = self.index[at];
        Some(self.proof_at(account, place, salt))
    }

    /// Every account's proof, by account (what a round hands out).
    pub fn proofs(&self) -> impl Iterator<Item = Proof> + '_ {
        self.index
            .iter()
            .map(|&(account, place, salt)| self.proof_at(account, place, salt))
    }

    /// The compact bytes (`Proof::to_bytes`) of the `k`-th account's proof by id,
    /// appended to `out` without building a `Proof`: how every proof of a round
    /// is made in one pass.
    pub fn proof_bytes(&self, k: usize, out: &mut Vec<u8>) {
        let (account, place, salt) = self.index[k];
        let (a, p, h) = (self.assets, place as usize, self.published.height);
        out.extend_from_slice(&self.published.round.to_be_bytes());
        out.extend_from_slice(&account.to_be_bytes());
        out.extend_from_slice(&place.to_be_bytes());
        out.extend_from_slice(&salt);
        out.extend_from_slice(&[a as u8, h]);
        for s in &self.levels[0].sums[p * a..(p + 1) * a] {
            out.extend_from_slice(&s.to_be_bytes());
        }
        for (level, l) in self.levels.iter().enumerate().take(h as usize) {
            let s = (p >> level) ^ 1;
            out.extend_from_slice(&l.hashes[s]);
            for x in &l.sums[s * a..(s + 1) * a] {
                out.extend_from_slice(&x.to_be_bytes());
            }
        }
    }

    fn proof_at(&self, account: u64, place: u64, salt: Digest) -> Proof {
        let a = self.assets;
        let p = place as usize;
        let balances = self.levels[0].sums[p * a..(p + 1) * a].to_vec();
        let path = (0..self.published.height as usize)
            .map(|level| {
                let s = (p >> level) ^ 1;
                let l = &self.levels[level];
                Sibling {
                    hash: l.hashes[s],
                    sums: l.sums[s * a..(s + 1) * a].to_vec(),
                }
            })
            .collect();
        Proof {
            round: self.published.round,
            account,
            salt,
            index: place,
            balances,
            path,
        }
    }
}

/// A sibling on the path from a leaf to the root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sibling {
    #[serde(with = "json::hex32")]
    pub hash: Digest,
    #[serde(with = "json::u128s")]
    pub sums: Vec<u128>,
}

/// An account's inclusion proof: its salt, its leaf (the balances) and the path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proof {
    pub round: u64,
    pub account: u64,
    #[serde(with = "json::hex32")]
    pub salt: Digest,
    /// The leaf's place, left to right: bit `i` says which side the path is on
    /// at level `i`.
    pub index: u64,
    #[serde(with = "json::u128s")]
    pub balances: Vec<u128>,
    pub path: Vec<Sibling>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("algorithm {0} is not one this verifier knows ({ALGORITHM})")]
    Algorithm(u16),
    #[error("the proof is for round {proof}, the record for round {published}")]
    Round { proof: u64, published: u64 },
    #[error("the path has {found} levels; the tree has {height}")]
    PathLength { found: usize, height: u8 },
    #[error("a leaf or sibling carries {found} sums; the tree has {assets} assets")]
    SumCount { found: usize, assets: usize },
    #[error("leaf index {0} is outside the tree")]
    Index(u64),
    #[error("a sum overflows 128 bits at level {0}")]
    Overflow(usize),
    #[error("the path does not lead to the published root")]
    Root,
    #[error("the path's sums at the root are not the published totals")]
    Totals,
}

/// Checks `proof` against the published record of its round.
pub fn verify(proof: &Proof, published: &Published) -> Result<(), VerifyError> {
    if published.algorithm != ALGORITHM {
        return Err(VerifyError::Algorithm(published.algorithm));
    }
    if proof.round != published.round {
        let (proof, published) = (proof.round, published.round);
        return Err(VerifyError::Round { proof, published });
    }
    let height = published.height;
    if proof.path.len() != height as usize || !(MIN_HEIGHT..=MAX_HEIGHT).contains(&height) {
        let found = proof.path.len();
        return Err(VerifyError::PathLength { found, height });
    }
    let assets = published.totals.len();
    for sums in std::iter::once(&proof.balances).chain(proof.path.iter().map(|s| &s.sums)) {
        if sums.len() != assets {
            let found = sums.len();
            return Err(VerifyError::SumCount { found, assets });
        }
    }
    if proof.index >> height != 0 {
        return Err(VerifyError::Index(proof.index));
    }
    let mut hash = leaf_hash(&leaf_id(&proof.salt, proof.account), &proof.balances);
    let mut sums = proof.balances.clone();
    for (level, sib) in proof.path.iter().enumerate() {
        hash = match (proof.index >> level) & 1 {
            0 => node_hash(&hash, &sums, &sib.hash, &sib.sums),
            _ => node_hash(&sib.hash, &sib.sums, &hash, &sums),
        };
        for (s, t) in sums.iter_mut().zip(&sib.sums) {
            *s = s.checked_add(*t).ok_or(VerifyError::Overflow(level))?;
        }
    }
    if hash != published.root {
        return Err(VerifyError::Root);
    }
    if sums != published.totals {
        return Err(VerifyError::Totals);
    }
    Ok(())
}

impl Proof {
    /// The compact bytes of a proof (what its size is measured in): round,
    /// account, index (8 bytes each), salt, the counts of assets and levels (a
    /// byte each), the balances and each sibling's hash and sums.
    pub fn to_bytes(&self) -> Vec<u8> {
        let a = self.balances.len();
        let mut out = Vec::with_capacity(58 + 16 * a + self.path.len() * (32 + 16 * a));
        out.extend_from_slice(&self.round.to_be_bytes());
        out.extend_from_slice(&self.account.to_be_bytes());
        out.extend_from_slice(&self.index.to_be_bytes());
        out.extend_from_slice(&self.salt);
        out.push(a as u8);
        out.push(self.path.len() as u8);
        for s in &self.balances {
            out.extend_from_slice(&s.to_be_bytes());
        }
        for sib in &self.path {
            out.extend_from_slice(&sib.hash);
            for s in &sib.sums {
                out.extend_from_slice(&s.to_be_bytes());
            }
        }
        out
    }
}
