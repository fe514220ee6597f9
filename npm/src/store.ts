// The framework-free half of `tidings/react` (as TanStack's query-core is to react-query): per
// socket stores of the connection state, ref-counted room memberships, stable emitters, and the
// provider's owned client. react.tsx only binds them to hooks; nothing here imports React.
//
// Internal, not a package entry: esbuild inlines it into dist/react.js. Another binding (Vue,
// Svelte) would be the reason to export it, and then its API would be a contract.
//
// Releases wait one macrotask, and a use in between cancels them, so a StrictMode
// mount/unmount/remount costs no reconnect and no extra join/leave.

import { connect } from "./index.js";
import type {
  AckResult,
  ConnectionState,
  DefaultEventsMap,
  EventNames,
  EventParams,
  EventsMap,
  Socket,
  TidingsOptions,
} from "./types.js";

/** How the stores see a socket; typed views are casts of it. */
export type UntypedSocket = Socket<DefaultEventsMap, DefaultEventsMap>;
type Timer = ReturnType<typeof setTimeout>;

/** An external store in the shape `useSyncExternalStore` takes. */
export interface Store<T> {
  subscribe(onChange: () => void): () => void;
  getSnapshot(): T;
}

// ---------------------------------------------------------------------------------------------
// Owned client (a provider given a URL)

type Auth = TidingsOptions["auth"];

/** A client a provider created: connected on its first mount, closed a macrotask after its last. */
export class OwnedClient {
  // TS `private`, not `#`: es2020 output would turn each `#` field into a WeakMap.
  private started = false;
  private wasClosed = false;
  private closeTimer: Timer | undefined;

  constructor(
    readonly socket: UntypedSocket,
    /** {@link clientKey} of the configuration it was made with. */
    readonly key: string,
    private readonly autoConnect: boolean,
  ) {}

  /** `close()` was called: the wasm side is gone, a remount needs a new client. */
  get closed(): boolean {
    return this.wasClosed;
  }

  /** Mounted (again): cancels a pending close; the first mount connects (unless `autoConnect: false`). */
  mount(): void {
    if (this.closeTimer !== undefined) {
      clearTimeout(this.closeTimer);
      this.closeTimer = undefined;
    }
    if (!this.started) {
      this.started = true;
      if (this.autoConnect) this.socket.connect();
    }
  }

  /** Unmounted: closes after one macrotask unless mounted again meanwhile. */
  unmount(): void {
    this.closeTimer = setTimeout(() => {
      this.closeTimer = undefined;
      this.wasClosed = true;
      this.socket.close();
    }, 0);
  }
}

/**
 * Creates an idle client (`autoConnect: false`, so that creating it does no I/O and loads
 * nothing until the first mount connects it: server renders stay inert). An `auth`
 * function is replaced by one calling `auth.current`, so a new function needs no new client.
 */
export function createClient(url: string, options: TidingsOptions | undefined, auth: { readonly current: Auth }): UntypedSocket {
  const settings: TidingsOptions = { ...options, autoConnect: false };
  if (typeof options?.auth === "function") {
    settings.auth = () => {
      const latest = auth.current;
      return typeof latest === "function" ? latest() : (latest ?? {});
    };
  }
  return connect(url, settings) as unknown as UntypedSocket;
}

/** What identifies a client's configuration: functions count by presence, not identity. */
export function clientKey(url: string, options: TidingsOptions | undefined): string {
  return `${url}\n${JSON.stringify(options ?? {}, (_key, value: unknown) => (typeof value === "function" ? "[function]" : value))}`;
}

// ---------------------------------------------------------------------------------------------
// Emitters

/** Stable emit functions of the provider's socket (the same object for every render and component). */
export interface Emitter<Emit extends EventsMap = DefaultEventsMap> {
  /** `socket.emit`; a trailing function argument is the ack callback. */
  emit<Ev extends EventNames<Emit>>(event: Ev, ...args: Parameters<Emit[Ev]>): void;
  /** `socket.emitWithAck`: resolves with the server's ack, rejects on timeout or disconnect. */
  emitWithAck<Ev extends EventNames<Emit>>(event: Ev, ...args: EventParams<Emit, Ev>): Promise<AckResult<Emit, Ev>>;
}

const emitters = new WeakMap<UntypedSocket, Emitter>();

/** The one {@link Emitter} of `socket`. */
export function emitterOf(socket: UntypedSocket): Emitter {
  let emitter = emitters.get(socket);
  if (emitter === undefined) {
    emitter = {
      emit: (event, ...args) => {
        socket.emit(event, ...args);
      },
      emitWithAck: (event, ...args) => socket.emitWithAck(event, ...args),
    };
    emitters.set(socket, emitter);
  }
  return emitter;
}

// ---------------------------------------------------------------------------------------------
// Connection state

const stateStores = new WeakMap<UntypedSocket, Store<ConnectionState>>();

