//! The durable event log: one append-only JSON-lines file per tenant
//! (`<data-dir>/events/<tenantId>.jsonl`), fsync'd before an event is broadcast, loaded at start.
//!
//! Offsets are per tenant, start at 1 and grow by one per event. Each line is one [`LogEntry`].
//! A torn last line (a crash in the middle of a write) is cut off when the file is loaded.
//! Nothing is ever deleted: retention is out of scope for this example.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::rooms::{Room, valid_id};

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
        self.rooms.iter().any(|r| Room::parse(r).is_ok_and(|r| r.visible_to(user, tenant)))
    }
}

/// What [`TenantLog::append`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// A new entry at this offset.
    New(u64),
    /// The idempotency key was seen before: the first event's id and offset, nothing written.
    Replayed {
        /// The first event's id.
        id: String,
        /// The first event's offset.
        offset: u64,
    },
}

/// One tenant's log, in memory and on disk. Lock it (through [`Store::tenant`]) for the whole
/// append-then-broadcast so events go out in offset order.
#[derive(Debug)]
pub struct TenantLog {
    file: Arc<std::sync::Mutex<File>>,
    entries: Vec<Arc<LogEntry>>,
    by_id: HashMap<String, u64>,
    by_key: HashMap<String, u64>,
}

impl TenantLog {
    fn open(path: &Path) -> io::Result<TenantLog> {
        let mut log = TenantLog {
            file: Arc::new(std::sync::Mutex::new(OpenOptions::new().create(true).append(true).open(path)?)),
            entries: Vec::new(),
            by_id: HashMap::new(),
            by_key: HashMap::new(),
        };
        let mut good_len = 0u64;
        let mut reader = BufReader::new(File::open(path)?);
        let mut line = String::new();
        loop {
            line.clear();
            let n = reader.read_line(&mut line)?;
            if n == 0 || !line.ends_with('\n') {
                break;
            }
            good_len += n as u64;
            match serde_json::from_str::<LogEntry>(&line) {
                Ok(e) if e.offset == log.head() + 1 => log.index(Arc::new(e)),
                Ok(e) => tracing::warn!(path = %path.display(), offset = e.offset, "skipping an out-of-order log line"),
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "skipping an unreadable log line"),
            }
        }
        let file_len = std::fs::metadata(path)?.len();
        if file_len > good_len {
            tracing::warn!(path = %path.display(), bytes = file_len - good_len, "cutting off a torn last line");
            OpenOptions::new().write(true).open(path)?.set_len(good_len)?;
        }
        Ok(log)
    }

    fn index(&mut self, e: Arc<LogEntry>) {
        self.by_id.insert(e.envelope.id.clone(), e.offset);
        if let Some(k) = &e.idempotency_key {
            self.by_key.insert(k.clone(), e.offset);
        }
        self.entries.push(e);
    }

    /// The last offset (0 when empty).
    pub fn head(&self) -> u64 {
        self.entries.last().map_or(0, |e| e.offset)
    }

    /// The entry at `offset`.
    pub fn get(&self, offset: u64) -> Option<&Arc<LogEntry>> {
        let i = usize::try_from(offset.checked_sub(1)?).ok()?;
        self.entries.get(i)
    }

    /// The offset of the event with this envelope id.
    pub fn offset_of(&self, id: &str) -> Option<u64> {
        self.by_id.get(id).copied()
    }

    /// The entries after `offset`, oldest first.
    pub fn after(&self, offset: u64) -> &[Arc<LogEntry>] {
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(self.entries.len());
        self.entries.get(start..).unwrap_or(&[])
    }

    /// The first offset whose timestamp is after `ms`, minus one (for `since=<ISO timestamp>`).
    pub fn offset_before_time(&self, ms: i64) -> u64 {
        let i = self.entries.partition_point(|e| e.ts_ms <= ms);
        u64::try_from(i).unwrap_or(u64::MAX)
    }

    /// The next offset.
    pub fn next_offset(&self) -> u64 {
        self.head() + 1
    }

    /// Appends (and fsyncs) `entry`, whose offset must be [`TenantLog::next_offset`], unless its
    /// idempotency key was used before.
    pub async fn append(&mut self, entry: LogEntry) -> io::Result<Appended> {
        if let Some(offset) = entry.idempotency_key.as_ref().and_then(|k| self.by_key.get(k)) {
            let id = self.get(*offset).map(|e| e.envelope.id.clone()).unwrap_or_default();
            return Ok(Appended::Replayed { id, offset: *offset });
        }
        if entry.offset != self.next_offset() {
            return Err(io::Error::other("log entry offset out of sequence"));
        }
        let mut line = serde_json::to_vec(&entry).map_err(io::Error::other)?;
        line.push(b'\n');
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || {
            let mut f = file.lock().map_err(|_| io::Error::other("log file lock poisoned"))?;
            f.write_all(&line)?;
            f.sync_data()
        })
        .await
        .map_err(io::Error::other)??;
        let offset = entry.offset;
        self.index(Arc::new(entry));
        Ok(Appended::New(offset))
    }
}

