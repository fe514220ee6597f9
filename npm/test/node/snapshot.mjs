// `tidings/snapshot` on Node against the Node test server's `subscribe:<topic>`: the snapshot
// first, even when a live update reached the room while it was loading; a new session (s0 has no
// recovery) subscribes again and a new snapshot comes first.
// Usage: node snapshot.mjs URL. Run by scripts/test-wasm.sh after the package is built.

import assert from "node:assert/strict";
import { connect } from "tidings";
import { subscribeWithSnapshot } from "tidings/snapshot";

const [url] = process.argv.slice(2);
assert.ok(url, "usage: snapshot.mjs URL");
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const topic = `dash-${Math.random().toString(36).slice(2)}`;
const control = async (path, body) => {
  const res = await fetch(`${url}/control/${path}`, { method: "POST", body: JSON.stringify(body) });
  assert.equal(res.status, 200, path);
  return res.json();
};
async function until(what, cond) {
  for (let i = 0; i < 200 && !cond(); i++) await sleep(25);
  assert.ok(cond(), `timed out waiting for ${what}`);
}

await control(`snapshot?topic=${topic}`, { v: 1 });
const socket = connect(url, { transports: ["polling"], reconnectionDelay: 100, reconnectionDelayMax: 200 });
const seen = [];
subscribeWithSnapshot(
  socket,
  { subscribe: `subscribe:${topic}`, args: { delayMs: 300 }, live: `${topic}:update` },
  { snapshot: (s) => seen.push(["snapshot", s.v]), live: (d) => seen.push(["live", d.v]), error: (e) => seen.push(["error", e.message]) },
);
const timeout = (ms, what) =>
  new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms).unref());
await Promise.race([new Promise((resolve) => socket.on("connect", resolve)), timeout(10_000, "connect")]);
await sleep(100); // subscribed, the server "loading" the snapshot
await control(`to?room=${topic}&event=${topic}:update`, [{ v: 2 }]);
await until("the snapshot and the update", () => seen.length >= 2);
assert.deepEqual(seen, [["snapshot", 1], ["live", 2]], "the snapshot first, then the update that waited");

await control(`snapshot?topic=${topic}`, { v: 3 });
await control("kill-transports", {});
await until("a new snapshot", () => seen.length >= 3);
await control(`to?room=${topic}&event=${topic}:update`, [{ v: 4 }]);
await until("live again", () => seen.length >= 4);
assert.deepEqual(seen.slice(2), [["snapshot", 3], ["live", 4]], "a new session: subscribed again, a new snapshot first");
socket.close();
console.log(`ok node ${process.versions.node}: tidings/snapshot, snapshot before live, resubscribed after a new session`);
