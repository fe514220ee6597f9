//! The REST feed fallback, a sub-machine of its own: when the socket has been down for a while,
//! poll the application's event feed and deliver what it returns through the same handlers,
//! de-duplicated (through the client's inbox, which it shares with the sockets).
//!
//! # The feed's JSON contract
//!
//! `GET {feed}/events?limit=N[&since=CURSOR]` with `Authorization: Bearer <token>` (the `token`
//! member of the namespace's auth, when it has one) answers `200` with
//!
//! ```json
//! { "events": [ { "id": "evt_1", "event": "task.created", "data": { "...": "..." }, "offset": "42" } ],
//!   "cursor": "42" }
//! ```
//!
//! - `events` (alias `data`): oldest first. Each has `id` (string or number, required), `event`
//!   (alias `type`, required), `data` (alias `payload`; the event's single argument, exactly what
//!   the socket would have delivered; `null` when absent) and an optional `offset`.
//! - `cursor` (string or number, optional): what to pass as `since` next time. Without it the
//!   client uses the last event's `offset`, else its `id`.
//!
//! `since` is a cursor the feed returned, or, when the socket received events carrying an
//! envelope since the feed last ran, the envelope `id` of the last of them: the feed answers the
//! events after it, so nothing emitted between the socket's drop and the first poll is missed.
//! Without `since` (nothing seen yet) the server chooses where to start.
//!
//! After a successful poll with events the client sends `POST {feed}/events/acknowledge` with
//! `{"eventIds":["evt_1", ...]}`; its answer is ignored.
//!
//! Events are de-duplicated against the socket's by `offset` and by `id` (which should equal the
//! `id` of the envelope the socket delivers), so a handler sees each event once.

use super::inbox::{Inbox, Retired};
use super::{
    Cx, Event, EventSource, FeedStatus, HttpError, HttpRequest, Method, Output, RequestId, RequestPurpose, ms,
};
use crate::args::Args;
use crate::config::FeedConfig;
use crate::dedup::DedupKey;
use crate::json::{self, JsonKind};
use crate::text;
use crate::time::Instant;

