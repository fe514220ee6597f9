//! Where the event log lives: a file per tenant on this node ([`crate::store`], the default), or
//! Redis shared by several nodes ([`crate::redis_log`], `--redis-url`). The feed and the
//! acknowledgements read through here, whichever it is.

use std::collections::HashMap;
use std::io;
use std::sync::Mutex;

use crate::redis_log::RedisLog;
use crate::store::{LogEntry, Page, Store};

/// The most recent entries an acknowledged id is looked up in.
const RECENT: usize = 10_000;

/// The event log of this server.
#[derive(Debug)]
pub enum Events {
    /// One file per tenant on this node.
    File {
        /// The logs.
        store: Store,
        /// Highest acknowledged offset per (tenant, user), in memory.
        acked: Mutex<HashMap<(String, String), u64>>,
    },
    /// Shared by every node.
    Redis(RedisLog),
}

impl Events {
    /// The file log.
    pub fn file(store: Store) -> Self {
        Events::File { store, acked: Mutex::default() }
    }

    /// The tenant's last offset (0 when it has no event).
    pub async fn head(&self, tenant: &str) -> io::Result<u64> {
        match self {
            Events::File { store, .. } => Ok(store.existing(tenant).map_or(0, |l| l.head())),
            Events::Redis(r) => r.head(tenant).await,
        }
    }

    /// The offset of the event with this envelope id.
    pub async fn offset_of(&self, tenant: &str, id: &str) -> io::Result<Option<u64>> {
        match self {
            Events::File { store, .. } => match store.existing(tenant) {
                Some(log) => log.offset_of(id).await,
                None => Ok(None),
            },
            Events::Redis(r) => r.offset_of(tenant, id, crate::redis_log::MAX_ID_SCAN).await,
        }
    }

    /// The offset of the event with this envelope id if it is recent (the file log's memory
    /// tail; the newest 10,000 entries in Redis).
    pub async fn recent_offset_of(&self, tenant: &str, id: &str) -> io::Result<Option<u64>> {
        match self {
            Events::File { store, .. } => Ok(store.existing(tenant).and_then(|l| l.recent_offset_of(id))),
            Events::Redis(r) => r.offset_of(tenant, id, RECENT).await,
        }
    }

    /// The offset of the last event logged at or before `ms` (0 if none).
    pub async fn offset_at_time(&self, tenant: &str, ms: i64) -> io::Result<u64> {
        match self {
            Events::File { store, .. } => match store.existing(tenant) {
                Some(log) => log.offset_at_time(ms).await,
                None => Ok(0),
            },
            Events::Redis(r) => r.offset_at_time(tenant, ms).await,
        }
    }

    /// The entries after `after` that `visible` accepts, at most `limit`. When the retention
    /// deleted offsets right after `after`, the page starts at the oldest kept entry and says
    /// which are gone ([`Page::truncated`]).
    pub async fn read(
        &self,
        tenant: &str,
        after: u64,
        limit: usize,
        visible: impl Fn(&LogEntry) -> bool + Send + Sync + 'static,
    ) -> io::Result<Page> {
        match self {
            Events::File { store, .. } => match store.existing(tenant) {
                Some(log) => log.read(after, limit, visible).await,
                None => Ok(Page { cursor: after, ..Page::default() }),
            },
            Events::Redis(r) => {
                let mut page = r.read(tenant, after, limit, visible).await?;
                let first = r.first_offset(tenant).await?;
                if first > after.saturating_add(1) {
                    page.truncated = Some((after + 1, first - 1));
                }
                Ok(page)
            }
        }
    }

    /// The last `limit` entries before offset `before` (exclusive) that `visible` accepts, oldest
    /// first, looking at no more than [`crate::store::MAX_SCAN`] entries: windows read forward,
    /// going back from `before`. The page's `cursor` is the offset of the oldest entry looked at
    /// (pass it as the next `before`); `head` is the log's last offset.
    pub async fn read_back(
        &self,
        tenant: &str,
        before: u64,
        limit: usize,
        visible: impl Fn(&LogEntry) -> bool + Clone + Send + Sync + 'static,
    ) -> io::Result<Page> {
        let head = self.head(tenant).await?;
        // Nothing to look for before the oldest kept entry.
        let first = self.first_offset(tenant).await?.max(1);
        let mut end = before.min(head.saturating_add(1));
        let mut found: Vec<std::sync::Arc<LogEntry>> = Vec::new();
        let mut looked = 0usize;
        while end > first && found.len() < limit && looked < crate::store::MAX_SCAN {
            let width = (crate::store::MAX_SCAN - looked).min(limit.max(64) * 4) as u64;
            let start = end.saturating_sub(width).max(first);
            let (v, stop) = (visible.clone(), end);
            let page = self.read(tenant, start - 1, usize::MAX, move |e| e.offset < stop && v(e)).await?;
            looked += (end - start) as usize;
            let mut window: Vec<_> = page.entries.into_iter().filter(|e| e.offset < end).collect();
            window.extend(found);
            found = window;
            end = start;
        }
        let skip = found.len().saturating_sub(limit);
        let entries: Vec<_> = found.into_iter().skip(skip).collect();
        // Where the next page (older) starts: before the oldest entry returned, or where the
        // looking stopped when fewer than `limit` were found.
        let cursor = if skip > 0 { entries.first().map_or(end, |e| e.offset) } else { end };
        Ok(Page { entries, cursor, head, truncated: None })
    }

    /// The oldest offset the log still has (it rises as the retention deletes; 0 when empty).
    pub async fn first_offset(&self, tenant: &str) -> io::Result<u64> {
        match self {
            Events::File { store, .. } => Ok(store.existing(tenant).map_or(0, |l| l.first_offset())),
            Events::Redis(r) => r.first_offset(tenant).await,
        }
    }

    /// Deletes what is past the file log's retention in every tenant's log (appends do it too;
    /// this is for the age, when a tenant gets no new events). Redis trims as it appends.
    pub async fn enforce_retention(&self) {
        if let Events::File { store, .. } = self {
            store.enforce_retention().await;
        }
    }

    /// Records that `user` acknowledged up to `offset`.
    pub async fn ack(&self, tenant: &str, user: &str, offset: u64) -> io::Result<()> {
        match self {
            Events::File { acked, .. } => {
                let mut m = acked.lock().map_err(|_| io::Error::other("lock poisoned"))?;
                let e = m.entry((tenant.to_string(), user.to_string())).or_insert(0);
                *e = (*e).max(offset);
                Ok(())
            }
            Events::Redis(r) => r.ack(tenant, user, offset).await,
        }
    }

    /// The highest offset `user` acknowledged.
    pub async fn acked(&self, tenant: &str, user: &str) -> io::Result<Option<u64>> {
        match self {
            Events::File { acked, .. } => Ok(acked
                .lock()
                .map_err(|_| io::Error::other("lock poisoned"))?
                .get(&(tenant.to_string(), user.to_string()))
                .copied()),
            Events::Redis(r) => r.acked(tenant, user).await,
        }
    }
}
