//! The durable event log: append-only JSON-lines files per tenant in `<data-dir>/events/`,
//! fsync'd before an event is broadcast.
//!
//! Offsets are per tenant, start at 1 and grow by one per event. Each line is one [`LogEntry`].
//!
//! # Files (segments)
//!
//! A tenant's log is one or more segment files, oldest first: `<tenantId>.jsonl` (the first; a
//! log without retention never has another, as before retention existed), then
//! `<tenantId>.<offset>.jsonl`, named after the offset of the first event written to it. Only
//! the last segment is ever written to; a segment is never rewritten. With a retention set
//! ([`Limits::retain_events`], [`Limits::retain_age`]) a new segment is started every
//! [`Limits::segment_events`] events (at most [`SEGMENT_MAX_EVENTS`]), [`SEGMENT_MAX_BYTES`]
//! bytes or, with an age, a quarter of it; whole old segments are deleted, oldest first, once
//! every event in them is past the retention. The last segment holding an event is never
//! deleted, so offsets never restart: the oldest kept offset only rises.
//!
//! # Writes
//!
//! A line is written whole at the end of the last complete line, then fsync'd; only then does
//! the event get its offset in memory (and go out). A write or fsync that fails is cut off the
//! file again (`set_len`), so the next event takes the same offset and nobody ever saw the failed
//! one; if even that cut fails, the log refuses appends (retrying the cut first each time) rather
//! than write after garbage. [`crate::app::App::publish`] runs each append in its own task, so a
//! cancelled request never stops one half way. A new segment is created empty and its directory
//! entry fsync'd before its first line is written; a write into it that fails leaves it to the
//! next append, which starts it again from empty.
//!
//! # Deletion
//!
//! Under the append lock (after an append, and every so often for the age), the segments past
//! the retention are first taken out of the in-memory view, so no feed read starts on them,
//! then unlinked one by one, oldest first, the directory fsync'd after each: a crash at any
//! point leaves a suffix of the segments, every retained event in it. A feed read that took its
//! byte positions before the deletion either has the file open already (it reads on from it:
//! the file is gone from the directory only) or finds it missing, and then starts again from
//! the view, where the missing offsets show up as `truncated`. Files are never rewritten, so a
//! position never points into other data.
//!
//! # Recovery at start
//!
//! The segments are read in order, line by line. A torn last line (no newline: a crash or a
//! failed write) is cut off with a warning; every complete line is kept. A line that does not
//! parse is skipped with a warning; when it is a torn write with a whole line appended after it
//! (as older versions could leave), the whole line is recovered from it. Offsets must grow: a
//! line whose offset is not above the previous one is skipped, a gap is accepted. An empty last
//! segment (a crash right after it was created) continues at the offset in its name. The
//! retention is applied once loaded.
//!
//! # Memory
//!
//! Only a tail of each log is in memory ([`Limits::memory_events`], [`Limits::memory_bytes`]),
//! with an index of the envelope ids in it. Older entries stay in the files: the feed reads them
//! from there, from a sparse index of byte positions (one every [`CHECKPOINT_EVERY`] entries and
//! one at the start of each segment). Positions are global: each segment starts where the one
//! before it ended. Idempotency keys are remembered for a window ([`Limits::idempotency_keys`],
//! [`Limits::idempotency_ttl`]). Feed reads never take the append lock: they copy what they need
//! (at most [`MAX_SCAN`] entries) from the in-memory view under a short read lock, and read the
//! files without any lock.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock;
use crate::rooms::{self, valid_id};

/// The sparse index of the file has one byte position every this many entries.
pub const CHECKPOINT_EVERY: u64 = 512;
/// The most entries one feed read looks at (visible to the caller or not).
pub const MAX_SCAN: usize = 10_000;
/// With a retention, the most events in one segment.
pub const SEGMENT_MAX_EVENTS: u64 = 100_000;
/// With a retention, a segment is closed before it grows past this many bytes (one event
/// bigger than that gets a segment of its own).
pub const SEGMENT_MAX_BYTES: u64 = 64 << 20;

/// The envelope every event is wrapped in (the Tidings envelope convention).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// Unique event id (`evt_<32 hex>`); also the feed's event id and `since` value.
    pub id: String,
    /// The event name, e.g. `task.created`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Schema version of `data`.
    pub version: u32,
    /// ISO 8601 UTC time the event was logged.
    pub timestamp: String,
    /// The service that produced it.
    pub source: String,
    /// The payload.
    pub data: Value,
    /// Routing and correlation metadata.
    pub metadata: Metadata,
}

/// Envelope metadata (camelCase on the wire).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// Id tying together the events and requests of one operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// The user who caused the event, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The tenant whose log holds the event.
    pub tenant_id: String,
    /// The Socket.IO session that caused the event, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

/// One line of a tenant's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    /// Position in the tenant's log (1, 2, ...).
    pub offset: u64,
    /// The rooms the event was sent to (who may read it back from the feed).
    pub rooms: Vec<String>,
    /// Epoch milliseconds, for `since=<ISO timestamp>`.
    pub ts_ms: i64,
    /// The idempotency key the producer gave, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// The event as broadcast.
    pub envelope: Envelope,
}

impl LogEntry {
    /// Whether `user` of `tenant` may read this event.
    pub fn visible_to(&self, user: &str, tenant: &str) -> bool {
        self.rooms.iter().any(|r| rooms::name_visible_to(r, user, tenant))
    }
}

/// Parses one line (without or with its newline). A line that does not parse but has a whole
/// entry after a torn start (`<torn bytes>{"offset":...}`) gives that entry.
fn parse_line(line: &[u8]) -> Option<LogEntry> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    if let Ok(e) = serde_json::from_slice(line) {
        return Some(e);
    }
    const START: &[u8] = b"{\"offset\":";
    let at = line.windows(START.len()).rposition(|w| w == START).filter(|at| *at > 0)?;
    serde_json::from_slice(line.get(at..)?).ok()
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// How much of each log is kept in memory, and on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Entries of the tail kept in memory, per tenant (at least 1).
    pub memory_events: usize,
    /// Bytes (of JSON lines) of the tail kept in memory, per tenant; the last entry always is.
    pub memory_bytes: usize,
    /// Idempotency keys remembered per tenant: the most recent ones.
    pub idempotency_keys: usize,
    /// How long an idempotency key is remembered.
    pub idempotency_ttl: Duration,
    /// Retention by count: an event is deleted (with its whole segment) once at least this many
    /// newer events are kept; 0 keeps all (the default).
    pub retain_events: u64,
    /// Retention by age: an event is deleted (with its whole segment) once it is older than
    /// this; `None` keeps all (the default). With both set, either one deletes.
    pub retain_age: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_events: 10_000,
            memory_bytes: 8 << 20,
            idempotency_keys: 50_000,
            idempotency_ttl: Duration::from_secs(24 * 3600),
            retain_events: 0,
            retain_age: None,
        }
    }
}

impl Limits {
    /// Whether some retention is set (then the log is written in several segments).
    pub fn retains(&self) -> bool {
        self.retain_events > 0 || self.retain_age.is_some()
    }

    /// The most events in one segment: a quarter of [`Limits::retain_events`] (so the files
    /// hold at most about 1.25 times the events to keep, plus the segment being written), at
    /// least 1 and at most [`SEGMENT_MAX_EVENTS`].
    pub fn segment_events(&self) -> u64 {
        match self.retain_events {
            0 => SEGMENT_MAX_EVENTS,
            n => (n / 4).clamp(1, SEGMENT_MAX_EVENTS),
        }
    }

    /// The longest time one segment spans (between its first and its last event): a quarter of
    /// [`Limits::retain_age`].
    fn segment_span_ms(&self) -> Option<i64> {
        self.retain_age.map(|a| (millis(a) / 4).max(1))
    }
}

/// What [`Appender::append`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// A new entry at this offset.
    New(u64),
    /// The idempotency key was seen before (within the window): the first event's id and
    /// offset, nothing written.
    Replayed {
        /// The first event's id.
        id: String,
        /// The first event's offset.
        offset: u64,
    },
}

/// Idempotency keys of the recent past: at most `max`, none older than `ttl_ms`.
#[derive(Debug)]
struct KeyWindow {
    map: HashMap<Arc<str>, (u64, Arc<str>)>,
    /// (time, offset, key), oldest first.
    order: VecDeque<(i64, u64, Arc<str>)>,
    max: usize,
    ttl_ms: i64,
}

