#!/usr/bin/env node
// Tidings real-server test fixture: a Node socket.io 4.8.4 server for the
// conformance scenarios of docs/CONFORMANCE.md and docs/PROTOCOL.md (S0, S1, S2, ...).
//
// Usage:
//   node tidings-test-server.mjs [--setup s0|s1|s2|ws-only|polling-only|no-ping]
//                                [--ping-interval MS] [--ping-timeout MS]
//                                [--connect-timeout MS] [--max-http-buffer-size BYTES]
//                                [--port N] [--data-dir DIR] [--redis-url URL]
//                                [--log-frames] [--no-stdin-watch]
//
// --redis-url redis://HOST:PORT: the server joins a cluster through @socket.io/redis-streams-adapter
// (broadcasts go through a Redis stream to every node; with connection state recovery, sessions
// are stored in Redis when a socket disconnects, so another node can restore them).
//
// Startup contract:
//   * Listens on 127.0.0.1, port 0 (ephemeral) unless --port is given.
//   * Once listening, prints exactly one line to stdout: {"port":N}
//     Nothing else is ever written to stdout.
//   * Socket.IO is served at http://127.0.0.1:N/socket.io/ .
//
// Control API design choice: the control endpoints live on the SAME HTTP server
// and port as socket.io, under /control/... . The HTTP server is created with the
// control handler as its `request` listener; engine.io, when attached, takes over
// only requests for /socket.io/ and forwards every other request to that handler.
// So one port serves both, and the JSON line only carries "port".
//
// Lifetime: exits with code 0 on SIGTERM, SIGINT, POST /control/shutdown, and
// when its stdin reaches end-of-file (so a test harness that dies, and thereby
// closes the pipe it holds to our stdin, does not leave the server running).
// A harness must therefore spawn it with a *piped* stdin and keep the pipe open;
// with stdin = /dev/null the server would exit at once. Use --no-stdin-watch for
// manual runs with a closed stdin (e.g. `node ... < /dev/null &`).
//
// --log-frames writes one JSON line per engine.io packet to stderr:
//   {"t":12.3,"dir":"in"|"out","sid":"<engine sid>","transport":"polling"|"websocket",
//    "type":"open"|"close"|"ping"|"pong"|"message"|"upgrade"|"noop",
//    "binary":false,"data":"2[\"auth\",{}]","frame":"42[\"auth\",{}]"}
//   - "data" is the packet payload (string), or its base64 when "binary" is true;
//     it is omitted for packets without payload (e.g. a plain ping).
//   - "frame" is the engine.io text encoding of the packet ("42[...]", "2", "3probe");
//     for binary packets it is "b" + base64 (the polling form; over WebSocket the
//     raw bytes are sent).
//   - Packets exchanged on a WebSocket while it is being probed for an upgrade
//     ("2probe", "3probe", "5") and the "6" noop sent on polling to speed up the
//     upgrade carry "upgrade":true.
//   Errors inside handlers are written to stderr as {"level":"error",...} lines.
//
// Full description of the event handlers and the control API: README.md.

import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { createRequire } from "node:module";
import { Server } from "socket.io";

const require = createRequire(import.meta.url);
// engine.io is a dependency of socket.io; resolve it from there rather than
// relying on npm hoisting.
const engineIo = createRequire(require.resolve("socket.io"))("engine.io");

// ---------------------------------------------------------------- arguments

const USAGE =
  "usage: node tidings-test-server.mjs [--setup s0|s1|s2|ws-only|polling-only|no-ping] " +
  "[--ping-interval MS] [--ping-timeout MS] [--connect-timeout MS] " +
  "[--max-http-buffer-size BYTES] [--port N] [--data-dir DIR] [--redis-url URL] [--log-frames] [--no-stdin-watch]";

