// `tidings`: a socket.io-client-like `Socket` over the Rust core compiled to WebAssembly.
//
// `connect()` returns at once. The WebAssembly module loads on first use (or with an explicit
// `await init()`); commands given before it is ready are queued (at most MAX_QUEUED) and run in
// order once it is.

import initWasm, { WasmClient, type InitInput } from "./wasm/tidings_wasm.js";
import type {
  AckResult,
  AnyListener,
  ConnectError,
  ConnectionState,
  DefaultEventsMap,
  DisconnectReason,
  EventMeta,
  EventNames,
  EventParams,
  EventsMap,
  FeedStatus,
  HistoryOptions,
  HistoryPage,
  IdempotentEmitter,
  ReservedEvents,
  Socket,
  TidingsOptions,
  TimeoutEmitter,
  VolatileEmitter,
} from "./types.js";

export type * from "./types.js";
export type { InitInput } from "./wasm/tidings_wasm.js";

/** Commands kept while the WebAssembly module loads; more is a thrown Error. */
const MAX_QUEUED = 1000;

/** Socket.IO's reserved event names: emitting one throws, as in socket.io-client. */
const RESERVED_EMIT = new Set(["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"]);

/** The client's own events (`on("state", ...)` never sees a server event named "state"). */
const RESERVED_EVENTS = new Set<string>(["connect", "disconnect", "connect_error", "state", "feed", "invalid"]);

type Listener = (...args: never[]) => unknown;
type Call = (...args: unknown[]) => unknown;
/** A command given before the socket had a client, run once it has one. */
type Command = (c: WasmClient) => void;

/**
 * Where a socket is in its life. One field, so that no impossible mix (a client and an error, a
 * queue after close) can be written down; each kind holds only what exists then.
 */
type Life =
  /**
   * Before its `connect()`: a namespace riding another socket's connection, or a socket made
   * with `autoConnect: false` (no module loaded, no client made). Commands queue.
   */
  | { readonly kind: "idle"; readonly queue: Command[] }
  /**
   * Waiting for a client: the module to load (the connection's creator) or the connection's
   * first client (a rider). Commands queue.
   */
  | { readonly kind: "loading"; readonly queue: Command[] }
  | { readonly kind: "open"; readonly client: WasmClient }
  /** The module or the options were unusable (reported once as `connect_error`): commands throw. */
  | { readonly kind: "broken"; readonly error: Error }
  /** `close()` was called: commands throw, the client is freed. */
  | { readonly kind: "closed" };

let loading: Promise<void> | undefined;
let ready = false;
let loadError: Error | undefined;

/**
 * Loads the WebAssembly module. Optional: `connect()` loads it by itself. Call it (and await it)
 * to load early, to pass the `.wasm` from somewhere else than next to this file, or to get
 * option errors thrown by `connect()` rather than reported through `connect_error`.
 */
export function init(input?: InitInput | Promise<InitInput>): Promise<void> {
  if (loading === undefined) {
    loading = initWasm(input === undefined ? undefined : { module_or_path: input }).then(
      () => {
        ready = true;
      },
      (e: unknown) => {
        loadError = new Error(`tidings: the WebAssembly module failed to load: ${describe(e)}`, { cause: e });
        throw loadError;
      },
    );
  }
  return loading;
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Surfaces an exception of an application callback without stopping the others. */
function report(e: unknown): void {
  const g = globalThis as { reportError?: (e: unknown) => void };
  if (typeof g.reportError === "function") g.reportError(e);
  else console.error(e);
}

/** Whether `pattern` ("prefix.*", "prefix:*" or "*") matches event `name`, as in the Rust SDK. */
function matches(pattern: string, name: string): boolean {
  return pattern === "*" || ((pattern.endsWith(".*") || pattern.endsWith(":*")) && name.startsWith(pattern.slice(0, -1)));
}

/** socket.io's ack convention: one argument alone, otherwise all of them. */
function ackValue(args: unknown[]): unknown {
  return args.length === 1 ? args[0] : args;
}

const DISCONNECTED: ConnectionState = { status: "disconnected", reason: "io client disconnect" };

/**
 * One connection shared by the sockets of one server's namespaces (socket.io-client's Manager):
 * the first socket creates it; the others open their namespace over it with `WasmClient.of`.
 */
class Connection {
  readonly sockets = new Set<TidingsSocket<EventsMap, EventsMap>>();
  #waiting: Array<(client: WasmClient | Error) => void> = [];
  #error: Error | undefined;

  constructor(readonly key: string | undefined) {}

  /** Calls `f` with a client of this connection (any open socket's) once there is one. */
  whenReady(f: (client: WasmClient | Error) => void): void {
    if (this.#error) return f(this.#error);
    for (const s of this.sockets) {
      const c = s.wasmClient;
      if (c) return f(c);
    }
    this.#waiting.push(f);
    for (const s of this.sockets) s.wake();
  }

  /** A socket got its client: open the namespaces waiting for one. */
  ready(client: WasmClient | Error): void {
    if (client instanceof Error) this.#error = client;
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const f of waiting) f(client);
  }

  remove(socket: TidingsSocket<EventsMap, EventsMap>): void {
    this.sockets.delete(socket);
    if (this.sockets.size === 0) this.#forget();
  }

  /** The socket that was to create the client closed first: the waiting namespaces fail. */
  abandon(): void {
    this.#forget();
    this.ready(new Error("tidings: the socket that opened this connection was closed before it was ready"));
  }

  #forget(): void {
    if (this.key !== undefined && connections.get(this.key) === this) connections.delete(this.key);
  }
}

