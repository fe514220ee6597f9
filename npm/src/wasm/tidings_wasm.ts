// The browser driver's JavaScript half: loads the WebAssembly core (sdk-wasm, built by
// scripts/build-wasm.sh into tidings_wasm_bg.wasm) and performs what it asks.
//
// The core decides everything (reconnection, heartbeat, acks, recovery, upgrade, fallback, the
// feed); this file only owns the platform: WebSockets, `fetch`, one `setTimeout`, the page's
// `online`/`offline`/`visibilitychange`, the clock, and the conversion of arguments between JSON
// text and JavaScript values. The module imports nothing and exports plain functions over numbers
// and two byte buffers (sdk-wasm/src/abi.rs says how a call's data is laid out; `put` and the `r*`
// readers below are the other side of that layout).
//
// One `Shared` per connection owns a core client, every resource, and the queue of deliveries to
// the application. Each entry point (a command, a socket or fetch event, the timer, a page event)
// runs as: feed the core, drain its outputs (performing IO at once, queueing what is for the
// application), then deliver the queue. Application code never runs inside a drain; a callback
// that calls back into the client (an emit from a listener) just queues more deliveries, which the
// outer loop delivers in order. An event counts as received once its callback has returned or
// thrown (`tk_delivered`): only then does its offset become the recovery offset and its keys
// enter the de-duplication window.

import type { ConnectError, ConnectionState, EventSource, FeedStatus } from "../types.js";

/** What `init()` accepts: the .wasm's URL, its bytes, a Response or a compiled module. */
export type InitInput = RequestInfo | URL | Response | BufferSource | WebAssembly.Module;

/** Emit flags of `WasmClient.emit`. */
export interface WasmEmitOptions {
  ack?: boolean;
  timeout?: number | undefined;
  volatile?: boolean;
  idempotent?: boolean;
}

type EventCallback = (
  name: string,
  args: unknown[],
  offset: string | undefined,
  source: EventSource,
  ackId: number | undefined,
  envelopeId: string | undefined,
) => void;

interface Exports {
  memory: WebAssembly.Memory;
  tk_in(len: number): number;
  tk_out(): number;
  tk_out_len(): number;
  tk_new(): number;
  tk_drop(h: number): void;
  tk_main(h: number): void;
  tk_connect(h: number, now: number): number;
  tk_open(h: number, now: number, auth: number): number;
  tk_disconnect(h: number, now: number): void;
  tk_emit(h: number, now: number, flags: number, timeout: number): number;
  tk_ack(h: number, now: number, id: number): number;
  tk_room(h: number, now: number, join: number): number;
  tk_auth(h: number, now: number, id: number, ok: number): void;
  tk_delivered(h: number, now: number, id: number): void;
  tk_input(h: number, now: number, kind: number, id: number, n: number): void;
  tk_poll(h: number): number;
  tk_state(h: number): void;
  tk_cursor(h: number): void;
  tk_rooms(h: number): void;
}

let w: Exports | undefined;

/** Loads and instantiates the module (once); compiles it while it downloads where it can. */
export default async function init(input?: { module_or_path?: InitInput | Promise<InitInput> }): Promise<unknown> {
  if (w) return w;
  let src: unknown = (await input?.module_or_path) ?? new URL("tidings_wasm_bg.wasm", import.meta.url);
  if (typeof src === "string" || src instanceof URL || (typeof Request === "function" && src instanceof Request)) {
    src = await fetch(src as RequestInfo);
  }
  let instance: WebAssembly.Instance;
  if (src instanceof WebAssembly.Module) {
    instance = await WebAssembly.instantiate(src, {});
  } else if (typeof Response === "function" && src instanceof Response) {
    // Streaming needs the right MIME type; a server that sends another gets the buffered path.
    instance =
      typeof WebAssembly.instantiateStreaming === "function" && src.headers.get("content-type") === "application/wasm"
        ? (await WebAssembly.instantiateStreaming(src, {})).instance
        : (await WebAssembly.instantiate(await src.arrayBuffer(), {})).instance;
  } else {
    instance = (await WebAssembly.instantiate(src as BufferSource, {})).instance;
  }
  w ??= instance.exports as unknown as Exports;
  return w;
}

