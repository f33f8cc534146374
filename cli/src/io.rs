//! `tape produce` and `tape consume`: the hand tools for the two logs.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use tape_log::{Log, LogReader};
use tape_schemas::{
    codec, AccountId, Command, CommandEnvelope, CommandResult, Event, EventFilter, RejectReason,
    SCHEMA_VERSION,
};

use crate::logs::{LogArgs, Role};

#[derive(Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub logs: LogArgs,
    /// JSON lines, one command each; standard input when absent. A line may leave out
    /// `version` (the current one), `id` (a random UUID) and `time_ms` (now). A line
    /// that carries `auth` is appended exactly as written (its MAC covers its text).
    pub file: Option<PathBuf>,
    /// An API token (`tape_<id>_<secret>`): sign every line that carries no `auth`
    /// with it, valid for 30 s.
    #[arg(long, env = "TAPE_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// Print the records as JSON lines (signed by the JSON rule with `--key`)
    /// instead of appending them: records to send later, or to send again.
    #[arg(long)]
    pub print: bool,
    /// Append only: do not wait for the engine's answers.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for the engine's answers (milliseconds).
    #[arg(long, default_value_t = 10_000)]
    pub wait_ms: u64,
}

#[derive(Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub logs: LogArgs,
    /// First event seq to print.
    #[arg(long, default_value_t = 1)]
    pub from: u64,
    /// Keep printing events as they are written.
    #[arg(long)]
    pub follow: bool,
}

/// Parses one JSON line into a command, filling in what the producer may omit.
pub fn parse_line(line: &str, now_ms: u64) -> anyhow::Result<CommandEnvelope> {
    let mut value: serde_json::Value = serde_json::from_str(line)?;
    let obj = value
        .as_object_mut()
        .ok_or_else(|| anyhow::anyhow!("a command is a JSON object"))?;
    obj.entry("version").or_insert(SCHEMA_VERSION.into());
    obj.entry("id")
        .or_insert_with(|| uuid::Uuid::new_v4().to_string().into());
    match obj.get("time_ms") {
        None | Some(serde_json::Value::Null) => {
            obj.insert("time_ms".into(), now_ms.into());
        }
        Some(v) if v.as_u64() == Some(0) => {
            obj.insert("time_ms".into(), now_ms.into());
        }
        _ => {}
    }
    Ok(codec::command_from_json(&value.to_string())?)
}

pub async fn produce(args: ProduceArgs) -> anyhow::Result<()> {
    let input: Box<dyn BufRead> = match &args.file {
        Some(path) => Box::new(std::io::BufReader::new(std::fs::File::open(path)?)),
        None => Box::new(std::io::BufReader::new(std::io::stdin())),
    };
    let signer = crate::door::signer(args.key.as_deref()).context("--key")?;
    let now = tape_client::now_ms();
    let mut records = Vec::new();
    let mut sent = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(&line, now) {
            // Signed by its writer: the text is what the MAC covers.
            Ok(c) if c.auth.is_some() => {
                records.push((c.command.topic_key(), line.trim().as_bytes().to_vec()));
                sent.push(c);
            }
            Ok(c) if args.print => {
                let text = match &signer {
                    Some(s) => s.sign_json(&c, tape_client::expiry(c.time_ms))?,
                    None => codec::to_json(&c)?,
                };
                records.push((c.command.topic_key(), text.into_bytes()))
            }
            Ok(c) => {
                let c = crate::door::seal(signer.as_ref(), c)?;
                records.push((c.command.topic_key(), codec::to_bincode(&c)?));
                sent.push(c);
            }
            Err(e) => errors.push(format!("line {}: {e}", i + 1)),
        }
    }
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("tape produce: {e}");
        }
        anyhow::bail!("{} bad line(s); nothing was appended", errors.len());
    }
    if args.print {
        let mut out = std::io::stdout().lock();
        for (_, record) in &records {
            out.write_all(record)?;
            out.write_all(b"\n")?;
        }
        return Ok(());
    }
    let log = args.logs.open("commands", Role::Writer).await?;
    // Followed from before the append, so no answer is missed.
    let answers = match args.no_wait {
        true => None,
        false => Some(crate::door::Follower::from_end(&args.logs).await?),
    };
    let n = records.len();
    let offsets = log.append_keyed(records).await?;
    match (offsets.first(), offsets.last()) {
        (Some(a), Some(b)) => {
            eprintln!("tape produce: appended {n} command(s) at offsets {a}..={b}")
        }
        _ => eprintln!("tape produce: nothing to append"),
    }
    match answers {
        Some(answers) => report_answers(&args, answers, &offsets, &sent).await,
        None => Ok(()),
    }
}

