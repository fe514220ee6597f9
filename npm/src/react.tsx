"use client";
// `tidings/react`: a provider and hooks over one `Socket`.
//
// StrictMode mounts, unmounts and remounts every effect once in development. Nothing here acts
// on an unmount at once: the provider's close and a room's leave wait one macrotask, and a
// remount in between cancels them, so a StrictMode cycle costs no reconnect and no extra
// join/leave. Subscriptions are added in effects and removed in their cleanups, never in render.

import {
  createContext,
  useCallback,
  useContext,
  useEffect,
  useInsertionEffect,
  useReducer,
  useRef,
  useSyncExternalStore,
  type ReactElement,
  type ReactNode,
} from "react";
import { connect } from "./index.js";
import type {
  AckResult,
  ConnectionState,
  DefaultEventsMap,
  EventNames,
  EventParams,
  EventsMap,
  ReservedEvents,
  Socket,
  TidingsOptions,
} from "./types.js";

/** How every hook sees the provider's socket; typed views are casts of it. */
type UntypedSocket = Socket<DefaultEventsMap, DefaultEventsMap>;
type Listener = (...args: unknown[]) => void;
type Timer = ReturnType<typeof setTimeout>;

const SocketContext = createContext<UntypedSocket | null>(null);
SocketContext.displayName = "Tidings";

// ---------------------------------------------------------------------------------------------
// Provider

/** Props of {@link TidingsProvider}: a client you own, or a URL and options for one it owns. */
export type TidingsProviderProps<Listen extends EventsMap = DefaultEventsMap, Emit extends EventsMap = DefaultEventsMap> =
  | {
      /** A socket you created and close yourself. */
      readonly client: Socket<Listen, Emit>;
      readonly url?: never;
      readonly options?: never;
      readonly children?: ReactNode;
    }
  | {
      /** The provider connects here on mount and closes the client on unmount. */
      readonly url: string;
      /**
       * Read when the client is created. A change of `url` or of a JSON-visible option creates a
       * new client; a new `auth` function does not (the latest one is always called).
       */
      readonly options?: TidingsOptions;
      readonly client?: never;
      readonly children?: ReactNode;
    };

/** Makes a socket available to the hooks below it. */
export function TidingsProvider<Listen extends EventsMap = DefaultEventsMap, Emit extends EventsMap = DefaultEventsMap>(
  props: TidingsProviderProps<Listen, Emit>,
): ReactElement {
  const owned = useOwnedClient(props.client === undefined ? props.url : undefined, props.options);
  const socket = props.client === undefined ? owned : (props.client as unknown as UntypedSocket);
  if (socket === null) throw new Error("tidings/react: <TidingsProvider> needs a `client` or a `url`.");
  return <SocketContext.Provider value={socket}>{props.children}</SocketContext.Provider>;
}

/** A client the provider created. */
interface Owned {
  readonly socket: UntypedSocket;
  readonly key: string;
  readonly autoConnect: boolean;
  /** `connect()` was called (once, on the first mount). */
  started: boolean;
  /** `close()` was called: the wasm side is gone, a remount needs a new client. */
  closed: boolean;
  closeTimer: Timer | undefined;
}

type Auth = TidingsOptions["auth"];

