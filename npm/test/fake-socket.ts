// TEST DOUBLE: an in-memory `Socket` for the hook unit tests. No network, no wasm. It follows the
// contract in src/types.ts (reserved events, state transitions, join/leave promises, listeners
// that throw) and records what the hooks did: listeners per event, joins, leaves, emits,
// connect/close calls.

import type {
  AckResult,
  AnyListener,
  ConnectionState,
  DefaultEventsMap,
  DisconnectReason,
  EventMeta,
  EventNames,
  EventParams,
  EventsMap,
  HistoryPage,
  ReservedEvents,
  Socket,
  TimeoutEmitter,
  VolatileEmitter,
  IdempotentEmitter,
} from "../src/types.js";

type Listener = (...args: never[]) => void;
type Call = (...args: unknown[]) => void;

/** A promise settled by the test. */
export interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

export function deferred<T>(): Deferred<T> {
  let resolve: (value: T) => void = () => {};
  let reject: (error: unknown) => void = () => {};
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** An emit as the fake recorded it. */
export interface Emitted {
  readonly event: string;
  readonly args: readonly unknown[];
  readonly volatile: boolean;
}

export class FakeSocket<Listen extends EventsMap = DefaultEventsMap, Emit extends EventsMap = DefaultEventsMap>
  implements Socket<Listen, Emit>
{
  readonly nsp: string = "/";
  recovered = false;
  cursor: string | undefined = undefined;
  /** The fake has no feed. */
  history(): Promise<HistoryPage> {
    return Promise.reject(new Error("history: no feed is configured (the `feed` option)"));
  }
  /** Set by `receive` (a server event; the fake knows no offsets). */
  lastEventMeta: EventMeta | undefined = undefined;
  /** Makes `state` hand out a new object on every read, as a getter over wasm might. */
  freshStateObjects = false;

  readonly joins: string[] = [];
  readonly leaves: string[] = [];
  readonly emitted: Emitted[] = [];
  /** Exceptions thrown by listeners (the real socket passes them to `reportError`). */
  readonly reported: unknown[] = [];
  connectCalls = 0;
  closeCalls = 0;
  closed = false;
  /** How join/leave requests settle; by default at once with `undefined`. */
  roomReply: (kind: "join" | "leave", room: string) => Promise<unknown> = () => Promise.resolve(undefined);
  /** The server's ack for `emitWithAck` and trailing callbacks. */
  ackReply: (event: string, args: readonly unknown[]) => unknown = () => undefined;

  private current: ConnectionState = { status: "disconnected", reason: "io client disconnect" };
  private readonly listeners = new Map<string, Listener[]>();
  private readonly anyListeners: AnyListener[] = [];

  get state(): ConnectionState {
    return this.freshStateObjects ? { ...this.current } : this.current;
  }

  get id(): string | undefined {
    return this.current.status === "connected" ? this.current.id : undefined;
  }

  get connected(): boolean {
    return this.state.status === "connected";
  }

  /** Listeners registered for `event` (reserved or not). */
  listenerCount(event: string): number {
    return this.listeners.get(event)?.length ?? 0;
  }

  /** Every registered listener, all events together. */
  totalListeners(): number {
    let total = 0;
    for (const list of this.listeners.values()) total += list.length;
    return total;
  }

  on<Ev extends keyof ReservedEvents>(event: Ev, listener: ReservedEvents[Ev]): this;
  on<Ev extends EventNames<Listen>>(event: Ev, listener: Listen[Ev]): this;
  on(event: string, listener: Listener): this {
    this.assertOpen();
    const list = this.listeners.get(event) ?? [];
    list.push(listener);
    this.listeners.set(event, list);
    return this;
  }

  private remove(event: string, listener: Listener): void {
    const list = this.listeners.get(event) ?? [];
    const index = list.indexOf(listener);
    if (index >= 0) list.splice(index, 1);
    if (list.length === 0) this.listeners.delete(event);
  }

  once<Ev extends keyof ReservedEvents>(event: Ev, listener: ReservedEvents[Ev]): this;
  once<Ev extends EventNames<Listen>>(event: Ev, listener: Listen[Ev]): this;
  once(event: string, listener: Listener): this {
    const wrapper: Call = (...args) => {
      this.remove(event, wrapper);
      (listener as Call)(...args);
    };
    this.assertOpen();
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), wrapper]);
    return this;
  }

  off<Ev extends keyof ReservedEvents>(event?: Ev, listener?: ReservedEvents[Ev]): this;
  off<Ev extends EventNames<Listen>>(event?: Ev, listener?: Listen[Ev]): this;
  off(event?: string, listener?: Listener): this {
    if (event === undefined) {
      this.listeners.clear();
    } else if (listener === undefined) {
      this.listeners.delete(event);
    } else {
      this.remove(event, listener);
    }
    return this;
  }

  onAny(listener: AnyListener): this {
    this.anyListeners.push(listener);
    return this;
  }

  offAny(listener?: AnyListener): this {
    if (listener === undefined) this.anyListeners.length = 0;
    else {
      const index = this.anyListeners.indexOf(listener);
      if (index >= 0) this.anyListeners.splice(index, 1);
    }
    return this;
  }

  emit<Ev extends EventNames<Emit>>(event: Ev, ...args: Parameters<Emit[Ev]>): this {
    this.assertOpen();
    const all: unknown[] = args;
    const last = all.at(-1);
    if (typeof last === "function") {
      const payload = all.slice(0, -1);
      this.emitted.push({ event, args: payload, volatile: false });
      const ack = this.ackReply(event, payload);
      queueMicrotask(() => (last as Call)(ack));
    } else {
      this.emitted.push({ event, args: all, volatile: false });
    }
    return this;
  }

  emitWithAck<Ev extends EventNames<Emit>>(event: Ev, ...args: EventParams<Emit, Ev>): Promise<AckResult<Emit, Ev>> {
    this.assertOpen();
    this.emitted.push({ event, args, volatile: false });
    return Promise.resolve(this.ackReply(event, args) as AckResult<Emit, Ev>);
  }

  timeout(_ms: number): TimeoutEmitter<Emit> {
    return { emitWithAck: (event, ...args) => this.emitWithAck(event, ...args) };
  }

  get volatile(): VolatileEmitter<Emit> {
    return {
      emit: (event, ...args) => {
        this.emitted.push({ event, args, volatile: true });
      },
    };
  }

  get idempotent(): IdempotentEmitter<Emit> {
    return {
      emit: (event, ...args) => {
        this.emitted.push({ event, args, volatile: false });
      },
      emitWithAck: (event, ...args) => this.emitWithAck(event, ...args),
    };
  }

  join(room: string): Promise<unknown> {
    this.assertOpen();
    this.joins.push(room);
    return this.roomReply("join", room);
  }

  leave(room: string): Promise<unknown> {
    this.assertOpen();
    this.leaves.push(room);
    return this.roomReply("leave", room);
  }

  connect(): this {
    this.assertOpen();
    this.connectCalls += 1;
    if (this.current.status === "disconnected") this.setState({ status: "connecting" });
    return this;
  }

  disconnect(): this {
    if (this.current.status !== "disconnected") this.drop("io client disconnect");
    return this;
  }

  close(): void {
    this.closeCalls += 1;
    this.disconnect();
    this.closed = true;
    this.listeners.clear();
    this.anyListeners.length = 0;
  }

  // --- driven by tests: what the server and the network would do ---

  /** The namespace connected. */
  open(id = "sid-1", recovered = false): void {
    this.recovered = recovered;
    this.setState({ status: "connected", transport: "websocket", recovered, id });
    this.dispatch("connect", []);
  }

  /** The connection dropped. */
  drop(reason: DisconnectReason): void {
    this.setState({ status: "disconnected", reason });
    this.dispatch("disconnect", [reason]);
  }

  /**
   * A server event reached the client, `args` as sent (with connection state recovery on, a
   * socket.io server appends the offset as the last one, and listeners get it).
   */
  receive(event: string, ...args: unknown[]): void {
    this.lastEventMeta = { offset: undefined, source: "socket" };
    for (const listener of [...this.anyListeners]) this.call(() => listener(event, ...args));
    this.dispatch(event, args);
  }

  setState(state: ConnectionState): void {
    this.current = { ...state };
    this.dispatch("state", [this.state]);
  }

  /** Like the real socket: a listener that throws does not stop the others. */
  private dispatch(event: string, args: readonly unknown[]): void {
    for (const listener of [...(this.listeners.get(event) ?? [])]) this.call(() => (listener as Call)(...args));
  }

  private call(f: () => void): void {
    try {
      f();
    } catch (e) {
      this.reported.push(e);
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new Error("FakeSocket: used after close()");
  }
}