#[derive(Default)]
pub(super) struct Feed {
    phase: FeedPhase,
    /// Bearer token for the feed (from the main namespace's auth). Never logged.
    pub(super) token: Option<String>,
    cursor: Option<String>,
    /// The position of the last event of the main namespace delivered (a socket event's envelope
    /// id, a feed event's offset or id) since the feed last started: the feed resumes after it.
    pub(super) last_socket_id: Option<String>,
    /// Acknowledgements sent, oldest first, with when they are given up (aborted) if still
    /// unanswered. At most 16: a `Vec` (a `VecDeque`'s removal from the middle is more code).
    acks: Vec<(RequestId, Instant)>,
    /// The page size asked for, when smaller than the configured `limit` (0: the configured one):
    /// halved while a page is larger than the body limit, doubled back after each page that fits.
    page: u32,
    /// A catch-up ended (caught up, or gave up): the socket's waiting events can go out.
    caught_up: bool,
    /// Where the client stands: the position of the last event of the main namespace handed to
    /// every subscription (a socket event's envelope id, a feed event's offset or id). Never
    /// taken: the application reads it to persist ([`super::Client::cursor`]).
    pub(super) delivered: Option<String>,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The bearer token is a secret: only whether there is one.
        f.debug_struct("Feed")
            .field("phase", &self.phase)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("cursor", &self.cursor)
            .field("last_socket_id", &self.last_socket_id)
            .field("acks", &self.acks)
            .field("page", &self.page)
            .field("caught_up", &self.caught_up)
            .field("delivered", &self.delivered)
            .finish()
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum FeedPhase {
    /// The socket is up, or the feed is not wanted.
    #[default]
    Off,
    /// The socket is down; polling starts at `at`.
    Armed { at: Instant },
    /// Polling: the next poll is at `next`, or, while a poll is `in_flight`, it times out then.
    /// `catch_up`: the socket is back but not recovered, and the feed reads until it has nothing
    /// more (page after page, no interval) while the socket's events wait.
    Polling { next: Instant, in_flight: Option<RequestId>, interval_ms: u64, failures: u32, catch_up: bool },
    /// Too many failures in a row; waits for the socket to come back and go down again.
    GaveUp,
}

impl Feed {
    pub(super) fn deadline(&self) -> Option<Instant> {
        let phase = match self.phase {
            FeedPhase::Armed { at } => Some(at),
            FeedPhase::Polling { next, .. } => Some(next),
            _ => None,
        };
        crate::time::earliest(phase, self.acks.first().map(|a| a.1))
    }
}

/// The `token` string member of an auth object, for the feed's bearer header.
pub(super) fn token_of(auth: &str) -> Option<String> {
    json::string_member(auth, "token")
}

struct FeedEvent {
    id: String,
    name: String,
    data: String,
    offset: Option<String>,
}

/// A string or number member as text.
fn scalar(raw: &str) -> Option<String> {
    match json::validate(raw).ok()? {
        JsonKind::String => json::parse_string(raw).ok().map(|s| s.into_owned()),
        JsonKind::Number => Some(raw.to_string()),
        _ => None,
    }
}

/// A feed page: its events, its cursor and its `hasMore` member.
type FeedPage = (Vec<FeedEvent>, Option<String>, Option<bool>);

fn parse_feed(body: &str) -> Result<FeedPage, &'static str> {
    let members = json::object_members(body).map_err(|_| "the feed answered something that is not a JSON object")?;
    let mut events = None;
    let mut cursor = None;
    let mut has_more = None;
    for (k, r) in &members {
        let raw = body.get(r.clone()).unwrap_or_default();
        match k.as_ref() {
            "events" => events = Some(raw),
            "data" if events.is_none() => events = Some(raw),
            "cursor" => cursor = scalar(raw),
            // `raw` is the value's own range: no whitespace around it.
            "hasMore" => has_more = Some(raw == "true"),
            _ => {}
        }
    }
    let events = events.ok_or("the feed's answer has no \"events\" array")?;
    let items = json::array_elements(events).map_err(|_| "the feed's \"events\" is not an array")?;
    let mut out = Vec::with_capacity(items.len());
    for r in items {
        let item = events.get(r).unwrap_or_default();
        let fields = json::object_members(item).map_err(|_| "a feed event is not an object")?;
        let (mut id, mut name, mut data, mut offset) = (None, None, None, None);
        for (k, r) in fields {
            let raw = item.get(r).unwrap_or_default();
            match k.as_ref() {
                "id" => id = scalar(raw),
                "event" => name = scalar(raw),
                "type" if name.is_none() => name = scalar(raw),
                "data" => data = Some(raw.to_string()),
                "payload" if data.is_none() => data = Some(raw.to_string()),
                "offset" => offset = scalar(raw),
                _ => {}
            }
        }
        let id = id.ok_or("a feed event has no id")?;
        let name = name.ok_or("a feed event has no event name")?;
        out.push(FeedEvent { id, name, data: data.unwrap_or_else(|| "null".to_string()), offset });
    }
    Ok((out, cursor, has_more))
}

impl Feed {
    /// Moves the feed along with the main namespace: `wanted` while it is active and not
    /// connected.
    pub(super) fn update(&mut self, cx: &mut Cx<'_>, wanted: bool) {
        let Some(cfg) = &cx.config.feed else { return };
        match (wanted, self.phase) {
            (true, FeedPhase::Off) => {
                if let Some(id) = self.last_socket_id.take() {
                    self.cursor = Some(id);
                }
                if self.cursor.is_none() {
                    self.cursor = cfg.since.clone();
                }
                self.phase = FeedPhase::Armed { at: cx.now + cfg.after };
            }
            (false, FeedPhase::Off) => {}
            // The socket is connected: a catch-up goes on until it has read everything.
            (false, FeedPhase::Polling { catch_up: true, .. }) => {}
            (false, phase) => {
                self.phase = FeedPhase::Off;
                if let FeedPhase::Polling { in_flight, .. } = phase {
                    if let Some(id) = in_flight {
                        cx.out.push_back(Output::AbortHttp(id));
                    }
                    cx.out.push_back(Output::Feed(FeedStatus::Stopped));
                }
            }
            (true, _) => {}
        }
    }

