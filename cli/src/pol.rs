//! `tape pol`: proof-of-liabilities rounds. `build` takes the newest snapshot that
//! sits at a checkpoint, builds the tree over every account's balances there with
//! the operator's round secret, keeps the tree (every account's proof) in
//! DATA/pol, and commits the round on the log; `export` writes a round's record
//! and every proof as JSON; `verify` checks one proof against a record.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use tape_engine::{Saved, SnapshotStore};
use tape_schemas::{Command, CommandResult, Event, Hash32, LiabilityCommitment};

use crate::door::{Door, Follower};
use crate::logs::LogArgs;

#[derive(Subcommand)]
pub enum Pol {
    /// Builds a round at the newest checkpoint and commits it on the log.
    Build(BuildArgs),
    /// Writes a round's published record and every account's proof as JSON.
    Export(ExportArgs),
    /// Checks a proof (JSON) against a round's record (JSON).
    Verify(VerifyArgs),
}

#[derive(Args, Clone, Debug)]
pub struct SecretArgs {
    /// The round secret's file (64 or more hex digits). Default: DATA/pol-secret,
    /// created with 256 random bits the first time. Keep it: an auditor needs it
    /// to rebuild the roots (`tape replay verify --pol-secret`), and whoever has it
    /// can tell which leaf is whose.
    #[arg(long, env = "TAPE_POL_SECRET")]
    pub pol_secret: Option<PathBuf>,
}

#[derive(Args, Clone, Debug)]
pub struct PolDir {
    /// Where the rounds' trees are kept. Default: DATA/pol.
    #[arg(long, env = "TAPE_POL_DIR")]
    pub pol_dir: Option<PathBuf>,
}

impl PolDir {
    pub fn dir(&self, logs: &LogArgs) -> PathBuf {
        self.pol_dir
            .clone()
            .unwrap_or_else(|| logs.data.join("pol"))
    }
}

#[derive(Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub logs: LogArgs,
    #[command(flatten)]
    pub secret: SecretArgs,
    #[command(flatten)]
    pub dir: PolDir,
    /// An admin token to sign the commitment with (needed once credentials are
    /// required).
    #[arg(long, env = "TAPE_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// The tree's height: 2^height leaves, padding included (raised when there
    /// are more accounts). Fixed, so the tree's size says nothing of the number of
    /// accounts.
    #[arg(long, default_value_t = 20)]
    pub height: u8,
    /// How long to wait for the engine's answer (milliseconds).
    #[arg(long, default_value_t = 10_000)]
    pub wait_ms: u64,
    /// Keep running: a round at the newest checkpoint whenever it stands this many
    /// commands or more after the last round's (a multiple of the engine's
    /// --checkpoint-every: a round every K checkpoints). Ctrl-C stops it.
    #[arg(long)]
    pub every_commands: Option<u64>,
}

#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub logs: LogArgs,
    #[command(flatten)]
    pub dir: PolDir,
    #[arg(long)]
    pub round: u64,
    /// Directory to write round-N.json and round-N.proofs.jsonl to.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
}

#[derive(Args)]
pub struct VerifyArgs {
    /// A proof as `myLiabilityProof` or `tape pol export` gives it.
    #[arg(long)]
    pub proof: PathBuf,
    /// The round's record as `tape pol export` writes it (round-N.json).
    #[arg(long)]
    pub record: PathBuf,
}

pub async fn run(p: Pol) -> anyhow::Result<()> {
    match p {
        Pol::Build(args) => build(args).await,
        Pol::Export(args) => export(args),
        Pol::Verify(args) => verify(args),
    }
}

