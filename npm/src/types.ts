// The public types of the `tidings` npm package: the contract between the wasm-backed client
// (src/index.ts) and the React hooks (src/react.tsx). No bare `Function` or untyped `Promise`; the one
// `any` is the index signature of the `EventsMap` constraint (see there), never a value's type.

/**
 * A map from event names to listener signatures, as in socket.io-client. Only ever a constraint,
 * never the type of a value: an index signature of type `any` is the one an `interface` satisfies
 * (interfaces get no implicit index signature, and socket.io users declare their maps as
 * interfaces); listener types always come from the user's own map.
 */
export interface EventsMap {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- see above
  [event: string]: any;
}

/** The default when no event map is given: any event, `unknown` arguments. */
export interface DefaultEventsMap {
  [event: string]: (...args: unknown[]) => void;
}

/** Event names of a map, as strings. */
export type EventNames<Map extends EventsMap> = keyof Map & string;

/** The arguments of an event, without a trailing ack callback. */
export type EventParams<Map extends EventsMap, Ev extends EventNames<Map>> = Parameters<Map[Ev]> extends [
  ...infer Args,
  (...ackArgs: infer _AckArgs) => void,
]
  ? Args
  : Parameters<Map[Ev]>;

/** What an ack resolves with: the single argument of the event's trailing callback, or all of them. */
export type AckResult<Map extends EventsMap, Ev extends EventNames<Map>> = Parameters<Map[Ev]> extends [
  ...infer _Args,
  (...ackArgs: infer AckArgs) => void,
]
  ? AckArgs extends [infer Only]
    ? Only
    : AckArgs
  : unknown;

/** Engine.IO transports. */
export type TransportName = "websocket" | "polling";

/** socket.io-client's disconnect reasons (exact strings), plus the two terminal cases. */
export type DisconnectReason =
  | "io server disconnect"
  | "io client disconnect"
  | "ping timeout"
  | "transport close"
  | "transport error"
  | "parse error"
  | "connect error"
  | "reconnect failed";

/** The connection state of a namespace. */
export type ConnectionState =
  | { readonly status: "connecting" }
  | {
      readonly status: "connected";
      readonly transport: TransportName;
      /** Whether the server restored the previous session (missed events were delivered first). */
      readonly recovered: boolean;
      readonly id: string;
    }
  | { readonly status: "reconnecting"; readonly attempt: number; /** milliseconds */ readonly delay: number }
  | { readonly status: "disconnected"; readonly reason: DisconnectReason };

/** The REST feed fallback's state. */
export type FeedStatus =
  | { readonly status: "polling" }
  | { readonly status: "stopped" }
  /** Reconnected without recovery: reading what was missed from the feed; socket events wait. */
  | { readonly status: "catching-up" }
  /** The catch-up read everything; the waiting socket events follow, each once and in order. */
  | { readonly status: "caught-up" }
  | { readonly status: "gave-up"; readonly error: string };

/** A failed connection attempt (`connect_error`). */
export interface ConnectError extends Error {
  /** The server's `err.data`, when the namespace refused with some. */
  readonly data: unknown;
  /** Whether the client will try again by itself. */
  readonly willRetry: boolean;
  /** A WebSocket attempt failed and the long-polling fallback may still succeed. */
  readonly fallbackPending: boolean;
}

/** Where an event came from. */
export type EventSource = "socket" | "feed";

/** Metadata of the event being delivered (or the last one), available via `lastEventMeta`. */
export interface EventMeta {
  /**
   * The connection-state-recovery offset the server appended, if any. Listeners get it too, as
   * the event's last argument (as socket.io-client passes it). A volatile event carries no offset,
   * but its last string argument looks just like one on the wire: with recovery on, that string
   * is reported here too (it is an argument either way).
   */
  readonly offset: string | undefined;
  readonly source: EventSource;
  /**
   * The envelope id when the event's first argument is an envelope (an object with `data` and a
   * string or number `id`, the rule the client de-duplicates by).
   */
  readonly id?: string | undefined;
}

/**
 * The Tidings event envelope (docs/PROTOCOL.md): the first argument of events from servers that
 * wrap their payloads, as the Rust `tidings::Envelope<T>`. Only `id` and `data` are required.
 */
