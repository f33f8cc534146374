//! Snapshots on disk: the core's canonical snapshot plus where the logs stood, in
//! files named by the next command offset, written to a temporary file, fsynced and
//! renamed so a crash never leaves half a snapshot. A snapshot that fails its
//! checksum is skipped for the one before it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tape_schemas::Hash32;

/// What a snapshot holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    /// The next command offset to apply.
    pub next_command: u64,
    /// The next event `seq` to write.
    pub next_seq: u64,
    /// The hash of event `next_seq - 1` (zero when none).
    pub last_hash: Hash32,
    /// An events-log offset at or before event `next_seq - 1` where a reader that
    /// resumes from this snapshot starts, and the epoch in force there (the fencing
    /// rule: `tape_schemas::Fencing`).
    pub events_at: u64,
    pub epoch: u64,
    pub core: Vec<u8>,
}

pub struct SnapshotStore {
    dir: PathBuf,
    keep: usize,
}

fn name(next_command: u64) -> String {
    format!("{next_command:020}.snap")
}

impl SnapshotStore {
    pub fn open(dir: impl AsRef<Path>, keep: usize) -> std::io::Result<SnapshotStore> {
        std::fs::create_dir_all(dir.as_ref())?;
        Ok(SnapshotStore {
            dir: dir.as_ref().to_path_buf(),
            keep: keep.max(1),
        })
    }

    fn list(&self) -> std::io::Result<Vec<u64>> {
        let mut v: Vec<u64> = std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".snap")?.parse().ok())
            .collect();
        v.sort_unstable();
        Ok(v)
    }

    pub fn write(&self, saved: &Saved) -> std::io::Result<()> {
        let body = tape_schemas::codec::to_bincode_large(saved).map_err(std::io::Error::other)?;
        let mut bytes = Vec::with_capacity(body.len() + 32);
        bytes.extend_from_slice(&body);
        bytes.extend_from_slice(blake3::hash(&body).as_bytes());
        let tmp = self.dir.join(format!("{}.tmp", name(saved.next_command)));
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, self.dir.join(name(saved.next_command)))?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        let all = self.list()?;
        for old in all.iter().take(all.len().saturating_sub(self.keep)) {
            let _ = std::fs::remove_file(self.dir.join(name(*old)));
        }
        Ok(())
    }

    /// The newest snapshot that reads back intact.
    pub fn latest(&self) -> std::io::Result<Option<Saved>> {
        for n in self.list()?.into_iter().rev() {
            if let Some(s) = self.read(n)? {
                return Ok(Some(s));
            }
        }
        Ok(None)
    }

    /// The snapshots kept, by the next command offset, newest first.
    pub fn newest_first(&self) -> std::io::Result<Vec<u64>> {
        let mut v = self.list()?;
        v.reverse();
        Ok(v)
    }

    /// The snapshot taken before command `next_command`, if it reads back intact.
    pub fn read(&self, next_command: u64) -> std::io::Result<Option<Saved>> {
        let path = self.dir.join(name(next_command));
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if bytes.len() < 32 {
            tracing::warn!(path = %path.display(), "snapshot too short; skipping it");
            return Ok(None);
        }
        let (body, sum) = bytes.split_at(bytes.len() - 32);
        if blake3::hash(body).as_bytes() != sum {
            tracing::warn!(path = %path.display(), "snapshot checksum mismatch; skipping it");
            return Ok(None);
        }
        match tape_schemas::codec::from_bincode_large::<Saved>(body) {
            Ok(s) => Ok(Some(s)),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "snapshot does not decode; skipping it");
                Ok(None)
            }
        }
    }
}