    /// After a reconnect that did not recover the session: reads the feed from where the socket
    /// stopped (the envelope id of the last event delivered, or the feed's own cursor), at once
    /// and page after page, until it has nothing more. False when there is nothing to resume
    /// from (no event was ever seen), or no feed.
    pub(super) fn catch_up(&mut self, cx: &mut Cx<'_>) -> bool {
        let Some(cfg) = &cx.config.feed else { return false };
        if let Some(id) = self.last_socket_id.take() {
            self.cursor = Some(id);
        }
        if self.cursor.is_none() {
            self.cursor = cfg.since.clone();
        }
        if self.cursor.is_none() {
            return false;
        }
        if let FeedPhase::Polling { in_flight: Some(id), .. } = self.phase {
            cx.out.push_back(Output::AbortHttp(id));
        }
        self.phase = FeedPhase::Polling {
            next: cx.now,
            in_flight: None,
            interval_ms: ms(cfg.interval),
            failures: 0,
            catch_up: true,
        };
        cx.out.push_back(Output::Feed(FeedStatus::CatchingUp));
        self.poll(cx);
        true
    }

    /// The socket went down during a catch-up: the feed goes on as the ordinary fallback (or
    /// stops, by [`Feed::update`], if the namespace is no longer wanted).
    pub(super) fn end_catch_up(&mut self) {
        if let FeedPhase::Polling { catch_up, .. } = &mut self.phase {
            *catch_up = false;
        }
    }

    /// Whether a catch-up ended since the last call.
    pub(super) fn take_caught_up(&mut self) -> bool {
        std::mem::take(&mut self.caught_up)
    }

    /// Whatever is due at `cx.now`: the first poll, the next one, a poll or an acknowledgement
    /// that was never answered.
    pub(super) fn timeouts(&mut self, cx: &mut Cx<'_>, inbox: &mut Inbox) {
        let config = cx.config;
        let Some(cfg) = &config.feed else { return };
        let now = cx.now;
        match self.phase {
            FeedPhase::Armed { at } if now >= at => {
                self.phase = FeedPhase::Polling {
                    next: now,
                    in_flight: None,
                    interval_ms: ms(cfg.interval),
                    failures: 0,
                    catch_up: false,
                };
                cx.out.push_back(Output::Feed(FeedStatus::Polling));
                self.poll(cx);
            }
            FeedPhase::Polling { next, in_flight: None, .. } if now >= next => self.poll(cx),
            FeedPhase::Polling { next, in_flight: Some(id), .. } if now >= next => {
                // Accepted and never answered: give up on it; it counts as a failed poll.
                cx.out.push_back(Output::AbortHttp(id));
                let error = HttpError::Network(text::concat(&[
                    "no answer within ",
                    &text::decimal(ms(cfg.request_timeout)),
                    " ms",
                ]));
                self.on_response(cx, inbox, id, None, Some(&error));
            }
            _ => {}
        }
        while let Some(&(id, at)) = self.acks.first() {
            if now < at {
                break;
            }
            self.acks.remove(0);
            cx.out.push_back(Output::AbortHttp(id));
        }
    }

