"use client";
// `tidings/react`: a provider and hooks over one `Socket`. What does not need React (the stores,
// room reference counts, the owned client's lifecycle) is in store.ts; this file binds it to hooks.
//
// StrictMode mounts, unmounts and remounts every effect once in development. Nothing acts on an
// unmount at once: the provider's close and a room's leave wait one macrotask, and a remount in
// between cancels them, so a StrictMode cycle costs no reconnect and no extra join/leave.
// Subscriptions are added in effects and removed in their cleanups, never in render.

import {
  createContext,
  useCallback,
  useContext,
  useEffect,
  useInsertionEffect,
  useReducer,
  useRef,
  useState,
  useSyncExternalStore,
  type ReactElement,
  type ReactNode,
} from "react";
import {
  clientKey,
  createClient,
  emitterOf,
  IDLE,
  ignore,
  OwnedClient,
  roomsOf,
  stateStore,
  type Emitter,
  type RoomState,
  type UntypedSocket,
} from "./store.js";
import { subscribeWithSnapshot, type SnapshotRequest } from "./snapshot.js";
import type { ConnectionState, DefaultEventsMap, EventNames, EventsMap, ReservedEvents, Socket, TidingsOptions } from "./types.js";

export type { Emitter, RoomState };

type Listener = (...args: unknown[]) => void;

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

type Auth = TidingsOptions["auth"];

function useOwnedClient(url: string | undefined, options: TidingsOptions | undefined): UntypedSocket | null {
  const auth = useRef<Auth>(options?.auth);
  useInsertionEffect(() => {
    auth.current = options?.auth;
  });
  const [, rerender] = useReducer((n: number) => n + 1, 0);
  const ref = useRef<OwnedClient | null>(null);

  let owned: OwnedClient | null = null;
  if (url !== undefined) {
    const key = clientKey(url, options);
    owned = ref.current;
    if (owned === null || owned.key !== key || owned.closed) {
      // Created in render so children see a socket on the first render. `autoConnect: false`
      // keeps creation free of I/O: no module loaded, no client made, no global touched, so a
      // server render (which runs no effect) or a render React throws away leaves an idle
      // socket behind, never a connection. React 19 reuses this ref across StrictMode's double render; React 18
      // renders twice with fresh refs, leaving one idle client for the garbage collector.
      owned = new OwnedClient(createClient(url, options, auth), key, options?.autoConnect !== false);
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
    current.mount();
    return () => current.unmount();
  }, [current]);

  return current === null ? null : current.socket;
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

/** `emit` and `emitWithAck` bound to the provider's socket; safe to destructure and to list in effect deps. */
export function useEmit<Emit extends EventsMap = DefaultEventsMap>(): Emitter<Emit> {
  return emitterOf(useTidings()) as unknown as Emitter<Emit>;
}

// ---------------------------------------------------------------------------------------------
// Connection state

/** The socket's connection state (`socket.state`), re-rendering on every "state" event. */
export function useConnectionState(): ConnectionState {
  const store = stateStore(useTidings());
  return useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
}

// ---------------------------------------------------------------------------------------------
// Rooms

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

/** What {@link useSnapshot} holds. */
export interface SnapshotState<S, T> {
  /** The latest snapshot; `undefined` until the first. */
  readonly snapshot: S | undefined;
  /** The live events since that snapshot, oldest first (a new snapshot empties it). */
  readonly live: readonly T[];
  /** Live events dropped from the front of `live` by `maxLive` (0 unless you set it). */
  readonly skipped: number;
  readonly error: Error | undefined;
}

/**
 * Subscribes with a snapshot while mounted (`tidings/snapshot`): the snapshot, then the live
 * events that follow it; a new session brings a new snapshot. `request: null` subscribes to
 * nothing. `maxLive` (opt-in, lossy) keeps only the newest events in `live` and counts the others
 * in `skipped`. The request is compared by its fields, so an inline object does not resubscribe.
 */
export function useSnapshot<S = unknown, T = unknown>(
  request: SnapshotRequest | null,
  options: { maxLive?: number } = {},
): SnapshotState<S, T> {
  const socket = useTidings();
  const [state, setState] = useState<SnapshotState<S, T>>(NO_SNAPSHOT as SnapshotState<S, T>);
  const key = request === null ? null : JSON.stringify(request);
  const maxLive = options.maxLive;
  useEffect(() => {
    if (key === null) return undefined;
    const req = JSON.parse(key) as SnapshotRequest;
    return subscribeWithSnapshot<S, T>(socket, req, {
      snapshot: (snapshot) => setState({ snapshot, live: [], skipped: 0, error: undefined }),
      live: (data) =>
        setState((s) => {
          const live = [...s.live, data];
          const over = maxLive === undefined ? 0 : Math.max(0, live.length - maxLive);
          return { ...s, live: over > 0 ? live.slice(over) : live, skipped: s.skipped + over };
        }),
      error: (error) => setState((s) => ({ ...s, error })),
    });
  }, [socket, key, maxLive]);
  return state;
}

const NO_SNAPSHOT: SnapshotState<unknown, unknown> = { snapshot: undefined, live: [], skipped: 0, error: undefined };

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