impl KeyWindow {
    fn new(limits: &Limits) -> Self {
        KeyWindow {
            map: HashMap::new(),
            order: VecDeque::new(),
            max: limits.idempotency_keys,
            ttl_ms: millis(limits.idempotency_ttl),
        }
    }

    fn expire(&mut self, now_ms: i64) {
        let oldest = now_ms.saturating_sub(self.ttl_ms);
        while let Some((ts, offset, key)) = self.order.front() {
            if self.order.len() <= self.max && *ts >= oldest {
                break;
            }
            if self.map.get(key).is_some_and(|(o, _)| o == offset) {
                self.map.remove(key);
            }
            self.order.pop_front();
        }
    }

    fn get(&mut self, key: &str, now_ms: i64) -> Option<(String, u64)> {
        self.expire(now_ms);
        self.map.get(key).map(|(offset, id)| (id.to_string(), *offset))
    }

    fn insert(&mut self, key: &str, offset: u64, id: &str, ts_ms: i64, now_ms: i64) {
        let key: Arc<str> = key.into();
        self.map.insert(key.clone(), (offset, id.into()));
        self.order.push_back((ts_ms, offset, key));
        self.expire(now_ms);
    }
}

/// An entry of the in-memory tail, with where its line starts (a global position) and its length.
#[derive(Debug, Clone)]
struct Slot {
    pos: u64,
    len: u64,
    entry: Arc<LogEntry>,
}

/// A position in the files of an entry older than the tail.
#[derive(Debug, Clone, Copy)]
struct Checkpoint {
    offset: u64,
    pos: u64,
    ts_ms: i64,
}

/// A segment file as feed reads see it: the global position of its first byte (it ends where
/// the next one starts).
#[derive(Debug, Clone)]
struct SegFile {
    start: u64,
    path: Arc<Path>,
}

/// What feed reads see: the tail in memory and the index of the rest of the files.
#[derive(Debug, Default)]
struct View {
    head: u64,
    /// The offset of the oldest entry kept (0 when there is none).
    first: u64,
    tail: VecDeque<Slot>,
    tail_bytes: u64,
    /// Where the first entry of the tail starts: the files before it hold the evicted entries.
    tail_pos: u64,
    by_id: HashMap<String, u64>,
    checkpoints: Vec<Checkpoint>,
    /// The segment files, oldest first (replaced, never changed in place: readers keep a copy).
    files: Arc<Vec<SegFile>>,
    /// The global position where the oldest kept segment starts.
    start: u64,
}

impl View {
    /// Adds an entry whose line starts at global position `pos`; `segment_start` when it is the
    /// first entry of its segment (which always gets a checkpoint, so that one remains at the
    /// oldest entry when older segments are deleted).
    fn push(&mut self, pos: u64, len: u64, entry: Arc<LogEntry>, limits: &Limits, segment_start: bool) {
        if segment_start || self.checkpoints.last().is_none_or(|c| entry.offset >= c.offset + CHECKPOINT_EVERY) {
            self.checkpoints.push(Checkpoint { offset: entry.offset, pos, ts_ms: entry.ts_ms });
        }
        if self.tail.is_empty() {
            self.tail_pos = pos;
        }
        if self.first == 0 {
            self.first = entry.offset;
        }
        self.head = entry.offset;
        self.by_id.insert(entry.envelope.id.clone(), entry.offset);
        self.tail_bytes += len;
        self.tail.push_back(Slot { pos, len, entry });
        let max_events = limits.memory_events.max(1);
        let max_bytes = u64::try_from(limits.memory_bytes).unwrap_or(u64::MAX);
        while self.tail.len() > max_events || (self.tail_bytes > max_bytes && self.tail.len() > 1) {
            let Some(old) = self.tail.pop_front() else { break };
            self.forget(&old);
            self.tail_pos = self.tail.front().map_or(old.pos + old.len, |s| s.pos);
        }
    }

    fn forget(&mut self, old: &Slot) {
        self.tail_bytes -= old.len;
        if self.by_id.get(&old.entry.envelope.id) == Some(&old.entry.offset) {
            self.by_id.remove(&old.entry.envelope.id);
        }
    }

    /// Forgets everything before global position `start` and offset `first` (deleted segments).
    fn drop_before(&mut self, files: Arc<Vec<SegFile>>, start: u64, first: u64) {
        self.files = files;
        self.start = start;
        self.first = first;
        let gone = self.checkpoints.partition_point(|c| c.pos < start);
        self.checkpoints.drain(..gone);
        while let Some(s) = self.tail.front()
            && s.entry.offset < first
        {
            let Some(old) = self.tail.pop_front() else { break };
            self.forget(&old);
        }
        self.tail_pos = self.tail.front().map_or(self.tail_pos.max(start), |s| s.pos);
    }

    /// Whether entries after `after` may be in the files before the tail.
    fn needs_file(&self, after: u64) -> bool {
        self.tail_pos > self.start && self.tail.front().is_none_or(|s| after + 1 < s.entry.offset)
    }

    /// The global position to read the files from to find the entries after `after`.
    fn file_start(&self, after: u64) -> u64 {
        let i = self.checkpoints.partition_point(|c| c.offset <= after + 1);
        i.checked_sub(1).and_then(|i| self.checkpoints.get(i)).map_or(self.start, |c| c.pos.max(self.start))
    }
}

/// One segment, as the writer knows it.
#[derive(Debug, Clone)]
struct Segment {
    path: Arc<Path>,
    /// The global position of its first byte.
    start: u64,
    /// The offset of its first entry (0 while it has none).
    first: u64,
    /// The offset of its last entry (0 while it has none).
    last: u64,
    entries: u64,
    /// The time of its first entry, and the latest time of its entries.
    first_ts: i64,
    max_ts: i64,
}

impl Segment {
    fn new(path: Arc<Path>, start: u64) -> Self {
        Segment { path, start, first: 0, last: 0, entries: 0, first_ts: 0, max_ts: i64::MIN }
    }

    fn add(&mut self, offset: u64, ts_ms: i64) {
        if self.entries == 0 {
            self.first = offset;
            self.first_ts = ts_ms;
        }
        self.last = offset;
        self.entries += 1;
        self.max_ts = self.max_ts.max(ts_ms);
    }
}

/// The writer's state, under the append lock.
#[derive(Debug)]
struct Writer {
    /// The last segment, the one appended to.
    file: Arc<File>,
    /// Where the next line goes in it: the end of its last complete line.
    end: u64,
    head: u64,
    /// A write failed and the cut after it too: bytes after `end` may be garbage.
    dirty: bool,
    keys: KeyWindow,
    /// Every segment, oldest first; never empty (the last is `file`).
    segments: VecDeque<Segment>,
    /// The entries in all of them.
    entries: u64,
}

impl Writer {
    fn files(&self) -> Arc<Vec<SegFile>> {
        Arc::new(self.segments.iter().map(|s| SegFile { start: s.start, path: s.path.clone() }).collect())
    }

    /// Whether the next entry (`len` bytes, logged at `ts_ms`) starts a new segment.
    fn rolls(&self, limits: &Limits, len: u64, ts_ms: i64) -> bool {
        let Some(last) = self.segments.back() else { return false };
        limits.retains()
            && last.entries > 0
            && (last.entries >= limits.segment_events()
                || self.end.saturating_add(len) > SEGMENT_MAX_BYTES
                || limits.segment_span_ms().is_some_and(|span| ts_ms.saturating_sub(last.first_ts) >= span))
    }

    /// How many of the oldest segments are entirely past the retention at `now_ms`. The last
    /// segment with an entry, and any after it, never are.
    fn expired(&self, limits: &Limits, now_ms: i64) -> usize {
        if !limits.retains() {
            return 0;
        }
        let Some(keep) = self.segments.iter().rposition(|s| s.entries > 0) else { return 0 };
        let oldest_ms = limits.retain_age.map(|a| now_ms.saturating_sub(millis(a)));
        let mut newer = self.entries;
        let mut n = 0;
        for s in self.segments.iter().take(keep) {
            newer -= s.entries.min(newer);
            let by_count = limits.retain_events > 0 && newer >= limits.retain_events;
            let by_age = oldest_ms.is_some_and(|oldest| s.max_ts < oldest);
            if !(by_count || by_age) {
                break;
            }
            n += 1;
        }
        n
    }