/// Prints the engine's answer to each appended command (a refusal with its
/// sentence); an error when any was refused or unanswered in time.
async fn report_answers(
    args: &ProduceArgs,
    mut answers: crate::door::Follower,
    offsets: &[u64],
    sent: &[CommandEnvelope],
) -> anyhow::Result<()> {
    let mut results: std::collections::BTreeMap<u64, CommandResult> = Default::default();
    let mut items: Vec<(u64, u16, RejectReason)> = Vec::new();
    // The state the commands met is the log up to where they were appended.
    let first_event = answers.next_offset();
    let deadline = std::time::Instant::now() + Duration::from_millis(args.wait_ms);
    while results.len() < offsets.len() && std::time::Instant::now() < deadline {
        for e in answers.next(Duration::from_millis(100)).await? {
            let at = e.command_offset;
            match e.event {
                Event::Outcome { result, .. } if offsets.contains(&at) => {
                    results.insert(at, result);
                }
                Event::ItemOutcome {
                    item,
                    result: CommandResult::Rejected { reason },
                    ..
                } if offsets.contains(&at) => items.push((at, item, reason)),
                _ => {}
            }
        }
    }
    let refused: Vec<&u64> = results
        .iter()
        .filter(|(_, r)| matches!(r, CommandResult::Rejected { .. }))
        .map(|(o, _)| o)
        .collect();
    // What a refusal's sentence needs, read from the events log only when needed.
    let facts = match refused.is_empty() && items.is_empty() {
        true => crate::facts::LogFacts::default(),
        false => {
            let accounts: Vec<AccountId> =
                sent.iter().filter_map(|c| c.command.account()).collect();
            let events = args.logs.open("events", Role::Follower).await?;
            crate::facts::LogFacts::fold(&events, first_event, &accounts).await?
        }
    };
    for (offset, envelope) in offsets.iter().zip(sent) {
        match results.get(offset) {
            Some(CommandResult::Accepted { id }) => {
                eprintln!("tape produce: offset {offset}: accepted (id {id})")
            }
            Some(CommandResult::Rejected { reason }) => eprintln!(
                "tape produce: offset {offset}: rejected {}: {}",
                wire(reason),
                tape_client::explain(*reason, envelope, &facts)
            ),
            None => eprintln!(
                "tape produce: offset {offset}: no answer within {} ms (is the engine running?)",
                args.wait_ms
            ),
        }
        for (_, item, reason) in items.iter().filter(|(o, _, _)| o == offset) {
            let command = match &envelope.command {
                Command::Batch { account, items } => {
                    items.get(usize::from(*item)).map(|i| i.command(*account))
                }
                _ => None,
            };
            let sentence = match command {
                Some(c) => tape_client::explain_item(*reason, envelope, &c, &facts),
                None => tape_client::rule(*reason),
            };
            eprintln!(
                "tape produce: offset {offset} item {item}: rejected {}: {sentence}",
                wire(reason)
            );
        }
    }
    let unanswered = offsets.len() - results.len();
    anyhow::ensure!(
        refused.is_empty() && unanswered == 0,
        "{} of {} command(s) refused, {unanswered} unanswered",
        refused.len(),
        offsets.len()
    );
    Ok(())
}

fn wire(reason: &RejectReason) -> String {
    serde_json::to_value(reason)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{reason:?}"))
}

pub async fn consume(args: ConsumeArgs) -> anyhow::Result<()> {
    let log = args.logs.open("events", Role::Follower).await?;
    let from = args.from.max(1);
    let epoch = crate::door::epoch_at(&log, from - 1).await?;
    let mut reader = log.reader(from - 1).await?;
    let stdout = std::io::stdout();
    // The offset after the last record read (fences and a deposed engine's records
    // take offsets too, so the end is an offset, not a seq).
    let mut next_offset = from - 1;
    // The fencing rule, and each seq once.
    let mut filter = EventFilter::new(from, epoch);
    loop {
        let batch = reader.next_batch(1_000, Duration::from_millis(200)).await?;
        if batch.is_empty() {
            if args.follow {
                continue;
            }
            if log.end_offset().await? <= next_offset {
                return Ok(());
            }
            continue;
        }
        let mut out = stdout.lock();
        for r in batch {
            next_offset = r.offset + 1;
            let Some(e) = filter.take(&r.bytes)? else {
                continue;
            };
            writeln!(out, "{}", codec::to_json(&e)?)?;
        }
    }
}
