//! The event log in Redis, for several server nodes (`--redis-url`): every node appends to it,
//! serves the feed from it, and broadcasts from it.
//!
//! # Keys
//!
//! | key | type | what |
//! |---|---|---|
//! | `tidings:t:<tenant>:head` | string | the tenant's last offset (offsets start at 1) |
//! | `tidings:t:<tenant>:log` | stream | one entry per event, id `<offset>-0`, field `e`: the [`LogEntry`] as JSON (its `offset` is the stream id's) |
//! | `tidings:t:<tenant>:idem:<key>` | string | `<offset> <envelope id>` of the event first published with this idempotency key, expiring after the idempotency TTL |
//! | `tidings:t:<tenant>:acked` | hash | user id → highest acknowledged offset |
//! | `tidings:bus:seq`, `tidings:bus` | string, stream | every event of every tenant in publish order, id `<seq>-0`, fields `t` (tenant), `o` (its offset) and `e` (the entry) |
//!
//! # Publishing and broadcasting
//!
//! One Lua script checks the idempotency key, takes the next offset, appends to the tenant's log
//! and to the bus, and records the key, atomically: two nodes publishing for one tenant at once
//! get consecutive offsets, and the bus holds the events in offset order. The publisher is
//! answered once the script has run; what Redis then keeps through a crash depends on its
//! persistence settings (docs/DEPLOYMENT.md).
//!
//! No node broadcasts what it publishes itself. Every node, the publishing one included, tails
//! the bus and sends each event to its own sockets, in bus order. So every socket on every node
//! gets one tenant's events in offset order, which a broadcast over Redis pub/sub (the
//! socketioxide Redis adapter) does not promise when two nodes publish at once, and a node that
//! loses Redis for a while resumes the bus where it stopped instead of missing what was published
//! meanwhile. When it cannot resume (the bus was trimmed past it, or Redis lost data), it says
//! so: [`Tail`] reports the gap and the server cuts its sockets, whose clients reconnect and
//! catch up from the feed.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::streams::{StreamRangeReply, StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands, AsyncConnectionConfig, Script, Value as RedisValue};

use crate::store::{Appended, LogEntry, MAX_SCAN, Page};

/// The bus keeps about this many events (trimmed with `MAXLEN ~`): a node cut off from Redis
/// for longer than it takes to publish that many misses events, reports the gap and cuts its
/// sockets.
pub const BUS_MAX_EVENTS: usize = 100_000;
/// The most log entries a search for an envelope id looks at, newest first.
pub const MAX_ID_SCAN: usize = 100_000;
/// How long one read of the bus blocks in Redis.
const BUS_BLOCK: Duration = Duration::from_secs(2);
/// The most bus entries taken per read.
const BUS_BATCH: usize = 512;

const APPEND: &str = r"
-- KEYS: head, log, bus seq, bus, idempotency key.
-- ARGV: entry JSON, tenant, has key (1/0), key TTL ms, envelope id, log max (0: all), bus max.
if ARGV[3] == '1' then
  local seen = redis.call('GET', KEYS[5])
  if seen then return {1, seen} end
end
local off = redis.call('INCR', KEYS[1])
if tonumber(ARGV[6]) > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], off .. '-0', 'e', ARGV[1])
else
  redis.call('XADD', KEYS[2], off .. '-0', 'e', ARGV[1])
end
local seq = redis.call('INCR', KEYS[3])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[7], seq .. '-0', 't', ARGV[2], 'o', off, 'e', ARGV[1])
if ARGV[3] == '1' then
  redis.call('SET', KEYS[5], off .. ' ' .. ARGV[5], 'PX', ARGV[4])
end
return {0, tostring(off)}
";

const ACK: &str = r"
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > cur then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 0
";

/// How long the log keeps events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Events kept per tenant, about (`MAXLEN ~`); 0 keeps all.
    pub max_events: usize,
    /// How long an idempotency key is remembered.
    pub idempotency_ttl: Duration,
}

/// The shared event log. Cheap to clone.
#[derive(Clone)]
pub struct RedisLog {
    client: redis::Client,
    conn: ConnectionManager,
    append: Arc<Script>,
    ack: Arc<Script>,
    retention: Retention,
}

impl std::fmt::Debug for RedisLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: never printed.
        f.debug_struct("RedisLog").field("retention", &self.retention).finish_non_exhaustive()
    }
}