    /// Takes the `n` oldest segments out of the writer and then of the view (no feed read starts
    /// on them after this), and gives what to unlink.
    fn drop_oldest(&mut self, n: usize, view: &mut View) -> Vec<Segment> {
        let gone: Vec<Segment> = self.segments.drain(..n.min(self.segments.len().saturating_sub(1))).collect();
        self.entries -= gone.iter().map(|s| s.entries).sum::<u64>().min(self.entries);
        let start = self.segments.front().map_or(0, |s| s.start);
        let first = self.segments.iter().find(|s| s.entries > 0).map_or(0, |s| s.first);
        view.drop_before(self.files(), start, first);
        gone
    }
}

/// One tenant's log.
#[derive(Debug)]
pub struct TenantLog {
    dir: PathBuf,
    tenant: String,
    limits: Limits,
    writer: tokio::sync::Mutex<Writer>,
    view: RwLock<View>,
    /// One search of the whole file for an old envelope id at a time.
    id_scan: tokio::sync::Mutex<()>,
}

/// The append lock of a [`TenantLog`]: hold it for the whole append-then-broadcast so events go
/// out in offset order.
#[derive(Debug)]
pub struct Appender<'a> {
    log: &'a TenantLog,
    w: tokio::sync::MutexGuard<'a, Writer>,
}

/// A page of a feed read.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// The entries the caller may see, oldest first.
    pub entries: Vec<Arc<LogEntry>>,
    /// The offset of the last entry looked at (visible or not), or the start.
    pub cursor: u64,
    /// The last offset of the log when the read ended.
    pub head: u64,
    /// Offsets right after the start of the read that the log no longer has (deleted by its
    /// retention): the read went on from the oldest kept entry. Only ever at the start of a
    /// page: a read that meets deleted offsets after entries it looked at ends there.
    pub truncated: Option<(u64, u64)>,
}

fn lock_poisoned() -> io::Error {
    io::Error::other("event log lock poisoned")
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> io::Result<T> + Send + 'static) -> io::Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(io::Error::other)?
}

/// Makes the creation or removal of files in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Unlinks segments taken out of a log, oldest first, making each removal durable before the
/// next (a crash never leaves a newer segment deleted and an older one back).
fn remove_segments(dir: &Path, tenant: &str, gone: &[Segment]) {
    for s in gone {
        match std::fs::remove_file(&s.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                // Out of the view already; the next start loads it again and deletes it then.
                tracing::warn!(tenant, path = %s.path.display(), error = %e, "could not delete a segment past the retention");
                return;
            }
        }
        if let Err(e) = sync_dir(dir) {
            tracing::warn!(tenant, error = %e, "could not fsync the event log directory after a deletion");
            return;
        }
        tracing::info!(tenant, path = %s.path.display(), from = s.first, to = s.last, events = s.entries, "deleted a segment past the retention");
    }
}

/// Reads the segment at `path` into `view` and `keys` (its first byte at global position
/// `start`), cutting off a torn last line; gives the file (open for writing) and the segment.
fn load_segment(
    path: &Path,
    start: u64,
    view: &mut View,
    keys: &mut KeyWindow,
    limits: &Limits,
    now: i64,
) -> io::Result<(File, Segment, u64)> {
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    let mut seg = Segment::new(path.into(), start);
    let mut reader = BufReader::new(File::open(path)?);
    let mut line = Vec::new();
    let (mut pos, mut end) = (0u64, 0u64);
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)? as u64;
        if n == 0 || line.last() != Some(&b'\n') {
            break;
        }
        let at = pos;
        pos += n;
        end = pos;
        let Some(e) = parse_line(&line) else {
            tracing::warn!(path = %path.display(), byte = at, "skipping an unreadable log line");
            continue;
        };
        if e.offset <= view.head {
            tracing::warn!(path = %path.display(), offset = e.offset, after = view.head, "skipping an out-of-order log line");
            continue;
        }
        if e.offset > view.head + 1 && view.head > 0 {
            tracing::warn!(path = %path.display(), from = view.head + 1, to = e.offset - 1, "offsets missing from the log");
        }
        if let Some(k) = &e.idempotency_key {
            keys.insert(k, e.offset, &e.envelope.id, e.ts_ms, now);
        }
        seg.add(e.offset, e.ts_ms);
        view.push(start + at, n, Arc::new(e), limits, seg.entries == 1);
    }
    let file_len = file.metadata()?.len();
    if file_len > end {
        tracing::warn!(
            path = %path.display(),
            bytes = file_len - end,
            "cutting off a torn last line (an append that never completed; it was never acknowledged)"
        );
        file.set_len(end)?;
        file.sync_all()?;
    }
    Ok((file, seg, end))
}

impl TenantLog {
    /// Opens the log of `tenant` in `dir` from its segment files, `(first offset in the name, or
    /// 0 for <tenant>.jsonl; path)`; none: a new log.
    fn open(dir: &Path, tenant: &str, mut files: Vec<(u64, PathBuf)>, limits: Limits) -> io::Result<TenantLog> {
        files.sort();
        if files.is_empty() {
            let path = dir.join(format!("{tenant}.jsonl"));
            OpenOptions::new().write(true).create(true).truncate(false).open(&path)?;
            sync_dir(dir)?;
            files.push((0, path));
        }
        let mut view = View::default();
        let mut keys = KeyWindow::new(&limits);
        let now = clock::now_ms();
        let mut segments = VecDeque::new();
        let mut last = None;
        let mut start = 0u64;
        let mut entries = 0u64;
        for (base, path) in &files {
            let (file, seg, end) = load_segment(path, start, &mut view, &mut keys, &limits, now)?;
            // An empty segment still says where offsets go on (it is named after its first).
            view.head = view.head.max(base.saturating_sub(1));
            start += end;
            entries += seg.entries;
            segments.push_back(seg);
            last = Some((file, end));
        }
        let Some((file, end)) = last else { return Err(io::Error::other("an event log without a segment")) };
        view.files = Arc::new(segments.iter().map(|s| SegFile { start: s.start, path: s.path.clone() }).collect());
        let head = view.head;
        let mut writer = Writer { file: Arc::new(file), end, head, dirty: false, keys, segments, entries };
        let expired = writer.expired(&limits, now);
        if expired > 0 {
            let gone = writer.drop_oldest(expired, &mut view);
            remove_segments(dir, tenant, &gone);
        }
        Ok(TenantLog {
            dir: dir.to_path_buf(),
            tenant: tenant.to_string(),
            limits,
            writer: tokio::sync::Mutex::new(writer),
            view: RwLock::new(view),
            id_scan: tokio::sync::Mutex::new(()),
        })
    }