function wasm(): Exports {
  if (w === undefined) throw new Error("tidings: the WebAssembly module is not loaded; await init() first");
  return w;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One piece of a call's input: a number (f64), a string (UTF-8) or bytes. */
type Piece = number | string | Uint8Array;

/** Views of the module's memory, made again after it grew (which detaches the old buffer). */
let u8 = new Uint8Array(0);
let dv = new DataView(u8.buffer);

function views(): void {
  const b = wasm().memory.buffer as ArrayBuffer;
  if (u8.buffer !== b) {
    u8 = new Uint8Array(b);
    dv = new DataView(b);
  }
}

/**
 * Writes `pieces` to the module's input buffer (layout: sdk-wasm/src/abi.rs). Strings are encoded
 * straight into the module's memory (room for 3 bytes per UTF-16 unit, the most UTF-8 takes).
 */
function put(pieces: readonly Piece[]): void {
  let size = 0;
  for (const p of pieces) size += typeof p === "number" ? 8 : 4 + p.length * (typeof p === "string" ? 3 : 1);
  let i = wasm().tk_in(size);
  views();
  for (const p of pieces) {
    if (typeof p === "number") {
      dv.setFloat64(i, p, true);
      i += 8;
    } else {
      const n = typeof p === "string" ? encoder.encodeInto(p, u8.subarray(i + 4)).written : (u8.set(p, i + 4), p.length);
      dv.setUint32(i, n, true);
      i += 4 + n;
    }
  }
}

/** Where the next read of the output buffer is. */
let at = 0;

/** Starts reading the output buffer (after a call that wrote it). */
function out(): void {
  views();
  at = wasm().tk_out();
}

function rNum(): number {
  const n = dv.getFloat64(at, true);
  at += 8;
  return n;
}

function rBytes(): Uint8Array<ArrayBuffer> {
  const n = dv.getUint32(at, true);
  at += 4 + n;
  return u8.slice(at - n, at);
}

/** A string; short ASCII ones (names, namespaces, ids) without a `TextDecoder` call. */
function rStr(): string {
  const n = dv.getUint32(at, true);
  const s = at + 4;
  at = s + n;
  if (n <= 32) {
    let r = "";
    for (let i = s; i < at; i++) {
      const c = u8[i] as number;
      if (c > 127) return decoder.decode(u8.subarray(s, at));
      r += String.fromCharCode(c);
    }
    return r;
  }
  return decoder.decode(u8.subarray(s, at));
}

function rOpt(): string | undefined {
  return rNum() === 1 ? rStr() : undefined;
}

/** Arguments: their JSON text and attachments, parsed when delivered. */
function rArgs(): RawArgs {
  const text = rStr();
  const att: Uint8Array[] = [];
  for (let n = rNum(); n > 0; n--) att.push(rBytes());
  return [text, att];
}

function rState(): ConnectionState {
  switch (rNum()) {
    case 0:
      return { status: "connecting" };
    case 1:
      return { status: "connected", transport: rStr() as "websocket", recovered: rNum() === 1, id: rStr() };
    case 2:
      return { status: "reconnecting", attempt: rNum(), delay: rNum() };
    default:
      return { status: "disconnected", reason: rStr() as "io client disconnect" };
  }
}

type RawArgs = [text: string, attachments: Uint8Array[]];

/** Arguments as values, each `{"_placeholder":true,"num":n}` swapped for attachment n. */
function decodeArgs([text, att]: RawArgs): unknown[] {
  return att.length === 0
    ? (JSON.parse(text) as unknown[])
    : (JSON.parse(text, (_k, v: unknown) => {
        const p = v as { _placeholder?: unknown; num?: unknown } | null;
        return p !== null && typeof p === "object" && !Array.isArray(p) && p._placeholder === true &&
          typeof p.num === "number" && Number.isInteger(p.num) && p.num >= 0 && p.num < att.length
          ? att[p.num]
          : v;
      }) as unknown[]);
}

/** A copy of binary data, or undefined. */
function bytesOf(o: unknown): Uint8Array | undefined {
  return o instanceof ArrayBuffer
    ? new Uint8Array(o.slice(0))
    : ArrayBuffer.isView(o)
      ? new Uint8Array(o.buffer.slice(o.byteOffset, o.byteOffset + o.byteLength))
      : undefined;
}

/**
 * Values as pieces: their JSON text (every `ArrayBuffer` or view, a Node `Buffer` too, swapped for
 * a placeholder; the replacer reads `this[key]`, the value before its `toJSON`), the number of
 * attachments, each attachment. The core checks the result.
 */
function encodeArgs(values: unknown[]): Piece[] {
  const att: Uint8Array[] = [];
  const text = JSON.stringify(values, function (this: Record<string, unknown>, k: string, v: unknown) {
    const b = bytesOf(this[k]);
    return b === undefined ? v : { _placeholder: true, num: att.push(b) - 1 };
  });
  return [text, att.length, ...att];
}

/** Surfaces an exception of an application callback as uncaught, without stopping the driver. */
function report(e: unknown): void {
  if (typeof reportError === "function") reportError(e);
  else
    setTimeout(() => {
      throw e;
    });
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : typeof e === "string" ? e : "unknown error";
}

/** The message the module wrote last, as an `Error`. */
function outError(): Error {
  out();
  return new Error(`tidings: ${rStr()}`);
}

/**
 * The core's monotonic milliseconds: `performance.now()` deltas, or the `Date.now()` delta when
 * that is more than a second larger (the device slept and `performance.now()` did not count it);
 * never backwards. A ping deadline that passed while the laptop slept is seen as passed.
 */
class Clock {
  private perf_ = typeof performance === "object" ? performance : undefined;
  private perfLast_ = this.now_();
  private dateLast_ = Date.now();
  private elapsed_ = 0;
  private now_(): number {
    return this.perf_ ? this.perf_.now() : Date.now();
  }
  now(): number {
    const perf = this.now_();
    const date = Date.now();
    const dp = Math.max(perf - this.perfLast_, 0);
    const dd = date - this.dateLast_;
    this.perfLast_ = perf;
    this.dateLast_ = date;
    this.elapsed_ += dd > dp + 1000 ? dd : dp;
    return Math.floor(this.elapsed_);
  }
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: unknown): void;
}

interface Callbacks {
  event?: EventCallback | undefined;
  state?: ((s: ConnectionState) => void) | undefined;
  connectError?: ((e: ConnectError) => void) | undefined;
  feed?: ((s: FeedStatus) => void) | undefined;
}

/** Something for the application, delivered after the drain. */
type Delivery =
  | { k: 0; nsp: string; name: string; args: RawArgs; offset: string | undefined; id: number; ack: number; feed: boolean; envelope: string | undefined }
  | { k: 1; nsp: string; state: ConnectionState }
  | { k: 2; nsp: string; error: ConnectError }
  | { k: 3; status: FeedStatus }
  | { k: 4; p: Pending; ok: boolean; args: RawArgs | undefined; message: string }
  | { k: 5; id: number; f: () => unknown };

// Inputs (sdk-wasm/src/abi.rs, `tk_input`).
const WS_OPENED = 0,
  WS_TEXT = 1,
  WS_BINARY = 2,
  WS_CLOSED = 3,
  HTTP_RESPONSE = 4,
  HTTP_FAILED = 5,
  HTTP_TOO_LARGE = 6,
  ONLINE = 7,
  OFFLINE = 8,
  VISIBLE = 9,
  HIDDEN = 10,
  TIMEOUT = 11;