/** Shared connections by server (scheme, host, port and query). */
const connections = new Map<string, Connection>();

class TidingsSocket<Listen extends EventsMap, Emit extends EventsMap> implements Socket<Listen, Emit> {
  /** Set by the constructor: idle, loading (a creator) or open. */
  #life: Life;
  #connection: Connection;
  /** Whether this socket opens its namespace over a connection another socket created. */
  #rides: boolean;
  /** The namespace's connection state (what the core reports), apart from the socket's life. */
  #state: ConnectionState;
  #listeners = new Map<string, Listener[]>();
  #reserved = new Map<string, Listener[]>();
  #any: AnyListener[] = [];
  /** Metadata of the event being delivered (or the last one). */
  lastEventMeta: EventMeta | undefined;

  constructor(
    private readonly url: string,
    private readonly options: TidingsOptions,
    connection: Connection,
    /** The namespace (socket.io-client's `socket.nsp`). */
    readonly nsp: string,
    rides: boolean,
  ) {
    const auto = options.autoConnect !== false;
    this.#state = auto ? { status: "connecting" } : DISCONNECTED;
    this.#connection = connection;
    this.#rides = rides;
    connection.sockets.add(this as TidingsSocket<EventsMap, EventsMap>);
    const queue: Command[] = [];
    this.#life = { kind: "idle", queue };
    if (!auto) return;
    if (rides) {
      this.#open(queue);
      return;
    }
    queue.push((c) => c.connect());
    if (!ready) {
      this.#load(queue);
      return;
    }
    let client: WasmClient;
    try {
      client = new WasmClient(url, options);
    } catch (e) {
      // A bad URL or option: thrown, and this socket never joins the connection.
      connection.remove(this as TidingsSocket<EventsMap, EventsMap>);
      throw e;
    }
    this.#attach(client, queue);
  }