fn key(tenant: &str, what: &str) -> String {
    format!("tidings:t:{tenant}:{what}")
}

fn io_err(e: redis::RedisError) -> io::Error {
    io::Error::other(format!("redis: {e}"))
}

/// The offset in a stream id `<offset>-0`.
fn id_offset(id: &str) -> Option<u64> {
    id.split_once('-').map_or(id, |(ms, _)| ms).parse().ok()
}

/// A stream entry's `e` field as a [`LogEntry`] with the offset of its id.
fn entry_of(id: &str, map: &std::collections::HashMap<String, RedisValue>) -> Option<LogEntry> {
    let bytes = match map.get("e")? {
        RedisValue::BulkString(b) => b.as_slice(),
        _ => return None,
    };
    let mut e: LogEntry = serde_json::from_slice(bytes).ok()?;
    e.offset = id_offset(id)?;
    Some(e)
}

fn string_of(map: &std::collections::HashMap<String, RedisValue>, field: &str) -> Option<String> {
    match map.get(field)? {
        RedisValue::BulkString(b) => String::from_utf8(b.clone()).ok(),
        RedisValue::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

impl RedisLog {
    /// Connects (one try: a server that cannot reach Redis at start fails to start). Later
    /// losses of the connection are retried by each command and by the tail.
    pub async fn connect(url: &str, retention: Retention) -> io::Result<RedisLog> {
        let client = redis::Client::open(url).map_err(|e| {
            // Never echo the URL: it may hold a password.
            io::Error::new(io::ErrorKind::InvalidInput, format!("invalid Redis URL ({:?})", e.kind()))
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = client.get_connection_manager_with_config(config).await.map_err(io_err)?;
        Ok(RedisLog { client, conn, append: Arc::new(Script::new(APPEND)), ack: Arc::new(Script::new(ACK)), retention })
    }

    /// Whether Redis answers a `PING` now.
    pub async fn ping(&self) -> bool {
        let mut c = self.conn.clone();
        redis::cmd("PING").query_async::<String>(&mut c).await.is_ok()
    }

    /// Appends `entry` (its `offset` is ignored: the log gives the next one), unless its
    /// idempotency key was used within the TTL. On an error nothing was appended, or the script
    /// ran and its answer was lost: a retry with the same key is then answered `Replayed`.
    pub async fn append(&self, tenant: &str, entry: &LogEntry) -> io::Result<Appended> {
        let json = serde_json::to_string(entry).map_err(io::Error::other)?;
        let idem = entry.idempotency_key.as_deref();
        let mut inv = self.append.prepare_invoke();
        inv.key(key(tenant, "head"))
            .key(key(tenant, "log"))
            .key("tidings:bus:seq")
            .key("tidings:bus")
            .key(idem.map_or_else(|| key(tenant, "idem"), |k| key(tenant, &format!("idem:{k}"))))
            .arg(json)
            .arg(tenant)
            .arg(if idem.is_some() { "1" } else { "0" })
            .arg(self.retention.idempotency_ttl.as_millis().max(1) as u64)
            .arg(&entry.envelope.id)
            .arg(self.retention.max_events)
            .arg(BUS_MAX_EVENTS);
        let mut c = self.conn.clone();
        let (replayed, value): (u8, String) = inv.invoke_async(&mut c).await.map_err(io_err)?;
        if replayed == 1 {
            let (offset, id) = value.split_once(' ').ok_or_else(|| io::Error::other("bad idempotency record"))?;
            let offset = offset.parse().map_err(|_| io::Error::other("bad idempotency record"))?;
            return Ok(Appended::Replayed { id: id.to_string(), offset });
        }
        value.parse().map(Appended::New).map_err(|_| io::Error::other("bad offset from the append script"))
    }

    /// The tenant's last offset (0 when it has no event).
    pub async fn head(&self, tenant: &str) -> io::Result<u64> {
        let mut c = self.conn.clone();
        let head: Option<u64> = c.get(key(tenant, "head")).await.map_err(io_err)?;
        Ok(head.unwrap_or(0))
    }

    /// The offset of the event with this envelope id, looking at the newest
    /// [`MAX_ID_SCAN`] entries at most.
    pub async fn offset_of(&self, tenant: &str, id: &str, max_scan: usize) -> io::Result<Option<u64>> {
        let looks_like_id =
            id.strip_prefix("evt_").is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        if !looks_like_id {
            return Ok(None);
        }
        let needle = format!("\"id\":\"{id}\"");
        let mut c = self.conn.clone();
        let mut end = "+".to_string();
        let mut looked = 0usize;
        while looked < max_scan {
            let count = 1_000.min(max_scan - looked);
            let page: StreamRangeReply =
                c.xrevrange_count(key(tenant, "log"), &end, "-", count).await.map_err(io_err)?;
            let Some(last) = page.ids.last() else { return Ok(None) };
            for s in &page.ids {
                looked += 1;
                let hit = matches!(s.map.get("e"), Some(RedisValue::BulkString(b))
                    if std::str::from_utf8(b).is_ok_and(|t| t.contains(&needle)));
                if hit && let Some(e) = entry_of(&s.id, &s.map).filter(|e| e.envelope.id == id) {
                    return Ok(Some(e.offset));
                }
            }
            let Some(next) = id_offset(&last.id).and_then(|o| o.checked_sub(1)).filter(|o| *o > 0) else {
                return Ok(None);
            };
            end = format!("{next}-0");
        }
        Ok(None)
    }

    /// The offset of the last entry logged at or before `ms` (0 if none): a binary search over
    /// offsets, one entry read per step.
    pub async fn offset_at_time(&self, tenant: &str, ms: i64) -> io::Result<u64> {
        let mut c = self.conn.clone();
        let (mut lo, mut hi) = (0u64, self.head(tenant).await?);
        // Invariant: the entry at `lo` (or nothing, at 0) is at or before `ms`; after `hi`, later.
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            let page: StreamRangeReply =
                c.xrange_count(key(tenant, "log"), format!("{mid}-0"), "+", 1).await.map_err(io_err)?;
            match page.ids.first().and_then(|s| entry_of(&s.id, &s.map)) {
                Some(e) if e.ts_ms <= ms => lo = e.offset.max(mid),
                _ => hi = mid - 1,
            }
        }
        Ok(lo)
    }

    /// The entries after `after` that `visible` accepts, at most `limit`, looking at no more
    /// than [`MAX_SCAN`] entries.
    pub async fn read(
        &self,
        tenant: &str,
        after: u64,
        limit: usize,
        visible: impl Fn(&LogEntry) -> bool,
    ) -> io::Result<Page> {
        let mut c = self.conn.clone();
        let mut page = Page { cursor: after, head: self.head(tenant).await?, ..Page::default() };
        let mut budget = MAX_SCAN;
        while page.cursor < page.head && budget > 0 && page.entries.len() < limit {
            let count = 500.min(budget);
            let got: StreamRangeReply = c
                .xrange_count(key(tenant, "log"), format!("{}-0", page.cursor + 1), "+", count)
                .await
                .map_err(io_err)?;
            if got.ids.is_empty() {
                // Trimmed or never written up to the head: nothing more to look at.
                page.cursor = page.head;
                break;
            }
            for s in &got.ids {
                if page.entries.len() >= limit || budget == 0 {
                    break;
                }
                budget -= 1;
                let Some(e) = entry_of(&s.id, &s.map) else {
                    tracing::warn!(tenant, id = %s.id, "unreadable entry in the Redis log; skipped");
                    page.cursor = id_offset(&s.id).unwrap_or(page.cursor).max(page.cursor);
                    continue;
                };
                page.cursor = e.offset;
                if visible(&e) {
                    page.entries.push(Arc::new(e));
                }
            }
        }
        Ok(page)
    }

    /// The oldest offset still in the tenant's log (0 when empty).
    pub async fn first_offset(&self, tenant: &str) -> io::Result<u64> {
        let mut c = self.conn.clone();
        let page: StreamRangeReply = c.xrange_count(key(tenant, "log"), "-", "+", 1).await.map_err(io_err)?;
        Ok(page.ids.first().and_then(|s| id_offset(&s.id)).unwrap_or(0))
    }

    /// Records that `user` acknowledged up to `offset` (the highest is kept).
    pub async fn ack(&self, tenant: &str, user: &str, offset: u64) -> io::Result<()> {
        let mut c = self.conn.clone();
        let mut inv = self.ack.prepare_invoke();
        inv.key(key(tenant, "acked")).arg(user).arg(offset);
        inv.invoke_async::<i64>(&mut c).await.map_err(io_err)?;
        Ok(())
    }

    /// The highest offset `user` acknowledged.
    pub async fn acked(&self, tenant: &str, user: &str) -> io::Result<Option<u64>> {
        let mut c = self.conn.clone();
        c.hget(key(tenant, "acked"), user).await.map_err(io_err)
    }

    /// Starts following the bus from its current end.
    pub async fn tail(&self) -> io::Result<Tail> {
        let mut t = Tail { client: self.client.clone(), conn: None, last: 0 };
        let conn = t.connect().await?;
        t.last = bus_seq(conn).await?;
        Ok(t)
    }
}

async fn bus_seq(c: &mut MultiplexedConnection) -> io::Result<u64> {
    let seq: Option<u64> = c.get("tidings:bus:seq").await.map_err(io_err)?;
    Ok(seq.unwrap_or(0))
}

/// What one read of the bus gave.
#[derive(Debug)]
pub enum BusRead {
    /// Events, in publish order: (tenant, entry).
    Events(Vec<(String, LogEntry)>),
    /// Events were published that this node will never read (the bus was trimmed past it, or
    /// Redis restarted without them); then maybe more events.
    Gap {
        /// Why, for the log.
        why: String,
        /// Events read after the gap.
        events: Vec<(String, LogEntry)>,
    },
}

/// A node's reader of the bus, on its own connection (a blocking read would hold up every other
/// command on a shared one).
pub struct Tail {
    client: redis::Client,
    conn: Option<MultiplexedConnection>,
    /// The sequence number of the last bus entry read.
    last: u64,
}

impl std::fmt::Debug for Tail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tail").field("last", &self.last).finish_non_exhaustive()
    }
}

impl Tail {
    async fn connect(&mut self) -> io::Result<&mut MultiplexedConnection> {
        if self.conn.is_none() {
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(2)))
                .set_response_timeout(Some(BUS_BLOCK + Duration::from_secs(3)));
            let conn = self.client.get_multiplexed_async_connection_with_config(&config).await.map_err(io_err)?;
            self.conn = Some(conn);
        }
        self.conn.as_mut().ok_or_else(|| io::Error::other("no Redis connection"))
    }

    /// Waits (up to about 2 s) for the next events of the bus. An error drops the connection;
    /// the next call reconnects and resumes after the last entry read, checking first that Redis
    /// still has it.
    pub async fn next(&mut self) -> io::Result<BusRead> {
        let fresh = self.conn.is_none();
        let last = self.last;
        let conn = self.connect().await?;
        let mut gap = None;
        if fresh {
            let seq = bus_seq(conn).await.inspect_err(|_| self.conn = None)?;
            if seq < last {
                gap = Some(format!("the bus is back at {seq}, this node had read up to {last}: Redis lost events"));
                self.last = seq;
            }
        }
        let opts = StreamReadOptions::default().count(BUS_BATCH).block(BUS_BLOCK.as_millis() as usize);
        let Some(conn) = self.conn.as_mut() else { return Err(io::Error::other("no Redis connection")) };
        let reply: Option<StreamReadReply> =
            match conn.xread_options(&["tidings:bus"], &[format!("{}-0", self.last)], &opts).await {
                Ok(r) => r,
                Err(e) => {
                    self.conn = None;
                    return Err(io_err(e));
                }
            };
        let mut events = Vec::new();
        for s in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
            let Some(seq) = id_offset(&s.id) else { continue };
            if seq > self.last + 1 && gap.is_none() {
                gap =
                    Some(format!("bus entries {}..{} were trimmed before this node read them", self.last + 1, seq - 1));
            }
            self.last = self.last.max(seq);
            let offset = string_of(&s.map, "o").and_then(|o| o.parse().ok());
            match (string_of(&s.map, "t"), offset, entry_of(&s.id, &s.map)) {
                (Some(tenant), Some(offset), Some(mut e)) => {
                    e.offset = offset;
                    events.push((tenant, e));
                }
                _ => {
                    // Its sockets would miss it: reported as a gap, so they catch up from the feed.
                    tracing::warn!(id = %s.id, "unreadable bus entry");
                    gap.get_or_insert_with(|| format!("bus entry {} is unreadable", s.id));
                }
            }
        }
        Ok(match gap {
            Some(why) => BusRead::Gap { why, events },
            None => BusRead::Events(events),
        })
    }
}