    /// Takes the append lock.
    pub async fn appender(&self) -> Appender<'_> {
        Appender { log: self, w: self.writer.lock().await }
    }

    /// The last offset (0 when empty).
    pub fn head(&self) -> u64 {
        self.view.read().map_or(0, |v| v.head)
    }

    /// The offset of the oldest entry kept (0 when there is none).
    pub fn first_offset(&self) -> u64 {
        self.view.read().map_or(0, |v| v.first)
    }

    /// How many entries are in memory (the tail), for tests and metrics.
    pub fn in_memory(&self) -> usize {
        self.view.read().map_or(0, |v| v.tail.len())
    }

    /// How many segment files the log has, for tests and metrics.
    pub fn segments(&self) -> usize {
        self.view.read().map_or(0, |v| v.files.len())
    }

    /// Deletes the segments past the retention now (appends do it too; this is for the age,
    /// when a tenant gets no new events). Gives how many were deleted.
    pub async fn enforce_retention(&self) -> io::Result<usize> {
        self.enforce_retention_at(clock::now_ms()).await
    }

    async fn enforce_retention_at(&self, now_ms: i64) -> io::Result<usize> {
        if !self.limits.retains() {
            return Ok(0);
        }
        let mut w = self.writer.lock().await;
        let n = w.expired(&self.limits, now_ms);
        if n == 0 {
            return Ok(0);
        }
        let gone = {
            let mut v = self.view.write().map_err(|_| lock_poisoned())?;
            w.drop_oldest(n, &mut v)
        };
        let (dir, tenant) = (self.dir.clone(), self.tenant.clone());
        blocking(move || {
            remove_segments(&dir, &tenant, &gone);
            Ok(())
        })
        .await?;
        Ok(n)
    }

    /// The offset of the event with this envelope id, if it is in the in-memory tail.
    pub fn recent_offset_of(&self, id: &str) -> Option<u64> {
        self.view.read().ok()?.by_id.get(id).copied()
    }

    /// The offset of the event with this envelope id: from memory, else by reading the files
    /// (outside every lock but one per tenant: one such search at a time). An event deleted by
    /// the retention is not found.
    pub async fn offset_of(&self, id: &str) -> io::Result<Option<u64>> {
        let (files, start, tail_pos) = {
            let v = self.view.read().map_err(|_| lock_poisoned())?;
            if let Some(o) = v.by_id.get(id) {
                return Ok(Some(*o));
            }
            (v.files.clone(), v.start, v.tail_pos)
        };
        // Only envelope ids are looked for in the files: `evt_` and 32 hex digits.
        let looks_like_id =
            id.strip_prefix("evt_").is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        if tail_pos <= start || !looks_like_id {
            return Ok(None);
        }
        let _one_at_a_time = self.id_scan.lock().await;
        let needle = format!("\"id\":\"{id}\"");
        let id = id.to_string();
        blocking(move || {
            let mut found = None;
            // A segment deleted meanwhile held no event still kept: skipped.
            scan_segments(&files, start, tail_pos, Missing::Skip, |line, e| {
                if !std::str::from_utf8(line).is_ok_and(|l| l.contains(&needle)) {
                    return Scan::Skip;
                }
                match e() {
                    Some(e) if e.envelope.id == id => {
                        found = Some(e.offset);
                        Scan::Stop
                    }
                    _ => Scan::Skip,
                }
            })?;
            Ok(found)
        })
        .await
    }

    /// The offset of the last entry logged at or before `ms` (0 if none, or if `ms` is before
    /// the oldest kept entry), for `since=<ISO timestamp>`; timestamps are taken to grow with
    /// offsets.
    pub async fn offset_at_time(&self, ms: i64) -> io::Result<u64> {
        let (files, from, until, before_tail) = {
            let v = self.view.read().map_err(|_| lock_poisoned())?;
            match v.tail.front() {
                Some(first) if first.entry.ts_ms > ms && v.tail_pos > v.start => {
                    let i = v.checkpoints.partition_point(|c| c.ts_ms <= ms);
                    let Some(cp) = i.checked_sub(1).and_then(|i| v.checkpoints.get(i)) else { return Ok(0) };
                    (v.files.clone(), cp.pos, v.tail_pos, cp.offset)
                }
                _ => {
                    let i = v.tail.partition_point(|s| s.entry.ts_ms <= ms);
                    let at = i.checked_sub(1).and_then(|i| v.tail.get(i)).map(|s| s.entry.offset);
                    return Ok(at.unwrap_or(0));
                }
            }
        };
        blocking(move || {
            let mut last = before_tail;
            scan_segments(&files, from, until, Missing::Skip, |_, e| match e() {
                Some(e) if e.ts_ms > ms => Scan::Stop,
                Some(e) => {
                    last = last.max(e.offset);
                    Scan::Skip
                }
                None => Scan::Skip,
            })?;
            Ok(last)
        })
        .await
    }

    /// The entries after `after` that `visible` accepts, at most `limit`, looking at no more
    /// than [`MAX_SCAN`] entries. Never waits for an append. Offsets right after `after` that
    /// the retention deleted are reported in [`Page::truncated`], and the read goes on from the
    /// oldest kept entry.
    pub async fn read(
        &self,
        after: u64,
        limit: usize,
        visible: impl Fn(&LogEntry) -> bool + Send + Sync + 'static,
    ) -> io::Result<Page> {
        enum Next {
            File { files: Arc<Vec<SegFile>>, start: u64, from: u64, until: u64, tail_first: u64 },
            Memory(Vec<Arc<LogEntry>>),
        }
        let visible = Arc::new(visible);
        let mut page = Page { entries: Vec::new(), cursor: after, head: 0, truncated: None };
        let mut budget = MAX_SCAN;
        loop {
            let next = {
                let v = self.view.read().map_err(|_| lock_poisoned())?;
                page.head = v.head;
                if page.cursor >= v.head || budget == 0 || page.entries.len() >= limit {
                    return Ok(page);
                }
                if v.first > page.cursor + 1 {
                    if page.cursor != after {
                        // Deleted while this read went on: the next read says so.
                        return Ok(page);
                    }
                    page.truncated = Some((after + 1, v.first - 1));
                    page.cursor = v.first - 1;
                }
                if v.needs_file(page.cursor) {
                    let tail_first = v.tail.front().map_or(v.head + 1, |s| s.entry.offset);
                    let (files, start) = (v.files.clone(), v.start);
                    Next::File { files, start, from: v.file_start(page.cursor), until: v.tail_pos, tail_first }
                } else {
                    // Copy out (no more than the budget), then filter without the lock.
                    let i = v.tail.partition_point(|s| s.entry.offset <= page.cursor);
                    Next::Memory(v.tail.range(i..).take(budget).map(|s| s.entry.clone()).collect())
                }
            };
            match next {
                Next::Memory(entries) => {
                    if entries.is_empty() {
                        return Ok(page);
                    }
                    for e in entries {
                        if page.entries.len() >= limit || budget == 0 {
                            break;
                        }
                        budget -= 1;
                        page.cursor = e.offset;
                        if visible(&e) {
                            page.entries.push(e);
                        }
                    }
                }
                Next::File { files, start, from, until, tail_first } => {
                    let (visible, mut p) = (visible.clone(), std::mem::take(&mut page));
                    let (p, left, all_there) = blocking(move || {
                        let (mut left, mut prev, mut complete) = (budget, 0, true);
                        let all_there = scan_segments(&files, from, until, Missing::Stop, |_, e| {
                            let Some(e) = e() else { return Scan::Skip };
                            if e.offset <= prev.max(p.cursor) {
                                prev = prev.max(e.offset);
                                return Scan::Skip;
                            }
                            prev = e.offset;
                            if p.entries.len() >= limit || left == 0 {
                                complete = false;
                                return Scan::Stop;
                            }
                            left -= 1;
                            p.cursor = e.offset;
                            if visible(&e) {
                                p.entries.push(Arc::new(e));
                            }
                            Scan::Skip
                        })?;
                        if complete && all_there {
                            // Every entry before the tail was looked at.
                            p.cursor = p.cursor.max(tail_first - 1);
                        }
                        Ok((p, left, all_there))
                    })
                    .await?;
                    page = p;
                    budget = left;
                    if !all_there && self.view.read().map_err(|_| lock_poisoned())?.start <= start {
                        // Not the retention (it moves the start first): someone else's doing.
                        return Err(io::Error::new(io::ErrorKind::NotFound, "a segment of the event log is missing"));
                    }
                }
            }
        }
    }
}

enum Scan {
    Skip,
    Stop,
}

/// What [`scan_segments`] does when a file is gone.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Missing {
    Skip,
    Stop,
}

/// Reads the complete lines of the segments between global positions `from` and `until`,
/// calling `f` with each line and a parser for it, until it says stop. Gives false when a file
/// was missing (deleted by the retention since `files` was taken); the scan then stopped there
/// or went on with the next file, as `missing` says.
fn scan_segments(
    files: &[SegFile],
    from: u64,
    until: u64,
    missing: Missing,
    mut f: impl FnMut(&[u8], &dyn Fn() -> Option<LogEntry>) -> Scan,
) -> io::Result<bool> {
    let mut all_there = true;
    for (i, seg) in files.iter().enumerate() {
        let seg_end = files.get(i + 1).map_or(u64::MAX, |n| n.start).min(until);
        if seg.start >= until {
            break;
        }
        if seg_end <= from.max(seg.start) {
            continue;
        }
        let file = match File::open(&seg.path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                all_there = false;
                match missing {
                    Missing::Skip => continue,
                    Missing::Stop => break,
                }
            }
            Err(e) => return Err(e),
        };
        let local = from.saturating_sub(seg.start);
        if let Scan::Stop = scan_file(file, local, seg_end - seg.start, &mut f)? {
            break;
        }
    }
    Ok(all_there)
}

/// Reads the complete lines of one file between byte `from` and `until`, calling `f` with each
/// line and a parser for it, until it says stop (then gives [`Scan::Stop`]).
fn scan_file(
    mut file: File,
    from: u64,
    until: u64,
    f: &mut impl FnMut(&[u8], &dyn Fn() -> Option<LogEntry>) -> Scan,
) -> io::Result<Scan> {
    file.seek(SeekFrom::Start(from))?;
    let mut reader = BufReader::with_capacity(64 << 10, file);
    let mut line = Vec::new();
    let mut pos = from;
    while pos < until {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)? as u64;
        if n == 0 || line.last() != Some(&b'\n') {
            break;
        }
        pos += n;
        if let Scan::Stop = f(&line, &|| parse_line(&line)) {
            return Ok(Scan::Stop);
        }
    }
    Ok(Scan::Skip)
}

