//! The embedded file log. Records live in segment files named by their first
//! offset (`00000000000000000000.seg`), each record framed as
//! `[len: u32 LE][crc32: u32 LE][bytes]`. One writer thread takes every append
//! waiting for it, writes them, fsyncs once and then acknowledges them all (group
//! commit). Readers see only durable records and can wait for new ones.
//!
//! On open every segment is scanned: a torn or corrupt record at the end of the last
//! segment is cut off and reported (it was never acknowledged); damage anywhere
//! else is an error, never silently dropped data. A lock file keeps a second writer
//! out.
//!
//! After each fsync the writer records the durable end in the `DURABLE` file (the
//! end as u64 LE and its CRC32; written, not fsynced: it can only lag). Followers in other
//! processes read no further, so nothing they act on can vanish in a power loss:
//! the engine never applies a command a power loss could take back.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use crate::{LogError, Record, Result, RECORD_BYTES_MAX};

const HEADER_BYTES: u64 = 8;
/// One sparse index entry per this many records.
const INDEX_EVERY: u64 = 1024;
/// The writer takes at most this much from its queue per fsync.
const GROUP_BYTES_MAX: usize = 64 << 20;

#[derive(Clone, Debug)]
pub struct FileLogOptions {
    /// A new segment starts once the current one reaches this size.
    pub segment_bytes_max: u64,
    /// Record bytes queued for the writer at most: an append beyond it waits for
    /// room (backpressure), so a flood of appends cannot grow memory without bound.
    /// An append larger than this waits for the queue to be empty.
    pub queue_bytes_max: u32,
}

impl Default for FileLogOptions {
    fn default() -> Self {
        FileLogOptions {
            segment_bytes_max: 256 << 20,
            queue_bytes_max: 64 << 20,
        }
    }
}

/// What opening the log found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenReport {
    pub records: u64,
    pub segments: usize,
    /// Bytes cut from the end of the last segment (a torn or corrupt tail).
    pub truncated_bytes: u64,
}

#[derive(Debug)]
struct Segment {
    base: u64,
    path: PathBuf,
    file: Arc<File>,
    records: u64,
    size_bytes: u64,
    /// (offset, byte position) every `INDEX_EVERY` records.
    index: Vec<(u64, u64)>,
}

impl Segment {
    /// The first segment of an empty log.
    fn first(path: PathBuf, file: File) -> Segment {
        Segment {
            base: 0,
            path,
            file: Arc::new(file),
            records: 0,
            size_bytes: 0,
            index: Vec::new(),
        }
    }
}

struct State {
    segments: Vec<Segment>,
}

struct Shared {
    dir: PathBuf,
    state: Mutex<State>,
    durable: watch::Sender<u64>,
    /// The `DURABLE` file: written by the writer, read by followers (opened once
    /// it exists).
    mark: Mutex<Option<File>>,
    /// A follower's: true while the owner's door wakes it.
    woken_by_door: std::sync::atomic::AtomicBool,
}

const MARK_FILE: &str = "DURABLE";

/// The writer's durable end as a follower may read it; `None` when no writer has
/// recorded one (a log written before the mark existed: everything is taken).
fn read_mark(shared: &Shared) -> Result<Option<u64>> {
    let mut mark = shared.mark.lock().expect("mark lock");
    let path = shared.dir.join(MARK_FILE);
    if mark.is_none() {
        match File::open(&path) {
            Ok(f) => *mark = Some(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path)(e)),
        }
    }
    let mut bytes = [0u8; 12];
    match mark.as_ref().expect("opened").read_exact_at(&mut bytes, 0) {
        Ok(()) => {
            let (end, crc) = bytes.split_at(8);
            if crc32fast::hash(end).to_le_bytes() == crc {
                Ok(Some(u64::from_le_bytes(end.try_into().expect("8 bytes"))))
            } else {
                // Read while being rewritten: take the last end known.
                Ok(Some(*shared.durable.borrow()))
            }
        }
        // Created but not written yet.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(Some(0)),
        Err(e) => Err(io(&path)(e)),
    }
}

