//! The durable event log: one append-only JSON-lines file per tenant
//! (`<data-dir>/events/<tenantId>.jsonl`), fsync'd before an event is broadcast.
//!
//! Offsets are per tenant, start at 1 and grow by one per event. Each line is one [`LogEntry`].
//!
//! # Writes
//!
//! A line is written whole at the end of the last complete line, then fsync'd; only then does
//! the event get its offset in memory (and go out). A write or fsync that fails is cut off the
//! file again (`set_len`), so the next event takes the same offset and nobody ever saw the failed
//! one; if even that cut fails, the log refuses appends (retrying the cut first each time) rather
//! than write after garbage. [`crate::app::App::publish`] runs each append in its own task, so a
//! cancelled request never stops one half way.
//!
//! # Recovery at start
//!
//! The file is read line by line. A torn last line (no newline: a crash or a failed write) is cut
//! off with a warning; every complete line is kept. A line that does not parse is skipped with a
//! warning; when it is a torn write with a whole line appended after it (as older versions could
//! leave), the whole line is recovered from it. Offsets must grow: a line whose offset is not
//! above the previous one is skipped, a gap is accepted.
//!
//! # Memory
//!
//! Only a tail of each log is in memory ([`Limits::memory_events`], [`Limits::memory_bytes`]),
//! with an index of the envelope ids in it. Older entries stay in the file: the feed reads them
//! from there, from a sparse index of byte positions (one every [`CHECKPOINT_EVERY`] entries).
//! Idempotency keys are remembered for a window ([`Limits::idempotency_keys`],
//! [`Limits::idempotency_ttl`]). Feed reads never take the append lock: they copy what they need
//! (at most [`MAX_SCAN`] entries) from the in-memory view under a short read lock, and read the
//! file without any lock. Nothing is ever deleted from the file.

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

/// How much of each log is kept in memory.
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
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_events: 10_000,
            memory_bytes: 8 << 20,
            idempotency_keys: 50_000,
            idempotency_ttl: Duration::from_secs(24 * 3600),
        }
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
        let ttl_ms = i64::try_from(limits.idempotency_ttl.as_millis()).unwrap_or(i64::MAX);
        KeyWindow { map: HashMap::new(), order: VecDeque::new(), max: limits.idempotency_keys, ttl_ms }
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

/// An entry of the in-memory tail, with where its line starts in the file and its length.
#[derive(Debug, Clone)]
struct Slot {
    pos: u64,
    len: u64,
    entry: Arc<LogEntry>,
}

/// A position in the file of an entry older than the tail.
#[derive(Debug, Clone, Copy)]
struct Checkpoint {
    offset: u64,
    pos: u64,
    ts_ms: i64,
}

/// What feed reads see: the tail in memory and the index of the rest of the file.
#[derive(Debug, Default)]
struct View {
    head: u64,
    tail: VecDeque<Slot>,
    tail_bytes: u64,
    /// Where the first entry of the tail starts: the file before it holds the evicted entries.
    tail_pos: u64,
    by_id: HashMap<String, u64>,
    checkpoints: Vec<Checkpoint>,
}

impl View {
    fn push(&mut self, pos: u64, len: u64, entry: Arc<LogEntry>, limits: &Limits) {
        if self.checkpoints.last().is_none_or(|c| entry.offset >= c.offset + CHECKPOINT_EVERY) {
            self.checkpoints.push(Checkpoint { offset: entry.offset, pos, ts_ms: entry.ts_ms });
        }
        if self.tail.is_empty() {
            self.tail_pos = pos;
        }
        self.head = entry.offset;
        self.by_id.insert(entry.envelope.id.clone(), entry.offset);
        self.tail_bytes += len;
        self.tail.push_back(Slot { pos, len, entry });
        let max_events = limits.memory_events.max(1);
        let max_bytes = u64::try_from(limits.memory_bytes).unwrap_or(u64::MAX);
        while self.tail.len() > max_events || (self.tail_bytes > max_bytes && self.tail.len() > 1) {
            let Some(old) = self.tail.pop_front() else { break };
            self.tail_bytes -= old.len;
            if self.by_id.get(&old.entry.envelope.id) == Some(&old.entry.offset) {
                self.by_id.remove(&old.entry.envelope.id);
            }
            self.tail_pos = self.tail.front().map_or(old.pos + old.len, |s| s.pos);
        }
    }

    /// Whether entries after `after` may be in the file before the tail.
    fn needs_file(&self, after: u64) -> bool {
        self.tail_pos > 0 && self.tail.front().is_none_or(|s| after + 1 < s.entry.offset)
    }