export interface Envelope<Data = unknown, Type extends string = string> {
  /** Unique id of this event; the key for de-duplication. */
  readonly id: string;
  readonly type?: Type;
  /** Schema version of `data`: `2` or `"2.1"`. */
  readonly version?: number | string;
  /** Epoch milliseconds or a date string (ISO 8601), as sent. */
  readonly timestamp?: number | string;
  /** The service that produced it. */
  readonly source?: string;
  readonly data: Data;
  readonly metadata?: {
    readonly correlationId?: string;
    readonly userId?: string;
    readonly tenantId?: string;
    readonly sessionId?: string;
    readonly [key: string]: unknown;
  };
}

/**
 * A subscription pattern: `"task.*"` (every event whose name starts with `task.`), `"crm:*"`, or
 * `"*"` (every event). As in the Rust SDK.
 */
export type EventPattern = `${string}.*` | `${string}:*` | "*";

/** The events of `Map` that `P` matches (every name of the map for `"*"`; any name for a map
 *  without fixed names). */
export type MatchingEvents<Map extends EventsMap, P extends EventPattern> = string extends EventNames<Map>
  ? string
  : P extends `${infer Prefix}.*`
    ? Extract<EventNames<Map>, `${Prefix}.${string}`>
    : P extends `${infer Prefix}:*`
      ? Extract<EventNames<Map>, `${Prefix}:${string}`>
      : EventNames<Map>;

/** A listener for a pattern: the event's name, then its arguments as sent (as `onAny`). */
export type PatternListener<Map extends EventsMap, P extends EventPattern> = (
  event: MatchingEvents<Map, P>,
  ...args: unknown[]
) => void;

/** JSON-compatible auth object sent in the CONNECT packet (e.g. `{ token }`). */
export type AuthObject = { readonly [key: string]: unknown };

export interface TidingsOptions {
  /** The CONNECT payload, or a function called before every attempt (so a token can be refreshed). */
  auth?: AuthObject | (() => AuthObject | PromiseLike<AuthObject>);
  /** Transports in order of preference (default `["websocket", "polling"]`). */
  transports?: readonly TransportName[];
  /**
   * Other servers to try when the URL's server fails, in order (at most 16; their path must be
   * empty or the same namespace). Every series of reconnection attempts starts at the URL's
   * server and moves to the next after each failed attempt; a healthy connection to a fallback
   * is kept, and the next reconnection starts at the URL's server again.
   */
  fallbackUrls?: readonly string[];
  /** Upgrade a polling session to WebSocket when offered (default true). */
  upgrade?: boolean;
  /** On a failed first attempt, try the next transport at once (default false). */
  tryAllTransports?: boolean;
  /** WebSocket failures in a row before falling back to long-polling (default 2; 0 never). */
  fallbackAfter?: number;
  /** After a fallback to long-polling, probe WebSocket again this often, in ms (default 30000). */
  reprobeInterval?: number;
  /** Reconnect automatically (default true). */
  reconnection?: boolean;
  /** Give up after this many attempts (default Infinity). */
  reconnectionAttempts?: number;
  /** First reconnection delay in ms (default 1000). */
  reconnectionDelay?: number;
  /** Largest reconnection delay in ms (default 5000). */
  reconnectionDelayMax?: number;
  /** Jitter, 0..1 (default 0.5). */
  randomizationFactor?: number;
  /** "socket.io" (default, compatible) or "full-jitter" (spreads a reconnecting herd better). */
  backoff?: "socket.io" | "full-jitter";
  /** Connect timeout in ms (default 20000). */
  timeout?: number;
  /** Default ack timeout in ms for emits with an ack. */
  ackTimeout?: number;
  /** At-least-once delivery: retry an unacknowledged emit this many times (needs `ackTimeout`). */
  retries?: number;
  /** Limits on what is kept while disconnected. */
  sendBuffer?: { maxPackets?: number; maxBytes?: number; overflow?: "reject" | "drop-oldest" };
  /** Event names of room join/leave requests (default `room:join` / `room:leave`). */
  roomEvents?: { join?: string; leave?: string };
  /** The REST feed fallback (the feed contract is documented in README.md). */
  feed?: {
    url: string;
    /** Start polling after the socket has been down this long, ms (default 10000). */
    after?: number;
    /** ms, default 10000. */
    interval?: number;
    /** ms, default 5000. */
    minInterval?: number;
    /** ms, default 60000. */
    maxInterval?: number;
    /** default 5. */
    maxFailures?: number;
    /**
     * Where to resume while nothing was delivered yet: a `socket.cursor` stored by an earlier run
     * (or an offset or envelope id). The first connection reads every later event from the feed,
     * once, before the live ones.
     */
    since?: string;
  };
  /** Connect at once (default true); otherwise call `connect()`. */
  autoConnect?: boolean;
  /**
   * Share one connection among the namespaces of one server (default true), as socket.io-client
   * does: a second `connect()` to another namespace of the same origin rides the first one's
   * connection, with its own `auth`; its other options are those of the first.
   */
  multiplex?: boolean;
  /** A connection of its own even when one to the same server exists (default false). */
  forceNew?: boolean;
  /** The Engine.IO path (default `"/socket.io/"`; a trailing `/` is added, as socket.io-client does). */
  path?: string;
  /** Query parameters added to the URL of every request (socket.io-client's `query`). */
  query?: Readonly<Record<string, string>>;
  /**
   * Headers added to every HTTP long-polling request (socket.io-client's `extraHeaders`). A
   * browser's `WebSocket` cannot carry headers: over WebSocket they are sent only where the
   * runtime's `WebSocket` takes them (Node 22, Deno), as the handshake's headers. Across origins
   * the server's CORS must allow them. Not for tokens: use `auth`.
   */
  extraHeaders?: Readonly<Record<string, string>>;
  /**
   * Send cookies with long-polling requests to another origin (`fetch`'s `credentials: "include"`;
   * socket.io-client's `withCredentials`). The server's CORS must allow credentials. Default false.
   */
  withCredentials?: boolean;
  /**
   * Log the protocol: every frame and request in and out, states and connection errors. `true`
   * logs with `console.debug`; a function gets each line instead. Auth in CONNECT packets and the
   * `Authorization` header are never logged (`[redacted]`).
   */
  debug?: boolean | ((line: string) => void);
  /**
   * Checks every server event (from the socket or the feed) before any listener sees it, e.g.
   * with an event catalogue's generated validator. Return the problems found (an empty array,
   * `undefined` or nothing: valid). An invalid event, or one whose check throws, goes to no
   * listener: it is reported through the reserved `invalid` event (or `console.warn` when nobody
   * listens) and still counts as received (the cursor moves past it; it is not asked again).
   * `args` are as sent (with connection state recovery on, the offset last: see `meta.offset`).
   */
  validate?: (event: string, args: readonly unknown[], meta: EventMeta) => readonly unknown[] | undefined | void;
}