    fn poll(&mut self, cx: &mut Cx<'_>) {
        let Some(cfg) = &cx.config.feed else { return };
        let limit = if self.page == 0 { cfg.limit } else { self.page };
        let url = events_url(cfg, limit, self.cursor.as_deref());
        let max_body = cfg.max_body;
        let timeout_at = cx.now + cfg.request_timeout;
        let id = RequestId(cx.ids.next());
        if let FeedPhase::Polling { in_flight, next, .. } = &mut self.phase {
            *in_flight = Some(id);
            *next = timeout_at;
        }
        let authorization = self.token.as_deref().map(bearer);
        cx.out.push_back(Output::Http(HttpRequest {
            id,
            purpose: RequestPurpose::FeedPoll,
            method: Method::Get,
            url,
            content_type: None,
            authorization,
            body: None,
            max_body,
        }));
    }

    /// Handles the answer to a feed request; false when `id` is not the feed's. Events go
    /// through `inbox` (de-duplication, delivery).
    pub(super) fn on_response(
        &mut self,
        cx: &mut Cx<'_>,
        inbox: &mut Inbox,
        id: RequestId,
        response: Option<(u16, &[u8])>,
        error: Option<&HttpError>,
    ) -> bool {
        if let Some(pos) = self.acks.iter().position(|a| a.0 == id) {
            // An acknowledgement's answer: nothing to do but forget it.
            self.acks.remove(pos);
            return true;
        }
        let FeedPhase::Polling { in_flight: Some(current), interval_ms, failures, catch_up, .. } = self.phase else {
            return false;
        };
        if current != id {
            return false;
        }
        let config = cx.config;
        let Some(cfg) = &config.feed else { return true };
        if let Some(HttpError::TooLarge { max_body }) = error {
            // A page larger than the body limit: ask for half as many events at once, until one
            // event alone is too large, which is an error to report (skipping it would lose it).
            let asked = if self.page == 0 { cfg.limit } else { self.page };
            if asked > 1 {
                self.page = asked / 2;
                self.phase = FeedPhase::Polling { next: cx.now, in_flight: None, interval_ms, failures, catch_up };
                return true;
            }
            self.phase = FeedPhase::GaveUp;
            self.caught_up |= catch_up;
            let error = text::concat(&[
                "an event of the feed is larger than FeedConfig::max_body (",
                &text::decimal(u64::try_from(*max_body).unwrap_or(u64::MAX)),
                " bytes)",
            ]);
            cx.out.push_back(Output::Feed(FeedStatus::GaveUp { error }));
            return true;
        }
        let parsed = match (response, error) {
            (Some((200, body)), _) => match std::str::from_utf8(body) {
                Ok(text) => parse_feed(text).map_err(str::to_string),
                Err(_) => Err("the feed's answer is not UTF-8".to_string()),
            },
            (Some((status, _)), _) => Err(answered(status)),
            (None, Some(e)) => Err(text::concat(&["the feed request failed: ", &e.message()])),
            (None, None) => Err("the feed request failed".to_string()),
        };
        match parsed {
            Ok((events, cursor, has_more)) => {
                let next_cursor =
                    cursor.or_else(|| events.last().map(|e| e.offset.clone().unwrap_or_else(|| e.id.clone())));
                let moved = next_cursor.is_some() && next_cursor != self.cursor;
                if next_cursor.is_some() {
                    self.cursor = next_cursor;
                }
                let asked = if self.page == 0 { cfg.limit } else { self.page };
                if self.page != 0 {
                    let doubled = self.page.saturating_mul(2);
                    self.page = if doubled >= cfg.limit { 0 } else { doubled };
                }
                let interval = ms(cfg.interval);
                // A catch-up reads on at once while the feed says (or a full page suggests) there
                // is more, and the cursor moves; then it is done.
                let more = has_more.unwrap_or(events.len() >= asked as usize) && moved;
                if catch_up && !more {
                    self.phase = FeedPhase::Off;
                    self.caught_up = true;
                    self.deliver(cx, inbox, cfg, events);
                    cx.out.push_back(Output::Feed(FeedStatus::CaughtUp));
                    return true;
                }
                self.phase = FeedPhase::Polling {
                    next: if catch_up { cx.now } else { cx.now.plus_millis(interval) },
                    in_flight: None,
                    interval_ms: interval,
                    failures: 0,
                    catch_up,
                };
                self.deliver(cx, inbox, cfg, events);
            }
            Err(error) => {
                let failures = failures + 1;
                if failures >= cfg.max_failures {
                    self.phase = FeedPhase::GaveUp;
                    self.caught_up |= catch_up;
                    cx.out.push_back(Output::Feed(FeedStatus::GaveUp { error }));
                } else {
                    let next_ms =
                        (interval_ms.saturating_mul(u64::from(cfg.backoff_percent)) / 100).min(ms(cfg.max_interval));
                    self.phase = FeedPhase::Polling {
                        next: cx.now.plus_millis(next_ms),
                        in_flight: None,
                        interval_ms: next_ms,
                        failures,
                        catch_up,
                    };
                }
            }
        }
        true
    }