    /// The byte position to read the file from to find the entries after `after`.
    fn file_start(&self, after: u64) -> u64 {
        let i = self.checkpoints.partition_point(|c| c.offset <= after + 1);
        i.checked_sub(1).and_then(|i| self.checkpoints.get(i)).map_or(0, |c| c.pos)
    }
}

/// The writer's state, under the append lock.
#[derive(Debug)]
struct Writer {
    file: Arc<File>,
    /// Where the next line goes: the end of the last complete line.
    end: u64,
    head: u64,
    /// A write failed and the cut after it too: bytes after `end` may be garbage.
    dirty: bool,
    keys: KeyWindow,
}

/// One tenant's log.
#[derive(Debug)]
pub struct TenantLog {
    path: PathBuf,
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
}

fn lock_poisoned() -> io::Error {
    io::Error::other("event log lock poisoned")
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> io::Result<T> + Send + 'static) -> io::Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(io::Error::other)?
}

impl TenantLog {
    fn open(path: &Path, limits: Limits) -> io::Result<TenantLog> {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        let mut view = View::default();
        let mut keys = KeyWindow::new(&limits);
        let now = clock::now_ms();
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
            if e.offset > view.head + 1 {
                tracing::warn!(path = %path.display(), from = view.head + 1, to = e.offset - 1, "offsets missing from the log");
            }
            if let Some(k) = &e.idempotency_key {
                keys.insert(k, e.offset, &e.envelope.id, e.ts_ms, now);
            }
            view.push(at, n, Arc::new(e), &limits);
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
        let head = view.head;
        let writer = Writer { file: Arc::new(file), end, head, dirty: false, keys };
        Ok(TenantLog {
            path: path.to_path_buf(),
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

    /// How many entries are in memory (the tail), for tests and metrics.
    pub fn in_memory(&self) -> usize {
        self.view.read().map_or(0, |v| v.tail.len())
    }

    /// The offset of the event with this envelope id, if it is in the in-memory tail.
    pub fn recent_offset_of(&self, id: &str) -> Option<u64> {
        self.view.read().ok()?.by_id.get(id).copied()
    }

    /// The offset of the event with this envelope id: from memory, else by reading the file
    /// (outside every lock but one per tenant: one such search at a time).
    pub async fn offset_of(&self, id: &str) -> io::Result<Option<u64>> {
        let tail_pos = {
            let v = self.view.read().map_err(|_| lock_poisoned())?;
            if let Some(o) = v.by_id.get(id) {
                return Ok(Some(*o));
            }
            v.tail_pos
        };
        // Only envelope ids are looked for in the file: `evt_` and 32 hex digits.
        let looks_like_id =
            id.strip_prefix("evt_").is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        if tail_pos == 0 || !looks_like_id {
            return Ok(None);
        }
        let _one_at_a_time = self.id_scan.lock().await;
        let (path, needle) = (self.path.clone(), format!("\"id\":\"{id}\""));
        let id = id.to_string();
        blocking(move || {
            let mut found = None;
            scan_file(&path, 0, tail_pos, |line, e| {
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

    /// The offset of the last entry logged at or before `ms` (0 if none), for
    /// `since=<ISO timestamp>`; timestamps are taken to grow with offsets.
    pub async fn offset_at_time(&self, ms: i64) -> io::Result<u64> {
        let (from, until, before_tail) = {
            let v = self.view.read().map_err(|_| lock_poisoned())?;
            match v.tail.front() {
                Some(first) if first.entry.ts_ms > ms && v.tail_pos > 0 => {
                    let i = v.checkpoints.partition_point(|c| c.ts_ms <= ms);
                    let Some(cp) = i.checked_sub(1).and_then(|i| v.checkpoints.get(i)) else { return Ok(0) };
                    (cp.pos, v.tail_pos, cp.offset)
                }
                _ => {
                    let i = v.tail.partition_point(|s| s.entry.ts_ms <= ms);
                    let at = i.checked_sub(1).and_then(|i| v.tail.get(i)).map(|s| s.entry.offset);
                    return Ok(at.unwrap_or(0));
                }
            }
        };
        let path = self.path.clone();
        blocking(move || {
            let mut last = before_tail;
            scan_file(&path, from, until, |_, e| match e() {
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
    /// than [`MAX_SCAN`] entries. Never waits for an append.
    pub async fn read(
        &self,
        after: u64,
        limit: usize,
        visible: impl Fn(&LogEntry) -> bool + Send + Sync + 'static,
    ) -> io::Result<Page> {
        enum Next {
            File { from: u64, until: u64, tail_first: u64 },
            Memory(Vec<Arc<LogEntry>>),
        }
        let visible = Arc::new(visible);
        let mut page = Page { entries: Vec::new(), cursor: after, head: 0 };
        let mut budget = MAX_SCAN;
        loop {
            let next = {
                let v = self.view.read().map_err(|_| lock_poisoned())?;
                page.head = v.head;
                if page.cursor >= v.head || budget == 0 || page.entries.len() >= limit {
                    return Ok(page);
                }
                if v.needs_file(page.cursor) {
                    let tail_first = v.tail.front().map_or(v.head + 1, |s| s.entry.offset);
                    Next::File { from: v.file_start(page.cursor), until: v.tail_pos, tail_first }
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
                Next::File { from, until, tail_first } => {
                    let (path, visible, mut p) = (self.path.clone(), visible.clone(), std::mem::take(&mut page));
                    let (p, left) = blocking(move || {
                        let (mut left, mut prev, mut complete) = (budget, 0, true);
                        scan_file(&path, from, until, |_, e| {
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
                        if complete {
                            // Every entry before the tail was looked at.
                            p.cursor = p.cursor.max(tail_first - 1);
                        }
                        Ok((p, left))
                    })
                    .await?;
                    page = p;
                    budget = left;
                }
            }
        }
    }
}

enum Scan {
    Skip,
    Stop,
}

/// Reads the complete lines of the file between byte `from` and `until`, calling `f` with each
/// line and a parser for it, until it says stop.
fn scan_file(
    path: &Path,
    from: u64,
    until: u64,
    mut f: impl FnMut(&[u8], &dyn Fn() -> Option<LogEntry>) -> Scan,
) -> io::Result<()> {
    let mut file = File::open(path)?;
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
            break;
        }
    }
    Ok(())
}

impl Appender<'_> {
    /// The offset the next new entry gets.
    pub fn next_offset(&self) -> u64 {
        self.w.head + 1
    }

    /// Appends (and fsyncs) `entry`, whose offset must be [`Appender::next_offset`], unless its
    /// idempotency key was used within the window. On an error nothing was appended and the
    /// offset is still free.
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
        let (file, end, dirty) = (self.w.file.clone(), self.w.end, self.w.dirty);
        // Ok(Err((error, still dirty))): the write failed, and the cut after it too when dirty.
        let outcome = blocking(move || {
            let mut f = &*file;
            if dirty && let Err(e) = f.set_len(end).and_then(|()| f.sync_all()) {
                return Ok(Err((e, true)));
            }
            let write = (|| {
                f.seek(SeekFrom::Start(end))?;
                f.write_all(&line)?;
                f.sync_data()
            })();
            Ok(write.map_err(|e| {
                // Take the failed line back out, so the next append starts on a clean line.
                let cut = f.set_len(end).and_then(|()| f.sync_all());
                (e, cut.is_err())
            }))
        })
        .await;
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err((e, still_dirty))) => {
                self.w.dirty = still_dirty;
                if still_dirty {
                    tracing::error!(path = %self.log.path.display(), "could not cut a failed append off the log; appends are refused until it can");
                }
                return Err(e);
            }
            Err(e) => {
                self.w.dirty = true;
                return Err(e);
            }
        }
        self.w.dirty = false;
        let offset = entry.offset;
        let pos = self.w.end;
        self.w.end += len;
        self.w.head = offset;
        if let Some(k) = &entry.idempotency_key {
            self.w.keys.insert(k, offset, &entry.envelope.id, entry.ts_ms, now);
        }
        self.log.view.write().map_err(|_| lock_poisoned())?.push(pos, len, Arc::new(entry), &self.log.limits);
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

impl Store {
    /// Opens (creating) `<data_dir>/events` and loads every tenant's log (its tail).
    pub fn open(data_dir: &Path, limits: Limits) -> io::Result<Store> {
        let dir = data_dir.join("events");
        std::fs::create_dir_all(&dir)?;
        let mut tenants = HashMap::new();
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let Some(tenant) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".jsonl")) else {
                continue;
            };
            if !valid_id(tenant) {
                continue;
            }
            let log = TenantLog::open(&path, limits)?;
            tracing::info!(tenant, events = log.head(), in_memory = log.in_memory(), "loaded event log");
            tenants.insert(tenant.to_string(), Arc::new(log));
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
        let log = Arc::new(TenantLog::open(&self.dir.join(format!("{tenant}.jsonl")), self.limits)?);
        map.insert(tenant.to_string(), log.clone());
        Ok(log)
    }

    /// The log of `tenant` if it has one.
    pub fn existing(&self, tenant: &str) -> Option<Arc<TenantLog>> {
        self.tenants.lock().ok()?.get(tenant).cloned()
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