/** A server event that failed the `validate` option's check, as reported by `invalid`. */
export interface InvalidEvent {
  readonly event: string;
  readonly args: readonly unknown[];
  /** What `validate` returned, or the error it threw. */
  readonly problems: readonly unknown[];
  readonly meta: EventMeta;
}

/** Listeners for the client's own events (not sent by the server). */
export interface ReservedEvents {
  connect: () => void;
  disconnect: (reason: DisconnectReason) => void;
  connect_error: (error: ConnectError) => void;
  /** Every state change. */
  state: (state: ConnectionState) => void;
  /** The REST feed fallback's changes. */
  feed: (status: FeedStatus) => void;
  /** A server event the `validate` option refused; no other listener got it. */
  invalid: (report: InvalidEvent) => void;
}

/** `socket.timeout(ms)` */
export interface TimeoutEmitter<Emit extends EventsMap> {
  emitWithAck<Ev extends EventNames<Emit>>(event: Ev, ...args: EventParams<Emit, Ev>): Promise<AckResult<Emit, Ev>>;
}

/**
 * `socket.idempotent`: the emit carries a fresh idempotency key (an `idempotencyKey` member of its
 * first argument, which must be an object), the same on every retry, so a server that
 * de-duplicates by it acts once however often the emit is sent (with `retries`).
 */
export interface IdempotentEmitter<Emit extends EventsMap> {
  emit<Ev extends EventNames<Emit>>(event: Ev, ...args: EventParams<Emit, Ev>): void;
  emitWithAck<Ev extends EventNames<Emit>>(event: Ev, ...args: EventParams<Emit, Ev>): Promise<AckResult<Emit, Ev>>;
}

/** `socket.volatile` */
export interface VolatileEmitter<Emit extends EventsMap> {
  emit<Ev extends EventNames<Emit>>(event: Ev, ...args: EventParams<Emit, Ev>): void;
}

/**
 * A listener for any server event. Like every listener it gets the arguments as sent (with
 * connection state recovery on, the offset last); one that throws is reported (`reportError`)
 * and does not keep the other listeners, or later events, from running.
 */