impl Appender<'_> {
    /// The offset the next new entry gets.
    pub fn next_offset(&self) -> u64 {
        self.w.head + 1
    }

    /// Appends (and fsyncs) `entry`, whose offset must be [`Appender::next_offset`], unless its
    /// idempotency key was used within the window. On an error nothing was appended and the
    /// offset is still free. With a retention, it may start a new segment first, and delete the
    /// segments it puts past the retention after.
    pub async fn append(&mut self, entry: LogEntry) -> io::Result<Appended> {
        let now = clock::now_ms();
        if let Some((id, offset)) = entry.idempotency_key.as_deref().and_then(|k| self.w.keys.get(k, now)) {
            return Ok(Appended::Replayed { id, offset });
        }
        if entry.offset != self.next_offset() {
            return Err(io::Error::other("log entry offset out of sequence"));
        }
        let mut line = serde_json::to_vec(&entry).map_err(io::Error::other)?;
        line.push(b'\n');
        let len = line.len() as u64;
        let limits = self.log.limits;
        let roll: Option<Arc<Path>> = self
            .w
            .rolls(&limits, len, entry.ts_ms)
            .then(|| self.log.dir.join(format!("{}.{}.jsonl", self.log.tenant, entry.offset)).into());
        let (file, end, dirty) = (self.w.file.clone(), self.w.end, self.w.dirty);
        let (dir, new_path) = (self.log.dir.clone(), roll.clone());
        // Ok(Ok(a new segment's file)), or Ok(Err((error, still dirty))): the write failed, and
        // the cut after it too when dirty.
        let outcome = blocking(move || {
            let mut f = &*file;
            if dirty && let Err(e) = f.set_len(end).and_then(|()| f.sync_all()) {
                return Ok(Err((e, true)));
            }
            let Some(path) = new_path else {
                let write = (|| {
                    f.seek(SeekFrom::Start(end))?;
                    f.write_all(&line)?;
                    f.sync_data()
                })();
                return Ok(write.map(|()| None).map_err(|e| {
                    // Take the failed line back out, so the next append starts on a clean line.
                    let cut = f.set_len(end).and_then(|()| f.sync_all());
                    (e, cut.is_err())
                }));
            };
            // A new segment: created empty (whatever a failed start of it left is no event),
            // its name durable before the line goes in. The old one ends on a complete line.
            let created = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path);
            let new = match created.and_then(|new| sync_dir(&dir).map(|()| new)) {
                Ok(new) => new,
                Err(e) => return Ok(Err((e, false))),
            };
            let write = (|| {
                let mut n = &new;
                n.write_all(&line)?;
                n.sync_data()
            })();
            Ok(match write {
                Ok(()) => Ok(Some(new)),
                Err(e) => {
                    // Left for the next append, which starts the segment again from empty.
                    let _ = new.set_len(0);
                    Err((e, false))
                }
            })
        })
        .await;
        let new_file = match outcome {
            Ok(Ok(new_file)) => new_file,
            Ok(Err((e, still_dirty))) => {
                self.w.dirty = still_dirty;
                if still_dirty {
                    tracing::error!(tenant = %self.log.tenant, "could not cut a failed append off the log; appends are refused until it can");
                }
                return Err(e);
            }
            Err(e) => {
                self.w.dirty = true;
                return Err(e);
            }
        };
        self.w.dirty = false;
        let rolled = match (new_file, roll) {
            (Some(new_file), Some(path)) => {
                let start = self.w.segments.back().map_or(0, |s| s.start) + self.w.end;
                self.w.segments.push_back(Segment::new(path, start));
                self.w.file = Arc::new(new_file);
                self.w.end = 0;
                true
            }
            _ => false,
        };
        let offset = entry.offset;
        let end = self.w.end;
        let Some(seg) = self.w.segments.back_mut() else {
            return Err(io::Error::other("an event log without a segment"));
        };
        let pos = seg.start + end;
        seg.add(offset, entry.ts_ms);
        let segment_start = seg.entries == 1;
        self.w.entries += 1;
        self.w.end += len;
        self.w.head = offset;
        if let Some(k) = &entry.idempotency_key {
            self.w.keys.insert(k, offset, &entry.envelope.id, entry.ts_ms, now);
        }
        let gone = {
            let mut v = self.log.view.write().map_err(|_| lock_poisoned())?;
            if rolled {
                v.files = self.w.files();
            }
            v.push(pos, len, Arc::new(entry), &limits, segment_start);
            match self.w.expired(&limits, now) {
                0 => Vec::new(),
                n => self.w.drop_oldest(n, &mut v),
            }
        };
        if !gone.is_empty() {
            let (dir, tenant) = (self.log.dir.clone(), self.log.tenant.clone());
            // The event is logged whatever this does (a failure is logged and left to the next start).
            let _ = blocking(move || {
                remove_segments(&dir, &tenant, &gone);
                Ok(())
            })
            .await;
        }
        Ok(Appended::New(offset))
    }
}

/// Every tenant's log.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    limits: Limits,
    tenants: std::sync::Mutex<HashMap<String, Arc<TenantLog>>>,
}

/// The tenant and the first offset of a log file's name: `<tenant>.jsonl` (0: the first
/// segment) or `<tenant>.<offset>.jsonl`.
fn segment_name(name: &str) -> Option<(&str, u64)> {
    let stem = name.strip_suffix(".jsonl")?;
    let (tenant, base) = match stem.split_once('.') {
        None => (stem, 0),
        Some((tenant, base)) if !base.is_empty() && base.bytes().all(|b| b.is_ascii_digit()) => {
            (tenant, base.parse().ok()?)
        }
        Some(_) => return None,
    };
    valid_id(tenant).then_some((tenant, base))
}

