#!/usr/bin/env node
// A TCP proxy that injects network faults between a client and a real server, controlled over
// HTTP: the browser tests' counterpart of sdk-native/tests/common/proxy.rs (docs/RELIABILITY.md,
// "Fault injection on real sockets"). No dependency beyond Node itself.
//
// Usage: node fault-proxy.mjs --upstream-port N [--log] [--no-stdin-watch]
//
// --log writes one JSON line per connection event to stderr: {"t":ms,"conn":n,"event":...}, with
// "accepted", "request" and "cut" (with "line", the first request's request line), "reset",
// "closed" (with "side": "client" or "server"), and "up"/"down" for every chunk that starts an
// HTTP request or response (with its first "line", its "bytes" and the start of its "body"):
// enough to follow each long-polling request through a fault.
//
// Listens on two ephemeral ports of 127.0.0.1: the proxy (forwarding to 127.0.0.1:N) and its
// control API. Once both listen, prints exactly one line to stdout: {"port":P,"control":C}.
// Exits when its stdin reaches end-of-file (a harness holds a pipe to it), on SIGTERM/SIGINT.
//
// Control API (http://127.0.0.1:C; CORS allowed from any origin, since browser tests call it
// with fetch from their own page). Every answer is the state: {"mode","latencyMs",
// "cutUpgrades","accepted","upgradesCut","resets","open"}.
//   POST /mode?set=pass             forward at once
//   POST /mode?set=latency&ms=N     forward each chunk N ms after it was read (each direction
//                                   on its own; order kept)
//   POST /mode?set=blackhole        forward nothing and read nothing, both directions; every
//                                   connection stays open (no FIN, no RST): a half-open network.
//                                   New connections are accepted (the kernel does) but not read.
//                                   What was held goes through once the mode changes again.
//   POST /reset                     reset (RST) every open connection, both sides
//   POST /cut-upgrades?on=1|0       while on, a connection whose first request asks for a
//                                   WebSocket (`Upgrade: websocket`) is reset before it reaches
//                                   the server: an upgrade that never works
//   POST /restore                   pass, no cut, counters back to zero (between tests)
//   GET  /state                     the state alone
// Counters: `accepted` connections, `upgradesCut` WebSocket handshakes reset, `resets` (RSTs
// sent by /reset, one per connection), `open` connections now.

import http from "node:http";
import net from "node:net";

function fail(message) {
  const usage = "usage: node fault-proxy.mjs --upstream-port N [--log] [--no-stdin-watch]";
  process.stderr.write(`fault-proxy: ${message}\n${usage}\n`);
  process.exit(2);
}

let upstreamPort;
let stdinWatch = true;
let log = false;
for (let i = 2; i < process.argv.length; i++) {
  const arg = process.argv[i];
  if (arg === "--upstream-port") upstreamPort = Number(process.argv[++i]);
  else if (arg === "--no-stdin-watch") stdinWatch = false;
  else if (arg === "--log") log = true;
  else fail(`unknown argument ${JSON.stringify(arg)}`);
}
if (!Number.isInteger(upstreamPort) || upstreamPort <= 0 || upstreamPort > 65535) {
  fail("--upstream-port expects a port");
}

const started = Date.now();
function note(conn, event, extra) {
  if (!log) return;
  process.stderr.write(`${JSON.stringify({ t: Date.now() - started, conn: conn.id, event, ...extra })}\n`);
}
const requestLine = (head) => head.subarray(0, Math.max(0, head.indexOf("\r\n"))).toString("latin1");

let mode = "pass";
let latencyMs = 0;
let cutUpgrades = false;
const counters = { accepted: 0, upgradesCut: 0, resets: 0 };
/** Open connections. */
const conns = new Set();

/** Carries the bytes read from `from` to `to` under the current mode. */
class Pump {
  constructor(conn, from, to) {
    this.conn = conn;
    this.from = from;
    this.to = to;
    /** Chunks read and not written yet, each with the time it may go. */
    this.queue = [];
    this.timer = null;
    this.draining = false;
    /** `from` ended: "end" (FIN, passed on as FIN) or "error" (passed on as a destroy). */
    this.ended = null;
    from.on("data", (chunk) => this.push(chunk));
    from.on("end", () => this.end("end"));
    from.on("close", (hadError) => this.end(hadError ? "error" : "end"));
  }

  push(chunk) {
    if (log) {
      const line = requestLine(chunk);
      if (/^(GET|POST|HTTP\/1\.1) /.test(line)) {
        const body = chunk.subarray(chunk.indexOf("\r\n\r\n") + 4).toString("latin1").slice(0, 200);
        note(this.conn, this.from === this.conn.client ? "up" : "down", { line, bytes: chunk.length, body });
      }
    }
    this.queue.push({ chunk, due: mode === "latency" ? Date.now() + latencyMs : 0 });
    this.flush();
  }

  end(how) {
    if (this.ended === null || how === "error") this.ended = how;
    this.flush();
  }

  /** Writes what may go now; reads more only when everything went (backpressure). */
  flush() {
    if (this.conn.closed) return;
    if (mode === "blackhole") {
      this.from.pause();
      return;
    }
    while (this.queue.length > 0) {
      if (this.draining) return;
      const wait = this.queue[0].due - Date.now();
      if (wait > 0) {
        this.timer ??= setTimeout(() => {
          this.timer = null;
          this.flush();
        }, wait);
        return;
      }
      const { chunk } = this.queue.shift();
      if (this.to.destroyed) continue;
      if (!this.to.write(chunk)) {
        this.draining = true;
        this.from.pause();
        this.to.once("drain", () => {
          this.draining = false;
          this.flush();
        });
        return;
      }
    }
    if (this.ended === "end") this.to.end();
    else if (this.ended === "error") this.to.destroy();
    else this.from.resume();
  }
}