function fail(message) {
  process.stderr.write(`tidings-test-server: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const args = {
    setup: "s0",
    pingInterval: undefined,
    pingTimeout: undefined,
    connectTimeout: undefined,
    maxHttpBufferSize: undefined,
    port: 0,
    logFrames: false,
    stdinWatch: true,
    dataDir: undefined,
    redisUrl: undefined,
  };
  const intArg = (name, value) => {
    if (value === undefined || !/^\d+$/.test(value)) fail(`${name} expects a non-negative integer`);
    return Number(value);
  };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let value;
    const eq = arg.indexOf("=");
    if (arg.startsWith("--") && eq > 0) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const next = () => (value !== undefined ? value : argv[++i]);
    switch (arg) {
      case "--setup":
        args.setup = next();
        break;
      case "--ping-interval":
        args.pingInterval = intArg(arg, next());
        break;
      case "--ping-timeout":
        args.pingTimeout = intArg(arg, next());
        break;
      case "--connect-timeout":
        args.connectTimeout = intArg(arg, next());
        break;
      case "--max-http-buffer-size":
        args.maxHttpBufferSize = intArg(arg, next());
        break;
      case "--port":
        args.port = intArg(arg, next());
        break;
      case "--data-dir":
        args.dataDir = next();
        if (!args.dataDir) fail("--data-dir expects a directory");
        break;
      case "--redis-url":
        args.redisUrl = next();
        if (!args.redisUrl || !/^rediss?:\/\//.test(args.redisUrl)) fail("--redis-url expects a redis:// URL");
        break;
      case "--log-frames":
        args.logFrames = true;
        break;
      case "--no-stdin-watch":
        args.stdinWatch = false;
        break;
      case "-h":
      case "--help":
        process.stdout.write(`${USAGE}\n`);
        process.exit(0);
        break;
      default:
        fail(`unknown argument ${JSON.stringify(argv[i])}`);
    }
  }
  return args;
}

const args = parseArgs(process.argv.slice(2));

// ---------------------------------------------------------------- setups

const S0 = {
  pingInterval: 300,
  pingTimeout: 200,
  connectTimeout: 1000,
  // Reflects the request's Origin and allows credentials, so browser tests served from another
  // origin (wasm-bindgen-test-runner's page) can use fetch long-polling with or without cookies.
  cors: { origin: true, credentials: true },
  serveClient: false,
};

const SETUPS = {
  // PROTOCOL.md section 7, default setup.
  s0: () => ({ ...S0 }),
  // S0 + connection state recovery (defaults: maxDisconnectionDuration 120000,
  // skipMiddlewares true) with the default heartbeat, so that a kill of the
  // transport is not confused with a ping timeout.
  s1: () => ({ ...S0, connectionStateRecovery: {}, pingInterval: 25000, pingTimeout: 20000 }),
  // S0 with a tiny payload limit.
  s2: () => ({ ...S0, maxHttpBufferSize: 100 }),
  // S0 without HTTP long-polling (scenario 32).
  "ws-only": () => ({ ...S0, transports: ["websocket"] }),
  // S0 without WebSocket: the server offers no upgrade and refuses WebSocket sessions.
  "polling-only": () => ({ ...S0, transports: ["polling"] }),
  // S0 whose handshake announces pingInterval/pingTimeout as usual, but the
  // server never sends a ping and never times out a session (scenario 4).
  "no-ping": () => ({ ...S0 }),
};

if (!Object.hasOwn(SETUPS, args.setup)) fail(`unknown setup ${JSON.stringify(args.setup)}`);
const opts = SETUPS[args.setup]();
if (args.pingInterval !== undefined) opts.pingInterval = args.pingInterval;
if (args.pingTimeout !== undefined) opts.pingTimeout = args.pingTimeout;
if (args.connectTimeout !== undefined) opts.connectTimeout = args.connectTimeout;
if (args.maxHttpBufferSize !== undefined) opts.maxHttpBufferSize = args.maxHttpBufferSize;

if (args.setup === "no-ping") {
  // schedulePing() arms both the ping timer and the pong timeout; with it
  // disabled the server neither pings nor closes for a missing pong.
  engineIo.Socket.prototype.schedulePing = function noPing() {};
}

// ---------------------------------------------------------------- logging

const started = process.hrtime.bigint();
const elapsedMs = () => Math.round(Number(process.hrtime.bigint() - started) / 1e4) / 100;

const ENGINE_TYPES = { open: 0, close: 1, ping: 2, pong: 3, message: 4, upgrade: 5, noop: 6 };

function toBuffer(data) {
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return null;
}

function logPacket(dir, sid, transport, packet, extra) {
  const line = { t: elapsedMs(), dir, sid, transport, type: packet.type, binary: false };
  const bin = packet.data === undefined || packet.data === null ? null : toBuffer(packet.data);
  if (bin) {
    line.binary = true;
    line.data = bin.toString("base64");
    line.frame = `b${line.data}`;
  } else {
    if (packet.data !== undefined && packet.data !== null) line.data = String(packet.data);
    line.frame = `${ENGINE_TYPES[packet.type] ?? "?"}${line.data ?? ""}`;
  }
  if (extra) Object.assign(line, extra);
  process.stderr.write(`${JSON.stringify(line)}\n`);
}

function logError(where, err) {
  process.stderr.write(
    `${JSON.stringify({ t: elapsedMs(), level: "error", where, message: String(err?.stack ?? err) })}\n`,
  );
}

if (args.logFrames) {
  const proto = engineIo.Socket.prototype;
  // The engine socket sends its "open" packet from its constructor, before the
  // engine's "connection" event, so the taps are attached in onOpen() instead.
  const originalOnOpen = proto.onOpen;
  proto.onOpen = function tappedOnOpen() {
    this.on("packet", (packet) => logPacket("in", this.id, this.transport.name, packet));
    this.on("packetCreate", (packet) => logPacket("out", this.id, this.transport.name, packet));
    return originalOnOpen.call(this);
  };

  // Packets exchanged on a transport that is being probed for an upgrade do not
  // go through the engine socket's "packet"/"packetCreate" events; tap them here.
  const originalMaybeUpgrade = proto._maybeUpgrade;
  if (typeof originalMaybeUpgrade === "function") {
    proto._maybeUpgrade = function tappedMaybeUpgrade(transport) {
      const sid = this.id;
      const oldTransport = this.transport;
      const onPacket = (packet) => logPacket("in", sid, transport.name, packet, { upgrade: true });
      transport.on("packet", onPacket); // registered before engine.io's own listener
      const newSend = transport.send;
      transport.send = function tappedSend(packets) {
        for (const p of packets) logPacket("out", sid, transport.name, p, { upgrade: true });
        return newSend.call(this, packets);
      };
      const oldSend = oldTransport.send;
      oldTransport.send = function tappedOldSend(packets) {
        // Regular packets are logged by "packetCreate"; only the noop bypasses it.
        for (const p of packets) {
          if (p.type === "noop") logPacket("out", sid, oldTransport.name, p, { upgrade: true });
        }
        return oldSend.call(this, packets);
      };
      let untapped = false;
      const untap = () => {
        if (untapped) return;
        untapped = true;
        transport.off("packet", onPacket);
        delete transport.send;
        delete oldTransport.send;
      };
      this.once("upgrade", untap);
      this.once("close", untap);
      transport.once("close", untap);
      transport.once("error", untap);
      return originalMaybeUpgrade.call(this, transport);
    };
  }
}

// ---------------------------------------------------------------- state

/** count-acks counters, keyed by the optional key argument ("default" otherwise). */
/** Snapshots of `subscribe:<topic>` (POST /control/snapshot). */
const snapshots = new Map();
const counters = new Map();
/** dedupe: how many times each key was seen. */
const seen = new Map();

function resetState() {
  counters.clear();
  seen.clear();
}

// ---------------------------------------------------------------- servers

const httpServer = http.createServer((req, res) => {
  handleControl(req, res).catch((err) => {
    logError("control", err);
    sendJson(res, 500, { error: String(err?.message ?? err) });
  });
});

// A cluster node (--redis-url): the Redis streams adapter shares broadcasts and, with connection
// state recovery, the sessions of disconnected sockets with the other nodes on the same Redis.
let redisClient;
if (args.redisUrl) {
  const { createClient } = await import("redis");
  const { createAdapter } = await import("@socket.io/redis-streams-adapter");
  let connectedOnce = false;
  redisClient = createClient({
    url: args.redisUrl,
    // At startup, give up after about 5 s (exit 1); once connected, retry every 100-500 ms for
    // ever, so that a restarted Redis is found again soon.
    socket: {
      reconnectStrategy: (retries, cause) =>
        connectedOnce ? Math.min(100 * (retries + 1), 500) : retries >= 50 ? cause : 100,
    },
  });
  redisClient.on("ready", () => (connectedOnce = true));
  redisClient.on("error", (err) => {
    if (connectedOnce) logError("redis", err);
  });
  try {
    await redisClient.connect();
  } catch (err) {
    process.stderr.write(`tidings-test-server: cannot connect to ${args.redisUrl}: ${err?.message ?? err}\n`);
    process.exit(1);
  }
  opts.adapter = createAdapter(redisClient);
}

const io = new Server(httpServer, opts);

// A proxy that blocks WebSockets, switchable at run time (POST /control/block-websocket?on=1):
// while on, every WebSocket upgrade request is refused with 403, new sessions and upgrade
// probes alike, and HTTP long-polling keeps working.
let websocketBlocked = false;
// Socket.IO down while the REST feed stays up (POST /control/refuse-socketio?on=1): every
// /socket.io/ request is answered 503 and every WebSocket upgrade refused.
let socketioRefused = false;
{
  const requestListeners = httpServer.listeners("request");
  httpServer.removeAllListeners("request");
  httpServer.on("request", (req, res) => {
    // CORS for the control API and the REST feed (engine.io answers /socket.io/ itself): browser
    // tests run on another origin and the feed sends an Authorization header (a preflight).
    if (!req.url.startsWith("/socket.io/")) {
      res.setHeader("Access-Control-Allow-Origin", req.headers.origin ?? "*");
      res.setHeader("Access-Control-Allow-Credentials", "true");
      res.setHeader("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      res.setHeader("Access-Control-Allow-Headers", "content-type, authorization");
      res.setHeader("Access-Control-Max-Age", "600");
      res.setHeader("Vary", "Origin");
      if (req.method === "OPTIONS") {
        res.writeHead(204).end();
        return;
      }
    }
    if (socketioRefused && req.url.startsWith("/socket.io/")) {
      res.writeHead(503, { "content-type": "text/plain" }).end("socket.io is down");
      return;
    }
    for (const listener of requestListeners) listener.call(httpServer, req, res);
  });
}
{
  const upgradeListeners = httpServer.listeners("upgrade");
  // Without WebSocket (polling-only), engine.io listens for no upgrade and Node answers an
  // upgrade request as a plain request (engine.io's 400): leave that path alone.
  if (upgradeListeners.length > 0) httpServer.removeAllListeners("upgrade");
  if (upgradeListeners.length > 0) httpServer.on("upgrade", (req, socket, head) => {
    if (websocketBlocked || socketioRefused) {
      socket.end("HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    for (const listener of upgradeListeners) listener.call(httpServer, req, socket, head);
  });
}

/** Splits a trailing acknowledgement callback off the event arguments. */
function splitAck(args) {
  if (args.length > 0 && typeof args[args.length - 1] === "function") {
    return [args.slice(0, -1), args[args.length - 1]];
  }
  return [args, undefined];
}

/** Registers a handler that never crashes the process. */
function on(socket, event, handler) {
  socket.on(event, (...args) => {
    try {
      const [data, ack] = splitAck(args);
      handler(data, ack);
    } catch (err) {
      logError(`${socket.nsp.name} ${event}`, err);
    }
  });
}

function roomOf(payload) {
  if (typeof payload === "string") return payload;
  if (payload && typeof payload === "object" && typeof payload.room === "string") return payload.room;
  return String(payload);
}

function keyOf(payload) {
  if (payload === undefined || payload === null) return "default";
  if (typeof payload === "object" && "key" in payload) return String(payload.key);
  return String(payload);
}

function describe(socket) {
  return {
    id: socket.id,
    nsp: socket.nsp.name,
    rooms: [...socket.rooms],
    recovered: socket.recovered,
    connected: socket.connected,
    transport: socket.conn.transport.name,
    engineId: socket.conn.id,
    auth: socket.handshake.auth,
  };
}

function attachHandlers(socket) {
  const nsp = socket.nsp;
  // /quiet sends nothing on connect, so that a client can be dropped before it
  // has received any event (no recovery offset yet; PROTOCOL.md 7 scenario 25).
  if (nsp.name !== "/quiet") socket.emit("auth", socket.handshake.auth);

  on(socket, "echo", (data, ack) => {
    if (ack) ack(...data);
    else socket.emit("echo", ...data);
  });
  // The handshake's query parameters (the client's `query` option), answered by ack.
  on(socket, "query", (_data, ack) => ack?.(socket.handshake.query));
  // The handshake's headers (the client's `extraHeaders`, and the cookie `withCredentials` sends).
  on(socket, "headers", (_data, ack) => ack?.(socket.handshake.headers));
  on(socket, "hi", (data, ack) => {
    socket.emit("hi", ...data);
    ack?.();
  });
  on(socket, "message", (data, ack) => {
    socket.emit("message-back", ...data);
    ack?.();
  });
  on(socket, "message-with-ack", (data, ack) => ack?.(...data));

  on(socket, "ask", (data, ack) => {
    socket.emit("ask", 1, (...answer) => {
      socket.emit("answered", ...answer);
      ack?.(...answer);
    });
  });

  on(socket, "doge", (data, ack) => {
    socket.emit("doge", Buffer.from("asdfasdf"));
    ack?.();
  });
  on(socket, "bin2", (data, ack) => {
    socket.emit("bin2", { a: Buffer.from([1, 2, 3]), b: ["x", { c: Buffer.from([4, 5]) }] });
    ack?.();
  });

  on(socket, "disconnect-me", (data, ack) => {
    ack?.({ ok: true });
    socket.disconnect();
  });
  on(socket, "close-conn", (data, ack) => {
    ack?.({ ok: true });
    socket.disconnect(true);
  });
  on(socket, "close-transport", (data, ack) => {
    ack?.({ ok: true });
    socket.conn.close();
  });

  on(socket, "bcast", (data, ack) => {
    io.emit("news", ...data);
    if (nsp.name !== "/") nsp.emit("news", ...data);
    ack?.({ ok: true });
  });
  on(socket, "whoami", (data, ack) => {
    ack?.({
      id: socket.id,
      recovered: socket.recovered,
      auth: socket.handshake.auth,
      transport: socket.conn.transport.name,
      nsp: nsp.name,
      rooms: [...socket.rooms],
    });
  });

  on(socket, "join", ([room], ack) => {
    socket.join(roomOf(room));
    ack?.({ ok: true });
  });
  on(socket, "room:join", ([payload], ack) => {
    const room = roomOf(payload);
    socket.join(room);
    ack?.({ ok: true, room });
  });
  on(socket, "room:leave", ([payload], ack) => {
    const room = roomOf(payload);
    socket.leave(room);
    ack?.({ ok: true, room });
  });
  on(socket, "to-room", ([room, event, ...rest], ack) => {
    nsp.to(roomOf(room)).emit(String(event), ...rest);
    ack?.({ ok: true });
  });

  // Subscribe with a snapshot (the dashboards' pattern): `subscribe:<topic>` joins room <topic>,
  // then, after `delayMs` (default 0: data being loaded), sends the topic's snapshot (set with
  // POST /control/snapshot?topic=) as the ack when one is asked, else as `<topic>:initial`.
  socket.onAny((event, ...args) => {
    if (typeof event !== "string" || !event.startsWith("subscribe:")) return;
    try {
      const topic = event.slice("subscribe:".length);
      const [[options], ack] = splitAck(args);
      const delay = Math.max(0, Math.min(Number(options?.delayMs) || 0, 10_000));
      socket.join(topic);
      setTimeout(() => {
        const snapshot = snapshots.get(topic) ?? null;
        if (ack) ack(snapshot);
        else socket.emit(`${topic}:initial`, snapshot);
      }, delay);
    } catch (err) {
      logError(`${socket.nsp.name} ${event}`, err);
    }
  });

  on(socket, "nothing-acks", () => {});
  on(socket, "count-acks", ([payload], ack) => {
    const key = keyOf(payload);
    const n = (counters.get(key) ?? 0) + 1;
    counters.set(key, n);
    ack?.(n);
  });
  on(socket, "dedupe", ([payload], ack) => {
    const key = keyOf(payload);
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    ack?.({ seen: n });
  });
  on(socket, "emit-n", ([n], ack) => {
    const count = Math.max(0, Math.min(Number(n) || 0, 1_000_000));
    for (let i = 0; i < count; i++) socket.emit("seq", i);
    ack?.(count);
  });
}

io.of("/").on("connection", attachHandlers);
io.of("/custom").on("connection", attachHandlers);
io.of("/quiet").on("connection", attachHandlers);

const noNsp = io.of("/no");
noNsp.use((socket, next) => {
  const err = new Error("not authorized");
  err.data = { code: 42 };
  next(err);
});
noNsp.on("connection", attachHandlers);

const authNsp = io.of("/auth");
authNsp.use((socket, next) => {
  if (socket.handshake.auth && socket.handshake.auth.token === "good") return next();
  const err = new Error("invalid token");
  err.data = { code: "invalid_token" };
  next(err);
});
authNsp.on("connection", attachHandlers);

// ---------------------------------------------------------------- control API

function sendJson(res, status, body) {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(text),
    "Cache-Control": "no-store",
  });
  res.end(text);
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

/** Turns {"$base64": "..."} objects of a JSON body into Buffers, recursively. */
function reviveBinary(value) {
  if (Array.isArray(value)) return value.map(reviveBinary);
  if (value && typeof value === "object") {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === "$base64" && typeof value.$base64 === "string") {
      return Buffer.from(value.$base64, "base64");
    }
    return Object.fromEntries(keys.map((k) => [k, reviveBinary(value[k])]));
  }
  return value;
}

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function argsBody(req) {
  const text = (await readBody(req)).trim();
  if (text === "") return [];
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new HttpError(400, "body must be a JSON array of event arguments");
  }
  if (!Array.isArray(parsed)) throw new HttpError(400, "body must be a JSON array of event arguments");
  return reviveBinary(parsed);
}

function namespaceParam(url) {
  const name = url.searchParams.get("ns") ?? "/";
  const nsp = io._nsps.get(name);
  if (!nsp) throw new HttpError(404, `unknown namespace ${name}`);
  return nsp;
}

function eventParam(url) {
  const event = url.searchParams.get("event");
  if (!event) throw new HttpError(400, "missing event query parameter");
  return event;
}

function allSockets() {
  const out = [];
  for (const nsp of io._nsps.values()) for (const socket of nsp.sockets.values()) out.push(socket);
  return out;
}

// Answers to broadcasts sent with POST /control/emit?ack=1.
const broadcastAcks = [];

function emitOrThrow(fn) {
  try {
    fn();
  } catch (err) {
    // e.g. a reserved event name ("connect", "disconnect", ...)
    throw new HttpError(400, String(err?.message ?? err));
  }
}

// ---------------------------------------------------------------- event log and REST feed
//
// A durable event log (JSON lines in --data-dir, kept across restarts; in memory without it)
// and the REST feed that Tidings' feed fallback polls (sdk-core/src/client/feed.rs documents
// the contract): GET /feed/events?since=CURSOR&limit=N, POST /feed/events/acknowledge, both
// requiring `Authorization: Bearer <token>`.

const eventLog = [];
const logFile = args.dataDir ? path.join(args.dataDir, "events.jsonl") : undefined;
if (logFile) {
  fs.mkdirSync(args.dataDir, { recursive: true });
  if (fs.existsSync(logFile)) {
    for (const line of fs.readFileSync(logFile, "utf8").split("\n")) {
      if (line.trim() !== "") eventLog.push(JSON.parse(line));
    }
  }
}
const feedRequests = [];

function publish(nsp, room, event, data) {
  const offset = eventLog.length + 1;
  const envelope = {
    id: `evt_${offset}`,
    type: event,
    version: 1,
    timestamp: new Date().toISOString(),
    source: "tidings-test-server",
    data,
    metadata: {},
  };
  const entry = { offset, id: envelope.id, event, room, envelope };
  eventLog.push(entry);
  if (logFile) fs.appendFileSync(logFile, `${JSON.stringify(entry)}\n`);
  emitOrThrow(() => (room ? nsp.to(room) : nsp).emit(event, envelope));
  return entry;
}

/** The log position after `since` (an offset, or an event id); the end of the log without it. */
function feedStart(since) {
  if (since === null || since === "") return eventLog.length;
  if (/^\d+$/.test(since)) return Math.min(Number(since), eventLog.length);
  const i = eventLog.findIndex((e) => e.id === since);
  if (i < 0) throw new HttpError(400, `unknown cursor ${JSON.stringify(since)}`);
  return i + 1;
}

async function handleFeed(req, res, url, route) {
  const authorization = req.headers.authorization ?? null;
  const body = req.method === "POST" ? await readBody(req) : null;
  feedRequests.push({ method: req.method, url: req.url, authorization, body });
  if (!authorization || !authorization.startsWith("Bearer ")) {
    throw new HttpError(401, "missing bearer token");
  }
  if (route === "GET /feed/events") {
    const limit = Math.max(1, Math.min(Number(url.searchParams.get("limit") ?? 100) || 100, 1000));
    const start = feedStart(url.searchParams.get("since"));
    const events = eventLog.slice(start, start + limit).map((e) => ({
      id: e.id,
      event: e.event,
      data: e.envelope,
      offset: String(e.offset),
    }));
    const cursor = String(start + events.length);
    return sendJson(res, 200, { events, cursor });
  }
  let ids;
  try {
    ids = JSON.parse(body).eventIds;
  } catch {
    throw new HttpError(400, "body must be {\"eventIds\":[...]}");
  }
  if (!Array.isArray(ids)) throw new HttpError(400, "body must be {\"eventIds\":[...]}");
  return sendJson(res, 200, { ok: true, acknowledged: ids.length });
}

async function handleControl(req, res) {
  const url = new URL(req.url, "http://127.0.0.1");
  const route = `${req.method} ${url.pathname.replace(/\/+$/, "")}`;
  try {
    switch (route) {
      case "POST /control/emit": {
        const nsp = namespaceParam(url);
        const event = eventParam(url);
        const data = await argsBody(req);
        // volatile=1: a volatile broadcast (never stored for recovery, so it carries no offset);
        // ack=1: a broadcast asking every client for an ack (no offset either; the answers are
        // kept for GET /control/acks).
        const op = url.searchParams.get("volatile") === "1" ? nsp.volatile : nsp;
        if (url.searchParams.get("ack") === "1") {
          emitOrThrow(() =>
            op.timeout(5000).emit(event, ...data, (err, replies) => {
              broadcastAcks.push({ event, err: err ? String(err.message ?? err) : null, replies: replies ?? [] });
            }),
          );
        } else {
          emitOrThrow(() => op.emit(event, ...data));
        }
        return sendJson(res, 200, { ok: true, nsp: nsp.name, sockets: nsp.sockets.size });
      }
      case "POST /control/set-cookie": {
        // A cookie for this server's host, which long-polling requests from another origin
        // carry only with the client's `withCredentials`.
        res.setHeader("Set-Cookie", "tidings_test=1; Path=/; SameSite=Lax");
        return sendJson(res, 200, { ok: true });
      }
      case "POST /control/burst": {
        // count events NAME with one argument {"i":0..count-1,"pad":"x"*pad}, emitted in one
        // synchronous loop (far faster than any client reads them).
        const nsp = namespaceParam(url);
        const event = eventParam(url);
        const count = Number(url.searchParams.get("count") ?? "1000");
        const padLen = Number(url.searchParams.get("pad") ?? "0");
        if (!Number.isInteger(count) || count < 0 || count > 10_000_000) throw new HttpError(400, "bad count");
        if (!Number.isInteger(padLen) || padLen < 0 || padLen > 1_000_000) throw new HttpError(400, "bad pad");
        const pad = "x".repeat(padLen);
        for (let i = 0; i < count; i++) nsp.emit(event, padLen > 0 ? { i, pad } : { i });
        return sendJson(res, 200, { ok: true, nsp: nsp.name, count });
      }
      case "GET /control/acks":
        return sendJson(res, 200, broadcastAcks);
      case "POST /control/to": {
        const nsp = namespaceParam(url);
        const event = eventParam(url);
        const room = url.searchParams.get("room");
        if (!room) throw new HttpError(400, "missing room query parameter");
        const data = await argsBody(req);
        emitOrThrow(() => nsp.to(room).emit(event, ...data));
        return sendJson(res, 200, { ok: true, nsp: nsp.name, room });
      }
      case "GET /feed/events":
      case "POST /feed/events/acknowledge":
        return await handleFeed(req, res, url, route);
      case "GET /control/feed-requests":
        return sendJson(res, 200, feedRequests);
      case "POST /control/publish": {
        const nsp = namespaceParam(url);
        const event = eventParam(url);
        const room = url.searchParams.get("room");
        const text = (await readBody(req)).trim();
        let data;
        try {
          data = JSON.parse(text === "" ? "null" : text);
        } catch {
          throw new HttpError(400, "body must be JSON (the event's data)");
        }
        const entry = publish(nsp, room, event, data);
        return sendJson(res, 200, { ok: true, id: entry.id, offset: entry.offset });
      }
      case "POST /control/refuse-socketio":
        socketioRefused = url.searchParams.get("on") === "1";
        if (socketioRefused) for (const conn of Object.values(io.engine.clients)) conn.close();
        return sendJson(res, 200, { ok: true, refused: socketioRefused });
      case "POST /control/block-websocket":
        websocketBlocked = url.searchParams.get("on") === "1";
        return sendJson(res, 200, { ok: true, blocked: websocketBlocked });
      case "POST /control/snapshot": {
        const topic = url.searchParams.get("topic");
        if (!topic) throw new HttpError(400, "topic is required");
        const text = (await readBody(req)).trim();
        try {
          snapshots.set(topic, JSON.parse(text === "" ? "null" : text));
        } catch {
          throw new HttpError(400, "body must be JSON (the snapshot)");
        }
        return sendJson(res, 200, { ok: true });
      }
      case "POST /control/forget-sessions": {
        // Engine.IO forgets every session without telling its client (as a restarted or another
        // server behind a balancer would): the client's next request with its sid gets
        // `400 {"code":1,"message":"Session ID unknown"}`. The forgotten sockets end by their own
        // heartbeat (and then count themselves out of clientsCount).
        const ids = Object.keys(io.engine.clients);
        for (const id of ids) delete io.engine.clients[id];
        return sendJson(res, 200, { ok: true, forgotten: ids.length });
      }
      case "POST /control/kill-transports": {
        const conns = new Set(allSockets().map((s) => s.conn));
        for (const conn of Object.values(io.engine.clients)) conns.add(conn);
        for (const conn of conns) conn.close();
        return sendJson(res, 200, { ok: true, closed: conns.size });
      }
      case "POST /control/raw-message": {
        // A hostile server: the body goes out as one Engine.IO message, as is (a malformed
        // Socket.IO packet, for the clients' error paths).
        const text = await readBody(req);
        const conns = Object.values(io.engine.clients);
        for (const conn of conns) conn.sendPacket("message", text);
        return sendJson(res, 200, { ok: true, sent: conns.length });
      }
      case "GET /control/sockets":
        return sendJson(res, 200, allSockets().map(describe));
      case "GET /control/info":
        return sendJson(res, 200, {
          setup: args.setup,
          pid: process.pid,
          port: httpServer.address().port,
          pingInterval: opts.pingInterval,
          pingTimeout: opts.pingTimeout,
          connectTimeout: opts.connectTimeout,
          maxHttpBufferSize: opts.maxHttpBufferSize ?? 1e6,
          transports: opts.transports ?? ["polling", "websocket"],
          connectionStateRecovery: Boolean(opts.connectionStateRecovery),
          adapter: args.redisUrl ? "redis-streams" : "in-memory",
          engineClients: io.engine.clientsCount,
        });
      case "POST /control/mark":
        // A barrier for the frame log: every frame logged before this line was received
        // before this request was answered.
        process.stderr.write(`${JSON.stringify({ dir: "mark", id: url.searchParams.get("id") })}\n`);
        return sendJson(res, 200, { ok: true });
      case "POST /control/reset":
        resetState();
        return sendJson(res, 200, { ok: true });
      case "POST /control/shutdown":
        res.once("finish", () => shutdown("control"));
        return sendJson(res, 200, { ok: true });
      case "POST /control/crash":
        // A crash (a browser test cannot kill a process): replies, then SIGKILLs itself. Nothing
        // is closed or flushed: no close frame, no DISCONNECT, no session stored in Redis.
        res.once("finish", () => process.kill(process.pid, "SIGKILL"));
        return sendJson(res, 200, { ok: true });
      default:
        throw new HttpError(404, `no route ${route}`);
    }
  } catch (err) {
    if (err instanceof HttpError) return sendJson(res, err.status, { error: err.message });
    throw err;
  }
}

// ---------------------------------------------------------------- lifetime

let shuttingDown = false;
function shutdown(why) {
  if (shuttingDown) return;
  shuttingDown = true;
  // Hard stop if a graceful close hangs (e.g. a keep-alive HTTP connection).
  setTimeout(() => process.exit(0), 1000).unref();
  io.close()
    .catch((err) => logError(`shutdown (${why})`, err))
    // io.close() stored the sessions of the closed sockets in Redis (cluster nodes): close the
    // Redis client after its pending commands, so that they reach Redis before the exit.
    .then(() => redisClient?.close())
    .catch((err) => logError(`shutdown (${why}): redis`, err))
    .finally(() => process.exit(0));
}

process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));
if (args.stdinWatch) {
  process.stdin.on("end", () => shutdown("stdin end"));
  process.stdin.on("close", () => shutdown("stdin close"));
  process.stdin.on("error", () => shutdown("stdin error"));
  process.stdin.resume();
}
process.on("uncaughtException", (err) => logError("uncaughtException", err));
process.on("unhandledRejection", (err) => logError("unhandledRejection", err));

httpServer.on("error", (err) => {
  process.stderr.write(`tidings-test-server: ${err.message}\n`);
  process.exit(1);
});
httpServer.listen(args.port, "127.0.0.1", () => {
  process.stdout.write(`${JSON.stringify({ port: httpServer.address().port })}\n`);
});
