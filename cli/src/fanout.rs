//! `tape fanout`: the Kafka door for any language. It follows the events log (and
//! the commands log, to know whose answer each outcome is) and writes the JSON feeds
//! of `tape_schemas::feeds`: `<prefix>.account.<id>` for each account (private: an
//! operator grants a market maker READ on its own topic alone, with a Kafka ACL) and
//! `<prefix>.market.<symbol>` for each market (public L3 and trades).
//!
//! Delivery is at least once: the feeds' progress (the last `seq` all of whose
//! records are delivered) is kept in DATA/fanout/seq after each batch, and a restart
//! sends again what followed it. Every record carries its `seq` and a topic holds at
//! most one record per `seq`, so a reader that skips a `seq` it has seen reads each
//! exactly once. On start the router's state (live orders' owners, trader keys) is
//! rebuilt by reading the events log from its start without publishing.

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use tape_log::{AnyLog, AnyReader, KafkaPublisher, Log, LogReader};
use tape_projections::feeds::{FeedRecord, FeedRouter};
use tape_schemas::*;

use crate::logs::{LogArgs, Role};

#[derive(Args)]
pub struct FanoutArgs {
    #[command(flatten)]
    pub logs: LogArgs,
    /// Kafka bootstrap servers the feeds are written to (default: --kafka).
    #[arg(long, env = "TAPE_FEEDS_KAFKA")]
    pub feeds_kafka: Option<String>,
    /// Feed topics are `<prefix>.account.<id>` and `<prefix>.market.<symbol>`.
    #[arg(long, env = "TAPE_FEEDS_PREFIX", default_value = "tape")]
    pub prefix: String,
    /// Only these accounts get a private feed (comma-separated; default: every
    /// account). A topic an account is a real cost on a broker: list the market
    /// makers' accounts when the others trade through GraphQL.
    #[arg(long, env = "TAPE_FEEDS_ACCOUNTS", value_delimiter = ',')]
    pub accounts: Vec<u64>,
    /// Replication factor of the feed topics it creates.
    #[arg(long, env = "TAPE_FEEDS_REPLICATION", default_value_t = 1)]
    pub replication: i32,
}

/// Events read (and records published) at once.
const BATCH: usize = 4_096;

pub async fn fanout(args: FanoutArgs) -> anyhow::Result<()> {
    let shutdown = crate::service::shutdown_signal()?;
    let brokers = args
        .feeds_kafka
        .clone()
        .or_else(|| args.logs.kafka.clone())
        .context("the feeds are Kafka topics: give --kafka or --feeds-kafka")?;
    let mut publisher = KafkaPublisher::new(&brokers, args.replication)?;
    let progress = Progress::open(&args.logs.data.join("fanout"))?;
    let events = args.logs.open("events", Role::Follower).await?;
    let mut reader = events.reader(0).await?;
    let mut commands = Commands::new(args.logs.open("commands", Role::Follower).await?);
    let accounts: BTreeSet<u64> = args.accounts.iter().copied().collect();
    let mut router = FeedRouter::new();
    let mut published = progress.read()?;
    let mut next_seq = 1;
    // The fencing rule, and each seq once (a deposed engine's copies).
    let mut filter = EventFilter::new(1, 0);
    eprintln!(
        "tape: fanout: JSON feeds {p}.account.<id> and {p}.market.<symbol> on {brokers}, after seq {published}",
        p = args.prefix
    );
    let mut routed = Vec::new();
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    while !*shutdown.borrow() {
        let batch = reader.next_batch(BATCH, Duration::from_millis(200)).await?;
        if batch.is_empty() {
            continue;
        }
        for r in batch {
            let Some(env) = filter
                .take(&r.bytes)
                .with_context(|| format!("event at offset {}", r.offset))?
            else {
                continue;
            };
            next_seq = env.seq + 1;
            let live = env.seq > published;
            let command = match (&env.event, live) {
                (Event::Outcome { .. }, true) => commands.at(env.command_offset).await?,
                _ => None,
            };
            routed.clear();
            router.route(&env, command.as_ref(), &mut routed);
            if !live {
                continue;
            }
            for record in routed.drain(..) {
                let (topic, json) = match &record {
                    FeedRecord::Account(a) => {
                        if !accounts.is_empty() && !accounts.contains(&a.account.0) {
                            continue;
                        }
                        (
                            format!("{}.account.{}", args.prefix, a.account),
                            codec::to_json(a)?,
                        )
                    }
                    FeedRecord::Market(m) => (
                        format!("{}.market.{}", args.prefix, m.market),
                        codec::to_json(m)?,
                    ),
                };
                out.push((topic, json.into_bytes()));
            }
        }
        if next_seq - 1 > published {
            publisher.publish(&out).await?;
            out.clear();
            published = next_seq - 1;
            progress.write(published)?;
        }
    }
    Ok(())
}

/// The commands log read forward, for the command at an event's `command_offset`
/// (offsets only grow along the events log, so one reader serves them all).
struct Commands {
    log: AnyLog,
    reader: Option<AnyReader>,
    /// The offset the reader gives next.
    next: u64,
    /// Read but not yet asked for.
    ahead: VecDeque<tape_log::Record>,
}

impl Commands {
    fn new(log: AnyLog) -> Self {
        Commands {
            log,
            reader: None,
            next: 0,
            ahead: VecDeque::new(),
        }
    }

    /// The command at `offset`; `None` when its bytes are not a command.
    async fn at(&mut self, offset: u64) -> anyhow::Result<Option<CommandEnvelope>> {
        while self.ahead.front().is_some_and(|r| r.offset < offset) {
            self.ahead.pop_front();
        }
        let in_place = match self.ahead.front() {
            Some(r) => r.offset == offset,
            None => self.reader.is_some() && self.next == offset,
        };
        if !in_place {
            self.ahead.clear();
            self.reader = Some(self.log.reader(offset).await?);
            self.next = offset;
        }
        let reader = self.reader.as_mut().expect("a reader");
        while self.ahead.is_empty() {
            let batch = reader.next_batch(BATCH, Duration::from_millis(200)).await?;
            if let Some(last) = batch.last() {
                self.next = last.offset + 1;
            }
            self.ahead.extend(batch);
        }
        let record = self.ahead.pop_front().expect("a record");
        anyhow::ensure!(
            record.offset == offset,
            "the commands log gave offset {} for {offset}",
            record.offset
        );
        Ok(codec::decode_command(&record.bytes).ok())
    }
}

/// The last seq whose records are all delivered, in a file (written whole, then
/// renamed over the old one).
struct Progress {
    path: PathBuf,
}

impl Progress {
    fn open(dir: &Path) -> anyhow::Result<Progress> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Progress {
            path: dir.join("seq"),
        })
    }

    fn read(&self) -> anyhow::Result<u64> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => text
                .trim()
                .parse()
                .with_context(|| format!("{} is not a seq", self.path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e).with_context(|| format!("reading {}", self.path.display())),
        }
    }

    fn write(&self, seq: u64) -> anyhow::Result<()> {
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, seq.to_string())?;
        std::fs::rename(&tmp, &self.path)?;
        Ok(())
    }
}