    fn deliver(&mut self, cx: &mut Cx<'_>, inbox: &mut Inbox, cfg: &crate::config::FeedConfig, events: Vec<FeedEvent>) {
        let main = &cx.config.url.namespace;
        let mut ids = Vec::with_capacity(events.len());
        for e in events {
            ids.push(e.id.clone());
            // The feed's own offsets are its cursor positions: a repeated one is the same event.
            let mut keys = Vec::with_capacity(2);
            if let Some(o) = &e.offset {
                keys.push(DedupKey::Offset(o.clone()));
            }
            keys.push(DedupKey::EnvelopeId(e.id.clone()));
            if inbox.seen(&keys, true) {
                continue;
            }
            let Ok(args) = Args::from_json_array(text::concat(&["[", &e.data, "]"]), Vec::new()) else { continue };
            // Its position (a `since` the feed takes back) counts once it is delivered.
            let position = e.offset.clone().unwrap_or_else(|| e.id.clone());
            let retired = Retired { namespace: main.clone(), socket_offset: None, envelope: Some(position) };
            let delivery = inbox.admit(keys, Some(retired));
            cx.out.push_back(Output::Event(Event {
                namespace: main.clone(),
                name: e.name,
                args,
                offset: e.offset,
                ack: None,
                source: EventSource::Feed,
                delivery,
            }));
        }
        if ids.is_empty() {
            return;
        }
        let mut body = String::from("{\"eventIds\":[");
        for (i, id) in ids.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            json::write_string(&mut body, id);
        }
        body.push_str("]}");
        let id = RequestId(cx.ids.next());
        let authorization = self.token.as_deref().map(bearer);
        cx.out.push_back(Output::Http(HttpRequest {
            id,
            purpose: RequestPurpose::FeedAck,
            method: Method::Post,
            url: text::concat(&[text::trim_end_byte(&cfg.url, b'/'), "/events/acknowledge"]),
            content_type: Some("application/json"),
            authorization,
            body: Some(body),
            max_body: 64 << 10,
        }));
        // Its answer is ignored, but an acknowledgement left hanging is aborted in time (and at
        // most 16 wait at once).
        self.acks.push((id, cx.now + cfg.request_timeout));
        if self.acks.len() > 16 {
            let (old, _) = self.acks.remove(0);
            cx.out.push_back(Output::AbortHttp(old));
        }
    }
}

/// One event of a history page ([`history_page`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEvent {
    /// The feed's event id (the envelope id).
    pub id: String,
    /// The event name.
    pub name: String,
    /// Its arguments: the feed's `data`, as the only argument (what the socket delivers).
    pub args: Args,
    /// The feed's offset of the event, when it gives one.
    pub offset: Option<String>,
}

/// A page of the feed's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    /// The events, oldest first.
    pub events: Vec<HistoryEvent>,
    /// What to pass as `since` for the next page: the feed's `cursor`, else the last event's
    /// offset or id; `None` when the page is empty and the feed gave no cursor.
    pub cursor: Option<String>,
    /// Whether the feed says there is more after this page (`hasMore`; without it, whether the
    /// page came back full).
    pub has_more: bool,
}