/// Records `end` as durable (after the fsync that made it so).
fn write_mark(shared: &Shared, end: u64) -> Result<()> {
    let mark = shared.mark.lock().expect("mark lock");
    let path = shared.dir.join(MARK_FILE);
    let mut bytes = [0u8; 12];
    bytes[..8].copy_from_slice(&end.to_le_bytes());
    let crc = crc32fast::hash(&end.to_le_bytes());
    bytes[8..].copy_from_slice(&crc.to_le_bytes());
    mark.as_ref()
        .expect("the writer opens the mark")
        .write_all_at(&bytes, 0)
        .map_err(io(&path))
}

struct AppendRequest {
    records: Vec<Vec<u8>>,
    reply: oneshot::Sender<Result<Vec<u64>>>,
    /// Its share of the queue, given back when the writer is done with it.
    _room: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// The embedded log in one directory.
pub struct FileLog {
    shared: Arc<Shared>,
    appender: Appender,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Set for a follower: stops its poller.
    stop: Arc<std::sync::atomic::AtomicBool>,
    /// The owner's door (`serve_door`), closed before the writer.
    door: Mutex<Option<crate::door::DoorServer>>,
    _lock: Option<File>,
}

/// The way into the writer's queue: what `append` and the door share.
#[derive(Clone)]
pub(crate) struct Appender {
    requests: Arc<Mutex<Option<mpsc::Sender<AppendRequest>>>>,
    /// Room in the writer's queue, in record bytes.
    room: Arc<tokio::sync::Semaphore>,
    room_max: u32,
}

impl Appender {
    fn closed() -> Appender {
        Appender {
            requests: Arc::new(Mutex::new(None)),
            room: Arc::new(tokio::sync::Semaphore::new(0)),
            room_max: 0,
        }
    }

    pub(crate) async fn append(&self, records: Vec<Vec<u8>>) -> Result<Vec<u64>> {
        if let Some(r) = records.iter().find(|r| r.len() > RECORD_BYTES_MAX) {
            return Err(LogError::RecordTooLarge {
                size_bytes: r.len(),
            });
        }
        if records.is_empty() {
            return Ok(Vec::new());
        }
        if self.requests.lock().expect("requests lock").is_none() {
            return Err(LogError::Closed);
        }
        let (reply, wait) = oneshot::channel();
        let bytes: usize = records.iter().map(Vec::len).sum();
        let cost = u32::try_from(bytes)
            .unwrap_or(u32::MAX)
            .clamp(1, self.room_max.max(1));
        let room = self
            .room
            .clone()
            .acquire_many_owned(cost)
            .await
            .map_err(|_| LogError::Closed)?;
        // The sender is taken only for the send, so closing the log is never held
        // up by a clone parked here.
        let sender = self
            .requests
            .lock()
            .expect("requests lock")
            .clone()
            .ok_or(LogError::Closed)?;
        sender
            .send(AppendRequest {
                records,
                reply,
                _room: Some(room),
            })
            .map_err(|_| LogError::Closed)?;
        drop(sender);
        wait.await.map_err(|_| LogError::Closed)?
    }
}

/// How often a follower with no owner's door to wake it looks for records another
/// process appended (a tool writing the log itself while nothing owns it).
const FOLLOW_POLL: Duration = Duration::from_millis(1);
/// How long a follower woken by a door waits before it looks anyway (a safety net,
/// not the path records take), and how often it tries for a door when it has none.
const FOLLOW_DOOR_WAIT: Duration = Duration::from_millis(100);

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.seg"))
}