impl Store {
    /// Opens (creating) `<data_dir>/events` and loads every tenant's log (its tail), deleting
    /// what is past the retention.
    pub fn open(data_dir: &Path, limits: Limits) -> io::Result<Store> {
        let dir = data_dir.join("events");
        std::fs::create_dir_all(&dir)?;
        let mut found: HashMap<String, Vec<(u64, PathBuf)>> = HashMap::new();
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let Some((tenant, base)) = path.file_name().and_then(|n| n.to_str()).and_then(segment_name) else {
                continue;
            };
            found.entry(tenant.to_string()).or_default().push((base, path));
        }
        let mut tenants = HashMap::new();
        for (tenant, files) in found {
            let log = TenantLog::open(&dir, &tenant, files, limits)?;
            tracing::info!(
                tenant,
                events = log.head(),
                first = log.first_offset(),
                segments = log.segments(),
                in_memory = log.in_memory(),
                "loaded event log"
            );
            tenants.insert(tenant, Arc::new(log));
        }
        Ok(Store { dir, limits, tenants: std::sync::Mutex::new(tenants) })
    }

    /// The log of `tenant` (a valid id), created on first use.
    pub fn tenant(&self, tenant: &str) -> io::Result<Arc<TenantLog>> {
        if !valid_id(tenant) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "invalid tenant id"));
        }
        let mut map = self.tenants.lock().map_err(|_| io::Error::other("store lock poisoned"))?;
        if let Some(log) = map.get(tenant) {
            return Ok(log.clone());
        }
        let log = Arc::new(TenantLog::open(&self.dir, tenant, Vec::new(), self.limits)?);
        map.insert(tenant.to_string(), log.clone());
        Ok(log)
    }

    /// The log of `tenant` if it has one.
    pub fn existing(&self, tenant: &str) -> Option<Arc<TenantLog>> {
        self.tenants.lock().ok()?.get(tenant).cloned()
    }

    /// Deletes what is past the retention in every tenant's log (see
    /// [`TenantLog::enforce_retention`]); failures are logged.
    pub async fn enforce_retention(&self) {
        let logs: Vec<Arc<TenantLog>> = match self.tenants.lock() {
            Ok(map) => map.values().cloned().collect(),
            Err(_) => return,
        };
        for log in logs {
            if let Err(e) = log.enforce_retention().await {
                tracing::warn!(tenant = %log.tenant, error = %e, "could not apply the retention");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(offset: u64, key: Option<&str>) -> LogEntry {
        LogEntry {
            offset,
            rooms: vec![if offset.is_multiple_of(3) { "user:bob".into() } else { "tenant:acme".into() }],
            ts_ms: offset as i64 * 1000,
            idempotency_key: key.map(str::to_string),
            envelope: Envelope {
                id: format!("evt_{offset:032x}"),
                kind: "task.created".into(),
                version: 1,
                timestamp: String::new(),
                source: "test".into(),
                data: Value::Null,
                metadata: Metadata { tenant_id: "acme".into(), ..Metadata::default() },
            },
        }
    }

    /// The entries' times are in 1970: keys never expire in these tests.
    fn test_limits() -> Limits {
        Limits { idempotency_ttl: Duration::MAX, ..Limits::default() }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tidings-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    async fn append(log: &TenantLog, offset: u64, key: Option<&str>) -> Appended {
        log.appender().await.append(entry(offset, key)).await.unwrap()
    }

    async fn offsets(log: &TenantLog, after: u64, limit: usize, user: &'static str) -> (Vec<u64>, u64) {
        let page = log.read(after, limit, move |e| e.visible_to(user, "acme")).await.unwrap();
        (page.entries.iter().map(|e| e.offset).collect(), page.cursor)
    }

    #[tokio::test]
    async fn appends_reloads_and_cuts_a_torn_tail() {
        let dir = temp_dir("reload");
        let store = Store::open(&dir, test_limits()).unwrap();
        let log = store.tenant("acme").unwrap();
        assert_eq!(append(&log, 1, Some("k")).await, Appended::New(1));
        assert_eq!(append(&log, 2, None).await, Appended::New(2));
        assert_eq!(append(&log, 3, Some("k")).await, Appended::Replayed { id: entry(1, None).envelope.id, offset: 1 });
        assert!(log.appender().await.append(entry(9, None)).await.is_err());
        drop((log, store));
        let path = dir.join("events/acme.jsonl");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"offset\":3,\"roo").unwrap();
        drop(f);
        let store = Store::open(&dir, test_limits()).unwrap();
        let log = store.existing("acme").unwrap();
        assert_eq!(log.head(), 2);
        assert_eq!(log.offset_of(&entry(2, None).envelope.id).await.unwrap(), Some(2));
        assert_eq!(log.offset_at_time(1500).await.unwrap(), 1);
        assert_eq!(offsets(&log, 1, 10, "alice").await, (vec![2], 2));
        assert_eq!(append(&log, 3, Some("k")).await, Appended::Replayed { id: entry(1, None).envelope.id, offset: 1 });
        assert_eq!(append(&log, 3, None).await, Appended::New(3));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(text.ends_with('\n'));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_whole_line_after_a_torn_one_is_recovered_and_gaps_do_not_hide_later_lines() {
        let dir = temp_dir("salvage");
        std::fs::create_dir_all(dir.join("events")).unwrap();
        let line = |o| format!("{}\n", serde_json::to_string(&entry(o, None)).unwrap());
        // What an older version could leave: a failed write's bytes, then the next (acknowledged)
        // line right after them; an unreadable line; a duplicated offset; a gap.
        let text = [
            line(1),
            format!("{{\"offset\":2,\"rooms\":[\"ten{}", line(2)),
            "garbage\n".into(),
            line(2),
            line(5),
            line(6),
            "{\"offset\":7,\"ro".into(),
        ]
        .concat();
        std::fs::write(dir.join("events/acme.jsonl"), &text).unwrap();
        let store = Store::open(&dir, test_limits()).unwrap();
        let log = store.existing("acme").unwrap();
        assert_eq!(log.head(), 6);
        assert_eq!(offsets(&log, 0, 10, "bob").await, (vec![1, 2, 5, 6], 6));
        assert_eq!(append(&log, 7, None).await, Appended::New(7));
        let on_disk = std::fs::read_to_string(dir.join("events/acme.jsonl")).unwrap();
        assert!(on_disk.starts_with(&text[..text.len() - "{\"offset\":7,\"ro".len()]), "complete lines are kept");
        assert!(on_disk.ends_with(&line(7)));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_failed_write_is_cut_off_before_the_next_append() {
        let dir = temp_dir("dirty");
        let store = Store::open(&dir, test_limits()).unwrap();
        let log = store.tenant("acme").unwrap();
        append(&log, 1, None).await;
        // A write that failed half way, and whose cut failed too.
        let path = dir.join("events/acme.jsonl");
        OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"offset\":2,\"rooms\":[\"te").unwrap();
        log.writer.lock().await.dirty = true;
        assert_eq!(append(&log, 2, None).await, Appended::New(2));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().map(|l| parse_line(l.as_bytes()).unwrap().offset).collect::<Vec<_>>(), [1, 2]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn only_a_tail_is_in_memory_and_older_entries_come_from_the_file() {
        let dir = temp_dir("tail");
        let limits = Limits { memory_events: 4, ..test_limits() };
        let store = Store::open(&dir, limits).unwrap();
        let log = store.tenant("acme").unwrap();
        for o in 1..=2000 {
            append(&log, o, None).await;
        }
        assert_eq!(log.in_memory(), 4);
        let all: Vec<u64> = (1..=2000).filter(|o| o % 3 != 0).collect();
        assert_eq!(offsets(&log, 0, 1000, "alice").await, (all[..1000].to_vec(), all[999]));
        assert_eq!(offsets(&log, all[999], 1000, "alice").await, (all[1000..].to_vec(), 2000));
        assert_eq!(offsets(&log, 1500, 2, "bob").await, (vec![1501, 1502], 1502));
        assert_eq!(offsets(&log, 1990, 100, "bob").await.0, (1991..=2000).collect::<Vec<_>>());
        assert_eq!(offsets(&log, 2000, 100, "bob").await, (vec![], 2000));
        assert_eq!(log.offset_of(&entry(700, None).envelope.id).await.unwrap(), Some(700));
        assert_eq!(log.recent_offset_of(&entry(700, None).envelope.id), None);
        assert_eq!(log.offset_of("evt_0123456789abcdef0123456789abcdef").await.unwrap(), None);
        assert_eq!(log.offset_at_time(1_234_500).await.unwrap(), 1234);
        assert_eq!(log.offset_at_time(1_999_000).await.unwrap(), 1999);
        assert_eq!(log.offset_at_time(10).await.unwrap(), 0);
        // Bytes bound the tail too, and reloading keeps it bounded.
        drop((log, store));
        let limits = Limits { memory_events: 1000, memory_bytes: 2000, ..test_limits() };
        let store = Store::open(&dir, limits).unwrap();
        let log = store.existing("acme").unwrap();
        assert!((1..=10).contains(&log.in_memory()), "{}", log.in_memory());
        assert_eq!(log.head(), 2000);
        assert_eq!(offsets(&log, 0, 1000, "bob").await.0, (1..=1000).collect::<Vec<_>>());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_feed_read_looks_at_max_scan_entries_at_most() {
        let dir = temp_dir("scan");
        std::fs::create_dir_all(dir.join("events")).unwrap();
        let mut text = String::new();
        for o in 1..=(MAX_SCAN as u64 + 10) {
            let mut e = entry(o, None);
            e.rooms = vec!["user:bob".into()];
            text.push_str(&serde_json::to_string(&e).unwrap());
            text.push('\n');
        }
        std::fs::write(dir.join("events/acme.jsonl"), text).unwrap();
        let store = Store::open(&dir, Limits { memory_events: 100, ..test_limits() }).unwrap();
        let log = store.existing("acme").unwrap();
        let page = log.read(0, 10, |e| e.visible_to("alice", "acme")).await.unwrap();
        assert_eq!((page.entries.len(), page.cursor, page.head), (0, MAX_SCAN as u64, MAX_SCAN as u64 + 10));
        let page = log.read(page.cursor, 10, |e| e.visible_to("alice", "acme")).await.unwrap();
        assert_eq!((page.entries.len(), page.cursor), (0, page.head));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The names of the log files, sorted.
    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir.join("events"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    /// Writes a segment file holding these offsets, as the server would have.
    fn write_segment(dir: &Path, name: &str, offsets: std::ops::RangeInclusive<u64>) {
        std::fs::create_dir_all(dir.join("events")).unwrap();
        let text: String = offsets.map(|o| format!("{}\n", serde_json::to_string(&entry(o, None)).unwrap())).collect();
        std::fs::write(dir.join("events").join(name), text).unwrap();
    }

    async fn page(log: &TenantLog, after: u64, limit: usize) -> (Vec<u64>, Option<(u64, u64)>) {
        let page = log.read(after, limit, |e| e.visible_to("bob", "acme")).await.unwrap();
        (page.entries.iter().map(|e| e.offset).collect(), page.truncated)
    }

    #[tokio::test]
    async fn retention_by_count_deletes_whole_old_segments_and_reads_say_what_is_gone() {
        let dir = temp_dir("retain-count");
        // Segments of 2 events (a quarter of 8); 3 entries in memory, so reads go to the files.
        let limits = Limits { memory_events: 3, retain_events: 8, ..test_limits() };
        assert_eq!(limits.segment_events(), 2);
        let store = Store::open(&dir, limits).unwrap();
        let log = store.tenant("acme").unwrap();
        for o in 1..=30 {
            assert_eq!(append(&log, o, (o == 25).then_some("k25")).await, Appended::New(o));
            let first = log.first_offset();
            assert!(o - first + 1 >= 8.min(o), "the newest 8 are always kept: {first} at {o}");
            assert!(o - first < 8 + 2, "no more than a segment more: {first} at {o}");
        }
        // [21, 22] went once 23..=30 (8 events) were there; [23, 24] has only 6 newer.
        assert_eq!((log.first_offset(), log.head(), log.segments()), (23, 30, 4));
        assert_eq!(files(&dir), ["acme.23.jsonl", "acme.25.jsonl", "acme.27.jsonl", "acme.29.jsonl"]);
        assert_eq!(page(&log, 0, 100).await, ((23..=30).collect(), Some((1, 22))));
        assert_eq!(page(&log, 10, 100).await, ((23..=30).collect(), Some((11, 22))));
        assert_eq!(page(&log, 0, 3).await, (vec![23, 24, 25], Some((1, 22))));
        assert_eq!(page(&log, 21, 100).await, ((23..=30).collect(), Some((22, 22))));
        assert_eq!(page(&log, 22, 100).await, ((23..=30).collect(), None));
        assert_eq!(page(&log, 25, 2).await, (vec![26, 27], None));
        assert_eq!(log.offset_of(&entry(5, None).envelope.id).await.unwrap(), None, "deleted");
        assert_eq!(log.offset_of(&entry(24, None).envelope.id).await.unwrap(), Some(24), "from the files");
        assert_eq!(log.offset_at_time(5_500).await.unwrap(), 0, "before the oldest kept: from the start");
        assert_eq!(log.offset_at_time(24_500).await.unwrap(), 24);
        assert_eq!(
            append(&log, 31, Some("k25")).await,
            Appended::Replayed { id: entry(25, None).envelope.id, offset: 25 }
        );

        // Reloaded: the same log; offsets go on from the head.
        drop((log, store));
        let store = Store::open(&dir, limits).unwrap();
        let log = store.existing("acme").unwrap();
        assert_eq!((log.first_offset(), log.head()), (23, 30));
        assert_eq!(page(&log, 0, 100).await, ((23..=30).collect(), Some((1, 22))));
        assert_eq!(
            append(&log, 31, Some("k25")).await,
            Appended::Replayed { id: entry(25, None).envelope.id, offset: 25 }
        );
        assert_eq!(append(&log, 31, None).await, Appended::New(31));
        assert_eq!(page(&log, 29, 100).await, (vec![30, 31], None));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn retention_by_age_deletes_segments_whose_events_are_all_older() {
        let dir = temp_dir("retain-age");
        let minute = 60_000;
        let now = clock::now_ms();
        // Event o was logged (12 - o) * 10 + 5 minutes ago: 1 is 115 minutes old, 12 is 5.
        let at = |o: u64| LogEntry { ts_ms: now - ((12 - o as i64) * 10 + 5) * minute, ..entry(o, None) };
        // A segment spans at most 15 minutes (a quarter of the hour): two events each.
        let limits = Limits { memory_events: 2, retain_age: Some(Duration::from_secs(3600)), ..test_limits() };
        let store = Store::open(&dir, limits).unwrap();
        let log = store.tenant("acme").unwrap();
        for o in 1..=12 {
            log.appender().await.append(at(o)).await.unwrap();
        }
        // Appends delete as they go: [5, 6] is 65 minutes old, [7, 8] 45 at the newest.
        assert_eq!((log.first_offset(), log.segments()), (7, 3));
        assert_eq!(page(&log, 0, 100).await, ((7..=12).collect(), Some((1, 6))));
        let future = |m: i64| now + m * minute;
        assert_eq!(log.enforce_retention_at(future(10)).await.unwrap(), 0, "8 is 55 minutes old");
        assert_eq!(log.enforce_retention_at(future(30)).await.unwrap(), 1);
        assert_eq!(page(&log, 0, 100).await, ((9..=12).collect(), Some((1, 8))));
        // Ages later, the last segment stays: the offsets go on from it.
        assert_eq!(log.enforce_retention_at(future(600)).await.unwrap(), 1);
        assert_eq!(log.enforce_retention_at(future(6000)).await.unwrap(), 0);
        assert_eq!((log.first_offset(), log.head()), (11, 12));
        assert_eq!(files(&dir), ["acme.11.jsonl"]);
        assert_eq!(log.offset_at_time(now).await.unwrap(), 12);
        // A new event now: a new segment (11 is 25 minutes older), nothing else goes.
        let fresh = LogEntry { ts_ms: now, ..entry(13, None) };
        assert_eq!(log.appender().await.append(fresh).await.unwrap(), Appended::New(13));
        assert_eq!(files(&dir), ["acme.11.jsonl", "acme.13.jsonl"]);
        drop((log, store));
        // Reloaded with both limits: either deletes (the count here).
        let both = Limits { retain_events: 1, ..limits };
        let store = Store::open(&dir, both).unwrap();
        let log = store.existing("acme").unwrap();
        assert_eq!((log.first_offset(), log.head()), (13, 13));
        assert_eq!(files(&dir), ["acme.13.jsonl"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_log_without_retention_keeps_one_file_and_takes_one_on_when_retention_is_set() {
        let dir = temp_dir("retain-migrate");
        write_segment(&dir, "acme.jsonl", 1..=50);
        let store = Store::open(&dir, test_limits()).unwrap();
        let log = store.existing("acme").unwrap();
        for o in 51..=60 {
            append(&log, o, None).await;
        }
        assert_eq!(files(&dir), ["acme.jsonl"], "no retention: one file, as before");
        drop((log, store));
        let limits = Limits { retain_events: 8, ..test_limits() };
        let store = Store::open(&dir, limits).unwrap();
        let log = store.existing("acme").unwrap();
        assert_eq!(log.first_offset(), 1, "nothing goes while the newest 8 share the file");
        append(&log, 61, None).await;
        assert_eq!(files(&dir), ["acme.61.jsonl", "acme.jsonl"], "the next event starts a segment");
        assert_eq!(page(&log, 0, 100).await, ((1..=61).collect(), None));
        for o in 62..=67 {
            append(&log, o, None).await;
            assert_eq!(log.first_offset(), 1, "7 newer at most");
        }
        append(&log, 68, None).await;
        assert_eq!(log.first_offset(), 61, "8 newer: the old file goes whole");
        assert!(!files(&dir).contains(&"acme.jsonl".to_string()));
        append(&log, 69, None).await;
        assert_eq!(page(&log, 0, 100).await, ((61..=69).collect(), Some((1, 60))));
        // Retention off again: the last segment grows on.
        drop((log, store));
        let store = Store::open(&dir, test_limits()).unwrap();
        let log = store.existing("acme").unwrap();
        for o in 70..=80 {
            append(&log, o, None).await;
        }
        assert_eq!(files(&dir), ["acme.61.jsonl", "acme.63.jsonl", "acme.65.jsonl", "acme.67.jsonl", "acme.69.jsonl"]);
        assert_eq!(page(&log, 0, 100).await, ((61..=80).collect(), Some((1, 60))));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// What a crash at each step leaves, loaded again: every retained event, offsets growing.
    #[tokio::test]
    async fn a_crash_at_any_step_of_a_segment_change_leaves_a_readable_log() {
        let limits = Limits { memory_events: 2, retain_events: 8, ..test_limits() };

        // Right after a new segment was created, before its first line: it is the one written to.
        let dir = temp_dir("crash-created");
        write_segment(&dir, "acme.jsonl", 1..=2);
        write_segment(&dir, "acme.3.jsonl", 3..=4);
        std::fs::write(dir.join("events/acme.5.jsonl"), "").unwrap();
        let store = Store::open(&dir, limits).unwrap();
        let log = store.existing("acme").unwrap();
        assert_eq!((log.first_offset(), log.head(), log.segments()), (1, 4, 3));
        assert_eq!(append(&log, 5, None).await, Appended::New(5));
        assert_eq!(std::fs::read_to_string(dir.join("events/acme.5.jsonl")).unwrap().lines().count(), 1);
        assert_eq!(page(&log, 0, 100).await, ((1..=5).collect(), None));
        drop((log, store));

        // During the first write into the next one (its cut failed too): the torn line is cut
        // off, the segment goes on from empty with the offset in its name.
        assert_eq!(
            append(&Store::open(&dir, limits).unwrap().existing("acme").unwrap(), 6, None).await,
            Appended::New(6)
        );
        std::fs::write(dir.join("events/acme.7.jsonl"), "{\"offset\":7,\"rooms\":[\"te").unwrap();
        let store = Store::open(&dir, limits).unwrap();
        let log = store.existing("acme").unwrap();
        assert_eq!((log.head(), log.segments()), (6, 4));
        assert_eq!(std::fs::read_to_string(dir.join("events/acme.7.jsonl")).unwrap(), "");
        assert_eq!(append(&log, 7, None).await, Appended::New(7));
        assert_eq!(append(&log, 8, None).await, Appended::New(8));
        assert_eq!(page(&log, 0, 100).await, ((1..=8).collect(), None));
        assert_eq!(files(&dir), ["acme.3.jsonl", "acme.5.jsonl", "acme.7.jsonl", "acme.jsonl"]);
        drop((log, store));
        let _ = std::fs::remove_dir_all(&dir);

        // In the middle of a deletion: the oldest segments gone, the next ones due still there
        // (not yet unlinked, or unlinked and brought back by the crash). Loading finishes it.
        let dir = temp_dir("crash-deleting");
        for base in (5..=29).step_by(2) {
            write_segment(&dir, &format!("acme.{base}.jsonl"), base..=base + 1);
        }
        let store = Store::open(&dir, limits).unwrap();
        let log = store.existing("acme").unwrap();
        assert_eq!((log.first_offset(), log.head()), (23, 30));
        assert_eq!(files(&dir), ["acme.23.jsonl", "acme.25.jsonl", "acme.27.jsonl", "acme.29.jsonl"]);
        assert_eq!(page(&log, 0, 100).await, ((23..=30).collect(), Some((1, 22))));
        assert_eq!(append(&log, 31, None).await, Appended::New(31));
        drop((log, store));
        // Without a retention the same files are a log that starts at 23.
        let store = Store::open(&dir, test_limits()).unwrap();
        let log = store.existing("acme").unwrap();
        assert_eq!(page(&log, 0, 100).await, ((23..=31).collect(), Some((1, 22))));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A read that took its positions before a deletion never reads other data: the files are
    /// never rewritten; one it has open reads on, one deleted is missing, and then the page ends
    /// there and the next read says what is gone.
    #[tokio::test]
    async fn a_read_overtaken_by_a_deletion_never_reads_other_data() {
        let dir = temp_dir("overtaken");
        // Segments of 1 event, the newest 4 kept, 1 in memory.
        let limits = Limits { memory_events: 1, retain_events: 4, ..test_limits() };
        let store = Store::open(&dir, limits).unwrap();
        let log = store.tenant("acme").unwrap();
        for o in 1..=10 {
            append(&log, o, None).await;
        }
        assert_eq!(files(&dir), ["acme.10.jsonl", "acme.7.jsonl", "acme.8.jsonl", "acme.9.jsonl"]);
        let stale = {
            let v = log.view.read().unwrap();
            (v.files.clone(), v.file_start(6), v.tail_pos)
        };
        // A reader from 6 stops in the middle of file 7 (its visibility check waits)...
        let (in_scan, go) = (Arc::new(tokio::sync::Notify::new()), Arc::new(std::sync::Barrier::new(2)));
        let reader = {
            let (log, in_scan, go) = (log.clone(), in_scan.clone(), go.clone());
            tokio::spawn(async move {
                log.read(6, 100, move |e| {
                    if e.offset == 7 {
                        in_scan.notify_one();
                        go.wait();
                    }
                    true
                })
                .await
                .unwrap()
            })
        };
        in_scan.notified().await;
        // ... while appends delete 7 (open), 8 and 9 (not opened yet) and 10.
        for o in 11..=14 {
            append(&log, o, None).await;
        }
        assert_eq!(files(&dir), ["acme.11.jsonl", "acme.12.jsonl", "acme.13.jsonl", "acme.14.jsonl"]);
        go.wait();
        let p = reader.await.unwrap();
        assert_eq!(p.entries.iter().map(|e| (**e).clone()).collect::<Vec<_>>(), [entry(7, None)]);
        assert_eq!((p.cursor, p.truncated), (7, None), "the page ends before what is gone");
        assert_eq!(page(&log, 7, 100).await, ((11..=14).collect(), Some((8, 10))));
        // The positions taken before find the deleted files missing, never other data.
        let mut read = Vec::new();
        let all_there = scan_segments(&stale.0, stale.1, stale.2, Missing::Stop, |_, e| {
            read.push(e());
            Scan::Skip
        })
        .unwrap();
        assert!(!all_there && read.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Readers following the log while appends delete behind them: every entry they get is the
    /// right one, in order, and every offset is either read once or reported gone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn readers_racing_deletions_get_every_kept_entry_once_or_hear_it_is_gone() {
        let dir = temp_dir("race");
        const N: u64 = 1500;
        let limits = Limits { memory_events: 5, retain_events: 40, ..test_limits() };
        let store = Store::open(&dir, limits).unwrap();
        let log = store.tenant("acme").unwrap();
        let writer = {
            let log = log.clone();
            tokio::spawn(async move {
                for o in 1..=N {
                    append(&log, o, None).await;
                }
            })
        };
        // One reader keeps up; one reads an entry at a time with a pause, and falls behind the
        // retention again and again.
        let readers: Vec<_> = [(7, 0), (1, 5)]
            .into_iter()
            .map(|(limit, pause_ms)| {
                let log = log.clone();
                tokio::spawn(async move {
                    let (mut after, mut seen, mut rounds, mut gaps) = (0u64, 0u64, 0u32, 0u32);
                    while after < N {
                        rounds += 1;
                        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
                        let p = log.read(after, limit, |_| true).await.unwrap();
                        if let Some((from, to)) = p.truncated {
                            assert_eq!(from, after + 1, "a gap only at the start of a page");
                            assert!(to >= from);
                            gaps += 1;
                            seen += to - from + 1;
                            after = to;
                        }
                        for e in &p.entries {
                            assert_eq!(**e, entry(e.offset, None), "the right entry");
                            assert_eq!(e.offset, after + 1, "in order, none missed");
                            after = e.offset;
                            seen += 1;
                        }
                        after = after.max(p.cursor);
                        if p.entries.is_empty() {
                            tokio::task::yield_now().await;
                        }
                    }
                    assert_eq!(seen, N, "every offset once: read or reported gone");
                    (rounds, gaps)
                })
            })
            .collect();
        writer.await.unwrap();
        let mut results = Vec::new();
        for r in readers {
            results.push(r.await.unwrap());
        }
        assert!(results[1].1 > 1, "the slow reader fell behind the retention: {results:?}");
        assert!(log.first_offset() > N - 40 - 10 - 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_key_window_forgets_by_count_and_by_age() {
        let limits = Limits { idempotency_keys: 2, idempotency_ttl: Duration::from_secs(60), ..Limits::default() };
        let mut w = KeyWindow::new(&limits);
        let now = 1_000_000;
        w.insert("a", 1, "evt_a", now, now);
        w.insert("b", 2, "evt_b", now, now);
        assert_eq!(w.get("a", now), Some(("evt_a".into(), 1)));
        w.insert("c", 3, "evt_c", now, now);
        assert_eq!(w.get("a", now), None, "the oldest of three keys is forgotten");
        assert_eq!(w.get("b", now + 59_000), Some(("evt_b".into(), 2)), "a retry inside the window");
        assert_eq!(w.get("b", now + 61_000), None, "a minute later");
        assert!(w.map.is_empty() && w.order.is_empty());
        // A key reused after it was forgotten is a new key; the old entry does not evict it.
        w.insert("a", 4, "evt_a2", now, now);
        w.insert("a", 5, "evt_a3", now + 1, now + 1);
        w.insert("d", 6, "evt_d", now + 2, now + 2);
        assert_eq!(w.get("a", now + 2), Some(("evt_a3".into(), 5)));
    }
}