  /**
   * A connection's creator gets its client: at once when the module is ready, else once it has
   * loaded. Commands keep queueing in `queue` meanwhile.
   */
  #load(queue: Command[]): void {
    this.#life = { kind: "loading", queue };
    const make = (): void => {
      const life = this.#life;
      // Otherwise closed meanwhile.
      if (life.kind !== "loading") return;
      let client: WasmClient;
      try {
        client = new WasmClient(this.url, this.options);
      } catch (e) {
        this.#fail(e instanceof Error ? e : new Error(String(e)));
        return;
      }
      this.#attach(client, life.queue);
    };
    if (ready) return make();
    init().then(
      make,
      // Not skipped once closed: a socket closed before the module failed still ends up
      // "disconnected: connect error", as it always has.
      (e: unknown) => this.#fail(e instanceof Error ? e : new Error(String(e))),
    );
  }

  /**
   * A socket made with `autoConnect: false` is idle until its `connect()`: it has loaded no module
   * and made no client (so a server render, which never connects, does neither). A namespace
   * that wants to ride its connection wakes it: the creator then makes its client, unconnected.
   * @internal
   */
  wake(): void {
    const life = this.#life;
    if (!this.#rides && life.kind === "idle") this.#load(life.queue);
  }

  /** The client once attached (for the connection's other namespaces). */
  get wasmClient(): WasmClient | undefined {
    return this.#life.kind === "open" ? this.#life.client : undefined;
  }

  /**
   * Opens the namespace over the shared connection once it has a client (connects it). The
   * commands queued while idle keep waiting in `queue`.
   */
  #open(queue: Command[]): void {
    this.#life = { kind: "loading", queue };
    this.#connection.whenReady((c) => {
      const life = this.#life;
      // Otherwise closed meanwhile.
      if (life.kind !== "loading") return;
      if (c instanceof Error) return this.#fail(c);
      let client: WasmClient;
      try {
        client = c.of(this.nsp, { auth: this.options.auth });
      } catch (e) {
        this.#fail(e instanceof Error ? e : new Error(String(e)));
        return;
      }
      this.#attach(client, life.queue);
    });
  }

  /** The socket has its client: run what was queued meanwhile, in order. */
  #attach(client: WasmClient, queue: readonly Command[]): void {
    this.#life = { kind: "open", client };
    this.#connection.ready(client);
    client.onEvent((name, args, offset, source, ackId, id) => this.#onEvent(name, args, offset, source, ackId, id));
    client.onState((s) => this.#onState(s));
    client.onConnectError((e) => this.#emitReserved("connect_error", e));
    client.onFeed((s) => this.#emitReserved("feed", s));
    this.#state = client.state;
    // A listener may have closed the socket meanwhile; close() drops what was queued.
    if (this.wasmClient !== client) return;
    for (const command of queue) {
      try {
        command(client);
      } catch (e) {
        report(e);
      }
    }
  }

  /** The module or the options were unusable: report once, then refuse every command. */
  #fail(error: Error): void {
    // The queue goes with the old life. A closed socket stays closed (see the constructor).
    if (this.#life.kind !== "closed") this.#life = { kind: "broken", error };
    if (!this.#rides) this.#connection.ready(error);
    const connectError = Object.assign(error, { data: undefined, willRetry: false, fallbackPending: false });
    this.#emitReserved("connect_error", connectError);
    this.#onState({ status: "disconnected", reason: "connect error" });
  }

  /** Runs `command` now, or `queued` (which adds to `queue`) until the socket has a client. */
  #run<T>(command: (c: WasmClient) => T, queued: (queue: Command[]) => T): T {
    const life = this.#life;
    switch (life.kind) {
      case "closed":
        throw new Error("tidings: this socket is closed; call connect() for a new one");
      case "broken":
        throw new Error(`tidings: this socket is unusable: ${life.error.message}`, { cause: life.error });
      case "open":
        return command(life.client);
      case "idle":
      case "loading":
        if (life.queue.length >= MAX_QUEUED) {
          throw new Error(`tidings: more than ${MAX_QUEUED} commands before the WebAssembly module loaded; await init() first`);
        }
        return queued(life.queue);
    }
  }

  /**
   * One server event, `args` as sent (with recovery on, the offset last, as socket.io-client
   * passes it). Each listener runs in its own try/catch: one that throws is reported and the
   * others, and the events after it, still run. When this returns, the driver records the event
   * as received (its offset becomes the recovery offset).
   */
  #onEvent(
    name: string,
    args: unknown[],
    offset: string | undefined,
    source: EventMeta["source"],
    ackId: number | undefined,
    // The envelope's id, by the core's rule (sdk-core/src/event.rs, `envelope_id`).
    id: string | undefined,
  ): void {
    const meta = (this.lastEventMeta = { offset, source, id });
    const validate = this.options.validate;
    if (validate) {
      let problems: readonly unknown[] | undefined | void;
      try {
        problems = validate(name, args, meta);
      } catch (e) {
        problems = [e];
      }
      if (problems && problems.length > 0) {
        const invalid = { event: name, args, problems, meta };
        if (this.#reserved.get("invalid")?.length) this.#emitReserved("invalid", invalid);
        else console.warn(`tidings: "${name}" failed validation`, invalid);
        return;
      }
    }
    const client = this.wasmClient;
    if (ackId !== undefined && client) {
      let answered = false;
      args.push((...ackArgs: unknown[]) => {
        if (answered) return;
        answered = true;
        client.ack(ackId, ackArgs);
      });
    }
    for (const l of this.#any.slice()) {
      try {
        l(name, ...args);
      } catch (e) {
        report(e);
      }
    }
    for (const l of (this.#listeners.get(name) ?? []).slice()) {
      try {
        (l as Call)(...args);
      } catch (e) {
        report(e);
      }
    }
    // Pattern listeners ("task.*", "crm:*", "*") get the event's name first, as `onAny` does.
    for (const [pattern, list] of [...this.#listeners]) {
      if (pattern === name || !matches(pattern, name)) continue;
      for (const l of list.slice()) {
        try {
          (l as Call)(name, ...args);
        } catch (e) {
          report(e);
        }
      }
    }
  }

  #onState(s: ConnectionState): void {
    const prev = this.#state;
    this.#state = s;
    this.#emitReserved("state", s);
    if (s.status === "connected" && prev.status !== "connected") this.#emitReserved("connect");
    if (prev.status === "connected" && s.status !== "connected") {
      const reason: DisconnectReason = s.status === "disconnected" ? s.reason : "transport close";
      this.#emitReserved("disconnect", reason);
    }
  }

  #emitReserved(event: keyof ReservedEvents, ...args: unknown[]): void {
    for (const l of (this.#reserved.get(event) ?? []).slice()) {
      try {
        (l as Call)(...args);
      } catch (e) {
        report(e);
      }
    }
  }

  get id(): string | undefined {
    return this.#state.status === "connected" ? this.#state.id : undefined;
  }

  get connected(): boolean {
    return this.#state.status === "connected";
  }

  get recovered(): boolean {
    return this.wasmClient?.recovered ?? false;
  }

  /**
   * Where this client stands: the position of the last event delivered to the listeners (the
   * envelope `id` of a socket event, the offset or id of a feed event). Store it once those events
   * are handled and pass it back as `feed.since`: the next run reads every later event, once.
   */
  get cursor(): string | undefined {
    return this.wasmClient?.cursor ?? undefined;
  }

  get state(): ConnectionState {
    return this.#state;
  }

  async history({ since, limit = 100, signal }: HistoryOptions = {}): Promise<HistoryPage> {
    const { feed, auth } = this.options;
    if (!feed) throw new Error("history: no `feed` option");
    const token = (typeof auth === "function" ? await auth() : auth)?.["token"];
    limit = Math.min(Math.max(Math.trunc(limit) || 1, 1), 1000);
    const q = since === undefined ? "" : `&since=${encodeURIComponent(since)}`;
    const res = await fetch(`${feed.url.replace(/\/+$/, "")}/events?limit=${limit}${q}`, {
      headers: typeof token === "string" ? { authorization: `Bearer ${token}` } : {},
      signal: signal ?? null,
    });
    if (res.status !== 200) throw new Error(`history: the feed answered HTTP ${res.status}`);
    return historyPage(await res.json(), limit);
  }

  #map(event: string): Map<string, Listener[]> {
    return RESERVED_EVENTS.has(event) ? this.#reserved : this.#listeners;
  }

  on(event: string, listener: Listener): this {
    const map = this.#map(event);
    const list = map.get(event);
    if (list) list.push(listener);
    else map.set(event, [listener]);
    return this;
  }

  once(event: string, listener: Listener): this {
    const wrapper = Object.assign(
      (...args: unknown[]) => {
        this.off(event, wrapper);
        (listener as Call)(...args);
      },
      { listener },
    );
    return this.on(event, wrapper);
  }

  off(event?: string, listener?: Listener): this {
    if (event === undefined) {
      this.#listeners.clear();
      this.#reserved.clear();
      return this;
    }
    const map = this.#map(event);
    if (listener === undefined) {
      map.delete(event);
      return this;
    }
    const list = map.get(event);
    if (!list) return this;
    const i = list.findIndex((l) => l === listener || (l as { listener?: Listener }).listener === listener);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) map.delete(event);
    return this;
  }

  onAny(listener: AnyListener): this {
    this.#any.push(listener);
    return this;
  }

  offAny(listener?: AnyListener): this {
    if (listener === undefined) this.#any = [];
    else this.#any = this.#any.filter((l) => l !== listener);
    return this;
  }

  #checkName(event: string): void {
    if (RESERVED_EMIT.has(event)) throw new Error(`"${event}" is a reserved event name`);
  }

  /** Emits with an ack: the ack's arguments (as an array). */
  #emitAck(event: string, args: unknown[], timeout: number | undefined, idempotent = false): Promise<unknown[]> {
    this.#checkName(event);
    const opts = { ack: true, timeout, idempotent };
    const send = (c: WasmClient): Promise<unknown[]> =>
      c.emit(event, args, opts) ?? Promise.reject(new Error("tidings: no ack promise"));
    return this.#run(send, (queue) => {
      return new Promise<unknown[]>((resolve, reject) => {
        queue.push((c) => send(c).then(resolve, reject));
      });
    });
  }

  #emitPlain(event: string, args: unknown[], volatile: boolean, idempotent = false): void {
    this.#checkName(event);
    const opts = { volatile, idempotent };
    this.#run(
      (c) => void c.emit(event, args, opts),
      (queue) => void queue.push((c) => c.emit(event, args, opts)),
    );
  }

  emit<Ev extends EventNames<Emit>>(event: Ev, ...args: Parameters<Emit[Ev]>): this {
    const list = args as unknown[];
    const last = list[list.length - 1];
    if (typeof last === "function") {
      const callback = last as Call;
      this.#emitAck(event, list.slice(0, -1), undefined).then(
        (ackArgs) => {
          try {
            callback(...ackArgs);
          } catch (e) {
            report(e);
          }
        },
        // socket.io-client never calls a plain ack callback with an error.
        () => {},
      );
    } else {
      this.#emitPlain(event, list, false);
    }
    return this;
  }

  emitWithAck<Ev extends EventNames<Emit>>(event: Ev, ...args: EventParams<Emit, Ev>): Promise<AckResult<Emit, Ev>> {
    return this.#emitAck(event, args, undefined).then((a) => ackValue(a) as AckResult<Emit, Ev>);
  }

  timeout(ms: number): TimeoutEmitter<Emit> {
    return {
      emitWithAck: <Ev extends EventNames<Emit>>(event: Ev, ...args: EventParams<Emit, Ev>) =>
        this.#emitAck(event, args, ms).then((a) => ackValue(a) as AckResult<Emit, Ev>),
    };
  }

  get volatile(): VolatileEmitter<Emit> {
    return {
      emit: <Ev extends EventNames<Emit>>(event: Ev, ...args: EventParams<Emit, Ev>) =>
        this.#emitPlain(event, args, true),
    };
  }

  get idempotent(): IdempotentEmitter<Emit> {
    return {
      emit: <Ev extends EventNames<Emit>>(event: Ev, ...args: EventParams<Emit, Ev>) =>
        this.#emitPlain(event, args, false, true),
      emitWithAck: <Ev extends EventNames<Emit>>(event: Ev, ...args: EventParams<Emit, Ev>) =>
        this.#emitAck(event, args, undefined, true).then((a) => ackValue(a) as AckResult<Emit, Ev>),
    };
  }

  #room(room: string, join: boolean): Promise<unknown> {
    const send = (c: WasmClient): Promise<unknown> => (join ? c.join(room) : c.leave(room)).then(ackValue);
    return this.#run(send, (queue) => new Promise((resolve, reject) => queue.push((c) => send(c).then(resolve, reject))));
  }

  join(room: string): Promise<unknown> {
    return this.#room(room, true);
  }

  leave(room: string): Promise<unknown> {
    return this.#room(room, false);
  }

  connect(): this {
    const life = this.#life;
    // Idle until now: a rider opens its namespace (which connects it); a creator queues the
    // connect after what was queued and gets its client.
    if (life.kind === "idle") {
      this.#state = { status: "connecting" };
      if (this.#rides) this.#open(life.queue);
      else {
        life.queue.push((c) => c.connect());
        this.#load(life.queue);
      }
      return this;
    }
    this.#run(
      (c) => c.connect(),
      (queue) => {
        this.#state = { status: "connecting" };
        queue.push((c) => c.connect());
      },
    );
    return this;
  }

  disconnect(): this {
    this.#run(
      (c) => c.disconnect(),
      (queue) => void queue.push((c) => c.disconnect()),
    );
    return this;
  }

  close(): void {
    const life = this.#life;
    if (life.kind === "closed") return;
    // Closed first: the client's close() may call listeners that use this socket.
    this.#life = { kind: "closed" };
    switch (life.kind) {
      case "open": {
        const client = life.client;
        client.close();
        // Deferred: close() may be called from a listener running inside a WasmClient call,
        // whose core must outlive that call.
        queueMicrotask(() => client.free());
        break;
      }
      case "idle":
      case "loading":
      case "broken":
        // A creator without a client: the namespaces waiting for one would wait forever.
        if (!this.#rides) this.#connection.abandon();
        break;
    }
    this.#listeners.clear();
    this.#reserved.clear();
    this.#any = [];
    this.#connection.remove(this as TidingsSocket<EventsMap, EventsMap>);
  }
}