/// Checks the record at `pos` of a file `len` bytes long: `Ok(size)` when it is whole
/// and its checksum holds (its bytes are left in `buf`), else what is wrong with it.
fn check_record(
    file: &File,
    path: &Path,
    pos: u64,
    len: u64,
    buf: &mut Vec<u8>,
) -> Result<std::result::Result<u64, &'static str>> {
    if len.saturating_sub(pos) < HEADER_BYTES {
        return Ok(Err("partial record header"));
    }
    let mut header = [0u8; HEADER_BYTES as usize];
    file.read_exact_at(&mut header, pos).map_err(io(path))?;
    let size = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as u64;
    let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    if size as usize > RECORD_BYTES_MAX {
        return Ok(Err("record length out of range"));
    }
    if len - pos - HEADER_BYTES < size {
        return Ok(Err("partial record"));
    }
    buf.resize(size as usize, 0);
    file.read_exact_at(buf, pos + HEADER_BYTES)
        .map_err(io(path))?;
    if crc32fast::hash(buf) != crc {
        return Ok(Err("checksum mismatch"));
    }
    Ok(Ok(size))
}

/// Scans one segment; returns the segment and, for the last one, the byte position
/// where valid records end when something after it is not a whole valid record.
fn scan(path: &Path, base: u64, is_last: bool) -> Result<(Segment, u64)> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io(path))?;
    let len = file.metadata().map_err(io(path))?.len();
    let mut pos = 0u64;
    let mut records = 0u64;
    let mut index = Vec::new();
    let mut buf = Vec::new();
    let bad = |at: u64, what: &str| LogError::Corrupt {
        path: path.display().to_string(),
        at,
        what: what.to_string(),
    };
    while pos < len {
        let problem = match check_record(&file, path, pos, len, &mut buf)? {
            Err(what) => Some(what),
            Ok(size) => {
                if records.is_multiple_of(INDEX_EVERY) {
                    index.push((base + records, pos));
                }
                records += 1;
                pos += HEADER_BYTES + size;
                None
            }
        };
        if let Some(what) = problem {
            if !is_last {
                return Err(bad(pos, what));
            }
            tracing::warn!(path = %path.display(), at = pos, dropped_bytes = len - pos, what, "log tail was not a whole record; cutting it off");
            break;
        }
    }
    let segment = Segment {
        base,
        path: path.to_path_buf(),
        file: Arc::new(file),
        records,
        size_bytes: pos,
        index,
    };
    Ok((segment, pos))
}

/// Takes the directory's lock, or says another process holds it.
fn lock_dir(dir: &Path) -> Result<File> {
    let lock_path = dir.join("LOCK");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io(&lock_path))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => Err(LogError::Locked {
            path: dir.display().to_string(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(io(&lock_path)(e)),
    }
}

/// Scans every segment in offset order, cuts a torn tail off the last one, and
/// creates the first segment of an empty log. Returns the segments and the end.
fn recover_segments(dir: &Path, report: &mut OpenReport) -> Result<(Vec<Segment>, u64)> {
    let mut bases: Vec<u64> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".seg")?.parse().ok())
        .collect();
    bases.sort_unstable();
    let mut segments = Vec::new();
    let mut expected_base = 0u64;
    for (i, base) in bases.iter().enumerate() {
        let path = segment_path(dir, *base);
        if *base != expected_base {
            return Err(LogError::Corrupt {
                path: path.display().to_string(),
                at: 0,
                what: format!("segment starts at offset {base}, expected {expected_base}"),
            });
        }
        let is_last = i + 1 == bases.len();
        let (segment, valid_bytes) = scan(&path, *base, is_last)?;
        let file_len = segment.file.metadata().map_err(io(&path))?.len();
        if valid_bytes < file_len {
            segment.file.set_len(valid_bytes).map_err(io(&path))?;
            segment.file.sync_all().map_err(io(&path))?;
            report.truncated_bytes = file_len - valid_bytes;
        }
        expected_base = base + segment.records;
        report.records += segment.records;
        segments.push(segment);
    }
    if segments.is_empty() {
        let path = segment_path(dir, 0);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
        segments.push(Segment::first(path, file));
    }
    Ok((segments, expected_base))
}