const FEED_STATUS = ["polling", "stopped", "catching-up", "caught-up", "gave-up"] as const;
const IN_NAMES = ["ws open", "ws", "ws binary", "ws closed", "http", "http failed", "http too large", "online", "offline", "visible", "hidden"];

/** What the driver adds to the core's requests, and where it logs (`extraHeaders`, `withCredentials`, `debug`). */
interface Net {
  headers: Record<string, string> | undefined;
  credentials: RequestCredentials;
  log: ((line: string) => void) | undefined;
}

/**
 * A frame or body as logged: the payload of every CONNECT packet (`40...{auth}`, possibly among
 * others in a long-polling payload) replaced, so a token never reaches a log; cut at 2,000 chars.
 */
function redact(text: string): string {
  const s = text
    .split("\x1e")
    .map((p) => (p.startsWith("40") && p.includes("{") ? `${p.slice(0, p.indexOf("{"))}{[redacted]}` : p))
    .join("\x1e");
  return s.length > 2000 ? `${s.slice(0, 2000)}... (${s.length} chars)` : s;
}

/**
 * Whether this runtime's `WebSocket` is a browser's (which takes no headers). Asked when a socket
 * opens, never on import: a server render must not touch browser globals.
 */
const browserSockets = (): boolean =>
  typeof document === "object" || typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope === "function";

/** One connection: its core client, its resources, its deliveries. */
class Shared {
  readonly h_: number;
  readonly main_: string;
  readonly clock_ = new Clock();
  readonly sockets_ = new Map<number, WebSocket>();
  /** In-flight requests; `abort()` on the core's `AbortHttp`. */
  readonly requests_ = new Map<number, AbortController>();
  timer_: ReturnType<typeof setTimeout> | undefined;
  /** The deadline the timer is armed for (-1: none). */
  armed_ = -1;
  /** The time of the current call (one clock reading per call: `performance.now()` costs). */
  now_ = 0;
  readonly acks_ = new Map<number, Pending>();
  /** Room requests waiting for their answer. */
  readonly roomRequests_ = new Map<number, Pending>();
  /** Auth providers by namespace. */
  readonly auth_ = new Map<string, () => unknown>();
  /** Whether the last connection of each namespace was a recovery (kept while disconnected). */
  readonly recovered_ = new Map<string, boolean>();
  /** The namespaces with an open `WasmClient`; the last one to close closes the connection. */
  readonly handles_: string[];
  readonly callbacks_ = new Map<string, Callbacks>();
  /** `WasmClient`s not yet freed; the last `free()` drops the core. */
  refs_ = 1;
  private readonly queue_: Delivery[] = [];
  private head_ = 0;
  private delivering_ = false;
  private busy_ = false;
  closed_ = false;
  dropped_ = false;
  private unlisten_: () => void;

  readonly net_: Net;

  constructor(h: number, net: Net) {
    this.h_ = h;
    this.net_ = net;
    wasm().tk_main(h);
    out();
    this.main_ = rStr();
    this.handles_ = [this.main_];
    const g = globalThis as unknown as Partial<EventTarget> & { document?: Document };
    const doc = g.document;
    const online = (): void => this.io(ONLINE);
    const offline = (): void => this.io(OFFLINE);
    const visibility = (): void => this.io(!doc || doc.visibilityState === "visible" ? VISIBLE : HIDDEN);
    if (typeof g.addEventListener === "function") {
      g.addEventListener("online", online);
      g.addEventListener("offline", offline);
    }
    doc?.addEventListener("visibilitychange", visibility);
    this.unlisten_ = () => {
      if (typeof g.removeEventListener === "function") {
        g.removeEventListener("online", online);
        g.removeEventListener("offline", offline);
      }
      doc?.removeEventListener("visibilitychange", visibility);
    };
  }

  /** Runs `f` on the core with the current time, drains, then delivers. */
  run<R>(f: (now: number) => R): R {
    if (this.busy_) throw new Error("tidings: re-entrant call into the client");
    if (this.closed_) throw new Error("tidings: this client is closed; create a new one with connect()");
    this.busy_ = true;
    let r: R;
    try {
      r = f((this.now_ = this.clock_.now()));
      this.drain_();
    } finally {
      this.busy_ = false;
    }
    this.deliver_();
    return r;
  }

  /** Feeds one input from a resource (a socket, a request, the timer, the page). */
  io(kind: number, id = 0, n = NaN, pieces: Piece[] = []): void {
    if (this.closed_) return;
    const log = this.net_.log;
    if (log && kind !== TIMEOUT && kind !== HTTP_RESPONSE) {
      const p = pieces[pieces.length - 1];
      const what = typeof p === "string" ? redact(p) : p instanceof Uint8Array ? `${p.length} bytes` : "";
      log(`< ${IN_NAMES[kind] ?? kind} #${id}${Number.isNaN(n) ? "" : ` ${n}`} ${what}`);
    }
    if (kind === WS_CLOSED) {
      // Its handlers go, so a `close` after an `error` is not reported twice.
      this.dropSocket_(id);
    } else if (kind === HTTP_RESPONSE || kind === HTTP_FAILED || kind === HTTP_TOO_LARGE) {
      this.requests_.delete(id);
    } else if (kind === TIMEOUT) {
      this.timer_ = undefined;
      this.armed_ = -1;
    }
    try {
      this.run((now) => {
        put(pieces);
        wasm().tk_input(this.h_, now, kind, id, n);
      });
    } catch {
      // Closed meanwhile: nothing to tell.
    }
  }

