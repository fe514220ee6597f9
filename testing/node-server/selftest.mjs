#!/usr/bin/env node
// Smoke test of tidings-test-server.mjs with the official socket.io-client 4.8.4.
// Usage: node selftest.mjs   (exit code 0 when every check passes, 1 otherwise)
// Needs the dependencies: bash ../../scripts/install-node-deps.sh

import { spawn } from "node:child_process";
import { once as onceEvent } from "node:events";
import { fileURLToPath } from "node:url";
import path from "node:path";
import assert from "node:assert/strict";
import { io as connect } from "socket.io-client";

const here = path.dirname(fileURLToPath(import.meta.url));
const serverScript = path.join(here, "tidings-test-server.mjs");

// ---------------------------------------------------------------- helpers

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Resolves with the arguments of the next `event` on a socket.io-client emitter. */
function next(emitter, event, ms = 3000) {
  return withTimeout(
    new Promise((resolve) => emitter.once(event, (...args) => resolve(args))),
    ms,
    `event ${event}`,
  );
}

async function waitFor(cond, ms = 3000, what = "condition") {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await cond()) return;
    await sleep(10);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

async function startServer(...argv) {
  const proc = spawn(process.execPath, [serverScript, ...argv], { stdio: ["pipe", "pipe", "pipe"] });
  const stderrLines = [];
  let stderrBuf = "";
  proc.stderr.setEncoding("utf8");
  proc.stderr.on("data", (chunk) => {
    stderrBuf += chunk;
    let i;
    while ((i = stderrBuf.indexOf("\n")) >= 0) {
      stderrLines.push(stderrBuf.slice(0, i));
      stderrBuf = stderrBuf.slice(i + 1);
    }
  });
  proc.stdout.setEncoding("utf8");
  let stdout = "";
  const line = await withTimeout(
    new Promise((resolve, reject) => {
      proc.stdout.on("data", (chunk) => {
        stdout += chunk;
        const i = stdout.indexOf("\n");
        if (i >= 0) resolve(stdout.slice(0, i));
      });
      proc.once("exit", (code) => reject(new Error(`server exited early (${code}): ${stderrLines.join("\n")}`)));
    }),
    5000,
    "the server's port line",
  );
  assert.match(line, /^\{"port":\d+\}$/, "the first stdout line is exactly {\"port\":N}");
  const { port } = JSON.parse(line);
  const url = `http://127.0.0.1:${port}`;
  const exited = onceEvent(proc, "exit");
  const clients = [];
  const server = {
    proc,
    port,
    url,
    stderrLines,
    exited,
    client(nsp = "/", opts = {}) {
      const socket = connect(`${url}${nsp}`, { forceNew: true, ...opts });
      clients.push(socket);
      return socket;
    },
    async control(method, route, body) {
      const res = await fetch(`${url}${route}`, {
        method,
        body: body === undefined ? undefined : JSON.stringify(body),
        headers: body === undefined ? {} : { "Content-Type": "application/json" },
      });
      return { status: res.status, body: await res.json() };
    },
    frames() {
      return stderrLines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)).filter((l) => l.dir);
    },
    async stop() {
      for (const c of clients) c.disconnect();
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
      const [code] = await withTimeout(exited, 3000, "server exit");
      return code;
    },
  };
  return server;
}

async function connected(socket, ms = 3000) {
  if (socket.connected) return;
  await withTimeout(
    new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", reject);
    }),
    ms,
    "connect",
  );
}