impl FileLog {
    /// Opens (creating if needed) the log in `dir`, recovering a torn tail.
    pub fn open(dir: impl AsRef<Path>, options: FileLogOptions) -> Result<(FileLog, OpenReport)> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let lock = lock_dir(&dir)?;
        let mut report = OpenReport::default();
        let (segments, expected_base) = recover_segments(&dir, &mut report)?;
        report.segments = segments.len();
        let end = expected_base;
        // What a crashed writer wrote but never fsynced is durable from here on;
        // only then may followers read it.
        let last = segments.last().expect("a segment");
        last.file.sync_all().map_err(io(&last.path))?;
        let mark_path = dir.join(MARK_FILE);
        let mark = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&mark_path)
            .map_err(io(&mark_path))?;
        let (durable, _) = watch::channel(end);
        let shared = Arc::new(Shared {
            dir,
            state: Mutex::new(State { segments }),
            durable,
            mark: Mutex::new(Some(mark)),
            woken_by_door: Default::default(),
        });
        write_mark(&shared, end)?;
        let (tx, rx) = mpsc::channel();
        let room_max = options.queue_bytes_max.max(1);
        let writer_shared = shared.clone();
        let writer = std::thread::Builder::new()
            .name("tape-log-writer".into())
            .spawn(move || writer_loop(writer_shared, rx, options))
            .map_err(io(Path::new("writer thread")))?;
        let log = FileLog {
            shared,
            appender: Appender {
                requests: Arc::new(Mutex::new(Some(tx))),
                room: Arc::new(tokio::sync::Semaphore::new(room_max as usize)),
                room_max,
            },
            writer: Mutex::new(Some(writer)),
            stop: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            door: Mutex::new(None),
            _lock: Some(lock),
        };
        Ok((log, report))
    }

    /// Opens, for reading only, a log that another process writes (no lock is taken).
    /// A poller picks up whole records as they appear; appends fail with `Closed`.
    /// A follower reads only records the writer has fsynced (its `DURABLE` mark), so
    /// nothing it sees can be lost in a power loss.
    pub fn follow(dir: impl AsRef<Path>) -> Result<FileLog> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let (durable, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            dir,
            state: Mutex::new(State {
                segments: Vec::new(),
            }),
            durable,
            mark: Mutex::new(None),
            woken_by_door: Default::default(),
        });
        poll_once(&shared)?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (poll_shared, poll_stop) = (shared.clone(), stop.clone());
        let poller = std::thread::Builder::new()
            .name("tape-log-follower".into())
            .spawn(move || follow_loop(&poll_shared, &poll_stop))
            .map_err(io(Path::new("follower thread")))?;
        Ok(FileLog {
            shared,
            appender: Appender::closed(),
            writer: Mutex::new(Some(poller)),
            stop,
            door: Mutex::new(None),
            _lock: None,
        })
    }

    /// A follower's: true while its owner's door wakes it (false: no owner runs,
    /// and it looks every millisecond).
    pub fn is_woken_by_door(&self) -> bool {
        self.shared
            .woken_by_door
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Where the log lives.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Opens the log in `dir` as its owner (`tape run`, `tape engine`): like
    /// [`FileLog::open`], but while a tool holds the log it asks for its turn and
    /// waits (up to `wait_max`) instead of failing. Serve the door with
    /// [`FileLog::serve_door`] once open.
    pub async fn open_owner(
        dir: impl AsRef<Path>,
        options: FileLogOptions,
        wait_max: Duration,
    ) -> Result<(FileLog, OpenReport)> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        crate::door::wait_for_lock(dir, wait_max, || FileLog::open(dir, options.clone())).await
    }

    /// Serves this log's door (`door.sock` in its directory, see [`crate::door`])
    /// on the current tokio runtime until the log closes: other processes' appends
    /// when `appends` is true, and every follower's wake-ups. Only the writer may.
    pub fn serve_door(&self, appends: bool) -> Result<()> {
        if self._lock.is_none() {
            return Err(LogError::Closed);
        }
        let appender = appends.then(|| self.appender.clone());
        let server =
            crate::door::serve(&self.shared.dir, appender, self.shared.durable.subscribe())?;
        *self.door.lock().expect("door lock") = Some(server);
        Ok(())
    }

    /// Stops the writer after what is queued; later appends fail with `Closed`.
    pub fn close(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.door.lock().expect("door lock").take();
        self.appender.requests.lock().expect("requests lock").take();
        if let Some(handle) = self.writer.lock().expect("writer lock").take() {
            let _ = handle.join();
        }
    }

    pub async fn append(&self, records: Vec<Vec<u8>>) -> Result<Vec<u64>> {
        self.appender.append(records).await
    }

    /// Record bytes queued for the writer now (at most `queue_bytes_max`).
    pub fn queued_bytes(&self) -> usize {
        (self.appender.room_max as usize).saturating_sub(self.appender.room.available_permits())
    }

    pub async fn end_offset(&self) -> Result<u64> {
        Ok(*self.shared.durable.borrow())
    }

    pub async fn reader(&self, from: u64) -> Result<FileReader> {
        Ok(FileReader {
            shared: self.shared.clone(),
            next: from,
            cursor: None,
            durable: self.shared.durable.subscribe(),
            chunk: Vec::new(),
        })
    }
}