  /** An input during a drain (a resource that failed as it was made). */
  private inputNow_(kind: number, id: number, pieces: Piece[]): void {
    put(pieces);
    wasm().tk_input(this.h_, this.now_, kind, id, NaN);
  }

  private dropSocket_(conn: number): void {
    const ws = this.sockets_.get(conn);
    if (!ws) return;
    this.sockets_.delete(conn);
    ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    try {
      ws.close();
    } catch {
      // Already closing.
    }
  }

  /** Performs every output; application-bound ones join the queue. Re-arms the timer last. */
  private drain_(): void {
    const x = wasm();
    for (;;) {
      const kind = x.tk_poll(this.h_);
      out();
      switch (kind) {
        case 0:
          return this.arm_(rNum());
        case 1:
          this.open_(rNum(), rStr());
          break;
        case 2: {
          const conn = rNum();
          const ws = this.sockets_.get(conn);
          const data = rNum() === 1 ? rBytes() : rStr();
          this.net_.log?.(`> ws #${conn} ${typeof data === "string" ? redact(data) : `${data.length} bytes`}`);
          try {
            ws?.send(data);
          } catch {
            // Not open (any more): its close is on the way.
          }
          break;
        }
        case 3: {
          const conn = rNum();
          this.net_.log?.(`> ws close #${conn}`);
          this.dropSocket_(conn);
          break;
        }
        case 4:
          this.fetch_();
          break;
        case 5: {
          const id = rNum();
          this.requests_.get(id)?.abort();
          this.requests_.delete(id);
          break;
        }
        case 6: {
          const nsp = rStr();
          const id = rNum();
          const f = this.auth_.get(nsp);
          if (f) this.queue_.push({ k: 5, id, f });
          else x.tk_auth(this.h_, this.now_, id, 2);
          break;
        }
        case 7:
          this.queue_.push({
            k: 0,
            nsp: rStr(),
            name: rStr(),
            args: rArgs(),
            offset: rOpt(),
            id: rNum(),
            ack: rNum(),
            feed: rNum() === 1,
            envelope: rOpt(),
          });
          break;
        case 8:
        case 9: {
          const id = rNum();
          const ok = rNum() === 1;
          const args = ok ? rArgs() : undefined;
          const message = ok ? "" : rStr();
          const map = kind === 8 ? this.acks_ : this.roomRequests_;
          const p = map.get(id);
          if (p) {
            map.delete(id);
            this.queue_.push({ k: 4, p, ok, args, message });
          }
          break;
        }
        case 10: {
          const nsp = rStr();
          const state = rState();
          if (state.status === "connected") this.recovered_.set(nsp, state.recovered);
          this.net_.log?.(`state ${nsp} ${JSON.stringify(state)}`);
          this.queue_.push({ k: 1, nsp, state });
          break;
        }
        case 11: {
          const nsp = rStr();
          const message = rStr();
          const text = rOpt();
          let data: unknown;
          try {
            data = text === undefined ? undefined : JSON.parse(text);
          } catch {
            data = undefined;
          }
          const error: ConnectError = Object.assign(new Error(message), {
            data,
            willRetry: rNum() === 1,
            fallbackPending: rNum() === 1,
          });
          this.net_.log?.(`connect_error ${nsp} ${message}`);
          this.queue_.push({ k: 2, nsp, error });
          break;
        }
        case 12: {
          const status = FEED_STATUS[rNum()] ?? "stopped";
          const error = rStr();
          this.queue_.push({ k: 3, status: (status === "gave-up" ? { status, error } : { status }) as FeedStatus });
          break;
        }
      }
    }
  }

  private open_(conn: number, url: string): void {
    this.net_.log?.(`> ws open #${conn} ${url}`);
    const headers = this.net_.headers;
    let ws: WebSocket;
    try {
      // Node's and Deno's WebSocket take headers in a second argument a browser's would read as
      // subprotocols.
      ws = headers && !browserSockets() ? new (WebSocket as unknown as new (u: string, o: object) => WebSocket)(url, { headers }) : new WebSocket(url);
    } catch (e) {
      return this.inputNow_(WS_CLOSED, conn, [1, describe(e)]);
    }
    ws.binaryType = "arraybuffer";
    ws.onopen = () => this.io(WS_OPENED, conn);
    ws.onmessage = (ev: MessageEvent) => {
      const d: unknown = ev.data;
      if (typeof d === "string") this.io(WS_TEXT, conn, NaN, [d]);
      else if (d instanceof ArrayBuffer) this.io(WS_BINARY, conn, NaN, [new Uint8Array(d)]);
    };
    ws.onerror = () => this.io(WS_CLOSED, conn, NaN, [1, "websocket error"]);
    ws.onclose = (ev: CloseEvent) => this.io(WS_CLOSED, conn, ev.code, [0]);
    this.sockets_.set(conn, ws);
  }