/// The round secret: read from its file, or created at the default place.
pub fn secret(args: &SecretArgs, logs: &LogArgs) -> anyhow::Result<Vec<u8>> {
    let (path, default) = match &args.pol_secret {
        Some(p) => (p.clone(), false),
        None => (logs.data.join("pol-secret"), true),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => parse_secret(&text).with_context(|| format!("{}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && default => {
            // Two v4 UUIDs: 244 bits from the system's random source.
            let bytes: Vec<u8> = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
                .iter()
                .flat_map(|u| *u.as_bytes())
                .collect();
            std::fs::create_dir_all(&logs.data)?;
            write_private(&path, &hex::encode(&bytes))?;
            eprintln!("tape pol: created the round secret in {}", path.display());
            Ok(bytes)
        }
        Err(e) => Err(e).with_context(|| format!("reading the round secret {}", path.display())),
    }
}

pub fn parse_secret(text: &str) -> anyhow::Result<Vec<u8>> {
    let bytes = hex::decode(text.trim()).context("the round secret is hex digits")?;
    anyhow::ensure!(
        bytes.len() >= 32,
        "the round secret has {} bytes; it needs at least 32 (256 bits)",
        bytes.len()
    );
    Ok(bytes)
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

pub fn tree_path(dir: &Path, round: u64) -> PathBuf {
    dir.join(tape_pol::tree_file_name(round))
}

/// The newest snapshot taken at a checkpoint (one written on shutdown is not),
/// with the checkpoint event's seq, as the events log confirms it.
async fn checkpoint_snapshot(logs: &LogArgs) -> anyhow::Result<(Saved, u64, Hash32)> {
    let store = SnapshotStore::open(logs.snapshots_dir(), 3)?;
    for n in store.newest_first()? {
        let Some(saved) = store.read(n)? else {
            continue;
        };
        let state_hash = Hash32(tape_core::state_hash_of(&saved.core));
        let seq = saved.next_seq.saturating_sub(1);
        if seq == 0 {
            continue;
        }
        let mut events = Follower::open(logs, seq).await?;
        let first = events.next(Duration::from_secs(5)).await?;
        let at_checkpoint = first.first().is_some_and(|e| {
            e.seq == seq
                && e.event
                    == Event::Checkpoint {
                        commands_applied: saved.next_command,
                        state_hash,
                    }
        });
        if at_checkpoint {
            return Ok((saved, seq, state_hash));
        }
    }
    anyhow::bail!(
        "no snapshot in {} sits at a checkpoint yet: wait for the engine's next checkpoint (--checkpoint-every commands)",
        logs.snapshots_dir().display()
    )
}

async fn build(args: BuildArgs) -> anyhow::Result<()> {
    let secret = secret(&args.secret, &args.logs)?;
    let Some(every) = args.every_commands else {
        let (saved, seq, hash) = checkpoint_snapshot(&args.logs).await?;
        return round_at(&args, &secret, saved, seq, hash).await;
    };
    let every = every.max(1);
    // The last round committed here: newer than any snapshot until the next one.
    let mut committed = 0u64;
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    loop {
        match checkpoint_snapshot(&args.logs).await {
            Ok((saved, seq, hash)) => {
                let core = tape_core::Core::restore(&saved.core)?;
                let last = core
                    .last_liability_round()
                    .map_or(0, |r| r.checkpoint)
                    .max(committed);
                let due = last == 0 || saved.next_command >= last.saturating_add(every);
                if due && saved.next_command > last {
                    let checkpoint = saved.next_command;
                    match round_at(&args, &secret, saved, seq, hash).await {
                        Ok(()) => committed = checkpoint,
                        Err(e) => eprintln!("tape pol: {e:#}"),
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "no checkpoint to build a round at yet"),
        }
        tokio::select! {
            _ = &mut stop => return Ok(()),
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Builds the round at this checkpoint's snapshot, keeps its tree and commits it.
async fn round_at(
    args: &BuildArgs,
    secret: &[u8],
    saved: Saved,
    checkpoint_seq: u64,
    state_hash: Hash32,
) -> anyhow::Result<()> {
    let core =
        tape_core::Core::restore(&saved.core).context("restoring the checkpoint's snapshot")?;
    let round = core.last_liability_round().map_or(0, |r| r.round) + 1;
    let started = Instant::now();
    let leaves = core.liability_leaves();
    let balances = tape_pol::Balances {
        assets: leaves.assets,
        accounts: leaves.accounts,
        sums: leaves.sums,
    };
    let height = tape_pol::height_for(balances.accounts.len(), args.height);
    let checkpoint = saved.next_command;
    let tree = tape_pol::Tree::build(secret, round, checkpoint, height, &balances)?;
    let built = started.elapsed();
    let totals = core.liability_totals();
    let codes: Vec<String> = totals.iter().map(|t| t.asset.to_string()).collect();
    let dir = args.dir.dir(&args.logs);
    std::fs::create_dir_all(&dir)?;
    tree.write(&tree_path(&dir, round), &codes)?;
    let commitment = LiabilityCommitment {
        round,
        checkpoint,
        checkpoint_seq,
        state_hash,
        height,
        algorithm: tape_pol::ALGORITHM,
        root: Hash32(tree.published.root),
        totals,
    };
    eprintln!(
        "tape pol: round {round} at checkpoint {checkpoint} (seq {checkpoint_seq}): {} accounts, height {height}, built in {:.3} s, root {}",
        tree.accounts(),
        built.as_secs_f64(),
        commitment.root
    );
    commit(args, commitment).await
}

async fn commit(args: &BuildArgs, commitment: LiabilityCommitment) -> anyhow::Result<()> {
    let round = commitment.round;
    let door = Door::open(&args.logs, args.key.as_deref()).await?;
    let mut answers = Follower::from_end(&args.logs).await?;
    let envelope = door.envelope(Command::CommitLiabilities(commitment))?;
    let offset = door.send(&envelope).await?;
    let deadline = Instant::now() + Duration::from_millis(args.wait_ms);
    while Instant::now() < deadline {
        for e in answers.next(Duration::from_millis(100)).await? {
            match e.event {
                Event::Outcome { result, .. } if e.command_offset == offset => {
                    return match result {
                        CommandResult::Rejected { reason } => {
                            anyhow::bail!("the engine refused round {round}: {reason:?}")
                        }
                        _ => {
                            println!("committed round {round} at seq {}", e.seq - 1);
                            Ok(())
                        }
                    };
                }
                _ => {}
            }
        }
    }
    anyhow::bail!(
        "no answer for round {round} (command offset {offset}) within {} ms",
        args.wait_ms
    )
}

/// A round's record as verifiers read it: the published values and the assets.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Record {
    #[serde(flatten)]
    pub published: tape_pol::Published,
    pub assets: Vec<String>,
}

fn export(args: ExportArgs) -> anyhow::Result<()> {
    use std::io::Write;
    let path = tree_path(&args.dir.dir(&args.logs), args.round);
    let file = tape_pol::TreeFile::open(&path)?;
    std::fs::create_dir_all(&args.out)?;
    let record = Record {
        published: file.header.published.clone(),
        assets: file.header.assets.clone(),
    };
    let json = args.out.join(format!("round-{}.json", args.round));
    std::fs::write(&json, serde_json::to_string_pretty(&record)? + "\n")?;
    let lines = args.out.join(format!("round-{}.proofs.jsonl", args.round));
    let mut w = std::io::BufWriter::new(std::fs::File::create(&lines)?);
    for k in 0..file.header.accounts {
        serde_json::to_writer(&mut w, &file.proof_by_rank(k)?)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    eprintln!(
        "tape pol: wrote {} and {} proofs to {}",
        json.display(),
        file.header.accounts,
        lines.display()
    );
    Ok(())
}

fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let proof: tape_pol::Proof = serde_json::from_slice(&std::fs::read(&args.proof)?)
        .with_context(|| format!("{}", args.proof.display()))?;
    let record: Record = serde_json::from_slice(&std::fs::read(&args.record)?)
        .with_context(|| format!("{}", args.record.display()))?;
    match tape_pol::verify(&proof, &record.published) {
        Ok(()) => {
            println!(
                "verified: account {} is in round {} with {}",
                proof.account,
                proof.round,
                balances_text(&proof.balances, &record.assets)
            );
            Ok(())
        }
        Err(e) => {
            println!("NOT VERIFIED: {e}");
            std::process::exit(1);
        }
    }
}

fn balances_text(sums: &[u128], assets: &[String]) -> String {
    sums.iter()
        .zip(assets)
        .map(|(s, a)| format!("{s} {a} (minor units)"))
        .collect::<Vec<_>>()
        .join(", ")
}