impl Drop for FileLog {
    fn drop(&mut self) {
        self.close();
    }
}

impl crate::Log for FileLog {
    type Reader = FileReader;

    async fn append(&self, records: Vec<Vec<u8>>) -> Result<Vec<u64>> {
        FileLog::append(self, records).await
    }

    async fn end_offset(&self) -> Result<u64> {
        FileLog::end_offset(self).await
    }

    async fn reader(&self, from: u64) -> Result<FileReader> {
        FileLog::reader(self, from).await
    }
}

/// A follower's thread: takes in new records whenever the owner's door says some
/// became durable; without a door (no owner runs), looks every `FOLLOW_POLL` and
/// tries for a door every `FOLLOW_DOOR_WAIT`.
fn follow_loop(shared: &Shared, stop: &std::sync::atomic::AtomicBool) {
    let mut watch: Option<crate::door::Watch> = None;
    let mut door_tried = std::time::Instant::now() - FOLLOW_DOOR_WAIT;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        if watch.is_none() && door_tried.elapsed() >= FOLLOW_DOOR_WAIT {
            door_tried = std::time::Instant::now();
            watch = crate::door::Watch::connect(&shared.dir, FOLLOW_DOOR_WAIT);
        }
        shared
            .woken_by_door
            .store(watch.is_some(), std::sync::atomic::Ordering::Relaxed);
        match watch.as_mut().map(|w| w.wait()) {
            Some(crate::door::Woken::Durable | crate::door::Woken::Quiet) => {}
            Some(crate::door::Woken::Gone) => watch = None,
            None => std::thread::sleep(FOLLOW_POLL),
        }
        if let Err(e) = poll_once(shared) {
            tracing::warn!(error = %e, "following the log failed; retrying");
        }
    }
}

/// A follower's step: opens new segments and takes in whole new records.
fn poll_once(shared: &Shared) -> Result<()> {
    let mut state = shared.state.lock().expect("state lock");
    if state.segments.is_empty() {
        let path = segment_path(&shared.dir, 0);
        match File::open(&path) {
            Ok(file) => state.segments.push(Segment::first(path, file)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(&path)(e)),
        }
    }
    let mut buf = Vec::new();
    loop {
        let seg = state.segments.last_mut().expect("a segment");
        let len = seg.file.metadata().map_err(io(&seg.path))?.len();
        let mut grew = false;
        // A record that is not whole and valid yet is still being written.
        while let Ok(size) = check_record(&seg.file, &seg.path, seg.size_bytes, len, &mut buf)? {
            if seg.records.is_multiple_of(INDEX_EVERY) {
                seg.index.push((seg.base + seg.records, seg.size_bytes));
            }
            seg.records += 1;
            seg.size_bytes += HEADER_BYTES + size;
            grew = true;
        }
        let next_base = seg.base + seg.records;
        let next_path = segment_path(&shared.dir, next_base);
        if !grew && seg.records > 0 && next_path.exists() {
            let file = File::open(&next_path).map_err(io(&next_path))?;
            state.segments.push(Segment {
                base: next_base,
                path: next_path,
                file: Arc::new(file),
                records: 0,
                size_bytes: 0,
                index: Vec::new(),
            });
            continue;
        }
        if !grew {
            break;
        }
    }
    let seg = state.segments.last().expect("a segment");
    let mut end = seg.base + seg.records;
    drop(state);
    if let Some(mark) = read_mark(shared)? {
        end = end.min(mark);
    }
    if *shared.durable.borrow() < end {
        shared.durable.send_replace(end);
    }
    Ok(())
}