  private fetch_(): void {
    const id = rNum();
    const method = rNum() === 1 ? "POST" : "GET";
    const url = rStr();
    const type = rOpt();
    const authorization = rOpt();
    const body = rOpt();
    const max = rNum();
    const polling = rNum() < 2;
    const net = this.net_;
    net.log?.(`> http #${id} ${method} ${url}${body === undefined ? "" : ` ${redact(body)}`}`);
    const headers: Record<string, string> = polling && net.headers ? { ...net.headers } : {};
    if (type !== undefined) headers["content-type"] = type;
    if (authorization !== undefined) headers.authorization = authorization;
    const abort = new AbortController();
    let response: Promise<Response>;
    try {
      response = fetch(url, {
        method,
        headers,
        body: body ?? null,
        signal: abort.signal,
        ...(polling ? { credentials: net.credentials } : {}),
      });
    } catch (e) {
      return this.inputNow_(HTTP_FAILED, id, [describe(e)]);
    }
    this.requests_.set(id, abort);
    response.then(
      async (r) => {
        const len = r.headers.get("content-length");
        if (len !== null && /^\s*\d+\s*$/.test(len) && Number(len) > max) return this.io(HTTP_TOO_LARGE, id, max);
        let b: Uint8Array;
        try {
          b = new Uint8Array(await r.arrayBuffer());
        } catch (e) {
          return this.io(HTTP_FAILED, id, NaN, [`reading the response failed: ${describe(e)}`]);
        }
        if (b.length > max) return this.io(HTTP_TOO_LARGE, id, max);
        net.log?.(`< http #${id} ${r.status} ${redact(decoder.decode(b))}`);
        this.io(HTTP_RESPONSE, id, r.status, [b]);
      },
      (e: unknown) => this.io(HTTP_FAILED, id, NaN, [`fetch failed: ${describe(e)}`]),
    );
  }

  private arm_(deadline: number): void {
    if (deadline === this.armed_) return;
    this.armed_ = deadline;
    clearTimeout(this.timer_);
    this.timer_ = undefined;
    if (deadline < 0) return;
    // +1 ms: never wake up just before the deadline and spin.
    const ms = Math.min(Math.max(deadline - this.now_, 0) + 1, 2147483647);
    this.timer_ = setTimeout(() => this.io(TIMEOUT), ms);
  }

  /** Delivers the queue in order; nested calls leave it to the outermost one. */
  private deliver_(): void {
    if (this.delivering_) return;
    this.delivering_ = true;
    // The last event whose callbacks have run, reported once the queue is empty: one report
    // covers every event before it, so a burst costs one call, not one per event.
    let last = -1;
    for (;;) {
      const d = this.queue_[this.head_];
      if (d === undefined) {
        this.queue_.length = this.head_ = 0;
        if (last < 0) break;
        const id = last;
        last = -1;
        try {
          // Their callbacks have run (or thrown, or there were none): only now may the core count
          // the events as received. What it asks for next is queued, and delivered by this loop.
          this.run((now) => wasm().tk_delivered(this.h_, now, id));
        } catch {
          // Closed by a callback.
        }
        continue;
      }
      this.head_++;
      if (d.k === 0) last = d.id;
      try {
        this.deliverOne_(d);
      } catch (e) {
        report(e);
      }
    }
    this.delivering_ = false;
  }

  private deliverOne_(d: Delivery): void {
    switch (d.k) {
      case 0: {
        const f = this.callbacks_.get(d.nsp)?.event;
        if (!f) return;
        const args = decodeArgs(d.args);
        // Listeners get every argument as sent (the offset last, when there is one), as
        // socket.io-client hands them: a volatile event's last string argument looks just like
        // an offset on the wire (docs/PROTOCOL.md, "Offsets").
        if (d.offset !== undefined) args.push(d.offset);
        return f(d.name, args, d.offset, d.feed ? "feed" : "socket", d.ack < 0 ? undefined : d.ack, d.envelope);
      }
      case 1:
        return this.callbacks_.get(d.nsp)?.state?.(d.state);
      case 2:
        return this.callbacks_.get(d.nsp)?.connectError?.(d.error);
      case 3:
        return this.callbacks_.get(this.main_)?.feed?.(d.status);
      case 4:
        if (!d.ok || d.args === undefined) return d.p.reject(new Error(d.message));
        return d.p.resolve(decodeArgs(d.args));
      case 5:
        return this.askAuth_(d.id, d.f);
    }
  }

  /** Calls an auth provider (it may return a promise) and answers the core when it settles. */
  private askAuth_(id: number, provider: () => unknown): void {
    new Promise((resolve) => resolve(provider())).then(
      (v) => {
        let json: string;
        try {
          json = authJson(v);
        } catch (e) {
          return this.authReady_(id, 0, describe(e));
        }
        this.authReady_(id, 1, json);
      },
      (e: unknown) => {
        report(e);
        this.authReady_(id, 0, "it threw or its promise was rejected");
      },
    );
  }

  private authReady_(id: number, ok: number, text: string): void {
    if (this.closed_) return;
    try {
      this.run((now) => {
        put([text]);
        wasm().tk_auth(this.h_, now, id, ok);
      });
    } catch {
      // Closed meanwhile.
    }
  }

  /** Disconnects, lets the last packets go out, then releases every resource. */
  close(): void {
    try {
      this.run((now) => {
        put([""]);
        wasm().tk_disconnect(this.h_, now);
      });
    } catch {
      // Already closed.
    }
    this.release_(true);
  }

  /** Releases every resource; `detach` lets requests finish (the POST carrying a close). */
  private release_(detach: boolean): void {
    this.closed_ = true;
    this.unlisten_();
    clearTimeout(this.timer_);
    if (!detach) for (const a of this.requests_.values()) a.abort();
    this.requests_.clear();
    for (const conn of [...this.sockets_.keys()]) this.dropSocket_(conn);
    const err = new Error("tidings: the client was closed");
    const pending = [...this.acks_.values(), ...this.roomRequests_.values()];
    this.acks_.clear();
    this.roomRequests_.clear();
    for (const p of pending) p.reject(err);
    this.callbacks_.clear();
  }

  /** One `WasmClient` less; the last drops the core. */
  free(): void {
    if (--this.refs_ > 0 || this.dropped_) return;
    if (!this.closed_) this.release_(false);
    this.dropped_ = true;
    wasm().tk_drop(this.h_);
  }
}

/** The JSON text of an auth object (it must be a plain object). */
function authJson(v: unknown): string {
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error("auth must be an object or a function returning one");
  const s = JSON.stringify(v) as string | undefined;
  if (typeof s !== "string") throw new Error("auth could not be serialised as JSON");
  return s;
}

