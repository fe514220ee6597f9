// The package on Node, against the real Node socket.io test server (s0): imports `tidings` by
// name (the package's "node" condition), connects, receives the server's `auth` event, gets an
// ack, and closes; then connects with a dead server first and the test server as its fallback
// (`fallbackUrls`); and the `validate` option on server events. Usage: node [--experimental-websocket] connect.mjs URL polling|websocket
// Run by scripts/test-wasm.sh after the package is built, on Node 20, on Node 22, and on Deno
// (`deno run --import-map deno-import-map.json`: "tidings" is dist/node.js, the file Deno's
// "node" condition picks from the package).

import assert from "node:assert/strict";
import { connect } from "tidings";

const [url, transport] = process.argv.slice(2);
assert.ok(url && (transport === "polling" || transport === "websocket"), "usage: connect.mjs URL polling|websocket");
if (transport === "websocket") {
  assert.equal(typeof globalThis.WebSocket, "function", "this Node has no global WebSocket");
}

const runtime = globalThis.Deno ? `deno ${globalThis.Deno.version.deno}` : `node ${process.versions.node}`;
// A timer that keeps the process alive no longer than the test: Node's has unref(), Deno's is a number.
const unref = (t) => (typeof t === "object" ? t.unref() : globalThis.Deno.unrefTimer(t));
const timeout = (ms, what) =>
  new Promise((_, reject) => unref(setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)));

const socket = connect(url, { transports: [transport], reconnection: false, auth: { token: "node" } });
try {
  const auth = new Promise((resolve) => socket.on("auth", (a) => resolve(a)));
  await Promise.race([new Promise((resolve) => socket.on("connect", resolve)), timeout(10_000, "connect")]);
  assert.deepEqual(await Promise.race([auth, timeout(10_000, "the auth event")]), { token: "node" });
  const state = socket.state;
  assert.equal(state.status, "connected");
  assert.equal(state.transport, transport);
  assert.deepEqual(await socket.timeout(5_000).emitWithAck("echo", { n: 1 }), { n: 1 });
  console.log(`ok ${runtime} ${transport}: connect, event, ack`);
} finally {
  socket.close();
}

// The URL's server is down (nothing listens on port 1): the next attempt goes to the fallback.
const failover = connect("http://127.0.0.1:1", {
  fallbackUrls: [url],
  transports: [transport],
  reconnectionDelay: 100,
  reconnectionDelayMax: 200,
  auth: { token: "node" },
});
try {
  const errors = [];
  failover.on("connect_error", (e) => errors.push(e.message));
  await Promise.race([new Promise((resolve) => failover.on("connect", resolve)), timeout(10_000, "the fallback")]);
  assert.ok(errors.length >= 1, "the dead server was tried first and reported");
  assert.deepEqual(await failover.timeout(5_000).emitWithAck("echo", { n: 2 }), { n: 2 });
  console.log(`ok ${runtime} ${transport}: a dead first server, connected to the fallback`);
} finally {
  failover.close();
}