fn writer_loop(shared: Arc<Shared>, rx: mpsc::Receiver<AppendRequest>, options: FileLogOptions) {
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        let mut bytes: usize = group[0].records.iter().map(Vec::len).sum();
        while bytes < GROUP_BYTES_MAX {
            match rx.try_recv() {
                Ok(r) => {
                    bytes += r.records.iter().map(Vec::len).sum::<usize>();
                    group.push(r);
                }
                Err(_) => break,
            }
        }
        let result = write_group(&shared, &group, &mut buf, &options);
        match result {
            Ok(first_offset) => {
                let mut next = first_offset;
                for r in group {
                    let n = r.records.len() as u64;
                    let _ = r.reply.send(Ok((next..next + n).collect()));
                    next += n;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "log append failed; the writer stops");
                let msg = e.to_string();
                for r in group {
                    let _ = r.reply.send(Err(LogError::Io {
                        path: shared.dir.display().to_string(),
                        source: std::io::Error::other(msg.clone()),
                    }));
                }
                return;
            }
        }
    }
}

/// Writes a group of appends, fsyncs, publishes the new durable end; returns the
/// offset of the group's first record.
fn write_group(
    shared: &Shared,
    group: &[AppendRequest],
    buf: &mut Vec<u8>,
    options: &FileLogOptions,
) -> Result<u64> {
    let mut state = shared.state.lock().expect("state lock");
    let first_offset = {
        let last = state.segments.last().expect("a segment");
        last.base + last.records
    };
    let mut records = group.iter().flat_map(|r| r.records.iter()).peekable();
    while records.peek().is_some() {
        let seg = state.segments.last_mut().expect("a segment");
        if seg.size_bytes >= options.segment_bytes_max && seg.records > 0 {
            seg.file.sync_all().map_err(io(&seg.path))?;
            let base = seg.base + seg.records;
            let path = segment_path(&shared.dir, base);
            let file = OpenOptions::new()
                .create(true)
                .truncate(true)
                .read(true)
                .write(true)
                .open(&path)
                .map_err(io(&path))?;
            File::open(&shared.dir)
                .and_then(|d| d.sync_all())
                .map_err(io(&shared.dir))?;
            state.segments.push(Segment {
                base,
                path,
                file: Arc::new(file),
                records: 0,
                size_bytes: 0,
                index: Vec::new(),
            });
            continue;
        }
        buf.clear();
        let mut pos = seg.size_bytes;
        while let Some(r) = records.peek() {
            if pos >= options.segment_bytes_max && seg.records > 0 {
                break;
            }
            let offset = seg.base + seg.records;
            if (offset - seg.base).is_multiple_of(INDEX_EVERY) {
                seg.index.push((offset, pos));
            }
            buf.extend_from_slice(&(r.len() as u32).to_le_bytes());
            buf.extend_from_slice(&crc32fast::hash(r).to_le_bytes());
            buf.extend_from_slice(r);
            pos += HEADER_BYTES + r.len() as u64;
            seg.records += 1;
            records.next();
        }
        seg.file
            .write_all_at(buf, seg.size_bytes)
            .map_err(io(&seg.path))?;
        seg.size_bytes = pos;
    }
    let seg = state.segments.last().expect("a segment");
    seg.file.sync_data().map_err(io(&seg.path))?;
    let end = seg.base + seg.records;
    drop(state);
    write_mark(shared, end)?;
    shared.durable.send_replace(end);
    Ok(first_offset)
}

/// Bytes a reader fetches per read call.
const READ_CHUNK_BYTES: usize = 1 << 20;

