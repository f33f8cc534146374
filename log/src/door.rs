//! The door of an embedded log: a Unix socket, `door.sock` in the log's directory,
//! served by the process that holds the log's lock (its owner: `tape run` or `tape
//! engine`). Other processes hand their appends to the owner through it instead of
//! taking turns on the lock, and followers learn each new durable end from it
//! instead of polling. Only the owner ever writes; the door never makes a second
//! writer.
//!
//! The socket is created mode 0600 inside the data directory: only the data's owner
//! can reach it, and commands stay signed and checked by the engine as on any path.
//!
//! The protocol (integers little-endian):
//! * append: `b'A'`, `count: u32`, then `count` × (`len: u32`, bytes). The owner
//!   answers once the records are durable: `b'K'`, `first offset: u64`, `count: u32`
//!   — or `b'E'`, `len: u32`, a UTF-8 message (nothing was appended). A connection
//!   may send appends one after another; each is answered before the next is read.
//! * watch: `b'W'`. The owner sends the durable end (`u64`) at once and then after
//!   every group commit (coalesced: a slow watcher sees only the latest end).
//!
//! A record is on the log once or not at all: the owner appends only whole
//! requests, and a client whose request was written in full but not answered (the
//! owner died) reports it as failed without sending it again.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::watch;

use crate::file::{Appender, FileLog, FileLogOptions};
use crate::{LogError, Result, RECORD_BYTES_MAX};

/// The socket's file name in the log's directory.
pub const DOOR_SOCKET: &str = "door.sock";
/// A process waiting to become the owner leaves this file in the log's directory
/// (and touches it while it waits); a tool holding the log lets go when it sees it.
pub const TURN_FILE: &str = "TURN";
/// A `TURN` file older than this is a waiter that died: ignored.
const TURN_FRESH: Duration = Duration::from_secs(2);

/// Records in one append through the door, at most.
pub const DOOR_RECORDS_MAX: u32 = 65_536;
/// Bytes of records in one append through the door, at most.
pub const DOOR_REQUEST_BYTES_MAX: u64 = 64 << 20;
/// Connections the owner serves at once; more are closed on arrival.
pub const DOOR_CONNECTIONS_MAX: usize = 256;

const OP_APPEND: u8 = b'A';
const OP_WATCH: u8 = b'W';
const REPLY_OK: u8 = b'K';
const REPLY_ERR: u8 = b'E';

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Says that a process waits to own the log in `dir` (touching the file again
/// keeps the request fresh).
pub fn request_turn(dir: &Path) {
    let _ = std::fs::File::create(dir.join(TURN_FILE));
}

/// Withdraws a request made with [`request_turn`].
pub fn clear_turn(dir: &Path) {
    let _ = std::fs::remove_file(dir.join(TURN_FILE));
}

/// True while a process waits to own the log in `dir`.
pub fn turn_requested(dir: &Path) -> bool {
    std::fs::metadata(dir.join(TURN_FILE))
        .and_then(|m| m.modified())
        .is_ok_and(|t| t.elapsed().unwrap_or_default() < TURN_FRESH)
}

/// The owner's side: serves the door until dropped, then removes the socket.
pub struct DoorServer {
    path: PathBuf,
    stop: watch::Sender<bool>,
}

impl Drop for DoorServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds `dir/door.sock` and serves it on the current tokio runtime. `appender` is
/// `None` for a log that only its owner writes (the events log): appends through
/// the door are then refused and only watching is served. The caller holds the
/// log's lock, so a socket file already there is a dead owner's and is replaced.
pub(crate) fn serve(
    dir: &Path,
    appender: Option<Appender>,
    durable: watch::Receiver<u64>,
) -> Result<DoorServer> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(DOOR_SOCKET);
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path).map_err(io_at(&path))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(io_at(&path))?;
    let (stop, stopped) = watch::channel(false);
    let slots = Arc::new(tokio::sync::Semaphore::new(DOOR_CONNECTIONS_MAX));
    let mut accept_stop = stopped.clone();
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                s = listener.accept() => match s {
                    Ok((s, _)) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "the log's door could not accept a connection");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                },
                _ = accept_stop.changed() => return,
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                tracing::warn!(
                    max = DOOR_CONNECTIONS_MAX,
                    "the log's door is serving as many connections as it may; closing a new one"
                );
                continue;
            };
            let (appender, durable, mut stop) =
                (appender.clone(), durable.clone(), stopped.clone());
            tokio::spawn(async move {
                tokio::select! {
                    r = connection(stream, appender, durable) => {
                        if let Err(e) = r {
                            tracing::debug!(error = %e, "a door connection ended");
                        }
                    }
                    _ = stop.changed() => {}
                }
                drop(slot);
            });
        }
    });
    Ok(DoorServer { path, stop })
}