/** One "state" listener per socket, shared by every subscriber, and only while there is one. */
export function stateStore(socket: UntypedSocket): Store<ConnectionState> {
  let store = stateStores.get(socket);
  if (store !== undefined) return store;
  const listeners = new Set<() => void>();
  const onState = (): void => {
    for (const listener of listeners) listener();
  };
  let snapshot = socket.state;
  store = {
    subscribe(onChange) {
      listeners.add(onChange);
      if (listeners.size === 1) socket.on("state", onState);
      return () => {
        listeners.delete(onChange);
        if (listeners.size === 0) socket.off("state", onState);
      };
    },
    getSnapshot() {
      // useSyncExternalStore needs the same object until the state changes; a getter that
      // builds a fresh object per read must not cause a re-render loop.
      const next = socket.state;
      if (!sameState(snapshot, next)) snapshot = next;
      return snapshot;
    },
  };
  stateStores.set(socket, store);
  return store;
}

function sameState(a: ConnectionState, b: ConnectionState): boolean {
  if (a === b) return true;
  const left: Readonly<Record<string, unknown>> = a;
  const right: Readonly<Record<string, unknown>> = b;
  const keys = Object.keys(left);
  return keys.length === Object.keys(right).length && keys.every((key) => left[key] === right[key]);
}

// ---------------------------------------------------------------------------------------------
// Rooms

/** A room membership as seen by `useRoom`. */
export type RoomState =
  /** No room was asked for (`useRoom(null)`). */
  | { readonly status: "idle"; readonly joined: false; readonly error: undefined }
  | { readonly status: "joining"; readonly joined: false; readonly error: undefined }
  /** The server acknowledged the join. The client re-joins by itself after a reconnect. */
  | { readonly status: "joined"; readonly joined: true; readonly error: undefined }
  | { readonly status: "failed"; readonly joined: false; readonly error: Error };

export const IDLE: RoomState = { status: "idle", joined: false, error: undefined };
const JOINING: RoomState = { status: "joining", joined: false, error: undefined };
const JOINED: RoomState = { status: "joined", joined: true, error: undefined };

interface Membership {
  users: number;
  state: RoomState;
  leaveTimer: Timer | undefined;
}

/** Reference-counted room memberships of one socket: one join for the first user, one leave after the last. */
export class Rooms {
  private readonly memberships = new Map<string, Membership>();
  private readonly watchers = new Map<string, Set<() => void>>();

  constructor(private readonly socket: UntypedSocket) {}

  acquire(room: string): void {
    const existing = this.memberships.get(room);
    if (existing !== undefined) {
      existing.users += 1;
      if (existing.leaveTimer !== undefined) {
        // Released and taken again within a tick (StrictMode, or a handover between components).
        clearTimeout(existing.leaveTimer);
        existing.leaveTimer = undefined;
      }
      return;
    }
    const membership: Membership = { users: 1, state: JOINING, leaveTimer: undefined };
    this.memberships.set(room, membership);
    this.notify(room);
    const settle = (state: RoomState): void => {
      // A leave and a new join may have replaced this membership meanwhile.
      if (this.memberships.get(room) !== membership) return;
      membership.state = state;
      this.notify(room);
    };
    this.socket.join(room).then(
      () => settle(JOINED),
      (error: unknown) => settle({ status: "failed", joined: false, error: asError(error) }),
    );
  }

  release(room: string): void {
    const membership = this.memberships.get(room);
    if (membership === undefined) return;
    membership.users -= 1;
    if (membership.users > 0) return;
    membership.leaveTimer = setTimeout(() => {
      this.memberships.delete(room);
      // A leave that fails (disconnected, client closed) needs no handling: the server drops the
      // membership with the session, and the client no longer re-joins the room.
      try {
        this.socket.leave(room).catch(ignore);
      } catch {
        // The provider closed the client in the same tick.
      }
    }, 0);
  }

  /** The same object until the membership changes (a `getSnapshot`). */
  state(room: string): RoomState {
    return this.memberships.get(room)?.state ?? JOINING;
  }

  watch(room: string, onChange: () => void): () => void {
    let set = this.watchers.get(room);
    if (set === undefined) {
      set = new Set();
      this.watchers.set(room, set);
    }
    set.add(onChange);
    return () => {
      set.delete(onChange);
      if (set.size === 0) this.watchers.delete(room);
    };
  }

  private notify(room: string): void {
    for (const onChange of this.watchers.get(room) ?? []) onChange();
  }
}

const roomRegistries = new WeakMap<UntypedSocket, Rooms>();

/** The one {@link Rooms} of `socket`, so every component counts against the same memberships. */
export function roomsOf(socket: UntypedSocket): Rooms {
  let rooms = roomRegistries.get(socket);
  if (rooms === undefined) {
    rooms = new Rooms(socket);
    roomRegistries.set(socket, rooms);
  }
  return rooms;
}

export function ignore(): void {}

function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