/// Every tenant's log.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    tenants: std::sync::Mutex<HashMap<String, Arc<Mutex<TenantLog>>>>,
}

impl Store {
    /// Opens (creating) `<data_dir>/events` and loads every tenant's log.
    pub fn open(data_dir: &Path) -> io::Result<Store> {
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
            let log = TenantLog::open(&path)?;
            tracing::info!(tenant, events = log.head(), "loaded event log");
            tenants.insert(tenant.to_string(), Arc::new(Mutex::new(log)));
        }
        Ok(Store { dir, tenants: std::sync::Mutex::new(tenants) })
    }

    /// The log of `tenant` (a valid id), created on first use.
    pub fn tenant(&self, tenant: &str) -> io::Result<Arc<Mutex<TenantLog>>> {
        if !valid_id(tenant) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "invalid tenant id"));
        }
        let mut map = self.tenants.lock().map_err(|_| io::Error::other("store lock poisoned"))?;
        if let Some(log) = map.get(tenant) {
            return Ok(log.clone());
        }
        let log = Arc::new(Mutex::new(TenantLog::open(&self.dir.join(format!("{tenant}.jsonl")))?));
        map.insert(tenant.to_string(), log.clone());
        Ok(log)
    }

    /// The log of `tenant` if it has one.
    pub fn existing(&self, tenant: &str) -> Option<Arc<Mutex<TenantLog>>> {
        self.tenants.lock().ok()?.get(tenant).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(offset: u64, key: Option<&str>) -> LogEntry {
        LogEntry {
            offset,
            rooms: vec!["tenant:acme".into()],
            ts_ms: offset as i64 * 1000,
            idempotency_key: key.map(str::to_string),
            envelope: Envelope {
                id: format!("evt_{offset}"),
                kind: "task.created".into(),
                version: 1,
                timestamp: String::new(),
                source: "test".into(),
                data: Value::Null,
                metadata: Metadata { tenant_id: "acme".into(), ..Metadata::default() },
            },
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tidings-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[tokio::test]
    async fn appends_reloads_and_cuts_a_torn_tail() {
        let dir = temp_dir("reload");
        let store = Store::open(&dir).unwrap();
        let log = store.tenant("acme").unwrap();
        {
            let mut log = log.lock().await;
            assert_eq!(log.append(entry(1, Some("k"))).await.unwrap(), Appended::New(1));
            assert_eq!(log.append(entry(2, None)).await.unwrap(), Appended::New(2));
            assert_eq!(
                log.append(entry(3, Some("k"))).await.unwrap(),
                Appended::Replayed { id: "evt_1".into(), offset: 1 }
            );
            assert!(log.append(entry(9, None)).await.is_err());
        }
        drop(store);
        let path = dir.join("events/acme.jsonl");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"offset\":3,\"roo").unwrap();
        drop(f);
        let store = Store::open(&dir).unwrap();
        let log = store.existing("acme").unwrap();
        let mut log = log.lock().await;
        assert_eq!(log.head(), 2);
        assert_eq!(log.offset_of("evt_2"), Some(2));
        assert_eq!(log.offset_before_time(1500), 1);
        assert_eq!(log.after(1).len(), 1);
        assert_eq!(
            log.append(entry(3, Some("k"))).await.unwrap(),
            Appended::Replayed { id: "evt_1".into(), offset: 1 }
        );
        assert_eq!(log.append(entry(3, None)).await.unwrap(), Appended::New(3));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
