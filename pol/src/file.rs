//! A round's tree on disk, from which any account's proof is read without loading
//! the tree: `TAPEPOL1`, a header (its length as a big-endian `u32`, then JSON),
//! every level from the leaves up (each node its hash and its sums, big-endian
//! `u128`s), then the accounts by id (id, leaf index, salt). Written to a
//! temporary file, fsynced and renamed, so a reader never sees half a tree.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Digest, Proof, Published, Sibling, Tree, MAX_ASSETS, MAX_HEIGHT};

const MAGIC: &[u8; 8] = b"TAPEPOL1";
const INDEX_ENTRY: u64 = 48;
/// A header larger than this is not a tree file's.
const HEADER_MAX: u32 = 1 << 20;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileHeader {
    pub published: Published,
    /// The asset of each sum, in order.
    pub assets: Vec<String>,
    /// How many accounts have a leaf.
    pub accounts: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum TreeFileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}: not a tree file of this version")]
    NotATree(PathBuf),
}

/// The name a round's tree file is kept under (by `tape pol build`, and found
/// by the gateway).
pub fn tree_file_name(round: u64) -> String {
    format!("round-{round:08}.tree")
}

/// A round's tree file, open for reading proofs.
pub struct TreeFile {
    file: File,
    path: PathBuf,
    pub header: FileHeader,
    levels_at: u64,
    index_at: u64,
}

fn node_bytes(assets: usize) -> u64 {
    32 + 16 * assets as u64
}

impl Tree {
    /// Writes the tree to `path` with the asset of each sum.
    pub fn write(&self, path: &Path, assets: &[String]) -> Result<(), TreeFileError> {
        let io = |source| TreeFileError::Io {
            path: path.to_path_buf(),
            source,
        };
        let tmp = path.with_extension("tmp");
        let header = FileHeader {
            published: self.published.clone(),
            assets: assets.to_vec(),
            accounts: self.index.len() as u64,
        };
        let text = serde_json::to_vec(&header).expect("a header encodes");
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&tmp).map_err(io)?);
        w.write_all(MAGIC).map_err(io)?;
        w.write_all(&(text.len() as u32).to_be_bytes())
            .map_err(io)?;
        w.write_all(&text).map_err(io)?;
        for level in &self.levels {
            for (h, sums) in level.hashes.iter().zip(level.sums.chunks(self.assets)) {
                w.write_all(h).map_err(io)?;
                for s in sums {
                    w.write_all(&s.to_be_bytes()).map_err(io)?;
                }
            }
        }
        for (account, place, salt) in &self.index {
            w.write_all(&account.to_be_bytes()).map_err(io)?;
            w.write_all(&place.to_be_bytes()).map_err(io)?;
            w.write_all(salt).map_err(io)?;
        }
        let f = w.into_inner().map_err(|e| io(e.into_error()))?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)?;
        Ok(())
    }
}

impl TreeFile {
    pub fn open(path: &Path) -> Result<TreeFile, TreeFileError> {
        let io = |source| TreeFileError::Io {
            path: path.to_path_buf(),
            source,
        };
        let not = || TreeFileError::NotATree(path.to_path_buf());
        let file = File::open(path).map_err(io)?;
        let mut head = [0u8; 12];
        file.read_exact_at(&mut head, 0).map_err(|_| not())?;
        let len = u32::from_be_bytes(head[8..12].try_into().expect("4 bytes"));
        if &head[..8] != MAGIC || len > HEADER_MAX {
            return Err(not());
        }
        let mut text = vec![0u8; len as usize];
        file.read_exact_at(&mut text, 12).map_err(|_| not())?;
        let header: FileHeader = serde_json::from_slice(&text).map_err(|_| not())?;
        let (h, a) = (header.published.height, header.published.totals.len());
        if h > MAX_HEIGHT || a == 0 || a > MAX_ASSETS || header.assets.len() != a {
            return Err(not());
        }
        let levels_at = 12 + len as u64;
        let nodes = (1u64 << (h + 1)) - 1;
        let index_at = levels_at + nodes * node_bytes(a);
        let size = file.metadata().map_err(io)?.len();
        if size != index_at + header.accounts * INDEX_ENTRY {
            return Err(not());
        }
        Ok(TreeFile {
            file,
            path: path.to_path_buf(),
            header,
            levels_at,
            index_at,
        })
    }

    fn read(&self, buf: &mut [u8], at: u64) -> Result<(), TreeFileError> {
        self.file
            .read_exact_at(buf, at)
            .map_err(|source| TreeFileError::Io {
                path: self.path.clone(),
                source,
            })
    }

    /// The node at `i` of `level` (0 = the leaves): its hash and sums.
    fn node(&self, level: u8, i: u64) -> Result<(Digest, Vec<u128>), TreeFileError> {
        let a = self.header.published.totals.len();
        let h = self.header.published.height;
        // Levels below `level` hold 2^(h+1) - 2^(h+1-level) nodes.
        let before = (1u64 << (h + 1)) - (1u64 << (h + 1 - level));
        let mut buf = vec![0u8; node_bytes(a) as usize];
        self.read(&mut buf, self.levels_at + (before + i) * node_bytes(a))?;
        let hash: Digest = buf[..32].try_into().expect("32 bytes");
        let sums = buf[32..]
            .chunks(16)
            .map(|c| u128::from_be_bytes(c.try_into().expect("16 bytes")))
            .collect();
        Ok((hash, sums))
    }

    fn entry(&self, k: u64) -> Result<(u64, u64, Digest), TreeFileError> {
        let mut buf = [0u8; INDEX_ENTRY as usize];
        self.read(&mut buf, self.index_at + k * INDEX_ENTRY)?;
        let account = u64::from_be_bytes(buf[..8].try_into().expect("8 bytes"));
        let place = u64::from_be_bytes(buf[8..16].try_into().expect("8 bytes"));
        Ok((account, place, buf[16..].try_into().expect("32 bytes")))
    }

    /// An account's proof, `None` when it has no leaf in this round.
    pub fn proof(&self, account: u64) -> Result<Option<Proof>, TreeFileError> {
        let (mut lo, mut hi) = (0u64, self.header.accounts);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let (id, place, salt) = self.entry(mid)?;
            match id.cmp(&account) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return self.proof_at(account, place, salt).map(Some),
            }
        }
        Ok(None)
    }

    /// The proof of the `k`-th account by id (`k < header.accounts`).
    pub fn proof_by_rank(&self, k: u64) -> Result<Proof, TreeFileError> {
        let (account, place, salt) = self.entry(k)?;
        self.proof_at(account, place, salt)
    }

    fn proof_at(&self, account: u64, place: u64, salt: Digest) -> Result<Proof, TreeFileError> {
        let (_, balances) = self.node(0, place)?;
        let path = (0..self.header.published.height)
            .map(|level| {
                let (hash, sums) = self.node(level, (place >> level) ^ 1)?;
                Ok(Sibling { hash, sums })
            })
            .collect::<Result<_, TreeFileError>>()?;
        Ok(Proof {
            round: self.header.published.round,
            account,
            salt,
            index: place,
            balances,
            path,
        })
    }
}