type Options = Record<string, unknown> | undefined;

function checkObject(o: unknown): Options {
  if (o === undefined || o === null) return undefined;
  if (typeof o !== "object") throw new Error("options must be an object");
  return o as Record<string, unknown>;
}

/** `options.auth`: its mode (0 none, 1 static, 2 provider), JSON and provider. */
function authOf(o: Options): [number, string, (() => unknown) | undefined] {
  const a = o?.auth;
  if (a === undefined) return [0, "", undefined];
  if (typeof a === "function") return [2, "", a as () => unknown];
  return [1, authJson(a), undefined];
}

/**
 * `TidingsOptions` (npm/src/types.ts) as the module's option numbers and strings (the order of
 * sdk-wasm/src/abi.rs's `config`). Every value is checked; a bad one throws an `Error` naming the
 * option. Unknown keys are ignored, as socket.io-client does.
 */
function optionPieces(url: string, options: unknown): [Piece[], (() => unknown) | undefined, Net] {
  const o = checkObject(options);
  const get = (obj: Options, key: string): unknown => obj?.[key];
  const bool = (obj: Options, key: string): number => {
    const v = get(obj, key);
    if (v === undefined) return NaN;
    if (typeof v !== "boolean") throw new Error(`option ${key} must be a boolean`);
    return v ? 1 : 0;
  };
  const number = (obj: Options, key: string): number => {
    const v = get(obj, key);
    if (v === undefined) return NaN;
    if (typeof v !== "number" || Number.isNaN(v) || v < 0) throw new Error(`option ${key} must be a non-negative number`);
    return v;
  };
  // A non-negative integer up to `max` (Infinity only where `infinite`).
  const int = (obj: Options, key: string, max = Number.MAX_SAFE_INTEGER, infinite = false): number => {
    const n = number(obj, key);
    if (Number.isNaN(n) || (infinite && n === Infinity)) return n;
    if (!Number.isSafeInteger(n)) throw new Error(`option ${key} must be a non-negative integer`);
    if (n > max) throw new Error(`option ${key} is too large`);
    return n;
  };
  const string = (obj: Options, key: string): string | undefined => {
    const v = get(obj, key);
    if (v !== undefined && typeof v !== "string") throw new Error(`option ${key} must be a string`);
    return v;
  };
  const nested = (key: string): Options => {
    const v = get(o, key);
    if (v !== undefined && (v === null || typeof v !== "object")) throw new Error(`option ${key} must be an object`);
    return v as Options;
  };
  const U32 = 4294967295;
  const [authMode, authText, provider] = authOf(o);
  let t0 = NaN,
    t1 = NaN;
  const transports = get(o, "transports");
  if (transports !== undefined) {
    if (!Array.isArray(transports)) throw new Error("option transports must be an array");
    const kinds = transports.map((t: unknown) => {
      if (t === "websocket") return 1;
      if (t === "polling") return 2;
      throw new Error('option transports may only list "websocket" and "polling"');
    });
    if (kinds.length < 1 || kinds.length > 2) throw new Error("option transports must list one or two transports");
    t0 = kinds[0] ?? NaN;
    t1 = kinds[1] ?? 0;
  }
  const fallback = get(o, "fallbackUrls");
  if (fallback !== undefined && !Array.isArray(fallback)) throw new Error("option fallbackUrls must be an array");
  const fallbackUrls = ((fallback ?? []) as unknown[]).map((u) => {
    if (typeof u !== "string") throw new Error("option fallbackUrls must list http(s) or ws(s) URLs");
    return u;
  });
  const rand = number(o, "randomizationFactor");
  if (rand > 1) throw new Error("option randomizationFactor must be between 0 and 1");
  const backoff = string(o, "backoff");
  if (backoff !== undefined && backoff !== "socket.io" && backoff !== "full-jitter") {
    throw new Error('option backoff must be "socket.io" or "full-jitter"');
  }
  const path = string(o, "path");
  const sb = nested("sendBuffer");
  const overflow = string(sb, "overflow");
  if (overflow !== undefined && overflow !== "reject" && overflow !== "drop-oldest") {
    throw new Error('option sendBuffer.overflow must be "reject" or "drop-oldest"');
  }
  const re = nested("roomEvents");
  const feed = nested("feed");
  const feedUrl = string(feed, "url");
  if (feed !== undefined && feedUrl === undefined) throw new Error("option feed.url is required");
  // Handled by the caller (npm/src/index.ts), checked here so a typo'd value is caught.
  bool(o, "autoConnect");
  const pieces: Piece[] = [
    bool(o, "upgrade"),
    bool(o, "tryAllTransports"),
    int(o, "fallbackAfter", U32),
    int(o, "reprobeInterval"),
    bool(o, "reconnection"),
    int(o, "reconnectionAttempts", U32, true),
    int(o, "reconnectionDelay"),
    int(o, "reconnectionDelayMax"),
    rand,
    backoff === undefined ? NaN : backoff === "full-jitter" ? 1 : 0,
    int(o, "timeout"),
    int(o, "ackTimeout"),
    int(o, "retries", U32),
    int(sb, "maxPackets", U32),
    int(sb, "maxBytes", U32),
    overflow === undefined ? NaN : overflow === "drop-oldest" ? 1 : 0,
    int(feed, "after"),
    int(feed, "interval"),
    int(feed, "minInterval"),
    int(feed, "maxInterval"),
    int(feed, "maxFailures", U32),
    authMode,
    t0,
    t1,
    url,
    // socket.io-client's `addTrailingSlash`: "/my-path" is requested as "/my-path/".
    path === undefined ? "" : path.endsWith("/") ? path : path + "/",
    authText,
    string(re, "join") ?? "",
    string(re, "leave") ?? "",
  ];
  if (feedUrl === undefined) pieces.push(0);
  else {
    const since = string(feed, "since");
    pieces.push(1, feedUrl, since === undefined ? 0 : 1);
    if (since !== undefined) pieces.push(since);
  }
  // A seed for jitter and cache-busting (not security sensitive).
  pieces.push(Math.floor(Math.random() * 4294967296), Math.floor(Math.random() * 4294967296), fallbackUrls.length, ...fallbackUrls);
  const extra = get(o, "extraHeaders");
  if (extra !== undefined && (extra === null || typeof extra !== "object" || Object.values(extra).some((v) => typeof v !== "string"))) {
    throw new Error("option extraHeaders must map header names to strings");
  }
  const debug = get(o, "debug");
  if (debug !== undefined && typeof debug !== "boolean" && typeof debug !== "function") {
    throw new Error("option debug must be a boolean or a function");
  }
  const net: Net = {
    headers: extra as Record<string, string> | undefined,
    credentials: bool(o, "withCredentials") === 1 ? "include" : "same-origin",
    log: typeof debug === "function" ? (debug as (line: string) => void) : debug ? (line) => console.debug(`tidings ${line}`) : undefined,
  };
  return [pieces, provider, net];
}

