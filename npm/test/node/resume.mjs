// The package on Node resumes from a stored position (issue 14): a first client reads the history
// after a marker from the feed (`feed.since`), then live events; its `cursor` is the position of
// the last event delivered; `history()` pages the same events. A second client started from that cursor gets exactly the events
// published after it: history from the feed, then live, each once, in order.
// Usage: node resume.mjs URL (the Node socket.io test server: its /feed and /control/publish).
// Run by scripts/test-wasm.sh after the package is built.

import assert from "node:assert/strict";
import { connect } from "tidings";

const [url] = process.argv.slice(2);
assert.ok(url, "usage: resume.mjs URL");

const timeout = (ms, what) =>
  new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms).unref());
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const run = Math.random().toString(36).slice(2);
const event = `resume-${run}`;

async function publish(n) {
  const res = await fetch(`${url}/control/publish?event=${event}`, { method: "POST", body: JSON.stringify({ n }) });
  assert.equal(res.status, 200);
  return res.json();
}

/** A client from `since`, collecting the `n` of every event; connected when returned. */
async function client(since) {
  const got = [];
  const socket = connect(url, {
    transports: ["polling"],
    auth: { token: "node" },
    feed: { url: `${url}/feed`, since, after: 60_000 },
  });
  socket.on(event, (envelope) => got.push(envelope.data.n));
  await Promise.race([new Promise((resolve) => socket.on("connect", resolve)), timeout(10_000, "connect")]);
  return { socket, got };
}

async function until(what, cond) {
  for (let i = 0; i < 200 && !cond(); i++) await sleep(25);
  assert.ok(cond(), `timed out waiting for ${what}`);
}

const marker = await publish(-1);
for (const n of [0, 1, 2]) await publish(n);

const first = await client(marker.id);
await until("the history", () => first.got.length >= 3);
await publish(3);
const last = await publish(4);
await until("the live events", () => first.got.length >= 5);
assert.deepEqual(first.got, [0, 1, 2, 3, 4], "history after the marker, then live");
await until("the cursor", () => first.socket.cursor === last.id);
// history(): the same events, page by page, from the feed; nothing delivered to the listeners.
const pages = [];
let since = marker.id;
for (;;) {
  const page = await first.socket.history({ since, limit: 2 });
  pages.push(page.events.filter((e) => e.event === event).map((e) => e.data.data.n));
  assert.ok(page.events.every((e) => typeof e.id === "string" && e.offset !== undefined));
  if (!page.hasMore) break;
  since = page.cursor;
}
assert.deepEqual(pages.flat(), [0, 1, 2, 3, 4], "history pages after the marker");
assert.deepEqual(first.got, [0, 1, 2, 3, 4], "history delivered nothing to the listeners");
await assert.rejects(first.socket.history({ since: "evt_nope" }), /HTTP 400/);
const stored = first.socket.cursor;
first.socket.close();

for (const n of [5, 6]) await publish(n);
const second = await client(stored);
await until("what was missed", () => second.got.length >= 2);
await publish(7);
await until("the next live event", () => second.got.length >= 3);
await sleep(300);
assert.deepEqual(second.got, [5, 6, 7], "every event after the stored cursor once, in order");
second.socket.close();
console.log(`ok node ${process.versions.node}: history(), feed.since, cursor ${stored}, resumed without gap or duplicate`);