/// Serves one connection: appends one after another, or one watch.
async fn connection(
    mut stream: UnixStream,
    appender: Option<Appender>,
    mut durable: watch::Receiver<u64>,
) -> std::io::Result<()> {
    loop {
        let op = match stream.read_u8().await {
            Ok(op) => op,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        match op {
            OP_APPEND => {
                let records = match read_request(&mut stream).await? {
                    Ok(records) => records,
                    Err(refusal) => {
                        // The stream is out of step with the request: answer, close.
                        return write_err(&mut stream, &refusal).await;
                    }
                };
                let Some(appender) = &appender else {
                    return write_err(&mut stream, "this log is written by its owner alone").await;
                };
                let count = records.len() as u32;
                match appender.append(records).await {
                    Ok(offsets) => {
                        let mut reply = Vec::with_capacity(13);
                        reply.push(REPLY_OK);
                        reply.extend_from_slice(
                            &offsets.first().copied().unwrap_or(0).to_le_bytes(),
                        );
                        reply.extend_from_slice(&count.to_le_bytes());
                        stream.write_all(&reply).await?;
                    }
                    Err(e) => write_err(&mut stream, &e.to_string()).await?,
                }
            }
            OP_WATCH => loop {
                let end = *durable.borrow_and_update();
                stream.write_all(&end.to_le_bytes()).await?;
                if durable.changed().await.is_err() {
                    return Ok(());
                }
            },
            other => return write_err(&mut stream, &format!("unknown request {other:#04x}")).await,
        }
    }
}

/// Reads an append's records, checking every bound before allocating for it.
async fn read_request(
    stream: &mut UnixStream,
) -> std::io::Result<std::result::Result<Vec<Vec<u8>>, String>> {
    let count = stream.read_u32_le().await?;
    if count > DOOR_RECORDS_MAX {
        return Ok(Err(format!(
            "{count} records in one append; the door takes at most {DOOR_RECORDS_MAX}"
        )));
    }
    let mut records = Vec::with_capacity(count as usize);
    let mut total = 0u64;
    for _ in 0..count {
        let len = stream.read_u32_le().await?;
        if len as usize > RECORD_BYTES_MAX {
            return Ok(Err(format!(
                "a record of {len} bytes; the log takes at most {RECORD_BYTES_MAX}"
            )));
        }
        total += u64::from(len);
        if total > DOOR_REQUEST_BYTES_MAX {
            return Ok(Err(format!(
                "more than {DOOR_REQUEST_BYTES_MAX} bytes in one append"
            )));
        }
        let mut bytes = vec![0u8; len as usize];
        stream.read_exact(&mut bytes).await?;
        records.push(bytes);
    }
    Ok(Ok(records))
}

async fn write_err(stream: &mut UnixStream, message: &str) -> std::io::Result<()> {
    let mut reply = Vec::with_capacity(5 + message.len());
    reply.push(REPLY_ERR);
    reply.extend_from_slice(&(message.len() as u32).to_le_bytes());
    reply.extend_from_slice(message.as_bytes());
    stream.write_all(&reply).await
}

/// Why an append through the door did not get offsets.
#[derive(Debug, thiserror::Error)]
pub enum DoorError {
    /// The request never reached the owner whole: nothing was appended, and it may
    /// be sent again.
    #[error("the log's owner could not be reached: {0}")]
    NotSent(std::io::Error),
    /// The request reached the owner, which stopped before answering: the records
    /// are on the log once or not at all. They are not sent again.
    #[error("the log's owner stopped before confirming the append ({0}); the records may or may not be on the log, once at most")]
    Unconfirmed(std::io::Error),
    /// The owner refused the request; nothing was appended.
    #[error("the log's owner refused the append: {0}")]
    Refused(String),
}

/// A client of an owner's door.
pub struct DoorClient {
    stream: UnixStream,
}

impl DoorClient {
    /// Connects to the door of the log in `dir`; `None` when no owner serves one.
    pub async fn connect(dir: &Path) -> Option<DoorClient> {
        let stream = UnixStream::connect(dir.join(DOOR_SOCKET)).await.ok()?;
        Some(DoorClient { stream })
    }

    /// Hands `records` to the owner; their offsets once they are durable.
    pub async fn append(
        &mut self,
        records: &[Vec<u8>],
    ) -> std::result::Result<Vec<u64>, DoorError> {
        let count = u32::try_from(records.len())
            .ok()
            .filter(|n| *n <= DOOR_RECORDS_MAX)
            .ok_or_else(|| {
                DoorError::Refused(format!(
                    "more than {DOOR_RECORDS_MAX} records in one append"
                ))
            })?;
        let bytes: usize = records.iter().map(|r| r.len() + 4).sum();
        let mut frame = Vec::with_capacity(5 + bytes);
        frame.push(OP_APPEND);
        frame.extend_from_slice(&count.to_le_bytes());
        for r in records {
            frame.extend_from_slice(&(r.len() as u32).to_le_bytes());
            frame.extend_from_slice(r);
        }
        self.stream
            .write_all(&frame)
            .await
            .map_err(DoorError::NotSent)?;
        let reply = async {
            match self.stream.read_u8().await? {
                REPLY_OK => {
                    let first = self.stream.read_u64_le().await?;
                    let n = self.stream.read_u32_le().await?;
                    Ok(Ok((first, n)))
                }
                _ => {
                    let len = self.stream.read_u32_le().await?.min(1 << 16);
                    let mut text = vec![0u8; len as usize];
                    self.stream.read_exact(&mut text).await?;
                    Ok(Err(String::from_utf8_lossy(&text).into_owned()))
                }
            }
        };
        match reply.await {
            Ok(Ok((first, n))) if n == count => Ok((first..first + u64::from(n)).collect()),
            Ok(Ok((_, n))) => Err(DoorError::Unconfirmed(std::io::Error::other(format!(
                "the owner confirmed {n} records of {count}"
            )))),
            Ok(Err(refusal)) => Err(DoorError::Refused(refusal)),
            Err(e) => Err(DoorError::Unconfirmed(e)),
        }
    }
}

/// A follower's line to the owner: blocking, for the follower's own thread.
pub(crate) struct Watch {
    stream: std::os::unix::net::UnixStream,
    buf: [u8; 64],
}

/// What waiting on a watch gave.
pub(crate) enum Woken {
    /// The owner made records durable.
    Durable,
    /// Nothing came within the wait.
    Quiet,
    /// The owner hung up.
    Gone,
}

impl Watch {
    /// Subscribes to the durable ends of the log in `dir`; `None` without an owner.
    pub(crate) fn connect(dir: &Path, wait: Duration) -> Option<Watch> {
        use std::io::Write as _;
        let mut stream = std::os::unix::net::UnixStream::connect(dir.join(DOOR_SOCKET)).ok()?;
        stream.write_all(&[OP_WATCH]).ok()?;
        stream.set_read_timeout(Some(wait)).ok()?;
        Some(Watch {
            stream,
            buf: [0; 64],
        })
    }

    /// Waits (up to the wait given at connect) for the owner's next durable end.
    pub(crate) fn wait(&mut self) -> Woken {
        // Only that something became durable matters: the follower reads the
        // end from the log's own files, so the bytes themselves are not needed.
        match self.stream.read(&mut self.buf) {
            Ok(0) => Woken::Gone,
            Ok(_) => Woken::Durable,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Woken::Quiet
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Woken::Quiet,
            Err(_) => Woken::Gone,
        }
    }
}

/// Opens the log in `dir` as its owner: waits for a tool holding it to let go
/// (asking it to with a `TURN` file), up to `wait_max`; fails at once when another
/// owner holds it (its door answers).
pub(crate) async fn wait_for_lock<T>(
    dir: &Path,
    wait_max: Duration,
    mut open: impl FnMut() -> Result<T>,
) -> Result<T> {
    let deadline = Instant::now() + wait_max;
    loop {
        match open() {
            // Held by another owner (it serves a door): it will not let go.
            Err(e @ LogError::Locked { .. })
                if std::os::unix::net::UnixStream::connect(dir.join(DOOR_SOCKET)).is_ok() =>
            {
                clear_turn(dir);
                return Err(e);
            }
            Err(LogError::Locked { .. }) if Instant::now() < deadline => {
                request_turn(dir);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            other => {
                clear_turn(dir);
                return other;
            }
        }
    }
}

/// How long a tool waits for the log when no owner serves its door and another
/// tool holds it.
pub const TOOL_WAIT_MAX: Duration = Duration::from_secs(60);

/// A tool's way onto an embedded log it does not own: through the owner's door
/// while one serves it; when none does, by holding the log itself while it has
/// work (it lets go when idle, or at once when an owner asks for its turn).
pub struct ToolWriter {
    dir: PathBuf,
    via: Option<Via>,
}

enum Via {
    Door(DoorClient),
    Direct(FileLog),
}

impl ToolWriter {
    pub fn new(dir: impl Into<PathBuf>) -> ToolWriter {
        ToolWriter {
            dir: dir.into(),
            via: None,
        }
    }

    /// Appends `records` in order; their offsets once durable. Through a door, a
    /// request that reached the owner is never sent twice: if the owner dies before
    /// answering, the error says so and the records are on the log once or not at
    /// all.
    pub async fn append(&mut self, records: Vec<Vec<u8>>) -> Result<Vec<u64>> {
        let deadline = Instant::now() + TOOL_WAIT_MAX;
        loop {
            let via = match self.via.take() {
                Some(via) => via,
                None => self.reach(deadline).await?,
            };
            match via {
                Via::Door(mut client) => match client.append(&records).await {
                    Ok(offsets) => {
                        self.via = Some(Via::Door(client));
                        return Ok(offsets);
                    }
                    // Nothing reached the owner (it stopped while this tool was
                    // idle): find the log's new owner, or open it.
                    Err(DoorError::NotSent(_)) if Instant::now() < deadline => continue,
                    Err(e) => return Err(LogError::Door(e.to_string())),
                },
                Via::Direct(log) => {
                    let appended = log.append(records).await;
                    if appended.is_ok() && !turn_requested(&self.dir) {
                        self.via = Some(Via::Direct(log));
                    }
                    return appended;
                }
            }
        }
    }

    async fn reach(&self, deadline: Instant) -> Result<Via> {
        loop {
            if let Some(client) = DoorClient::connect(&self.dir).await {
                return Ok(Via::Door(client));
            }
            // An owner is starting: wait for its door rather than race it.
            if !turn_requested(&self.dir) {
                match FileLog::open(&self.dir, FileLogOptions::default()) {
                    Ok((log, report)) => {
                        if report.truncated_bytes > 0 {
                            tracing::warn!(log = %self.dir.display(), bytes = report.truncated_bytes, "cut a torn tail off the log");
                        }
                        return Ok(Via::Direct(log));
                    }
                    Err(LogError::Locked { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            if Instant::now() >= deadline {
                return Err(LogError::Locked {
                    path: self.dir.display().to_string(),
                });
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// True while this tool holds the log itself rather than going through a door.
    pub fn holds_log(&self) -> bool {
        matches!(self.via, Some(Via::Direct(_)))
    }

    /// True when this tool holds the log and an owner is waiting for it.
    pub fn owner_waiting(&self) -> bool {
        self.holds_log() && turn_requested(&self.dir)
    }

    /// Lets go of the log (when held) or of the door.
    pub fn release(&mut self) {
        self.via = None;
    }
}

/// An embedded log as a tool sees it: appends go through a [`ToolWriter`], reads
/// through a follower. For `tape produce` and `tape init`: without an owner it
/// opens the log for each append and lets go right after (a tool that appends all
/// the time uses a [`ToolWriter`] of its own, and lets go when idle).
pub struct ToolLog {
    writer: tokio::sync::Mutex<ToolWriter>,
    follower: FileLog,
}

impl ToolLog {
    pub fn open(dir: impl Into<PathBuf>) -> Result<ToolLog> {
        let dir = dir.into();
        Ok(ToolLog {
            follower: FileLog::follow(&dir)?,
            writer: tokio::sync::Mutex::new(ToolWriter::new(dir)),
        })
    }
}

impl crate::Log for ToolLog {
    type Reader = crate::file::FileReader;

    async fn append(&self, records: Vec<Vec<u8>>) -> Result<Vec<u64>> {
        let mut writer = self.writer.lock().await;
        let appended = writer.append(records).await;
        // A tool of this kind appends now and then: it never keeps the log from an
        // owner (or another tool) between appends.
        if writer.holds_log() {
            writer.release();
        }
        appended
    }

    async fn end_offset(&self) -> Result<u64> {
        self.follower.end_offset().await
    }

    async fn reader(&self, from: u64) -> Result<crate::file::FileReader> {
        self.follower.reader(from).await
    }
}