let failures = 0;
let passes = 0;
async function check(name, fn) {
  const t0 = Date.now();
  try {
    await withTimeout(Promise.resolve().then(fn), 15000, name);
    passes++;
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (err) {
    failures++;
    console.log(`FAIL ${name}: ${err?.stack ?? err}`);
  }
}

// ---------------------------------------------------------------- S0

async function s0() {
  const srv = await startServer("--setup", "s0", "--log-frames");
  try {
    const a = srv.client("/", { auth: { token: "abc" } });
    const authArgs = next(a, "auth");

    await check("s0: connect with auth, server emits auth", async () => {
      await connected(a);
      assert.deepEqual(await authArgs, [{ token: "abc" }]);
      await waitFor(() => a.io.engine.transport.name === "websocket", 3000, "upgrade to websocket");
    });

    await check("s0: echo with ack returns all args; without ack echoes an event", async () => {
      assert.deepEqual(await a.timeout(2000).emitWithAck("echo", { a: 1 }), { a: 1 });
      const many = await new Promise((resolve) => a.emit("echo", 1, "two", [3], (...r) => resolve(r)));
      assert.deepEqual(many, [1, "two", [3]]);
      const back = next(a, "echo");
      a.emit("echo", "x", 2);
      assert.deepEqual(await back, ["x", 2]);
    });

    await check("s0: echo binary with ack", async () => {
      const r = await a.timeout(2000).emitWithAck("echo", Buffer.from([1, 2, 3]));
      assert.ok(Buffer.isBuffer(r));
      assert.deepEqual([...r], [1, 2, 3]);
    });

    await check("s0: hi, message -> message-back, message-with-ack", async () => {
      const hi = next(a, "hi");
      a.emit("hi");
      assert.deepEqual(await hi, []);
      const mb = next(a, "message-back");
      a.emit("message", 1, "2", { three: 3 });
      assert.deepEqual(await mb, [1, "2", { three: 3 }]);
      const r = await new Promise((resolve) => a.emit("message-with-ack", 1, "2", (...x) => resolve(x)));
      assert.deepEqual(r, [1, "2"]);
    });

    await check("s0: ask -> server ask(1, ack) -> answered", async () => {
      let askArg;
      a.once("ask", (n, cb) => {
        askArg = n;
        cb("yes");
      });
      const answered = next(a, "answered");
      a.emit("ask");
      assert.deepEqual(await answered, ["yes"]);
      assert.equal(askArg, 1);
    });

    await check("s0: doge binary and bin2 attachments", async () => {
      const doge = next(a, "doge");
      a.emit("doge");
      const [buf] = await doge;
      assert.ok(Buffer.isBuffer(buf) || buf instanceof ArrayBuffer);
      assert.equal(Buffer.from(buf).toString(), "asdfasdf");
      const bin2 = next(a, "bin2");
      a.emit("bin2");
      const [obj] = await bin2;
      assert.deepEqual([...Buffer.from(obj.a)], [1, 2, 3]);
      assert.equal(obj.b[0], "x");
      assert.deepEqual([...Buffer.from(obj.b[1].c)], [4, 5]);
    });

    await check("s0: whoami", async () => {
      const me = await a.timeout(2000).emitWithAck("whoami");
      assert.equal(me.id, a.id);
      assert.equal(me.recovered, false);
      assert.deepEqual(me.auth, { token: "abc" });
      assert.equal(me.transport, "websocket");
      assert.equal(me.nsp, "/");
    });

    await check("s0: /custom on the same manager", async () => {
      const c = a.io.socket("/custom", { auth: { token: "x" } }); // autoConnect
      const auth = next(c, "auth");
      await connected(c);
      assert.deepEqual(await auth, [{ token: "x" }]);
      const me = await c.timeout(2000).emitWithAck("whoami");
      assert.equal(me.nsp, "/custom");
      // bcast from /custom reaches / and /custom
      const newsRoot = next(a, "news");
      const newsCustom = next(c, "news");
      assert.deepEqual(await c.timeout(2000).emitWithAck("bcast", "hello"), { ok: true });
      assert.deepEqual(await newsRoot, ["hello"]);
      assert.deepEqual(await newsCustom, ["hello"]);
      c.disconnect();
      assert.deepEqual(await a.timeout(2000).emitWithAck("echo", 1), 1);
    });

    await check("s0: /no fails with data.code 42 and no retry", async () => {
      const s = srv.client("/no");
      const [err] = await next(s, "connect_error");
      assert.equal(err.message, "not authorized");
      assert.equal(err.data.code, 42);
      assert.equal(s.active, false);
      s.close();
    });

    await check("s0: /auth checks the token", async () => {
      const bad = srv.client("/auth", { auth: { token: "bad" } });
      const [err] = await next(bad, "connect_error");
      assert.equal(err.message, "invalid token");
      assert.equal(err.data.code, "invalid_token");
      bad.close();
      const good = srv.client("/auth", { auth: { token: "good" } });
      await connected(good);
      assert.deepEqual(await good.timeout(2000).emitWithAck("echo", "ok"), "ok");
      good.close();
    });

    await check("s0: unknown namespace", async () => {
      const s = srv.client("/random");
      const [err] = await next(s, "connect_error");
      assert.equal(err.message, "Invalid namespace");
      s.close();
    });

    await check("s0: emit-n, count-acks, dedupe, nothing-acks, reset", async () => {
      const seq = [];
      const onSeq = (i) => seq.push(i);
      a.on("seq", onSeq);
      assert.equal(await a.timeout(2000).emitWithAck("emit-n", 5), 5);
      a.off("seq", onSeq);
      assert.deepEqual(seq, [0, 1, 2, 3, 4]);
      assert.equal(await a.timeout(2000).emitWithAck("count-acks"), 1);
      assert.equal(await a.timeout(2000).emitWithAck("count-acks"), 2);
      assert.equal(await a.timeout(2000).emitWithAck("count-acks", "other"), 1);
      assert.deepEqual(await a.timeout(2000).emitWithAck("dedupe", { key: "k" }), { seen: 1 });
      assert.deepEqual(await a.timeout(2000).emitWithAck("dedupe", { key: "k" }), { seen: 2 });
      await assert.rejects(a.timeout(200).emitWithAck("nothing-acks"), /operation has timed out/);
      assert.deepEqual((await srv.control("POST", "/control/reset")).body, { ok: true });
      assert.equal(await a.timeout(2000).emitWithAck("count-acks"), 1);
    });

    await check("s0: rooms and control to", async () => {
      assert.deepEqual(await a.timeout(2000).emitWithAck("room:join", { room: "r1" }), { ok: true, room: "r1" });
      assert.deepEqual(await a.timeout(2000).emitWithAck("join", "r2"), { ok: true });
      const list = (await srv.control("GET", "/control/sockets")).body;
      const mine = list.find((s) => s.id === a.id);
      assert.ok(mine, "GET /control/sockets lists the socket");
      assert.equal(mine.nsp, "/");
      assert.equal(mine.recovered, false);
      assert.deepEqual(new Set(mine.rooms), new Set([a.id, "r1", "r2"]));
      const roomed = next(a, "roomed");
      const r = await srv.control("POST", "/control/to?room=r1&event=roomed", [1, "a"]);
      assert.equal(r.status, 200);
      assert.deepEqual(await roomed, [1, "a"]);
      const viaSocket = next(a, "ev");
      assert.deepEqual(await a.timeout(2000).emitWithAck("to-room", "r2", "ev", 7), { ok: true });
      assert.deepEqual(await viaSocket, [7]);
      assert.deepEqual(await a.timeout(2000).emitWithAck("room:leave", "r1"), { ok: true, room: "r1" });
      let got = false;
      a.once("gone", () => (got = true));
      await srv.control("POST", "/control/to?room=r1&event=gone", []);
      await a.timeout(2000).emitWithAck("echo", 0); // round trip
      assert.equal(got, false);
      a.off("gone");
    });

    await check("s0: control emit (with $base64) and errors", async () => {
      const ctl = next(a, "ctl");
      const r = await srv.control("POST", "/control/emit?ns=/&event=ctl", [1, "a", { $base64: "AQI=" }]);
      assert.equal(r.status, 200);
      assert.equal(r.body.ok, true);
      const [n, s, bin] = await ctl;
      assert.equal(n, 1);
      assert.equal(s, "a");
      assert.deepEqual([...Buffer.from(bin)], [1, 2]);
      assert.equal((await srv.control("POST", "/control/emit?ns=/nope&event=x", [])).status, 404);
      assert.equal((await srv.control("POST", "/control/emit?event=connect", [])).status, 400);
      assert.equal((await srv.control("POST", "/control/emit?event=x", { not: "array" })).status, 400);
      assert.equal((await srv.control("GET", "/control/nope")).status, 404);
      const info = (await srv.control("GET", "/control/info")).body;
      assert.equal(info.setup, "s0");
      assert.equal(info.pingInterval, 300);
    });

    await check("s0: kill-transports drops the transport, client reconnects", async () => {
      const disc = next(a, "disconnect");
      const r = await srv.control("POST", "/control/kill-transports");
      assert.equal(r.status, 200);
      assert.ok(r.body.closed >= 1);
      assert.equal((await disc)[0], "transport close");
      await next(a, "connect", 5000);
      assert.equal(await a.timeout(2000).emitWithAck("echo", 1), 1);
    });

    await check("s0: close-transport, then disconnect-me", async () => {
      const disc = next(a, "disconnect");
      a.emit("close-transport");
      assert.equal((await disc)[0], "transport close");
      await next(a, "connect", 5000);
      const disc2 = next(a, "disconnect");
      a.emit("disconnect-me");
      assert.equal((await disc2)[0], "io server disconnect");
      assert.equal(a.active, false);
      a.connect();
      await connected(a);
      const disc3 = next(a, "disconnect");
      a.emit("close-conn");
      assert.equal((await disc3)[0], "io server disconnect");
    });

    await check("s0: idle heartbeat keeps the session", async () => {
      const s = srv.client("/", { transports: ["websocket"] });
      await connected(s);
      let disconnected = false;
      s.on("disconnect", () => (disconnected = true));
      await sleep(1000);
      assert.equal(disconnected, false);
      assert.equal(await s.timeout(2000).emitWithAck("echo", 1), 1);
      s.close();
    });

    await check("s0: --log-frames wire log", async () => {
      const frames = srv.frames();
      const has = (pred, what) => assert.ok(frames.some(pred), `frame log has ${what}`);
      has((f) => f.dir === "out" && f.type === "open" && f.frame.startsWith('0{"sid":'), "the open packet");
      has((f) => f.dir === "in" && f.frame === '40{"token":"abc"}', "the CONNECT with auth");
      has((f) => f.dir === "out" && f.frame === '42["auth",{"token":"abc"}]', "the auth event");
      has((f) => f.dir === "in" && f.frame === "2probe" && f.upgrade === true, "2probe");
      has((f) => f.dir === "out" && f.frame === "3probe" && f.upgrade === true, "3probe");
      has((f) => f.dir === "in" && f.frame === "5" && f.upgrade === true, "the upgrade packet");
      has((f) => f.dir === "out" && f.frame === "2", "a ping");
      has((f) => f.dir === "in" && f.frame === "3", "a pong");
      has((f) => f.dir === "out" && f.frame === '451-["doge",{"_placeholder":true,"num":0}]', "the doge header");
      has(
        (f) => f.dir === "out" && f.binary && Buffer.from(f.data, "base64").toString() === "asdfasdf",
        "the doge attachment",
      );
      has((f) => f.dir === "in" && f.binary && f.data === "AQID" && f.transport === "websocket", "binary in");
      for (const f of frames) assert.ok(typeof f.sid === "string" && typeof f.t === "number");
    });
  } finally {
    assert.equal(await srv.stop(), 0, "SIGTERM exits 0");
  }
}

// ---------------------------------------------------------------- S1

async function s1() {
  const srv = await startServer("--setup", "s1");
  try {
    await check("s1: connection state recovery after close-transport", async () => {
      const opts = { transports: ["websocket"], reconnectionDelay: 500, randomizationFactor: 0 };
      const a = srv.client("/", { ...opts, auth: { token: "t1" } });
      const b = srv.client("/", opts);
      await connected(a);
      await connected(b);
      assert.equal(a.recovered, false);
      const one = next(a, "news");
      await b.timeout(2000).emitWithAck("bcast", "one");
      const [first, offset] = await one;
      assert.equal(first, "one");
      assert.equal(typeof offset, "string", "recovery adds an offset argument");
      const idBefore = a.id;

      const disc = next(a, "disconnect");
      a.emit("close-transport");
      assert.equal((await disc)[0], "transport close");
      await b.timeout(2000).emitWithAck("bcast", "two");
      await b.timeout(2000).emitWithAck("bcast", "three");

      const events = [];
      a.on("news", (x) => events.push(`news:${x}`));
      a.once("connect", () => events.push("connect"));
      await next(a, "connect", 5000);
      assert.equal(a.recovered, true);
      assert.equal(a.id, idBefore);
      assert.deepEqual(events.slice(0, 3), ["news:two", "news:three", "connect"]);
      const me = await a.timeout(2000).emitWithAck("whoami");
      assert.equal(me.recovered, true);
      assert.equal(me.auth.token, "t1");
      assert.equal(typeof me.auth.pid, "string");
      assert.equal(typeof me.auth.offset, "string");
      assert.deepEqual(Object.keys(me.auth), ["pid", "offset", "token"]);

      // kill-transports keeps sessions too; a control emit made meanwhile is replayed.
      a.off("news");
      const discA = next(a, "disconnect");
      const discB = next(b, "disconnect");
      await srv.control("POST", "/control/kill-transports");
      await discA;
      await discB;
      await srv.control("POST", "/control/emit?event=news", ["four"]);
      const four = next(a, "news", 5000);
      await next(a, "connect", 5000);
      assert.equal((await four)[0], "four");
      assert.equal(a.recovered, true);
      await connected(b, 5000);
      assert.equal(b.recovered, true);
      const list = (await srv.control("GET", "/control/sockets")).body;
      assert.ok(list.every((s) => s.recovered === true));
      a.close();
      b.close();
    });

    await check("s1: /quiet sends nothing, so no offset and no recovery", async () => {
      const q = srv.client("/quiet", { transports: ["websocket"], reconnectionDelay: 100, randomizationFactor: 0 });
      await connected(q);
      const id = q.id;
      const disc = next(q, "disconnect");
      q.emit("close-transport");
      await disc;
      await next(q, "connect", 5000);
      assert.equal(q.recovered, false);
      assert.notEqual(q.id, id);
      q.close();
    });
  } finally {
    assert.equal(await srv.stop(), 0);
  }
}

// ---------------------------------------------------------------- S2

async function s2() {
  const srv = await startServer("--setup", "s2");
  try {
    await check("s2: small payload is fine, 200 bytes closes the websocket", async () => {
      const s = srv.client("/", { transports: ["websocket"] });
      await connected(s);
      assert.equal(await s.timeout(2000).emitWithAck("echo", "small"), "small");
      const disc = next(s, "disconnect");
      s.emit("echo", "x".repeat(200));
      assert.equal((await disc)[0], "transport close");
      s.close();
    });
    await check("s2: 200 bytes over polling is a transport error", async () => {
      const s = srv.client("/", { transports: ["polling"] });
      await connected(s);
      const disc = next(s, "disconnect");
      s.emit("echo", "x".repeat(200));
      assert.equal((await disc)[0], "transport error");
      s.close();
    });
  } finally {
    assert.equal(await srv.stop(), 0);
  }
}

// ---------------------------------------------------------------- ws-only

async function wsOnly() {
  const srv = await startServer("--setup", "ws-only");
  try {
    await check("ws-only: polling is refused, websocket works, tryAllTransports falls back", async () => {
      const res = await fetch(`${srv.url}/socket.io/?EIO=4&transport=polling`);
      assert.equal(res.status, 400);
      assert.deepEqual(await res.json(), { code: 0, message: "Transport unknown" });
      const p = srv.client("/", { transports: ["polling"], reconnection: false });
      const [err] = await next(p, "connect_error");
      assert.equal(err.message, "xhr poll error");
      p.close();
      const w = srv.client("/", { transports: ["websocket"] });
      await connected(w);
      assert.deepEqual((await srv.control("GET", "/control/info")).body.transports, ["websocket"]);
      assert.equal((await w.timeout(2000).emitWithAck("whoami")).transport, "websocket");
      w.close();
      const t = srv.client("/", { tryAllTransports: true });
      await connected(t, 5000);
      assert.equal(t.io.engine.transport.name, "websocket");
      t.close();
    });
  } finally {
    assert.equal(await srv.stop(), 0);
  }
}

// ---------------------------------------------------------------- no-ping and overrides

async function noPing() {
  const srv = await startServer("--setup", "no-ping");
  try {
    await check("no-ping: the server never pings, the client times out", async () => {
      const s = srv.client("/", { transports: ["websocket"], reconnection: false });
      await connected(s);
      const t0 = Date.now();
      const [reason] = await next(s, "disconnect", 3000);
      assert.equal(reason, "ping timeout");
      const dt = Date.now() - t0;
      assert.ok(dt >= 400 && dt < 1500, `ping timeout after ${dt} ms, expected about 500`);
    });
  } finally {
    assert.equal(await srv.stop(), 0);
  }
}

async function overrides() {
  const srv = await startServer("--ping-interval", "150", "--ping-timeout=90", "--connect-timeout", "400");
  try {
    await check("overrides: --ping-interval/--ping-timeout reach the handshake", async () => {
      const body = await (await fetch(`${srv.url}/socket.io/?EIO=4&transport=polling`)).text();
      assert.ok(body.startsWith("0{"));
      const open = JSON.parse(body.slice(1));
      assert.equal(open.pingInterval, 150);
      assert.equal(open.pingTimeout, 90);
      assert.deepEqual(open.upgrades, ["websocket"]);
      assert.equal(open.maxPayload, 1000000);
      assert.equal((await srv.control("GET", "/control/info")).body.connectTimeout, 400);
    });
  } finally {
    assert.equal(await srv.stop(), 0);
  }
}

// ---------------------------------------------------------------- lifetime

async function lifetime() {
  await check("lifetime: exits 0 when stdin closes", async () => {
    const srv = await startServer();
    srv.proc.stdin.end();
    const [code] = await withTimeout(srv.exited, 3000, "exit after stdin end");
    assert.equal(code, 0);
  });
  await check("lifetime: exits 0 on POST /control/shutdown", async () => {
    const srv = await startServer("--setup", "s1");
    const s = srv.client("/", { transports: ["websocket"], reconnection: false });
    await connected(s);
    const disc = next(s, "disconnect");
    assert.deepEqual((await srv.control("POST", "/control/shutdown")).body, { ok: true });
    const [code] = await withTimeout(srv.exited, 3000, "exit after shutdown");
    assert.equal(code, 0);
    await disc;
  });
  await check("lifetime: exits 0 on SIGINT", async () => {
    const srv = await startServer();
    srv.proc.kill("SIGINT");
    const [code] = await withTimeout(srv.exited, 3000, "exit after SIGINT");
    assert.equal(code, 0);
  });
  await check("lifetime: bad arguments exit 2", async () => {
    for (const argv of [["--setup", "s9"], ["--bogus"], ["--ping-interval", "abc"]]) {
      const proc = spawn(process.execPath, [serverScript, ...argv], { stdio: ["pipe", "ignore", "ignore"] });
      const [code] = await withTimeout(onceEvent(proc, "exit"), 3000, "exit");
      assert.equal(code, 2, argv.join(" "));
    }
  });
}

// ---------------------------------------------------------------- main

const t0 = Date.now();
for (const group of [s0, s1, s2, wsOnly, noPing, overrides, lifetime]) {
  try {
    await group();
  } catch (err) {
    failures++;
    console.log(`FAIL ${group.name}: ${err?.stack ?? err}`);
  }
}
console.log(`\n${passes} passed, ${failures} failed in ${Date.now() - t0} ms`);
process.exit(failures === 0 ? 0 : 1);