function useOwnedClient(url: string | undefined, options: TidingsOptions | undefined): UntypedSocket | null {
  const auth = useRef<Auth>(options?.auth);
  useInsertionEffect(() => {
    auth.current = options?.auth;
  });
  const [, rerender] = useReducer((n: number) => n + 1, 0);
  const ref = useRef<Owned | null>(null);

  let owned: Owned | null = null;
  if (url !== undefined) {
    const key = clientKey(url, options);
    owned = ref.current;
    if (owned === null || owned.key !== key || owned.closed) {
      // Created in render so children see a socket on the first render. `autoConnect: false`
      // keeps creation free of I/O: a render React throws away leaves an idle client behind,
      // never a connection. React 19 reuses this ref across StrictMode's double render; React 18
      // renders twice with fresh refs, leaving one idle client for the garbage collector.
      owned = {
        socket: createClient(url, options, auth),
        key,
        autoConnect: options?.autoConnect !== false,
        started: false,
        closed: false,
        closeTimer: undefined,
      };
      ref.current = owned;
    }
  }

  const current = owned;
  useEffect(() => {
    if (current === null) return undefined;
    if (current.closed) {
      // Remounted after a real close (e.g. a hidden <Activity> shown again): make a new client.
      rerender();
      return undefined;
    }
    if (current.closeTimer !== undefined) {
      clearTimeout(current.closeTimer);
      current.closeTimer = undefined;
    }
    if (!current.started) {
      current.started = true;
      if (current.autoConnect) current.socket.connect();
    }
    return () => {
      current.closeTimer = setTimeout(() => {
        current.closeTimer = undefined;
        current.closed = true;
        current.socket.close();
      }, 0);
    };
  }, [current]);

  return current === null ? null : current.socket;
}