function isWebSocketHandshake(head) {
  const end = head.indexOf("\r\n\r\n");
  const headers = head.subarray(0, end < 0 ? head.length : end).toString("latin1");
  return /^upgrade:[ \t]*websocket[ \t]*$/im.test(headers);
}

function forget(conn) {
  if (conn.client.destroyed && (conn.server === null || conn.server.destroyed)) {
    conn.closed = true;
    conns.delete(conn);
  }
}

// Half-open allowed: a FIN from one side is passed on as a FIN, and the other direction goes on.
const proxy = net.createServer({ allowHalfOpen: true }, (client) => {
  counters.accepted += 1;
  const conn = { id: counters.accepted, client, server: null, up: null, down: null, closed: false };
  note(conn, "accepted");
  conns.add(conn);
  client.setNoDelay(true);
  client.on("error", () => {});
  client.on("close", () => {
    note(conn, "closed", { side: "client" });
    if (conn.server === null) conn.closed = true;
    forget(conn);
  });
  // The first request's head decides: a WebSocket handshake may be cut. Nothing is read in a
  // blackhole, so a connection made then waits here.
  const head = [];
  const onHead = (chunk) => {
    head.push(chunk);
    const bytes = Buffer.concat(head);
    if (bytes.indexOf("\r\n\r\n") < 0 && bytes.length < 16384) return;
    client.off("data", onHead);
    client.pause();
    if (cutUpgrades && isWebSocketHandshake(bytes)) {
      counters.upgradesCut += 1;
      note(conn, "cut", { line: requestLine(bytes) });
      conn.closed = true;
      conns.delete(conn);
      client.resetAndDestroy();
      return;
    }
    note(conn, "request", { line: requestLine(bytes) });
    const server = net.connect({ port: upstreamPort, host: "127.0.0.1", allowHalfOpen: true });
    conn.server = server;
    server.setNoDelay(true);
    server.on("error", () => {});
    server.on("close", () => {
      note(conn, "closed", { side: "server" });
      forget(conn);
    });
    conn.up = new Pump(conn, client, server);
    conn.down = new Pump(conn, server, client);
    if (mode === "blackhole") server.pause();
    conn.up.push(bytes);
  };
  client.on("data", onHead);
  if (mode === "blackhole") client.pause();
});

function setMode(next, ms) {
  mode = next;
  latencyMs = next === "latency" ? ms : 0;
  for (const conn of conns) {
    if (mode === "blackhole") {
      conn.client.pause();
      conn.server?.pause();
    } else if (conn.up === null) {
      conn.client.resume(); // still reading its first request
    } else {
      conn.up.flush();
      conn.down.flush();
    }
  }
}

function resetAll() {
  for (const conn of [...conns]) {
    conn.closed = true;
    conns.delete(conn);
    counters.resets += 1;
    note(conn, "reset");
    if (!conn.client.destroyed) conn.client.resetAndDestroy();
    if (conn.server !== null && !conn.server.destroyed) conn.server.resetAndDestroy();
  }
}

function state() {
  return { mode, latencyMs, cutUpgrades, ...counters, open: conns.size };
}

const control = http.createServer((req, res) => {
  res.setHeader("Access-Control-Allow-Origin", req.headers.origin ?? "*");
  res.setHeader("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
  res.setHeader("Access-Control-Allow-Headers", "content-type");
  res.setHeader("Cache-Control", "no-store");
  if (req.method === "OPTIONS") {
    res.writeHead(204).end();
    return;
  }
  const url = new URL(req.url, "http://127.0.0.1");
  const route = `${req.method} ${url.pathname}`;
  const answer = (status, body) => {
    res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
  };
  req.resume();
  switch (route) {
    case "POST /mode": {
      const next = url.searchParams.get("set");
      const ms = Number(url.searchParams.get("ms") ?? "0");
      if (!["pass", "latency", "blackhole"].includes(next)) return answer(400, { error: "set=pass|latency|blackhole" });
      if (next === "latency" && !(Number.isInteger(ms) && ms > 0)) return answer(400, { error: "latency needs ms=N" });
      setMode(next, ms);
      return answer(200, state());
    }
    case "POST /reset":
      resetAll();
      return answer(200, state());
    case "POST /cut-upgrades":
      cutUpgrades = url.searchParams.get("on") === "1";
      return answer(200, state());
    case "POST /restore":
      cutUpgrades = false;
      setMode("pass", 0);
      Object.assign(counters, { accepted: 0, upgradesCut: 0, resets: 0 });
      return answer(200, state());
    case "GET /state":
      return answer(200, state());
    default:
      return answer(404, { error: `no route ${route}` });
  }
});

let listening = 0;
const ready = () => {
  listening += 1;
  if (listening === 2) {
    process.stdout.write(`${JSON.stringify({ port: proxy.address().port, control: control.address().port })}\n`);
  }
};
for (const server of [proxy, control]) {
  server.on("error", (err) => {
    process.stderr.write(`fault-proxy: ${err.message}\n`);
    process.exit(1);
  });
}
proxy.listen(0, "127.0.0.1", ready);
control.listen(0, "127.0.0.1", ready);

const exit = () => process.exit(0);
process.on("SIGTERM", exit);
process.on("SIGINT", exit);
if (stdinWatch) {
  process.stdin.on("end", exit);
  process.stdin.on("close", exit);
  process.stdin.on("error", exit);
  process.stdin.resume();
}
