//! Where the logs live: `--data DIR` (embedded: DIR/commands, DIR/events,
//! DIR/snapshots) or `--kafka BROKERS` (topics `tape.commands`, `tape.events`).

use std::path::PathBuf;

use clap::Args;
use tape_log::{AnyLog, FileLog, FileLogOptions, KafkaLog, KafkaOptions};

pub const COMMANDS_TOPIC: &str = "tape.commands";
pub const EVENTS_TOPIC: &str = "tape.events";

#[derive(Args, Clone, Debug)]
pub struct LogArgs {
    /// Data directory of the embedded log (the default).
    #[arg(long, env = "TAPE_DATA", default_value = "./data")]
    pub data: PathBuf,
    /// Kafka bootstrap servers; when given, both logs are Kafka topics.
    #[arg(long, env = "TAPE_KAFKA")]
    pub kafka: Option<String>,
    /// Kafka topic of the commands log.
    #[arg(long, env = "TAPE_COMMANDS_TOPIC", default_value = COMMANDS_TOPIC)]
    pub commands_topic: String,
    /// Kafka topic of the events log.
    #[arg(long, env = "TAPE_EVENTS_TOPIC", default_value = EVENTS_TOPIC)]
    pub events_topic: String,
}

/// How a process uses a log: the one writer, or a follower of another process.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Writer,
    Follower,
}

impl LogArgs {
    pub async fn open(&self, which: &str, role: Role) -> anyhow::Result<AnyLog> {
        if let Some(brokers) = &self.kafka {
            let topic = if which == "commands" {
                &self.commands_topic
            } else {
                &self.events_topic
            };
            return Ok(AnyLog::Kafka(
                KafkaLog::open(KafkaOptions::new(brokers, topic)).await?,
            ));
        }
        let dir = self.data.join(which);
        Ok(AnyLog::File(match role {
            Role::Follower => FileLog::follow(&dir)?,
            Role::Writer => {
                let (log, report) = open_writer_waiting(&dir).await?;
                if report.truncated_bytes > 0 {
                    tracing::warn!(log = %dir.display(), bytes = report.truncated_bytes, "cut a torn tail off the log");
                }
                log
            }
        }))
    }

    pub fn snapshots_dir(&self) -> PathBuf {
        self.data.join("snapshots")
    }
}

/// Opens an embedded log for writing; while another process holds it, waits (up to
/// a minute) rather than failing at once, so short-lived producers take turns.
async fn open_writer_waiting(
    dir: &std::path::Path,
) -> anyhow::Result<(FileLog, tape_log::OpenReport)> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match FileLog::open(dir, FileLogOptions::default()) {
            Err(tape_log::LogError::Locked { path }) if std::time::Instant::now() < deadline => {
                tracing::debug!(%path, "log busy; waiting for the other writer");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            other => return Ok(other?),
        }
    }
}