function createClient(url: string, options: TidingsOptions | undefined, auth: { readonly current: Auth }): UntypedSocket {
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
function clientKey(url: string, options: TidingsOptions | undefined): string {
  return `${url}\n${JSON.stringify(options ?? {}, (_key, value: unknown) => (typeof value === "function" ? "[function]" : value))}`;
}

// ---------------------------------------------------------------------------------------------
// Socket and events

/**
 * The provider's socket. Throws outside a {@link TidingsProvider}. The type parameters are a
 * view only; {@link createTidingsHooks} binds them once for a whole app.
 */
export function useTidings<Listen extends EventsMap = DefaultEventsMap, Emit extends EventsMap = DefaultEventsMap>(): Socket<
  Listen,
  Emit
> {
  const socket = useContext(SocketContext);
  if (socket === null) {
    throw new Error("tidings/react: useTidings() and the other Tidings hooks must be used inside a <TidingsProvider>.");
  }
  return socket as unknown as Socket<Listen, Emit>;
}

/**
 * Calls `handler` for every `event` while mounted. One listener per component, re-registered
 * only when the socket or the event name changes; it always calls the latest `handler`.
 */
export function useEvent<Ev extends keyof ReservedEvents>(event: Ev, handler: ReservedEvents[Ev]): void;
export function useEvent<Listen extends EventsMap = DefaultEventsMap, Ev extends EventNames<Listen> = EventNames<Listen>>(
  event: Ev,
  handler: Listen[Ev],
): void;
export function useEvent(event: string, handler: (...args: never[]) => void): void {
  const socket = useTidings();
  const latest = useRef(handler);
  // Insertion effects run before any other effect of the commit, so events see the new handler.
  useInsertionEffect(() => {
    latest.current = handler;
  });
  useEffect(() => {
    const listener: Listener = (...args) => {
      (latest.current as Listener)(...args);
    };
    socket.on(event, listener);
    return () => {
      socket.off(event, listener);
    };
  }, [socket, event]);
}

/** Stable emit functions of the provider's socket (the same object for every render and component). */
export interface Emitter<Emit extends EventsMap = DefaultEventsMap> {
  /** `socket.emit`; a trailing function argument is the ack callback. */
  emit<Ev extends EventNames<Emit>>(event: Ev, ...args: Parameters<Emit[Ev]>): void;
  /** `socket.emitWithAck`: resolves with the server's ack, rejects on timeout or disconnect. */
  emitWithAck<Ev extends EventNames<Emit>>(event: Ev, ...args: EventParams<Emit, Ev>): Promise<AckResult<Emit, Ev>>;
}

const emitters = new WeakMap<UntypedSocket, Emitter>();

/** `emit` and `emitWithAck` bound to the provider's socket; safe to destructure and to list in effect deps. */
export function useEmit<Emit extends EventsMap = DefaultEventsMap>(): Emitter<Emit> {
  const socket = useTidings();
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
  return emitter as unknown as Emitter<Emit>;
}

// ---------------------------------------------------------------------------------------------
// Connection state

interface Store<T> {
  subscribe(onChange: () => void): () => void;
  getSnapshot(): T;
}

const stateStores = new WeakMap<UntypedSocket, Store<ConnectionState>>();

/** One "state" listener per socket, shared by every component that reads the state. */
function stateStore(socket: UntypedSocket): Store<ConnectionState> {
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

/** The socket's connection state (`socket.state`), re-rendering on every "state" event. */
export function useConnectionState(): ConnectionState {
  const store = stateStore(useTidings());
  return useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
}

// ---------------------------------------------------------------------------------------------
// Rooms

/** A room membership as seen by {@link useRoom}. */
export type RoomState =
  /** No room was asked for (`useRoom(null)`). */
  | { readonly status: "idle"; readonly joined: false; readonly error: undefined }
  | { readonly status: "joining"; readonly joined: false; readonly error: undefined }
  /** The server acknowledged the join. The client re-joins by itself after a reconnect. */
  | { readonly status: "joined"; readonly joined: true; readonly error: undefined }
  | { readonly status: "failed"; readonly joined: false; readonly error: Error };

const IDLE: RoomState = { status: "idle", joined: false, error: undefined };
const JOINING: RoomState = { status: "joining", joined: false, error: undefined };
const JOINED: RoomState = { status: "joined", joined: true, error: undefined };

interface Membership {
  users: number;
  state: RoomState;
  leaveTimer: Timer | undefined;
}

/** Reference-counted room memberships of one socket: one join for the first user, one leave after the last. */
class Rooms {
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

function roomsOf(socket: UntypedSocket): Rooms {
  let rooms = roomRegistries.get(socket);
  if (rooms === undefined) {
    rooms = new Rooms(socket);
    roomRegistries.set(socket, rooms);
  }
  return rooms;
}

function ignore(): void {}

function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

function subscribeNothing(): () => void {
  return ignore;
}

/**
 * Joins `room` while mounted (`null` or `undefined`: no room). Reference-counted per socket:
 * any number of components in the same room cause one join and, after the last unmounts, one leave.
 */
export function useRoom(room: string | null | undefined): RoomState {
  const rooms = roomsOf(useTidings());
  const name = room ?? null;
  useEffect(() => {
    if (name === null) return undefined;
    rooms.acquire(name);
    return () => rooms.release(name);
  }, [rooms, name]);
  const subscribe = useCallback((onChange: () => void) => (name === null ? subscribeNothing() : rooms.watch(name, onChange)), [rooms, name]);
  const getSnapshot = useCallback(() => (name === null ? IDLE : rooms.state(name)), [rooms, name]);
  return useSyncExternalStore(subscribe, getSnapshot, getSnapshot);
}

// ---------------------------------------------------------------------------------------------
// Typed hooks

/** The hooks with an app's event maps bound once; see {@link createTidingsHooks}. */
export interface TidingsHooks<Listen extends EventsMap, Emit extends EventsMap> {
  TidingsProvider(props: TidingsProviderProps<Listen, Emit>): ReactElement;
  useTidings(): Socket<Listen, Emit>;
  useEvent<Ev extends keyof ReservedEvents>(event: Ev, handler: ReservedEvents[Ev]): void;
  useEvent<Ev extends EventNames<Listen>>(event: Ev, handler: Listen[Ev]): void;
  useEmit(): Emitter<Emit>;
  useConnectionState(): ConnectionState;
  useRoom(room: string | null | undefined): RoomState;
}

/**
 * Binds the event maps once, so event names and listener arguments are inferred:
 *
 * ```ts
 * export const { useEvent, useEmit } = createTidingsHooks<ServerToClient, ClientToServer>();
 * ```
 *
 * The hooks are the same functions as the plain exports; only their types differ.
 */
export function createTidingsHooks<Listen extends EventsMap = DefaultEventsMap, Emit extends EventsMap = DefaultEventsMap>(): TidingsHooks<
  Listen,
  Emit
> {
  return {
    TidingsProvider: TidingsProvider<Listen, Emit>,
    useTidings: useTidings<Listen, Emit>,
    useEvent: useEvent as TidingsHooks<Listen, Emit>["useEvent"],
    useEmit: useEmit<Emit>,
    useConnectionState,
    useRoom,
  };
}