/// Decodes the answer to a [`super::Client::history_request`]: status 200 and the feed's JSON
/// (the contract at the top of this module); anything else is an error to report, never a page.
pub fn history_page(status: u16, body: &[u8], limit: u32) -> Result<HistoryPage, String> {
    if status != 200 {
        return Err(answered(status));
    }
    let text = std::str::from_utf8(body).map_err(|_| "the feed's answer is not UTF-8".to_string())?;
    let (events, cursor, has_more) = parse_feed(text).map_err(str::to_string)?;
    let has_more = has_more.unwrap_or(events.len() >= limit as usize);
    let cursor = cursor.or_else(|| events.last().map(|e| e.offset.clone().unwrap_or_else(|| e.id.clone())));
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        let args = Args::from_json_array(text::concat(&["[", &e.data, "]"]), Vec::new())
            .map_err(|_| text::concat(&["feed event ", &e.id, " has data that is not JSON"]))?;
        out.push(HistoryEvent { id: e.id, name: e.name, args, offset: e.offset });
    }
    Ok(HistoryPage { events: out, cursor, has_more })
}

/// `{feed}/events?limit=N[&since=S]`.
fn events_url(cfg: &FeedConfig, limit: u32, since: Option<&str>) -> String {
    let mut url = text::concat(&[text::trim_end_byte(&cfg.url, b'/'), "/events?limit="]);
    json::write_u64(&mut url, u64::from(limit));
    if let Some(c) = since {
        url.push_str("&since=");
        crate::url::encode_component(c, &mut url);
    }
    url
}

/// The `Authorization` header for the feed's token.
fn bearer(token: &str) -> String {
    text::concat(&["Bearer ", token])
}

/// The error for a feed answer that is not 200.
fn answered(status: u16) -> String {
    text::concat(&["the feed answered HTTP ", &text::decimal(u64::from(status))])
}

/// The request for a page of history: `GET {feed}/events?limit=N[&since=S]` with the feed's
/// bearer token; `None` without a feed.
pub(super) fn history_request(
    cx: &mut Cx<'_>,
    token: Option<&str>,
    since: Option<&str>,
    limit: u32,
) -> Option<HttpRequest> {
    let cfg = cx.config.feed.as_ref()?;
    let limit = limit.clamp(1, 1000);
    let url = events_url(cfg, limit, since);
    Some(HttpRequest {
        id: RequestId(cx.ids.next()),
        purpose: RequestPurpose::FeedHistory,
        method: Method::Get,
        url,
        content_type: None,
        authorization: token.map(bearer),
        body: None,
        max_body: cfg.max_body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_contract_and_aliases() {
        let (ev, cursor, _) =
            parse_feed(r#"{"events":[{"id":"e1","event":"task.created","data":{"a":1},"offset":"5"},{"id":2,"type":"x","payload":[1]}],"cursor":"9"}"#)
                .unwrap();
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0].name, "task.created");
        assert_eq!(ev[0].data, r#"{"a":1}"#);
        assert_eq!(ev[0].offset.as_deref(), Some("5"));
        assert_eq!(ev[1].id, "2");
        assert_eq!(ev[1].data, "[1]");
        assert_eq!(cursor.as_deref(), Some("9"));
        let (ev, _, _) = parse_feed(r#"{"data":[{"id":"a","type":"t"}]}"#).unwrap();
        assert_eq!(ev[0].data, "null");
        assert!(parse_feed("[]").is_err());
        assert!(parse_feed(r#"{"events":[{"event":"x"}]}"#).is_err());
    }

    #[test]
    fn token_comes_from_auth() {
        assert_eq!(token_of(r#"{"token":"abc","x":1}"#).as_deref(), Some("abc"));
        assert_eq!(token_of(r#"{"x":1}"#), None);
    }
}