/**
 * One Socket.IO namespace driven by the core: the URL's, or another one opened with `of()` over
 * the same connection (socket.io-client's multiplexing). `npm/src/index.ts` wraps it in a
 * socket.io-client-like `Socket`; applications use that.
 *
 * Callbacks: `onEvent(name, args, offset, source, ackId)`, `onState(state)`,
 * `onConnectError(error)`, `onFeed(status)`. `args` are every argument as sent; with connection
 * state recovery on, `offset` is the last of them when it may be the recovery offset. `ackId` is
 * a number when the server asked for an acknowledgement: answer with `ack(ackId, args)`. An event
 * counts as received once `onEvent` has returned (or thrown: the exception is reported, and the
 * events after it are still delivered).
 */
export class WasmClient {
  private readonly s_: Shared;
  private readonly nsp_: string;
  private freed_ = false;

  /** A client for `url` (its path names the namespace). Throws for an invalid URL or option. */
  constructor(url: string, options: unknown);
  /** @internal */
  constructor(url: Shared, options: unknown, nsp: string);
  constructor(url: string | Shared, options: unknown, nsp?: string) {
    if (url instanceof Shared) {
      this.s_ = url;
      this.nsp_ = nsp ?? url.main_;
      return;
    }
    const x = wasm();
    let pieces: Piece[], provider: (() => unknown) | undefined, net: Net;
    try {
      [pieces, provider, net] = optionPieces(url, options);
    } catch (e) {
      throw new Error(`tidings: ${describe(e)}`);
    }
    put(pieces);
    const h = x.tk_new();
    if (h < 0) {
      out();
      const why = rStr();
      throw new Error(
        h === -1 ? `tidings: invalid url "${url}": ${why}` : h === -2 ? `tidings: invalid configuration: ${why}` : `tidings: ${why}`,
      );
    }
    this.s_ = new Shared(h, net);
    this.nsp_ = this.s_.main_;
    if (provider) this.s_.auth_.set(this.nsp_, provider);
  }

  /**
   * Opens `namespace` over this client's connection, with `options.auth` (an object, or a
   * function called before every attempt). Connects it at once. Throws for an invalid namespace
   * or auth, or when the namespace already has an open handle.
   */
  of(namespace: string, options: { auth?: unknown }): WasmClient {
    let mode: number, json: string, provider: (() => unknown) | undefined;
    try {
      [mode, json, provider] = authOf(checkObject(options));
    } catch (e) {
      throw new Error(`tidings: ${describe(e)}`);
    }
    // `admin` and `/admin` name the same namespace, as in the native client.
    const nsp = namespace.startsWith("/") ? namespace : `/${namespace}`;
    const s = this.s_;
    const err = s.run((now) => {
      if (s.handles_.includes(nsp)) return new Error(`tidings: namespace ${nsp} is already open on this connection`);
      put([nsp, json]);
      if (wasm().tk_open(s.h_, now, mode) < 0) return outError();
      if (provider) s.auth_.set(nsp, provider);
      else s.auth_.delete(nsp);
      s.handles_.push(nsp);
      return undefined;
    });
    if (err) throw err;
    s.refs_++;
    return new WasmClient(s, undefined, nsp);
  }

  /** The namespace of this handle. */
  get namespace(): string {
    return this.nsp_;
  }

  /** Releases this handle; the last one releases the core's memory. */
  free(): void {
    if (this.freed_) return;
    this.freed_ = true;
    this.s_.free();
  }

  /** Connects this namespace (and the connection if needed), or reconnects after a disconnect. */
  connect(): void {
    const err = this.s_.run((now) => {
      put([this.nsp_]);
      return wasm().tk_connect(this.s_.h_, now) < 0 ? outError() : undefined;
    });
    if (err) throw err;
  }

  /** Disconnects this namespace ("io client disconnect"); the connection closes with the last. */
  disconnect(): void {
    this.s_.run((now) => {
      put([this.nsp_]);
      wasm().tk_disconnect(this.s_.h_, now);
    });
  }

  /**
   * Disconnects this namespace and forgets its callbacks. The last handle to close also releases
   * every socket, request, timer and listener, and rejects what is still pending.
   */
  close(): void {
    const s = this.s_;
    if (s.closed_) return;
    const i = s.handles_.indexOf(this.nsp_);
    if (i >= 0) s.handles_.splice(i, 1);
    if (s.handles_.length === 0) return s.close();
    try {
      this.disconnect();
    } catch {
      // Closed meanwhile.
    }
    s.auth_.delete(this.nsp_);
    s.callbacks_.delete(this.nsp_);
  }