/** A feed page (the contract in sdk-core/src/client/feed.rs), checked: never a guess. */
function historyPage(body: unknown, limit: number): HistoryPage {
  const str = (v: unknown): string | undefined =>
    typeof v === "string" ? v : typeof v === "number" ? String(v) : undefined;
  const o = (body ?? {}) as Record<string, unknown>;
  const list = o["events"] ?? o["data"];
  if (!Array.isArray(list)) throw new Error("history: not a feed page");
  const events = list.map((e: Record<string, unknown> | null) => {
    const id = str(e?.["id"]);
    const event = str(e?.["event"] ?? e?.["type"]);
    if (id === undefined || event === undefined) throw new Error("history: a feed event has no id or name");
    return { id, event, data: e?.["data"] ?? e?.["payload"] ?? null, offset: str(e?.["offset"]) };
  });
  const last = events[events.length - 1];
  const hasMore = o["hasMore"];
  return {
    events,
    cursor: str(o["cursor"]) ?? last?.offset ?? last?.id,
    hasMore: typeof hasMore === "boolean" ? hasMore : events.length >= limit,
  };
}

/**
 * Connects to `url` (its path names the namespace, e.g. `https://api.example.com/chat`).
 * Returns at once; events, state changes and `connect_error` arrive through listeners.
 * Throws for a bad URL or option once the module is loaded (before that, the error is
 * reported as `connect_error` and the socket refuses further commands). With `autoConnect:
 * false` nothing is loaded, made or touched before `socket.connect()` (a server render can
 * create sockets freely); a bad option is then reported there, as `connect_error`.
 */
