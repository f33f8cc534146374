//! Where the logs live: `--data DIR` (embedded: DIR/commands, DIR/events,
//! DIR/snapshots) or `--kafka BROKERS` (topics `tape.commands`, `tape.events`).

use std::path::PathBuf;

use clap::Args;
use tape_log::{AnyLog, FileLog, FileLogOptions, KafkaLog, KafkaOptions, ToolLog};

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

/// How a process uses a log.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The one process that holds an embedded log (`tape run`, `tape engine`): it
    /// appends, and serves the log's door (`door.sock`) to every other process.
    Owner,
    /// A tool that appends (`tape produce`, `tape init`): through the owner's door
    /// while one runs, else holding the log itself for the append.
    Writer,
    /// A reader of a log another process writes.
    Follower,
}

/// How long an owner waits for a tool holding the log to let go.
const OWNER_WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(60);

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
        Ok(match role {
            Role::Follower => AnyLog::File(FileLog::follow(&dir)?),
            Role::Writer => AnyLog::Tool(ToolLog::open(&dir)?),
            Role::Owner => {
                let (log, report) =
                    FileLog::open_owner(&dir, FileLogOptions::default(), OWNER_WAIT_MAX).await?;
                if report.truncated_bytes > 0 {
                    tracing::warn!(log = %dir.display(), bytes = report.truncated_bytes, "cut a torn tail off the log");
                }
                // Others append to the commands log through the door; the events
                // log is the engine's alone, and its door only wakes followers.
                log.serve_door(which == "commands")?;
                AnyLog::File(log)
            }
        })
    }

    pub fn snapshots_dir(&self) -> PathBuf {
        self.data.join("snapshots")
    }
}