  /**
   * Emits `event` with `args` (`ArrayBuffer`s and typed arrays are sent as binary). With `ack`
   * (or `timeout`, in ms) returns a promise of the ack's arguments; otherwise `undefined`. Throws
   * for an invalid emit without ack; rejects the promise for one with ack.
   */
  emit(event: string, args: unknown[], opts: WasmEmitOptions): Promise<unknown[]> | undefined {
    const t = opts?.timeout;
    const timeout = typeof t === "number" && Number.isFinite(t) && t >= 0 ? t : NaN;
    const ack = opts?.ack === true || !Number.isNaN(timeout);
    const fail = (e: unknown): undefined | Promise<never> => {
      if (ack) return Promise.reject(e);
      throw e;
    };
    let pieces: Piece[];
    try {
      pieces = encodeArgs(args);
    } catch (e) {
      return fail(e);
    }
    let pending: Pending | undefined;
    const promise = ack
      ? new Promise<unknown[]>((resolve, reject) => {
          pending = { resolve: resolve as (v: unknown) => void, reject };
        })
      : undefined;
    const flags = (ack ? 1 : 0) | (opts?.volatile === true ? 2 : 0) | (opts?.idempotent === true ? 4 : 0);
    let r: Error | undefined;
    try {
      r = this.s_.run((now) => {
        put([this.nsp_, event, ...pieces]);
        const id = wasm().tk_emit(this.s_.h_, now, flags, timeout);
        if (id >= 0) {
          if (pending) this.s_.acks_.set(id, pending);
          return undefined;
        }
        // socket.io-client drops a volatile emit silently.
        return id === -2 && !ack ? undefined : outError();
      });
    } catch (e) {
      return fail(e);
    }
    return r ? fail(r) : promise;
  }

  /** Answers the server's ack request `ackId` (from `onEvent`) with `args`. */
  ack(ackId: number, args: unknown[]): void {
    const pieces = encodeArgs(args);
    const err = this.s_.run((now) => {
      put([this.nsp_, ...pieces]);
      return wasm().tk_ack(this.s_.h_, now, ackId) < 0 ? outError() : undefined;
    });
    if (err) throw err;
  }

  /** Joins `room` (re-joined after every reconnect that did not recover); resolves with the server's ack arguments. */
  join(room: string): Promise<unknown[]> {
    return this.room_(room, 1);
  }

  /** Leaves `room`. */
  leave(room: string): Promise<unknown[]> {
    return this.room_(room, 0);
  }

  private room_(room: string, join: number): Promise<unknown[]> {
    let pending: Pending | undefined;
    const promise = new Promise<unknown[]>((resolve, reject) => {
      pending = { resolve: resolve as (v: unknown) => void, reject };
    });
    try {
      const err = this.s_.run((now) => {
        put([this.nsp_, room]);
        const id = wasm().tk_room(this.s_.h_, now, join);
        if (id < 0) return outError();
        if (pending) this.s_.roomRequests_.set(id, pending);
        return undefined;
      });
      if (err) return Promise.reject(err);
    } catch (e) {
      return Promise.reject(e);
    }
    return promise;
  }

  /** Reads the core (no drain); undefined once the core is dropped. */
  private read_<T>(pieces: Piece[], call: (x: Exports, h: number) => void, read: () => T): T | undefined {
    if (this.s_.dropped_) return undefined;
    const x = wasm();
    put(pieces);
    call(x, this.s_.h_);
    out();
    return read();
  }

  /** The connection state (`ConnectionState` in types.ts). */
  get state(): ConnectionState {
    return this.read_([this.nsp_], (x, h) => x.tk_state(h), rState) ?? { status: "disconnected", reason: "io client disconnect" };
  }

  /** The socket id while connected. */
  get id(): string | undefined {
    const s = this.state;
    return s.status === "connected" ? s.id : undefined;
  }

  /** Whether the namespace is connected. */
  get connected(): boolean {
    return this.state.status === "connected";
  }

  /** Whether the last connection restored the previous session. */
  get recovered(): boolean {
    return this.s_.recovered_.get(this.nsp_) ?? false;
  }

  /** Where the client stands: the position of the last event delivered (`Client::cursor`). */
  get cursor(): string | undefined {
    return this.read_([], (x, h) => x.tk_cursor(h), rOpt);
  }

  /** Rooms remembered (re-joined after a reconnect). */
  get rooms(): string[] {
    return (
      this.read_([this.nsp_], (x, h) => x.tk_rooms(h), () => {
        const rooms: string[] = [];
        for (let n = rNum(); n > 0; n--) rooms.push(rStr());
        return rooms;
      }) ?? []
    );
  }

  private set_(f: (c: Callbacks) => void): void {
    if (this.s_.closed_) return;
    let c = this.s_.callbacks_.get(this.nsp_);
    if (!c) this.s_.callbacks_.set(this.nsp_, (c = {}));
    f(c);
  }

  /** `onEvent(name, args, offset, source, ackId, envelopeId)` for every server event (or `undefined`). */
  onEvent(f: EventCallback | undefined): void {
    this.set_((c) => (c.event = f));
  }

  /** `onState(state)` for every state change. */
  onState(f: ((state: ConnectionState) => void) | undefined): void {
    this.set_((c) => (c.state = f));
  }

  /** `onConnectError(error)` for every failed attempt. */
  onConnectError(f: ((error: ConnectError) => void) | undefined): void {
    this.set_((c) => (c.connectError = f));
  }

  /** `onFeed(status)` for the REST feed fallback's changes. */
  onFeed(f: ((status: FeedStatus) => void) | undefined): void {
    this.set_((c) => (c.feed = f));
  }
}