export type AnyListener = (event: string, ...args: unknown[]) => void;

/** What `socket.history()` reads. */
export interface HistoryOptions {
  /** A cursor, an offset or an envelope id, as the feed takes them. */
  since?: string;
  /** 1-1000, default 100. */
  limit?: number;
  signal?: AbortSignal;
}

/**
 * One event of a history page: its name and its data (the argument the socket delivers), as the
 * feed returned them. Not narrowed to the event map: nothing checked them against it.
 */
export interface HistoryEvent {
  readonly id: string;
  readonly event: string;
  readonly data: unknown;
  readonly offset: string | undefined;
}

/** A page of `socket.history()`. */
export interface HistoryPage {
  readonly events: readonly HistoryEvent[];
  /** What to pass as `since` for the next page. */
  readonly cursor: string | undefined;
  readonly hasMore: boolean;
}

export interface Socket<Listen extends EventsMap = DefaultEventsMap, Emit extends EventsMap = DefaultEventsMap> {
  /** The socket id while connected. */
  readonly id: string | undefined;
  /** The namespace, from the URL's path (`"/"` by default). */
  readonly nsp: string;
  readonly connected: boolean;
  /** Whether the last connection restored the previous session. */
  readonly recovered: boolean;
  readonly state: ConnectionState;
  /**
   * Where this client stands: the position of the last event delivered to the listeners (the
   * envelope `id` of a socket event, the offset or id of a feed event). Store it once those events
   * are handled and pass it back as `feed.since`; `undefined` before such an event.
   */
  readonly cursor: string | undefined;
  /**
   * A page of history from the REST feed (the `feed` option): the events after `since` (a cursor,
   * an offset or an envelope id; without it, where the feed starts for this caller), at most
   * `limit` (1-1000, default 100), oldest first. It delivers nothing to listeners. Rejects when
   * there is no feed, the request fails or the answer is not a feed page.
   */
  history(options?: HistoryOptions): Promise<HistoryPage>;
  /**
   * Where the event being delivered came from (read it inside a listener), or the last one
   * afterwards; `undefined` before the first event. Updated before the listeners run.
   */
  readonly lastEventMeta: EventMeta | undefined;

  // Reserved events first: with the default map every name is a user event, and a listener for
  // "state" would otherwise be typed `(...args: unknown[])` (socket.io-client gives them precedence too).
  // Then patterns ("task.*"), whose listeners get the event's name first.
  on<Ev extends keyof ReservedEvents>(event: Ev, listener: ReservedEvents[Ev]): this;
  on<P extends EventPattern>(pattern: P, listener: PatternListener<Listen, P>): this;
  on<Ev extends EventNames<Listen>>(event: Ev, listener: Listen[Ev]): this;
  once<Ev extends keyof ReservedEvents>(event: Ev, listener: ReservedEvents[Ev]): this;
  once<P extends EventPattern>(pattern: P, listener: PatternListener<Listen, P>): this;
  once<Ev extends EventNames<Listen>>(event: Ev, listener: Listen[Ev]): this;
  off<Ev extends keyof ReservedEvents>(event?: Ev, listener?: ReservedEvents[Ev]): this;
  off<P extends EventPattern>(pattern?: P, listener?: PatternListener<Listen, P>): this;
  off<Ev extends EventNames<Listen>>(event?: Ev, listener?: Listen[Ev]): this;
  onAny(listener: AnyListener): this;
  offAny(listener?: AnyListener): this;

  /** Emits an event; a trailing function argument is the ack callback, as in socket.io-client. */
  emit<Ev extends EventNames<Emit>>(event: Ev, ...args: Parameters<Emit[Ev]>): this;
  /** Emits and resolves with the server's ack (rejects on timeout or disconnect). */
  emitWithAck<Ev extends EventNames<Emit>>(event: Ev, ...args: EventParams<Emit, Ev>): Promise<AckResult<Emit, Ev>>;
  timeout(ms: number): TimeoutEmitter<Emit>;
  readonly volatile: VolatileEmitter<Emit>;
  readonly idempotent: IdempotentEmitter<Emit>;

  /** Joins a room (sent again after every reconnect that did not recover); resolves with the ack. */
  join(room: string): Promise<unknown>;
  leave(room: string): Promise<unknown>;

  connect(): this;
  disconnect(): this;
  /** Disconnects and releases every timer, listener and the wasm memory of this client. */
  close(): void;
}