/// A reader of the file log: sequential, with a cursor so it never rescans.
pub struct FileReader {
    shared: Arc<Shared>,
    next: u64,
    /// (segment base, offset, byte position): where `next` is, when known.
    cursor: Option<(u64, u64, u64)>,
    durable: watch::Receiver<u64>,
    chunk: Vec<u8>,
}

impl FileReader {
    /// The segment holding `next` (file, path, base, end) and a starting point
    /// inside it: the cursor where the last read stopped, else the nearest index
    /// entry at or before `next`.
    fn find_segment(&self) -> (Arc<File>, PathBuf, u64, u64, (u64, u64)) {
        let state = self.shared.state.lock().expect("state lock");
        let i = state
            .segments
            .partition_point(|s| s.base <= self.next)
            .saturating_sub(1);
        let seg = &state.segments[i];
        let start = match self.cursor {
            Some((base, offset, pos)) if base == seg.base && offset <= self.next => (offset, pos),
            _ => match seg.index.partition_point(|(o, _)| *o <= self.next) {
                0 => (seg.base, 0),
                k => seg.index[k - 1],
            },
        };
        let end = seg.base + seg.records;
        (seg.file.clone(), seg.path.clone(), seg.base, end, start)
    }

    fn read_available(&mut self, max: usize, end: u64) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        while out.len() < max && self.next < end {
            let (file, path, seg_base, seg_end, start) = self.find_segment();
            let (mut offset, mut pos) = start;
            let stop = end.min(seg_end);
            while out.len() < max && offset < stop {
                self.chunk.resize(READ_CHUNK_BYTES, 0);
                let n = read_some_at(&file, &mut self.chunk, pos).map_err(io(&path))?;
                let mut at = 0usize;
                while out.len() < max && offset < stop && at + HEADER_BYTES as usize <= n {
                    let size =
                        u32::from_le_bytes(self.chunk[at..at + 4].try_into().expect("4 bytes"))
                            as usize;
                    let body = at + HEADER_BYTES as usize;
                    let bytes = if body + size <= n {
                        self.chunk[body..body + size].to_vec()
                    } else if at == 0 {
                        // A record larger than what one read returned.
                        let mut big = vec![0u8; size];
                        file.read_exact_at(&mut big, pos + HEADER_BYTES)
                            .map_err(io(&path))?;
                        big
                    } else {
                        break;
                    };
                    if offset >= self.next {
                        out.push(Record { offset, bytes });
                        self.next = offset + 1;
                    }
                    offset += 1;
                    let advance = HEADER_BYTES as usize + size;
                    at += advance;
                    pos += advance as u64;
                    if at > n {
                        break;
                    }
                }
                if n == 0 {
                    return Err(LogError::Corrupt {
                        path: path.display().to_string(),
                        at: pos,
                        what: "segment shorter than its records".into(),
                    });
                }
            }
            self.cursor = (offset < seg_end).then_some((seg_base, offset, pos));
            if offset >= seg_end {
                self.cursor = None;
            }
        }
        Ok(out)
    }

    pub async fn next_batch(&mut self, max: usize, wait: Duration) -> Result<Vec<Record>> {
        let mut end = *self.durable.borrow_and_update();
        if self.next >= end {
            // No wait: what is there now (a zero timeout would still wait for the
            // timer's next tick, about a millisecond).
            if wait.is_zero() {
                return Ok(Vec::new());
            }
            let changed = tokio::time::timeout(wait, self.durable.changed()).await;
            if let Ok(Err(_)) = changed {
                return Err(LogError::Closed);
            }
            end = *self.durable.borrow_and_update();
            if self.next >= end {
                return Ok(Vec::new());
            }
        }
        self.read_available(max, end)
    }
}

/// Reads as much as is there (up to `buf.len()`) at `pos`.
fn read_some_at(file: &File, buf: &mut [u8], pos: u64) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], pos + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

impl crate::LogReader for FileReader {
    async fn next_batch(&mut self, max: usize, wait: Duration) -> Result<Vec<Record>> {
        FileReader::next_batch(self, max, wait).await
    }
}