// `validate`: an event that fails the check reaches no listener and is reported through `invalid`;
// the events around it arrive in order.
const checked = connect(url, {
  transports: [transport],
  reconnection: false,
  validate: (event, args) => (event === "echo" && typeof args[0]?.n !== "number" ? [`${event}: n must be a number`] : []),
});
try {
  const got = [];
  const invalid = [];
  checked.on("echo", (p) => got.push(p.n));
  checked.on("invalid", (r) => invalid.push(r));
  await Promise.race([new Promise((resolve) => checked.on("connect", resolve)), timeout(10_000, "connect")]);
  for (const n of [1, "two", 3]) checked.emit("echo", { n });
  const deadline = Date.now() + 10_000;
  while (got.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(got, [1, 3], "only the valid echoes reach the listener, in order");
  assert.equal(invalid.length, 1);
  assert.equal(invalid[0].event, "echo");
  assert.deepEqual(invalid[0].args, [{ n: "two" }]);
  assert.deepEqual(invalid[0].problems, ["echo: n must be a number"]);
  assert.equal(invalid[0].meta.source, "socket");
  console.log(`ok ${runtime} ${transport}: validate keeps an invalid event from the listeners and reports it`);
} finally {
  checked.close();
}

// Parity with the Rust SDK: `query`, pattern listeners, `idempotent` emits, the envelope id in
// `lastEventMeta`.
const parity = connect(url, { transports: [transport], reconnection: false, query: { room: "lobby", v: "2" } });
try {
  const all = [];
  const ids = [];
  parity.on("*", (event, ...args) => {
    all.push(event);
    if (event === "echo") ids.push(parity.lastEventMeta?.id);
  });
  await Promise.race([new Promise((resolve) => parity.on("connect", resolve)), timeout(10_000, "connect")]);
  const query = await parity.timeout(5_000).emitWithAck("query");
  assert.equal(query.room, "lobby");
  assert.equal(query.v, "2");
  const echoed = await parity.idempotent.emitWithAck("echo", { n: 1 });
  assert.equal(echoed.n, 1);
  const key = echoed.idempotencyKey;
  assert.ok(typeof key === "string" && key.length >= 16, `an idempotency key: ${JSON.stringify(echoed)}`);
  parity.emit("echo", { id: "evt_1", type: "echo", data: { n: 2 } });
  const deadline = Date.now() + 10_000;
  while (ids.length < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(ids, ["evt_1"], "the envelope id of the echoed envelope");
  assert.ok(all.includes("auth") && all.includes("echo"), `"*" heard every event: ${all}`);
  console.log(`ok ${runtime} ${transport}: query, "*" listeners, idempotent emits, lastEventMeta.id`);
} finally {
  parity.close();
}

// `path`: "/socket.io" is requested as "/socket.io/" (socket.io-client's trailing slash); a path
// the server does not serve fails to connect.
for (const [path, ok] of [["/socket.io", true], ["/elsewhere", false]]) {
  const s = connect(url, { transports: [transport], reconnection: false, path, forceNew: true });
  try {
    const outcome = await Promise.race([
      new Promise((resolve) => s.on("connect", () => resolve(true))),
      new Promise((resolve) => s.on("connect_error", () => resolve(false))),
      timeout(10_000, `path ${path}`),
    ]);
    assert.equal(outcome, ok, `path ${path}`);
  } finally {
    s.close();
  }
}
console.log(`ok ${runtime} ${transport}: path`);

// `extraHeaders` reach the server with the handshake (long-polling requests; over WebSocket the
// upgrade request, where the runtime's WebSocket takes headers: Node, Deno), and `debug` logs the
// protocol without the token (namespace /quiet: the server does not echo the auth back as an
// event there, which the log would then show as the event's data it is).
{
  const lines = [];
  const TOKEN = "secret-token-do-not-log";
  const s = connect(`${url.replace(/\/$/, "")}/quiet`, {
    transports: [transport],
    reconnection: false,
    forceNew: true,
    auth: { token: TOKEN },
    extraHeaders: { "x-tidings-test": "extra" },
    debug: (line) => lines.push(line),
  });
  try {
    await Promise.race([new Promise((resolve) => s.on("connect", resolve)), timeout(10_000, "connect")]);
    const headers = await s.timeout(5_000).emitWithAck("headers");
    assert.equal(headers["x-tidings-test"], "extra", `the handshake's headers: ${JSON.stringify(headers)}`);
    assert.deepEqual(await s.timeout(5_000).emitWithAck("echo", { logged: 1 }), { logged: 1 });
    const text = lines.join("\n");
    assert.ok(!text.includes(TOKEN), `the token was logged:\n${text}`);
    assert.ok(lines.some((l) => l.includes('40/quiet,{[redacted]}')), `the CONNECT packet, redacted:\n${text}`);
    assert.ok(lines.some((l) => l.startsWith(">") && l.includes('"echo",{"logged":1}')), `the emit:\n${text}`);
    assert.ok(lines.some((l) => l.startsWith("<") && l.includes('{"logged":1}')), `the ack:\n${text}`);
    assert.ok(lines.some((l) => l.startsWith("state /quiet ") && l.includes('"connected"')), `the state:\n${text}`);
    console.log(`ok ${runtime} ${transport}: extraHeaders, debug (${lines.length} lines, no token)`);
  } finally {
    s.close();
  }
}