export function connect<Listen extends EventsMap = DefaultEventsMap, Emit extends EventsMap = Listen>(
  url: string,
  options: TidingsOptions = {},
): Socket<Listen, Emit> {
  if (loadError) throw loadError;
  const query = options.query;
  if (query) {
    const q = new URLSearchParams(query).toString();
    if (q) url += (url.includes("?") ? "&" : "?") + q;
  }
  const server = serverOf(url);
  const shared = options.forceNew !== true && options.multiplex !== false && server !== undefined;
  const existing = shared ? connections.get(server.key) : undefined;
  // A second socket for the same namespace gets a connection of its own, as in socket.io-client.
  const nsp = server?.namespace ?? "/";
  const same = existing !== undefined && [...existing.sockets].some((s) => s.nsp === nsp);
  if (existing !== undefined && !same) {
    return new TidingsSocket<Listen, Emit>(url, options, existing, nsp, true);
  }
  const connection = new Connection(shared && server !== undefined && !same ? server.key : undefined);
  if (connection.key !== undefined) connections.set(connection.key, connection);
  return new TidingsSocket<Listen, Emit>(url, options, connection, nsp, false);
}

/** The key of a server (everything but the namespace) and the namespace of `url`. */
function serverOf(url: string): { key: string; namespace: string } | undefined {
  let u: URL;
  try {
    // `location` only for a relative URL: a server render reads no browser global.
    u = new URL(url, /^[a-z][\w+.-]*:/i.test(url) ? undefined : (globalThis as { location?: { href: string } }).location?.href);
  } catch {
    // The core reports the bad URL.
    return undefined;
  }
  return { key: `${u.protocol}//${u.host}${u.search}`, namespace: u.pathname === "" ? "/" : u.pathname };
}

/** Alias of `connect`, for code moving from socket.io-client. */
export const io = connect;

export type { ConnectError, FeedStatus };
